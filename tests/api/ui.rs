//! The bundled UI (`[ui]`) driven as a browser without JavaScript does it: pages fetched,
//! forms read from the HTML and posted to their action, redirects followed with a cookie jar.

use crate::both_backends;
use crate::harness::{Db, TestApp};
use crate::selfservice::{Jar, PASSWORD, location};
use tessera::config::fallback;

fn unescape(s: &str) -> String {
    s.replace("&#x2f;", "/")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let tag = format!(" {tag}");
    let key = format!(" {name}=\"");
    let start = tag.find(&key)? + key.len();
    let end = tag[start..].find('"')? + start;
    Some(unescape(&tag[start..end]))
}

/// The page's form: its action and the fields a browser would send (hidden inputs and the
/// values given), plus the submit buttons as `name=value`.
struct HtmlForm {
    action: String,
    hidden: Vec<(String, String)>,
    inputs: Vec<String>,
    buttons: Vec<(String, String)>,
}

fn form_of(html: &str) -> HtmlForm {
    let form_tag = &html[html.find("<form ").expect("a form")..];
    let action = attr(&form_tag[..form_tag.find('>').unwrap()], "action").unwrap();
    let mut hidden = Vec::new();
    let mut inputs = Vec::new();
    for part in form_tag.split("<input ").skip(1) {
        let tag = &part[..part.find('>').unwrap()];
        let name = attr(tag, "name").unwrap_or_default();
        if attr(tag, "type").as_deref() == Some("hidden") {
            hidden.push((name, attr(tag, "value").unwrap_or_default()));
        } else {
            inputs.push(name);
        }
    }
    let buttons = form_tag
        .split("<button ")
        .skip(1)
        .map(|part| {
            let tag = &part[..part.find('>').unwrap()];
            (attr(tag, "name").unwrap_or_default(), attr(tag, "value").unwrap_or_default())
        })
        .collect();
    HtmlForm { action, hidden, inputs, buttons }
}

async fn page(t: &TestApp, jar: &mut Jar, url: &str) -> (String, String) {
    let mut url = url.to_string();
    for _ in 0..6 {
        let res = jar.send(t.http.get(&url)).await;
        if res.status().is_redirection() {
            url = url::Url::parse(&url).unwrap().join(&location(&res)).unwrap().to_string();
            continue;
        }
        assert_eq!(res.status(), 200, "{url}");
        return (url, res.text().await.unwrap());
    }
    panic!("too many redirects from {url}");
}

async fn post(t: &TestApp, jar: &mut Jar, form: &HtmlForm, fields: &[(&str, &str)]) -> String {
    let mut body: Vec<(String, String)> = form.hidden.clone();
    body.extend(fields.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let res = jar.send(t.http.post(&form.action).form(&body)).await;
    assert!(res.status().is_redirection(), "{} {}", res.status(), res.text().await.unwrap_or_default());
    url::Url::parse(&form.action).unwrap().join(&location(&res)).unwrap().to_string()
}

/// The UI as `serve --dev` sets it up, every UI URL left to the UI's defaults.
pub(crate) fn with_ui(c: &mut tessera::config::Config) {
    tessera::app::apply_dev_ui_defaults(c, |_| false);
    for (name, url) in [
        ("login", &mut c.selfservice.flows.login.ui_url),
        ("registration", &mut c.selfservice.flows.registration.ui_url),
        ("error", &mut c.selfservice.flows.error.ui_url),
    ] {
        *url = fallback(name);
    }
    c.selfservice.default_browser_return_url = None;
}

/// Every URL in the page's `src`, `href` and `action` attributes.
fn urls_in(html: &str) -> Vec<String> {
    ["src=\"", "href=\"", "action=\""]
        .iter()
        .flat_map(|key| html.split(key).skip(1).map(|p| unescape(&p[..p.find('"').unwrap()])))
        .collect()
}

async fn sign_up_out_and_in_without_javascript(db: Db) {
    let t = TestApp::builder(db).config(with_ui).build().await;
    let ui = format!("{}/ui", t.public);
    let mut jar = Jar::default();
    // A page without a flow starts one, which comes back to the page.
    let (url, html) = page(&t, &mut jar, &format!("{ui}/registration")).await;
    assert!(url.starts_with(&format!("{ui}/registration?flow=")), "{url}");
    assert!(html.contains("<html lang=\"en\">"));
    assert!(html.contains("<link rel=\"stylesheet\" href=\"/ui/style.css\">"));
    let form = form_of(&html);
    assert!(form.action.starts_with(&format!("{}/self-service/registration?flow=", t.public)));
    assert!(form.hidden.iter().any(|(k, _)| k == "csrf_token"));
    assert!(form.inputs.contains(&"traits.email".to_string()), "{html}");
    assert!(form.buttons.contains(&("method".into(), "profile".into())));
    // Step one (traits), step two (password): then signed in and welcomed.
    let next = post(&t, &mut jar, &form, &[("traits.email", "ui@example.org"), ("method", "profile")]).await;
    let (_, html) = page(&t, &mut jar, &next).await;
    let form = form_of(&html);
    assert!(form.inputs.contains(&"password".to_string()), "{html}");
    let done = post(&t, &mut jar, &form, &[("password", PASSWORD), ("method", "password")]).await;
    assert_eq!(done, format!("{ui}/welcome"));
    let (_, html) = page(&t, &mut jar, &done).await;
    assert!(html.contains("You are signed in as ui@example.org."), "{html}");
    let logout = html
        .split("<a href=\"")
        .skip(1)
        .map(|p| unescape(&p[..p.find('"').unwrap()]))
        .find(|h| h.contains("/self-service/logout?token="))
        .expect("a sign-out link");
    let res = jar.send(t.http.get(&logout)).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), format!("{ui}/login"));
    let (_, html) = page(&t, &mut jar, &format!("{ui}/welcome")).await;
    assert!(html.contains("You are not signed in."));

    // A wrong password shows 4000006; the right one signs in.
    let (_, html) = page(&t, &mut jar, &format!("{ui}/login")).await;
    let form = form_of(&html);
    assert!(form.inputs.contains(&"identifier".to_string()) && form.inputs.contains(&"password".to_string()));
    let again = post(
        &t,
        &mut jar,
        &form,
        &[("identifier", "ui@example.org"), ("password", "wrong-password-1"), ("method", "password")],
    )
    .await;
    let (_, html) = page(&t, &mut jar, &again).await;
    assert!(html.contains("data-message-id=\"4000006\""), "{html}");
    let form = form_of(&html);
    let done =
        post(&t, &mut jar, &form, &[("identifier", "ui@example.org"), ("password", PASSWORD), ("method", "password")])
            .await;
    let (_, html) = page(&t, &mut jar, &done).await;
    assert!(html.contains("You are signed in as ui@example.org."));
    // A second browser signs in; the first one lists both sessions and signs the other out.
    let mut other = Jar::default();
    let (_, html) = page(&t, &mut other, &format!("{ui}/login")).await;
    let form = form_of(&html);
    let fields = [("identifier", "ui@example.org"), ("password", PASSWORD), ("method", "password")];
    let done = post(&t, &mut other, &form, &fields).await;
    assert!(page(&t, &mut other, &done).await.1.contains("You are signed in"));
    let (_, html) = page(&t, &mut jar, &format!("{ui}/sessions")).await;
    assert_eq!(html.matches("<li>").count(), 2, "{html}");
    assert_eq!(html.matches("This device").count(), 1);
    let revoke = form_of(&html);
    assert!(revoke.action.ends_with("/revoke"), "{}", revoke.action);
    let back = post(&t, &mut jar, &revoke, &[]).await;
    assert_eq!(back, format!("{ui}/sessions"));
    assert!(page(&t, &mut other, &format!("{ui}/welcome")).await.1.contains("You are not signed in."));
    assert!(page(&t, &mut jar, &format!("{ui}/welcome")).await.1.contains("You are signed in"));
    // Without the CSRF token nothing is signed out.
    let res = jar.send(t.http.post(&revoke.action).form(&[("csrf_token", "forged")])).await;
    assert_eq!(res.status(), 303, "browsers see the error page");
    assert!(location(&res).contains("/ui/error?id="), "{}", location(&res));

    // Stored errors have a page; the stylesheet is served here.
    let (_, html) = page(&t, &mut jar, &format!("{ui}/error?id=stub:500")).await;
    assert!(html.contains("Something went wrong (500)"));
    let css = t.http.get(format!("{ui}/style.css")).send().await.unwrap();
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
}
both_backends!(sign_up_out_and_in_without_javascript);

async fn no_ui_unless_enabled(db: Db) {
    let t = TestApp::new(db).await;
    for page in ["login", "welcome", "sessions", "style.css"] {
        assert_eq!(t.http.get(format!("{}/ui/{page}", t.public)).send().await.unwrap().status(), 404);
    }
}
both_backends!(no_ui_unless_enabled);

async fn webauthn_nodes_call_the_helper_script(db: Db) {
    let t = TestApp::builder(db)
        .config(|c| {
            with_ui(c);
            c.selfservice.methods.passkey.enabled = true;
            c.selfservice.methods.passkey.config.rp.id = Some("localhost".into());
            c.selfservice.methods.passkey.config.rp.display_name = Some("tessera".into());
            c.selfservice.methods.passkey.config.rp.origins = vec!["http://localhost".into()];
        })
        .build()
        .await;
    let mut jar = Jar::default();
    let (_, html) = page(&t, &mut jar, &format!("{}/ui/login", t.public)).await;
    assert!(html.contains("data-trigger=\"oryPasskeyLogin\""), "{html}");
    assert!(html.contains("data-onload-trigger=\"oryPasskeyLoginAutocompleteInit\""), "{html}");
    assert!(html.contains("window.addEventListener(\"load\""));
    // The helper comes from this server, as everything the pages load.
    let script = html.split("<script ").nth(1).map(|s| s[..s.find('>').unwrap()].to_string()).unwrap_or_default();
    let src = attr(&script, "src").unwrap_or_default();
    assert!(src.starts_with(&format!("{}/", t.public)), "{script}");
    let urls = urls_in(&html);
    assert!(urls.len() >= 3, "{urls:?}");
    for u in urls {
        assert!(u.starts_with(&format!("{}/", t.public)) || u.starts_with('/'), "{u}: nothing from another origin");
    }
}
both_backends!(webauthn_nodes_call_the_helper_script);

/// A page opened without a usable flow: a missing or unknown flow starts a new one with what
/// the page was given (`return_to`, `refresh`, …); another browser's flow is an error page, not
/// a new start (a browser without cookies would loop).
async fn pages_start_over_or_explain(db: Db) {
    let t = TestApp::builder(db).config(with_ui).build().await;
    let ui = format!("{}/ui", t.public);
    let start = format!("{}/self-service/login/browser", t.public);
    let query = |to: &str| -> Vec<(String, String)> {
        url::Url::parse(to).unwrap().query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
    };
    let given = "return_to=https%3A%2F%2Fapp.example%2Fafter&refresh=true";
    let res = t.http.get(format!("{ui}/login?{given}")).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let to = location(&res);
    assert!(to.starts_with(&format!("{start}?")), "{to}");
    let expected = vec![("return_to".into(), "https://app.example/after".into()), ("refresh".into(), "true".into())];
    assert_eq!(query(&to), expected);
    let res = t.http.get(format!("{ui}/login?flow={}&{given}", uuid::Uuid::new_v4())).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(query(&location(&res)), expected, "an unknown flow starts over");

    let mut jar = Jar::default();
    let (url, _) = page(&t, &mut jar, &format!("{ui}/login")).await;
    let res = t.http.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 303, "another browser (no CSRF cookie)");
    assert!(location(&res).starts_with(&format!("{ui}/error?id=")), "{}", location(&res));
    let (_, html) = page(&t, &mut Jar::default(), &location(&res)).await;
    assert!(html.contains("Something went wrong (403)"), "{html}");
}
both_backends!(pages_start_over_or_explain);
