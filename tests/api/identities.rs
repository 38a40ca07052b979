//! Admin identity API: create, get, list, update, patch, batch, delete, credentials.

use crate::both_backends;
use crate::harness::{Db, TestApp};
use reqwest::Method;
use serde_json::{Value, json};

const BCRYPT_123456: &str = "$2a$04$ujIuzPKuqVFjxOj0jyaKouVA./Yyb/9dXsyVAK29fimgVTD0GRhde";

async fn create(t: &TestApp, body: Value) -> Value {
    let (status, _, created) = t.admin_json(Method::POST, "/admin/identities", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    created
}

async fn count(t: &TestApp) -> usize {
    let (status, _, list) = t.admin_json(Method::GET, "/admin/identities?page_size=500", None).await;
    assert_eq!(status, 200);
    list.as_array().unwrap().len()
}

async fn list_q(t: &TestApp, query: String) -> (u16, reqwest::header::HeaderMap, Value) {
    t.admin_json(Method::GET, &format!("/admin/identities?{query}"), None).await
}

async fn del_cred(t: &TestApp, id: &str, kind: &str, q: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    t.admin_json(Method::DELETE, &format!("/admin/identities/{id}/credentials/{kind}{q}"), None).await
}

async fn create_and_get(db: Db) {
    let t = TestApp::new(db).await;
    let (status, headers, created) = t
        .admin_json(
            Method::POST,
            "/admin/identities",
            Some(json!({
                "schema_id": "default",
                "traits": {"email": "Alice@Example.org", "name": {"first": "Alice"}},
                "metadata_public": {"plan": "pro"},
                "metadata_admin": {"note": 1},
                "external_id": "ext-alice",
                "credentials": {"password": {"config": {"password": "correct horse battery"}}}
            })),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(headers["location"].to_str().unwrap(), format!("{}/identities/{id}", t.admin.trim_end_matches('/')));
    assert_eq!(created["schema_id"], "default");
    assert!(created["schema_url"].as_str().unwrap().ends_with("/schemas/ZGVmYXVsdA"), "{created}");
    assert_eq!(created["state"], "active");
    assert!(created["state_changed_at"].is_string());
    assert_eq!(created["external_id"], "ext-alice");
    assert_eq!(created["metadata_public"], json!({"plan": "pro"}));
    assert_eq!(created["metadata_admin"], json!({"note": 1}));
    assert_eq!(created["organization_id"], Value::Null);
    let password = &created["credentials"]["password"];
    assert_eq!(password["type"], "password");
    assert_eq!(password["identifiers"], json!(["alice@example.org"]));
    assert!(password.get("config").is_none(), "config must not be shown: {created}");
    assert_eq!(created["credentials"]["code"]["identifiers"], json!(["alice@example.org"]));
    let va = &created["verifiable_addresses"][0];
    assert_eq!(
        (va["value"].as_str(), va["verified"].as_bool(), va["status"].as_str()),
        (Some("alice@example.org"), Some(false), Some("pending"))
    );
    assert_eq!(va["via"], "email");
    assert_eq!(created["recovery_addresses"][0]["value"], "alice@example.org");

    // GET returns the same identity; include_credential declassifies the password config.
    let (status, _, got) = t.admin_json(Method::GET, &format!("/admin/identities/{id}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(got["traits"], created["traits"]);
    assert_eq!(got["verifiable_addresses"], created["verifiable_addresses"]);
    assert!(got["credentials"]["password"].get("config").is_none());
    let (_, _, got) =
        t.admin_json(Method::GET, &format!("/admin/identities/{id}?include_credential=password"), None).await;
    let hash = got["credentials"]["password"]["config"]["hashed_password"].as_str().unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(tessera::hash::verify_blocking(b"correct horse battery", hash).unwrap());
    assert!(got["credentials"]["code"].get("config").is_none());

    // Read back from the store, an unset metadata_admin is null (create left it out).
    let (_, _, plain) =
        t.admin_json(Method::POST, "/admin/identities", Some(json!({"traits": {"email": "plain@example.org"}}))).await;
    assert!(plain.get("metadata_admin").is_none());
    let (_, _, plain) =
        t.admin_json(Method::GET, &format!("/admin/identities/{}", plain["id"].as_str().unwrap()), None).await;
    assert_eq!(plain["metadata_admin"], Value::Null);
    assert_eq!(
        t.admin_json(Method::GET, &format!("/admin/identities/{id}?include_credential=profile"), None).await.0,
        400
    );

    let (status, _, err) =
        t.admin_json(Method::GET, &format!("/admin/identities/{id}?include_credential=nope"), None).await;
    assert_eq!(status, 400);
    assert_eq!(err["error"]["reason"], "Invalid value `nope` for parameter `include_credential`.");

    let (status, _, by_ext) = t.admin_json(Method::GET, "/admin/identities/by/external/ext-alice", None).await;
    assert_eq!((status, by_ext["id"].as_str()), (200, Some(id.as_str())));
    let (status, _, _) = t.admin_json(Method::GET, "/admin/identities/by/external/nobody", None).await;
    assert_eq!(status, 404);

    for missing in [uuid::Uuid::new_v4().to_string(), "not-a-uuid".to_string()] {
        let (status, headers, err) = t.admin_json(Method::GET, &format!("/admin/identities/{missing}"), None).await;
        assert_eq!(status, 404);
        assert_eq!(err["error"]["code"], 404);
        assert_eq!(headers["ory-error-id"], "");
    }
}
both_backends!(create_and_get);

async fn create_errors_change_nothing(db: Db) {
    let t = TestApp::new(db).await;
    create(&t, json!({"traits": {"email": "taken@example.org"}, "external_id": "taken"})).await;
    let cases: Vec<(Value, u16, &str, &str)> = vec![
        (json!({"traits": {"email": "a@example.org"}, "schema_url": "x"}), 400, "message", "schema_url"),
        (json!({"traits": {"email": 5}}), 400, "reason", "I[#/traits/email]"),
        (json!({"traits": {"email": "b@example.org", "bar": 1}}), 400, "reason", "traits"),
        (
            json!({"schema_id": "does-not-exist", "traits": {}}),
            400,
            "reason",
            "Unable to find JSON Schema ID: does-not-exist",
        ),
        (
            json!({"traits": {"email": "c@example.org"}, "state": "sleeping"}),
            400,
            "reason",
            "identity state is not valid",
        ),
        (
            json!({"traits": {"email": "d@example.org"}, "credentials": {"password": {"config": {"hashed_password": "$unknown$abc"}}}}),
            400,
            "reason",
            "does not match any known hash format",
        ),
        (
            json!({"traits": {"email": "e@example.org"}, "credentials": {"password": {"config": {"hashed_password": "$2a$04$short"}}}}),
            400,
            "reason",
            "does not match any known hash format",
        ),
        (json!({"traits": {"email": "TAKEN@example.org"}}), 409, "reason", "conflicts with another identity"),
        (json!({"traits": {"email": "n@example.org"}, "metadata_public": {"k": "\u{0}"}}), 400, "reason", "NUL"),
        (json!({"traits": {"email": "f@example.org"}, "external_id": "taken"}), 409, "reason", "conflicts"),
    ];
    for (body, status, field, needle) in cases {
        let (got, _, err) = t.admin_json(Method::POST, "/admin/identities", Some(body.clone())).await;
        assert_eq!(got, status, "{body} → {err}");
        assert!(err["error"][field].as_str().unwrap_or_default().contains(needle), "{body} → {err}");
    }
    let res = t
        .http
        .post(format!("{}/admin/identities", t.admin))
        .header("content-type", "application/json")
        .body("{\"traits\": not json}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(count(&t).await, 1, "a refused create must store nothing");
}
both_backends!(create_errors_change_nothing);

async fn imports_keep_foreign_hashes_and_verified_addresses(db: Db) {
    let t = TestApp::new(db).await;
    let created = create(
        &t,
        json!({
            "traits": {"email": "imported@example.org"},
            "credentials": {
                "password": {"config": {"hashed_password": BCRYPT_123456}},
                "oidc": {"config": {"providers": [{"provider": "github", "subject": "12345", "use_auto_link": true}]}}
            },
            "verifiable_addresses": [
                {"value": "IMPORTED@example.org", "via": "email", "verified": true, "status": "completed"},
                {"value": "not-in-traits@example.org", "via": "email", "verified": true, "status": "completed"}
            ],
            "recovery_addresses": [{"value": "imported@example.org", "via": "email"}]
        }),
    )
    .await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["verifiable_addresses"].as_array().unwrap().len(), 1, "{created}");
    let va = &created["verifiable_addresses"][0];
    assert_eq!(va["verified"], true);
    assert_eq!(va["status"], "completed");
    assert!(va["verified_at"].is_string());
    assert_eq!(created["credentials"]["oidc"]["identifiers"], json!(["github:12345"]));

    let (_, _, got) = t
        .admin_json(
            Method::GET,
            &format!("/admin/identities/{id}?include_credential=password&include_credential=oidc"),
            None,
        )
        .await;
    assert_eq!(got["credentials"]["password"]["config"]["hashed_password"], BCRYPT_123456);
    assert!(tessera::hash::verify_blocking(b"123456", BCRYPT_123456).unwrap());
    assert_eq!(
        got["credentials"]["oidc"]["config"],
        json!({"providers": [{
            "initial_id_token": "", "initial_access_token": "", "initial_refresh_token": "",
            "subject": "12345", "provider": "github", "use_auto_link": true
        }]})
    );
    assert_eq!(got["verifiable_addresses"][0]["verified"], true);

    // The password migration hook flag is stored as Kratos stores it.
    let created = create(
        &t,
        json!({"traits": {"email": "migrate@example.org"}, "credentials": {"password": {"config": {"use_password_migration_hook": true}}}}),
    )
    .await;
    let (_, _, got) = t
        .admin_json(
            Method::GET,
            &format!("/admin/identities/{}?include_credential=password", created["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(got["credentials"]["password"]["config"]["use_password_migration_hook"], true);
}
both_backends!(imports_keep_foreign_hashes_and_verified_addresses);

async fn concurrent_creates_with_one_identifier(db: Db) {
    let t = TestApp::new(db).await;
    let requests = (0..100).map(|n| {
        let email = if n % 2 == 0 { "same@example.org".to_string() } else { "SAME@example.org".to_string() };
        let http = t.http.clone();
        let url = format!("{}/admin/identities", t.admin);
        async move {
            http.post(url)
                .json(&json!({"traits": {"email": email}, "credentials": {"password": {"config": {"hashed_password": BCRYPT_123456}}}}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    });
    let statuses = futures_util::future::join_all(requests).await;
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 99, "{statuses:?}");
    assert_eq!(count(&t).await, 1);
}
both_backends!(concurrent_creates_with_one_identifier);

async fn update_replaces(db: Db) {
    let t = TestApp::new(db).await;
    let created = create(
        &t,
        json!({"traits": {"email": "u@example.org"}, "metadata_public": {"a": 1}, "metadata_admin": {"b": 2}, "external_id": "u1",
               "credentials": {"password": {"config": {"hashed_password": BCRYPT_123456}}}}),
    )
    .await;
    let id = created["id"].as_str().unwrap();
    let path = format!("/admin/identities/{id}");
    let (status, _, updated) = t
        .admin_json(
            Method::PUT,
            &path,
            Some(json!({"schema_id": "default", "state": "inactive", "traits": {"email": "u2@example.org"}})),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["state"], "inactive");
    assert_ne!(updated["state_changed_at"], created["state_changed_at"]);
    assert_eq!(updated["metadata_public"], Value::Null);
    assert!(updated.get("metadata_admin").is_none());
    assert!(updated.get("external_id").is_none());
    assert_eq!(updated["credentials"]["password"]["identifiers"], json!(["u2@example.org"]));
    assert_eq!(updated["verifiable_addresses"][0]["value"], "u2@example.org");
    // The password survives a PUT without credentials.
    let (_, _, got) = t.admin_json(Method::GET, &format!("{path}?include_credential=password"), None).await;
    assert_eq!(got["credentials"]["password"]["config"]["hashed_password"], BCRYPT_123456);
    assert_eq!(got["traits"], json!({"email": "u2@example.org"}));

    // Invalid traits and states are refused and change nothing.
    let (status, _, _) = t
        .admin_json(
            Method::PUT,
            &path,
            Some(json!({"schema_id": "default", "state": "active", "traits": {"email": 1}})),
        )
        .await;
    assert_eq!(status, 400);
    let (status, _, _) = t
        .admin_json(
            Method::PUT,
            &path,
            Some(json!({"schema_id": "default", "state": "zzz", "traits": {"email": "x@example.org"}})),
        )
        .await;
    assert_eq!(status, 400);
    let (status, _, _) =
        t.admin_json(Method::PUT, &path, Some(json!({"schema_id": "nope", "state": "active", "traits": {}}))).await;
    assert_eq!(status, 400);
    let (_, _, after) = t.admin_json(Method::GET, &path, None).await;
    assert_eq!(after["traits"], json!({"email": "u2@example.org"}));
    assert_eq!(after["state"], "inactive");
    let res = t.http.put(format!("{}{path}", t.admin)).header("content-type", "application/json").send().await.unwrap();
    assert_eq!(res.status(), 400);
    let (status, _, _) = t
        .admin_json(
            Method::PUT,
            &format!("/admin/identities/{}", uuid::Uuid::new_v4()),
            Some(json!({"schema_id": "default", "state": "active", "traits": {}})),
        )
        .await;
    assert_eq!(status, 404);

    // Credentials in a PUT are imported (the password is replaced).
    let (status, _, _) = t
        .admin_json(
            Method::PUT,
            &path,
            Some(json!({"schema_id": "default", "state": "inactive", "traits": {"email": "u2@example.org"},
                        "credentials": {"password": {"config": {"password": "a new password"}}}})),
        )
        .await;
    assert_eq!(status, 200);
    let (_, _, got) = t.admin_json(Method::GET, &format!("{path}?include_credential=password"), None).await;
    let hash = got["credentials"]["password"]["config"]["hashed_password"].as_str().unwrap();
    assert!(tessera::hash::verify_blocking(b"a new password", hash).unwrap());

    // A conflicting identifier is a 409 and changes nothing.
    create(&t, json!({"traits": {"email": "other@example.org"}})).await;
    let (status, _, _) = t
        .admin_json(
            Method::PUT,
            &path,
            Some(json!({"schema_id": "default", "state": "active", "traits": {"email": "other@example.org"}})),
        )
        .await;
    assert_eq!(status, 409);
}
both_backends!(update_replaces);

async fn patch_rules(db: Db) {
    let t = TestApp::new(db).await;
    let created = create(
        &t,
        json!({"traits": {"email": "p@example.org"}, "credentials": {"password": {"config": {"hashed_password": BCRYPT_123456}}}}),
    )
    .await;
    let path = format!("/admin/identities/{}", created["id"].as_str().unwrap());
    let patch = |ops: Value| t.admin_json(Method::PATCH, &path, Some(ops));

    let (status, _, patched) = patch(json!([
        {"op": "replace", "path": "/traits/email", "value": "P2@example.org"},
        {"op": "add", "path": "/metadata_admin/nested/deep", "value": true},
        {"op": "replace", "path": "/state", "value": "inactive"}
    ]))
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["traits"]["email"], "P2@example.org");
    assert_eq!(patched["credentials"]["password"]["identifiers"], json!(["p2@example.org"]));
    assert_eq!(patched["verifiable_addresses"][0]["value"], "p2@example.org");
    assert_eq!(patched["metadata_admin"], json!({"nested": {"deep": true}}));
    assert_eq!(patched["state"], "inactive");
    assert_ne!(patched["state_changed_at"], created["state_changed_at"]);

    // Marking the address verified through a patch sticks.
    let (status, _, patched) = patch(json!([
        {"op": "replace", "path": "/verifiable_addresses/0/verified", "value": true},
        {"op": "replace", "path": "/verifiable_addresses/0/status", "value": "completed"}
    ]))
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["verifiable_addresses"][0]["verified"], true);
    assert!(patched["verifiable_addresses"][0]["verified_at"].is_string());

    // The password hash is patchable; the credentials object and oidc sub-paths are not.
    let (status, _, _) = patch(json!([{"op": "replace", "path": "/credentials/password/config/hashed_password", "value": "$2a$04$ujIuzPKuqVFjxOj0jyaKouVA./Yyb/9dXsyVAK29fimgVTD0GRhde"}])).await;
    assert_eq!(status, 200);
    for (ops, needle) in [
        (json!([{"op": "remove", "path": "/credentials"}]), "denied path"),
        (json!([{"op": "replace", "path": "/id", "value": uuid::Uuid::new_v4()}]), "denied path"),
        (json!([{"op": "add", "path": "/credentials/oidc/config", "value": {}}]), "denied path"),
        (json!([{"op": "move", "from": "/traits", "path": "/metadata_public"}]), "unsupported operation: move"),
        (json!([{"op": "test", "path": "/state", "value": "active"}]), "unsupported operation: test"),
        (json!([{"op": "replace", "path": "/state", "value": "bogus"}]), "identity state is not valid"),
        (json!([{"op": "replace", "path": "/traits/email", "value": 42}]), ""),
        (json!([{"op": "replace", "path": "/schema_id", "value": "nope"}]), ""),
        (json!({"op": "replace"}), ""),
    ] {
        let (status, _, err) = patch(ops.clone()).await;
        assert_eq!(status, 400, "{ops} → {err}");
        assert!(err["error"]["message"].as_str().unwrap().contains(needle), "{ops} → {err}");
    }
    // Bounded depth, known credential types only, no NUL characters.
    let deep = format!("/metadata_admin{}", "/a".repeat(40));
    let (status, _, _) = patch(json!([{"op": "add", "path": deep, "value": 1}])).await;
    assert_eq!(status, 400);
    let (status, _, _) =
        patch(json!([{"op": "add", "path": "/credentials/bogus", "value": {"identifiers": []}}])).await;
    assert_eq!(status, 400);
    let (status, _, _) = patch(json!([{"op": "add", "path": "/metadata_public", "value": {"x": "a\u{0}b"}}])).await;
    assert_eq!(status, 400);
    let res = t.http.patch(format!("{}{path}", t.admin)).send().await.unwrap();
    assert_eq!(res.status(), 400);
    let (_, _, after) = t.admin_json(Method::GET, &path, None).await;
    assert_eq!(after["traits"]["email"], "P2@example.org");
    assert_eq!(after["state"], "inactive");
    assert_eq!(after["metadata_public"], Value::Null);

    // An address id of another identity cannot be taken over through a patch.
    let other = create(&t, json!({"traits": {"email": "victim@example.org"}})).await;
    let victim_address = other["verifiable_addresses"][0]["id"].clone();
    let (status, _, patched) =
        patch(json!([{"op": "replace", "path": "/verifiable_addresses/0/id", "value": victim_address}])).await;
    assert_eq!(status, 200, "{patched}");
    assert_ne!(patched["verifiable_addresses"][0]["id"], victim_address);
    let (_, _, victim) =
        t.admin_json(Method::GET, &format!("/admin/identities/{}", other["id"].as_str().unwrap()), None).await;
    assert_eq!(victim["verifiable_addresses"][0]["value"], "victim@example.org");
    assert_eq!(victim["verifiable_addresses"][0]["id"], victim_address);
    let (status, _, _) =
        t.admin_json(Method::PATCH, &format!("/admin/identities/{}", uuid::Uuid::new_v4()), Some(json!([]))).await;
    assert_eq!(status, 404);
}
both_backends!(patch_rules);

async fn batch_import(db: Db) {
    let t = TestApp::new(db).await;
    create(&t, json!({"traits": {"email": "exists@example.org"}})).await;
    let p = |n: u128| uuid::Uuid::from_u128(n);
    let body = json!({"identities": [
        {"create": {"traits": {"email": "b0@example.org"}}, "patch_id": p(0)},
        {"create": {"traits": {"email": "b1@example.org"}, "credentials": {"password": {"config": {"password": "pw-one-1234"}}}}, "patch_id": p(1)},
        {"create": {}, "patch_id": p(2)},
        {"create": {"traits": {"email": "exists@example.org"}}, "patch_id": p(3)},
        {"create": {"traits": {"email": "b0@example.org"}}, "patch_id": p(4)},
        {"create": {"schema_id": "nonexistent_schema", "traits": {}}, "patch_id": p(5)},
        {"patch_id": p(6)},
        {"create": {"traits": "invalid traits"}}
    ]});
    let (status, _, res) = t.admin_json(Method::PATCH, "/admin/identities", Some(body)).await;
    assert_eq!(status, 200, "{res}");
    let items = res["identities"].as_array().unwrap();
    let actions: Vec<&str> = items.iter().map(|i| i["action"].as_str().unwrap_or("null")).collect();
    assert_eq!(actions, ["create", "create", "error", "error", "error", "error", "null", "error"]);
    for (n, item) in items.iter().enumerate().take(6) {
        assert_eq!(item["patch_id"], json!(p(n as u128)));
    }
    assert_eq!(items[2]["error"]["status"], "Bad Request");
    assert_eq!(items[3]["error"]["status"], "Conflict");
    assert_eq!(items[3]["error"]["code"], 409);
    assert_eq!(items[4]["error"]["status"], "Conflict");
    assert!(
        items[5]["error"]["reason"].as_str().unwrap().contains("Unable to find JSON Schema ID: nonexistent_schema")
    );
    assert_eq!(items[7]["error"]["code"], 400);
    assert!(items[7].get("patch_id").is_none());
    let id1 = items[1]["identity"].as_str().unwrap();
    let (_, _, got) =
        t.admin_json(Method::GET, &format!("/admin/identities/{id1}?include_credential=password"), None).await;
    let hash = got["credentials"]["password"]["config"]["hashed_password"].as_str().unwrap();
    assert!(tessera::hash::verify_blocking(b"pw-one-1234", hash).unwrap());
    assert_eq!(count(&t).await, 3);

    // A single identity that conflicts fails the whole request (Kratos' non-partial insert).
    let (status, _, _) = t
        .admin_json(
            Method::PATCH,
            "/admin/identities",
            Some(json!({"identities": [{"create": {"traits": {"email": "exists@example.org"}}}]})),
        )
        .await;
    assert_eq!(status, 409);
    // Conversion errors fail the whole request and store nothing.
    let (status, _, _) = t
        .admin_json(
            Method::PATCH,
            "/admin/identities",
            Some(json!({"identities": [
                {"create": {"traits": {"email": "ok@example.org"}}},
                {"create": {"traits": {"email": "bad@example.org"}, "state": "nope"}}
            ]})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(count(&t).await, 3);
    // Limits.
    let many: Vec<Value> =
        (0..1001).map(|n| json!({"create": {"traits": {"email": format!("m{n}@example.org")}}})).collect();
    let (status, _, err) = t.admin_json(Method::PATCH, "/admin/identities", Some(json!({"identities": many}))).await;
    assert_eq!(status, 400);
    assert!(err["error"]["reason"].as_str().unwrap().contains("1000"));
    let plain: Vec<Value> = (0..201)
        .map(|n| json!({"create": {"traits": {"email": format!("p{n}@example.org")}, "credentials": {"password": {"config": {"password": "x"}}}}}))
        .collect();
    let (status, _, err) = t.admin_json(Method::PATCH, "/admin/identities", Some(json!({"identities": plain}))).await;
    assert_eq!(status, 400);
    assert!(err["error"]["reason"].as_str().unwrap().contains("200"));
    let (status, _, _) =
        t.admin_json(Method::PATCH, "/admin/identities", Some(json!({"identities": [], "x": 1}))).await;
    assert_eq!(status, 400);
    assert_eq!(count(&t).await, 3);
}
both_backends!(batch_import);

async fn delete_identity_and_credentials(db: Db) {
    let t = TestApp::new(db).await;
    let created = create(
        &t,
        json!({"traits": {"email": "d@example.org"}, "credentials": {
            "password": {"config": {"hashed_password": BCRYPT_123456}},
            "oidc": {"config": {"providers": [{"provider": "google", "subject": "a"}, {"provider": "github", "subject": "b"}]}}
        }}),
    )
    .await;
    let id = created["id"].as_str().unwrap();
    let (status, _, err) = del_cred(&t, id, "totp", "").await;
    assert_eq!(status, 404, "{err}");
    let (status, _, err) = del_cred(&t, id, "code", "").await;
    assert_eq!(status, 400, "{err}");
    let (status, _, err) = del_cred(&t, id, "oidc", "").await;
    assert_eq!(status, 400, "{err}");
    assert!(err["error"]["reason"].as_str().unwrap().contains("identifier"));
    let (status, _, _) = del_cred(&t, id, "oidc", "?identifier=google:zzz").await;
    assert_eq!(status, 404);
    let (status, _, _) = del_cred(&t, id, "oidc", "?identifier=google:a").await;
    assert_eq!(status, 204);
    let (_, _, got) = t.admin_json(Method::GET, &format!("/admin/identities/{id}"), None).await;
    assert_eq!(got["credentials"]["oidc"]["identifiers"], json!(["github:b"]));
    // Password + one oidc link: two first factors, so the password may go (its config blanks).
    let (status, _, _) = del_cred(&t, id, "password", "").await;
    assert_eq!(status, 204);
    let (_, _, got) =
        t.admin_json(Method::GET, &format!("/admin/identities/{id}?include_credential=password"), None).await;
    assert_eq!(got["credentials"]["password"]["config"], json!({}));
    // Now the oidc link is the last first factor.
    let (status, _, err) = del_cred(&t, id, "oidc", "?identifier=github:b").await;
    assert_eq!(status, 400);
    assert_eq!(err["error"]["reason"], "You cannot remove the last first factor credential.");

    // A session of the identity (sessions arrive with their own issue; the row is enough here).
    let sessions = |sql: String| {
        let store = t.app().state().store.clone();
        async move {
            use diesel_async::RunQueryDsl;
            let mut pooled = store.get().await.unwrap();
            let mut conn = pooled.conn();
            tessera::on_conn!(&mut conn, c => {
                if !sql.is_empty() {
                    diesel::sql_query(sql).execute(c).await.unwrap();
                }
                diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>("(SELECT count(*) FROM sessions)"))
                    .get_result::<i64>(c)
                    .await
                    .unwrap()
            })
        }
    };
    let ts = "'2026-01-01T00:00:00.000000Z'";
    let insert = format!(
        "INSERT INTO sessions (id, identity_id, token_hash, logout_token_hash, authentication_methods, \
         authenticated_at, issued_at, expires_at, created_at, updated_at) \
         VALUES ('{}', '{id}', 'h1', 'h2', '[]', {ts}, {ts}, {ts}, {ts}, {ts})",
        uuid::Uuid::new_v4()
    );
    assert_eq!(sessions(insert).await, 1);
    let (status, _, _) = t.admin_json(Method::DELETE, &format!("/admin/identities/{id}"), None).await;
    assert_eq!(status, 204);
    assert_eq!(sessions(String::new()).await, 0, "the identity's sessions go with it");
    let (status, _, _) = t.admin_json(Method::GET, &format!("/admin/identities/{id}"), None).await;
    assert_eq!(status, 404);
    let (status, _, _) = t.admin_json(Method::DELETE, &format!("/admin/identities/{id}"), None).await;
    assert_eq!(status, 404);
    assert!(crate::harness::stored(&t.app().state().store, id.parse().unwrap()).await.is_none());
}
both_backends!(delete_identity_and_credentials);

async fn list_filters_and_pages(db: Db) {
    let t = TestApp::new(db).await;
    let org = uuid::Uuid::new_v4();
    let mut ids = Vec::new();
    for n in 0..5 {
        let mut body = json!({"traits": {"email": format!("list{n}@example.org")}});
        if n == 0 {
            body["organization_id"] = json!(org);
            body["credentials"] = json!({"oidc": {"config": {"providers": [{"provider": "gh", "subject": "Sub"}]}}});
        }
        ids.push(create(&t, body).await["id"].as_str().unwrap().to_string());
    }
    ids.sort();

    // Keyset: first page of 2 with first and next links; no credentials in plain lists.
    let (status, headers, page) = t.admin_json(Method::GET, "/admin/identities?page_size=2&foo=bar", None).await;
    assert_eq!(status, 200);
    let got: Vec<&str> = page.as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(got, ids[..2]);
    assert!(page[0].get("credentials").is_none());
    assert!(headers.get("x-total-count").is_none());
    assert_eq!(
        headers["link"].to_str().unwrap(),
        format!(
            "</admin/identities?foo=bar&page_size=2&page_token=00000000-0000-0000-0000-000000000000>; rel=\"first\",\
             </admin/identities?foo=bar&page_size=2&page_token={}>; rel=\"next\"",
            ids[1]
        )
    );
    let (_, headers, page) =
        t.admin_json(Method::GET, &format!("/admin/identities?page_size=2&page_token={}", ids[3]), None).await;
    assert_eq!(page.as_array().unwrap().len(), 1);
    assert!(!headers["link"].to_str().unwrap().contains("rel=\"next\""));

    // Legacy page mode.
    let (_, headers, page) = t.admin_json(Method::GET, "/admin/identities?page=1&per_page=2", None).await;
    assert_eq!(headers["x-total-count"], "5");
    let got: Vec<&str> = page.as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(got, ids[2..4]);
    assert_eq!(
        headers["link"].to_str().unwrap(),
        "</admin/identities?page=0&per_page=2>; rel=\"first\",</admin/identities?page=2&per_page=2>; rel=\"next\",\
         </admin/identities?page=0&per_page=2>; rel=\"prev\",</admin/identities?page=2&per_page=2>; rel=\"last\""
    );

    // Filters.
    let (_, _, found) = list_q(&t, format!("ids={}&ids={}", ids[0], ids[4])).await;
    assert_eq!(found.as_array().unwrap().len(), 2);
    let (_, _, found) = list_q(&t, "credentials_identifier=LIST3@example.org".into()).await;
    assert_eq!(found.as_array().unwrap().len(), 1);
    assert_eq!(found[0]["traits"]["email"], "list3@example.org");
    assert!(found[0]["credentials"]["password"].get("config").is_none(), "{found}");
    let (_, _, found) = list_q(&t, "credentials_identifier=gh:Sub".into()).await;
    assert_eq!(found.as_array().unwrap().len(), 1);
    let (_, _, found) = list_q(&t, "credentials_identifier=gh:sub".into()).await;
    assert_eq!(found.as_array().unwrap().len(), 0);
    let (_, _, found) = list_q(&t, "preview_credentials_identifier_similar=list".into()).await;
    assert_eq!(found.as_array().unwrap().len(), 5);
    let (_, _, found) = list_q(&t, "preview_credentials_identifier_similar=list_".into()).await;
    assert_eq!(found.as_array().unwrap().len(), 0, "`_` is literal: {found}");
    let (_, _, found) = list_q(&t, format!("organization_id={org}")).await;
    assert_eq!(found.as_array().unwrap().len(), 1);
    let (_, _, found) = list_q(&t, format!("organization_id={}", uuid::Uuid::new_v4())).await;
    assert_eq!(found, json!([]));
    let (_, _, found) = list_q(&t, "include_credential=oidc&page_size=1".into()).await;
    assert!(found[0]["credentials"].is_object());

    for (query, needle) in [
        (format!("ids={}&credentials_identifier=x", ids[0]), "You cannot combine multiple filters in this API"),
        ("ids=nope".to_string(), "Invalid UUID value `nope` for parameter `ids`."),
        ("organization_id=nope".to_string(), "Invalid UUID value `nope` for parameter `organization_id`."),
        ("page_token=nope".to_string(), "The page token is invalid, do not craft your own page tokens"),
        ("page_size=abc".to_string(), "invalid syntax"),
        ("page=11&per_page=100".to_string(), "Legacy pagination is not supported"),
        ("include_credential=bogus".to_string(), "Invalid value `bogus`"),
        (
            (0..501).map(|_| format!("ids={}", uuid::Uuid::new_v4())).collect::<Vec<_>>().join("&"),
            "must not exceed 500",
        ),
    ] {
        let (status, _, err) = list_q(&t, query.clone()).await;
        assert_eq!(status, 400, "{query}");
        assert!(err["error"]["reason"].as_str().unwrap().contains(needle), "{query} → {err}");
    }
}
both_backends!(list_filters_and_pages);

/// 1,200+ identities paged through while more are inserted: every identity that existed
/// before the walk is seen exactly once.
async fn pagination_under_concurrent_inserts(db: Db) {
    let t = TestApp::new(db).await;
    let mut before = std::collections::BTreeSet::new();
    for chunk in 0..3 {
        let items: Vec<Value> =
            (0..420).map(|n| json!({"create": {"traits": {"email": format!("pg{chunk}-{n}@example.org")}}})).collect();
        let (status, _, res) =
            t.admin_json(Method::PATCH, "/admin/identities", Some(json!({"identities": items}))).await;
        assert_eq!(status, 200);
        for item in res["identities"].as_array().unwrap() {
            assert_eq!(item["action"], "create", "{item}");
            before.insert(item["identity"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(before.len(), 1260);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (http, url, stop) = (t.http.clone(), format!("{}/admin/identities", t.admin), stop.clone());
        actix_web::rt::spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let res = http
                    .post(&url)
                    .json(&json!({"traits": {"email": format!("late{n}@example.org")}}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 201);
                n += 1;
            }
            n
        })
    };
    let mut seen = Vec::new();
    let mut token = uuid::Uuid::nil().to_string();
    loop {
        let (status, headers, page) =
            t.admin_json(Method::GET, &format!("/admin/identities?page_size=97&page_token={token}"), None).await;
        assert_eq!(status, 200);
        seen.extend(page.as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_string()));
        let link = headers["link"].to_str().unwrap().to_string();
        match link.split(',').find(|l| l.ends_with("rel=\"next\"")) {
            Some(next) => {
                token = next.split("page_token=").nth(1).unwrap().split('>').next().unwrap().to_string();
            }
            None => break,
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let late = writer.await.unwrap();
    let unique: std::collections::BTreeSet<_> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "duplicates in the walk");
    assert!(before.is_subset(&unique), "{} of the earlier identities missing", before.difference(&unique).count());
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(sorted, seen, "pages are ordered by id");
    assert!(late > 0);
}
both_backends!(pagination_under_concurrent_inserts);

async fn tessera_cli(t: &TestApp, args: &[&str]) -> (i32, String, String) {
    let out = tokio::process::Command::new(crate::harness::bin())
        .arg("identities")
        .args(args)
        .args(["--endpoint", &t.admin])
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `tessera identities import|list|get|delete` against a running server.
async fn cli_import_list_get_delete(db: Db) {
    let t = TestApp::new(db).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("people.jsonl");
    let mut lines: Vec<String> = (0..5)
        .map(|n| json!({"traits": {"email": format!("cli{n}@example.org")}, "credentials": {"password": {"config": {"hashed_password": BCRYPT_123456}}}}).to_string())
        .collect();
    lines.push(json!({"traits": {"email": "broken"}}).to_string());
    std::fs::write(&file, lines.join("\n")).unwrap();
    let path = file.to_str().unwrap();

    let (code, out, err) = tessera_cli(&t, &["import", path]).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("imported 5, skipped 0 (already exist), failed 1"), "{out}");
    assert!(err.contains("people.jsonl#6"), "{err}");
    // Re-running skips what exists.
    let (_, out, _) = tessera_cli(&t, &["import", path]).await;
    assert!(out.contains("imported 0, skipped 5 (already exist), failed 1"), "{out}");
    // An array file whose one conflicting item makes the server refuse the batch as a whole.
    let arr = dir.path().join("one.json");
    std::fs::write(&arr, json!([{"traits": {"email": "cli0@example.org"}}]).to_string()).unwrap();
    let (code, out, _) = tessera_cli(&t, &["import", arr.to_str().unwrap()]).await;
    assert_eq!(code, 0);
    assert!(out.contains("imported 0, skipped 1"), "{out}");

    let (code, out, _) = tessera_cli(&t, &["list", "--json", "--page-size", "3"]).await;
    assert_eq!(code, 0);
    let page: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(page["identities"].as_array().unwrap().len(), 3);
    let token = page["next_page_token"].as_str().unwrap().to_string();
    let (_, out, _) = tessera_cli(&t, &["ls", "--page-token", &token]).await;
    assert_eq!(out.lines().filter(|l| l.contains("@example.org")).count(), 2, "{out}");
    let id = page["identities"][0]["id"].as_str().unwrap().to_string();

    let (code, out, _) = tessera_cli(&t, &["get", &id, "-i", "password"]).await;
    assert_eq!(code, 0);
    let got: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(got["credentials"]["password"]["config"]["hashed_password"], BCRYPT_123456);

    let (code, _, _) = tessera_cli(&t, &["delete", &id]).await;
    assert_eq!(code, 0);
    let (code, _, err) = tessera_cli(&t, &["delete", &id]).await;
    assert_eq!(code, 1);
    assert!(err.contains("404"), "{err}");
    assert_eq!(count(&t).await, 4);
}
both_backends!(cli_import_list_get_delete);

/// An update racing a delete never brings the identity back once the delete was acknowledged.
async fn update_never_resurrects_a_deleted_identity(db: Db) {
    let t = TestApp::new(db).await;
    for n in 0..15 {
        let created = create(&t, json!({"traits": {"email": format!("race{n}@example.org")}})).await;
        let path = format!("/admin/identities/{}", created["id"].as_str().unwrap());
        let put = t.admin_json(
            Method::PUT,
            &path,
            Some(json!({"schema_id": "default", "state": "active", "traits": {"email": format!("race{n}b@example.org")}})),
        );
        let delete = t.admin_json(Method::DELETE, &path, None);
        let ((put_status, _, _), (delete_status, _, _)) = tokio::join!(put, delete);
        assert_eq!(delete_status, 204);
        assert!(put_status == 200 || put_status == 404, "{put_status}");
        let (status, _, _) = t.admin_json(Method::GET, &path, None).await;
        assert_eq!(status, 404, "round {n}: an acknowledged delete was undone (PUT answered {put_status})");
    }
}
both_backends!(update_never_resurrects_a_deleted_identity);

/// `tessera identities validate`: the create body's shape, a `schema_id`, and the traits
/// against the identity schema the server serves; nothing is written.
async fn cli_validate(db: Db) {
    let t = TestApp::new(db).await;
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.json");
    std::fs::write(
        &good,
        json!([{"schema_id": "default", "traits": {"email": "valid@example.org"}, "state": "active"}]).to_string(),
    )
    .unwrap();
    let (code, out, err) = tessera_cli(&t, &["validate", good.to_str().unwrap()]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.trim(), "All identity files are valid.");
    let bad = dir.path().join("bad.jsonl");
    let lines = [
        json!({"schema_id": "default", "traits": {"email": "not-an-email"}}),
        json!({"traits": {"email": "a@example.org"}}),
        json!({"schema_id": "default", "traits": {"email": "b@example.org"}, "stat": "active"}),
        json!({"schema_id": "nope", "traits": {}}),
    ];
    std::fs::write(&bad, lines.iter().map(Value::to_string).collect::<Vec<_>>().join("\n")).unwrap();
    let (code, _, err) = tessera_cli(&t, &["validate", bad.to_str().unwrap()]).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("bad.jsonl#1: not valid\n  #/traits/email:"), "{err}");
    assert!(err.contains("bad.jsonl#2: not valid\n  Expected key \"schema_id\""), "{err}");
    assert!(err.contains("bad.jsonl#3: not valid\n  stat: unknown field `stat`"), "{err}");
    assert!(err.contains("bad.jsonl#4: not valid\n  Could not fetch schema with ID \"nope\""), "{err}");
    assert!(err.contains("4 identities are not valid"), "{err}");
    let (status, _, list) = t.admin_json(Method::GET, "/admin/identities", None).await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 0, "validate writes nothing");
}
both_backends!(cli_validate);
