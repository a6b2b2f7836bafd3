//! Bounded cost: `E0350 cost-over-budget`, `E0351 unbounded-wait`, `E0352 division-by-zero`.
//!
//! Lock hooks run on the lock's critical path, so each has an instruction budget in the
//! catalogue. This module estimates, for each hook, the most BPF instructions one call can
//! execute: every path, loops multiplied by their trip counts, functions inlined, built-ins
//! and map methods at their catalogue cost. The estimate is deliberately conservative
//! (it over-counts, never under-counts, the code the back end emits). It also sizes the
//! hook's stack frame for the memory rule. Waits are bounded separately: `back_off` is a
//! timed busy wait, so its bound is in nanoseconds, not instructions.

use crate::codes::{E0350, E0351, E0352, E0353};
use crate::hir::*;
use crate::ty::Ty;
use crate::Checker;
use std::collections::{HashMap, HashSet};
use scl_catalogue::{self as cat, BuiltinDef};
use scl_diagnostics::{CodeDoc, Diagnostic, FileId, Span};
use scl_syntax::ast::BinOp;

/// Explain pages.
pub static DOCS: &[CodeDoc] = &[
    CodeDoc { code: E0350, summary: "a hook may execute more instructions than its budget", explanation: "Each hook has a budget of instructions per call (see `docs/hooks.md`): in atomic context 4096 for most and 1024 for the reorder hooks, which run once per waiter the shuffler looks at; 65536 for a hook that may sleep for every lock kind of its policy. The compiler estimates the worst case over every path, with loops multiplied by their trip counts and functions inlined; `sclc check --cost` prints the estimate of each hook. Shorten loops, or move work out of the hot hook.\n\nErroneous example:\n\n```scl\nper_cpu hist: [u64; 1024];\npolicy p for spinlock {\n    on should_reorder(l: lock, s: waiter, c: waiter) -> bool {\n        let n: u64 = 0;\n        for i in 0..1024 {\n            n += hist[i];\n        }\n        return n > 10;\n    }\n}\n```\n\nFixed example:\n\n```scl\nglobal total: u64;\npolicy p for spinlock {\n    on acquired(l: lock) {\n        total += 1;\n    }\n    on should_reorder(l: lock, s: waiter, c: waiter) -> bool {\n        return total > 10;\n    }\n}\n```\n" },
    CodeDoc { code: E0351, summary: "a wait longer than the limit", explanation: "`back_off(ns)` busy-waits in the hook, so it is clamped to the policy's `config max_backoff_ns` (100us if not declared), and that clamp may not exceed 1ms; `sleep(ns)` may not exceed 10ms; `sleep_after(ns)` may not exceed 1s (the task sleeps off the CPU after the handler returns; the calls of one handler run add up, to at most 1s). A constant argument over its limit, or a `max_backoff_ns` default over 1ms, is refused rather than silently clamped; a wait computed at run time is clamped.\n\nErroneous example:\n\n```scl\nconfig max_backoff_ns: u64 = 5ms;\n```\n\nFixed example:\n\n```scl\nconfig max_backoff_ns: u64 = 500us;\n```\n" },
    CodeDoc { code: E0353, summary: "a hook the kernel verifier could not finish checking", explanation: "Before a program runs, the kernel's verifier walks every path through it, each loop iteration separately. When an `if` inside a loop lets iterations end in different states, the number of paths the verifier keeps grows with every iteration, and past one million instructions it refuses the program. The compiler estimates that work and refuses the hook first, with this message instead of a verifier log. Make the loop shorter, compute without `if` (comparisons are values: `n += (x == y) as u32`), or `break` out instead of continuing with a different state.\n\nErroneous example:\n\n```scl\nglobal slots: [u64; 1024];\nglobal found: u32;\npolicy p for mutex {\n    on acquired(l: lock) {\n        let n: u32 = 0;\n        for i in 0..1024 {\n            if slots[i] == l.addr {\n                n += 1;\n            }\n        }\n        found = n;\n    }\n}\n```\n\nFixed example:\n\n```scl\nglobal slots: [u64; 1024];\nglobal found: u32;\npolicy p for mutex {\n    on acquired(l: lock) {\n        let n: u32 = 0;\n        for i in 0..1024 {\n            n += (slots[i] == l.addr) as u32;\n        }\n        found = n;\n    }\n}\n```\n" },
    CodeDoc { code: E0352, summary: "division or remainder by a constant zero", explanation: "In BPF, `x / 0` is 0 and `x % 0` is `x`: no trap, just a wrong answer. A divisor that is the constant 0 is always a mistake, so it is refused.\n\nErroneous example:\n\n```scl\nconst BUCKETS: u64 = 0;\nfn slot(x: u64) -> u64 {\n    return x % BUCKETS;\n}\n```\n\nFixed example:\n\n```scl\nconst BUCKETS: u64 = 16;\nfn slot(x: u64) -> u64 {\n    return x % BUCKETS;\n}\n```\n" },
];

/// Reports a division or remainder by the constant zero.
pub(crate) fn report_div_zero(cx: &mut Checker, file: FileId, span: Span, op: BinOp) {
    let what = if op == BinOp::Div { "division" } else { "remainder" };
    cx.report(
        Diagnostic::error(E0352, file, span, format!("{what} by zero"))
            .with_label("this is always 0")
            .with_note("in BPF, `x / 0` is 0 and `x % 0` is x: no trap, just a wrong answer")
            .with_help("divide by a non-zero constant, or check the divisor at run time"),
    );
}

/// Checks the constant bound of a `back_off` or `sleep` call: a constant over the limit is
/// refused rather than silently clamped. For `back_off` the limit is the policy's clamp,
/// `config max_backoff_ns` (or its default when not declared).
pub(crate) fn check_wait_bound(cx: &mut Checker, file: FileId, def: &'static BuiltinDef, args: &[Arg], at: Loc) {
    let (limit, what) = match def.name {
        "back_off" => match backoff_clamp(cx) {
            Some(v) => (v, format!("this policy's clamp, `config {}` = {v} ns", cat::BACK_OFF_CONFIG)),
            None => (cat::BACK_OFF_DEFAULT_MAX_NS, format!("the default clamp of {} ns (no `config {}` is declared)", cat::BACK_OFF_DEFAULT_MAX_NS, cat::BACK_OFF_CONFIG)),
        },
        "sleep" => (cat::SLEEP_LIMIT_NS, format!("the {} ns limit of `sleep`", cat::SLEEP_LIMIT_NS)),
        "sleep_after" => (cat::SLEEP_AFTER_LIMIT_NS, format!("the {} ns limit of `sleep_after`", cat::SLEEP_AFTER_LIMIT_NS)),
        _ => return,
    };
    if let Some(Arg::Value(Expr { kind: ExprKind::Const(v), loc, .. })) = args.first() {
        if *v > i128::from(limit) {
            let help = if def.name == "back_off" {
                format!("wait at most {limit} ns, or raise `config {}` (never above {} ns)", cat::BACK_OFF_CONFIG, cat::BACK_OFF_HARD_LIMIT_NS)
            } else if def.name == "sleep" {
                format!("sleep at most {limit} ns (`sleep_after` sleeps up to 1s off the CPU, after the handler)")
            } else {
                format!("ask for at most {limit} ns")
            };
            cx.report(
                Diagnostic::error(E0351, file, loc.span, format!("`{}` of {v} ns is over {what}", def.name))
                    .with_label("longer than the limit")
                    .with_secondary(file, at.span, "in this call")
                    .with_note(if def.name == "back_off" {
                        "a busy wait stalls its CPU; `back_off` never waits longer than its clamp"
                    } else {
                        "a sleep in a lock hook delays every waiter behind it"
                    })
                    .with_help(help),
            );
        }
    }
}

/// The default of the main file's `config max_backoff_ns`, if declared.
fn backoff_clamp(cx: &Checker) -> Option<u64> {
    match cx.modules[0].values.get(cat::BACK_OFF_CONFIG) {
        Some(crate::Value::State(id)) => match cx.program.states[*id].storage {
            StateStorage::Config(v) => Some(v),
            _ => None,
        },
        _ => None,
    }
}

/// What the cost pass found for one hook.
#[derive(Clone, Debug)]
pub struct HookCost {
    /// The hook's name.
    pub hook: &'static str,
    /// Worst-case instructions executed by one call.
    pub insns: u64,
    /// Estimated stack frame in bytes.
    pub stack: u32,
    /// The hook's budget.
    pub budget: u32,
    /// Estimated instructions the kernel verifier explores (loops whose iterations can
    /// leave different states are counted quadratically).
    pub verifier_insns: u64,
    /// Where the handler is.
    pub loc: Loc,
}

/// Fixed instructions around every hook: loading the context, the exit.
const HOOK_OVERHEAD: u64 = 6;

/// The most verifier steps the compiler lets a hook need: a fifth of the kernel's
/// one-million limit, since the estimate is rough.
pub const VERIFIER_BUDGET: u64 = 200_000;

/// Estimates every hook, reports those over budget, checks the back-off clamp.
pub(crate) fn estimate(cx: &mut Checker) -> Vec<HookCost> {
    check_backoff_config(cx);
    let Some(policy) = &cx.program.policy else { return Vec::new() };
    let est = Estimator { program: &cx.program, verifying: std::cell::Cell::new(false), summaries: Default::default() };
    est.summarise_functions();
    let costs: Vec<HookCost> = policy
        .hooks
        .iter()
        .map(|h| {
            let (insns, _) = est.block(&h.body.block);
            est.verifying.set(true);
            let verifier_insns = est.verify_block(&h.body.block);
            est.verifying.set(false);
            HookCost {
                verifier_insns,
                hook: h.def.name,
                insns: insns.saturating_add(HOOK_OVERHEAD),
                stack: est.frame(&h.body, &[]).saturating_add(est.zero_area()),
                budget: if h.atomic { h.def.budget } else { cat::limits::SLEEPABLE_BUDGET },
                loc: h.loc,
            }
        })
        .collect();
    for c in &costs {
        if c.verifier_insns > VERIFIER_BUDGET {
            cx.report(
                Diagnostic::error(E0353, c.loc.file, c.loc.span, format!("the kernel verifier would explore about {} instructions of hook `{}`", c.verifier_insns, c.hook))
                    .with_label(format!("over the {VERIFIER_BUDGET} the compiler allows"))
                    .with_note("the verifier follows each iteration of a loop; when an `if` in the loop lets iterations end in different states, the paths multiply (the kernel gives up at one million instructions)")
                    .with_help("keep loops short, make their bodies branch-free (compute with comparisons and arithmetic instead of `if`), or leave early with `break`"),
            );
        }
        if c.insns > u64::from(c.budget) {
            cx.report(
                Diagnostic::error(E0350, c.loc.file, c.loc.span, format!("hook `{}` may execute about {} instructions per call", c.hook, c.insns))
                    .with_label(format!("over its budget of {}", c.budget))
                    .with_note("lock hooks run on the lock's critical path; the estimate covers the worst path, with loops multiplied by their trip counts")
                    .with_help("shorten loops, or move work to a hook that runs less often; `sclc check --cost` shows each hook's estimate"),
            );
        }
    }
    costs
}

fn check_backoff_config(cx: &mut Checker) {
    let main = cx.modules[0].file;
    let bad: Vec<(Loc, u64)> = cx
        .program
        .states
        .values()
        .filter(|s| s.name == cat::BACK_OFF_CONFIG && s.loc.file == main)
        .filter_map(|s| match s.storage {
            StateStorage::Config(v) if v > cat::BACK_OFF_HARD_LIMIT_NS => Some((s.loc, v)),
            _ => None,
        })
        .collect();
    for (loc, v) in bad {
        cx.report(
            Diagnostic::error(E0351, loc.file, loc.span, format!("`{}` defaults to {v} ns, over the 1ms limit", cat::BACK_OFF_CONFIG))
                .with_label("clamps every `back_off` of this policy")
                .with_note("a busy wait stalls its CPU; lock hooks may wait at most 1ms")
                .with_help(format!("use a default of at most {} ns", cat::BACK_OFF_HARD_LIMIT_NS)),
        );
    }
}

/// True if an iteration of `body` can end in more than one state: an `if` (or `if let`)
/// one of whose ways continues the loop after changing something, or `continue`.
fn forks(body: &Block) -> bool {
    fn exits(b: &Block) -> bool {
        b.stmts.last().is_some_and(|s| matches!(s, Stmt::Break | Stmt::Return(..)))
    }
    fn changes(b: &Block) -> bool {
        b.stmts.iter().any(|s| match s {
            Stmt::Assign { .. } | Stmt::Continue | Stmt::Expr(_) | Stmt::Let(..) => true,
            Stmt::If { arms, else_ } => arms.iter().any(|(_, b)| changes(b)) || else_.as_ref().is_some_and(changes),
            Stmt::For { body, .. } | Stmt::Block(body) => changes(body),
            _ => false,
        })
    }
    body.stmts.iter().any(|s| match s {
        Stmt::If { arms, else_ } => {
            let mut ways: Vec<&Block> = arms.iter().map(|(_, b)| b).collect();
            ways.extend(else_.as_ref());
            let staying = ways.iter().filter(|b| !exits(b)).count() + usize::from(else_.is_none());
            staying >= 2 && ways.iter().any(|b| !exits(b) && changes(b))
        }
        Stmt::For { body, .. } | Stmt::Block(body) => forks(body),
        _ => false,
    })
}

struct Estimator<'a> {
    program: &'a Program,
    /// True while estimating the verifier's work (calls then count their bodies' verifier
    /// work, not their cost).
    verifying: std::cell::Cell<bool>,
    /// Each function's estimates, worked out once, callees first
    /// ([`Estimator::summarise_functions`]): a call costs a look-up, so neither the depth of
    /// a call chain (the stack) nor the number of paths through the call graph (the time)
    /// grows with the estimate.
    summaries: std::cell::RefCell<HashMap<FuncId, Summary>>,
}

/// A function's estimates, as a call to it adds them.
#[derive(Clone, Copy, Default)]
struct Summary {
    /// Worst-case instructions of its body.
    cost: u64,
    /// Verifier steps of its body.
    verify: u64,
    /// Its frame, with its callees' (its `inout` parameters are the caller's).
    frame: u32,
}

impl Estimator<'_> {
    /// Works out every function's [`Summary`] in post-order of the call graph, with an
    /// explicit stack: a chain of 40,000 calls needs no deeper recursion than one body.
    /// (The graph has no cycle: the recursion rule runs first. Were there one, the call
    /// that closes it would count as empty.)
    fn summarise_functions(&self) {
        let mut in_progress = HashSet::new();
        for root in self.program.funcs.keys() {
            let mut stack = vec![(root, false)];
            while let Some((f, expanded)) = stack.pop() {
                if self.summaries.borrow().contains_key(&f) {
                    continue;
                }
                if expanded {
                    let summary = self.summarise(f);
                    self.summaries.borrow_mut().insert(f, summary);
                    continue;
                }
                if !in_progress.insert(f) {
                    continue;
                }
                stack.push((f, true));
                self.walk_block(&self.program.funcs[f].body.block, &mut |e| {
                    if let ExprKind::Call(callee, _) = &e.kind {
                        if !in_progress.contains(callee) {
                            stack.push((*callee, false));
                        }
                    }
                });
            }
        }
    }

    /// One function's summary; its callees' are known.
    fn summarise(&self, f: FuncId) -> Summary {
        let func = &self.program.funcs[f];
        let cost = self.block(&func.body.block).0;
        self.verifying.set(true);
        let verify = self.verify_block(&func.body.block);
        self.verifying.set(false);
        let by_ref: Vec<LocalId> = func.params.iter().filter(|(_, inout)| *inout).map(|(l, _)| *l).collect();
        Summary { cost, verify, frame: self.frame(&func.body, &by_ref) }
    }

    fn summary(&self, f: FuncId) -> Summary {
        self.summaries.borrow().get(&f).copied().unwrap_or_default()
    }

    /// (worst-case instructions, true if every path returns).
    fn block(&self, b: &Block) -> (u64, bool) {
        let mut total = 0u64;
        for s in &b.stmts {
            let (c, returns) = self.stmt(s);
            total = total.saturating_add(c);
            if returns {
                return (total, true);
            }
        }
        (total, false)
    }

    fn stmt(&self, s: &Stmt) -> (u64, bool) {
        match s {
            Stmt::Let(local, init) => {
                let _ = local;
                (init.as_ref().map_or(2, |e| self.expr(e).saturating_add(self.store(&e.ty))), false)
            }
            Stmt::Assign { place, op, value, .. } => {
                let read = if op.is_some() { self.place(place).saturating_add(1) } else { 0 };
                (sum([self.place(place), read, self.expr(value), self.store(&value.ty)]), false)
            }
            Stmt::Expr(e) => (self.expr(e), false),
            Stmt::If { arms, else_ } => {
                let mut worst = 0u64;
                let mut conds = 0u64;
                for (c, b) in arms {
                    conds = sum([conds, self.cond(c), 1]);
                    worst = worst.max(conds.saturating_add(self.block(b).0));
                }
                let else_cost = else_.as_ref().map_or(0, |b| self.block(b).0);
                worst = worst.max(conds.saturating_add(else_cost));
                let returns = else_.as_ref().is_some_and(|e| self.block(e).1) && arms.iter().all(|(_, b)| self.block(b).1);
                (worst, returns)
            }
            Stmt::For { start, end, body, .. } => {
                let n = (end - start).max(0) as u64;
                (n.saturating_mul(self.block(body).0.saturating_add(3)).saturating_add(2), false)
            }
            Stmt::Return(e, _) => (e.as_ref().map_or(0, |e| self.expr(e)).saturating_add(2), true),
            Stmt::Break | Stmt::Continue => (1, false),
            Stmt::Block(b) => self.block(b),
        }
    }

    /// Verifier steps for a block: like the cost, but a loop whose body can end an
    /// iteration in different states costs trip count squared times its body.
    fn verify_block(&self, b: &Block) -> u64 {
        b.stmts.iter().map(|s| self.verify_stmt(s)).fold(0, u64::saturating_add)
    }

    fn verify_stmt(&self, s: &Stmt) -> u64 {
        match s {
            Stmt::For { start, end, body, .. } => {
                let n = (end - start).max(0) as u64;
                let per = self.verify_block(body).saturating_add(3);
                let factor = if forks(body) { n.saturating_mul(n) } else { n };
                factor.saturating_mul(per).saturating_add(2)
            }
            Stmt::If { arms, else_ } => {
                // The verifier explores every arm.
                let arms_cost: u64 = arms.iter().map(|(c, b)| sum([self.cond(c), 1, self.verify_block(b)])).fold(0, u64::saturating_add);
                arms_cost.saturating_add(else_.as_ref().map_or(0, |b| self.verify_block(b)))
            }
            Stmt::Block(b) => self.verify_block(b),
            other => self.stmt(other).0,
        }
    }

    fn cond(&self, c: &Cond) -> u64 {
        match c {
            Cond::Expr(e) => self.expr(e),
            // `entry` may also zero a value, create it and look it up again.
            Cond::MapGet { key, create, .. } => self.expr(key).saturating_add(if *create { 40 } else { 10 }),
        }
    }

    /// Instructions to store a value of `ty` (one per 8 bytes, at least one).
    fn store(&self, ty: &Ty) -> u64 {
        u64::from(self.program.layout(ty).size.div_ceil(8).max(1))
    }

    /// Instructions to reach a place (map lookups for state included).
    fn place(&self, p: &Place) -> u64 {
        let base: u64 = match p.base {
            PlaceBase::Local(_) => 1,
            PlaceBase::State(id) => match self.program.states[id].storage {
                StateStorage::Config(_) => 3,
                StateStorage::Global | StateStorage::PerCpu => 9,
                // Lookup, and on a miss: insert zero, look up again.
                StateStorage::PerLock | StateStorage::PerThread => 24,
                StateStorage::PerWaiter { .. } | StateStorage::Map { .. } => 4,
            },
            PlaceBase::LockField(_) | PlaceBase::WaiterField(..) => 2,
            PlaceBase::PerWaiter(..) => 4,
        };
        let proj: u64 = p
            .projections
            .iter()
            .map(|pr| match pr {
                Projection::Field(_) => 0,
                Projection::Index(e) => self.expr(e).saturating_add(4),
            })
            .fold(0, u64::saturating_add);
        base.saturating_add(proj)
    }

    fn expr(&self, e: &Expr) -> u64 {
        match &e.kind {
            ExprKind::Const(_) => 2,
            ExprKind::Read(p) => self.place(p).saturating_add(1),
            ExprKind::Unary(_, x) => self.expr(x).saturating_add(1),
            ExprKind::Binary(op, a, b) => {
                let extra = match op {
                    BinOp::Div | BinOp::Rem => 3,
                    BinOp::And | BinOp::Or => 3,
                    _ if op.is_comparison() => 3,
                    _ => 1,
                };
                sum([self.expr(a), self.expr(b), extra])
            }
            ExprKind::Cast(x) => self.expr(x).saturating_add(2),
            ExprKind::Call(f, args) => {
                let callee = self.summary(*f);
                let body = if self.verifying.get() { callee.verify } else { callee.cost };
                self.args(args).saturating_add(body).saturating_add(2)
            }
            ExprKind::Builtin(def, args) => self.args(args).saturating_add(u64::from(def.cost)),
            ExprKind::Method(_, def, args) => {
                args.iter().map(|a| self.expr(a)).fold(u64::from(def.cost), u64::saturating_add)
            }
            ExprKind::Struct(_, fields) => fields.iter().map(|f| self.expr(f).saturating_add(self.store(&f.ty))).fold(0, u64::saturating_add),
            ExprKind::Error => 0,
        }
    }

    fn args(&self, args: &[Arg]) -> u64 {
        args.iter()
            .map(|a| match a {
                Arg::Value(e) => self.expr(e),
                Arg::Place(p) => self.place(p),
            })
            .fold(0, u64::saturating_add)
    }

    /// A body's stack frame: its locals, plus the deepest inlined callee's frame, plus
    /// scratch for map keys, values and struct literals.
    /// `by_ref` are the `inout` parameters: references to the caller's place, not copies.
    fn frame(&self, body: &Body, by_ref: &[LocalId]) -> u32 {
        let locals: u32 = body
            .locals
            .iter()
            .filter(|(id, l)| l.map_ref.is_none() && !by_ref.contains(id))
            .map(|(_, l)| l)
            .map(|l| slot_bytes(self.program.layout(&l.ty).size))
            .fold(0, u32::saturating_add);
        let mut deepest = 0u32;
        let mut scratch = 0u32;
        self.walk_block(&body.block, &mut |e| match &e.kind {
            ExprKind::Call(f, _) => deepest = deepest.max(self.summary(*f).frame),
            ExprKind::Method(m, _, _) => {
                let st = &self.program.states[*m];
                let key = match &st.storage {
                    StateStorage::Map { key: Some(k), .. } => self.program.layout(k).size,
                    _ => 0,
                };
                scratch = scratch.max(slot_bytes(key.saturating_add(self.program.layout(&st.ty).size)));
            }
            ExprKind::Struct(..) => scratch = scratch.max(slot_bytes(self.program.layout(&e.ty).size)),
            // An indexed read keeps the base pointer, the index and the element pointer in
            // slots, and redirects an index out of range to a zeroed element.
            ExprKind::Read(p) if has_index(p) => scratch = scratch.max(self.index_scratch(body, p)),
            _ => {}
        });
        // The same for an indexed assignment target, and the value kept while it is found.
        self.walk_assignments(&body.block, &mut |place, value| {
            if has_index(place) {
                let kept = slot_bytes(self.program.layout(&value.ty).size);
                scratch = scratch.max(self.index_scratch(body, place).saturating_add(kept));
            }
        });
        // State lookups need an 8-byte key slot.
        locals.saturating_add(deepest).saturating_add(scratch).saturating_add(8)
    }

    /// The zeroed bytes a missing `per_lock`/`per_thread` entry of at most
    /// `ZERO_ON_STACK_MAX` bytes is read as (or created from): as large as the largest such
    /// state of the program, whether or not the hook uses it.
    fn zero_area(&self) -> u32 {
        self.program
            .states
            .values()
            .filter(|st| matches!(st.storage, StateStorage::PerLock | StateStorage::PerThread))
            .map(|st| slot_bytes(self.program.layout(&st.ty).size))
            .filter(|size| *size <= cat::limits::ZERO_ON_STACK_MAX)
            .max()
            .unwrap_or(0)
    }

    /// The slots an indexed place keeps: each index, the element pointer (and the base),
    /// and one zeroed scratch of the place's own type that an index out of range, at any
    /// level, redirects the place to (not an inner row: `a[i][j]` needs the element's bytes).
    fn index_scratch(&self, _body: &Body, p: &Place) -> u32 {
        let indexes = p.projections.iter().filter(|pr| matches!(pr, Projection::Index(_))).count() as u32;
        let slots = INDEX_SLOTS.max(indexes.saturating_mul(8).saturating_add(16));
        slots.saturating_add(slot_bytes(self.program.layout(&p.ty).size).max(8))
    }

    fn walk_assignments(&self, b: &Block, f: &mut dyn FnMut(&Place, &Expr)) {
        for s in &b.stmts {
            match s {
                Stmt::Assign { place, value, .. } => f(place, value),
                Stmt::If { arms, else_ } => {
                    for (_, b) in arms {
                        self.walk_assignments(b, f);
                    }
                    if let Some(b) = else_ {
                        self.walk_assignments(b, f);
                    }
                }
                Stmt::For { body, .. } | Stmt::Block(body) => self.walk_assignments(body, f),
                _ => {}
            }
        }
    }

    fn walk_block(&self, b: &Block, f: &mut dyn FnMut(&Expr)) {
        for s in &b.stmts {
            match s {
                Stmt::Let(_, Some(e)) | Stmt::Expr(e) | Stmt::Return(Some(e), _) => self.walk_expr(e, f),
                Stmt::Assign { value, .. } => self.walk_expr(value, f),
                Stmt::If { arms, else_ } => {
                    for (c, b) in arms {
                        match c {
                            Cond::Expr(e) => self.walk_expr(e, f),
                            Cond::MapGet { key, .. } => self.walk_expr(key, f),
                        }
                        self.walk_block(b, f);
                    }
                    if let Some(b) = else_ {
                        self.walk_block(b, f);
                    }
                }
                Stmt::For { body, .. } => self.walk_block(body, f),
                Stmt::Block(b) => self.walk_block(b, f),
                _ => {}
            }
        }
    }

    fn walk_expr(&self, e: &Expr, f: &mut dyn FnMut(&Expr)) {
        f(e);
        match &e.kind {
            ExprKind::Unary(_, x) | ExprKind::Cast(x) => self.walk_expr(x, f),
            ExprKind::Binary(_, a, b) => {
                self.walk_expr(a, f);
                self.walk_expr(b, f);
            }
            ExprKind::Call(_, args) | ExprKind::Builtin(_, args) => {
                for a in args {
                    if let Arg::Value(v) = a {
                        self.walk_expr(v, f);
                    }
                }
            }
            ExprKind::Method(_, _, args) | ExprKind::Struct(_, args) => {
                for a in args {
                    self.walk_expr(a, f);
                }
            }
            _ => {}
        }
    }
}

/// A saturating sum: estimates of absurd programs stop at `u64::MAX` rather than overflow.
fn sum<const N: usize>(xs: [u64; N]) -> u64 {
    xs.into_iter().fold(0, u64::saturating_add)
}

/// The stack bytes of a value of `size` bytes: rounded up to 8, saturating (arrays may be
/// up to 4 GiB long; the frame that would hold one is refused, not overflowed).
fn slot_bytes(size: u32) -> u32 {
    size.div_ceil(8).saturating_mul(8)
}

/// Slots an indexed access keeps besides the element: base pointer, index, element pointer.
const INDEX_SLOTS: u32 = 24;

fn has_index(p: &Place) -> bool {
    p.projections.iter().any(|pr| matches!(pr, crate::hir::Projection::Index(_)))
}
