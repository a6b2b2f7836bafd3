//! Forwarding of known memory contents, dead stack stores and conditional stores.

use super::jumps::negated_jump;
use super::*;
use rustc_hash::FxHashMap as HashMap;

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
fn context_register(insns: &[Insn], hs: &[usize]) -> Option<u8> {
    let written = |r: u8, skip: usize| hs.iter().filter(|&&i| i != skip).any(|&i| effect(&insns[i]).defs & bit(r) != 0);
    if !written(1, usize::MAX) {
        return Some(1);
    }
    let first = insns.first()?;
    let (r, _) = reg_move(first).filter(|&(a, b)| b == 1 && a != 1 && a != FP)?;
    (!written(r, 0)).then_some(r)
}

/// Store-to-load and load-to-load forwarding on stack slots, along every path: facts meet
/// where forward jumps land; a loop header starts from nothing. Returns true on a change.
pub(super) fn forward(insns: &mut [Insn], an: &Analyses, dead: &mut [bool]) -> bool {
    let exposed = an.exposed(insns);
    let hs = an.heads(insns);
    let ctx = context_register(insns, hs);
    let targets = an.targets(insns);
    let mut back = vec![false; insns.len() + 1];
    for &j in hs {
        if is_jump(&insns[j]) {
            let t = jump_target(j, &insns[j]);
            if t <= j {
                back[t] = true;
            }
        }
    }
    let mut pending: HashMap<usize, Facts> = HashMap::default();
    // The facts on the fall-through path into the next instruction (None: there is none).
    let mut fall: Option<Facts> = Some(Facts::default());
    let mut changed = false;
    for &i in hs {
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
pub(super) fn dead_stores(insns: &[Insn], an: &Analyses, dead: &mut [bool]) -> bool {
    let exposed = an.exposed(insns);
    let hs = an.heads(insns);
    let mut reads: Vec<(i16, u8)> = Vec::new();
    for &i in hs {
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
    for &i in hs {
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

/// A choice stored back where one side came from, as `max`/`min` into a field leave it:
///
/// ```text
/// y = *(base + off); ...; t = x; if C goto S; t = y; S: *(base + off) = t
/// ```
///
/// On the path that picks `y` the store writes what is there already, so only the other
/// path stores: `if !C goto after; *(base + off) = x` (or the mirror image when `x` is
/// the loaded side). Nothing in between may write memory or change `base` or `y`.
pub(super) fn conditional_stores(insns: &mut [Insn], an: &Analyses, dead: &mut [bool]) -> bool {
    let hs = an.heads(insns);
    let targets = an.targets(insns);
    let live = an.live_out(insns);
    let mut into = vec![0u32; insns.len() + 1];
    for &j in hs {
        if is_jump(&insns[j]) {
            into[jump_target(j, &insns[j]).min(insns.len())] += 1;
        }
    }
    let mut changed = false;
    for (k, w) in hs.windows(4).enumerate() {
        let (i1, i2, i3, i4) = (w[0], w[1], w[2], w[3]);
        // Only the jump at `i2` may lead into the pattern from outside its straight line.
        if w.iter().any(|&i| dead[i]) || targets[i1] || targets[i2] || targets[i3] || into[i4] != 1 {
            continue;
        }
        let (Some((t, x)), Some((t3, y))) = (reg_move(&insns[i1]), reg_move(&insns[i3])) else { continue };
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

/// An atomic add whose fetched old value nobody reads becomes a plain atomic add, as clang
/// emits for a discarded `__sync_fetch_and_add` (on x86 the JIT's `lock add` instead of
/// `lock xadd`).
pub(super) fn unfetched_atomics(insns: &mut [Insn], an: &Analyses) -> bool {
    let live = an.live_out(insns);
    let mut changed = false;
    for &i in an.heads(insns) {
        let n = insns[i];
        let fetch_add = n.class() == class::STX && n.code & 0xe0 == MODE_ATOMIC && n.imm == i32::from(alu::ADD) | ATOMIC_FETCH;
        if fetch_add && live[i] & bit(n.src) == 0 {
            insns[i].imm = i32::from(alu::ADD);
            changed = true;
        }
    }
    changed
}
