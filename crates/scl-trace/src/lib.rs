//! `scl-trace`: what `sclc record` writes and `sclc sim --replay` reads.
//!
//! A trace is the recording machine's topology and a time-ordered list of lock events seen
//! on the stock lock tracepoints (`lock:contention_begin`/`contention_end`) or, on a kernel
//! with the `kernel/` module, on the governed locks' full hook set.
//!
//! Owns: the in-memory trace ([`Trace`], [`Topology`], [`Event`]), its versioned binary file
//! format (`format`), reading the topology from sysfs (`topology`), and the workload model
//! fitted from a trace (`fit`). Must not: touch BPF or the kernel (`sclc record` owns
//! recording), or simulate (`scl-sim` does; `sclc sim --replay` joins the two).
//! `docs/trace-format.md` describes the file, `docs/simulator.md` the fit.

#![deny(missing_docs)]

pub mod fit;

use serde::Serialize;

pub mod format;
pub mod topology;

/// The machine a trace was recorded on, read from sysfs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Topology {
    /// Per online CPU (indexed by CPU number; `None` for a CPU that was offline or absent),
    /// its NUMA node and its socket (physical package).
    pub cpus: Vec<Option<CpuPlace>>,
}

/// Where one CPU sits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CpuPlace {
    /// Its NUMA node (0 on a machine without NUMA).
    pub node: u32,
    /// Its socket (`topology/physical_package_id`).
    pub socket: u32,
}

/// What one event is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum EventKind {
    /// `lock:contention_begin` (the `contended` hook): the task starts to wait.
    ContentionBegin,
    /// `lock:contention_end` (the `contention_end` hook): the wait ended; `ok` says whether
    /// the task got the lock.
    ContentionEnd,
    /// Module hooks (full hook set of a governed lock): the task is about to take the lock.
    ToAcquire,
    /// The task holds the lock.
    Acquired,
    /// The task is about to release it.
    ToRelease,
    /// The task released it.
    Released,
}

/// One lock event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Event {
    /// Kernel monotonic clock (`bpf_ktime_get_ns`), in ns.
    pub ts: u64,
    /// What happened.
    pub kind: EventKind,
    /// The lock's address.
    pub lock: u64,
    /// The tracepoint's `LCB_F_*` flags (`contention_begin`), 0 where the event has none.
    pub flags: u32,
    /// The lock kind as the policy ABI numbers it (0 spinlock, 1 mutex, 2 rwsem).
    pub lock_kind: u32,
    /// `contention_end`: the task got the lock (ret 0). True for the other kinds.
    pub ok: bool,
    /// The task's thread id.
    pub tid: u32,
    /// Its process id.
    pub pid: u32,
    /// The CPU it ran on.
    pub cpu: u32,
}

/// A whole trace in memory.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Trace {
    /// The machine it was recorded on.
    pub topology: Topology,
    /// When recording started and stopped (kernel monotonic clock, ns).
    pub start_ns: u64,
    /// See `start_ns`.
    pub end_ns: u64,
    /// Names the recorder knew for some locks (address, name), e.g. kallsyms symbols.
    pub lock_names: Vec<(u64, String)>,
    /// Command names of the recorded threads (tid, comm).
    pub comms: Vec<(u32, String)>,
    /// Events the kernel produced but the recorder lost (ring buffer full).
    pub lost: u64,
    /// The events, in timestamp order.
    pub events: Vec<Event>,
}
