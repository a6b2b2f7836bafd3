//! Termination: `E0301 recursion`, `E0302 unbounded-loop`, `E0303 loop-too-long`.
//!
//! BPF programs must terminate, and the verifier proves it by walking every path; SCL
//! makes that proof trivial. Functions are inlined into hooks, so recursion (direct or
//! through other functions) is refused with the cycle shown. Loops run over ranges whose
//! bounds the compiler computes, with at most `MAX_LOOP_ITERATIONS` iterations.

use crate::codes::{E0301, E0302, E0303};
use crate::hir::{Expr, ExprKind, FuncId, Loc};
use crate::{BodyId, Checker};
use scl_catalogue::limits::MAX_LOOP_ITERATIONS;
use scl_diagnostics::{CodeDoc, Diagnostic, FileId};
use scl_syntax::ast;
use std::collections::HashMap;

/// Explain pages.
pub static DOCS: &[CodeDoc] = &[
    CodeDoc { code: E0301, summary: "a function calls itself, directly or through others", explanation: "Functions are inlined into the hooks that call them, and a hook must provably terminate, so SCL has no recursion. The error shows the cycle. Rewrite the recursion as a bounded `for` loop.\n\nErroneous example:\n\n```scl\nfn depth(x: u64) -> u64 {\n    if x == 0 {\n        return 0;\n    }\n    return 1 + depth(x / 2);\n}\n```\n\nFixed example:\n\n```scl\nfn depth(x: u64) -> u64 {\n    let d: u64 = 0;\n    let v = x;\n    for i in 0..64 {\n        if v == 0 {\n            break;\n        }\n        v = v / 2;\n        d += 1;\n    }\n    return d;\n}\n```\n" },
    CodeDoc { code: E0302, summary: "a loop whose bounds are not compile-time constants", explanation: "`for i in A..B` needs `A` and `B` known at compile time, so the compiler (and the kernel verifier) can bound the work a hook does. To stop early on a run-time condition, loop to a constant bound and `break`.\n\nErroneous example:\n\n```scl\nfn f(n: u32) -> u32 {\n    let s: u32 = 0;\n    for i in 0..n {\n        s += i;\n    }\n    return s;\n}\n```\n\nFixed example:\n\n```scl\nfn f(n: u32) -> u32 {\n    let s: u32 = 0;\n    for i in 0..64 {\n        if i >= n {\n            break;\n        }\n        s += i;\n    }\n    return s;\n}\n```\n" },
    CodeDoc { code: E0303, summary: "a loop with more iterations than allowed", explanation: "A loop may run at most 1024 times: lock hooks run on the lock's critical path, and a long loop there stalls every waiter. Bound the work, or keep a summary in state so the hook does not need to scan.\n\nErroneous example:\n\n```scl\nfn f() -> u64 {\n    let s: u64 = 0;\n    for i in 0..100000 {\n        s += i;\n    }\n    return s;\n}\n```\n\nFixed example:\n\n```scl\nfn f() -> u64 {\n    let s: u64 = 0;\n    for i in 0..1000 {\n        s += i;\n    }\n    return s;\n}\n```\n" },
];

/// Checks a `for` loop's bounds; returns them if they are constants within the limit.
pub(crate) fn check_loop(cx: &mut Checker, file: FileId, f: &ast::ForStmt, start: &Expr, end: &Expr) -> Option<(i128, i128)> {
    let mut bounds = [0i128; 2];
    let mut ok = true;
    for (i, (e, ast_e)) in [(start, &f.start), (end, &f.end)].into_iter().enumerate() {
        match e.kind {
            ExprKind::Const(v) => bounds[i] = v,
            ExprKind::Error => ok = false,
            _ => {
                ok = false;
                cx.report(
                    Diagnostic::error(E0302, file, ast_e.span, "loop bound is not a compile-time constant")
                        .with_label("known only at run time")
                        .with_note("hooks must provably terminate: loops run over ranges the compiler can count")
                        .with_help("loop to a constant bound and `break` when the run-time condition is met"),
                );
            }
        }
    }
    if !ok {
        return None;
    }
    let [s, e] = bounds;
    let n = (e - s).max(0);
    if n > i128::from(MAX_LOOP_ITERATIONS) {
        cx.report(
            Diagnostic::error(E0303, file, f.start.span.to(f.end.span), format!("this loop runs {n} times"))
                .with_label(format!("more than {MAX_LOOP_ITERATIONS} iterations"))
                .with_note("lock hooks run on the lock's critical path; long loops stall every waiter")
                .with_help(format!("bound the loop to at most {MAX_LOOP_ITERATIONS} iterations")),
        );
        return None;
    }
    Some((s, e))
}

/// Finds call cycles among functions; reports each cycle once. Returns true if any.
pub(crate) fn check_recursion(cx: &mut Checker) -> bool {
    let mut edges: HashMap<FuncId, Vec<(FuncId, Loc)>> = HashMap::new();
    for (id, facts) in &cx.bodies {
        if let BodyId::Func(f) = id {
            for (callee, loc, _) in &facts.calls {
                edges.entry(*f).or_default().push((*callee, *loc));
            }
        }
    }
    for v in edges.values_mut() {
        v.sort_by_key(|(f, l)| (f.as_u32(), l.span.start));
    }
    let mut funcs: Vec<FuncId> = edges.keys().copied().collect();
    funcs.sort();
    // 0 unvisited, 1 on the stack, 2 done.
    let mut state: HashMap<FuncId, u8> = HashMap::new();
    let mut found = false;
    for f in funcs {
        if state.get(&f).copied().unwrap_or(0) != 0 {
            continue;
        }
        // Iterative DFS: (function, next edge index), with the path of call sites.
        let mut stack: Vec<(FuncId, usize)> = vec![(f, 0)];
        let mut path: Vec<Loc> = Vec::new();
        state.insert(f, 1);
        while let Some((node, i)) = stack.pop() {
            let out = edges.get(&node).map(Vec::as_slice).unwrap_or(&[]);
            if i < out.len() {
                stack.push((node, i + 1));
                let (next, call) = out[i];
                match state.get(&next).copied().unwrap_or(0) {
                    0 => {
                        state.insert(next, 1);
                        path.push(call);
                        stack.push((next, 0));
                    }
                    1 => {
                        found = true;
                        let start = stack.iter().position(|(n, _)| *n == next).unwrap_or(0);
                        let mut cycle: Vec<Loc> = path[start..].to_vec();
                        cycle.push(call);
                        report_cycle(cx, next, &stack[start..].iter().map(|(n, _)| *n).collect::<Vec<_>>(), &cycle);
                    }
                    _ => {}
                }
            } else {
                state.insert(node, 2);
                path.pop();
            }
        }
    }
    found
}

fn report_cycle(cx: &mut Checker, head: FuncId, members: &[FuncId], calls: &[Loc]) {
    let name = cx.program.funcs[head].name.clone();
    let last = *calls.last().expect("a cycle has a call");
    let mut d = if members.len() <= 1 {
        Diagnostic::error(E0301, last.file, last.span, format!("`{name}` calls itself"))
            .with_label("recursive call")
    } else {
        let chain: Vec<String> = members.iter().chain(std::iter::once(&head)).map(|f| format!("`{}`", cx.program.funcs[*f].name)).collect();
        Diagnostic::error(E0301, last.file, last.span, format!("recursion through {}", chain.join(" → ")))
            .with_label(format!("this call closes the cycle back to `{name}`"))
    };
    for (i, call) in calls[..calls.len() - 1].iter().enumerate() {
        let callee = members.get(i + 1).map_or(name.clone(), |f| cx.program.funcs[*f].name.clone());
        d = d.with_secondary(call.file, call.span, format!("calls `{callee}`"));
    }
    d = d
        .with_note("functions are inlined into hooks, and hooks must provably terminate: SCL has no recursion")
        .with_help("rewrite the recursion as a bounded `for` loop");
    cx.report(d);
}
