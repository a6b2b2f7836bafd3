//! Places and memory: pointers to state, locals, map values and their fields and elements;
//! loads, stores, zeroing, and map keys and values passed by pointer.

use super::*;

impl<'m, 'p> FnCx<'m, 'p> {
    /// `map_lookup_elem(map, &key)`.
    pub(super) fn lookup(&mut self, map: StateId, key: &'p hir::Expr) -> Value {
        let mid = self.m.state_maps[&map];
        let key_size = self.m.module.maps[mid].key_size;
        let k = self.arg_ptr(key, key_size);
        let mref = self.map_ref(mid);
        self.b.call(helper::MAP_LOOKUP, vec![mref, k], ValTy::MapValueOrNull)
    }

    /// A pointer to `size` bytes holding `e`, for a helper argument: the state field `e`
    /// reads, if it is one of exactly that size (a map value the helper may read), else a
    /// new stack slot the value is stored in.
    pub(super) fn arg_ptr(&mut self, e: &'p hir::Expr, size: u32) -> Value {
        // A local used as a map key more than once is passed from its own slot: it then
        // stays on the stack, stored once, rather than stored again for every call.
        if let ExprKind::Read(p) = &e.kind {
            if let (PlaceBase::Local(l), true) = (p.base, p.projections.is_empty()) {
                let own = matches!(self.binding(l), Some(Binding::Slot(_)) | None);
                let body = self.frames.last().expect("a frame").body;
                if own && self.program().layout(&e.ty).size == size && e.ty.is_scalar() && key_reads(&body.block, l) > 1 {
                    let slot = self.local_slot(l);
                    return self.b.slot_addr(slot, 0);
                }
            }
        }
        if let ExprKind::Read(p) = &e.kind {
            let in_map = matches!(p.base, PlaceBase::State(id) if !matches!(self.program().states[id].storage, StateStorage::Config(_)));
            if in_map && self.program().layout(&e.ty).size == size {
                if let Some((ptr, off)) = self.place_ptr(p) {
                    return self.offset_ptr(ptr, off);
                }
            }
        }
        let slot = self.materialize(e, size);
        self.b.slot_addr(slot, 0)
    }

    /// A stack slot holding `e` (`size` bytes), for helper arguments.
    pub(super) fn materialize(&mut self, e: &'p hir::Expr, size: u32) -> Slot {
        let slot = self.b.slot(size.max(8), "tmp");
        if !e.ty.is_scalar() {
            // Padding bytes are part of a key (and of a value user space reads): zero them.
            let a = self.b.slot_addr(slot, 0);
            self.b.push(InstData::MemZero { ptr: a, size: size.div_ceil(8) * 8 });
        }
        self.store_value(Dest::Slot(slot, 0), &e.ty, e);
        slot
    }

    /// Keeps a scalar in a new stack slot, so it survives new blocks.
    pub(super) fn spill_value(&mut self, v: Value) -> Slot {
        let slot = self.b.slot(8, "spill");
        let a = self.b.slot_addr(slot, 0);
        self.b.store(a, 0, 8, v);
        slot
    }

    /// Reads back a scalar kept by [`Self::spill_value`].
    pub(super) fn reload(&mut self, slot: Slot) -> Value {
        let a = self.b.slot_addr(slot, 0);
        self.b.load(a, 0, 8)
    }

    /// The pointer of a destination, derived in the current block.
    pub(super) fn dest_ptr(&mut self, d: Dest<'p>) -> Option<(Value, i16)> {
        match d {
            Dest::Slot(slot, off) => Some((self.b.slot_addr(slot, 0), off as i16)),
            Dest::Place(p, off) => self.place_ptr(p).map(|(ptr, o)| (ptr, o + off as i16)),
        }
    }

    pub(super) fn dest_field(d: Dest<'p>, extra: u32) -> Dest<'p> {
        match d {
            Dest::Slot(s, off) => Dest::Slot(s, off + extra),
            Dest::Place(p, off) => Dest::Place(p, off + extra),
        }
    }

    /// Stores `e` of type `ty` at `dest` (scalars, struct literals, copies, zero).
    pub(super) fn store_value(&mut self, dest: Dest<'p>, ty: &Ty, e: &'p hir::Expr) {
        if ty.is_scalar() {
            let v = self.expr(e);
            let before = self.b.block;
            let v_slot = (!matches!(dest, Dest::Slot(..)) && may_branch_place(dest)).then(|| self.spill_value(v));
            let Some((ptr, off)) = self.dest_ptr(dest) else { return };
            let v = match v_slot {
                Some(s) => self.reload(s),
                None => {
                    debug_assert_eq!(before, self.b.block);
                    v
                }
            };
            self.b.store(ptr, off, scalar_size(ty), v);
            return;
        }
        match &e.kind {
            ExprKind::Const(0) => {
                if let Some((ptr, off)) = self.dest_ptr(dest) {
                    let p = self.offset_ptr(ptr, off);
                    self.zero(p, ty);
                }
            }
            ExprKind::Struct(s, fields) => {
                let sd = &self.program().structs[*s];
                let offsets: Vec<(u32, Ty)> = sd.fields.iter().map(|f| (f.offset, f.ty.clone())).collect();
                for ((foff, fty), fe) in offsets.into_iter().zip(fields) {
                    self.store_value(Self::dest_field(dest, foff), &fty, fe);
                }
            }
            ExprKind::Read(place) => {
                let size = self.program().layout(ty).size;
                let Some((src, soff)) = self.place_ptr(place) else { return };
                let src = self.offset_ptr(src, soff);
                let src_ty = self.b.func.values[src].ty;
                let src_slot = self.spill_value(src);
                let Some((ptr, off)) = self.dest_ptr(dest) else { return };
                let dst = self.offset_ptr(ptr, off);
                let sa = self.b.slot_addr(src_slot, 0);
                let src = self.b.load_ptr(sa, 0, src_ty);
                self.b.push(InstData::MemCopy { dst_ptr: dst, src, size });
            }
            _ => {
                let _ = self.expr(e);
            }
        }
    }

    pub(super) fn offset_ptr(&mut self, ptr: Value, off: i16) -> Value {
        self.offset_ptr_wide(ptr, i64::from(off))
    }

    /// `ptr + off` for any offset into a value (up to `MAX_VALUE_BYTES`).
    pub(super) fn offset_ptr_wide(&mut self, ptr: Value, off: i64) -> Value {
        if off == 0 {
            return ptr;
        }
        let o = self.b.iconst(off);
        self.b.ptr_add(ptr, o)
    }

    pub(super) fn zero(&mut self, ptr: Value, ty: &Ty) {
        let size = self.program().layout(ty).size;
        if ty.is_scalar() {
            let z = self.b.iconst(0);
            self.b.store(ptr, 0, scalar_size(ty), z);
        } else {
            self.b.push(InstData::MemZero { ptr, size });
        }
    }

    // ------------------------------------------------------------------------------
    // Places

    /// A pointer and constant offset for a place in memory; `None` for the read-only views
    /// (lock and waiter fields, per_waiter state), which `read_place` handles.
    ///
    /// Fields and constant indexes are offsets. Run-time indexes are evaluated first, in
    /// order, each kept in a slot; then every one is checked against its array's length
    /// before any pointer arithmetic, and the element's address is computed only on the path
    /// where all are in range. Any index out of range redirects the whole place to one zeroed
    /// scratch of the place's own type (reads give 0, writes go nowhere), so a nested array
    /// `a[i][j]` needs the element's bytes of stack, not an inner row's.
    pub(super) fn place_ptr(&mut self, p: &'p hir::Place) -> Option<(Value, i16)> {
        // Places that are not in memory, decided before any index opens a block.
        match p.base {
            PlaceBase::Local(l) if matches!(self.binding(l), Some(Binding::Lock | Binding::Waiter(_) | Binding::Ok | Binding::Value(_))) => return None,
            PlaceBase::State(id) if !matches!(self.program().states[id].storage, StateStorage::Config(_)) && !self.state_ptrs.contains_key(&id) => return None,
            _ => {}
        }
        // The run-time indexes, in order: the projection, its value's slot, the length.
        let mut checks: Vec<(usize, Slot, u32)> = Vec::new();
        {
            let mut ty = match p.base {
                PlaceBase::Local(l) => self.local_ty(l),
                PlaceBase::State(id) => self.program().states[id].ty.clone(),
                PlaceBase::LockField(_) | PlaceBase::WaiterField(..) | PlaceBase::PerWaiter(..) => return None,
            };
            for (k, pr) in p.projections.iter().enumerate() {
                match pr {
                    Projection::Field(i) => {
                        let Ty::Struct(s) = &ty else { return None };
                        ty = self.program().structs[*s].fields[*i].ty.clone();
                    }
                    Projection::Index(idx) => {
                        let Ty::Array(elem, n) = ty.clone() else { return None };
                        let constant = matches!(idx.kind, ExprKind::Const(c) if (0..i128::from(n)).contains(&c));
                        if !constant {
                            let i = self.expr(idx);
                            checks.push((k, self.spill_value(i), n));
                        }
                        ty = *elem;
                    }
                }
            }
        }
        // All in range: on to the element; any out of range: to the scratch.
        let routed = (!checks.is_empty()).then(|| {
            let bad = self.b.create_block();
            for &(_, slot, n) in &checks {
                let i = self.reload(slot);
                let bound = self.b.iconst(i64::from(n));
                let inside = self.b.cmp(Cond::ULt, i, bound);
                let ok = self.b.create_block();
                self.b.terminate(Terminator::Branch { cond: inside, then: ok, else_: bad });
                self.b.switch_to(ok);
            }
            bad
        });
        let (mut ptr, mut off, mut ty) = match p.base {
            PlaceBase::Local(l) => match self.binding(l) {
                Some(Binding::Ref(slot, vt)) => {
                    let a = self.b.slot_addr(slot, 0);
                    (self.b.load_ptr(a, 0, vt), 0i64, self.local_ty(l))
                }
                Some(Binding::Lock | Binding::Waiter(_) | Binding::Ok | Binding::Value(_)) => return None,
                Some(Binding::Slot(_)) | None => {
                    let s = self.local_slot(l);
                    (self.b.slot_addr(s, 0), 0, self.local_ty(l))
                }
            },
            PlaceBase::State(id) => {
                let st = &self.program().states[id];
                let ty = st.ty.clone();
                match st.storage {
                    StateStorage::Config(_) => {
                        let offset = self.m.rodata[&id];
                        let dst = self.b.value(ValTy::MapValue);
                        self.b.push(InstData::Rodata { dst, offset });
                        (dst, 0, ty)
                    }
                    _ => {
                        let slot = *self.state_ptrs.get(&id)?;
                        let a = self.b.slot_addr(slot, 0);
                        (self.b.load_ptr(a, 0, ValTy::MapValue), 0, ty)
                    }
                }
            }
            PlaceBase::LockField(_) | PlaceBase::WaiterField(..) | PlaceBase::PerWaiter(..) => return None,
        };
        let mut next_check = checks.iter().peekable();
        for (k, pr) in p.projections.iter().enumerate() {
            match pr {
                Projection::Field(i) => {
                    let Ty::Struct(s) = &ty else { return None };
                    let f = &self.program().structs[*s].fields[*i];
                    off += i64::from(f.offset);
                    ty = f.ty.clone();
                }
                Projection::Index(idx) => {
                    let Ty::Array(elem, n) = ty.clone() else { return None };
                    let esize = self.program().layout(&elem).size;
                    ty = *elem;
                    if let Some(&&(_, slot, _)) = next_check.peek().filter(|c| c.0 == k) {
                        next_check.next();
                        let i = self.reload(slot);
                        // The kernel verifier knows the bound from the check above (the
                        // reloaded index shares the checked register's identity); for a
                        // power-of-two length, `i & (n - 1)` (which is `i` here) states it
                        // outright.
                        let i = if n.is_power_of_two() {
                            let mask = self.b.iconst(i64::from(n) - 1);
                            self.b.bin(BinOp::And, Width::W64, i, mask)
                        } else {
                            i
                        };
                        let base = self.offset_ptr_wide(ptr, off);
                        let sz = self.b.iconst(i64::from(esize));
                        let byte = self.b.bin(BinOp::Mul, Width::W64, i, sz);
                        ptr = self.b.ptr_add(base, byte);
                        off = 0;
                    } else if let ExprKind::Const(c) = idx.kind {
                        // A constant index in range is an offset like a field's.
                        off += c as i64 * i64::from(esize);
                    }
                }
            }
        }
        if let Some(bad) = routed {
            let vt = self.b.func.values[ptr].ty;
            let elem_ptr = self.offset_ptr_wide(ptr, off);
            let elem_slot = self.b.slot(8, "element");
            let ea = self.b.slot_addr(elem_slot, 0);
            self.b.store(ea, 0, 8, elem_ptr);
            let join = self.b.create_block();
            self.b.terminate(Terminator::Jump(join));
            // An index out of range reads 0 and writes nothing: the place is redirected to a
            // zeroed scratch of its own type.
            self.b.switch_to(bad);
            let size = self.program().layout(&p.ty).size;
            let scratch = self.b.slot(size, "out of range");
            let sa = self.b.slot_addr(scratch, 0);
            self.b.push(InstData::MemZero { ptr: sa, size: size.div_ceil(8) * 8 });
            let sa = self.b.slot_addr(scratch, 0);
            let ea = self.b.slot_addr(elem_slot, 0);
            self.b.store(ea, 0, 8, sa);
            self.b.terminate(Terminator::Jump(join));
            self.b.switch_to(join);
            let ea = self.b.slot_addr(elem_slot, 0);
            // A map value or a stack pointer, depending on the path: the kernel's verifier
            // follows each path; the IR records the in-range kind.
            ptr = self.b.load_ptr(ea, 0, vt);
            off = 0;
        }
        // An instruction's displacement is 16 bits; callers add a field's offset or a few
        // bytes of a copy to what is returned, so keep it well inside.
        if off > i64::from(i16::MAX / 2) {
            ptr = self.offset_ptr_wide(ptr, off);
            off = 0;
        }
        Some((ptr, off as i16))
    }

    /// Reads a scalar place.
    pub(super) fn read_place(&mut self, p: &'p hir::Place) -> Value {
        match p.base {
            PlaceBase::LockField(f) => return self.lock_field(f.name),
            PlaceBase::WaiterField(w, f) => {
                if let Some(Binding::Waiter(base)) = self.binding(w) {
                    let v = self.ctx_field(base + f.offset, f.size as u8);
                    return v;
                }
                return self.b.iconst(0);
            }
            PlaceBase::PerWaiter(w, id) => {
                let (Some(Binding::Waiter(base)), StateStorage::PerWaiter { offset }) = (self.binding(w), self.program().states[id].storage.clone()) else {
                    return self.b.iconst(0);
                };
                let size = scalar_size(&p.ty);
                let v = self.ctx_field(base + cat::WAITER_DATA_OFFSET + offset, size);
                return self.canon_load(v, &p.ty);
            }
            PlaceBase::Local(l) => match self.binding(l) {
                Some(Binding::Value(v)) if p.projections.is_empty() => return v,
                Some(Binding::Lock) => return self.lock_addr(),
                Some(Binding::Waiter(_)) => return self.b.iconst(0),
                Some(Binding::Ok) => {
                    // contention_end's `ret`: 0 means the lock was acquired.
                    let ret = self.ctx_arg(1);
                    let r = self.b.ext(32, true, ret);
                    let zero = self.b.iconst(0);
                    return self.b.cmp(Cond::Eq, r, zero);
                }
                _ => {}
            },
            PlaceBase::State(id) => {
                if let Some(&slot) = field_path(p).and_then(|path| self.preread.get(&(id, path))) {
                    let v = self.reload(slot);
                    return self.canon_load(v, &p.ty);
                }
            }
        }
        match self.place_ptr(p) {
            Some((ptr, off)) => {
                let v = self.b.load(ptr, off, scalar_size(&p.ty));
                self.canon_load(v, &p.ty)
            }
            None => self.b.iconst(0),
        }
    }

    /// Loads are zero-extended; signed types are sign-extended again.
    pub(super) fn canon_load(&mut self, v: Value, ty: &Ty) -> Value {
        match ty {
            Ty::Int(i) if i.signed && i.bits < 64 => self.b.ext(i.bits, true, v),
            _ => v,
        }
    }

    // ------------------------------------------------------------------------------
    // Expressions
}
