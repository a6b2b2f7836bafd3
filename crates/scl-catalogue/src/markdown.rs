//! `docs/hooks.md`, generated from the tables so that the docs cannot drift from what the
//! checker and code generator use. A test compares the file with this output.

use crate::*;
use std::fmt::Write;

fn targets(ts: &[Target]) -> String {
    ts.iter().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", ")
}

/// The whole reference page, in Markdown.
pub fn markdown() -> String {
    let mut s = String::new();
    let w = &mut s;
    let _ = writeln!(w, "# Hooks and built-ins\n");
    let _ = writeln!(
        w,
        "Generated from `crates/scl-catalogue` (the one table the checker, the code generator, \
         `sclc explain` and the language server read). Do not edit by hand: run \
         `SCL_BLESS=1 cargo test -p scl-catalogue` after changing the table.\n"
    );
    let _ = writeln!(w, "## Hooks\n");
    let _ = writeln!(w, "| hook | returns | lock kinds | targets | context | writes state | budget (insns, atomic) |");
    let _ = writeln!(w, "|---|---|---|---|---|---|---|");
    for h in HOOKS {
        let kinds = match h.kinds {
            HookKinds::All => "all",
            HookKinds::RwsemReaders => "rwsem (readers)",
        };
        let context = match h.context {
            Context::Atomic => "atomic",
            Context::AtomicForSpinlock => "atomic for spinlock; may sleep for mutex, rwsem (not on stock)",
        };
        let _ = writeln!(
            w,
            "| `{}` | {} | {} | {} | {} | {} | {} |",
            h.signature(),
            if h.returns_bool { "bool" } else { "–" },
            kinds,
            targets(h.targets),
            context,
            if h.may_write_state { "yes" } else { "no" },
            h.budget
        );
    }
    let _ = writeln!(w);
    for h in HOOKS {
        let _ = writeln!(w, "### `{}`\n\n{}\n", h.name, h.doc);
        if let Some(tp) = h.tracepoint {
            let _ = writeln!(w, "On `stock`: the `lock:{tp}` tracepoint, attached as `tp_btf/{tp}`.\n");
        }
        if let Some(r) = h.requires {
            let _ = writeln!(w, "Requires `{r}` in the same policy.\n");
        }
    }
    let _ = writeln!(w, "## The `lock` and `waiter` views\n");
    let _ = writeln!(w, "Read-only. Offsets are in the 128-byte context of the syncord and sim targets (`docs/abi.md`).\n");
    let _ = writeln!(w, "| field | type | offset | meaning |\n|---|---|---|---|");
    for f in LOCK_FIELDS {
        let _ = writeln!(w, "| `lock.{}` | `{}` | {} | {} |", f.name, f.ty.name(), f.offset, f.doc);
    }
    for f in WAITER_FIELDS {
        let _ = writeln!(w, "| `waiter.{}` | `{}` | +{} | {} |", f.name, f.ty.name(), f.offset, f.doc);
    }
    let _ = writeln!(
        w,
        "\nA waiter also carries the policy's `per_waiter` fields, at most {PER_WAITER_BYTES} bytes in all, \
         in its data word at +{WAITER_DATA_OFFSET}.\n"
    );
    let _ = writeln!(w, "## Built-in functions\n");
    let _ = writeln!(w, "| function | may sleep | atomic context | writes state | cost (insns) | does |\n|---|---|---|---|---|---|");
    for b in BUILTINS {
        let _ = writeln!(
            w,
            "| `{}` | {} | {} | {} | {} | {} |",
            b.signature(),
            if b.may_sleep { "yes" } else { "no" },
            if b.atomic_safe() { "allowed" } else { "**not allowed**" },
            match (b.writes_state, b.params.iter().any(|(_, t)| *t == BuiltinTy::IntPlace)) {
                (true, true) => "its place",
                (true, false) => "its own map",
                _ => "no",
            },
            b.cost,
            b.doc
        );
    }
    let _ = writeln!(w, "\n## Maps\n\n| map type | BPF map type | |\n|---|---|---|");
    for m in MAP_KINDS {
        let args = if m.type_args == 2 { "<K, V>" } else { "<V>" };
        let _ = writeln!(w, "| `{}{}` | {} | {} |", m.name, args, m.bpf_type, m.doc);
    }
    let _ = writeln!(w, "\n| method | on | writes state | cost (insns) | does |\n|---|---|---|---|---|");
    for m in METHODS {
        let params: Vec<&str> = m.params.iter().map(|(n, _)| *n).collect();
        let on: Vec<&str> =
            m.kinds.iter().filter_map(|k| MAP_KINDS.iter().find(|d| d.kind == *k)).map(|d| d.name).collect();
        let _ = writeln!(
            w,
            "| `m.{}({})` | {} | {} | {} | {} |",
            m.name,
            params.join(", "),
            on.join(", "),
            if m.writes_state { "yes" } else { "no" },
            m.cost,
            m.doc
        );
    }
    let _ = writeln!(
        w,
        "\n## Limits\n\n- `for` loops: at most {} iterations, bounds known at compile time.\n\
         - Instructions per call: each hook's budget above in atomic context; {} where the hook may sleep for every lock kind of its policy.\n\
         - Stack: at most {} bytes per hook.\n\
         - `back_off`: clamped to `config {}` (default {} ns), never above {} ns.\n\
         - `per_lock` and `per_thread` state without `[N]`: {} entries.",
        limits::MAX_LOOP_ITERATIONS,
        limits::SLEEPABLE_BUDGET,
        limits::MAX_STACK_BYTES,
        BACK_OFF_CONFIG,
        BACK_OFF_DEFAULT_MAX_NS,
        BACK_OFF_HARD_LIMIT_NS,
        limits::DEFAULT_CAPACITY
    );
    s
}
