//! `sclc run` on the real kernel: a contention storm this test controls (threads mapping
//! and unmapping memory, so the process's mmap lock, an rwsem, contends), the stock
//! profiler attached for a few seconds, non-zero contention counts and wait times in its
//! JSON, and no program left loaded afterwards, also after SIGINT. Also: SIGKILL of a
//! workload process while sclc runs, SIGKILL of sclc itself (the kernel frees its programs,
//! and a second run works), and the environment errors: not root, no capabilities, and a
//! zero RLIMIT_MEMLOCK (which must not matter: libbpf >= 1.0 on Linux >= 5.11 charges BPF
//! memory to the memory cgroup).

mod common;
use common::repo_root;

use std::io::{BufRead, Read};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Threads that allocate and free 64 MiB blocks: allocations that large are always
/// mapped and unmapped by glibc (its mmap threshold is at most 32 MiB), and mmap and munmap
/// take the process's mmap lock, an rwsem, for writing. The blocks are zero-filled by the
/// kernel, so nothing touches their pages.
fn storm(stop: Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<u64>> {
    (0..6)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let v = vec![0u8; 64 << 20];
                    n += u64::from(std::hint::black_box(&v)[(n as usize * 4096) % v.len()]);
                }
                n
            })
        })
        .collect()
}

/// True once the kernel has freed program `id`. Freeing is deferred (after an RCU grace
/// period), so this waits up to five seconds.
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

fn ids(v: &serde_json::Value) -> Vec<u64> {
    v["programs"].as_array().map(|a| a.iter().filter_map(|p| p["id"].as_u64()).collect()).unwrap_or_default()
}

/// `sclc run` of the example profiler for 3 s over the storm, with `env` and extra `args`;
/// the JSON lines it printed (it must exit 0).
fn profile_a_storm(env: &[(&str, &str)], args: &[&str]) -> Vec<serde_json::Value> {
    let stop = Arc::new(AtomicBool::new(false));
    let workers = storm(stop.clone());
    let out = Command::new(env!("CARGO_BIN_EXE_sclc"))
        .current_dir(repo_root())
        .envs(env.iter().copied())
        .args(["run", "examples/contention_profiler.scl", "--duration", "3s", "--format", "json"])
        .args(args)
        .output()
        .expect("sclc runs");
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.join();
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    stdout.lines().map(|l| serde_json::from_str(l).expect("each line is JSON")).collect()
}

#[test]
fn the_profiler_sees_a_storm_and_leaves_nothing_behind() {
    if !scl_loader::kernel_tests_can_run() {
        return;
    }
    let lines = profile_a_storm(&[], &["--interval", "1s"]);
    let last = lines.last().expect("a final summary");
    assert_eq!(last["final"], true);
    let stats = last["maps"]["stats"].as_array().expect("per-lock rows");
    let contentions: u64 = stats.iter().map(|r| r["contentions"].as_u64().unwrap_or(0)).sum();
    let waited: u64 = stats.iter().map(|r| r["wait_total_ns"].as_u64().unwrap_or(0)).sum();
    assert!(contentions > 0 && waited > 0, "no contention recorded: {last}");
    let kinds = last["maps"]["kind_hist"].as_array().expect("per-kind histograms");
    assert!(kinds.iter().any(|r| r["kind"] == "rwsem"), "the mmap lock (an rwsem) contended: {last}");
    for id in ids(last) {
        assert!(program_gone(id), "program {id} is still loaded after sclc exited");
    }
}

/// Threads writing 64-byte messages into one pipe that one thread drains: every write and
/// read takes the pipe's mutex (`pipe->mutex`), so the writers contend on it in the pipe's
/// write function (`anon_pipe_write` since Linux 6.14, `pipe_write` before).
fn pipe_storm(stop: Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<u64>> {
    let (mut rx, tx) = std::io::pipe().expect("a pipe");
    let mut threads: Vec<std::thread::JoinHandle<u64>> = (0..3)
        .map(|_| {
            let (stop, mut tx) = (stop.clone(), tx.try_clone().expect("a pipe end clones"));
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += u64::from(std::io::Write::write_all(&mut tx, &[0x5a; 64]).is_ok());
                }
                n
            })
        })
        .collect();
    drop(tx);
    threads.push(std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        let mut n = 0;
        // Ends when every writer has gone (a read of 0 bytes).
        while let Ok(k @ 1..) = rx.read(&mut buf) {
            n += k as u64;
        }
        n
    }));
    threads
}

/// The rows of the storm's own locks, with their type and caller as `perf lock contention`
/// shows them: the process's mmap lock (an rwsem taken for writing by mmap and munmap,
/// named `mmap_lock@ADDR` through the function that took it) and the pipe's mutex (taken by
/// the pipe's write function). With `--stacks`, each row's stack from the locking code out.
#[test]
fn the_storms_locks_show_up_with_their_type_and_caller() {
    if !scl_loader::kernel_tests_can_run() {
        return;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let pipes = pipe_storm(stop.clone());
    let lines = profile_a_storm(&[], &["--stacks"]);
    stop.store(true, Ordering::Relaxed);
    for t in pipes {
        let _ = t.join();
    }
    let last = lines.last().expect("a final summary");
    let rows = last["maps"]["stats"].as_array().expect("rows of (lock, caller, type)");
    let text = |r: &serde_json::Value, k: &str| r[k].as_str().unwrap_or_default().to_string();
    let func = |r: &serde_json::Value| text(r, "caller").split('+').next().unwrap_or_default().to_string();
    // (what, type, callers it may have, lock name prefix)
    let expected: [(&str, &str, &[&str], &str); 2] = [
        ("the mmap lock", "rwsem:W", &["vm_mmap_pgoff", "__vm_munmap"], "mmap_lock@0x"),
        ("the pipe's mutex", "mutex", &["anon_pipe_write", "pipe_write"], "0x"),
    ];
    for (what, ty, callers, lock) in expected {
        let found: Vec<&serde_json::Value> = rows.iter().filter(|r| text(r, "type") == ty && callers.contains(&func(r).as_str())).collect();
        assert!(!found.is_empty(), "{what}: no {ty} row called from {callers:?}: {last}");
        for r in &found {
            assert!(text(r, "lock").starts_with(lock), "{what}: named {}, not {lock}...", text(r, "lock"));
            assert!(r["contentions"].as_u64().unwrap_or(0) > 0 && r["wait_total_ns"].as_u64().unwrap_or(0) > 0, "{r}");
            let stack: Vec<&str> = r["stack"].as_array().expect("--stacks gives the stack").iter().filter_map(|f| f.as_str()).collect();
            assert!(!stack.iter().any(|f| f.starts_with("bpf_prog_") || f.starts_with("bpf_trace_run")), "the machinery is cut: {stack:?}");
            let at = stack.iter().position(|f| f.starts_with(&format!("{}+", func(r)))).unwrap_or_else(|| panic!("{what}: the caller is in the stack: {stack:?}"));
            assert!(at > 0, "{what}: the locking code comes first: {stack:?}");
        }
    }
    // The types of every row are perf's.
    for r in rows {
        let ty = text(r, "type");
        assert!(scl_catalogue::LOCK_CLASSES.contains(&ty.as_str()), "type `{ty}`: {r}");
    }
}

/// Phantom waits: between two attachments one tracepoint program runs without the other.
/// Had `contention_begin` attached first, a wait that began and ended in between would leave
/// its thread's record open and later show up as one wait as long as the gap. The loader
/// attaches the end first, so with the gap widened to two seconds no recorded wait comes
/// near it (the storm's waits last micro- to milliseconds).
#[test]
fn a_wide_gap_between_attachments_leaves_no_phantom_wait() {
    if !scl_loader::kernel_tests_can_run() {
        return;
    }
    let lines = profile_a_storm(&[("SCL_ATTACH_GAP_MS", "2000")], &[]);
    let last = lines.last().expect("a final summary");
    let stats = last["maps"]["stats"].as_array().expect("per-lock rows");
    let contentions: u64 = stats.iter().map(|r| r["contentions"].as_u64().unwrap_or(0)).sum();
    assert!(contentions > 0, "the storm contended: {last}");
    let longest = stats.iter().filter_map(|r| r["wait_max_ns"].as_u64()).max().unwrap_or(0);
    assert!(longest < 1_000_000_000, "a wait of {longest} ns: a phantom spanning the 2 s gap between attachments");
}

#[test]
fn sigint_stops_with_a_summary_and_detaches() {
    if !scl_loader::kernel_tests_can_run() {
        return;
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_sclc"))
        .current_dir(repo_root())
        .args(["run", "examples/contention_profiler.scl", "--interval", "200ms", "--format", "json"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("sclc starts");
    // Read as it comes: a reader that waits for the exit first fills the pipe, and sclc,
    // blocked writing a refresh, would never see the signal.
    let mut out = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut stdout = String::new();
        out.read_to_string(&mut stdout).expect("readable");
        stdout
    });
    std::thread::sleep(Duration::from_millis(1500));
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill runs");
    assert!(status.success());
    let code = child.wait().expect("sclc exits");
    let stdout = reader.join().expect("the reader ends with the pipe");
    assert_eq!(code.code(), Some(0), "{stdout}");
    let last: serde_json::Value = serde_json::from_str(stdout.lines().last().expect("output")).expect("JSON");
    assert_eq!(last["final"], true, "SIGINT ends with the final summary");
    let ids = ids(&last);
    assert!(!ids.is_empty());
    for id in ids {
        assert!(program_gone(id), "program {id} is still loaded after SIGINT");
    }
}

/// Set in the environment of a child copy of this test binary that is to be the storm.
const STORM_CHILD: &str = "SCL_RUN_LIVE_STORM_CHILD";

/// Not a test: the workload process of `sigkill_of_the_workload_leaves_sclc_running`, which
/// runs this binary again with only this function selected and `STORM_CHILD` set. Storms
/// until killed: the mmap storm of [`storm`] and threads writing into one pipe that one
/// thread drains (the pipe's mutex and the wait queue's spinlock contend). Gives up after a
/// minute, so a failed test cannot leave it running.
#[test]
fn storm_child_process() {
    if std::env::var_os(STORM_CHILD).is_none() {
        return;
    }
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_secs(60));
        std::process::exit(3);
    });
    let _workers = storm(Arc::new(AtomicBool::new(false)));
    let (mut rx, tx) = std::io::pipe().expect("a pipe");
    for _ in 0..4 {
        let mut tx = tx.try_clone().expect("a pipe end clones");
        std::thread::spawn(move || loop {
            let _ = std::io::Write::write_all(&mut tx, &[0x5a; 64]);
        });
    }
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let _ = rx.read(&mut buf);
    }
}

fn spawn_storm_process() -> std::process::Child {
    Command::new(std::env::current_exe().expect("the test binary"))
        .args(["--exact", "storm_child_process", "--nocapture", "--test-threads=1"])
        .env(STORM_CHILD, "1")
        .stdout(Stdio::null())
        .spawn()
        .expect("the storm process starts")
}

fn sclc_run(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sclc"));
    c.current_dir(repo_root()).args(["run", "examples/contention_profiler.scl"]).args(args);
    c
}

#[test]
fn sigkill_of_the_workload_leaves_sclc_running() {
    if !scl_loader::kernel_tests_can_run() {
        return;
    }
    let mut workload = spawn_storm_process();
    let sclc = sclc_run(&["--duration", "3s", "--interval", "500ms", "--format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sclc starts");
    std::thread::sleep(Duration::from_millis(1500));
    workload.kill().expect("SIGKILL the workload");
    let killed = workload.wait().expect("the workload is reaped");
    assert_eq!(killed.signal(), Some(9), "the workload died of SIGKILL");
    let out = sclc.wait_with_output().expect("sclc exits");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "sclc ends normally: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    let last: serde_json::Value = serde_json::from_str(stdout.lines().last().expect("output")).expect("JSON");
    assert_eq!(last["final"], true, "a final summary after the workload died");
    let elapsed = last["elapsed_s"].as_f64().unwrap_or(0.0);
    assert!(elapsed >= 3.0, "sclc ran its full duration, not {elapsed} s");
    let stats = last["maps"]["stats"].as_array().expect("per-lock rows");
    assert!(stats.iter().map(|r| r["contentions"].as_u64().unwrap_or(0)).sum::<u64>() > 0, "{last}");
    let kinds: Vec<&str> = last["maps"]["kind_hist"].as_array().expect("per-kind rows").iter().filter_map(|r| r["kind"].as_str()).collect();
    assert!(kinds.contains(&"rwsem"), "the mmap lock contended: {kinds:?}");
    assert!(kinds.iter().any(|k| *k == "spinlock" || *k == "mutex"), "the pipe's locks contended: {kinds:?}");
    for id in ids(&last) {
        assert!(program_gone(id), "program {id} is still loaded after sclc exited");
    }
}

#[test]
fn sigkill_of_sclc_frees_its_programs_and_a_second_run_works() {
    if !scl_loader::kernel_tests_can_run() {
        return;
    }
    let mut child = sclc_run(&["--interval", "200ms", "--format", "json"]).stdout(Stdio::piped()).spawn().expect("sclc starts");
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().expect("piped")).read_line(&mut first).expect("a first refresh");
    let line: serde_json::Value = serde_json::from_str(&first).expect("JSON");
    let loaded = ids(&line);
    assert_eq!(loaded.len(), 2, "two programs attached: {line}");
    child.kill().expect("SIGKILL sclc");
    let status = child.wait().expect("sclc is reaped");
    assert_eq!(status.signal(), Some(9));
    for id in loaded {
        assert!(program_gone(id), "program {id} is still loaded 5 s after sclc was killed");
    }
    let out = sclc_run(&["--duration", "1s", "--interval", "500ms", "--format", "json"]).output().expect("sclc runs again");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    let last: serde_json::Value = serde_json::from_str(stdout.lines().last().expect("output")).expect("JSON");
    assert_eq!(last["final"], true);
    for id in ids(&last) {
        assert!(program_gone(id), "program {id} of the second run is still loaded");
    }
}

/// `sclc run` as another user or with fewer privileges, through util-linux's `setpriv`.
/// None when `setpriv` is missing.
fn run_with_setpriv(setpriv: &[&str]) -> Option<std::process::Output> {
    let out = Command::new("setpriv")
        .args(setpriv)
        .arg(env!("CARGO_BIN_EXE_sclc"))
        .args(["run", "examples/contention_profiler.scl", "--duration", "1s", "--format", "json"])
        .current_dir(repo_root())
        .output();
    match out {
        Ok(o) => Some(o),
        Err(e) => {
            eprintln!("SKIPPED (setpriv): cannot run util-linux's setpriv: {e}");
            None
        }
    }
}

#[test]
fn not_root_is_an_environment_error() {
    if !scl_loader::kernel_tests_can_run() {
        return;
    }
    // 65534 is `nobody` on Debian, Fedora and Arch; setpriv needs no passwd entry for it.
    let Some(out) = run_with_setpriv(&["--reuid=65534", "--regid=65534", "--clear-groups"]) else { return };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("not running as root") && stderr.contains("CAP_BPF"), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing on stdout: {}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn root_without_capabilities_is_an_environment_error() {
    if !scl_loader::kernel_tests_can_run() {
        return;
    }
    // Root, but with an empty bounding set the exec grants no capabilities.
    let Some(out) = run_with_setpriv(&["--inh-caps=-all", "--bounding-set=-all"]) else { return };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("Operation not permitted") && stderr.contains("CAP_BPF"), "{stderr}");
}

#[test]
fn a_zero_memlock_limit_does_not_matter() {
    if !scl_loader::kernel_tests_can_run() {
        return;
    }
    // libbpf >= 1.0 raises RLIMIT_MEMLOCK only on kernels that still charge BPF memory to
    // it (before 5.11); on later ones the memory cgroup accounts it, so 0 must be fine.
    let out = Command::new("prlimit")
        .args(["--memlock=0:0", env!("CARGO_BIN_EXE_sclc"), "run", "examples/contention_profiler.scl", "--duration", "1s", "--format", "json"])
        .current_dir(repo_root())
        .output();
    let out = match out {
        Ok(o) => o,
        Err(e) => {
            eprintln!("SKIPPED (prlimit): cannot run util-linux's prlimit: {e}");
            return;
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    let last: serde_json::Value = serde_json::from_str(stdout.lines().last().expect("output")).expect("JSON");
    assert_eq!(last["final"], true);
    for id in ids(&last) {
        assert!(program_gone(id), "program {id} is still loaded");
    }
}

/// `sclc run` of the example profiler over the in-process storm with `args` (which say the
/// format and duration); it must exit 0. Its stdout.
fn run_over_a_storm(args: &[&str]) -> String {
    let stop = Arc::new(AtomicBool::new(false));
    let workers = storm(stop.clone());
    let out = sclc_run(args).output().expect("sclc runs");
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.join();
    }
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    stdout
}

/// `--format csv`: one header, then six fields a line (`elapsed_s,final,map,key,column,
/// value`), integer values, the last refresh marked final, and the same cells as the JSON
/// form has (contentions per lock, the per-kind summary).
#[test]
fn csv_has_one_cell_a_line() {
    if !scl_loader::kernel_tests_can_run() {
        return;
    }
    let csv = run_over_a_storm(&["--duration", "2s", "--interval", "1s", "--format", "csv"]);
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("elapsed_s,final,map,key,column,value"), "{csv}");
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert!(!rows.is_empty(), "no cells: {csv}");
    for r in &rows {
        assert_eq!(r.len(), 6, "six fields (no field here needs quoting): {r:?}");
        assert!(r[0].parse::<f64>().is_ok() && (r[1] == "true" || r[1] == "false"), "{r:?}");
        assert!(r[5].parse::<u64>().is_ok(), "an integer value: {r:?}");
    }
    let finals: Vec<&Vec<&str>> = rows.iter().filter(|r| r[1] == "true").collect();
    assert!(finals.iter().any(|r| r[2] == "stats" && r[4] == "contentions" && r[5] != "0"), "per-lock contentions: {csv}");
    assert!(finals.iter().any(|r| r[2] == "kind_hist" && r[3] == "rwsem" && r[4] == "count"), "the mmap lock's kind: {csv}");
    assert!(rows.last().is_some_and(|r| r[1] == "true"), "the final summary comes last");
}

/// Tables print `*_ns` columns in human units (`850ns`, `12.3us`, `4.56ms`, `1.20s`) and
/// the per-kind table shows a count and percentiles without `--hist`.
#[test]
fn tables_show_times_in_units_and_the_per_kind_summary() {
    if !scl_loader::kernel_tests_can_run() {
        return;
    }
    let text = run_over_a_storm(&["--duration", "2s", "--interval", "5s"]);
    let summary = text.split("final summary").nth(1).expect("a final summary");
    let header = summary.lines().find(|l| l.trim_start().starts_with("lock ")).expect("the per-lock header");
    let cols: Vec<&str> = header.split_whitespace().collect();
    let row = summary.lines().skip_while(|l| *l != header).nth(1).expect("a per-lock row");
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells.len(), cols.len(), "{header}\n{row}");
    let is_time = |s: &str| {
        let unit = s.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.');
        let num = &s[..s.len() - unit.len()];
        ["ns", "us", "ms", "s"].contains(&unit) && num.parse::<f64>().is_ok()
    };
    // The key's columns (lock, caller, type) first, then the values.
    for (c, v) in cols.iter().zip(&cells).filter(|(c, _)| !["lock", "caller", "type"].contains(c)) {
        if c.ends_with("_ns") {
            assert!(is_time(v), "column {c}: `{v}` is a time with a unit\n{summary}");
        } else {
            assert!(v.parse::<u64>().is_ok(), "column {c}: `{v}` is a count\n{summary}");
        }
    }
    let kind_header = summary.lines().find(|l| l.trim_start().starts_with("kind ")).expect("the per-kind table");
    assert_eq!(kind_header.split_whitespace().collect::<Vec<_>>(), ["kind", "count", "p50_ns", "p99_ns", "max_ns"]);
    let rwsem = summary.lines().find(|l| l.trim_start().starts_with("rwsem ")).expect("the mmap lock's kind has a row");
    let f: Vec<&str> = rwsem.split_whitespace().collect();
    assert!(f[1].parse::<u64>().is_ok_and(|n| n > 0) && f[2..].iter().all(|v| is_time(v)), "{rwsem}");
}
