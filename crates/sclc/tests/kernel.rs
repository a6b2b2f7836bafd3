//! Every example (and `sclc record`'s recorder policies), compiled for each target its header names, loads into the running
//! kernel: stock programs attach to the lock tracepoints, syncord and sim programs pass the
//! verifier as `syscall` programs and run through `BPF_PROG_TEST_RUN`.

use scl_catalogue::Target;
use scl_diagnostics::Files;
use std::path::Path;

fn examples() -> Vec<(String, String, Vec<Target>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("examples/").flatten() {
        let p = e.path();
        if p.extension().is_none_or(|x| x != "scl") {
            continue;
        }
        let text = std::fs::read_to_string(&p).expect("readable");
        let targets = Target::in_header(&text);
        out.push((format!("examples/{}", p.file_name().unwrap().to_string_lossy()), text, targets));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    // The policies `sclc record` embeds are examples like the others: the stock recorder, and
    // `--module`'s for the lock-hook module.
    for (recorder, target) in [("crates/sclc/src/record/recorder.scl", Target::Stock), ("crates/sclc/src/record/module_recorder.scl", Target::Syncord)] {
        let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(recorder)).expect("the recorder");
        let targets = Target::in_header(&text);
        assert_eq!(targets, vec![target], "{recorder} runs on {target}");
        out.push((recorder.to_string(), text, targets));
    }
    out
}

/// Skips (loudly) only when the kernel truly cannot load BPF here.
fn kernel_or_skip() -> bool {
    scl_loader::kernel_tests_can_run()
}

/// A syncord object also loads the way `sclc load --target syncord` loads it for the
/// lock-hook module: as non-sleepable raw tracepoint programs (docs/abi.md §4).
fn lock_context_load(name: &str, target: Target, object: &[u8], failures: &mut Vec<String>) {
    if target != Target::Syncord {
        return;
    }
    if let Err(e) = scl_loader::load_with("t", object, &[], scl_loader::Options { lock_context: true }) {
        failures.push(format!("{name} ({target}, for lock context): {e}"));
    }
}

#[test]
fn every_example_loads_into_the_kernel() {
    if !kernel_or_skip() {
        return;
    }
    let mut failures = Vec::new();
    let mut loaded = 0;
    for (name, text, targets) in examples() {
        for target in targets {
            let mut files = Files::new();
            let id = files.add(name.clone(), text.clone());
            let out = match scl_driver::compile(&mut files, id, target) {
                Ok(o) => o,
                Err(d) => {
                    failures.push(format!("{name} ({target}): does not compile: {d:?}"));
                    continue;
                }
            };
            lock_context_load(&name, target, &out.object, &mut failures);
            match scl_loader::load("t", &out.object, &[]) {
                Ok(mut obj) => {
                    loaded += 1;
                    if target == Target::Stock {
                        if let Err(e) = obj.attach_all() {
                            failures.push(format!("{name} ({target}): {e}"));
                        }
                    } else {
                        for p in obj.programs() {
                            let mut ctx = [0u8; 128];
                            if let Err(e) = obj.test_run(&p, &mut ctx) {
                                failures.push(format!("{name} ({target}) {p}: {e}"));
                            }
                        }
                    }
                }
                Err(e) => failures.push(format!("{name} ({target}): {e}")),
            }
        }
    }
    println!("{loaded} example objects loaded");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The accepted UI cases (`tests/ui/*/ok_*.scl`, near misses of a rule) and the new
/// limits' edge cases compile for every target that takes them, and each object loads: the
/// checker's "yes" is the kernel's "yes" too.
#[test]
fn every_accepted_ui_case_loads_into_the_kernel() {
    if !kernel_or_skip() {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/ui");
    let mut cases = Vec::new();
    for dir in ["syntax", "sema"] {
        for e in std::fs::read_dir(root.join(dir)).expect("tests/ui").flatten() {
            let p = e.path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with("ok_") && name.ends_with(".scl") {
                cases.push((format!("tests/ui/{dir}/{name}"), std::fs::read_to_string(&p).expect("readable")));
            }
        }
    }
    cases.sort();
    assert!(cases.len() >= 30, "found only {} accepted UI cases", cases.len());
    let mut failures = Vec::new();
    let mut loaded = 0;
    for (name, text) in &cases {
        let mut compiled = 0;
        let mut refused = Vec::new();
        for target in Target::ALL {
            let mut files = Files::new();
            let id = files.add(name.clone(), text.clone());
            let out = match scl_driver::compile(&mut files, id, target) {
                Ok(o) => o,
                Err(d) => {
                    if d.iter().any(|d| d.code.code == scl_driver::E0900.code) {
                        failures.push(format!("{name} ({target}): internal compiler error: {d:?}"));
                    }
                    refused.push(format!("{target}: {}", d.first().map_or(String::new(), |d| d.message.clone())));
                    continue;
                }
            };
            compiled += 1;
            lock_context_load(name, target, &out.object, &mut failures);
            // A program that records stacks cannot be a sleepable `syscall` program (the
            // kernel keeps stack-trace maps from those): the lock-context load above, as
            // the lock-hook module runs it, is its check off the stock target.
            let stacks = out.module.maps.values().any(|m| m.kind == scl_catalogue::MapKind::StackTrace);
            if stacks && target != Target::Stock {
                if target == Target::Sim {
                    // Sim objects are never run by the kernel; verified as syncord's run.
                    if let Err(e) = scl_loader::load_with("t", &out.object, &[], scl_loader::Options { lock_context: true }) {
                        failures.push(format!("{name} ({target}, for lock context): {e}"));
                        continue;
                    }
                }
                loaded += 1;
                continue;
            }
            match scl_loader::load("t", &out.object, &[]) {
                Ok(mut obj) => {
                    loaded += 1;
                    if target == Target::Stock {
                        if let Err(e) = obj.attach_all() {
                            failures.push(format!("{name} ({target}): {e}"));
                        }
                    } else {
                        for p in obj.programs() {
                            let mut ctx = [0u8; 128];
                            if let Err(e) = obj.test_run(&p, &mut ctx) {
                                failures.push(format!("{name} ({target}) {p}: {e}"));
                            }
                        }
                    }
                }
                Err(e) => failures.push(format!("{name} ({target}): the checker accepts it, the kernel refuses it: {e}")),
            }
        }
        if compiled == 0 {
            failures.push(format!("{name}: accepted by the checker but compiles for no target: {}", refused.join("; ")));
        }
    }
    println!("{loaded} objects of {} accepted UI cases loaded", cases.len());
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
