//! The discrete-event engine: threads, the lock models, hooks fired at their moments.
//!
//! One lock, one thread per CPU. Each thread loops: think, acquire, hold, release. Each step
//! that runs a hook is an event at a simulated time; the hook's cost (executed instructions
//! times `ns_per_insn`, scaled by the core's speed, plus any `wait_until`) delays the
//! thread's next step. Events are ordered by (time, sequence number), so runs are
//! deterministic. The lock models are described in `docs/simulator.md`.

use crate::metrics::{self, Collect, Metrics};
use crate::model::{LockImpl, LockKind, Machine, Workload, FIRST_TID, LOCK_ADDR, TGID};
use crate::policy::{abi, Hook, HookEnv, Policy};
use crate::rng::Rng;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;

/// Linux's `RWSEM_WAIT_TIMEOUT` (4 ms at HZ=1000): how long a queued rwsem writer waits
/// before it sets the hand-off bit.
const RWSEM_WAIT_TIMEOUT_NS: u64 = 4_000_000;

/// What to simulate.
#[derive(Clone, Debug)]
pub struct Config {
    /// The machine.
    pub machine: Machine,
    /// The workload.
    pub workload: Workload,
    /// Simulated duration, ns.
    pub duration_ns: u64,
    /// The seed of every random draw.
    pub seed: u64,
}

/// Why a run stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimError {
    /// The machine or workload is inconsistent.
    Model(String),
    /// A hook failed in the VM.
    Hook {
        /// The hook.
        hook: &'static str,
        /// The VM's message.
        message: String,
    },
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimError::Model(m) => f.write_str(m),
            SimError::Hook { hook, message } => write!(f, "hook `{hook}` failed: {message}"),
        }
    }
}

impl std::error::Error for SimError {}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    Begin,
    Fast,
    FastTry(bool),
    Enqueue,
    Acquired,
    Release,
    Unlock,
    /// One step of the shuffler's walk; stale when its generation is not the lock's.
    Walk(u64),
    /// Linux mutex: a spinner's budget ran out (stale unless its spin token matches).
    SpinEnd(u64),
    /// Linux mutex: the first sleeping waiter is awake after a release woke it.
    Woken,
}

/// A lock event of a run, as a kernel would trace it (`simulate_traced`): what `sclc record`
/// would see on the stock tracepoints (`ContentionBegin`/`ContentionEnd`, contended
/// acquisitions only) and on the module's hooks (the others, every acquisition).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SimEvent {
    /// Simulated time, ns.
    pub ts: u64,
    /// What happened.
    pub kind: SimEventKind,
    /// The thread's index in the workload.
    pub thread: usize,
    /// Its CPU.
    pub cpu: u32,
    /// An rwsem read.
    pub read: bool,
}

/// The kinds of [`SimEvent`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimEventKind {
    /// The attempt begins (`to_acquire`).
    ToAcquire,
    /// The fast path failed (`lock:contention_begin`).
    ContentionBegin,
    /// A contended acquisition completed (`lock:contention_end`, ret 0).
    ContentionEnd,
    /// The thread holds the lock (`acquired`).
    Acquired,
    /// It is about to release (`to_release`).
    ToRelease,
    /// It released (`released`).
    Released,
}

/// How a thread takes the lock this time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Exclusive,
    Read,
    Write,
}

pub(crate) struct Thread {
    pub(crate) cpu: u32,
    pub(crate) node: u32,
    pub(crate) tid: u32,
    rng: Rng,
    pub(crate) role: Role,
    begin: u64,
    granted: u64,
    pub(crate) bypass: bool,
    pub(crate) waiting: bool,
    ready_at: u64,
    overtaken: u32,
    wait_start: u64,
    /// Its place in a shuffled batch (ShflLock's `batch`): 0 unless a shuffler grouped it.
    batch: u32,
    /// Linux mutex: counts the thread's optimistic spins, so a stale `SpinEnd` is ignored.
    spin_token: u64,
    /// When this acquisition left the fast path (where a stock kernel fires
    /// `lock:contention_begin`); `None` for an uncontended one.
    contended_at: Option<u64>,
}

/// The shuffler role (ShflLock): who holds it, the end of the group it has built right
/// behind itself, the last waiter its walk visited, and the batch count so far.
struct Shuffler {
    who: usize,
    last: usize,
    cursor: usize,
    batch: u32,
    /// The walk reached the tail: the next waiter to queue resumes it.
    idle: bool,
}

struct Lock {
    /// Exclusive holder (spinlock, mutex) or writer (rwsem).
    holder: Option<usize>,
    /// rwsem readers that took the shared count.
    readers: u32,
    /// rwsem readers inside through the policy's bypass.
    bypassers: u32,
    queue: VecDeque<usize>,
    /// CPU that last wrote the lock word's cache line, and until when it is busy.
    line_cpu: Option<u32>,
    line_busy: u64,
    /// CPU of the last exclusive holder (or writer): where the protected data lines are.
    data_cpu: Option<u32>,
    /// The shared lines every critical section writes: where they are and until when busy.
    shared_cpu: Option<u32>,
    shared_busy: u64,
    prev_node: Option<u32>,
    /// (CPU, node) of the last exclusive holder or writer, for the storm's hand-offs.
    prev_excl: Option<(u32, u32)>,
    /// The shuffler role, when a waiter holds it.
    shuffler: Option<Shuffler>,
    /// The queue head that has had its round (a head starts at most one).
    tried_head: Option<usize>,
    /// Generation of the walk: a `Walk` event of another generation is stale.
    walk_gen: u64,
    /// Linux mutex: optimistic spinners, in their OSQ (MCS) order, ahead of the sleepers.
    spinners: VecDeque<usize>,
    /// Linux mutex: `MUTEX_FLAG_HANDOFF`, set by a woken first waiter that found the lock
    /// taken: the next release hands the lock to it.
    handoff: bool,
    /// Linux mutex: a wake-up of the first sleeper is in flight.
    waking: bool,
}

struct Engine<'a> {
    m: &'a Machine,
    w: &'a Workload,
    duration: u64,
    policy: &'a mut dyn Policy,
    has: [bool; Hook::ALL.len()],
    events: BinaryHeap<Reverse<(u64, u64, usize, Ev)>>,
    seq: u64,
    now: u64,
    th: Vec<Thread>,
    lock: Lock,
    hook_rng: Rng,
    c: Collect,
    sink: Option<&'a mut dyn FnMut(SimEvent)>,
}

/// Runs one simulation of `cfg` with `policy`. `progress` is called now and then with
/// The longest run simulated: an hour of simulated time (in the order of an hour of wall
/// time on one core for a busy 16-CPU machine). Memory does not grow with the duration (the
/// metrics stream); this bounds the time.
pub const MAX_DURATION_NS: u64 = 3600 * 1_000_000_000;

/// (simulated time, duration).
pub fn simulate(cfg: &Config, policy: &mut dyn Policy, progress: Option<&mut dyn FnMut(u64, u64)>) -> Result<Metrics, SimError> {
    run(cfg, policy, progress, None)
}

/// [`simulate`], handing every lock event to `sink` as it happens (in time order): the
/// trace a kernel would give of the run, for testing what is fitted from traces.
pub fn simulate_traced(cfg: &Config, policy: &mut dyn Policy, sink: &mut dyn FnMut(SimEvent)) -> Result<Metrics, SimError> {
    run(cfg, policy, None, Some(sink))
}

fn run<'a>(
    cfg: &'a Config,
    policy: &'a mut dyn Policy,
    mut progress: Option<&mut dyn FnMut(u64, u64)>,
    sink: Option<&'a mut dyn FnMut(SimEvent)>,
) -> Result<Metrics, SimError> {
    if cfg.duration_ns > MAX_DURATION_NS {
        return Err(SimError::Model(format!(
            "{} s of simulated time is more than the simulator's {} s",
            cfg.duration_ns / 1_000_000_000,
            MAX_DURATION_NS / 1_000_000_000
        )));
    }
    cfg.machine.validate().map_err(|e| SimError::Model(e.0))?;
    cfg.workload.validate(&cfg.machine).map_err(|e| SimError::Model(e.0))?;
    let mut has = [false; Hook::ALL.len()];
    for (i, h) in Hook::ALL.iter().enumerate() {
        has[i] = policy.has(*h);
    }
    let mut notes = Vec::new();
    let lc: Vec<u32> =
        cfg.workload.threads.iter().enumerate().filter(|(_, t)| t.latency_critical).map(|(i, _)| FIRST_TID + i as u32).collect();
    let mut marked = false;
    for &tid in &lc {
        marked = policy
            .mark_latency_critical(tid)
            .map_err(|message| SimError::Hook { hook: "latency_critical (map update)", message })?;
    }
    if !lc.is_empty() && !marked && has.iter().any(|h| *h) {
        notes.push(format!("{}: no `latency_critical` map; the marked threads are only reported separately", policy.name()));
    }
    let th = cfg
        .workload
        .threads
        .iter()
        .enumerate()
        .map(|(i, t)| Thread {
            cpu: t.cpu,
            node: cfg.machine.node(t.cpu),
            tid: FIRST_TID + i as u32,
            rng: Rng::stream(cfg.seed, i as u64 + 1),
            role: Role::Exclusive,
            begin: 0,
            granted: 0,
            bypass: false,
            waiting: false,
            ready_at: 0,
            overtaken: 0,
            wait_start: 0,
            batch: 0,
            spin_token: 0,
            contended_at: None,
        })
        .collect::<Vec<_>>();
    let n = th.len();
    let mut e = Engine {
        m: &cfg.machine,
        w: &cfg.workload,
        duration: cfg.duration_ns,
        policy,
        has,
        events: BinaryHeap::new(),
        seq: 0,
        now: 0,
        th,
        lock: Lock {
            holder: None,
            readers: 0,
            bypassers: 0,
            queue: VecDeque::new(),
            line_cpu: None,
            line_busy: 0,
            data_cpu: None,
            shared_cpu: None,
            shared_busy: 0,
            prev_node: None,
            prev_excl: None,
            shuffler: None,
            tried_head: None,
            walk_gen: 0,
            spinners: VecDeque::new(),
            handoff: false,
            waking: false,
        },
        hook_rng: Rng::stream(cfg.seed, 0),
        c: Collect::new(cfg.workload.threads.iter().map(|t| t.latency_critical).collect()),
        sink,
    };
    e.c.notes = notes;
    // Threads start at staggered times within the first mean think time.
    for t in 0..n {
        let spec = &cfg.workload.threads[t];
        let start = e.th[t].rng.below(spec.think.mean() as u64 + 1);
        e.schedule(start, t, Ev::Begin);
    }
    let mut count = 0u64;
    while let Some(Reverse((time, _, t, ev))) = e.events.pop() {
        if time >= e.duration {
            break;
        }
        e.now = time;
        e.step(t, ev)?;
        count += 1;
        if count & 8191 == 0 {
            if let Some(p) = progress.as_mut() {
                p(time, e.duration);
            }
        }
    }
    if let Some(p) = progress.as_mut() {
        p(e.duration, e.duration);
    }
    for t in &e.th {
        if t.waiting {
            e.c.in_flight_max = e.c.in_flight_max.max(e.duration.saturating_sub(t.begin));
        }
    }
    let name = e.policy.name().to_string();
    Ok(metrics::finish(e.c, &name, cfg, &e.th))
}

impl Engine<'_> {
    fn schedule(&mut self, at: u64, t: usize, ev: Ev) {
        self.seq += 1;
        self.events.push(Reverse((at, self.seq, t, ev)));
    }

    fn emit(&mut self, at: u64, kind: SimEventKind, t: usize) {
        if let Some(sink) = self.sink.as_mut() {
            let th = &self.th[t];
            sink(SimEvent { ts: at, kind, thread: t, cpu: th.cpu, read: th.role == Role::Read });
        }
    }

    fn has(&self, h: Hook) -> bool {
        self.has[h as usize]
    }

    fn ctx(&self, t: usize) -> [u8; 128] {
        let th = &self.th[t];
        let mut c = [0u8; 128];
        abi::put_u64(&mut c, abi::LOCK, LOCK_ADDR);
        abi::put_u32(&mut c, abi::KIND, self.w.lock.abi());
        let flags = match th.role {
            Role::Exclusive => 0,
            Role::Read => abi::F_READER,
            Role::Write => abi::F_WRITER,
        };
        abi::put_u32(&mut c, abi::FLAGS, flags);
        abi::put_u32(&mut c, abi::CPU, th.cpu);
        abi::put_u32(&mut c, abi::NUMA_NODE, th.node);
        abi::put_u32(&mut c, abi::TID, th.tid);
        abi::put_u32(&mut c, abi::TGID, TGID);
        c
    }

    fn put_waiter(&self, c: &mut [u8; 128], off: usize, t: usize) {
        let th = &self.th[t];
        abi::put_u32(c, off, th.cpu);
        abi::put_u32(c, off + 4, th.node);
        abi::put_u32(c, off + 8, th.tid);
        abi::put_u32(c, off + 12, self.w.threads[t].prio);
        abi::put_u64(c, off + 16, th.wait_start);
        // `data` (per_waiter state): nothing writes it in ABI v1, so it stays 0.
        abi::put_u64(c, off + 24, 0);
    }

    /// Runs `hook` for thread `t` at simulated time `at` with context `ctx`. Returns its
    /// decision (false when the policy has no such hook) and when the thread is done with it.
    fn hook_ctx(&mut self, h: Hook, t: usize, at: u64, mut ctx: [u8; 128]) -> Result<(bool, u64), SimError> {
        if !self.has(h) {
            return Ok((false, at));
        }
        let th = &self.th[t];
        let mut env = HookEnv {
            now: at,
            cpu: th.cpu,
            numa_node: th.node,
            pid_tgid: (u64::from(TGID) << 32) | u64::from(th.tid),
            rng: &mut self.hook_rng,
            waited_ns: 0,
        };
        let out = self.policy.call(h, &mut ctx, &mut env).map_err(|message| SimError::Hook { hook: h.name(), message })?;
        let mut waited = env.waited_ns;
        let cost = self.m.scaled(th.cpu, out.insns as f64 * self.m.ns_per_insn + out.helpers as f64 * self.m.ns_per_helper);
        let mut end = env.now + cost;
        // A void hook's result is the sleep its handler asked for (`sleep_after`): the task
        // sleeps that long after the handler, as the kernel module does where the hook may
        // sleep (a mutex or an rwsem; a spinlock's hooks never ask).
        if !h.decides() && self.w.lock != LockKind::Spinlock {
            let sleep = out.ret.min(scl_catalogue::SLEEP_AFTER_LIMIT_NS);
            end += sleep;
            waited += sleep;
        }
        self.c.hook(h, out.insns, out.helpers, waited, end - at);
        Ok((out.ret != 0, end))
    }

    fn hook(&mut self, h: Hook, t: usize, at: u64) -> Result<(bool, u64), SimError> {
        if !self.has(h) {
            return Ok((false, at));
        }
        let ctx = self.ctx(t);
        self.hook_ctx(h, t, at, ctx)
    }

    /// Performs an atomic on the lock word's cache line for `cpu`, starting no earlier
    /// than `at`; returns when it completes. Atomics on the line are serialised.
    fn line_op(&mut self, cpu: u32, at: u64) -> u64 {
        let start = at.max(self.lock.line_busy);
        let done = start + self.m.transfer_ns(self.lock.line_cpu, cpu);
        self.lock.line_busy = done;
        self.lock.line_cpu = Some(cpu);
        done
    }

    /// The memory traffic of `t`'s critical section, from `at` on: its protected data lines
    /// come from the previous exclusive holder's CPU (rwsem readers only read them), and
    /// its writes to the shared lines queue behind everyone else's. Returns when the
    /// critical section's own work can start.
    fn touch_data(&mut self, t: usize, at: u64) -> u64 {
        let spec = &self.w.threads[t];
        let (lines, shared) = (u64::from(spec.cs_lines), u64::from(spec.shared_lines));
        let (cpu, role) = (self.th[t].cpu, self.th[t].role);
        let mut at = at;
        if lines > 0 && role != Role::Read {
            at += lines * self.m.transfer_ns(self.lock.data_cpu, cpu);
            self.lock.data_cpu = Some(cpu);
        }
        if shared > 0 {
            let start = at.max(self.lock.shared_busy);
            at = start + shared * self.m.transfer_ns(self.lock.shared_cpu, cpu);
            self.lock.shared_busy = at;
            self.lock.shared_cpu = Some(cpu);
        }
        at
    }

    /// Whether `t` could take the lock now, ignoring the queue.
    fn free_for(&self, t: usize) -> bool {
        match self.th[t].role {
            Role::Exclusive | Role::Read => self.lock.holder.is_none(),
            Role::Write => self.lock.holder.is_none() && self.lock.readers == 0,
        }
    }

    /// `t` owns the lock from `at` on (its state changes now); its acquisition completes
    /// once it has the lock word's cache line (bypassed reads: at once).
    fn grant(&mut self, t: usize, at: u64) {
        let role = self.th[t].role;
        let bypass = self.th[t].bypass;
        match role {
            Role::Exclusive | Role::Write => self.lock.holder = Some(t),
            Role::Read if bypass => self.lock.bypassers += 1,
            Role::Read => self.lock.readers += 1,
        }
        let th = &mut self.th[t];
        th.granted = at;
        let (cpu, node) = (th.cpu, th.node);
        if !bypass {
            if let Some(p) = self.lock.prev_node.replace(node) {
                self.c.handoff(p == node);
            }
        }
        if role != Role::Read {
            if let Some((pc, pn)) = self.lock.prev_excl.replace((cpu, node)) {
                if pc != cpu {
                    self.c.cpu_handoff(pn == node);
                }
            }
        }
        let done = if bypass { at } else { self.line_op(cpu, at) };
        self.schedule(done, t, Ev::Acquired);
    }

    fn step(&mut self, t: usize, ev: Ev) -> Result<(), SimError> {
        let now = self.now;
        match ev {
            Ev::Begin => {
                let spec = &self.w.threads[t];
                let read_ratio = spec.read_ratio;
                let th = &mut self.th[t];
                th.role = match self.w.lock {
                    LockKind::Rwsem if th.rng.unit() < read_ratio => Role::Read,
                    LockKind::Rwsem => Role::Write,
                    _ => Role::Exclusive,
                };
                th.begin = now;
                th.contended_at = None;
                th.bypass = false;
                th.waiting = true;
                self.emit(now, SimEventKind::ToAcquire, t);
                let (_, end) = self.hook(Hook::ToAcquire, t, now)?;
                self.schedule(end, t, Ev::Fast);
            }
            Ev::Fast => {
                let mut at = now;
                if self.th[t].role == Role::Read && self.has(Hook::BypassAcquire) {
                    let (ok, end) = self.hook(Hook::BypassAcquire, t, now)?;
                    if ok {
                        self.th[t].bypass = true;
                        self.grant(t, end);
                        return Ok(());
                    }
                    at = end;
                }
                let allow = if self.has(Hook::EnableFastpath) {
                    let (ok, end) = self.hook(Hook::EnableFastpath, t, at)?;
                    at = end;
                    ok
                } else {
                    true
                };
                if at == now {
                    self.step(t, Ev::FastTry(allow))?;
                } else {
                    self.schedule(at, t, Ev::FastTry(allow));
                }
            }
            Ev::FastTry(allow) => {
                let open = self.open_to(t);
                if allow && open && self.free_for(t) {
                    self.grant(t, now);
                } else {
                    if !allow {
                        self.c.fastpath_refused += 1;
                    }
                    self.c.contended += 1;
                    self.th[t].contended_at = Some(now);
                    self.emit(now, SimEventKind::ContentionBegin, t);
                    let (_, end) = self.hook(Hook::Contended, t, now)?;
                    if end == now {
                        self.step(t, Ev::Enqueue)?;
                    } else {
                        self.schedule(end, t, Ev::Enqueue);
                    }
                }
            }
            Ev::Enqueue => {
                let open = self.open_to(t);
                if open && self.free_for(t) {
                    self.grant(t, now);
                } else if self.linux_mutex() && self.w.mutex_spin_ns != Some(0) {
                    // Optimistic spinning: the owner runs, so spin on it (in the OSQ) instead
                    // of sleeping; the OSQ's tail exchange is an atomic on the lock's line.
                    let th = &mut self.th[t];
                    th.wait_start = now;
                    th.ready_at = now;
                    th.overtaken = 0;
                    th.spin_token += 1;
                    let (cpu, token) = (th.cpu, th.spin_token);
                    self.line_op(cpu, now);
                    self.lock.spinners.push_back(t);
                    if let Some(budget) = self.w.mutex_spin_ns {
                        self.schedule(now.saturating_add(budget), t, Ev::SpinEnd(token));
                    }
                } else {
                    let th = &mut self.th[t];
                    th.wait_start = now;
                    th.ready_at = now;
                    th.overtaken = 0;
                    th.batch = 0;
                    let cpu = th.cpu;
                    // The enqueue's atomic on the lock word: qspinlock's tail exchange
                    // (`xchg_tail`), the mutex's and the rwsem's `wait_lock`. It queues on
                    // the line like every other atomic there, and so delays the holder's
                    // release when many waiters arrive.
                    self.line_op(cpu, now);
                    self.lock.queue.push_back(t);
                    if self.w.lock == LockKind::Spinlock {
                        self.kick(now)?;
                    }
                }
            }
            Ev::Acquired => {
                let th = &mut self.th[t];
                th.waiting = false;
                self.c.acquired(t, th.role, th.bypass, now - th.begin);
                if let Some(at) = th.contended_at {
                    self.c.contended_acquired(th.node, now - at);
                    self.emit(now, SimEventKind::ContentionEnd, t);
                }
                self.emit(now, SimEventKind::Acquired, t);
                let (_, end) = self.hook(Hook::Acquired, t, now)?;
                let spec = &self.w.threads[t];
                let dist = if self.th[t].role == Role::Read { &spec.read_cs } else { &spec.cs };
                let cs = dist.sample(&mut self.th[t].rng);
                let cs = self.m.scaled(self.th[t].cpu, cs).max(1);
                let start = self.touch_data(t, end);
                self.schedule(start + cs, t, Ev::Release);
            }
            Ev::Release => {
                self.emit(now, SimEventKind::ToRelease, t);
                let (_, mut end) = self.hook(Hook::ToRelease, t, now)?;
                if self.th[t].role == Role::Read && self.has(Hook::BypassRelease) {
                    let (was, e2) = self.hook(Hook::BypassRelease, t, end)?;
                    if was != self.th[t].bypass {
                        self.c.protocol_errors += 1;
                    }
                    end = e2;
                }
                self.schedule(end, t, Ev::Unlock);
            }
            Ev::Unlock => {
                let th = &self.th[t];
                let (role, bypass, cpu, granted) = (th.role, th.bypass, th.cpu, th.granted);
                self.c.hold(t, now.saturating_sub(granted));
                let released = match role {
                    Role::Exclusive | Role::Write => {
                        self.lock.holder = None;
                        self.line_op(cpu, now)
                    }
                    Role::Read if bypass => {
                        self.lock.bypassers -= 1;
                        now
                    }
                    Role::Read => {
                        self.lock.readers -= 1;
                        self.line_op(cpu, now)
                    }
                };
                self.emit(released, SimEventKind::Released, t);
                self.dispatch(now)?;
                let (_, end) = self.hook(Hook::Released, t, released)?;
                let think = self.w.threads[t].think.sample(&mut self.th[t].rng);
                let next = end + self.m.scaled(cpu, think);
                if next < self.duration {
                    self.schedule(next, t, Ev::Begin);
                }
            }
            Ev::Walk(generation) => {
                if generation == self.lock.walk_gen {
                    self.walk(now)?;
                }
            }
            Ev::SpinEnd(token) => {
                // The spin budget is spent: the waiter leaves the OSQ and sleeps at the tail
                // of the wait list (its `wait_lock` atomic on the lock's line).
                if self.th[t].spin_token == token {
                    if let Some(i) = self.lock.spinners.iter().position(|&x| x == t) {
                        self.lock.spinners.remove(i);
                        let cpu = self.th[t].cpu;
                        self.line_op(cpu, now);
                        self.lock.queue.push_back(t);
                    }
                }
            }
            Ev::Woken => {
                self.lock.waking = false;
                if self.lock.queue.front() == Some(&t) {
                    if self.free_for(t) {
                        self.lock.queue.pop_front();
                        self.grant(t, now);
                    } else if self.w.lock == LockKind::Mutex {
                        // Beaten to the lock by a spinner or a newcomer: the first waiter
                        // sets the hand-off flag and spins; the next release is its.
                        self.lock.handoff = true;
                        self.c.steals += 1;
                    } else {
                        // rwsem: readers stole the lock while the writer woke. It sleeps
                        // again; once it has waited RWSEM_WAIT_TIMEOUT it sets the hand-off
                        // bit, and readers stop stealing.
                        self.c.steals += 1;
                        if now.saturating_sub(self.th[t].wait_start) >= RWSEM_WAIT_TIMEOUT_NS {
                            self.lock.handoff = true;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether `t` may take a free lock now whoever waits: Linux's mutex lets any newcomer
    /// (a steal), Linux's rwsem a reader that finds no reader inside either (reader lock
    /// stealing: with readers inside and waiters queued, 6.x queues it, so a stream of
    /// readers does not starve a sleeping writer), unless a waiter set the hand-off flag;
    /// otherwise only when nobody is queued.
    fn open_to(&self, t: usize) -> bool {
        let reader = self.th[t].role == Role::Read;
        if self.linux_mutex() {
            !self.lock.handoff
        } else if self.linux() && reader {
            !self.lock.handoff && (self.lock.queue.is_empty() || self.lock.readers == 0)
        } else {
            self.lock.queue.is_empty()
        }
    }

    /// Whether the blocking locks are Linux's stock ones.
    fn linux(&self) -> bool {
        self.w.locks == LockImpl::Linux && self.w.lock != LockKind::Spinlock
    }

    fn linux_mutex(&self) -> bool {
        self.w.locks == LockImpl::Linux && self.w.lock == LockKind::Mutex
    }

    /// Linux 6.x's mutex at release: a waiter that set the hand-off flag gets the lock (it is
    /// spinning: no wake-up); else the first optimistic spinner takes it, and the first
    /// sleeper is woken (one wake-up in flight at a time) to try for it.
    fn dispatch_linux_mutex(&mut self, now: u64) {
        if self.lock.holder.is_some() {
            return;
        }
        if self.lock.handoff {
            if let Some(h) = self.lock.queue.pop_front() {
                self.lock.handoff = false;
                self.grant(h, now);
                return;
            }
            self.lock.handoff = false;
        }
        if let Some(s) = self.lock.spinners.pop_front() {
            self.th[s].spin_token += 1;
            self.grant(s, now);
        }
        if let Some(&h) = self.lock.queue.front() {
            if !self.lock.waking {
                self.lock.waking = true;
                self.schedule(now + self.m.wakeup_ns, h, Ev::Woken);
            }
        }
    }

    /// Linux 6.x's rwsem at release: a writer that set the hand-off bit gets the lock once it
    /// is free (no wake-up: it is awake); readers at the head are woken all together; a writer
    /// at the head is woken (one wake-up in flight at a time) and takes the lock only if
    /// readers have not stolen it meanwhile.
    fn dispatch_linux_rwsem(&mut self, now: u64) {
        let Some(&h) = self.lock.queue.front() else { return };
        if !self.free_for(h) {
            return;
        }
        if self.lock.handoff {
            self.lock.queue.pop_front();
            self.lock.handoff = false;
            self.grant(h, now);
        } else if self.th[h].role == Role::Read {
            self.wake_readers_linux(now);
        } else if !self.lock.waking {
            self.lock.waking = true;
            self.schedule(now + self.m.wakeup_ns, h, Ev::Woken);
        }
    }

    /// Linux 6.x's rwsem hands readers the lock: when the queue head is a reader, every
    /// queued reader (up to 256), wherever it waits, is woken with it; writers keep their
    /// places.
    fn wake_readers_linux(&mut self, now: u64) {
        let mut woken = 0;
        let mut i = 0;
        while i < self.lock.queue.len() && woken < 256 {
            let r = self.lock.queue[i];
            if self.th[r].role == Role::Read && self.lock.holder.is_none() {
                self.lock.queue.remove(i);
                self.grant(r, now + self.m.wakeup_ns);
                woken += 1;
            } else {
                i += 1;
            }
        }
    }

    /// Hands the lock to the waiters at the head of the queue that may have it now. A head
    /// in the middle of a walk step finishes the step first (its `ready_at`): the walk stops
    /// once the lock is free, it does not hold the acquisition back for a whole round.
    fn dispatch(&mut self, now: u64) -> Result<(), SimError> {
        if self.linux_mutex() {
            self.dispatch_linux_mutex(now);
            return Ok(());
        }
        if self.linux() {
            self.dispatch_linux_rwsem(now);
            return Ok(());
        }
        let mut popped = false;
        while let Some(&h) = self.lock.queue.front() {
            if !self.free_for(h) {
                break;
            }
            if self.w.lock == LockKind::Mutex {
                // kernel/mutex.c: the unlock runs the round under `wait_lock` with the
                // waiter it hands the lock to as the shuffler, over the waiters behind it,
                // and hands the lock over once the round is done (its `ready_at`).
                self.handoff_round(now)?;
                self.count_mixed_round();
            }
            self.lock.queue.pop_front();
            popped = true;
            let wake = if self.w.lock == LockKind::Spinlock { 0 } else { self.m.wakeup_ns };
            let from = now.max(self.th[h].ready_at);
            self.grant(h, from + wake);
            if self.w.lock == LockKind::Spinlock {
                self.pass_role(h, from)?;
            }
            if self.th[h].role != Role::Read {
                break;
            }
        }
        if popped && !self.linux() {
            if self.w.lock == LockKind::Spinlock {
                self.kick(now)?;
            } else if self.w.lock == LockKind::Rwsem {
                self.handoff_round(now)?;
                self.count_mixed_round();
            }
        }
        Ok(())
    }

    /// The decision accounting of `kernel/`'s rounds (`scl_round_end`), at each mutex or
    /// rwsem hand-off, policy or not: the head (the shuffler) is the waiter the lock goes
    /// to (mutex) or goes to next (rwsem); the round is mixed when
    /// the waiters behind it are on its node and on another, and went to its node when the
    /// one right behind it is on its node once the round (if any) has run.
    fn count_mixed_round(&mut self) {
        let q = &self.lock.queue;
        let Some(&s) = q.front() else { return };
        let node = self.th[s].node;
        let (mut same, mut other) = (false, false);
        for &w in q.iter().skip(1) {
            if self.th[w].node == node {
                same = true;
            } else {
                other = true;
            }
        }
        if same && other {
            self.c.shuffle.mixed += 1;
            if self.th[q[1]].node == node {
                self.c.shuffle.to_shuffler_node += 1;
            }
        }
    }

    /// The mutex's and the rwsem's shuffle: one round by the queue head over the whole
    /// queue behind it, and the head cannot take the lock before the round ends. The
    /// mutex's runs at the release, on the way to handing the lock to the head (as
    /// kernel/mutex.c does under `wait_lock`); the rwsem's right after a hand-off, while
    /// the new holder holds the lock. Each round: `skip_reorder` once, then `should_reorder` per
    /// candidate; approved candidates move right behind it (after the ones moved before
    /// them), in queue order. Bound: as in [`Engine::walk`].
    fn handoff_round(&mut self, now: u64) -> Result<(), SimError> {
        if !self.has(Hook::ShouldReorder) || self.lock.queue.len() < 3 {
            return Ok(());
        }
        let s = self.lock.queue[0];
        let bound = self.w.max_overtake;
        let mut at = now.max(self.th[s].ready_at);
        let mut base = self.ctx(s);
        self.put_waiter(&mut base, abi::SHUFFLER, s);
        self.c.shuffle.rounds += 1;
        let (skip, end) = self.hook_ctx(Hook::SkipReorder, s, at, base)?;
        at = end;
        if skip {
            self.c.shuffle.skipped += 1;
            self.th[s].ready_at = at;
            return Ok(());
        }
        let mut insert = 1;
        let mut i = 1;
        while i < self.lock.queue.len() {
            let cand = self.lock.queue[i];
            let mut ctx = base;
            self.put_waiter(&mut ctx, abi::CANDIDATE, cand);
            let (ok, end) = self.hook_ctx(Hook::ShouldReorder, s, at, ctx)?;
            at = end;
            if ok {
                if i > insert {
                    let mut at_bound = false;
                    for k in insert..i {
                        let p = self.lock.queue[k];
                        self.th[p].overtaken += 1;
                        self.c.shuffle.max_overtaken = self.c.shuffle.max_overtaken.max(self.th[p].overtaken);
                        at_bound |= self.th[p].overtaken >= bound;
                    }
                    let c = self.lock.queue.remove(i).expect("in range");
                    self.lock.queue.insert(insert, c);
                    self.c.shuffle.moves += 1;
                    if at_bound {
                        self.c.shuffle.bound_hits += 1;
                        break;
                    }
                }
                insert += 1;
            } else if self.th[cand].overtaken >= bound {
                self.c.shuffle.bound_hits += 1;
                break;
            }
            i += 1;
        }
        self.th[s].ready_at = at;
        Ok(())
    }

    /// `h` has left the queue. If it held the shuffler role, the role passes down to the
    /// last waiter it grouped (ShflLock), which continues the walk from where it stopped;
    /// with nothing grouped the role lapses and the next head starts afresh.
    fn pass_role(&mut self, h: usize, at: u64) -> Result<(), SimError> {
        if self.lock.shuffler.as_ref().is_none_or(|s| s.who != h) {
            return Ok(());
        }
        let s = self.lock.shuffler.take().expect("checked");
        self.lock.walk_gen += 1;
        if s.last != h && self.lock.queue.contains(&s.last) {
            let cursor = if self.lock.queue.contains(&s.cursor) { s.cursor } else { s.last };
            self.start_round(s.last, s.last, cursor, s.batch, at)?;
        }
        Ok(())
    }

    /// Resumes an idle walk when a waiter joins, or lets a new head that no shuffler grouped
    /// start a round. A head starts at most one round.
    fn kick(&mut self, now: u64) -> Result<(), SimError> {
        if !self.has(Hook::ShouldReorder) {
            return Ok(());
        }
        if let Some(s) = self.lock.shuffler.as_mut() {
            if s.idle {
                s.idle = false;
                let who = s.who;
                self.lock.walk_gen += 1;
                let at = now.max(self.th[who].ready_at);
                self.schedule(at, who, Ev::Walk(self.lock.walk_gen));
            }
            return Ok(());
        }
        let Some(&h) = self.lock.queue.front() else { return Ok(()) };
        if self.lock.queue.len() < 2 || self.lock.tried_head == Some(h) {
            return Ok(());
        }
        self.lock.tried_head = Some(h);
        // A waiter a shuffler grouped is part of that batch: it does not start another
        // (ShflLock's batch bound); the next ungrouped head does.
        if self.th[h].batch > 0 {
            return Ok(());
        }
        self.start_round(h, h, h, 0, now)
    }

    /// `who` takes the shuffler role at `at`: `skip_reorder` once (off the critical path:
    /// the lock is held by another), then, unless it skips, its walk starts after `cursor`,
    /// grouping approved waiters right behind `last`.
    fn start_round(&mut self, who: usize, last: usize, cursor: usize, batch: u32, at: u64) -> Result<(), SimError> {
        if batch >= self.w.shuffle_batch {
            return Ok(());
        }
        self.c.shuffle.rounds += 1;
        let at = at.max(self.th[who].ready_at);
        let mut base = self.ctx(who);
        self.put_waiter(&mut base, abi::SHUFFLER, who);
        let (skip, end) = self.hook_ctx(Hook::SkipReorder, who, at, base)?;
        self.th[who].ready_at = end;
        if skip {
            self.c.shuffle.skipped += 1;
            return Ok(());
        }
        self.lock.shuffler = Some(Shuffler { who, last, cursor, batch, idle: false });
        self.lock.walk_gen += 1;
        self.schedule(end, who, Ev::Walk(self.lock.walk_gen));
        Ok(())
    }

    /// One step of the shuffler's walk (ShflLock's `shuffle_waiters`, one node at a time):
    /// visit the waiter after the cursor (a cache miss on its queue node,
    /// `queue_node_ns`, plus `should_reorder`); an approved one joins the group right
    /// behind the shuffler, after the ones grouped before it, so approved waiters keep
    /// their relative order and so do the rest. The walk runs while the lock is held by
    /// another, so its cost is the shuffler's own time, not the lock's. It ends at the
    /// batch bound (`shuffle_batch` grouped waiters) or the reorder bound: no waiter is
    /// overtaken more than `max_overtake` times; a walk stops at the first not-approved
    /// waiter that has reached the bound, and as soon as a move brings a passed waiter to it.
    fn walk(&mut self, now: u64) -> Result<(), SimError> {
        let Some(s) = self.lock.shuffler.as_ref() else { return Ok(()) };
        let (who, mut last, mut cursor, mut batch) = (s.who, s.last, s.cursor, s.batch);
        let q = &self.lock.queue;
        let (Some(li), Some(ci)) = (q.iter().position(|&x| x == last), q.iter().position(|&x| x == cursor)) else {
            // rwsem readers granted together took part of the group: the round is over.
            self.lock.shuffler = None;
            return Ok(());
        };
        let next = ci + 1;
        if next >= q.len() {
            // At the tail the walk ends and the role passes to the last waiter grouped, which
            // continues once another waiter queues; with nothing grouped it stays put.
            if last == who {
                self.lock.shuffler.as_mut().expect("checked").idle = true;
            } else {
                self.lock.shuffler = None;
                self.lock.walk_gen += 1;
                self.start_round(last, last, cursor, batch, now)?;
            }
            return Ok(());
        }
        let cand = q[next];
        let mut ctx = self.ctx(who);
        self.put_waiter(&mut ctx, abi::SHUFFLER, who);
        self.put_waiter(&mut ctx, abi::CANDIDATE, cand);
        let (ok, end) = self.hook_ctx(Hook::ShouldReorder, who, now, ctx)?;
        let end = end + self.m.queue_node_ns;
        self.th[who].ready_at = end;
        let bound = self.w.max_overtake;
        let mut stop = false;
        if ok {
            if next > li + 1 {
                for k in li + 1..next {
                    let p = self.lock.queue[k];
                    self.th[p].overtaken += 1;
                    self.c.shuffle.max_overtaken = self.c.shuffle.max_overtaken.max(self.th[p].overtaken);
                    stop |= self.th[p].overtaken >= bound;
                }
                let c = self.lock.queue.remove(next).expect("in range");
                self.lock.queue.insert(li + 1, c);
                self.c.shuffle.moves += 1;
                if stop {
                    self.c.shuffle.bound_hits += 1;
                }
            } else {
                cursor = cand;
            }
            last = cand;
            batch += 1;
            self.th[cand].batch = batch;
            stop |= batch >= self.w.shuffle_batch;
        } else if self.th[cand].overtaken >= bound {
            self.c.shuffle.bound_hits += 1;
            stop = true;
        } else {
            cursor = cand;
        }
        self.lock.walk_gen += 1;
        if stop {
            self.lock.shuffler = None;
        } else {
            self.lock.shuffler = Some(Shuffler { who, last, cursor, batch, idle: false });
            self.schedule(end, who, Ev::Walk(self.lock.walk_gen));
        }
        Ok(())
    }
}
