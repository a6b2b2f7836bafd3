//! A hook's body, and the state it looks up: where each lookup goes (before the first
//! statement that uses it, or inside a guard), how a missing entry is created or read as
//! zero, and the fields a reorder hook reads right at the lookup.

use super::*;

impl<'m, 'p> FnCx<'m, 'p> {
    pub(super) fn lower_hook(mut self, body: &'p Body) -> Function {
        let entry = self.b.func.entry();
        self.b.switch_to(entry);
        // A void hook that calls `sleep_after` (only where the hook may sleep: the checker's
        // context rule) returns the total it asked for, from every exit.
        if !self.hook.returns_bool && walk::calls_builtin(self.program(), &body.block.stmts, "sleep_after") {
            let slot = self.b.slot(8, "sleep_after");
            let a = self.b.slot_addr(slot, 0);
            let zero = self.b.iconst(0);
            self.b.store(a, 0, 8, zero);
            self.sleep_slot = Some(slot);
        }
        // The exit block: the default result (0: "no", or the sleep asked for) for early
        // exits.
        self.b.switch_to(self.exit);
        let result = if self.hook.returns_bool { self.b.iconst(0) } else { self.void_result() };
        self.b.terminate(Terminator::Return(result));
        self.b.switch_to(entry);
        self.filter_guard();
        self.stock_flags_prologue();
        // Each piece of state is looked up right before the first top-level statement
        // that uses it: that lookup dominates every later use, and an early return before
        // it costs no lookup.
        let mut pending = states_used(self.program(), &body.block.stmts);
        self.to_preread = pending.iter().filter_map(|id| self.prereads(*id).map(|f| (*id, f))).collect();
        let zero_slot = self.zero_area(&pending);
        for s in &body.block.stmts {
            if self.b.is_terminated() {
                // Code after a `return` never runs.
                break;
            }
            let used: Vec<StateId> =
                states_used(self.program(), std::slice::from_ref(s)).into_iter().filter(|id| pending.contains(id)).collect();
            if let Some((ops, k, body)) = self.guard_before_state(s, &used) {
                pending.retain(|id| !used.contains(id));
                self.lower_guard(ops, k, body, &used, zero_slot);
                continue;
            }
            for id in used {
                pending.retain(|p| *p != id);
                self.look_up_state(id, zero_slot);
            }
            self.stmt(s);
        }
        if !self.b.is_terminated() {
            let result = self.void_result();
            self.b.terminate(Terminator::Return(result));
        }
        let mut func = self.b.finish();
        crate::opt::remove_unreachable(&mut func);
        func
    }

    /// A guard `if A1 || ... || An { ...; return; }` whose first operands test no state
    /// of `used` (the state the statement needs and that is not looked up yet) and whose
    /// body neither uses that state nor continues: its operands, the index of the first
    /// one that uses the state, and its body. Such a guard looks the state up only once
    /// those first operands have let it through (`if l.is_reader || stats.start == 0
    /// { return; }` costs a reader no lookup): every path past the `if` goes through the
    /// lookup, and the paths that skip it end in the body's `return`. The operands before
    /// the lookup must have no effects, since a failed lookup returns from the hook.
    pub(super) fn guard_before_state(&self, s: &'p Stmt, used: &[StateId]) -> Option<(Vec<&'p hir::Expr>, usize, &'p hir::Block)> {
        fn operands<'e>(e: &'e hir::Expr, out: &mut Vec<&'e hir::Expr>) {
            match &e.kind {
                ExprKind::Binary(HBin::Or, a, b) => {
                    operands(a, out);
                    operands(b, out);
                }
                _ => out.push(e),
            }
        }
        if used.is_empty() {
            return None;
        }
        let Stmt::If { arms, else_: None } = s else { return None };
        let [(HCond::Expr(cond), body)] = arms.as_slice() else { return None };
        if !matches!(body.stmts.last(), Some(Stmt::Return(..))) {
            return None;
        }
        let program = self.program();
        if states_used(program, &body.stmts).iter().any(|id| used.contains(id)) {
            return None;
        }
        let mut ops = Vec::new();
        operands(cond, &mut ops);
        let uses = |e: &hir::Expr| states_used_in(program, &[], &[e]).iter().any(|id| used.contains(id));
        let k = ops.iter().position(|e| uses(e))?;
        let pure = |e: &hir::Expr| {
            let mut pure = true;
            walk(program, &[], &[e], &mut HashSet::default(), &mut |x| {
                pure &= match &x.kind {
                    ExprKind::Call(..) | ExprKind::Method(..) => false,
                    ExprKind::Builtin(b, _) => matches!(b.name, "now" | "cpu" | "numa_node" | "tid" | "tgid" | "min" | "max" | "log2"),
                    _ => true,
                };
            });
            pure
        };
        (k > 0 && ops[..k].iter().all(|e| pure(e))).then_some((ops, k, body))
    }

    /// Lowers a guard [`Self::guard_before_state`] found, looking up `used` before its
    /// operand `k`.
    pub(super) fn lower_guard(&mut self, ops: Vec<&'p hir::Expr>, k: usize, body: &'p hir::Block, used: &[StateId], zero_slot: Option<Slot>) {
        let then = self.b.create_block();
        let join = self.b.create_block();
        for (i, op) in ops.iter().enumerate() {
            if i == k {
                for id in used {
                    self.look_up_state(*id, zero_slot);
                }
            }
            let next = if i + 1 == ops.len() { join } else { self.b.create_block() };
            self.branch_on(op, then, next);
            self.b.switch_to(next);
        }
        self.b.switch_to(then);
        self.block(body);
        self.b.terminate(Terminator::Jump(join));
        self.b.switch_to(join);
    }

    /// On stock, `contended` records the tracepoint's flags for `contention_end`.
    pub(super) fn stock_flags_prologue(&mut self) {
        if self.hook.name == "contended" && self.target() == Target::Stock {
            if let Some(map) = self.m.flags_map {
                // Record the flags for `contention_end`, keyed by thread: in place when
                // the thread has an entry (a lookup), else by an update, which for an LRU
                // map takes its lock and recycles an element.
                let tid = self.tid();
                let key_slot = self.b.slot(8, "flags key");
                let ka = self.b.slot_addr(key_slot, 0);
                self.b.store(ka, 0, 4, tid);
                let ka = self.b.slot_addr(key_slot, 0);
                let hit = self.b.create_block();
                let miss = self.b.create_block();
                let join = self.b.create_block();
                let ptr_slot = self.lookup_branch(map, ka, hit, miss);
                self.b.switch_to(hit);
                let p = self.reload_ptr(ptr_slot);
                let flags = self.ctx_arg(1);
                self.b.store(p, 0, 4, flags);
                self.b.terminate(Terminator::Jump(join));
                self.b.switch_to(miss);
                let flags = self.ctx_arg(1);
                let val = self.spill(flags, 4, "flags");
                let ka = self.b.slot_addr(key_slot, 0);
                let mref = self.map_ref(map);
                let flag = self.b.iconst(0);
                let _ = self.b.call(helper::MAP_UPDATE, vec![mref, ka, val, flag], ValTy::Int);
                self.b.terminate(Terminator::Jump(join));
                self.b.switch_to(join);
            }
        }
    }

    /// The zeroed stack bytes small missing entries read as (and are created from): one
    /// area for all the state `used`, as large as the largest. A reorder hook keeps a
    /// pointer to it as the state's pointer, so there it lives for the whole program.
    pub(super) fn zero_area(&mut self, used: &[StateId]) -> Option<Slot> {
        let zero_bytes = used
            .iter()
            .filter(|id| matches!(self.program().states[**id].storage, StateStorage::PerLock | StateStorage::PerThread))
            .filter(|id| !self.to_preread.contains_key(*id))
            .map(|id| self.program().layout(&self.program().states[*id].ty).size.div_ceil(8) * 8)
            .filter(|size| *size <= cat::limits::ZERO_ON_STACK_MAX)
            .max();
        let reorder = !self.hook.may_write_state;
        zero_bytes.map(|size| match reorder {
            true => self.b.slot_for_function(size, "zero value"),
            false => self.b.slot(size, "zero value"),
        })
    }

    /// Looks up the entry of state `id` for this lock, thread or CPU and keeps the pointer
    /// in a slot; a missing `per_lock`/`per_thread` entry is created zeroed (or, in a
    /// reorder hook, read as zeroes); if the map cannot give an entry the hook returns.
    pub(super) fn look_up_state(&mut self, id: StateId, zero_slot: Option<Slot>) {
        let reorder = !self.hook.may_write_state;
        {
            let storage = self.program().states[id].storage.clone();
            let Some(&map) = self.m.state_maps.get(&id) else { return };
            let (key_value, key_size) = match storage {
                StateStorage::Global | StateStorage::PerCpu => (self.b.iconst(0), 4),
                StateStorage::PerLock => (self.lock_addr(), 8),
                StateStorage::PerThread => (self.tid(), 4),
                _ => return,
            };
            let key_slot = self.b.slot(8, "state key");
            let ka = self.b.slot_addr(key_slot, 0);
            self.b.store(ka, 0, key_size as u8, key_value);
            let key = self.b.slot_addr(key_slot, 0);
            let mref = self.map_ref(map);
            let ptr = self.b.call(helper::MAP_LOOKUP, vec![mref, key], ValTy::MapValueOrNull);
            if let Some(fields) = self.to_preread.remove(&id) {
                // Read the few fields the hook uses now: zero if the entry is missing.
                let slots: Vec<(Vec<usize>, Slot, i64, u8)> = fields
                    .into_iter()
                    .map(|(path, off, size)| {
                        let slot = self.b.slot(8, format!("{}.{path:?}", self.program().states[id].name));
                        let a = self.b.slot_addr(slot, 0);
                        let z = self.b.iconst(0);
                        self.b.store(a, 0, 8, z);
                        (path, slot, off, size)
                    })
                    .collect();
                let hit = self.b.create_block();
                let next = self.b.create_block();
                let pslot = self.branch_if_found(ptr, "entry", hit, next);
                self.b.switch_to(hit);
                let p = self.reload_ptr(pslot);
                for (_, slot, off, size) in &slots {
                    let (p, off) = match i16::try_from(*off) {
                        Ok(o) => (p, o),
                        Err(_) => (self.offset_ptr_wide(p, *off), 0),
                    };
                    let v = self.b.load(p, off, *size);
                    let a = self.b.slot_addr(*slot, 0);
                    self.b.store(a, 0, 8, v);
                }
                self.b.terminate(Terminator::Jump(next));
                self.b.switch_to(next);
                for (path, slot, _, _) in slots {
                    self.preread.insert((id, path), slot);
                }
                return;
            }
            let next = self.b.create_block();
            let missing = self.b.create_block();
            let name = format!("&{}", self.program().states[id].name);
            let slot = self.branch_if_found(ptr, name, next, missing);
            self.b.switch_to(missing);
            let creates = matches!(storage, StateStorage::PerLock | StateStorage::PerThread);
            let size = self.program().layout(&self.program().states[id].ty).size.div_ceil(8) * 8;
            let on_stack = zero_slot.filter(|_| size <= cat::limits::ZERO_ON_STACK_MAX);
            match (creates, on_stack, self.m.zero_map) {
                (true, Some(zs), _) => {
                    let za = self.b.slot_addr(zs, 0);
                    self.b.push(InstData::MemZero { ptr: za, size });
                    let za = self.b.slot_addr(zs, 0);
                    if reorder {
                        let saddr = self.b.slot_addr(slot, 0);
                        self.b.store(saddr, 0, 8, za);
                        self.b.terminate(Terminator::Jump(next));
                    } else {
                        self.create_entry(map, key_slot, za, slot, next);
                    }
                }
                (true, None, Some(zm)) => {
                    // A missing entry reads as the all-zero map's value; unless this hook
                    // may not write state, the entry is then created from it.
                    let zkey_v = self.b.iconst(0);
                    let zkey = self.spill(zkey_v, 4, "zero key");
                    let zref = self.map_ref(zm);
                    let zptr = self.b.call(helper::MAP_LOOKUP, vec![zref, zkey], ValTy::MapValueOrNull);
                    let have_zero = self.b.create_block();
                    self.branch_if_found_in(zptr, slot, have_zero, self.exit);
                    self.b.switch_to(have_zero);
                    if reorder {
                        self.b.terminate(Terminator::Jump(next));
                    } else {
                        let zaddr = self.b.slot_addr(slot, 0);
                        let zval = self.b.load_ptr(zaddr, 0, ValTy::MapValue);
                        self.create_entry(map, key_slot, zval, slot, next);
                    }
                }
                _ => self.b.terminate(Terminator::Jump(self.exit)),
            }
            self.b.switch_to(next);
            self.state_ptrs.insert(id, slot);
        }
    }

    /// In a reorder hook (which writes no state), the fields of `per_lock`/`per_thread`
    /// state `id` to read where the state is looked up, when the hook (with the functions
    /// it calls) reads at most two distinct fields of it and nothing else: their paths,
    /// byte offsets and sizes. Reading them there, zero for a missing entry, costs a
    /// branch and a load each instead of a zeroed copy of the entry on the stack.
    pub(super) fn prereads(&self, id: StateId) -> Option<Vec<(Vec<usize>, i64, u8)>> {
        if self.hook.may_write_state {
            return None;
        }
        let program = self.program();
        if !matches!(program.states[id].storage, StateStorage::PerLock | StateStorage::PerThread) {
            return None;
        }
        let mut paths: Vec<Vec<usize>> = Vec::new();
        let mut other_use = false;
        let mut seen = HashSet::default();
        let note = |p: &hir::Place, paths: &mut Vec<Vec<usize>>, other_use: &mut bool| {
            if !matches!(p.base, PlaceBase::State(s) if s == id) {
                return;
            }
            match field_path(p) {
                Some(path) if p.ty.is_scalar() => {
                    if !paths.contains(&path) {
                        paths.push(path);
                    }
                }
                _ => *other_use = true,
            }
        };
        walk_stmts(program, &self.frames[0].body.block.stmts, &mut seen, &mut |e| match &e.kind {
            ExprKind::Read(p) => note(p, &mut paths, &mut other_use),
            ExprKind::Call(_, args) | ExprKind::Builtin(_, args) => {
                for a in args {
                    if let Arg::Place(p) = a {
                        if matches!(p.base, PlaceBase::State(s) if s == id) {
                            other_use = true;
                        }
                    }
                }
            }
            _ => {}
        });
        if other_use || paths.is_empty() || paths.len() > 2 {
            return None;
        }
        paths
            .into_iter()
            .map(|path| {
                let mut ty = program.states[id].ty.clone();
                let mut off = 0i64;
                for &i in &path {
                    let Ty::Struct(st) = &ty else { return None };
                    let f = &program.structs[*st].fields[i];
                    off += i64::from(f.offset);
                    ty = f.ty.clone();
                }
                Some((path, off, scalar_size(&ty)))
            })
            .collect()
    }

    /// Creates the missing entry of `map` under the key in `key_slot` from the zeroed
    /// value at `zval`, looks it up again into `slot`, and goes on at `next` (or leaves, if
    /// the map could not take it).
    pub(super) fn create_entry(&mut self, map: MapId, key_slot: Slot, zval: Value, slot: Slot, next: Block) {
        let exit = self.exit;
        self.create_entry_or(map, key_slot, zval, slot, next, exit);
    }

    /// Creates the entry under the key in `key_slot` from the value at `zval` unless one is
    /// there (`BPF_NOEXIST`), looks it up into `slot`, and goes to `next`, or to `failed` if
    /// there is still none (a full map).
    pub(super) fn create_entry_or(&mut self, map: MapId, key_slot: Slot, zval: Value, slot: Slot, next: Block, failed: Block) {
        let key2 = self.b.slot_addr(key_slot, 0);
        let mref = self.map_ref(map);
        let noexist = self.b.iconst(1);
        let _ = self.b.call(helper::MAP_UPDATE, vec![mref, key2, zval, noexist], ValTy::Int);
        let key3 = self.b.slot_addr(key_slot, 0);
        let mref = self.map_ref(map);
        let p2 = self.b.call(helper::MAP_LOOKUP, vec![mref, key3], ValTy::MapValueOrNull);
        self.branch_if_found_in(p2, slot, next, failed);
    }
}
