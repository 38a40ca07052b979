//! The UI container (`uiContainer`): nodes, groups, attributes and messages, the trait
//! inputs generated from an identity schema, and how errors land in it (behaviour.md §13).

use crate::catalogue::{self as text, Text};
use crate::schema::UiViolation;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

/// Node groups (`uiNode.group`).
pub mod group {
    pub const DEFAULT: &str = "default";
    pub const PASSWORD: &str = "password";
    pub const PROFILE: &str = "profile";
    pub const IDENTIFIER_FIRST: &str = "identifier_first";
    pub const OIDC: &str = "oidc";
    pub const CODE: &str = "code";
    pub const LINK: &str = "link";
    pub const TOTP: &str = "totp";
    pub const LOOKUP_SECRET: &str = "lookup_secret";
    pub const WEBAUTHN: &str = "webauthn";
    pub const PASSKEY: &str = "passkey";
}

/// `uiContainer`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Container {
    pub action: String,
    pub method: String,
    pub nodes: Vec<Node>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<Text>,
}

/// `uiNode`. Attributes are kept as a JSON object (their shape depends on the node type).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    #[serde(rename = "type")]
    pub kind: String,
    pub group: String,
    pub attributes: Map<String, Json>,
    pub messages: Vec<Text>,
    pub meta: Meta,
}

/// `uiNode.meta`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<Text>,
}

/// A builder for `input` nodes.
pub struct Input {
    attrs: Map<String, Json>,
    group: &'static str,
    label: Option<Text>,
}

impl Input {
    /// An input named `name` of HTML type `kind`.
    pub fn new(group: &'static str, name: &str, kind: &str) -> Input {
        let mut attrs = Map::new();
        attrs.insert("name".into(), name.into());
        attrs.insert("type".into(), kind.into());
        Input { attrs, group, label: None }
    }

    /// Sets `value`.
    pub fn value(mut self, v: impl Into<Json>) -> Input {
        self.attrs.insert("value".into(), v.into());
        self
    }

    /// Marks the input required.
    pub fn required(mut self) -> Input {
        self.attrs.insert("required".into(), true.into());
        self
    }

    /// Sets `autocomplete`.
    pub fn autocomplete(mut self, v: &str) -> Input {
        self.attrs.insert("autocomplete".into(), v.into());
        self
    }

    /// Sets `pattern`.
    pub fn pattern(mut self, v: &str) -> Input {
        self.attrs.insert("pattern".into(), v.into());
        self
    }

    /// Sets `maxlength`.
    pub fn max_length(mut self, n: usize) -> Input {
        self.attrs.insert("maxlength".into(), n.into());
        self
    }

    /// Sets `meta.label`.
    pub fn label(mut self, t: Text) -> Input {
        self.label = Some(t);
        self
    }

    /// The node (`disabled` and `node_type` are always present).
    pub fn node(mut self) -> Node {
        self.attrs.entry("disabled").or_insert(false.into());
        self.attrs.insert("node_type".into(), "input".into());
        Node {
            kind: "input".into(),
            group: self.group.into(),
            attributes: self.attrs,
            messages: Vec::new(),
            meta: Meta { label: self.label },
        }
    }
}

impl Node {
    /// The node's id: the `name` attribute of inputs, the `id` of other nodes.
    pub fn name(&self) -> &str {
        self.attributes.get("name").or_else(|| self.attributes.get("id")).and_then(Json::as_str).unwrap_or_default()
    }

    /// The HTML input type.
    pub fn input_type(&self) -> &str {
        self.attributes.get("type").and_then(Json::as_str).unwrap_or_default()
    }

    /// Sets or removes the value.
    pub fn set_value(&mut self, v: Option<Json>) {
        match v {
            Some(v) => self.attributes.insert("value".into(), v),
            None => self.attributes.remove("value"),
        };
    }
}

/// An anchor (`a`) node: a link the UI shows, e.g. "Continue" after verification.
pub fn anchor(group: &'static str, id: &str, href: &str, title: Text) -> Node {
    let mut attrs = Map::new();
    attrs.insert("href".into(), href.into());
    attrs.insert("title".into(), serde_json::to_value(&title).unwrap_or(Json::Null));
    attrs.insert("id".into(), id.into());
    attrs.insert("node_type".into(), "a".into());
    Node {
        kind: "a".into(),
        group: group.into(),
        attributes: attrs,
        messages: Vec::new(),
        meta: Meta { label: Some(title) },
    }
}

/// A node of a type other than `input` (`img`, `text`, `script`) with these attributes.
fn other_node(kind: &str, group: &'static str, mut attrs: Map<String, Json>, label: Option<Text>) -> Node {
    attrs.insert("node_type".into(), kind.into());
    Node { kind: kind.into(), group: group.into(), attributes: attrs, messages: Vec::new(), meta: Meta { label } }
}

/// An image (`img`) node, e.g. a QR code as a `data:` URL.
pub fn image(group: &'static str, id: &str, src: &str, size: u32, label: Text) -> Node {
    let mut attrs = Map::new();
    attrs.insert("src".into(), src.into());
    attrs.insert("id".into(), id.into());
    attrs.insert("width".into(), size.into());
    attrs.insert("height".into(), size.into());
    other_node("img", group, attrs, Some(label))
}

/// A `text` node showing `shown` (e.g. a secret to copy).
pub fn text(group: &'static str, id: &str, shown: Text, label: Text) -> Node {
    let mut attrs = Map::new();
    attrs.insert("text".into(), serde_json::to_value(&shown).unwrap_or(Json::Null));
    attrs.insert("id".into(), id.into());
    other_node("text", group, attrs, Some(label))
}

/// A `script` node loading `src` (with its subresource `integrity`).
pub fn script(group: &'static str, id: &str, src: &str, integrity: &str, nonce: &str) -> Node {
    let mut attrs = Map::new();
    attrs.insert("src".into(), src.into());
    attrs.insert("async".into(), true.into());
    attrs.insert("referrerpolicy".into(), "no-referrer".into());
    attrs.insert("crossorigin".into(), "anonymous".into());
    attrs.insert("integrity".into(), integrity.into());
    attrs.insert("type".into(), "text/javascript".into());
    attrs.insert("id".into(), id.into());
    attrs.insert("nonce".into(), nonce.into());
    other_node("script", group, attrs, None)
}

/// A `method` submit button.
pub fn submit_button(group: &'static str, method: &str, label: Text) -> Node {
    Input::new(group, "method", "submit").value(method).label(label).node()
}

/// The CSRF node (browser flows only); its value is filled in per response.
pub fn csrf_node() -> Node {
    Input::new(group::DEFAULT, "csrf_token", "hidden").value("").required().node()
}

impl Container {
    /// An empty POST container submitting to `action`.
    pub fn new(action: String) -> Container {
        Container { action, method: "POST".into(), nodes: Vec::new(), messages: Vec::new() }
    }

    /// The node named `name` (first in `group` when given).
    pub fn node_mut(&mut self, name: &str, group: Option<&str>) -> Option<&mut Node> {
        self.nodes.iter_mut().find(|n| n.name() == name && group.is_none_or(|g| n.group == g))
    }

    /// Removes every message (flow level and nodes).
    pub fn reset_messages(&mut self) {
        self.messages.clear();
        for n in &mut self.nodes {
            n.messages.clear();
        }
    }

    /// Empties every password input (after a failed submit).
    pub fn clear_passwords(&mut self) {
        for n in &mut self.nodes {
            if n.input_type() == "password" {
                n.attributes.remove("value");
            }
        }
    }

    /// Adds a message to the node `field`; a missing node is created as a text input (§13.2).
    pub fn add_field_message(&mut self, field: &str, message: Text) {
        if field.is_empty() {
            self.messages.push(message);
            return;
        }
        if let Some(n) = self.nodes.iter_mut().find(|n| n.name() == field) {
            n.messages.push(message);
            return;
        }
        let mut node = Input::new(group::DEFAULT, field, "text").node();
        node.messages.push(message);
        self.nodes.push(node);
    }

    /// Renders schema violations into the UI.
    pub fn add_violations(&mut self, violations: &[UiViolation]) {
        for v in violations {
            self.add_field_message(&v.field, v.text.clone());
        }
    }

    /// Sets the values of `traits.*` nodes from submitted traits.
    pub fn fill_traits(&mut self, traits: &Json) {
        for n in &mut self.nodes {
            let Some(path) = n.name().strip_prefix("traits.") else { continue };
            let pointer = format!("/{}", path.replace('~', "~0").replace('/', "~1").replace('.', "/"));
            match traits.pointer(&pointer) {
                Some(v) if !v.is_null() => n.set_value(Some(v.clone())),
                _ => n.set_value(None),
            }
        }
    }

    /// Orders nodes as Kratos does (behaviour.md §13.3): first by group (`groups`; a group not
    /// listed comes first), then — only between nodes of one group, or a default and a password
    /// node — by the position of the first key that prefixes the node name (`method` last).
    /// Both passes are insertion sorts, which is what Go's sorts do for forms this size.
    pub fn sort(&mut self, groups: &[&str], keys: &[String]) {
        let gidx = |n: &Node| groups.iter().position(|g| *g == n.group).map_or(-1, |i| i as i64);
        let total = self.nodes.len() + keys.len() + 1;
        let pos = |n: &Node| {
            if n.name() == "method" {
                return total;
            }
            keys.iter().position(|k| n.name().starts_with(k.as_str())).unwrap_or(keys.len())
        };
        let value = |n: &Node| match n.attributes.get("value") {
            None | Some(Json::Null) => "<nil>".to_string(),
            Some(Json::String(s)) => s.clone(),
            Some(v) => v.to_string(),
        };
        let nodes = &mut self.nodes;
        for i in 1..nodes.len() {
            let mut j = i;
            while j > 0 && gidx(&nodes[j]) < gidx(&nodes[j - 1]) {
                nodes.swap(j, j - 1);
                j -= 1;
            }
        }
        let related = |a: &Node, b: &Node| {
            a.group == b.group
                || (a.group == group::DEFAULT && b.group == group::PASSWORD)
                || (a.group == group::PASSWORD && b.group == group::DEFAULT)
        };
        let less = |a: &Node, b: &Node| {
            if !related(a, b) {
                return false;
            }
            let (pa, pb) = (pos(a), pos(b));
            pa < pb || (pa == pb && value(a) < value(b))
        };
        for i in 1..nodes.len() {
            let mut j = i;
            while j > 0 && less(&nodes[j], &nodes[j - 1]) {
                nodes.swap(j, j - 1);
                j -= 1;
            }
        }
    }
}

/// Login's group order.
pub const LOGIN_GROUPS: [&str; 8] =
    ["oidc", "default", "webauthn", "passkey", "code", "password", "totp", "lookup_secret"];
/// Registration's group order.
pub const REGISTRATION_GROUPS: [&str; 9] =
    ["oidc", "saml", "default", "webauthn", "passkey", "code", "password", "captcha", "profile"];

/// Settings' group order.
pub const SETTINGS_GROUPS: [&str; 8] =
    ["default", "profile", "password", "oidc", "lookup_secret", "webauthn", "passkey", "totp"];

impl Container {
    /// Orders a login form's nodes.
    pub fn sort_login(&mut self) {
        self.sort(&LOGIN_GROUPS, &login_keys());
    }

    /// Orders a registration form's nodes (traits in the order of `schema`).
    pub fn sort_registration(&mut self, schema: &Json) {
        self.sort(&REGISTRATION_GROUPS, &registration_keys(schema));
    }

    /// Orders a settings form's nodes (traits in the order of `schema`, the password last).
    pub fn sort_settings(&mut self, schema: &Json) {
        let mut keys = registration_keys(schema);
        keys.retain(|k| k != "password");
        keys.push("password".into());
        keys.extend(
            [
                "lookup_secret_reveal",
                "lookup_secret_regenerate",
                "lookup_secret_codes",
                "lookup_secret_confirm",
                "passkey_remove",
                "passkey_register",
                "totp_qr",
                "totp_secret_key",
                "totp_unlink",
                "totp_code",
            ]
            .map(String::from),
        );
        self.sort(&SETTINGS_GROUPS, &keys);
    }
}

/// Login's sort keys.
pub fn login_keys() -> Vec<String> {
    ["csrf_token", "identifier", "password"].iter().map(|s| s.to_string()).collect()
}

/// Registration's sort keys: csrf, the first trait, password, the other traits (schema order).
pub fn registration_keys(schema: &Json) -> Vec<String> {
    let mut traits = Vec::new();
    if let Some(t) = schema.pointer("/properties/traits") {
        schema_keys(t, "traits", &mut traits, 0);
    }
    let mut keys = vec!["csrf_token".to_string()];
    let mut rest = traits.into_iter();
    if let Some(first) = rest.next() {
        keys.push(first);
    }
    keys.push("password".into());
    keys.extend(rest);
    keys.extend(["webauthn_remove", "webauthn_register_displayname", "webauthn_register"].map(String::from));
    keys
}

/// The positions of a schema's leaf keys, as Kratos' `computeKeyPositions`: objects are
/// walked, everything else (including an unresolved `$ref`) is a leaf; dots inside a key are
/// escaped, so such a key prefixes no node name.
fn schema_keys(obj: &Json, prefix: &str, out: &mut Vec<String>, depth: usize) {
    if depth > 16 {
        return;
    }
    let Some(props) = obj.get("properties").and_then(Json::as_object) else { return };
    for (k, v) in props {
        let name = format!("{prefix}.{}", k.replace('.', "\\."));
        if v.get("type").and_then(Json::as_str) == Some("object") {
            schema_keys(v, &name, out, depth + 1);
        } else {
            out.push(name);
        }
    }
}

/// The label of the login `identifier` input (behaviour.md §13.4): the trait's `title` when
/// exactly one trait is an identifier of some method, else "ID".
pub fn identifier_label(schema: &Json) -> Text {
    let mut found = Vec::new();
    collect_identifiers(schema, schema.pointer("/properties/traits").unwrap_or(&Json::Null), "traits", &mut found, 0);
    match found.as_slice() {
        [(name, Some(title))] if !title.is_empty() => text::label_generated(title, name),
        _ => text::label_id(),
    }
}

fn collect_identifiers(root: &Json, obj: &Json, prefix: &str, out: &mut Vec<(String, Option<String>)>, depth: usize) {
    if depth > 16 {
        return;
    }
    let Some(props) = obj.get("properties").and_then(Json::as_object) else { return };
    for (k, v) in props {
        let v = match v.get("$ref").and_then(Json::as_str).and_then(|r| r.strip_prefix('#')) {
            Some(p) => root.pointer(p).unwrap_or(v),
            None => v,
        };
        let name = format!("{prefix}.{k}");
        let ext = v.get("ory.sh/kratos");
        let flag = |p: &str| ext.and_then(|e| e.pointer(p)).and_then(Json::as_bool).unwrap_or(false);
        if flag("/credentials/password/identifier")
            || flag("/credentials/webauthn/identifier")
            || flag("/credentials/passkey/display_name")
            || flag("/credentials/totp/account_name")
            || flag("/credentials/code/identifier")
        {
            out.push((name.clone(), v.get("title").and_then(Json::as_str).map(str::to_string)));
        }
        collect_identifiers(root, v, &name, out, depth + 1);
    }
}

/// Trait inputs generated from an identity schema, in schema order (behaviour.md §13.1).
pub fn trait_nodes(schema: &Json, group: &'static str) -> Vec<Node> {
    let mut out = Vec::new();
    if let Some(traits) = resolve(schema, schema.pointer("/properties/traits").unwrap_or(&Json::Null)) {
        walk(schema, traits, "traits", &mut out, group, 0);
    }
    out
}

fn resolve<'a>(root: &'a Json, node: &'a Json) -> Option<&'a Json> {
    match node.get("$ref").and_then(Json::as_str) {
        Some(r) => r.strip_prefix('#').and_then(|p| root.pointer(p)),
        None => Some(node),
    }
}

fn walk(root: &Json, obj: &Json, prefix: &str, out: &mut Vec<Node>, group: &'static str, depth: usize) {
    if depth > 16 {
        return;
    }
    let Some(props) = obj.get("properties").and_then(Json::as_object) else { return };
    let required: Vec<&str> = obj
        .get("required")
        .and_then(Json::as_array)
        .map(|a| a.iter().filter_map(Json::as_str).collect())
        .unwrap_or_default();
    for (key, prop) in props {
        let Some(prop) = resolve(root, prop) else { continue };
        let name = format!("{prop_prefix}.{key}", prop_prefix = prefix);
        let kind = prop.get("type").and_then(|t| match t {
            Json::String(s) => Some(s.as_str()),
            Json::Array(a) => a.iter().filter_map(Json::as_str).find(|s| *s != "null"),
            _ => None,
        });
        match kind {
            Some("object") => {
                walk(root, prop, &name, out, group, depth + 1);
                continue;
            }
            Some("array") if prop.pointer("/items/type").and_then(Json::as_str) == Some("object") => continue,
            None if prop.get("default").is_none() => continue,
            _ => {}
        }
        let html = match (kind, prop.get("format").and_then(Json::as_str)) {
            (Some("number" | "integer"), _) => "number",
            (Some("boolean"), _) => "checkbox",
            (_, Some("email")) => "email",
            (_, Some("tel")) => "tel",
            (_, Some("date")) => "date",
            (_, Some("date-time")) => "datetime-local",
            (_, Some("uri")) => "url",
            _ => "text",
        };
        let mut input = Input::new(group, &name, html);
        if required.contains(&key.as_str()) {
            input = input.required();
        }
        match html {
            "email" => input = input.autocomplete("email"),
            "tel" => input = input.autocomplete("tel"),
            "url" => input = input.autocomplete("url"),
            _ => {}
        }
        if let Some(p) = prop.get("pattern").and_then(Json::as_str) {
            input = input.pattern(p);
        }
        if let Some(title) = prop.get("title").and_then(Json::as_str) {
            input = input.label(text::label_generated(title, &name));
        }
        out.push(input.node());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Only leaf keys get a position (Kratos' `computeKeyPositions`): the object key
    /// `traits.name` must not rank `traits.name.last` before `traits.name.first`.
    #[test]
    fn nested_traits_keep_schema_order_whatever_their_values() {
        let schema = json!({"properties": {"traits": {"type": "object", "properties": {
            "email": {"type": "string", "format": "email"},
            "name": {"type": "object", "properties": {"first": {"type": "string"}, "last": {"type": "string"}}},
            "a.b": {"type": "string"}
        }}}});
        assert_eq!(
            registration_keys(&schema),
            vec!["csrf_token", "traits.email", "password", "traits.name.first", "traits.name.last", "traits.a\\.b"]
                .into_iter()
                .map(String::from)
                .chain(["webauthn_remove", "webauthn_register_displayname", "webauthn_register"].map(String::from))
                .collect::<Vec<_>>()
        );
        let mut ui = Container::new("https://x/".into());
        ui.nodes.push(csrf_node());
        ui.nodes.extend(trait_nodes(&schema, group::PROFILE));
        ui.fill_traits(&json!({"email": "a@example.org", "name": {"first": "Zed"}}));
        ui.sort_settings(&schema);
        let names: Vec<&str> = ui.nodes.iter().map(Node::name).collect();
        assert_eq!(names, vec!["csrf_token", "traits.email", "traits.name.first", "traits.name.last", "traits.a.b"]);
    }
}
