//! Copies: coalescing, propagation, and renaming past jumps.

use super::*;

/// `a = b` (64-bit) where `b` dies: the instruction that set `b` sets `a` instead.
pub(super) fn coalesce(insns: &mut [Insn], an: &Analyses, dead: &mut [bool]) -> bool {
    let targets = an.targets(insns);
    let live = an.live_out(insns);
    let hs = an.heads(insns);
    let mut changed = false;
    for (k, &j) in hs.iter().enumerate() {
        let Some((a, b)) = reg_move(&insns[j]).filter(|_| !dead[j]) else { continue };
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

/// Registers whose liveness a rewrite of a move changed, and up to where: liveness
/// changes only between the move and the last instruction the rewrite touched, so later
/// moves before that point that involve them wait for the next round. In a program with
/// loops a jump back may land in that stretch, so there they wait in any case.
struct Stale {
    loops: bool,
    touched: u16,
    until: usize,
}

impl Stale {
    fn new(insns: &[Insn], hs: &[usize]) -> Stale {
        let loops = hs.iter().any(|&j| is_jump(&insns[j]) && jump_target(j, &insns[j]) <= j);
        Stale { loops, touched: 0, until: 0 }
    }

    /// True if a move `a = b` at `i` must wait.
    fn blocks(&mut self, i: usize, a: u8, b: u8) -> bool {
        if i > self.until && !self.loops {
            self.touched = 0;
        }
        self.touched & (bit(a) | bit(b)) != 0
    }

    /// A move `a = b` was rewritten up to instruction `end`.
    fn note(&mut self, a: u8, b: u8, end: usize) {
        self.touched |= bit(a) | bit(b);
        self.until = self.until.max(end);
    }
}

/// `a = b` where `b` dies: the code that follows uses `b` for `a`, reads and writes, up to
/// where this `a` dies, in straight-line code (a conditional jump on the way may leave if
/// `a` is dead where it lands), and the move goes. This is the two-address copy
/// (`t = x; t -= 1` with `x` dying) across the jumps that `coalesce` stops at.
pub(super) fn rename_after_copy(insns: &mut [Insn], an: &Analyses, dead: &mut [bool]) -> bool {
    let targets = an.targets(insns);
    let live = an.live_out(insns);
    let live_at = an.live_in(insns);
    let hs = an.heads(insns);
    let mut changed = false;
    let mut stale = Stale::new(insns, hs);
    for (k, &i) in hs.iter().enumerate() {
        let Some((a, b)) = reg_move(&insns[i]).filter(|&(a, b)| !dead[i] && a != b && a != FP && b != FP) else { continue };
        if live[i] & bit(b) != 0 || stale.blocks(i, a, b) {
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
        stale.note(a, b, end);
    }
    changed
}

/// Copy propagation: `a = b`, where every later read of this `a` is in straight-line code
/// after it (a conditional jump on the way may leave if `a` is dead where it lands) and
/// neither register changes before the last one: those reads read `b`, and the move goes.
pub(super) fn propagate_copies(insns: &mut [Insn], an: &Analyses, dead: &mut [bool]) -> bool {
    let targets = an.targets(insns);
    let live = an.live_out(insns);
    let live_at = an.live_in(insns);
    let live_in_at = |t: usize| live_at.get(t).copied().unwrap_or(0);
    let hs = an.heads(insns);
    let mut changed = false;
    let mut stale = Stale::new(insns, hs);
    for (k, &i) in hs.iter().enumerate() {
        let Some((a, b)) = reg_move(&insns[i]).filter(|&(a, b)| !dead[i] && a != b && b != FP) else { continue };
        if stale.blocks(i, a, b) {
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
        stale.note(a, b, end);
    }
    changed
}
