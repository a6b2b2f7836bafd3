//! The stable codes of the checker: `E02xx` names and types, `E03xx` the safety rules of
//! design §8, `W04xx` warnings. Each safety rule's module in `rules/` documents its codes;
//! this file holds the code constants and gathers every explain page.

use scl_diagnostics::{Code, CodeDoc};

macro_rules! codes {
    ($($(#[$doc:meta])* $id:ident = $name:literal;)*) => {
        $( $(#[$doc])* pub const $id: Code = Code { code: stringify!($id), name: $name }; )*
    };
}

codes! {
    /// A name that is not declared.
    E0201 = "unknown-name";
    /// A name declared twice.
    E0202 = "duplicate-definition";
    /// A type that does not exist.
    E0203 = "unknown-type";
    /// A value of the wrong type.
    E0204 = "type-mismatch";
    /// A field that the type does not have.
    E0205 = "unknown-field";
    /// A call with the wrong number of arguments.
    E0206 = "wrong-argument-count";
    /// An `import` of a module that does not exist.
    E0208 = "unknown-module";
    /// An operator applied to values it does not take.
    E0209 = "invalid-operand";
    /// A value that must be known at compile time is not.
    E0210 = "not-constant";
    /// A function or bool hook that can end without returning a value.
    E0211 = "missing-return";
    /// A write to a `config` value, a constant or a function.
    E0212 = "read-only";
    /// A conversion `as` cannot make.
    E0213 = "invalid-cast";
    /// A struct literal that misses or repeats a field.
    E0214 = "struct-literal-fields";
    /// More than one policy in a file.
    E0215 = "multiple-policies";
    /// A type that cannot be used where it is (a map of maps, `lock` in state, ...).
    E0216 = "invalid-type-here";
    /// An `inout` argument or an atomic's target that is not a place.
    E0217 = "not-a-place";
    /// An integer constant outside its type's range, or an index outside its array.
    E0218 = "out-of-range";
    /// Recursion, direct or through other functions.
    E0301 = "recursion";
    /// A loop whose bounds are not compile-time constants.
    E0302 = "unbounded-loop";
    /// A loop with more iterations than allowed.
    E0303 = "loop-too-long";
    /// A may-sleep built-in reachable from a hook that runs in atomic context.
    E0310 = "sleep-in-atomic";
    /// A write to a field of `lock` or `waiter`.
    E0320 = "lock-state-write";
    /// A state write reachable from `should_reorder` or `skip_reorder`.
    E0321 = "reorder-writes-state";
    /// A hook that is not in the catalogue.
    E0330 = "unknown-hook";
    /// A hook handler whose parameters or result do not match the catalogue.
    E0331 = "hook-signature";
    /// The same hook handled twice.
    E0332 = "duplicate-hook";
    /// A hook that does not exist for one of the policy's lock kinds.
    E0333 = "hook-unavailable-for-kind";
    /// A decision hook the chosen target does not call.
    E0334 = "hook-unavailable-for-target";
    /// A hook given without the hook it requires.
    E0335 = "missing-companion-hook";
    /// A build or run of a file that gives no hook to compile for the target.
    E0336 = "nothing-to-compile";
    /// A map lookup whose result may be absent, used without handling that.
    E0340 = "unhandled-optional";
    /// More `per_waiter` state than the waiter's data word holds.
    E0341 = "per-waiter-too-large";
    /// A hook whose stack frame would exceed the BPF stack.
    E0342 = "stack-too-large";
    /// State or a map value larger than the kernel creates.
    E0343 = "state-too-large";
    /// A hook whose worst-case instruction count exceeds its budget.
    E0350 = "cost-over-budget";
    /// A `back_off` or `sleep` with a constant wait over its limit, or a back-off clamp
    /// over the hard limit (run-time waits are clamped).
    E0351 = "unbounded-wait";
    /// Division or remainder by a constant zero.
    E0352 = "division-by-zero";
    /// A hook whose verification would exceed the kernel verifier's limits.
    E0353 = "verifier-complexity";
    /// State that no hook or function uses.
    W0401 = "unused-state";
    /// A config value that nothing reads.
    W0402 = "unused-config";
    /// A hook that the chosen target never calls.
    W0403 = "hook-never-fires";
    /// A lock kind listed twice in a policy's header.
    W0404 = "duplicate-lock-kind";
}

/// Every explain page of the checker, in code order.
pub fn docs() -> Vec<&'static CodeDoc> {
    let mut all: Vec<&'static CodeDoc> = Vec::new();
    all.extend(crate::typeck::DOCS);
    all.extend(crate::rules::termination::DOCS);
    all.extend(crate::rules::atomic::DOCS);
    all.extend(crate::rules::integrity::DOCS);
    all.extend(crate::rules::hooks::DOCS);
    all.extend(crate::rules::memory::DOCS);
    all.extend(crate::rules::cost::DOCS);
    all.extend(crate::rules::unused::DOCS);
    all.sort_by_key(|d| d.code.code);
    all
}
