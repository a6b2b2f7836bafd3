//! `sclc run`'s filters and `-- CMD` on the real kernel: storm processes this test starts
//! (children re-running this binary: threads mapping and unmapping 64 MiB, so their
//! process's mmap lock, an rwsem, contends; threads writing one pipe, so its mutex and its
//! wait queue's spinlock contend), `tests/live/filter_probe.scl` attached with a filter,
//! and its maps, which count lock events by process, thread, CPU, lock type and lock,
//! read back. Each test asserts both sides: what the filter keeps shows up, what it drops
//! does not (measured against the same storms without the filter where that matters).

mod common;
use common::repo_root;

use std::collections::BTreeMap;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn kernel_or_skip() -> bool {
    scl_loader::kernel_tests_can_run()
}

/// Set in the environment of a child copy of this binary that is to be a storm: its
/// value is how many seconds to storm (then exit 0).
const STORM_CHILD: &str = "SCL_RUN_FILTERS_STORM_SECONDS";

/// Not a test: the storm process (see the module documentation), selected alone with
/// `STORM_CHILD` set.
#[test]
fn storm_child_process() {
    let Some(secs) = std::env::var(STORM_CHILD).ok().and_then(|s| s.parse::<u64>().ok()) else { return };
    let stop = Arc::new(AtomicBool::new(false));
    for _ in 0..4 {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let v = vec![0u8; 64 << 20];
                n += u64::from(std::hint::black_box(&v)[(n as usize * 4096) % v.len()]);
            }
        });
    }
    let (mut rx, tx) = std::io::pipe().expect("a pipe");
    for _ in 0..3 {
        let mut tx = tx.try_clone().expect("a pipe end clones");
        std::thread::spawn(move || loop {
            let _ = std::io::Write::write_all(&mut tx, &[0x5a; 64]);
        });
    }
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let _ = rx.read(&mut buf);
        }
    });
    std::thread::sleep(Duration::from_secs(secs));
    std::process::exit(0);
}

fn storm_command(secs: u64) -> Command {
    let mut c = Command::new(std::env::current_exe().expect("the test binary"));
    c.args(["--exact", "storm_child_process", "--nocapture", "--test-threads=1"]).env(STORM_CHILD, secs.to_string()).stdout(Stdio::null());
    c
}

/// A storm process that lives a minute at most; killed when dropped.
struct Storm(Child);

impl Storm {
    fn start() -> Storm {
        Storm(storm_command(60).spawn().expect("the storm process starts"))
    }
    fn pid(&self) -> u64 {
        u64::from(self.0.id())
    }
    /// Its thread ids.
    fn tids(&self) -> Vec<u64> {
        std::fs::read_dir(format!("/proc/{}/task", self.pid())).expect("its threads").filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect()
    }
}

impl Drop for Storm {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `sclc run` of the probe for 2 s with `args`; the final JSON (it must exit 0).
fn probe(args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_sclc"))
        .current_dir(repo_root())
        .args(["run", "tests/live/filter_probe.scl", "--duration", "2s", "--interval", "10s", "--format", "json"])
        .args(args)
        .output()
        .expect("sclc runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "sclc run {args:?}: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(stdout.lines().last().expect("a final summary")).expect("JSON")
}

/// A probe map as key -> count.
fn counts(v: &serde_json::Value, map: &str) -> BTreeMap<u64, u64> {
    v["maps"][map]
        .as_array()
        .unwrap_or_else(|| panic!("no map {map}: {v}"))
        .iter()
        .map(|r| (r["key"].as_str().and_then(|k| k.parse().ok()).expect("a numeric key"), r["value"].as_u64().expect("a count")))
        .collect()
}

fn total(m: &BTreeMap<u64, u64>) -> u64 {
    m.values().sum()
}

/// Lock kinds as the probe's `l.kind` numbers them.
const SPINLOCK: u64 = 0;
const MUTEX: u64 = 1;
const RWSEM: u64 = 2;

#[test]
fn pid_keeps_one_process_of_two() {
    if !kernel_or_skip() {
        return;
    }
    let (a, b) = (Storm::start(), Storm::start());
    let all = counts(&probe(&[]), "begins_by_tgid");
    assert!(all.contains_key(&a.pid()) && all.contains_key(&b.pid()), "unfiltered, both storms contend: {all:?}");
    let v = probe(&["--pid", &a.pid().to_string()]);
    for map in ["begins_by_tgid", "ends_by_tgid"] {
        let kept = counts(&v, map);
        assert!(kept.get(&a.pid()).is_some_and(|n| *n > 0), "{map}: the chosen process is kept: {kept:?}");
        assert_eq!(kept.keys().copied().collect::<Vec<_>>(), [a.pid()], "{map}: only the chosen process (not {}): {kept:?}", b.pid());
    }
}

#[test]
fn tid_keeps_one_thread() {
    if !kernel_or_skip() {
        return;
    }
    let a = Storm::start();
    let all = counts(&probe(&[]), "begins_by_tid");
    let threads = a.tids();
    let (&busiest, _) = all.iter().filter(|(t, _)| threads.contains(t)).max_by_key(|(_, n)| **n).expect("a storm thread contends");
    assert!(all.keys().filter(|t| threads.contains(t)).count() > 1, "several storm threads contend unfiltered: {all:?}");
    let kept = counts(&probe(&["--tid", &busiest.to_string()]), "begins_by_tid");
    assert_eq!(kept.keys().copied().collect::<Vec<_>>(), [busiest], "only thread {busiest}: {kept:?}");
}

/// `--cpu` decides at the beginning of a wait; the end follows its beginning (a sleeping
/// waiter may wake on another CPU), so no end is counted without its beginning.
#[test]
fn cpu_keeps_waits_that_begin_there() {
    if !kernel_or_skip() {
        return;
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let _storms = (Storm::start(), Storm::start());
    let all = probe(&[]);
    if cpus < 2 {
        eprintln!("SKIPPED (one CPU): the CPU filter needs two CPUs to drop one");
        return;
    }
    assert!(counts(&all, "begins_by_cpu").len() > 1, "unfiltered, waits begin on several CPUs: {all}");
    let v = probe(&["--cpu", "0"]);
    let begins = counts(&v, "begins_by_cpu");
    assert_eq!(begins.keys().copied().collect::<Vec<_>>(), [0], "only CPU 0: {begins:?}");
    let ends = total(&counts(&v, "ends_by_tgid"));
    assert!(ends > 0 && ends <= total(&begins), "ends follow admitted beginnings: {ends} ends, {} beginnings", total(&begins));
}

/// `--type` keeps one lock type (the mmap lock's rwsem, the pipe's mutex), decided at the
/// beginning from the tracepoint's flags.
#[test]
fn type_keeps_one_lock_type() {
    if !kernel_or_skip() {
        return;
    }
    let _storm = Storm::start();
    let all = counts(&probe(&[]), "begins_by_kind");
    assert!(all.contains_key(&RWSEM) && all.contains_key(&MUTEX), "unfiltered, the storm's rwsem and mutex contend: {all:?}");
    for (ty, kind) in [("rwsem", RWSEM), ("mutex", MUTEX), ("spinlock", SPINLOCK)] {
        // The storm's contention comes in bursts (the pipe's mutex can go a whole window
        // without one on a loaded machine): up to three windows to see the kind kept, each
        // checked for keeping nothing else.
        let mut seen = ty == "spinlock";
        for _ in 0..3 {
            let v = probe(&["--type", ty]);
            let kept = counts(&v, "begins_by_kind");
            assert!(kept.keys().all(|k| *k == kind), "--type {ty}: only kind {kind}: {kept:?}");
            let ends = total(&counts(&v, "ends_by_tgid"));
            assert!(ends <= total(&kept), "--type {ty}: {ends} ends for {} beginnings", total(&kept));
            if kept.get(&kind).is_some_and(|n| *n > 0) {
                seen = true;
                break;
            }
        }
        assert!(seen, "--type {ty}: the storm's {ty} is kept in one of three windows");
    }
}

#[test]
fn lock_keeps_one_lock_by_address_or_symbol() {
    if !kernel_or_skip() {
        return;
    }
    let _storm = Storm::start();
    let all = counts(&probe(&[]), "begins_by_lock");
    let (&busiest, _) = all.iter().max_by_key(|(_, n)| **n).expect("some lock contends");
    assert!(all.len() > 1, "several locks contend unfiltered: {all:?}");
    let kept = counts(&probe(&["--lock", &format!("{busiest:#x}")]), "begins_by_lock");
    assert_eq!(kept.keys().copied().collect::<Vec<_>>(), [busiest], "only lock {busiest:#x}: {kept:?}");
    // A symbol names its kallsyms address; whatever contends there, nothing else does.
    // (Kernels without CONFIG_KALLSYMS_ALL list few data symbols: any data symbol will do.)
    let kallsyms = std::fs::read_to_string("/proc/kallsyms").expect("kallsyms");
    let (addr, name) = kallsyms
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 3 && matches!(f[1], "D" | "d" | "B" | "b")).then(|| (u64::from_str_radix(f[0], 16).ok(), f[2]))
        })
        .next()
        .expect("a kernel data symbol");
    let kept = counts(&probe(&["--lock", name]), "begins_by_lock");
    assert!(kept.keys().all(|k| Some(*k) == addr), "--lock {name}: only {addr:x?}: {kept:?}");
}

/// A cgroup (v2) the test makes under the cgroup2 mount, removed on drop.
struct Cgroup(std::path::PathBuf);

impl Drop for Cgroup {
    fn drop(&mut self) {
        for _ in 0..50 {
            if std::fs::remove_dir(&self.0).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn cgroup2_mount() -> Option<std::path::PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    text.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        let mount = left.split_whitespace().nth(4)?;
        (right.split_whitespace().next()? == "cgroup2").then(|| std::path::PathBuf::from(mount))
    })
}

#[test]
fn cgroup_keeps_its_tasks() {
    if !kernel_or_skip() {
        return;
    }
    let Some(mount) = cgroup2_mount() else {
        eprintln!("SKIPPED (cgroup): no cgroup v2 hierarchy is mounted");
        return;
    };
    let (a, b) = (Storm::start(), Storm::start());
    let cg = Cgroup(mount.join(format!("sclc-test-{}", std::process::id())));
    if let Err(e) = std::fs::create_dir(&cg.0) {
        eprintln!("SKIPPED (cgroup): cannot create {}: {e}", cg.0.display());
        return;
    }
    std::fs::write(cg.0.join("cgroup.procs"), b.pid().to_string()).expect("the storm moves into the cgroup");
    let v = probe(&["--cgroup", cg.0.to_str().expect("a UTF-8 path")]);
    let kept = counts(&v, "begins_by_tgid");
    assert_eq!(kept.keys().copied().collect::<Vec<_>>(), [b.pid()], "only the cgroup's process (not {}): {kept:?}", a.pid());
    drop((a, b));
}

/// `sclc run POLICY -- CMD`: the command starts after the programs are attached, its
/// process tree is observed (two storms under a shell, not the shell's own pid) and
/// nothing outside it (a storm started by the test), and the run ends when it exits, with
/// its status reported.
#[test]
fn a_command_is_profiled_until_it_exits() {
    if !kernel_or_skip() {
        return;
    }
    let Some(mount) = cgroup2_mount() else {
        eprintln!("SKIPPED (cgroup): no cgroup v2 hierarchy is mounted, so the command's tasks cannot be told from the others");
        return;
    };
    let outsider = Storm::start();
    let exe = std::env::current_exe().expect("the test binary");
    let storm = format!("{} --exact storm_child_process --nocapture --test-threads=1 >/dev/null", exe.display());
    let script = format!("{storm} & {storm}; wait; exit 5");
    let sclc = Command::new(env!("CARGO_BIN_EXE_sclc"))
        .current_dir(repo_root())
        .env(STORM_CHILD, "2")
        .args(["run", "tests/live/filter_probe.scl", "--interval", "10s", "--format", "json", "--", "sh", "-c", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sclc runs");
    let sclc_pid = sclc.id();
    let out = sclc.wait_with_output().expect("sclc exits");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}\n{stdout}");
    let v: serde_json::Value = serde_json::from_str(stdout.lines().last().expect("a final summary")).expect("JSON");
    assert_eq!(v["final"], true);
    assert_eq!(v["command"]["status"], 5, "the command's exit status: {}", v["command"]);
    assert!(stderr.contains("exited with status 5"), "{stderr}");
    let elapsed = v["elapsed_s"].as_f64().expect("elapsed");
    assert!((1.5..30.0).contains(&elapsed), "the run ends when the command does: {elapsed} s");
    let shell = v["command"]["pid"].as_u64().expect("the command's pid");
    let kept = counts(&v, "begins_by_tgid");
    assert!(!kept.contains_key(&outsider.pid()), "the outsider storm is dropped: {kept:?}");
    assert!(kept.keys().filter(|p| **p != shell).count() >= 2, "both storms under the shell are kept: {kept:?}");
    assert!(!mount.join(format!("sclc-run-{sclc_pid}")).exists(), "the command's cgroup is removed");
}

/// `--per-task`: the example profiler's per-thread totals, one row per thread with its
/// command name; with `--pid`, the rows are that process's threads alone.
#[test]
fn per_task_view_names_the_threads_of_the_chosen_process() {
    if !kernel_or_skip() {
        return;
    }
    let (a, _b) = (Storm::start(), Storm::start());
    std::thread::sleep(Duration::from_millis(300));
    let out = Command::new(env!("CARGO_BIN_EXE_sclc"))
        .current_dir(repo_root())
        .args(["run", "examples/contention_profiler.scl", "--per-task", "--duration", "2s", "--interval", "10s", "--format", "json", "--pid", &a.pid().to_string()])
        .output()
        .expect("sclc runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_str(stdout.lines().last().expect("a final summary")).expect("JSON");
    let maps = v["maps"].as_object().expect("maps");
    assert_eq!(maps.keys().collect::<Vec<_>>(), ["waiting"], "the per-thread state alone: {v}");
    let rows = maps["waiting"].as_array().expect("rows");
    let threads = a.tids();
    assert!(rows.len() > 1, "several storm threads waited: {v}");
    for r in rows {
        let tid: u64 = r["tid"].as_str().and_then(|t| t.parse().ok()).expect("a tid");
        assert!(threads.contains(&tid), "thread {tid} is not one of process {}'s: {r}", a.pid());
        let comm = std::fs::read_to_string(format!("/proc/{}/task/{tid}/comm", a.pid())).expect("its comm");
        assert_eq!(r["comm"].as_str(), Some(comm.trim_end()), "{r}");
        assert!(r["contentions"].as_u64().is_some_and(|n| n > 0) && r["wait_total_ns"].as_u64().is_some_and(|n| n > 0), "{r}");
        assert!(r.get("_lock").is_none() && r.get("_start").is_none(), "bookkeeping fields are not shown: {r}");
    }
}
