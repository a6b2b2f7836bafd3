//! `sclc sim`: the command line of the lock simulator. The effects of the example policies
//! are asserted in `crates/scl-sim/tests/effects.rs`; here, what a user meets: the table and
//! JSON reports, `--compare`, machine and workload files, seeds, and the exit codes.

mod common;
use common::repo_root;

use std::process::{Command, Output};

fn sclc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sclc")).current_dir(repo_root()).args(args).output().expect("sclc runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn scratch(name: &str, contents: &str) -> String {
    let dir = std::env::temp_dir().join(format!("sclc-sim-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let p = dir.join(name);
    std::fs::write(&p, contents).expect("write");
    p.to_str().expect("utf-8 path").to_string()
}

fn json(out: &Output) -> serde_json::Value {
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)))
}

#[test]
fn table_with_baseline_side_by_side() {
    let out = sclc(&["sim", "examples/numa_grouping.scl", "--duration", "5ms", "--compare", "baseline"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let t = text(&out.stdout);
    for want in [
        "machine:  2x8 (16 CPUs)",
        "workload: 16 threads on a spinlock",
        "baseline (FIFO)",
        "numa_grouping",
        "ratio",
        "throughput (acquisitions/s)",
        "fairness (Jain, hold time)",
        "local hand-off ratio",
        "wait p50",
        "wait p99",
        "wait max",
    ] {
        assert!(t.contains(want), "no `{want}` in\n{t}");
    }
    assert!(out.stderr.is_empty(), "no progress bar off a terminal: {}", text(&out.stderr));
}

#[test]
fn json_report_and_ratios() {
    let out = sclc(&["sim", "examples/numa_grouping.scl", "--duration", "5ms", "--compare", "baseline", "--format", "json"]);
    let v = json(&out);
    let runs = v["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["policy"], "baseline (FIFO)");
    assert_eq!(runs[1]["policy"], "numa_grouping");
    assert_eq!(v["machine"]["sockets"], 2);
    assert_eq!(v["duration_ns"], 5_000_000);
    assert_eq!(runs[1]["threads"].as_array().unwrap().len(), 16);
    let local = |r: &serde_json::Value| r["local_handoff_ratio"].as_f64().unwrap();
    assert!(local(&runs[1]) > local(&runs[0]));
    assert!(v["ratios"]["throughput"].as_f64().is_some());
    assert!(runs[1]["hooks"]["calls"]["should_reorder"].as_u64().unwrap() > 0);
}

#[test]
fn a_seed_makes_the_report_reproducible() {
    let args = ["sim", "examples/amp.scl", "--machine", "1x8", "--duration", "3ms", "--format", "json", "--seed", "7"];
    assert_eq!(json(&sclc(&args)), json(&sclc(&args)));
    let mut other = args;
    other[9] = "8";
    assert_ne!(json(&sclc(&args))["runs"], json(&sclc(&other))["runs"]);
}

#[test]
fn machine_and_workload_files() {
    let machine = scratch(
        "bl.toml",
        "sockets = 1\ncores_per_socket = 8\nlittle_cpus = [4, 5, 6, 7]\nlittle_speed = 0.33\nremote_handoff_ns = 500\n",
    );
    let workload = scratch(
        "w.toml",
        "lock = \"mutex\"\nthreads = 6\ncs = { fixed = 1000 }\nthink = { uniform = [1000, 3000] }\n\
         [[thread]]\nindex = 2\ncpu = 7\n",
    );
    let v = json(&sclc(&["sim", "examples/amp.scl", "--machine", &machine, "--workload", &workload, "--duration", "3ms", "--format", "json"]));
    assert_eq!(v["workload"]["lock"], "mutex");
    assert_eq!(v["workload"]["threads"].as_array().unwrap().len(), 6);
    assert_eq!(v["workload"]["threads"][2]["cpu"], 7);
    assert_eq!(v["machine"]["speed"][5], 0.33);
    // --threads and --lock override the file.
    let v = json(&sclc(&[
        "sim", "examples/amp.scl", "--machine", &machine, "--workload", &workload, "--threads", "3", "--lock", "spinlock", "--duration", "1ms",
        "--format", "json",
    ]));
    assert_eq!(v["workload"]["lock"], "spinlock");
    assert_eq!(v["workload"]["threads"].as_array().unwrap().len(), 3);
}

#[test]
fn rwsem_policies_run_on_an_rwsem_by_default() {
    let out = sclc(&["sim", "examples/bravo.scl", "--duration", "2ms", "--set", "drain_poll_ns=2000"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let t = text(&out.stdout);
    assert!(t.contains("on a rwsem") && t.contains("reads/s") && t.contains("reads bypassed"), "{t}");
}

#[test]
fn critical_threads_are_reported_apart() {
    let v = json(&sclc(&["sim", "examples/app_priority.scl", "--duration", "5ms", "--critical", "0,3", "--compare", "baseline", "--format", "json"]));
    let runs = v["runs"].as_array().unwrap();
    assert!(runs[1]["wait_latency_critical"]["p99_ns"].as_u64().unwrap() < runs[0]["wait_latency_critical"]["p99_ns"].as_u64().unwrap());
    assert_eq!(runs[1]["notes"].as_array().unwrap().len(), 0, "app_priority has the map");
    // A policy without the map says so.
    let v = json(&sclc(&["sim", "examples/lockstat.scl", "--duration", "1ms", "--critical", "1", "--format", "json"]));
    assert!(v["runs"][0]["notes"][0].as_str().unwrap().contains("no `latency_critical` map"));
}

#[test]
fn compare_with_static_shfllock() {
    // ShflLock's NUMA grouping with free hooks: it shuffles, and costs no instructions.
    let v = json(&sclc(&["sim", "examples/numa_grouping.scl", "--duration", "3ms", "--compare", "shfllock", "--format", "json"]));
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs[0]["policy"], "static ShflLock");
    assert!(runs[0]["shuffle"]["moves"].as_u64().unwrap() > 0);
    assert!(runs[0]["hooks"]["calls"]["should_reorder"].as_u64().unwrap() > 0);
    assert_eq!(runs[0]["hooks"]["insns"], 0);
    assert!(runs[0]["local_handoff_ratio"].as_f64().unwrap() > 0.9);
    assert_eq!(v["machine"]["queue_node_ns"], 100);
    assert_eq!(v["workload"]["shuffle_batch"], 128);
}

#[test]
fn compare_with_another_policy() {
    let v = json(&sclc(&["sim", "examples/app_priority.scl", "--duration", "2ms", "--compare", "examples/numa_grouping.scl", "--format", "json"]));
    assert_eq!(v["runs"][0]["policy"], "numa_grouping");
    assert_eq!(v["runs"][1]["policy"], "app_priority");
}

#[test]
fn usage_problems_exit_2() {
    for (args, want) in [
        (vec!["sim", "examples/amp.scl", "--machine", "2y8"], "not SOCKETSxCORES"),
        (vec!["sim", "examples/amp.scl", "--machine", "missing.toml"], "cannot read machine"),
        (vec!["sim", "examples/amp.scl", "--threads", "17"], "one thread per CPU"),
        (vec!["sim", "examples/bravo.scl", "--lock", "spinlock"], "applies to rwsem, not to a spinlock"),
        (vec!["sim", "examples/amp.scl", "--set", "nope=1"], "no config value `nope`"),
        (vec!["sim", "examples/amp.scl", "--critical", "99"], "--critical 99"),
        (vec!["sim", "no/such.scl"], "cannot read `no/such.scl`"),
        (vec!["sim", "examples/amp.scl", "--duration", "soon"], "not a duration"),
    ] {
        let out = sclc(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out.stderr));
        assert!(text(&out.stderr).contains(want), "{args:?}: {}", text(&out.stderr));
    }
    let bad = scratch("bad.toml", "lock = \"rwsem\"\nthreds = 4\n");
    let out = sclc(&["sim", "examples/app_priority.scl", "--workload", &bad]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("threds"), "{}", text(&out.stderr));
}

#[test]
fn policy_errors_exit_1() {
    let broken = scratch("broken.scl", "policy p for spinlock {\n    on acquired(l: lock) { nope(); }\n}\n");
    let out = sclc(&["sim", &broken]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("nope"));
}

#[test]
fn sim_is_listed_in_help() {
    let out = sclc(&["--help"]);
    assert!(text(&out.stdout).contains("sim "), "{}", text(&out.stdout));
    let out = sclc(&["sim", "--help"]);
    for flag in ["--machine", "--workload", "--threads", "--duration", "--seed", "--compare", "--format"] {
        assert!(text(&out.stdout).contains(flag), "{flag}");
    }
}
