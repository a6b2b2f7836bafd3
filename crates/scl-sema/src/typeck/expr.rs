//! Checking expressions: literals take the expected type, operators widen within one
//! signedness, constants fold, calls resolve to user functions, built-ins or map methods.

use super::*;

impl BodyCx<'_> {
    // ----------------------------------------------------------------------------------
    // Expressions

    pub(super) fn expect_bool(&mut self, e: Expr) -> Expr {
        if e.ty == Ty::Bool || e.ty == Ty::Error {
            return e;
        }
        let name = self.cx.program.ty_name(&e.ty);
        let mut d = Diagnostic::error(E0209, self.file, e.loc.span, format!("conditions are bools, not `{name}`"))
            .with_label("not a bool");
        if e.ty.is_int_like() {
            d = d.with_help("compare explicitly, for example `x != 0`");
        }
        self.err(d)
    }

    /// Converts `e` to `target` where no value can change, or reports a mismatch.
    pub(crate) fn coerce(&mut self, e: Expr, target: &Ty) -> Expr {
        if &e.ty == target || e.ty == Ty::Error || *target == Ty::Error {
            return e;
        }
        match (&e.ty, target) {
            (Ty::Int(from), Ty::Int(to)) => {
                if let ExprKind::Const(v) = e.kind {
                    if to.contains(v) {
                        return Expr { kind: ExprKind::Const(v), ty: target.clone(), loc: e.loc };
                    }
                    return self.err(
                        Diagnostic::error(E0218, self.file, e.loc.span, format!("{v} does not fit in `{to}`"))
                            .with_label(format!("`{to}` holds {}..={}", to.min(), to.max())),
                    );
                }
                if from.signed == to.signed && from.bits <= to.bits {
                    let loc = e.loc;
                    return Expr { kind: ExprKind::Cast(Box::new(e)), ty: target.clone(), loc };
                }
                let (f, t) = (*from, *to);
                let why = if f.signed != t.signed { "signedness differs" } else { "it would narrow" };
                self.err(
                    Diagnostic::error(E0204, self.file, e.loc.span, format!("expected `{t}`, found `{f}`"))
                        .with_label(format!("`{f}` value"))
                        .with_note(format!("SCL converts integers implicitly only when no value can change; here {why}"))
                        .with_help(format!("convert explicitly with `as {t}`")),
                )
            }
            _ => {
                let (f, t) = (self.cx.program.ty_name(&e.ty), self.cx.program.ty_name(target));
                self.err(
                    Diagnostic::error(E0204, self.file, e.loc.span, format!("expected `{t}`, found `{f}`"))
                        .with_label(format!("`{f}` value")),
                )
            }
        }
    }

    /// Checks an expression; `expected` guides the type of literals.
    pub(crate) fn expr(&mut self, e: &ast::Expr, expected: Option<&Ty>) -> Expr {
        let l = self.loc(e.span);
        match &e.kind {
            ast::ExprKind::Int { value, .. } => {
                let ty = match expected {
                    Some(t @ Ty::Int(_)) => t.clone(),
                    _ => Ty::U64,
                };
                let v = i128::from(*value);
                if let Ty::Int(i) = ty {
                    if !i.contains(v) {
                        return self.err(
                            Diagnostic::error(E0218, self.file, e.span, format!("{v} does not fit in `{i}`"))
                                .with_label(format!("`{i}` holds {}..={}", i.min(), i.max())),
                        );
                    }
                }
                Expr { kind: ExprKind::Const(v), ty, loc: l }
            }
            ast::ExprKind::Bool(b) => Expr { kind: ExprKind::Const(i128::from(*b)), ty: Ty::Bool, loc: l },
            ast::ExprKind::Path(p) => self.path_expr(p, e, expected),
            ast::ExprKind::Field(..) | ast::ExprKind::Index(..) => {
                if self.is_const() {
                    return self.not_const(e.span);
                }
                if let ast::ExprKind::Field(base, f) = &e.kind {
                    if let Some(map) = self.map_state(base) {
                        let name = self.cx.program.states[map].name.clone();
                        return self.err(
                            Diagnostic::error(E0205, self.file, f.span, format!("map `{name}` has no field `{}`", f.name))
                                .with_label("maps have methods, not fields")
                                .with_help(format!("call a method: `{name}.get(key)`")),
                        );
                    }
                }
                match self.place(e, false) {
                    Some(p) => {
                        let ty = p.ty.clone();
                        Expr { kind: ExprKind::Read(p), ty, loc: l }
                    }
                    None => Expr { kind: ExprKind::Error, ty: Ty::Error, loc: l },
                }
            }
            ast::ExprKind::Unary(op, inner) => self.unary(*op, inner, e, expected),
            ast::ExprKind::Binary(op, a, b) => self.binary(*op, a, b, e, expected),
            ast::ExprKind::Cast(inner, ty_name) => {
                let inner_e = self.expr(inner, None);
                let Some(to) = IntTy::from_name(&ty_name.name) else {
                    let d = if ty_name.name == "bool" {
                        Diagnostic::error(E0213, self.file, ty_name.span, "`as` cannot convert to `bool`")
                            .with_label("not an integer type")
                            .with_help("compare instead: `x != 0`")
                    } else {
                        Diagnostic::error(E0213, self.file, ty_name.span, format!("`as` converts to integer types, not `{}`", ty_name.name))
                            .with_label("not an integer type")
                    };
                    return self.err(d);
                };
                match (&inner_e.ty, inner_e.kind) {
                    (Ty::Int(_) | Ty::Bool, ExprKind::Const(v)) => {
                        Expr { kind: ExprKind::Const(wrap(v, to)), ty: Ty::Int(to), loc: l }
                    }
                    (Ty::Int(_) | Ty::Bool, kind) => {
                        let inner_e = Expr { kind, ty: inner_e.ty, loc: inner_e.loc };
                        Expr { kind: ExprKind::Cast(Box::new(inner_e)), ty: Ty::Int(to), loc: l }
                    }
                    (Ty::Error, _) => Expr { kind: ExprKind::Error, ty: Ty::Error, loc: l },
                    (other, _) => {
                        let name = self.cx.program.ty_name(other);
                        self.err(
                            Diagnostic::error(E0213, self.file, inner.span, format!("cannot convert `{name}` with `as`"))
                                .with_label("not an integer or bool"),
                        )
                    }
                }
            }
            ast::ExprKind::Call(callee, args) => {
                if self.is_const() {
                    return self.not_const(e.span);
                }
                self.call(callee, args, e, expected)
            }
            ast::ExprKind::Struct(path, fields) => {
                if self.is_const() {
                    return self.not_const(e.span);
                }
                self.struct_lit(path, fields, e)
            }
            ast::ExprKind::Error => Expr { kind: ExprKind::Error, ty: Ty::Error, loc: l },
        }
    }

    pub(super) fn not_const(&mut self, span: Span) -> Expr {
        self.err(
            Diagnostic::error(E0210, self.file, span, "this must be known at compile time")
                .with_label("computed at run time")
                .with_note("constant expressions may use literals, constants and operators, but not state, locals or calls"),
        )
    }

    pub(super) fn path_expr(&mut self, p: &ast::Path, e: &ast::Expr, expected: Option<&Ty>) -> Expr {
        let l = self.loc(e.span);
        if p.is_simple() && !self.is_const() {
            if let Some(local) = self.lookup_local(&p.name.name) {
                self.record_local(p.name.span, local);
                let ty = self.locals[local].ty.clone();
                return Expr { kind: ExprKind::Read(Place { base: PlaceBase::Local(local), projections: Vec::new(), ty: ty.clone(), loc: l }), ty, loc: l };
            }
        }
        match self.resolve_value(p) {
            Some(Value::Const(usize::MAX)) => Expr { kind: ExprKind::Error, ty: Ty::Error, loc: l },
            Some(Value::Const(index)) => {
                let module = match &p.module {
                    None => self.module,
                    Some(m) => self.cx.modules[self.module].imports[&m.name],
                };
                self.const_value(module, index, e.span, expected)
            }
            Some(Value::Func(_)) => self.err(
                Diagnostic::error(E0209, self.file, e.span, format!("function `{p}` is not a value"))
                    .with_label("a function")
                    .with_help(format!("call it: `{p}(...)`")),
            ),
            Some(Value::State(_)) if self.is_const() => self.not_const(e.span),
            Some(Value::State(_)) => match self.place(e, false) {
                Some(place) => {
                    let ty = place.ty.clone();
                    Expr { kind: ExprKind::Read(place), ty, loc: l }
                }
                None => Expr { kind: ExprKind::Error, ty: Ty::Error, loc: l },
            },
            None => {
                if p.is_simple() && cat::builtin(&p.name.name).is_some() {
                    return self.err(
                        Diagnostic::error(E0209, self.file, e.span, format!("built-in `{}` is not a value", p.name.name))
                            .with_help(format!("call it: `{}()`", p.name.name)),
                    );
                }
                self.unknown_name(p);
                Expr { kind: ExprKind::Error, ty: Ty::Error, loc: l }
            }
        }
    }

    /// The folded value of the constant item `index` of module `module`.
    pub(super) fn const_value(&mut self, module: usize, index: usize, span: Span, expected: Option<&Ty>) -> Expr {
        let l = self.loc(span);
        let ast::ItemKind::Const(c) = &self.cx.modules[module].ast.items[index].kind else {
            return Expr { kind: ExprKind::Error, ty: Ty::Error, loc: l };
        };
        let c = c.clone();
        if let Some(cached) = self.cx.consts.get(&(module, index)) {
            return match cached {
                Some((v, ty)) => Expr { kind: ExprKind::Const(*v), ty: ty.clone(), loc: l },
                None => Expr { kind: ExprKind::Error, ty: Ty::Error, loc: l },
            };
        }
        let key = module * 1_000_000 + index;
        if self.const_stack.contains(&key) {
            return self.err(
                Diagnostic::error(E0210, self.file, span, format!("constant `{}` depends on itself", c.name.name))
                    .with_label("used in its own definition"),
            );
        }
        let ty = resolve_type(self.cx, module, &c.ty);
        if !(ty.is_scalar() || ty == Ty::Error) {
            let name = self.cx.program.ty_name(&ty);
            let file = self.cx.modules[module].file;
            self.cx.report(Diagnostic::error(E0216, file, c.ty.span, format!("constants are integers or bools, not `{name}`")));
            return Expr { kind: ExprKind::Error, ty: Ty::Error, loc: l };
        }
        let mut inner = BodyCx::new(self.cx, module, BodyKind::Const);
        inner.const_stack = self.const_stack.clone();
        inner.const_stack.push(key);
        let v = inner.expr(&c.value, Some(&ty));
        let v = inner.coerce(v, &ty);
        let _ = expected;
        let result = match v.kind {
            ExprKind::Const(x) => Some((x, ty.clone())),
            ExprKind::Error => None,
            _ => {
                let file = self.cx.modules[module].file;
                self.cx.report(
                    Diagnostic::error(E0210, file, c.value.span, format!("constant `{}` must be known at compile time", c.name.name))
                        .with_label("computed at run time")
                        .with_note("constants may use literals, other constants and operators, but not state, locals or calls")
                        .with_help("use `config` for a value set at load time, or `global` state for one that changes"),
                );
                None
            }
        };
        self.cx.consts.insert((module, index), result.clone());
        match result {
            Some((v, ty)) => Expr { kind: ExprKind::Const(v), ty, loc: l },
            None => Expr { kind: ExprKind::Error, ty: Ty::Error, loc: l },
        }
    }

    pub(super) fn unary(&mut self, op: UnOp, inner: &ast::Expr, e: &ast::Expr, expected: Option<&Ty>) -> Expr {
        let l = self.loc(e.span);
        match op {
            UnOp::Not => {
                let x = self.expr(inner, Some(&Ty::Bool));
                let x = self.expect_bool(x);
                if let ExprKind::Const(v) = x.kind {
                    return Expr { kind: ExprKind::Const(1 - v), ty: Ty::Bool, loc: l };
                }
                Expr { kind: ExprKind::Unary(op, Box::new(x)), ty: Ty::Bool, loc: l }
            }
            UnOp::Neg | UnOp::BitNot => {
                // A literal operand of `-` is folded at the expected type, so `-128` fits `i8`.
                let x = if op == UnOp::Neg && matches!(inner.kind, ast::ExprKind::Int { .. }) {
                    let ty = match expected {
                        Some(t @ Ty::Int(i)) if i.signed => t.clone(),
                        _ => Ty::Int(IntTy { signed: true, bits: 64 }),
                    };
                    let ast::ExprKind::Int { value, .. } = inner.kind else { unreachable!() };
                    let v = -i128::from(value);
                    let Ty::Int(i) = ty else { unreachable!() };
                    if !i.contains(v) {
                        return self.err(
                            Diagnostic::error(E0218, self.file, e.span, format!("{v} does not fit in `{i}`"))
                                .with_label(format!("`{i}` holds {}..={}", i.min(), i.max())),
                        );
                    }
                    return Expr { kind: ExprKind::Const(v), ty, loc: l };
                } else {
                    self.expr(inner, expected)
                };
                match &x.ty {
                    Ty::Int(i) => {
                        if op == UnOp::Neg && !i.signed {
                            let i = *i;
                            return self.err(
                                Diagnostic::error(E0209, self.file, e.span, format!("cannot negate an unsigned `{i}`"))
                                    .with_label("unsigned")
                                    .with_help("convert to a signed type first, or subtract from a larger value"),
                            );
                        }
                        let i = *i;
                        if let ExprKind::Const(v) = x.kind {
                            if op == UnOp::Neg && !i.contains(-v) {
                                return self.err(
                                    Diagnostic::error(E0218, self.file, e.span, format!("`-({v})` overflows `{i}`"))
                                        .with_label(format!("`{i}` holds {}..={}", i.min(), i.max()))
                                        .with_note("constant arithmetic is exact: a constant that does not fit its type is an error, not a wrapped value"),
                                );
                            }
                            let r = if op == UnOp::Neg { -v } else { !v };
                            return Expr { kind: ExprKind::Const(wrap(r, i)), ty: x.ty, loc: l };
                        }
                        let ty = x.ty.clone();
                        Expr { kind: ExprKind::Unary(op, Box::new(x)), ty, loc: l }
                    }
                    Ty::Error => x,
                    other => {
                        let name = self.cx.program.ty_name(other);
                        self.err(
                            Diagnostic::error(E0209, self.file, e.span, format!("`{}` takes an integer, not `{name}`", op.symbol()))
                                .with_label("not an integer")
                                .with_help(if op == UnOp::BitNot && *other == Ty::Bool { "use `!` for bools" } else { "" }),
                        )
                    }
                }
            }
        }
    }

    pub(super) fn binary(&mut self, op: BinOp, a: &ast::Expr, b: &ast::Expr, e: &ast::Expr, expected: Option<&Ty>) -> Expr {
        let l = self.loc(e.span);
        if matches!(op, BinOp::And | BinOp::Or) {
            let x = self.expr(a, Some(&Ty::Bool));
            let x = self.expect_bool(x);
            let y = self.expr(b, Some(&Ty::Bool));
            let y = self.expect_bool(y);
            if let (ExprKind::Const(p), ExprKind::Const(q)) = (&x.kind, &y.kind) {
                let v = if op == BinOp::And { p & q } else { p | q };
                return Expr { kind: ExprKind::Const(v), ty: Ty::Bool, loc: l };
            }
            return Expr { kind: ExprKind::Binary(op, Box::new(x), Box::new(y)), ty: Ty::Bool, loc: l };
        }
        let literal = untyped_literal;
        let arith_expected = if op.is_comparison() { None } else { expected.filter(|t| t.is_int_like()) };
        // Check the typed side first, so a literal on either side takes its type.
        let (x, y) = if literal(a) && !literal(b) {
            let y = self.expr(b, arith_expected);
            let x = self.expr(a, Some(&y.ty.clone()));
            (x, y)
        } else if literal(a) && literal(b) && arith_expected.is_none() {
            // Two untyped constants: signed if either has a minus sign, as people read them.
            let t = if has_negation(a) || has_negation(b) { Ty::Int(IntTy { signed: true, bits: 64 }) } else { Ty::U64 };
            let x = self.expr(a, Some(&t));
            let y = self.expr(b, Some(&t));
            (x, y)
        } else {
            let x = self.expr(a, arith_expected);
            // A left side that folded to a constant adapts to the right side's type below,
            // so it gives the right side no type to follow.
            let hint = if matches!(op, BinOp::Shl | BinOp::Shr) {
                None
            } else if x.ty == Ty::Error {
                // A left side in error says nothing of the type: the right side is checked
                // at the type the context gives, as it would be without the mistake.
                arith_expected.cloned()
            } else if matches!(x.kind, ExprKind::Const(_)) && !literal(b) {
                arith_expected.cloned()
            } else {
                Some(x.ty.clone())
            };
            let y = self.expr(b, hint.as_ref());
            (x, y)
        };
        if x.ty == Ty::Error || y.ty == Ty::Error {
            return Expr { kind: ExprKind::Error, ty: Ty::Error, loc: l };
        }
        if matches!(op, BinOp::Eq | BinOp::Ne) && x.ty == Ty::Bool && y.ty == Ty::Bool {
            return self.fold(op, x, y, Ty::Bool, Ty::Bool, l);
        }
        // Two recorded stacks are the same stack or not; an id is not a number.
        if matches!(op, BinOp::Eq | BinOp::Ne) && x.ty == Ty::KStack && y.ty == Ty::KStack {
            return Expr { kind: ExprKind::Binary(op, Box::new(x), Box::new(y)), ty: Ty::Bool, loc: l };
        }
        if x.ty == Ty::KStack || y.ty == Ty::KStack {
            let (tx, ty_) = (self.cx.program.ty_name(&x.ty), self.cx.program.ty_name(&y.ty));
            let what = if matches!(op, BinOp::Eq | BinOp::Ne) { "two values of one type" } else { "integers" };
            return self.err(
                Diagnostic::error(E0209, self.file, e.span, format!("`{}` takes {what}, not `{tx}` and `{ty_}`", op.symbol()))
                    .with_label("invalid operands")
                    .with_note("a `kstack` names a recorded stack: it can be stored, compared with `==` and `!=`, and key maps")
                    .with_help("key a map by it, or compare two of them"),
            );
        }
        let (Some(xi), Some(yi)) = (x.ty.as_int(), y.ty.as_int()) else {
            let (tx, ty_) = (self.cx.program.ty_name(&x.ty), self.cx.program.ty_name(&y.ty));
            let what = if op.is_comparison() && !matches!(op, BinOp::Eq | BinOp::Ne) { "integers" } else if op.is_comparison() { "two integers or two bools" } else { "integers" };
            return self.err(
                Diagnostic::error(E0209, self.file, e.span, format!("`{}` takes {what}, not `{tx}` and `{ty_}`", op.symbol()))
                    .with_label("invalid operands")
                    .with_help(if x.ty == Ty::Bool || y.ty == Ty::Bool { "combine bools with `&&`, `||` and `!`" } else { "" }),
            );
        };
        if matches!(op, BinOp::Shl | BinOp::Shr) {
            if let ExprKind::Const(s) = y.kind {
                if s < 0 || s >= i128::from(xi.bits) {
                    return self.err(
                        Diagnostic::error(E0218, self.file, b.span, format!("shift by {s} is out of range for `{xi}`"))
                            .with_label(format!("shifts of `{xi}` take 0..{}", xi.bits)),
                    );
                }
            }
            let ty = x.ty.clone();
            return self.fold(op, x, y, ty.clone(), ty, l);
        }
        // A common type: the wider of two integers of the same signedness.
        let common = if xi == yi {
            x.ty.clone()
        } else if let ExprKind::Const(v) = x.kind.clone_const() {
            if yi.contains(v) { y.ty.clone() } else { x.ty.clone() }
        } else if let ExprKind::Const(v) = y.kind.clone_const() {
            if xi.contains(v) { x.ty.clone() } else { y.ty.clone() }
        } else if xi.signed == yi.signed {
            Ty::Int(if xi.bits >= yi.bits { xi } else { yi })
        } else {
            return self.err(
                Diagnostic::error(E0204, self.file, e.span, format!("`{}` mixes `{xi}` and `{yi}`", op.symbol()))
                    .with_label("signed and unsigned operands")
                    .with_secondary(self.file, a.span, format!("`{xi}`"))
                    .with_secondary(self.file, b.span, format!("`{yi}`"))
                    .with_note("SCL does not mix signed and unsigned integers implicitly")
                    .with_help("convert one side with `as`"),
            );
        };
        let x = self.coerce(x, &common);
        let y = self.coerce(y, &common);
        if matches!(op, BinOp::Div | BinOp::Rem) {
            if let ExprKind::Const(0) = y.kind {
                crate::rules::cost::report_div_zero(self.cx, self.file, b.span, op);
                return Expr { kind: ExprKind::Error, ty: Ty::Error, loc: l };
            }
        }
        let result = if op.is_comparison() { Ty::Bool } else { common.clone() };
        self.fold(op, x, y, common, result, l)
    }

    /// Builds `x op y`, folding it when both sides are constants.
    ///
    /// Folding is exact: `+`, `-`, `*`, `<<` and `/` are computed on 128-bit integers (which
    /// hold every product of two 64-bit values), and a result outside the operand type is
    /// refused with E0218 at the operation, never wrapped: `200 + 100` is not 44 at `u8`.
    /// (At run time the same operations wrap, as `docs/language.md` says; a constant has no
    /// run time.) The bitwise operators cannot leave the type.
    pub(super) fn fold(&mut self, op: BinOp, x: Expr, y: Expr, operand: Ty, result: Ty, l: Loc) -> Expr {
        if let (ExprKind::Const(p), ExprKind::Const(q)) = (&x.kind, &y.kind) {
            let (p, q) = (*p, *q);
            let int = operand.as_int().unwrap_or(IntTy::U64);
            let exact = match op {
                BinOp::Add => p.checked_add(q),
                BinOp::Sub => p.checked_sub(q),
                BinOp::Mul => p.checked_mul(q),
                BinOp::Div if q != 0 => p.checked_div(q),
                // Shift counts are checked against the width before folding (0..bits).
                BinOp::Shl if (0..128).contains(&q) && q < i128::from(int.bits) => p.checked_mul(1i128 << q),
                _ => Some(0),
            };
            if matches!(op, BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Shl) && operand.as_int().is_some() {
                match exact {
                    Some(v) if int.contains(v) => {}
                    _ => {
                        let wide = exact.map_or_else(|| "a value beyond 128 bits".to_string(), |v| v.to_string());
                        return self.err(
                            Diagnostic::error(E0218, self.file, l.span, format!("`{p} {} {q}` overflows `{int}`", op.symbol()))
                                .with_label(format!("the result is {wide}; `{int}` holds {}..={}", int.min(), int.max()))
                                .with_note("constant arithmetic is exact: a constant that does not fit its type is an error, not a wrapped value")
                                .with_help("use a wider type, or write the value you mean"),
                        );
                    }
                }
            }
            let v = match op {
                BinOp::Add => Some(wrap(p + q, int)),
                BinOp::Sub => Some(wrap(p - q, int)),
                BinOp::Mul => Some(wrap(p.wrapping_mul(q), int)),
                BinOp::Div => (q != 0).then(|| wrap(p / q, int)),
                BinOp::Rem => (q != 0).then(|| wrap(p % q, int)),
                BinOp::BitAnd => Some(wrap(p & q, int)),
                BinOp::BitOr => Some(wrap(p | q, int)),
                BinOp::BitXor => Some(wrap(p ^ q, int)),
                BinOp::Shl => Some(wrap(p << (q & 127), int)),
                BinOp::Shr => Some(wrap(if int.signed { p >> q } else { (p & int.max()) >> q }, int)),
                BinOp::Eq => Some(i128::from(p == q)),
                BinOp::Ne => Some(i128::from(p != q)),
                BinOp::Lt => Some(i128::from(p < q)),
                BinOp::Le => Some(i128::from(p <= q)),
                BinOp::Gt => Some(i128::from(p > q)),
                BinOp::Ge => Some(i128::from(p >= q)),
                BinOp::And | BinOp::Or => None,
            };
            if let Some(v) = v {
                return Expr { kind: ExprKind::Const(v), ty: result, loc: l };
            }
        }
        Expr { kind: ExprKind::Binary(op, Box::new(x), Box::new(y)), ty: result, loc: l }
    }

    pub(super) fn call(&mut self, callee: &ast::Expr, args: &[ast::Expr], e: &ast::Expr, expected: Option<&Ty>) -> Expr {
        let l = self.loc(e.span);
        match &callee.kind {
            ast::ExprKind::Field(base, method) => {
                if let Some(map) = self.map_state(base) {
                    return self.method_call(map, method, args, e);
                }
                let _ = self.expr(base, None);
                self.err(
                    Diagnostic::error(E0205, self.file, method.span, format!("no method `{}` here", method.name))
                        .with_label("only maps have methods"),
                )
            }
            ast::ExprKind::Path(p) => {
                if p.is_simple() && self.lookup_local(&p.name.name).is_some() {
                    return self.err(
                        Diagnostic::error(E0209, self.file, callee.span, format!("`{}` is a variable, not a function", p.name.name))
                            .with_label("not callable"),
                    );
                }
                match self.resolve_value(p) {
                    Some(Value::Func(f)) => self.user_call(f, args, e),
                    Some(Value::Const(usize::MAX)) => Expr { kind: ExprKind::Error, ty: Ty::Error, loc: l },
                    Some(_) => self.err(
                        Diagnostic::error(E0209, self.file, callee.span, format!("`{p}` is not a function"))
                            .with_label("not callable"),
                    ),
                    None if p.is_simple() => match cat::builtin(&p.name.name) {
                        Some(def) => {
                            self.record(p.name.span, RefTarget::Builtin(def.name));
                            self.builtin_call(def, args, e, expected)
                        }
                        None => {
                            let mut names: Vec<String> = self
                                .cx
                                .modules[self.module]
                                .values
                                .iter()
                                .filter(|(_, v)| matches!(v, Value::Func(_)))
                                .map(|(k, _)| k.clone())
                                .collect();
                            names.extend(cat::BUILTINS.iter().map(|b| b.name.to_string()));
                            let mut d = Diagnostic::error(E0201, self.file, callee.span, format!("cannot find function `{p}`"))
                                .with_label("not declared");
                            if let Some(s) = did_you_mean(&p.name.name, names.iter().map(String::as_str)) {
                                d = d.with_help(format!("did you mean `{s}`?"));
                            }
                            for a in args {
                                let _ = self.expr(a, None);
                            }
                            self.err(d)
                        }
                    },
                    None => {
                        self.unknown_name(p);
                        Expr { kind: ExprKind::Error, ty: Ty::Error, loc: l }
                    }
                }
            }
            _ => self.err(
                Diagnostic::error(E0209, self.file, callee.span, "this is not a function").with_label("not callable"),
            ),
        }
    }

    pub(super) fn arity(&mut self, want: usize, got: usize, name: &str, e: &ast::Expr) -> bool {
        if want == got {
            return true;
        }
        self.cx.report(
            Diagnostic::error(E0206, self.file, e.span, format!("`{name}` takes {want} argument{}, {got} given", if want == 1 { "" } else { "s" }))
                .with_label(format!("{got} argument{}", if got == 1 { "" } else { "s" })),
        );
        false
    }

    pub(super) fn user_call(&mut self, f: FuncId, args: &[ast::Expr], e: &ast::Expr) -> Expr {
        let l = self.loc(e.span);
        let Some(sig) = self.sigs.and_then(|s| s.get(&f)).cloned() else {
            return Expr { kind: ExprKind::Error, ty: Ty::Error, loc: l };
        };
        let name = self.cx.program.funcs[f].name.clone();
        if !self.arity(sig.params.len(), args.len(), &name, e) {
            return Expr { kind: ExprKind::Error, ty: sig.ret.clone(), loc: l };
        }
        let mut out = Vec::new();
        let mut roots = Vec::new();
        for (a, (pname, pty, inout, _)) in args.iter().zip(&sig.params) {
            if *inout {
                match self.place(a, true) {
                    Some(p) => {
                        if p.ty != *pty && p.ty != Ty::Error && *pty != Ty::Error {
                            let (want, got) = (self.cx.program.ty_name(pty), self.cx.program.ty_name(&p.ty));
                            self.cx.report(
                                Diagnostic::error(E0204, self.file, a.span, format!("`inout {pname}` needs a `{want}`, found `{got}`"))
                                    .with_label("wrong type")
                                    .with_note("an `inout` argument is passed by reference, so its type must match exactly"),
                            );
                        }
                        roots.push(self.arg_root(&p));
                        out.push(Arg::Place(p));
                    }
                    None => {
                        // An argument that is not a place is checked as a value; its own
                        // mistake (an unhandled `m.get(k)`: E0340) is the one reported.
                        if !matches!(a.kind, ast::ExprKind::Path(_) | ast::ExprKind::Field(..) | ast::ExprKind::Index(..)) && self.expr(a, None).ty != Ty::Error {
                            self.cx.report(
                                Diagnostic::error(E0217, self.file, a.span, format!("`inout {pname}` needs a place"))
                                    .with_label("a value, not a place")
                                    .with_help("pass a local, a piece of state, or a field or element of one"),
                            );
                        }
                        roots.push(ArgRoot::Other);
                    }
                }
            } else {
                let v = self.expr(a, Some(pty));
                let v = self.coerce(v, pty);
                roots.push(ArgRoot::Other);
                out.push(Arg::Value(v));
            }
        }
        self.facts.calls.push((f, l, roots));
        Expr { kind: ExprKind::Call(f, out), ty: sig.ret, loc: l }
    }

    pub(super) fn builtin_call(&mut self, def: &'static cat::BuiltinDef, args: &[ast::Expr], e: &ast::Expr, expected: Option<&Ty>) -> Expr {
        let l = self.loc(e.span);
        if def.may_sleep {
            self.facts.sleeps.push((l, def.name));
        }
        // A built-in that writes a map of its own (`kstack` records a stack) writes state
        // wherever it is called; the atomics write through their place argument below.
        if def.writes_state && !def.params.iter().any(|(_, p)| *p == cat::BuiltinTy::IntPlace) {
            self.facts.state_writes.push(l);
        }
        if !self.arity(def.params.len(), args.len(), def.name, e) {
            return Expr { kind: ExprKind::Error, ty: Ty::Error, loc: l };
        }
        // The generic `T`: from a place argument, else the expected result type, else the
        // first integer argument that is not a bare literal (literals are checked last, at `T`).
        let literal = untyped_literal;
        let mut order: Vec<usize> = (0..args.len()).collect();
        order.sort_by_key(|&i| matches!(def.params[i].1, cat::BuiltinTy::Int) && literal(&args[i]));
        // With a known result type (`let x: i32 = min(...)`), `T` is that type: arguments
        // then widen to it or must fit it, as everywhere else.
        let mut t: Option<Ty> = match def.ret {
            cat::BuiltinTy::Int => expected.filter(|x| x.as_int().is_some()).cloned(),
            _ => None,
        };
        // Only constants, one of them negative: signed, as for operators.
        let ints: Vec<&ast::Expr> = args.iter().zip(def.params).filter(|(_, (_, p))| matches!(p, cat::BuiltinTy::Int)).map(|(a, _)| a).collect();
        if t.is_none() && !ints.is_empty() && ints.iter().all(|a| untyped_literal(a)) && ints.iter().any(|a| has_negation(a)) && !def.params.iter().any(|(_, p)| matches!(p, cat::BuiltinTy::IntPlace)) {
            t = Some(Ty::Int(IntTy { signed: true, bits: 64 }));
        }
        let mut slots: Vec<Option<Arg>> = args.iter().map(|_| None).collect();
        let mut pending: Vec<(usize, Expr)> = Vec::new();
        for i in order {
            let (a, (pname, pty)) = (&args[i], &def.params[i]);
            let mut out: Vec<Arg> = Vec::new();
            match pty {
                cat::BuiltinTy::IntPlace => match self.place(a, true) {
                    Some(p) => {
                        self.write_effect(&p, a.span);
                        if !p.ty.is_int_like() {
                            let name = self.cx.program.ty_name(&p.ty);
                            self.cx.report(
                                Diagnostic::error(E0204, self.file, a.span, format!("`{}` works on integers, not `{name}`", def.name))
                                    .with_label("not an integer"),
                            );
                        } else if p.ty != Ty::Error {
                            t = Some(p.ty.clone());
                        }
                        out.push(Arg::Place(p));
                    }
                    None => {
                        // An argument that is not a place is checked as a value; its own
                        // mistake (an unhandled `m.get(k)`: E0340) is the one reported.
                        if !matches!(a.kind, ast::ExprKind::Path(_) | ast::ExprKind::Field(..) | ast::ExprKind::Index(..)) && self.expr(a, None).ty != Ty::Error {
                            self.cx.report(
                                Diagnostic::error(E0217, self.file, a.span, format!("`{}` needs a place to update", def.name))
                                    .with_label("a value, not a place")
                                    .with_help(format!("pass the state itself: `{}(counter, 1)`", def.name)),
                            );
                        }
                        t = Some(Ty::Error);
                    }
                },
                cat::BuiltinTy::Int => {
                    let v = self.expr(a, t.as_ref());
                    let v = match &t {
                        Some(tt) => self.coerce(v, tt),
                        // A constant (`min(38, 123)`) does not fix `T`; it adapts below.
                        None if matches!(v.kind, ExprKind::Const(_)) => {
                            pending.push((i, v));
                            continue;
                        }
                        None => {
                            if !v.ty.is_int_like() {
                                let name = self.cx.program.ty_name(&v.ty);
                                self.cx.report(
                                    Diagnostic::error(E0204, self.file, a.span, format!("`{pname}` of `{}` is an integer, not `{name}`", def.name))
                                        .with_label("not an integer"),
                                );
                            }
                            t = Some(v.ty.clone());
                            v
                        }
                    };
                    out.push(Arg::Value(v));
                }
                cat::BuiltinTy::Scalar(s) => {
                    let want = scalar(*s);
                    let v = self.expr(a, Some(&want));
                    let v = self.coerce(v, &want);
                    out.push(Arg::Value(v));
                }
                cat::BuiltinTy::Void => {}
            }
            slots[i] = out.pop();
        }
        if t.is_none() {
            t = pending.first().map(|(_, v)| v.ty.clone());
        }
        for (i, v) in pending {
            let v = match &t {
                Some(tt) => self.coerce(v, tt),
                None => v,
            };
            slots[i] = Some(Arg::Value(v));
        }
        let out: Vec<Arg> = slots.into_iter().flatten().collect();
        if out.len() != args.len() {
            return Expr { kind: ExprKind::Error, ty: Ty::Error, loc: l };
        }
        // `min`/`max` of two constants fold.
        let ret = match def.ret {
            cat::BuiltinTy::Scalar(s) => scalar(s),
            cat::BuiltinTy::Int => t.clone().unwrap_or(Ty::U64),
            cat::BuiltinTy::IntPlace | cat::BuiltinTy::Void => Ty::Void,
        };
        if matches!(def.name, "min" | "max") {
            if let [Arg::Value(a), Arg::Value(b)] = &out[..] {
                if let (ExprKind::Const(x), ExprKind::Const(y)) = (&a.kind, &b.kind) {
                    let v = if def.name == "min" { (*x).min(*y) } else { (*x).max(*y) };
                    return Expr { kind: ExprKind::Const(v), ty: ret, loc: l };
                }
            }
        }
        crate::rules::cost::check_wait_bound(self.cx, self.file, def, &out, l);
        Expr { kind: ExprKind::Builtin(def, out), ty: ret, loc: l }
    }

    pub(super) fn method_call(&mut self, map: StateId, method: &ast::Ident, args: &[ast::Expr], e: &ast::Expr) -> Expr {
        let l = self.loc(e.span);
        if let Some(def) = cat::method(&method.name) {
            self.record(method.span, RefTarget::Method(def.name));
        }
        self.use_state(map);
        let StateStorage::Map { kind, key } = self.cx.program.states[map].storage.clone() else {
            return Expr { kind: ExprKind::Error, ty: Ty::Error, loc: l };
        };
        let map_name = self.cx.program.states[map].name.clone();
        let kind_name = cat::MAP_KINDS.iter().find(|d| d.kind == kind).map_or("map", |d| d.name);
        let Some(def) = cat::method(&method.name) else {
            let mut d = Diagnostic::error(E0205, self.file, method.span, format!("maps have no method `{}`", method.name))
                .with_label("unknown method");
            if let Some(s) = did_you_mean(&method.name, cat::METHODS.iter().map(|m| m.name)) {
                d = d.with_help(format!("did you mean `{s}`?"));
            }
            return self.err(d);
        };
        if !def.kinds.contains(&kind) {
            return self.err(
                Diagnostic::error(E0205, self.file, method.span, format!("`{kind_name}` maps have no method `{}`", def.name))
                    .with_label(format!("`{map_name}` is a `{kind_name}`"))
                    .with_note(def.doc),
            );
        }
        if def.ret == MethodTy::OptValue {
            for a in args {
                let _ = self.expr(a, None);
            }
            return self.err(
                Diagnostic::error(E0340, self.file, e.span, format!("`{map_name}.{}(...)` may find nothing", def.name))
                    .with_label("an optional value, not handled")
                    .with_note("a map lookup can miss; BPF programs must check for that before using the value")
                    .with_help(format!("write `if let v = {map_name}.{}(key) {{ ... }}`, or `{map_name}.get_or(key, default)`", def.name)),
            );
        }
        if !self.arity(def.params.len(), args.len(), def.name, e) {
            return Expr { kind: ExprKind::Error, ty: Ty::Error, loc: l };
        }
        if def.writes_state {
            self.facts.state_writes.push(l);
        }
        let value_ty = self.cx.program.states[map].ty.clone();
        let mut out = Vec::new();
        for (a, (_, pty)) in args.iter().zip(def.params) {
            let want = match pty {
                MethodTy::Key => key.clone().unwrap_or(Ty::Error),
                MethodTy::Value | MethodTy::OptValue => value_ty.clone(),
                MethodTy::Void => Ty::Void,
            };
            let v = self.expr(a, Some(&want));
            out.push(self.coerce(v, &want));
        }
        let ret = match def.ret {
            MethodTy::Value => value_ty,
            _ => Ty::Void,
        };
        if !(ret.is_scalar() || ret == Ty::Void || ret == Ty::Error) {
            let name = self.cx.program.ty_name(&ret);
            return self.err(
                Diagnostic::error(E0216, self.file, e.span, format!("`{}` returns a `{name}`, which is not a scalar", def.name))
                    .with_label("struct values are read in place")
                    .with_help(format!("write `if let v = {map_name}.get(key) {{ ... }}` and read `v`'s fields")),
            );
        }
        Expr { kind: ExprKind::Method(map, def, out), ty: ret, loc: l }
    }

    pub(super) fn struct_lit(&mut self, path: &ast::Path, fields: &[ast::FieldInit], e: &ast::Expr) -> Expr {
        let l = self.loc(e.span);
        let ty = resolve_type(self.cx, self.module, &ast::Type { kind: ast::TypeKind::Named(path.clone()), span: path.span });
        let Ty::Struct(s) = ty else {
            if ty != Ty::Error {
                let name = self.cx.program.ty_name(&ty);
                self.cx.report(Diagnostic::error(E0214, self.file, path.span, format!("`{name}` is not a struct")));
            }
            return Expr { kind: ExprKind::Error, ty: Ty::Error, loc: l };
        };
        let decl: Vec<(String, Ty)> = self.cx.program.structs[s].fields.iter().map(|f| (f.name.clone(), f.ty.clone())).collect();
        let sname = self.cx.program.structs[s].name.clone();
        let mut values: Vec<Option<Expr>> = decl.iter().map(|_| None).collect();
        let mut ok = true;
        for fi in fields {
            match decl.iter().position(|(n, _)| *n == fi.name.name) {
                Some(i) if values[i].is_some() => {
                    ok = false;
                    self.cx.report(
                        Diagnostic::error(E0214, self.file, fi.name.span, format!("field `{}` is given twice", fi.name.name))
                            .with_label("again"),
                    );
                }
                Some(i) => {
                    let v = self.expr(&fi.value, Some(&decl[i].1));
                    let v = self.coerce_init(v, &decl[i].1);
                    values[i] = Some(v);
                }
                None => {
                    ok = false;
                    self.unknown_field(&fi.name, &sname, decl.iter().map(|(n, _)| n.as_str()));
                    let _ = self.expr(&fi.value, None);
                }
            }
        }
        let missing: Vec<&str> = decl.iter().zip(&values).filter(|(_, v)| v.is_none()).map(|((n, _), _)| n.as_str()).collect();
        if !missing.is_empty() {
            self.cx.report(
                Diagnostic::error(E0214, self.file, path.span, format!("`{sname}` literal is missing {}", missing.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ")))
                    .with_label("incomplete")
                    .with_help("give every field a value; write `0` for the ones that start empty"),
            );
            ok = false;
        }
        if !ok {
            return Expr { kind: ExprKind::Error, ty: Ty::Error, loc: l };
        }
        Expr { kind: ExprKind::Struct(s, values.into_iter().map(|v| v.expect("all given")).collect()), ty: Ty::Struct(s), loc: l }
    }

    /// Struct fields and locals of array or struct type may be initialised with `0`.
    pub(super) fn coerce_init(&mut self, e: Expr, target: &Ty) -> Expr {
        if matches!(target, Ty::Array(..) | Ty::Struct(_)) && matches!(e.kind, ExprKind::Const(0)) {
            return Expr { kind: ExprKind::Const(0), ty: target.clone(), loc: e.loc };
        }
        self.coerce(e, target)
    }
}

/// True for an expression made only of integer literals and operators (`5`, `-3`,
/// `(73 - 676)`): like a literal, it takes its type from where it is used, so the typed side
/// of an operator is checked first.
fn untyped_literal(e: &ast::Expr) -> bool {
    match &e.kind {
        ast::ExprKind::Int { .. } => true,
        ast::ExprKind::Unary(UnOp::Neg | UnOp::BitNot, x) => untyped_literal(x),
        ast::ExprKind::Binary(op, a, b) => !op.is_comparison() && !matches!(op, BinOp::And | BinOp::Or) && untyped_literal(a) && untyped_literal(b),
        _ => false,
    }
}

/// True if an untyped constant expression contains a unary minus.
fn has_negation(e: &ast::Expr) -> bool {
    match &e.kind {
        ast::ExprKind::Unary(UnOp::Neg, _) => true,
        ast::ExprKind::Unary(_, x) => has_negation(x),
        ast::ExprKind::Binary(_, a, b) => has_negation(a) || has_negation(b),
        _ => false,
    }
}
