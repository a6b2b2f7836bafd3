//! The VS Code extension in `editors/vscode`:
//!
//! - its TextMate grammar, run by vscode-textmate over every example and stdlib module,
//!   scopes every keyword of the lexer and nothing else as a keyword
//!   (`editors/vscode/test/grammar.test.js`, node's test runner);
//! - it packages to a `.vsix` with `vsce package` (pinned in package.json), and the package
//!   holds the extension, its grammar, its licence and its runtime dependencies, and none of
//!   the tools and tests.
//!
//! Both need the extension's npm packages (`npm ci --prefix editors/vscode`, which `.ci/run`
//! runs): without them each test prints one `SKIPPED:` line on a developer's machine and fails
//! in CI (`CI` set).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn extension_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../editors/vscode").canonicalize().unwrap()
}

/// Whether the npm packages are installed; `false` after the `SKIPPED:` line, a panic in CI.
fn npm_packages(test: &str) -> bool {
    if extension_dir().join("node_modules/.bin/vsce").is_file() {
        return true;
    }
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!("editors/vscode/node_modules is missing in CI; .ci/run installs it with `npm ci --prefix editors/vscode`");
    }
    eprintln!("SKIPPED: {test}: the VS Code extension's npm packages are not installed (`npm ci --prefix editors/vscode --omit=optional`)");
    false
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn the_textmate_grammar_scopes_every_keyword_in_every_example() {
    if !npm_packages("the_textmate_grammar_scopes_every_keyword_in_every_example") {
        return;
    }
    let out = run(Command::new("node").args(["--test", "test/"]).current_dir(extension_dir()));
    let report = text(&out);
    assert!(out.status.success(), "the TextMate grammar's tests failed:\n{report}");
    assert!(report.contains("# fail 0") && !report.contains("# pass 0"), "{report}");
}

#[test]
fn the_extension_packages_to_a_vsix() {
    if !npm_packages("the_extension_packages_to_a_vsix") {
        return;
    }
    let vsix = Path::new(env!("CARGO_TARGET_TMPDIR")).join("scl.vsix");
    let _ = std::fs::remove_file(&vsix);
    let out = run(Command::new(extension_dir().join("node_modules/.bin/vsce"))
        .arg("package")
        .arg("--out")
        .arg(&vsix)
        .current_dir(extension_dir()));
    assert!(out.status.success(), "vsce package failed:\n{}", text(&out));
    // A .vsix is a zip archive; python3's zipfile lists it (python3 is one of CI's packages).
    let out = run(Command::new("python3")
        .args(["-c", "import sys, zipfile; print('\\n'.join(zipfile.ZipFile(sys.argv[1]).namelist()))"])
        .arg(&vsix));
    assert!(out.status.success(), "cannot list {}:\n{}", vsix.display(), text(&out));
    let listing = String::from_utf8_lossy(&out.stdout).to_string();
    let entries: Vec<&str> = listing.lines().collect();
    for needed in [
        "extension/package.json",
        "extension/extension.js",
        "extension/language-configuration.json",
        "extension/syntaxes/scl.tmLanguage.json",
        "extension/LICENSE.txt",
        "extension/readme.md",
        "extension/node_modules/vscode-languageclient/package.json",
    ] {
        assert!(entries.contains(&needed), "the .vsix has no {needed}:\n{listing}");
    }
    for left_out in ["extension/test/", "extension/node_modules/@vscode/vsce/", "extension/node_modules/vscode-textmate/", "extension/package-lock.json"] {
        assert!(!entries.iter().any(|e| e.starts_with(left_out)), "the .vsix holds {left_out}:\n{listing}");
    }
}
