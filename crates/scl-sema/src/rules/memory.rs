//! Memory: `E0340 unhandled-optional`, `E0341 per-waiter-too-large`, `E0342 stack-too-large`,
//! `E0343 state-too-large`.
//!
//! BPF programs see no raw pointers in SCL; what remains is what the verifier insists on.
//! A map lookup may miss, and the program must check before using the value: SCL's
//! `get` gives an optional that only `if let` (or `get_or`) can open (checked where the
//! call is typed). All `per_waiter` state shares the waiter's 8-byte data word (checked
//! where the state is declared). And a hook's frame, its locals with those of every
//! function inlined into it and the scratch space for map keys and values, must fit the
//! 512-byte BPF stack (checked here, from the cost pass's estimate). State values must be
//! sizes the kernel creates maps for (checked where the state is declared).

use crate::codes::{E0340, E0341, E0342, E0343};
use crate::rules::cost::HookCost;
use crate::Checker;
use scl_catalogue::limits::MAX_STACK_BYTES;
use scl_diagnostics::{CodeDoc, Diagnostic};

/// Explain pages.
pub static DOCS: &[CodeDoc] = &[
    CodeDoc { code: E0340, summary: "a map lookup used without handling a miss", explanation: "`m.get(k)` finds nothing when the key is absent. The kernel verifier rejects a program that uses the result without checking, so SCL makes the check part of the syntax: open the result with `if let`, or give a default with `get_or`.\n\nA lookup is refused wherever it is used as a value or a place without `if let`: as an operand, a field access (`m.get(k).count`), an index or an indexed array (`m.get(k)[i]`, `a[m.get(k)]`), a cast, an argument (also `inout` and `atomic_add`), an assignment target (`m.get(k).count = 1`), a `let` initialiser, a `return` value or a statement of its own.\n\nErroneous example:\n\n```scl\nmap prio: hash<u32, u8>[1024];\nfn f(t: u32) -> bool {\n    return prio.get(t) > 0;\n}\n```\n\nFixed example:\n\n```scl\nmap prio: hash<u32, u8>[1024];\nfn f(t: u32) -> bool {\n    if let p = prio.get(t) {\n        return p > 0;\n    }\n    return false;\n}\n```\n" },
    CodeDoc { code: E0341, summary: "more per_waiter state than the waiter's data word holds", explanation: "Each waiter in a lock's queue carries one 8-byte data word for the policy; all `per_waiter` declarations share it, each aligned to its size. Use narrower types, or keep larger data in `per_thread` state keyed by the waiter's thread.\n\nErroneous example:\n\n```scl\nper_waiter a: u64;\nper_waiter b: u32;\n```\n\nFixed example:\n\n```scl\nper_waiter a: u32;\nper_waiter b: u32;\n```\n" },
    CodeDoc { code: E0342, summary: "a hook's stack frame exceeds the BPF stack", explanation: "A BPF program has 512 bytes of stack. A hook's frame holds its locals, the locals of every function inlined into it, and scratch space for map keys and values and struct literals. Large arrays and structs belong in state (`per_cpu` works as a scratch area), not in locals.\n\nErroneous example:\n\n```scl\nfn f() -> u64 {\n    let big: [u64; 80];\n    return big[0];\n}\npolicy p for spinlock {\n    on contended(l: lock) {\n        let x = f();\n    }\n}\n```\n\nFixed example:\n\n```scl\nper_cpu scratch: [u64; 80];\nfn f() -> u64 {\n    return scratch[0];\n}\npolicy p for spinlock {\n    on contended(l: lock) {\n        let x = f();\n    }\n}\n```\n" },
    CodeDoc { code: E0343, summary: "state or a map value larger than the kernel creates", explanation: "Every piece of state is a BPF map, and the kernel refuses to create a map whose value is too large: per-CPU values (`per_cpu` state and `percpu_array` maps) may be at most 32 KiB (the per-CPU allocator's unit), every other value at most about 4 MiB (the largest block the kernel allocates at once). The checker refuses such state before the kernel does, and names the limit. Split the data over several pieces of state, or keep it in a map with more entries and smaller values.\n\nErroneous example:\n\n```scl\nper_cpu scratch: [u64; 8192];\npolicy p for spinlock {\n    on contended(l: lock) {\n        scratch[0] += 1;\n    }\n}\n```\n\nFixed example:\n\n```scl\nper_cpu scratch: [u64; 4096];\npolicy p for spinlock {\n    on contended(l: lock) {\n        scratch[0] += 1;\n    }\n}\n```\n" },
];

/// Reports hooks whose estimated frame exceeds the BPF stack.
pub(crate) fn check_stack(cx: &mut Checker, costs: &[HookCost]) {
    for c in costs {
        if c.stack > MAX_STACK_BYTES {
            cx.report(
                Diagnostic::error(E0342, c.loc.file, c.loc.span, format!("hook `{}` needs about {} bytes of stack", c.hook, c.stack))
                    .with_label(format!("over the {MAX_STACK_BYTES}-byte BPF stack"))
                    .with_note("the frame holds the hook's locals, those of every function inlined into it, scratch for map keys, values and struct literals, and the zeroed bytes a missing `per_lock` or `per_thread` entry reads as")
                    .with_help("keep large arrays and structs in state (a `per_cpu` variable works as scratch space)"),
            );
        }
    }
}
