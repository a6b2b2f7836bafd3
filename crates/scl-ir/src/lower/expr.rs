//! Expressions: arithmetic kept canonical, comparisons, `&&`/`||`, and inlined calls of the
//! policy's functions.

use super::*;

impl<'m, 'p> FnCx<'m, 'p> {
    /// Lowers a scalar expression to a value.
    pub(super) fn expr(&mut self, e: &'p hir::Expr) -> Value {
        match &e.kind {
            ExprKind::Const(v) => self.b.iconst(*v as i64),
            ExprKind::Read(p) => self.read_place(p),
            ExprKind::Unary(op, x) => {
                let v = self.expr(x);
                match op {
                    UnOp::Not => {
                        let one = self.b.iconst(1);
                        self.b.bin(BinOp::Xor, Width::W64, v, one)
                    }
                    UnOp::Neg => {
                        let i = int_of(&e.ty);
                        let dst = self.b.value(ValTy::Int);
                        self.b.push(InstData::Neg { width: width(i), dst, a: v });
                        self.canon(dst, i)
                    }
                    UnOp::BitNot => {
                        let i = int_of(&e.ty);
                        let all = self.b.iconst(-1);
                        let r = self.b.bin(BinOp::Xor, width(i), v, all);
                        self.canon(r, i)
                    }
                }
            }
            ExprKind::Binary(op, a, b) => self.binary(*op, a, b, &e.ty),
            ExprKind::Cast(x) => {
                let v = self.expr(x);
                match &e.ty {
                    Ty::Int(to) => {
                        if let Ty::Int(from) = &x.ty {
                            if from.signed == to.signed && from.bits <= to.bits {
                                return v; // canonical values widen for free
                            }
                        }
                        self.canon(v, *to)
                    }
                    _ => v,
                }
            }
            ExprKind::Call(f, args) => self.inline_call(*f, args),
            ExprKind::Builtin(def, args) => self.builtin(def, args, &e.ty),
            ExprKind::Method(map, def, args) => self.method(*map, def, args, &e.ty),
            ExprKind::Struct(..) | ExprKind::Error => self.b.iconst(0),
        }
    }

    /// Re-canonicalises `v` as an integer of type `i` after arithmetic.
    pub(super) fn canon(&mut self, v: Value, i: IntTy) -> Value {
        match (i.bits, i.signed) {
            (64, _) => v,
            (32, false) => v, // the 32-bit ALU zero-extends
            (bits, signed) => self.b.ext(bits, signed, v),
        }
    }

    pub(super) fn binary(&mut self, op: HBin, a: &'p hir::Expr, b: &'p hir::Expr, ty: &Ty) -> Value {
        match op {
            HBin::And | HBin::Or => return self.logic(op, a, b),
            _ => {}
        }
        let (x, y) = self.pair(a, b);
        if op.is_comparison() {
            let signed = int_of(&a.ty).signed && a.ty != Ty::Bool;
            let cond = match (op, signed) {
                (HBin::Eq, _) => Cond::Eq,
                (HBin::Ne, _) => Cond::Ne,
                (HBin::Lt, false) => Cond::ULt,
                (HBin::Le, false) => Cond::ULe,
                (HBin::Gt, false) => Cond::UGt,
                (HBin::Ge, false) => Cond::UGe,
                (HBin::Lt, true) => Cond::SLt,
                (HBin::Le, true) => Cond::SLe,
                (HBin::Gt, true) => Cond::SGt,
                (HBin::Ge, true) => Cond::SGe,
                _ => Cond::Eq,
            };
            return self.b.cmp(cond, x, y);
        }
        self.arith(op, ty, x, y, &b.ty)
    }

    /// Evaluates `a` then `b`, keeping `a` in a slot if `b` opens blocks.
    pub(super) fn pair(&mut self, a: &'p hir::Expr, b: &'p hir::Expr) -> (Value, Value) {
        let x = self.expr(a);
        if !may_branch(b) {
            let y = self.expr(b);
            return (x, y);
        }
        let kept = self.spill_value(x);
        let y = self.expr(b);
        let y_kept = self.spill_value(y);
        let x = self.reload(kept);
        let y = self.reload(y_kept);
        (x, y)
    }

    /// `x op y` at type `ty`, canonical result.
    pub(super) fn arith(&mut self, op: HBin, ty: &Ty, x: Value, y: Value, _rhs_ty: &Ty) -> Value {
        let i = int_of(ty);
        let w = width(i);
        let bop = match (op, i.signed) {
            (HBin::Add, _) => BinOp::Add,
            (HBin::Sub, _) => BinOp::Sub,
            (HBin::Mul, _) => BinOp::Mul,
            (HBin::Div, false) => BinOp::UDiv,
            (HBin::Div, true) => BinOp::SDiv,
            (HBin::Rem, false) => BinOp::URem,
            (HBin::Rem, true) => BinOp::SRem,
            (HBin::BitAnd, _) => BinOp::And,
            (HBin::BitOr, _) => BinOp::Or,
            (HBin::BitXor, _) => BinOp::Xor,
            (HBin::Shl, _) => BinOp::Shl,
            (HBin::Shr, false) => BinOp::LShr,
            (HBin::Shr, true) => BinOp::AShr,
            _ => BinOp::Add,
        };
        let y = if matches!(bop, BinOp::Shl | BinOp::LShr | BinOp::AShr) {
            // Shift counts wrap at the ALU width, as the hardware does.
            let mask = self.b.iconst(if w == Width::W32 { 31 } else { 63 });
            self.b.bin(BinOp::And, Width::W64, y, mask)
        } else {
            y
        };
        // Signed 32-bit operations work on the low 32 bits; smaller types too.
        let r = match bop {
            BinOp::SDiv | BinOp::SRem => self.signed_div(bop, x, y),
            _ => self.b.bin(bop, w, x, y),
        };
        let needs = matches!(bop, BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Shl | BinOp::SDiv | BinOp::SRem | BinOp::AShr)
            || (i.signed && i.bits == 32);
        if needs || (i.signed && i.bits < 64) {
            self.canon(r, i)
        } else {
            r
        }
    }

    /// Signed `/` or `%` of two canonical (sign-extended) values, without ISA v4's signed
    /// division (Linux 6.6+; Debian 12's 6.1 refuses it): the unsigned quotient or remainder
    /// of the magnitudes, negated when the signs differ (`/`) or the dividend is negative
    /// (`%`). In 64 bits, which is exact for every width once the caller canonicalises the
    /// result (`i32::MIN / -1` wraps to `i32::MIN`, as the 32-bit instruction does); by zero
    /// it gives 0 and the dividend, BPF's rule.
    fn signed_div(&mut self, op: BinOp, x: Value, y: Value) -> Value {
        let zero = self.b.iconst(0);
        let nx = self.b.bin(BinOp::Sub, Width::W64, zero, x);
        let ax = self.b.select(Cond::SLt, x, zero, nx, x);
        let ny = self.b.bin(BinOp::Sub, Width::W64, zero, y);
        let ay = self.b.select(Cond::SLt, y, zero, ny, y);
        let (r, sign) = if op == BinOp::SDiv {
            (self.b.bin(BinOp::UDiv, Width::W64, ax, ay), self.b.bin(BinOp::Xor, Width::W64, x, y))
        } else {
            (self.b.bin(BinOp::URem, Width::W64, ax, ay), x)
        };
        let nr = self.b.bin(BinOp::Sub, Width::W64, zero, r);
        self.b.select(Cond::SLt, sign, zero, nr, r)
    }

    /// `&&` / `||`: short-circuit when the right side has effects, else branch-free.
    pub(super) fn logic(&mut self, op: HBin, a: &'p hir::Expr, b: &'p hir::Expr) -> Value {
        let x = self.expr(a);
        if is_pure(b) {
            let y = self.expr(b);
            return self.b.bin(if op == HBin::And { BinOp::And } else { BinOp::Or }, Width::W64, x, y);
        }
        let slot = self.b.slot(8, "logic");
        let addr = self.b.slot_addr(slot, 0);
        self.b.store(addr, 0, 8, x);
        let rhs = self.b.create_block();
        let join = self.b.create_block();
        let (then, else_) = if op == HBin::And { (rhs, join) } else { (join, rhs) };
        self.b.terminate(Terminator::Branch { cond: x, then, else_ });
        self.b.switch_to(rhs);
        let y = self.expr(b);
        let addr = self.b.slot_addr(slot, 0);
        self.b.store(addr, 0, 8, y);
        self.b.terminate(Terminator::Jump(join));
        self.b.switch_to(join);
        let addr = self.b.slot_addr(slot, 0);
        self.b.load(addr, 0, 8)
    }

    pub(super) fn inline_call(&mut self, f: hir::FuncId, args: &'p [Arg]) -> Value {
        let func = &self.program().funcs[f];
        // A function that is one `return EXPR;` whose evaluation opens no block is inlined
        // as an expression: its scalar arguments are used as values, with no slots, no
        // result slot and no continuation block.
        if let [Stmt::Return(Some(e), _)] = func.body.block.stmts.as_slice() {
            let simple_args = func.params.iter().zip(args).all(|((l, inout), a)| match a {
                Arg::Value(v) => !inout && (func.body.locals[*l].ty.is_scalar() || matches!(v.ty, Ty::Lock | Ty::Waiter)) && !may_branch(v),
                Arg::Place(_) => false,
            });
            if simple_args && !may_branch(e) {
                let mut locals = HashMap::default();
                for ((local, _), arg) in func.params.iter().zip(args) {
                    let Arg::Value(v) = arg else { unreachable!("checked above") };
                    let binding = match &v.kind {
                        ExprKind::Read(hir::Place { base: PlaceBase::Local(l), projections, .. }) if projections.is_empty() => {
                            match self.binding(*l) {
                                Some(b @ (Binding::Lock | Binding::Waiter(_) | Binding::Ok)) => Some(b),
                                _ => None,
                            }
                        }
                        _ => None,
                    };
                    let binding = binding.unwrap_or_else(|| Binding::Value(self.expr(v)));
                    locals.insert(*local, binding);
                }
                self.frames.push(Frame { body: &func.body, locals, ret: None });
                let r = self.expr(e);
                self.frames.pop();
                return r;
            }
        }
        let mut locals = HashMap::default();
        for ((local, inout), arg) in func.params.iter().zip(args) {
            match (inout, arg) {
                (true, Arg::Place(p)) => {
                    let Some((ptr, off)) = self.place_ptr(p) else { continue };
                    let ptr = self.offset_ptr(ptr, off);
                    let vt = self.b.func.values[ptr].ty;
                    let slot = self.b.slot(8, format!("&{}", func.body.locals[*local].name));
                    let a = self.b.slot_addr(slot, 0);
                    self.b.store(a, 0, 8, ptr);
                    locals.insert(*local, Binding::Ref(slot, vt));
                }
                (_, Arg::Value(e)) => {
                    // `lock` and `waiter` are views of the context: the parameter is the same view.
                    if let ExprKind::Read(hir::Place { base: PlaceBase::Local(l), projections, .. }) = &e.kind {
                        if projections.is_empty() {
                            if let Some(b @ (Binding::Lock | Binding::Waiter(_) | Binding::Ok)) = self.binding(*l) {
                                locals.insert(*local, b);
                                continue;
                            }
                        }
                    }
                    let ty = func.body.locals[*local].ty.clone();
                    // A struct or array the callee only reads is passed by reference, not copied.
                    if !ty.is_scalar() && !writes_local(&func.body.block, *local) {
                        if let ExprKind::Read(place) = &e.kind {
                            if let Some((ptr, off)) = self.place_ptr(place) {
                                let ptr = self.offset_ptr(ptr, off);
                                let vt = self.b.func.values[ptr].ty;
                                let slot = self.b.slot(8, format!("&{}", func.body.locals[*local].name));
                                let a = self.b.slot_addr(slot, 0);
                                self.b.store(a, 0, 8, ptr);
                                locals.insert(*local, Binding::Ref(slot, vt));
                                continue;
                            }
                        }
                    }
                    let size = self.program().layout(&ty).size;
                    let slot = self.b.slot(size, func.body.locals[*local].name.clone());
                    self.store_value(Dest::Slot(slot, 0), &ty, e);
                    locals.insert(*local, Binding::Slot(slot));
                }
                (_, Arg::Place(_)) => {}
            }
        }
        let result = (func.ret != Ty::Void).then(|| self.b.slot(8, format!("{} result", func.name)));
        if let Some(r) = result {
            let a = self.b.slot_addr(r, 0);
            let z = self.b.iconst(0);
            self.b.store(a, 0, 8, z);
        }
        let cont = self.b.create_block();
        let saved_loops = std::mem::take(&mut self.loops);
        self.frames.push(Frame { body: &func.body, locals, ret: Some((result, cont)) });
        self.block(&func.body.block);
        self.frames.pop();
        self.loops = saved_loops;
        self.b.terminate(Terminator::Jump(cont));
        self.b.switch_to(cont);
        match result {
            Some(r) => {
                let a = self.b.slot_addr(r, 0);
                self.b.load(a, 0, 8)
            }
            None => self.b.iconst(0),
        }
    }
}
