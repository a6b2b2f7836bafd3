//! The IR's data: a module of BPF maps, read-only config and one program per hook; each
//! program a function of basic blocks over SSA values.
//!
//! The IR is shaped for BPF. Values are 64-bit registers holding their integer type's
//! value canonically (unsigned zero-extended, signed sign-extended). Locals of the source
//! live in stack slots and are reached with `slot_addr` + `load`/`store`, so every SSA value
//! is used only in the block that defines it: register allocation is local to a block, and
//! the verifier (`verify.rs`) checks that invariant. Pointers are values too, and carry
//! the BPF verifier's view of what they point to in `ValueData::ty`.

use cranelift_entity::{entity_impl, PrimaryMap, SecondaryMap};
use rustc_hash::FxHashMap as HashMap;
use scl_catalogue::{HookDef, MapKind};
use scl_sema::hir::{Loc, StateId};
use scl_sema::ty::Ty as SclTy;

/// An SSA value.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Value(u32);
entity_impl!(Value, "v");

/// A basic block.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Block(u32);
entity_impl!(Block, "block");

/// An instruction.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Inst(u32);
entity_impl!(Inst, "inst");

/// A stack slot.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Slot(u32);
entity_impl!(Slot, "slot");

/// A BPF map of the module.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MapId(u32);
entity_impl!(MapId, "map");

/// What a value holds, as the BPF verifier will see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValTy {
    /// A scalar (an integer or bool in its canonical 64-bit form).
    Int,
    /// The program's context pointer.
    Ctx,
    /// A pointer into the stack frame.
    Stack,
    /// A pointer into a map value (already checked against null).
    MapValue,
    /// A map value pointer that may be null (the result of a lookup, before its check).
    MapValueOrNull,
    /// A map reference (`ld_imm64` of a map), for helper calls.
    MapRef,
}

/// Operand width of arithmetic: BPF's 32-bit ALU zero-extends its result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Width {
    /// 32-bit ALU.
    W32,
    /// 64-bit ALU.
    W64,
}

/// Binary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinOp {
    /// Wrapping addition.
    Add,
    /// Wrapping subtraction.
    Sub,
    /// Wrapping multiplication.
    Mul,
    /// Unsigned division (x / 0 = 0).
    UDiv,
    /// Signed division (ISA v4 `sdiv`).
    SDiv,
    /// Unsigned remainder (x % 0 = x).
    URem,
    /// Signed remainder.
    SRem,
    /// Bitwise and.
    And,
    /// Bitwise or.
    Or,
    /// Bitwise xor.
    Xor,
    /// Shift left.
    Shl,
    /// Logical shift right.
    LShr,
    /// Arithmetic shift right.
    AShr,
}

/// Comparisons; the result is 0 or 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cond {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// unsigned `<`
    ULt,
    /// unsigned `<=`
    ULe,
    /// unsigned `>`
    UGt,
    /// unsigned `>=`
    UGe,
    /// signed `<`
    SLt,
    /// signed `<=`
    SLe,
    /// signed `>`
    SGt,
    /// signed `>=`
    SGe,
}

/// Atomic read-modify-write operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AtomicOp {
    /// Fetch-and-add: the old value is the result.
    FetchAdd,
    /// Compare-and-exchange: the old value is the result.
    CmpXchg,
}

/// One instruction. Every variant with a `dst` defines that value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InstData {
    /// `dst = imm`.
    Const {
        /// Result.
        dst: Value,
        /// The constant, as 64 bits.
        imm: i64,
    },
    /// `dst = ctx`: the program's context pointer (its first argument).
    Ctx {
        /// Result.
        dst: Value,
    },
    /// `dst = a op b`.
    Bin {
        /// Operator.
        op: BinOp,
        /// Width.
        width: Width,
        /// Result.
        dst: Value,
        /// Left operand.
        a: Value,
        /// Right operand.
        b: Value,
    },
    /// `dst = -a`.
    Neg {
        /// Width.
        width: Width,
        /// Result.
        dst: Value,
        /// Operand.
        a: Value,
    },
    /// `dst = (a cond b) ? 1 : 0`.
    Cmp {
        /// Comparison.
        cond: Cond,
        /// Result.
        dst: Value,
        /// Left operand.
        a: Value,
        /// Right operand.
        b: Value,
    },
    /// `dst = (x cond y) ? a : b`: `min`/`max` outside loops, where a jump over a move is
    /// cheaper than computing the choice without branches.
    Select {
        /// Comparison.
        cond: Cond,
        /// Result.
        dst: Value,
        /// Left operand of the comparison.
        x: Value,
        /// Right operand of the comparison.
        y: Value,
        /// The result when the comparison holds.
        a: Value,
        /// The result otherwise.
        b: Value,
    },
    /// Canonicalise to an integer of `bits` bits: zero- or sign-extend the low bits.
    Ext {
        /// 8, 16, 32 (64 is a copy).
        bits: u8,
        /// Sign-extend.
        signed: bool,
        /// Result.
        dst: Value,
        /// Operand.
        a: Value,
    },
    /// `dst = a`.
    Copy {
        /// Result.
        dst: Value,
        /// Source.
        a: Value,
    },
    /// `dst = *(size *)(ptr + offset)`, zero-extended.
    Load {
        /// Result.
        dst: Value,
        /// Base pointer.
        ptr: Value,
        /// Byte offset.
        offset: i16,
        /// 1, 2, 4 or 8 bytes.
        size: u8,
    },
    /// `*(size *)(ptr + offset) = val`.
    Store {
        /// Base pointer.
        ptr: Value,
        /// Byte offset.
        offset: i16,
        /// 1, 2, 4 or 8 bytes.
        size: u8,
        /// Value stored.
        val: Value,
    },
    /// `dst = &slot + offset` (a stack pointer).
    SlotAddr {
        /// Result.
        dst: Value,
        /// The slot.
        slot: Slot,
        /// Byte offset into it.
        offset: u32,
    },
    /// `dst = map` (`ld_imm64` with a map relocation).
    MapRef {
        /// Result.
        dst: Value,
        /// The map.
        map: MapId,
    },
    /// `dst = &.rodata + offset`: the address of a config value.
    Rodata {
        /// Result.
        dst: Value,
        /// Byte offset in `.rodata`.
        offset: u32,
    },
    /// `dst = helper(args)`.
    Call {
        /// Result (`r0`); every helper returns something.
        dst: Value,
        /// BPF helper id.
        helper: u32,
        /// Arguments (`r1`..`r5`).
        args: Vec<Value>,
    },
    /// An atomic read-modify-write of `*(size *)(ptr + offset)`; `dst` is the old value.
    Atomic {
        /// Operation.
        op: AtomicOp,
        /// 4 or 8 bytes.
        size: u8,
        /// Old value.
        dst: Value,
        /// Base pointer.
        ptr: Value,
        /// Byte offset.
        offset: i16,
        /// Operand (the addend, or the new value for compare-and-exchange).
        val: Value,
        /// The expected value (compare-and-exchange only).
        expected: Option<Value>,
    },
    /// Copies `size` bytes from `src` to `dst_ptr` (both pointers), in 8-byte steps.
    MemCopy {
        /// Destination pointer.
        dst_ptr: Value,
        /// Source pointer.
        src: Value,
        /// Bytes, a multiple of the alignment of both.
        size: u32,
    },
    /// `dst = bpf_loop(count, callback, ctx_ptr, 0)`: runs a built-in callback up to
    /// `count` times; the callback is verified once, however many times it runs.
    Loop {
        /// Iterations run (the helper's result).
        dst: Value,
        /// The callback.
        callback: Callback,
        /// The most iterations.
        count: Value,
        /// The callback's context (a stack pointer).
        ctx_ptr: Value,
    },
    /// Zeroes `size` bytes at `ptr`.
    MemZero {
        /// Pointer.
        ptr: Value,
        /// Bytes.
        size: u32,
    },
}

impl InstData {
    /// The value this instruction defines, if any.
    pub fn dst(&self) -> Option<Value> {
        match self {
            InstData::Const { dst, .. }
            | InstData::Ctx { dst }
            | InstData::Bin { dst, .. }
            | InstData::Neg { dst, .. }
            | InstData::Cmp { dst, .. }
            | InstData::Select { dst, .. }
            | InstData::Ext { dst, .. }
            | InstData::Copy { dst, .. }
            | InstData::Load { dst, .. }
            | InstData::SlotAddr { dst, .. }
            | InstData::MapRef { dst, .. }
            | InstData::Rodata { dst, .. }
            | InstData::Call { dst, .. }
            | InstData::Loop { dst, .. }
            | InstData::Atomic { dst, .. } => Some(*dst),
            InstData::Store { .. } | InstData::MemCopy { .. } | InstData::MemZero { .. } => None,
        }
    }

    /// The values this instruction reads, without allocating.
    pub fn uses(&self) -> Uses<'_> {
        let none = Value::from_u32(0);
        let (fixed, n, args): ([Value; 4], u8, &[Value]) = match self {
            InstData::Const { .. } | InstData::Ctx { .. } | InstData::SlotAddr { .. } | InstData::MapRef { .. } | InstData::Rodata { .. } => {
                ([none; 4], 0, &[])
            }
            InstData::Bin { a, b, .. } | InstData::Cmp { a, b, .. } => ([*a, *b, none, none], 2, &[]),
            InstData::Select { x, y, a, b, .. } => ([*x, *y, *a, *b], 4, &[]),
            InstData::Neg { a, .. } | InstData::Ext { a, .. } | InstData::Copy { a, .. } => ([*a, none, none, none], 1, &[]),
            InstData::Load { ptr, .. } => ([*ptr, none, none, none], 1, &[]),
            InstData::Store { ptr, val, .. } => ([*ptr, *val, none, none], 2, &[]),
            InstData::Call { args, .. } => ([none; 4], 0, args.as_slice()),
            InstData::Atomic { ptr, val, expected, .. } => match expected {
                Some(e) => ([*ptr, *val, *e, none], 3, &[]),
                None => ([*ptr, *val, none, none], 2, &[]),
            },
            InstData::MemCopy { dst_ptr, src, .. } => ([*dst_ptr, *src, none, none], 2, &[]),
            InstData::Loop { count, ctx_ptr, .. } => ([*count, *ctx_ptr, none, none], 2, &[]),
            InstData::MemZero { ptr, .. } => ([*ptr, none, none, none], 1, &[]),
        };
        Uses { fixed, n, next: 0, args: args.iter() }
    }

    /// True if removing the instruction could change behaviour even if its result is unused.
    pub fn has_side_effects(&self) -> bool {
        matches!(
            self,
            InstData::Store { .. } | InstData::Call { .. } | InstData::Loop { .. } | InstData::Atomic { .. } | InstData::MemCopy { .. } | InstData::MemZero { .. }
        )
    }
}

/// A BPF helper programs call.
#[derive(Clone, Copy, Debug)]
pub struct Helper {
    /// Its id.
    pub id: u32,
    /// Its name, without `bpf_`.
    pub name: &'static str,
    /// How many argument registers (`r1`..) it reads.
    pub args: u8,
    /// May write the memory its pointer arguments point to (a buffer, or what a callback
    /// is handed).
    pub writes_args: bool,
    /// May change map values other than through its arguments (an update in place, a
    /// delete).
    pub writes_maps: bool,
}

impl Helper {
    const fn new(id: u32, name: &'static str, args: u8, writes_args: bool, writes_maps: bool) -> Helper {
        Helper { id, name, args, writes_args, writes_maps }
    }
}

/// The BPF helpers programs call.
pub const HELPERS: &[Helper] = &[
    Helper::new(1, "map_lookup_elem", 2, false, false),
    Helper::new(2, "map_update_elem", 4, false, true),
    Helper::new(3, "map_delete_elem", 2, false, true),
    Helper::new(5, "ktime_get_ns", 0, false, false),
    Helper::new(7, "get_prandom_u32", 0, false, false),
    Helper::new(8, "get_smp_processor_id", 0, false, false),
    Helper::new(14, "get_current_pid_tgid", 0, false, false),
    // Writes the stack-trace map, which programs cannot read.
    Helper::new(27, "get_stackid", 3, false, false),
    Helper::new(42, "get_numa_node_id", 0, false, false),
    Helper::new(80, "get_current_cgroup_id", 0, false, false),
    Helper::new(130, "ringbuf_output", 4, false, false),
    Helper::new(148, "copy_from_user", 3, true, true),
    // The callback runs with whatever it is handed.
    Helper::new(181, "loop", 4, true, true),
];

/// Helper `id`; one not in [`HELPERS`] reads all five argument registers and may write
/// anything.
pub fn helper(id: u32) -> Helper {
    HELPERS.iter().find(|h| h.id == id).copied().unwrap_or(Helper { id, name: "", args: 5, writes_args: true, writes_maps: true })
}

/// The callbacks the back end provides for `bpf_loop`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Callback {
    /// Stops once `ktime_get_ns() >= *(u64 *)ctx` (a deadline): a bounded busy wait.
    WaitUntil,
}

/// How a block ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Terminator {
    /// Continue at a block.
    Jump(Block),
    /// Go to `then` if `cond` is non-zero, else to `else_`.
    Branch {
        /// The condition.
        cond: Value,
        /// Taken when non-zero.
        then: Block,
        /// Taken when zero.
        else_: Block,
    },
    /// Leave the program with `r0 = value`.
    Return(Value),
}

impl Terminator {
    /// The blocks control may go to next.
    pub fn successors(&self) -> Vec<Block> {
        match self {
            Terminator::Jump(b) => vec![*b],
            Terminator::Branch { then, else_, .. } => vec![*then, *else_],
            Terminator::Return(_) => Vec::new(),
        }
    }
}

/// A basic block: instructions, then a terminator.
#[derive(Clone, Debug, Default)]
pub struct BlockData {
    /// The instructions in order.
    pub insts: Vec<Inst>,
    /// How it ends; `None` only while it is being built.
    pub term: Option<Terminator>,
}

/// What a value is.
#[derive(Clone, Debug)]
pub struct ValueData {
    /// Its kind for the verifier.
    pub ty: ValTy,
}

/// A stack slot: a local of the source, or scratch space.
#[derive(Clone, Debug)]
pub struct SlotData {
    /// Size in bytes.
    pub size: u32,
    /// What it holds, for the printer.
    pub name: String,
    /// Live for the whole function: a pointer to it is kept (in another slot) past the
    /// blocks that take its address.
    pub whole_function: bool,
}

/// The values an instruction reads ([`InstData::uses`]): up to four operands, or a
/// call's arguments.
pub struct Uses<'a> {
    fixed: [Value; 4],
    n: u8,
    next: u8,
    args: std::slice::Iter<'a, Value>,
}

impl Iterator for Uses<'_> {
    type Item = Value;

    fn next(&mut self) -> Option<Value> {
        if self.next < self.n {
            self.next += 1;
            return Some(self.fixed[usize::from(self.next - 1)]);
        }
        self.args.next().copied()
    }
}

/// One program: the code of one hook.
#[derive(Clone, Debug)]
pub struct Function {
    /// The blocks; `layout` gives their order.
    pub blocks: PrimaryMap<Block, BlockData>,
    /// Every instruction.
    pub insts: PrimaryMap<Inst, InstData>,
    /// Every value.
    pub values: PrimaryMap<Value, ValueData>,
    /// Stack slots.
    pub slots: PrimaryMap<Slot, SlotData>,
    /// Where in the source each instruction comes from (for BTF line info).
    pub locs: SecondaryMap<Inst, Loc>,
    /// The order of blocks in the emitted code; the first is the entry.
    pub layout: Vec<Block>,
}

impl Function {
    /// An empty function with an entry block.
    pub fn new() -> Function {
        let mut f = Function {
            blocks: PrimaryMap::new(),
            insts: PrimaryMap::new(),
            values: PrimaryMap::new(),
            slots: PrimaryMap::new(),
            locs: SecondaryMap::new(),
            layout: Vec::new(),
        };
        let entry = f.blocks.push(BlockData::default());
        f.layout.push(entry);
        f
    }

    /// The entry block.
    pub fn entry(&self) -> Block {
        self.layout[0]
    }

    /// The slots that behave like variables: reached only through `slot_addr` at offset 0
    /// whose every use is the base of a load or a store of the whole slot, with one access
    /// size (its value in the map). A slot whose address goes anywhere else (a helper's
    /// key, a copy, an index, a stored value) is not among them. Also returns the slot of
    /// every offset-0 slot address.
    pub fn plain_slots(&self) -> (HashMap<Value, Slot>, HashMap<Slot, u8>) {
        let mut addr_of: HashMap<Value, Slot> = HashMap::default();
        let mut plain: HashMap<Slot, Option<u8>> = HashMap::default();
        for data in self.insts.values() {
            if let InstData::SlotAddr { dst, slot, offset } = data {
                if *offset == 0 {
                    addr_of.insert(*dst, *slot);
                } else {
                    plain.insert(*slot, None);
                }
            }
        }
        let escapes = |v: &Value, plain: &mut HashMap<Slot, Option<u8>>| {
            if let Some(s) = addr_of.get(v) {
                plain.insert(*s, None);
            }
        };
        for data in self.insts.values() {
            match data {
                InstData::Load { ptr, offset, size, .. } | InstData::Store { ptr, offset, size, .. } if addr_of.contains_key(ptr) => {
                    if let InstData::Store { val, .. } = data {
                        escapes(val, &mut plain);
                    }
                    let e = plain.entry(addr_of[ptr]).or_insert(Some(*size));
                    if *offset != 0 || *e != Some(*size) {
                        *e = None;
                    }
                }
                other => {
                    for u in other.uses() {
                        escapes(&u, &mut plain);
                    }
                }
            }
        }
        for b in &self.layout {
            match &self.blocks[*b].term {
                Some(Terminator::Branch { cond: v, .. }) | Some(Terminator::Return(v)) => escapes(v, &mut plain),
                _ => {}
            }
        }
        let plain = plain.into_iter().filter_map(|(s, size)| size.map(|n| (s, n))).collect();
        (addr_of, plain)
    }
}

impl Default for Function {
    fn default() -> Self {
        Function::new()
    }
}

/// Where a map comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MapOrigin {
    /// Policy state of these kinds: `global`, `per_lock`, `per_cpu`, `per_thread`.
    State(StateId),
    /// An explicit `map` declaration.
    Declared(StateId),
    /// A map the compiler adds (`scl_zero`, `scl_flags`).
    Hidden,
}

/// A BPF map of the module.
#[derive(Clone, Debug)]
pub struct MapDecl {
    /// Its name in the object (a C identifier).
    pub name: String,
    /// The kind.
    pub kind: MapKind,
    /// Key type (u32 for arrays; `None` for ring buffers).
    pub key: Option<SclTy>,
    /// Value type (`None` for ring buffers).
    pub value: Option<SclTy>,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Entries (bytes for ring buffers).
    pub max_entries: u32,
    /// Where it comes from.
    pub origin: MapOrigin,
}

/// A config value in `.rodata`.
#[derive(Clone, Debug)]
pub struct RodataVar {
    /// Its name.
    pub name: String,
    /// Its state id.
    pub state: StateId,
    /// Byte offset in `.rodata`.
    pub offset: u32,
    /// Size in bytes.
    pub size: u32,
    /// Its type.
    pub ty: SclTy,
    /// Its default value.
    pub default: u64,
}

/// One program of the module.
#[derive(Clone, Debug)]
pub struct Program {
    /// The hook it implements.
    pub hook: &'static HookDef,
    /// Its symbol name in the object.
    pub name: String,
    /// Its code.
    pub func: Function,
}

/// A whole policy in IR.
#[derive(Clone, Debug, Default)]
pub struct Module {
    /// The policy's name.
    pub name: String,
    /// The maps.
    pub maps: PrimaryMap<MapId, MapDecl>,
    /// Config values, laid out in `.rodata`.
    pub rodata: Vec<RodataVar>,
    /// One program per hook.
    pub programs: Vec<Program>,
}

impl Module {
    /// Size of `.rodata` in bytes.
    pub fn rodata_size(&self) -> u32 {
        self.rodata.iter().map(|v| v.offset + v.size).max().unwrap_or(0)
    }
}
