//! The event filter's guard (`scl_ir::lower::EventFilter`, `lower/filter.rs`): what each
//! kind of filter adds to a stock policy's programs, in a table. The live behaviour is
//! tested on the kernel by `crates/sclc/tests/run_filters.rs`.

use scl_catalogue::Target;
use scl_diagnostics::Files;
use scl_ir::lower::{lower, lower_filtered, EventFilter};
use scl_ir::{InstData, Module};

fn module(src: &str, filter: &EventFilter) -> Module {
    let mut files = Files::new();
    let id = files.add("f.scl".to_string(), src.to_string());
    let checked = scl_sema::check_file(&mut files, id, &scl_sema::Options { target: Some(Target::Stock) });
    assert!(!checked.has_errors(), "{:?}", checked.diagnostics);
    let m = lower_filtered(&checked.program, Target::Stock, filter);
    for p in &m.programs {
        scl_ir::verify::verify(&p.func).unwrap_or_else(|e| panic!("{}: {}\n{}", p.name, e.join("; "), p.func));
    }
    m
}

const BOTH: &str = "global n: u64;\npolicy p for mutex {\n    on contended(l: lock) { n += 1; }\n    on contention_end(l: lock, ok: bool) { n += 1; }\n}\n";
const END_ONLY: &str = "global n: u64;\npolicy p for mutex {\n    on contention_end(l: lock, ok: bool) { n += 1; }\n}\n";

/// Helper calls of program `hook`, by id.
fn helpers(m: &Module, hook: &str) -> Vec<u32> {
    let p = m.programs.iter().find(|p| p.name == hook).unwrap_or_else(|| panic!("no program {hook}"));
    p.func.insts.values().filter_map(|i| match i { InstData::Call { helper, .. } => Some(*helper), _ => None }).collect()
}

#[test]
fn an_empty_filter_adds_nothing() {
    let mut files = Files::new();
    let id = files.add("f.scl".to_string(), BOTH.to_string());
    let checked = scl_sema::check_file(&mut files, id, &scl_sema::Options { target: Some(Target::Stock) });
    let plain = lower(&checked.program, Target::Stock);
    let filtered = module(BOTH, &EventFilter::default());
    for (a, b) in plain.programs.iter().zip(&filtered.programs) {
        assert_eq!(a.func.to_string(), b.func.to_string());
    }
    assert_eq!(plain.maps.len(), filtered.maps.len());
}

#[test]
fn each_term_costs_its_helper_and_begin_only_terms_pair_the_ends() {
    // (filter, helpers the beginning gains, helpers the end gains, pairing map expected)
    let cases: Vec<(EventFilter, Vec<u32>, Vec<u32>, bool)> = vec![
        (EventFilter { tids: vec![7], ..Default::default() }, vec![14], vec![14], false),
        (EventFilter { tgids: vec![7, 8], ..Default::default() }, vec![14], vec![14], false),
        (EventFilter { cgroups: vec![99], ..Default::default() }, vec![80], vec![80], false),
        (EventFilter { locks: vec![0xffff_8880_0000_1000], ..Default::default() }, vec![], vec![], false),
        // The CPU at the beginning, then the pair recorded (pid_tgid for the thread, an
        // update); the end deletes its pair.
        (EventFilter { cpus: vec![(0, 3)], ..Default::default() }, vec![8, 14, 2], vec![14, 3], true),
        (EventFilter { flags: vec![32, 33], ..Default::default() }, vec![14, 2], vec![14, 3], true),
    ];
    let base = module(BOTH, &EventFilter::default());
    for (filter, begin, end, pairs) in cases {
        let m = module(BOTH, &filter);
        for (hook, extra) in [("contended", &begin), ("contention_end", &end)] {
            let mut got = helpers(&m, hook);
            for h in helpers(&base, hook) {
                let i = got.iter().position(|x| *x == h).expect("the policy's own calls stay");
                got.remove(i);
            }
            got.sort_unstable();
            let mut want = extra.clone();
            want.sort_unstable();
            assert_eq!(got, want, "{filter:?}: helpers {hook} gains");
        }
        assert_eq!(m.maps.values().any(|d| d.name == "scl_filter"), pairs, "{filter:?}");
    }
}

#[test]
fn a_policy_without_contended_gets_one_to_pair_its_ends() {
    let plain = module(END_ONLY, &EventFilter { tids: vec![1], ..Default::default() });
    assert_eq!(plain.programs.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["contention_end"]);
    let paired = module(END_ONLY, &EventFilter { cpus: vec![(1, 1)], ..Default::default() });
    assert_eq!(paired.programs.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["contended", "contention_end"]);
    assert!(helpers(&paired, "contended").contains(&2), "the beginning records its pair");
}
