//! The built-ins (`now`, `min`, `back_off`, atomics, ...) and map methods.

use super::*;

impl<'m, 'p> FnCx<'m, 'p> {
    pub(super) fn builtin(&mut self, def: &'static cat::BuiltinDef, args: &'p [Arg], ty: &Ty) -> Value {
        let stock = self.target() == Target::Stock;
        let value = |s: &mut Self, i: usize| match &args[i] {
            Arg::Value(e) => s.expr(e),
            Arg::Place(p) => s.read_place(p),
        };
        match def.name {
            "now" => self.b.call(helper::KTIME, Vec::new(), ValTy::Int),
            "cpu" if stock => self.b.call(helper::SMP_ID, Vec::new(), ValTy::Int),
            "numa_node" if stock => self.b.call(helper::NUMA_ID, Vec::new(), ValTy::Int),
            "cpu" => self.ctx_field(16, 4),
            "numa_node" => self.ctx_field(20, 4),
            "tid" => self.tid(),
            "tgid" if stock => {
                let v = self.b.call(helper::PID_TGID, Vec::new(), ValTy::Int);
                let s = self.b.iconst(32);
                self.b.bin(BinOp::LShr, Width::W64, v, s)
            }
            "tgid" => self.ctx_field(28, 4),
            "random" => self.b.call(helper::PRANDOM, Vec::new(), ValTy::Int),
            "kstack" => {
                // `bpf_get_stackid(ctx, &scl_kstacks, BPF_F_FAST_STACK_CMP) + 1`: the id
                // plus one (zero, a `kstack` never set, is no stack: `cat::kstack::id`), or
                // a negative errno plus one when the stack could not be recorded.
                let map = self.m.kstack_map();
                let ctx = self.ctx();
                let mref = self.map_ref(map);
                let flags = self.b.iconst(cat::kstack::FLAGS as i64);
                let id = self.b.call(cat::kstack::HELPER, vec![ctx, mref, flags], ValTy::Int);
                let one = self.b.iconst(1);
                self.b.bin(BinOp::Add, Width::W64, id, one)
            }
            "min" | "max" => {
                let known = args.iter().all(|a| matches!(a, Arg::Value(e) if self.verifier_known(e)));
                let (a, b) = match (&args[0], &args[1]) {
                    (Arg::Value(x), Arg::Value(y)) => self.pair(x, y),
                    _ => (value(self, 0), value(self, 1)),
                };
                let depth = self.loop_depth;
                if known {
                    self.loop_depth = 0;
                }
                let v = self.min_max(def.name == "min", int_of(ty).signed, a, b);
                self.loop_depth = depth;
                v
            }
            "log2" => {
                let v = value(self, 0);
                self.log2(v)
            }
            "sleep_after" => {
                // The hook asks for the sleep; the lock performs it once the handler has
                // returned (see `sleep_slot`): total = min(total + ns, limit), with no
                // overflow since both terms are at most the limit.
                let ns = value(self, 0);
                let limit = self.b.iconst(cat::SLEEP_AFTER_LIMIT_NS as i64);
                let ns = self.min_max(true, false, ns, limit);
                if let Some(slot) = self.sleep_slot {
                    let a = self.b.slot_addr(slot, 0);
                    let total = self.b.load(a, 0, 8);
                    let sum = self.b.bin(BinOp::Add, Width::W64, total, ns);
                    let limit = self.b.iconst(cat::SLEEP_AFTER_LIMIT_NS as i64);
                    let sum = self.min_max(true, false, sum, limit);
                    let a = self.b.slot_addr(slot, 0);
                    self.b.store(a, 0, 8, sum);
                }
                self.b.iconst(0)
            }
            "back_off" | "sleep" => {
                // The clamp's operands are the limit (a constant or frozen config) and, most
                // often, a config value or constant too: then the verifier knows which way
                // the clamp goes and a jump over a move adds no path, even in a loop.
                let known = matches!(args.first(), Some(Arg::Value(e)) if self.verifier_known(e));
                let ns = value(self, 0);
                let limit = if def.name == "back_off" { self.backoff_limit() } else { self.b.iconst(cat::SLEEP_LIMIT_NS as i64) };
                self.wait(ns, limit, known);
                self.b.iconst(0)
            }
            "read_user" => {
                let addr = value(self, 0);
                let slot = self.b.slot(8, "read_user");
                let a = self.b.slot_addr(slot, 0);
                let z = self.b.iconst(0);
                self.b.store(a, 0, 8, z);
                let a = self.b.slot_addr(slot, 0);
                let n = self.b.iconst(8);
                let _ = self.b.call(helper::COPY_FROM_USER, vec![a, n, addr], ValTy::Int);
                let a = self.b.slot_addr(slot, 0);
                self.b.load(a, 0, 8)
            }
            "atomic_add" | "atomic_cas" => self.atomic(def.name, args, ty),
            _ => self.b.iconst(0),
        }
    }

    /// The clamp of `back_off`: the policy's `config max_backoff_ns`, or the default.
    pub(super) fn backoff_limit(&mut self) -> Value {
        let program = self.program();
        let config = program.states.iter().find(|(_, s)| s.name == cat::BACK_OFF_CONFIG && matches!(s.storage, StateStorage::Config(_)));
        match config {
            Some((id, _)) => {
                let offset = self.m.rodata[&id];
                let dst = self.b.value(ValTy::MapValue);
                self.b.push(InstData::Rodata { dst, offset });
                self.b.load(dst, 0, 8)
            }
            None => self.b.iconst(cat::BACK_OFF_DEFAULT_MAX_NS as i64),
        }
    }

    /// Busy-waits `min(ns, limit)` nanoseconds: `bpf_loop` runs the wait callback, which
    /// stops at the deadline, at most `WAIT_POLLS` times. The callback is verified once,
    /// so a wait costs the verifier a handful of instructions whatever its length.
    /// `min(a, b)` (or `max`): outside loops a jump over a move, `t = a; if !(a < b) t = b`;
    /// inside loops branch-free, `min = b ^ ((a ^ b) & -(a < b))` with `max` swapping the
    /// roles, so an iteration adds no path for the verifier (callers whose operands the
    /// verifier knows use the jump there too: it knows which way it goes).
    pub(super) fn min_max(&mut self, min: bool, signed: bool, a: Value, b: Value) -> Value {
        let lt_cond = if signed { Cond::SLt } else { Cond::ULt };
        let (if_lt, otherwise) = if min { (a, b) } else { (b, a) };
        if self.loop_depth == 0 {
            return self.b.select(lt_cond, a, b, if_lt, otherwise);
        }
        let lt = self.b.cmp(lt_cond, a, b);
        let zero = self.b.iconst(0);
        let mask = self.b.bin(BinOp::Sub, Width::W64, zero, lt);
        let x = self.b.bin(BinOp::Xor, Width::W64, a, b);
        let m = self.b.bin(BinOp::And, Width::W64, x, mask);
        self.b.bin(BinOp::Xor, Width::W64, otherwise, m)
    }

    pub(super) fn wait(&mut self, ns: Value, limit: Value, known: bool) {
        let d = if known { self.b.select(Cond::ULt, ns, limit, ns, limit) } else { self.min_max(true, false, ns, limit) };
        let now = self.b.call(helper::KTIME, Vec::new(), ValTy::Int);
        let deadline = self.b.bin(BinOp::Add, Width::W64, now, d);
        let dslot = self.b.slot(8, "deadline");
        let da = self.b.slot_addr(dslot, 0);
        self.b.store(da, 0, 8, deadline);
        let count = self.b.iconst(WAIT_POLLS);
        let da = self.b.slot_addr(dslot, 0);
        let dst = self.b.value(ValTy::Int);
        self.b.push(InstData::Loop { dst, callback: Callback::WaitUntil, count, ctx_ptr: da });
    }

    /// True if the kernel verifier knows `e`'s value: a constant, or a config value (in
    /// `.rodata`, frozen before the program loads).
    pub(super) fn verifier_known(&self, e: &hir::Expr) -> bool {
        match &e.kind {
            ExprKind::Const(_) => true,
            ExprKind::Read(p) => {
                p.projections.iter().all(|pr| matches!(pr, Projection::Field(_)))
                    && matches!(p.base, PlaceBase::State(id) if matches!(self.program().states[id].storage, StateStorage::Config(_)))
            }
            ExprKind::Cast(x) => self.verifier_known(x),
            _ => false,
        }
    }

    /// floor(log2(v)), branch-free: a binary search over 32, 16, 8, 4, 2, 1.
    pub(super) fn log2(&mut self, v: Value) -> Value {
        let mut v = v;
        let mut r = self.b.iconst(0);
        for shift in [32i64, 16, 8, 4, 2, 1] {
            let s = self.b.iconst(shift);
            let hi = self.b.bin(BinOp::LShr, Width::W64, v, s);
            let zero = self.b.iconst(0);
            let t = self.b.cmp(Cond::Ne, hi, zero);
            let sc = self.b.iconst(shift);
            let step = self.b.bin(BinOp::Mul, Width::W64, t, sc);
            v = self.b.bin(BinOp::LShr, Width::W64, v, step);
            r = self.b.bin(BinOp::Add, Width::W64, r, step);
        }
        r
    }

    pub(super) fn atomic(&mut self, name: &str, args: &'p [Arg], ty: &Ty) -> Value {
        let Arg::Place(place) = &args[0] else { return self.b.iconst(0) };
        // Operands first, kept in slots: they may open blocks, and so may the place.
        let mut kept = Vec::new();
        for a in &args[1..] {
            let v = match a {
                Arg::Value(e) => self.expr(e),
                Arg::Place(p) => self.read_place(p),
            };
            kept.push(self.spill_value(v));
        }
        let Some((ptr, off)) = self.place_ptr(place) else { return self.b.iconst(0) };
        let size = scalar_size(&place.ty);
        let shared = self.b.func.values[ptr].ty == ValTy::MapValue && size >= 4;
        let operands: Vec<Value> = kept.iter().map(|s| self.reload(*s)).collect();
        if name == "atomic_add" {
            let v = operands[0];
            if shared {
                let dst = self.b.value(ValTy::Int);
                self.b.push(InstData::Atomic { op: AtomicOp::FetchAdd, size, dst, ptr, offset: off, val: v, expected: None });
                return self.canon_load(dst, ty);
            }
            // A local (or a narrow field) is not shared: a plain read-modify-write.
            let old = self.b.load(ptr, off, size);
            let old = self.canon_load(old, &place.ty);
            let new = self.arith(HBin::Add, &place.ty, old, v, &place.ty);
            self.b.store(ptr, off, size, new);
            return old;
        }
        let (expected, new) = (operands[0], operands[1]);
        if shared {
            let dst = self.b.value(ValTy::Int);
            self.b.push(InstData::Atomic { op: AtomicOp::CmpXchg, size, dst, ptr, offset: off, val: new, expected: Some(expected) });
            let old = self.canon_load(dst, &place.ty);
            return self.b.cmp(Cond::Eq, old, expected);
        }
        let old = self.b.load(ptr, off, size);
        let old = self.canon_load(old, &place.ty);
        let same = self.b.cmp(Cond::Eq, old, expected);
        // Not shared and in one block: store `same ? new : old`, branch-free.
        let zero = self.b.iconst(0);
        let mask = self.b.bin(BinOp::Sub, Width::W64, zero, same);
        let x = self.b.bin(BinOp::Xor, Width::W64, new, old);
        let m = self.b.bin(BinOp::And, Width::W64, x, mask);
        let v = self.b.bin(BinOp::Xor, Width::W64, old, m);
        self.b.store(ptr, off, size, v);
        same
    }

    pub(super) fn method(&mut self, map: StateId, def: &'static cat::MethodDef, args: &'p [hir::Expr], ty: &Ty) -> Value {
        let mid = self.m.state_maps[&map];
        let decl = self.m.module.maps[mid].clone();
        match def.name {
            "get_or" => {
                let out = self.b.slot(8, "get_or");
                let d = self.expr(&args[1]);
                let oa = self.b.slot_addr(out, 0);
                self.b.store(oa, 0, 8, d);
                let p = self.lookup(map, &args[0]);
                let yes = self.b.create_block();
                let join = self.b.create_block();
                let slot = self.branch_if_found(p, "get_or ptr", yes, join);
                self.b.switch_to(yes);
                let p = self.reload_ptr(slot);
                let v = self.b.load(p, 0, scalar_size(ty));
                let v = self.canon_load(v, ty);
                let oa = self.b.slot_addr(out, 0);
                self.b.store(oa, 0, 8, v);
                self.b.terminate(Terminator::Jump(join));
                self.b.switch_to(join);
                let oa = self.b.slot_addr(out, 0);
                self.b.load(oa, 0, 8)
            }
            "set" => {
                // IR values do not cross blocks: if the value may branch, the key waits in
                // a slot of its own.
                let k = match may_branch(&args[1]) {
                    true => Err(self.materialize(&args[0], decl.key_size)),
                    false => Ok(self.arg_ptr(&args[0], decl.key_size)),
                };
                let v = self.arg_ptr(&args[1], decl.value_size);
                let k = k.unwrap_or_else(|slot| self.b.slot_addr(slot, 0));
                let mref = self.map_ref(mid);
                let flags = self.b.iconst(0);
                self.b.call(helper::MAP_UPDATE, vec![mref, k, v, flags], ValTy::Int)
            }
            "delete" => {
                let k = self.arg_ptr(&args[0], decl.key_size);
                let mref = self.map_ref(mid);
                self.b.call(helper::MAP_DELETE, vec![mref, k], ValTy::Int)
            }
            "emit" => {
                let size = self.program().layout(&args[0].ty).size;
                let v = self.materialize(&args[0], size);
                let v = self.b.slot_addr(v, 0);
                let mref = self.map_ref(mid);
                let n = self.b.iconst(i64::from(size));
                let flags = self.b.iconst(0);
                self.b.call(helper::RINGBUF_OUTPUT, vec![mref, v, n, flags], ValTy::Int)
            }
            _ => self.b.iconst(0),
        }
    }
}
