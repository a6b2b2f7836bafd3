//! The front end never panics and never overflows its stack, whatever it is given:
//! random bytes, random token soup, mutated real policies, and pathological nesting.
//! Every diagnostic it returns points inside the text.

use proptest::prelude::*;
use scl_diagnostics::FileId;
use std::path::Path;

fn parse_and_check_spans(text: &str) {
    let (_ast, diags) = scl_syntax::parse_file(FileId(0), text);
    for d in &diags {
        for l in std::iter::once(&d.primary).chain(&d.secondary) {
            assert!(l.span.start <= l.span.end, "inverted span in {d:?}");
            assert!(l.span.end as usize <= text.len(), "span past the end in {d:?}");
            assert!(text.is_char_boundary(l.span.start as usize), "span inside a character in {d:?}");
            assert!(text.is_char_boundary(l.span.end as usize), "span inside a character in {d:?}");
        }
        assert!(!d.message.is_empty());
    }
}

/// Every `.scl` file shipped in the repository: examples, stdlib and UI tests.
fn corpus() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut out = Vec::new();
    let mut dirs = vec![root.join("examples"), root.join("stdlib"), root.join("tests/ui")];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "scl") {
                if let Ok(t) = std::fs::read_to_string(&p) {
                    out.push(t);
                }
            }
        }
    }
    out.sort();
    out
}

const VOCAB: &[&str] = &[
    "policy", "for", "on", "fn", "struct", "const", "config", "global", "per_lock", "per_cpu",
    "per_thread", "per_waiter", "map", "import", "let", "if", "else", "in", "return", "break",
    "continue", "true", "false", "as", "inout", "(", ")", "{", "}", "[", "]", ",", ";", ":",
    "::", ".", "..", "->", "=", "+=", "<<=", "==", "!=", "<", "<=", ">", "+", "-", "*", "/",
    "%", "!", "~", "&", "|", "^", "<<", ">>", "&&", "||", "x", "lock", "spinlock", "u32",
    "hash", "0", "42", "0xff", "5us", "\"s\"", "/*", "*/", "//", "\n", "é", "#",
];

/// Cases per property: small by default to keep the suite fast; `SCL_FUZZ_CASES=N` for a
/// long run (see docs/testing.md).
fn cases(default: u32) -> u32 {
    std::env::var("SCL_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(512), ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        parse_and_check_spans(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn token_soup_never_panics(picks in proptest::collection::vec(0..VOCAB.len(), 0..400)) {
        let text: Vec<&str> = picks.iter().map(|&i| VOCAB[i]).collect();
        parse_and_check_spans(&text.join(" "));
    }

    #[test]
    fn mutated_policies_never_panic(
        which in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>(), 0u8..3), 1..8),
    ) {
        let corpus = corpus();
        prop_assume!(!corpus.is_empty());
        let mut text: Vec<char> = which.get(&corpus).chars().collect();
        for (a, b, op) in edits {
            if text.is_empty() {
                break;
            }
            let (i, j) = (a.index(text.len()), b.index(text.len()));
            let (lo, hi) = (i.min(j), i.max(j).min(i.min(j) + 40));
            match op {
                0 => { text.drain(lo..hi); }
                1 => { let piece: Vec<char> = text[lo..hi].to_vec(); text.splice(j..j, piece); }
                _ => { text.swap(i, j); }
            }
        }
        parse_and_check_spans(&text.into_iter().collect::<String>());
    }
}

#[test]
fn the_shipped_corpus_parses_without_panicking() {
    for text in corpus() {
        parse_and_check_spans(&text);
    }
}

/// Nesting 10,000 deep in every way the grammar allows gives an error, not a crash.
/// Test threads have small stacks, so a recursion that slipped through would show here.
#[test]
fn pathological_nesting_is_an_error() {
    let n = 10_000;
    let cases = [
        format!("const X: u32 = {}1{};", "(".repeat(n), ")".repeat(n)),
        format!("fn f() {{ {} }}", "{".repeat(n) + &"}".repeat(n)),
        format!("const X: u32 = {}1;", "-".repeat(n)),
        format!("const X: u32 = {}1;", "!".repeat(n * 10)),
        format!("const X: u32 = 1{};", " + 1".repeat(n)),
        format!("const X: u32 = x{};", ".f".repeat(n)),
        format!("const X: u32 = f{};", "(1)".repeat(n)),
        format!("global g: {}u8{};", "a<".repeat(n), " >".repeat(n)),
        format!("global g: {}u8{};", "[".repeat(n), "; 1]".repeat(n)),
    ];
    for text in &cases {
        let (_ast, diags) = scl_syntax::parse_file(FileId(0), text);
        assert!(
            diags.iter().any(|d| d.code.code == "E0107"),
            "expected a nesting error for {}...: {diags:?}",
            &text[..40]
        );
    }
    // A long `else if` chain is flat, not deep: it parses cleanly.
    let chain = format!(
        "fn f(x: u32) -> u32 {{ if x == 0 {{ return 0; }} {} return 1; }}",
        (1..n).map(|i| format!("else if x == {i} {{ return {i}; }}")).collect::<String>()
    );
    let (_ast, diags) = scl_syntax::parse_file(FileId(0), &chain);
    assert!(diags.is_empty(), "{diags:?}");
}
