//! The event filter of `sclc run --tid/--pid/--cgroup/--lock/--cpu/--type`: a guard the
//! lowering puts at the entry of each stock hook, before anything of the policy runs, so a
//! filtered-out event costs the guard and nothing else (no state lookup, no flags record).
//!
//! The values are constants in the bytecode: `sclc run` compiles the policy for each run,
//! so a filter needs no map and no `.rodata` slot, and the kernel verifier sees plain
//! comparisons. Each term is one block: its value computed once, compared with each listed
//! value (or range), the results or-ed, one branch to the next term or to the hook's exit.
//!
//! Terms of two kinds:
//!
//! - *Stable* ones are the same at the beginning and at the end of a wait: the thread
//!   (`tid`), its process (`tgid`), its cgroup, the lock's address. Both hooks test them.
//! - *Begin-only* ones are known, or meant, at the beginning: the CPU where the wait begins
//!   (a sleeping waiter may wake on another) and the lock type, from the tracepoint's flags
//!   (`contention_end` has none). `contended` tests them; when the policy also has
//!   `contention_end`, an admitted beginning records its (lock, thread) in the hidden LRU
//!   hash `scl_filter`, and `contention_end` runs only for an end whose pair it finds (and
//!   deletes, one helper call). A nested wait (a mutex's slow path spinning on its
//!   `wait_lock`) is paired by its own lock, so `--type mutex` keeps the outer wait only.
//!   This is how `perf lock contention` filters too: at the beginning, the end following it.

use super::*;

/// Lock types as `--type` names them, with their flags: the catalogue's table.
pub use scl_catalogue::LOCK_TYPES;

/// Which lock events a stock policy sees. Each non-empty list is a term an event must
/// pass (any of its values); an empty filter adds nothing to the programs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Thread ids (the kernel's pid, `gettid()`).
    pub tids: Vec<u32>,
    /// Process ids (the kernel's tgid, `getpid()`).
    pub tgids: Vec<u32>,
    /// cgroup v2 ids (the inode number of the cgroup's directory), the current task's.
    pub cgroups: Vec<u64>,
    /// Lock addresses.
    pub locks: Vec<u64>,
    /// CPUs, as inclusive ranges, where the wait begins.
    pub cpus: Vec<(u32, u32)>,
    /// Exact `contention_begin` flag values ([`LOCK_TYPES`]).
    pub flags: Vec<u32>,
}

impl EventFilter {
    /// True when the filter keeps every event.
    pub fn is_empty(&self) -> bool {
        *self == EventFilter::default()
    }

    /// True when some term can be decided only at the beginning of a wait.
    pub fn has_begin_only_terms(&self) -> bool {
        !self.cpus.is_empty() || !self.flags.is_empty()
    }
}

/// The hidden map that pairs an admitted beginning with its end: key (lock address u64,
/// thread id u32, 4 bytes of zero), value unused (u32).
pub(super) fn pair_map() -> MapDecl {
    MapDecl {
        name: "scl_filter".into(),
        kind: MapKind::LruHash,
        key: Some(Ty::Array(Box::new(Ty::Int(IntTy { signed: false, bits: 8 })), 16)),
        value: Some(Ty::U32),
        key_size: 16,
        value_size: 4,
        max_entries: 16384,
        origin: MapOrigin::Hidden,
    }
}

impl<'m, 'p> FnCx<'m, 'p> {
    /// The filter's guard at the entry of a stock hook (nothing on other targets or without
    /// a filter): every term in turn, a failed one returning from the hook.
    pub(super) fn filter_guard(&mut self) {
        if self.target() != Target::Stock || self.m.filter.is_empty() {
            return;
        }
        let filter = self.m.filter.clone();
        let begin = self.hook.name == "contended";
        if !filter.tids.is_empty() {
            let v = self.tid();
            self.pass_if_any(v, filter.tids.iter().map(|t| (i64::from(*t), i64::from(*t))));
        }
        if !filter.tgids.is_empty() {
            let v = self.b.call(helper::PID_TGID, Vec::new(), ValTy::Int);
            let shift = self.b.iconst(32);
            let v = self.b.bin(BinOp::LShr, Width::W64, v, shift);
            self.pass_if_any(v, filter.tgids.iter().map(|t| (i64::from(*t), i64::from(*t))));
        }
        if !filter.cgroups.is_empty() {
            let v = self.b.call(helper::CGROUP_ID, Vec::new(), ValTy::Int);
            self.pass_if_any(v, filter.cgroups.iter().map(|c| (*c as i64, *c as i64)));
        }
        if !filter.locks.is_empty() {
            let v = self.lock_addr();
            self.pass_if_any(v, filter.locks.iter().map(|l| (*l as i64, *l as i64)));
        }
        if begin {
            if !filter.cpus.is_empty() {
                let v = self.b.call(helper::SMP_ID, Vec::new(), ValTy::Int);
                let v = self.b.ext(32, false, v);
                self.pass_if_any(v, filter.cpus.iter().map(|(lo, hi)| (i64::from(*lo), i64::from(*hi))));
            }
            if !filter.flags.is_empty() {
                let v = self.ctx_arg(1);
                let v = self.b.ext(32, false, v);
                self.pass_if_any(v, filter.flags.iter().map(|f| (i64::from(*f), i64::from(*f))));
            }
        }
        let Some(map) = self.m.pair_map else { return };
        let key_slot = self.b.slot(16, "filter pair");
        let ka = self.b.slot_addr(key_slot, 0);
        let addr = self.lock_addr();
        self.b.store(ka, 0, 8, addr);
        let tid = self.tid();
        let ka = self.b.slot_addr(key_slot, 0);
        self.b.store(ka, 8, 4, tid);
        let zero = self.b.iconst(0);
        let ka = self.b.slot_addr(key_slot, 0);
        self.b.store(ka, 12, 4, zero);
        let key = self.b.slot_addr(key_slot, 0);
        let mref = self.map_ref(map);
        if begin {
            let one = self.b.iconst(1);
            let val = self.spill(one, 4, "filter pair value");
            let flag = self.b.iconst(0);
            let _ = self.b.call(helper::MAP_UPDATE, vec![mref, key, val, flag], ValTy::Int);
        } else {
            // The end of a wait whose beginning the filter admitted: its pair is there.
            let r = self.b.call(helper::MAP_DELETE, vec![mref, key], ValTy::Int);
            let zero = self.b.iconst(0);
            let found = self.b.cmp(Cond::Eq, r, zero);
            let next = self.b.create_block();
            let exit = self.exit;
            self.b.terminate(Terminator::Branch { cond: found, then: next, else_: exit });
            self.b.switch_to(next);
        }
    }

    /// Continues in a new block when `v` lies in any of the inclusive `ranges`, else
    /// returns from the hook.
    fn pass_if_any(&mut self, v: Value, ranges: impl Iterator<Item = (i64, i64)>) {
        let mut any: Option<Value> = None;
        for (lo, hi) in ranges {
            let hit = if lo == hi {
                let c = self.b.iconst(lo);
                self.b.cmp(Cond::Eq, v, c)
            } else {
                let l = self.b.iconst(lo);
                let above = self.b.cmp(Cond::UGe, v, l);
                let h = self.b.iconst(hi);
                let below = self.b.cmp(Cond::ULe, v, h);
                self.b.bin(BinOp::And, Width::W64, above, below)
            };
            any = Some(match any {
                None => hit,
                Some(a) => self.b.bin(BinOp::Or, Width::W64, a, hit),
            });
        }
        let Some(cond) = any else { return };
        let next = self.b.create_block();
        let exit = self.exit;
        self.b.terminate(Terminator::Branch { cond, then: next, else_: exit });
        self.b.switch_to(next);
    }
}
