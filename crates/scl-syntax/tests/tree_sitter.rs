//! The tree-sitter grammar in `editors/tree-sitter-scl` against the compiler's own syntax.
//!
//! - `tree-sitter test` passes: the corpus, the highlight assertions, and every query
//!   (highlights, folds, indents, locals) compiles against the grammar;
//! - `src/` is what `grammar.js` generates (no edit of the grammar without regenerating);
//! - every `.scl` file in `examples/` (recursively) and `stdlib/` parses with no ERROR or
//!   MISSING node, and so does every other `.scl` file of the repository that the compiler's
//!   parser accepts: the tree-sitter grammar is never stricter than the compiler;
//! - `queries/highlights.scm` and `grammar.js` name exactly the lexer's keywords.
//!
//! The tree-sitter CLI is pinned to [`CLI_VERSION`]; `.ci/run` installs it. Without it the
//! CLI tests print one `SKIPPED:` line each on a developer's machine and fail in CI (`CI`
//! set), so CI cannot pass without running them. The keyword tests need no CLI.

use scl_diagnostics::{FileId, Severity};
use scl_syntax::lexer::KEYWORDS;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The tree-sitter CLI that generated `src/parser.c`; `.ci/run` installs this version.
const CLI_VERSION: &str = "0.27.1";

/// The ABI the parser is generated for (see `editors/tree-sitter-scl/README.md`).
const ABI: &str = "14";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn grammar_dir() -> PathBuf {
    root().join("editors/tree-sitter-scl")
}

/// The `tree-sitter` binary: `$TREE_SITTER`, else on `PATH`, else in cargo's bin directory
/// (where `cargo install` puts it). `None` (after the `SKIPPED:` line) when there is none
/// outside CI; a panic in CI or when the version is not the pinned one.
fn cli(test: &str) -> Option<&'static Path> {
    static CLI: OnceLock<Option<PathBuf>> = OnceLock::new();
    let found = CLI.get_or_init(|| {
        let mut candidates: Vec<PathBuf> = Vec::new();
        if let Some(p) = std::env::var_os("TREE_SITTER") {
            candidates.push(p.into());
        }
        if let Some(path) = std::env::var_os("PATH") {
            candidates.extend(std::env::split_paths(&path).map(|d| d.join("tree-sitter")));
        }
        if let Some(home) = std::env::var_os("CARGO_HOME") {
            candidates.push(Path::new(&home).join("bin/tree-sitter"));
        }
        if let Some(home) = std::env::var_os("HOME") {
            candidates.push(Path::new(&home).join(".cargo/bin/tree-sitter"));
        }
        let cli = candidates.into_iter().find(|p| p.is_file())?;
        let out = Command::new(&cli).arg("--version").output().expect("run tree-sitter --version");
        let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert_eq!(
            version,
            format!("tree-sitter {CLI_VERSION}"),
            "{} is not the pinned tree-sitter CLI; install it with \
             `cargo install tree-sitter-cli --locked --version {CLI_VERSION}`",
            cli.display()
        );
        Some(cli)
    });
    match found {
        Some(p) => Some(p.as_path()),
        None if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) => panic!(
            "the tree-sitter CLI is missing in CI; .ci/run installs it with \
             `cargo install tree-sitter-cli --locked --version {CLI_VERSION}`"
        ),
        None => {
            eprintln!(
                "SKIPPED: {test}: no tree-sitter CLI (install it with \
                 `cargo install tree-sitter-cli --locked --version {CLI_VERSION}`)"
            );
            None
        }
    }
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    out
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// The grammar compiled once for this test binary.
fn library(cli: &Path) -> &'static Path {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        let lib = Path::new(env!("CARGO_TARGET_TMPDIR")).join("tree-sitter-scl.so");
        let out = run(Command::new(cli).arg("build").arg("-o").arg(&lib).arg(grammar_dir()));
        assert!(out.status.success(), "tree-sitter build failed:\n{}", text(&out));
        lib
    })
}

/// Parses `files` with the grammar; returns the files with an ERROR or MISSING node, each
/// with the CLI's account of the first one.
fn files_with_errors(cli: &Path, files: &[PathBuf]) -> Vec<(PathBuf, String)> {
    let list = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("tree-sitter-paths-{}", files.len()));
    std::fs::write(&list, files.iter().map(|f| format!("{}\n", f.display())).collect::<String>()).unwrap();
    let out = run(Command::new(cli)
        .args(["parse", "--quiet", "--lang-name", "scl", "--lib-path"])
        .arg(library(cli))
        .arg("--paths")
        .arg(&list));
    // `--quiet` prints one line per file that has an error: `PATH<tab>Parse: ... (ERROR ...)`.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let failed: Vec<(PathBuf, String)> = stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let path = l.split('\t').next().unwrap_or(l).trim();
            (PathBuf::from(path), l.to_string())
        })
        .collect();
    for (path, line) in &failed {
        assert!(files.contains(path), "unexpected output line from tree-sitter parse: {line}");
    }
    assert_eq!(
        out.status.success(),
        failed.is_empty(),
        "tree-sitter parse's status disagrees with its output:\n{}",
        text(&out)
    );
    failed
}

fn scl_files(dir: &Path, into: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            scl_files(&path, into);
        } else if path.extension().is_some_and(|e| e == "scl") {
            into.push(path);
        }
    }
}

#[test]
fn tree_sitter_test_passes() {
    let Some(cli) = cli("tree_sitter_test_passes") else { return };
    let out = run(Command::new(cli).arg("test").current_dir(grammar_dir()));
    let report = text(&out);
    assert!(out.status.success(), "tree-sitter test failed:\n{report}");
    // The corpus and the highlight assertions both ran.
    assert!(report.contains("syntax highlighting:"), "{report}");
    assert!(report.contains("assertions)"), "{report}");
}

#[test]
fn generated_parser_is_up_to_date() {
    let Some(cli) = cli("generated_parser_is_up_to_date") else { return };
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("tree-sitter-scl-generated");
    let _ = std::fs::remove_dir_all(&out_dir);
    // QuickJS, built into the CLI, evaluates grammar.js: the check needs no node.
    let out = run(Command::new(cli)
        .args(["generate", "--abi", ABI, "--js-runtime", "native", "-o"])
        .arg(&out_dir)
        .arg(grammar_dir().join("grammar.js")));
    assert!(out.status.success(), "tree-sitter generate failed:\n{}", text(&out));
    for file in ["parser.c", "grammar.json", "node-types.json", "tree_sitter/parser.h", "tree_sitter/alloc.h", "tree_sitter/array.h"] {
        let fresh = std::fs::read(out_dir.join(file)).unwrap();
        let committed = std::fs::read(grammar_dir().join("src").join(file)).unwrap();
        assert!(
            fresh == committed,
            "editors/tree-sitter-scl/src/{file} is not what grammar.js generates: run \
             `tree-sitter generate --abi {ABI}` in editors/tree-sitter-scl and commit src/"
        );
    }
}

#[test]
fn every_example_and_stdlib_module_parses_cleanly() {
    let Some(cli) = cli("every_example_and_stdlib_module_parses_cleanly") else { return };
    let mut files = Vec::new();
    scl_files(&root().join("examples"), &mut files);
    scl_files(&root().join("stdlib"), &mut files);
    assert!(files.len() >= 9, "found only {files:?}");
    let failed = files_with_errors(cli, &files);
    assert!(failed.is_empty(), "tree-sitter finds errors in:\n{failed:#?}");
}

/// Every `.scl` file in the repository (test fixtures included) that the compiler parses
/// without a syntax error parses without one here too. Files the compiler rejects are not
/// compared: the tree-sitter grammar may accept more (see grammar.js).
#[test]
fn the_grammar_accepts_whatever_the_compiler_parses() {
    let Some(cli) = cli("the_grammar_accepts_whatever_the_compiler_parses") else { return };
    let mut all = Vec::new();
    for dir in ["examples", "stdlib", "tests", "fuzz"] {
        if root().join(dir).is_dir() {
            scl_files(&root().join(dir), &mut all);
        }
    }
    let accepted: Vec<PathBuf> = all
        .into_iter()
        .filter(|path| {
            let source = std::fs::read_to_string(path).unwrap_or_default();
            let (_, diagnostics) = scl_syntax::parse_file(FileId(0), &source);
            diagnostics.iter().all(|d| d.severity != Severity::Error)
        })
        .collect();
    assert!(accepted.len() >= 100, "only {} files parse; is the fixture tree there?", accepted.len());
    let failed = files_with_errors(cli, &accepted);
    assert!(failed.is_empty(), "the compiler parses these but tree-sitter finds errors:\n{failed:#?}");
}

/// The double-quoted words of a query or grammar file that are keywords-shaped.
fn quoted_words(text: &str) -> BTreeSet<String> {
    let mut words = BTreeSet::new();
    for line in text.lines() {
        let code = line.split(';').next().unwrap_or("");
        for (i, piece) in code.split('"').enumerate() {
            if i % 2 == 1 && !piece.is_empty() && piece.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                words.insert(piece.to_string());
            }
        }
    }
    words
}

fn keywords() -> BTreeSet<String> {
    KEYWORDS.iter().map(|k| k.to_string()).collect()
}

#[test]
fn highlights_name_every_keyword_of_the_lexer() {
    let query = std::fs::read_to_string(grammar_dir().join("queries/highlights.scm")).unwrap();
    // Only the anonymous-node strings: the arguments of predicates (`#any-of? ...`) name
    // built-ins and types, which are identifiers.
    let mut in_predicate = false;
    let mut node_strings = String::new();
    for line in query.lines() {
        if line.contains("(#") {
            in_predicate = true;
        }
        if !in_predicate {
            node_strings.push_str(line);
            node_strings.push('\n');
        }
        if in_predicate && line.trim_end().ends_with("))") {
            in_predicate = false;
        }
    }
    let highlighted = quoted_words(&node_strings);
    let missing: Vec<_> = keywords().difference(&highlighted).cloned().collect();
    let extra: Vec<_> = highlighted.difference(&keywords()).cloned().collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "editors/tree-sitter-scl/queries/highlights.scm and the lexer's keywords \
         (scl_syntax::lexer::KEYWORDS) differ:\n  not highlighted: {missing:?}\n  not keywords: {extra:?}\n\
         a new keyword needs a string in highlights.scm, grammar.js's KEYWORDS (then \
         `tree-sitter generate --abi {ABI}`) and the VS Code grammar"
    );
}

#[test]
fn the_grammar_reserves_every_keyword_of_the_lexer() {
    let grammar = std::fs::read_to_string(grammar_dir().join("grammar.js")).unwrap();
    let start = grammar.find("const KEYWORDS = [").expect("grammar.js has a KEYWORDS table");
    let end = start + grammar[start..].find("];").unwrap();
    let listed: Vec<String> = grammar[start..end]
        .split('\'')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, w)| w.to_string())
        .collect();
    assert_eq!(listed, KEYWORDS, "grammar.js's KEYWORDS is not the lexer's list, in its order");
}

/// Neovim's capture names (those of `queries/highlights.scm`) and Helix's for the same thing;
/// a name not listed is the same in both.
const HELIX_NAMES: &[(&str, &str)] = &[
    ("number", "constant.numeric.integer"),
    ("boolean", "constant.builtin.boolean"),
    ("module", "namespace"),
    ("property", "variable.other.member"),
    ("variable.member", "variable.other.member"),
    ("keyword.conditional", "keyword.control.conditional"),
    ("keyword.repeat", "keyword.control.repeat"),
    ("keyword.return", "keyword.control.return"),
    ("keyword.import", "keyword.control.import"),
    ("keyword.modifier", "keyword.storage.modifier"),
    ("keyword.type", "keyword.storage.type"),
    ("function.call", "function"),
    ("function.method.call", "function.method"),
    ("type.definition", "type"),
];

/// `queries/highlights.scm` with Helix's capture names (and without `@spell`, which Helix
/// does not know).
fn helix_highlights(neovim: &str) -> String {
    let body = &neovim[neovim.find("\n\n").expect("a header comment") + 2..];
    let mut out = String::from(
        "; Highlights for SCL in Helix: queries/highlights.scm with Helix's capture names.\n\
         ; Generated by crates/scl-syntax/tests/tree_sitter.rs (`SCL_BLESS=1 cargo test -p\n\
         ; scl-syntax --test tree_sitter`); edit queries/highlights.scm, not this file.\n\n",
    );
    let mut rest = body;
    while let Some(at) = rest.find('@') {
        let end = rest[at + 1..].find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '_')).map_or(rest.len(), |e| at + 1 + e);
        let name = &rest[at + 1..end];
        if name == "spell" {
            out.push_str(rest[..at].trim_end_matches(' '));
        } else {
            out.push_str(&rest[..at]);
            out.push('@');
            out.push_str(HELIX_NAMES.iter().find(|(n, _)| *n == name).map_or(name, |(_, h)| h));
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[test]
fn helix_highlights_are_the_neovim_ones_renamed() {
    let neovim = std::fs::read_to_string(grammar_dir().join("queries/highlights.scm")).unwrap();
    let expected = helix_highlights(&neovim);
    let path = grammar_dir().join("queries/helix/highlights.scm");
    if std::env::var_os("SCL_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &expected).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == expected,
        "editors/tree-sitter-scl/queries/helix/highlights.scm is not queries/highlights.scm with \
         Helix's names: run `SCL_BLESS=1 cargo test -p scl-syntax --test tree_sitter`"
    );
    // Every renaming is used: a capture dropped from highlights.scm leaves no stale entry.
    for (neovim_name, helix_name) in HELIX_NAMES {
        assert!(committed.contains(&format!("@{helix_name}")), "`{neovim_name}` is not in highlights.scm any more: drop it from HELIX_NAMES");
    }
    assert!(!committed.contains("@spell"));
    // And it compiles against the grammar.
    let Some(cli) = cli("helix_highlights_are_the_neovim_ones_renamed") else { return };
    let out = run(Command::new(cli)
        .args(["query", "--lang-name", "scl", "--lib-path"])
        .arg(library(cli))
        .arg(&path)
        .arg(root().join("examples/app_priority.scl")));
    assert!(out.status.success(), "the Helix query does not compile:\n{}", text(&out));
}
