//! Hover and go to definition.
//!
//! Both start from what the name under the cursor refers to. The checker records that for
//! every name it resolved, with hover text drawn from the catalogue
//! (`scl_sema::refs::Target::describe`). It does not look inside a body that holds a syntax
//! error, and half-written code is what an editor shows most of the time, so a name the
//! checker did not resolve is looked up by its spelling: in the checked program's items,
//! then in the catalogue's hooks and built-ins. Type names and lock kinds, which the checker
//! records nowhere, get their text straight from the catalogue.

use crate::analysis::Analysis;
use crate::position::range;
use lsp_types::{Hover, HoverContents, Location, MarkupContent, MarkupKind, Uri};
use scl_catalogue as cat;
use scl_diagnostics::Span;
use scl_sema::hir::Loc;
use scl_sema::refs::Target;
use scl_syntax::ast::ItemKind;
use scl_syntax::lexer::{lex, Tok};

/// The hover of the name at byte `offset`.
pub fn hover(analysis: &Analysis, offset: usize) -> Option<Hover> {
    let (span, text) = match target_at(analysis, offset) {
        Some((span, target)) => {
            let mut text = target.describe(&analysis.checked.program);
            // The `//` comment right above the declaration, as written there.
            if let Some(doc) = target.definition(&analysis.checked.program).and_then(|Loc { file, span }| {
                doc_comment_above(&analysis.files.get(file).text, span.start as usize)
            }) {
                if !text.is_empty() {
                    text.push_str("\n\n");
                }
                text.push_str(&doc);
            }
            (span, text)
        }
        None => {
            let word = word_at(analysis, offset)?;
            (word.span, builtin_word_doc(&word.name)?)
        }
    };
    if text.is_empty() {
        return None;
    }
    Some(Hover {
        contents: HoverContents::Markup(MarkupContent { kind: MarkupKind::Markdown, value: text }),
        range: Some(range(analysis.source(), span)),
    })
}

/// The run of `//` comment lines directly above the line holding byte `offset` (no blank
/// line between), without their `//`: a declaration's documentation. Comments after a
/// blank line belong to something else (a file header, a section).
fn doc_comment_above(source: &str, offset: usize) -> Option<String> {
    let line_start = source.get(..offset)?.rfind('\n').map_or(0, |i| i + 1);
    let mut lines: Vec<&str> = source[..line_start]
        .lines()
        .rev()
        .map(str::trim_start)
        .take_while(|l| l.starts_with("//"))
        .map(|l| l.trim_start_matches('/').strip_prefix(' ').unwrap_or(l.trim_start_matches('/')))
        .collect();
    if lines.is_empty() {
        return None;
    }
    lines.reverse();
    Some(lines.join("\n"))
}

/// Where the name at byte `offset` is declared; `uri` is the document's.
pub fn definition(analysis: &Analysis, uri: &Uri, offset: usize) -> Option<Location> {
    let (_, target) = target_at(analysis, offset)?;
    let Loc { file, span } = target.definition(&analysis.checked.program)?;
    Some(Location { uri: analysis.uri_of(uri, file)?, range: range(analysis.files.get(file), span) })
}

/// What the name at byte `offset` refers to, and the name's span.
pub fn target_at(analysis: &Analysis, offset: usize) -> Option<(Span, Target)> {
    resolved_at(analysis, offset).or_else(|| {
        let word = word_at(analysis, offset)?;
        Some((word.span, lookup(analysis, &word)?))
    })
}

/// The innermost reference the checker recorded around `offset`.
fn resolved_at(analysis: &Analysis, offset: usize) -> Option<(Span, Target)> {
    let offset = offset as u32;
    analysis
        .checked
        .references
        .iter()
        .filter(|r| r.at.file == analysis.file && r.at.span.start <= offset && offset <= r.at.span.end)
        .min_by_key(|r| r.at.span.end - r.at.span.start)
        .map(|r| (r.at.span, r.target.clone()))
}

/// An identifier in the text, with what precedes it.
#[derive(Debug)]
pub struct Word {
    /// The identifier.
    pub name: String,
    /// Where it is.
    pub span: Span,
    /// `m` when written `m::name`.
    pub module: Option<String>,
    /// True when written `e.name`.
    pub after_dot: bool,
}

/// The identifier token at byte `offset` (touching it on either side), found with the
/// compiler's lexer so that words in comments are not names.
pub fn word_at(analysis: &Analysis, offset: usize) -> Option<Word> {
    let tokens = lex(analysis.file, analysis.text()).tokens;
    let i = tokens.iter().rposition(|(start, tok, end)| matches!(tok, Tok::Ident(_)) && *start <= offset && offset <= *end)?;
    let (start, Tok::Ident(name), end) = &tokens[i] else { return None };
    let before = |k: usize| i.checked_sub(k).map(|j| &tokens[j].1);
    let module = match (before(1), before(2)) {
        (Some(Tok::ColonColon), Some(Tok::Ident(m))) => Some(m.to_string()),
        _ => None,
    };
    Some(Word { name: name.to_string(), span: Span::new(*start, *end), module, after_dot: matches!(before(1), Some(Tok::Dot)) })
}

/// The item, hook or built-in a word names, by its spelling.
fn lookup(analysis: &Analysis, word: &Word) -> Option<Target> {
    let program = &analysis.checked.program;
    if word.after_dot {
        return member_by_name(&word.name);
    }
    let name = match &word.module {
        Some(m) => format!("{m}::{}", word.name),
        None => word.name.clone(),
    };
    if let Some((id, _)) = program.states.iter().find(|(_, s)| s.name == name) {
        return Some(Target::State(id));
    }
    if let Some((id, _)) = program.funcs.iter().find(|(_, f)| f.name == name) {
        return Some(Target::Func(id));
    }
    if let Some((id, _)) = program.structs.iter().find(|(_, s)| s.name == name) {
        return Some(Target::Struct(id));
    }
    if word.module.is_some() {
        return None;
    }
    local_const(analysis, &word.name)
        .or_else(|| imported_module(analysis, &word.name))
        .or_else(|| cat::hook(&word.name).map(|h| Target::Hook(h.name)))
        .or_else(|| cat::builtin(&word.name).map(|b| Target::Builtin(b.name)))
}

/// A field or method named after a `.`, when the name belongs to the catalogue alone.
fn member_by_name(name: &str) -> Option<Target> {
    cat::lock_field(name)
        .map(|f| Target::LockField(f.name))
        .or_else(|| cat::waiter_field(name).map(|f| Target::WaiterField(f.name)))
        .or_else(|| cat::method(name).map(|m| Target::Method(m.name)))
}

/// A `const` of the document.
fn local_const(analysis: &Analysis, name: &str) -> Option<Target> {
    analysis.ast.items.iter().find_map(|item| match &item.kind {
        ItemKind::Const(c) if c.name.name == name => {
            Some(Target::Const { loc: Loc { file: analysis.file, span: c.name.span }, name: name.to_string() })
        }
        _ => None,
    })
}

/// A stdlib module the document imports.
fn imported_module(analysis: &Analysis, name: &str) -> Option<Target> {
    let file = analysis.files.find(&format!("<stdlib>/{name}.scl"))?;
    Some(Target::Module { name: name.to_string(), file })
}

/// Hover text for the predeclared names the checker keeps no references for: the scalar
/// types, `lock` and `waiter`, the lock kinds and the map kinds.
pub fn builtin_word_doc(word: &str) -> Option<String> {
    let code = |s: &str| format!("```scl\n{s}\n```");
    let text = match word {
        "bool" => format!("{}\n\n`true` or `false`. Not an integer: compare an integer with 0 to get one.", code(word)),
        "lock" => format!("{}\n\nThe lock a hook fires for; a hook or function parameter only. Read-only fields:\n\n{}", code(word), field_table("lock", cat::LOCK_FIELDS)),
        "waiter" => format!(
            "{}\n\nA task waiting in the lock's queue; a hook or function parameter only. Read-only fields, and the policy's `per_waiter` state by name:\n\n{}",
            code(word),
            field_table("waiter", cat::WAITER_FIELDS)
        ),
        _ => return int_doc(word).or_else(|| lock_kind_doc(word)).or_else(|| map_kind_doc(word)),
    };
    Some(text)
}

fn field_table(owner: &str, fields: &[cat::FieldDef]) -> String {
    let rows: Vec<String> = fields.iter().map(|f| format!("| `{owner}.{}` | `{}` | {} |", f.name, f.ty.name(), f.doc)).collect();
    format!("| field | type | meaning |\n|---|---|---|\n{}", rows.join("\n"))
}

fn int_doc(word: &str) -> Option<String> {
    let (signed, bits) = match word.split_at_checked(1)? {
        ("u", bits) => (false, bits),
        ("i", bits) => (true, bits),
        _ => return None,
    };
    let bits: u32 = bits.parse().ok().filter(|b| [8, 16, 32, 64].contains(b))?;
    let kind = if signed { "A signed (two's complement)" } else { "An unsigned" };
    Some(format!("```scl\n{word}\n```\n\n{kind} {bits}-bit integer. Arithmetic wraps on overflow."))
}

fn lock_kind_doc(word: &str) -> Option<String> {
    let kind = cat::LockKind::from_name(word)?;
    let hooks: Vec<String> = cat::HOOKS.iter().filter(|h| h.kinds.includes(kind)).map(|h| format!("`{}`", h.name)).collect();
    Some(format!("```scl\npolicy NAME for {word}\n```\n\nA lock kind. Its hooks: {}.", hooks.join(", ")))
}

fn map_kind_doc(word: &str) -> Option<String> {
    let def = cat::map_kind(word)?;
    let methods: Vec<String> = cat::METHODS.iter().filter(|m| m.kinds.contains(&def.kind)).map(|m| format!("`{}`", m.name)).collect();
    Some(format!("```scl\nmap NAME: {word}<...>[N];\n```\n\n{}\n\nMethods: {}.", def.doc, methods.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::analyse;

    const TEXT: &str = "import hist;\nconst N: u32 = 4;\nstruct S { a: u32 }\nper_lock st: S;\nper_lock h: hist::Log2;\n\
policy p for spinlock {\n    on acquired(l: lock) {\n        st.a = N + cpu();\n        hist::record(h, 1);\n    }\n}\n";

    fn at(text: &str, needle: &str) -> usize {
        text.find(needle).unwrap_or_else(|| panic!("`{needle}` is in the text"))
    }

    fn hover_text(a: &Analysis, offset: usize) -> String {
        match hover(a, offset).map(|h| h.contents) {
            Some(HoverContents::Markup(m)) => m.value,
            other => panic!("a Markdown hover, got {other:?}"),
        }
    }

    #[test]
    fn hovers_come_from_the_checker_and_the_catalogue() {
        let a = analyse("t.scl", TEXT, &Default::default());
        assert!(hover_text(&a, at(TEXT, "acquired") + 2).contains("on acquired(lock: lock)"));
        assert!(hover_text(&a, at(TEXT, "cpu()")).contains("cpu() -> u32"));
        let t = hover_text(&a, at(TEXT, "st.a"));
        assert!(t.contains("per_lock[4096] st: S"), "{t}");
        assert!(hover_text(&a, at(TEXT, "u32 }")).contains("unsigned 32-bit"));
        assert!(hover_text(&a, at(TEXT, "spinlock")).contains("lock kind"));
        assert!(hover_text(&a, at(TEXT, "lock)")).contains("`lock.addr`"));
        assert!(hover(&a, at(TEXT, "policy")).is_none(), "keywords have no hover");
    }

    #[test]
    fn names_in_a_broken_body_are_looked_up_by_spelling() {
        let text = TEXT.replace("hist::record(h, 1);", "hist::record(h, ;");
        let a = analyse("t.scl", &text, &Default::default());
        assert!(a.checked.has_errors());
        assert!(hover_text(&a, at(&text, "cpu()")).contains("cpu() -> u32"));
        assert!(hover_text(&a, at(&text, "record")).contains("fn hist::record"));
        let uri: Uri = "file:///t.scl".parse().unwrap();
        let def = definition(&a, &uri, at(&text, "st.a")).expect("state has a definition");
        assert_eq!(def.uri, uri);
        assert_eq!(def.range.start.line, 3);
        let def = definition(&a, &uri, at(&text, "N +")).expect("a const has a definition");
        assert_eq!((def.range.start.line, def.range.start.character), (1, 6));
    }

    #[test]
    fn hovers_show_the_comment_above_a_declaration() {
        let text = "import topo;\n// Waits per lock.\n// Only the holder writes it.\nper_lock st: u64;\n\n// A section header, not a doc.\n\nconst N: u32 = 4;\n\
policy p for spinlock {\n    on should_reorder(l: lock, s: waiter, c: waiter) -> bool {\n        return topo::same_node(s, c) && st < N as u64;\n    }\n}\n";
        let a = analyse("t.scl", text, &Default::default());
        let t = hover_text(&a, at(text, "same_node"));
        assert!(t.contains("True when both waiters run on the same NUMA node."), "a stdlib function's comment: {t}");
        let t = hover_text(&a, at(text, "st <"));
        assert!(t.contains("Waits per lock.\nOnly the holder writes it."), "{t}");
        let t = hover_text(&a, at(text, "N as"));
        assert!(!t.contains("section header"), "a comment after a blank line is not the doc: {t}");
        assert_eq!(doc_comment_above("fn f() {}\n", 3), None);
        assert_eq!(doc_comment_above("  //   indented\nfn f() {}\n", 20).as_deref(), Some("  indented"));
    }

    #[test]
    fn definitions_in_the_stdlib_point_at_its_cached_file() {
        let a = analyse("t.scl", TEXT, &Default::default());
        let uri: Uri = "file:///t.scl".parse().unwrap();
        let def = definition(&a, &uri, at(TEXT, "record")).expect("a stdlib function has a definition");
        assert!(def.uri.as_str().ends_with("/stdlib/hist.scl"), "{}", def.uri.as_str());
        let module = definition(&a, &uri, at(TEXT, "hist;")).expect("an import has a definition");
        assert_eq!(module.uri, def.uri);
        assert_eq!(module.range.start.line, 0);
        assert!(definition(&a, &uri, at(TEXT, "cpu()")).is_none(), "built-ins are declared nowhere");
    }
}
