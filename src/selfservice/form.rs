//! A submitted payload: JSON, or a form whose dotted names (`traits.email`) become nested
//! objects, with form strings typed as the identity schema says (behaviour.md §13.4).

use serde_json::{Value as Json, json};

/// The deepest nesting a form field name (`a.b.c`) may ask for.
pub const MAX_FORM_DEPTH: usize = 32;

/// A flow submit's payload.
#[derive(Debug, Clone)]
pub struct Submit {
    /// The payload as nested JSON.
    pub body: Json,
    /// It came as a form (values are strings until typed by the schema).
    pub from_form: bool,
    /// The provider sent the browser back (`/self-service/methods/oidc/callback`): the
    /// flow's method finishes what it started. Never set from a request body.
    pub callback: Option<std::sync::Arc<Callback>>,
}

/// What a provider's redirect back carried.
#[derive(Debug, Clone)]
pub struct Callback {
    /// The provider id of the callback path (empty on the generic callback).
    pub provider: String,
    /// The query (and form) parameters: `state`, `code`, `error`, …
    pub params: Vec<(String, String)>,
}

impl Callback {
    /// A parameter, if present and not empty.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }
}

impl Submit {
    /// A payload.
    pub fn new(body: Json, from_form: bool) -> Submit {
        Submit { body, from_form, callback: None }
    }

    /// The submit a provider's callback makes to the flow it belongs to.
    pub fn callback(method: &str, callback: Callback) -> Submit {
        Submit {
            body: json!({"method": method, "provider": callback.provider}),
            from_form: false,
            callback: Some(std::sync::Arc::new(callback)),
        }
    }

    /// The `method` it names (empty when none).
    pub fn method(&self) -> &str {
        self.body.get("method").and_then(Json::as_str).unwrap_or_default()
    }

    /// A string field, if present and not empty.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.body.get(key).and_then(Json::as_str).filter(|s| !s.is_empty())
    }

    /// A boolean field: JSON `true`, or a form value Go's `strconv.ParseBool` reads as true.
    pub fn flag(&self, key: &str) -> bool {
        match self.body.get(key) {
            Some(Json::Bool(b)) => *b,
            Some(Json::String(s)) => matches!(s.as_str(), "1" | "t" | "T" | "true" | "TRUE" | "True"),
            _ => false,
        }
    }

    /// A string field trimmed, if present and not empty after trimming.
    pub fn trimmed(&self, key: &str) -> Option<&str> {
        self.body.get(key).and_then(Json::as_str).map(str::trim).filter(|s| !s.is_empty())
    }

    /// `transient_payload`, passed on to hooks and messages.
    pub fn transient_payload(&self) -> Option<Json> {
        self.body.get("transient_payload").cloned()
    }
}

/// Decodes a form-encoded submit (`application/x-www-form-urlencoded` body, or the query of a
/// GET) into the JSON a JSON submit has: dotted names nest (at most [`MAX_FORM_DEPTH`] parts),
/// `flow` and empty values are dropped, and a JSON-encoded `transient_payload` is parsed. The
/// error is the reason for a 400.
pub fn decode_form(source: &[u8]) -> Result<Json, String> {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(source).into_owned().collect();
    // Dotted names become nested objects: bound the nesting (and so every recursion over it).
    if pairs.iter().any(|(k, _)| k.split('.').count() > MAX_FORM_DEPTH) {
        return Err(format!("A form field name has more than {MAX_FORM_DEPTH} dot-separated parts."));
    }
    let mut v = form_to_json(&pairs);
    if let Some(o) = v.as_object_mut() {
        o.remove("flow");
        o.retain(|_, v| !matches!(v, Json::String(s) if s.is_empty()));
        // A form cannot carry JSON objects; a JSON-encoded transient payload is accepted.
        if let Some(Json::String(tp)) = o.get("transient_payload").cloned() {
            match serde_json::from_str::<Json>(&tp) {
                Ok(p) if p.is_object() => {
                    o.insert("transient_payload".into(), p);
                }
                _ => return Err("transient_payload must be a JSON object".into()),
            }
        }
    }
    Ok(v)
}

/// Converts a form-encoded body (`traits.email=…`) into the nested JSON a JSON body has.
/// Callers bound the depth with [`MAX_FORM_DEPTH`].
pub fn form_to_json(pairs: &[(String, String)]) -> Json {
    let mut root = serde_json::Map::new();
    for (key, value) in pairs {
        let parts: Vec<&str> = key.split('.').collect();
        insert_path(&mut root, &parts, Json::String(value.clone()));
    }
    Json::Object(root)
}

fn insert_path(obj: &mut serde_json::Map<String, Json>, parts: &[&str], value: Json) {
    let Some((first, rest)) = parts.split_first() else { return };
    if rest.is_empty() {
        // The first value of a repeated key wins.
        obj.entry(first.to_string()).or_insert(value);
        return;
    }
    let child = obj.entry(first.to_string()).or_insert_with(|| Json::Object(Default::default()));
    if !child.is_object() {
        *child = Json::Object(Default::default());
    }
    if let Json::Object(map) = child {
        insert_path(map, rest, value);
    }
}

/// Coerces form strings in `traits` to the JSON types the identity schema declares
/// (numbers, booleans), as Kratos' form decoder does.
pub fn coerce_traits(schema: &Json, traits: &mut Json) {
    fn walk(root: &Json, schema: &Json, value: &mut Json, depth: usize) {
        if depth > 16 {
            return;
        }
        let schema = match schema.get("$ref").and_then(Json::as_str).and_then(|r| r.strip_prefix('#')) {
            Some(p) => root.pointer(p).unwrap_or(schema),
            None => schema,
        };
        let kind = schema.get("type").and_then(|t| match t {
            Json::String(s) => Some(s.as_str()),
            Json::Array(a) => a.iter().filter_map(Json::as_str).find(|s| *s != "null"),
            _ => None,
        });
        match (kind, &mut *value) {
            (Some("object"), Json::Object(map)) => {
                if let Some(props) = schema.get("properties").and_then(Json::as_object) {
                    for (k, v) in map.iter_mut() {
                        if let Some(s) = props.get(k) {
                            walk(root, s, v, depth + 1);
                        }
                    }
                }
            }
            (Some("integer"), Json::String(s)) => {
                if let Ok(n) = s.trim().parse::<i64>() {
                    *value = json!(n);
                }
            }
            (Some("number"), Json::String(s)) => {
                if let Ok(n) = s.trim().parse::<f64>()
                    && let Some(num) = serde_json::Number::from_f64(n)
                {
                    *value = if n.fract() == 0.0 && n.abs() < 9.0e15 { json!(n as i64) } else { Json::Number(num) };
                }
            }
            (Some("boolean"), Json::String(s)) => match s.as_str() {
                "true" | "on" | "1" => *value = json!(true),
                "false" | "off" | "0" | "" => *value = json!(false),
                _ => {}
            },
            _ => {}
        }
    }
    if let Some(traits_schema) = schema.pointer("/properties/traits") {
        walk(schema, traits_schema, traits, 0);
    }
}

/// Removes empty-string trait values from a form submit (an empty optional field is absent).
pub fn drop_empty_strings(traits: &mut Json) {
    if let Json::Object(map) = traits {
        map.retain(|_, v| !matches!(v, Json::String(s) if s.is_empty()));
        for v in map.values_mut() {
            drop_empty_strings(v);
        }
    }
}

/// The submitted traits (`None` when absent or not an object), typed as `schema` says when
/// they came from a form (where empty values count as absent).
pub fn submitted_traits(submit: &Submit, schema: &Json) -> Option<Json> {
    let mut traits = submit.body.get("traits").cloned().filter(Json::is_object)?;
    if submit.from_form {
        drop_empty_strings(&mut traits);
        coerce_traits(schema, &mut traits);
    }
    Some(traits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_names_nest_and_the_schema_types_them() {
        let pairs: Vec<(String, String)> = [
            ("traits.email", "a@example.org"),
            ("traits.age", "42"),
            ("traits.newsletter", "on"),
            ("traits.name.first", ""),
            ("traits.email", "second@example.org"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let schema = json!({"properties": {"traits": {"type": "object", "properties": {
            "email": {"type": "string"}, "age": {"type": "integer"}, "newsletter": {"type": "boolean"},
            "name": {"type": "object", "properties": {"first": {"type": "string"}}}
        }}}});
        let submit = Submit::new(form_to_json(&pairs), true);
        let traits = submitted_traits(&submit, &schema).unwrap_or_default();
        assert_eq!(
            traits,
            json!({"email": "a@example.org", "age": 42, "newsletter": true, "name": {}}),
            "the first value of a repeated key wins; empty values are absent"
        );
        assert_eq!(Submit::new(json!({"traits": "x"}), false).body.get("traits"), Some(&json!("x")));
        assert_eq!(submitted_traits(&Submit::new(json!({"traits": "x"}), false), &schema), None);
    }
}
