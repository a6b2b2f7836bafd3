//! What the simulator calls: the hooks of a policy, behind a small trait.
//!
//! [`crate::VmPolicy`] runs a compiled policy's BPF programs in `scl-vm`; [`Fifo`] is the
//! stock lock (no hooks) and [`StaticShfl`] ShflLock's NUMA grouping with free hooks; tests
//! may implement [`Policy`] natively to exercise the lock models.

use crate::rng::Rng;

/// A hook the simulator fires (the catalogue's names, without `contention_end`, which is
/// stock-only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Hook {
    /// Before the fast path.
    ToAcquire,
    /// May the fast path be tried (false: queue).
    EnableFastpath,
    /// The fast path failed; the task is about to queue.
    Contended,
    /// The task holds the lock.
    Acquired,
    /// The holder is about to release.
    ToRelease,
    /// The lock was released.
    Released,
    /// Move `candidate` next to the shuffler?
    ShouldReorder,
    /// Skip this shuffle round?
    SkipReorder,
    /// rwsem readers: take the lock without the shared count?
    BypassAcquire,
    /// rwsem readers: was this a bypassed hold?
    BypassRelease,
}

impl Hook {
    /// Every hook the simulator fires.
    pub const ALL: [Hook; 10] = [
        Hook::ToAcquire,
        Hook::EnableFastpath,
        Hook::Contended,
        Hook::Acquired,
        Hook::ToRelease,
        Hook::Released,
        Hook::ShouldReorder,
        Hook::SkipReorder,
        Hook::BypassAcquire,
        Hook::BypassRelease,
    ];

    /// Its catalogue name (the program's name in the object).
    pub fn name(self) -> &'static str {
        match self {
            Hook::ToAcquire => "to_acquire",
            Hook::EnableFastpath => "enable_fastpath",
            Hook::Contended => "contended",
            Hook::Acquired => "acquired",
            Hook::ToRelease => "to_release",
            Hook::Released => "released",
            Hook::ShouldReorder => "should_reorder",
            Hook::SkipReorder => "skip_reorder",
            Hook::BypassAcquire => "bypass_acquire",
            Hook::BypassRelease => "bypass_release",
        }
    }

    /// True for the hooks whose result is a decision (`r0` 0 or 1, the catalogue's
    /// `-> bool`); the others' result is the sleep their handler asked for, in ns.
    pub fn decides(self) -> bool {
        scl_catalogue::hook(self.name()).is_some_and(|h| h.returns_bool)
    }

    /// The hook called `name`.
    pub fn from_name(name: &str) -> Option<Hook> {
        Hook::ALL.into_iter().find(|h| h.name() == name)
    }
}

/// What a hook sees of the simulation while it runs: the calling task and simulated time.
///
/// `now` starts at the simulated time of the call; `wait_until` (the `back_off` and `sleep`
/// built-ins) moves it forward. A `sleep_after` comes after the call, from its result. Other threads do not run while a hook runs (see the limits
/// in `docs/simulator.md`).
pub struct HookEnv<'a> {
    /// Simulated time, ns.
    pub now: u64,
    /// The calling task's CPU.
    pub cpu: u32,
    /// Its NUMA node.
    pub numa_node: u32,
    /// `tgid << 32 | tid`.
    pub pid_tgid: u64,
    /// Source of `random()`.
    pub rng: &'a mut Rng,
    /// Total time spent in `wait_until` during this call.
    pub waited_ns: u64,
}

impl HookEnv<'_> {
    /// Advances simulated time to `deadline` (a no-op if it has passed).
    pub fn wait_until(&mut self, deadline: u64) {
        if deadline > self.now {
            self.waited_ns += deadline - self.now;
            self.now = deadline;
        }
    }
}

/// The result of one hook call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HookOutcome {
    /// `r0`: 0 or 1 for the decision hooks.
    pub ret: u64,
    /// Instructions executed (charged as simulated time).
    pub insns: u64,
    /// Helper calls made (each charged `Machine::ns_per_helper`).
    pub helpers: u64,
}

/// A policy the simulator runs: a set of hooks over the 128-byte context of `docs/abi.md`.
pub trait Policy {
    /// Its name in reports.
    fn name(&self) -> &str;
    /// Whether it has `hook` (absent hooks keep the lock's default behaviour and cost nothing).
    fn has(&self, hook: Hook) -> bool;
    /// Runs `hook` on `ctx`.
    fn call(&mut self, hook: Hook, ctx: &mut [u8; 128], env: &mut HookEnv<'_>) -> Result<HookOutcome, String>;
    /// Marks thread `tid` latency-critical in the policy's `latency_critical` map. Returns
    /// false when the policy has no such map.
    fn mark_latency_critical(&mut self, tid: u32) -> Result<bool, String>;
}

/// The stock FIFO lock: no hooks at all.
#[derive(Clone, Copy, Debug, Default)]
pub struct Fifo;

impl Policy for Fifo {
    fn name(&self) -> &str {
        "baseline (FIFO)"
    }

    fn has(&self, _: Hook) -> bool {
        false
    }

    fn call(&mut self, hook: Hook, _: &mut [u8; 128], _: &mut HookEnv<'_>) -> Result<HookOutcome, String> {
        Err(format!("the FIFO baseline has no `{}` hook", hook.name()))
    }

    fn mark_latency_critical(&mut self, _: u32) -> Result<bool, String> {
        Ok(false)
    }
}

/// ShflLock's own NUMA policy with hooks that cost nothing, the "static ShflLock" the SynCord
/// paper compares its NUMA policy against: the shuffler groups the waiters of its NUMA node;
/// no other hook runs.
#[derive(Clone, Copy, Debug, Default)]
pub struct StaticShfl;

impl Policy for StaticShfl {
    fn name(&self) -> &str {
        "static ShflLock"
    }

    fn has(&self, hook: Hook) -> bool {
        hook == Hook::ShouldReorder
    }

    fn call(&mut self, hook: Hook, ctx: &mut [u8; 128], _: &mut HookEnv<'_>) -> Result<HookOutcome, String> {
        if hook != Hook::ShouldReorder {
            return Err(format!("static ShflLock has no `{}` hook", hook.name()));
        }
        let same = abi::get_u32(ctx, abi::SHUFFLER + 4) == abi::get_u32(ctx, abi::CANDIDATE + 4);
        Ok(HookOutcome { ret: u64::from(same), insns: 0, helpers: 0 })
    }

    fn mark_latency_critical(&mut self, _: u32) -> Result<bool, String> {
        Ok(false)
    }
}

/// Context offsets of `docs/abi.md` §1.
pub mod abi {
    /// `lock` (u64).
    pub const LOCK: usize = 0;
    /// `kind` (u32).
    pub const KIND: usize = 8;
    /// `flags` (u32): bit0 reader, bit1 writer, bit2 trylock.
    pub const FLAGS: usize = 12;
    /// `cpu` (u32).
    pub const CPU: usize = 16;
    /// `numa_node` (u32).
    pub const NUMA_NODE: usize = 20;
    /// `tid` (u32).
    pub const TID: usize = 24;
    /// `tgid` (u32).
    pub const TGID: usize = 28;
    /// The shuffler waiter (32 bytes).
    pub const SHUFFLER: usize = 32;
    /// The candidate waiter (32 bytes).
    pub const CANDIDATE: usize = 64;
    /// Reader flag.
    pub const F_READER: u32 = 1;
    /// Writer flag.
    pub const F_WRITER: u32 = 2;

    /// Reads a little-endian u32 at `off`.
    pub fn get_u32(ctx: &[u8; 128], off: usize) -> u32 {
        u32::from_le_bytes(ctx[off..off + 4].try_into().unwrap())
    }

    /// Reads a little-endian u64 at `off`.
    pub fn get_u64(ctx: &[u8; 128], off: usize) -> u64 {
        u64::from_le_bytes(ctx[off..off + 8].try_into().unwrap())
    }

    /// Writes a little-endian u32 at `off`.
    pub fn put_u32(ctx: &mut [u8; 128], off: usize, v: u32) {
        ctx[off..off + 4].copy_from_slice(&v.to_le_bytes());
    }

    /// Writes a little-endian u64 at `off`.
    pub fn put_u64(ctx: &mut [u8; 128], off: usize, v: u64) {
        ctx[off..off + 8].copy_from_slice(&v.to_le_bytes());
    }
}
