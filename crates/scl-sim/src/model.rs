//! The machine and the workload: what is simulated, with defaults and TOML forms.
//!
//! Times are integer nanoseconds of simulated time throughout.

use crate::rng::Rng;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A problem with a machine or workload description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelError(pub String);

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ModelError {}

fn err<T>(msg: impl Into<String>) -> Result<T, ModelError> {
    Err(ModelError(msg.into()))
}

/// The simulated machine: sockets of cores, core speeds and cache-line transfer costs.
///
/// CPU `c` is core `c % cores_per_socket` of socket (and NUMA node) `c / cores_per_socket`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Machine {
    /// Sockets, one NUMA node each.
    pub sockets: u32,
    /// Cores per socket.
    pub cores_per_socket: u32,
    /// Per CPU, how fast it runs relative to a big core (1.0). Critical sections, think
    /// time and hook instructions take `1 / speed` times as long.
    pub speed: Vec<f64>,
    /// Moving the lock's cache line between two CPUs of one socket.
    pub local_handoff_ns: u64,
    /// Moving it between sockets one hop apart (directly linked).
    pub remote_handoff_ns: u64,
    /// Added to a cross-socket transfer for every hop beyond the first.
    pub hop_ns: u64,
    /// Hops between sockets, row-major `sockets x sockets` (0 on the diagonal, at least 1
    /// elsewhere); empty: every socket is linked to every other (one hop).
    pub hops: Vec<u32>,
    /// An atomic on a line the CPU already holds.
    pub same_cpu_ns: u64,
    /// Waking a sleeping mutex or rwsem waiter (added to the hand-off to it).
    pub wakeup_ns: u64,
    /// Cost of one executed BPF instruction of a hook on a big core.
    pub ns_per_insn: f64,
    /// Cost of one helper call of a hook (a map operation, the clock) on a big core.
    pub ns_per_helper: f64,
    /// The shuffler's cost per queue node its walk visits: a cache miss on a line the
    /// waiter spinning on it owns (ShflLock reads the node's socket and next pointer and
    /// may relink it).
    pub queue_node_ns: u64,
}

impl Default for Machine {
    fn default() -> Machine {
        Machine::symmetric(2, 8)
    }
}

impl Machine {
    /// `sockets` x `cores` big cores with the default costs.
    pub fn symmetric(sockets: u32, cores: u32) -> Machine {
        Machine {
            sockets,
            cores_per_socket: cores,
            speed: vec![1.0; (sockets * cores) as usize],
            local_handoff_ns: 40,
            remote_handoff_ns: 200,
            hop_ns: 0,
            hops: Vec::new(),
            same_cpu_ns: 5,
            wakeup_ns: 2_000,
            ns_per_insn: DEFAULT_NS_PER_INSN,
            ns_per_helper: DEFAULT_NS_PER_HELPER,
            queue_node_ns: 100,
        }
    }

    /// The most CPUs a simulated machine may have.
    pub const MAX_CPUS: u32 = 4096;

    /// Checks a machine's size before anything is allocated for it: the product of
    /// sockets and cores must fit the simulator (and a `u32`).
    fn check_size(sockets: u32, cores: u32) -> Result<(), ModelError> {
        if sockets == 0 || cores == 0 {
            return err("a machine needs at least one socket and one core");
        }
        match sockets.checked_mul(cores) {
            Some(n) if n <= Self::MAX_CPUS => Ok(()),
            _ => err(format!(
                "{sockets} sockets of {cores} cores is {} CPUs, more than the simulator's {}",
                u64::from(sockets) * u64::from(cores),
                Self::MAX_CPUS
            )),
        }
    }

    /// `2x8`: sockets x cores per socket.
    pub fn parse_spec(spec: &str) -> Result<Machine, ModelError> {
        let (s, c) = spec
            .split_once(['x', 'X'])
            .ok_or_else(|| ModelError(format!("`{spec}` is not SOCKETSxCORES (like 2x8) or a .toml file")))?;
        let s: u32 = s.trim().parse().map_err(|_| ModelError(format!("`{s}` is not a number of sockets")))?;
        let c: u32 = c.trim().parse().map_err(|_| ModelError(format!("`{c}` is not a number of cores")))?;
        Machine::check_size(s, c)?;
        let m = Machine::symmetric(s, c);
        m.validate()?;
        Ok(m)
    }

    /// Reads a machine from TOML (see `docs/simulator.md`).
    pub fn from_toml(text: &str) -> Result<Machine, ModelError> {
        let t: MachineToml = toml::from_str(text).map_err(|e| ModelError(e.to_string()))?;
        let (sockets, cores) = (t.sockets.unwrap_or(1), t.cores_per_socket.unwrap_or(8));
        Machine::check_size(sockets, cores)?;
        let mut m = Machine::symmetric(sockets, cores);
        let n = m.cpus();
        if let Some(v) = t.local_handoff_ns {
            m.local_handoff_ns = v;
        }
        if let Some(v) = t.remote_handoff_ns {
            m.remote_handoff_ns = v;
        }
        if let Some(v) = t.same_cpu_ns {
            m.same_cpu_ns = v;
        }
        if let Some(v) = t.wakeup_ns {
            m.wakeup_ns = v;
        }
        if let Some(v) = t.ns_per_insn {
            m.ns_per_insn = v;
        }
        if let Some(v) = t.ns_per_helper {
            m.ns_per_helper = v;
        }
        if let Some(v) = t.queue_node_ns {
            m.queue_node_ns = v;
        }
        if let Some(v) = t.hop_ns {
            m.hop_ns = v;
        }
        if let Some(rows) = t.hops {
            if rows.len() != sockets as usize || rows.iter().any(|r| r.len() != sockets as usize) {
                return err(format!("`hops` must be a {sockets} x {sockets} matrix (one row of {sockets} per socket)"));
            }
            m.hops = rows.into_iter().flatten().collect();
        }
        if let Some(speed) = t.speed {
            if speed.len() != n as usize {
                return err(format!("`speed` has {} entries; the machine has {n} CPUs", speed.len()));
            }
            m.speed = speed;
        }
        for c in t.little_cpus.unwrap_or_default() {
            if c >= n {
                return err(format!("little CPU {c} does not exist; the machine has CPUs 0..{}", n - 1));
            }
            m.speed[c as usize] = t.little_speed.unwrap_or(0.5);
        }
        m.validate()?;
        Ok(m)
    }

    /// Marks CPUs `cpus` as little cores running at `speed`.
    pub fn with_little(mut self, cpus: impl IntoIterator<Item = u32>, speed: f64) -> Machine {
        for c in cpus {
            self.speed[c as usize] = speed;
        }
        self
    }

    /// Checks that the description makes sense.
    pub fn validate(&self) -> Result<(), ModelError> {
        Machine::check_size(self.sockets, self.cores_per_socket)?;
        if let Some(s) = self.speed.iter().find(|s| !(s.is_finite() && **s >= 0.01 && **s <= 100.0)) {
            return err(format!("core speed {s} is out of range (0.01..=100; 1 is a big core)"));
        }
        if !self.hops.is_empty() {
            let n = self.sockets as usize;
            if self.hops.len() != n * n {
                return err(format!("`hops` must be a {n} x {n} matrix"));
            }
            for a in 0..n {
                for b in 0..n {
                    let h = self.hops[a * n + b];
                    if (a == b) != (h == 0) || h != self.hops[b * n + a] || h > 16 {
                        return err(format!(
                            "`hops`: socket {a} to {b} is {h} hops; the matrix must be symmetric, 0 on the diagonal and 1..=16 elsewhere"
                        ));
                    }
                }
            }
        }
        if !(self.ns_per_insn.is_finite() && self.ns_per_insn >= 0.0 && self.ns_per_insn <= 1000.0) {
            return err(format!("ns_per_insn {} is out of range (0..=1000)", self.ns_per_insn));
        }
        if !(self.ns_per_helper.is_finite() && self.ns_per_helper >= 0.0 && self.ns_per_helper <= 100_000.0) {
            return err(format!("ns_per_helper {} is out of range (0..=100000)", self.ns_per_helper));
        }
        Ok(())
    }

    /// Number of CPUs.
    pub fn cpus(&self) -> u32 {
        self.sockets * self.cores_per_socket
    }

    /// NUMA node of CPU `cpu`.
    pub fn node(&self, cpu: u32) -> u32 {
        cpu / self.cores_per_socket
    }

    /// Hops between sockets `a` and `b` (0 for the same socket).
    pub fn hops_between(&self, a: u32, b: u32) -> u32 {
        if a == b {
            0
        } else if self.hops.is_empty() {
            1
        } else {
            self.hops[(a * self.sockets + b) as usize]
        }
    }

    /// Cost of moving a cache line last written by `from` to `to`: `same_cpu_ns`,
    /// `local_handoff_ns` within a socket, `remote_handoff_ns` plus `hop_ns` per hop beyond
    /// the first across sockets.
    pub fn transfer_ns(&self, from: Option<u32>, to: u32) -> u64 {
        match from {
            None => self.local_handoff_ns,
            Some(f) if f == to => self.same_cpu_ns,
            Some(f) if self.node(f) == self.node(to) => self.local_handoff_ns,
            Some(f) => {
                let hops = self.hops_between(self.node(f), self.node(to));
                self.remote_handoff_ns + u64::from(hops.saturating_sub(1)) * self.hop_ns
            }
        }
    }

    /// `ns` of work on a big core, on CPU `cpu`.
    pub fn scaled(&self, cpu: u32, ns: f64) -> u64 {
        (ns / self.speed[cpu as usize]).round() as u64
    }

    /// One-line description: `2x8, 40/200 ns local/remote hand-off`.
    pub fn describe(&self) -> String {
        let little = self.speed.iter().filter(|s| **s < 1.0).count();
        let mut s = format!(
            "{}x{} ({} CPUs), hand-off {} ns local / {} ns remote, wake-up {} ns, {} ns per BPF insn + {} ns per helper call, {} ns per queue node walked",
            self.sockets,
            self.cores_per_socket,
            self.cpus(),
            self.local_handoff_ns,
            self.remote_handoff_ns,
            self.wakeup_ns,
            self.ns_per_insn,
            self.ns_per_helper,
            self.queue_node_ns
        );
        if self.hop_ns > 0 && !self.hops.is_empty() {
            let far = self.hops.iter().max().copied().unwrap_or(1);
            s.push_str(&format!(", +{} ns per hop beyond the first (at most {far} hops)", self.hop_ns));
        }
        if little > 0 {
            s.push_str(&format!(", {little} little cores"));
        }
        s
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MachineToml {
    sockets: Option<u32>,
    cores_per_socket: Option<u32>,
    local_handoff_ns: Option<u64>,
    remote_handoff_ns: Option<u64>,
    same_cpu_ns: Option<u64>,
    wakeup_ns: Option<u64>,
    ns_per_insn: Option<f64>,
    ns_per_helper: Option<f64>,
    queue_node_ns: Option<u64>,
    hop_ns: Option<u64>,
    hops: Option<Vec<Vec<u32>>>,
    speed: Option<Vec<f64>>,
    little_cpus: Option<Vec<u32>>,
    little_speed: Option<f64>,
}

/// The kind of lock the workload contends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LockKind {
    /// A queued spinlock (qspinlock) with ShflLock-style shuffling: waiters spin.
    Spinlock,
    /// A blocking mutex: the same queue, but waiters sleep and are woken at hand-off.
    Mutex,
    /// A reader-writer semaphore with the policy's bypass path for readers.
    Rwsem,
}

impl LockKind {
    /// The `kind` field of the context (docs/abi.md).
    pub fn abi(self) -> u32 {
        match self {
            LockKind::Spinlock => 0,
            LockKind::Mutex => 1,
            LockKind::Rwsem => 2,
        }
    }

    /// Its SCL name.
    pub fn name(self) -> &'static str {
        match self {
            LockKind::Spinlock => "spinlock",
            LockKind::Mutex => "mutex",
            LockKind::Rwsem => "rwsem",
        }
    }
}

/// A distribution of durations in ns. TOML: `{ fixed = 1000 }`, `{ uniform = [500, 1500] }`,
/// `{ exponential = 2000 }` (the mean), `{ empirical = [[800, 3], [1200, 1]] }` (samples
/// with their counts: `sclc sim --replay` fits these from a recorded trace).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dist {
    /// Always this many ns.
    Fixed(u64),
    /// Uniform in [min, max] ns.
    Uniform(u64, u64),
    /// Exponential with this mean in ns (capped at 20 times the mean).
    Exponential(u64),
    /// Drawn from recorded samples, each as often as its count says.
    Empirical(Empirical),
}

/// Samples of a duration with their counts, sorted by value: a draw picks one of the
/// `total()` samples uniformly. At most [`Empirical::MAX_VALUES`] distinct values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Vec<(u64, u64)>", into = "Vec<(u64, u64)>")]
pub struct Empirical {
    values: Vec<u64>,
    /// `cum[i]`: the counts of `values[..=i]`.
    cum: Vec<u64>,
}

impl Empirical {
    /// The most distinct values a distribution may hold (the fit keeps values to within
    /// 1/256, which needs fewer than this for any duration up to 10 s).
    pub const MAX_VALUES: usize = 1 << 16;

    /// From (value, count) pairs in any order; repeated values add up, zero counts are
    /// dropped. Refuses an empty set, more than [`Empirical::MAX_VALUES`] values, and counts
    /// whose sum overflows.
    pub fn new(samples: impl IntoIterator<Item = (u64, u64)>) -> Result<Empirical, ModelError> {
        let too_many = || format!("an empirical distribution may hold at most {} distinct values", Self::MAX_VALUES);
        let mut v: Vec<(u64, u64)> = Vec::new();
        for (value, count) in samples {
            if count == 0 {
                continue;
            }
            if v.len() >= 4 * Self::MAX_VALUES {
                return err(too_many());
            }
            v.push((value, count));
        }
        v.sort_unstable();
        let (mut values, mut cum) = (Vec::new(), Vec::new());
        let mut total = 0u64;
        for (value, count) in v {
            total = total.checked_add(count).ok_or_else(|| ModelError("empirical sample counts overflow".into()))?;
            if values.last() == Some(&value) {
                *cum.last_mut().expect("pushed with values") = total;
            } else {
                values.push(value);
                cum.push(total);
            }
        }
        if values.is_empty() {
            return err("an empirical distribution needs at least one sample");
        }
        if values.len() > Self::MAX_VALUES {
            return err(too_many());
        }
        Ok(Empirical { values, cum })
    }

    /// The number of samples (the sum of the counts).
    pub fn total(&self) -> u64 {
        self.cum.last().copied().unwrap_or(0)
    }

    /// (value, count) pairs, by value.
    pub fn samples(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.values.iter().zip(&self.cum).scan(0u64, |prev, (v, c)| {
            let n = c - *prev;
            *prev = *c;
            Some((*v, n))
        })
    }

    /// The nearest-rank `p` quantile.
    pub fn quantile(&self, p: f64) -> u64 {
        let rank = ((p * self.total() as f64).ceil() as u64).clamp(1, self.total());
        self.values[self.cum.partition_point(|&c| c < rank)]
    }

    fn draw(&self, rng: &mut Rng) -> u64 {
        let r = rng.below(self.total());
        self.values[self.cum.partition_point(|&c| c <= r)]
    }

    fn mean(&self) -> f64 {
        self.samples().map(|(v, n)| v as f64 * n as f64).sum::<f64>() / self.total() as f64
    }
}

impl TryFrom<Vec<(u64, u64)>> for Empirical {
    type Error = ModelError;
    fn try_from(v: Vec<(u64, u64)>) -> Result<Empirical, ModelError> {
        Empirical::new(v)
    }
}

impl From<Empirical> for Vec<(u64, u64)> {
    fn from(e: Empirical) -> Vec<(u64, u64)> {
        e.samples().collect()
    }
}

impl Dist {
    /// One draw.
    pub fn sample(&self, rng: &mut Rng) -> f64 {
        match self {
            Dist::Fixed(v) => *v as f64,
            Dist::Uniform(a, b) => *a as f64 + rng.below(b - a + 1) as f64,
            Dist::Exponential(mean) => (-(*mean as f64) * (1.0 - rng.unit()).ln()).min(20.0 * *mean as f64),
            Dist::Empirical(e) => e.draw(rng) as f64,
        }
    }

    /// The largest value a draw can take.
    pub fn max(&self) -> u64 {
        match self {
            Dist::Fixed(v) => *v,
            Dist::Uniform(_, b) => *b,
            Dist::Exponential(mean) => mean.saturating_mul(20),
            Dist::Empirical(e) => e.values.last().copied().unwrap_or(0),
        }
    }

    /// The mean.
    pub fn mean(&self) -> f64 {
        match self {
            Dist::Fixed(v) => *v as f64,
            Dist::Uniform(a, b) => (a + b) as f64 / 2.0,
            Dist::Exponential(m) => *m as f64,
            Dist::Empirical(e) => e.mean(),
        }
    }

    /// Every value times `f` (rounded; `f` >= 0).
    pub fn scaled(&self, f: f64) -> Dist {
        let x = |v: u64| (v as f64 * f).round() as u64;
        match self {
            Dist::Fixed(v) => Dist::Fixed(x(*v)),
            Dist::Uniform(a, b) => Dist::Uniform(x(*a), x(*b)),
            Dist::Exponential(m) => Dist::Exponential(x(*m)),
            Dist::Empirical(e) => {
                Dist::Empirical(Empirical::new(e.samples().map(|(v, n)| (x(v), n))).expect("scaling keeps the samples"))
            }
        }
    }

    fn validate(&self, what: &str) -> Result<(), ModelError> {
        match self {
            Dist::Uniform(a, b) if a > b => err(format!("{what}: uniform range [{a}, {b}] is empty")),
            d if d.max() > 10_000_000_000 => err(format!("{what}: durations above 10 s are not simulated")),
            _ => Ok(()),
        }
    }
}

impl fmt::Display for Dist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dist::Fixed(v) => write!(f, "{v} ns"),
            Dist::Uniform(a, b) => write!(f, "uniform {a}..{b} ns"),
            Dist::Exponential(m) => write!(f, "exponential, mean {m} ns"),
            Dist::Empirical(e) => write!(
                f,
                "empirical ({} samples, median {} ns, p90 {} ns, mean {:.0} ns)",
                e.total(),
                e.quantile(0.5),
                e.quantile(0.9),
                e.mean()
            ),
        }
    }
}

/// One thread of the workload.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ThreadSpec {
    /// The CPU it is pinned to.
    pub cpu: u32,
    /// Critical-section length (on a big core) of exclusive holds and rwsem writes.
    pub cs: Dist,
    /// Critical-section length of rwsem reads.
    pub read_cs: Dist,
    /// Time between releasing the lock and the next acquisition attempt.
    pub think: Dist,
    /// Cache lines of the data the lock protects that an exclusive holder (or rwsem writer)
    /// writes in its critical section: each is a transfer from the CPU of the previous such
    /// holder (`Machine::transfer_ns`), added to the critical section. What NUMA grouping
    /// saves beyond the lock word.
    pub cs_lines: u32,
    /// Cache lines every critical section writes, rwsem readers (bypassing or not)
    /// included: shared state beside the lock (page_fault1's page allocator and LRU lists).
    /// Each holder's writes queue behind the previous ones on these lines and move them to
    /// its CPU; readers cannot run these writes in parallel.
    pub shared_lines: u32,
    /// Share of rwsem acquisitions that are reads (0..=1).
    pub read_ratio: f64,
    /// Scheduling priority, as the waiter's `prio` field (kernel `prio`: 120 is nice 0).
    pub prio: u32,
    /// Named latency-critical: written into the policy's `latency_critical` map, and its
    /// waits are reported separately.
    pub latency_critical: bool,
}

/// The workload: one lock, threads pinned to CPUs that take it in a loop.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Workload {
    /// The lock kind.
    pub lock: LockKind,
    /// The threads; thread `i` has tid `FIRST_TID + i`.
    pub threads: Vec<ThreadSpec>,
    /// The reorder bound: a waiter is overtaken by at most this many shuffled waiters.
    pub max_overtake: u32,
    /// The batch bound (ShflLock's): a shuffler and the waiters it hands its role down to
    /// group at most this many waiters in a row before the queue runs in its order again.
    pub shuffle_batch: u32,
    /// Which implementation of the blocking locks runs: the kernel module's governed ones
    /// (the default) or Linux 6.x's stock mutex and rwsem.
    pub locks: LockImpl,
    /// [`LockImpl::Linux`]: how long a mutex waiter spins before it sleeps; `None`: for as
    /// long as the owner runs (always, with one thread per CPU and no preemption).
    pub mutex_spin_ns: Option<u64>,
}

/// The implementation of the mutex and the rwsem (the spinlock is the same in both).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LockImpl {
    /// `kernel/mutex.c` and `kernel/rwsem.c`: waiters queue and sleep, and every contended
    /// release hands the lock to the queue head (after its shuffle round).
    Module,
    /// Linux 6.x's stock locks: mutex waiters spin while the owner runs (up to
    /// `mutex_spin_ns`) and take the lock ahead of sleeping waiters (stealing), unless the
    /// first sleeper, woken and beaten to the lock once, set the hand-off flag; the rwsem
    /// lets readers steal a lock nobody holds, wakes every queued reader (up to 256) when
    /// readers are handed the lock, and a writer that has waited 4 ms sets the hand-off
    /// bit. The reorder hooks are not called (the stock kernel has none); the others run.
    Linux,
}

/// Thread ids start here (tid = FIRST_TID + thread index); all threads share one tgid.
pub const FIRST_TID: u32 = 1000;
/// The simulated process's tgid.
pub const TGID: u32 = 1000;
/// The simulated lock's address.
pub const LOCK_ADDR: u64 = 0xffff_8880_1234_5640;
/// Default reorder bound ([`Workload::max_overtake`]).
pub const DEFAULT_MAX_OVERTAKE: u32 = 64;
/// Default batch bound ([`Workload::shuffle_batch`]).
pub const DEFAULT_SHUFFLE_BATCH: u32 = 128;
/// Default hook cost per executed instruction on a big core, and per helper call: a
/// least-squares fit of the kernel bench's ns per call of its 19 hooks
/// (`docs/performance.md`) against their xlated instructions and their helper calls: 69 ns,
/// plus 0.26 ns per instruction, plus 19 ns per helper call. `docs/simulator.md` has the fit
/// and says why the intercept is not charged.
pub const DEFAULT_NS_PER_INSN: f64 = 0.26;
/// See [`DEFAULT_NS_PER_INSN`].
pub const DEFAULT_NS_PER_HELPER: f64 = 19.0;

/// How threads are placed on CPUs when the workload does not say.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Placement {
    /// Thread i on socket i % sockets (round-robin over sockets).
    Spread,
    /// Thread i on CPU i.
    Packed,
}

impl Placement {
    fn cpu(self, m: &Machine, i: u32) -> u32 {
        match self {
            Placement::Packed => i,
            Placement::Spread => (i % m.sockets) * m.cores_per_socket + i / m.sockets,
        }
    }
}

/// The defaults that `Workload::uniform` and the TOML form start from.
#[derive(Clone, Debug)]
pub struct WorkloadDefaults {
    /// Lock kind.
    pub lock: LockKind,
    /// Critical section.
    pub cs: Dist,
    /// Read critical section.
    pub read_cs: Dist,
    /// Think time.
    pub think: Dist,
    /// Read share.
    pub read_ratio: f64,
    /// Protected data lines written per exclusive critical section ([`ThreadSpec::cs_lines`]).
    pub cs_lines: u32,
    /// Shared lines written by every critical section ([`ThreadSpec::shared_lines`]).
    pub shared_lines: u32,
}

impl Default for WorkloadDefaults {
    fn default() -> WorkloadDefaults {
        WorkloadDefaults {
            lock: LockKind::Spinlock,
            cs: Dist::Uniform(500, 1_500),
            read_cs: Dist::Uniform(500, 1_500),
            think: Dist::Exponential(2_000),
            read_ratio: 0.9,
            cs_lines: 0,
            shared_lines: 0,
        }
    }
}

impl Workload {
    /// `threads` identical threads spread over the sockets of `m`.
    pub fn uniform(m: &Machine, threads: u32, d: &WorkloadDefaults) -> Result<Workload, ModelError> {
        if threads > m.cpus() {
            return err(format!(
                "{threads} threads on {} CPUs: the simulator pins one thread per CPU (time-sharing is not modelled)",
                m.cpus()
            ));
        }
        let threads = (0..threads)
            .map(|i| ThreadSpec {
                cpu: Placement::Spread.cpu(m, i),
                cs: d.cs.clone(),
                read_cs: d.read_cs.clone(),
                think: d.think.clone(),
                cs_lines: d.cs_lines,
                shared_lines: d.shared_lines,
                read_ratio: if d.lock == LockKind::Rwsem { d.read_ratio } else { 0.0 },
                prio: 120,
                latency_critical: false,
            })
            .collect();
        Ok(Workload {
            lock: d.lock,
            threads,
            max_overtake: DEFAULT_MAX_OVERTAKE,
            shuffle_batch: DEFAULT_SHUFFLE_BATCH,
            locks: LockImpl::Module,
            mutex_spin_ns: None,
        })
    }

    /// Reads a workload from TOML for machine `m`. `threads` overrides its thread count and
    /// `lock` its lock kind; `lock_default` is the kind when neither it nor `lock` names one.
    pub fn from_toml(
        text: &str,
        m: &Machine,
        threads: Option<u32>,
        lock_default: LockKind,
        lock: Option<LockKind>,
    ) -> Result<Workload, ModelError> {
        let t: WorkloadToml = toml::from_str(text).map_err(|e| ModelError(e.to_string()))?;
        let base = WorkloadDefaults::default();
        let lock = lock.or(t.lock).unwrap_or(lock_default);
        let cs = t.cs.unwrap_or(base.cs);
        let d = WorkloadDefaults {
            lock,
            read_cs: t.read_cs.unwrap_or_else(|| cs.clone()),
            cs,
            think: t.think.unwrap_or(base.think),
            read_ratio: t.read_ratio.unwrap_or(base.read_ratio),
            cs_lines: t.cs_lines.unwrap_or(0),
            shared_lines: t.shared_lines.unwrap_or(0),
        };
        let n = threads.or(t.threads).unwrap_or(m.cpus());
        let mut w = Workload::uniform(m, n, &d)?;
        let placement = t.placement.unwrap_or(Placement::Spread);
        for (i, th) in w.threads.iter_mut().enumerate() {
            th.cpu = placement.cpu(m, i as u32);
            if let Some(p) = t.prio {
                th.prio = p;
            }
        }
        if let Some(b) = t.max_overtake {
            w.max_overtake = b;
        }
        if let Some(b) = t.shuffle_batch {
            w.shuffle_batch = b;
        }
        if let Some(l) = t.locks {
            w.locks = l;
        }
        w.mutex_spin_ns = t.mutex_spin_ns;
        for i in t.latency_critical.unwrap_or_default() {
            let th = w
                .threads
                .get_mut(i as usize)
                .ok_or_else(|| ModelError(format!("latency_critical: there is no thread {i} (threads 0..{})", n.max(1) - 1)))?;
            th.latency_critical = true;
        }
        for o in t.thread.unwrap_or_default() {
            let th = w
                .threads
                .get_mut(o.index as usize)
                .ok_or_else(|| ModelError(format!("[[thread]] index {}: there are {n} threads", o.index)))?;
            if let Some(v) = o.cpu {
                th.cpu = v;
            }
            if let Some(v) = o.cs {
                th.cs = v;
            }
            if let Some(v) = o.read_cs {
                th.read_cs = v;
            }
            if let Some(v) = o.think {
                th.think = v;
            }
            if let Some(v) = o.read_ratio {
                th.read_ratio = v;
            }
            if let Some(v) = o.cs_lines {
                th.cs_lines = v;
            }
            if let Some(v) = o.shared_lines {
                th.shared_lines = v;
            }
            if let Some(v) = o.prio {
                th.prio = v;
            }
            if let Some(v) = o.latency_critical {
                th.latency_critical = v;
            }
        }
        w.validate(m)?;
        Ok(w)
    }

    /// Checks the workload against the machine.
    pub fn validate(&self, m: &Machine) -> Result<(), ModelError> {
        if self.threads.is_empty() {
            return err("the workload has no threads");
        }
        let mut used = vec![false; m.cpus() as usize];
        for (i, t) in self.threads.iter().enumerate() {
            if t.cpu >= m.cpus() {
                return err(format!("thread {i} is pinned to CPU {}, which does not exist ({} CPUs)", t.cpu, m.cpus()));
            }
            if std::mem::replace(&mut used[t.cpu as usize], true) {
                return err(format!(
                    "thread {i} shares CPU {} with another thread: the simulator pins one thread per CPU",
                    t.cpu
                ));
            }
            if !(0.0..=1.0).contains(&t.read_ratio) {
                return err(format!("thread {i}: read_ratio {} is not in 0..=1", t.read_ratio));
            }
            t.cs.validate(&format!("thread {i} cs"))?;
            t.read_cs.validate(&format!("thread {i} read_cs"))?;
            t.think.validate(&format!("thread {i} think"))?;
            if t.cs_lines > 10_000 || t.shared_lines > 10_000 {
                return err(format!("thread {i}: more than 10,000 cache lines per critical section are not simulated"));
            }
        }
        Ok(())
    }

    /// One-line description.
    pub fn describe(&self) -> String {
        let t = &self.threads[0];
        let mut s = format!("{} threads on a {}, cs {}, think {}", self.threads.len(), self.lock.name(), t.cs, t.think);
        if self.lock == LockKind::Rwsem {
            let pct = format!("{:.4}", t.read_ratio * 100.0);
            let pct = pct.trim_end_matches('0').trim_end_matches('.');
            s.push_str(&format!(", {pct}% reads (read cs {})", t.read_cs));
        }
        if t.cs_lines > 0 || t.shared_lines > 0 {
            s.push_str(&format!(", {} data + {} shared lines", t.cs_lines, t.shared_lines));
        }
        if self.locks == LockImpl::Linux && self.lock != LockKind::Spinlock {
            s.push_str(", Linux 6.x's stock lock");
        }
        let lc = self.threads.iter().filter(|t| t.latency_critical).count();
        if lc > 0 {
            s.push_str(&format!(", {lc} latency-critical"));
        }
        s
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkloadToml {
    lock: Option<LockKind>,
    threads: Option<u32>,
    placement: Option<Placement>,
    cs: Option<Dist>,
    read_cs: Option<Dist>,
    think: Option<Dist>,
    read_ratio: Option<f64>,
    cs_lines: Option<u32>,
    shared_lines: Option<u32>,
    prio: Option<u32>,
    latency_critical: Option<Vec<u32>>,
    max_overtake: Option<u32>,
    shuffle_batch: Option<u32>,
    locks: Option<LockImpl>,
    mutex_spin_ns: Option<u64>,
    thread: Option<Vec<ThreadToml>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ThreadToml {
    index: u32,
    cpu: Option<u32>,
    cs: Option<Dist>,
    read_cs: Option<Dist>,
    think: Option<Dist>,
    read_ratio: Option<f64>,
    cs_lines: Option<u32>,
    shared_lines: Option<u32>,
    prio: Option<u32>,
    latency_critical: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_spec_and_toml() {
        let m = Machine::parse_spec("2x8").unwrap();
        assert_eq!((m.cpus(), m.node(9), m.node(7)), (16, 1, 0));
        assert!(Machine::parse_spec("2y8").is_err());
        let m = Machine::from_toml("sockets = 1\ncores_per_socket = 8\nlittle_cpus = [4, 5, 6, 7]\nlittle_speed = 0.25\nremote_handoff_ns = 900").unwrap();
        assert_eq!(m.speed, vec![1.0, 1.0, 1.0, 1.0, 0.25, 0.25, 0.25, 0.25]);
        assert_eq!(m.remote_handoff_ns, 900);
        assert!(Machine::from_toml("sockets = 1\nbogus = 3").is_err());
        assert!(Machine::from_toml("little_cpus = [8]").is_err());
    }

    #[test]
    fn workload_toml() {
        let m = Machine::symmetric(2, 4);
        let w = Workload::from_toml(
            "lock = \"rwsem\"\nthreads = 4\ncs = { uniform = [100, 200] }\nthink = { exponential = 500 }\n\
             read_ratio = 0.5\nlatency_critical = [1]\n[[thread]]\nindex = 3\ncs = { fixed = 9000 }\nprio = 100\n",
            &m,
            None,
            LockKind::Spinlock,
            None,
        )
        .unwrap();
        assert_eq!(w.lock, LockKind::Rwsem);
        assert_eq!(w.threads.len(), 4);
        assert_eq!(w.threads.iter().map(|t| t.cpu).collect::<Vec<_>>(), vec![0, 4, 1, 5]);
        assert_eq!(w.threads[3].cs, Dist::Fixed(9000));
        assert_eq!(w.threads[3].prio, 100);
        assert!(w.threads[1].latency_critical);
        assert_eq!(w.threads[0].read_cs, Dist::Uniform(100, 200));
        assert!(Workload::from_toml("threads = 9", &m, None, LockKind::Spinlock, None).is_err());
        assert!(Workload::from_toml("[[thread]]\nindex = 0\ncpu = 4\n", &m, Some(2), LockKind::Spinlock, None).is_err());
        assert!(Workload::from_toml("cs = { uniform = [5, 1] }", &m, None, LockKind::Spinlock, None).is_err());
        assert_eq!(Workload::from_toml("", &m, Some(3), LockKind::Mutex, None).unwrap().threads.len(), 3);
    }

    #[test]
    fn empirical_distribution() {
        let e = Empirical::new([(300, 1), (100, 2), (300, 1), (200, 0)]).unwrap();
        assert_eq!(e.samples().collect::<Vec<_>>(), vec![(100, 2), (300, 2)]);
        assert_eq!((e.total(), e.quantile(0.5), e.quantile(0.51), e.quantile(1.0)), (4, 100, 300, 300));
        let d = Dist::Empirical(e);
        assert_eq!((d.max(), d.mean()), (300, 200.0));
        // Draws follow the counts.
        let mut rng = Rng::new(5);
        let low = (0..10_000).filter(|_| d.sample(&mut rng) == 100.0).count();
        assert!((4_500..5_500).contains(&low), "{low}");
        assert!(Empirical::new([]).is_err());
        assert!(Empirical::new([(1, 0)]).is_err());
        assert!(Empirical::new([(1, u64::MAX), (2, 1)]).is_err());
        // TOML, and its checks.
        let m = Machine::symmetric(1, 2);
        let w = Workload::from_toml("cs = { empirical = [[1000, 3], [2000, 1]] }", &m, None, LockKind::Spinlock, None).unwrap();
        assert_eq!(w.threads[0].cs.max(), 2000);
        assert!(Workload::from_toml("cs = { empirical = [] }", &m, None, LockKind::Spinlock, None).is_err());
        assert!(Workload::from_toml("cs = { empirical = [[20000000000, 1]] }", &m, None, LockKind::Spinlock, None).is_err());
    }
}
