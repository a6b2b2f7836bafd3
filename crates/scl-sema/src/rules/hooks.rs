//! Hooks: `E0330 unknown-hook`, `E0331 hook-signature`, `E0332 duplicate-hook`,
//! `E0333 hook-unavailable-for-kind`, `E0334 hook-unavailable-for-target`,
//! `E0335 missing-companion-hook`, `E0336 nothing-to-compile`, and the warning
//! `W0403 hook-never-fires`.
//!
//! Every handler must name a hook of the catalogue, with its parameters and result; each
//! hook is handled once; it must exist for every lock kind the policy names and be called
//! on the chosen target. A decision hook the target never calls is an error (the policy
//! would not do what it says); an observation hook it never calls is a warning. Building
//! or running a file needs at least one hook the target calls (checked for the driver,
//! since `sclc check` also checks modules with no policy, such as the stdlib's).

use crate::codes::{E0330, E0331, E0332, E0333, E0334, E0335, E0336, W0403, W0404};
use crate::hir::{HookImpl, Program};
use crate::Checker;
use scl_catalogue::{self as cat, HookDef, LockKind, Target};
use scl_diagnostics::{CodeDoc, Diagnostic, FileId, Span};
use scl_syntax::ast;
use std::collections::HashMap;

/// Explain pages.
pub static DOCS: &[CodeDoc] = &[
    CodeDoc { code: E0330, summary: "a hook that is not in the catalogue", explanation: "Handlers are written `on HOOK(...)` for one of the catalogue's hooks: `to_acquire`, `contended`, `acquired`, `to_release`, `released`, `enable_fastpath`, `should_reorder`, `skip_reorder`, `bypass_acquire`, `bypass_release`, and `contention_end` on the stock target. `sclc explain` and `docs/hooks.md` describe each.\n\nErroneous example:\n\n```scl\npolicy p for spinlock {\n    on aquired(l: lock) {}\n}\n```\n\nFixed example:\n\n```scl\npolicy p for spinlock {\n    on acquired(l: lock) {}\n}\n```\n" },
    CodeDoc { code: E0331, summary: "a handler's parameters or result do not match its hook", explanation: "A handler takes the hook's parameters in order, with their types (the names are yours), and returns `bool` exactly when the hook is a decision hook.\n\nErroneous example:\n\n```scl\npolicy p for spinlock {\n    on should_reorder(l: lock, c: waiter) -> bool {\n        return false;\n    }\n}\n```\n\nFixed example:\n\n```scl\npolicy p for spinlock {\n    on should_reorder(l: lock, s: waiter, c: waiter) -> bool {\n        return false;\n    }\n}\n```\n" },
    CodeDoc { code: E0332, summary: "the same hook handled twice", explanation: "A policy gives at most one handler per hook; the kernel calls one program per hook. Merge the two bodies.\n\nErroneous example:\n\n```scl\nglobal a: u64;\nglobal b: u64;\npolicy p for spinlock {\n    on acquired(l: lock) { a += 1; }\n    on acquired(l: lock) { b += 1; }\n}\n```\n\nFixed example:\n\n```scl\nglobal a: u64;\nglobal b: u64;\npolicy p for spinlock {\n    on acquired(l: lock) {\n        a += 1;\n        b += 1;\n    }\n}\n```\n" },
    CodeDoc { code: E0333, summary: "a hook that does not exist for one of the policy's lock kinds", explanation: "Some hooks exist only for some locks: `bypass_acquire` and `bypass_release` are the reader bypass of reader-writer semaphores. A policy that handles them must apply to `rwsem` only.\n\nErroneous example:\n\n```scl\npolicy p for spinlock, rwsem {\n    on bypass_acquire(l: lock) -> bool { return false; }\n    on bypass_release(l: lock) -> bool { return false; }\n}\n```\n\nFixed example:\n\n```scl\npolicy p for rwsem {\n    on bypass_acquire(l: lock) -> bool { return false; }\n    on bypass_release(l: lock) -> bool { return false; }\n}\n```\n" },
    CodeDoc { code: E0334, summary: "a decision hook the target does not call", explanation: "The stock kernel only lets policies observe locks, through the `contended` and `contention_end` tracepoints. Hooks that change lock behaviour (the `bool` hooks) need a kernel with SynCord-style lock-policy hooks (`--target syncord`) or the simulator (`--target sim`). Without `--target`, every hook of the policy must share at least one target.\n\nErroneous example:\n\n```scl\n// sclc: --target stock\npolicy p for spinlock {\n    on should_reorder(l: lock, s: waiter, c: waiter) -> bool {\n        return c.numa_node == s.numa_node;\n    }\n}\n```\n\nFixed example:\n\n```scl\n// sclc: --target sim\npolicy p for spinlock {\n    on should_reorder(l: lock, s: waiter, c: waiter) -> bool {\n        return c.numa_node == s.numa_node;\n    }\n}\n```\n" },
    CodeDoc { code: E0335, summary: "a hook given without the hook it requires", explanation: "`bypass_acquire` lets a reader take an rwsem without its shared counter; `bypass_release` must undo exactly those acquisitions, so each requires the other.\n\nErroneous example:\n\n```scl\npolicy p for rwsem {\n    on bypass_acquire(l: lock) -> bool { return false; }\n}\n```\n\nFixed example:\n\n```scl\npolicy p for rwsem {\n    on bypass_acquire(l: lock) -> bool { return false; }\n    on bypass_release(l: lock) -> bool { return false; }\n}\n```\n" },
    CodeDoc { code: E0336, summary: "nothing to compile: no policy, or no hook the target calls", explanation: "`sclc build`, `run`, `load` and `sim` compile a policy's hooks into BPF programs. A file without a `policy` (a module of functions and constants, which `sclc check` accepts), or whose policy handles no hook the target calls, would give an object with no program: nothing would ever run. The command stops with this error and writes nothing.\n\nErroneous example:\n\n```scl\n// sclc: build --target stock\nglobal n: u64;\nfn count() { n += 1; }\n```\n\nFixed example:\n\n```scl\n// sclc: build --target stock\nglobal n: u64;\nfn count() { n += 1; }\npolicy p for spinlock {\n    on contended(l: lock) { count(); }\n}\n```\n" },
    CodeDoc { code: W0403, summary: "a hook the chosen target never calls", explanation: "With `--target stock`, only `contended` and `contention_end` fire: observation hooks such as `acquired` compile but never run, so the policy sees less than it seems to. Decision hooks in that situation are errors (E0334).\n\nErroneous example:\n\n```scl\n// sclc: --target stock\nglobal n: u64;\npolicy p for spinlock {\n    on acquired(l: lock) { n += 1; }\n}\n```\n\nFixed example:\n\n```scl\n// sclc: --target stock\nglobal n: u64;\npolicy p for spinlock {\n    on contended(l: lock) { n += 1; }\n}\n```\n" },
    CodeDoc { code: W0404, summary: "a lock kind listed twice", explanation: "A policy's header lists each lock kind once; a repeat changes nothing and is usually a typo for another kind.\n\nErroneous example:\n\n```scl\nglobal n: u64;\npolicy p for spinlock, spinlock {\n    on contended(l: lock) { n += 1; }\n}\n```\n\nFixed example:\n\n```scl\nglobal n: u64;\npolicy p for spinlock, mutex {\n    on contended(l: lock) { n += 1; }\n}\n```\n" },
];

fn targets_text(ts: &[Target], joiner: &str) -> String {
    let names: Vec<String> = ts.iter().map(|t| format!("`{t}`")).collect();
    match names.as_slice() {
        [a] => a.clone(),
        [rest @ .., last] => format!("{} {joiner} {last}", rest.join(", ")),
        [] => String::new(),
    }
}

/// What [`check_hook_header`] found.
pub(crate) struct HookHeader {
    /// The catalogue entry, if the handler names a hook this policy may handle.
    pub def: Option<&'static HookDef>,
    /// True if the parameters match the hook's (so their types are the catalogue's).
    pub params_ok: bool,
}

/// Checks a handler's name, signature, kinds and target.
pub(crate) fn check_hook_header(
    cx: &mut Checker,
    file: FileId,
    h: &ast::Hook,
    kinds: &[LockKind],
    seen: &mut HashMap<&'static str, Span>,
) -> HookHeader {
    let none = HookHeader { def: None, params_ok: false };
    let Some(def) = cat::hook(&h.name.name) else {
        let mut d = Diagnostic::error(E0330, file, h.name.span, format!("unknown hook `{}`", h.name.name)).with_label("not a hook");
        d = match scl_syntax::validate::did_you_mean(&h.name.name, cat::HOOKS.iter().map(|h| h.name)) {
            Some(s) => d.with_help(format!("did you mean `{s}`?")),
            None => d.with_note(format!(
                "the hooks are: {}",
                cat::HOOKS.iter().map(|h| format!("`{}`", h.name)).collect::<Vec<_>>().join(", ")
            )),
        };
        cx.report(d);
        return none;
    };
    if let Some(prev) = seen.get(def.name) {
        cx.report(
            Diagnostic::error(E0332, file, h.name.span, format!("hook `{}` is handled twice", def.name))
                .with_label("second handler")
                .with_secondary(file, *prev, "first handler")
                .with_note("the kernel runs one program per hook")
                .with_help("merge the two handlers"),
        );
        return none;
    }
    seen.insert(def.name, h.name.span);
    // Parameters: count, then each type.
    let written: Vec<String> = h
        .params
        .iter()
        .map(|p| match &p.ty.kind {
            ast::TypeKind::Named(path) if path.is_simple() => path.name.name.clone(),
            _ => String::from("?"),
        })
        .collect();
    let signature_ok = written.len() == def.params.len()
        && written.iter().zip(def.params).all(|(w, p)| w == p.ty.name())
        && h.params.iter().all(|p| !p.inout);
    if !signature_ok {
        let span = match (h.params.first(), h.params.last()) {
            (Some(a), Some(b)) => a.span.to(b.span),
            _ => h.name.span,
        };
        cx.report(
            Diagnostic::error(E0331, file, span, format!("`{}` takes ({})", def.name, def.params.iter().map(|p| p.ty.name()).collect::<Vec<_>>().join(", ")))
                .with_label(format!("found ({})", written.join(", ")))
                .with_note(format!("the hook is `{}`", def.signature()))
                .with_help(format!("write `on {}`; parameter names are yours, types and order are the hook's", def.signature())),
        );
    }
    let ret_written = h.ret.as_ref().map(|t| match &t.kind {
        ast::TypeKind::Named(p) if p.is_simple() => p.name.name.clone(),
        _ => "?".to_string(),
    });
    match (def.returns_bool, ret_written.as_deref()) {
        (true, Some("bool")) | (false, None) => {}
        (true, _) => cx.report(
            Diagnostic::error(E0331, file, h.ret.as_ref().map_or(h.name.span, |t| t.span), format!("`{}` returns a `bool` decision", def.name))
                .with_label(if h.ret.is_some() { "wrong result type" } else { "no result type" })
                .with_help(format!("write `on {}`", def.signature())),
        ),
        (false, Some(_)) => cx.report(
            Diagnostic::error(E0331, file, h.ret.as_ref().map_or(h.name.span, |t| t.span), format!("`{}` returns nothing", def.name))
                .with_label("remove the result type")
                .with_note("observation hooks cannot influence the lock; decision hooks return `bool`"),
        ),
    }
    for k in kinds {
        if !def.kinds.includes(*k) {
            cx.report(
                Diagnostic::error(E0333, file, h.name.span, format!("hook `{}` does not exist for `{}` locks", def.name, k.name()))
                    .with_label(format!("only for {}", match def.kinds {
                        cat::HookKinds::All => "every lock",
                        cat::HookKinds::RwsemReaders => "rwsem readers",
                    }))
                    .with_help("apply the policy to `rwsem` only, or move this hook to an rwsem policy"),
            );
        }
    }
    if let Some(t) = cx.options.target {
        if !def.on_target(t) {
            let others = targets_text(def.targets, "and");
            let either = targets_text(def.targets, "or");
            if def.returns_bool {
                cx.report(
                    Diagnostic::error(E0334, file, h.name.span, format!("hook `{}` is not available on the `{t}` target", def.name))
                        .with_label(format!("`{t}` never calls it"))
                        .with_note(if t == Target::Stock {
                            "the stock kernel only lets policies observe locks, through its contention tracepoints".to_string()
                        } else {
                            format!("`{}` runs only on {others}", def.name)
                        })
                        .with_help(format!("build for {either}: `--target {}`", def.targets[0])),
                );
            } else {
                cx.report(
                    Diagnostic::warning(W0403, file, h.name.span, format!("hook `{}` never fires on the `{t}` target", def.name))
                        .with_label("compiled, but never called")
                        .with_note(format!("`{}` runs on {others}", def.name)),
                );
            }
        }
    }
    HookHeader { def: Some(def), params_ok: signature_ok }
}

/// Checks the hooks of the policy together: required companions, and (without a target)
/// that some target runs them all.
pub(crate) fn check_companions(cx: &mut Checker, file: FileId, policy: &ast::Policy, hooks: &[HookImpl]) {
    for h in hooks {
        if let Some(r) = h.def.requires {
            if !hooks.iter().any(|o| o.def.name == r) {
                cx.report(
                    Diagnostic::error(E0335, file, h.loc.span, format!("`{}` needs a `{r}` handler too", h.def.name))
                        .with_label(format!("no `{r}` in this policy"))
                        .with_note("a reader that bypassed the counter must be released the same way")
                        .with_help(format!("add `on {}`", cat::hook(r).map_or(r.to_string(), |d| d.signature()))),
                );
            }
        }
    }
    if cx.options.target.is_none() && !hooks.is_empty() {
        let common: Vec<Target> = Target::ALL.into_iter().filter(|t| hooks.iter().all(|h| h.def.on_target(*t))).collect();
        if common.is_empty() {
            let stock_only = hooks.iter().find(|h| h.def.targets == [Target::Stock]);
            let policy_only = hooks.iter().find(|h| !h.def.on_target(Target::Stock));
            if let (Some(a), Some(b)) = (stock_only, policy_only) {
                cx.report(
                    Diagnostic::error(E0334, file, b.loc.span, format!("no target runs both `{}` and `{}`", a.def.name, b.def.name))
                        .with_label(format!("`{}` runs on {}", b.def.name, targets_text(b.def.targets, "and")))
                        .with_secondary(file, a.loc.span, format!("`{}` runs only on `stock`", a.def.name))
                        .with_help(format!("split policy `{}` in two: a stock profiler and a syncord/sim policy", policy.name.name)),
                );
            }
        }
    }
}

/// For the commands that compile to an object: `None` if the checked `program` has a hook
/// that `target` calls, else the E0336 error (an object with no program runs nothing).
pub fn check_something_to_compile(program: &Program, file: FileId, target: Target) -> Option<Diagnostic> {
    let Some(policy) = &program.policy else {
        return Some(
            Diagnostic::error(E0336, file, Span::point(0), "no policy to compile")
                .with_label("this file declares no `policy`")
                .with_note("a file without a policy is a module: `sclc check` checks it, but it gives no BPF program to build or run")
                .with_help("add `policy NAME for spinlock { on contended(l: lock) { ... } }`, or build the file that imports this one"),
        );
    };
    if policy.hooks.iter().any(|h| h.def.on_target(target)) {
        return None;
    }
    let runs: Vec<&str> = cat::HOOKS.iter().filter(|h| h.on_target(target)).map(|h| h.name).collect();
    Some(
        Diagnostic::error(E0336, policy.loc.file, policy.loc.span, format!("policy `{}` has no hook that runs on the `{target}` target", policy.name))
            .with_label("nothing to compile")
            .with_note(format!("on `{target}` only these hooks are called: {}", runs.iter().map(|h| format!("`{h}`")).collect::<Vec<_>>().join(", ")))
            .with_help("handle one of them, or build for another target (`--target`)"),
    )
}
