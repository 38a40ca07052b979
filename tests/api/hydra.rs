//! The OAuth2 provider integration (`oauth2_provider`, `login_challenge`) against a real HTTP
//! process playing Ory Hydra's admin API (`tests/peers/http_peer.py`): login requests fetched,
//! `skip` honoured, challenges accepted with the session's subject and AMR, browsers sent back
//! to the provider, and its errors answered as Kratos answers them.

use crate::both_backends;
use crate::harness::{Db, TestApp};
use crate::hooks::Peer;
use crate::selfservice::{Jar, PASSWORD, api_flow, api_register, api_submit, csrf_of, get_json, json_of, location};
use reqwest::Method;
use serde_json::{Value, json};

const HYDRA: &str = "http://hydra.test/oauth2/auth";

fn session_hook(c: &mut tessera::config::Config) {
    c.selfservice.flows.registration.after.password.hooks =
        vec![tessera::config::HookConfig { hook: "session".into(), config: None }];
}

/// The accept requests Hydra received, oldest first.
async fn accepted(peer: &Peer) -> Vec<Value> {
    peer.requests().await.into_iter().filter(|r| r["path"].as_str().unwrap_or("").contains("/login/accept")).collect()
}

async fn whoami(t: &TestApp, jar: &Jar) -> Value {
    get_json(&t.http, format!("{}/sessions/whoami", t.public), Some(jar)).await
}

async fn oauth2_login_challenge(db: Db) {
    let Some(peer) = Peer::start().await else { return };
    let base = peer.base.clone();
    let t = TestApp::builder(db)
        .config(move |c| {
            c.oauth2_provider.url = Some(format!("{base}/"));
            c.oauth2_provider.headers.insert("X-Hydra-Key".into(), "hydra-secret".into());
            c.selfservice.allowed_return_urls.push("http://hydra.test/".into());
            session_hook(c);
        })
        .build()
        .await;
    api_register(&t, "hydra@example.org").await;

    // HTML: the login request is fetched (skip false: the flow re-authenticates), the flow
    // shows it, the password signs in and the browser goes back to the provider.
    let mut jar = Jar::default();
    let res = jar.send(t.http.get(format!("{}/self-service/login/browser?login_challenge=c-1", t.public))).await;
    assert_eq!(res.status(), 303);
    let id = crate::selfservice::flow_id_of(&location(&res));
    let flow = get_json(&t.http, format!("{}/self-service/login/flows?id={id}", t.public), Some(&jar)).await;
    assert_eq!(flow["oauth2_login_challenge"], "c-1", "{flow}");
    assert_eq!(flow["oauth2_login_request"]["client"]["client_id"], "app");
    assert_eq!(flow["oauth2_login_request"]["skip"], false);
    assert!(flow["oauth2_login_request"].get("session_id").is_none(), "null fields are left out");
    assert!(flow["request_url"].as_str().unwrap().contains("refresh=true"), "{}", flow["request_url"]);
    let res = jar
        .send(t.http.post(format!("{}/self-service/login?flow={id}", t.public)).form(&[
            ("csrf_token", csrf_of(&flow).as_str()),
            ("method", "password"),
            ("identifier", "hydra@example.org"),
            ("password", PASSWORD),
        ]))
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), format!("{HYDRA}?login_verifier=verifier-c-1"));
    let session = whoami(&t, &jar).await;
    assert_eq!(session["active"], true, "signed in: {session}");
    let accepts = accepted(&peer).await;
    assert_eq!(accepts.len(), 1);
    let accept = &accepts[0];
    assert_eq!(accept["method"], "PUT");
    // The configured URL ends in `/`: no `//` in the path.
    assert_eq!(accept["path"], "/admin/oauth2/auth/requests/login/accept?login_challenge=c-1");
    assert_eq!(accept["headers"]["x-hydra-key"], "hydra-secret");
    assert_eq!(
        accept["body"],
        json!({"subject": session["identity"]["id"], "identity_provider_session_id": session["id"],
               "remember": true, "remember_for": 86400, "amr": ["password"]})
    );
    let gets = peer.requests().await.into_iter().filter(|r| r["method"] == "GET").count();
    assert!(gets >= 2, "fetched at creation and when the flow was read");

    // Signed in, and the provider may skip: accepted at once with this session.
    let res = jar.send(t.http.get(format!("{}/self-service/login/browser?login_challenge=skip-2", t.public))).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), format!("{HYDRA}?login_verifier=verifier-skip-2"));
    let accepts = accepted(&peer).await;
    assert_eq!(accepts.len(), 2);
    assert_eq!(accepts[1]["body"]["identity_provider_session_id"], session["id"]);
    // … a JSON client gets the usual 400 (the request was accepted, as in Kratos).
    let res = jar
        .send(
            t.http
                .get(format!("{}/self-service/login/browser?login_challenge=skip-3", t.public))
                .header("Accept", "application/json"),
        )
        .await;
    assert_eq!(res.status(), 400);
    assert_eq!(res.headers()["ory-error-id"], "session_already_available");
    // Registration while signed in: skip → accepted; no skip → sign in again (302 to login).
    let res =
        jar.send(t.http.get(format!("{}/self-service/registration/browser?login_challenge=skip-4", t.public))).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), format!("{HYDRA}?login_verifier=verifier-skip-4"));
    let res = jar
        .send(t.http.get(format!("{}/self-service/registration/browser?login_challenge=c-5&foo=bar", t.public)))
        .await;
    assert_eq!(res.status(), 302);
    assert_eq!(
        location(&res),
        format!("{}self-service/login/browser?login_challenge=c-5&foo=bar", t.app().state().config.public_base_url())
    );

    // A browser app (SPA): the flow JSON carries the login request; the sign-in answers 422
    // with Hydra's URL, and sets the session cookie.
    let mut spa = Jar::default();
    let res = spa
        .send(
            t.http
                .get(format!("{}/self-service/login/browser?login_challenge=c-6", t.public))
                .header("Accept", "application/json"),
        )
        .await;
    let (status, flow) = json_of(res).await;
    assert_eq!(status, 200, "{flow}");
    assert_eq!(flow["oauth2_login_request"]["challenge"], "c-6");
    let res = spa
        .send(t.http.post(format!("{}/self-service/login?flow={}", t.public, flow["id"].as_str().unwrap())).json(
            &json!({"csrf_token": csrf_of(&flow), "method": "password", "identifier": "hydra@example.org", "password": PASSWORD}),
        ))
        .await;
    let (status, body) = json_of(res).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["id"], "browser_location_change_required");
    assert_eq!(body["redirect_browser_to"], format!("{HYDRA}?login_verifier=verifier-c-6"));
    assert_eq!(whoami(&t, &spa).await["active"], true);

    // SPA sign-up with the session hook: Hydra's URL is the last redirect_browser_to.
    let mut reg = Jar::default();
    let res = reg
        .send(
            t.http
                .get(format!("{}/self-service/registration/browser?login_challenge=c-7", t.public))
                .header("Accept", "application/json"),
        )
        .await;
    let (status, flow) = json_of(res).await;
    assert_eq!(status, 200, "{flow}");
    assert_eq!(flow["oauth2_login_challenge"], "c-7");
    assert!(flow.get("oauth2_login_request").is_none(), "not shown at creation, as Kratos");
    let res = reg
        .send(t.http.post(format!("{}/self-service/registration?flow={}", t.public, flow["id"].as_str().unwrap())).json(
            &json!({"csrf_token": csrf_of(&flow), "method": "password", "password": PASSWORD, "traits": {"email": "hydra-new@example.org"}}),
        ))
        .await;
    let (status, done) = json_of(res).await;
    assert_eq!(status, 200, "{done}");
    let items = done["continue_with"].as_array().unwrap();
    assert_eq!(
        items.last().unwrap(),
        &json!({"action": "redirect_browser_to", "redirect_browser_to": format!("{HYDRA}?login_verifier=verifier-c-7")})
    );
    assert_eq!(items.iter().filter(|i| i["action"] == "redirect_browser_to").count(), 1);
    let accepts = accepted(&peer).await;
    assert_eq!(accepts.last().unwrap()["body"]["subject"], done["identity"]["id"]);
    assert_eq!(accepts.last().unwrap()["body"]["amr"], json!(["password"]));

    // API flows keep the challenge without asking the provider, and never accept it.
    let before = peer.requests().await.len();
    let flow = api_flow(&t, "login", "?login_challenge=c-8").await;
    assert_eq!(flow["oauth2_login_challenge"], "c-8");
    assert!(flow.get("oauth2_login_request").is_none());
    let (status, body) = api_submit(
        &t,
        "login",
        &flow,
        json!({"method": "password", "identifier": "hydra@example.org", "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["session_token"].is_string());
    assert_eq!(peer.requests().await.len(), before, "the provider was not asked");

    // The provider's errors.
    for (challenge, status, code, hint) in [
        ("unknown-9", 400, 404, Some("Unknown login challenge.")),
        ("gone-10", 400, 410, None),
        ("down-11", 500, 501, Some("")),
    ] {
        let res = t
            .http
            .get(format!("{}/self-service/login/browser?login_challenge={challenge}", t.public))
            .header("Accept", "application/json")
            .send()
            .await
            .unwrap();
        let (got, body) = json_of(res).await;
        assert_eq!(got, status, "{challenge}: {body}");
        assert_eq!(body["error"]["reason"], "Unable to get OAuth 2.0 Login Challenge.");
        assert_eq!(body["error"]["details"]["status_code"], code);
        assert_eq!(body["error"]["details"].get("oauth2_error_hint").and_then(Value::as_str), hint, "{body}");
    }
    let res = t.get(&format!("{}/self-service/login/browser?login_challenge=", t.public)).await;
    assert_eq!(res.status(), 303, "HTML: the error page");
    let res = t.http.get(format!("{}/self-service/login/api?login_challenge=", t.public)).send().await.unwrap();
    let (status, body) = json_of(res).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["reason"], "the login_challenge parameter is present but empty");
    // A provider that refuses the accept: 500 with its hint.
    let mut late = Jar::default();
    let res = late
        .send(
            t.http
                .get(format!("{}/self-service/login/browser?login_challenge=noaccept-12", t.public))
                .header("Accept", "application/json"),
        )
        .await;
    let (_, flow) = json_of(res).await;
    let res = late
        .send(t.http.post(format!("{}/self-service/login?flow={}", t.public, flow["id"].as_str().unwrap())).json(
            &json!({"csrf_token": csrf_of(&flow), "method": "password", "identifier": "hydra@example.org", "password": PASSWORD}),
        ))
        .await;
    let (status, body) = json_of(res).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"]["reason"], "Unable to accept OAuth 2.0 Login Challenge.");
    assert_eq!(
        body["error"]["details"],
        json!({"status_code": 409, "oauth2_error_hint": "The login request was handled already."})
    );
    let (status, _, _) = t.admin_json(Method::GET, "/admin/identities", None).await;
    assert_eq!(status, 200);
}
both_backends!(oauth2_login_challenge);

/// `override_return_to`: the login flow returns to the provider's authorization request.
async fn oauth2_override_return_to(db: Db) {
    let Some(peer) = Peer::start().await else { return };
    let base = peer.base.clone();
    let t = TestApp::builder(db)
        .config(move |c| {
            c.oauth2_provider.url = Some(base);
            c.oauth2_provider.override_return_to = true;
            c.selfservice.allowed_return_urls.push("http://hydra.test/".into());
        })
        .build()
        .await;
    let res = t
        .http
        .get(format!(
            "{}/self-service/login/browser?login_challenge=c-20&return_to=https://elsewhere.example/",
            t.public
        ))
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    let (status, flow) = json_of(res).await;
    assert_eq!(status, 200, "{flow}");
    assert_eq!(flow["return_to"], format!("{HYDRA}?client_id=app&response_type=code&state=s-c-20"));
    assert_eq!(flow["refresh"], false, "no session: an ordinary sign-in");
}
both_backends!(oauth2_override_return_to);

/// A sign-up the provider started, with verification shown first: the browser verifies its
/// address (code by e-mail through the SMTP peer), then the login request is accepted with the
/// new session and the browser goes back to the provider, signed in.
async fn oauth2_challenge_after_verification(db: Db) {
    let Some(peer) = Peer::start().await else { return };
    let Some(smtp) = crate::courier::SmtpPeer::start(None, None).await else { return };
    let (base, port) = (peer.base.clone(), smtp.port);
    let t = TestApp::builder(db)
        .config(move |c| {
            c.oauth2_provider.url = Some(base);
            c.courier.smtp.connection_uri = format!("smtp://127.0.0.1:{port}/?disable_starttls=true");
            c.courier.worker.pull_wait = tessera::config::Dur(std::time::Duration::from_millis(50));
            c.selfservice.flows.verification.enabled = true;
            c.selfservice.flows.registration.after.password.hooks = ["show_verification_ui", "session"]
                .map(|h| tessera::config::HookConfig { hook: h.into(), config: None })
                .to_vec();
        })
        .build()
        .await;
    let mut jar = Jar::default();
    let res = jar
        .send(
            t.http
                .get(format!("{}/self-service/registration/browser?login_challenge=c-30", t.public))
                .header("Accept", "application/json"),
        )
        .await;
    let (_, flow) = json_of(res).await;
    let res = jar
        .send(t.http.post(format!("{}/self-service/registration?flow={}", t.public, flow["id"].as_str().unwrap())).json(
            &json!({"csrf_token": csrf_of(&flow), "method": "password", "password": PASSWORD, "traits": {"email": "verify-first@example.org"}}),
        ))
        .await;
    let (status, done) = json_of(res).await;
    assert_eq!(status, 200, "{done}");
    assert!(accepted(&peer).await.is_empty(), "verification comes first");
    let item =
        done["continue_with"].as_array().unwrap().iter().find(|i| i["action"] == "show_verification_ui").unwrap();
    let vflow = item["flow"]["id"].as_str().unwrap().to_string();
    let code = crate::recovery::code_in(&crate::recovery::mail_to(&smtp, "verify-first@example.org", 1).await);
    // The browser (HTML form) sends the code: 303 to the provider.
    let mut browser = jar.clone();
    browser.cookies.remove("ory_kratos_session");
    let vjson =
        get_json(&t.http, format!("{}/self-service/verification/flows?id={vflow}", t.public), Some(&browser)).await;
    let res = browser
        .send(t.http.post(format!("{}/self-service/verification?flow={vflow}", t.public)).form(&[
            ("csrf_token", csrf_of(&vjson).as_str()),
            ("method", "code"),
            ("code", code.as_str()),
        ]))
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), format!("{HYDRA}?login_verifier=verifier-c-30"));
    let accepts = accepted(&peer).await;
    assert_eq!(accepts.len(), 1);
    assert_eq!(accepts[0]["body"]["subject"], done["identity"]["id"]);
    assert_eq!(accepts[0]["body"]["identity_provider_session_id"], done["session"]["id"]);
    assert_eq!(whoami(&t, &browser).await["identity"]["id"], done["identity"]["id"], "signed in by the verification");
}
both_backends!(oauth2_challenge_after_verification);
