//! A cursor for building a [`Function`]: it appends to the current block and hands back
//! the values it defines.
#![allow(clippy::new_without_default)]

use crate::ir::*;
use scl_sema::hir::Loc;

/// Appends instructions to one function, which it owns until [`Builder::finish`].
pub struct Builder {
    /// The function being built.
    pub func: Function,
    /// The block instructions go to.
    pub block: Block,
    /// The source position recorded for new instructions.
    pub loc: Loc,
}

impl Builder {
    /// A builder at the entry of a new function.
    pub fn new() -> Builder {
        let func = Function::new();
        let block = func.entry();
        Builder { func, block, loc: Loc::default() }
    }

    /// The function built.
    pub fn finish(self) -> Function {
        self.func
    }

    /// A new, empty block (placed after the others).
    pub fn create_block(&mut self) -> Block {
        let b = self.func.blocks.push(BlockData::default());
        self.func.layout.push(b);
        b
    }

    /// Continues in `b`.
    pub fn switch_to(&mut self, b: Block) {
        self.block = b;
    }

    /// True if the current block already ends.
    pub fn is_terminated(&self) -> bool {
        self.func.blocks[self.block].term.is_some()
    }

    /// Ends the current block (if it does not end already).
    pub fn terminate(&mut self, t: Terminator) {
        let data = &mut self.func.blocks[self.block];
        if data.term.is_none() {
            data.term = Some(t);
        }
    }

    /// A new value of kind `ty`.
    pub fn value(&mut self, ty: ValTy) -> Value {
        self.func.values.push(ValueData { ty })
    }

    /// Appends `inst`.
    pub fn push(&mut self, inst: InstData) -> Inst {
        let i = self.func.insts.push(inst);
        self.func.locs[i] = self.loc;
        if self.func.blocks[self.block].term.is_none() {
            self.func.blocks[self.block].insts.push(i);
        }
        i
    }

    /// A new stack slot.
    pub fn slot(&mut self, size: u32, name: impl Into<String>) -> Slot {
        self.func.slots.push(SlotData { size: size.max(1).div_ceil(8) * 8, name: name.into(), whole_function: false })
    }

    /// A slot live for the whole function (see [`SlotData::whole_function`]).
    pub fn slot_for_function(&mut self, size: u32, name: impl Into<String>) -> Slot {
        let s = self.slot(size, name);
        self.func.slots[s].whole_function = true;
        s
    }

    /// `iconst`.
    pub fn iconst(&mut self, imm: i64) -> Value {
        let dst = self.value(ValTy::Int);
        self.push(InstData::Const { dst, imm });
        dst
    }

    /// `a op b`.
    pub fn bin(&mut self, op: BinOp, width: Width, a: Value, b: Value) -> Value {
        let dst = self.value(ValTy::Int);
        self.push(InstData::Bin { op, width, dst, a, b });
        dst
    }

    /// `ptr + off`: a pointer of the same kind, moved by a run-time offset.
    pub fn ptr_add(&mut self, ptr: Value, off: Value) -> Value {
        let ty = self.func.values[ptr].ty;
        let dst = self.value(ty);
        self.push(InstData::Bin { op: BinOp::Add, width: Width::W64, dst, a: ptr, b: off });
        dst
    }

    /// `a cond b` as 0/1.
    pub fn cmp(&mut self, cond: Cond, a: Value, b: Value) -> Value {
        let dst = self.value(ValTy::Int);
        self.push(InstData::Cmp { cond, dst, a, b });
        dst
    }

    /// `(x cond y) ? a : b`.
    pub fn select(&mut self, cond: Cond, x: Value, y: Value, a: Value, b: Value) -> Value {
        let dst = self.value(ValTy::Int);
        self.push(InstData::Select { cond, dst, x, y, a, b });
        dst
    }

    /// Canonicalise to `bits` bits.
    pub fn ext(&mut self, bits: u8, signed: bool, a: Value) -> Value {
        if bits >= 64 {
            return a;
        }
        let dst = self.value(ValTy::Int);
        self.push(InstData::Ext { bits, signed, dst, a });
        dst
    }

    /// A load of `size` bytes.
    pub fn load(&mut self, ptr: Value, offset: i16, size: u8) -> Value {
        let dst = self.value(ValTy::Int);
        self.push(InstData::Load { dst, ptr, offset, size });
        dst
    }

    /// A load of a pointer spilled to the stack earlier (`ty` is what it points to).
    pub fn load_ptr(&mut self, ptr: Value, offset: i16, ty: ValTy) -> Value {
        let dst = self.value(ty);
        self.push(InstData::Load { dst, ptr, offset, size: 8 });
        dst
    }

    /// A store of `size` bytes.
    pub fn store(&mut self, ptr: Value, offset: i16, size: u8, val: Value) {
        self.push(InstData::Store { ptr, offset, size, val });
    }

    /// The address of `slot` + `offset`.
    pub fn slot_addr(&mut self, slot: Slot, offset: u32) -> Value {
        let dst = self.value(ValTy::Stack);
        self.push(InstData::SlotAddr { dst, slot, offset });
        dst
    }

    /// A helper call.
    pub fn call(&mut self, helper: u32, args: Vec<Value>, ret: ValTy) -> Value {
        let dst = self.value(ret);
        self.push(InstData::Call { dst, helper, args });
        dst
    }

    /// The context pointer.
    pub fn ctx(&mut self) -> Value {
        let dst = self.value(ValTy::Ctx);
        self.push(InstData::Ctx { dst });
        dst
    }
}
