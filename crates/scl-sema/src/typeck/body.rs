//! Checking statements, places (what can be read and written) and the effects that the
//! safety rules follow.

use super::*;

/// The state of checking one body.
pub(crate) struct BodyCx<'a> {
    pub cx: &'a mut Checker,
    pub module: usize,
    pub file: FileId,
    pub kind: BodyKind,
    pub locals: PrimaryMap<LocalId, LocalDef>,
    pub(super) scopes: Vec<HashMap<String, LocalId>>,
    /// Locals that are `inout` parameters, with their index.
    pub inout: HashMap<LocalId, usize>,
    pub facts: BodyFacts,
    pub(super) loop_depth: usize,
    pub(super) sigs: Option<&'a HashMap<FuncId, Sig>>,
    pub(super) const_stack: Vec<usize>,
}
impl<'a> BodyCx<'a> {
    pub(super) fn new(cx: &'a mut Checker, module: usize, kind: BodyKind) -> BodyCx<'a> {
        let file = cx.modules[module].file;
        BodyCx {
            cx,
            module,
            file,
            kind,
            locals: PrimaryMap::new(),
            scopes: vec![HashMap::new()],
            inout: HashMap::new(),
            facts: BodyFacts::default(),
            loop_depth: 0,
            sigs: None,
            const_stack: Vec::new(),
        }
    }

    pub(super) fn loc(&self, span: Span) -> Loc {
        Loc { file: self.file, span }
    }

    pub(super) fn err(&mut self, d: Diagnostic) -> Expr {
        let span = d.primary.span;
        self.cx.report(d);
        Expr { kind: ExprKind::Error, ty: Ty::Error, loc: self.loc(span) }
    }

    pub(super) fn declare(&mut self, name: &str, ty: Ty, span: Span, map_ref: Option<StateId>) -> LocalId {
        let id = self.locals.push(LocalDef { name: name.to_string(), ty, map_ref, loc: self.loc(span) });
        self.scopes.last_mut().expect("a scope").insert(name.to_string(), id);
        self.record_local(span, id);
        id
    }

    pub(super) fn lookup_local(&self, name: &str) -> Option<LocalId> {
        self.scopes.iter().rev().find_map(|s| s.get(name).copied())
    }

    pub(super) fn is_const(&self) -> bool {
        matches!(self.kind, BodyKind::Const)
    }

    // ----------------------------------------------------------------------------------
    // Statements

    pub(super) fn block(&mut self, b: &ast::Block) -> hir::Block {
        self.scopes.push(HashMap::new());
        let stmts = b.stmts.iter().filter_map(|s| self.stmt(s)).collect();
        self.scopes.pop();
        hir::Block { stmts }
    }

    pub(super) fn stmt(&mut self, s: &ast::Stmt) -> Option<Stmt> {
        Some(match &s.kind {
            ast::StmtKind::Let(l) => {
                let declared = l.ty.as_ref().map(|t| resolve_type(self.cx, self.module, t));
                if let Some(t @ (Ty::Lock | Ty::Waiter)) = &declared {
                    let name = self.cx.program.ty_name(t);
                    self.cx.report(
                        Diagnostic::error(E0216, self.file, l.ty.as_ref().expect("typed").span, format!("a local cannot be a `{name}`"))
                            .with_label("views exist only as parameters"),
                    );
                }
                let init = l.init.as_ref().map(|e| {
                    let e = self.expr(e, declared.as_ref());
                    match &declared {
                        Some(t) => self.coerce(e, t),
                        None => e,
                    }
                });
                let ty = declared.or_else(|| init.as_ref().map(|e| e.ty.clone())).unwrap_or(Ty::Error);
                if ty == Ty::Void {
                    self.cx.report(
                        Diagnostic::error(E0204, self.file, l.name.span, format!("`{}` would hold no value", l.name.name))
                            .with_label("the initialiser returns nothing"),
                    );
                }
                let id = self.declare(&l.name.name, ty, l.name.span, None);
                Stmt::Let(id, init)
            }
            ast::StmtKind::Assign(a) => {
                if !matches!(a.target.kind, ast::ExprKind::Path(_) | ast::ExprKind::Field(..) | ast::ExprKind::Index(..)) {
                    // The syntax check lets a map lookup through (`m.get(k) = v`), so that the
                    // reason it cannot be written is the lookup's: E0340.
                    if self.expr(&a.target, None).ty != Ty::Error {
                        self.cx.report(
                            Diagnostic::error(E0212, self.file, a.target.span, "cannot assign to this value")
                                .with_label("a value, not a place"),
                        );
                    }
                    let _ = self.expr(&a.value, None);
                    return None;
                }
                let place = self.place(&a.target, true)?;
                self.write_effect(&place, a.target.span);
                let op = match a.op {
                    ast::AssignOp::Set => None,
                    ast::AssignOp::Compound(op) => Some(op),
                };
                let value = self.expr(&a.value, Some(&place.ty));
                let value = match op {
                    None => self.coerce(value, &place.ty),
                    Some(op) => {
                        self.check_compound(op, &place.ty, &value, a.target.span);
                        if matches!(op, BinOp::Shl | BinOp::Shr) {
                            value
                        } else {
                            self.coerce(value, &place.ty)
                        }
                    }
                };
                Stmt::Assign { place, op, value, loc: self.loc(s.span) }
            }
            ast::StmtKind::Expr(e) => {
                let e = self.expr(e, None);
                Stmt::Expr(e)
            }
            ast::StmtKind::If { arms, else_ } => {
                let mut out = Vec::new();
                for arm in arms {
                    self.scopes.push(HashMap::new());
                    let cond = self.cond(&arm.cond);
                    let block = self.block(&arm.block);
                    self.scopes.pop();
                    if let Some(c) = cond {
                        out.push((c, block));
                    }
                }
                let else_ = else_.as_ref().map(|b| self.block(b));
                Stmt::If { arms: out, else_ }
            }
            ast::StmtKind::For(f) => {
                let bounds = self.loop_bounds(f);
                self.scopes.push(HashMap::new());
                let (start, end, ty) = bounds.unwrap_or((0, 0, Ty::Error));
                let var = self.declare(&f.var.name, ty, f.var.span, None);
                self.loop_depth += 1;
                let body = self.block(&f.body);
                self.loop_depth -= 1;
                self.scopes.pop();
                Stmt::For { var, start, end, body, loc: self.loc(s.span) }
            }
            ast::StmtKind::Return(e) => {
                let expected = match &self.kind {
                    BodyKind::Func(t) => t.clone(),
                    BodyKind::Hook(ret) => ret.clone(),
                    BodyKind::Const => Ty::Void,
                };
                let value = match (e, &expected) {
                    (Some(e), Ty::Void) => {
                        let _ = self.expr(e, None);
                        self.cx.report(
                            Diagnostic::error(E0204, self.file, e.span, "this returns nothing, but a value is given")
                                .with_label("unexpected value")
                                .with_help("write `return;`, or give the function a result type"),
                        );
                        None
                    }
                    (Some(e), t) => {
                        let v = self.expr(e, Some(t));
                        Some(self.coerce(v, t))
                    }
                    (None, Ty::Void | Ty::Error) => None,
                    (None, t) => {
                        let name = self.cx.program.ty_name(t);
                        self.cx.report(
                            Diagnostic::error(E0204, self.file, s.span, format!("`return` needs a `{name}` value here"))
                                .with_label("no value"),
                        );
                        None
                    }
                };
                Stmt::Return(value, self.loc(s.span))
            }
            ast::StmtKind::Break => Stmt::Break,
            ast::StmtKind::Continue => Stmt::Continue,
            ast::StmtKind::Block(b) => Stmt::Block(self.block(b)),
            ast::StmtKind::Error => return None,
        })
    }

    pub(super) fn loop_bounds(&mut self, f: &ast::ForStmt) -> Option<(i128, i128, Ty)> {
        // The loop variable takes the bounds' type; with two bare literals it is a `u32`,
        // which widens wherever a wider unsigned value is wanted.
        let literal = |e: &ast::Expr| matches!(e.kind, ast::ExprKind::Int { .. });
        let (start_e, end_e) = match (literal(&f.start), literal(&f.end)) {
            (true, true) => {
                let s = self.expr(&f.start, Some(&Ty::U32));
                let e = self.expr(&f.end, Some(&Ty::U32));
                (s, e)
            }
            (true, false) => {
                let e = self.expr(&f.end, None);
                let s = self.expr(&f.start, Some(&e.ty.clone()));
                (s, e)
            }
            _ => {
                let s = self.expr(&f.start, None);
                let e = self.expr(&f.end, Some(&s.ty.clone()));
                (s, e)
            }
        };
        let mut ty = if start_e.ty == Ty::Error { end_e.ty.clone() } else { start_e.ty.clone() };
        if !ty.is_int_like() {
            let name = self.cx.program.ty_name(&ty);
            self.cx.report(Diagnostic::error(E0209, self.file, f.start.span, format!("loop bounds are integers, not `{name}`")));
            ty = Ty::Error;
        }
        crate::rules::termination::check_loop(self.cx, self.file, f, &start_e, &end_e).map(|(s, e)| (s, e, ty))
    }

    pub(super) fn cond(&mut self, c: &ast::Cond) -> Option<Cond> {
        match c {
            ast::Cond::Expr(e) => {
                let e = self.expr(e, Some(&Ty::Bool));
                Some(Cond::Expr(self.expect_bool(e)))
            }
            ast::Cond::Let(name, e) => {
                let Some((map, key, value_ty, create)) = self.map_get(e) else {
                    // Bind the name anyway, so its uses do not cascade.
                    self.declare(&name.name, Ty::Error, name.span, None);
                    return None;
                };
                let local = self.declare(&name.name, value_ty, name.span, Some(map));
                Some(Cond::MapGet { local, map, key, loc: self.loc(e.span), create })
            }
        }
    }

    /// `m.get(k)` or `m.entry(k)` in an `if let`: the map, the checked key, the value type,
    /// and whether a missing entry is created (`entry`).
    pub(super) fn map_get(&mut self, e: &ast::Expr) -> Option<(StateId, Expr, Ty, bool)> {
        if let ast::ExprKind::Call(callee, args) = &e.kind {
            if let ast::ExprKind::Field(base, method) = &callee.kind {
                if method.name == "get" || method.name == "entry" {
                    if let Some(map) = self.map_state(base) {
                        let create = method.name == "entry";
                        let kind = match &self.cx.program.states[map].storage {
                            StateStorage::Map { kind, .. } => Some(*kind),
                            _ => None,
                        };
                        let entry = cat::method("entry").expect("in the catalogue");
                        if create && !kind.is_some_and(|k| entry.kinds.contains(&k)) {
                            let kind_name = kind.and_then(|k| cat::MAP_KINDS.iter().find(|d| d.kind == k)).map_or("state", |d| d.name);
                            self.cx.report(
                                Diagnostic::error(E0205, self.file, method.span, format!("`{kind_name}` maps have no method `entry`"))
                                    .with_label("not a hash map")
                                    .with_note(entry.doc)
                                    .with_help("array entries always exist: use `get`"),
                            );
                            return None;
                        }
                        if create {
                            // It may create an entry: a write, refused in reorder hooks.
                            let l = self.loc(e.span);
                            self.facts.state_writes.push(l);
                        }
                        let key_ty = self.map_key_ty(map);
                        if args.len() != 1 {
                            self.cx.report(
                                Diagnostic::error(E0206, self.file, e.span, format!("`{}` takes 1 argument, {} given", method.name, args.len())),
                            );
                            return None;
                        }
                        self.use_state(map);
                        let key = self.expr(&args[0], key_ty.as_ref());
                        let key = match &key_ty {
                            Some(t) => self.coerce(key, t),
                            None => key,
                        };
                        let value_ty = self.cx.program.states[map].ty.clone();
                        return Some((map, key, value_ty, create));
                    }
                }
            }
        }
        // A mistake inside (`m.get(k).field`: an unhandled lookup) is reported once, as itself.
        if self.expr(e, None).ty != Ty::Error {
            self.cx.report(
                Diagnostic::error(E0340, self.file, e.span, "`if let` takes a map lookup")
                    .with_label("not `map.get(key)`")
                    .with_help("write `if let v = m.get(key) { ... }`, or use a plain `if` with a bool condition"),
            );
        }
        None
    }

    pub(super) fn map_key_ty(&self, map: StateId) -> Option<Ty> {
        match &self.cx.program.states[map].storage {
            StateStorage::Map { key, .. } => key.clone(),
            _ => None,
        }
    }

    /// If `e` names a map of this module (or `module::map`), that map.
    pub(super) fn map_state(&mut self, e: &ast::Expr) -> Option<StateId> {
        let ast::ExprKind::Path(p) = &e.kind else { return None };
        if p.is_simple() && self.lookup_local(&p.name.name).is_some() {
            return None;
        }
        match self.resolve_value(p)? {
            Value::State(id) if self.cx.program.states[id].kind == StateKind::Map => Some(id),
            _ => None,
        }
    }

    pub(super) fn check_compound(&mut self, op: BinOp, target: &Ty, value: &Expr, span: Span) {
        if !(target.is_int_like() && value.ty.is_int_like()) {
            let (t, v) = (self.cx.program.ty_name(target), self.cx.program.ty_name(&value.ty));
            self.cx.report(
                Diagnostic::error(E0209, self.file, span, format!("`{}=` takes integers, not `{t}` and `{v}`", op.symbol()))
                    .with_label("not an integer"),
            );
        }
        if matches!(op, BinOp::Div | BinOp::Rem) {
            if let ExprKind::Const(0) = value.kind {
                crate::rules::cost::report_div_zero(self.cx, self.file, value.loc.span, op);
            }
        }
    }

    // ----------------------------------------------------------------------------------
    // Places and effects

    /// Resolves `e` as a place. `for_write` reports read-only places.
    pub(crate) fn place(&mut self, e: &ast::Expr, for_write: bool) -> Option<Place> {
        let place = match &e.kind {
            ast::ExprKind::Path(p) => {
                if p.is_simple() {
                    if let Some(local) = self.lookup_local(&p.name.name) {
                        self.record_local(p.name.span, local);
                        let ty = self.locals[local].ty.clone();
                        return Some(Place { base: PlaceBase::Local(local), projections: Vec::new(), ty, loc: self.loc(e.span) });
                    }
                }
                match self.resolve_value(p) {
                    Some(Value::State(id)) => {
                        self.use_state(id);
                        let st = &self.cx.program.states[id];
                        match st.kind {
                            StateKind::Map => {
                                let name = st.name.clone();
                                self.cx.report(
                                    Diagnostic::error(E0209, self.file, e.span, format!("map `{name}` is not a value"))
                                        .with_label("a map")
                                        .with_help(format!("read an entry with `if let v = {name}.get(key) {{ ... }}` or `{name}.get_or(key, default)`")),
                                );
                                return None;
                            }
                            StateKind::PerWaiter => {
                                let name = st.name.clone();
                                self.cx.report(
                                    Diagnostic::error(E0201, self.file, e.span, format!("per_waiter state `{name}` belongs to a waiter"))
                                        .with_label("which waiter's?")
                                        .with_help(format!("read it through a waiter parameter: `candidate.{name}`")),
                                );
                                return None;
                            }
                            StateKind::Config if for_write => {
                                let name = st.name.clone();
                                let decl = st.loc;
                                self.cx.report(
                                    Diagnostic::error(E0212, self.file, e.span, format!("config `{name}` is read-only"))
                                        .with_label("cannot be written")
                                        .with_secondary(decl.file, decl.span, "declared as `config` here")
                                        .with_note("config values are fixed when the policy is loaded (`--set NAME=VALUE`)")
                                        .with_help("keep values that change in `global` or `per_*` state"),
                                );
                                return None;
                            }
                            _ => {}
                        }
                        let ty = self.cx.program.states[id].ty.clone();
                        Place { base: PlaceBase::State(id), projections: Vec::new(), ty, loc: self.loc(e.span) }
                    }
                    Some(Value::Const(_)) | Some(Value::Func(_)) if for_write => {
                        self.cx.report(
                            Diagnostic::error(E0212, self.file, e.span, format!("`{p}` cannot be assigned"))
                                .with_label("a constant or function, not a variable"),
                        );
                        return None;
                    }
                    Some(_) => return None,
                    None => {
                        self.unknown_name(p);
                        return None;
                    }
                }
            }
            ast::ExprKind::Field(base, field) => {
                let base_place = self.projection_base(base, for_write, Some(field))?;
                return self.project_field(base_place, field, e.span, for_write);
            }
            ast::ExprKind::Index(base, index) => {
                let mut base_place = self.projection_base(base, for_write, None)?;
                let Ty::Array(elem, n) = base_place.ty.clone() else {
                    if base_place.ty != Ty::Error {
                        let name = self.cx.program.ty_name(&base_place.ty);
                        self.cx.report(
                            Diagnostic::error(E0209, self.file, base.span, format!("`{name}` cannot be indexed"))
                                .with_label("not an array"),
                        );
                    }
                    return None;
                };
                let i = self.expr(index, None);
                if !i.ty.is_int_like() {
                    let name = self.cx.program.ty_name(&i.ty);
                    self.cx.report(
                        Diagnostic::error(E0204, self.file, index.span, format!("array indexes are integers, not `{name}`")),
                    );
                }
                if let ExprKind::Const(v) = i.kind {
                    if v < 0 || v >= i128::from(n) {
                        self.cx.report(
                            Diagnostic::error(E0218, self.file, index.span, format!("index {v} is outside the array"))
                                .with_label(format!("the array has {n} elements")),
                        );
                    }
                }
                base_place.projections.push(Projection::Index(Box::new(i)));
                base_place.ty = *elem;
                base_place.loc = self.loc(e.span);
                base_place
            }
            _ => {
                if for_write {
                    // The syntax check already reported assignments to non-places.
                    return None;
                }
                return None;
            }
        };
        Some(place)
    }

    /// The place a field access (`field` given) or an index reads or writes through.
    ///
    /// A base that is not a place (a map lookup, a call, an operator, a literal, a constant)
    /// is checked as a value first, so the mistake it holds is reported once (E0340 for an
    /// unhandled `m.get(k)`), and otherwise refused: only places have fields and elements.
    /// Never returns `None` without a diagnostic: a projection of nothing would otherwise
    /// compile to a constant.
    pub(super) fn projection_base(&mut self, base: &ast::Expr, for_write: bool, field: Option<&ast::Ident>) -> Option<Place> {
        let is_place = match &base.kind {
            ast::ExprKind::Field(..) | ast::ExprKind::Index(..) | ast::ExprKind::Error => true,
            ast::ExprKind::Path(p) => {
                (p.is_simple() && self.lookup_local(&p.name.name).is_some())
                    || !matches!(self.peek_value(p), Some(Value::Const(_) | Value::Func(_)))
            }
            _ => false,
        };
        if is_place {
            return self.place(base, for_write);
        }
        let v = self.expr(base, None);
        if v.ty == Ty::Error {
            return None;
        }
        let name = self.cx.program.ty_name(&v.ty);
        let d = match (&v.ty, field) {
            (Ty::Struct(_) | Ty::Array(..), _) => {
                let what = if field.is_some() { "a field" } else { "an element" };
                Diagnostic::error(E0209, self.file, base.span, format!("{what} of a temporary `{name}` value"))
                    .with_label("a value, not a place")
                    .with_note("fields and elements are read from places: locals, parameters and state")
                    .with_help("store the value in a local first: `let v = ...;`")
            }
            (_, Some(f)) => Diagnostic::error(E0205, self.file, f.span, format!("`{name}` has no fields"))
                .with_label(format!("no field `{}`", f.name)),
            (_, None) => Diagnostic::error(E0209, self.file, base.span, format!("`{name}` cannot be indexed"))
                .with_label("not an array"),
        };
        self.cx.report(d);
        None
    }

    /// What `p` names, without reporting or recording anything (`None` if unknown).
    fn peek_value(&self, p: &ast::Path) -> Option<Value> {
        let module = match &p.module {
            None => self.module,
            Some(m) => *self.cx.modules[self.module].imports.get(&m.name)?,
        };
        self.cx.modules[module].values.get(&p.name.name).copied()
    }

    pub(super) fn project_field(&mut self, mut base: Place, field: &ast::Ident, span: Span, for_write: bool) -> Option<Place> {
        match base.ty.clone() {
            Ty::Struct(s) => {
                let sd = &self.cx.program.structs[s];
                match sd.fields.iter().position(|f| f.name == field.name) {
                    Some(i) => {
                        self.record(field.span, RefTarget::Field { owner: s, index: i });
                        let sd = &self.cx.program.structs[s];
                        base.ty = sd.fields[i].ty.clone();
                        base.projections.push(Projection::Field(i));
                        base.loc = self.loc(span);
                        Some(base)
                    }
                    None => {
                        let names: Vec<String> = sd.fields.iter().map(|f| f.name.clone()).collect();
                        let sname = sd.name.clone();
                        self.unknown_field(field, &sname, names.iter().map(String::as_str));
                        None
                    }
                }
            }
            Ty::Lock => {
                let PlaceBase::Local(_) = base.base else { return None };
                match cat::lock_field(&field.name) {
                    Some(def) => {
                        self.record(field.span, RefTarget::LockField(def.name));
                        if for_write {
                            crate::rules::integrity::report_view_write(self.cx, self.file, span, "lock", def.name);
                        }
                        Some(Place { base: PlaceBase::LockField(def), projections: Vec::new(), ty: scalar(def.ty), loc: self.loc(span) })
                    }
                    None => {
                        self.unknown_field(field, "lock", cat::LOCK_FIELDS.iter().map(|f| f.name));
                        None
                    }
                }
            }
            Ty::Waiter => {
                let PlaceBase::Local(w) = base.base else { return None };
                if let Some(def) = cat::waiter_field(&field.name) {
                    self.record(field.span, RefTarget::WaiterField(def.name));
                    if for_write {
                        crate::rules::integrity::report_view_write(self.cx, self.file, span, "waiter", def.name);
                    }
                    return Some(Place { base: PlaceBase::WaiterField(w, def), projections: Vec::new(), ty: scalar(def.ty), loc: self.loc(span) });
                }
                // The policy's per_waiter fields, declared in the main module.
                let per_waiter = self.cx.modules[0].values.get(&field.name).copied();
                if let Some(Value::State(id)) = per_waiter {
                    if self.cx.program.states[id].kind == StateKind::PerWaiter {
                        self.record(field.span, RefTarget::State(id));
                        self.use_state(id);
                        let ty = self.cx.program.states[id].ty.clone();
                        return Some(Place { base: PlaceBase::PerWaiter(w, id), projections: Vec::new(), ty, loc: self.loc(span) });
                    }
                }
                let mut names: Vec<String> = cat::WAITER_FIELDS.iter().map(|f| f.name.to_string()).collect();
                names.extend(
                    self.cx.program.states.values().filter(|s| s.kind == StateKind::PerWaiter).map(|s| s.name.clone()),
                );
                self.unknown_field(field, "waiter", names.iter().map(String::as_str));
                None
            }
            Ty::Error => None,
            other => {
                let name = self.cx.program.ty_name(&other);
                self.cx.report(
                    Diagnostic::error(E0205, self.file, field.span, format!("`{name}` has no fields"))
                        .with_label(format!("no field `{}`", field.name)),
                );
                None
            }
        }
    }

    pub(super) fn unknown_field<'n>(&mut self, field: &ast::Ident, owner: &str, names: impl Iterator<Item = &'n str> + Clone) {
        let mut d = Diagnostic::error(E0205, self.file, field.span, format!("`{owner}` has no field `{}`", field.name))
            .with_label("unknown field");
        if let Some(s) = did_you_mean(&field.name, names.clone()) {
            d = d.with_help(format!("did you mean `{s}`?"));
        } else {
            d = d.with_note(format!("its fields are: {}", names.map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")));
        }
        self.cx.report(d);
    }

    /// Records what writing `place` does, for the rules.
    pub(super) fn write_effect(&mut self, place: &Place, span: Span) {
        let l = self.loc(span);
        match place.base {
            PlaceBase::State(_) | PlaceBase::PerWaiter(..) => self.facts.state_writes.push(l),
            PlaceBase::Local(local) => {
                if self.locals[local].map_ref.is_some() {
                    self.facts.state_writes.push(l);
                } else if let Some(&i) = self.inout.get(&local) {
                    self.facts.param_writes.push((i, l));
                }
            }
            PlaceBase::LockField(_) | PlaceBase::WaiterField(..) => {}
        }
    }

    pub(super) fn arg_root(&self, place: &Place) -> ArgRoot {
        match place.base {
            PlaceBase::State(_) | PlaceBase::PerWaiter(..) => ArgRoot::State,
            PlaceBase::Local(l) if self.locals[l].map_ref.is_some() => ArgRoot::State,
            PlaceBase::Local(l) => self.inout.get(&l).map_or(ArgRoot::Other, |&i| ArgRoot::Param(i)),
            _ => ArgRoot::Other,
        }
    }

    pub(super) fn use_state(&mut self, id: StateId) {
        self.cx.program.states[id].used = true;
    }

    pub(super) fn resolve_value(&mut self, p: &ast::Path) -> Option<Value> {
        let (module, v) = match &p.module {
            None => (self.module, self.cx.modules[self.module].values.get(&p.name.name).copied()),
            Some(m) => {
                let Some(&im) = self.cx.modules[self.module].imports.get(&m.name) else {
                    let d = unknown_module(self.file, m);
                    self.cx.report(d);
                    return Some(Value::Const(usize::MAX));
                };
                let mfile = self.cx.modules[im].file;
                self.record(m.span, RefTarget::Module { name: m.name.clone(), file: mfile });
                let v = self.cx.modules[im].values.get(&p.name.name).copied();
                if v.is_none() {
                    self.cx.report(
                        Diagnostic::error(E0201, self.file, p.name.span, format!("module `{}` has no `{}`", m.name, p.name.name))
                            .with_label("not declared there"),
                    );
                    return Some(Value::Const(usize::MAX));
                }
                (im, v)
            }
        };
        let target = match v? {
            Value::State(id) => RefTarget::State(id),
            Value::Func(f) => RefTarget::Func(f),
            Value::Const(index) => match &self.cx.modules[module].ast.items[index].kind {
                ast::ItemKind::Const(c) => RefTarget::Const { loc: loc(self.cx.modules[module].file, c.name.span), name: c.name.name.clone() },
                _ => return v,
            },
        };
        self.record(p.name.span, target);
        v
    }

    pub(super) fn record(&mut self, span: Span, target: RefTarget) {
        let at = self.loc(span);
        self.cx.references.push(Reference { at, target });
    }

    pub(super) fn record_local(&mut self, span: Span, local: LocalId) {
        let l = &self.locals[local];
        let target = RefTarget::Local { loc: l.loc, name: l.name.clone(), ty: self.cx.program.ty_name(&l.ty) };
        self.record(span, target);
    }

    pub(super) fn unknown_name(&mut self, p: &ast::Path) {
        let mut candidates: Vec<String> = self.scopes.iter().flat_map(|s| s.keys().cloned()).collect();
        candidates.extend(self.cx.modules[self.module].values.keys().cloned());
        let mut d = Diagnostic::error(E0201, self.file, p.span, format!("cannot find `{p}`")).with_label("not declared");
        if let Some(s) = did_you_mean(&p.name.name, candidates.iter().map(String::as_str)) {
            d = d.with_help(format!("did you mean `{s}`?"));
        }
        self.cx.report(d);
    }

}
