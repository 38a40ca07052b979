//! Message templates (behaviour.md §16.2): Go template syntax rendered by the `gotmpl` crate
//! (`text/template` for subjects, plain-text and SMS bodies, `html/template` — context-aware
//! escaping — for HTML bodies), so templates written for Kratos render unchanged.
//!
//! A part is taken from the first of: the URI configured at `courier.templates.<type>.<variant>`
//! (`file://`, `http(s)://`, `base64://`), the file `<template_override_path>/<type>/<variant>/…`,
//! the built-in template. Template data is stored with the message under Kratos' JSON names
//! (`recovery_code`, …) and handed to templates under its Go field names (`.RecoveryCode`, …).

use crate::config::{CourierConfig, TemplateChannels};
use gotmpl::{Result as TmplResult, TemplateError, Value};
use serde_json::Value as Json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// What a message says, by Kratos' `template_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TemplateType {
    RecoveryValid,
    RecoveryInvalid,
    RecoveryCodeValid,
    RecoveryCodeInvalid,
    VerificationValid,
    VerificationInvalid,
    VerificationCodeValid,
    VerificationCodeInvalid,
    LoginCodeValid,
    RegistrationCodeValid,
}

impl TemplateType {
    /// Every type.
    pub const ALL: [TemplateType; 10] = [
        TemplateType::RecoveryValid,
        TemplateType::RecoveryInvalid,
        TemplateType::RecoveryCodeValid,
        TemplateType::RecoveryCodeInvalid,
        TemplateType::VerificationValid,
        TemplateType::VerificationInvalid,
        TemplateType::VerificationCodeValid,
        TemplateType::VerificationCodeInvalid,
        TemplateType::LoginCodeValid,
        TemplateType::RegistrationCodeValid,
    ];

    /// The stored `template_type`.
    pub fn as_str(self) -> &'static str {
        match self {
            TemplateType::RecoveryValid => "recovery_valid",
            TemplateType::RecoveryInvalid => "recovery_invalid",
            TemplateType::RecoveryCodeValid => "recovery_code_valid",
            TemplateType::RecoveryCodeInvalid => "recovery_code_invalid",
            TemplateType::VerificationValid => "verification_valid",
            TemplateType::VerificationInvalid => "verification_invalid",
            TemplateType::VerificationCodeValid => "verification_code_valid",
            TemplateType::VerificationCodeInvalid => "verification_code_invalid",
            TemplateType::LoginCodeValid => "login_code_valid",
            TemplateType::RegistrationCodeValid => "registration_code_valid",
        }
    }

    /// Parses a stored `template_type`.
    pub fn parse(s: &str) -> Option<TemplateType> {
        TemplateType::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The directory and variant (`recovery_code`, `valid`).
    pub fn dir(self) -> (&'static str, &'static str) {
        let s = self.as_str();
        match s.rsplit_once('_') {
            Some((d, v)) => (d, v),
            None => (s, "valid"),
        }
    }
}

/// A template part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Part {
    Subject,
    Html,
    Plaintext,
    Sms,
}

impl Part {
    fn file(self) -> &'static str {
        match self {
            Part::Subject => "email.subject.gotmpl",
            Part::Html => "email.body.gotmpl",
            Part::Plaintext => "email.body.plaintext.gotmpl",
            Part::Sms => "sms.body.gotmpl",
        }
    }

    fn uri(self, c: &TemplateChannels) -> Option<&str> {
        match self {
            Part::Subject => c.email.subject.as_deref(),
            Part::Html => c.email.body.html.as_deref(),
            Part::Plaintext => c.email.body.plaintext.as_deref(),
            Part::Sms => c.sms.body.plaintext.as_deref(),
        }
        .filter(|u| !u.is_empty())
    }
}

macro_rules! builtin {
    ($dir:literal, $variant:literal) => {
        [
            include_str!(concat!("templates/", $dir, "/", $variant, "/email.subject.gotmpl")),
            include_str!(concat!("templates/", $dir, "/", $variant, "/email.body.gotmpl")),
            include_str!(concat!("templates/", $dir, "/", $variant, "/email.body.plaintext.gotmpl")),
        ]
    };
}

fn builtin(t: TemplateType, part: Part) -> Option<&'static str> {
    let email = match t {
        TemplateType::RecoveryValid => builtin!("recovery", "valid"),
        TemplateType::RecoveryInvalid => builtin!("recovery", "invalid"),
        TemplateType::RecoveryCodeValid => builtin!("recovery_code", "valid"),
        TemplateType::RecoveryCodeInvalid => builtin!("recovery_code", "invalid"),
        TemplateType::VerificationValid => builtin!("verification", "valid"),
        TemplateType::VerificationInvalid => builtin!("verification", "invalid"),
        TemplateType::VerificationCodeValid => builtin!("verification_code", "valid"),
        TemplateType::VerificationCodeInvalid => builtin!("verification_code", "invalid"),
        TemplateType::LoginCodeValid => builtin!("login_code", "valid"),
        TemplateType::RegistrationCodeValid => builtin!("registration_code", "valid"),
    };
    match part {
        Part::Subject => Some(email[0]),
        Part::Html => Some(email[1]),
        Part::Plaintext => Some(email[2]),
        Part::Sms => match t {
            TemplateType::RecoveryCodeValid => Some(include_str!("templates/recovery_code/valid/sms.body.gotmpl")),
            TemplateType::VerificationCodeValid => {
                Some(include_str!("templates/verification_code/valid/sms.body.gotmpl"))
            }
            TemplateType::LoginCodeValid => Some(include_str!("templates/login_code/valid/sms.body.gotmpl")),
            TemplateType::RegistrationCodeValid => {
                Some(include_str!("templates/registration_code/valid/sms.body.gotmpl"))
            }
            _ => None,
        },
    }
}

/// A rendered e-mail.
#[derive(Debug, Clone, PartialEq)]
pub struct Email {
    pub subject: String,
    pub plaintext: String,
    pub html: String,
}

/// Loads (and caches) template sources and renders them.
#[derive(Clone)]
pub struct Templates {
    config: Arc<CourierConfig>,
    http: reqwest::Client,
    /// Remote and override sources by URI or path (Kratos caches them too).
    cache: Arc<Mutex<HashMap<String, Arc<str>>>>,
    /// Parsed templates: each part is parsed once.
    parsed: Arc<Mutex<ParsedCache>>,
}

type ParsedCache = HashMap<(TemplateType, Part), Arc<Parsed>>;

/// A parsed template part.
enum Parsed {
    Text(gotmpl::Template),
    Html(gotmpl::html::Template),
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates").finish_non_exhaustive()
    }
}

impl Templates {
    pub fn new(config: Arc<CourierConfig>) -> Templates {
        // Remote templates must not hold a submit or a delivery for long.
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(5))
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Templates { config, http, cache: Arc::default(), parsed: Arc::default() }
    }

    fn cached(&self, key: &str) -> Option<Arc<str>> {
        self.cache.lock().ok().and_then(|c| c.get(key).cloned())
    }

    fn remember(&self, key: &str, source: String) -> Arc<str> {
        let source: Arc<str> = source.into();
        if let Ok(mut c) = self.cache.lock() {
            c.insert(key.to_string(), source.clone());
        }
        source
    }

    /// The source of one part: configured URI, override directory, built-in.
    async fn source(&self, t: TemplateType, part: Part) -> Result<Arc<str>, String> {
        let (dir, variant) = t.dir();
        let channels = self.config.templates.get(dir).map(|v| if variant == "valid" { &v.valid } else { &v.invalid });
        if let Some(uri) = channels.and_then(|c| part.uri(c)) {
            if let Some(s) = self.cached(uri) {
                return Ok(s);
            }
            let text = crate::jsonnet::load(uri, &self.http)
                .await
                .map_err(|e| format!("courier template {}: {e}", t.as_str()))?;
            return Ok(self.remember(uri, text));
        }
        if let Some(root) = self.config.template_override_path.as_deref().filter(|p| !p.is_empty()) {
            let path = std::path::Path::new(root).join(dir).join(variant).join(part.file());
            let key = path.display().to_string();
            if let Some(s) = self.cached(&key) {
                return Ok(s);
            }
            if let Ok(text) = tokio::fs::read_to_string(&path).await {
                return Ok(self.remember(&key, text));
            }
        }
        builtin(t, part).map(Arc::from).ok_or_else(|| format!("no {part:?} template for {}", t.as_str()))
    }

    /// Renders one part with `data` (the stored JSON template data).
    pub async fn render(&self, t: TemplateType, part: Part, data: &Json) -> Result<String, String> {
        let name = part.file();
        let parsed = match self.parsed.lock().ok().and_then(|p| p.get(&(t, part)).cloned()) {
            Some(p) => p,
            None => {
                let source = self.source(t, part).await?;
                let parsed = if part == Part::Html {
                    gotmpl::html::Template::new(name).funcs(sprig_subset()).parse(&source).map(Parsed::Html)
                } else {
                    gotmpl::Template::new(name).funcs(sprig_subset()).parse(&source).map(Parsed::Text)
                }
                .map_err(|e| format!("courier template {} ({name}): {e}", t.as_str()))?;
                let parsed = Arc::new(parsed);
                if let Ok(mut p) = self.parsed.lock() {
                    p.insert((t, part), parsed.clone());
                }
                parsed
            }
        };
        let value = go_data(data);
        match &*parsed {
            Parsed::Html(tpl) => tpl.execute_to_string(&value),
            Parsed::Text(tpl) => tpl.execute_to_string(&value),
        }
        .map_err(|e| format!("courier template {} ({name}): {e}", t.as_str()))
    }

    /// Subject, plain-text and HTML body of an e-mail.
    pub async fn email(&self, t: TemplateType, data: &Json) -> Result<Email, String> {
        Ok(Email {
            subject: self.render(t, Part::Subject, data).await?.trim().to_string(),
            plaintext: self.render(t, Part::Plaintext, data).await?,
            html: self.render(t, Part::Html, data).await?,
        })
    }

    /// The body of an SMS.
    pub async fn sms(&self, t: TemplateType, data: &Json) -> Result<String, String> {
        self.render(t, Part::Sms, data).await
    }
}

/// The Go field name of a template data key (`recovery_url` → `RecoveryURL`).
fn go_name(key: &str) -> String {
    key.split('_')
        .map(|w| match w {
            "url" => "URL".to_string(),
            "id" => "ID".to_string(),
            _ => {
                let mut c = w.chars();
                c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
            }
        })
        .collect()
}

/// Template data as Go templates see it: top-level keys under their Go field names; nested
/// maps (identity, traits, transient payload) keep their JSON keys.
fn go_data(data: &Json) -> Value {
    let mut top = serde_json::Map::new();
    if let Some(o) = data.as_object() {
        for (k, v) in o {
            top.insert(go_name(k), v.clone());
        }
    }
    gotmpl::to_value(&Json::Object(top)).unwrap_or(Value::Nil)
}

fn arg_str(args: &[Value], i: usize) -> String {
    match args.get(i) {
        Some(Value::String(s)) => s.to_string(),
        Some(Value::Nil) | None => String::new(),
        Some(v) => v.to_string(),
    }
}

fn one_string(name: &'static str, f: fn(&str) -> String) -> impl Fn(&[Value]) -> TmplResult<Value> + Send + Sync {
    move |args: &[Value]| {
        if args.len() != 1 {
            return Err(TemplateError::ArgCount { name: name.to_string(), expected: 1, got: args.len() });
        }
        Ok(Value::String(f(&arg_str(args, 0)).into()))
    }
}

/// The sprig functions Kratos' own templates and common custom templates use.
fn sprig_subset() -> gotmpl::FuncMap {
    let mut m = gotmpl::FuncMap::new();
    m.insert("upper".into(), Arc::new(one_string("upper", |s| s.to_uppercase())));
    m.insert("lower".into(), Arc::new(one_string("lower", |s| s.to_lowercase())));
    m.insert("trim".into(), Arc::new(one_string("trim", |s| s.trim().to_string())));
    m.insert(
        "title".into(),
        Arc::new(one_string("title", |s| {
            s.split(' ')
                .map(|w| {
                    let mut c = w.chars();
                    c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
                })
                .collect::<Vec<_>>()
                .join(" ")
        })),
    );
    // `default DEFAULT VALUE`: VALUE unless it is empty.
    m.insert(
        "default".into(),
        Arc::new(|args: &[Value]| {
            if args.is_empty() || args.len() > 2 {
                return Err(TemplateError::ArgCount { name: "default".into(), expected: 2, got: args.len() });
            }
            Ok(match args.get(1) {
                Some(v) if v.is_truthy() => v.clone(),
                _ => args[0].clone(),
            })
        }),
    );
    m.insert(
        "replace".into(),
        Arc::new(|args: &[Value]| {
            if args.len() != 3 {
                return Err(TemplateError::ArgCount { name: "replace".into(), expected: 3, got: args.len() });
            }
            Ok(Value::String(arg_str(args, 2).replace(&arg_str(args, 0), &arg_str(args, 1)).into()))
        }),
    );
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn templates(config: CourierConfig) -> Templates {
        Templates::new(Arc::new(config))
    }

    #[tokio::test]
    async fn every_builtin_renders() -> Result<(), String> {
        let t = templates(CourierConfig::default());
        let data = json!({
            "to": "a@example.com", "recovery_url": "https://x/r?a=1&b=2", "recovery_code": "123456",
            "verification_url": "https://x/v", "verification_code": "654321", "login_code": "111111",
            "registration_code": "222222", "identity": {"traits": {"email": "a@example.com"}},
            "request_url": "https://x/self-service", "expires_in_minutes": 60,
        });
        for ty in TemplateType::ALL {
            let e = t.email(ty, &data).await?;
            assert!(!e.subject.is_empty() && !e.plaintext.is_empty() && !e.html.is_empty(), "{ty:?}");
            assert!(!e.plaintext.contains("<no value>"), "{ty:?}: {}", e.plaintext);
        }
        let e = t.email(TemplateType::RecoveryValid, &data).await?;
        // The HTML body escapes for its context; the plain body does not.
        assert!(e.html.contains("https://x/r?a=1&amp;b=2"), "{}", e.html);
        assert!(e.plaintext.contains("https://x/r?a=1&b=2"));
        assert_eq!(t.sms(TemplateType::VerificationCodeValid, &data).await?, "Your verification code is: 654321\n");
        Ok(())
    }

    #[tokio::test]
    async fn kratos_style_override_renders_unchanged() -> Result<(), String> {
        use base64::Engine;
        // A custom template as written for Kratos: a `define`d block, `template`, pipelines
        // into sprig's `default`, `printf`, `with`/`range` over the transient payload and
        // whitespace trimming.
        let src = "{{- define \"greeting\" }}Hi {{ .Identity.traits.name.first | default \"there\" }},{{ end -}}\n{{ template \"greeting\" . }}\n\nYour code is {{ printf \"%s\" .RecoveryCode }} (valid for {{ .ExpiresInMinutes }} minutes).\n{{ with .TransientPayload }}{{ range $k, $v := . }}{{ $k }}={{ $v }};{{ end }}{{ end }}\n";
        let uri = format!("base64://{}", base64::engine::general_purpose::STANDARD.encode(src));
        let mut config = CourierConfig::default();
        let mut variants = crate::config::TemplateVariants::default();
        variants.valid.email.body.plaintext = Some(uri);
        config.templates.insert("recovery_code".into(), variants);
        let t = templates(config);
        let data = json!({
            "to": "ann@example.com", "recovery_code": "123456", "expires_in_minutes": 15,
            "identity": {"traits": {"name": {"first": "Ann"}}}, "transient_payload": {"b": "2", "a": "1"},
        });
        let out = t.render(TemplateType::RecoveryCodeValid, Part::Plaintext, &data).await?;
        // What Go's text/template (with sprig) prints for this template and data.
        assert_eq!(out, "Hi Ann,\n\nYour code is 123456 (valid for 15 minutes).\na=1;b=2;\n");
        // Parts without an override still come from the built-ins.
        let e = t.email(TemplateType::RecoveryCodeValid, &data).await?;
        assert!(e.html.contains("123456"));
        Ok(())
    }

    #[test]
    fn go_names() {
        assert_eq!(go_name("recovery_url"), "RecoveryURL");
        assert_eq!(go_name("expires_in_minutes"), "ExpiresInMinutes");
        assert_eq!(go_name("request_url_domain"), "RequestURLDomain");
        assert_eq!(go_name("to"), "To");
    }
}
