//! Walks over the checked program that decide how to lower it: which state and lock flags
//! a body uses, which locals it writes or uses as keys, what may open new blocks.

use super::*;

/// True if `body` (or a function it calls) reads `lock.kind`, `is_reader` or `is_writer`.
pub(super) fn uses_lock_flags(program: &hir::Program, body: &Body) -> bool {
    let mut found = false;
    let mut seen = HashSet::default();
    walk_stmts(program, &body.block.stmts, &mut seen, &mut |e| {
        if let ExprKind::Read(p) = &e.kind {
            if let PlaceBase::LockField(f) = p.base {
                found |= f.name != "addr";
            }
        }
    });
    found
}

/// Calls `f` on every expression of `stmts` and of the functions they call (once each).
pub(super) fn walk_stmts(program: &hir::Program, stmts: &[Stmt], seen: &mut HashSet<hir::FuncId>, f: &mut dyn FnMut(&hir::Expr)) {
    walk(program, stmts, &[], seen, f);
}

/// True if `stmts` call the built-in `name`, directly or through the functions they call.
pub(super) fn calls_builtin(program: &hir::Program, stmts: &[Stmt], name: &str) -> bool {
    let mut found = false;
    walk_stmts(program, stmts, &mut HashSet::default(), &mut |e| {
        found |= matches!(&e.kind, ExprKind::Builtin(def, _) if def.name == name);
    });
    found
}

/// [`walk_stmts`] over `stmts` and then the expressions `exprs`.
pub(super) fn walk(program: &hir::Program, stmts: &[Stmt], exprs: &[&hir::Expr], seen: &mut HashSet<hir::FuncId>, f: &mut dyn FnMut(&hir::Expr)) {
    fn block(program: &hir::Program, b: &hir::Block, seen: &mut HashSet<hir::FuncId>, f: &mut dyn FnMut(&hir::Expr)) {
        for s in &b.stmts {
            stmt(program, s, seen, f);
        }
    }
    fn stmt(program: &hir::Program, s: &Stmt, seen: &mut HashSet<hir::FuncId>, f: &mut dyn FnMut(&hir::Expr)) {
        match s {
            Stmt::Let(_, Some(e)) | Stmt::Expr(e) | Stmt::Return(Some(e), _) => expr(program, e, seen, f),
            Stmt::Assign { place, value, .. } => {
                place_exprs(program, place, seen, f);
                expr(program, value, seen, f);
            }
            Stmt::If { arms, else_ } => {
                for (c, b) in arms {
                    match c {
                        HCond::Expr(e) => expr(program, e, seen, f),
                        HCond::MapGet { key, .. } => expr(program, key, seen, f),
                    }
                    block(program, b, seen, f);
                }
                if let Some(b) = else_ {
                    block(program, b, seen, f);
                }
            }
            Stmt::For { body, .. } => block(program, body, seen, f),
            Stmt::Block(b) => block(program, b, seen, f),
            _ => {}
        }
    }
    fn place_exprs(program: &hir::Program, p: &hir::Place, seen: &mut HashSet<hir::FuncId>, f: &mut dyn FnMut(&hir::Expr)) {
        for pr in &p.projections {
            if let Projection::Index(i) = pr {
                expr(program, i, seen, f);
            }
        }
    }
    fn expr(program: &hir::Program, e: &hir::Expr, seen: &mut HashSet<hir::FuncId>, f: &mut dyn FnMut(&hir::Expr)) {
        f(e);
        match &e.kind {
            ExprKind::Read(p) => place_exprs(program, p, seen, f),
            ExprKind::Unary(_, x) | ExprKind::Cast(x) => expr(program, x, seen, f),
            ExprKind::Binary(_, a, b) => {
                expr(program, a, seen, f);
                expr(program, b, seen, f);
            }
            ExprKind::Call(callee, args) => {
                for a in args {
                    match a {
                        Arg::Value(v) => expr(program, v, seen, f),
                        Arg::Place(p) => place_exprs(program, p, seen, f),
                    }
                }
                if seen.insert(*callee) {
                    block(program, &program.funcs[*callee].body.block, seen, f);
                }
            }
            ExprKind::Builtin(_, args) => {
                for a in args {
                    match a {
                        Arg::Value(v) => expr(program, v, seen, f),
                        Arg::Place(p) => place_exprs(program, p, seen, f),
                    }
                }
            }
            ExprKind::Method(_, _, args) | ExprKind::Struct(_, args) => {
                for a in args {
                    expr(program, a, seen, f);
                }
            }
            ExprKind::Const(_) | ExprKind::Error => {}
        }
    }
    for st in stmts {
        stmt(program, st, seen, f);
    }
    for e in exprs {
        expr(program, e, seen, f);
    }
}

/// The field indices of a place reached through fields only (`None` if it indexes).
pub(super) fn field_path(p: &hir::Place) -> Option<Vec<usize>> {
    p.projections
        .iter()
        .map(|pr| match pr {
            Projection::Field(i) => Some(*i),
            Projection::Index(_) => None,
        })
        .collect()
}

/// How many times `block` (not the functions it calls) reads local `l` as a map key.
pub(super) fn key_reads(body: &hir::Block, l: LocalId) -> usize {
    fn is_l(e: &hir::Expr, l: LocalId) -> bool {
        matches!(&e.kind, ExprKind::Read(p) if p.projections.is_empty() && matches!(p.base, PlaceBase::Local(x) if x == l))
    }
    fn expr(e: &hir::Expr, l: LocalId) -> usize {
        match &e.kind {
            ExprKind::Method(_, _, args) => usize::from(args.first().is_some_and(|k| is_l(k, l))) + args.iter().map(|a| expr(a, l)).sum::<usize>(),
            ExprKind::Unary(_, x) | ExprKind::Cast(x) => expr(x, l),
            ExprKind::Binary(_, a, b) => expr(a, l) + expr(b, l),
            ExprKind::Call(_, args) | ExprKind::Builtin(_, args) => args.iter().map(|a| if let Arg::Value(v) = a { expr(v, l) } else { 0 }).sum(),
            ExprKind::Struct(_, args) => args.iter().map(|a| expr(a, l)).sum(),
            _ => 0,
        }
    }
    fn block(b: &hir::Block, l: LocalId) -> usize {
        b.stmts
            .iter()
            .map(|s| match s {
                Stmt::Let(_, Some(e)) | Stmt::Expr(e) | Stmt::Return(Some(e), _) => expr(e, l),
                Stmt::Assign { value, .. } => expr(value, l),
                Stmt::If { arms, else_ } => {
                    arms.iter()
                        .map(|(c, b)| {
                            let c = match c {
                                HCond::Expr(e) => expr(e, l),
                                HCond::MapGet { key, .. } => usize::from(is_l(key, l)) + expr(key, l),
                            };
                            c + block(b, l)
                        })
                        .sum::<usize>()
                        + else_.as_ref().map_or(0, |b| block(b, l))
                }
                Stmt::For { body, .. } => block(body, l),
                Stmt::Block(b) => block(b, l),
                _ => 0,
            })
            .sum()
    }
    block(body, l)
}

/// The state `stmts` use (read or write), through the functions they call too.
pub(super) fn states_used(program: &hir::Program, stmts: &[Stmt]) -> Vec<StateId> {
    states_used_in(program, stmts, &[])
}

/// The state `stmts` and `exprs` use, through the functions they call too.
pub(super) fn states_used_in(program: &hir::Program, stmts: &[Stmt], exprs: &[&hir::Expr]) -> Vec<StateId> {
    let mut out = Vec::new();
    let mut seen = HashSet::default();
    let mut note = |p: &hir::Place, out: &mut Vec<StateId>| {
        if let PlaceBase::State(id) = p.base {
            if !out.contains(&id) {
                out.push(id);
            }
        }
    };
    // Places appear in reads, assignments and place arguments; walk them all.
    fn places_in_block(b: &[Stmt], out: &mut Vec<StateId>, note: &mut dyn FnMut(&hir::Place, &mut Vec<StateId>)) {
        for s in b {
            match s {
                Stmt::Assign { place, .. } => note(place, out),
                Stmt::If { arms, else_ } => {
                    for (_, b) in arms {
                        places_in_block(&b.stmts, out, note);
                    }
                    if let Some(b) = else_ {
                        places_in_block(&b.stmts, out, note);
                    }
                }
                Stmt::For { body, .. } => places_in_block(&body.stmts, out, note),
                Stmt::Block(b) => places_in_block(&b.stmts, out, note),
                _ => {}
            }
        }
    }
    places_in_block(stmts, &mut out, &mut note);
    walk(program, stmts, exprs, &mut seen, &mut |e| match &e.kind {
        ExprKind::Read(p) => note(p, &mut out),
        ExprKind::Call(_, args) | ExprKind::Builtin(_, args) => {
            for a in args {
                if let Arg::Place(p) = a {
                    note(p, &mut out);
                }
            }
        }
        _ => {}
    });
    for f in seen {
        places_in_block(&program.funcs[f].body.block.stmts, &mut out, &mut note);
    }
    out.sort();
    out
}

/// True if `block` may write local `l` (an assignment to it or a part of it, or passing it
/// as a place to an `inout` parameter or an atomic).
pub(super) fn writes_local(block: &hir::Block, l: LocalId) -> bool {
    fn rooted(p: &hir::Place, l: LocalId) -> bool {
        matches!(p.base, PlaceBase::Local(x) if x == l)
    }
    fn expr(e: &hir::Expr, l: LocalId) -> bool {
        match &e.kind {
            ExprKind::Call(_, args) | ExprKind::Builtin(_, args) => args.iter().any(|a| match a {
                Arg::Place(p) => rooted(p, l),
                Arg::Value(v) => expr(v, l),
            }),
            ExprKind::Unary(_, x) | ExprKind::Cast(x) => expr(x, l),
            ExprKind::Binary(_, a, b) => expr(a, l) || expr(b, l),
            ExprKind::Method(_, _, args) | ExprKind::Struct(_, args) => args.iter().any(|a| expr(a, l)),
            _ => false,
        }
    }
    block.stmts.iter().any(|s| match s {
        Stmt::Assign { place, value, .. } => rooted(place, l) || expr(value, l),
        Stmt::Let(_, Some(e)) | Stmt::Expr(e) | Stmt::Return(Some(e), _) => expr(e, l),
        Stmt::If { arms, else_ } => {
            arms.iter().any(|(c, b)| {
                (match c {
                    HCond::Expr(e) => expr(e, l),
                    HCond::MapGet { key, .. } => expr(key, l),
                }) || writes_local(b, l)
            }) || else_.as_ref().is_some_and(|b| writes_local(b, l))
        }
        Stmt::For { body, .. } | Stmt::Block(body) => writes_local(body, l),
        _ => false,
    })
}

/// True if deriving the destination's pointer opens blocks (an indexed place).
pub(super) fn may_branch_place(d: Dest<'_>) -> bool {
    match d {
        Dest::Slot(..) => false,
        Dest::Place(p, _) => p.projections.iter().any(|pr| matches!(pr, Projection::Index(_))),
    }
}

/// True if lowering `e` may open new blocks (so values computed before it must be kept in
/// slots): calls, lookups, indexing, waits, short-circuit logic.
pub(super) fn may_branch(e: &hir::Expr) -> bool {
    match &e.kind {
        ExprKind::Const(_) => false,
        ExprKind::Read(p) => {
            p.projections.iter().any(|pr| matches!(pr, Projection::Index(_))) || lock_flag_read(p)
        }
        ExprKind::Unary(_, x) | ExprKind::Cast(x) => may_branch(x),
        ExprKind::Binary(op, a, b) => {
            may_branch(a) || may_branch(b) || (matches!(op, HBin::And | HBin::Or) && !is_pure(b))
        }
        ExprKind::Builtin(def, args) => {
            matches!(def.name, "back_off" | "sleep" | "sleep_after" | "atomic_cas")
                || args.iter().any(|a| match a {
                    Arg::Value(v) => may_branch(v),
                    Arg::Place(p) => p.projections.iter().any(|pr| matches!(pr, Projection::Index(_))),
                })
        }
        ExprKind::Call(..) | ExprKind::Method(..) | ExprKind::Struct(..) => true,
        ExprKind::Error => false,
    }
}

/// On the stock target, `contention_end` reads the lock's flags through a lookup.
pub(super) fn lock_flag_read(p: &hir::Place) -> bool {
    matches!(p.base, PlaceBase::LockField(f) if f.name != "addr")
}

/// True if evaluating `e` has no effect and cannot fail, so `&&`/`||` may evaluate it
/// unconditionally.
pub(super) fn is_pure(e: &hir::Expr) -> bool {
    if may_branch(e) {
        return false;
    }
    match &e.kind {
        ExprKind::Const(_) => true,
        ExprKind::Read(p) => p.projections.iter().all(|pr| matches!(pr, Projection::Field(_))),
        ExprKind::Unary(_, x) | ExprKind::Cast(x) => is_pure(x),
        ExprKind::Binary(_, a, b) => is_pure(a) && is_pure(b),
        _ => false,
    }
}
