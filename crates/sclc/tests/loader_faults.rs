//! Loader faults (issue 8): the kernel refusing a map, the kernel refusing a program's
//! tracepoint, and `sclc run` killed mid-run. Each gives a clear error, leaves nothing
//! loaded and nothing pinned, and the next run works.
//!
//! | fault | expected |
//! |---|---|
//! | a policy whose map the kernel cannot allocate (a preallocated hash of 2^20 values of 512 KiB: 512 GiB; each value is within the checker's limits) | `sclc run` exits 2 (an environment error) naming the map; no map of it stays in the kernel |
//! | the same policy through `sclc load --pin` and `sclc build --verify` | exit 2 and an error naming the map, no pin directory, no object file |
//! | a hand-built object with a per-CPU hash value over 32 KiB, or a hash `max_entries` over 2^31 | `scl_loader::load` returns `LoadError::Map` naming it; the object's other map is freed |
//! | a hand-built `tp_btf` program on a tracepoint that does not exist | an error naming the tracepoint; nothing stays loaded |
//! | `sclc run` killed with SIGKILL | the kernel frees its programs (within 5 s), and the next `sclc run` works |
//!
//! Real kernel only; the tests skip, with one `SKIPPED (kernel): ...` line, only when
//! `scl_loader::check_support()` says this machine cannot load BPF at all. Leaks are looked
//! for with `bpftool` by the unique names these tests give their maps and programs, so
//! other tests running at the same time do not disturb them.

mod common;
use common::repo_root;

use scl_object::{CType, LineInfo, MapSpec, ObjectSpec, ProgramSpec};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn supported() -> bool {
    scl_loader::kernel_tests_can_run()
}

fn sclc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sclc")).current_dir(repo_root()).args(args).output().expect("sclc runs")
}

fn scratch(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sclc-loader-faults-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p
}

/// `bpftool KIND show --json`: the kernel's maps or programs, as (id, name).
fn kernel_objects(kind: &str) -> Vec<(u64, String)> {
    let out = Command::new("bpftool").args([kind, "show", "--json"]).output().expect("bpftool runs (it is needed for the leak checks)");
    assert!(out.status.success(), "bpftool {kind} show: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("bpftool prints JSON");
    v.as_array()
        .map(|a| a.iter().filter_map(|o| Some((o["id"].as_u64()?, o["name"].as_str().unwrap_or("").to_string()))).collect())
        .unwrap_or_default()
}

/// Waits up to five seconds (the kernel frees maps and programs after an RCU grace period)
/// for no map and no program whose name is in `names` to be left; returns what is left.
fn leftovers(names: &[&str]) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left: Vec<String> = ["map", "prog"]
            .iter()
            .flat_map(|kind| kernel_objects(kind).into_iter().map(move |(id, name)| (kind, id, name)))
            .filter(|(_, _, name)| names.contains(&name.as_str()))
            .map(|(kind, id, name)| format!("{kind} {id} `{name}`"))
            .collect();
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// True once the kernel has freed program `id` (waits up to five seconds).
fn program_gone(id: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let out = Command::new("bpftool").args(["prog", "show", "id", &id.to_string()]).output().expect("bpftool runs");
        if !out.status.success() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A stock policy the checker accepts whose map the kernel cannot allocate: the checker
/// holds each value to the kernel's size limits (E0343) but does not add up a map's memory,
/// and this hash preallocates 2^20 values of 512 KiB. The other state gets a name unique to
/// these tests, for the leak check.
const REFUSED_MAP_POLICY: &str = "\
map lfault_big: hash<u64, [u64; 65536]>[1048576];
global lfault_cnt: u64;
policy lfault for spinlock {
    on contended(l: lock) {
        lfault_cnt += 1;
    }
}
";

#[test]
fn a_map_the_kernel_refuses_is_an_environment_error_and_leaves_nothing() {
    if !supported() {
        return;
    }
    let file = scratch("refused_map.scl", REFUSED_MAP_POLICY);
    let path = file.to_str().expect("utf-8");
    let check = sclc(&["check", path]);
    assert_eq!(check.status.code(), Some(0), "the checker accepts the policy: {}", stderr(&check));

    // `sclc run`: an environment error, exit 2, naming the map and the kernel's reason.
    let run = sclc(&["run", path, "--duration", "1s", "--format", "json"]);
    let err = stderr(&run);
    assert_eq!(run.status.code(), Some(2), "{err}");
    assert!(err.contains("sclc: error: the kernel refused to create map `lfault_big`: Cannot allocate memory (os error 12)"), "{err}");
    assert!(err.contains("not enough memory for it"), "{err}");
    assert!(!err.contains("verifier") && !err.contains("panicked"), "not a verifier rejection: {err}");
    assert!(run.stdout.is_empty(), "nothing ran: {}", String::from_utf8_lossy(&run.stdout));

    // `sclc load --pin`: the load fails before anything is pinned.
    let pin = format!("lfault_{}", std::process::id());
    let load = sclc(&["load", path, "--pin", &pin]);
    let err = stderr(&load);
    assert_eq!(load.status.code(), Some(2), "an environment error, as for run: {err}");
    assert!(!err.contains("verifier"), "not a verifier rejection: {err}");
    assert!(err.contains("lfault_big") && !err.contains("panicked"), "{err}");
    assert!(!Path::new("/sys/fs/bpf/scl").join(&pin).exists(), "no pin directory is left behind");

    // `sclc build --verify`: no object written.
    let obj = file.with_extension("o");
    let build = sclc(&["build", "--verify", path, "-o", obj.to_str().expect("utf-8")]);
    let err = stderr(&build);
    assert_eq!(build.status.code(), Some(2), "an environment error, as for run: {err}");
    assert!(!err.contains("verifier"), "not a verifier rejection: {err}");
    assert!(err.contains("lfault_big") && !err.contains("panicked"), "{err}");
    assert!(!obj.exists(), "no object is written when the kernel refuses it");

    let left = leftovers(&["lfault_big", "lfault_cnt"]);
    assert!(left.is_empty(), "left in the kernel: {left:?}");

    // The next run of a good policy works.
    let ok = sclc(&["run", "examples/contention_profiler.scl", "--duration", "500ms", "--format", "json"]);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
}

fn u32_t() -> CType {
    CType::Int { name: "u32".into(), bytes: 4, signed: false }
}

fn u64_t() -> CType {
    CType::Int { name: "u64".into(), bytes: 8, signed: false }
}

/// A program of `section` called `name` that returns 0.
fn return_zero(name: &str, section: &str) -> ProgramSpec {
    let mov_r0_0 = [0xb7, 0, 0, 0, 0, 0, 0, 0];
    let exit = [0x95, 0, 0, 0, 0, 0, 0, 0];
    ProgramSpec {
        name: name.into(),
        section: section.into(),
        insns: vec![mov_r0_0, exit],
        relocs: Vec::new(),
        lines: vec![LineInfo { insn: 0, file: "fault.scl".into(), source: "return 0;".into(), line: 1, column: 1 }],
    }
}

/// An object with a good array map `good` and then `bad`, and a `syscall` program `prog`.
fn object_with(prog: &str, good: &str, bad: MapSpec) -> Vec<u8> {
    let spec = ObjectSpec {
        programs: vec![return_zero(prog, "syscall")],
        subprograms: Vec::new(),
        maps: vec![MapSpec { name: good.into(), map_type: 2, key: Some(u32_t()), value: Some(u64_t()), max_entries: 4 }, bad],
        rodata: Vec::new(),
        license: "GPL".into(),
    };
    scl_object::write(&spec).expect("the writer accepts the object: only the kernel refuses it")
}

fn expect_map_refused(bytes: &[u8], map: &str) -> String {
    match scl_loader::load("lfault", bytes, &[]) {
        Ok(_) => panic!("the kernel accepted map `{map}`"),
        Err(e @ scl_loader::LoadError::Map { .. }) => {
            let msg = e.to_string();
            assert!(msg.starts_with(&format!("the kernel refused to create map `{map}`: ")), "{msg}");
            eprintln!("{msg}");
            msg
        }
        Err(e) => panic!("expected LoadError::Map for `{map}`, got: {e}"),
    }
}

#[test]
fn hand_built_maps_over_the_kernels_limits_are_refused_cleanly() {
    if !supported() {
        return;
    }
    // A per-CPU hash value of 64 KiB: the kernel allows 32 KiB per CPU.
    let value = CType::Array { elem: Box::new(u64_t()), len: 8192 };
    let bytes = object_with("lfault_p1", "lfault_ok1", MapSpec { name: "lfault_pcpu".into(), map_type: 5, key: Some(u32_t()), value: Some(value), max_entries: 16 });
    let msg = expect_map_refused(&bytes, "lfault_pcpu");
    assert!(msg.contains("os error 7"), "E2BIG: {msg}");

    // max_entries of 2^32 - 1: hash tables hold at most 2^31 entries. Refused before any
    // memory is allocated.
    let bytes = object_with("lfault_p2", "lfault_ok2", MapSpec { name: "lfault_many".into(), map_type: 1, key: Some(u64_t()), value: Some(u64_t()), max_entries: u32::MAX });
    let msg = expect_map_refused(&bytes, "lfault_many");
    assert!(msg.contains("os error 7"), "E2BIG: {msg}");

    let left = leftovers(&["lfault_ok1", "lfault_pcpu", "lfault_p1", "lfault_ok2", "lfault_many", "lfault_p2"]);
    assert!(left.is_empty(), "left in the kernel: {left:?}");
}

#[test]
fn a_tracepoint_the_kernel_does_not_have_is_refused_cleanly() {
    if !supported() {
        return;
    }
    let spec = ObjectSpec {
        programs: vec![return_zero("lfault_sys", "syscall"), return_zero("lfault_tp", "tp_btf/lfault_no_such_tracepoint")],
        subprograms: Vec::new(),
        maps: vec![MapSpec { name: "lfault_tpmap".into(), map_type: 2, key: Some(u32_t()), value: Some(u64_t()), max_entries: 4 }],
        rodata: Vec::new(),
        license: "GPL".into(),
    };
    let bytes = scl_object::write(&spec).expect("the writer accepts the object");
    // libbpf looks the tracepoint up in the kernel's BTF before loading, so the refusal
    // comes at load; were it to come at attach, `attach_all` must fail as clearly.
    let err = match scl_loader::load("lfault", &bytes, &[]) {
        // Not the verifier's judgement (no program was verified): the failing step and the
        // errno, never a verifier rejection (issue 14).
        Err(e @ scl_loader::LoadError::Refused { .. }) => {
            let text = e.to_string();
            assert!(text.starts_with("loading object `lfault` failed at: prog 'lfault_tp'"), "{text}");
            assert!(text.contains("ESRCH"), "the errno is named: {text}");
            text
        }
        Err(e) => panic!("a missing tracepoint is not a verifier rejection nor a limit: {e:?}"),
        Ok(mut loaded) => match loaded.attach_all() {
            Err(e) => e.to_string(),
            Ok(n) => panic!("the kernel attached {n} program(s) to a tracepoint it does not have"),
        },
    };
    eprintln!("{err}");
    assert!(err.contains("lfault_no_such_tracepoint"), "the error names the tracepoint: {err}");
    assert!(!err.contains("panicked"), "{err}");
    let left = leftovers(&["lfault_sys", "lfault_tp", "lfault_tpmap"]);
    assert!(left.is_empty(), "left in the kernel: {left:?}");
}

#[test]
fn sclc_run_killed_with_sigkill_frees_its_programs_and_the_next_run_works() {
    if !supported() {
        return;
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_sclc"))
        .current_dir(repo_root())
        .args(["run", "examples/contention_profiler.scl", "--interval", "200ms", "--format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sclc starts");
    // Its first refresh names its programs' ids.
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        let _ = tx.send(line);
        // Keep draining until the kill: a closed pipe would end `sclc run` on its next
        // refresh (exit 141), and the test is about SIGKILL.
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    });
    let line = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(l) => l,
        Err(_) => {
            let _ = child.kill();
            panic!("sclc run printed nothing in 60 s");
        }
    };
    let first: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| {
        let _ = child.kill();
        panic!("the first refresh is JSON ({e}): {line}")
    });
    let ids: Vec<u64> = first["programs"].as_array().map(|a| a.iter().filter_map(|p| p["id"].as_u64()).collect()).unwrap_or_default();
    assert!(!ids.is_empty(), "the refresh lists the programs: {first}");
    for &id in &ids {
        let out = Command::new("bpftool").args(["prog", "show", "id", &id.to_string()]).output().expect("bpftool runs");
        assert!(out.status.success(), "program {id} is loaded while sclc runs");
    }

    child.kill().expect("SIGKILL"); // std's kill() sends SIGKILL
    let status = child.wait().expect("sclc is reaped");
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(9), "killed by SIGKILL: {status:?}");
    for &id in &ids {
        assert!(program_gone(id), "program {id} is still loaded 5 s after sclc was killed");
    }

    let next = sclc(&["run", "examples/contention_profiler.scl", "--duration", "1s", "--interval", "500ms", "--format", "json"]);
    let out = String::from_utf8_lossy(&next.stdout);
    assert_eq!(next.status.code(), Some(0), "{}\n{out}", stderr(&next));
    let last: serde_json::Value = serde_json::from_str(out.lines().last().expect("output")).expect("JSON");
    assert_eq!(last["final"], true);
    let next_ids: Vec<u64> = last["programs"].as_array().map(|a| a.iter().filter_map(|p| p["id"].as_u64()).collect()).unwrap_or_default();
    assert!(!next_ids.is_empty() && next_ids.iter().all(|id| !ids.contains(id)), "fresh programs: {next_ids:?} after {ids:?}");
    for id in next_ids {
        assert!(program_gone(id), "program {id} is still loaded after the next run ended");
    }
}
