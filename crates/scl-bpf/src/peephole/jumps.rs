//! Jumps: threading over known values, inverted jumps over a `goto`, shared returns.

use super::*;
use rustc_hash::FxHashMap as HashMap;

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
pub(super) fn thread_jumps(insns: &mut [Insn], an: &Analyses, dead: &mut [bool]) -> bool {
    let hs = an.heads(insns);
    // Kept up to date as jumps move (a stale `true` only makes the scan below stop early).
    let mut targets = an.targets(insns).to_vec();
    let position: HashMap<usize, usize> = hs.iter().enumerate().map(|(k, &i)| (i, k)).collect();
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
    for &j in hs {
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
    for &d in hs {
        let test = insns[d];
        if dead[d] || !is_jump(&test) || test.code & 0xf0 == jmp::JA || decide(&test, 0).is_none() {
            continue;
        }
        let (t, x, after) = (test.dst, jump_target(d, &test), d + 1);
        let mut left = 0;
        for &j in hs {
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
pub(super) fn negated_jump(code: u8) -> Option<u8> {
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

/// `if C goto L; goto X; L:` is `if !C goto X` (when nothing else jumps to the `goto`).
pub(super) fn invert_jump_over_goto(insns: &mut [Insn], an: &Analyses, dead: &mut [bool]) -> bool {
    let hs = an.heads(insns);
    let targets = an.targets(insns);
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
pub(super) fn merge_returns(insns: &mut [Insn], an: &Analyses, dead: &mut [bool]) -> bool {
    let hs = an.heads(insns);
    let targets = an.targets(insns);
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
        for &j in hs {
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
