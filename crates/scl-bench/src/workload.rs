//! The lock events the bench drives both objects with.
//!
//! Each event is one lock acquisition by one of 64 threads (tid 1000..1063, CPU `t % 8`,
//! NUMA node `cpu / 4`) on one of 16 locks, with the hooks called in lifecycle order:
//! `to_acquire`, for rwsem readers `bypass_acquire`, then if contended (every other event)
//! `contended`, `skip_reorder` with a shuffler and, unless it says skip, `should_reorder`
//! for two candidates; `acquired`, `to_release`, `bypass_release` for readers and
//! `released`. Hooks a policy does not give are not called. The same event, with the same
//! context bytes, goes to the sclc and the clang program; which of the two runs first
//! alternates from one call of a hook to its next. Where the lifecycle branches on a result (`bypass_acquire`, `skip_reorder`) it follows
//! sclc's, so both objects see the same sequence even if they disagree.

use scl_loader::{LoadError, Loaded, ProgInfo};
use std::collections::{BTreeMap, HashMap};

/// xorshift64: deterministic, so every run sees the same events.
pub struct Rng(pub u64);

impl Rng {
    /// The next number.
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A waiter in the context (design §5).
#[derive(Clone, Copy, Default)]
struct Waiter {
    cpu: u32,
    numa_node: u32,
    tid: u32,
    prio: u32,
    wait_start: u64,
}

/// The 128-byte hook context (design §5).
#[derive(Clone, Copy, Default)]
struct Ctx {
    lock: u64,
    kind: u32,
    flags: u32,
    cpu: u32,
    numa_node: u32,
    tid: u32,
    tgid: u32,
    shuffler: Waiter,
    candidate: Waiter,
}

impl Ctx {
    fn bytes(&self) -> [u8; 128] {
        let mut b = [0u8; 128];
        b[0..8].copy_from_slice(&self.lock.to_le_bytes());
        for (off, v) in [(8, self.kind), (12, self.flags), (16, self.cpu), (20, self.numa_node), (24, self.tid), (28, self.tgid)] {
            b[off..off + 4].copy_from_slice(&v.to_le_bytes());
        }
        for (base, w) in [(32, &self.shuffler), (64, &self.candidate)] {
            for (off, v) in [(0, w.cpu), (4, w.numa_node), (8, w.tid), (12, w.prio)] {
                b[base + off..base + off + 4].copy_from_slice(&v.to_le_bytes());
            }
            b[base + 16..base + 24].copy_from_slice(&w.wait_start.to_le_bytes());
        }
        b
    }
}

const THREADS: u64 = 64;
const LOCKS: u64 = 16;

fn thread(t: u64) -> Waiter {
    let cpu = (t % 8) as u32;
    Waiter { cpu, numa_node: cpu / 4, tid: 1000 + t as u32, prio: 120, wait_start: 0 }
}

#[repr(C)]
struct Timespec {
    sec: i64,
    nsec: i64,
}

extern "C" {
    fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
}

/// CLOCK_MONOTONIC, the clock of `bpf_ktime_get_ns` and SCL's `now()`.
fn monotonic_ns() -> u64 {
    let mut ts = Timespec { sec: 0, nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC (1) always exists.
    unsafe { clock_gettime(1, &mut ts) };
    ts.sec as u64 * 1_000_000_000 + ts.nsec as u64
}

/// The lock kinds an example's policy is for, as the events use them.
fn kinds(example: &str) -> &'static [u32] {
    match example {
        "bravo" => &[2],
        "lockstat" | "scl_fairness" | "app_priority" => &[0, 1, 2],
        _ => &[0, 1],
    }
}

/// `.rodata` bytes to overwrite before load, in both objects (the C files declare their
/// `const volatile` config in the order and with the types of the SCL `config`s, so the
/// offsets are the same). amp's little cores would otherwise spin 2 us in `contended`, a
/// deliberate wait that is the same in both; with 0 the decision and the `bpf_loop` set-up
/// are what is measured.
pub fn rodata_overrides(example: &str) -> Vec<(usize, Vec<u8>)> {
    match example {
        "amp" => vec![(16, 0u64.to_le_bytes().to_vec())],
        _ => Vec::new(),
    }
}

/// Map contents the application would write: app_priority's latency-critical threads
/// (tids 1000..1007, one thread in eight).
pub fn setup(example: &str, s: &Loaded, c: &Loaded) -> Result<(), LoadError> {
    if example == "app_priority" {
        for tid in 1000u32..1008 {
            for o in [s, c] {
                o.update("latency_critical", &tid.to_le_bytes(), &[1])?;
            }
        }
    }
    Ok(())
}

/// Hooks whose results depend on the clock: on state computed from clock readings (hold
/// times, bias inhibition windows), which differ between the two objects, or on how long
/// the shuffler has waited, which crosses the threshold between the two runs if the bench
/// is preempted there. Their results may differ without either program being wrong.
pub fn time_dependent(example: &str, hook: &str) -> bool {
    matches!(
        (example, hook),
        ("scl_fairness", "should_reorder") | ("bravo", "bypass_acquire" | "bypass_release") | ("amp" | "app_priority", "skip_reorder")
    )
}

/// The two loaded objects and what their calls returned.
pub struct Pair<'a> {
    s: &'a mut Loaded,
    c: &'a mut Loaded,
    hooks: Vec<String>,
    counts: HashMap<String, Counts>,
}

/// What the calls of one hook returned.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counts {
    /// Calls (of each object).
    pub calls: u64,
    /// Calls where the two returned different values.
    pub mismatches: u64,
    /// Calls where the first object (sclc's) and the second returned a value other than 0.
    pub nonzero: (u64, u64),
}

impl<'a> Pair<'a> {
    /// Both objects, which have the programs `hooks`.
    pub fn new(s: &'a mut Loaded, c: &'a mut Loaded, hooks: &[String]) -> Pair<'a> {
        Pair { s, c, hooks: hooks.to_vec(), counts: HashMap::new() }
    }

    /// Runs `hook` in both objects on `ctx`; sclc's result, or `None` if the policy does
    /// not give the hook.
    fn call(&mut self, hook: &str, ctx: &Ctx) -> Result<Option<u32>, String> {
        if !self.hooks.iter().any(|h| h == hook) {
            return Ok(None);
        }
        let bytes = ctx.bytes();
        let (mut a, mut b) = (bytes, bytes);
        // Which program runs first alternates per hook, not per call: a policy whose
        // events make an even number of calls each would otherwise run one hook always
        // first in the same object (amp's `contended`, measured 1.10-1.15x for it).
        let calls = self.counts(hook).calls;
        let sclc_first = calls.is_multiple_of(2);
        let err = |e: LoadError| e.to_string();
        let (rs, rc) = if sclc_first {
            let rs = self.s.test_run(hook, &mut a).map_err(err)?;
            (rs, self.c.test_run(hook, &mut b).map_err(err)?)
        } else {
            let rc = self.c.test_run(hook, &mut b).map_err(err)?;
            (self.s.test_run(hook, &mut a).map_err(err)?, rc)
        };
        let e = self.counts.entry(hook.to_string()).or_default();
        e.calls += 1;
        e.mismatches += u64::from(rs != rc);
        e.nonzero.0 += u64::from(rs != 0);
        e.nonzero.1 += u64::from(rc != 0);
        Ok(Some(rs))
    }

    /// What the calls of `hook` so far returned.
    pub fn counts(&self, hook: &str) -> Counts {
        self.counts.get(hook).copied().unwrap_or_default()
    }

    /// Program info of every hook, sclc's and clang's.
    pub fn infos(&self) -> Result<BTreeMap<String, (ProgInfo, ProgInfo)>, String> {
        let mut m = BTreeMap::new();
        for h in &self.hooks {
            let si = self.s.info(h).map_err(|e| e.to_string())?;
            let ci = self.c.info(h).map_err(|e| e.to_string())?;
            m.insert(h.clone(), (si, ci));
        }
        Ok(m)
    }
}

/// Drives `events` lock events through both objects.
pub fn drive(example: &str, pair: &mut Pair, rng: &mut Rng, events: usize) -> Result<(), String> {
    let kinds = kinds(example);
    for _ in 0..events {
        let li = rng.below(LOCKS);
        let me = thread(rng.below(THREADS));
        let kind = kinds[(li as usize) % kinds.len()];
        let reader = kind == 2 && rng.below(4) != 0;
        let flags = match (kind, reader) {
            (2, true) => 1,
            (2, false) => 2,
            _ => 0,
        };
        let mut ctx = Ctx {
            lock: 0xffff_8880_1234_0000 + li * 0x40,
            kind,
            flags,
            cpu: me.cpu,
            numa_node: me.numa_node,
            tid: me.tid,
            tgid: 1000 + me.tid / 16 * 16,
            ..Ctx::default()
        };
        pair.call("to_acquire", &ctx)?;
        let bypassed = reader && pair.call("bypass_acquire", &ctx)? == Some(1);
        if !bypassed {
            if rng.below(2) == 0 {
                pair.call("contended", &ctx)?;
                // The shuffler: the oldest waiter, usually waiting for microseconds, one
                // time in eight for 5 ms (past every policy's FIFO fallback). The deltas
                // stay far from the thresholds (500 us, 1 ms), so both programs agree.
                let mut sh = thread(rng.below(THREADS));
                let waited = [1_000u64, 20_000, 200_000, 1_000, 50_000, 2_000, 100_000, 5_000_000][rng.below(8) as usize];
                sh.wait_start = monotonic_ns() - waited;
                ctx.shuffler = sh;
                if pair.call("skip_reorder", &ctx)? != Some(1) {
                    for _ in 0..2 {
                        let mut cand = thread(rng.below(THREADS));
                        cand.wait_start = monotonic_ns() - 1_000;
                        ctx.candidate = cand;
                        pair.call("should_reorder", &ctx)?;
                    }
                }
                ctx.shuffler = Waiter::default();
                ctx.candidate = Waiter::default();
            }
            pair.call("acquired", &ctx)?;
        }
        pair.call("to_release", &ctx)?;
        let released = reader && pair.call("bypass_release", &ctx)? == Some(1);
        if !released {
            pair.call("released", &ctx)?;
        }
    }
    Ok(())
}
