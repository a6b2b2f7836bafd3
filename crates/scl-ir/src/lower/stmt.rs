//! Statements and control flow: locals, `if`, loops, `return`, and branches on conditions.

use super::*;

impl<'m, 'p> FnCx<'m, 'p> {
    pub(super) fn binding(&self, local: LocalId) -> Option<Binding> {
        self.frames.last().and_then(|f| f.locals.get(&local)).copied()
    }

    pub(super) fn local_ty(&self, local: LocalId) -> Ty {
        self.frames.last().expect("a frame").body.locals[local].ty.clone()
    }

    /// The slot of a plain local, created on first use.
    pub(super) fn local_slot(&mut self, local: LocalId) -> Slot {
        if let Some(Binding::Slot(s)) = self.frames.last().and_then(|f| f.locals.get(&local)) {
            return *s;
        }
        let ty = self.local_ty(local);
        let size = self.program().layout(&ty).size;
        let name = self.frames.last().expect("a frame").body.locals[local].name.clone();
        let slot = self.b.slot(size, name);
        self.frames.last_mut().expect("a frame").locals.insert(local, Binding::Slot(slot));
        slot
    }

    // ------------------------------------------------------------------------------
    // Statements

    pub(super) fn block(&mut self, block: &'p hir::Block) {
        for s in &block.stmts {
            if self.b.is_terminated() {
                // Code after a `return`, `break` or `continue` never runs.
                return;
            }
            self.stmt(s);
        }
    }

    pub(super) fn stmt(&mut self, s: &'p Stmt) {
        match s {
            Stmt::Let(local, init) => {
                let slot = self.fresh_local_slot(*local);
                let ty = self.local_ty(*local);
                match init {
                    Some(e) => {
                        // The statement has no position of its own in the HIR: its
                        // initialiser's line is the `let`'s line.
                        self.b.loc = e.loc;
                        if !ty.is_scalar() {
                            // Padding bytes too: the value may become a map key.
                            let a = self.b.slot_addr(slot, 0);
                            self.zero(a, &ty);
                        }
                        self.store_value(Dest::Slot(slot, 0), &ty, e)
                    }
                    None => {
                        let addr = self.b.slot_addr(slot, 0);
                        self.zero(addr, &ty);
                    }
                }
            }
            Stmt::Assign { place, op, value, loc } => {
                self.b.loc = *loc;
                match op {
                    None => self.store_value(Dest::Place(place, 0), &place.ty, value),
                    Some(op) => {
                        // The right side first: it may open blocks.
                        let rhs = self.expr(value);
                        let kept = may_branch_place(Dest::Place(place, 0)).then(|| self.spill_value(rhs));
                        let ty = place.ty.clone();
                        let size = scalar_size(&ty);
                        let Some((ptr, off)) = self.place_ptr(place) else { return };
                        let rhs = match kept {
                            Some(slot) => self.reload(slot),
                            None => rhs,
                        };
                        let old = self.b.load(ptr, off, size);
                        let old = self.canon_load(old, &ty);
                        let v = self.arith(*op, &ty, old, rhs, &value.ty);
                        self.b.store(ptr, off, size, v);
                    }
                }
            }
            Stmt::Expr(e) => {
                self.b.loc = e.loc;
                let _ = self.expr(e);
            }
            Stmt::If { arms, else_ } => {
                let join = self.b.create_block();
                for (cond, body) in arms {
                    let then = self.b.create_block();
                    let next = self.b.create_block();
                    self.cond(cond, then, next);
                    self.b.switch_to(then);
                    self.block(body);
                    self.b.terminate(Terminator::Jump(join));
                    self.b.switch_to(next);
                }
                if let Some(e) = else_ {
                    self.block(e);
                }
                self.b.terminate(Terminator::Jump(join));
                self.b.switch_to(join);
            }
            Stmt::For { var, start, end, body, loc } => {
                // A hidden counter drives the loop; the loop variable gets its value at the
                // top of each iteration, so assigning the variable in the body cannot change
                // how many times the loop runs (the kernel verifier relies on that bound).
                self.b.loc = *loc;
                let slot = self.fresh_local_slot(*var);
                let ty = self.local_ty(*var);
                let size = scalar_size(&ty);
                let counter = self.b.slot(8, "loop counter");
                let ca = self.b.slot_addr(counter, 0);
                let s = self.b.iconst(*start as i64);
                self.b.store(ca, 0, 8, s);
                let header = self.b.create_block();
                let body_block = self.b.create_block();
                let latch = self.b.create_block();
                let exit = self.b.create_block();
                self.b.terminate(Terminator::Jump(header));
                self.b.switch_to(header);
                let ca = self.b.slot_addr(counter, 0);
                let i = self.b.load(ca, 0, 8);
                let e = self.b.iconst(*end as i64);
                let cond = if int_of(&ty).signed { Cond::SLt } else { Cond::ULt };
                let c = self.b.cmp(cond, i, e);
                self.b.terminate(Terminator::Branch { cond: c, then: body_block, else_: exit });
                self.b.switch_to(body_block);
                let ca = self.b.slot_addr(counter, 0);
                let i = self.b.load(ca, 0, 8);
                let va = self.b.slot_addr(slot, 0);
                self.b.store(va, 0, size, i);
                self.loops.push((latch, exit));
                self.loop_depth += 1;
                self.block(body);
                self.loop_depth -= 1;
                self.loops.pop();
                self.b.terminate(Terminator::Jump(latch));
                self.b.switch_to(latch);
                let ca = self.b.slot_addr(counter, 0);
                let i = self.b.load(ca, 0, 8);
                let one = self.b.iconst(1);
                let next = self.b.bin(BinOp::Add, Width::W64, i, one);
                self.b.store(ca, 0, 8, next);
                self.b.terminate(Terminator::Jump(header));
                self.b.switch_to(exit);
            }
            Stmt::Return(value, loc) => {
                self.b.loc = *loc;
                let target = self.frames.last().and_then(|f| f.ret);
                match target {
                    Some((result, cont)) => {
                        if let (Some(slot), Some(e)) = (result, value) {
                            let v = self.expr(e);
                            let addr = self.b.slot_addr(slot, 0);
                            self.b.store(addr, 0, 8, v);
                        }
                        self.b.terminate(Terminator::Jump(cont));
                    }
                    None => {
                        let v = match value {
                            Some(e) => self.expr(e),
                            None => self.void_result(),
                        };
                        self.b.terminate(Terminator::Return(v));
                    }
                }
            }
            Stmt::Break => {
                if let Some(&(_, exit)) = self.loops.last() {
                    self.b.terminate(Terminator::Jump(exit));
                }
            }
            Stmt::Continue => {
                if let Some(&(latch, _)) = self.loops.last() {
                    self.b.terminate(Terminator::Jump(latch));
                }
            }
            Stmt::Block(b) => self.block(b),
        }
    }

    /// A new slot for a local (a `let` or loop variable gets fresh storage each time it is
    /// declared, so shadowing works).
    pub(super) fn fresh_local_slot(&mut self, local: LocalId) -> Slot {
        let ty = self.local_ty(local);
        let size = self.program().layout(&ty).size;
        let name = self.frames.last().expect("a frame").body.locals[local].name.clone();
        let slot = match self.frames.last().and_then(|f| f.locals.get(&local)) {
            Some(Binding::Slot(s)) => *s,
            _ => self.b.slot(size, name),
        };
        self.frames.last_mut().expect("a frame").locals.insert(local, Binding::Slot(slot));
        slot
    }

    /// Branches to `then` if `cond` holds, else to `else_`.
    pub(super) fn cond(&mut self, cond: &'p HCond, then: Block, else_: Block) {
        match cond {
            HCond::Expr(e) => self.branch_on(e, then, else_),
            HCond::MapGet { local, map, key, loc, create: false } => {
                self.b.loc = *loc;
                let p = self.lookup(*map, key);
                let slot = self.branch_if_found(p, "if let", then, else_);
                self.frames.last_mut().expect("a frame").locals.insert(*local, Binding::Ref(slot, ValTy::MapValue));
            }
            HCond::MapGet { local, map, key, loc, create: true } => {
                // `m.entry(k)`: look up; on a miss create the entry from zeroes with
                // BPF_NOEXIST (a CPU that loses the race finds the winner's) and look up
                // again; `else_` only if the map refuses it (full).
                self.b.loc = *loc;
                let mid = self.m.state_maps[map];
                let (key_size, value_size) = (self.m.module.maps[mid].key_size, self.m.module.maps[mid].value_size);
                let key_slot = self.materialize(key, key_size);
                let k = self.b.slot_addr(key_slot, 0);
                let missing = self.b.create_block();
                let slot = self.lookup_branch(mid, k, then, missing);
                self.b.switch_to(missing);
                let size = value_size.div_ceil(8) * 8;
                if size <= cat::limits::ZERO_ON_STACK_MAX {
                    let zs = self.b.slot(size, "zero value");
                    let za = self.b.slot_addr(zs, 0);
                    self.b.push(InstData::MemZero { ptr: za, size });
                    let za = self.b.slot_addr(zs, 0);
                    self.create_entry_or(mid, key_slot, za, slot, then, else_);
                } else {
                    let zm = self.m.zero_map_of(size);
                    let zkey_v = self.b.iconst(0);
                    let zkey = self.spill(zkey_v, 4, "zero key");
                    let zref = self.map_ref(zm);
                    let zptr = self.b.call(helper::MAP_LOOKUP, vec![zref, zkey], ValTy::MapValueOrNull);
                    let have_zero = self.b.create_block();
                    self.branch_if_found_in(zptr, slot, have_zero, else_);
                    self.b.switch_to(have_zero);
                    let zaddr = self.b.slot_addr(slot, 0);
                    let zval = self.b.load_ptr(zaddr, 0, ValTy::MapValue);
                    self.create_entry_or(mid, key_slot, zval, slot, then, else_);
                }
                self.frames.last_mut().expect("a frame").locals.insert(*local, Binding::Ref(slot, ValTy::MapValue));
            }
        }
    }

    /// Branches on a boolean expression. Outside loops `&&`, `||` and `!` become control
    /// flow (one conditional jump per operand, no 0/1 values); inside a loop every branch
    /// is another path for the kernel verifier to walk on each iteration, so there the
    /// condition is computed as a value (branch-free where it can be) and tested once.
    pub(super) fn branch_on(&mut self, e: &'p hir::Expr, then: Block, else_: Block) {
        if self.loop_depth == 0 {
            match &e.kind {
                ExprKind::Binary(HBin::And, a, b) => {
                    let rhs = self.b.create_block();
                    self.branch_on(a, rhs, else_);
                    self.b.switch_to(rhs);
                    return self.branch_on(b, then, else_);
                }
                ExprKind::Binary(HBin::Or, a, b) => {
                    let rhs = self.b.create_block();
                    self.branch_on(a, then, rhs);
                    self.b.switch_to(rhs);
                    return self.branch_on(b, then, else_);
                }
                ExprKind::Unary(UnOp::Not, a) if matches!(a.ty, Ty::Bool) => {
                    return self.branch_on(a, else_, then);
                }
                _ => {}
            }
        }
        self.b.loc = e.loc;
        let v = self.expr(e);
        self.b.terminate(Terminator::Branch { cond: v, then, else_ });
    }

    /// Keeps a lookup's result `p` in a new slot (IR values do not cross blocks) and ends
    /// the block with a branch to `hit` when it is not null, else to `miss`. In `hit`,
    /// [`Self::reload_ptr`] of the returned slot gives the pointer back, known not null: the
    /// spilled copy shares the checked register's identity in the kernel verifier.
    pub(super) fn branch_if_found(&mut self, p: Value, name: impl Into<String>, hit: Block, miss: Block) -> Slot {
        let slot = self.b.slot(8, name);
        self.branch_if_found_in(p, slot, hit, miss);
        slot
    }

    /// [`Self::branch_if_found`], keeping `p` in the given slot.
    pub(super) fn branch_if_found_in(&mut self, p: Value, slot: Slot, hit: Block, miss: Block) {
        let sa = self.b.slot_addr(slot, 0);
        self.b.store(sa, 0, 8, p);
        let zero = self.b.iconst(0);
        let found = self.b.cmp(Cond::Ne, p, zero);
        self.b.terminate(Terminator::Branch { cond: found, then: hit, else_: miss });
    }

    /// `map_lookup_elem(map, key)` for a key already on the stack, then
    /// [`Self::branch_if_found`].
    pub(super) fn lookup_branch(&mut self, map: MapId, key: Value, hit: Block, miss: Block) -> Slot {
        let mref = self.map_ref(map);
        let p = self.b.call(helper::MAP_LOOKUP, vec![mref, key], ValTy::MapValueOrNull);
        self.branch_if_found(p, "lookup ptr", hit, miss)
    }

    /// The map-value pointer kept in `slot` by [`Self::branch_if_found`].
    pub(super) fn reload_ptr(&mut self, slot: Slot) -> Value {
        let sa = self.b.slot_addr(slot, 0);
        self.b.load_ptr(sa, 0, ValTy::MapValue)
    }
}
