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

  // A reload waits while someone is typing in a form of the page (a code, a reason), or while
  // the pointer rests on a decision's buttons: a list that moved under the pointer could put
  // another action's Approve button where this one's was.
  let wanted = false;
  let running = false;
  let overDecision = false;
  function typing() {
    const a = document.activeElement;
    return overDecision || (!!a && main.contains(a) && a.tagName === "INPUT" && a.value !== "");
  }
  main.addEventListener("pointerover", function (e) {
    overDecision = !!(e.target.closest && e.target.closest(".decide"));
  });
  main.addEventListener("pointerout", function (e) {
    const to = e.relatedTarget;
    overDecision = !!(to && to.closest && main.contains(to) && to.closest(".decide"));
    if (!overDecision && wanted) setTimeout(refresh, 0);
  });

  // Which actions the page lists, in order.
  function listed() {
    return Array.from(main.querySelectorAll("article.action")).map(function (a) { return a.id; }).join(" ");
  }

  // After the list of actions changed (one appeared, went, or moved), its Approve buttons wait a
  // moment, so a click meant for what was there cannot land on what moved into its place.
  const SETTLE_MS = 1500;
  function settle() {
    const buttons = Array.from(main.querySelectorAll("button.approve"));
    if (buttons.length === 0) return;
    main.dataset.settling = "1";
    for (const b of buttons) b.disabled = true;
    setTimeout(function () {
      for (const b of buttons) b.disabled = false;
      delete main.dataset.settling;
    }, SETTLE_MS);
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
      const before = listed();
      main.innerHTML = await response.text();
      if (listed() !== before) settle();
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
    // A server's page lists its recent actions; which server an action is on is not in the event.
    // An investigation's page lists the actions run under it; which one is not in the event.
    if (live === "pending" || live === "action:" + e.data || live.startsWith("server:") || live.startsWith("investigation")) refresh();
  });
  source.addEventListener("output", function (e) {
    if (live === "action:" + e.data) refresh();
  });
  source.addEventListener("server", function (e) {
    if (live === "servers" || live === "alerts" || live === "server:" + e.data) refresh();
  });
  source.addEventListener("investigation", function (e) {
    if (live === "investigations" || live === "investigation:" + e.data) refresh();
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
