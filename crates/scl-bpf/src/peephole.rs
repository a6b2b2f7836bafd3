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
//!   so is a jump to the next instruction. A helper call reads only its own arguments
//!   and writes only what `scl_ir::HELPERS` says it may.
//!
//! The pass runs to a fixed point and then renumbers jumps, relocations and line entries.
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

fn jump_targets(insns: &[Insn]) -> Vec<bool> {
    let mut t = vec![false; insns.len() + 1];
    for i in heads(insns) {
        if is_jump(&insns[i]) {
            let target = jump_target(i, &insns[i]);
            t[target.min(insns.len())] = true;
        }
    }
    t
}

/// Registers live after each instruction.
fn live_out(insns: &[Insn]) -> Vec<u16> {
    let hs = heads(insns);
    let mut live_in = vec![0u16; insns.len() + 1];
    let mut out = vec![0u16; insns.len()];
    loop {
        let mut changed = false;
        for &i in hs.iter().rev() {
            let mut lo = 0;
            for s in successors(insns, i).into_iter().flatten() {
                lo |= live_in[s];
            }
            let e = effect(&insns[i]);
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

/// The lowest frame offset a pointer handed out by the program can reach, or 0 when it
/// hands out none (see the module comment).
fn exposed_from(insns: &[Insn]) -> i16 {
    let mut low = 0i16;
    let hs = heads(insns);
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

/// A memory location whose content a register or constant is known to hold: a stack slot
/// (`base` is `r10`), or a map value or context field at an offset from a pointer register.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Known {
    base: u8,
    off: i16,
    size: u8,
    val: Val,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Val {
    Reg(u8),
    Imm(i32),
}

/// What is known before an instruction: slot contents, and the registers that hold a value
/// below 2^32 (so a 32-bit move from them is a plain move).
#[derive(Clone, Debug, Default)]
struct Facts {
    known: Vec<Known>,
    zext: u16,
}

impl Facts {
    /// What holds on both paths.
    fn meet(&mut self, other: &Facts) {
        self.known.retain(|k| other.known.contains(k));
        self.zext &= other.zext;
    }
}

fn overlaps(a_off: i16, a_size: u8, b_off: i16, b_size: u8) -> bool {
    let (a0, a1) = (i32::from(a_off), i32::from(a_off) + i32::from(a_size));
    let (b0, b1) = (i32::from(b_off), i32::from(b_off) + i32::from(b_size));
    a0 < b1 && b0 < a1
}

/// True if the instruction leaves a value below 2^32 in its destination register.
fn zero_extends(i: &Insn) -> bool {
    match i.class() {
        class::ALU => i.code & 0xf0 != 0xd0 || i.imm <= 32,
        class::ALU64 => i.code & 0xf0 == alu::MOV && i.code & SRC_X == 0 && i.imm >= 0,
        class::LDX => i.code & 0xe0 == MODE_MEM && mem_size(i.code) < 8,
        _ => false,
    }
}

/// The register that holds the context pointer for the whole program, if one does: `r1`
/// when nothing writes it (a program without calls), else the register `r1` is copied to
/// first thing, when nothing else writes that one. The context is not written by stores
/// through other pointers or by helpers, so what is read from it stays known.
fn context_register(insns: &[Insn]) -> Option<u8> {
    let hs = heads(insns);
    let written = |r: u8, skip: usize| hs.iter().filter(|&&i| i != skip).any(|&i| effect(&insns[i]).defs & bit(r) != 0);
    if !written(1, usize::MAX) {
        return Some(1);
    }
    let first = insns.first()?;
    let copy = first.code == class::ALU64 | alu::MOV | SRC_X && first.src == 1 && first.off == 0 && first.dst != 1;
    (copy && first.dst != FP && !written(first.dst, 0)).then_some(first.dst)
}

/// Store-to-load and load-to-load forwarding on stack slots, along every path: facts meet
/// where forward jumps land; a loop header starts from nothing. Returns true on a change.
fn forward(insns: &mut [Insn], exposed: i16, dead: &mut [bool]) -> bool {
    let ctx = context_register(insns);
    let hs = heads(insns);
    let targets = jump_targets(insns);
    let mut back = vec![false; insns.len() + 1];
    for &j in &hs {
        if is_jump(&insns[j]) {
            let t = jump_target(j, &insns[j]);
            if t <= j {
                back[t] = true;
            }
        }
    }
    let mut pending: std::collections::HashMap<usize, Facts> = std::collections::HashMap::new();
    // The facts on the fall-through path into the next instruction (None: there is none).
    let mut fall: Option<Facts> = Some(Facts::default());
    let mut changed = false;
    for i in hs {
        let mut f = if back[i] {
            Facts::default()
        } else if targets[i] {
            let mut incoming = pending.remove(&i).unwrap_or_default();
            if let Some(fl) = &fall {
                incoming.meet(fl);
            }
            incoming
        } else {
            fall.take().unwrap_or_default()
        };
        let n = insns[i];
        let e = effect(&n);
        let sz = mem_size(n.code);
        let mut add = None;
        // A plain store of what the location is known to hold already changes nothing.
        let stored = match n.class() {
            class::ST => Some(Val::Imm(n.imm)),
            class::STX if n.code & 0xe0 == MODE_MEM => Some(Val::Reg(n.src)),
            _ => None,
        };
        if let Some(v) = stored.filter(|_| sz == 4 || sz == 8) {
            if f.known.iter().rev().find(|k| k.base == n.dst && k.off == n.off && k.size == sz).is_some_and(|k| k.val == v) {
                dead[i] = true;
                changed = true;
            }
        }
        // What a store through any pointer but `r10` may change: every location not on the
        // stack, and the exposed part of the frame.
        let through_pointer = |k: &Known| (k.base == FP && i32::from(k.off) + i32::from(k.size) <= i32::from(exposed)) || Some(k.base) == ctx;
        match n.class() {
            _ if dead[i] => {}
            class::LDX if n.code & 0xe0 == MODE_MEM && (sz == 4 || sz == 8) => {
                let hit = f.known.iter().rev().find(|k| k.base == n.src && k.off == n.off && k.size == sz).map(|k| k.val);
                match hit {
                    Some(Val::Reg(r)) => {
                        // A 32-bit move zero-extends; a plain move does when the source is.
                        let wide = sz == 8 || f.zext & bit(r) != 0;
                        let cls = if wide { class::ALU64 } else { class::ALU };
                        insns[i] = Insn { code: cls | alu::MOV | SRC_X, dst: n.dst, src: r, off: 0, imm: 0 };
                        changed = true;
                    }
                    Some(Val::Imm(v)) => {
                        let cls = if sz == 8 { class::ALU64 } else { class::ALU };
                        insns[i] = Insn { code: cls | alu::MOV | SRC_K, dst: n.dst, src: 0, off: 0, imm: v };
                        changed = true;
                    }
                    None => {}
                }
                if n.dst != n.src {
                    add = Some(Known { base: n.src, off: n.off, size: sz, val: Val::Reg(n.dst) });
                }
            }
            class::ST | class::STX if n.dst == FP => {
                // A store to the exposed part of the frame may change what a pointer reads.
                let private = i32::from(n.off) + i32::from(sz) <= i32::from(exposed);
                f.known.retain(|k| if k.base == FP { !overlaps(k.off, k.size, n.off, sz) } else { private });
                let plain = n.code & 0xe0 == MODE_MEM;
                if plain && (sz == 4 || sz == 8) {
                    let val = if n.class() == class::ST { Val::Imm(n.imm) } else { Val::Reg(n.src) };
                    add = Some(Known { base: FP, off: n.off, size: sz, val });
                }
            }
            class::ST | class::STX => {
                // Through a pointer: it may point anywhere outside the private part of the
                // frame, except that it changes nothing else at its own offsets.
                let same_base_apart = |k: &Known| k.base == n.dst && !overlaps(k.off, k.size, n.off, sz);
                let hits = |k: &Known| k.base == n.dst && overlaps(k.off, k.size, n.off, sz);
                f.known.retain(|k| (through_pointer(k) && !hits(k)) || (n.code & 0xe0 == MODE_MEM && same_base_apart(k)));
                let plain = n.code & 0xe0 == MODE_MEM;
                if plain && (sz == 4 || sz == 8) {
                    let val = if n.class() == class::ST { Val::Imm(n.imm) } else { Val::Reg(n.src) };
                    add = Some(Known { base: n.dst, off: n.off, size: sz, val });
                }
            }
            class::JMP if n.code & 0xf0 == jmp::CALL => {
                // A helper may write what the program hands it, and map values.
                let h = if n.src == 0 { scl_ir::helper(n.imm as u32) } else { scl_ir::helper(u32::MAX) };
                if h.writes_args {
                    f.known.retain(through_pointer);
                } else if h.writes_maps {
                    f.known.retain(|k| k.base == FP || Some(k.base) == ctx);
                }
            }
            _ => {}
        }
        f.known.retain(|k| !matches!(k.val, Val::Reg(r) if e.defs & bit(r) != 0) && e.defs & bit(k.base) == 0);
        f.zext &= !e.defs;
        if e.defs != 0 && zero_extends(&insns[i]) {
            f.zext |= bit(insns[i].dst);
        }
        if let Some(k) = add {
            f.known.push(k);
        }
        if is_jump(&n) {
            let t = jump_target(i, &n);
            if t > i {
                match pending.get_mut(&t) {
                    Some(p) => p.meet(&f),
                    None => {
                        pending.insert(t, f.clone());
                    }
                }
            }
        }
        let ends = n.class() == class::JMP && matches!(n.code & 0xf0, jmp::JA | jmp::EXIT);
        fall = if ends { None } else { Some(f) };
    }
    changed
}

/// Marks stores to stack slots that nothing reads. Returns true on a change.
fn dead_stores(insns: &[Insn], exposed: i16, dead: &mut [bool]) -> bool {
    let hs = heads(insns);
    let mut reads: Vec<(i16, u8)> = Vec::new();
    for &i in &hs {
        let n = insns[i];
        let fp_read = match n.class() {
            class::LDX => n.src == FP,
            class::STX => n.dst == FP && n.code & 0xe0 == MODE_ATOMIC,
            _ => false,
        };
        if fp_read {
            reads.push((n.off, mem_size(n.code)));
        }
    }
    let mut changed = false;
    for &i in &hs {
        let n = insns[i];
        let plain_store = matches!(n.class(), class::ST | class::STX) && n.code & 0xe0 == MODE_MEM && n.dst == FP;
        if !plain_store || dead[i] {
            continue;
        }
        let sz = mem_size(n.code);
        let read = reads.iter().any(|&(o, s)| overlaps(o, s, n.off, sz));
        let reachable = i32::from(n.off) + i32::from(sz) > i32::from(exposed);
        if !read && !reachable {
            dead[i] = true;
            changed = true;
        }
    }
    changed
}

/// `a = b` (64-bit) where `b` dies: the instruction that set `b` sets `a` instead.
fn coalesce(insns: &mut [Insn], dead: &mut [bool]) -> bool {
    let targets = jump_targets(insns);
    let live = live_out(insns);
    let hs = heads(insns);
    let mut changed = false;
    for (k, &j) in hs.iter().enumerate() {
        let m = insns[j];
        if dead[j] || m.code != class::ALU64 | alu::MOV | SRC_X || m.off != 0 {
            continue;
        }
        let (a, b) = (m.dst, m.src);
        if a == b || b == FP || live[j] & bit(b) != 0 || targets[j] {
            continue;
        }
        // The nearest earlier instruction that mentions `b`, in straight-line code.
        let mut found = None;
        for &i in hs[..k].iter().rev() {
            if dead[i] {
                continue;
            }
            let n = insns[i];
            let e = effect(&n);
            if (e.uses | e.defs) & bit(b) != 0 {
                found = Some(i);
                break;
            }
            if (e.uses | e.defs) & bit(a) != 0 || is_jump(&n) || targets[i] || n.class() == class::JMP && n.code & 0xf0 == jmp::EXIT {
                break;
            }
        }
        let Some(i) = found else { continue };
        let n = insns[i];
        let sets_only = match n.class() {
            class::ALU | class::ALU64 => n.code & 0xf0 == alu::MOV,
            class::LDX => true,
            class::LD => n.is_wide(),
            _ => false,
        };
        if !sets_only || n.dst != b {
            continue;
        }
        insns[i].dst = a;
        dead[j] = true;
        changed = true;
    }
    changed
}

/// `n` with register `a` read as `b` wherever one of its own fields reads `a`; `None` if
/// it reads `a` some other way (a call's arguments, the exit's `r0`, an atomic's source,
/// which it also writes) or writes it from a field it reads.
fn read_as(n: &Insn, a: u8, b: u8) -> Option<Insn> {
    let r = |x: u8| if x == a { b } else { x };
    let renamed = match n.class() {
        class::LDX => Insn { src: r(n.src), ..*n },
        class::ST => Insn { dst: r(n.dst), ..*n },
        class::STX if n.code & 0xe0 == MODE_MEM => Insn { dst: r(n.dst), src: r(n.src), ..*n },
        class::ALU | class::ALU64 if n.code & SRC_X != 0 && n.code & 0xf0 != 0xd0 && n.dst != a => Insn { src: r(n.src), ..*n },
        class::JMP | 0x06 if is_jump(n) && n.code & 0xf0 != jmp::JA => {
            Insn { dst: r(n.dst), src: if n.code & SRC_X != 0 { r(n.src) } else { n.src }, ..*n }
        }
        _ if effect(n).uses & bit(a) == 0 => *n,
        _ => return None,
    };
    (effect(&renamed).uses & bit(a) == 0).then_some(renamed)
}

/// `n` with register `a` renamed `b` in every field that names it, reads and writes; `None`
/// if `n` also reads or writes registers it does not name (a call, the exit, an atomic).
fn renamed(n: &Insn, a: u8, b: u8) -> Option<Insn> {
    let r = |x: u8| if x == a { b } else { x };
    match n.class() {
        // (END's source bit is the byte order, not a register.)
        class::ALU | class::ALU64 | class::LDX | class::ST => {
            let reads_src = n.class() == class::LDX || (n.code & SRC_X != 0 && n.code & 0xf0 != 0xd0 && n.class() != class::ST);
            Some(Insn { dst: r(n.dst), src: if reads_src { r(n.src) } else { n.src }, ..*n })
        }
        class::STX if n.code & 0xe0 == MODE_MEM => Some(Insn { dst: r(n.dst), src: r(n.src), ..*n }),
        class::JMP | 0x06 if is_jump(n) && n.code & 0xf0 != jmp::JA => {
            Some(Insn { dst: r(n.dst), src: if n.code & SRC_X != 0 { r(n.src) } else { n.src }, ..*n })
        }
        _ => None,
    }
}

/// `a = b` where `b` dies: the code that follows uses `b` for `a`, reads and writes, up to
/// where this `a` dies, in straight-line code (a conditional jump on the way may leave if
/// `a` is dead where it lands), and the move goes. This is the two-address copy
/// (`t = x; t -= 1` with `x` dying) across the jumps that `coalesce` stops at.
fn rename_after_copy(insns: &mut [Insn], dead: &mut [bool]) -> bool {
    let targets = jump_targets(insns);
    let live = live_out(insns);
    let live_at = live_in(insns, &live);
    let hs = heads(insns);
    let mut changed = false;
    // Registers whose liveness a rewrite changed, up to where (liveness changes only
    // between a move and the last instruction it rewrote): later moves before that point
    // involving them wait for the next round. (In a program with loops a jump back may
    // land in that stretch: there they wait in any case.)
    let loops = hs.iter().any(|&j| is_jump(&insns[j]) && jump_target(j, &insns[j]) <= j);
    let mut touched = 0u16;
    let mut stale_until = 0usize;
    for (k, &i) in hs.iter().enumerate() {
        if i > stale_until && !loops {
            touched = 0;
        }
        let m = insns[i];
        if dead[i] || m.code != class::ALU64 | alu::MOV | SRC_X || m.off != 0 || m.dst == m.src || m.src == FP || m.dst == FP {
            continue;
        }
        let (a, b) = (m.dst, m.src);
        if live[i] & bit(b) != 0 || touched & (bit(a) | bit(b)) != 0 {
            continue;
        }
        let mut rewrites: Vec<(usize, Insn)> = Vec::new();
        let mut ok = false;
        let mut end = i;
        for &j in &hs[k + 1..] {
            let n = insns[j];
            if targets[j] || dead[j] {
                break;
            }
            let e = effect(&n);
            if (e.uses | e.defs) & bit(b) != 0 {
                break;
            }
            if (e.uses | e.defs) & bit(a) != 0 {
                let Some(r) = renamed(&n, a, b) else { break };
                rewrites.push((j, r));
            }
            if live[j] & bit(a) == 0 {
                ok = true;
                end = j;
                break;
            }
            if !is_jump(&n) && n.class() == class::JMP {
                break; // a call or the exit with `a` still live
            }
            if is_jump(&n) && (n.code & 0xf0 == jmp::JA || live_at.get(jump_target(j, &n)).is_some_and(|l| l & bit(a) != 0)) {
                break;
            }
        }
        if !ok {
            continue;
        }
        for (j, n) in rewrites {
            insns[j] = n;
        }
        dead[i] = true;
        changed = true;
        touched |= bit(a) | bit(b);
        stale_until = stale_until.max(end);
    }
    changed
}

/// Copy propagation: `a = b`, where every later read of this `a` is in straight-line code
/// after it (a conditional jump on the way may leave if `a` is dead where it lands) and
/// neither register changes before the last one: those reads read `b`, and the move goes.
fn propagate_copies(insns: &mut [Insn], dead: &mut [bool]) -> bool {
    let targets = jump_targets(insns);
    let live = live_out(insns);
    let live_at = live_in(insns, &live);
    let live_in_at = |t: usize| live_at.get(t).copied().unwrap_or(0);
    let hs = heads(insns);
    let mut changed = false;
    // Registers whose liveness a rewrite changed, up to where (liveness changes only
    // between a move and the last instruction it rewrote): later moves before that point
    // involving them wait for the next round. (In a program with loops a jump back may
    // land in that stretch: there they wait in any case.)
    let loops = hs.iter().any(|&j| is_jump(&insns[j]) && jump_target(j, &insns[j]) <= j);
    let mut touched = 0u16;
    let mut stale_until = 0usize;
    for (k, &i) in hs.iter().enumerate() {
        if i > stale_until && !loops {
            touched = 0;
        }
        let m = insns[i];
        if dead[i] || m.code != class::ALU64 | alu::MOV | SRC_X || m.off != 0 || m.dst == m.src || m.src == FP {
            continue;
        }
        let (a, b) = (m.dst, m.src);
        if touched & (bit(a) | bit(b)) != 0 {
            continue;
        }
        let mut rewrites: Vec<(usize, Insn)> = Vec::new();
        let mut ok = false;
        let mut end = i;
        for &j in &hs[k + 1..] {
            let n = insns[j];
            if targets[j] || dead[j] {
                break;
            }
            let e = effect(&n);
            if e.uses & bit(a) != 0 {
                let Some(renamed) = read_as(&n, a, b) else { break };
                rewrites.push((j, renamed));
            }
            if live[j] & bit(a) == 0 || e.defs & bit(a) != 0 {
                // This `a` is dead from here on: done.
                ok = true;
                end = j;
                break;
            }
            if e.defs & bit(b) != 0 || n.class() == class::JMP && matches!(n.code & 0xf0, jmp::JA | jmp::CALL | jmp::EXIT) {
                break;
            }
            if is_jump(&n) && live_in_at(jump_target(j, &n)) & bit(a) != 0 {
                break;
            }
        }
        if !ok || rewrites.is_empty() {
            continue;
        }
        for (j, n) in rewrites {
            insns[j] = n;
        }
        dead[i] = true;
        changed = true;
        touched |= bit(a) | bit(b);
        stale_until = stale_until.max(end);
    }
    changed
}

/// The outcome of conditional jump `n` (64-bit, immediate operand) when its register holds
/// `v`; `None` for a jump this does not evaluate.
fn decide(n: &Insn, v: i64) -> Option<bool> {
    if n.class() != class::JMP || n.code & SRC_X != 0 {
        return None;
    }
    let (k, uv, uk) = (i64::from(n.imm), v as u64, i64::from(n.imm) as u64);
    Some(match n.code & 0xf0 {
        jmp::JEQ => v == k,
        jmp::JNE => v != k,
        jmp::JGT => uv > uk,
        jmp::JGE => uv >= uk,
        jmp::JLT => uv < uk,
        jmp::JLE => uv <= uk,
        jmp::JSGT => v > k,
        jmp::JSGE => v >= k,
        jmp::JSLT => v < k,
        jmp::JSLE => v <= k,
        jmp::JSET => v & k != 0,
        _ => return None,
    })
}

/// Jump threading. A jump to a `goto` goes where the `goto` goes. A jump to a test of a
/// register against a constant, `L: if t op K goto X`, where the jump's own path sets
/// `t` to a constant just before it, goes straight to where that constant leads (`X`, or
/// the instruction after the test); once no jump is left to `L`, the path falling into it
/// decides it too (the test becomes `goto X`, or nothing). This is how a 0/1 value made by
/// jumps (an inlined `bool` function, a comparison kept as a value) and then tested turns
/// back into jumps. The moves stay for whoever still reads `t`.
fn thread_jumps(insns: &mut [Insn], dead: &mut [bool]) -> bool {
    let hs = heads(insns);
    // Kept up to date as jumps move (a stale `true` only makes the scan below stop early).
    let mut targets = jump_targets(insns);
    let position: std::collections::HashMap<usize, usize> = hs.iter().enumerate().map(|(k, &i)| (i, k)).collect();
    // The constant `t` holds when control leaves instruction `at` (a jump, or the last one
    // before a fall-through), if straight-line code just before it sets one.
    let value_at = |insns: &[Insn], targets: &[bool], at: usize, t: u8| -> Option<i64> {
        let mut k = position[&at];
        loop {
            let n = insns[hs[k]];
            if effect(&n).defs & bit(t) != 0 {
                let movi = n.code == class::ALU64 | alu::MOV | SRC_K && n.off == 0;
                return movi.then_some(i64::from(n.imm));
            }
            if targets[hs[k]] || k == 0 {
                return None;
            }
            k -= 1;
        }
    };
    let mut changed = false;
    // Jumps to a `goto` (not to itself).
    for &j in &hs {
        if !is_jump(&insns[j]) || dead[j] {
            continue;
        }
        let mut to = jump_target(j, &insns[j]);
        let mut hops = 0;
        while to < insns.len() && insns[to].code == class::JMP | jmp::JA && !dead[to] && hops < 8 {
            let next = jump_target(to, &insns[to]);
            if next == to {
                break;
            }
            to = next;
            hops += 1;
        }
        if hops > 0 && to != jump_target(j, &insns[j]) {
            insns[j].off = offset_to(j, to);
            targets[to.min(insns.len())] = true;
            changed = true;
        }
    }
    // Jumps to a test their path decides.
    for &d in &hs {
        let test = insns[d];
        if dead[d] || !is_jump(&test) || test.code & 0xf0 == jmp::JA || decide(&test, 0).is_none() {
            continue;
        }
        let (t, x, after) = (test.dst, jump_target(d, &test), d + 1);
        let mut left = 0;
        for &j in &hs {
            let n = insns[j];
            if dead[j] || !is_jump(&n) || jump_target(j, &n) != d {
                continue;
            }
            match value_at(insns, &targets, j, t).and_then(|v| decide(&test, v)) {
                Some(taken) => {
                    let to = if taken { x } else { after };
                    insns[j].off = offset_to(j, to);
                    targets[to.min(insns.len())] = true;
                    changed = true;
                }
                None => left += 1,
            }
        }
        let k = position[&d];
        if left == 0 && k > 0 && !dead[hs[k - 1]] {
            let p = insns[hs[k - 1]];
            let falls = !(p.class() == class::JMP && matches!(p.code & 0xf0, jmp::JA | jmp::EXIT));
            if let Some(taken) = falls.then(|| value_at(insns, &targets, hs[k - 1], t).and_then(|v| decide(&test, v))).flatten() {
                if taken {
                    insns[d] = Insn { code: class::JMP | jmp::JA, dst: 0, src: 0, off: test.off, imm: 0 };
                } else {
                    dead[d] = true;
                }
                changed = true;
            }
        }
    }
    changed
}

/// The operation of the jump on the opposite condition (`None` for `jset`).
fn negated_jump(code: u8) -> Option<u8> {
    Some(match code & 0xf0 {
        jmp::JEQ => jmp::JNE,
        jmp::JNE => jmp::JEQ,
        jmp::JGT => jmp::JLE,
        jmp::JLE => jmp::JGT,
        jmp::JGE => jmp::JLT,
        jmp::JLT => jmp::JGE,
        jmp::JSGT => jmp::JSLE,
        jmp::JSLE => jmp::JSGT,
        jmp::JSGE => jmp::JSLT,
        jmp::JSLT => jmp::JSGE,
        _ => return None,
    })
}

/// A choice stored back where one side came from, as `max`/`min` into a field leave it:
///
/// ```text
/// y = *(base + off); ...; t = x; if C goto S; t = y; S: *(base + off) = t
/// ```
///
/// On the path that picks `y` the store writes what is there already, so only the other
/// path stores: `if !C goto after; *(base + off) = x` (or the mirror image when `x` is
/// the loaded side). Nothing in between may write memory or change `base` or `y`.
fn conditional_stores(insns: &mut [Insn], dead: &mut [bool]) -> bool {
    let hs = heads(insns);
    let targets = jump_targets(insns);
    let live = live_out(insns);
    let mut into = vec![0u32; insns.len() + 1];
    for &j in &hs {
        if is_jump(&insns[j]) {
            into[jump_target(j, &insns[j]).min(insns.len())] += 1;
        }
    }
    let mov = |n: &Insn| (n.code == class::ALU64 | alu::MOV | SRC_X && n.off == 0).then_some((n.dst, n.src));
    let mut changed = false;
    for (k, w) in hs.windows(4).enumerate() {
        let (i1, i2, i3, i4) = (w[0], w[1], w[2], w[3]);
        // Only the jump at `i2` may lead into the pattern from outside its straight line.
        if w.iter().any(|&i| dead[i]) || targets[i1] || targets[i2] || targets[i3] || into[i4] != 1 {
            continue;
        }
        let (Some((t, x)), Some((t3, y))) = (mov(&insns[i1]), mov(&insns[i3])) else { continue };
        let (c, st) = (insns[i2], insns[i4]);
        let cond = is_jump(&c) && c.code & 0xf0 != jmp::JA && jump_target(i2, &c) == i4;
        let store = st.class() == class::STX && st.code & 0xe0 == MODE_MEM && st.src == t && st.dst != t;
        if t != t3 || !cond || !store || effect(&c).uses & bit(t) != 0 || live[i4] & bit(t) != 0 || x == t || y == t {
            continue;
        }
        // Was register `r` loaded from the stored location, with nothing since changing the
        // memory, the base or `r`? Scan back from `i1` in straight-line code.
        let holds_field = |r: u8| -> bool {
            for &j in hs[..k].iter().rev() {
                let n = insns[j];
                let e = effect(&n);
                if n.class() == class::LDX && n.code & 0xe0 == MODE_MEM && n.dst == r {
                    return n.src == st.dst && n.off == st.off && n.code & 0x18 == st.code & 0x18 && n.src != r;
                }
                let writes = matches!(n.class(), class::ST | class::STX) || (n.class() == class::JMP && n.code & 0xf0 == jmp::CALL);
                if writes || e.defs & (bit(r) | bit(st.dst)) != 0 || targets[j] {
                    return false;
                }
            }
            false
        };
        // `t = x` is the taken side's value, `t = y` the fall-through's.
        let (keep_jump_on, stored) = if holds_field(y) && x != y {
            // The fall-through stores what is there: jump past the store unless C.
            (false, x)
        } else if holds_field(x) && x != y {
            (true, y)
        } else {
            continue;
        };
        let after = i4 + 1;
        if keep_jump_on {
            insns[i2].off = offset_to(i2, after);
        } else {
            let Some(neg) = negated_jump(c.code) else { continue };
            insns[i2].code = (c.code & !0xf0) | neg;
            insns[i2].off = offset_to(i2, after);
        }
        insns[i4].src = stored;
        dead[i1] = true;
        dead[i3] = true;
        changed = true;
        break;
    }
    changed
}

/// `if C goto L; goto X; L:` is `if !C goto X` (when nothing else jumps to the `goto`).
fn invert_jump_over_goto(insns: &mut [Insn], dead: &mut [bool]) -> bool {
    let hs = heads(insns);
    let targets = jump_targets(insns);
    let mut changed = false;
    for w in hs.windows(3) {
        let (i, j, l) = (w[0], w[1], w[2]);
        let (c, g) = (insns[i], insns[j]);
        if dead[i] || dead[j] || !is_jump(&c) || c.code & 0xf0 == jmp::JA || g.code != class::JMP | jmp::JA || targets[j] {
            continue;
        }
        if jump_target(i, &c) != l {
            continue;
        }
        let Some(negated) = negated_jump(c.code) else { continue };
        let x = jump_target(j, &g);
        insns[i].code = (c.code & !0xf0) | negated;
        insns[i].off = offset_to(i, x);
        dead[j] = true;
        changed = true;
    }
    changed
}

/// Returns of the same constant share one `r0 = K; exit`, the last: jumps to another go
/// there instead, and one that is also reached by falling into it becomes a jump there.
fn merge_returns(insns: &mut [Insn], dead: &mut [bool]) -> bool {
    let hs = heads(insns);
    let targets = jump_targets(insns);
    let is_ret = |k: usize| {
        let (m, x) = (insns[hs[k]], insns[hs[k + 1]]);
        m.code == class::ALU64 | alu::MOV | SRC_K && m.dst == 0 && x.code == class::JMP | jmp::EXIT && !targets[hs[k + 1]]
    };
    let rets: Vec<usize> = (0..hs.len().saturating_sub(1)).filter(|&k| is_ret(k)).collect();
    let mut changed = false;
    for &k in &rets {
        let Some(&keep) = rets.iter().rev().find(|&&q| insns[hs[q]].imm == insns[hs[k]].imm) else { continue };
        if keep == k {
            continue;
        }
        let (at, to) = (hs[k], hs[keep]);
        let falls_in = k > 0 && {
            let p = insns[hs[k - 1]];
            !(p.class() == class::JMP && matches!(p.code & 0xf0, jmp::JA | jmp::EXIT))
        };
        for &j in &hs {
            if is_jump(&insns[j]) && jump_target(j, &insns[j]) == at {
                insns[j].off = offset_to(j, to);
            }
        }
        if falls_in {
            insns[at] = Insn { code: class::JMP | jmp::JA, dst: 0, src: 0, off: offset_to(at, to), imm: 0 };
        } else {
            dead[at] = true;
        }
        dead[hs[k + 1]] = true;
        changed = true;
    }
    changed
}

/// Marks the instructions no path from the first one reaches (the verifier refuses them).
fn unreachable(insns: &[Insn], dead: &mut [bool]) -> bool {
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
    for i in heads(insns) {
        if !seen[i] && !dead[i] {
            dead[i] = true;
            changed = true;
        }
    }
    changed
}

/// Marks instructions whose results nobody reads, and jumps to the next instruction.
fn dead_code(insns: &[Insn], dead: &mut [bool]) -> bool {
    let live = live_out(insns);
    let mut changed = false;
    for i in heads(insns) {
        let n = insns[i];
        if dead[i] {
            continue;
        }
        let e = effect(&n);
        let useless = (e.pure && e.defs & live[i] == 0)
            || (n.code == class::ALU64 | alu::MOV | SRC_X && n.dst == n.src && n.off == 0)
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
    type Pass = fn(&mut [Insn], i16, &mut [bool]) -> bool;
    let passes: [Pass; 11] = [
        |insns, exposed, dead| forward(insns, exposed, dead),
        |insns, exposed, dead| dead_stores(insns, exposed, dead),
        |insns, _, dead| coalesce(insns, dead),
        |insns, _, dead| propagate_copies(insns, dead),
        |insns, _, dead| rename_after_copy(insns, dead),
        |insns, _, dead| thread_jumps(insns, dead),
        |insns, _, dead| invert_jump_over_goto(insns, dead),
        |insns, _, dead| conditional_stores(insns, dead),
        |insns, _, dead| merge_returns(insns, dead),
        |insns, _, dead| unreachable(insns, dead),
        |insns, _, dead| dead_code(insns, dead),
    ];
    for _ in 0..16 {
        let exposed = exposed_from(&c.insns);
        let mut changed = false;
        for pass in passes {
            let mut dead = vec![false; c.insns.len()];
            if pass(&mut c.insns, exposed, &mut dead) {
                compact(c, &dead);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scl_sema::hir::Loc;

    fn mov(d: u8, s: u8) -> Insn {
        Insn { code: class::ALU64 | alu::MOV | SRC_X, dst: d, src: s, off: 0, imm: 0 }
    }
    fn movi(d: u8, v: i32) -> Insn {
        Insn { code: class::ALU64 | alu::MOV | SRC_K, dst: d, src: 0, off: 0, imm: v }
    }
    fn addi(d: u8, v: i32) -> Insn {
        Insn { code: class::ALU64 | alu::ADD | SRC_K, dst: d, src: 0, off: 0, imm: v }
    }
    fn ldx(d: u8, s: u8, off: i16) -> Insn {
        Insn { code: class::LDX | size::DW | MODE_MEM, dst: d, src: s, off, imm: 0 }
    }
    fn stx(d: u8, off: i16, s: u8) -> Insn {
        Insn { code: class::STX | size::DW | MODE_MEM, dst: d, src: s, off, imm: 0 }
    }
    fn jeq(d: u8, v: i32, off: i16) -> Insn {
        Insn { code: class::JMP | jmp::JEQ | SRC_K, dst: d, src: 0, off, imm: v }
    }
    fn call(id: i32) -> Insn {
        Insn { code: class::JMP | jmp::CALL, dst: 0, src: 0, off: 0, imm: id }
    }
    fn exit() -> Insn {
        Insn { code: class::JMP | jmp::EXIT, dst: 0, src: 0, off: 0, imm: 0 }
    }

    fn clean(insns: Vec<Insn>) -> Vec<Insn> {
        let mut c = Compiled { insns, relocs: Vec::new(), lines: vec![(0, Loc::default())], stack_size: 16 };
        run(&mut c);
        c.insns
    }

    #[test]
    fn a_value_spilled_and_reloaded_stays_in_its_register() {
        // r1 = ctx[0]; spill; reload into r0; return it. The slot is never read again.
        let out = clean(vec![ldx(1, 1, 0), stx(FP, -8, 1), ldx(2, FP, -8), mov(0, 2), exit()]);
        assert_eq!(out, vec![ldx(0, 1, 0), exit()]);
    }

    #[test]
    fn a_jump_target_ends_what_is_known_about_slots() {
        // The reload at 4 is reached from the jump at 2 too, where the slot holds r3.
        let insns = vec![
            stx(FP, -8, 3),
            movi(0, 0),
            jeq(1, 0, 1),
            stx(FP, -8, 4),
            ldx(0, FP, -8),
            exit(),
        ];
        let out = clean(insns.clone());
        assert_eq!(out[out.len() - 2], ldx(0, FP, -8), "{out:?}");
    }

    #[test]
    fn slots_a_helper_can_reach_are_not_forwarded_across_the_call() {
        // The buffer at -8 is passed by address to copy_from_user, which writes it.
        let out = clean(vec![
            stx(FP, -8, 6),
            mov(1, FP),
            addi(1, -8),
            call(148),
            ldx(0, FP, -8),
            exit(),
        ]);
        assert_eq!(out[0], stx(FP, -8, 6), "the store a helper reads stays: {out:?}");
        assert_eq!(out[out.len() - 2], ldx(0, FP, -8), "{out:?}");
    }

    #[test]
    fn slots_below_every_handed_out_address_survive_stores_through_pointers() {
        // -16 is below the exposed key at -8: a store through r0 cannot reach it.
        let out = clean(vec![
            stx(FP, -16, 6),
            mov(2, FP),
            addi(2, -8),
            call(1),
            stx(0, 0, 6),
            ldx(0, FP, -16),
            exit(),
        ]);
        assert!(!out.iter().any(|i| *i == ldx(0, FP, -16)), "{out:?}");
        assert!(!out.iter().any(|i| *i == stx(FP, -16, 6)), "the dead spill goes: {out:?}");
    }

    #[test]
    fn jumps_lines_and_relocations_follow_deleted_instructions() {
        let map = Insn { code: class::LD | size::DW | MODE_IMM, dst: 1, src: 1, off: 0, imm: 0 };
        let hi = Insn { code: 0, dst: 0, src: 0, off: 0, imm: 0 };
        let loc = |n: u32| {
            let mut l = Loc::default();
            l.span.start = n;
            l
        };
        let mut c = Compiled {
            insns: vec![
                stx(FP, -16, 1),      // 0: dead store
                mov(3, 3),            // 1: no-op
                jeq(1, 0, 3),         // 2: to 6
                map,                  // 3-4
                hi,
                movi(0, 1),           // 5
                movi(0, 0),           // 6
                exit(),               // 7
            ],
            relocs: vec![(3, crate::RelocTarget::Rodata(0))],
            lines: vec![(0, loc(1)), (2, loc(2)), (6, loc(3))],
            stack_size: 16,
        };
        run(&mut c);
        // r1 = map is dead (never read) but stays: it carries a relocation.
        assert_eq!(c.insns[0], jeq(1, 0, 2));
        assert_eq!(c.relocs, vec![(1, crate::RelocTarget::Rodata(0))]);
        assert_eq!(c.insns[3], movi(0, 0));
        assert_eq!(c.lines.iter().map(|l| (l.0, l.1.span.start)).collect::<Vec<_>>(), vec![(0, 2), (3, 3)]);
    }

    fn jne(d: u8, v: i32, off: i16) -> Insn {
        Insn { code: class::JMP | jmp::JNE | SRC_K, dst: d, src: 0, off, imm: v }
    }
    fn ja(off: i16) -> Insn {
        Insn { code: class::JMP | jmp::JA, dst: 0, src: 0, off, imm: 0 }
    }
    fn ldxb(d: u8, s: u8, off: i16) -> Insn {
        Insn { code: class::LDX | size::B | MODE_MEM, dst: d, src: s, off, imm: 0 }
    }

    #[test]
    fn a_copy_read_past_a_null_check_is_read_from_the_original() {
        // r4 = r0 (a lookup's result); if r4 == 0 goto out; return *(u8 *)(r4 + 0).
        let out = clean(vec![call(1), mov(4, 0), jeq(4, 0, 2), ldxb(0, 4, 0), exit(), movi(0, 0), exit()]);
        assert_eq!(out, vec![call(1), jeq(0, 0, 2), ldxb(0, 0, 0), exit(), movi(0, 0), exit()]);
    }

    #[test]
    fn a_copy_still_read_where_a_jump_lands_stays() {
        // r4 is read at the jump's target too, past the straight line.
        let insns = vec![call(1), mov(4, 0), jeq(1, 0, 2), ldxb(0, 4, 0), exit(), mov(0, 4), exit()];
        let out = clean(insns.clone());
        assert!(out.contains(&mov(4, 0)), "{out:?}");
    }

    #[test]
    fn a_flag_made_by_a_jump_and_tested_at_once_becomes_one_jump() {
        // r3 = 1; if r1 != 0 goto +1; r3 = 0; if r3 == 0 goto L; r0 = 7; exit; L: r0 = 9; exit
        let out = clean(vec![movi(3, 1), jne(1, 0, 1), movi(3, 0), jeq(3, 0, 2), movi(0, 7), exit(), movi(0, 9), exit()]);
        // The flag is gone: r1 != 0 goes on to `r0 = 7`, anything else to `r0 = 9`.
        assert_eq!(out, vec![jeq(1, 0, 2), movi(0, 7), exit(), movi(0, 9), exit()]);
    }

    #[test]
    fn a_jump_over_a_goto_is_the_inverse_jump() {
        let out = clean(vec![jne(1, 0, 1), ja(2), movi(0, 7), exit(), movi(0, 9), exit()]);
        assert_eq!(out, vec![jeq(1, 0, 2), movi(0, 7), exit(), movi(0, 9), exit()]);
    }

    #[test]
    fn a_helper_reads_only_its_own_arguments() {
        // r3 set before ktime_get_ns (no arguments) and overwritten after: dead.
        let out = clean(vec![movi(3, 5), call(5), movi(3, 1), mov(0, 3), exit()]);
        assert_eq!(out, vec![call(5), movi(0, 1), exit()]);
    }

    fn ldxw(d: u8, s: u8, off: i16) -> Insn {
        Insn { code: class::LDX | size::W | MODE_MEM, dst: d, src: s, off, imm: 0 }
    }
    fn stxw(d: u8, off: i16, s: u8) -> Insn {
        Insn { code: class::STX | size::W | MODE_MEM, dst: d, src: s, off, imm: 0 }
    }
    fn stw(d: u8, off: i16, v: i32) -> Insn {
        Insn { code: class::ST | size::W | MODE_MEM, dst: d, src: 0, off, imm: v }
    }

    #[test]
    fn a_map_value_field_just_stored_is_not_loaded_again() {
        // *(u32 *)(r8 + 0) = r2 (r2 from a 32-bit load); r0 = *(u32 *)(r8 + 0)
        let out = clean(vec![ldxw(2, 1, 0), stxw(8, 0, 2), ldxw(0, 8, 0), exit()]);
        assert_eq!(out, vec![ldxw(2, 1, 0), stxw(8, 0, 2), mov(0, 2), exit()]);
    }

    #[test]
    fn a_store_through_another_pointer_or_a_call_forgets_map_values() {
        let other = clean(vec![ldxw(2, 1, 0), stxw(8, 0, 2), stw(7, 0, 5), ldxw(0, 8, 0), exit()]);
        assert_eq!(other[3], ldxw(0, 8, 0), "r7 may point at the same value: {other:?}");
        // map_update_elem may change a value in place.
        let call_between = clean(vec![ldxw(6, 1, 0), stxw(8, 0, 6), call(2), ldxw(0, 8, 0), exit()]);
        assert_eq!(call_between[3], ldxw(0, 8, 0), "{call_between:?}");
        // ktime_get_ns changes no memory.
        let clock = clean(vec![ldxw(6, 1, 0), stxw(8, 0, 6), call(5), ldxw(0, 8, 0), exit()]);
        assert_eq!(clock[3], mov(0, 6), "{clock:?}");
    }

    #[test]
    fn a_key_a_lookup_only_read_is_not_stored_again() {
        // *(u32 *)(r10 - 8) = r7; lookup; *(u32 *)(r10 - 8) = r7 again; lookup
        let key = |out: &mut Vec<Insn>| out.extend([mov(2, FP), addi(2, -8), call(1)]);
        let mut insns = vec![ldxw(7, 1, 0), stxw(FP, -8, 7)];
        key(&mut insns);
        insns.push(stxw(FP, -8, 7));
        key(&mut insns);
        insns.push(exit());
        let out = clean(insns);
        assert_eq!(out.iter().filter(|n| **n == stxw(FP, -8, 7)).count(), 1, "{out:?}");
    }

    #[test]
    fn a_stack_store_where_a_pointer_reaches_forgets_what_was_read_through_it() {
        // r4 = r10 - 16 is handed out; a read through it, a store at r10 - 12, a read again.
        let out = clean(vec![mov(4, FP), addi(4, -16), ldxw(1, 4, 4), stw(FP, -12, 9), ldxw(0, 4, 4), stxw(FP, -20, 1), exit()]);
        assert!(out.contains(&ldxw(0, 4, 4)), "{out:?}");
    }

    #[test]
    fn returns_of_the_same_value_share_one_exit() {
        // if r1 == 0 goto A; if r2 == 0 goto B; r0 = 1; exit; A: r0 = 0; exit; B: r0 = 0; exit
        let out = clean(vec![jeq(1, 0, 3), jeq(2, 0, 4), movi(0, 1), exit(), movi(0, 0), exit(), movi(0, 0), exit()]);
        assert_eq!(out, vec![jeq(1, 0, 3), jeq(2, 0, 2), movi(0, 1), exit(), movi(0, 0), exit()]);
    }

    #[test]
    fn context_fields_stay_known_across_calls_and_stores_through_pointers() {
        // r6 = ctx; r7 = ctx.tid; lookup; *(r0) = 1; r0 = ctx.tid again
        let out = clean(vec![mov(6, 1), ldxw(7, 6, 24), stxw(FP, -8, 7), call(1), stw(0, 0, 1), ldxw(0, 6, 24), stxw(FP, -16, 7), exit()]);
        assert!(out.contains(&mov(0, 7)) && !out.contains(&ldxw(0, 6, 24)), "{out:?}");
    }

    fn ld64(d: u8, v: i32) -> Insn {
        Insn { code: class::LD | size::DW | MODE_IMM, dst: d, src: 0, off: 0, imm: v }
    }

    #[test]
    fn a_flag_set_on_three_paths_and_tested_once_becomes_jumps() {
        // if r1 != 0 goto A; r4 = 1; goto T; A: if r2 != 0 goto B; r4 = 0; goto T;
        // B: r4 = 1; T: if r4 == 0 goto OUT; r0 = 7; exit; OUT: r0 = 9; exit
        let out = clean(vec![
            jne(1, 0, 2),
            movi(4, 1),
            ja(4),
            jne(2, 0, 2),
            movi(4, 0),
            ja(1),
            movi(4, 1),
            jeq(4, 0, 2),
            movi(0, 7),
            exit(),
            movi(0, 9),
            exit(),
        ]);
        assert!(out.iter().all(|n| n.dst != 4), "the flag is gone: {out:?}");
        assert!(out.len() <= 8, "{out:?}");
    }

    #[test]
    fn unreachable_code_goes_with_both_slots_of_a_wide_load_and_its_relocation() {
        // goto +3 skips a ld_imm64 (two slots) and a move nothing reaches.
        let mut c = Compiled {
            insns: vec![ja(3), ld64(1, 0), Insn { code: 0, dst: 0, src: 0, off: 0, imm: 0 }, movi(0, 1), movi(0, 0), exit()],
            relocs: vec![(1, crate::RelocTarget::Rodata(0))],
            lines: vec![(0, Loc::default())],
            stack_size: 0,
        };
        run(&mut c);
        assert_eq!(c.insns, vec![movi(0, 0), exit()]);
        assert!(c.relocs.is_empty());
    }

    fn jlt_x(d: u8, s: u8, off: i16) -> Insn {
        Insn { code: class::JMP | jmp::JLT | SRC_X, dst: d, src: s, off, imm: 0 }
    }
    fn jge_x(d: u8, s: u8, off: i16) -> Insn {
        Insn { code: class::JMP | jmp::JGE | SRC_X, dst: d, src: s, off, imm: 0 }
    }

    #[test]
    fn max_into_the_field_it_read_stores_only_when_it_changes() {
        // r1 = field; r2 = r4; if r1 < r4 goto S; r2 = r1; S: field = r2
        let out = clean(vec![ldx(1, 8, 40), mov(2, 4), jlt_x(1, 4, 1), mov(2, 1), stx(8, 40, 2), movi(0, 0), exit()]);
        assert_eq!(out, vec![ldx(1, 8, 40), jge_x(1, 4, 1), stx(8, 40, 4), movi(0, 0), exit()]);
    }

    #[test]
    fn a_choice_stored_elsewhere_or_reached_from_elsewhere_stays() {
        // Stored to another field: both sides are real stores.
        let other = vec![ldx(1, 8, 40), mov(2, 4), jlt_x(1, 4, 1), mov(2, 1), stx(8, 48, 2), movi(0, 0), exit()];
        assert_eq!(clean(other.clone()).len(), other.len());
        // A store in between may have changed the field.
        let between = vec![ldx(1, 8, 40), stx(7, 0, 3), mov(2, 4), jlt_x(1, 4, 1), mov(2, 1), stx(8, 40, 2), movi(0, 0), exit()];
        assert_eq!(clean(between.clone()).len(), between.len());
    }

    #[test]
    fn a_copy_of_a_dying_value_becomes_the_value_past_a_jump() {
        // r1 = field; if r1 == 0 goto out; r2 = r1; w2 -= 1; field = r2; r0 = r2; exit
        let sub = Insn { code: class::ALU | alu::SUB | SRC_K, dst: 2, src: 0, off: 0, imm: 1 };
        let out = clean(vec![ldxw(1, 8, 0), jeq(1, 0, 5), mov(2, 1), sub, stxw(8, 0, 2), mov(0, 2), exit(), movi(0, 0), exit()]);
        let sub1 = Insn { dst: 1, ..sub };
        assert_eq!(out, vec![ldxw(1, 8, 0), jeq(1, 0, 4), sub1, stxw(8, 0, 1), mov(0, 1), exit(), movi(0, 0), exit()]);
    }
}
