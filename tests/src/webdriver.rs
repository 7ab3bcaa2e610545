//! A small W3C WebDriver client for the dashboard's browser tests: Debian's `chromium` driven by
//! its `chromedriver`, headless, over loopback HTTP.
//!
//! Why not `fantoccini` or `thirtyfour`: the tests need a dozen commands (a session, navigate,
//! find, click, type, read text and attributes, run a script, a screenshot, the window size); this
//! is those commands as JSON over the `reqwest` client the tests already build, with no second
//! HTTP stack, TLS configuration or WebDriver abstraction layer to keep in step.
//!
//! A missing `chromedriver` is a failure, never a skip: the message says to run `.ci/run`, which
//! installs `chromium` and `chromium-driver`.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The W3C element identifier key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A running `chromedriver`, shut down with its browsers when dropped.
pub struct Driver {
    child: Child,
    port: u16,
    http: reqwest::Client,
}

impl Driver {
    /// Starts `chromedriver` on a free loopback port and waits until it is ready.
    ///
    /// # Panics
    /// When `chromedriver` is not installed (run `.ci/run`) or never becomes ready.
    pub async fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap_or_else(|e| panic!("no free port for chromedriver: {e}"))
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            // Its own process group, holding the Chromium processes it starts, so that a driver
            // that will not shut down can be killed with all of them.
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "chromedriver could not start ({e}): the dashboard tests need Debian's chromium and \
                     chromium-driver; run `.ci/run` (it installs them) or \
                     `apt-get install -y --no-install-recommends chromium chromium-driver`"
                )
            });
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap_or_else(|e| panic!("HTTP client: {e}"));
        let mut driver = Self { child, port, http };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            // Ours must be the one answering: another process may have taken the port first.
            if let Ok(Some(status)) = driver.child.try_wait() {
                panic!("chromedriver exited before it was ready on {} ({status})", driver.url());
            }
            if let Ok(r) = driver.http.get(format!("{}/status", driver.url())).send().await
                && let Ok(body) = r.text().await
                && serde_json::from_str::<Value>(&body).is_ok_and(|v| v["value"]["ready"] == true)
            {
                return driver;
            }
            assert!(Instant::now() < deadline, "chromedriver never became ready on {}", driver.url());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A new headless Chromium window of `width` × `height` CSS pixels.
    pub async fn browser(&self, width: u32, height: u32) -> Browser {
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium(),
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-first-run", "--hide-scrollbars", format!("--window-size={width},{height}"),
                ],
            },
        } } });
        let answer =
            call(&self.http, reqwest::Method::POST, &format!("{}/session", self.url()), Some(&capabilities)).await;
        let session =
            answer["sessionId"].as_str().unwrap_or_else(|| panic!("chromedriver gave no session: {answer}")).to_owned();
        Browser { http: self.http.clone(), base: format!("{}/session/{session}", self.url()) }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Driver {
    /// Asks `chromedriver` to shut down, which quits every session's Chromium, and kills its
    /// whole process group only if it has not exited within seconds. Why not just kill it: a
    /// killed `chromedriver` leaves its browsers running, a dozen Chromium processes per test,
    /// eating the CPU of every test and benchmark after it. `Browser`'s own close cannot be
    /// relied on: it is sent from a task that the test's runtime usually drops unrun.
    fn drop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            // Already gone: the port may be someone else's now.
            return;
        }
        let _ = shutdown(self.port);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Still running, so its process group (its pid) cannot have been reused.
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// `GET /shutdown` on a `chromedriver`, every step bounded; the answer comes once its sessions
/// are gone.
fn shutdown(port: u16) -> std::io::Result<()> {
    use std::io::{Read, Write};
    let limit = Some(Duration::from_secs(10));
    let mut stream =
        std::net::TcpStream::connect_timeout(&(std::net::Ipv4Addr::LOCALHOST, port).into(), Duration::from_secs(2))?;
    stream.set_write_timeout(limit)?;
    stream.set_read_timeout(limit)?;
    stream.write_all(b"GET /shutdown HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
    stream.read_to_end(&mut Vec::new()).map(drop)
}

/// Where Chromium is: Debian's `/usr/bin/chromium`, or the first `chromium` on the `PATH`.
fn chromium() -> String {
    for candidate in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if std::path::Path::new(candidate).exists() {
            return candidate.to_owned();
        }
    }
    "chromium".to_owned()
}

/// One WebDriver command; the answer's `value`. Panics on a WebDriver error, naming it.
async fn call(http: &reqwest::Client, method: reqwest::Method, url: &str, body: Option<&Value>) -> Value {
    let mut request = http.request(method, url);
    if let Some(body) = body {
        request = request.header(reqwest::header::CONTENT_TYPE, "application/json").body(body.to_string());
    }
    let response = request.send().await.unwrap_or_else(|e| panic!("WebDriver {url}: {e}"));
    let text = response.text().await.unwrap_or_else(|e| panic!("WebDriver {url}: {e}"));
    let value: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("WebDriver {url}: {e}: {text}"));
    let value = value["value"].clone();
    if let Some(error) = value.get("error").and_then(Value::as_str) {
        panic!("WebDriver {url}: {error}: {}", value["message"]);
    }
    value
}

/// A browser window (a WebDriver session), closed when dropped.
pub struct Browser {
    http: reqwest::Client,
    base: String,
}

/// An element of the current page.
#[derive(Debug, Clone)]
pub struct Element(String);

impl Browser {
    async fn post(&self, path: &str, body: &Value) -> Value {
        call(&self.http, reqwest::Method::POST, &format!("{}{path}", self.base), Some(body)).await
    }

    async fn get(&self, path: &str) -> Value {
        call(&self.http, reqwest::Method::GET, &format!("{}{path}", self.base), None).await
    }

    /// Opens `url` and waits for it to load.
    pub async fn goto(&self, url: &str) {
        self.post("/url", &json!({ "url": url })).await;
    }

    /// The address of the page shown.
    pub async fn url(&self) -> String {
        self.get("/url").await.as_str().unwrap_or_default().to_owned()
    }

    /// Every element matching the CSS `selector`.
    pub async fn find_all(&self, selector: &str) -> Vec<Element> {
        let found = self.post("/elements", &json!({ "using": "css selector", "value": selector })).await;
        found
            .as_array()
            .map(|all| all.iter().filter_map(|e| e[ELEMENT].as_str().map(|id| Element(id.to_owned()))).collect())
            .unwrap_or_default()
    }

    /// The first element matching `selector`, waiting up to `within` for it to appear.
    ///
    /// # Panics
    /// When none appears in time.
    pub async fn wait_for(&self, selector: &str, within: Duration) -> Element {
        let deadline = Instant::now() + within;
        loop {
            if let Some(first) = self.find_all(selector).await.into_iter().next() {
                return first;
            }
            assert!(
                Instant::now() < deadline,
                "no {selector} within {within:?} on {}: {}",
                self.url().await,
                self.execute("return document.documentElement.outerHTML;", json!([])).await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `script` (a function body returning a value) returns `true`.
    ///
    /// # Panics
    /// When it does not in time.
    pub async fn wait_until(&self, script: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while self.execute(script, json!([])).await != Value::Bool(true) {
            assert!(
                Instant::now() < deadline,
                "`{script}` never held within {within:?}: {}",
                self.text_of("body").await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The visible text of the first element matching `selector` (empty when there is none),
    /// read in one step in the page (a live refresh cannot make it stale halfway).
    pub async fn text_of(&self, selector: &str) -> String {
        let script = "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';";
        self.execute(script, json!([selector])).await.as_str().unwrap_or_default().to_owned()
    }

    /// An element's visible text.
    pub async fn text(&self, element: &Element) -> String {
        self.get(&format!("/element/{}/text", element.0)).await.as_str().unwrap_or_default().to_owned()
    }

    /// An element's attribute or property `name`.
    pub async fn attribute(&self, element: &Element, name: &str) -> Option<String> {
        self.get(&format!("/element/{}/attribute/{name}", element.0)).await.as_str().map(str::to_owned)
    }

    /// Clicks an element.
    pub async fn click(&self, element: &Element) {
        self.post(&format!("/element/{}/click", element.0), &json!({})).await;
    }

    /// Types `text` into an element.
    pub async fn type_into(&self, element: &Element, text: &str) {
        self.post(&format!("/element/{}/value", element.0), &json!({ "text": text })).await;
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page; its return value.
    pub async fn execute(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", &json!({ "script": script, "args": args })).await
    }

    /// Runs an asynchronous `script`: it calls `arguments[arguments.length - 1]` with its result.
    pub async fn execute_async(&self, script: &str, args: Value) -> Value {
        self.post("/execute/async", &json!({ "script": script, "args": args })).await
    }

    /// Resizes the window to `width` × `height`.
    pub async fn resize(&self, width: u32, height: u32) {
        self.post("/window/rect", &json!({ "width": width, "height": height })).await;
    }

    /// A PNG of the viewport, base64 as WebDriver sends it.
    pub async fn screenshot_base64(&self) -> String {
        self.get("/screenshot").await.as_str().unwrap_or_default().to_owned()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The driver ends with the test anyway; this just frees the browser early when possible.
        let http = self.http.clone();
        let base = self.base.clone();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let _ = http.delete(base).send().await;
            });
        }
    }
}
