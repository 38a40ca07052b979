//! Tokenized sessions: `whoami?tokenize_as=<template>` answers a JWT signed with the template's
//! key, checked here by an independent JOSE implementation (`tests/peers/jose_peer.py`, PyJWT
//! and `cryptography`, which also made the keys).

use crate::both_backends;
use crate::harness::{Db, TestApp, cannot_run};
use crate::sessions::{issue, new_identity};
use base64::Engine as _;
use serde_json::{Value, json};
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;
use tessera::config::{Dur, SubjectSource, TokenizerTemplate};

const PEER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/jose_peer.py");

/// Verifies `token` with the public half of `jwk`: `Ok({header, claims})`, or the verifier's reason.
fn verify(jwk: &Value, token: &str) -> Result<Value, String> {
    let mut child =
        Command::new("python3").args([PEER, "verify"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(json!({"jwk": jwk, "token": token}).to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    if out.status.success() { Ok(serde_json::from_str(&stdout).unwrap()) } else { Err(stdout) }
}

fn template(jwks_url: String, ttl: Option<u64>, mapper: Option<String>, subject: SubjectSource) -> TokenizerTemplate {
    TokenizerTemplate {
        ttl: Dur(Duration::from_secs(ttl.unwrap_or(60))),
        claims_mapper_url: mapper,
        jwks_url,
        subject_source: subject,
    }
}

async fn tokenized_sessions(db: Db) {
    let ok = Command::new("python3").args(["-c", "import jwt, cryptography"]).status().is_ok_and(|s| s.success());
    if !ok {
        cannot_run("python3 with PyJWT and cryptography (pip install pyjwt cryptography)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new("python3").args([PEER, "keys"]).arg(dir.path()).status().unwrap();
    assert!(status.success());
    let path = |name: &str| dir.path().join(name).display().to_string();
    let jwk = |name: &str| -> Value {
        let set: Value =
            serde_json::from_str(&std::fs::read_to_string(path(&format!("{name}.json"))).unwrap()).unwrap();
        set["keys"][0].clone()
    };
    let mapper = "local claims = std.extVar('claims');\nlocal session = std.extVar('session');\n\
                  { claims: { sub: 'cannot be overwritten', email: session.identity.traits.email,\n\
                  aal: session.authenticator_assurance_level, iss_seen: claims.iss } }\n";
    std::fs::write(path("mapper.jsonnet"), mapper).unwrap();
    std::fs::write(path("no-claims.jsonnet"), "{ other: 1 }").unwrap();
    std::fs::write(path("broken.json"), "{\"keys\": [{\"kty\": \"EC\"").unwrap();
    let es512_b64 = base64::engine::general_purpose::STANDARD.encode(std::fs::read(path("es512.json")).unwrap());
    let file = |name: &str| format!("file://{}", path(name));
    let templates = [
        ("es256", template(file("es256.json"), Some(600), Some(file("mapper.jsonnet")), SubjectSource::Id)),
        ("es512", template(format!("base64://{es512_b64}"), None, None, SubjectSource::Id)),
        ("rs256", template(file("rs256.json"), None, None, SubjectSource::Id)),
        ("eddsa", template(file("eddsa.json"), None, None, SubjectSource::ExternalId)),
        ("broken", template(file("broken.json"), None, None, SubjectSource::Id)),
        ("absent", template(file("absent.json"), None, None, SubjectSource::Id)),
        ("no-claims", template(file("es256.json"), None, Some(file("no-claims.jsonnet")), SubjectSource::Id)),
    ];
    let t = TestApp::builder(db)
        .config(move |c| {
            c.feature_flags.cacheable_sessions = true;
            for (name, tpl) in templates {
                c.session.whoami.tokenizer.templates.insert(name.into(), tpl);
            }
        })
        .build()
        .await;
    let identity = new_identity(&t, "jwt@example.org").await;
    let token = issue(&t, &identity).await.1;
    let whoami = |template: &str| {
        let url = format!("{}/sessions/whoami?tokenize_as={template}", t.public);
        let req = t.http.get(url).header("X-Session-Token", &token);
        async move {
            let res = req.send().await.unwrap();
            let (status, headers) = (res.status().as_u16(), res.headers().clone());
            (status, headers, res.json::<Value>().await.unwrap())
        }
    };
    let issuer = t.app().state().config.public_base_url();

    let (status, headers, body) = whoami("es256").await;
    assert_eq!(status, 200, "{body}");
    assert!(headers.get("ory-session-cache-for").is_none(), "a tokenized answer is not cacheable");
    assert_eq!(headers["x-kratos-authenticated-identity-id"].to_str().unwrap(), identity.id.to_string());
    assert_eq!(body["identity"]["id"], json!(identity.id), "the session is still there");
    let jws = body["tokenized"].as_str().unwrap().to_string();
    let verified = verify(&jwk("es256"), &jws).unwrap();
    assert_eq!(verified["header"], json!({"alg": "ES256", "kid": "kid-es256", "typ": "JWT"}));
    let claims = &verified["claims"];
    assert_eq!(claims["sub"], json!(identity.id), "the mapper cannot change the subject");
    assert_eq!(claims["sid"], body["id"]);
    assert_eq!(claims["iss"], json!(issuer));
    assert_eq!(claims["iss_seen"], json!(issuer), "the mapper sees the base claims");
    assert_eq!(claims["email"], "jwt@example.org");
    assert_eq!(claims["aal"], "aal1");
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 600);
    assert_eq!(claims["nbf"], claims["iat"]);
    assert!(uuid::Uuid::parse_str(claims["jti"].as_str().unwrap()).is_ok());
    // The verifier does refuse a token whose claims were changed.
    let mut parts: Vec<String> = jws.split('.').map(str::to_string).collect();
    let forged = json!({"sub": "someone-else", "exp": claims["exp"]});
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(forged.to_string());
    assert!(verify(&jwk("es256"), &parts.join(".")).is_err());
    // The same session and template: the same token while it is fresh.
    let (_, _, again) = whoami("es256").await;
    assert_eq!(again["tokenized"].as_str(), Some(jws.as_str()));

    for (name, alg) in [("es512", "ES512"), ("rs256", "RS256")] {
        let (status, _, body) = whoami(name).await;
        assert_eq!(status, 200, "{name}: {body}");
        let verified = verify(&jwk(name), body["tokenized"].as_str().unwrap()).unwrap();
        assert_eq!(verified["header"]["alg"], alg);
        assert_eq!(verified["claims"]["sub"], json!(identity.id));
        let c = &verified["claims"];
        assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 60, "ttl defaults to a minute");
        assert!(c.get("email").is_none());
    }

    // subject_source = external_id: refused without one, the external id once set.
    let (status, _, body) = whoami("eddsa").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["error"]["reason"],
        "The session's identity does not have an external ID set, but it is required for the subject claim."
    );
    let (status, _, _) = t
        .admin_json(
            reqwest::Method::PATCH,
            &format!("/admin/identities/{}", identity.id),
            Some(json!([{"op": "add", "path": "/external_id", "value": "ext-jwt-1"}])),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _, body) = whoami("eddsa").await;
    assert_eq!(status, 200, "{body}");
    let verified = verify(&jwk("eddsa"), body["tokenized"].as_str().unwrap()).unwrap();
    assert_eq!(verified["header"]["alg"], "EdDSA");
    assert_eq!(verified["claims"]["sub"], "ext-jwt-1");

    // Upstream's errors.
    for (name, status, reason) in [
        ("nope", 400, Some("Unable to find tokenizer template \"nope\".")),
        ("broken", 400, Some("failed to parse JWK set")),
        ("no-claims", 400, Some("Expected tokenizer JsonNet to return a claims object but it did not.")),
        ("absent", 500, None),
    ] {
        let (got, headers, body) = whoami(name).await;
        assert_eq!(got, status, "{name}: {body}");
        assert_eq!(body["error"]["reason"].as_str(), reason, "{name}: {body}");
        assert!(headers.get("x-kratos-authenticated-identity-id").is_none());
        assert!(body.get("tokenized").is_none());
        assert!(!body.to_string().contains(&*dir.path().display().to_string()), "no path is shown: {body}");
    }
    // An empty tokenize_as is an ordinary whoami.
    let (status, headers, body) = whoami("").await;
    assert_eq!(status, 200);
    assert!(body.get("tokenized").is_none());
    assert!(headers.get("ory-session-cache-for").is_some());
}
both_backends!(tokenized_sessions);
