// mttrly dashboard: keeps an open page live. Every page shows its facts without this script; it
// only listens to /events and reloads the page's <main> when something it shows changed, and
// counts expiries down. No inline script anywhere (the Content-Security-Policy forbids it).
"use strict";

(function () {
  const main = document.getElementById("main");
  if (!main) return;

  function countdown() {
    const now = Date.now();
    for (const t of main.querySelectorAll("time[data-countdown]")) {
      const left = t.parentElement && t.parentElement.querySelector(".left");
      if (!left) continue;
      const ms = Date.parse(t.getAttribute("datetime")) - now;
      if (isNaN(ms)) continue;
      if (ms <= 0) {
        left.textContent = "(expired)";
        left.classList.add("expired");
        continue;
      }
      const s = Math.floor(ms / 1000);
      const h = Math.floor(s / 3600);
      const m = Math.floor((s % 3600) / 60);
      const sec = String(s % 60).padStart(2, "0");
      left.textContent = "(in " + (h > 0 ? h + "h " + String(m).padStart(2, "0") : m) + "m " + sec + "s)";
    }
  }

  // A reload waits while someone is typing in a form of the page (a code, a reason).
  let wanted = false;
  let running = false;
  function typing() {
    const a = document.activeElement;
    return !!a && main.contains(a) && a.tagName === "INPUT" && a.value !== "";
  }

  async function refresh() {
    if (typing()) {
      wanted = true;
      return;
    }
    if (running) {
      wanted = true;
      return;
    }
    running = true;
    wanted = false;
    try {
      const response = await fetch(main.dataset.url || "/", {
        headers: { "X-Mttrly-Fragment": "1" },
        credentials: "same-origin",
        cache: "no-store",
      });
      if (response.headers.get("X-Mttrly-Fragment") !== "1") {
        // Signed out meanwhile (a redirect to the sign-in page): show it whole.
        location.assign(main.dataset.url || "/");
        return;
      }
      // A refusal shown after a form (data-keep) stays until the person leaves the page.
      const keep = main.querySelector("[data-keep]");
      main.innerHTML = await response.text();
      if (keep) main.prepend(keep);
      main.dataset.refreshed = String(Date.now());
      countdown();
    } catch (e) {
      wanted = true;
    } finally {
      running = false;
      if (wanted && !typing()) setTimeout(refresh, 200);
    }
  }

  main.addEventListener("focusout", function () {
    if (wanted) setTimeout(refresh, 0);
  });

  const live = main.dataset.live || "";
  const source = new EventSource("/events");
  source.addEventListener("action", function (e) {
    if (live === "pending" || live === "action:" + e.data) refresh();
  });
  source.addEventListener("server", function () {
    if (live === "servers") refresh();
  });
  source.addEventListener("resync", refresh);
  // Whatever happened between rendering this page and the feed opening (or while it was
  // reconnecting) was not heard: fetch the page once more as the feed opens.
  source.addEventListener("open", function () {
    refresh().then(function () {
      main.dataset.connected = "1";
    });
  });

  countdown();
  setInterval(countdown, 1000);
})();
