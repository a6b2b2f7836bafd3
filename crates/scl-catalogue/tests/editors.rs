//! The editors colour the catalogue's names: the built-in functions, map kinds and map
//! methods that `editors/tree-sitter-scl/queries/highlights.scm` and the VS Code grammar
//! (`editors/vscode/syntaxes/scl.tmLanguage.json`) list are exactly the catalogue's, so a
//! new built-in cannot be left uncoloured. (The keywords are checked against the lexer in
//! `crates/scl-syntax/tests/tree_sitter.rs` and `vscode.rs`.)

use scl_catalogue::{BUILTINS, MAP_KINDS, METHODS};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

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
fn textmate_words(grammar: &serde_json::Value, scope: &str) -> BTreeSet<String> {
    fn find<'a>(v: &'a serde_json::Value, scope: &str) -> Option<&'a str> {
        match v {
            serde_json::Value::Object(m) => {
                if m.get("name").and_then(|n| n.as_str()) == Some(scope) {
                    return m.get("match").and_then(|p| p.as_str());
                }
                m.values().find_map(|v| find(v, scope))
            }
            serde_json::Value::Array(a) => a.iter().find_map(|v| find(v, scope)),
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
    assert_eq!(builtins, vec![set(BUILTINS.iter().map(|b| b.name))], "highlights.scm's built-in functions are not the catalogue's");
    let types = any_of(&query, "type.builtin");
    assert_eq!(types.len(), 1);
    let missing: Vec<_> = MAP_KINDS.iter().map(|k| k.name).filter(|k| !types[0].contains(*k)).collect();
    assert!(missing.is_empty(), "highlights.scm does not colour the map kinds {missing:?}");
}

#[test]
fn the_vscode_grammar_names_the_catalogues_builtins_map_kinds_and_methods() {
    let path = editors().join("vscode/syntaxes/scl.tmLanguage.json");
    let grammar: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(textmate_words(&grammar, "support.function.builtin.scl"), set(BUILTINS.iter().map(|b| b.name)));
    assert_eq!(textmate_words(&grammar, "support.type.map.scl"), set(MAP_KINDS.iter().map(|k| k.name)));
    assert_eq!(textmate_words(&grammar, "support.function.method.scl"), set(METHODS.iter().map(|m| m.name)));
}
