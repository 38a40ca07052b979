//! Claims: what a provider says about the user, in one shape for every provider (Kratos'
//! `Claims`, which the Jsonnet mapper reads as `std.extVar('claims')`), and the mapper's answer
//! turned into traits, metadata and verified addresses.

use serde_json::{Map, Value as Json, json};

/// The claim names the mapper sees (besides `raw_claims`), as Kratos' `Claims` has them.
const NAMES: &[&str] = &[
    "iss",
    "sub",
    "oid",
    "name",
    "given_name",
    "family_name",
    "last_name",
    "middle_name",
    "nickname",
    "preferred_username",
    "profile",
    "picture",
    "website",
    "email",
    "email_verified",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
    "phone_number",
    "phone_number_verified",
    "updated_at",
    "hd",
    "team",
    "nonce",
    "nonce_supported",
];

/// Whether a claim value is empty as Go's `omitempty` sees it.
fn empty(v: &Json) -> bool {
    match v {
        Json::Null => true,
        Json::Bool(b) => !b,
        Json::String(s) => s.is_empty(),
        Json::Number(n) => n.as_f64() == Some(0.0),
        Json::Array(a) => a.is_empty(),
        Json::Object(o) => o.is_empty(),
    }
}

/// The standard claims of an OpenID Connect document (ID token payload or user info);
/// `email_verified` given as a string counts, empty values are left out.
pub fn standard(raw: &Json) -> Map<String, Json> {
    let mut out = Map::new();
    for name in NAMES {
        let Some(v) = raw.get(*name) else { continue };
        let v = match (*name, v) {
            ("email_verified" | "phone_number_verified" | "nonce_supported", Json::String(s)) => {
                Json::Bool(s.eq_ignore_ascii_case("true"))
            }
            ("sub", Json::Number(n)) => json!(n.to_string()),
            _ => v.clone(),
        };
        if !empty(&v) {
            out.insert((*name).into(), v);
        }
    }
    out
}

/// Builds claims from `(name, value)` pairs, leaving out empty values.
fn build<'a>(pairs: impl IntoIterator<Item = (&'a str, Json)>) -> Map<String, Json> {
    pairs.into_iter().filter(|(_, v)| !empty(v)).map(|(k, v)| (k.to_string(), v)).collect()
}

fn s(v: &Json, key: &str) -> Json {
    match v.get(key) {
        Some(Json::String(x)) => json!(x),
        Some(Json::Number(n)) => json!(n.to_string()),
        _ => Json::Null,
    }
}

/// GitHub's `/user` (and `/user/emails`: the primary address, else the last).
pub fn github(user: &Json, emails: Option<&Json>, issuer: &str) -> Map<String, Json> {
    let mut c = build([
        ("iss", json!(issuer)),
        ("sub", s(user, "id")),
        ("name", s(user, "name")),
        ("nickname", s(user, "login")),
        ("preferred_username", s(user, "login")),
        ("website", s(user, "blog")),
        ("picture", s(user, "avatar_url")),
        ("profile", s(user, "html_url")),
        ("email", s(user, "email")),
    ]);
    if let Some(list) = emails.and_then(Json::as_array) {
        let chosen = list.iter().find(|e| e.get("primary") == Some(&json!(true))).or_else(|| list.last());
        if let Some(e) = chosen {
            c.extend(build([
                ("email", s(e, "email")),
                ("email_verified", e.get("verified").cloned().unwrap_or_default()),
            ]));
        }
    }
    c
}

pub fn discord(u: &Json) -> Map<String, Json> {
    let id = s(u, "id");
    let avatar = match (u.get("avatar").and_then(Json::as_str), id.as_str()) {
        (Some(a), Some(i)) => json!(format!("https://cdn.discordapp.com/avatars/{i}/{a}.png")),
        _ => Json::Null,
    };
    let name = match (u.get("username").and_then(Json::as_str), u.get("discriminator").and_then(Json::as_str)) {
        (Some(n), Some(d)) => json!(format!("{n}#{d}")),
        _ => Json::Null,
    };
    build([
        ("iss", json!("https://discord.com/api/v9/oauth2/")),
        ("sub", id),
        ("name", name),
        ("nickname", s(u, "username")),
        ("preferred_username", s(u, "username")),
        ("picture", avatar),
        ("email", s(u, "email")),
        ("email_verified", u.get("verified").cloned().unwrap_or_default()),
        ("locale", s(u, "locale")),
    ])
}

pub fn spotify(u: &Json) -> Map<String, Json> {
    build([
        ("iss", json!("https://accounts.spotify.com/api/token")),
        ("sub", s(u, "id")),
        ("name", s(u, "display_name")),
        ("nickname", s(u, "display_name")),
        ("email", s(u, "email")),
        ("picture", u.pointer("/images/0/url").cloned().unwrap_or_default()),
        ("profile", u.pointer("/external_urls/spotify").cloned().unwrap_or_default()),
        ("birthdate", s(u, "birthdate")),
    ])
}

pub fn yandex(u: &Json) -> Map<String, Json> {
    let empty_avatar = u.get("is_avatar_empty") == Some(&json!(true));
    let picture = s(u, "default_avatar_id")
        .as_str()
        .filter(|_| !empty_avatar)
        .map(|id| json!(format!("https://avatars.yandex.net/get-yapic/{id}/islands-200")));
    build([
        ("iss", json!("https://login.yandex.ru/info")),
        ("sub", s(u, "id")),
        ("name", s(u, "real_name")),
        ("given_name", s(u, "first_name")),
        ("family_name", s(u, "last_name")),
        ("nickname", s(u, "login")),
        ("email", s(u, "default_email")),
        ("gender", s(u, "sex")),
        ("birthdate", s(u, "birthday")),
        ("picture", picture.unwrap_or_default()),
    ])
}

pub fn vk(answer: &Json, email: Option<&Json>) -> Map<String, Json> {
    let u = answer.pointer("/response/0").cloned().unwrap_or_default();
    let gender = match u.get("sex").and_then(Json::as_i64) {
        Some(1) => json!("female"),
        Some(2) => json!("male"),
        _ => Json::Null,
    };
    build([
        ("iss", json!("https://api.vk.com/method/users.get")),
        ("sub", s(&u, "id")),
        ("given_name", s(&u, "first_name")),
        ("family_name", s(&u, "last_name")),
        ("nickname", s(&u, "nickname")),
        ("picture", s(&u, "photo_200")),
        ("email", email.cloned().unwrap_or_default()),
        ("gender", gender),
        ("birthdate", s(&u, "bdate")),
    ])
}

pub fn patreon(answer: &Json) -> Map<String, Json> {
    let a = answer.pointer("/data/attributes").cloned().unwrap_or_default();
    build([
        ("iss", json!("https://www.patreon.com/")),
        ("sub", answer.pointer("/data/id").cloned().unwrap_or_default()),
        ("name", s(&a, "full_name")),
        ("given_name", s(&a, "first_name")),
        ("family_name", s(&a, "last_name")),
        ("email", s(&a, "email")),
        ("picture", s(&a, "image_url")),
        ("profile", s(&a, "url")),
    ])
}

pub fn lark(u: &Json) -> Map<String, Json> {
    build([
        ("iss", json!("https://passport.feishu.cn/suite/passport/oauth/userinfo")),
        ("sub", s(u, "open_id")),
        ("name", s(u, "name")),
        ("picture", s(u, "avatar_url")),
        ("email", s(u, "email")),
        ("phone_number", s(u, "mobile")),
    ])
}

pub fn amazon(u: &Json) -> Map<String, Json> {
    build([
        ("iss", json!("https://api.amazon.com/auth/o2/token")),
        ("sub", s(u, "user_id")),
        ("name", s(u, "name")),
        ("email", s(u, "email")),
        ("zoneinfo", s(u, "postal_code")),
    ])
}

pub fn uaepass(u: &Json, base: &str) -> Map<String, Json> {
    let mut c = build([
        ("iss", json!(base)),
        ("sub", s(u, "sub")),
        ("name", s(u, "fullnameEN")),
        ("given_name", s(u, "firstnameEN")),
        ("last_name", s(u, "lastnameEN")),
        ("email", s(u, "email")),
        ("phone_number", s(u, "mobile")),
    ]);
    c.insert("raw_claims".into(), u.clone());
    c
}

pub fn dingtalk(u: &Json) -> Map<String, Json> {
    build([
        ("iss", json!("https://api.dingtalk.com/v1.0/contact/users/me")),
        ("sub", s(u, "openId")),
        ("name", s(u, "nick")),
        ("nickname", s(u, "nick")),
        ("picture", s(u, "avatarUrl")),
        ("email", s(u, "email")),
        ("phone_number", s(u, "mobile")),
    ])
}

pub fn facebook(u: &Json) -> Map<String, Json> {
    let email = s(u, "email");
    let verified = json!(!empty(&email));
    build([
        ("iss", json!("https://graph.facebook.com/me")),
        ("sub", s(u, "id")),
        ("name", s(u, "name")),
        ("given_name", s(u, "first_name")),
        ("family_name", s(u, "last_name")),
        ("middle_name", s(u, "middle_name")),
        ("nickname", s(u, "name")),
        ("preferred_username", s(u, "name")),
        ("picture", u.pointer("/picture/data/url").cloned().unwrap_or_default()),
        ("email", email),
        ("email_verified", verified),
        ("gender", s(u, "gender")),
        ("birthdate", s(u, "birthday")),
    ])
}

pub fn slack(answer: &Json) -> Map<String, Json> {
    build([
        ("iss", json!("https://slack.com/oauth/")),
        ("sub", answer.pointer("/user/id").cloned().unwrap_or_default()),
        ("name", answer.pointer("/user/name").cloned().unwrap_or_default()),
        ("nickname", answer.pointer("/user/name").cloned().unwrap_or_default()),
        ("email", answer.pointer("/user/email").cloned().unwrap_or_default()),
        ("email_verified", json!(true)),
        ("picture", answer.pointer("/user/image_512").cloned().unwrap_or_default()),
        ("team", answer.pointer("/team/id").cloned().unwrap_or_default()),
    ])
}

pub fn linkedin(me: &Json, email: &Json) -> Map<String, Json> {
    build([
        ("iss", json!("https://login.linkedin.com/")),
        ("sub", s(me, "id")),
        ("given_name", s(me, "localizedFirstName")),
        ("last_name", s(me, "localizedLastName")),
        ("email", email.pointer("/elements/0/handle~/emailAddress").cloned().unwrap_or_default()),
        (
            "picture",
            me.pointer("/profilePicture/displayImage~/elements/0/identifiers/0/identifier")
                .cloned()
                .unwrap_or_default(),
        ),
    ])
}

/// Apple sends the user's name once, beside the code, in the (unsigned) `user` form field
/// `{"name": {"firstName", "lastName"}}`: it fills the names the ID token does not carry.
pub fn apple_user(claims: &mut Json, user: &str) {
    let Ok(parsed) = serde_json::from_str::<Json>(user) else { return };
    let Some(c) = claims.as_object_mut() else { return };
    let name = |k: &str| parsed.pointer(&format!("/name/{k}")).and_then(Json::as_str).filter(|s| !s.is_empty());
    if let Some(first) = name("firstName") {
        c.entry("given_name").or_insert_with(|| json!(first));
    }
    if let Some(last) = name("lastName") {
        c.insert("last_name".into(), json!(last));
        c.entry("family_name").or_insert_with(|| json!(last));
    }
}

/// What the mapper made of the claims.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mapped {
    pub traits: Json,
    pub metadata_public: Option<Json>,
    pub metadata_admin: Option<Json>,
    /// `(via, value)` of addresses the provider vouches for.
    pub verified_addresses: Vec<(String, String)>,
}

/// Reads the mapper's answer `{identity: {traits, metadata_public?, metadata_admin?,
/// verified_addresses?}}`; the error says what is wrong with it.
pub fn read_mapped(out: &Json) -> Result<Mapped, String> {
    let identity = out.get("identity").cloned().unwrap_or_default();
    let traits = identity.get("traits").cloned().unwrap_or_default();
    if !traits.is_object() {
        return Err("The Jsonnet mapper must return identity.traits as an object.".into());
    }
    let object = |key: &str| -> Result<Option<Json>, String> {
        match identity.get(key) {
            None | Some(Json::Null) => Ok(None),
            Some(v @ Json::Object(_)) => Ok(Some(v.clone())),
            Some(_) => Err(format!("The Jsonnet mapper must return identity.{key} as an object.")),
        }
    };
    let mut verified = Vec::new();
    match identity.get("verified_addresses") {
        None | Some(Json::Null) => {}
        Some(Json::Array(list)) => {
            for a in list {
                let via = a.get("via").and_then(Json::as_str).unwrap_or("email").to_string();
                let mut value = a.get("value").and_then(Json::as_str).unwrap_or_default().trim().to_string();
                if via == "email" {
                    value = value.to_lowercase();
                }
                if !value.is_empty() {
                    verified.push((via, value));
                }
            }
        }
        Some(_) => return Err("The Jsonnet mapper must return identity.verified_addresses as an array.".into()),
    }
    Ok(Mapped {
        traits,
        metadata_public: object("metadata_public")?,
        metadata_admin: object("metadata_admin")?,
        verified_addresses: verified,
    })
}

/// `over` merged into `base`, object by object (submitted traits win over mapped ones).
pub fn merge(base: &mut Json, over: &Json) {
    match (base, over) {
        (Json::Object(b), Json::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => merge(existing, v),
                    _ => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_claims_drop_empty_values_and_read_string_booleans() {
        let raw = json!({"sub": 42, "email": "A@x", "email_verified": "true", "name": "", "aud": "c", "locale": "de"});
        let c = standard(&raw);
        assert_eq!(Json::Object(c), json!({"sub": "42", "email": "A@x", "email_verified": true, "locale": "de"}));
        assert!(!standard(&json!({"email_verified": false})).contains_key("email_verified"));
    }

    #[test]
    fn github_takes_the_primary_address() {
        let user = json!({"id": 7, "login": "octo", "name": "Octo", "email": null});
        let emails = json!([{"email": "b@x", "primary": false, "verified": false}, {"email": "a@x", "primary": true, "verified": true}]);
        let c = github(&user, Some(&emails), "https://github.com/login/oauth/access_token");
        assert_eq!(c["sub"], "7");
        assert_eq!(c["email"], "a@x");
        assert_eq!(c["email_verified"], true);
        assert_eq!(c["nickname"], "octo");
        assert!(!github(&user, None, "i").contains_key("email"));
    }

    #[test]
    fn mapper_answers_are_checked() {
        let ok = read_mapped(&json!({"identity": {"traits": {"email": "a@x"}, "metadata_public": {"p": 1},
            "verified_addresses": [{"via": "email", "value": " A@X "}]}}));
        assert_eq!(
            ok,
            Ok(Mapped {
                traits: json!({"email": "a@x"}),
                metadata_public: Some(json!({"p": 1})),
                metadata_admin: None,
                verified_addresses: vec![("email".into(), "a@x".into())],
            })
        );
        assert!(read_mapped(&json!({"identity": {"traits": "x"}})).is_err());
        assert!(read_mapped(&json!({"identity": {"traits": {}, "metadata_admin": 1}})).is_err());
        assert!(read_mapped(&json!({"identity": {"traits": {}, "verified_addresses": {}}})).is_err());
    }

    #[test]
    fn apple_names_fill_missing_claims() {
        let mut c = json!({"sub": "x", "given_name": "Kept"});
        apple_user(&mut c, r#"{"name":{"firstName":"Ann","lastName":"Lee"},"email":"a@x"}"#);
        assert_eq!(c, json!({"sub": "x", "given_name": "Kept", "last_name": "Lee", "family_name": "Lee"}));
        let mut untouched = json!({"sub": "x"});
        apple_user(&mut untouched, "not json");
        assert_eq!(untouched, json!({"sub": "x"}));
    }

    #[test]
    fn submitted_traits_win() {
        let mut base = json!({"email": "a@x", "name": {"first": "A", "last": "B"}});
        merge(&mut base, &json!({"name": {"first": "C"}, "age": 3}));
        assert_eq!(base, json!({"email": "a@x", "name": {"first": "C", "last": "B"}, "age": 3}));
    }
}
