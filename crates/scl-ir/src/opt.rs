//! Clean-up passes on a function: folding constants (and branches on them), removing
//! blocks that no path reaches (the kernel verifier refuses unreachable code), folding
//! jumps to empty blocks, and dropping instructions whose results nobody uses.

use crate::ir::*;
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

/// The result of `op` on constants with BPF's semantics (`x / 0 = 0`, `x % 0 = x`, a
/// 32-bit result zero-extended); `None` for a shift by the width or more, which is left
/// to run.
pub fn eval_bin(op: BinOp, width: Width, a: i64, b: i64) -> Option<i64> {
    let bits = if width == Width::W32 { 32 } else { 64 };
    let (ua, ub) = match width {
        Width::W32 => (a as u32 as u64, b as u32 as u64),
        Width::W64 => (a as u64, b as u64),
    };
    let (sa, sb) = match width {
        Width::W32 => (i64::from(a as i32), i64::from(b as i32)),
        Width::W64 => (a, b),
    };
    let r: u64 = match op {
        BinOp::Add => ua.wrapping_add(ub),
        BinOp::Sub => ua.wrapping_sub(ub),
        BinOp::Mul => ua.wrapping_mul(ub),
        BinOp::UDiv => ua.checked_div(ub).unwrap_or(0),
        BinOp::URem => ua.checked_rem(ub).unwrap_or(ua),
        BinOp::SDiv if sb == 0 => 0,
        BinOp::SRem if sb == 0 => sa as u64,
        BinOp::SDiv if width == Width::W32 => (sa as i32).wrapping_div(sb as i32) as u32 as u64,
        BinOp::SRem if width == Width::W32 => (sa as i32).wrapping_rem(sb as i32) as u32 as u64,
        BinOp::SDiv => sa.wrapping_div(sb) as u64,
        BinOp::SRem => sa.wrapping_rem(sb) as u64,
        BinOp::And => ua & ub,
        BinOp::Or => ua | ub,
        BinOp::Xor => ua ^ ub,
        BinOp::Shl | BinOp::LShr | BinOp::AShr if ub >= bits => return None,
        BinOp::Shl => ua << ub,
        BinOp::LShr => ua >> ub,
        BinOp::AShr if width == Width::W32 => ((sa as i32) >> ub) as u32 as u64,
        BinOp::AShr => (sa >> ub) as u64,
    };
    Some(match width {
        Width::W32 => (r as u32) as i64,
        Width::W64 => r as i64,
    })
}

/// Whether `a cond b` holds for 64-bit values.
pub fn eval_cond(cond: Cond, a: i64, b: i64) -> bool {
    let (ua, ub) = (a as u64, b as u64);
    match cond {
        Cond::Eq => a == b,
        Cond::Ne => a != b,
        Cond::ULt => ua < ub,
        Cond::ULe => ua <= ub,
        Cond::UGt => ua > ub,
        Cond::UGe => ua >= ub,
        Cond::SLt => a < b,
        Cond::SLe => a <= b,
        Cond::SGt => a > b,
        Cond::SGe => a >= b,
    }
}

/// Constant folding within each block (values never leave their block): an operation
/// whose operands are all constants becomes a constant, a `select` on constants a copy,
/// a branch on a constant a jump, and an unsigned division or remainder by a power of two
/// a shift or a mask. Run [`thread_jumps`] after it to drop what became
/// unreachable.
pub fn fold_constants(f: &mut Function) {
    for b in f.layout.clone() {
        let mut known: HashMap<Value, i64> = HashMap::default();
        let mut insts = Vec::with_capacity(f.blocks[b].insts.len());
        for i in f.blocks[b].insts.clone() {
            if let Some((op, imm)) = strength_reduced(&f.insts[i], &known) {
                // `x / 2^k` is `x >> k` and `x % 2^k` is `x & (2^k - 1)` for unsigned `x`: a
                // shift or a mask instead of a division (the JIT's `div` costs tens of cycles).
                let InstData::Bin { width, dst, a, .. } = f.insts[i] else { unreachable!("strength_reduced takes Bin") };
                let c = f.values.push(ValueData { ty: ValTy::Int });
                let ci = f.insts.push(InstData::Const { dst: c, imm });
                f.locs[ci] = f.locs[i];
                insts.push(ci);
                known.insert(c, imm);
                f.insts[i] = InstData::Bin { op, width, dst, a, b: c };
            }
            insts.push(i);
            let k = |v: &Value| known.get(v).copied();
            let folded = match &f.insts[i] {
                InstData::Const { dst, imm } => {
                    known.insert(*dst, *imm);
                    None
                }
                InstData::Bin { op, width, dst, a, b } => k(a).zip(k(b)).and_then(|(x, y)| eval_bin(*op, *width, x, y)).map(|v| (*dst, v)),
                InstData::Neg { width, dst, a } => k(a).and_then(|x| eval_bin(BinOp::Sub, *width, 0, x)).map(|v| (*dst, v)),
                InstData::Cmp { cond, dst, a, b } => k(a).zip(k(b)).map(|(x, y)| (*dst, i64::from(eval_cond(*cond, x, y)))),
                InstData::Ext { bits, signed, dst, a } => k(a).map(|x| {
                    let shift = 64 - u32::from(*bits);
                    let v = if *signed { (x << shift) >> shift } else { ((x as u64) << shift >> shift) as i64 };
                    (*dst, v)
                }),
                InstData::Copy { dst, a } => k(a).map(|x| (*dst, x)),
                InstData::Select { cond, dst, x, y, a, b } => {
                    if let (Some(xv), Some(yv)) = (k(x), k(y)) {
                        let pick = if eval_cond(*cond, xv, yv) { *a } else { *b };
                        match k(&pick) {
                            Some(v) => Some((*dst, v)),
                            None => {
                                f.insts[i] = InstData::Copy { dst: *dst, a: pick };
                                None
                            }
                        }
                    } else {
                        None
                    }
                }
                _ => None,
            };
            if let Some((dst, imm)) = folded {
                f.insts[i] = InstData::Const { dst, imm };
                known.insert(dst, imm);
            }
        }
        f.blocks[b].insts = insts;
        if let Some(Terminator::Branch { cond, then, else_ }) = f.blocks[b].term.clone() {
            if let Some(v) = known.get(&cond) {
                f.blocks[b].term = Some(Terminator::Jump(if *v != 0 { then } else { else_ }));
            }
        }
    }
}

/// The shift or mask that does what `inst`, an unsigned division or remainder by a known
/// power of two above 1, does, with its immediate.
fn strength_reduced(inst: &InstData, known: &HashMap<Value, i64>) -> Option<(BinOp, i64)> {
    let InstData::Bin { op: op @ (BinOp::UDiv | BinOp::URem), width, b, .. } = inst else { return None };
    let c = *known.get(b)? as u64;
    let c = if *width == Width::W32 { c & 0xffff_ffff } else { c };
    if c < 2 || !c.is_power_of_two() {
        return None;
    }
    Some(match op {
        BinOp::UDiv => (BinOp::LShr, i64::from(c.trailing_zeros())),
        _ => (BinOp::And, (c - 1) as i64),
    })
}

/// Bits of a value that something reads: `u64::MAX` when unknown.
fn low_bits(n: u32) -> u64 {
    if n >= 64 {
        u64::MAX
    } else {
        (1u64 << n) - 1
    }
}

/// Constants of which only the low 32 bits are ever used become the sign-extension of
/// those bits, which fits an instruction's immediate (`x * 0x9e37_79b9` whose product only
/// feeds `% 128`: no `ld_imm64`). A backward analysis of the bits each value's users read
/// (demanded bits), through slots: `+`, `-`, `*` and negation read as many low bits of
/// their operands as their result's highest read bit; `&`, `|`, `^` the same bits; a
/// constant shift moves them; `% 2^k` and `& K` read only the low bits; a store of `n`
/// bytes the low `n` bytes; everything else every bit.
pub fn narrow_constants(f: &mut Function) {
    let consts: HashMap<Value, i64> = f
        .insts
        .values()
        .filter_map(|i| match i {
            InstData::Const { dst, imm } => Some((*dst, *imm)),
            _ => None,
        })
        .collect();
    // A slot that is not a plain variable is read whole by something this does not follow
    // (a helper reads a key, a copy, an index into it).
    let (addr_of, plain) = f.plain_slots();
    let all = u64::MAX;
    let mut demand: HashMap<Value, u64> = HashMap::default();
    let mut slot_demand: HashMap<Slot, u64> = f.slots.keys().filter(|s| !plain.contains_key(s)).map(|s| (s, all)).collect();
    let total = |d: &HashMap<Value, u64>, s: &HashMap<Slot, u64>| -> u64 {
        // Demands only grow: their bit count tells whether a round changed anything.
        d.values().chain(s.values()).map(|m| u64::from(m.count_ones())).sum()
    };
    loop {
        let before = (demand.len(), slot_demand.len(), total(&demand, &slot_demand));
        for b in f.layout.clone() {
            match &f.blocks[b].term {
                Some(Terminator::Branch { cond: v, .. }) | Some(Terminator::Return(v)) => {
                    *demand.entry(*v).or_insert(0) |= all;
                }
                _ => {}
            }
            for &i in f.blocks[b].insts.iter().rev() {
                let data = &f.insts[i];
                let d = data.dst().map_or(0, |v| demand.get(&v).copied().unwrap_or(0));
                let below = |d: u64| low_bits(64 - d.leading_zeros());
                let mut need = |v: Value, m: u64| *demand.entry(v).or_insert(0) |= m;
                match data {
                    InstData::Bin { op, width, a, b, .. } => {
                        let w = if *width == Width::W32 { low_bits(32) } else { all };
                        let kb = consts.get(b).copied();
                        let (ma, mb) = match op {
                            BinOp::Add | BinOp::Sub | BinOp::Mul => (below(d), below(d)),
                            BinOp::And => (d & kb.map_or(all, |k| k as u64), d),
                            BinOp::Or | BinOp::Xor => (d, d),
                            BinOp::URem if kb.is_some_and(|k| k > 0 && (k as u64).is_power_of_two()) => {
                                (d & (kb.unwrap_or(1) as u64 - 1), all)
                            }
                            BinOp::Shl if kb.is_some_and(|k| (0..64).contains(&k)) => (d >> kb.unwrap_or(0), all),
                            BinOp::LShr if kb.is_some_and(|k| (0..64).contains(&k)) => (d << kb.unwrap_or(0), all),
                            _ => (all, all),
                        };
                        need(*a, ma & w);
                        need(*b, mb & w);
                    }
                    InstData::Neg { a, .. } => need(*a, below(d)),
                    InstData::Copy { a, .. } => need(*a, d),
                    InstData::Ext { bits, a, .. } => need(*a, low_bits(u32::from(*bits))),
                    InstData::Load { ptr, size, .. } => {
                        if let Some(s) = addr_of.get(ptr) {
                            *slot_demand.entry(*s).or_insert(0) |= d & low_bits(u32::from(*size) * 8);
                        }
                        need(*ptr, all);
                    }
                    InstData::Store { ptr, size, val, .. } => {
                        let m = match addr_of.get(ptr) {
                            Some(s) => slot_demand.get(s).copied().unwrap_or(0),
                            None => all,
                        };
                        need(*val, m & low_bits(u32::from(*size) * 8));
                        need(*ptr, all);
                    }
                    other => {
                        for u in other.uses() {
                            need(u, all);
                        }
                    }
                }
            }
        }
        if (demand.len(), slot_demand.len(), total(&demand, &slot_demand)) == before {
            break;
        }
    }
    for data in f.insts.values_mut() {
        if let InstData::Const { dst, imm } = data {
            let narrow = i64::from(*imm as i32);
            if narrow != *imm && demand.get(dst).copied().unwrap_or(0) & !low_bits(32) == 0 {
                *imm = narrow;
            }
        }
    }
}

/// Removes the blocks no path from the entry reaches.
pub fn remove_unreachable(f: &mut Function) {
    let mut reached = HashSet::default();
    let mut stack = vec![f.entry()];
    while let Some(b) = stack.pop() {
        if reached.insert(b) {
            if let Some(t) = &f.blocks[b].term {
                stack.extend(t.successors());
            }
        }
    }
    f.layout.retain(|b| reached.contains(b));
}

/// Redirects jumps to blocks that only jump on (so layout can fall through), then removes
/// what became unreachable.
pub fn thread_jumps(f: &mut Function) {
    let forward = |f: &Function, mut b: Block| {
        let mut hops = 0;
        while let (true, Some(Terminator::Jump(next))) = (f.blocks[b].insts.is_empty(), &f.blocks[b].term) {
            if *next == b || hops > f.blocks.len() {
                break;
            }
            b = *next;
            hops += 1;
        }
        b
    };
    let blocks: Vec<Block> = f.layout.clone();
    for b in blocks {
        let term = f.blocks[b].term.clone();
        let new = match term {
            Some(Terminator::Jump(t)) => Some(Terminator::Jump(forward(f, t))),
            Some(Terminator::Branch { cond, then, else_ }) => {
                Some(Terminator::Branch { cond, then: forward(f, then), else_: forward(f, else_) })
            }
            other => other,
        };
        f.blocks[b].term = new;
    }
    remove_unreachable(f);
}

/// Drops instructions without side effects whose results are never used, repeatedly.
pub fn remove_dead_values(f: &mut Function) {
    loop {
        let mut used = HashSet::default();
        for &b in &f.layout {
            for &i in &f.blocks[b].insts {
                used.extend(f.insts[i].uses());
            }
            match &f.blocks[b].term {
                Some(Terminator::Branch { cond, .. }) => {
                    used.insert(*cond);
                }
                Some(Terminator::Return(v)) => {
                    used.insert(*v);
                }
                _ => {}
            }
        }
        let mut changed = false;
        for &b in &f.layout.clone() {
            let insts = &f.insts;
            let before = f.blocks[b].insts.len();
            f.blocks[b].insts.retain(|&i| {
                let d = &insts[i];
                d.has_side_effects() || d.dst().is_none_or(|v| used.contains(&v))
            });
            changed |= f.blocks[b].insts.len() != before;
        }
        if !changed {
            return;
        }
    }
}

/// Orders blocks in reverse postorder from the entry, visiting a branch's `else` side
/// first so that its `then` side follows the branch: most branches then fall through, and
/// the early-exit block (reached from everywhere) sinks to the end.
pub fn layout_rpo(f: &mut Function) {
    let mut seen = HashSet::default();
    let mut post = Vec::new();
    // Iterative DFS: (block, successors left to visit).
    let entry = f.entry();
    let succs = |f: &Function, b: Block| -> Vec<Block> {
        match &f.blocks[b].term {
            Some(Terminator::Branch { then, else_, .. }) => vec![*else_, *then],
            Some(t) => t.successors(),
            None => Vec::new(),
        }
    };
    let mut stack: Vec<(Block, Vec<Block>)> = vec![(entry, succs(f, entry))];
    seen.insert(entry);
    while let Some((b, rest)) = stack.last_mut() {
        match rest.pop() {
            Some(s) => {
                if seen.insert(s) {
                    let next = succs(f, s);
                    stack.push((s, next));
                }
            }
            None => {
                post.push(*b);
                stack.pop();
            }
        }
    }
    post.reverse();
    f.layout = post;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_follows_bpf_arithmetic() {
        use BinOp::*;
        use Width::*;
        assert_eq!(eval_bin(UDiv, W64, 7, 0), Some(0));
        assert_eq!(eval_bin(URem, W64, 7, 0), Some(7));
        assert_eq!(eval_bin(SDiv, W64, i64::MIN, -1), Some(i64::MIN));
        assert_eq!(eval_bin(SRem, W64, i64::MIN, -1), Some(0));
        assert_eq!(eval_bin(SDiv, W64, -7, 2), Some(-3));
        assert_eq!(eval_bin(SRem, W64, -7, 2), Some(-1));
        assert_eq!(eval_bin(SRem, W64, -7, 0), Some(-7));
        // 32-bit results are zero-extended, operands read as their low 32 bits.
        assert_eq!(eval_bin(Sub, W32, 0, 1), Some(0xffff_ffff));
        assert_eq!(eval_bin(Add, W32, 0x1_0000_0001, 1), Some(2));
        assert_eq!(eval_bin(SDiv, W32, -8, 2), Some(0xffff_fffc));
        assert_eq!(eval_bin(SRem, W32, i64::from(i32::MIN), -1), Some(0));
        assert_eq!(eval_bin(AShr, W32, 0x8000_0000, 31), Some(0xffff_ffff));
        assert_eq!(eval_bin(AShr, W64, i64::MIN, 63), Some(-1));
        assert_eq!(eval_bin(LShr, W64, -1, 60), Some(15));
        // Shifts by the width or more are left to run.
        assert_eq!(eval_bin(Shl, W64, 1, 64), None);
        assert_eq!(eval_bin(Shl, W32, 1, 32), None);
        assert!(eval_cond(Cond::SLt, -1, 0) && !eval_cond(Cond::ULt, -1, 0));
    }

    #[test]
    fn unsigned_division_by_a_power_of_two_becomes_a_shift_and_remainder_a_mask() {
        let mut b = crate::builder::Builder::new();
        let ctx = b.ctx();
        let x = b.load(ctx, 0, 8);
        let (k16, k3, k_top) = (b.iconst(16), b.iconst(3), b.iconst(0x1_0000_0000));
        let q = b.bin(BinOp::UDiv, Width::W64, x, k16);
        let r = b.bin(BinOp::URem, Width::W64, q, k16);
        let s = b.bin(BinOp::SDiv, Width::W64, r, k16);
        let t = b.bin(BinOp::UDiv, Width::W64, s, k3);
        // At 32 bits, 2^32 reads as 0: x / 0 is 0, not a shift by 32.
        let u = b.bin(BinOp::UDiv, Width::W32, t, k_top);
        b.terminate(Terminator::Return(u));
        let mut f = b.finish();
        fold_constants(&mut f);
        let ops: Vec<(BinOp, i64)> = f.blocks[f.entry()]
            .insts
            .iter()
            .filter_map(|i| match f.insts[*i] {
                InstData::Bin { op, b, .. } => {
                    let imm = f.blocks[f.entry()].insts.iter().find_map(|j| match f.insts[*j] {
                        InstData::Const { dst, imm } if dst == b => Some(imm),
                        _ => None,
                    });
                    Some((op, imm.expect("a constant operand")))
                }
                _ => None,
            })
            .collect();
        use BinOp::*;
        assert_eq!(ops, [(LShr, 4), (And, 15), (SDiv, 16), (UDiv, 3), (UDiv, 0x1_0000_0000)]);
        assert!(crate::verify::verify(&f).is_ok());
    }

    #[test]
    fn a_branch_on_a_folded_comparison_becomes_a_jump_and_its_dead_side_goes() {
        let mut b = crate::builder::Builder::new();
        let (yes, no) = (b.create_block(), b.create_block());
        let four = b.iconst(4);
        let mask = b.iconst(63);
        let amount = b.bin(BinOp::And, Width::W64, four, mask);
        let c = b.cmp(Cond::Eq, amount, four);
        b.terminate(Terminator::Branch { cond: c, then: yes, else_: no });
        for (blk, v) in [(yes, 1), (no, 2)] {
            b.switch_to(blk);
            let r = b.iconst(v);
            b.terminate(Terminator::Return(r));
        }
        let mut f = b.finish();
        fold_constants(&mut f);
        remove_dead_values(&mut f);
        thread_jumps(&mut f);
        assert_eq!(f.blocks[f.entry()].term, Some(Terminator::Jump(yes)));
        assert!(!f.layout.contains(&no));
        assert!(f.blocks[f.entry()].insts.is_empty(), "the folded values are unused");
    }

    #[test]
    fn a_constant_whose_high_half_nothing_reads_fits_an_immediate() {
        use crate::builder::Builder;
        // (x * 0x9e37_79b9) % 128, through a slot; and the same constant stored whole.
        let mut b = Builder::new();
        let h = b.slot(8, "h");
        let key = b.slot(8, "key");
        let x = b.ctx();
        let x = b.load(x, 0, 8);
        let c = b.iconst(0x9e37_79b9);
        let p = b.bin(BinOp::Mul, Width::W64, x, c);
        let a = b.slot_addr(h, 0);
        b.store(a, 0, 8, p);
        let a = b.slot_addr(h, 0);
        let hv = b.load(a, 0, 8);
        let m = b.iconst(128);
        let r = b.bin(BinOp::URem, Width::W64, hv, m);
        let whole = b.iconst(0x9e37_79b9);
        let a = b.slot_addr(key, 0);
        b.store(a, 0, 8, whole);
        let a = b.slot_addr(key, 0);
        let mref = b.iconst(0);
        let _ = b.call(1, vec![mref, a], ValTy::MapValueOrNull);
        b.terminate(Terminator::Return(r));
        let mut f = b.finish();
        narrow_constants(&mut f);
        let imm = |v: Value| f.insts.values().find_map(|i| match i {
            InstData::Const { dst, imm } if *dst == v => Some(*imm),
            _ => None,
        });
        assert_eq!(imm(c), Some(i64::from(0x9e37_79b9u32 as i32)), "only the low bits of the product are read");
        assert_eq!(imm(whole), Some(0x9e37_79b9), "a helper reads the key slot whole");
    }
}
