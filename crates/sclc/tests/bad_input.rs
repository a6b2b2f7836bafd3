//! The bad-input catalogue (issue 8): each hostile or broken input gets a clear message
//! and the right exit code, never a panic, and no partial output file is left behind.
//!
//! | input | expected |
//! |---|---|
//! | empty file | clean (exit 0): an empty module is valid |
//! | binary garbage, invalid UTF-8 | exit 2, "not UTF-8 text" with the offset |
//! | a 50 MB file | exit 2, "policy files are limited to 16 MiB" |
//! | 100,000 nested parentheses | exit 1, E0107 |
//! | huge integer literals | exit 1, E0106 |
//! | unterminated comment, string | exit 1, E0104, E0105 |
//! | CRLF line ends and tabs | positions count characters: the column is right |
//! | a directory, a missing file | exit 2, "is a directory", "No such file" |
//! | an output path that cannot be written | exit 2, nothing written |
//! | `build`, `run`, `sim` of a file with no policy, or none for the target | exit 1, E0336, nothing written or attached |

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn sclc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sclc")).args(args).output().expect("sclc runs")
}

fn scratch(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sclc-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write");
    p
}

fn check(path: &Path) -> (Option<i32>, String) {
    let out = sclc(&["check", "--format", "short", path.to_str().expect("utf-8")]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"), "sclc panicked");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn empty_file_is_a_valid_module() {
    assert_eq!(check(&scratch("empty.scl", b"")).0, Some(0));
}

#[test]
fn garbage_and_invalid_utf8_are_environment_errors() {
    let garbage: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let (code, err) = check(&scratch("garbage.scl", &garbage));
    assert_eq!(code, Some(2));
    assert!(err.contains("not UTF-8 text (first invalid byte at offset"), "{err}");
}

#[test]
fn a_50_mb_file_is_refused_up_front() {
    let big = vec![b' '; 50 << 20];
    let (code, err) = check(&scratch("big.scl", &big));
    assert_eq!(code, Some(2));
    assert!(err.contains("policy files are limited to 16 MiB"), "{err}");
}

#[test]
fn deep_nesting_and_huge_numbers_are_policy_errors() {
    let deep = format!("const X: u32 = {}1{};", "(".repeat(100_000), ")".repeat(100_000));
    let (code, err) = check(&scratch("deep.scl", deep.as_bytes()));
    assert_eq!(code, Some(1));
    assert!(err.contains("error[E0107]"), "{err}");
    let (code, err) = check(&scratch("huge.scl", b"const X: u64 = 99999999999999999999999999999999;\n"));
    assert_eq!(code, Some(1));
    assert!(err.contains("error[E0106]: integer literal too large"), "{err}");
}

#[test]
fn unterminated_comments_and_strings_are_reported() {
    let (code, err) = check(&scratch("comment.scl", b"const X: u32 = 1; /* never closed"));
    assert_eq!(code, Some(1));
    assert!(err.contains("error[E0104]"), "{err}");
    let (code, err) = check(&scratch("string.scl", b"const X: u32 = \"open;\n"));
    assert_eq!(code, Some(1));
    assert!(err.contains("error[E0105]"), "{err}");
}

#[test]
fn crlf_and_tabs_keep_columns_in_characters() {
    let (code, err) = check(&scratch("crlf.scl", b"const A: u32 = 1;\r\n\tconst B: u32 = x;\r\n"));
    assert_eq!(code, Some(1));
    // `x` is the 17th character of line 2 (the tab counts as one).
    assert!(err.contains("crlf.scl:2:17: error[E0201]: cannot find `x`"), "{err}");
}

#[test]
fn directories_and_missing_files_are_environment_errors() {
    let dir = std::env::temp_dir();
    let out = sclc(&["check", dir.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("it is a directory"));
    let out = sclc(&["check", "/nonexistent/policy.scl"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("No such file"));
}

#[test]
fn an_unwritable_output_leaves_nothing_behind() {
    let src = scratch("ok.scl", b"global n: u64;\npolicy p for spinlock {\n    on contended(l: lock) { n += 1; }\n}\n");
    let dir = std::env::temp_dir().join(format!("sclc-ro-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    // A path whose parent is a file cannot be created, even by root.
    let blocker = dir.join("file");
    std::fs::write(&blocker, b"x").expect("write");
    let target = blocker.join("out.o");
    let out = sclc(&["build", src.to_str().expect("utf-8"), "-o", target.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let leftovers: Vec<_> = std::fs::read_dir(&dir).expect("dir").flatten().map(|e| e.file_name()).collect();
    assert_eq!(leftovers, vec![std::ffi::OsString::from("file")], "a temporary file was left behind");
}

/// A module with no policy checks clean, but building or running it would give an object
/// with no program: exit 1 with E0336, and no output file (issue 14).
#[test]
fn building_or_running_a_file_without_a_policy_is_an_error() {
    let module = b"global n: u64;\nfn count() {\n    n += 1;\n}\n";
    for (name, text) in [("module.scl", &module[..]), ("empty-module.scl", &b""[..])] {
        let src = scratch(name, text);
        let path = src.to_str().expect("utf-8");
        assert_eq!(check(&src).0, Some(0), "a module is valid for `check`");
        let obj = src.with_extension("o");
        let _ = std::fs::remove_file(&obj);
        for args in [
            vec!["build", path],
            vec!["build", "--target", "syncord", path],
            vec!["build", "--emit", "asm", path],
            vec!["run", "--duration", "1s", path],
            vec!["sim", path],
        ] {
            let out = sclc(&args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
            assert!(err.contains("E0336") && err.contains("no policy to compile"), "{args:?}: {err}");
            assert!(out.stdout.is_empty(), "{args:?} printed {:?}", String::from_utf8_lossy(&out.stdout));
            assert!(!obj.exists(), "{args:?} wrote {}", obj.display());
        }
    }
    // A policy whose hooks all never fire on the target it is built for.
    let src = scratch("never.scl", b"global n: u64;\npolicy p for mutex {\n    on acquired(l: lock) { n += 1; }\n}\n");
    let out = sclc(&["build", "--target", "stock", src.to_str().expect("utf-8")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("E0336") && err.contains("has no hook that runs on the `stock` target"), "{err}");
    assert!(!src.with_extension("o").exists());
}
