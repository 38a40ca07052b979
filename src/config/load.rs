//! Loading: defaults → file → environment. The file is TOML (tessera's documented format), or
//! YAML (`.yml`, `.yaml`) or JSON (`.json`) as Kratos reads them, with the same keys. The
//! environment: Kratos' names (`SERVE_PUBLIC_PORT`, `SELFSERVICE_FLOWS_LOGIN_UI_URL`,
//! `SECRETS_DEFAULT`, … — a key path upper-cased with `_` between and inside segments, resolved
//! against Kratos' configuration schema), then tessera's `TESSERA__A__B`, which wins; `DSN`.
//!
//! A key tessera implements is deserialised; a key that exists only in Kratos' configuration
//! schema is accepted with a warning (so Kratos configs load); any other key, a wrong type or a
//! bad value is an error naming the key.

use super::sections::Config;
use serde_json::Value as Json;
use std::path::Path;
use std::sync::OnceLock;

/// The configuration and the warnings produced while loading it.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<String>,
    /// What the file and the environment gave, before defaults.
    given: toml::Table,
}

impl Loaded {
    /// Whether the file or the environment set the key at `path` (defaults do not count).
    pub fn sets(&self, path: &[&str]) -> bool {
        let path: Vec<String> = path.iter().map(|s| s.to_string()).collect();
        lookup(&self.given, &path).is_some()
    }
}

/// A configuration that cannot be used. Its `Display` is one line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config: cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("config: {path}:{line}:{column}: {reason}")]
    Syntax { path: String, line: usize, column: usize, reason: String },
    #[error("config: unknown key `{0}` (neither a tessera nor a Kratos configuration key)")]
    UnknownKey(String),
    #[error("config: {path}:{line}: unknown key `{key}` (neither a tessera nor a Kratos configuration key)")]
    UnknownKeyAt { path: String, line: usize, key: String },
    #[error("config: invalid value for `{key}`: {reason}")]
    Invalid { key: String, reason: String },
}

const ENV_PREFIX: &str = "TESSERA__";

/// Loads the configuration from an optional file and the given environment.
pub fn load(file: Option<&Path>, env: impl IntoIterator<Item = (String, String)>) -> Result<Loaded, ConfigError> {
    let (mut root, text) = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| ConfigError::Read { path: path.display().to_string(), reason: e.to_string() })?;
            (parse_file(path, &text)?, text)
        }
        None => (toml::Table::new(), String::new()),
    };
    let from_file = root.clone();
    // Kratos' names first, so tessera's own names win.
    let mut settings = Vec::new();
    let mut own = Vec::new();
    for (key, value) in env {
        if key == "DSN" {
            own.push((vec!["dsn".to_string()], env_value(&value)));
        } else if let Some(rest) = key.strip_prefix(ENV_PREFIX) {
            let path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
            if path.iter().any(|s| s.is_empty()) {
                return Err(ConfigError::UnknownKey(key));
            }
            own.push((path, env_value(&value)));
        } else if let Some((path, leaf)) = kratos_env_key(&key)
            && let Some(value) = typed_env_value(&value, leaf)
        {
            settings.push((path, value));
        }
    }
    for (path, value) in settings.into_iter().chain(own) {
        set_path(&mut root, &path, value).map_err(|reason| ConfigError::Invalid { key: path.join("."), reason })?;
    }
    from_table(root).map_err(|e| match (e, file) {
        // A key from the file is named with its line.
        (ConfigError::UnknownKey(key), Some(path)) if lookup(&from_file, &split_key(&key)).is_some() => {
            let line = line_of(&text, &split_key(&key));
            ConfigError::UnknownKeyAt { path: path.display().to_string(), line, key }
        }
        (e, _) => e,
    })
}

fn split_key(key: &str) -> Vec<String> {
    key.split('.').map(str::to_string).collect()
}

/// The file's keys as a TOML table, read by the file's extension.
pub fn parse_file(path: &Path, text: &str) -> Result<toml::Table, ConfigError> {
    let name = path.display().to_string();
    let syntax = |line: usize, column: usize, reason: String| ConfigError::Syntax {
        path: name.clone(),
        line,
        column,
        reason: reason.lines().next().unwrap_or_default().trim().to_string(),
    };
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase();
    let json = match extension.as_str() {
        "yml" | "yaml" => serde_norway::from_str::<Json>(text).map_err(|e| {
            let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
            syntax(line, column, e.to_string())
        })?,
        "json" => serde_json::from_str::<Json>(text).map_err(|e| syntax(e.line(), e.column(), e.to_string()))?,
        _ => {
            return text.parse::<toml::Table>().map_err(|e| {
                let (line, column) = e.span().map_or((0, 0), |s| line_col(text, s.start));
                syntax(line, column, e.message().to_string())
            });
        }
    };
    match json_to_toml(json) {
        Some(toml::Value::Table(t)) => Ok(t),
        // An empty file is an empty configuration.
        None => Ok(toml::Table::new()),
        Some(_) => Err(syntax(1, 1, "the file must hold a map of keys".into())),
    }
}

/// A JSON (or YAML) value as TOML; `null`s are left out (TOML has none: the key is unset).
pub fn json_to_toml(v: Json) -> Option<toml::Value> {
    Some(match v {
        Json::Null => return None,
        Json::Bool(b) => toml::Value::Boolean(b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => toml::Value::Integer(i),
            None => toml::Value::Float(n.as_f64()?),
        },
        Json::String(s) => toml::Value::String(s),
        Json::Array(items) => toml::Value::Array(items.into_iter().filter_map(json_to_toml).collect()),
        Json::Object(map) => {
            toml::Value::Table(map.into_iter().filter_map(|(k, v)| Some((k, json_to_toml(v)?))).collect())
        }
    })
}

/// The line of the file that holds `path`'s last key: the first line after the lines naming
/// its parents in order (TOML headers, YAML or JSON nesting alike); 0 when not found.
fn line_of(text: &str, path: &[String]) -> usize {
    let keys: Vec<&String> = path.iter().filter(|s| s.parse::<usize>().is_err()).collect();
    let names = |line: &str, key: &str| {
        line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-')).any(|w| w == key)
    };
    let mut next = 0;
    for (i, line) in text.lines().enumerate() {
        while next < keys.len() && names(line, keys[next]) {
            next += 1;
        }
        if next == keys.len() {
            return i + 1;
        }
    }
    0
}

/// The key path and schema of a Kratos environment variable name (`SERVE_PUBLIC_PORT` →
/// `serve.public.port`), if Kratos' configuration schema has such a key.
fn kratos_env_key(name: &str) -> Option<(Vec<String>, &'static Json)> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_') {
        return None;
    }
    let tokens: Vec<String> = name.split('_').map(str::to_ascii_lowercase).collect();
    if tokens.iter().any(String::is_empty) {
        return None;
    }
    let root = kratos_schema();
    env_path(root, root, &tokens, 0)
}

fn env_path(
    root: &'static Json,
    node: &'static Json,
    tokens: &[String],
    depth: usize,
) -> Option<(Vec<String>, &'static Json)> {
    let node = resolve(root, node);
    if tokens.is_empty() {
        return Some((Vec::new(), node));
    }
    if depth > 64 || node == &FREE_FORM {
        return None;
    }
    for combinator in ["allOf", "anyOf", "oneOf"] {
        for sub in node.get(combinator).and_then(Json::as_array).into_iter().flatten() {
            if let Some(found) = env_path(root, sub, tokens, depth + 1) {
                return Some(found);
            }
        }
    }
    let props = node.get("properties").and_then(Json::as_object)?;
    (1..=tokens.len()).find_map(|k| {
        let key = tokens[..k].join("_");
        let (mut path, leaf) = env_path(root, props.get(&key)?, &tokens[k..], depth + 1)?;
        path.insert(0, key);
        Some((path, leaf))
    })
}

/// An environment value typed by the key's schema: arrays as JSON or comma-separated,
/// objects as JSON (a variable naming a section with anything else is not meant for us, and
/// ignored), booleans and numbers as literals, anything else as the text itself.
fn typed_env_value(raw: &str, schema: &Json) -> Option<toml::Value> {
    let types: Vec<&str> = match schema.get("type") {
        Some(Json::String(t)) => vec![t.as_str()],
        Some(Json::Array(ts)) => ts.iter().filter_map(Json::as_str).collect(),
        _ => Vec::new(),
    };
    let json = || serde_json::from_str::<Json>(raw).ok().and_then(json_to_toml);
    if types.contains(&"array") {
        if raw.trim_start().starts_with('[')
            && let Some(v) = json()
        {
            return Some(v);
        }
        return Some(toml::Value::Array(raw.split(',').map(|s| toml::Value::String(s.trim().to_string())).collect()));
    }
    let section = types.contains(&"object") || (types.is_empty() && schema.get("properties").is_some());
    if section {
        return json().filter(toml::Value::is_table);
    }
    if types.iter().any(|t| matches!(*t, "boolean" | "integer" | "number")) {
        return Some(env_value(raw));
    }
    Some(toml::Value::String(raw.to_string()))
}

/// Deserialises a TOML table, sorting unimplemented keys into warnings and errors.
pub fn from_table(root: toml::Table) -> Result<Loaded, ConfigError> {
    let mut ignored = Vec::new();
    let original = root.clone();
    let value = toml::Value::Table(root);
    let mut on_ignored = |path: serde_ignored::Path<'_>| ignored.push(path.to_string());
    let de = serde_ignored::Deserializer::new(value, &mut on_ignored);
    let mut config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        let reason = if key.starts_with("secrets") || key.starts_with("dsn") {
            // serde quotes the offending value; never print a secret
            "invalid type (value not shown: it may be a secret)".to_string()
        } else {
            e.inner().to_string().lines().next().unwrap_or_default().to_string()
        };
        ConfigError::Invalid { key, reason }
    })?;
    for (key, value) in [
        ("persistence.max_batch", config.persistence.max_batch),
        ("persistence.buffer_size", config.persistence.buffer_size),
    ] {
        if value == 0 {
            return Err(ConfigError::Invalid { key: key.into(), reason: "must be at least 1".into() });
        }
    }
    let mut warnings = Vec::new();
    for path in ignored {
        let segments: Vec<String> = path.split('.').map(str::to_string).collect();
        // An ignored table is checked leaf by leaf, so a typo inside a Kratos-only section
        // is still an error.
        let mut leaves = Vec::new();
        if let Some(v) = lookup(&original, &segments) {
            collect_leaves(v, &mut segments.clone(), &mut leaves);
        }
        if leaves.is_empty() {
            leaves.push(segments);
        }
        for leaf in &leaves {
            let refs: Vec<&str> = leaf.iter().map(String::as_str).collect();
            if !kratos_knows(&refs) {
                return Err(ConfigError::UnknownKey(leaf.join(".")));
            }
        }
        warnings
            .push(format!("config key `{path}` is a Kratos key that tessera does not implement yet; it is ignored"));
    }
    config.digest = digest(&original);
    Ok(Loaded { config, warnings, given: original })
}

/// Hex SHA-256 of the keys as JSON (keys in order): changes with any key's value.
fn digest(table: &toml::Table) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(serde_json::to_vec(table).unwrap_or_default()))
}

fn lookup<'a>(table: &'a toml::Table, path: &[String]) -> Option<&'a toml::Value> {
    let (first, rest) = path.split_first()?;
    let mut cur = table.get(first)?;
    for seg in rest {
        cur = match cur {
            toml::Value::Table(t) => t.get(seg)?,
            toml::Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn collect_leaves(value: &toml::Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match value {
        toml::Value::Table(t) if !t.is_empty() => {
            for (k, v) in t {
                path.push(k.clone());
                collect_leaves(v, path, out);
                path.pop();
            }
        }
        toml::Value::Array(items) if items.iter().any(|i| i.is_table()) => {
            for (i, v) in items.iter().enumerate() {
                path.push(i.to_string());
                collect_leaves(v, path, out);
                path.pop();
            }
        }
        _ => out.push(path.clone()),
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(before.len(), |i| before.len() - i - 1) + 1;
    (line, column)
}

/// Environment values are TOML literals when they parse as one (`4455`, `true`, `["a"]`),
/// otherwise plain strings.
fn env_value(raw: &str) -> toml::Value {
    match format!("v = {raw}").parse::<toml::Table>() {
        Ok(mut t) => t.remove("v").unwrap_or_else(|| toml::Value::String(raw.into())),
        Err(_) => toml::Value::String(raw.into()),
    }
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), String> {
    let (last, parents) = path.split_last().ok_or("empty key")?;
    let mut cur = table;
    for seg in parents {
        let entry = cur.entry(seg.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cur = entry.as_table_mut().ok_or_else(|| format!("`{seg}` is not a table"))?;
    }
    cur.insert(last.clone(), value);
    Ok(())
}

fn kratos_schema() -> &'static Json {
    static SCHEMA: OnceLock<Json> = OnceLock::new();
    SCHEMA.get_or_init(|| serde_json::from_str(include_str!("kratos-config.schema.json")).unwrap_or(Json::Null))
}

/// Whether Kratos' configuration schema has this key path.
pub(crate) fn kratos_knows(path: &[&str]) -> bool {
    let root = kratos_schema();
    schema_has(root, root, path, 0)
}

static FREE_FORM: Json = Json::Bool(true);

fn resolve<'a>(root: &'a Json, node: &'a Json) -> &'a Json {
    match node.get("$ref").and_then(Json::as_str) {
        Some(r) => match r.strip_prefix('#') {
            Some(pointer) => root.pointer(pointer).unwrap_or(node),
            // A reference to another document (e.g. `ory://tracing-config`): free-form.
            None => &FREE_FORM,
        },
        None => node,
    }
}

fn schema_has(root: &Json, node: &Json, path: &[&str], depth: usize) -> bool {
    let Some((seg, rest)) = path.split_first() else {
        return true;
    };
    if depth > 64 {
        return false;
    }
    let node = resolve(root, node);
    if node == &FREE_FORM {
        return true;
    }
    for combinator in ["allOf", "anyOf", "oneOf"] {
        if let Some(subs) = node.get(combinator).and_then(Json::as_array)
            && subs.iter().any(|s| schema_has(root, s, path, depth + 1))
        {
            return true;
        }
    }
    for branch in ["then", "else"] {
        if let Some(sub) = node.get(branch)
            && schema_has(root, sub, path, depth + 1)
        {
            return true;
        }
    }
    if let Some(sub) = node.get("properties").and_then(|p| p.get(*seg)) {
        return schema_has(root, sub, rest, depth + 1);
    }
    if seg.parse::<usize>().is_ok()
        && let Some(items) = node.get("items")
    {
        return schema_has(root, items, rest, depth + 1);
    }
    if let Some(patterns) = node.get("patternProperties").and_then(Json::as_object)
        && let Some(sub) = patterns.values().next()
    {
        return schema_has(root, sub, rest, depth + 1);
    }
    match node.get("additionalProperties") {
        Some(Json::Bool(false)) => false,
        Some(sub @ Json::Object(_)) => schema_has(root, sub, rest, depth + 1),
        Some(_) => true,
        // A free-form object (no declared properties) takes any key.
        None => {
            node.get("properties").is_none()
                && node.get("items").is_none()
                && node.get("type") == Some(&Json::from("object"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{LogFormat, LogLevel};
    use std::time::Duration;

    #[test]
    fn the_digest_follows_the_loaded_keys() {
        let a = parse("[session]\nlifespan = \"1h\"\n").unwrap().config.digest;
        let same = parse("[session]\nlifespan = \"1h\"\n").unwrap().config.digest;
        let other = parse("[session]\nlifespan = \"2h\"\n").unwrap().config.digest;
        assert_eq!(a.len(), 64);
        assert_eq!(a, same);
        assert_ne!(a, other);
    }

    fn env_key(name: &str) -> Option<String> {
        kratos_env_key(name).map(|(path, _)| path.join("."))
    }

    #[test]
    fn kratos_environment_names_resolve_against_its_schema() {
        assert_eq!(env_key("SERVE_PUBLIC_PORT").as_deref(), Some("serve.public.port"));
        assert_eq!(env_key("SELFSERVICE_FLOWS_LOGIN_UI_URL").as_deref(), Some("selfservice.flows.login.ui_url"));
        assert_eq!(
            env_key("SELFSERVICE_DEFAULT_BROWSER_RETURN_URL").as_deref(),
            Some("selfservice.default_browser_return_url")
        );
        assert_eq!(env_key("SECRETS_DEFAULT").as_deref(), Some("secrets.default"));
        assert_eq!(env_key("COURIER_SMTP_CONNECTION_URI").as_deref(), Some("courier.smtp.connection_uri"));
        assert_eq!(env_key("LOG_LEAK_SENSITIVE_VALUES").as_deref(), Some("log.leak_sensitive_values"));
        for unrelated in ["PATH", "HOME", "SERVE_PUBLIC_PORTS", "serve_public_port", "SERVE__PUBLIC"] {
            assert_eq!(env_key(unrelated), None, "{unrelated}");
        }
    }

    #[test]
    fn yaml_and_environment_as_kratos_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("kratos.yaml");
        let yaml = "serve:\n  public:\n    port: 4433\n    cors:\n      enabled: true\nlog:\n  level: debug\n\
                    selfservice:\n  flows:\n    login:\n      lifespan: 10m\n      ui_url: null\n";
        std::fs::write(&file, yaml).unwrap();
        let env = [
            ("SERVE_PUBLIC_PORT", "5000"),
            ("SERVE_PUBLIC_CORS_ALLOWED_ORIGINS", "https://a.example, https://*.b.example"),
            ("SECRETS_DEFAULT", "[\"first-secret-of-32-characters-ok\"]"),
            ("LOG_FORMAT", "json"),
            ("TESSERA__LOG__FORMAT", "text"),
            ("SELFSERVICE_FLOWS_REGISTRATION_ENABLED", "false"),
            // A section named with something that is not JSON is not meant for us.
            ("SERVE_ADMIN", "yes"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let loaded = load(Some(&file), env).unwrap();
        let c = &loaded.config;
        assert_eq!(c.serve.public.port, 5000, "the environment wins over the file");
        assert!(c.serve.public.cors.enabled);
        assert_eq!(c.serve.public.cors.allowed_origins, vec!["https://a.example", "https://*.b.example"]);
        assert_eq!(c.secrets.default.len(), 1);
        assert_eq!(c.log.level, LogLevel::Debug);
        assert_eq!(c.log.format, LogFormat::Text, "tessera's own name wins over Kratos'");
        assert!(!c.selfservice.flows.registration.enabled);
        assert_eq!(c.selfservice.flows.login.lifespan.0, Duration::from_secs(600));
        assert!(!loaded.sets(&["selfservice", "flows", "login", "ui_url"]), "null leaves the key unset");
        // A typo names the key and its line; YAML syntax errors their place.
        std::fs::write(&file, "serve:\n  public:\n    port: 1\nlog:\n  levle: debug\n").unwrap();
        let e = load(Some(&file), Vec::new()).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "config: {}:5: unknown key `log.levle` (neither a tessera nor a Kratos configuration key)",
                file.display()
            )
        );
        std::fs::write(&file, "serve:\n  public: [\n").unwrap();
        let e = load(Some(&file), Vec::new()).unwrap_err().to_string();
        assert!(e.starts_with(&format!("config: {}:", file.display())), "{e}");
        let json = dir.path().join("kratos.json");
        std::fs::write(&json, "{\"serve\": {\"public\": {\"port\": 4999}}}").unwrap();
        assert_eq!(load(Some(&json), Vec::new()).unwrap().config.serve.public.port, 4999);
    }

    fn parse(toml: &str) -> Result<Loaded, ConfigError> {
        from_table(
            toml.parse::<toml::Table>()
                .map_err(|e| ConfigError::Invalid { key: String::new(), reason: e.to_string() })?,
        )
    }

    #[test]
    fn defaults_without_file() -> Result<(), ConfigError> {
        let loaded = load(None, Vec::new())?;
        assert_eq!(loaded.config.serve.public.port, 4433);
        assert_eq!(loaded.config.serve.admin.port, 4434);
        assert_eq!(loaded.config.serve.admin.host, "127.0.0.1");
        assert_eq!(loaded.config.persistence.flush_interval.0, Duration::from_millis(50));
        assert!(loaded.warnings.is_empty());
        Ok(())
    }

    #[test]
    fn kratos_keys_path_by_path() -> Result<(), ConfigError> {
        let loaded = parse(
            r#"
            dsn = "memory"
            [serve.public]
            port = 4455
            [serve.public.cors]
            enabled = true
            allowed_origins = ["https://*.example.org"]
            [tracing]
            provider = "jaeger"
            [selfservice.flows.login]
            ui_url = "http://localhost/login"
            [selfservice.flows.settings]
            required_aal = "aal1"
            [selfservice.methods.oidc]
            enabled = false
            [log]
            level = "debug"
            format = "json"
            [hashers.argon2]
            memory = "64MB"
            [persistence]
            flush_interval = "20ms"
            "#,
        )?;
        assert_eq!(loaded.config.serve.public.port, 4455);
        assert_eq!(loaded.config.log.level, LogLevel::Debug);
        assert_eq!(loaded.config.log.format, LogFormat::Json);
        assert_eq!(loaded.config.hashers.argon2.memory.0, 64 << 20);
        assert_eq!(loaded.config.persistence.flush_interval.0, Duration::from_millis(20));
        assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
        assert!(loaded.warnings.iter().any(|w| w.contains("`tracing`")), "{:?}", loaded.warnings);
        assert!(loaded.config.serve.public.cors.enabled);
        assert!(loaded.config.serve.public.cors.allows("https://app.example.org"));
        assert_eq!(loaded.config.selfservice.flows.login.ui_url, "http://localhost/login");
        assert_eq!(loaded.config.selfservice.flows.settings.required_aal, "aal1");
        assert!(!loaded.config.selfservice.methods.oidc.enabled);
        Ok(())
    }

    #[test]
    fn typo_is_an_error_naming_the_key() {
        let err = parse("[serve.public]\nprot = 1\n").err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("config: unknown key `serve.public.prot` (neither a tessera nor a Kratos configuration key)")
        );
        let err = parse("[persistence]\nflush_intervall = \"1s\"\n").err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("`persistence.flush_intervall`")));
        // inside a section tessera does not implement yet
        let err = parse("[selfservice.flows.login]\nui_ulr = \"x\"\n").err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("`selfservice.flows.login.ui_ulr`")));
        let err = parse("[[selfservice.methods.oidc.config.providers]]\nid = \"g\"\nprovder = \"google\"\n")
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("providers.0.provder")));
        assert!(parse("[tracing]\nprovider = \"jaeger\"\n").is_ok());
        let err = parse("[secrets]\ndefault = \"hunter2-secret\"\n").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("`secrets.default`") && !err.contains("hunter2"), "{err}");
        assert!(parse("[persistence]\nmax_batch = 0\n").is_err());
        let ok = parse("[[selfservice.methods.oidc.config.providers]]\nid = \"g\"\nprovider = \"google\"\n");
        assert!(ok.is_ok(), "{ok:?}");
    }

    #[test]
    fn wrong_type_and_bad_duration_name_the_key() {
        let err = parse("[serve.public]\nport = \"abc\"\n").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.starts_with("config: invalid value for `serve.public.port`: invalid type"), "{err}");
        let err =
            parse("[persistence]\nflush_interval = \"5 parsecs\"\n").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.starts_with("config: invalid value for `persistence.flush_interval`: invalid duration"), "{err}");
        let err = parse("[log]\nlevel = \"loud\"\n").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("`log.level`") && err.contains("unknown variant"), "{err}");
        assert!(!err.contains('\n'));
    }

    #[test]
    fn environment_overrides_file() -> Result<(), ConfigError> {
        let dir = std::env::temp_dir().join(format!("tessera-cfg-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).map_err(|e| ConfigError::Read { path: String::new(), reason: e.to_string() })?;
        let file = dir.join("t.toml");
        std::fs::write(&file, "dsn = \"memory\"\n[serve.public]\nport = 1000\n")
            .map_err(|e| ConfigError::Read { path: String::new(), reason: e.to_string() })?;
        let env = vec![
            ("TESSERA__SERVE__PUBLIC__PORT".to_string(), "2000".to_string()),
            ("TESSERA__PERSISTENCE__MAX_BATCH".to_string(), "7".to_string()),
            ("DSN".to_string(), "sqlite:///tmp/x.db".to_string()),
            ("UNRELATED".to_string(), "x".to_string()),
        ];
        let loaded = load(Some(&file), env)?;
        assert_eq!(loaded.config.serve.public.port, 2000);
        assert_eq!(loaded.config.persistence.max_batch, 7);
        assert_eq!(loaded.config.dsn.as_deref(), Some("sqlite:///tmp/x.db"));
        let err =
            load(Some(&file), vec![("TESSERA__SERVE__PUBLIK__PORT".into(), "1".into())]).err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("`serve.publik.port`")));
        let _ = std::fs::remove_dir_all(dir);
        Ok(())
    }

    #[test]
    fn syntax_error_names_line() {
        let dir = std::env::temp_dir().join(format!("tessera-cfg-{}", uuid::Uuid::new_v4()));
        let _ = std::fs::create_dir_all(&dir);
        let file = dir.join("bad.toml");
        let _ = std::fs::write(&file, "[serve]\nport = = 3\n");
        let err = load(Some(&file), Vec::new()).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("bad.toml:2:"), "{err}");
        assert!(!err.contains('\n'));
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[cfg(test)]
mod documented_file {
    use super::*;

    /// `config/tessera.toml` documents every key with its default: it must load cleanly and
    /// mean the same as no file at all.
    #[test]
    fn documented_defaults_load_cleanly() -> Result<(), ConfigError> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/tessera.toml");
        let loaded = load(Some(&path), Vec::new())?;
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        let defaults = load(None, Vec::new())?.config;
        assert_eq!(format!("{:?}", loaded.config), format!("{:?}", defaults));
        Ok(())
    }
}
