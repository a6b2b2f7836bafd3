//! The Helix set-up of `docs/editors.md`, checked without Helix (it is not packaged for
//! Debian 12, so it cannot run here): the `languages.toml` snippet is valid TOML (read by
//! python3's `tomllib`) that uses only keys Helix documents (its book's `languages.md`),
//! starts this build's `sclc` as `sclc lsp`, and points `[[grammar]]` at
//! `editors/tree-sitter-scl`, which holds the C sources Helix compiles; the shell lines link
//! a query file that exists. The server and the grammar themselves are tested elsewhere
//! (`lsp.rs`, `neovim.rs`, `crates/scl-syntax/tests/tree_sitter.rs`).

mod common;
use common::repo_root;

use serde_json::Value;
use std::process::Command;

/// The fenced `lang` block of `docs/editors.md`'s Helix section that contains `needle`.
fn helix_block(lang: &str, needle: &str) -> String {
    let doc = std::fs::read_to_string(repo_root().join("docs/editors.md")).expect("docs/editors.md");
    let section = &doc[doc.find("\n## Helix\n").expect("a Helix section")..];
    let section = &section[..section[1..].find("\n## ").map_or(section.len(), |i| i + 1)];
    let fence = format!("```{lang}\n");
    section
        .split(&fence)
        .skip(1)
        .map(|rest| &rest[..rest.find("```").expect("a closed block")])
        .find(|block| block.contains(needle))
        .unwrap_or_else(|| panic!("the Helix section has no ```{lang} block with `{needle}`"))
        .to_string()
}

/// The `[[language]]` keys of Helix's book (`book/src/languages.md`).
const LANGUAGE_KEYS: &[&str] = &[
    "name", "language-id", "scope", "injection-regex", "file-types", "shebangs", "roots", "auto-format",
    "diagnostic-severity", "comment-tokens", "comment-token", "block-comment-tokens", "indent", "language-servers",
    "grammar", "formatter", "soft-wrap", "text-width", "rulers", "path-completion", "workspace-lsp-roots",
    "persistent-diagnostic-sources", "word-completion", "rainbow-brackets", "code-actions-on-save",
];

#[test]
fn the_documented_helix_set_up_is_well_formed() {
    let toml = helix_block("toml", "[[language]]");
    let out = Command::new("python3")
        .args(["-c", "import json, sys, tomllib; print(json.dumps(tomllib.loads(sys.stdin.read())))"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().expect("stdin").write_all(toml.as_bytes())?;
            child.wait_with_output()
        })
        .expect("python3 runs (one of .ci/run's packages)");
    assert!(out.status.success(), "the languages.toml snippet is not TOML:\n{}", String::from_utf8_lossy(&out.stderr));
    let config: Value = serde_json::from_slice(&out.stdout).expect("JSON from python3");

    let server = &config["language-server"]["sclc"];
    assert_eq!(server["command"], "sclc");
    assert_eq!(server["args"], serde_json::json!(["lsp"]));
    // That command is a language server: it answers `--help` with its usage.
    let help = Command::new(env!("CARGO_BIN_EXE_sclc")).args(["lsp", "--help"]).output().expect("sclc runs");
    assert!(help.status.success());

    let languages = config["language"].as_array().expect("[[language]]");
    assert_eq!(languages.len(), 1);
    let scl = languages[0].as_object().expect("a table");
    for key in scl.keys() {
        assert!(LANGUAGE_KEYS.contains(&key.as_str()), "`{key}` is not a key Helix documents for [[language]]");
    }
    assert_eq!(scl["name"], "scl");
    assert_eq!(scl["file-types"], serde_json::json!(["scl"]));
    assert_eq!(scl["language-servers"], serde_json::json!(["sclc"]));
    assert_eq!(scl["comment-tokens"], "//");
    assert_eq!(scl["block-comment-tokens"], serde_json::json!({ "start": "/*", "end": "*/" }));

    let grammars = config["grammar"].as_array().expect("[[grammar]]");
    assert_eq!(grammars.len(), 1);
    assert_eq!(grammars[0]["name"], scl.get("grammar").unwrap_or(&scl["name"]).clone());
    let path = grammars[0]["source"]["path"].as_str().expect("a local grammar source");
    let in_repo = path.strip_prefix("/path/to/sclc/").expect("the path is written as /path/to/sclc/...");
    for file in ["src/parser.c", "src/scanner.c", "src/tree_sitter/parser.h"] {
        assert!(repo_root().join(in_repo).join(file).is_file(), "{in_repo}/{file} is missing: Helix compiles it");
    }

    // The shell lines link the Helix query file into Helix's runtime directory.
    let sh = helix_block("sh", "hx --grammar build");
    let linked = sh
        .split_whitespace()
        .find_map(|w| w.strip_prefix("/path/to/sclc/"))
        .expect("the shell lines link a file of the checkout");
    assert!(repo_root().join(linked).is_file(), "{linked} does not exist");
    assert!(sh.contains("~/.config/helix/runtime/queries/scl/highlights.scm"), "{sh}");
}
