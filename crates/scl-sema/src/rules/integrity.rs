//! Lock integrity: `E0320 lock-state-write`, `E0321 reorder-writes-state`.
//!
//! A policy observes the lock; it must not corrupt it. The fields of `lock` and `waiter`
//! are the kernel's and are read-only. The reorder hooks run for every candidate while the
//! shuffler walks the queue, possibly many times per hand-off: they must be pure decisions,
//! so no state write may be reachable from them, directly, through functions, through
//! `inout` parameters, through map methods or through atomics.

use crate::codes::{E0320, E0321};
use crate::hir::{FuncId, Loc};
use crate::{ArgRoot, BodyId, Checker};
use scl_diagnostics::{CodeDoc, Diagnostic, FileId, Span};
use std::collections::HashMap;

/// Explain pages.
pub static DOCS: &[CodeDoc] = &[
    CodeDoc {
        code: E0320,
        summary: "a write to a field of `lock` or `waiter`",
        explanation: "`lock` and `waiter` are views of the kernel's own lock and queue data. \
Writing them would corrupt the lock, so their fields are read-only. Keep what you want to \
change in policy state (`per_lock`, `per_thread`, ...).\n\n\
Erroneous example:\n\n```scl\npolicy p for spinlock {\n    on should_reorder(l: lock, s: waiter, c: waiter) -> bool {\n        c.prio = 0;\n        return false;\n    }\n}\n```\n\n\
Fixed example:\n\n```scl\npolicy p for spinlock {\n    on should_reorder(l: lock, s: waiter, c: waiter) -> bool {\n        return c.prio < s.prio;\n    }\n}\n```\n",
    },
    CodeDoc {
        code: E0321,
        summary: "a state write reachable from `should_reorder` or `skip_reorder`",
        explanation: "The shuffler calls the reorder hooks for each waiter it looks at, while \
it walks the queue; how often depends on the queue, not on the policy. They must be pure \
decisions: no assignment to state, no map `set`/`delete`/`emit`, no atomics, also not through \
functions or `inout` parameters. Update state in `acquired` or `contended` and read it in the \
reorder hooks.\n\n\
Erroneous example:\n\n```scl\nglobal shuffles: u64;\npolicy p for spinlock {\n    on should_reorder(l: lock, s: waiter, c: waiter) -> bool {\n        shuffles += 1;\n        return c.numa_node == s.numa_node;\n    }\n}\n```\n\n\
Fixed example:\n\n```scl\nglobal handoffs: u64;\npolicy p for spinlock {\n    on acquired(l: lock) {\n        handoffs += 1;\n    }\n    on should_reorder(l: lock, s: waiter, c: waiter) -> bool {\n        return c.numa_node == s.numa_node;\n    }\n}\n```\n",
    },
];

/// Reports a write to a field of `lock` or `waiter`.
pub(crate) fn report_view_write(cx: &mut Checker, file: FileId, span: Span, view: &str, field: &str) {
    cx.report(
        Diagnostic::error(E0320, file, span, format!("`{view}.{field}` is read-only"))
            .with_label(format!("the kernel's {view} data"))
            .with_note(format!("`{view}` is a view of the kernel's own data; writing it would corrupt the lock"))
            .with_help("keep values the policy changes in its own state, such as `per_lock` or `per_thread`"),
    );
}

/// What a function may write: state (with one place that does it), and which of its
/// `inout` parameters.
#[derive(Clone, Default)]
struct Summary {
    state: Option<Loc>,
    /// Each written `inout` parameter, with a place that writes it.
    params: HashMap<usize, Loc>,
}

fn summaries(cx: &Checker) -> HashMap<FuncId, Summary> {
    let mut sums: HashMap<FuncId, Summary> = HashMap::new();
    // A fixed point over the call graph: summaries only grow, and are bounded.
    loop {
        let mut changed = false;
        for (id, facts) in &cx.bodies {
            let BodyId::Func(f) = id else { continue };
            let mut s = sums.get(f).cloned().unwrap_or_default();
            let before = (s.state.is_some(), s.params.len());
            if s.state.is_none() {
                s.state = facts.state_writes.first().copied();
            }
            for (i, l) in &facts.param_writes {
                s.params.entry(*i).or_insert(*l);
            }
            for (callee, call, roots) in &facts.calls {
                let Some(cs) = sums.get(callee).cloned() else { continue };
                if s.state.is_none() && cs.state.is_some() {
                    s.state = Some(*call);
                }
                for (i, root) in roots.iter().enumerate() {
                    if cs.params.contains_key(&i) {
                        match root {
                            ArgRoot::State if s.state.is_none() => s.state = Some(*call),
                            ArgRoot::Param(p) => {
                                s.params.entry(*p).or_insert(*call);
                            }
                            _ => {}
                        }
                    }
                }
            }
            if before != (s.state.is_some(), s.params.len()) {
                changed = true;
            }
            sums.insert(*f, s);
        }
        if !changed {
            return sums;
        }
    }
}

/// How a write is reached from a hook: the function called, where it writes, and whether
/// the state went in as an `inout` argument (`None`: the hook writes it itself).
type Via = Option<(String, Loc, bool)>;

/// Reports state writes reachable from the reorder hooks.
pub(crate) fn check_reorder_writes(cx: &mut Checker) {
    let Some(policy) = &cx.program.policy else { return };
    let sums = summaries(cx);
    let mut reports = Vec::new();
    for (i, h) in policy.hooks.iter().enumerate() {
        if h.def.may_write_state {
            continue;
        }
        let Some(facts) = cx.bodies.get(&BodyId::Hook(i)) else { continue };
        let mut writes: Vec<(Loc, Via)> = facts.state_writes.iter().map(|l| (*l, None)).collect();
        for (callee, call, roots) in &facts.calls {
            let Some(s) = sums.get(callee) else { continue };
            let name = cx.program.funcs[*callee].name.clone();
            let through_param =
                roots.iter().enumerate().find_map(|(i, r)| (*r == ArgRoot::State).then(|| s.params.get(&i)).flatten());
            if let Some(inner) = s.state {
                writes.push((*call, Some((name, inner, false))));
            } else if let Some(inner) = through_param {
                writes.push((*call, Some((name, *inner, true))));
            }
        }
        for (at, via) in writes {
            reports.push((h.def.name, h.loc, at, via));
        }
    }
    for (hook, hook_loc, at, via) in reports {
        let mut d = Diagnostic::error(E0321, at.file, at.span, format!("`{hook}` must not write policy state"))
            .with_label(match &via {
                Some((f, _, false)) => format!("`{f}` writes state"),
                Some((f, _, true)) => format!("passes state to `{f}`, which writes it through an `inout` parameter"),
                None => "writes state".to_string(),
            })
            .with_secondary(hook_loc.file, hook_loc.span, format!("in `{hook}`"));
        if let Some((_, inner, param)) = via {
            d = d.with_secondary(inner.file, inner.span, if param { "the write to the `inout` parameter" } else { "the write" });
        }
        d = d
            .with_note("the shuffler calls reorder hooks for every waiter it looks at: they must be pure decisions")
            .with_help("update state in `acquired` or `contended`, and only read it here");
        cx.report(d);
    }
}
