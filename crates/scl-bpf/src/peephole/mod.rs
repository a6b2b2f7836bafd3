//! Clean-up of the emitted instructions, after register allocation.
//!
//! The emitter allocates registers one block at a time and keeps every variable in a stack
//! slot, so its output reloads slots it has just written and copies values between
//! registers on their way to where they are used. This pass removes that traffic on the
//! final instruction stream, where every effect is explicit:
//!
//! - **forwarding**: a 4- or 8-byte load whose value is known on every path into it,
//!   because the code stored it or loaded it there and neither the memory nor the register
//!   changed since, becomes a register move (or a move of the stored constant). This covers
//!   stack slots and also map values and context fields reached through a pointer register:
//!   a store through another pointer, an atomic or a helper call that may write map values
//!   forgets the latter, and so does a store to the part of the frame a pointer can reach.
//!   A store of what its location is known to hold already is deleted;
//! - **shared returns**: returns of the same constant share one `r0 = K; exit`;
//! - **conditional stores**: a choice stored back where one side was loaded from
//!   (`field = max(field, x)`) stores only on the path that changes it;
//! - **dead stores**: a store to a stack slot that no instruction ever loads, and that no
//!   pointer handed out by the program can reach, is deleted;
//! - **copy coalescing**: `a = b`, where `b` is dead afterwards and was set by a move or a
//!   load that nothing in between disturbs, makes that instruction write `a` directly;
//! - **copy propagation**: `a = b`, where the reads of this `a` follow in straight-line code
//!   (past conditional jumps that leave where `a` is dead) and neither register changes
//!   before the last one, goes; those reads read `b`. And `a = b` where `b` dies goes too:
//!   the code that follows uses `b` for `a` until this `a` dies;
//! - **jump threading**: a jump to a `goto` goes where it goes, and a jump to a test of a
//!   register its own path just set to a constant goes where the test leads: a 0/1 value
//!   made by jumps and then tested (`t = 1; if C goto L; t = 0; L: if t == 0 goto X`)
//!   becomes jumps again; `if C goto L; goto X; L:` becomes `if !C goto X`;
//! - **dead code**: a move, arithmetic or load whose register is never read is deleted, and
//!   so is a jump to the next instruction; an atomic add whose fetched old value is never
//!   read does not fetch it. A helper call reads only its own arguments
//!   and writes only what `scl_ir::HELPERS` says it may.
//!
//! The pass runs to a fixed point; after each rewrite that changed something it renumbers
//! jumps, relocations and line entries. The analyses the rewrites read (`Analyses`: heads,
//! jump targets, liveness, the exposed frame) are found once per version of the code and
//! shared by the rewrites that change nothing; debug builds check that such a rewrite
//! really left the code alone. The rewrites live in `memory.rs` (forwarding, dead stores, conditional stores),
//! `copies.rs` and `jumps.rs` (threading, inverted jumps, shared returns); this file has
//! the analyses they share (effects, liveness, jump targets), dead and unreachable code,
//! the renumbering and the driver.
//!
//! Stack pointers. The program hands out addresses into its frame only as `rX = r10;
//! rX += K` (a map key, a helper's buffer, a callback's context); everything the program
//! or a helper reaches through such a pointer lies in `[K, 0)`, because the code only adds
//! non-negative offsets to it and the verifier keeps every access inside the frame. The
//! lowest such `K` bounds the *exposed* part of the frame: stores through any other pointer
//! and helper calls may change it, the slots below it only change by `r10`-based stores.
//! Any other use of `r10` as a value exposes the whole frame.

use crate::insn::*;
use crate::Compiled;
use std::cell::OnceCell;

mod copies;
mod jumps;
mod memory;
#[cfg(test)]
mod tests;

use copies::{coalesce, propagate_copies, rename_after_copy};
use jumps::{invert_jump_over_goto, merge_returns, thread_jumps};
use memory::{conditional_stores, dead_stores, forward, unfetched_atomics};

const FP: u8 = 10;

/// `r1`-`r5`: a call's arguments, clobbered by it.
const ARGS: u16 = 0b11_1110;

/// `r0`-`r5`: what a call defines.
const CALL_DEFS: u16 = 0b11_1111;

fn bit(r: u8) -> u16 {
    1 << r
}

fn mem_size(code: u8) -> u8 {
    match code & 0x18 {
        size::B => 1,
        size::H => 2,
        size::W => 4,
        _ => 8,
    }
}

/// Registers an instruction reads and writes, and whether deleting it changes nothing but
/// the registers it writes.
#[derive(Clone, Copy, Debug)]
struct Effect {
    uses: u16,
    defs: u16,
    pure: bool,
}

fn effect(i: &Insn) -> Effect {
    let x = i.code & SRC_X != 0;
    match i.class() {
        class::ALU | class::ALU64 => {
            let op = i.code & 0xf0;
            let uses = match op {
                alu::MOV if x => bit(i.src),
                alu::MOV => 0,
                // NEG, and END (0xd0), whose source bit is the byte order, not a register.
                alu::NEG | 0xd0 => bit(i.dst),
                _ if x => bit(i.dst) | bit(i.src),
                _ => bit(i.dst),
            };
            Effect { uses, defs: bit(i.dst), pure: true }
        }
        class::LDX => Effect { uses: bit(i.src), defs: bit(i.dst), pure: true },
        class::LD => Effect { uses: 0, defs: bit(i.dst), pure: false },
        class::ST => Effect { uses: bit(i.dst), defs: 0, pure: false },
        class::STX if i.code & 0xe0 == MODE_ATOMIC => {
            if i.imm == ATOMIC_CMPXCHG {
                Effect { uses: bit(i.dst) | bit(i.src) | bit(0), defs: bit(0), pure: false }
            } else if i.imm & ATOMIC_FETCH != 0 {
                Effect { uses: bit(i.dst) | bit(i.src), defs: bit(i.src), pure: false }
            } else {
                Effect { uses: bit(i.dst) | bit(i.src), defs: 0, pure: false }
            }
        }
        class::STX => Effect { uses: bit(i.dst) | bit(i.src), defs: 0, pure: false },
        _ => match i.code & 0xf0 {
            // A helper reads its own arguments only (a call to a BPF function, all five).
            jmp::CALL => {
                let args = if i.src == 0 { scl_ir::helper(i.imm as u32).args } else { 5 };
                Effect { uses: ARGS & ((1u16 << (args + 1)) - 1), defs: CALL_DEFS, pure: false }
            }
            jmp::EXIT => Effect { uses: bit(0), defs: 0, pure: false },
            jmp::JA => Effect { uses: 0, defs: 0, pure: false },
            _ if x => Effect { uses: bit(i.dst) | bit(i.src), defs: 0, pure: false },
            _ => Effect { uses: bit(i.dst), defs: 0, pure: false },
        },
    }
}

/// `(a, b)` if `n` is the 64-bit register move `a = b`.
fn reg_move(n: &Insn) -> Option<(u8, u8)> {
    (n.code == class::ALU64 | alu::MOV | SRC_X && n.off == 0).then_some((n.dst, n.src))
}

/// Where the jump at `i` lands.
fn jump_target(i: usize, n: &Insn) -> usize {
    (i as i64 + 1 + i64::from(n.off)) as usize
}

/// The offset of a jump at `at` that lands at `to`.
fn offset_to(at: usize, to: usize) -> i16 {
    (to as i64 - at as i64 - 1) as i16
}

fn is_jump(i: &Insn) -> bool {
    matches!(i.class(), class::JMP | 0x06) && !matches!(i.code & 0xf0, jmp::CALL | jmp::EXIT)
}

/// Indices of the instructions that start one (the second slot of an `ld_imm64` is not).
fn heads(insns: &[Insn]) -> Vec<usize> {
    let mut out = Vec::with_capacity(insns.len());
    let mut i = 0;
    while i < insns.len() {
        out.push(i);
        i += if insns[i].is_wide() { 2 } else { 1 };
    }
    out
}

fn successors(insns: &[Insn], i: usize) -> [Option<usize>; 2] {
    let n = insns[i];
    let next = i + if n.is_wide() { 2 } else { 1 };
    let next = (next < insns.len()).then_some(next);
    if n.class() == class::JMP || n.class() == 0x06 {
        match n.code & 0xf0 {
            jmp::EXIT => return [None, None],
            jmp::CALL => return [next, None],
            _ => {}
        }
        let target = jump_target(i, &n);
        if n.code & 0xf0 == jmp::JA {
            return [Some(target), None];
        }
        return [next, Some(target)];
    }
    [next, None]
}

fn jump_targets(insns: &[Insn], hs: &[usize]) -> Vec<bool> {
    let mut t = vec![false; insns.len() + 1];
    for &i in hs {
        if is_jump(&insns[i]) {
            let target = jump_target(i, &insns[i]);
            t[target.min(insns.len())] = true;
        }
    }
    t
}

/// Registers live after each instruction.
fn live_out(insns: &[Insn], hs: &[usize]) -> Vec<u16> {
    // Each instruction's effect and successors, found once for every round of the fixed point.
    let steps: Vec<(Effect, [Option<usize>; 2])> = hs.iter().map(|&i| (effect(&insns[i]), successors(insns, i))).collect();
    let mut live_in = vec![0u16; insns.len() + 1];
    let mut out = vec![0u16; insns.len()];
    loop {
        let mut changed = false;
        for (&i, (e, succ)) in hs.iter().zip(&steps).rev() {
            let mut lo = 0;
            for s in succ.iter().flatten() {
                lo |= live_in[*s];
            }
            let li = e.uses | (lo & !e.defs);
            if lo != out[i] || li != live_in[i] {
                out[i] = lo;
                live_in[i] = li;
                changed = true;
            }
        }
        if !changed {
            return out;
        }
    }
}

/// Registers live before each instruction, from those live after it.
fn live_in(insns: &[Insn], live_out: &[u16]) -> Vec<u16> {
    insns
        .iter()
        .zip(live_out)
        .map(|(n, out)| {
            let e = effect(n);
            e.uses | (out & !e.defs)
        })
        .collect()
}

/// What the rewrites read of the instruction stream: found on first use and kept until a
/// rewrite changes the stream (most runs of most rewrites change nothing, and each of them
/// used to find all of it again).
#[derive(Default)]
struct Analyses {
    heads: OnceCell<Vec<usize>>,
    targets: OnceCell<Vec<bool>>,
    live_out: OnceCell<Vec<u16>>,
    live_in: OnceCell<Vec<u16>>,
    exposed: OnceCell<i16>,
}

impl Analyses {
    /// See [`heads`].
    fn heads(&self, insns: &[Insn]) -> &[usize] {
        self.heads.get_or_init(|| heads(insns))
    }

    /// See [`jump_targets`].
    fn targets(&self, insns: &[Insn]) -> &[bool] {
        self.targets.get_or_init(|| jump_targets(insns, self.heads(insns)))
    }

    /// See [`live_out`].
    fn live_out(&self, insns: &[Insn]) -> &[u16] {
        self.live_out.get_or_init(|| live_out(insns, self.heads(insns)))
    }

    /// See [`live_in`].
    fn live_in(&self, insns: &[Insn]) -> &[u16] {
        self.live_in.get_or_init(|| live_in(insns, self.live_out(insns)))
    }

    /// See [`exposed_from`].
    fn exposed(&self, insns: &[Insn]) -> i16 {
        *self.exposed.get_or_init(|| exposed_from(insns, self.heads(insns)))
    }
}

/// The lowest frame offset a pointer handed out by the program can reach, or 0 when it
/// hands out none (see the module comment).
fn exposed_from(insns: &[Insn], hs: &[usize]) -> i16 {
    let mut low = 0i16;
    for (k, &i) in hs.iter().enumerate() {
        let n = insns[i];
        let reads_fp_value = match n.class() {
            class::ALU | class::ALU64 => n.code & SRC_X != 0 && n.src == FP && n.code & 0xf0 != 0xd0,
            class::STX => n.src == FP,
            class::JMP | 0x06 => n.code & SRC_X != 0 && n.src == FP || n.dst == FP && !matches!(n.code & 0xf0, jmp::CALL | jmp::EXIT | jmp::JA),
            _ => false,
        };
        if !reads_fp_value {
            continue;
        }
        let is_mov = n.class() == class::ALU64 && n.code & 0xf0 == alu::MOV && n.code & SRC_X != 0 && n.off == 0;
        let add = hs.get(k + 1).map(|&j| insns[j]);
        match add {
            Some(a) if is_mov && a.code == class::ALU64 | alu::ADD | SRC_K && a.dst == n.dst && a.imm < 0 => {
                low = low.min(a.imm.max(-512) as i16);
            }
            _ => return -512,
        }
    }
    low
}

fn overlaps(a_off: i16, a_size: u8, b_off: i16, b_size: u8) -> bool {
    let (a0, a1) = (i32::from(a_off), i32::from(a_off) + i32::from(a_size));
    let (b0, b1) = (i32::from(b_off), i32::from(b_off) + i32::from(b_size));
    a0 < b1 && b0 < a1
}

/// Marks the instructions no path from the first one reaches (the verifier refuses them).
fn unreachable(insns: &[Insn], an: &Analyses, dead: &mut [bool]) -> bool {
    let mut seen = vec![false; insns.len()];
    let mut stack = vec![0usize];
    while let Some(i) = stack.pop() {
        if i >= insns.len() || seen[i] {
            continue;
        }
        seen[i] = true;
        stack.extend(successors(insns, i).into_iter().flatten());
    }
    let mut changed = false;
    for &i in an.heads(insns) {
        if !seen[i] && !dead[i] {
            dead[i] = true;
            changed = true;
        }
    }
    changed
}

/// Marks instructions whose results nobody reads, and jumps to the next instruction.
fn dead_code(insns: &[Insn], an: &Analyses, dead: &mut [bool]) -> bool {
    let live = an.live_out(insns);
    let mut changed = false;
    for &i in an.heads(insns) {
        let n = insns[i];
        if dead[i] {
            continue;
        }
        let e = effect(&n);
        let useless = (e.pure && e.defs & live[i] == 0)
            || reg_move(&n).is_some_and(|(a, b)| a == b)
            || (n.code == class::JMP | jmp::JA && n.off == 0);
        if useless {
            dead[i] = true;
            changed = true;
        }
    }
    changed
}

/// Deletes the marked instructions and renumbers jumps, relocations and lines.
fn compact(c: &mut Compiled, dead: &[bool]) {
    let n = c.insns.len();
    // The second slot of a deleted `ld_imm64` goes with it.
    let mut dead = dead.to_vec();
    for i in heads(&c.insns) {
        if dead[i] && c.insns[i].is_wide() {
            dead[i + 1] = true;
        }
    }
    // new_index[i]: where instruction i (or, if deleted, the next kept one) ends up.
    let mut new_index = vec![0usize; n + 1];
    let mut next = 0;
    for i in 0..n {
        new_index[i] = next;
        if !dead[i] {
            next += 1;
        }
    }
    new_index[n] = next;
    let old = std::mem::take(&mut c.insns);
    for i in heads(&old) {
        if dead[i] {
            continue;
        }
        let mut insn = old[i];
        if is_jump(&insn) {
            let target = jump_target(i, &insn);
            insn.off = offset_to(new_index[i], new_index[target]);
        }
        c.insns.push(insn);
        if insn.is_wide() {
            c.insns.push(old[i + 1]);
        }
    }
    c.relocs.retain(|r| !dead[r.0]);
    for r in &mut c.relocs {
        r.0 = new_index[r.0];
    }
    let mut lines: Vec<(usize, scl_sema::hir::Loc)> = Vec::with_capacity(c.lines.len());
    for &(i, loc) in &c.lines {
        let at = new_index[i];
        if at >= c.insns.len() {
            continue;
        }
        if let Some(last) = lines.last_mut() {
            if last.0 == at {
                *last = (at, loc);
                continue;
            }
        }
        lines.push((at, loc));
    }
    lines.dedup_by(|b, a| a.1 == b.1);
    c.lines = lines;
}

/// Runs the clean-up to a fixed point.
pub(crate) fn run(c: &mut Compiled) {
    type Pass = fn(&mut [Insn], &Analyses, &mut [bool]) -> bool;
    let passes: [Pass; 12] = [
        forward,
        |insns, an, dead| dead_stores(insns, an, dead),
        coalesce,
        propagate_copies,
        rename_after_copy,
        thread_jumps,
        invert_jump_over_goto,
        conditional_stores,
        merge_returns,
        |insns, an, dead| unreachable(insns, an, dead),
        |insns, an, dead| dead_code(insns, an, dead),
        |insns, an, _| unfetched_atomics(insns, an),
    ];
    let mut an = Analyses::default();
    for _ in 0..16 {
        let mut changed = false;
        for pass in passes {
            let mut dead = vec![false; c.insns.len()];
            #[cfg(debug_assertions)]
            let before = c.insns.clone();
            if pass(&mut c.insns, &an, &mut dead) {
                compact(c, &dead);
                an = Analyses::default();
                changed = true;
            } else {
                // The analyses stay only if a rewrite that reports no change made none.
                #[cfg(debug_assertions)]
                assert!(before == c.insns && !dead.contains(&true), "a peephole rewrite changed the code and reported no change");
            }
        }
        if !changed {
            break;
        }
    }
}
