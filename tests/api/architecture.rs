//! The architecture rules (DESIGN.md §4, §8, §10), checked on the source:
//! * `actix_web` is imported only in `http/`, `app.rs` and `main.rs`; HTTP status codes
//!   appear only there (and in the CLI, an HTTP client of the admin API);
//! * between top-level modules the arrows point down: nothing imports `http`; `persistence`
//!   imports no domain layer and no actor; `actors` imports no layer above persistence;
//!   `identity` does not import `session`; leaf modules import only leaves;
//! * the file-level import graph has no cycles.
//!
//! Imports are read from `use` statements (braces expanded; `use child::…` is relative to the
//! module) and from `crate::…`/`super::…` paths in code; comments and `#[cfg(test)]` modules
//! are ignored. `ARCH_DEBUG=<path under src>` prints the edges one file contributes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/a/b.rs` → `["a", "b"]`; `src/a/mod.rs` → `["a"]`; `src/lib.rs` → `[]`.
fn module_of(file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src()).unwrap();
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let last = parts.pop().unwrap();
    let stem = last.trim_end_matches(".rs");
    if !matches!(stem, "mod" | "lib" | "main") {
        parts.push(stem.to_string());
    }
    parts
}

/// The code of a file without comments and without its `#[cfg(test)]` module.
fn code_of(file: &Path) -> String {
    let text = std::fs::read_to_string(file).unwrap();
    let text = match text.find("#[cfg(test)]") {
        Some(at) => &text[..at],
        None => &text[..],
    };
    text.lines()
        .map(|line| {
            // A comment starts at `//` after whitespace or at the start (URLs in strings stay).
            let bytes = line.as_bytes();
            let cut = (0..bytes.len().saturating_sub(1))
                .find(|&i| bytes[i] == b'/' && bytes[i + 1] == b'/' && (i == 0 || bytes[i - 1].is_ascii_whitespace()));
            match cut {
                Some(i) => &line[..i],
                None => line,
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Expands `a::{b, c::{d, e}}` into `a::b`, `a::c::d`, `a::c::e`.
fn expand(tree: &str) -> Vec<String> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else { return vec![tree.to_string()] };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .flat_map(|p| expand(p).into_iter().map(move |e| format!("{prefix}{e}")))
        .collect()
}

/// Every `crate::…`, `super::…` and `self::…` path a file names.
fn paths_in(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    // `use` statements: a line that starts with `use` (or `pub … use`), up to the `;`.
    let mut offset = 0;
    for line in code.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let after_pub = match trimmed.strip_prefix("pub") {
            Some(r) => r.trim_start_matches(|c: char| c != ' ').trim_start(),
            None => trimmed,
        };
        if let Some(statement) = after_pub.strip_prefix("use ") {
            let at = offset + (line.len() - statement.len());
            let end = code[at..].find(';').map_or(code.len(), |e| at + e);
            for p in expand(&code[at..end]) {
                let p = p.split(" as ").next().unwrap_or_default().trim().to_string();
                if p.starts_with("crate::") || p.starts_with("super::") || p.starts_with("self::") {
                    out.push(p);
                } else if p.contains("::") {
                    // A path relative to this module (`use child::Item`); crates outside are
                    // dropped when it does not resolve to a module of ours.
                    out.push(format!("self::{p}"));
                }
            }
        }
        offset += line.len();
    }
    let bytes = code.as_bytes();
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b':';
    let mut i = 0;
    while i < bytes.len() {
        let boundary = i == 0 || !ident(bytes[i - 1]);
        if boundary && (bytes[i..].starts_with(b"crate::") || bytes[i..].starts_with(b"super::")) {
            let len = bytes[i..].iter().position(|b| !ident(*b)).unwrap_or(bytes.len() - i);
            // ASCII only: the slice is on char boundaries. A bare `super::{…}` is a use
            // statement, read above.
            let path = String::from_utf8_lossy(&bytes[i..i + len]).trim_end_matches(':').to_string();
            if path.contains("::") {
                out.push(path);
            }
            i += len;
        } else {
            i += 1;
        }
    }
    out
}

struct Tree {
    /// Module path → file.
    modules: BTreeMap<Vec<String>, PathBuf>,
}

impl Tree {
    /// The file a path names from `module`: its longest prefix that is a module.
    fn resolve(&self, module: &[String], path: &str) -> Option<PathBuf> {
        let mut segs: Vec<&str> = path.split("::").collect();
        let mut base: Vec<String> = match segs.first() {
            Some(&"crate") => Vec::new(),
            Some(&"self") => {
                // `self::x` must name a child module of this one (else it is an outside crate).
                let mut child = module.to_vec();
                child.push(segs.get(1)?.to_string());
                if !self.modules.contains_key(&child) {
                    return None;
                }
                module.to_vec()
            }
            Some(&"super") => {
                let mut b = module.to_vec();
                while segs.first() == Some(&"super") {
                    b.pop();
                    segs.remove(0);
                }
                segs.insert(0, "super");
                b
            }
            _ => return None,
        };
        for seg in segs.iter().skip(1) {
            base.push(seg.to_string());
        }
        while !base.is_empty() {
            if let Some(f) = self.modules.get(&base) {
                return Some(f.clone());
            }
            base.pop();
        }
        None
    }
}

struct Graph {
    /// File → files it imports (itself excluded).
    edges: BTreeMap<PathBuf, BTreeSet<PathBuf>>,
    /// File → top-level modules it names.
    tops: BTreeMap<PathBuf, BTreeSet<String>>,
}

fn graph() -> Graph {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let tree = Tree { modules: files.iter().map(|f| (module_of(f), f.clone())).collect() };
    let mut edges = BTreeMap::new();
    let mut tops = BTreeMap::new();
    for f in &files {
        let module = module_of(f);
        let mut out = BTreeSet::new();
        let mut named = BTreeSet::new();
        for p in paths_in(&code_of(f)) {
            if let Some(target) = tree.resolve(&module, &p) {
                if std::env::var("ARCH_DEBUG").is_ok_and(|d| f.ends_with(&d)) {
                    eprintln!("{} -> {} ({p})", rel(f), rel(&target));
                }
                if let Some(top) = module_of(&target).first() {
                    named.insert(top.clone());
                }
                if &target != f {
                    out.insert(target);
                }
            }
        }
        edges.insert(f.clone(), out);
        tops.insert(f.clone(), named);
    }
    Graph { edges, tops }
}

fn rel(p: &Path) -> String {
    p.strip_prefix(src()).unwrap().display().to_string()
}

fn top_of(file: &Path) -> String {
    module_of(file).first().cloned().unwrap_or_else(|| "lib".into())
}

#[test]
fn actix_web_and_status_codes_stay_in_http() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut wrong = Vec::new();
    for f in &files {
        let r = rel(f);
        let http = r.starts_with("http/") || r == "app.rs" || r == "main.rs";
        let code = code_of(f);
        if !http && code.contains("actix_web") {
            wrong.push(format!("{r} imports actix_web"));
        }
        if !http && !r.starts_with("cli/") && code.contains("StatusCode") {
            wrong.push(format!("{r} names an HTTP status code"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn top_level_arrows_point_down() {
    let g = graph();
    // What each top-level module may import, besides itself.
    let leaves: BTreeSet<&str> =
        ["catalogue", "clock", "config", "hash", "jsonnet", "model", "net", "schema", "seal", "telemetry"].into();
    let may = |from: &str, to: &str| -> bool {
        if from == to || leaves.contains(to) {
            return !leaves.contains(from) || leaves.contains(to);
        }
        match from {
            "app" | "main" | "lib" | "cli" => true,
            "http" => to != "app",
            "selfservice" => matches!(to, "error" | "identity" | "session" | "courier" | "persistence" | "actors"),
            "session" => matches!(to, "error" | "identity" | "persistence" | "actors"),
            "identity" | "courier" => matches!(to, "error" | "persistence"),
            "actors" => to == "persistence",
            "error" => to == "persistence",
            _ => false,
        }
    };
    let mut wrong = Vec::new();
    for (file, named) in &g.tops {
        let from = top_of(file);
        for to in named {
            if !may(&from, to) {
                wrong.push(format!("{} ({from}) imports {to}", rel(file)));
            }
        }
    }
    assert!(wrong.is_empty(), "imports against the layering:\n{}", wrong.join("\n"));
}

#[test]
fn the_module_graph_has_no_cycles() {
    let g = graph();
    // Depth-first search with colours; a grey target closes a cycle.
    #[derive(Clone, Copy, PartialEq)]
    enum Colour {
        White,
        Grey,
        Black,
    }
    let mut colour: BTreeMap<&PathBuf, Colour> = g.edges.keys().map(|k| (k, Colour::White)).collect();
    let mut cycles = Vec::new();
    fn visit<'a>(
        g: &'a Graph,
        f: &'a PathBuf,
        colour: &mut BTreeMap<&'a PathBuf, Colour>,
        stack: &mut Vec<&'a PathBuf>,
        cycles: &mut Vec<String>,
    ) {
        colour.insert(f, Colour::Grey);
        stack.push(f);
        for t in g.edges.get(f).into_iter().flatten() {
            match colour.get(t).copied().unwrap_or(Colour::Black) {
                Colour::White => visit(g, t, colour, stack, cycles),
                Colour::Grey => {
                    let at = stack.iter().position(|s| *s == t).unwrap_or(0);
                    let mut names: Vec<String> = stack[at..].iter().map(|p| rel(p)).collect();
                    names.push(rel(t));
                    cycles.push(names.join(" → "));
                }
                Colour::Black => {}
            }
        }
        stack.pop();
        colour.insert(f, Colour::Black);
    }
    let files: Vec<&PathBuf> = g.edges.keys().collect();
    for f in files {
        if colour[f] == Colour::White {
            visit(&g, f, &mut colour, &mut Vec::new(), &mut cycles);
        }
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_reader_sees_imports() {
    // The checks above are only as good as this reader: it must see grouped, nested,
    // renamed, relative and inline paths, and no commented ones.
    let code = "pub use child::K;\nuse crate::a::{b, c::{d as e, f}};\nuse super::g;\n// use crate::not::this;\nfn x() { crate::h::i(); super::super::j(); \"please use the new flow\"; }";
    let paths = paths_in(&code_of_str(code));
    for p in [
        "self::child::K",
        "crate::a::b",
        "crate::a::c::d",
        "crate::a::c::f",
        "super::g",
        "crate::h::i",
        "super::super::j",
    ] {
        assert!(paths.iter().any(|q| q == p), "{p} not seen in {paths:?}");
    }
    assert!(!paths.iter().any(|q| q.contains("not")), "{paths:?}");
}

fn code_of_str(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.rs");
    std::fs::write(&file, text).unwrap();
    code_of(&file)
}
