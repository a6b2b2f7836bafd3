//! The editor files in `editors/` stay in step with the language: the manifest and
//! configuration are valid JSON that agree with each other, the TextMate grammar
//! highlights every keyword of `docs/language.md` (whose table is the lexer's) and every
//! built-in, map kind, method and lock kind of the catalogue, and the built-ins, map kinds
//! and methods that the TextMate grammar and the tree-sitter highlights list are exactly
//! the catalogue's, so a new built-in cannot be left uncoloured. (The keywords are checked against the lexer's table
//! in `crates/scl-syntax/tests/tree_sitter.rs` and `vscode.rs`.)

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn json(rel: &str) -> Value {
    let text = std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{rel} is not JSON: {e}"))
}

#[test]
fn the_manifest_names_the_grammar_configuration_and_entry_point() {
    let manifest = json("editors/vscode/package.json");
    let language = &manifest["contributes"]["languages"][0];
    assert_eq!(language["id"], "scl");
    assert_eq!(language["extensions"][0], ".scl");
    let grammar = &manifest["contributes"]["grammars"][0];
    assert_eq!(grammar["language"], "scl");
    for rel in [&language["configuration"], &grammar["path"], &manifest["main"]] {
        let rel = rel.as_str().expect("a path");
        assert!(root().join("editors/vscode").join(rel).is_file(), "{rel} exists");
    }
    assert_eq!(json("editors/vscode/syntaxes/scl.tmLanguage.json")["scopeName"], grammar["scopeName"]);
    let config = json("editors/vscode/language-configuration.json");
    assert_eq!(config["comments"]["lineComment"], "//");
    let extension = std::fs::read_to_string(root().join("editors/vscode/extension.js")).expect("extension.js");
    assert!(extension.contains("args: ['lsp']"), "the extension runs `sclc lsp`");
}

/// The words the grammar's rules match, from the alternations `(a|b|c)` in them.
fn grammar_words() -> Vec<String> {
    let mut words = Vec::new();
    collect_matches(&json("editors/vscode/syntaxes/scl.tmLanguage.json"), &mut words);
    words
}

fn collect_matches(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            if let Some(Value::String(m)) = map.get("match") {
                // Every plain group `(...)`; lookarounds `(?...)` hold no words.
                let groups = m.split('(').skip(1).filter(|g| !g.starts_with('?'));
                out.extend(groups.flat_map(|g| g.split(')').next().unwrap_or("").split('|')).map(str::to_string));
            }
            map.values().for_each(|x| collect_matches(x, out));
        }
        Value::Array(items) => items.iter().for_each(|x| collect_matches(x, out)),
        _ => {}
    }
}

#[test]
fn the_grammar_knows_every_keyword_and_catalogue_name() {
    let words = grammar_words();
    let language = std::fs::read_to_string(root().join("docs/language.md")).expect("docs/language.md");
    let keywords = language
        .split("**Keywords**")
        .nth(1)
        .and_then(|s| s.split("```text").nth(1))
        .and_then(|s| s.split("```").next())
        .expect("the keyword table");
    let mut expected: Vec<&str> = keywords.split_whitespace().collect();
    assert!(expected.len() > 20, "{expected:?}");
    let mut documented = expected.clone();
    documented.sort_unstable();
    let mut lexed = scl_syntax::lexer::KEYWORDS.to_vec();
    lexed.sort_unstable();
    assert_eq!(documented, lexed, "docs/language.md's keyword table is not the lexer's (scl_syntax::lexer::KEYWORDS)");
    expected.extend(scl_catalogue::BUILTINS.iter().map(|b| b.name));
    expected.extend(scl_catalogue::MAP_KINDS.iter().map(|k| k.name));
    expected.extend(scl_catalogue::METHODS.iter().map(|m| m.name));
    expected.extend(scl_catalogue::LockKind::ALL.iter().map(|k| k.name()));
    expected.extend(["u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64", "bool", "kstack", "lock", "waiter"]);
    let missing: Vec<&&str> = expected.iter().filter(|w| !words.iter().any(|g| g == *w)).collect();
    assert!(missing.is_empty(), "the grammar does not highlight {missing:?}");
}

fn editors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../editors")
}

fn set<'a>(names: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    names.into_iter().map(str::to_string).collect()
}

/// The strings after `#any-of? @CAPTURE` in a query, up to the closing parenthesis.
fn any_of(query: &str, capture: &str) -> Vec<BTreeSet<String>> {
    let marker = format!("(#any-of? @{capture}");
    query
        .match_indices(&marker)
        .map(|(i, _)| {
            let rest = &query[i + marker.len()..];
            let args = &rest[..rest.find(')').expect("a closed predicate")];
            args.split('"').skip(1).step_by(2).map(str::to_string).collect()
        })
        .collect()
}

/// The words of the `(a|b|c)` alternation in the TextMate pattern named `scope`.
fn textmate_words(grammar: &Value, scope: &str) -> BTreeSet<String> {
    fn find<'a>(v: &'a Value, scope: &str) -> Option<&'a str> {
        match v {
            Value::Object(m) => {
                if m.get("name").and_then(|n| n.as_str()) == Some(scope) {
                    return m.get("match").and_then(|p| p.as_str());
                }
                m.values().find_map(|v| find(v, scope))
            }
            Value::Array(a) => a.iter().find_map(|v| find(v, scope)),
            _ => None,
        }
    }
    let pattern = find(grammar, scope).unwrap_or_else(|| panic!("no TextMate pattern named {scope}"));
    // The first group that is not a look-around (`(?<=\.)` before the methods).
    let start = pattern.match_indices('(').map(|(i, _)| i + 1).find(|&i| !pattern[i..].starts_with('?')).expect("an alternation");
    let end = start + pattern[start..].find(')').expect("a closed alternation");
    pattern[start..end].split('|').map(str::to_string).collect()
}

#[test]
fn tree_sitter_highlights_name_the_catalogues_builtins_and_map_kinds() {
    let query = std::fs::read_to_string(editors().join("tree-sitter-scl/queries/highlights.scm")).unwrap();
    let builtins = any_of(&query, "function.builtin");
    assert_eq!(builtins, vec![set(scl_catalogue::BUILTINS.iter().map(|b| b.name))], "highlights.scm's built-in functions are not the catalogue's");
    let types = any_of(&query, "type.builtin");
    assert_eq!(types.len(), 1);
    let missing: Vec<_> = scl_catalogue::MAP_KINDS.iter().map(|k| k.name).filter(|k| !types[0].contains(*k)).collect();
    assert!(missing.is_empty(), "highlights.scm does not colour the map kinds {missing:?}");
}

#[test]
fn the_vscode_grammar_names_the_catalogues_builtins_map_kinds_and_methods() {
    let grammar = json("editors/vscode/syntaxes/scl.tmLanguage.json");
    assert_eq!(textmate_words(&grammar, "support.function.builtin.scl"), set(scl_catalogue::BUILTINS.iter().map(|b| b.name)));
    assert_eq!(textmate_words(&grammar, "support.type.map.scl"), set(scl_catalogue::MAP_KINDS.iter().map(|k| k.name)));
    assert_eq!(textmate_words(&grammar, "support.function.method.scl"), set(scl_catalogue::METHODS.iter().map(|m| m.name)));
}
