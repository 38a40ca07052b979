//! Headless Chromium for the browser tests, driven through chromedriver's WebDriver API (Debian's
//! `chromium` and `chromium-driver`): navigation, the element commands a user's hands stand for
//! (type, click), scripts, screenshots, the page's network requests (Chromium's performance
//! log) and an axe-core accessibility check.

use serde_json::{Value, json};
use std::process::Stdio;

/// The WebDriver key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn tool(name: &str) -> Option<std::path::PathBuf> {
    ["/usr/bin", "/usr/local/bin"].iter().map(|d| std::path::Path::new(d).join(name)).find(|p| p.exists())
}

/// chromedriver on a free port with one browser session, killed when dropped.
pub struct Driver {
    child: tokio::process::Child,
    base: String,
    http: reqwest::Client,
    session: String,
}

impl Driver {
    pub async fn start() -> Option<Driver> {
        Driver::start_with(true).await
    }

    /// A browser with JavaScript on or off (Chromium's content setting: pages run no script;
    /// the WebDriver commands still work).
    pub async fn start_with(javascript: bool) -> Option<Driver> {
        let (Some(driver), Some(chromium)) = (tool("chromedriver"), tool("chromium")) else {
            crate::harness::cannot_run("chromium and chromium-driver are not installed");
            return None;
        };
        let port = crate::durability::free_port();
        let child = tokio::process::Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        for _ in 0..100 {
            if http.get(format!("{base}/status")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let mut options = json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1024,900"]
        });
        if !javascript {
            options["prefs"] = json!({"profile.managed_default_content_settings.javascript": 2});
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": options,
            "goog:loggingPrefs": {"performance": "ALL"}
        }}});
        let res: Value = http.post(format!("{base}/session")).json(&caps).send().await.unwrap().json().await.unwrap();
        let session = res["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {res}")).to_string();
        Some(Driver { child, base, http, session })
    }

    pub async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let req = self.http.request(method, url);
        let req = if body.is_null() { req } else { req.json(&body) };
        let res: Value = req.send().await.unwrap().json().await.unwrap();
        assert!(!res["value"]["error"].is_string(), "{path}: {res}");
        res["value"].clone()
    }

    pub async fn go(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", json!({ "url": url })).await;
    }

    pub async fn url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", Value::Null).await.as_str().unwrap().to_string()
    }

    /// Runs `script` (async: its last argument is the callback) in the page.
    pub async fn run(&self, script: &str, args: Value) -> Value {
        self.call(reqwest::Method::POST, "/execute/async", json!({ "script": script, "args": args })).await
    }

    /// Waits until the page's URL starts with `prefix`.
    pub async fn wait_for_url(&self, prefix: &str) -> String {
        for _ in 0..200 {
            let url = self.url().await;
            if url.starts_with(prefix) {
                return url;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the browser never reached {prefix} (at {})", self.url().await);
    }

    /// The elements matching a CSS selector.
    pub async fn all(&self, css: &str) -> Vec<String> {
        let found = self.call(reqwest::Method::POST, "/elements", json!({"using": "css selector", "value": css})).await;
        found
            .as_array()
            .unwrap_or_else(|| panic!("{css}: {found}"))
            .iter()
            .map(|e| e[ELEMENT].as_str().unwrap_or_else(|| panic!("{e}")).to_string())
            .collect()
    }

    /// The one element matching a CSS selector (panics with the page's source if there is none).
    pub async fn find(&self, css: &str) -> String {
        match self.all(css).await.into_iter().next() {
            Some(e) => e,
            None => panic!("no {css} in {}", self.source().await),
        }
    }

    /// Types `text` into the element as a keyboard does.
    pub async fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.call(reqwest::Method::POST, &format!("/element/{e}/clear"), json!({})).await;
        self.call(reqwest::Method::POST, &format!("/element/{e}/value"), json!({ "text": text })).await;
    }

    /// Clicks the element (a submit button waits for the next page to load).
    pub async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.call(reqwest::Method::POST, &format!("/element/{e}/click"), json!({})).await;
    }

    /// The element's rendered text.
    pub async fn text(&self, css: &str) -> String {
        let e = self.find(css).await;
        self.call(reqwest::Method::GET, &format!("/element/{e}/text"), Value::Null).await.as_str().unwrap().into()
    }

    pub async fn source(&self) -> String {
        self.call(reqwest::Method::GET, "/source", Value::Null).await.as_str().unwrap_or_default().to_string()
    }

    /// The `data-message-id`s shown on the page, in order.
    pub async fn message_ids(&self) -> Vec<String> {
        let mut ids = Vec::new();
        for e in self.all("[data-message-id]").await {
            let id =
                self.call(reqwest::Method::GET, &format!("/element/{e}/attribute/data-message-id"), Value::Null).await;
            ids.push(id.as_str().unwrap_or_default().to_string());
        }
        ids
    }

    /// Saves a PNG of the viewport as `target/tmp/ui-screenshots/<name>.png` (a test artifact).
    pub async fn screenshot(&self, name: &str) {
        use base64::Engine;
        let png = self.call(reqwest::Method::GET, "/screenshot", Value::Null).await;
        let bytes = base64::engine::general_purpose::STANDARD.decode(png.as_str().unwrap()).unwrap();
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), bytes).unwrap();
    }

    /// Every URL the browser's pages requested since the last call (Chromium's performance log).
    pub async fn requests(&self) -> Vec<String> {
        let log = self.call(reqwest::Method::POST, "/se/log", json!({"type": "performance"})).await;
        log.as_array()
            .unwrap()
            .iter()
            .filter_map(|entry| serde_json::from_str::<Value>(entry["message"].as_str()?).ok())
            .filter(|m| m["message"]["method"] == "Network.requestWillBeSent")
            .filter_map(|m| m["message"]["params"]["request"]["url"].as_str().map(str::to_string))
            .collect()
    }

    /// axe-core's critical and serious violations on the current page (`[]` when none).
    pub async fn accessibility_violations(&self) -> Value {
        let axe = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/node_modules/axe-core/axe.min.js");
        let Ok(source) = std::fs::read_to_string(&axe) else {
            crate::harness::cannot_run("axe-core is not installed (cd tests/sdk && npm ci)");
            return json!([]);
        };
        let script = format!(
            "const done = arguments[arguments.length - 1];\n{source}\n\
             axe.run(document, {{ resultTypes: ['violations'] }}).then((r) => done(r.violations\
             .filter((v) => v.impact === 'critical' || v.impact === 'serious')\
             .map((v) => ({{ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.html) }}))),\
             (e) => done(String(e)));"
        );
        self.run(&script, json!([])).await
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
