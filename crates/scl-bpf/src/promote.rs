//! Keeping stack slots in registers for the whole function.
//!
//! The IR keeps every value that lives across blocks in a stack slot (a local, a state
//! pointer looked up in the prologue). A slot whose address is only ever used to load or
//! store the whole slot at offset 0, with one access size, behaves like a variable: it
//! can live in a register instead, which turns each store into a move and each load into
//! a move or nothing. This pass decides which slots do and where:
//!
//! - **liveness** of the candidate slots is computed over the control-flow graph (a load
//!   is a use, a store a definition), and two slots interfere when one is stored while
//!   the other is live;
//! - a slot live across a helper call (or `bpf_loop`) needs a callee-saved register,
//!   `r6`-`r8`; any other slot may also take `r1`-`r4`;
//! - the context pointer takes part as one more variable whose register is fixed: `r1`,
//!   where it arrives, if no helper call comes while it is needed, else `r6`. Other slots
//!   may have that register where nothing reads through the context any more;
//! - slots are coloured greedily, most accesses first (an access in a loop counts eight
//!   times), each taking the register of a slot it is copied from or to if it can, else
//!   the first register that no interfering slot has;
//! - a slot read before any store on some path (live into the entry block) stays on the
//!   stack, where the verifier judges the read as before.
//!
//! Within a block, the emitter's own allocator then works around the registers of the
//! slots live in that block ([`Promotion::reserved`]).

use scl_ir::{Block, Function, Inst, InstData, Slot, Value};
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

/// The outcome: the register of each promoted slot, and where in each block promoted
/// slots hold their registers.
#[derive(Default)]
pub struct Promotion {
    /// Slot to register.
    pub reg: HashMap<Slot, u8>,
    /// Per block, per point (point `k` is just before instruction `k`; the last one is
    /// before the terminator), a bit mask of the registers of the slots live there: a
    /// value the block's own allocator keeps in a register from instruction `k` to its
    /// last use at `e` must avoid the registers busy at points `k + 1 ..= e`.
    pub busy: HashMap<Block, Vec<u16>>,
    /// Stores to promoted slots that no load reads: the emitter drops them (they would
    /// write a register that nothing marks as held).
    pub dead_stores: HashSet<Inst>,
    /// Where the context pointer stays, if the program reads it: `r1`, where it arrives,
    /// unless it is needed after a helper call, then `r6`.
    pub ctx_reg: Option<u8>,
}

/// Registers any promoted slot may take, in order of preference for a slot that is not
/// live across a call (caller-saved first, to leave the callee-saved ones to slots that
/// are).
const ANY: [u8; 6] = [4, 3, 2, 1, 8, 7];
/// Registers a slot live across a call may take.
const CALLEE: [u8; 2] = [8, 7];
/// The context pointer's register when it is needed after a helper call; other slots may
/// have it where the context is no longer needed.
const CTX: u8 = 6;

/// A small set of candidate indices.
#[derive(Clone, PartialEq, Eq)]
struct Set(Vec<u64>);

impl Set {
    fn new(n: usize) -> Set {
        Set(vec![0; n.div_ceil(64)])
    }
    fn insert(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn contains(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
    fn remove(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
    fn union(&mut self, o: &Set) {
        for (a, b) in self.0.iter_mut().zip(&o.0) {
            *a |= b;
        }
    }
    fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        set_bits(&self.0)
    }
}

/// The members of a set kept as the words of a bitset.
fn set_bits(words: &[u64]) -> impl Iterator<Item = usize> + '_ {
    words.iter().enumerate().flat_map(|(w, &bits)| {
        let mut left = bits;
        std::iter::from_fn(move || {
            (left != 0).then(|| {
                let b = left.trailing_zeros() as usize;
                left &= left - 1;
                w * 64 + b
            })
        })
    })
}

/// What one instruction does to candidate slots.
#[derive(Clone, Copy)]
enum Event {
    Use(usize),
    Def(usize),
    Call,
    Other,
}

/// Decides which slots of `f` live in registers, and where the context pointer stays.
/// `loops` are the layout ranges of loops.
pub fn promote(f: &Function, loops: &[(usize, usize)]) -> Promotion {
    let uses_ctx = f.insts.values().any(|i| matches!(i, InstData::Ctx { .. }));
    // The slots that behave like variables, with room in a register.
    let (addr_of, plain) = f.plain_slots();
    let ok: HashMap<Slot, bool> = plain.keys().map(|s| (*s, f.slots[*s].size <= 8)).collect();
    let mut cands: Vec<Slot> = ok.iter().filter(|(_, &good)| good).map(|(s, _)| *s).collect();
    cands.sort();
    let index: HashMap<Slot, usize> = cands.iter().enumerate().map(|(i, s)| (*s, i)).collect();
    let n = cands.len();
    // The context pointer joins as one more variable, `cx`: defined on entry, used by every
    // instruction that reads through it, and kept in its own register, which other slots
    // may take where the context is no longer needed.
    let ctx_values: HashSet<Value> = f.insts.values().filter_map(|i| matches!(i, InstData::Ctx { .. }).then(|| i.dst()).flatten()).collect();
    let cx = uses_ctx.then_some(n);
    let m = n + usize::from(cx.is_some());

    // Events per instruction: its use of the context, if any, then the slot access or call.
    let events = |b: Block| -> Vec<(Option<Event>, Event)> {
        f.blocks[b]
            .insts
            .iter()
            .map(|&i| {
                let data = &f.insts[i];
                let ctx_use = cx.filter(|_| data.uses().any(|u| ctx_values.contains(&u))).map(Event::Use);
                let e = match data {
                    InstData::Load { ptr, .. } => addr_of.get(ptr).and_then(|s| index.get(s)).map_or(Event::Other, |&k| Event::Use(k)),
                    InstData::Store { ptr, .. } => addr_of.get(ptr).and_then(|s| index.get(s)).map_or(Event::Other, |&k| Event::Def(k)),
                    InstData::Call { .. } | InstData::Loop { .. } => Event::Call,
                    _ => Event::Other,
                };
                (ctx_use, e)
            })
            .collect()
    };
    // An instruction's events last first (the context is read before the rest happens).
    let backward = |&(ctx_use, e): &(Option<Event>, Event)| [Some(e), ctx_use].into_iter().flatten();
    let ev: HashMap<Block, Vec<(Option<Event>, Event)>> = f.layout.iter().map(|b| (*b, events(*b))).collect();
    let entry = f.entry();
    let succs: HashMap<Block, Vec<Block>> =
        f.layout.iter().map(|b| (*b, f.blocks[*b].term.as_ref().map(|t| t.successors()).unwrap_or_default())).collect();
    let mut live_in: HashMap<Block, Set> = f.layout.iter().map(|b| (*b, Set::new(m))).collect();
    let mut changed = true;
    while changed {
        changed = false;
        for b in f.layout.iter().rev() {
            let mut live = Set::new(m);
            for s in &succs[b] {
                if let Some(l) = live_in.get(s) {
                    live.union(l);
                }
            }
            for e in ev[b].iter().rev().flat_map(backward) {
                match e {
                    Event::Use(k) => live.insert(k),
                    Event::Def(k) => live.remove(k),
                    _ => {}
                }
            }
            if let Some(c) = cx.filter(|_| *b == entry) {
                live.remove(c);
            }
            if live_in[b] != live {
                live_in.insert(*b, live);
                changed = true;
            }
        }
    }

    // Interference, calls crossed, and the slots live at each point.
    let mut excluded = vec![false; m];
    for k in live_in[&entry].iter() {
        excluded[k] = true;
    }
    let mut interferes = vec![Set::new(m); m];
    let mut crosses = vec![false; m];
    // The live sets of a block's points, last point first, one after the other in one
    // vector of words (`words` per set).
    let words = m.div_ceil(64);
    let mut points: HashMap<Block, Vec<u64>> = HashMap::default();
    let mut weight = vec![0u32; m];
    let mut dead_defs: Vec<(Inst, usize)> = Vec::new();
    for (pos, b) in f.layout.iter().enumerate() {
        let in_loop = loops.iter().any(|&(lo, hi)| lo <= pos && pos <= hi);
        let mut live = Set::new(m);
        for s in &succs[b] {
            if let Some(l) = live_in.get(s) {
                live.union(l);
            }
        }
        let mut at = Vec::with_capacity((ev[b].len() + 1) * words);
        at.extend_from_slice(&live.0);
        for (j, es) in ev[b].iter().enumerate().rev() {
            for e in backward(es) {
                match e {
                    Event::Use(k) => {
                        live.insert(k);
                        weight[k] += if in_loop { 8 } else { 1 };
                    }
                    Event::Def(k) => {
                        if !live.contains(k) {
                            dead_defs.push((f.blocks[*b].insts[j], k));
                        }
                        for o in live.iter().filter(|&o| o != k) {
                            interferes[k].insert(o);
                            interferes[o].insert(k);
                        }
                        live.remove(k);
                        weight[k] += if in_loop { 8 } else { 1 };
                    }
                    Event::Call => {
                        for o in live.iter() {
                            crosses[o] = true;
                        }
                    }
                    Event::Other => {}
                }
            }
            at.extend_from_slice(&live.0);
        }
        // The context is defined on entry: it interferes with whatever is live there.
        if let Some(c) = cx.filter(|_| *b == entry) {
            for o in live.iter().filter(|o| *o != c) {
                interferes[c].insert(o);
                interferes[o].insert(c);
            }
        }
        points.insert(*b, at);
    }

    // Copies between slots (a store of what was just loaded from another) join the two in
    // one group, when nothing in one interferes with the other: a group takes one
    // register, so the copy becomes a move to itself.
    let loaded_from: HashMap<Value, usize> = f
        .insts
        .values()
        .filter_map(|i| match i {
            InstData::Load { dst, ptr, .. } => addr_of.get(ptr).and_then(|s| index.get(s)).map(|&k| (*dst, k)),
            _ => None,
        })
        .collect();
    let mut group: Vec<usize> = (0..m).collect();
    fn find(group: &mut [usize], k: usize) -> usize {
        let mut r = k;
        while group[r] != r {
            r = group[r];
        }
        group[k] = r;
        r
    }
    let mut members: Vec<Vec<usize>> = (0..m).map(|k| vec![k]).collect();
    for b in &f.layout {
        for &i in &f.blocks[*b].insts {
            let InstData::Store { ptr, val, .. } = &f.insts[i] else { continue };
            let (Some(&to), Some(&from)) = (addr_of.get(ptr).and_then(|s| index.get(s)), loaded_from.get(val)) else { continue };
            let (a, c) = (find(&mut group, to), find(&mut group, from));
            if a == c || excluded[a] || excluded[c] {
                continue;
            }
            let apart = members[a].iter().all(|&x| members[c].iter().all(|&y| !interferes[x].contains(y)));
            if apart {
                group[c] = a;
                let moved = std::mem::take(&mut members[c]);
                members[a].extend(moved);
            }
        }
    }

    // Greedy colouring of the groups, heaviest first; the context's register is fixed.
    let mut color: Vec<Option<u8>> = vec![None; m];
    let ctx = cx.map(|c| if crosses[c] { CTX } else { 1 });
    if let (Some(c), Some(r)) = (cx, ctx) {
        color[c] = Some(r);
    }
    let mut order: Vec<usize> = (0..n).filter(|&k| !excluded[k] && find(&mut group, k) == k).collect();
    let group_weight = |k: usize| members[k].iter().map(|&x| weight[x]).sum::<u32>();
    order.sort_by_key(|&k| (std::cmp::Reverse(group_weight(k)), k));
    for k in order {
        let crosses_call = members[k].iter().any(|&x| crosses[x]);
        let mut regs: Vec<u8> = if crosses_call { CALLEE.to_vec() } else { ANY.to_vec() };
        regs.push(CTX);
        let free = |r: &u8| members[k].iter().all(|&x| interferes[x].iter().all(|o| color[o] != Some(*r)));
        if let Some(r) = regs.into_iter().find(|r| free(r)) {
            for &x in &members[k] {
                color[x] = Some(r);
            }
        }
    }
    let reg: HashMap<Slot, u8> = cands.iter().enumerate().filter_map(|(k, s)| color[k].map(|r| (*s, r))).collect();
    let mask = |set: &[u64]| set_bits(set).filter_map(|k| color[k]).fold(0u16, |m, r| m | 1 << r);
    let busy = points
        .into_iter()
        .map(|(b, at)| (b, if words == 0 { vec![0; ev[&b].len() + 1] } else { at.chunks(words).rev().map(mask).collect() }))
        .collect();
    let dead_stores = dead_defs.into_iter().filter(|(_, k)| *k < n && color[*k].is_some()).map(|(i, _)| i).collect();
    Promotion { reg, busy, dead_stores, ctx_reg: ctx }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scl_ir::builder::Builder;
    use scl_ir::{Terminator, ValTy};

    const LOOKUP: u32 = 1;
    const KTIME: u32 = 5;

    fn regs(f: &Function) -> Promotion {
        promote(f, &[])
    }

    #[test]
    fn a_slot_whose_address_is_handed_to_a_helper_stays_on_the_stack() {
        let mut b = Builder::new();
        let key = b.slot(8, "key");
        let a = b.slot_addr(key, 0);
        let zero = b.iconst(0);
        b.store(a, 0, 8, zero);
        let a = b.slot_addr(key, 0);
        let m = b.iconst(0);
        let r = b.call(LOOKUP, vec![m, a], ValTy::MapValueOrNull);
        b.terminate(Terminator::Return(r));
        assert!(regs(&b.finish()).reg.is_empty());
    }

    #[test]
    fn a_slot_live_across_a_call_gets_a_callee_saved_register_and_one_that_is_not_may_take_any() {
        let mut b = Builder::new();
        let (across, local) = (b.slot(8, "across"), b.slot(4, "local"));
        let v = b.iconst(7);
        let a = b.slot_addr(across, 0);
        b.store(a, 0, 8, v);
        let t = b.call(KTIME, vec![], ValTy::Int);
        let a = b.slot_addr(local, 0);
        b.store(a, 0, 4, t);
        let a = b.slot_addr(across, 0);
        let x = b.load(a, 0, 8);
        let a = b.slot_addr(local, 0);
        let y = b.load(a, 0, 4);
        let s = b.bin(scl_ir::BinOp::Add, scl_ir::Width::W64, x, y);
        b.terminate(Terminator::Return(s));
        let p = regs(&b.finish());
        let across_reg = p.reg[&across];
        assert!(CALLEE.contains(&across_reg), "{across_reg}");
        assert!(ANY.contains(&p.reg[&local]));
        assert_ne!(p.reg[&local], across_reg, "both are live at the final add");
    }

    #[test]
    fn slots_never_live_at_once_share_a_register() {
        let mut b = Builder::new();
        let (first, second) = (b.slot(8, "first"), b.slot(8, "second"));
        let mut total = b.iconst(0);
        for s in [first, second] {
            let v = b.iconst(3);
            let a = b.slot_addr(s, 0);
            b.store(a, 0, 8, v);
            let a = b.slot_addr(s, 0);
            let x = b.load(a, 0, 8);
            total = b.bin(scl_ir::BinOp::Add, scl_ir::Width::W64, total, x);
        }
        b.terminate(Terminator::Return(total));
        let p = regs(&b.finish());
        assert_eq!(p.reg[&first], p.reg[&second]);
    }

    #[test]
    fn a_slot_read_before_it_is_written_on_some_path_stays_on_the_stack_and_dead_stores_are_named() {
        let mut b = Builder::new();
        let (maybe, dead) = (b.slot(8, "maybe"), b.slot(8, "dead"));
        let then = b.create_block();
        let join = b.create_block();
        let c = b.call(KTIME, vec![], ValTy::Int);
        b.terminate(Terminator::Branch { cond: c, then, else_: join });
        b.switch_to(then);
        let a = b.slot_addr(maybe, 0);
        b.store(a, 0, 8, c);
        let a = b.slot_addr(dead, 0);
        b.store(a, 0, 8, c);
        let store = *b.func.blocks[then].insts.last().unwrap();
        b.terminate(Terminator::Jump(join));
        b.switch_to(join);
        let a = b.slot_addr(maybe, 0);
        let x = b.load(a, 0, 8);
        b.terminate(Terminator::Return(x));
        let p = regs(&b.finish());
        assert!(!p.reg.contains_key(&maybe));
        assert!(p.reg.contains_key(&dead));
        assert!(p.dead_stores.contains(&store));
    }

    #[test]
    fn slots_accessed_with_two_sizes_or_at_an_offset_stay_on_the_stack() {
        let mut b = Builder::new();
        let (mixed, offset) = (b.slot(8, "mixed"), b.slot(8, "offset"));
        let v = b.iconst(1);
        let a = b.slot_addr(mixed, 0);
        b.store(a, 0, 8, v);
        let a = b.slot_addr(mixed, 0);
        let x = b.load(a, 0, 4);
        let a = b.slot_addr(offset, 0);
        b.store(a, 4, 4, x);
        let a = b.slot_addr(offset, 0);
        let y = b.load(a, 4, 4);
        b.terminate(Terminator::Return(y));
        assert!(regs(&b.finish()).reg.is_empty());
    }
}
