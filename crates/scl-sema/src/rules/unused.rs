//! Unused declarations: `W0401 unused-state`, `W0402 unused-config`.
//!
//! State that no hook or function touches still costs a map in the kernel; a config value
//! nothing reads is a knob that does nothing. Both are usually a typo or a leftover.
//! Only the policy file's own declarations are checked, not the stdlib's.

use crate::codes::{W0401, W0402};
use crate::Checker;
use scl_diagnostics::{CodeDoc, Diagnostic};
use scl_syntax::ast::StateKind;

/// Explain pages.
pub static DOCS: &[CodeDoc] = &[
    CodeDoc { code: W0401, summary: "state that nothing uses", explanation: "Every piece of state becomes a BPF map (or part of one) when the policy loads. State that no hook or function reads or writes is usually a leftover or a typo.\n\nErroneous example:\n\n```scl\nglobal hits: u64;\nglobal misses: u64;\npolicy p for spinlock {\n    on contended(l: lock) { hits += 1; }\n}\n```\n\nFixed example:\n\n```scl\nglobal hits: u64;\npolicy p for spinlock {\n    on contended(l: lock) { hits += 1; }\n}\n```\n" },
    CodeDoc { code: W0402, summary: "a config value that nothing reads", explanation: "A config value can be set at load time with `--set`; one that nothing reads changes nothing.\n\nErroneous example:\n\n```scl\nconfig limit: u64 = 10;\nglobal n: u64;\npolicy p for spinlock {\n    on contended(l: lock) { n += 1; }\n}\n```\n\nFixed example:\n\n```scl\nconfig limit: u64 = 10;\nglobal n: u64;\npolicy p for spinlock {\n    on contended(l: lock) {\n        if n < limit { n += 1; }\n    }\n}\n```\n" },
];

/// Warns about the main file's state that nothing uses (only in files with a policy).
pub(crate) fn check(cx: &mut Checker) {
    if cx.program.policy.is_none() {
        return;
    }
    let main = cx.modules[0].file;
    let mut reports = Vec::new();
    for st in cx.program.states.values() {
        if st.used || st.loc.file != main || st.name == scl_catalogue::BACK_OFF_CONFIG {
            continue;
        }
        let d = if st.kind == StateKind::Config {
            Diagnostic::warning(W0402, st.loc.file, st.loc.span, format!("config `{}` is never read", st.name))
                .with_label("unused")
                .with_help("use it, or remove it")
        } else {
            Diagnostic::warning(W0401, st.loc.file, st.loc.span, format!("{} state `{}` is never used", st.kind.keyword(), st.name))
                .with_label("unused")
                .with_help("use it, or remove it: each piece of state costs a map in the kernel")
        };
        reports.push(d);
    }
    for d in reports {
        cx.report(d);
    }
}
