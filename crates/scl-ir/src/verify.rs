//! The IR verifier. It checks, and every pass is tested against it:
//!
//! 1. the layout lists blocks once each, the entry first, and every block ends in a
//!    terminator whose targets are blocks of the layout (blocks left out of the layout
//!    are dead and ignored);
//! 2. every block is reachable from the entry (the kernel verifier refuses unreachable
//!    code, so passes must delete what they disconnect);
//! 3. every value is defined by exactly one instruction, and used only later in the same
//!    block (locals live in stack slots, so register allocation is local to a block);
//! 4. loads, stores and atomics go through pointers the kernel will accept: context,
//!    stack or checked map values, never a map value that may still be null; sizes are
//!    1, 2, 4 or 8 (atomics 4 or 8); slot addresses stay inside their slot.

use crate::ir::*;
use cranelift_entity::SecondaryMap;
use rustc_hash::FxHashSet as HashSet;

/// Checks `f`; returns every violation found, described for a compiler developer.
pub fn verify(f: &Function) -> Result<(), Vec<String>> {
    let mut errors = Vec::new();
    let mut in_layout = HashSet::default();
    for &b in &f.layout {
        if !in_layout.insert(b) {
            errors.push(format!("{b} appears twice in the layout"));
        }
    }
    // Reachability.
    let mut reached = HashSet::default();
    let mut stack = vec![f.entry()];
    while let Some(b) = stack.pop() {
        if !reached.insert(b) {
            continue;
        }
        match &f.blocks[b].term {
            Some(t) => {
                for s in t.successors() {
                    if !in_layout.contains(&s) {
                        errors.push(format!("{b} jumps to {s}, which is not in the layout"));
                    } else {
                        stack.push(s);
                    }
                }
            }
            None => errors.push(format!("{b} has no terminator")),
        }
    }
    for &b in &f.layout {
        if !reached.contains(&b) {
            errors.push(format!("{b} is unreachable"));
        }
    }
    // Definitions: once, and uses after them in the same block.
    let mut def_block: SecondaryMap<Value, Option<Block>> = SecondaryMap::new();
    let mut defined_count: SecondaryMap<Value, u32> = SecondaryMap::new();
    for &b in &f.layout {
        for &i in &f.blocks[b].insts {
            if let Some(d) = f.insts[i].dst() {
                defined_count[d] += 1;
                def_block[d] = Some(b);
            }
        }
    }
    for (v, n) in defined_count.iter() {
        if *n > 1 {
            errors.push(format!("{v} is defined {n} times"));
        }
    }
    for &b in &f.layout {
        let mut seen = HashSet::default();
        let check_use = |v: Value, seen: &HashSet<Value>, what: &str, errors: &mut Vec<String>| {
            if !seen.contains(&v) {
                match def_block[v] {
                    Some(db) if db != b => errors.push(format!("{what} in {b} uses {v}, defined in {db}")),
                    Some(_) => errors.push(format!("{what} in {b} uses {v} before its definition")),
                    None => errors.push(format!("{what} in {b} uses {v}, which is never defined")),
                }
            }
        };
        for &i in &f.blocks[b].insts {
            let data = &f.insts[i];
            for u in data.uses() {
                check_use(u, &seen, &format!("{i}"), &mut errors);
            }
            check_memory(f, i, data, &mut errors);
            if let Some(d) = data.dst() {
                seen.insert(d);
            }
        }
        match &f.blocks[b].term {
            Some(Terminator::Branch { cond, .. }) => check_use(*cond, &seen, "branch", &mut errors),
            Some(Terminator::Return(v)) => check_use(*v, &seen, "return", &mut errors),
            _ => {}
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn check_memory(f: &Function, i: Inst, data: &InstData, errors: &mut Vec<String>) {
    let pointer = |v: Value, errors: &mut Vec<String>| match f.values[v].ty {
        ValTy::Ctx | ValTy::Stack | ValTy::MapValue => {}
        other => errors.push(format!("{i} dereferences {v}, a {other:?}")),
    };
    match data {
        InstData::Load { ptr, size, .. } | InstData::Store { ptr, size, .. } => {
            pointer(*ptr, errors);
            if ![1, 2, 4, 8].contains(size) {
                errors.push(format!("{i} accesses {size} bytes"));
            }
        }
        InstData::Atomic { ptr, size, .. } => {
            if f.values[*ptr].ty != ValTy::MapValue {
                errors.push(format!("{i} is an atomic on {ptr}, which is not a map value"));
            }
            if ![4, 8].contains(size) {
                errors.push(format!("{i} is a {size}-byte atomic"));
            }
        }
        InstData::SlotAddr { slot, offset, .. } if *offset >= f.slots[*slot].size => {
            errors.push(format!("{i} points {offset} bytes into {slot}, which has {}", f.slots[*slot].size));
        }
        InstData::MemCopy { dst_ptr, src, .. } => {
            pointer(*dst_ptr, errors);
            pointer(*src, errors);
        }
        InstData::MemZero { ptr, .. } => pointer(*ptr, errors),
        InstData::Loop { ctx_ptr, .. } if f.values[*ctx_ptr].ty != ValTy::Stack => {
            errors.push(format!("{i} passes {ctx_ptr} to a loop callback; it must point into the stack"));
        }
        _ => {}
    }
}
