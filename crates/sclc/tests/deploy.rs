//! Deployment on the real kernel: `sclc load --pin`, `ls`, `map` and `unload`, and the
//! `scl_loader::pinned` library an application uses, on the same pinned maps.
//!
//! Each test pins under a name of its own (with the process id), so tests run in parallel
//! and beside a user's own pinned policies; a guard unpins on failure.

mod common;
use common::repo_root;

use scl_loader::pinned::{Error, Policy, Value};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

fn sclc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sclc")).args(args).current_dir(repo_root()).output().expect("sclc runs")
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// Runs sclc and insists on exit status `code`; returns stdout.
fn sclc_ok(args: &[&str], code: i32) -> String {
    let o = sclc(args);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(code), "sclc {}\nstdout:\n{out}\nstderr:\n{err}", args.join(" "));
    if code == 2 {
        assert!(err.contains("sclc: error:"), "no error message for sclc {}: {err}", args.join(" "));
    }
    out
}

fn kernel_or_skip() -> bool {
    scl_loader::kernel_tests_can_run()
}

/// Unpins the policy when dropped, so a failed assertion leaves nothing behind.
struct Pinned(String);

impl Drop for Pinned {
    fn drop(&mut self) {
        let dir = Path::new(scl_loader::pin::SCL_ROOT).join(&self.0);
        if dir.exists() {
            let _ = scl_loader::pin::unpin(&dir);
        }
    }
}

fn unique(what: &str) -> String {
    format!("test_{what}_{}", std::process::id())
}

fn ls_entry(name: &str) -> Option<serde_json::Value> {
    let out = sclc_ok(&["ls", "--format", "json"], 0);
    let all: serde_json::Value = serde_json::from_str(&out).expect("ls JSON parses");
    all.as_array().expect("an array").iter().find(|p| p["name"] == name).cloned()
}

#[test]
fn an_application_informed_policy_is_pinned_written_read_and_unloaded() {
    if !kernel_or_skip() {
        return;
    }
    let name = unique("app");
    let guard = Pinned(name.clone());
    let dir = Path::new(scl_loader::pin::SCL_ROOT).join(&name);

    // This kernel has no lock-hook module: activating is an environment error that names
    // what is missing, and leaves nothing pinned; `--pin-only` pins for later.
    let o = sclc(&["load", "examples/app_priority.scl", "--pin", &name, "--lock", "0xffffffff81000000"]);
    let err = text(&o).1;
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("no lock-hook module") && err.contains("--pin-only"), "{err}");
    assert!(!dir.exists(), "nothing is pinned when the policy cannot run");
    let out = sclc_ok(&["load", "examples/app_priority.scl", "--pin", &name, "--pin-only", "--set", "max_wait_ns=2ms"], 0);
    assert!(out.contains("(syncord)") && out.contains("not active"), "{out}");
    for f in ["prog_should_reorder", "prog_skip_reorder", "map_latency_critical", "hidden_rodata"] {
        assert!(dir.join(f).exists(), "{f} is not pinned");
    }
    // The same name again is refused, with the way out.
    let o = sclc(&["load", "examples/app_priority.scl", "--pin", &name, "--pin-only"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains(&format!("sclc unload {name}")), "{}", text(&o).1);

    // `ls` shows it: programs not attached, the map typed by size.
    let entry = ls_entry(&name).expect("ls lists the policy");
    assert_eq!(entry["attached"], false);
    let hooks: Vec<&str> = entry["programs"].as_array().unwrap().iter().map(|p| p["hook"].as_str().unwrap()).collect();
    assert_eq!(hooks, ["should_reorder", "skip_reorder"]);
    // Loaded for lock context: non-sleepable raw tracepoint programs, which no kernel
    // module runs here.
    let types: Vec<&str> = entry["programs"].as_array().unwrap().iter().map(|p| p["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["raw_tracepoint", "raw_tracepoint"]);
    assert_eq!(entry["kernel"], serde_json::json!({ "module": false, "active": false }));
    let map = entry["maps"].as_array().unwrap().iter().find(|m| m["name"] == "latency_critical").expect("the map").clone();
    assert_eq!((map["type"].as_str(), map["key_size"].as_u64(), map["value_size"].as_u64()), (Some("hash"), Some(4), Some(1)));
    assert_eq!((map["max_entries"].as_u64(), map["entries"].as_u64()), (Some(1024), Some(0)));
    let table = sclc_ok(&["ls"], 0);
    assert!(table.contains(&name) && table.contains("latency_critical"), "{table}");
    // The config it was loaded with.
    assert_eq!(sclc_ok(&["map", &name, "dump", "hidden_rodata"], 0), "0 => {max_wait_ns: 2000000}\n");

    // Through the CLI.
    sclc_ok(&["map", &name, "set", "latency_critical", "1234", "1"], 0);
    assert_eq!(sclc_ok(&["map", &name, "get", "latency_critical", "1234"], 0), "1234 => 1\n");
    assert_eq!(sclc_ok(&["map", &name, "get", "latency_critical", "0x4d2", "--format", "json"], 0), "{\"key\":1234,\"value\":1}\n");
    assert_eq!(sclc_ok(&["map", &name, "get", "latency_critical", "99"], 0), "99 => none\n");

    // Through the library, read back through the CLI, and the other way round.
    let policy = Policy::open(&name).expect("the library opens the pinned policy");
    let critical = policy.map("latency_critical").expect("the map");
    assert_eq!(critical.key_type().to_string(), "u32");
    assert_eq!(critical.value_type().to_string(), "u8");
    critical.set(&Value::from(4321u32), &Value::Int(7)).expect("set through the library");
    assert_eq!(sclc_ok(&["map", &name, "get", "latency_critical", "4321"], 0), "4321 => 7\n");
    assert_eq!(critical.get(&Value::from(1234u32)).unwrap(), Some(Value::Int(1)));

    // Wrong types are refused and change nothing.
    let before = sclc_ok(&["map", &name, "dump", "latency_critical"], 0);
    assert_eq!(before.lines().count(), 2, "{before}");
    for args in [
        ["set", "latency_critical", "1234", "300"],
        ["set", "latency_critical", "1234", "x=1"],
        ["set", "latency_critical", "4294967296", "1"],
        ["set", "latency_critical", "-1", "1"],
        ["set", "latency_critical", "1234", "[1]"],
        ["set", "no_such_map", "1", "1"],
    ] {
        let mut full = vec!["map", name.as_str()];
        full.extend(args);
        sclc_ok(&full, 2);
    }
    assert!(matches!(critical.set(&Value::from(1234u32), &Value::Int(300)), Err(Error::Value(_))));
    assert!(matches!(critical.set(&Value::Int(1 << 40), &Value::Int(1)), Err(Error::Value(_))));
    assert!(matches!(critical.set(&Value::from(1234u32), &Value::Struct(vec![("x".into(), Value::Int(1))])), Err(Error::Value(_))));
    assert_eq!(sclc_ok(&["map", &name, "dump", "latency_critical"], 0), before);
    assert!(matches!(policy.map("hidden_rodata").unwrap().set(&Value::Int(0), &Value::Struct(vec![])), Err(Error::Value(_))));

    // Delete, through both.
    sclc_ok(&["map", &name, "delete", "latency_critical", "1234"], 0);
    assert!(critical.delete(&Value::from(4321u32)).unwrap());
    assert!(!critical.delete(&Value::from(4321u32)).unwrap());
    assert_eq!(sclc_ok(&["map", &name, "dump", "latency_critical"], 0), "");
    drop((critical, policy));

    // Unload leaves nothing; a second unload names what exists.
    assert_eq!(sclc_ok(&["unload", &name], 0), format!("unloaded `{name}`\n"));
    assert!(!dir.exists(), "{} is left behind", dir.display());
    assert!(ls_entry(&name).is_none());
    let o = sclc(&["unload", &name]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains(&format!("no pinned policy `{name}`")), "{}", text(&o).1);
    assert!(matches!(Policy::open(&name), Err(Error::NotFound { .. })));
    drop(guard);
}

/// True once the kernel has freed program `id` (after an RCU grace period: up to 5 s).
fn program_gone(id: u64) -> bool {
    for _ in 0..50 {
        match Command::new("bpftool").args(["prog", "show", "id", &id.to_string()]).output() {
            Ok(out) if !out.status.success() => return true,
            Ok(_) => std::thread::sleep(Duration::from_millis(100)),
            Err(_) => {
                eprintln!("SKIPPED (leak check): bpftool is not installed");
                return true;
            }
        }
    }
    false
}

/// Program ids that `bpftool link show` lists as attached.
fn linked_programs() -> Option<Vec<u64>> {
    let out = Command::new("bpftool").args(["link", "show", "--json"]).output().ok()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    Some(v.as_array()?.iter().filter_map(|l| l["prog_id"].as_u64()).collect())
}

#[test]
fn the_stock_profiler_stays_attached_while_pinned_and_goes_on_unload() {
    if !kernel_or_skip() {
        return;
    }
    let name = unique("prof");
    let guard = Pinned(name.clone());
    let dir = Path::new(scl_loader::pin::SCL_ROOT).join(&name);
    let out = sclc_ok(&["load", "examples/contention_profiler.scl", "--pin", &name], 0);
    assert!(out.contains("(stock)") && out.contains("attached to the lock tracepoints"), "{out}");
    assert!(dir.join("link_contended").exists() && dir.join("link_contention_end").exists());

    // sclc has exited; the links keep the programs attached.
    let entry = ls_entry(&name).expect("ls lists the profiler");
    assert_eq!(entry["attached"], true);
    let ids: Vec<u64> = entry["programs"].as_array().unwrap().iter().map(|p| p["id"].as_u64().unwrap()).collect();
    assert_eq!(ids.len(), 2);
    assert!(entry["programs"].as_array().unwrap().iter().all(|p| p["attached"] == true && p["type"] == "tracing"), "{entry}");
    assert!(entry["maps"].as_array().unwrap().iter().any(|m| m["name"] == "hidden_scl_flags" && m["hidden"] == true), "{entry}");
    match linked_programs() {
        Some(linked) => {
            for id in &ids {
                assert!(linked.contains(id), "bpftool link show does not list program {id}: {linked:?}");
            }
        }
        None => eprintln!("SKIPPED (link check): bpftool is not installed"),
    }

    // Struct keys and values, typed from BTF: members by name, nested structs and arrays.
    // Lock 1 is no lock's address, so the profiler never touches this entry.
    let key = "lock=1, stack=0, class=0";
    sclc_ok(&["map", &name, "set", "stats", key, "contentions=5, wait_max_ns=0x10, waits={buckets=[1,2]}"], 0);
    let got = sclc_ok(&["map", &name, "get", "stats", key], 0);
    assert!(
        got.starts_with("{lock: 1, stack: 0, class: 0} => {contentions: 5, failed: 0, wait_total_ns: 0, wait_max_ns: 16, waits: {buckets: [1, 2, 0, "),
        "{got}"
    );
    let json: serde_json::Value = serde_json::from_str(&sclc_ok(&["map", &name, "get", "stats", key, "--format", "json"], 0)).unwrap();
    assert_eq!(json["value"]["waits"]["buckets"][1], 2);
    assert_eq!(json["key"]["lock"], 1);
    sclc_ok(&["map", &name, "set", "stats", key, "contentions=1,nope=2"], 2);
    sclc_ok(&["map", &name, "set", "stats", "1", "contentions=1"], 2);
    sclc_ok(&["map", &name, "set", "stats", key, "waits={buckets=[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33]}"], 2);
    assert!(sclc_ok(&["map", &name, "get", "stats", key], 0).contains("} => {contentions: 5,"));
    sclc_ok(&["map", &name, "delete", "stats", key], 0);
    assert_eq!(sclc_ok(&["map", &name, "get", "stats", key], 0), "{lock: 1, stack: 0, class: 0} => none\n");
    // An array index past the end is the kernel's refusal; array entries cannot be deleted.
    sclc_ok(&["map", &name, "set", "kind_hist", "3", "buckets=[1]"], 2);
    sclc_ok(&["map", &name, "delete", "kind_hist", "0"], 2);
    sclc_ok(&["map", &name, "set", "hidden_scl_zero", "0", "contentions=1"], 2);

    sclc_ok(&["unload", &name], 0);
    assert!(!dir.exists(), "{} is left behind", dir.display());
    for id in ids {
        assert!(program_gone(id), "program {id} is still loaded 5 s after unload");
    }
    drop(guard);
}

#[test]
fn bad_names_and_missing_policies_are_usage_errors() {
    if !kernel_or_skip() {
        return;
    }
    sclc_ok(&["load", "examples/app_priority.scl", "--pin", "../escape"], 2);
    // `--lock` is for the lock-hook module only.
    sclc_ok(&["load", "examples/contention_profiler.scl", "--pin", &unique("lk"), "--lock", "0x1000"], 2);
    sclc_ok(&["load", "examples/app_priority.scl", "--pin", &unique("lk"), "--pin-only", "--lock", "0x1000"], 2);
    sclc_ok(&["load", "examples/app_priority.scl", "--pin", &unique("cfg"), "--pin-only", "--set", "no_such=1"], 2);
    sclc_ok(&["map", &unique("absent"), "get", "latency_critical", "1"], 2);
    sclc_ok(&["unload", &unique("absent")], 2);
    assert!(!Path::new(scl_loader::pin::SCL_ROOT).join(unique("cfg")).exists());
}
