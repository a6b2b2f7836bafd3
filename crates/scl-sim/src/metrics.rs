//! What a run measured, and the side-by-side table of several runs.

use crate::engine::{Config, Role, Thread};
use crate::policy::Hook;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Wait-time statistics (ns) of a set of acquisitions. Wait runs from the start of an
/// acquisition attempt (before `to_acquire`) to the moment the acquisition completes (the
/// lock word's cache line is the thread's, just before `acquired`), so it includes hook
/// costs, policy back-offs and cache-line transfers.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct WaitStats {
    /// Completed waits.
    pub count: u64,
    /// Mean.
    pub mean_ns: f64,
    /// Median (nearest rank, to within 1/128: the top of its histogram bucket).
    pub p50_ns: u64,
    /// 90th percentile (nearest rank, to within 1/128).
    pub p90_ns: u64,
    /// 99th percentile (nearest rank, to within 1/128).
    pub p99_ns: u64,
    /// Longest completed wait.
    pub max_ns: u64,
}

impl WaitStats {
    fn of(h: &Hist) -> WaitStats {
        if h.count == 0 {
            return WaitStats::default();
        }
        WaitStats {
            count: h.count,
            mean_ns: h.sum as f64 / h.count as f64,
            p50_ns: h.quantile(0.50),
            p90_ns: h.quantile(0.90),
            p99_ns: h.quantile(0.99),
            max_ns: h.max,
        }
    }
}

/// Sub-buckets per power of two in [`Hist`]: quantiles are within 1/128 of the truth.
const SUB_BITS: u32 = 7;
const SUB: usize = 1 << SUB_BITS;
/// Buckets of a [`Hist`]: values below [`SUB`] exactly, then [`SUB`] per power of two up
/// to 2^64.
const BUCKETS: usize = (64 - SUB_BITS as usize + 1) * SUB;

/// Waits in constant memory (a streaming log-linear histogram, about 60 KB): count, sum and
/// maximum exact, quantiles to within 1/128 (exact below 128 ns). A run of any length keeps
/// no per-acquisition record.
#[derive(Clone, Default)]
pub(crate) struct Hist {
    count: u64,
    sum: u128,
    max: u64,
    buckets: Vec<u64>,
}

impl Hist {
    fn index(v: u64) -> usize {
        if v < SUB as u64 {
            return v as usize;
        }
        let e = 63 - v.leading_zeros();
        let sub = (v >> (e - SUB_BITS)) as usize - SUB;
        (e - SUB_BITS + 1) as usize * SUB + sub
    }

    /// The largest value bucket `i` holds.
    fn upper(i: usize) -> u64 {
        if i < SUB {
            return i as u64;
        }
        // Bucket `i` of group g >= 1 holds [(SUB + sub) << (g - 1), (SUB + sub + 1) << (g - 1)).
        let (group, sub) = (i / SUB, (i % SUB) as u128);
        let top = ((SUB as u128 + sub + 1) << (group as u32 - 1)) - 1;
        u64::try_from(top).unwrap_or(u64::MAX)
    }

    pub(crate) fn add(&mut self, v: u64) {
        if self.buckets.is_empty() {
            self.buckets = vec![0; BUCKETS];
        }
        self.count += 1;
        self.sum += u128::from(v);
        self.max = self.max.max(v);
        self.buckets[Self::index(v)] += 1;
    }

    /// The nearest-rank `p` quantile, as the top of its bucket (never above the maximum).
    fn quantile(&self, p: f64) -> u64 {
        let rank = ((p * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0u64;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Self::upper(i).min(self.max);
            }
        }
        self.max
    }
}

/// One thread's share.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ThreadMetrics {
    /// Thread id.
    pub tid: u32,
    /// CPU.
    pub cpu: u32,
    /// NUMA node.
    pub node: u32,
    /// Acquisitions in the run.
    pub acquisitions: u64,
    /// Time it held the lock, ns.
    pub hold_ns: u64,
    /// Marked latency-critical.
    pub latency_critical: bool,
}

/// Reads or writes of an rwsem.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RoleMetrics {
    /// Acquisitions.
    pub acquisitions: u64,
    /// Acquisitions per simulated second.
    pub throughput: f64,
    /// Of which through the policy's bypass.
    pub bypassed: u64,
    /// Their waits.
    pub wait: WaitStats,
}

/// What the shuffler did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ShuffleMetrics {
    /// Rounds: on a spinlock, each time a waiter takes the shuffler role (a new head, or the
    /// role handed down); on a mutex or rwsem, each hand-off with two waiters behind the head.
    pub rounds: u64,
    /// Rounds that `skip_reorder` skipped.
    pub skipped: u64,
    /// Waiters moved forward.
    pub moves: u64,
    /// Mutex and rwsem hand-offs (with or without a policy) after which the new queue head
    /// had waiters behind it both on its own node and on another: rounds where the order
    /// was a real choice. Counted as `kernel/` counts its `mixed` rounds (`scl_round_end`).
    pub mixed: u64,
    /// Of the `mixed` rounds, those after which the waiter right behind the head is on the
    /// head's node (the guest's `to_shuffler_node`).
    pub to_shuffler_node: u64,
    /// Rounds stopped by the reorder bound.
    pub bound_hits: u64,
    /// Most times any waiter was overtaken while queued (never above `bound`).
    pub max_overtaken: u32,
    /// The bound (`max_overtake`).
    pub bound: u32,
}

/// Hook calls and their cost.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct HookMetrics {
    /// Calls per hook.
    pub calls: BTreeMap<String, u64>,
    /// Instructions executed in all.
    pub insns: u64,
    /// Helper calls made by hooks.
    pub helpers: u64,
    /// Simulated time spent in `back_off`/`sleep` waits, ns.
    pub waited_ns: u64,
    /// The longest single hook call: its waits plus its instructions, ns.
    pub max_call_ns: u64,
}

/// Everything one run measured.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Metrics {
    /// The policy's name.
    pub policy: String,
    /// Simulated duration, ns.
    pub duration_ns: u64,
    /// The seed.
    pub seed: u64,
    /// Acquisitions completed within the duration.
    pub acquisitions: u64,
    /// Acquisitions per simulated second.
    pub throughput: f64,
    /// Jain's fairness index of hold time per thread: 1 is perfectly even, 1/n is one
    /// thread holding the lock all the time.
    pub fairness: f64,
    /// Share of acquisitions of the lock word whose holder is on the same socket as the
    /// previous holder (bypassed rwsem reads do not count).
    pub local_handoff_ratio: f64,
    /// All waits.
    pub wait: WaitStats,
    /// Waits of the latency-critical threads (when there are any).
    pub wait_latency_critical: Option<WaitStats>,
    /// Waits of the other threads (when some are latency-critical).
    pub wait_others: Option<WaitStats>,
    /// Longest wait still unfinished when the run ended (a starving waiter shows here).
    pub max_wait_in_flight_ns: u64,
    /// rwsem reads.
    pub reads: Option<RoleMetrics>,
    /// rwsem writes.
    pub writes: Option<RoleMetrics>,
    /// Fast-path failures (the task queued or found the queue busy).
    pub contended: u64,
    /// Waits of the contended acquisitions only, from the fast path's failure to the
    /// acquisition: what `lock:contention_begin`..`contention_end` shows on a stock kernel
    /// (`sclc sim --replay` compares it with the recorded waits).
    pub contended_wait: WaitStats,
    /// Of consecutive contended acquisitions, the share whose holder is on the same socket
    /// as the previous contended holder: the hand-off locality a trace of the stock
    /// tracepoints can show.
    pub contended_local_ratio: f64,
    /// Acquisitions whose fast path `enable_fastpath` refused.
    pub fastpath_refused: u64,
    /// Linux mutex: times the woken first waiter found the lock taken by a spinner or a
    /// newcomer (a steal), and set the hand-off flag.
    pub steals: u64,
    /// Releases where `bypass_release` disagreed with how the read was taken.
    pub protocol_errors: u64,
    /// The shuffler.
    pub shuffle: ShuffleMetrics,
    /// Hooks.
    pub hooks: HookMetrics,
    /// Per thread.
    pub threads: Vec<ThreadMetrics>,
    /// Hand-offs as the guest's storm (`tests/kernel-reality/storm`) counts them: exclusive
    /// acquisitions (and writes) on another CPU than the previous one, so that two threads
    /// taking turns on one CPU do not count.
    pub cpu_handoffs: u64,
    /// Of `cpu_handoffs`, the share that stayed on the previous holder's node (the guest's
    /// `local_handoff_ratio`; 0 without hand-offs).
    pub cpu_local_handoff_ratio: f64,
    /// Remarks on the run (a latency-critical set without a map to write it to, ...).
    pub notes: Vec<String>,
}

impl Metrics {
    /// The longest wait, finished or not.
    pub fn max_wait_ns(&self) -> u64 {
        self.wait.max_ns.max(self.max_wait_in_flight_ns)
    }
}

pub(crate) struct Collect {
    acq: Vec<u64>,
    hold: Vec<u64>,
    /// Per thread, whether it is latency-critical (its waits go to `wait_lc`).
    critical: Vec<bool>,
    wait_all: Hist,
    wait_lc: Hist,
    wait_others: Hist,
    wait_read: Hist,
    wait_write: Hist,
    roles: [(u64, u64); 2],
    handoffs: u64,
    local: u64,
    calls: [u64; Hook::ALL.len()],
    insns: u64,
    helpers: u64,
    waited_ns: u64,
    max_call_ns: u64,
    pub(crate) contended: u64,
    wait_contended: Hist,
    contended_prev_node: Option<u32>,
    contended_pairs: u64,
    contended_local: u64,
    pub(crate) fastpath_refused: u64,
    pub(crate) steals: u64,
    pub(crate) protocol_errors: u64,
    pub(crate) in_flight_max: u64,
    pub(crate) shuffle: ShuffleMetrics,
    pub(crate) notes: Vec<String>,
    cpu_handoffs: u64,
    cpu_local: u64,
}

impl Collect {
    pub(crate) fn new(critical: Vec<bool>) -> Collect {
        let n = critical.len();
        Collect {
            acq: vec![0; n],
            hold: vec![0; n],
            critical,
            wait_all: Hist::default(),
            wait_lc: Hist::default(),
            wait_others: Hist::default(),
            wait_read: Hist::default(),
            wait_write: Hist::default(),
            roles: [(0, 0); 2],
            handoffs: 0,
            local: 0,
            calls: [0; Hook::ALL.len()],
            insns: 0,
            helpers: 0,
            waited_ns: 0,
            max_call_ns: 0,
            contended: 0,
            wait_contended: Hist::default(),
            contended_prev_node: None,
            contended_pairs: 0,
            contended_local: 0,
            fastpath_refused: 0,
            steals: 0,
            protocol_errors: 0,
            in_flight_max: 0,
            shuffle: ShuffleMetrics::default(),
            notes: Vec::new(),
            cpu_handoffs: 0,
            cpu_local: 0,
        }
    }

    /// The holder changed CPU (the storm's hand-off); `local`: it stayed on the node.
    pub(crate) fn cpu_handoff(&mut self, local: bool) {
        self.cpu_handoffs += 1;
        self.cpu_local += u64::from(local);
    }

    pub(crate) fn hook(&mut self, h: Hook, insns: u64, helpers: u64, waited: u64, took: u64) {
        self.max_call_ns = self.max_call_ns.max(took);
        self.calls[h as usize] += 1;
        self.insns += insns;
        self.helpers += helpers;
        self.waited_ns += waited;
    }

    pub(crate) fn handoff(&mut self, local: bool) {
        self.handoffs += 1;
        self.local += u64::from(local);
    }

    pub(crate) fn acquired(&mut self, t: usize, role: Role, bypass: bool, wait: u64) {
        self.wait_all.add(wait);
        if self.critical.get(t).copied().unwrap_or(false) {
            self.wait_lc.add(wait);
        } else {
            self.wait_others.add(wait);
        }
        match role {
            Role::Read => self.wait_read.add(wait),
            Role::Write => self.wait_write.add(wait),
            Role::Exclusive => {}
        }
        self.acq[t] += 1;
        match role {
            Role::Read => {
                self.roles[0].0 += 1;
                self.roles[0].1 += u64::from(bypass);
            }
            Role::Write => self.roles[1].0 += 1,
            Role::Exclusive => {}
        }
    }

    /// A contended acquisition by a thread on `node` completed after waiting `wait` ns.
    pub(crate) fn contended_acquired(&mut self, node: u32, wait: u64) {
        self.wait_contended.add(wait);
        if let Some(p) = self.contended_prev_node.replace(node) {
            self.contended_pairs += 1;
            self.contended_local += u64::from(p == node);
        }
    }

    pub(crate) fn hold(&mut self, t: usize, ns: u64) {
        self.hold[t] += ns;
    }
}

/// Jain's fairness index of `x`: (Σx)² / (n Σx²); 1 for an empty or all-zero set.
pub fn jain(x: &[f64]) -> f64 {
    let s: f64 = x.iter().sum();
    let s2: f64 = x.iter().map(|v| v * v).sum();
    if s2 == 0.0 {
        1.0
    } else {
        s * s / (x.len() as f64 * s2)
    }
}

pub(crate) fn finish(c: Collect, policy: &str, cfg: &Config, th: &[Thread]) -> Metrics {
    let secs = cfg.duration_ns as f64 / 1e9;
    let specs = &cfg.workload.threads;
    let lc_any = specs.iter().any(|t| t.latency_critical);

    let acquisitions: u64 = c.acq.iter().sum();
    let rwsem = cfg.workload.lock == crate::model::LockKind::Rwsem;
    let role = |i: usize, r: Role| RoleMetrics {
        acquisitions: c.roles[i].0,
        throughput: c.roles[i].0 as f64 / secs,
        bypassed: c.roles[i].1,
        wait: WaitStats::of(if r == Role::Read { &c.wait_read } else { &c.wait_write }),
    };
    let mut calls = BTreeMap::new();
    for h in Hook::ALL {
        if c.calls[h as usize] > 0 {
            calls.insert(h.name().to_string(), c.calls[h as usize]);
        }
    }
    Metrics {
        policy: policy.to_string(),
        duration_ns: cfg.duration_ns,
        seed: cfg.seed,
        acquisitions,
        throughput: acquisitions as f64 / secs,
        fairness: jain(&c.hold.iter().map(|h| *h as f64).collect::<Vec<_>>()),
        local_handoff_ratio: if c.handoffs == 0 { 0.0 } else { c.local as f64 / c.handoffs as f64 },
        wait: WaitStats::of(&c.wait_all),
        wait_latency_critical: lc_any.then(|| WaitStats::of(&c.wait_lc)),
        wait_others: lc_any.then(|| WaitStats::of(&c.wait_others)),
        max_wait_in_flight_ns: c.in_flight_max,
        reads: rwsem.then(|| role(0, Role::Read)),
        writes: rwsem.then(|| role(1, Role::Write)),
        contended: c.contended,
        contended_wait: WaitStats::of(&c.wait_contended),
        contended_local_ratio: if c.contended_pairs == 0 { 0.0 } else { c.contended_local as f64 / c.contended_pairs as f64 },
        fastpath_refused: c.fastpath_refused,
        steals: c.steals,
        protocol_errors: c.protocol_errors,
        shuffle: ShuffleMetrics { bound: cfg.workload.max_overtake, ..c.shuffle },
        hooks: HookMetrics { calls, insns: c.insns, helpers: c.helpers, waited_ns: c.waited_ns, max_call_ns: c.max_call_ns },
        threads: th
            .iter()
            .enumerate()
            .map(|(i, t)| ThreadMetrics {
                tid: t.tid,
                cpu: t.cpu,
                node: t.node,
                acquisitions: c.acq[i],
                hold_ns: c.hold[i],
                latency_critical: specs[i].latency_critical,
            })
            .collect(),
        cpu_handoffs: c.cpu_handoffs,
        cpu_local_handoff_ratio: if c.cpu_handoffs == 0 { 0.0 } else { c.cpu_local as f64 / c.cpu_handoffs as f64 },
        notes: c.notes,
    }
}

fn si(v: f64) -> String {
    if v >= 1e9 {
        format!("{:.2}G", v / 1e9)
    } else if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

/// `ns` as a short duration: `850 ns`, `12.3 us`, `4.10 ms`.
pub fn ns(v: u64) -> String {
    let f = v as f64;
    if f >= 1e6 {
        format!("{:.2} ms", f / 1e6)
    } else if f >= 1e4 {
        format!("{:.1} us", f / 1e3)
    } else if f >= 1e3 {
        format!("{:.2} us", f / 1e3)
    } else {
        format!("{v} ns")
    }
}

/// A row of the side-by-side table: label, value, how to print it.
type Row = (&'static str, Option<f64>, fn(f64) -> String);

/// The rows of the side-by-side table for one run.
fn rows(m: &Metrics) -> Vec<Row> {
    let n = |v: u64| Some(v as f64);
    let t: fn(f64) -> String = |v| ns(v as u64);
    let r: fn(f64) -> String = |v| format!("{v:.3}");
    let c: fn(f64) -> String = |v| format!("{}/s", si(v));
    let k: fn(f64) -> String = si;
    let mut v = vec![
        ("throughput (acquisitions/s)", Some(m.throughput), c),
        ("acquisitions", n(m.acquisitions), k),
        ("fairness (Jain, hold time)", Some(m.fairness), r),
        ("local hand-off ratio", Some(m.local_handoff_ratio), r),
        ("wait p50", n(m.wait.p50_ns), t),
        ("wait p99", n(m.wait.p99_ns), t),
        ("wait max", n(m.max_wait_ns()), t),
    ];
    if let Some(w) = &m.wait_latency_critical {
        v.push(("latency-critical wait p50", n(w.p50_ns), t));
        v.push(("latency-critical wait p99", n(w.p99_ns), t));
        v.push(("latency-critical wait max", n(w.max_ns), t));
    }
    if let Some(w) = &m.wait_others {
        v.push(("other threads wait p99", n(w.p99_ns), t));
    }
    if let (Some(rd), Some(wr)) = (&m.reads, &m.writes) {
        v.push(("reads/s", Some(rd.throughput), c));
        v.push(("reads bypassed", n(rd.bypassed), k));
        v.push(("read wait p99", n(rd.wait.p99_ns), t));
        v.push(("writes/s", Some(wr.throughput), c));
        v.push(("write wait p99", n(wr.wait.p99_ns), t));
    }
    v.push(("shuffle moves", n(m.shuffle.moves), k));
    v.push(("most overtakes of one waiter", n(u64::from(m.shuffle.max_overtaken)), k));
    v.push(("hook calls", n(m.hooks.calls.values().sum()), k));
    v.push(("hook time waiting (back_off/sleep)", n(m.hooks.waited_ns), t));
    v
}

/// The runs side by side as a text table; with two or more runs, a ratio column of the last
/// run over the first.
pub fn table(runs: &[Metrics]) -> String {
    let mut out = String::new();
    if runs.is_empty() {
        return out;
    }
    let all: Vec<_> = runs.iter().map(rows).collect();
    let label_w = all[0].iter().map(|r| r.0.len()).max().unwrap_or(0);
    let mut cols: Vec<Vec<String>> = Vec::new();
    let head: Vec<String> = runs.iter().map(|m| m.policy.clone()).collect();
    for rs in &all {
        cols.push(rs.iter().map(|(_, v, f)| v.map(f).unwrap_or_else(|| "-".into())).collect());
    }
    let widths: Vec<usize> =
        cols.iter().zip(&head).map(|(c, h)| c.iter().map(|s| s.len()).chain([h.len()]).max().unwrap_or(0)).collect();
    let _ = write!(out, "{:label_w$}", "");
    for (h, w) in head.iter().zip(&widths) {
        let _ = write!(out, "  {h:>w$}");
    }
    if runs.len() > 1 {
        let _ = write!(out, "  {:>7}", "ratio");
    }
    out.push('\n');
    for (i, (label, _, _)) in all[0].iter().enumerate() {
        let _ = write!(out, "{label:label_w$}");
        for (c, w) in cols.iter().zip(&widths) {
            let _ = write!(out, "  {:>w$}", c.get(i).map(String::as_str).unwrap_or("-"));
        }
        if runs.len() > 1 {
            let first = all[0][i].1;
            let last = all.last().unwrap().get(i).and_then(|r| r.1);
            let ratio = match (first, last) {
                (Some(a), Some(b)) if a != 0.0 => format!("{:.2}x", b / a),
                _ => "-".into(),
            };
            let _ = write!(out, "  {ratio:>7}");
        }
        out.push('\n');
    }
    for m in runs {
        for n in &m.notes {
            let _ = writeln!(out, "note: {n}");
        }
        if m.protocol_errors > 0 {
            let _ = writeln!(
                out,
                "warning: {}: bypass_release disagreed {} times with how the read was taken",
                m.policy, m.protocol_errors
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The streaming quantiles against exact nearest-rank ones, on spreads of values from
    /// nanoseconds to hours: within 1/128 above the truth, never above the maximum.
    #[test]
    fn streaming_quantiles_are_within_a_bucket_of_exact() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for scale in [1u64, 100, 10_000, 1 << 20, 1 << 40, u64::MAX >> 8] {
            let mut h = Hist::default();
            let mut v: Vec<u64> = Vec::new();
            for _ in 0..5000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let s = x % scale.max(1);
                h.add(s);
                v.push(s);
            }
            v.sort_unstable();
            for p in [0.5, 0.9, 0.99, 1.0] {
                let exact = v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
                let got = h.quantile(p);
                assert!(got >= exact && got - exact <= exact / 128 + 1, "scale {scale} p{p}: {got} vs {exact}");
                assert!(got <= *v.last().unwrap());
            }
        }
        // Every bucket's top is below the next bucket's values.
        for i in 0..BUCKETS - 1 {
            assert!(Hist::upper(i) < Hist::upper(i + 1), "{i}");
            assert_eq!(Hist::index(Hist::upper(i)), i, "{i}");
        }
    }

    #[test]
    fn jain_and_percentiles() {
        assert!((jain(&[1.0, 1.0, 1.0]) - 1.0).abs() < 1e-12);
        assert!((jain(&[1.0, 0.0, 0.0, 0.0]) - 0.25).abs() < 1e-12);
        let mut h = Hist::default();
        (1..=100).for_each(|v| h.add(v));
        let w = WaitStats::of(&h);
        assert_eq!((w.p50_ns, w.p99_ns, w.max_ns, w.count), (50, 99, 100, 100));
        assert_eq!(WaitStats::of(&Hist::default()).count, 0);
        assert_eq!(ns(850), "850 ns");
        assert_eq!(ns(4_100_000), "4.10 ms");
    }
}
