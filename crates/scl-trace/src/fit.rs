//! The workload model fitted from a trace: per hot lock, its threads with their CPUs and
//! the empirical distributions of critical-section length, think time and wait.
//!
//! Pure: a [`Trace`] in, [`LockModel`]s out. `docs/simulator.md` ("Replaying a recorded
//! trace") explains the inference and its limits; in short, on a stock kernel only
//! contended acquisitions are visible:
//!
//! - wait: from a task's first `contention_begin` on the lock to its `contention_end`
//!   (a mutex waiter that stops spinning and sleeps fires a second `contention_begin`,
//!   which does not restart the wait);
//! - critical section: a waiter acquires at its successful `contention_end`; when the next
//!   successful `contention_end` on the lock belongs to a waiter that had begun waiting
//!   before that acquisition, the lock was busy all along, so the interval between the two
//!   bounds the first holder's critical section from above (it includes the hand-off and,
//!   for a sleeping waiter, its wake-up). With fewer than [`MIN_BUSY_PAIRS`] such pairs
//!   (two threads taking turns never give one), pairs where the next waiter began during
//!   the interval count too ([`CsRule::Relaxed`]); an rwsem read followed by a read bounds
//!   nothing (readers hold the lock together);
//! - think time: from a task's contended acquisition to its next `contention_begin` on the
//!   lock, less the critical section (the inferred one, else the lock's median): an upper
//!   bound, since uncontended acquisitions in between are invisible.
//!
//! Where the trace carries the module's hooks (`Acquired`, `ToRelease`, `Released`,
//! `ToAcquire`) for a lock, they are used instead and exactly: critical section
//! `Acquired`..`ToRelease`, think `Released`..next `ToAcquire`, wait `ToAcquire`..`Acquired`
//! of the acquisitions that contended.
//!
//! Work and memory are linear in the lock's events; sample values are kept to within
//! 1/256 (exact below 256 ns), so a distribution never holds more than about 15,000
//! distinct values whatever the trace's length.

use crate::{Event, EventKind, Trace};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// `LCB_F_SPIN` of `include/trace/events/lock.h`.
pub const LCB_F_SPIN: u32 = 1 << 0;
/// `LCB_F_READ`.
pub const LCB_F_READ: u32 = 1 << 1;
/// `LCB_F_WRITE`.
pub const LCB_F_WRITE: u32 = 1 << 2;
/// `LCB_F_MUTEX`.
pub const LCB_F_MUTEX: u32 = 1 << 5;

/// Below this many hand-offs during which the lock stayed busy (and below a tenth of the
/// waits), the fit also uses the relaxed rule ([`CsRule::Relaxed`]).
pub const MIN_BUSY_PAIRS: u64 = 30;

/// Where a lock's critical sections come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CsRule {
    /// The module's hooks: `acquired` to `to_release` of every acquisition.
    Exact,
    /// Consecutive contended acquisitions where the second waiter had begun waiting before
    /// the first got the lock: the lock was busy all along.
    Busy,
    /// Too few of those (two threads taking turns never give one), so also pairs where the
    /// second waiter began while the first held the lock: an upper bound that is tight when
    /// the tasks that waited are the lock's only users, and too long by another task's
    /// hold when one that never waited took the lock in between.
    Relaxed,
}

impl CsRule {
    /// A short description for reports.
    pub fn describe(self) -> &'static str {
        match self {
            CsRule::Exact => "exact (module hooks)",
            CsRule::Busy => "hand-offs with the next waiter already waiting",
            CsRule::Relaxed => "hand-offs with the next waiter waiting during the hold (relaxed)",
        }
    }
}

/// Threads with fewer think-time samples than this use the lock's pooled think time.
pub const MIN_THREAD_SAMPLES: u64 = 20;

/// An empirical distribution: (value, count) pairs by value, values kept to within 1/256.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Samples {
    /// (value in ns, how many samples had it), by value.
    pub values: Vec<(u64, u64)>,
    /// Samples (the sum of the counts).
    pub count: u64,
    /// Distinct events of the lock the samples were inferred from.
    pub events_used: u64,
    /// `events_used` over the lock's events in the trace.
    pub share: f64,
}

impl Samples {
    fn build(map: BTreeMap<u64, u64>, events_used: u64, lock_events: u64) -> Samples {
        let count = map.values().sum();
        Samples {
            values: map.into_iter().collect(),
            count,
            events_used,
            share: if lock_events == 0 { 0.0 } else { events_used as f64 / lock_events as f64 },
        }
    }

    /// The nearest-rank `p` quantile (0 when empty).
    pub fn quantile(&self, p: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((p * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for &(v, n) in &self.values {
            seen += n;
            if seen >= rank {
                return v;
            }
        }
        self.values.last().map_or(0, |v| v.0)
    }

    /// The mean (0 when empty).
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        self.values.iter().map(|&(v, n)| v as f64 * n as f64).sum::<f64>() / self.count as f64
    }
}

/// Keeps `v` to within 1/256: exact below 256, else its top 8 significant bits (rounded
/// to the middle of what they cover).
pub fn quantise(v: u64) -> u64 {
    if v < 256 {
        return v;
    }
    let shift = 63 - v.leading_zeros() - 7;
    let base = (v >> shift) << shift;
    base + ((1u64 << shift) >> 1)
}

fn add(map: &mut BTreeMap<u64, u64>, v: u64) {
    *map.entry(quantise(v)).or_insert(0) += 1;
}

/// One thread that used the lock.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ThreadModel {
    /// Its thread id.
    pub tid: u32,
    /// Its process id.
    pub pid: u32,
    /// Its command name, when the trace has it.
    pub comm: Option<String>,
    /// The CPU most of its events on the lock ran on.
    pub cpu: u32,
    /// That CPU's NUMA node (0 when the topology does not know the CPU).
    pub node: u32,
    /// Times consecutive events of it on the lock ran on different CPUs.
    pub migrations: u64,
    /// Its events on the lock.
    pub events: u64,
    /// Its completed waits (successful `contention_end`s).
    pub waits: u64,
    /// Its waits per second of the trace.
    pub contention_rate: f64,
    /// Its think-time samples (see the module docs).
    pub think: Samples,
}

/// The fitted model of one lock.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LockModel {
    /// The lock's address.
    pub addr: u64,
    /// Its name, when the recorder knew it.
    pub name: Option<String>,
    /// Its kind as the policy ABI numbers it (0 spinlock, 1 mutex, 2 rwsem): the most
    /// frequent `lock_kind` of its events.
    pub kind: u32,
    /// rwsem: the share of the waits that were for reading (`LCB_F_READ`); the share of
    /// reads among all acquisitions is unknown (uncontended ones are invisible).
    pub read_share: Option<f64>,
    /// Its events in the trace.
    pub events: u64,
    /// Whether the module's hook events were used (exact critical sections and think times).
    pub exact: bool,
    /// Completed waits (successful `contention_end`s, or contended `Acquired`s).
    pub waits: u64,
    /// Waits that ended without the lock (`contention_end` with an error).
    pub failed_waits: u64,
    /// The sum of the completed waits, ns.
    pub total_wait_ns: u64,
    /// Completed waits per second of the trace.
    pub contention_rate: f64,
    /// Of consecutive completed waits, the share whose tasks ran on the same NUMA node
    /// (`None` with fewer than two waits).
    pub local_handoff_share: Option<f64>,
    /// The waits (begin to end per task).
    pub wait: Samples,
    /// Critical-section lengths (upper bounds, see the module docs).
    pub cs: Samples,
    /// Which hand-offs the critical sections come from.
    pub cs_rule: CsRule,
    /// Think times of all threads (upper bounds).
    pub think: Samples,
    /// The threads, most events first.
    pub threads: Vec<ThreadModel>,
}

impl LockModel {
    /// The kind's SCL name.
    pub fn kind_name(&self) -> &'static str {
        kind_name(self.kind)
    }
}

/// The SCL name of an ABI lock kind.
pub fn kind_name(kind: u32) -> &'static str {
    match kind {
        0 => "spinlock",
        1 => "mutex",
        2 => "rwsem",
        _ => "unknown",
    }
}

/// A lock of the trace, as listed for a user picking one.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LockSummary {
    /// Its address.
    pub addr: u64,
    /// Its name, when known.
    pub name: Option<String>,
    /// Its kind (ABI number).
    pub kind: u32,
    /// Its events.
    pub events: u64,
    /// Its completed waits.
    pub waits: u64,
    /// The sum of its completed waits, ns.
    pub total_wait_ns: u64,
}

/// The trace's locks, hottest first: by completed waits, then total wait, then address.
pub fn locks(trace: &Trace) -> Vec<LockSummary> {
    let names: HashMap<u64, &str> = trace.lock_names.iter().map(|(a, n)| (*a, n.as_str())).collect();
    #[derive(Default)]
    struct Tally {
        events: u64,
        waits: u64,
        total: u64,
        pending: HashMap<u32, u64>,
        kinds: HashMap<u32, u64>,
    }
    let mut per: BTreeMap<u64, Tally> = BTreeMap::new();
    let mut sorted: Vec<&Event> = trace.events.iter().collect();
    sorted.sort_by_key(|e| e.ts);
    for e in sorted {
        let s = per.entry(e.lock).or_default();
        s.events += 1;
        *s.kinds.entry(e.lock_kind).or_insert(0) += 1;
        match e.kind {
            EventKind::ContentionBegin => {
                s.pending.entry(e.tid).or_insert(e.ts);
            }
            EventKind::ContentionEnd => {
                if let Some(b) = s.pending.remove(&e.tid) {
                    if e.ok {
                        s.waits += 1;
                        s.total = s.total.saturating_add(e.ts.saturating_sub(b));
                    }
                }
            }
            _ => {}
        }
    }
    let mut v: Vec<LockSummary> = per
        .into_iter()
        .map(|(addr, t)| LockSummary {
            addr,
            name: names.get(&addr).map(|s| s.to_string()),
            kind: majority(&t.kinds),
            events: t.events,
            waits: t.waits,
            total_wait_ns: t.total,
        })
        .collect();
    v.sort_by(|a, b| b.waits.cmp(&a.waits).then(b.total_wait_ns.cmp(&a.total_wait_ns)).then(a.addr.cmp(&b.addr)));
    v
}

fn majority(m: &HashMap<u32, u64>) -> u32 {
    m.iter().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0))).map_or(0, |(k, _)| *k)
}

/// Models of the `top` hottest locks (see [`locks`] for the order).
pub fn fit(trace: &Trace, top: usize) -> Vec<LockModel> {
    locks(trace).iter().take(top).map(|l| fit_lock(trace, l.addr)).collect()
}

/// A completed wait: who, where, when it began and when the task got the lock.
struct Acq {
    tid: u32,
    node: u32,
    begin: u64,
    at: u64,
    /// Indexes (into the lock's events) of its begin and end.
    ev: (usize, usize),
    /// An rwsem read (`LCB_F_READ` on its begin).
    read: bool,
}

/// The model of the lock at `addr` (an empty model when the trace has no events on it).
pub fn fit_lock(trace: &Trace, addr: u64) -> LockModel {
    let mut ev: Vec<&Event> = trace.events.iter().filter(|e| e.lock == addr).collect();
    ev.sort_by_key(|e| e.ts);
    let n = ev.len() as u64;
    let node_of = |cpu: u32| trace.topology.cpus.get(cpu as usize).copied().flatten().map_or(0, |p| p.node);
    let secs = (trace.end_ns.saturating_sub(trace.start_ns)) as f64 / 1e9;
    let rate = |waits: u64| if secs > 0.0 { waits as f64 / secs } else { 0.0 };
    let exact = ev.iter().any(|e| matches!(e.kind, EventKind::Acquired | EventKind::ToRelease));

    let mut kinds: HashMap<u32, u64> = HashMap::new();
    let (mut reads, mut begins) = (0u64, 0u64);
    struct PerThread {
        pid: u32,
        events: u64,
        cpus: HashMap<u32, u64>,
        last: Option<u32>,
        migrations: u64,
    }
    let mut per: HashMap<u32, PerThread> = HashMap::new();
    for e in &ev {
        *kinds.entry(e.lock_kind).or_insert(0) += 1;
        let t = per.entry(e.tid).or_insert(PerThread { pid: e.pid, events: 0, cpus: HashMap::new(), last: None, migrations: 0 });
        t.events += 1;
        *t.cpus.entry(e.cpu).or_insert(0) += 1;
        if t.last.is_some_and(|c| c != e.cpu) {
            t.migrations += 1;
        }
        t.last = Some(e.cpu);
    }

    // The completed waits, in order of acquisition.
    let mut acqs: Vec<Acq> = Vec::new();
    let mut failed = 0u64;
    let mut wait = BTreeMap::new();
    let mut wait_used = 0u64;
    let mut cs = BTreeMap::new();
    let mut cs_used = vec![false; ev.len()];
    let mut think_all = BTreeMap::new();
    let mut think_tid: HashMap<u32, BTreeMap<u64, u64>> = HashMap::new();
    let mut think_used = vec![false; ev.len()];
    // Per acquisition index: its inferred critical section.
    let mut cs_of: Vec<Option<u64>> = Vec::new();
    let mut cs_rule = CsRule::Exact;
    if exact {
        // Module hooks: the task's own events give every interval.
        let mut to_acquire: HashMap<u32, (u64, usize)> = HashMap::new();
        let mut contended: HashMap<u32, ()> = HashMap::new();
        let mut acquired: HashMap<u32, (u64, usize)> = HashMap::new();
        let mut released: HashMap<u32, (u64, usize)> = HashMap::new();
        for (i, e) in ev.iter().enumerate() {
            match e.kind {
                EventKind::ToAcquire => {
                    if let Some((r, j)) = released.remove(&e.tid) {
                        add(think_tid.entry(e.tid).or_default(), e.ts.saturating_sub(r));
                        add(&mut think_all, e.ts.saturating_sub(r));
                        think_used[i] = true;
                        think_used[j] = true;
                    }
                    to_acquire.insert(e.tid, (e.ts, i));
                }
                EventKind::ContentionBegin => {
                    contended.insert(e.tid, ());
                    begins += 1;
                    reads += u64::from(e.flags & LCB_F_READ != 0);
                }
                EventKind::ContentionEnd if !e.ok => failed += 1,
                EventKind::Acquired => {
                    if let Some((b, j)) = to_acquire.remove(&e.tid) {
                        if contended.remove(&e.tid).is_some() {
                            add(&mut wait, e.ts.saturating_sub(b));
                            wait_used += 2;
                            acqs.push(Acq { tid: e.tid, node: node_of(e.cpu), begin: b, at: e.ts, ev: (j, i), read: false });
                        }
                    }
                    acquired.insert(e.tid, (e.ts, i));
                }
                EventKind::ToRelease => {
                    if let Some((a, j)) = acquired.remove(&e.tid) {
                        add(&mut cs, e.ts.saturating_sub(a));
                        cs_used[i] = true;
                        cs_used[j] = true;
                    }
                }
                EventKind::Released => {
                    released.insert(e.tid, (e.ts, i));
                }
                EventKind::ContentionEnd => {}
            }
        }
    } else {
        // Stock tracepoints: waits per task, then the hand-off sequence.
        let mut pending: HashMap<u32, (u64, usize)> = HashMap::new();
        // Every wait's first begin: (ts, tid, index).
        let mut attempts: Vec<(u64, u32, usize)> = Vec::new();
        for (i, e) in ev.iter().enumerate() {
            match e.kind {
                EventKind::ContentionBegin => {
                    if let std::collections::hash_map::Entry::Vacant(v) = pending.entry(e.tid) {
                        v.insert((e.ts, i));
                        attempts.push((e.ts, e.tid, i));
                        begins += 1;
                        reads += u64::from(e.flags & LCB_F_READ != 0);
                    }
                }
                EventKind::ContentionEnd => {
                    let Some((b, j)) = pending.remove(&e.tid) else {
                        continue;
                    };
                    if !e.ok {
                        failed += 1;
                        continue;
                    }
                    add(&mut wait, e.ts.saturating_sub(b));
                    wait_used += 2;
                    let read = ev[j].flags & LCB_F_READ != 0;
                    acqs.push(Acq { tid: e.tid, node: node_of(e.cpu), begin: b, at: e.ts, ev: (j, i), read });
                }
                _ => {}
            }
        }
        // The next waiter had begun before `a` got the lock: the lock was busy from `a.at`
        // to `b.at`, `a`'s hold and the hand-off to `b`. With too few such pairs (two
        // threads take turns: the next waiter is always the one that just released), also
        // pairs where the next waiter began during the interval: the lock was held when it
        // began, by `a` unless a task that never waited took it in between.
        // Two rwsem readers may hold the lock together: a read followed by a read bounds
        // nothing.
        let pair = |a: &Acq, b: &Acq| !(a.read && b.read);
        let busy = acqs.windows(2).filter(|w| pair(&w[0], &w[1]) && w[1].begin < w[0].at).count() as u64;
        let relaxed = busy < MIN_BUSY_PAIRS.max(acqs.len() as u64 / 10);
        cs_rule = if relaxed { CsRule::Relaxed } else { CsRule::Busy };
        for w in acqs.windows(2) {
            let (a, b) = (&w[0], &w[1]);
            let ok = pair(a, b) && (b.begin < a.at || (relaxed && b.tid != a.tid));
            let v = ok.then(|| b.at - a.at);
            if let Some(v) = v {
                add(&mut cs, v);
                for k in [a.ev.1, b.ev.0, b.ev.1] {
                    cs_used[k] = true;
                }
            }
            cs_of.push(v);
        }
        cs_of.push(None);
        let cs_median = Samples::build(cs.clone(), 0, 0).quantile(0.5);
        // Think: from an acquisition to the same task's next contended begin (whether or
        // not that wait got the lock).
        let mut timeline: Vec<(u64, bool, usize)> = attempts.iter().enumerate().map(|(k, a)| (a.0, false, k)).collect();
        timeline.extend(acqs.iter().enumerate().map(|(k, a)| (a.at, true, k)));
        timeline.sort_unstable();
        let mut last: HashMap<u32, usize> = HashMap::new();
        for (_, is_acq, k) in timeline {
            if is_acq {
                last.insert(acqs[k].tid, k);
                continue;
            }
            let (begin, tid, idx) = attempts[k];
            if let Some(p) = last.remove(&tid) {
                let prev = &acqs[p];
                let held = cs_of[p].unwrap_or(cs_median);
                let v = begin.saturating_sub(prev.at).saturating_sub(held);
                add(think_tid.entry(tid).or_default(), v);
                add(&mut think_all, v);
                think_used[prev.ev.1] = true;
                think_used[idx] = true;
            }
        }
    }

    let used = |v: &[bool]| v.iter().filter(|x| **x).count() as u64;
    let mut waits_tid: HashMap<u32, u64> = HashMap::new();
    for a in &acqs {
        *waits_tid.entry(a.tid).or_insert(0) += 1;
    }
    let local = if acqs.len() >= 2 {
        let same = acqs.windows(2).filter(|w| w[0].node == w[1].node).count();
        Some(same as f64 / (acqs.len() - 1) as f64)
    } else {
        None
    };
    let comms: HashMap<u32, &str> = trace.comms.iter().map(|(t, c)| (*t, c.as_str())).collect();
    let mut threads: Vec<ThreadModel> = per
        .into_iter()
        .map(|(tid, PerThread { pid, events, cpus, migrations, .. })| {
            let cpu = cpus.iter().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0))).map_or(0, |(c, _)| *c);
            let waits = waits_tid.get(&tid).copied().unwrap_or(0);
            let think = think_tid.remove(&tid).unwrap_or_default();
            ThreadModel {
                tid,
                pid,
                comm: comms.get(&tid).map(|s| s.to_string()),
                cpu,
                node: node_of(cpu),
                migrations,
                events,
                waits,
                contention_rate: rate(waits),
                think: Samples::build(think, 0, n),
            }
        })
        .collect();
    threads.sort_by(|a, b| b.events.cmp(&a.events).then(a.tid.cmp(&b.tid)));
    for t in &mut threads {
        // A thread's think samples each rest on two events.
        t.think.events_used = (2 * t.think.count).min(n);
        t.think.share = if n == 0 { 0.0 } else { t.think.events_used as f64 / n as f64 };
    }
    let kind = majority(&kinds);
    LockModel {
        addr,
        name: trace.lock_names.iter().find(|(a, _)| *a == addr).map(|(_, s)| s.clone()),
        kind,
        read_share: (kind == 2 && begins > 0).then(|| reads as f64 / begins as f64),
        events: n,
        exact,
        waits: acqs.len() as u64,
        failed_waits: failed,
        total_wait_ns: acqs.iter().fold(0u64, |s, a| s.saturating_add(a.at - a.begin)),
        contention_rate: rate(acqs.len() as u64),
        local_handoff_share: local,
        wait: Samples::build(wait, wait_used, n),
        cs: Samples::build(cs, used(&cs_used), n),
        cs_rule,
        think: Samples::build(think_all, used(&think_used), n),
        threads,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CpuPlace, Topology};

    fn ev(ts: u64, kind: EventKind, tid: u32, cpu: u32, ok: bool, flags: u32) -> Event {
        Event { ts, kind, lock: 0x10, flags, lock_kind: 1, ok, tid, pid: 1, cpu }
    }

    /// A hand-made mutex trace: a waiter that spins then sleeps (two begins, one wait), a
    /// wait that fails, and the hand-off rule (the interval counts only when the next
    /// waiter was already waiting).
    #[test]
    fn hand_off_inference_by_hand() {
        use EventKind::{ContentionBegin as B, ContentionEnd as E};
        let events = vec![
            ev(100, B, 1, 0, true, LCB_F_MUTEX | LCB_F_SPIN),
            ev(150, B, 2, 1, true, LCB_F_MUTEX | LCB_F_SPIN),
            ev(200, B, 2, 1, true, LCB_F_MUTEX),
            ev(300, E, 1, 0, true, 0),
            // Thread 2 began at 150, before 300: thread 1 held 300..1300.
            ev(1300, E, 2, 1, true, 0),
            // Thread 3 begins after thread 2 got the lock: only the relaxed rule bounds
            // thread 2's hold.
            ev(1400, B, 3, 2, true, LCB_F_MUTEX),
            ev(1500, E, 3, 2, true, 0),
            // Thread 1 again: think = 2000 - 300 - 1000 (its inferred hold).
            ev(2000, B, 1, 0, true, LCB_F_MUTEX),
            ev(2100, E, 1, 0, false, 0),
        ];
        let topology = Topology { cpus: vec![Some(CpuPlace { node: 0, socket: 0 }), Some(CpuPlace { node: 1, socket: 1 }), None] };
        let trace = Trace { topology, start_ns: 0, end_ns: 1_000_000_000, events, ..Trace::default() };
        let m = fit_lock(&trace, 0x10);
        assert_eq!((m.waits, m.failed_waits, m.events, m.kind_name()), (3, 1, 9, "mutex"));
        assert_eq!(m.wait.values, vec![(100, 1), (200, 1), (1150, 1)].into_iter().map(|(v, n)| (quantise(v), n)).collect::<Vec<_>>());
        // Two busy hand-offs are too few for the strict rule alone: the relaxed one adds
        // thread 2's hold (thread 3 began during it).
        assert_eq!(m.cs_rule, CsRule::Relaxed);
        assert_eq!(m.cs.values, vec![(200, 1), (quantise(1000), 1)]);
        assert_eq!(m.cs.events_used, 5);
        assert_eq!(m.think.values, vec![(quantise(700), 1)]);
        assert_eq!(m.total_wait_ns, 1450);
        assert!((m.contention_rate - 3.0).abs() < 1e-9);
        assert_eq!(m.local_handoff_share, Some(0.0));
        assert_eq!(m.threads[0].tid, 1);
        assert_eq!(m.threads.iter().find(|t| t.tid == 2).unwrap().node, 1);
        assert_eq!(locks(&trace)[0].waits, 3);
    }

    /// rwsem readers woken together hold the lock together: a read after a read gives no
    /// critical section; a write after a read does.
    #[test]
    fn reads_do_not_bound_reads() {
        use EventKind::{ContentionBegin as B, ContentionEnd as E};
        let rw = |mut e: Event| {
            e.lock_kind = 2;
            e
        };
        let events = vec![
            rw(ev(0, B, 1, 0, true, LCB_F_READ)),
            rw(ev(10, B, 2, 0, true, LCB_F_READ)),
            rw(ev(20, B, 3, 0, true, LCB_F_WRITE)),
            rw(ev(100, E, 1, 0, true, 0)),
            rw(ev(101, E, 2, 0, true, 0)),
            rw(ev(900, E, 3, 0, true, 0)),
        ];
        let trace = Trace { end_ns: 1000, events, ..Trace::default() };
        let m = fit_lock(&trace, 0x10);
        assert_eq!((m.kind_name(), m.waits), ("rwsem", 3));
        assert!((m.read_share.unwrap() - 2.0 / 3.0).abs() < 1e-9);
        // Only read 2 -> write 3: 900 - 101.
        assert_eq!(m.cs.values, vec![(quantise(799), 1)]);
    }

    #[test]
    fn quantise_keeps_one_part_in_256() {
        for v in [0u64, 255, 256, 1000, 123_456_789, u64::MAX >> 1] {
            let q = quantise(v);
            assert!(q.abs_diff(v) <= v / 256, "{v} -> {q}");
        }
        assert_eq!(quantise(255), 255);
    }

    #[test]
    fn hottest_first() {
        let mut events = Vec::new();
        for (lock, n) in [(0xa, 1u64), (0xb, 3), (0xc, 2)] {
            for i in 0..n {
                events.push(Event { lock, ..ev(i * 10, EventKind::ContentionBegin, 1, 0, true, 0) });
                events.push(Event { lock, ..ev(i * 10 + 5, EventKind::ContentionEnd, 1, 0, true, 0) });
            }
        }
        let trace = Trace { events, ..Trace::default() };
        assert_eq!(locks(&trace).iter().map(|l| l.addr).collect::<Vec<_>>(), vec![0xb, 0xc, 0xa]);
        assert_eq!(fit(&trace, 2).len(), 2);
    }
}
