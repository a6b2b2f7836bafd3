//! A recorded workload on the recorded machine: the [`Machine`] and [`Workload`] that
//! `sclc sim --replay` simulates, built from a lock's fitted model (`scl_trace::fit`) and the
//! trace's topology.
//!
//! The machine: one simulated socket per recorded NUMA node (in node order), each with as
//! many cores as the largest node has CPUs; a smaller node's missing cores exist in the
//! model but no thread runs on them. Recorded CPU `c`, the `k`-th CPU (by number) of the
//! `s`-th node, is simulated CPU `s * cores_per_socket + k`. The costs are the defaults of
//! [`Machine::symmetric`]: the trace holds no cache-line timings.
//!
//! The workload: one thread per recorded thread that completed a wait on the lock, pinned to
//! the CPU it ran on most; the simulator pins one thread per CPU and does not time-share, so
//! a thread whose CPU is taken moves to a free CPU of the same node, and when the node has
//! none, the node gets another core for it (each said in `notes`): threads that
//! time-shared a CPU run side by side. Critical sections are the lock's pooled
//! empirical distribution; think times the thread's own when it has at least
//! [`MIN_THREAD_SAMPLES`] of them, else the pooled one. Inferred critical sections (stock
//! tracepoints) lose the expected cache-line transfer of a hand-off, which the simulator
//! charges itself. Mutexes and rwsems run as Linux 6.x's
//! stock locks (`LockImpl::Linux`); the spinlock is the queued spinlock.

use crate::model::{Dist, Empirical, LockImpl, LockKind, Machine, ModelError, ThreadSpec, Workload};
use crate::model::{DEFAULT_MAX_OVERTAKE, DEFAULT_SHUFFLE_BATCH};
use scl_trace::fit::{LockModel, Samples, MIN_THREAD_SAMPLES};
use scl_trace::Topology;
use serde::Serialize;
use std::collections::BTreeMap;

/// What to simulate for a recorded lock.
#[derive(Clone, Debug)]
pub struct Replay {
    /// The recorded machine.
    pub machine: Machine,
    /// The recorded workload.
    pub workload: Workload,
    /// Workload thread `i` is `threads[i]`.
    pub threads: Vec<ReplayThread>,
    /// What was moved, added or assumed.
    pub notes: Vec<String>,
}

/// One recorded thread in the simulation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReplayThread {
    /// Its recorded thread id.
    pub tid: u32,
    /// The recorded CPU it ran on most.
    pub recorded_cpu: u32,
    /// The simulated CPU it runs on.
    pub cpu: u32,
    /// Whether it has its own think time (else the lock's pooled one).
    pub own_think: bool,
}

fn empirical(s: &Samples, what: &str) -> Result<Dist, ModelError> {
    Empirical::new(s.values.iter().copied()).map(Dist::Empirical).map_err(|e| ModelError(format!("{what}: {e}")))
}

/// Builds the machine and the workload of `model`, recorded on `topo`.
pub fn build(model: &LockModel, topo: &Topology) -> Result<Replay, ModelError> {
    let lock = match model.kind {
        0 => LockKind::Spinlock,
        1 => LockKind::Mutex,
        2 => LockKind::Rwsem,
        k => return Err(ModelError(format!("lock kind {k} is not one the simulator knows (0 spinlock, 1 mutex, 2 rwsem)"))),
    };
    let mut notes = Vec::new();
    // Nodes and each recorded CPU's place in the simulated machine.
    let mut nodes: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for (cpu, place) in topo.cpus.iter().enumerate() {
        if let Some(p) = place {
            nodes.entry(p.node).or_default().push(cpu as u32);
        }
    }
    if nodes.is_empty() {
        // No topology: one node of the CPUs the threads ran on.
        let top = model.threads.iter().map(|t| t.cpu).max().unwrap_or(0);
        nodes.insert(0, (0..=top).collect());
        notes.push("the trace has no topology: one node of the CPUs the threads ran on".into());
    }
    let sockets = u32::try_from(nodes.len()).unwrap_or(u32::MAX);
    // Each recorded CPU's (node index, rank in the node).
    let mut place: BTreeMap<u32, (usize, u32)> = BTreeMap::new();
    for (s, cpus) in nodes.values().enumerate() {
        for (k, &c) in cpus.iter().enumerate() {
            place.insert(c, (s, k as u32));
        }
    }
    let sizes: Vec<u32> = nodes.values().map(|c| c.len() as u32).collect();

    if model.cs.count == 0 {
        return Err(ModelError(
            "the trace has no hand-off during which the lock stayed busy, so its critical sections cannot be inferred".into(),
        ));
    }
    if model.think.count == 0 {
        return Err(ModelError("no thread waited twice on the lock, so its think time cannot be inferred".into()));
    }
    // The inferred intervals include the hand-off of the lock word's cache line, which the
    // simulator adds again: take off its expected cost on the simulated machine, weighting
    // local and remote transfers by the recorded share of local hand-offs.
    let costs = Machine::symmetric(1, 1);
    let local = model.local_handoff_share.unwrap_or(1.0 / f64::from(sockets));
    let transfer = (local * costs.local_handoff_ns as f64 + (1.0 - local) * costs.remote_handoff_ns as f64).round() as u64;
    let exact_cs = model.exact;
    let cs_values = model.cs.values.iter().map(|&(v, c)| (if exact_cs { v } else { v.saturating_sub(transfer).max(1) }, c));
    let cs = Empirical::new(cs_values).map(Dist::Empirical).map_err(|e| ModelError(format!("critical sections: {e}")))?;
    if !exact_cs {
        notes.push(format!("critical sections: the inferred hand-off intervals less the expected line transfer ({transfer} ns)"));
    }
    let pooled_think = empirical(&model.think, "think time")?;
    let read_ratio = if lock == LockKind::Rwsem { model.read_share.unwrap_or(0.0).clamp(0.0, 1.0) } else { 0.0 };

    // Threads to (node, rank): their own CPU, else a free CPU of the same node, else a core
    // added to the node (the simulator pins one thread per CPU and does not time-share).
    let users: Vec<_> = model.threads.iter().filter(|t| t.waits > 0).collect();
    if users.is_empty() {
        return Err(ModelError("no thread completed a wait on the lock".into()));
    }
    let mut taken: Vec<Vec<bool>> = sizes.iter().map(|&n| vec![false; n as usize]).collect();
    let mut slot: Vec<Option<(usize, u32)>> = vec![None; users.len()];
    for (i, t) in users.iter().enumerate() {
        if let Some(&(s, k)) = place.get(&t.cpu) {
            if !taken[s][k as usize] {
                taken[s][k as usize] = true;
                slot[i] = Some((s, k));
            }
        }
    }
    let (mut moved, mut added) = (0, 0);
    for (i, t) in users.iter().enumerate() {
        if slot[i].is_some() {
            continue;
        }
        // A CPU the topology does not know goes to the first node.
        let s = place.get(&t.cpu).map_or(0, |p| p.0);
        let k = match taken[s].iter().position(|x| !x) {
            Some(k) => {
                moved += 1;
                k
            }
            None => {
                added += 1;
                taken[s].len()
            }
        };
        if k == taken[s].len() {
            taken[s].push(true);
        } else {
            taken[s][k] = true;
        }
        slot[i] = Some((s, k as u32));
    }
    let cores = taken.iter().map(|t| t.len() as u32).max().unwrap_or(1).max(1);
    if u64::from(sockets) * u64::from(cores) > u64::from(Machine::MAX_CPUS) {
        return Err(ModelError(format!("{sockets} nodes of up to {cores} CPUs is more than the simulator's {} CPUs", Machine::MAX_CPUS)));
    }
    if sizes.iter().any(|&n| n != cores) {
        notes.push(format!("nodes of unequal size (or with added cores): each is a socket of {cores} cores, some unused"));
    }
    let machine = Machine::symmetric(sockets, cores);
    let mut threads = Vec::new();
    let mut specs = Vec::new();
    for (t, slot) in users.iter().zip(slot) {
        let (s, k) = slot.expect("every thread placed");
        let cpu = s as u32 * cores + k;
        let own = t.think.count >= MIN_THREAD_SAMPLES;
        let think = if own { empirical(&t.think, &format!("thread {} think time", t.tid))? } else { pooled_think.clone() };
        threads.push(ReplayThread { tid: t.tid, recorded_cpu: t.cpu, cpu, own_think: own });
        specs.push(ThreadSpec {
            cpu,
            cs: cs.clone(),
            read_cs: cs.clone(),
            think,
            cs_lines: 0,
            shared_lines: 0,
            read_ratio,
            prio: 120,
            latency_critical: false,
        });
    }
    if moved > 0 {
        notes.push(format!(
            "{moved} threads shared a CPU and were moved to a free CPU of their node (the simulator pins one thread per CPU)"
        ));
    }
    if added > 0 {
        notes.push(format!(
            "{added} threads shared a CPU with no free CPU left on their node: each got a core added to the node, so they run side by side where the recorded ones time-shared"
        ));
    }
    if lock == LockKind::Rwsem {
        notes.push("rwsem: reads and writes share one critical-section distribution; the read share is that of the waits".into());
    }
    let workload = Workload {
        lock,
        threads: specs,
        max_overtake: DEFAULT_MAX_OVERTAKE,
        shuffle_batch: DEFAULT_SHUFFLE_BATCH,
        locks: LockImpl::Linux,
        mutex_spin_ns: None,
    };
    workload.validate(&machine)?;
    Ok(Replay { machine, workload, threads, notes })
}
