//! Loading: defaults → TOML file → environment (`TESSERA__A__B`, `DSN`).
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
    #[error("config: invalid value for `{key}`: {reason}")]
    Invalid { key: String, reason: String },
}

const ENV_PREFIX: &str = "TESSERA__";

/// Loads the configuration from an optional TOML file and the given environment.
pub fn load(file: Option<&Path>, env: impl IntoIterator<Item = (String, String)>) -> Result<Loaded, ConfigError> {
    let mut root = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| ConfigError::Read { path: path.display().to_string(), reason: e.to_string() })?;
            text.parse::<toml::Table>().map_err(|e| {
                let (line, column) = e.span().map_or((0, 0), |s| line_col(&text, s.start));
                ConfigError::Syntax {
                    path: path.display().to_string(),
                    line,
                    column,
                    reason: e.message().trim().to_string(),
                }
            })?
        }
        None => toml::Table::new(),
    };
    for (key, value) in env {
        let path: Vec<String> = if key == "DSN" {
            vec!["dsn".into()]
        } else if let Some(rest) = key.strip_prefix(ENV_PREFIX) {
            rest.split("__").map(|s| s.to_ascii_lowercase()).collect()
        } else {
            continue;
        };
        if path.iter().any(|s| s.is_empty()) {
            return Err(ConfigError::UnknownKey(key));
        }
        set_path(&mut root, &path, env_value(&value))
            .map_err(|reason| ConfigError::Invalid { key: path.join("."), reason })?;
    }
    from_table(root)
}

/// Deserialises a TOML table, sorting unimplemented keys into warnings and errors.
pub fn from_table(root: toml::Table) -> Result<Loaded, ConfigError> {
    let mut ignored = Vec::new();
    let original = root.clone();
    let value = toml::Value::Table(root);
    let mut on_ignored = |path: serde_ignored::Path<'_>| ignored.push(path.to_string());
    let de = serde_ignored::Deserializer::new(value, &mut on_ignored);
    let config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
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
    Ok(Loaded { config, warnings, given: original })
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
            [oauth2_provider]
            url = "http://127.0.0.1:1/"
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
        assert!(loaded.warnings.iter().any(|w| w.contains("`oauth2_provider`")), "{:?}", loaded.warnings);
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
