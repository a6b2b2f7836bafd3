//! Lowering a checked program to IR: one program per hook, user functions inlined.
//!
//! State becomes BPF maps: `global` a one-entry array, `per_cpu` a one-entry per-CPU
//! array, `per_lock` and `per_thread` LRU hashes keyed by the lock address and the thread
//! id, `config` a variable in `.rodata`. A hook looks up every state entry it uses once,
//! right before the first top-level statement that uses it (so an early return before it
//! costs no lookup), and keeps the pointer in a stack slot; `per_lock`/`per_thread` entries are
//! created zeroed on a miss (from zeroed stack bytes, or for values over
//! `ZERO_ON_STACK_MAX` bytes from the hidden all-zero map `scl_zero`), except in the
//! reorder hooks, which may not write state and read a missing entry as zero instead:
//! where such a hook reads one or two fields of an entry, it reads them (or zero) right
//! where it looks the entry up.
//!
//! Values are kept canonical: after arithmetic on a type narrower than its ALU width the
//! result is zero- or sign-extended again. Hook parameters are views of the context: the
//! 128-byte context of the syncord and sim targets (design §5), or the tracepoint's `u64`
//! arguments on the stock target, where the lock kind and the reader/writer bits come from
//! the tracepoint flags.
//!
//! The lowering of one hook (`FnCx`) is split by what it lowers: `hook.rs` the hook's body
//! and its state lookups, `stmt.rs` statements and branches, `place.rs` places and memory,
//! `expr.rs` expressions and inlined calls, `builtins.rs` built-ins and map methods;
//! `walk.rs` has the walks over the checked program that decide how to lower it. This file
//! has the module-wide part (maps, `.rodata`), the lowering contexts and the context's
//! fields.

use crate::builder::Builder;
use crate::ir::*;
use scl_catalogue::{self as cat, MapKind, Target};
use scl_sema::hir::{self, Arg, Body, Cond as HCond, ExprKind, LocalId, PlaceBase, Projection, StateId, StateStorage, Stmt};
use scl_sema::ty::{IntTy, Ty};
use scl_syntax::ast::{BinOp as HBin, UnOp};
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use walk::*;

pub use filter::{EventFilter, LOCK_TYPES};

mod builtins;
mod expr;
mod filter;
mod hook;
mod place;
mod stmt;
mod walk;

/// `lock:contention_begin` flags (the catalogue's `lcb`).
const LCB_F_SPIN: i64 = cat::lcb::SPIN as i64;
const LCB_F_READ: i64 = cat::lcb::READ as i64;
const LCB_F_WRITE: i64 = cat::lcb::WRITE as i64;
const LCB_F_RT: i64 = cat::lcb::RT as i64;
const LCB_F_PERCPU: i64 = cat::lcb::PERCPU as i64;
const LCB_F_MUTEX: i64 = cat::lcb::MUTEX as i64;

/// BPF helper ids used here.
mod helper {
    pub const MAP_LOOKUP: u32 = 1;
    pub const MAP_UPDATE: u32 = 2;
    pub const MAP_DELETE: u32 = 3;
    pub const KTIME: u32 = 5;
    pub const PRANDOM: u32 = 7;
    pub const SMP_ID: u32 = 8;
    pub const PID_TGID: u32 = 14;
    pub const NUMA_ID: u32 = 42;
    pub const CGROUP_ID: u32 = 80;
    pub const RINGBUF_OUTPUT: u32 = 130;
    pub const COPY_FROM_USER: u32 = 148;
}

/// The most polls of the clock a bounded wait (`back_off`, `sleep`) makes: at least tens
/// of milliseconds of polling, far more than any wait SCL allows.
const WAIT_POLLS: i64 = 1 << 20;

/// The section a program of `hook` goes to on `target`.
pub fn section(hook: &cat::HookDef, target: Target) -> String {
    match (target, hook.tracepoint) {
        (Target::Stock, Some(tp)) => format!("tp_btf/{tp}"),
        _ => "syscall".to_string(),
    }
}

/// Lowers `program` for `target`. The program must have checked without errors.
pub fn lower(program: &hir::Program, target: Target) -> Module {
    lower_filtered(program, target, &EventFilter::default())
}

/// Lowers `program` for `target` with `filter`'s guard at the entry of each hook (stock
/// only: the other targets have no tracepoint events to filter, and ignore it; see
/// `filter.rs`).
pub fn lower_filtered(program: &hir::Program, target: Target, filter: &EventFilter) -> Module {
    let mut cx = ModuleCx::new(program, target);
    if target == Target::Stock {
        cx.filter = filter.clone();
    }
    cx.declare_state();
    let Some(policy) = &program.policy else { return cx.module };
    cx.module.name = policy.name.clone();
    let mut hooks: Vec<&hir::HookImpl> = policy.hooks.iter().collect();
    // On stock, `contention_end` may need the flags `contention_begin` saw: a `contended`
    // program then records them, written by us if the policy has none.
    let stock_flags = target == Target::Stock && hooks.iter().any(|h| h.def.name == "contention_end" && uses_lock_flags(program, &h.body));
    if stock_flags {
        let id = cx.module.maps.push(MapDecl {
            name: "scl_flags".into(),
            kind: MapKind::LruHash,
            key: Some(Ty::U32),
            value: Some(Ty::U32),
            key_size: 4,
            value_size: 4,
            max_entries: 16384,
            origin: MapOrigin::Hidden,
        });
        cx.flags_map = Some(id);
    }
    // Begin-only filter terms pair each admitted beginning with its end (`filter.rs`).
    let pairing = cx.filter.has_begin_only_terms() && hooks.iter().any(|h| h.def.name == "contention_end");
    if pairing {
        cx.pair_map = Some(cx.module.maps.push(filter::pair_map()));
    }
    hooks.sort_by_key(|h| cat::HOOKS.iter().position(|d| d.name == h.def.name));
    for h in &hooks {
        if target == Target::Stock && !h.def.on_target(Target::Stock) {
            continue;
        }
        let func = FnCx::new(&mut cx, h.def, &h.body, &h.params).lower_hook(&h.body);
        cx.module.programs.push(Program { hook: h.def, name: h.def.name.to_string(), func });
    }
    if (stock_flags || pairing) && !hooks.iter().any(|h| h.def.name == "contended") {
        let def = cat::hook("contended").expect("in the catalogue");
        static EMPTY: std::sync::LazyLock<Body> = std::sync::LazyLock::new(Body::default);
        let func = FnCx::new(&mut cx, def, &EMPTY, &[]).lower_hook(&EMPTY);
        cx.module.programs.push(Program { hook: def, name: def.name.to_string(), func });
        cx.module.programs.sort_by_key(|p| cat::HOOKS.iter().position(|d| d.name == p.hook.name));
    }
    cx.module
}

/// Module-wide lowering state: which map or `.rodata` offset each piece of state got.
struct ModuleCx<'p> {
    program: &'p hir::Program,
    target: Target,
    module: Module,
    state_maps: HashMap<StateId, MapId>,
    rodata: HashMap<StateId, u32>,
    zero_map: Option<MapId>,
    flags_map: Option<MapId>,
    /// The events the programs see (stock only).
    filter: EventFilter,
    /// The map pairing a filtered beginning with its end (`filter.rs`).
    pair_map: Option<MapId>,
    /// The hidden stack-trace map, added by the first `kstack()`.
    kstack_map: Option<MapId>,
}

/// A C identifier for a state name (`hist::x` becomes `hist__x`).
pub fn c_name(name: &str) -> String {
    name.replace("::", "__").chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect()
}

impl<'p> ModuleCx<'p> {
    fn new(program: &'p hir::Program, target: Target) -> ModuleCx<'p> {
        ModuleCx { program, target, module: Module::default(), state_maps: HashMap::default(), rodata: HashMap::default(), zero_map: None, flags_map: None, filter: EventFilter::default(), pair_map: None, kstack_map: None }
    }

    /// The hidden all-zero map, with values of at least `size` bytes: added, or grown, on
    /// first need (`m.entry(k)` of a large value; `per_lock` state declares it upfront).
    fn zero_map_of(&mut self, size: u32) -> MapId {
        let value = |size| Ty::Array(Box::new(Ty::Int(IntTy { signed: false, bits: 8 })), size);
        match self.zero_map {
            Some(id) => {
                let m = &mut self.module.maps[id];
                if m.value_size < size {
                    m.value_size = size;
                    m.value = Some(value(size));
                }
                id
            }
            None => {
                let id = self.module.maps.push(MapDecl {
                    name: "scl_zero".into(),
                    kind: MapKind::Array,
                    key: Some(Ty::U32),
                    value: Some(value(size)),
                    key_size: 4,
                    value_size: size,
                    max_entries: 1,
                    origin: MapOrigin::Hidden,
                });
                self.zero_map = Some(id);
                id
            }
        }
    }

    /// The stack-trace map `kstack()` records into, added on first use.
    fn kstack_map(&mut self) -> MapId {
        if let Some(id) = self.kstack_map {
            return id;
        }
        let depth = cat::kstack::DEPTH;
        let id = self.module.maps.push(MapDecl {
            name: cat::kstack::MAP.into(),
            kind: MapKind::StackTrace,
            key: Some(Ty::U32),
            value: Some(Ty::Array(Box::new(Ty::U64), depth)),
            key_size: 4,
            value_size: depth * 8,
            max_entries: cat::kstack::ENTRIES,
            origin: MapOrigin::Hidden,
        });
        self.kstack_map = Some(id);
        id
    }

    fn declare_state(&mut self) {
        let program = self.program;
        let mut zero_size = 0u32;
        let mut rodata_end = 0u32;
        for (id, st) in program.states.iter() {
            let layout = program.layout(&st.ty);
            let (kind, key, cap) = match &st.storage {
                StateStorage::Config(default) => {
                    let offset = scl_sema::ty::align_to(rodata_end, layout.align.max(1));
                    rodata_end = offset + layout.size;
                    self.rodata.insert(id, offset);
                    self.module.rodata.push(RodataVar { name: c_name(&st.name), state: id, offset, size: layout.size, ty: st.ty.clone(), default: *default });
                    continue;
                }
                StateStorage::PerWaiter { .. } => continue,
                StateStorage::Global => (MapKind::Array, Some(Ty::U32), 1),
                StateStorage::PerCpu => (MapKind::PercpuArray, Some(Ty::U32), 1),
                StateStorage::PerLock => {
                    zero_size = zero_size.max(layout.size);
                    (MapKind::LruHash, Some(Ty::U64), st.capacity.unwrap_or(cat::limits::DEFAULT_CAPACITY))
                }
                StateStorage::PerThread => {
                    zero_size = zero_size.max(layout.size);
                    (MapKind::LruHash, Some(Ty::U32), st.capacity.unwrap_or(cat::limits::DEFAULT_CAPACITY))
                }
                StateStorage::Map { kind, key } => (*kind, key.clone(), st.capacity.unwrap_or(1)),
            };
            let ringbuf = kind == MapKind::Ringbuf;
            let key_size = key.as_ref().map_or(0, |k| program.layout(k).size);
            let origin = if st.kind == scl_syntax::ast::StateKind::Map { MapOrigin::Declared(id) } else { MapOrigin::State(id) };
            let map = self.module.maps.push(MapDecl {
                name: c_name(&st.name),
                kind,
                key: if ringbuf { None } else { key },
                value: if ringbuf { None } else { Some(st.ty.clone()) },
                key_size,
                value_size: if ringbuf { 0 } else { layout.size.max(1) },
                max_entries: u32::try_from(cap).unwrap_or(u32::MAX),
                origin,
            });
            self.state_maps.insert(id, map);
        }
        // Values up to `ZERO_ON_STACK_MAX` bytes are zeroed on the stack instead.
        if zero_size.div_ceil(8) * 8 > cat::limits::ZERO_ON_STACK_MAX {
            let size = zero_size.div_ceil(8) * 8;
            let id = self.module.maps.push(MapDecl {
                name: "scl_zero".into(),
                kind: MapKind::Array,
                key: Some(Ty::U32),
                value: Some(Ty::Array(Box::new(Ty::Int(IntTy { signed: false, bits: 8 })), size)),
                key_size: 4,
                value_size: size,
                max_entries: 1,
                origin: MapOrigin::Hidden,
            });
            self.zero_map = Some(id);
        }
    }
}

/// How a local of the source is reached in the current inlined frame.
#[derive(Clone, Copy, Debug)]
enum Binding {
    /// Its own stack slot.
    Slot(Slot),
    /// A pointer to somewhere else (an `inout` argument, an `if let` map value), spilled
    /// to this slot; `ValTy` is what it points into.
    Ref(Slot, ValTy),
    /// The hook's lock.
    Lock,
    /// A waiter of the context, at this byte offset.
    Waiter(u32),
    /// The `ok` parameter of `contention_end`.
    Ok,
    /// A scalar argument of an inlined one-expression function, used in the same block.
    Value(Value),
}

/// Where a value is stored. The pointer is derived only at the moment of the store, after
/// the value is computed: computing a value may open new blocks (an inlined call, a
/// lookup), and IR values never cross blocks.
#[derive(Clone, Copy)]
enum Dest<'p> {
    /// A stack slot, at a byte offset.
    Slot(Slot, u32),
    /// A place of the source, at a byte offset into it.
    Place(&'p hir::Place, u32),
}

/// One inlined body: its locals, and where a `return` goes.
struct Frame<'p> {
    body: &'p Body,
    locals: HashMap<LocalId, Binding>,
    /// For an inlined function: the result slot and the continuation block.
    ret: Option<(Option<Slot>, Block)>,
}

/// Lowering of one hook into one function.
struct FnCx<'m, 'p> {
    m: &'m mut ModuleCx<'p>,
    hook: &'static cat::HookDef,
    b: Builder,
    state_ptrs: HashMap<StateId, Slot>,
    /// Fields of state a reorder hook read once, where it looked the state up (see
    /// [`FnCx::prereads`]): (state, field indices) to the slot holding the value.
    preread: HashMap<(StateId, Vec<usize>), Slot>,
    /// The fields to read where each state is looked up ([`FnCx::prereads`]), found once
    /// per hook.
    to_preread: HashMap<StateId, Vec<(Vec<usize>, i64, u8)>>,
    exit: Block,
    frames: Vec<Frame<'p>>,
    /// (continue target, break target) of the enclosing loops.
    loops: Vec<(Block, Block)>,
    /// Loops around the code being lowered, counting those around an inlined call.
    loop_depth: u32,
    /// Where a hook that calls `sleep_after` adds up the nanoseconds it asks for: a void hook
    /// returns the total, and the lock (the kernel module, the simulator) puts the task to
    /// sleep that long once the handler has returned (docs/abi.md §4).
    sleep_slot: Option<Slot>,
}

/// Size in bytes of a scalar load or store of `ty`.
fn scalar_size(ty: &Ty) -> u8 {
    match ty {
        Ty::Int(i) => i.bits / 8,
        Ty::Bool => 1,
        _ => 8,
    }
}

fn int_of(ty: &Ty) -> IntTy {
    match ty {
        Ty::Int(i) => *i,
        _ => IntTy { signed: false, bits: 64 },
    }
}

fn width(i: IntTy) -> Width {
    if i.bits <= 32 {
        Width::W32
    } else {
        Width::W64
    }
}
impl<'m, 'p> FnCx<'m, 'p> {
    fn new(m: &'m mut ModuleCx<'p>, hook: &'static cat::HookDef, body: &'p Body, params: &[LocalId]) -> FnCx<'m, 'p> {
        let mut b = Builder::new();
        let exit = b.create_block();
        let mut locals = HashMap::default();
        for (i, local) in params.iter().enumerate() {
            let binding = match hook.params.get(i).map(|p| (p.ty, p.ctx_offset)) {
                Some((cat::HookParamTy::Lock, _)) => Binding::Lock,
                Some((cat::HookParamTy::Waiter, off)) => Binding::Waiter(off),
                Some((cat::HookParamTy::Bool, _)) => Binding::Ok,
                None => continue,
            };
            locals.insert(*local, binding);
        }
        FnCx {
            m,
            hook,
            b,
            state_ptrs: HashMap::default(),
            preread: HashMap::default(),
            to_preread: HashMap::default(),
            exit,
            frames: vec![Frame { body, locals, ret: None }],
            loops: Vec::new(),
            loop_depth: 0,
            sleep_slot: None,
        }
    }

    /// What a void hook returns: the sleep it asked for (0 if none).
    fn void_result(&mut self) -> Value {
        match self.sleep_slot {
            Some(slot) => {
                let a = self.b.slot_addr(slot, 0);
                self.b.load(a, 0, 8)
            }
            None => self.b.iconst(0),
        }
    }

    fn target(&self) -> Target {
        self.m.target
    }

    fn program(&self) -> &'p hir::Program {
        self.m.program
    }

    /// Stores `v` into a new slot and returns the slot's address (for helper arguments).
    fn spill(&mut self, v: Value, size: u32, name: &str) -> Value {
        let slot = self.b.slot(size.max(8), name);
        let addr = self.b.slot_addr(slot, 0);
        self.b.store(addr, 0, size.min(8) as u8, v);
        self.b.slot_addr(slot, 0)
    }

    fn map_ref(&mut self, map: MapId) -> Value {
        let dst = self.b.value(ValTy::MapRef);
        self.b.push(InstData::MapRef { dst, map });
        dst
    }

    /// The context pointer. It is available in every block: the back end keeps it in a
    /// register of its own for the whole program.
    fn ctx(&mut self) -> Value {
        self.b.ctx()
    }

    /// The `n`-th tracepoint argument (stock target).
    fn ctx_arg(&mut self, n: i16) -> Value {
        let ctx = self.ctx();
        self.b.load(ctx, n * 8, 8)
    }

    fn ctx_field(&mut self, offset: u32, size: u8) -> Value {
        let ctx = self.ctx();
        self.b.load(ctx, offset as i16, size)
    }

    fn lock_addr(&mut self) -> Value {
        match self.target() {
            Target::Stock => self.ctx_arg(0),
            _ => self.ctx_field(0, 8),
        }
    }

    fn tid(&mut self) -> Value {
        match self.target() {
            Target::Stock => {
                let v = self.b.call(helper::PID_TGID, Vec::new(), ValTy::Int);
                self.b.ext(32, false, v)
            }
            _ => self.ctx_field(24, 4),
        }
    }

    /// The lock's flags in the syncord/sim encoding is not the tracepoint's; this returns
    /// the tracepoint flags (stock only): from the context, or recorded by `contended`.
    fn stock_flags(&mut self) -> Value {
        if self.hook.name == "contended" {
            return self.ctx_arg(1);
        }
        let Some(map) = self.m.flags_map else { return self.b.iconst(0) };
        // Select the flags or 0 without a cross-block value: through a slot.
        let out = self.b.slot(8, "flags");
        let out_addr = self.b.slot_addr(out, 0);
        let zero = self.b.iconst(0);
        self.b.store(out_addr, 0, 8, zero);
        let tid = self.tid();
        let key = self.spill(tid, 4, "flags key");
        let yes = self.b.create_block();
        let join = self.b.create_block();
        let slot = self.lookup_branch(map, key, yes, join);
        self.b.switch_to(yes);
        let p = self.reload_ptr(slot);
        let v = self.b.load(p, 0, 4);
        let oa = self.b.slot_addr(out, 0);
        self.b.store(oa, 0, 8, v);
        self.b.terminate(Terminator::Jump(join));
        self.b.switch_to(join);
        let oa = self.b.slot_addr(out, 0);
        self.b.load(oa, 0, 8)
    }

    fn lock_field(&mut self, name: &str) -> Value {
        let stock = self.target() == Target::Stock;
        match name {
            "addr" => self.lock_addr(),
            "kind" if stock => {
                // spinlock 0, mutex 1, everything else (rwsem) 2.
                let flags = self.stock_flags();
                let spin_bit = self.b.iconst(LCB_F_SPIN);
                let spin = self.b.bin(BinOp::And, Width::W64, flags, spin_bit);
                let zero = self.b.iconst(0);
                let is_spin = self.b.cmp(Cond::Ne, spin, zero);
                let mutex_bit = self.b.iconst(LCB_F_MUTEX);
                let mutex = self.b.bin(BinOp::And, Width::W64, flags, mutex_bit);
                let zero = self.b.iconst(0);
                let is_mutex = self.b.cmp(Cond::Ne, mutex, zero);
                // A mutex spinning optimistically reports LCB_F_MUTEX | LCB_F_SPIN, so the
                // mutex bit decides first:
                // kind = is_mutex ? 1 : (is_spin ? 0 : 2) = is_mutex + (1 - is_mutex) * 2 * (1 - is_spin)
                let one = self.b.iconst(1);
                let not_spin = self.b.bin(BinOp::Sub, Width::W64, one, is_spin);
                let one = self.b.iconst(1);
                let not_mutex = self.b.bin(BinOp::Sub, Width::W64, one, is_mutex);
                let shift = self.b.iconst(1);
                let rwsem = self.b.bin(BinOp::Shl, Width::W64, not_spin, shift);
                let rest = self.b.bin(BinOp::Mul, Width::W64, not_mutex, rwsem);
                self.b.bin(BinOp::Add, Width::W64, is_mutex, rest)
            }
            "is_reader" | "is_writer" if stock => {
                let flags = self.stock_flags();
                let bit = self.b.iconst(if name == "is_reader" { LCB_F_READ } else { LCB_F_WRITE });
                let v = self.b.bin(BinOp::And, Width::W64, flags, bit);
                let zero = self.b.iconst(0);
                self.b.cmp(Cond::Ne, v, zero)
            }
            "class" if stock => {
                // perf's types from the LCB_F_* flags (cat::LOCK_CLASSES), most specific
                // last: rwsem 2 + W (11 with neither mode), per-CPU rwsem 9 + W, rt 6 + R|W
                // + W, spin (R|W) * (4 + W), mutex 1 (a spinning mutex has SPIN too).
                let flags = self.stock_flags();
                let (r, w) = (self.flag_bit(flags, 1), self.flag_bit(flags, 2));
                let rw = self.b.bin(BinOp::Or, Width::W64, r, w);
                self.class_from(flags, w, rw)
            }
            "class" => {
                // spinlock 0 and mutex 1 are their kinds; an rwsem is 2 + W, 11 in no mode.
                let kind = self.ctx_field(8, 4);
                let flags = self.ctx_field(12, 4);
                let r = self.flag_bit(flags, 0);
                let w = self.flag_bit(flags, 1);
                let rw = self.b.bin(BinOp::Or, Width::W64, r, w);
                let rwsem = self.rwsem_class(w, rw);
                let two = self.b.iconst(2);
                self.b.select(Cond::Eq, kind, two, rwsem, kind)
            }
            "kind" => self.ctx_field(8, 4),
            "is_reader" | "is_writer" => {
                let flags = self.ctx_field(12, 4);
                let bit = self.b.iconst(if name == "is_reader" { 1 } else { 2 });
                let v = self.b.bin(BinOp::And, Width::W64, flags, bit);
                let zero = self.b.iconst(0);
                self.b.cmp(Cond::Ne, v, zero)
            }
            _ => self.b.iconst(0),
        }
    }
}

impl FnCx<'_, '_> {
    /// Bit `n` of `flags`, as 0 or 1.
    fn flag_bit(&mut self, flags: Value, n: i64) -> Value {
        let s = self.b.iconst(n);
        let v = self.b.bin(BinOp::LShr, Width::W64, flags, s);
        let one = self.b.iconst(1);
        self.b.bin(BinOp::And, Width::W64, v, one)
    }

    /// An rwsem's class: 2 + W, or 11 when the event gives no mode.
    fn rwsem_class(&mut self, w: Value, rw: Value) -> Value {
        let two = self.b.iconst(2);
        let v = self.b.bin(BinOp::Add, Width::W64, two, w);
        let one = self.b.iconst(1);
        let none = self.b.bin(BinOp::Sub, Width::W64, one, rw);
        let nine = self.b.iconst(9);
        let extra = self.b.bin(BinOp::Mul, Width::W64, none, nine);
        self.b.bin(BinOp::Add, Width::W64, v, extra)
    }

    /// `lock.class` from the tracepoint's flags (see `lock_field`).
    fn class_from(&mut self, flags: Value, w: Value, rw: Value) -> Value {
        let mut v = self.rwsem_class(w, rw);
        let zero = self.b.iconst(0);
        // per-CPU rwsem: 9 + W.
        let bit = self.b.iconst(LCB_F_PERCPU);
        let m = self.b.bin(BinOp::And, Width::W64, flags, bit);
        let nine = self.b.iconst(9);
        let pcpu = self.b.bin(BinOp::Add, Width::W64, nine, w);
        v = self.b.select(Cond::Ne, m, zero, pcpu, v);
        // rt: 6 + (R|W) + W.
        let bit = self.b.iconst(LCB_F_RT);
        let m = self.b.bin(BinOp::And, Width::W64, flags, bit);
        let six = self.b.iconst(6);
        let rt = self.b.bin(BinOp::Add, Width::W64, six, rw);
        let rt = self.b.bin(BinOp::Add, Width::W64, rt, w);
        let zero = self.b.iconst(0);
        v = self.b.select(Cond::Ne, m, zero, rt, v);
        // spin: (R|W) * (4 + W): spinlock 0, rwlock:R 4, rwlock:W 5.
        let bit = self.b.iconst(LCB_F_SPIN);
        let m = self.b.bin(BinOp::And, Width::W64, flags, bit);
        let four = self.b.iconst(4);
        let s = self.b.bin(BinOp::Add, Width::W64, four, w);
        let spin = self.b.bin(BinOp::Mul, Width::W64, rw, s);
        let zero = self.b.iconst(0);
        v = self.b.select(Cond::Ne, m, zero, spin, v);
        // mutex: 1.
        let bit = self.b.iconst(LCB_F_MUTEX);
        let m = self.b.bin(BinOp::And, Width::W64, flags, bit);
        let one = self.b.iconst(1);
        let zero = self.b.iconst(0);
        self.b.select(Cond::Ne, m, zero, one, v)
    }
}

/// Where a map comes from, for maps the compiler adds itself.
impl MapOrigin {
    /// True for maps the policy did not declare.
    pub fn is_hidden(&self) -> bool {
        matches!(self, MapOrigin::Hidden)
    }
}
