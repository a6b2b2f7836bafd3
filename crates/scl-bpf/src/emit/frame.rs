//! The analyses `emit` runs before it selects instructions: which values are already zero
//! extended, where each stack slot lives in the frame (slots whose lives do not overlap
//! share bytes), which slots hold the addresses of others, and the loops of the layout.

use super::*;

/// Values whose upper bytes are known to be zero, and the bytes that hold the rest: a
/// load of that size, a non-negative constant, a zero extension, 32-bit arithmetic, a
/// comparison, `x & K` and `x % K` for a positive constant `K`. Storing such a value into
/// a promoted slot of at least that size needs no truncation.
pub(super) fn zero_extended(f: &Function) -> HashMap<Value, u8> {
    let fits = |v: i64| [1u8, 2, 4, 8].into_iter().find(|n| *n == 8 || v < 1i64 << (8 * u32::from(*n)));
    // Slots only ever loaded and stored whole with one size carry what their stores put
    // there: the widest of the stored values (found by iterating to a fixed point).
    let (addr_of, plain) = f.plain_slots();
    let mut stored: HashMap<Slot, u8> = HashMap::default();
    loop {
        let mut out = HashMap::default();
        for b in &f.layout {
            let mut consts: HashMap<Value, i64> = HashMap::default();
            for &i in &f.blocks[*b].insts {
                let bytes = match &f.insts[i] {
                    InstData::Load { ptr, size, .. } => match addr_of.get(ptr).filter(|s| plain.contains_key(*s)) {
                        Some(s) => Some(stored.get(s).copied().unwrap_or(0).min(*size)),
                        None => Some(*size),
                    },
                    InstData::Const { dst, imm } => {
                        consts.insert(*dst, *imm);
                        (*imm >= 0).then(|| fits(*imm)).flatten()
                    }
                    // `x & K` and `x % K` (unsigned) are below K.
                    InstData::Bin { op: BinOp::And | BinOp::URem, b: k, .. } if consts.get(k).is_some_and(|k| *k > 0) => fits(consts[k]),
                    InstData::Ext { bits, signed: false, .. } => Some(*bits / 8),
                    InstData::Bin { width: Width::W32, .. } => Some(4),
                    InstData::Cmp { .. } => Some(1),
                    InstData::Copy { a, .. } => out.get(a).copied(),
                    _ => None,
                };
                if let (Some(n), Some(d)) = (bytes, f.insts[i].dst()) {
                    out.insert(d, n);
                }
            }
        }
        let mut next: HashMap<Slot, u8> = HashMap::default();
        for data in f.insts.values() {
            if let InstData::Store { ptr, size, val, .. } = data {
                if let Some(s) = addr_of.get(ptr) {
                    let n = out.get(val).copied().unwrap_or(8).min(*size);
                    let e = next.entry(*s).or_insert(0);
                    *e = (*e).max(n);
                }
            }
        }
        if next == stored {
            return out;
        }
        stored = next;
    }
}

/// Places the stack slots, letting slots that are never live at the same time share
/// bytes. A slot is live from the first to the last block (in layout order) that uses it,
/// stretched over every loop it overlaps (a value kept in a slot before a loop is read
/// again on the next iteration), and over the life of every slot its address is kept in
/// (an index out of range redirects a place to a scratch slot whose address then lives in
/// an element slot, and maybe in an `inout` parameter's slot: the scratch must not share
/// bytes with them). Returns each slot's offset from `r10` and the frame size.
pub(super) fn layout_frame(f: &Function, promoted: &HashMap<Slot, u8>) -> (HashMap<Slot, i16>, u32) {
    // Every slot's range, promoted ones too (their address may hold another's).
    let mut range: HashMap<Slot, (usize, usize)> = HashMap::default();
    for (i, b) in f.layout.iter().enumerate() {
        for &inst in &f.blocks[*b].insts {
            if let InstData::SlotAddr { slot, .. } = f.insts[inst] {
                let r = range.entry(slot).or_insert((i, i));
                r.0 = r.0.min(i);
                r.1 = r.1.max(i);
            }
        }
    }
    let last = f.layout.len().saturating_sub(1);
    for (s, r) in range.iter_mut() {
        if f.slots[*s].whole_function {
            *r = (0, last);
        }
    }
    let held = addresses_held(f);
    let loops = loop_ranges(f);
    let mut changed = true;
    while changed {
        changed = false;
        for r in range.values_mut() {
            for &(lo, hi) in &loops {
                let overlaps = r.0 <= hi && lo <= r.1;
                if overlaps && (r.0 > lo || r.1 < hi) {
                    r.0 = r.0.min(lo);
                    r.1 = r.1.max(hi);
                    changed = true;
                }
            }
        }
        for (holder, slots) in &held {
            let Some(&(lo, hi)) = range.get(holder) else { continue };
            for s in slots {
                if let Some(r) = range.get_mut(s) {
                    if r.0 > lo || r.1 < hi {
                        r.0 = r.0.min(lo);
                        r.1 = r.1.max(hi);
                        changed = true;
                    }
                }
            }
        }
    }
    range.retain(|s, _| !promoted.contains_key(s));
    // Linear scan over slots by start; a region freed by a slot whose range ended is reused
    // by a later slot of the same size.
    let mut slots: Vec<(Slot, (usize, usize), u32)> =
        range.iter().map(|(s, r)| (*s, *r, f.slots[*s].size.div_ceil(8) * 8)).collect();
    slots.sort_by_key(|(s, r, _)| (r.0, r.1, s.as_u32()));
    let mut active: Vec<(usize, i16, u32)> = Vec::new(); // (end, offset, size)
    let mut free: Vec<(i16, u32)> = Vec::new();
    let mut offsets = HashMap::default();
    let mut size = 0u32;
    for (slot, (start, end), bytes) in slots {
        active.retain(|&(e, off, sz)| {
            if e < start {
                free.push((off, sz));
                false
            } else {
                true
            }
        });
        let off = match free.iter().position(|&(_, sz)| sz == bytes) {
            Some(k) => free.remove(k).0,
            None => {
                size += bytes;
                -(size as i16)
            }
        };
        offsets.insert(slot, off);
        active.push((end, off, bytes));
    }
    (offsets, size)
}

/// For each slot, the slots whose address it may hold: addresses flow through values
/// (within a block, as IR values do), 8-byte stores and loads, and copies of memory.
pub(super) fn addresses_held(f: &Function) -> HashMap<Slot, HashSet<Slot>> {
    let mut held: HashMap<Slot, HashSet<Slot>> = HashMap::default();
    let mut changed = true;
    while changed {
        changed = false;
        for b in &f.layout {
            let mut points: HashMap<Value, HashSet<Slot>> = HashMap::default();
            for &inst in &f.blocks[*b].insts {
                let of = |points: &HashMap<Value, HashSet<Slot>>, v: &Value| points.get(v).cloned().unwrap_or_default();
                match &f.insts[inst] {
                    InstData::SlotAddr { dst, slot, .. } => {
                        points.insert(*dst, std::iter::once(*slot).collect());
                    }
                    InstData::Bin { dst, a, b, .. } => {
                        let mut p = of(&points, a);
                        p.extend(of(&points, b));
                        if !p.is_empty() {
                            points.insert(*dst, p);
                        }
                    }
                    InstData::Copy { dst, a } => {
                        let p = of(&points, a);
                        if !p.is_empty() {
                            points.insert(*dst, p);
                        }
                    }
                    InstData::Select { dst, a, b, .. } => {
                        let mut p = of(&points, a);
                        p.extend(of(&points, b));
                        if !p.is_empty() {
                            points.insert(*dst, p);
                        }
                    }
                    InstData::Load { dst, ptr, size: 8, .. } => {
                        let p: HashSet<Slot> = of(&points, ptr).iter().filter_map(|t| held.get(t)).flatten().copied().collect();
                        if !p.is_empty() {
                            points.insert(*dst, p);
                        }
                    }
                    InstData::Store { ptr, val, size: 8, .. } => {
                        let v = of(&points, val);
                        if !v.is_empty() {
                            for t in of(&points, ptr) {
                                let h = held.entry(t).or_default();
                                let before = h.len();
                                h.extend(v.iter().copied());
                                changed |= h.len() != before;
                            }
                        }
                    }
                    InstData::MemCopy { dst_ptr, src, .. } => {
                        let v: HashSet<Slot> = of(&points, src).iter().filter_map(|t| held.get(t)).flatten().copied().collect();
                        if !v.is_empty() {
                            for t in of(&points, dst_ptr) {
                                let h = held.entry(t).or_default();
                                let before = h.len();
                                h.extend(v.iter().copied());
                                changed |= h.len() != before;
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    held
}

/// The layout ranges of loops: a jump to a block at or before itself closes one.
pub(super) fn loop_ranges(f: &Function) -> Vec<(usize, usize)> {
    let pos: HashMap<Block, usize> = f.layout.iter().enumerate().map(|(i, b)| (*b, i)).collect();
    f.layout
        .iter()
        .enumerate()
        .flat_map(|(i, b)| f.blocks[*b].term.iter().flat_map(|t| t.successors()).map(move |s| (s, i)))
        .filter_map(|(s, i)| pos.get(&s).filter(|&&q| q <= i).map(|&q| (q, i)))
        .collect()
}

/// The widest access (8, 4, 2 or 1 bytes) that fits `left` bytes and that both offsets
/// are aligned for.
pub(super) fn step_for(left: u32, a: i32, b: i32) -> u32 {
    [8u32, 4, 2, 1].into_iter().find(|&s| s <= left && a.rem_euclid(s as i32) == 0 && b.rem_euclid(s as i32) == 0).unwrap_or(1)
}
