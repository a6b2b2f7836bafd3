//! The whole compiler never panics and never ends in an internal compiler error (E0900, the
//! checker accepting what the back end cannot compile): every shipped policy, mutated at
//! random, goes through `compile` for each target. When it compiles, the object is not
//! empty, the IR of every program verifies, and the running kernel loads it (the verifier
//! accepts every program; skipped, with one loud line, only where this process cannot load
//! BPF). The bounded part of the `compile` fuzz target (fuzz/), run by `cargo test`;
//! `SCL_FUZZ_CASES=N` for a long run.

use proptest::prelude::*;
use scl_catalogue::Target;
use scl_diagnostics::Files;
use std::path::Path;

fn corpus() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut out = Vec::new();
    let mut dirs = vec![root.join("examples"), root.join("stdlib"), root.join("tests/ui"), root.join("tests/run")];
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

/// Objects loaded into the kernel, for the count the tests print.
static LOADED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// True if this process can load BPF; says loudly once when it cannot.
fn kernel() -> bool {
    static SUPPORT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SUPPORT.get_or_init(|| scl_loader::kernel_tests_can_run_else("compiled mutants are not loaded"))
}

/// Compiles `text` for every target; the problems found.
fn compile_all_targets(text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for target in Target::ALL {
        let mut files = Files::new();
        let id = files.add("fuzz.scl", text);
        match scl_driver::compile(&mut files, id, target) {
            Ok(out) => {
                if out.object.is_empty() {
                    problems.push(format!("{target}: empty object"));
                }
                for p in &out.module.programs {
                    if let Err(e) = scl_ir::verify::verify(&p.func) {
                        problems.push(format!("{target}: IR of `{}` does not verify: {}", p.name, e.join("; ")));
                    }
                }
                if kernel() {
                    // Loaded as they run: syncord programs in lock context (raw tracepoint
                    // programs). Sim objects are never run by the kernel; one that records
                    // stacks is verified in lock context too, as a sleepable program may
                    // not use a stack-trace map.
                    let stacks = out.module.maps.values().any(|m| m.kind == scl_catalogue::MapKind::StackTrace);
                    let opts = scl_loader::Options { lock_context: target == Target::Syncord || (target == Target::Sim && stacks) };
                    match scl_loader::load_with("fuzz", &out.object, &[], opts) {
                        Ok(_) => {
                            LOADED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        Err(e) => problems.push(format!("{target}: sclc accepts it, the kernel refuses it: {e}")),
                    }
                }
            }
            Err(diags) => {
                for d in diags.iter().filter(|d| d.code.code == scl_driver::E0900.code) {
                    problems.push(format!("{target}: internal compiler error: {}", d.message));
                }
            }
        }
    }
    problems
}

#[test]
fn every_shipped_file_compiles_or_is_refused_cleanly() {
    let corpus = corpus();
    assert!(corpus.len() > 200, "the corpus is the shipped .scl files");
    let before = LOADED.load(std::sync::atomic::Ordering::Relaxed);
    let problems: Vec<String> = corpus.iter().flat_map(|t| compile_all_targets(t)).collect();
    let loaded = LOADED.load(std::sync::atomic::Ordering::Relaxed) - before;
    println!("{} shipped files: {loaded} objects loaded into the kernel", corpus.len());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn cases(default: u32) -> u32 {
    std::env::var("SCL_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(128), ..ProptestConfig::default() })]

    /// Word-level mutations keep most of a policy intact, so many still compile.
    #[test]
    fn mutated_policies_compile_or_are_refused_cleanly(
        which in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>(), 0u8..4), 1..4),
    ) {
        let corpus = corpus();
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
        let text = words.concat();
        let problems = compile_all_targets(&text);
        // The running total, visible with --nocapture.
        if which.index(64) == 0 {
            println!("mutants: {} objects loaded so far", LOADED.load(std::sync::atomic::Ordering::Relaxed));
        }
        prop_assert!(problems.is_empty(), "{}\n--- input\n{}", problems.join("\n"), text);
    }
}
