//! The safety rules of design §8, one module each. Each module opens with its codes and
//! their explain pages, then the check. Rules that need the whole program (the call graph,
//! costs) run here after type checking; the others are called by the type checker at the
//! node they concern.

pub mod atomic;
pub mod cost;
pub mod hooks;
pub mod integrity;
pub mod memory;
pub mod termination;
pub mod unused;

use crate::Checker;

/// Runs the whole-program rules; returns each hook's cost estimate.
pub(crate) fn run(cx: &mut Checker) -> Vec<cost::HookCost> {
    let recursive = termination::check_recursion(cx);
    // After an error, "unused" often means "used where the error is": stay quiet then.
    if !cx.diagnostics.iter().any(scl_diagnostics::Diagnostic::is_error) {
        unused::check(cx);
    }
    if recursive {
        // The call graph has a cycle: the chain-following rules and the cost estimate
        // would not terminate meaningfully. The recursion error says what to fix.
        return Vec::new();
    }
    atomic::check(cx);
    integrity::check_reorder_writes(cx);
    let costs = cost::estimate(cx);
    memory::check_stack(cx, &costs);
    costs
}
