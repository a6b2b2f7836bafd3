//! `sclc sim --replay TRACE POLICY`: the command line of the replay. The traces are written
//! with `scl_trace::format` from what the simulator shows a stock kernel's tracepoints would
//! see of a known workload (`scl_sim::simulate_traced`), so their truth is known: the fit
//! itself is asserted in `crates/scl-sim/tests/replay.rs`; here, what a user meets: the fit
//! table and the side-by-side runs, the JSON shape other tools read, `--lock`, and bad
//! traces and options refused with clear errors and exit code 2 (as a bad workload file).

use scl_sim::model::FIRST_TID;
use scl_sim::{simulate_traced, Config, Dist, Fifo, LockImpl, LockKind, Machine, SimEventKind, Workload, WorkloadDefaults};
use scl_trace::fit::{LCB_F_MUTEX, LCB_F_SPIN};
use scl_trace::{CpuPlace, Event, EventKind, Topology, Trace};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const HOT: u64 = 0xffff_8880_0000_1000;
const COLD: u64 = 0xffff_8880_0000_2000;

fn sclc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sclc")).current_dir(repo_root()).args(args).output().expect("sclc runs")
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repo root")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sclc-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

/// A mutex storm of 8 threads on a 2x4 machine (known cs 10 us, think 30 us), recorded as
/// the stock tracepoints show it, plus a few waits on a second, cold lock.
fn storm() -> Trace {
    storm_of(8, Dist::Uniform(20_000, 40_000))
}

/// `threads` threads of the storm, with think time `think`.
fn storm_of(threads: u32, think: Dist) -> Trace {
    let machine = Machine::symmetric(2, 4);
    let d = WorkloadDefaults { lock: LockKind::Mutex, cs: Dist::Uniform(8_000, 12_000), think, ..WorkloadDefaults::default() };
    let mut workload = Workload::uniform(&machine, threads, &d).unwrap();
    workload.locks = LockImpl::Linux;
    let cfg = Config { machine: machine.clone(), workload, duration_ns: 20_000_000, seed: 5 };
    let mut events = Vec::new();
    let base = 1_000_000_000u64;
    simulate_traced(&cfg, &mut Fifo, &mut |e| {
        let (kind, flags) = match e.kind {
            SimEventKind::ContentionBegin => (EventKind::ContentionBegin, LCB_F_MUTEX | LCB_F_SPIN),
            SimEventKind::ContentionEnd => (EventKind::ContentionEnd, 0),
            _ => return,
        };
        let tid = FIRST_TID + e.thread as u32;
        events.push(Event { ts: base + e.ts, kind, lock: HOT, flags, lock_kind: 1, ok: true, tid, pid: 42, cpu: e.cpu });
    })
    .unwrap();
    for i in 0..3u64 {
        let ts = base + 1_000 + i * 100_000;
        let e =
            Event { ts, kind: EventKind::ContentionBegin, lock: COLD, flags: LCB_F_SPIN, lock_kind: 0, ok: true, tid: 7, pid: 7, cpu: 0 };
        events.push(e);
        events.push(Event { ts: ts + 500, kind: EventKind::ContentionEnd, flags: 0, ..e });
    }
    events.sort_by_key(|e| e.ts);
    Trace {
        topology: Topology { cpus: (0..8).map(|c| Some(CpuPlace { node: c / 4, socket: c / 4 })).collect() },
        start_ns: base,
        end_ns: base + cfg.duration_ns,
        lock_names: vec![(HOT, "storm_mutex".into()), (COLD, "cold_lock".into())],
        comms: (0..threads).map(|i| (FIRST_TID + i, format!("storm/{i}"))).collect(),
        lost: 0,
        events,
    }
}

/// The storm written to a file of its own for test `name` (the tests run in parallel).
fn storm_file(name: &str) -> PathBuf {
    let p = scratch(&format!("storm-{name}.trace"));
    let mut bytes = Vec::new();
    scl_trace::format::write(&mut bytes, &storm()).unwrap();
    std::fs::write(&p, bytes).unwrap();
    p
}

fn json(out: &Output) -> serde_json::Value {
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)))
}

#[test]
fn table_fit_then_side_by_side() {
    let trace = storm_file("table");
    let out = sclc(&["sim", "--replay", trace.to_str().unwrap(), "examples/numa_grouping.scl"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let t = text(&out.stdout);
    for want in [
        "trace:    ",
        "on 8 CPUs in 2 nodes",
        "lock:     storm_mutex (0xffff888000001000), mutex, 8 threads",
        "stock tracepoints: inferred",
        "fit:      critical section median",
        "think time median",
        "machine:  2x4 (8 CPUs)",
        "workload: 8 threads on a mutex, cs empirical",
        "Linux 6.x's stock lock",
        "baseline on Linux's stock mutex, numa_grouping on the module's governed mutex",
        "FIFO replay vs trace",
        "wait p50",
        "wait p90",
        "wait p99",
        "contention rate (waits/s)",
        "local hand-off share",
        "fit: good: the FIFO replay's wait median is",
        // Then exactly `sim --compare baseline`'s table.
        "baseline (FIFO)",
        "numa_grouping",
        "throughput (acquisitions/s)",
        "local hand-off ratio",
    ] {
        assert!(t.contains(want), "no `{want}` in\n{t}");
    }
    // The fit table comes before the runs.
    assert!(t.find("FIFO replay vs trace").unwrap() < t.find("throughput (acquisitions/s)").unwrap());
}

#[test]
fn json_shape() {
    let trace = storm_file("json");
    let v = json(&sclc(&["sim", "--replay", trace.to_str().unwrap(), "examples/numa_grouping.scl", "--format", "json"]));
    assert_eq!(v["trace"]["locks"], 2);
    assert_eq!(v["trace"]["cpus"], 8);
    assert_eq!(v["trace"]["nodes"], 2);
    assert_eq!(v["lock"]["name"], "storm_mutex");
    assert_eq!(v["lock"]["addr_hex"], "0xffff888000001000");
    assert_eq!(v["lock"]["kind"], "mutex");
    assert_eq!(v["lock"]["threads"].as_array().unwrap().len(), 8);
    assert_eq!(v["lock"]["threads"][0]["comm"].as_str().map(|c| c.starts_with("storm/")), Some(true));
    let rec = &v["fit"]["recorded"];
    let sim = &v["fit"]["simulated"];
    for k in ["waits", "wait_p50_ns", "wait_p90_ns", "wait_p99_ns", "contention_rate", "handoffs", "local_handoff_share"] {
        assert!(!rec[k].is_null() && !sim[k].is_null(), "fit.*.{k}: {v}");
    }
    assert_eq!(v["fit"]["verdict"], "good");
    // The fitted think time already makes the replay contend as often as the trace.
    assert!(v["fit"]["think_scale"].is_null(), "{}", v["fit"]);
    assert!(v["fit"]["uncalibrated"]["wait_p50_ns"].is_u64());
    let r = v["fit"]["ratios"]["wait_p50"].as_f64().unwrap();
    assert!((0.75..=1.25).contains(&r), "wait median ratio {r}");
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["policy"], "numa_grouping");
    assert_eq!(runs[1]["policy"], "baseline (FIFO)");
    for run in runs {
        // The names other tools read, in `sclc sim --format json`'s shape.
        assert!(run["local_handoff_ratio"].is_f64());
        assert!(run["wait"]["p50_ns"].is_u64() && run["wait"]["p99_ns"].is_u64());
        assert!(run["shuffle"]["rounds"].is_u64());
        assert!(run["throughput"].is_f64());
    }
    assert!(v["ratios"]["local_handoff_ratio"].is_f64());
    // The policy runs on the module's governed mutex, the baseline on Linux's: NUMA grouping
    // keeps more hand-offs on a node than the recorded FIFO order does.
    assert_eq!(v["locks"]["policy"], "module");
    let (p, f) = (runs[0]["local_handoff_ratio"].as_f64().unwrap(), runs[1]["local_handoff_ratio"].as_f64().unwrap());
    assert!(p > f + 0.1, "numa_grouping {p} vs FIFO {f}");
    // Same seed, same answer.
    let again = json(&sclc(&["sim", "--replay", trace.to_str().unwrap(), "examples/numa_grouping.scl", "--format", "json"]));
    assert_eq!(v["runs"], again["runs"]);
}

#[test]
fn lock_by_name_or_address_and_unknown_locks() {
    let trace = storm_file("lock");
    let t = trace.to_str().unwrap();
    let by_name = json(&sclc(&["sim", "--replay", t, "--lock", "storm_mutex", "examples/numa_grouping.scl", "--format", "json"]));
    let by_addr = json(&sclc(&["sim", "--replay", t, "--lock", "0xffff888000001000", "examples/numa_grouping.scl", "--format", "json"]));
    assert_eq!(by_name["lock"], by_addr["lock"]);
    // The cold lock has too few hand-offs to infer its critical section: a clear error.
    let out = sclc(&["sim", "--replay", t, "--lock", "cold_lock", "examples/numa_grouping.scl"]);
    assert_eq!(out.status.code(), Some(2));
    let e = text(&out.stderr);
    assert!(e.contains("cannot replay lock cold_lock (0xffff888000002000)") && e.contains("critical sections cannot be inferred"), "{e}");
    // An unknown lock lists the trace's locks, hottest first.
    let out = sclc(&["sim", "--replay", t, "--lock", "nope", "examples/numa_grouping.scl"]);
    assert_eq!(out.status.code(), Some(2));
    let e = text(&out.stderr);
    assert!(e.starts_with("sclc: error: --lock `nope`: the trace"), "{e}");
    let (hot, cold) = (e.find("storm_mutex").expect("hot listed"), e.find("cold_lock").expect("cold listed"));
    assert!(hot < cold, "{e}");
    // A kind is not a lock.
    let out = sclc(&["sim", "--replay", t, "--lock", "mutex", "examples/numa_grouping.scl"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--lock names a lock, not a kind"), "{}", text(&out.stderr));
    // The policy must apply to the lock's kind.
    let out = sclc(&["sim", "--replay", t, "examples/bravo.scl"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("applies to rwsem, not to a mutex"), "{}", text(&out.stderr));
}

#[test]
fn bad_traces_are_clear_errors() {
    let good = std::fs::read(storm_file("bad")).unwrap();
    let mut wrong_version = good.clone();
    // The version follows the 8-byte magic (docs/trace-format.md).
    wrong_version[8] = 99;
    wrong_version[9] = 0;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("truncated", good[..good.len() / 2].to_vec(), "truncated"),
        ("tail", good[..good.len() - 3].to_vec(), "truncated"),
        ("version", wrong_version, "version 99"),
        ("garbage", b"hello, this is not a trace at all".to_vec(), "not a trace"),
        ("empty", Vec::new(), "empty"),
    ];
    for (name, bytes, want) in cases {
        let p = scratch(&format!("{name}.trace"));
        std::fs::write(&p, &bytes).unwrap();
        let out = sclc(&["sim", "--replay", p.to_str().unwrap(), "examples/numa_grouping.scl"]);
        let e = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {e}");
        assert!(e.starts_with(&format!("sclc: error: {}: ", p.display())), "{name}: {e}");
        assert!(e.contains(want), "{name}: no `{want}` in {e}");
        assert!(!e.contains("panicked"), "{name}: {e}");
        assert!(out.stdout.is_empty(), "{name}");
    }
    let out = sclc(&["sim", "--replay", "/nonexistent/x.trace", "examples/numa_grouping.scl"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).starts_with("sclc: error: /nonexistent/x.trace: "), "{}", text(&out.stderr));
}

#[test]
fn options_that_make_no_sense_with_replay_are_refused() {
    let trace = storm_file("options");
    let t = trace.to_str().unwrap();
    for (flag, value) in [("--machine", "2x8"), ("--workload", "w.toml"), ("--threads", "4"), ("--compare", "baseline")] {
        let out = sclc(&["sim", "--replay", t, flag, value, "examples/numa_grouping.scl"]);
        assert_eq!(out.status.code(), Some(2), "{flag}");
        let e = text(&out.stderr);
        assert!(e.contains("cannot be used with") && e.contains(flag), "{flag}: {e}");
    }
    // Without --replay, --lock is still a lock kind.
    let out = sclc(&["sim", "--lock", "storm_mutex", "examples/numa_grouping.scl"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("not a lock kind"), "{}", text(&out.stderr));
}

/// `--recorded-on module`: a trace recorded on a lock the module governs with no policy
/// (the guest validation) has its FIFO baseline on the module's lock too; the default is
/// Linux's. Without --replay the option is refused.
#[test]
fn recorded_on_picks_the_baseline_lock() {
    let trace = storm_file("recorded_on");
    let t = trace.to_str().unwrap();
    let linux = json(&sclc(&["sim", "--replay", t, "examples/numa_grouping.scl", "--format", "json"]));
    assert_eq!(linux["locks"]["baseline"], "linux");
    let module = json(&sclc(&["sim", "--replay", t, "--recorded-on", "module", "examples/numa_grouping.scl", "--format", "json"]));
    assert_eq!(module["locks"]["baseline"], "module");
    assert_eq!(module["locks"]["policy"], "module");
    // The same policy run; a different baseline, which now counts the module's rounds.
    assert_eq!(linux["runs"][0], module["runs"][0]);
    assert_ne!(linux["runs"][1], module["runs"][1]);
    assert_eq!(linux["runs"][1]["shuffle"]["mixed"], 0, "Linux's mutex has no rounds");
    assert!(module["runs"][1]["shuffle"]["mixed"].as_u64().unwrap() > 0, "{}", module["runs"][1]["shuffle"]);
    let out = sclc(&["sim", "--recorded-on", "module", "examples/numa_grouping.scl"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--replay"), "{}", text(&out.stderr));
}

/// A trace whose think time is too long: two threads take turns, and two of every three
/// waits of each are taken out, as if those acquisitions had been uncontended (invisible).
/// The replay contends too little until the think time is calibrated down; `--no-calibrate`
/// keeps it.
#[test]
fn think_time_is_calibrated_to_the_recorded_contention() {
    let mut trace = storm_of(2, Dist::Uniform(1_000, 3_000));
    let mut seen = std::collections::HashMap::new();
    let mut keep = std::collections::HashMap::new();
    trace.events.retain(|e| {
        if e.lock != HOT {
            return true;
        }
        if e.kind == EventKind::ContentionBegin {
            let n = seen.entry(e.tid).or_insert(0u64);
            *n += 1;
            keep.insert(e.tid, *n % 3 == 0);
        }
        keep.get(&e.tid).copied().unwrap_or(false)
    });
    let p = scratch("thinned.trace");
    let mut bytes = Vec::new();
    scl_trace::format::write(&mut bytes, &trace).unwrap();
    std::fs::write(&p, bytes).unwrap();
    let t = p.to_str().unwrap();
    let v = json(&sclc(&["sim", "--replay", t, "examples/numa_grouping.scl", "--format", "json"]));
    let fit = &v["fit"];
    let scale = fit["think_scale"].as_f64().unwrap_or_else(|| panic!("not calibrated: {fit}"));
    assert!(scale > 0.0 && scale < 1.0, "{fit}");
    let rate = |side: &str| fit[side]["contention_rate"].as_f64().unwrap();
    assert!(rate("uncalibrated") < 0.75 * rate("recorded"), "{fit}");
    assert!((rate("simulated") / rate("recorded") - 1.0).abs() <= 0.25, "{fit}");
    assert!(fit["verdict_text"].as_str().unwrap().contains("think time calibrated"), "{fit}");
    let raw = json(&sclc(&["sim", "--replay", t, "examples/numa_grouping.scl", "--format", "json", "--no-calibrate"]));
    assert!(raw["fit"]["think_scale"].is_null());
    assert_eq!(raw["fit"]["simulated"], fit["uncalibrated"]);
}
