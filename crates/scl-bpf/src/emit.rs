//! Instruction selection and register allocation: one IR function to BPF instructions.
//!
//! IR values never cross blocks; what lives across blocks is in stack slots. First, the
//! slots that behave like variables are kept in registers for the whole function
//! (`promote.rs`). Then registers are allocated block by block with a linear scan, around
//! the registers promoted slots hold at each point. `r0`, `r5` and `r9` are scratch
//! registers of the instruction being emitted (and `r0` carries call results and the
//! return value); `r1`-`r4` hold values that do not live across a helper call (calls
//! clobber them), `r6`-`r8` any value; what does not fit goes to a spill slot, which every
//! block reuses. The context pointer stays in `r1`, where it arrives, unless a helper
//! call comes while it is still needed, then in `r6`. Constants that fit an immediate,
//! and stack addresses used as a load or store base, are folded into the instructions
//! that use them. A value loaded
//! from a promoted slot, or computed to be stored into one, shares the slot's register
//! where nothing else needs it meanwhile. A comparison whose only use is its block's
//! branch becomes one conditional jump: the kernel verifier learns that a map value is not
//! null only from a jump that tests the pointer register itself (or a copy of it).

use crate::insn::*;
use crate::promote::{promote, Promotion};
use crate::{CodegenError, Compiled, RelocTarget};
use scl_ir::{AtomicOp, BinOp, Block, Callback, Cond, Function, Inst, InstData, Slot, Terminator, Value, Width};
use scl_sema::hir::Loc;
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

/// The `bpf_loop` helper.
const BPF_LOOP: i32 = 181;
const SCRATCH_A: u8 = 5;
const SCRATCH_B: u8 = 9;
const R0: u8 = 0;
const FP: u8 = 10;
/// Registers for values that do not live across a call.
const CALLER_SAVED: [u8; 4] = [1, 2, 3, 4];
/// Registers for any value.
const CALLEE_SAVED: [u8; 2] = [7, 8];

/// Where a value lives while it is live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Home {
    Reg(u8),
    Stack(i16),
    /// A constant folded into its uses.
    Imm(i64),
    /// `r10 + off`, folded into its uses.
    Frame(i16),
    /// The address of a slot kept in this register (`promote.rs`): loads and stores
    /// through it become moves.
    Promoted(u8),
}

struct Emitter<'f> {
    f: &'f Function,
    out: Vec<Insn>,
    relocs: Vec<(usize, RelocTarget)>,
    lines: Vec<(usize, Loc)>,
    /// Jumps to patch: (instruction index, target block).
    fixups: Vec<(usize, Block)>,
    block_start: HashMap<Block, usize>,
    slot_off: HashMap<Slot, i16>,
    frame_size: u32,
    /// Spill slots made so far; values never outlive their block, so every block reuses
    /// them from the first.
    spills: Vec<i16>,
    /// How many of `spills` the current block uses.
    spills_used: usize,
    homes: HashMap<Value, Home>,
    last_loc: Option<Loc>,
    /// True while emitting a block inside a loop (between a back edge's target and source).
    in_loop: bool,
    /// The slots kept in registers.
    promotion: Promotion,
    /// Where the context pointer stays (`Promotion::ctx_reg`).
    ctx_reg: u8,
    /// Values known to be zero-extended from this many bytes (see [`zero_extended`]).
    narrow: HashMap<Value, u8>,
}

/// True for the instructions whose code writes the result register before it has read
/// every operand (`t = a; if (x cond y) goto +1; t = b`), so the result must not share a
/// register with an operand; and for comparisons, which have a shorter form when it does
/// not. Every other instruction reads its operands first or copes with its result sharing
/// one (see the `Bin` case of `inst`).
fn writes_before_reading(data: &InstData) -> bool {
    matches!(data, InstData::Select { .. } | InstData::Cmp { .. })
}

/// Values whose upper bytes are known to be zero, and the bytes that hold the rest: a
/// load of that size, a non-negative constant, a zero extension, 32-bit arithmetic, a
/// comparison, `x & K` and `x % K` for a positive constant `K`. Storing such a value into
/// a promoted slot of at least that size needs no truncation.
fn zero_extended(f: &Function) -> HashMap<Value, u8> {
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

/// Compiles one function.
pub fn compile(f: &Function) -> Result<Compiled, CodegenError> {
    let mut e = Emitter {
        f,
        out: Vec::new(),
        relocs: Vec::new(),
        lines: Vec::new(),
        fixups: Vec::new(),
        block_start: HashMap::default(),
        slot_off: HashMap::default(),
        frame_size: 0,
        spills: Vec::new(),
        spills_used: 0,
        homes: HashMap::default(),
        last_loc: None,
        in_loop: false,
        promotion: Promotion::default(),
        ctx_reg: R0,
        narrow: zero_extended(f),
    };
    let loops = loop_ranges(f);
    e.promotion = promote(f, &loops);
    let uses_ctx = e.promotion.ctx_reg.is_some();
    e.ctx_reg = e.promotion.ctx_reg.unwrap_or(R0);
    let (offsets, size) = layout_frame(f, &e.promotion.reg);
    e.slot_off = offsets;
    e.frame_size = size;
    e.check_frame()?;
    // The context stays in its register from the first instruction on.
    if uses_ctx && e.ctx_reg != 1 {
        e.line(f.layout.first().and_then(|b| f.blocks[*b].insts.first().copied()));
        e.mov_reg(e.ctx_reg, 1);
    }
    let layout = f.layout.clone();
    for (i, &b) in layout.iter().enumerate() {
        e.in_loop = loops.iter().any(|&(lo, hi)| lo <= i && i <= hi);
        e.block_start.insert(b, e.out.len());
        let next = layout.get(i + 1).copied();
        e.block(b, next)?;
    }
    for (at, target) in std::mem::take(&mut e.fixups) {
        let start = e.block_start[&target];
        let off = start as i64 - (at as i64 + 1);
        e.out[at].off = i16::try_from(off).map_err(|_| CodegenError::TooLarge)?;
    }
    let mut c = Compiled { insns: e.out, relocs: e.relocs, lines: e.lines, stack_size: e.frame_size };
    crate::peephole::run(&mut c);
    Ok(c)
}

/// Places the stack slots, letting slots that are never live at the same time share
/// bytes. A slot is live from the first to the last block (in layout order) that uses it,
/// stretched over every loop it overlaps (a value kept in a slot before a loop is read
/// again on the next iteration), and over the life of every slot its address is kept in
/// (an index out of range redirects a place to a scratch slot whose address then lives in
/// an element slot, and maybe in an `inout` parameter's slot: the scratch must not share
/// bytes with them). Returns each slot's offset from `r10` and the frame size.
fn layout_frame(f: &Function, promoted: &HashMap<Slot, u8>) -> (HashMap<Slot, i16>, u32) {
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
fn addresses_held(f: &Function) -> HashMap<Slot, HashSet<Slot>> {
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
fn loop_ranges(f: &Function) -> Vec<(usize, usize)> {
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
fn step_for(left: u32, a: i32, b: i32) -> u32 {
    [8u32, 4, 2, 1].into_iter().find(|&s| s <= left && a.rem_euclid(s as i32) == 0 && b.rem_euclid(s as i32) == 0).unwrap_or(1)
}

fn alu_op(op: BinOp) -> (u8, i16) {
    match op {
        BinOp::Add => (alu::ADD, 0),
        BinOp::Sub => (alu::SUB, 0),
        BinOp::Mul => (alu::MUL, 0),
        BinOp::UDiv => (alu::DIV, 0),
        BinOp::SDiv => (alu::DIV, 1),
        BinOp::URem => (alu::MOD, 0),
        BinOp::SRem => (alu::MOD, 1),
        BinOp::And => (alu::AND, 0),
        BinOp::Or => (alu::OR, 0),
        BinOp::Xor => (alu::XOR, 0),
        BinOp::Shl => (alu::LSH, 0),
        BinOp::LShr => (alu::RSH, 0),
        BinOp::AShr => (alu::ARSH, 0),
    }
}

fn jmp_op(c: Cond) -> u8 {
    match c {
        Cond::Eq => jmp::JEQ,
        Cond::Ne => jmp::JNE,
        Cond::ULt => jmp::JLT,
        Cond::ULe => jmp::JLE,
        Cond::UGt => jmp::JGT,
        Cond::UGe => jmp::JGE,
        Cond::SLt => jmp::JSLT,
        Cond::SLe => jmp::JSLE,
        Cond::SGt => jmp::JSGT,
        Cond::SGe => jmp::JSGE,
    }
}

fn negate(c: Cond) -> Cond {
    match c {
        Cond::Eq => Cond::Ne,
        Cond::Ne => Cond::Eq,
        Cond::ULt => Cond::UGe,
        Cond::ULe => Cond::UGt,
        Cond::UGt => Cond::ULe,
        Cond::UGe => Cond::ULt,
        Cond::SLt => Cond::SGe,
        Cond::SLe => Cond::SGt,
        Cond::SGt => Cond::SLe,
        Cond::SGe => Cond::SLt,
    }
}

fn size_code(bytes: u8) -> u8 {
    match bytes {
        1 => size::B,
        2 => size::H,
        4 => size::W,
        _ => size::DW,
    }
}

fn fits_imm(v: i64) -> bool {
    i32::try_from(v).is_ok()
}

impl Emitter<'_> {
    fn check_frame(&self) -> Result<(), CodegenError> {
        if self.frame_size > 512 {
            return Err(CodegenError::StackTooLarge(self.frame_size));
        }
        Ok(())
    }

    fn push(&mut self, i: Insn) -> usize {
        self.out.push(i);
        self.out.len() - 1
    }

    fn ins(&mut self, code: u8, dst: u8, src: u8, off: i16, imm: i32) -> usize {
        self.push(Insn { code, dst, src, off, imm })
    }

    fn mov_reg(&mut self, dst: u8, src: u8) {
        if dst != src {
            self.ins(class::ALU64 | alu::MOV | SRC_X, dst, src, 0, 0);
        }
    }

    fn mov_imm(&mut self, dst: u8, v: i64) {
        if fits_imm(v) {
            self.ins(class::ALU64 | alu::MOV | SRC_K, dst, 0, 0, v as i32);
        } else {
            self.ins(class::LD | size::DW | MODE_IMM, dst, 0, 0, v as i32);
            self.ins(0, 0, 0, 0, (v >> 32) as i32);
        }
    }

    fn spill_slot(&mut self) -> Result<i16, CodegenError> {
        self.spills_used += 1;
        if let Some(&o) = self.spills.get(self.spills_used - 1) {
            return Ok(o);
        }
        self.frame_size += 8;
        self.spills.push(-(self.frame_size as i16));
        self.check_frame()?;
        Ok(-(self.frame_size as i16))
    }

    /// Puts value `v` in a register: its own, or `scratch`.
    fn fetch(&mut self, v: Value, scratch: u8) -> u8 {
        match self.homes.get(&v).copied() {
            Some(Home::Reg(r)) => r,
            Some(Home::Stack(o)) => {
                self.ins(class::LDX | size::DW | MODE_MEM, scratch, FP, o, 0);
                scratch
            }
            Some(Home::Imm(i)) => {
                self.mov_imm(scratch, i);
                scratch
            }
            Some(Home::Frame(o)) => {
                self.mov_reg(scratch, FP);
                self.ins(class::ALU64 | alu::ADD | SRC_K, scratch, 0, 0, i32::from(o));
                scratch
            }
            // The address of a promoted slot is only ever a load's or store's base
            // (`promote.rs` checks), and those handle it themselves.
            Some(Home::Promoted(_)) | None => scratch,
        }
    }

    /// Puts value `v` into register `to` without disturbing `keep` (a register already
    /// loaded for the same instruction).
    fn operand_to(&mut self, v: Value, to: u8, keep: u8) {
        match self.homes.get(&v).copied() {
            Some(Home::Reg(r)) if r == keep && to == SCRATCH_A => {
                // `keep` is r0 and holds the first operand; the second lives in r0 too only
                // if both are the same value.
                self.mov_reg(to, r);
            }
            _ => {
                let r = self.fetch(v, to);
                self.mov_reg(to, r);
            }
        }
    }

    /// A base register and offset for a memory access through pointer `v`.
    fn address(&mut self, v: Value, off: i16, scratch: u8) -> (u8, i16) {
        match self.homes.get(&v).copied() {
            Some(Home::Frame(o)) => (FP, o + off),
            _ => (self.fetch(v, scratch), off),
        }
    }

    /// The register a result is computed into: its home, or `scratch` if it lives on the
    /// stack (then [`Self::settle`] stores it).
    fn target(&self, v: Value, scratch: u8) -> u8 {
        match self.homes.get(&v) {
            Some(Home::Reg(r)) => *r,
            _ => scratch,
        }
    }

    fn settle(&mut self, v: Value, computed_in: u8) {
        match self.homes.get(&v).copied() {
            Some(Home::Stack(o)) => {
                self.ins(class::STX | size::DW | MODE_MEM, FP, computed_in, o, 0);
            }
            Some(Home::Reg(r)) => self.mov_reg(r, computed_in),
            _ => {}
        }
    }

    /// Records where the next instruction comes from, when that changes. Instructions
    /// without a position of their own keep the previous one.
    fn line(&mut self, inst: Option<Inst>) {
        let loc = inst.map(|i| self.f.locs[i]).filter(|l| *l != Loc::default()).or(self.last_loc).unwrap_or_default();
        if self.last_loc != Some(loc) || self.lines.is_empty() {
            // An instruction that emitted nothing leaves its entry to the next one.
            if self.lines.last().is_some_and(|l| l.0 == self.out.len()) {
                self.lines.pop();
            }
            self.lines.push((self.out.len(), loc));
            self.last_loc = Some(loc);
        }
    }

    fn block(&mut self, b: Block, next: Option<Block>) -> Result<(), CodegenError> {
        let f = self.f;
        let data = &f.blocks[b];
        let insts = &data.insts;
        self.spills_used = 0;
        let term = data.term.clone().ok_or(CodegenError::Malformed("a block without terminator"))?;
        // A comparison used only by the branch is fused into it; its operands are then
        // used at the terminator.
        let fused = match &term {
            Terminator::Branch { cond, .. } => {
                let only_use = insts.iter().all(|&i| !f.insts[i].uses().any(|u| u == *cond));
                insts.iter().position(|&i| matches!(&f.insts[i], InstData::Cmp { dst, .. } if dst == cond)).filter(|_| only_use)
            }
            _ => None,
        };
        // Positions: instruction k at k, the terminator at insts.len().
        let mut last_use: HashMap<Value, usize> = HashMap::default();
        for (k, &i) in insts.iter().enumerate() {
            let at = if Some(k) == fused { insts.len() } else { k };
            for u in f.insts[i].uses() {
                let e = last_use.entry(u).or_insert(at);
                *e = (*e).max(at);
            }
        }
        match &term {
            Terminator::Branch { cond, .. } if fused.is_none() => {
                last_use.insert(*cond, insts.len());
            }
            Terminator::Return(v) => {
                last_use.insert(*v, insts.len());
            }
            _ => {}
        }
        let calls: Vec<usize> = insts
            .iter()
            .enumerate()
            .filter(|(_, &i)| matches!(f.insts[i], InstData::Call { .. } | InstData::Loop { .. }))
            .map(|(k, _)| k)
            .collect();
        // Fold constants and frame addresses into their uses where every use allows it.
        let mut folded: HashSet<Value> = HashSet::default();
        for &i in insts {
            match &f.insts[i] {
                InstData::Const { dst, imm } if fits_imm(*imm) && self.imm_ok_everywhere(*dst, insts) => {
                    self.homes.insert(*dst, Home::Imm(*imm));
                    folded.insert(*dst);
                }
                InstData::SlotAddr { dst, slot, .. } if self.promotion.reg.contains_key(slot) => {
                    self.homes.insert(*dst, Home::Promoted(self.promotion.reg[slot]));
                    folded.insert(*dst);
                }
                InstData::SlotAddr { dst, slot, offset } => {
                    let off = self.slot_off[slot] + *offset as i16;
                    self.homes.insert(*dst, Home::Frame(off));
                    folded.insert(*dst);
                }
                InstData::Ctx { dst } => {
                    self.homes.insert(*dst, Home::Reg(self.ctx_reg));
                    folded.insert(*dst);
                }
                // A frame address plus a constant is a frame address: the offset is known,
                // so accesses through it stay `r10`-relative (and provably aligned).
                InstData::Bin { op: BinOp::Add, width: Width::W64, dst, a, b } => {
                    if let (Some(Home::Frame(o)), Some(Home::Imm(k))) = (self.homes.get(a).copied(), self.homes.get(b).copied()) {
                        if let Ok(off) = i16::try_from(i64::from(o) + k) {
                            self.homes.insert(*dst, Home::Frame(off));
                            folded.insert(*dst);
                        }
                    }
                }
                _ => {}
            }
        }
        // A value whose first use is a helper argument prefers that argument's register.
        let mut hint: HashMap<Value, u8> = HashMap::default();
        for &i in insts {
            if let InstData::Call { args, .. } = &f.insts[i] {
                for (k, a) in args.iter().enumerate() {
                    hint.entry(*a).or_insert(k as u8 + 1);
                }
            }
        }
        // A result the block's last instruction computes only to return it is computed in
        // `r0`, where those instructions leave `r0` alone until they write their result.
        if let (Terminator::Return(v), Some(&last)) = (&term, insts.last()) {
            let direct = match &f.insts[last] {
                InstData::Cmp { dst, .. } => *dst == *v && !self.in_loop && fused.is_none(),
                InstData::Load { dst, .. } | InstData::Ext { dst, .. } | InstData::Neg { dst, .. } => *dst == *v,
                // `r0 = a; r0 op= K`: the right operand must not need `r0` to be fetched.
                InstData::Bin { dst, b, .. } => *dst == *v && matches!(self.homes.get(b), Some(Home::Imm(_))),
                _ => false,
            };
            if direct && !self.homes.contains_key(v) {
                self.homes.insert(*v, Home::Reg(R0));
                folded.insert(*v);
            }
        }
        // Values that live in a promoted slot's register (`alias_promoted`) hold it too.
        let mut busy = self.promotion.busy.get(&b).cloned().unwrap_or_else(|| vec![0; insts.len() + 1]);
        busy.resize(insts.len() + 1, 0);
        self.alias_promoted(insts, &last_use, &mut busy, &mut folded);
        // The registers held at some point in `from..=to`.
        let busy_in = |from: usize, to: usize| busy[from.min(to)..=to.min(insts.len())].iter().fold(0u16, |m, x| m | x);
        // (The context's register is busy wherever the context is still needed.)
        let mut free: Vec<u8> = CALLEE_SAVED.iter().rev().chain(CALLER_SAVED.iter().rev()).copied().collect();
        let mut live_regs: HashMap<u8, Value> = HashMap::default();
        for (k, &i) in insts.iter().enumerate() {
            let data = &f.insts[i];
            if Some(k) == fused || self.promotion.dead_stores.contains(&i) {
                continue;
            }
            if let Some(d) = data.dst() {
                // A value nobody uses gets no home (its instruction runs for its effect).
                if let (false, Some(&end)) = (folded.contains(&d), last_use.get(&d)) {
                    let crosses = calls.iter().any(|&c| c > k && c < end);
                    let taken = busy_in(k + 1, end);
                    let ok = |r: &u8| taken & (1 << r) == 0;
                    // An operation whose first operand dies here computes in that operand's
                    // register (`r = a; r op= b` with `r` already holding `a`): each of these
                    // reads its first operand before, or as, it writes the result, and
                    // copes with the others (see `writes_before_reading`).
                    let first = match data {
                        InstData::Bin { a, .. } | InstData::Neg { a, .. } | InstData::Ext { a, .. } | InstData::Select { a, .. } => Some(*a),
                        _ => None,
                    };
                    let reuse = first.filter(|a| last_use.get(a) == Some(&k)).and_then(|a| {
                        live_regs.iter().find(|(_, v)| **v == a).map(|(r, _)| *r).filter(|r| ok(r) && (!crosses || CALLEE_SAVED.contains(r)))
                    });
                    let hinted = hint.get(&d).and_then(|h| free.iter().position(|r| r == h && ok(r))).filter(|_| !crosses);
                    let pick = hinted.or_else(|| free.iter().rposition(|r| ok(r) && (!crosses || CALLEE_SAVED.contains(r))));
                    let home = match (reuse, pick) {
                        (Some(r), _) => {
                            // The operand's entry becomes the result's: nothing to free.
                            live_regs.insert(r, d);
                            Home::Reg(r)
                        }
                        (None, Some(p)) => {
                            let r = free.remove(p);
                            live_regs.insert(r, d);
                            Home::Reg(r)
                        }
                        (None, None) => Home::Stack(self.spill_slot()?),
                    };
                    self.homes.insert(d, home);
                }
            }
            self.line(Some(i));
            self.inst(data)?;
            // Free the registers of values that die here.
            // In register order: the order of `free` decides later picks, and the output
            // must not depend on hash order.
            let mut dead: Vec<u8> = live_regs.iter().filter(|(_, v)| last_use.get(v).is_none_or(|&u| u <= k)).map(|(r, _)| *r).collect();
            dead.sort_unstable();
            for r in dead {
                live_regs.remove(&r);
                free.push(r);
            }
        }
        self.line(insts.last().copied());
        match term {
            Terminator::Jump(t) => {
                if Some(t) != next {
                    let at = self.ins(class::JMP | jmp::JA, 0, 0, 0, 0);
                    self.fixups.push((at, t));
                }
            }
            Terminator::Return(v) => {
                let r = self.fetch(v, R0);
                self.mov_reg(R0, r);
                self.ins(class::JMP | jmp::EXIT, 0, 0, 0, 0);
            }
            Terminator::Branch { cond, then, else_ } => {
                let (mut c, a, bv) = match fused.map(|k| &f.insts[insts[k]]) {
                    Some(InstData::Cmp { cond: c, a, b, .. }) => (*c, *a, Some(*b)),
                    _ => (Cond::Ne, cond, None),
                };
                let (mut taken, mut other) = (then, else_);
                if Some(then) == next {
                    c = negate(c);
                    std::mem::swap(&mut taken, &mut other);
                }
                let ra = self.fetch(a, R0);
                let at = match bv.map(|b| (b, self.homes.get(&b).copied())) {
                    None => self.ins(class::JMP | jmp_op(c) | SRC_K, ra, 0, 0, 0),
                    Some((_, Some(Home::Imm(i)))) => self.ins(class::JMP | jmp_op(c) | SRC_K, ra, 0, 0, i as i32),
                    Some((b, _)) => {
                        let rb = self.fetch(b, SCRATCH_A);
                        self.ins(class::JMP | jmp_op(c) | SRC_X, ra, rb, 0, 0)
                    }
                };
                self.fixups.push((at, taken));
                if Some(other) != next {
                    let at = self.ins(class::JMP | jmp::JA, 0, 0, 0, 0);
                    self.fixups.push((at, other));
                }
            }
        }
        Ok(())
    }

    /// Gives values a promoted slot's register where that saves a move:
    ///
    /// - a value loaded from the slot is the register itself, if nothing writes the
    ///   register before the value's last use (no store to a slot kept there, no call if
    ///   it is caller-saved);
    /// - a value computed here and stored whole into the slot is computed in the register,
    ///   if nothing else needs the register while the value lives (no access to a slot
    ///   kept there between the definition and the store, no store to one after it, no
    ///   call if it is caller-saved).
    ///
    /// `busy` (per point, see [`Promotion::busy`]) gains the points where such a value
    /// holds the register, and one value is only given a register no earlier one holds.
    fn alias_promoted(&mut self, insts: &[Inst], last_use: &HashMap<Value, usize>, busy: &mut [u16], folded: &mut HashSet<Value>) {
        let f = self.f;
        let n = insts.len();
        let mut held = vec![0u16; n + 1];
        let slot_reg = |e: &Self, ptr: &Value| match e.homes.get(ptr) {
            Some(Home::Promoted(r)) => Some(*r),
            _ => None,
        };
        // Does instruction `j` write register `r` (or, with `loads`, read it as a slot)?
        let touches = |e: &Self, j: usize, r: u8, loads: bool| match &f.insts[insts[j]] {
            InstData::Load { ptr, .. } if loads => slot_reg(e, ptr) == Some(r),
            InstData::Store { ptr, .. } => slot_reg(e, ptr) == Some(r),
            InstData::Call { .. } | InstData::Loop { .. } => !(6..=9).contains(&r),
            _ => false,
        };
        for (k, &i) in insts.iter().enumerate() {
            let (v, r, from, ok) = match &f.insts[i] {
                InstData::Load { dst, ptr, .. } => {
                    let (Some(r), Some(&end)) = (slot_reg(self, ptr), last_use.get(dst)) else { continue };
                    (*dst, r, k, (k + 1..end.min(n)).all(|j| !touches(self, j, r, false)))
                }
                InstData::Store { ptr, size, val, .. }
                    if (*size == 8 || self.narrow.get(val).is_some_and(|n| n <= size))
                        && !self.homes.contains_key(val)
                        && !self.promotion.dead_stores.contains(&i) =>
                {
                    let Some(r) = slot_reg(self, ptr) else { continue };
                    let Some(d) = insts[..k].iter().position(|&j| f.insts[j].dst() == Some(*val)) else { continue };
                    let end = last_use.get(val).copied().unwrap_or(k).min(n);
                    let ok = (d + 1..k).all(|j| !touches(self, j, r, true)) && (k + 1..end).all(|j| !touches(self, j, r, false));
                    // A `select` writes its result before it reads all its operands: none of
                    // them may be in the register, so it is held from before the definition
                    // (see `writes_before_reading`).
                    let from = if writes_before_reading(&f.insts[insts[d]]) { d } else { d + 1 };
                    (*val, r, from, ok)
                }
                _ => continue,
            };
            // Likewise through the point after the last use, if that instruction is a
            // `select` (or comparison) whose result could land in the register before it
            // reads the value.
            let last = last_use.get(&v).copied().unwrap_or(from).max(k);
            let to = (last + usize::from(insts.get(last).is_some_and(|&j| writes_before_reading(&f.insts[j])))).min(n);
            if !ok || held[from..=to].iter().any(|m| m & (1 << r) != 0) {
                continue;
            }
            for m in &mut held[from..=to] {
                *m |= 1 << r;
            }
            self.homes.insert(v, Home::Reg(r));
            folded.insert(v);
        }
        for (b, h) in busy.iter_mut().zip(held) {
            *b |= h;
        }
    }

    /// True if every use of `v` in `insts` can take it as an immediate.
    fn imm_ok_everywhere(&self, v: Value, insts: &[Inst]) -> bool {
        insts.iter().all(|&i| match &self.f.insts[i] {
            InstData::Bin { a, .. } => *a != v,
            InstData::Cmp { a, .. } => *a != v,
            InstData::Select { x, .. } => *x != v,
            InstData::Store { ptr, .. } => *ptr != v,
            // Helper arguments are moved into r1-r5 anyway: a constant goes straight there.
            InstData::Call { .. } => true,
            InstData::Loop { ctx_ptr, .. } => *ctx_ptr != v,
            // The operand and the expected value are moved to r5 and r0 anyway.
            InstData::Atomic { ptr, .. } => *ptr != v,
            other => !other.uses().any(|u| u == v),
        })
    }

    fn inst(&mut self, data: &InstData) -> Result<(), CodegenError> {
        match data {
            InstData::Const { dst, imm } => {
                if !matches!(self.homes.get(dst), Some(Home::Imm(_))) {
                    let t = self.target(*dst, R0);
                    self.mov_imm(t, *imm);
                    self.settle(*dst, t);
                }
            }
            InstData::SlotAddr { .. } => {}
            InstData::Ctx { .. } => {}
            InstData::Copy { dst, a } => {
                let r = self.fetch(*a, R0);
                self.settle(*dst, r);
            }
            InstData::Bin { op, width, dst, a, b } => {
                let class = if *width == Width::W32 { class::ALU } else { class::ALU64 };
                let (code, off) = alu_op(*op);
                let t = self.target(*dst, SCRATCH_A);
                if self.homes.get(b) == Some(&Home::Reg(t)) && self.homes.get(a) != Some(&Home::Reg(t)) {
                    // The result goes where the right operand is (a register shared with
                    // a promoted slot): `t = a` first would lose it.
                    if matches!(op, BinOp::Add | BinOp::Mul | BinOp::And | BinOp::Or | BinOp::Xor) {
                        let ra = self.fetch(*a, R0);
                        self.ins(class | code | SRC_X, t, ra, off, 0);
                    } else {
                        let ra = self.fetch(*a, SCRATCH_A);
                        self.mov_reg(SCRATCH_A, ra);
                        self.ins(class | code | SRC_X, SCRATCH_A, t, off, 0);
                        self.mov_reg(t, SCRATCH_A);
                    }
                    self.settle(*dst, t);
                    return Ok(());
                }
                let ra = self.fetch(*a, t);
                self.mov_reg(t, ra);
                match self.homes.get(b).copied() {
                    Some(Home::Imm(i)) => {
                        self.ins(class | code | SRC_K, t, 0, off, i as i32);
                    }
                    _ => {
                        let rb = self.fetch(*b, R0);
                        self.ins(class | code | SRC_X, t, rb, off, 0);
                    }
                }
                self.settle(*dst, t);
            }
            InstData::Neg { width, dst, a } => {
                let t = self.target(*dst, SCRATCH_A);
                let ra = self.fetch(*a, t);
                self.mov_reg(t, ra);
                let class = if *width == Width::W32 { class::ALU } else { class::ALU64 };
                self.ins(class | alu::NEG, t, 0, 0, 0);
                self.settle(*dst, t);
            }
            InstData::Select { cond, dst, x, y, a, b } => {
                // t = a; if (x cond y) goto over; t = b; over:
                let t = self.target(*dst, SCRATCH_B);
                let ra = self.fetch(*a, t);
                self.mov_reg(t, ra);
                let rx = self.fetch(*x, R0);
                let at = match self.homes.get(y).copied() {
                    Some(Home::Imm(i)) => self.ins(class::JMP | jmp_op(*cond) | SRC_K, rx, 0, 0, i as i32),
                    _ => {
                        let ry = self.fetch(*y, SCRATCH_A);
                        self.ins(class::JMP | jmp_op(*cond) | SRC_X, rx, ry, 0, 0)
                    }
                };
                let rb = self.fetch(*b, t);
                self.mov_reg(t, rb);
                self.out[at].off = i16::try_from(self.out.len() - at - 1).map_err(|_| CodegenError::TooLarge)?;
                self.settle(*dst, t);
            }
            InstData::Cmp { cond, dst, a, b } if !self.in_loop => {
                // Outside loops the verifier's extra path is cheap: a jump over a move.
                let t = self.target(*dst, SCRATCH_B);
                let ra = self.fetch(*a, R0);
                let rb = match self.homes.get(b).copied() {
                    Some(Home::Imm(_)) => None,
                    _ => Some(self.fetch(*b, SCRATCH_A)),
                };
                let jump = |e: &mut Self, c: Cond, off: i16| match rb {
                    None => {
                        let Some(Home::Imm(i)) = e.homes.get(b).copied() else { unreachable!() };
                        e.ins(class::JMP | jmp_op(c) | SRC_K, ra, 0, off, i as i32)
                    }
                    Some(rb) => e.ins(class::JMP | jmp_op(c) | SRC_X, ra, rb, off, 0),
                };
                if t != ra && Some(t) != rb {
                    // t = 1; if (a cond b) goto +1; t = 0
                    self.ins(class::ALU64 | alu::MOV | SRC_K, t, 0, 0, 1);
                    jump(self, *cond, 1);
                    self.ins(class::ALU64 | alu::MOV | SRC_K, t, 0, 0, 0);
                } else {
                    // if (a cond b) goto +2; t = 0; goto +1; t = 1
                    jump(self, *cond, 2);
                    self.ins(class::ALU64 | alu::MOV | SRC_K, t, 0, 0, 0);
                    self.ins(class::JMP | jmp::JA, 0, 0, 1, 0);
                    self.ins(class::ALU64 | alu::MOV | SRC_K, t, 0, 0, 1);
                }
                self.settle(*dst, t);
            }
            InstData::Cmp { cond, dst, a, b } => {
                // Inside a loop, branch-free: a comparison kept as a value then adds no path
                // for the kernel verifier to explore on every iteration (a comparison that
                // only feeds a branch is fused into the jump instead, see `block`).
                let (x, y, negate_result) = match cond {
                    Cond::Eq | Cond::Ne => (*a, *b, *cond == Cond::Eq),
                    Cond::ULt | Cond::SLt => (*a, *b, false),
                    Cond::UGt | Cond::SGt => (*b, *a, false),
                    Cond::UGe | Cond::SGe => (*a, *b, true),
                    Cond::ULe | Cond::SLe => (*b, *a, true),
                };
                // x in r0, y in r5.
                self.operand_to(x, R0, SCRATCH_A);
                self.operand_to(y, SCRATCH_A, R0);
                let (r0, r5, r9) = (R0, SCRATCH_A, SCRATCH_B);
                let i = |e: &mut Self, code: u8, dst: u8, src: u8, imm: i32| {
                    e.ins(code, dst, src, 0, imm);
                };
                let x64 = class::ALU64;
                match cond {
                    Cond::Eq | Cond::Ne => {
                        // t = x ^ y; ne = (t | -t) >> 63
                        i(self, x64 | alu::XOR | SRC_X, r0, r5, 0);
                        i(self, x64 | alu::MOV | SRC_X, r9, r0, 0);
                        i(self, x64 | alu::NEG, r9, 0, 0);
                        i(self, x64 | alu::OR | SRC_X, r9, r0, 0);
                        i(self, x64 | alu::RSH | SRC_K, r9, 0, 63);
                    }
                    _ => {
                        let signed = matches!(cond, Cond::SLt | Cond::SGt | Cond::SGe | Cond::SLe);
                        if signed {
                            // Flip the sign bits: signed order becomes unsigned order.
                            i(self, x64 | alu::MOV | SRC_K, r9, 0, 1);
                            i(self, x64 | alu::LSH | SRC_K, r9, 0, 63);
                            i(self, x64 | alu::XOR | SRC_X, r0, r9, 0);
                            i(self, x64 | alu::XOR | SRC_X, r5, r9, 0);
                        }
                        // d = x - y; t = x ^ y; lt = ((t & y) | (~t & d)) >> 63
                        i(self, x64 | alu::MOV | SRC_X, r9, r0, 0);
                        i(self, x64 | alu::XOR | SRC_X, r9, r5, 0);
                        i(self, x64 | alu::SUB | SRC_X, r0, r5, 0);
                        i(self, x64 | alu::AND | SRC_X, r5, r9, 0);
                        i(self, x64 | alu::XOR | SRC_K, r9, 0, -1);
                        i(self, x64 | alu::AND | SRC_X, r9, r0, 0);
                        i(self, x64 | alu::OR | SRC_X, r9, r5, 0);
                        i(self, x64 | alu::RSH | SRC_K, r9, 0, 63);
                    }
                }
                if negate_result {
                    i(self, x64 | alu::XOR | SRC_K, r9, 0, 1);
                }
                self.settle(*dst, r9);
            }
            InstData::Ext { bits, signed, dst, a } => {
                let t = self.target(*dst, SCRATCH_A);
                let ra = self.fetch(*a, t);
                match (*bits, *signed) {
                    (32, false) => {
                        self.ins(class::ALU | alu::MOV | SRC_X, t, ra, 0, 0);
                    }
                    (bits, false) => {
                        self.mov_reg(t, ra);
                        self.ins(class::ALU64 | alu::AND | SRC_K, t, 0, 0, ((1i64 << bits) - 1) as i32);
                    }
                    (bits, true) => {
                        // Sign-extend the low `bits` bits by two shifts, not ISA v4's
                        // `movsx`, which kernels before 6.6 (Debian 12's 6.1) refuse
                        // ("BPF_MOV uses reserved fields").
                        let k = 64 - i32::from(bits);
                        self.mov_reg(t, ra);
                        self.ins(class::ALU64 | alu::LSH | SRC_K, t, 0, 0, k);
                        self.ins(class::ALU64 | alu::ARSH | SRC_K, t, 0, 0, k);
                    }
                }
                self.settle(*dst, t);
            }
            InstData::Load { dst, ptr, .. } if matches!(self.homes.get(ptr), Some(Home::Promoted(_))) => {
                let Some(&Home::Promoted(r)) = self.homes.get(ptr) else { unreachable!() };
                // The register holds what a load of the slot's size would give.
                self.settle(*dst, r);
            }
            InstData::Store { ptr, size, val, .. } if matches!(self.homes.get(ptr), Some(Home::Promoted(_))) => {
                let Some(&Home::Promoted(r)) = self.homes.get(ptr) else { unreachable!() };
                // Keep what a store of `size` bytes and a load of them would give back.
                let fits = self.narrow.get(val).is_some_and(|n| n <= size);
                let mask = match size {
                    8 => None,
                    _ if fits => None,
                    s => Some((1i64 << (s * 8)) - 1),
                };
                match (self.homes.get(val).copied(), mask) {
                    (Some(Home::Imm(i)), None) => self.mov_imm(r, i),
                    (Some(Home::Imm(i)), Some(m)) => {
                        // The 32-bit move zero-extends.
                        self.ins(class::ALU | alu::MOV | SRC_K, r, 0, 0, (i & m) as i32);
                    }
                    (_, None) => {
                        let x = self.fetch(*val, r);
                        self.mov_reg(r, x);
                    }
                    (_, Some(m)) => {
                        let x = self.fetch(*val, r);
                        self.ins(class::ALU | alu::MOV | SRC_X, r, x, 0, 0);
                        if *size < 4 {
                            self.ins(class::ALU64 | alu::AND | SRC_K, r, 0, 0, m as i32);
                        }
                    }
                }
            }
            InstData::Load { dst, ptr, offset, size } => {
                let (base, off) = self.address(*ptr, *offset, SCRATCH_A);
                let t = self.target(*dst, R0);
                self.ins(class::LDX | size_code(*size) | MODE_MEM, t, base, off, 0);
                self.settle(*dst, t);
            }
            InstData::Store { ptr, offset, size, val } => {
                let (base, off) = self.address(*ptr, *offset, SCRATCH_A);
                match self.homes.get(val).copied() {
                    Some(Home::Imm(i)) => {
                        self.ins(class::ST | size_code(*size) | MODE_MEM, base, 0, off, i as i32);
                    }
                    _ => {
                        let r = self.fetch(*val, R0);
                        self.ins(class::STX | size_code(*size) | MODE_MEM, base, r, off, 0);
                    }
                }
            }
            InstData::MapRef { dst, map } => {
                let t = self.target(*dst, R0);
                let at = self.ins(class::LD | size::DW | MODE_IMM, t, 0, 0, 0);
                self.ins(0, 0, 0, 0, 0);
                self.relocs.push((at, RelocTarget::Map(*map)));
                self.settle(*dst, t);
            }
            InstData::Rodata { dst, offset } => {
                let t = self.target(*dst, R0);
                let at = self.ins(class::LD | size::DW | MODE_IMM, t, 0, 0, 0);
                self.ins(0, 0, 0, 0, 0);
                self.relocs.push((at, RelocTarget::Rodata(*offset)));
                self.settle(*dst, t);
            }
            InstData::Call { dst, helper, args } => {
                self.call_args(args)?;
                self.ins(class::JMP | jmp::CALL, 0, 0, 0, *helper as i32);
                self.settle(*dst, R0);
            }
            InstData::Atomic { op, size, dst, ptr, offset, val, expected } => {
                let (base, off) = self.address(*ptr, *offset, SCRATCH_B);
                let sz = size_code(*size);
                match op {
                    AtomicOp::FetchAdd => {
                        let r = self.fetch(*val, SCRATCH_A);
                        self.mov_reg(SCRATCH_A, r);
                        self.ins(class::STX | sz | MODE_ATOMIC, base, SCRATCH_A, off, i32::from(alu::ADD) | ATOMIC_FETCH);
                        self.settle(*dst, SCRATCH_A);
                    }
                    AtomicOp::CmpXchg => {
                        let e = expected.ok_or(CodegenError::Malformed("cmpxchg without an expected value"))?;
                        let r = self.fetch(*val, SCRATCH_A);
                        self.mov_reg(SCRATCH_A, r);
                        let re = self.fetch(e, R0);
                        self.mov_reg(R0, re);
                        self.ins(class::STX | sz | MODE_ATOMIC, base, SCRATCH_A, off, ATOMIC_CMPXCHG);
                        self.settle(*dst, R0);
                    }
                }
            }
            InstData::MemCopy { dst_ptr, src, size } => {
                let (sb, so) = self.address(*src, 0, SCRATCH_A);
                let (db, dof) = self.address(*dst_ptr, 0, SCRATCH_B);
                let mut k = 0u32;
                while k < *size {
                    // The widest access both addresses are aligned for: the verifier refuses
                    // misaligned stack accesses.
                    let step = step_for(*size - k, i32::from(so) + k as i32, i32::from(dof) + k as i32);
                    let sz = size_code(step as u8);
                    self.ins(class::LDX | sz | MODE_MEM, R0, sb, so + k as i16, 0);
                    self.ins(class::STX | sz | MODE_MEM, db, R0, dof + k as i16, 0);
                    k += step;
                }
            }
            InstData::Loop { dst, callback, count, ctx_ptr } => {
                // bpf_loop(count, callback, ctx, 0): arguments in r1..r4.
                let rc = self.fetch(*count, 1);
                self.mov_reg(1, rc);
                let rp = self.fetch(*ctx_ptr, 3);
                self.mov_reg(3, rp);
                let at = self.ins(class::LD | size::DW | MODE_IMM, 2, 0, 0, 0);
                self.ins(0, 0, 0, 0, 0);
                self.relocs.push((at, RelocTarget::Callback(*callback)));
                self.ins(class::ALU64 | alu::MOV | SRC_K, 4, 0, 0, 0);
                self.ins(class::JMP | jmp::CALL, 0, 0, 0, BPF_LOOP);
                self.settle(*dst, R0);
            }
            InstData::MemZero { ptr, size } => {
                let (b, o) = self.address(*ptr, 0, SCRATCH_A);
                let mut k = 0u32;
                while k < *size {
                    let step = step_for(*size - k, i32::from(o) + k as i32, i32::from(o) + k as i32);
                    self.ins(class::ST | size_code(step as u8) | MODE_MEM, b, 0, o + k as i16, 0);
                    k += step;
                }
            }
        }
        Ok(())
    }

    /// Moves call arguments into `r1`..: register-to-register moves first (in an order that
    /// never overwrites a pending source, breaking cycles through `r0`), then the rest.
    fn call_args(&mut self, args: &[Value]) -> Result<(), CodegenError> {
        if args.len() > 5 {
            return Err(CodegenError::Malformed("a helper call with more than five arguments"));
        }
        let mut reg_moves: Vec<(u8, u8)> = Vec::new();
        let mut others: Vec<(u8, Value)> = Vec::new();
        for (i, a) in args.iter().enumerate() {
            let dst = i as u8 + 1;
            match self.homes.get(a).copied() {
                Some(Home::Reg(r)) if r != dst => reg_moves.push((dst, r)),
                Some(Home::Reg(_)) => {}
                _ => others.push((dst, *a)),
            }
        }
        while !reg_moves.is_empty() {
            let ready = reg_moves.iter().position(|(d, _)| !reg_moves.iter().any(|(_, s)| s == d));
            match ready {
                Some(k) => {
                    let (d, s) = reg_moves.remove(k);
                    self.mov_reg(d, s);
                }
                None => {
                    // A cycle: park one source in r0.
                    let s = reg_moves[0].1;
                    self.mov_reg(R0, s);
                    for m in reg_moves.iter_mut() {
                        if m.1 == s {
                            m.1 = R0;
                        }
                    }
                }
            }
        }
        for (dst, v) in others {
            let r = self.fetch(v, dst);
            self.mov_reg(dst, r);
        }
        Ok(())
    }
}

/// The body of a built-in `bpf_loop` callback: `long name(u32 index, void *ctx)`.
pub fn callback(cb: Callback) -> Vec<Insn> {
    let i = |code: u8, dst: u8, src: u8, off: i16, imm: i32| Insn { code, dst, src, off, imm };
    match cb {
        // r6 = ctx; r0 = ktime_get_ns(); stop (return 1) once r0 >= *(u64 *)ctx.
        Callback::WaitUntil => vec![
            i(class::ALU64 | alu::MOV | SRC_X, 6, 2, 0, 0),
            i(class::JMP | jmp::CALL, 0, 0, 0, 5),
            i(class::LDX | size::DW | MODE_MEM, 1, 6, 0, 0),
            i(class::JMP | jmp::JGE | SRC_X, 0, 1, 2, 0),
            i(class::ALU64 | alu::MOV | SRC_K, 0, 0, 0, 0),
            i(class::JMP | jmp::EXIT, 0, 0, 0, 0),
            i(class::ALU64 | alu::MOV | SRC_K, 0, 0, 0, 1),
            i(class::JMP | jmp::EXIT, 0, 0, 0, 0),
        ],
    }
}

/// The symbol name of a callback in `.text`.
pub fn callback_name(cb: Callback) -> &'static str {
    match cb {
        Callback::WaitUntil => "scl_wait_until",
    }
}
