//! `scl-storm`: a lock contention storm of fixed length that reports its throughput.
//!
//! Two loads, each on half of `--threads` workers (the mmap load takes the odd one):
//!
//! - **mmap**: each worker allocates and frees 64 MiB blocks. Allocations that large are
//!   always mapped and unmapped by glibc (its mmap threshold is at most 32 MiB), and mmap
//!   and munmap take the process's mmap lock, an rwsem, for writing. The kernel zero-fills
//!   the block; the worker reads one byte of it. One operation: one allocate + free.
//! - **pipe**: each worker writes 64-byte messages into one shared pipe that one extra
//!   thread drains. Every write and read takes the pipe's mutex (`pipe->mutex`), and the
//!   wake-ups take the wait queue's spinlock, so this load contends on a mutex and on
//!   spinlocks. One operation: one write.
//!
//! After `--duration` it prints one line of `key=value` pairs on stdout:
//!
//! ```text
//! scl-storm threads=4 duration_s=5.000 ops=… ops_per_s=… mmap_ops_per_s=… pipe_ops_per_s=… cpu_s=… ops_per_cpu_s=…
//! ```
//!
//! The counts are read at the deadline; work done while the threads wind down is not
//! counted. `cpu_s` is the CPU time (user + system, from /proc/self/stat) the process used
//! over the same window, which includes the time BPF programs attached to the lock
//! tracepoints run in its threads; `ops_per_cpu_s` is less disturbed than `ops_per_s` by
//! other work on the machine taking CPUs away. `bench/overhead.sh` runs it with and without a profiler attached (see
//! docs/performance.md). It runs as any user and needs nothing but Linux.

use clap::Parser;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(name = "scl-storm", about = "A lock contention storm (mmap rwsem, pipe mutex, spinlocks) that reports operations per second")]
struct Args {
    /// Worker threads, split between the two loads (plus one pipe reader).
    #[arg(long, default_value_t = 4)]
    threads: usize,
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Which loads to run: `mmap`, `pipe` or `both`.
    #[arg(long, default_value = "both", value_parser = ["mmap", "pipe", "both"])]
    load: String,
}

/// One worker's count, on its own cache line so that counting does not contend.
#[repr(align(128))]
#[derive(Default)]
struct Counter(AtomicU64);

const BLOCK: usize = 64 << 20;
const MESSAGE: [u8; 64] = [0x5a; 64];

fn main() {
    let args = Args::parse();
    if args.threads == 0 || !(args.duration.is_finite() && args.duration > 0.0) {
        eprintln!("scl-storm: --threads and --duration must be positive");
        std::process::exit(2);
    }
    let (mmap_threads, pipe_threads) = match args.load.as_str() {
        "mmap" => (args.threads, 0),
        "pipe" => (0, args.threads),
        _ if args.threads == 1 => (1, 0),
        _ => (args.threads.div_ceil(2), args.threads / 2),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let mmap_counts: Arc<Vec<Counter>> = Arc::new((0..mmap_threads).map(|_| Counter::default()).collect());
    let pipe_counts: Arc<Vec<Counter>> = Arc::new((0..pipe_threads).map(|_| Counter::default()).collect());
    let mut handles = Vec::new();
    // Every worker and the clock start together.
    let start = Arc::new(Barrier::new(mmap_threads + pipe_threads + 1));

    for i in 0..mmap_threads {
        let (stop, counts, start) = (stop.clone(), mmap_counts.clone(), start.clone());
        handles.push(std::thread::spawn(move || {
            start.wait();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let v = vec![0u8; BLOCK];
                std::hint::black_box(std::hint::black_box(&v)[(n as usize * 4096) % BLOCK]);
                drop(v);
                n += 1;
                counts[i].0.store(n, Ordering::Relaxed);
            }
        }));
    }

    let mut reader = None;
    if pipe_threads > 0 {
        let (mut rx, tx) = std::io::pipe().unwrap_or_else(|e| {
            eprintln!("scl-storm: cannot make a pipe: {e}");
            std::process::exit(1);
        });
        // Drains until every writer has closed its end (EOF), so no writer stays blocked.
        reader = Some(std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 16];
            while matches!(rx.read(&mut buf), Ok(n) if n > 0) {}
        }));
        for i in 0..pipe_threads {
            let (stop, counts, start) = (stop.clone(), pipe_counts.clone(), start.clone());
            let mut tx = tx.try_clone().expect("a pipe end clones");
            handles.push(std::thread::spawn(move || {
                start.wait();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    if tx.write_all(&MESSAGE).is_err() {
                        break;
                    }
                    n += 1;
                    counts[i].0.store(n, Ordering::Relaxed);
                }
            }));
        }
    }

    start.wait();
    let started = Instant::now();
    let cpu_started = cpu_seconds();
    std::thread::sleep(Duration::from_secs_f64(args.duration));
    let sum = |c: &[Counter]| c.iter().map(|c| c.0.load(Ordering::Relaxed)).sum::<u64>();
    let (mmap_ops, pipe_ops) = (sum(&mmap_counts), sum(&pipe_counts));
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_started;
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        let _ = h.join();
    }
    if let Some(r) = reader {
        let _ = r.join();
    }
    let rate = |n: u64| n as f64 / elapsed;
    println!(
        "scl-storm threads={} duration_s={elapsed:.3} ops={} ops_per_s={:.0} mmap_ops_per_s={:.0} pipe_ops_per_s={:.0} cpu_s={cpu:.2} ops_per_cpu_s={:.0}",
        args.threads,
        mmap_ops + pipe_ops,
        rate(mmap_ops + pipe_ops),
        rate(mmap_ops),
        rate(pipe_ops),
        (mmap_ops + pipe_ops) as f64 / cpu.max(0.01)
    );
}

/// User + system CPU time of this process so far, in seconds (/proc/self/stat fields 14
/// and 15, in USER_HZ = 100 ticks per second on Linux).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    // After the name, field 3 (state) is index 0, so utime (14) is 11 and stime (15) 12.
    (ticks(11) + ticks(12)) as f64 / 100.0
}
