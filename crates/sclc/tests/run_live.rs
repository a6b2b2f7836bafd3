//! `sclc run` on the real kernel: a contention storm this test controls (threads mapping
//! and unmapping memory, so the process's mmap lock, an rwsem, contends), the stock
//! profiler attached for a few seconds, non-zero contention counts and wait times in its
//! JSON, and no program left loaded afterwards, also after SIGINT.

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repo root")
}

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

#[test]
fn the_profiler_sees_a_storm_and_leaves_nothing_behind() {
    if let Err(e) = scl_loader::check_support() {
        eprintln!("SKIPPED (kernel): {e}");
        return;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let workers = storm(stop.clone());
    let out = Command::new(env!("CARGO_BIN_EXE_sclc"))
        .current_dir(repo_root())
        .args(["run", "examples/contention_profiler.scl", "--duration", "3s", "--interval", "1s", "--format", "json"])
        .output()
        .expect("sclc runs");
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.join();
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).expect("each line is JSON")).collect();
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

#[test]
fn sigint_stops_with_a_summary_and_detaches() {
    if let Err(e) = scl_loader::check_support() {
        eprintln!("SKIPPED (kernel): {e}");
        return;
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_sclc"))
        .current_dir(repo_root())
        .args(["run", "examples/contention_profiler.scl", "--interval", "200ms", "--format", "json"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("sclc starts");
    std::thread::sleep(Duration::from_millis(1500));
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill runs");
    assert!(status.success());
    let code = child.wait().expect("sclc exits");
    let mut stdout = String::new();
    child.stdout.take().expect("piped").read_to_string(&mut stdout).expect("readable");
    assert_eq!(code.code(), Some(0), "{stdout}");
    let last: serde_json::Value = serde_json::from_str(stdout.lines().last().expect("output")).expect("JSON");
    assert_eq!(last["final"], true, "SIGINT ends with the final summary");
    let ids = ids(&last);
    assert!(!ids.is_empty());
    for id in ids {
        assert!(program_gone(id), "program {id} is still loaded after SIGINT");
    }
}
