//! UI tests: every `tests/ui/**/NAME.scl` is checked by the real `sclc` binary, and its
//! diagnostics are compared with `NAME.short` (the one-line form) and `NAME.human` (the
//! ariadne form, without colour). A case whose name starts with `ok_` is a near miss that
//! must check clean; every other case must report at least one error, so that blessing
//! output from a broken compiler cannot turn a failing case into a silent one.
//!
//! A first line `// sclc: ARGS` adds arguments to `sclc check` (for example a target).
//! Run with `SCL_BLESS=1` to write the expected files from today's output; review the
//! diff before committing it.

mod common;
use common::repo_root;

use std::path::{Path, PathBuf};
use std::process::Command;

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).expect("tests/ui is readable").flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect(&p, out);
        } else if p.extension().is_some_and(|e| e == "scl") {
            out.push(p);
        }
    }
}

/// Runs `sclc check` on `rel` (relative to the repo root) and returns (stderr, exit code).
fn sclc_check(root: &Path, rel: &str, extra: &[String], format: &str) -> (String, i32) {
    let out = Command::new(env!("CARGO_BIN_EXE_sclc"))
        .current_dir(root)
        .args(["check", "--color", "never", "--format", format])
        .args(extra)
        .arg(rel)
        .output()
        .expect("sclc runs");
    (String::from_utf8(out.stderr).expect("diagnostics are UTF-8"), out.status.code().unwrap_or(-1))
}

#[test]
fn ui() {
    let root = repo_root();
    let mut cases = Vec::new();
    collect(&root.join("tests/ui"), &mut cases);
    assert!(!cases.is_empty(), "no UI tests found under tests/ui");
    let bless = std::env::var_os("SCL_BLESS").is_some();
    let mut failures = Vec::new();
    for case in &cases {
        let rel = case.strip_prefix(&root).expect("under root").to_string_lossy().into_owned();
        let text = std::fs::read_to_string(case).unwrap_or_default();
        let extra: Vec<String> = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("// sclc:"))
            .map(|a| a.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default();
        let (short, code) = sclc_check(&root, &rel, &extra, "short");
        let (human, human_code) = sclc_check(&root, &rel, &extra, "human");
        let has_error = short.lines().any(|l| l.contains(": error["));
        let must_pass = case.file_name().is_some_and(|n| n.to_string_lossy().starts_with("ok_"));
        if must_pass == has_error {
            failures.push(format!(
                "{rel}: {}",
                if must_pass { "an `ok_` case must check clean" } else { "expected at least one error" }
            ));
        }
        let expected_code = if has_error { 1 } else { 0 };
        if code != expected_code || human_code != expected_code {
            failures.push(format!("{rel}: exit codes {code}/{human_code}, expected {expected_code}"));
        }
        for (ext, actual) in [("short", &short), ("human", &human)] {
            let path = case.with_extension(ext);
            if bless {
                std::fs::write(&path, actual).expect("write expected output");
                continue;
            }
            let expected = std::fs::read_to_string(&path).unwrap_or_default();
            if &expected != actual {
                failures.push(format!(
                    "{rel}: {ext} output differs (SCL_BLESS=1 rewrites it)\n--- expected\n{expected}--- actual\n{actual}"
                ));
            }
        }
    }
    println!("{} UI cases checked", cases.len());
    assert!(failures.is_empty(), "{} UI failures:\n\n{}", failures.len(), failures.join("\n\n"));
}
