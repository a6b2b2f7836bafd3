//! The checker never panics, whatever the parser hands it: every shipped policy, mutated
//! at random, goes through the whole front end and checker for each target.

use proptest::prelude::*;
use scl_catalogue::Target;
use scl_diagnostics::Files;
use std::path::Path;

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

fn check_all_targets(text: &str) {
    for target in [None, Some(Target::Stock), Some(Target::Syncord), Some(Target::Sim)] {
        let mut files = Files::new();
        let id = files.add("fuzz.scl", text);
        let checked = scl_sema::check_file(&mut files, id, &scl_sema::Options { target });
        for d in &checked.diagnostics {
            let f = files.get(d.primary.file);
            assert!(d.primary.span.end as usize <= f.text.len(), "span past the end: {d:?}");
        }
    }
}

#[test]
fn every_shipped_file_checks_without_panicking() {
    for text in corpus() {
        check_all_targets(&text);
    }
}

/// Cases per property: small by default to keep the suite fast; `SCL_FUZZ_CASES=N` for a
/// long run (see docs/testing.md).
fn cases(default: u32) -> u32 {
    std::env::var("SCL_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), ..ProptestConfig::default() })]

    /// Mutations that keep most of a file intact reach deep into the checker.
    #[test]
    fn mutated_policies_never_panic(
        which in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>(), 0u8..4), 1..5),
    ) {
        let corpus = corpus();
        prop_assume!(!corpus.is_empty());
        let mut words: Vec<String> = which.get(&corpus).split_inclusive(|c: char| !c.is_alphanumeric() && c != '_').map(str::to_string).collect();
        let pool = words.clone();
        for (a, b, op) in edits {
            if words.is_empty() {
                break;
            }
            let (i, j) = (a.index(words.len()), b.index(pool.len()));
            match op {
                0 => { words.remove(i); }
                1 => words.insert(i, pool[j].clone()),
                2 => words[i] = pool[j].clone(),
                _ => {
                    let k = j % words.len();
                    words.swap(i, k);
                }
            }
        }
        check_all_targets(&words.concat());
    }
}
