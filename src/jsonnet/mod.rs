//! Jsonnet rendering for web-hook bodies (and, later, courier HTTP bodies and session
//! tokenizer claims), with rsjsonnet: no imports, no native functions, a bounded call stack,
//! a size cap on templates and a wall-clock deadline (evaluation runs on a blocking thread).

use rsjsonnet_lang::arena::Arena;
use rsjsonnet_lang::interner::InternedStr;
use rsjsonnet_lang::program::{
    Callbacks, EvalError, EvalErrorKind, EvalStackTraceItem, ImportError, NativeError, Program, Thunk, Value,
};
use rsjsonnet_lang::span::SpanId;
use serde_json::Value as Json;
use std::time::Duration;

/// Max Jsonnet call depth (go-jsonnet's default).
const MAX_STACK: usize = 500;
/// Largest accepted template.
const MAX_TEMPLATE: usize = 256 * 1024;
/// How long one evaluation may take.
pub const DEADLINE: Duration = Duration::from_secs(1);

struct NoIo;

impl<'p> Callbacks<'p> for NoIo {
    fn import(&mut self, _: &mut Program<'p>, _: SpanId, _: &str) -> Result<Thunk<'p>, ImportError> {
        Err(ImportError)
    }

    fn import_str(&mut self, _: &mut Program<'p>, _: SpanId, _: &str) -> Result<String, ImportError> {
        Err(ImportError)
    }

    fn import_bin(&mut self, _: &mut Program<'p>, _: SpanId, _: &str) -> Result<Vec<u8>, ImportError> {
        Err(ImportError)
    }

    fn trace(&mut self, _: &mut Program<'p>, _: &str, _: &[EvalStackTraceItem]) {}

    fn native_call(
        &mut self,
        _: &mut Program<'p>,
        _: InternedStr<'p>,
        _: &[Value<'p>],
    ) -> Result<Value<'p>, NativeError> {
        Err(NativeError)
    }
}

fn to_jsonnet<'p>(p: &mut Program<'p>, v: &Json) -> Value<'p> {
    match v {
        Json::Null => Value::null(),
        Json::Bool(b) => Value::bool(*b),
        Json::Number(n) => Value::number(n.as_f64().unwrap_or(f64::NAN)),
        Json::String(s) => Value::string(s),
        Json::Array(a) => {
            let items: Vec<_> = a.iter().map(|x| to_jsonnet(p, x)).collect();
            p.make_array(&items)
        }
        Json::Object(o) => {
            let fields: Vec<_> = o.iter().map(|(k, x)| (p.intern_str(k), to_jsonnet(p, x))).collect();
            p.make_object(&fields)
        }
    }
}

/// `Ok(None)`: the template raised `error "cancel…"` (Kratos skips the request then).
fn eval_err(e: EvalError) -> Result<Option<Json>, String> {
    match e.kind {
        EvalErrorKind::ExplicitError { message, .. } if message.starts_with("cancel") => Ok(None),
        EvalErrorKind::ExplicitError { message, .. } => Err(message),
        EvalErrorKind::StackOverflow => Err("jsonnet: max stack frames exceeded".into()),
        other => Err(format!("jsonnet: {other:?}")),
    }
}

fn run<'p>(p: &mut Program<'p>, root: &Thunk<'p>, tla: &[(&str, &Json)]) -> Result<String, EvalError> {
    let mut cb = NoIo;
    let mut value = p.eval_value(root, &mut cb)?;
    if value.is_function() {
        let func = p.value_to_thunk(&value);
        let mut args = Vec::new();
        for (name, v) in tla {
            let val = to_jsonnet(p, v);
            args.push((p.intern_str(name), p.value_to_thunk(&val)));
        }
        value = p.eval_call(&func, &[], &args, &mut cb)?;
    }
    p.manifest_json(&value, false)
}

/// Evaluates `template` with ext vars and top-level arguments (blocking).
pub fn eval_blocking(template: &str, ext: &[(&str, &Json)], tla: &[(&str, &Json)]) -> Result<Option<Json>, String> {
    if template.len() > MAX_TEMPLATE {
        return Err("jsonnet: template too large".into());
    }
    let arena = Arena::new();
    let mut p = Program::new(&arena);
    p.set_max_stack(MAX_STACK);
    let mut seen = std::collections::HashSet::new();
    for (name, v) in ext {
        if !seen.insert(*name) {
            continue;
        }
        let val = to_jsonnet(&mut p, v);
        let thunk = p.value_to_thunk(&val);
        let name = p.intern_str(name);
        p.add_ext_var(name, &thunk);
    }
    let (span_ctx, _) = p.span_manager_mut().insert_source_context(template.len());
    let root = p
        .load_source(span_ctx, template.as_bytes(), true, "<template>")
        .map_err(|e| format!("jsonnet syntax: {e:?}"))?;
    match run(&mut p, &root, tla) {
        Ok(json) => serde_json::from_str(&json).map(Some).map_err(|e| e.to_string()),
        Err(e) => eval_err(e),
    }
}

/// Checks that `source` is Jsonnet that parses and binds (no unknown variable, no `self`
/// outside an object, no repeated names); the error names the line and column.
pub fn check_syntax(source: &str) -> Result<(), String> {
    use rsjsonnet_lang::program::{AnalyzeError, LoadError};
    let arena = Arena::new();
    let mut p = Program::new(&arena);
    let (span_ctx, _) = p.span_manager_mut().insert_source_context(source.len());
    let Err(e) = p.load_source(span_ctx, source.as_bytes(), true, "<file>") else { return Ok(()) };
    let span = match &e {
        LoadError::Parse(rsjsonnet_lang::parser::ParseError::Expected { span, .. }) => Some(*span),
        LoadError::Analyze(
            AnalyzeError::UnknownVariable { span, .. }
            | AnalyzeError::SelfOutsideObject { self_span: span }
            | AnalyzeError::SuperOutsideObject { super_span: span }
            | AnalyzeError::DollarOutsideObject { dollar_span: span }
            | AnalyzeError::RepeatedLocalName { repeated_span: span, .. }
            | AnalyzeError::RepeatedFieldName { repeated_span: span, .. }
            | AnalyzeError::RepeatedParamName { repeated_span: span, .. }
            | AnalyzeError::PositionalArgAfterNamed { arg_span: span }
            | AnalyzeError::TextBlockAsImportPath { span }
            | AnalyzeError::ComputedImportPath { span },
        ) => Some(*span),
        _ => None,
    };
    let what = match &e {
        LoadError::Lex(_) => "invalid token",
        LoadError::Parse(_) => "syntax error",
        LoadError::Analyze(AnalyzeError::UnknownVariable { .. }) => "unknown variable",
        LoadError::Analyze(_) => "invalid expression",
    };
    let detail = match &e {
        LoadError::Analyze(AnalyzeError::UnknownVariable { name, .. }) => format!(" `{name}`"),
        LoadError::Analyze(
            AnalyzeError::RepeatedLocalName { name, .. }
            | AnalyzeError::RepeatedFieldName { name, .. }
            | AnalyzeError::RepeatedParamName { name, .. },
        ) => format!(" (`{name}` repeated)"),
        _ => String::new(),
    };
    match span {
        Some(span) => {
            let (_, start, _) = p.span_manager().get_span(span);
            let before = &source.as_bytes()[..start.min(source.len())];
            let line = before.iter().filter(|b| **b == b'\n').count() + 1;
            let column = start - before.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1) + 1;
            Err(format!("{line}:{column}: {what}{detail}"))
        }
        None => Err(format!("{what}{detail}: {e:?}")),
    }
}

/// Formats Jsonnet source: indentation recomputed from bracket depth (two spaces a level; a line
/// that starts with a closing bracket at its opener's level), runs of spaces inside a line
/// collapsed to one, trailing spaces removed, at most one blank line in a row, one final newline.
/// Tokens themselves — strings, text blocks, comments — are kept byte for byte, so the program
/// means the same. Source that does not lex is returned as the error.
pub fn format(source: &str) -> Result<String, String> {
    use rsjsonnet_lang::lexer::Lexer;
    use rsjsonnet_lang::token::{STokenKind as S, TokenKind};
    check_syntax(source)?;
    let arena = Arena::new();
    let ast_arena = Arena::new();
    let interner = rsjsonnet_lang::interner::StrInterner::new();
    let mut spans = rsjsonnet_lang::span::SpanManager::new();
    let (ctx, _) = spans.insert_source_context(source.len());
    let tokens = Lexer::new(&arena, &ast_arena, &interner, &mut spans, ctx, source.as_bytes())
        .lex_to_eof(true)
        .map_err(|e| format!("{e:?}"))?;
    let mut out = String::with_capacity(source.len());
    let mut depth: usize = 0;
    // At the start of a line (nothing written on it yet); blank lines pending.
    let (mut line_start, mut newlines, mut space) = (true, 0usize, false);
    for token in &tokens {
        let (_, start, end) = spans.get_span(token.span);
        let text = &source[start..end];
        match token.kind {
            TokenKind::EndOfFile => break,
            TokenKind::Whitespace => {
                let n = text.matches('\n').count();
                if n > 0 {
                    newlines += n;
                    line_start = true;
                    space = false;
                } else if !line_start {
                    space = true;
                }
                continue;
            }
            _ => {}
        }
        let closes = matches!(token.kind, TokenKind::Simple(S::RightBrace | S::RightBracket | S::RightParen));
        if closes {
            depth = depth.saturating_sub(1);
        }
        if line_start {
            if !out.is_empty() {
                out.push_str(&"\n".repeat(newlines.clamp(1, 2)));
            }
            out.push_str(&"  ".repeat(depth));
        } else if space {
            out.push(' ');
        }
        out.push_str(text);
        let ends_line = text.ends_with('\n');
        line_start = ends_line;
        newlines = usize::from(ends_line);
        space = false;
        if ends_line {
            // A `#` or `//` comment ends with its newline: the next token starts a line.
            out.pop();
        }
        if matches!(token.kind, TokenKind::Simple(S::LeftBrace | S::LeftBracket | S::LeftParen)) {
            depth += 1;
        }
    }
    out.push('\n');
    check_syntax(&out).map_err(|e| format!("formatting changed the program ({e}); please report this"))?;
    Ok(out)
}

/// Renders a Kratos-style template `function(ctx) { … }` on a blocking thread with a deadline.
pub async fn render(template: String, ctx: Json) -> Result<Option<Json>, String> {
    let job = tokio::task::spawn_blocking(move || eval_blocking(&template, &[], &[("ctx", &ctx)]));
    match tokio::time::timeout(DEADLINE, job).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Err(format!("jsonnet: evaluation failed: {e}")),
        Err(_) => Err("jsonnet: evaluation timed out".into()),
    }
}

/// Evaluates a mapper (`std.extVar(name)` for each of `ext`) on a blocking thread with a
/// deadline, as Kratos runs its claims and web-hook mappers.
pub async fn eval_ext(template: String, ext: Vec<(String, Json)>) -> Result<Option<Json>, String> {
    let job = tokio::task::spawn_blocking(move || {
        let vars: Vec<(&str, &Json)> = ext.iter().map(|(k, v)| (k.as_str(), v)).collect();
        eval_blocking(&template, &vars, &[])
    });
    match tokio::time::timeout(DEADLINE, job).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Err(format!("jsonnet: evaluation failed: {e}")),
        Err(_) => Err("jsonnet: evaluation timed out".into()),
    }
}

/// Loads a template from `base64://…`, `file://…` or `http(s)://…`.
pub async fn load(url: &str, http: &reqwest::Client) -> Result<String, String> {
    use base64::Engine;
    if let Some(b) = url.strip_prefix("base64://") {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b.trim())
            .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(b.trim()))
            .map_err(|e| format!("invalid base64 template: {e}"))?;
        return String::from_utf8(bytes).map_err(|e| e.to_string());
    }
    if let Some(path) = url.strip_prefix("file://") {
        return tokio::fs::read_to_string(path).await.map_err(|e| format!("cannot read {path}: {e}"));
    }
    if url.starts_with("http://") || url.starts_with("https://") {
        let res = http.get(url).send().await.map_err(|e| e.to_string())?;
        if !res.status().is_success() {
            return Err(format!("template {url} answered {}", res.status()));
        }
        let bytes = res.bytes().await.map_err(|e| e.to_string())?;
        if bytes.len() > MAX_TEMPLATE {
            return Err("jsonnet: template too large".into());
        }
        return String::from_utf8(bytes.to_vec()).map_err(|e| e.to_string());
    }
    Err(format!("unsupported template URL {url:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_ctx_and_detects_cancel() {
        let ctx =
            json!({"identity": {"id": "x", "traits": {"email": "a@b.c"}}, "flow": {"transient_payload": {"n": 1}}});
        let out = eval_blocking(
            "function(ctx) { id: ctx.identity.id, email: ctx.identity.traits.email, tp: ctx.flow.transient_payload }",
            &[],
            &[("ctx", &ctx)],
        );
        assert_eq!(out, Ok(Some(json!({"email": "a@b.c", "id": "x", "tp": {"n": 1}}))));
        assert_eq!(eval_blocking("function(ctx) error 'cancel'", &[], &[("ctx", &ctx)]), Ok(None));
        assert_eq!(eval_blocking("function(ctx) { a: error 'cancel' }", &[], &[("ctx", &ctx)]), Ok(None));
        assert!(eval_blocking("function(ctx) error 'boom'", &[], &[("ctx", &ctx)]).is_err());
        assert!(eval_blocking("local f(n) = f(n + 1); f(0)", &[], &[]).is_err(), "the stack is bounded");
        assert!(eval_blocking("{", &[], &[]).is_err());
    }

    #[test]
    fn format_reindents_and_keeps_tokens() {
        let messy = "function(ctx)   {\n\n\n      email: ctx.identity.traits.email,   // the address\n  tags: [\n'a',\n      \"b  c\",\n    ],\n    text: |||\n      kept   as is\n    |||,\n}   \n\n";
        let want = "function(ctx) {\n\n  email: ctx.identity.traits.email, // the address\n  tags: [\n    'a',\n    \"b  c\",\n  ],\n  text: |||\n      kept   as is\n    |||,\n}\n";
        assert_eq!(format(messy).as_deref(), Ok(want));
        assert_eq!(format(want).as_deref(), Ok(want), "formatting is stable");
        assert!(format("{ a: ").is_err());
    }

    #[test]
    fn lint_names_line_and_column() {
        assert_eq!(check_syntax("function(ctx) {\n  email: ctx.identity.traits.email,\n}\n"), Ok(()));
        assert_eq!(
            check_syntax("function(ctx) {\n  a: ctx.x,\n  b: ctz.y,\n}"),
            Err("3:6: unknown variable `ctz`".into())
        );
        assert_eq!(check_syntax("{\n  a: 1,\n  a: 2,\n}"), Err("3:3: invalid expression (`a` repeated)".into()));
        assert!(check_syntax("function(ctx) {\n  a: ,\n}").is_err_and(|e| e.starts_with("2:6: syntax error")));
    }
}
