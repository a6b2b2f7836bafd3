//! Atomic context: `E0310 sleep-in-atomic`.
//!
//! Spinlock hooks, and every hook that runs with preemption disabled, must not sleep: a
//! sleeping task there deadlocks or corrupts the scheduler's state. A built-in marked
//! may-sleep in the catalogue (`sleep`, `read_user`) that is reachable from such a hook,
//! directly or through any chain of user functions, is an error that shows the chain.

use crate::codes::E0310;
use crate::hir::{FuncId, Loc};
use crate::{BodyId, Checker};
use scl_catalogue::Target;
use scl_diagnostics::{CodeDoc, Diagnostic};
use std::collections::{HashMap, VecDeque};

/// Explain pages.
pub static DOCS: &[CodeDoc] = &[CodeDoc {
    code: E0310,
    summary: "a may-sleep built-in is reachable from a hook in atomic context",
    explanation: "Hooks of spinlocks, and the decision hooks of every lock (`contended`, \
`enable_fastpath`, the reorder and bypass hooks), run with preemption disabled: sleeping there \
deadlocks the CPU. `sleep` and `read_user` may sleep, so they are allowed only in hooks that may \
sleep (`to_acquire`, `acquired`, `to_release`, `released` of mutex and rwsem policies on the \
syncord and sim targets). On the `stock` target every hook is a lock tracepoint program, which runs \
in atomic context whatever the lock kind, so nothing may sleep there. On the `syncord` target the \
lock-hook module runs every hook in a non-sleepable BPF program, so `read_user`, whose helper needs a \
sleepable one, is refused there in any hook (`sleep` is a bounded wait and stays allowed where hooks may sleep). The error shows the chain of calls from the hook to the built-in. \
In atomic context, wait with `back_off`, a bounded busy wait.\n\n\
Erroneous example:\n\n```scl\npolicy p for spinlock {\n    on contended(l: lock) {\n        pause();\n    }\n}\nfn pause() {\n    sleep(10us);\n}\n```\n\n\
Fixed example:\n\n```scl\npolicy p for spinlock {\n    on contended(l: lock) {\n        pause();\n    }\n}\nfn pause() {\n    back_off(10us);\n}\n```\n",
}];

/// Reports every may-sleep built-in reachable from an atomic hook.
pub(crate) fn check(cx: &mut Checker) {
    let Some(policy) = &cx.program.policy else { return };
    let hooks: Vec<(usize, &'static str, Loc, bool)> =
        policy.hooks.iter().enumerate().map(|(i, h)| (i, h.def.name, h.loc, h.atomic)).collect();
    let kinds: Vec<&str> = policy.kinds.iter().map(|k| k.name()).collect();
    let context = if cx.options.target == Some(Target::Stock) {
        // On stock, every hook is a tracepoint program, atomic whatever the lock kind.
        "on the `stock` target (a lock tracepoint)".to_string()
    } else {
        format!("for {}", kinds.join(", "))
    };
    // On syncord the lock-hook module runs every hook in a non-sleepable program: a
    // built-in whose helper needs a sleepable one is refused there whatever the hook.
    let module = cx.options.target == Some(Target::Syncord);
    let mut reports = Vec::new();
    for (index, name, hook_loc, atomic) in hooks {
        if !atomic && !module {
            continue;
        }
        // Breadth-first from the hook, remembering how each function was first reached.
        let mut parent: HashMap<FuncId, (Option<FuncId>, Loc)> = HashMap::new();
        let mut queue: VecDeque<BodyId> = VecDeque::from([BodyId::Hook(index)]);
        while let Some(body) = queue.pop_front() {
            let Some(facts) = cx.bodies.get(&body) else { continue };
            for (sleep_loc, builtin) in &facts.sleeps {
                if !atomic && !scl_catalogue::builtin(builtin).is_some_and(|b| b.sleepable_program) {
                    continue;
                }
                let mut chain = Vec::new();
                let mut at = match body {
                    BodyId::Func(f) => Some(f),
                    BodyId::Hook(_) => None,
                };
                while let Some(f) = at {
                    let (up, call) = parent[&f];
                    chain.push((call, cx.program.funcs[f].name.clone()));
                    at = up;
                }
                chain.reverse();
                reports.push((name, hook_loc, *sleep_loc, *builtin, chain, atomic));
            }
            for (callee, call, _) in &facts.calls {
                if !parent.contains_key(callee) {
                    let from = match body {
                        BodyId::Func(f) => Some(f),
                        BodyId::Hook(_) => None,
                    };
                    parent.insert(*callee, (from, *call));
                    queue.push_back(BodyId::Func(*callee));
                }
            }
        }
    }
    for (hook, hook_loc, sleep_loc, builtin, chain, atomic) in reports {
        let mut d = if atomic {
            Diagnostic::error(E0310, sleep_loc.file, sleep_loc.span, format!("`{builtin}` may sleep, but hook `{hook}` runs in atomic context"))
                .with_label(format!("`{builtin}` may sleep"))
                .with_secondary(hook_loc.file, hook_loc.span, format!("`{hook}` runs in atomic context {context}"))
        } else {
            Diagnostic::error(E0310, sleep_loc.file, sleep_loc.span, format!("`{builtin}` needs a sleepable program, but on the `syncord` target hook `{hook}` runs in a non-sleepable one"))
                .with_label(format!("`{builtin}` needs a sleepable BPF program"))
                .with_secondary(hook_loc.file, hook_loc.span, format!("the lock-hook module runs `{hook}` inside the lock's code, in a non-sleepable program"))
        };
        for (call, callee) in &chain {
            d = d.with_secondary(call.file, call.span, format!("calls `{callee}`"));
        }
        d = if atomic {
            d.with_note("a task that sleeps with preemption disabled can deadlock its CPU")
                .with_help("wait with `back_off(ns)`, a bounded busy wait allowed in atomic context")
        } else {
            d.with_note("the kernel runs its helper only in sleepable programs; lock hooks run with preemption disabled (docs/abi.md §4)")
                .with_help(format!("keep `{builtin}` to the `sim` target, or pass the value in through a map that user space writes"))
        };
        cx.report(d);
    }
}
