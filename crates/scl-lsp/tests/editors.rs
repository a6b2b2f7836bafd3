//! The editor files in `editors/vscode/` stay in step with the language: the manifest and
//! configuration are valid JSON that agree with each other, and the TextMate grammar
//! highlights every keyword of `docs/language.md` and every built-in, map kind, method and
//! lock kind of the catalogue.

use serde_json::Value;
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
    expected.extend(scl_catalogue::BUILTINS.iter().map(|b| b.name));
    expected.extend(scl_catalogue::MAP_KINDS.iter().map(|k| k.name));
    expected.extend(scl_catalogue::METHODS.iter().map(|m| m.name));
    expected.extend(scl_catalogue::LockKind::ALL.iter().map(|k| k.name()));
    expected.extend(["u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64", "bool", "kstack", "lock", "waiter"]);
    let missing: Vec<&&str> = expected.iter().filter(|w| !words.iter().any(|g| g == *w)).collect();
    assert!(missing.is_empty(), "the grammar does not highlight {missing:?}");
}
