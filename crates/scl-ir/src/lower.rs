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

use crate::builder::Builder;
use crate::ir::*;
use scl_catalogue::{self as cat, MapKind, Target};
use scl_sema::hir::{self, Arg, Body, Cond as HCond, ExprKind, LocalId, PlaceBase, Projection, StateId, StateStorage, Stmt};
use scl_sema::ty::{IntTy, Ty};
use scl_syntax::ast::{BinOp as HBin, UnOp};
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

/// `lock:contention_begin` flags (include/trace/events/lock.h).
const LCB_F_SPIN: i64 = 1;
const LCB_F_READ: i64 = 2;
const LCB_F_WRITE: i64 = 4;
const LCB_F_MUTEX: i64 = 32;

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
    let mut cx = ModuleCx::new(program, target);
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
    hooks.sort_by_key(|h| cat::HOOKS.iter().position(|d| d.name == h.def.name));
    for h in &hooks {
        if target == Target::Stock && !h.def.on_target(Target::Stock) {
            continue;
        }
        let func = FnCx::new(&mut cx, h.def, &h.body, &h.params).lower_hook(&h.body);
        cx.module.programs.push(Program { hook: h.def, name: h.def.name.to_string(), func });
    }
    if stock_flags && !hooks.iter().any(|h| h.def.name == "contended") {
        let def = cat::hook("contended").expect("in the catalogue");
        static EMPTY: std::sync::LazyLock<Body> = std::sync::LazyLock::new(Body::default);
        let func = FnCx::new(&mut cx, def, &EMPTY, &[]).lower_hook(&EMPTY);
        cx.module.programs.push(Program { hook: def, name: def.name.to_string(), func });
        cx.module.programs.sort_by_key(|p| cat::HOOKS.iter().position(|d| d.name == p.hook.name));
    }
    cx.module
}

/// True if `body` (or a function it calls) reads `lock.kind`, `is_reader` or `is_writer`.
fn uses_lock_flags(program: &hir::Program, body: &Body) -> bool {
    let mut found = false;
    let mut seen = HashSet::default();
    walk_stmts(program, &body.block.stmts, &mut seen, &mut |e| {
        if let ExprKind::Read(p) = &e.kind {
            if let PlaceBase::LockField(f) = p.base {
                found |= f.name != "addr";
            }
        }
    });
    found
}

/// Calls `f` on every expression of `stmts` and of the functions they call (once each).
fn walk_stmts(program: &hir::Program, stmts: &[Stmt], seen: &mut HashSet<hir::FuncId>, f: &mut dyn FnMut(&hir::Expr)) {
    walk(program, stmts, &[], seen, f);
}

/// [`walk_stmts`] over `stmts` and then the expressions `exprs`.
fn walk(program: &hir::Program, stmts: &[Stmt], exprs: &[&hir::Expr], seen: &mut HashSet<hir::FuncId>, f: &mut dyn FnMut(&hir::Expr)) {
    fn block(program: &hir::Program, b: &hir::Block, seen: &mut HashSet<hir::FuncId>, f: &mut dyn FnMut(&hir::Expr)) {
        for s in &b.stmts {
            stmt(program, s, seen, f);
        }
    }
    fn stmt(program: &hir::Program, s: &Stmt, seen: &mut HashSet<hir::FuncId>, f: &mut dyn FnMut(&hir::Expr)) {
        match s {
            Stmt::Let(_, Some(e)) | Stmt::Expr(e) | Stmt::Return(Some(e), _) => expr(program, e, seen, f),
            Stmt::Assign { place, value, .. } => {
                place_exprs(program, place, seen, f);
                expr(program, value, seen, f);
            }
            Stmt::If { arms, else_ } => {
                for (c, b) in arms {
                    match c {
                        HCond::Expr(e) => expr(program, e, seen, f),
                        HCond::MapGet { key, .. } => expr(program, key, seen, f),
                    }
                    block(program, b, seen, f);
                }
                if let Some(b) = else_ {
                    block(program, b, seen, f);
                }
            }
            Stmt::For { body, .. } => block(program, body, seen, f),
            Stmt::Block(b) => block(program, b, seen, f),
            _ => {}
        }
    }
    fn place_exprs(program: &hir::Program, p: &hir::Place, seen: &mut HashSet<hir::FuncId>, f: &mut dyn FnMut(&hir::Expr)) {
        for pr in &p.projections {
            if let Projection::Index(i) = pr {
                expr(program, i, seen, f);
            }
        }
    }
    fn expr(program: &hir::Program, e: &hir::Expr, seen: &mut HashSet<hir::FuncId>, f: &mut dyn FnMut(&hir::Expr)) {
        f(e);
        match &e.kind {
            ExprKind::Read(p) => place_exprs(program, p, seen, f),
            ExprKind::Unary(_, x) | ExprKind::Cast(x) => expr(program, x, seen, f),
            ExprKind::Binary(_, a, b) => {
                expr(program, a, seen, f);
                expr(program, b, seen, f);
            }
            ExprKind::Call(callee, args) => {
                for a in args {
                    match a {
                        Arg::Value(v) => expr(program, v, seen, f),
                        Arg::Place(p) => place_exprs(program, p, seen, f),
                    }
                }
                if seen.insert(*callee) {
                    block(program, &program.funcs[*callee].body.block, seen, f);
                }
            }
            ExprKind::Builtin(_, args) => {
                for a in args {
                    match a {
                        Arg::Value(v) => expr(program, v, seen, f),
                        Arg::Place(p) => place_exprs(program, p, seen, f),
                    }
                }
            }
            ExprKind::Method(_, _, args) | ExprKind::Struct(_, args) => {
                for a in args {
                    expr(program, a, seen, f);
                }
            }
            ExprKind::Const(_) | ExprKind::Error => {}
        }
    }
    for st in stmts {
        stmt(program, st, seen, f);
    }
    for e in exprs {
        expr(program, e, seen, f);
    }
}

/// The field indices of a place reached through fields only (`None` if it indexes).
fn field_path(p: &hir::Place) -> Option<Vec<usize>> {
    p.projections
        .iter()
        .map(|pr| match pr {
            Projection::Field(i) => Some(*i),
            Projection::Index(_) => None,
        })
        .collect()
}

/// How many times `block` (not the functions it calls) reads local `l` as a map key.
fn key_reads(body: &hir::Block, l: LocalId) -> usize {
    fn is_l(e: &hir::Expr, l: LocalId) -> bool {
        matches!(&e.kind, ExprKind::Read(p) if p.projections.is_empty() && matches!(p.base, PlaceBase::Local(x) if x == l))
    }
    fn expr(e: &hir::Expr, l: LocalId) -> usize {
        match &e.kind {
            ExprKind::Method(_, _, args) => usize::from(args.first().is_some_and(|k| is_l(k, l))) + args.iter().map(|a| expr(a, l)).sum::<usize>(),
            ExprKind::Unary(_, x) | ExprKind::Cast(x) => expr(x, l),
            ExprKind::Binary(_, a, b) => expr(a, l) + expr(b, l),
            ExprKind::Call(_, args) | ExprKind::Builtin(_, args) => args.iter().map(|a| if let Arg::Value(v) = a { expr(v, l) } else { 0 }).sum(),
            ExprKind::Struct(_, args) => args.iter().map(|a| expr(a, l)).sum(),
            _ => 0,
        }
    }
    fn block(b: &hir::Block, l: LocalId) -> usize {
        b.stmts
            .iter()
            .map(|s| match s {
                Stmt::Let(_, Some(e)) | Stmt::Expr(e) | Stmt::Return(Some(e), _) => expr(e, l),
                Stmt::Assign { value, .. } => expr(value, l),
                Stmt::If { arms, else_ } => {
                    arms.iter()
                        .map(|(c, b)| {
                            let c = match c {
                                HCond::Expr(e) => expr(e, l),
                                HCond::MapGet { key, .. } => usize::from(is_l(key, l)) + expr(key, l),
                            };
                            c + block(b, l)
                        })
                        .sum::<usize>()
                        + else_.as_ref().map_or(0, |b| block(b, l))
                }
                Stmt::For { body, .. } => block(body, l),
                Stmt::Block(b) => block(b, l),
                _ => 0,
            })
            .sum()
    }
    block(body, l)
}

/// The state `stmts` use (read or write), through the functions they call too.
fn states_used(program: &hir::Program, stmts: &[Stmt]) -> Vec<StateId> {
    states_used_in(program, stmts, &[])
}

/// The state `stmts` and `exprs` use, through the functions they call too.
fn states_used_in(program: &hir::Program, stmts: &[Stmt], exprs: &[&hir::Expr]) -> Vec<StateId> {
    let mut out = Vec::new();
    let mut seen = HashSet::default();
    let mut note = |p: &hir::Place, out: &mut Vec<StateId>| {
        if let PlaceBase::State(id) = p.base {
            if !out.contains(&id) {
                out.push(id);
            }
        }
    };
    // Places appear in reads, assignments and place arguments; walk them all.
    fn places_in_block(b: &[Stmt], out: &mut Vec<StateId>, note: &mut dyn FnMut(&hir::Place, &mut Vec<StateId>)) {
        for s in b {
            match s {
                Stmt::Assign { place, .. } => note(place, out),
                Stmt::If { arms, else_ } => {
                    for (_, b) in arms {
                        places_in_block(&b.stmts, out, note);
                    }
                    if let Some(b) = else_ {
                        places_in_block(&b.stmts, out, note);
                    }
                }
                Stmt::For { body, .. } => places_in_block(&body.stmts, out, note),
                Stmt::Block(b) => places_in_block(&b.stmts, out, note),
                _ => {}
            }
        }
    }
    places_in_block(stmts, &mut out, &mut note);
    walk(program, stmts, exprs, &mut seen, &mut |e| match &e.kind {
        ExprKind::Read(p) => note(p, &mut out),
        ExprKind::Call(_, args) | ExprKind::Builtin(_, args) => {
            for a in args {
                if let Arg::Place(p) = a {
                    note(p, &mut out);
                }
            }
        }
        _ => {}
    });
    for f in seen {
        places_in_block(&program.funcs[f].body.block.stmts, &mut out, &mut note);
    }
    out.sort();
    out
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
}

/// A C identifier for a state name (`hist::x` becomes `hist__x`).
pub fn c_name(name: &str) -> String {
    name.replace("::", "__").chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect()
}

impl<'p> ModuleCx<'p> {
    fn new(program: &'p hir::Program, target: Target) -> ModuleCx<'p> {
        ModuleCx { program, target, module: Module::default(), state_maps: HashMap::default(), rodata: HashMap::default(), zero_map: None, flags_map: None }
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
        }
    }

    fn target(&self) -> Target {
        self.m.target
    }

    fn program(&self) -> &'p hir::Program {
        self.m.program
    }

    fn lower_hook(mut self, body: &'p Body) -> Function {
        // The exit block: the default result (0: "no", or nothing) for early exits.
        self.b.switch_to(self.exit);
        let zero = self.b.iconst(0);
        self.b.terminate(Terminator::Return(zero));
        let entry = self.b.func.entry();
        self.b.switch_to(entry);
        self.stock_flags_prologue();
        // Each piece of state is looked up right before the first top-level statement
        // that uses it: that lookup dominates every later use, and an early return before
        // it costs no lookup.
        let mut pending = states_used(self.program(), &body.block.stmts);
        self.to_preread = pending.iter().filter_map(|id| self.prereads(*id).map(|f| (*id, f))).collect();
        let zero_slot = self.zero_area(&pending);
        for s in &body.block.stmts {
            if self.b.is_terminated() {
                // Code after a `return` never runs.
                break;
            }
            let used: Vec<StateId> =
                states_used(self.program(), std::slice::from_ref(s)).into_iter().filter(|id| pending.contains(id)).collect();
            if let Some((ops, k, body)) = self.guard_before_state(s, &used) {
                pending.retain(|id| !used.contains(id));
                self.lower_guard(ops, k, body, &used, zero_slot);
                continue;
            }
            for id in used {
                pending.retain(|p| *p != id);
                self.look_up_state(id, zero_slot);
            }
            self.stmt(s);
        }
        if !self.b.is_terminated() {
            let zero = self.b.iconst(0);
            self.b.terminate(Terminator::Return(zero));
        }
        let mut func = self.b.finish();
        crate::opt::remove_unreachable(&mut func);
        func
    }

    /// A guard `if A1 || ... || An { ...; return; }` whose first operands test no state
    /// of `used` (the state the statement needs and that is not looked up yet) and whose
    /// body neither uses that state nor continues: its operands, the index of the first
    /// one that uses the state, and its body. Such a guard looks the state up only once
    /// those first operands have let it through (`if l.is_reader || stats.start == 0
    /// { return; }` costs a reader no lookup): every path past the `if` goes through the
    /// lookup, and the paths that skip it end in the body's `return`. The operands before
    /// the lookup must have no effects, since a failed lookup returns from the hook.
    fn guard_before_state(&self, s: &'p Stmt, used: &[StateId]) -> Option<(Vec<&'p hir::Expr>, usize, &'p hir::Block)> {
        fn operands<'e>(e: &'e hir::Expr, out: &mut Vec<&'e hir::Expr>) {
            match &e.kind {
                ExprKind::Binary(HBin::Or, a, b) => {
                    operands(a, out);
                    operands(b, out);
                }
                _ => out.push(e),
            }
        }
        if used.is_empty() {
            return None;
        }
        let Stmt::If { arms, else_: None } = s else { return None };
        let [(HCond::Expr(cond), body)] = arms.as_slice() else { return None };
        if !matches!(body.stmts.last(), Some(Stmt::Return(..))) {
            return None;
        }
        let program = self.program();
        if states_used(program, &body.stmts).iter().any(|id| used.contains(id)) {
            return None;
        }
        let mut ops = Vec::new();
        operands(cond, &mut ops);
        let uses = |e: &hir::Expr| states_used_in(program, &[], &[e]).iter().any(|id| used.contains(id));
        let k = ops.iter().position(|e| uses(e))?;
        let pure = |e: &hir::Expr| {
            let mut pure = true;
            walk(program, &[], &[e], &mut HashSet::default(), &mut |x| {
                pure &= match &x.kind {
                    ExprKind::Call(..) | ExprKind::Method(..) => false,
                    ExprKind::Builtin(b, _) => matches!(b.name, "now" | "cpu" | "numa_node" | "tid" | "tgid" | "min" | "max" | "log2"),
                    _ => true,
                };
            });
            pure
        };
        (k > 0 && ops[..k].iter().all(|e| pure(e))).then_some((ops, k, body))
    }

    /// Lowers a guard [`Self::guard_before_state`] found, looking up `used` before its
    /// operand `k`.
    fn lower_guard(&mut self, ops: Vec<&'p hir::Expr>, k: usize, body: &'p hir::Block, used: &[StateId], zero_slot: Option<Slot>) {
        let then = self.b.create_block();
        let join = self.b.create_block();
        for (i, op) in ops.iter().enumerate() {
            if i == k {
                for id in used {
                    self.look_up_state(*id, zero_slot);
                }
            }
            let next = if i + 1 == ops.len() { join } else { self.b.create_block() };
            self.branch_on(op, then, next);
            self.b.switch_to(next);
        }
        self.b.switch_to(then);
        self.block(body);
        self.b.terminate(Terminator::Jump(join));
        self.b.switch_to(join);
    }

    /// On stock, `contended` records the tracepoint's flags for `contention_end`.
    fn stock_flags_prologue(&mut self) {
        if self.hook.name == "contended" && self.target() == Target::Stock {
            if let Some(map) = self.m.flags_map {
                // Record the flags for `contention_end`, keyed by thread: in place when
                // the thread has an entry (a lookup), else by an update, which for an LRU
                // map takes its lock and recycles an element.
                let tid = self.tid();
                let key_slot = self.b.slot(8, "flags key");
                let ka = self.b.slot_addr(key_slot, 0);
                self.b.store(ka, 0, 4, tid);
                let ka = self.b.slot_addr(key_slot, 0);
                let hit = self.b.create_block();
                let miss = self.b.create_block();
                let join = self.b.create_block();
                let ptr_slot = self.lookup_branch(map, ka, hit, miss);
                self.b.switch_to(hit);
                let p = self.reload_ptr(ptr_slot);
                let flags = self.ctx_arg(1);
                self.b.store(p, 0, 4, flags);
                self.b.terminate(Terminator::Jump(join));
                self.b.switch_to(miss);
                let flags = self.ctx_arg(1);
                let val = self.spill(flags, 4, "flags");
                let ka = self.b.slot_addr(key_slot, 0);
                let mref = self.map_ref(map);
                let flag = self.b.iconst(0);
                let _ = self.b.call(helper::MAP_UPDATE, vec![mref, ka, val, flag], ValTy::Int);
                self.b.terminate(Terminator::Jump(join));
                self.b.switch_to(join);
            }
        }
    }

    /// The zeroed stack bytes small missing entries read as (and are created from): one
    /// area for all the state `used`, as large as the largest. A reorder hook keeps a
    /// pointer to it as the state's pointer, so there it lives for the whole program.
    fn zero_area(&mut self, used: &[StateId]) -> Option<Slot> {
        let zero_bytes = used
            .iter()
            .filter(|id| matches!(self.program().states[**id].storage, StateStorage::PerLock | StateStorage::PerThread))
            .filter(|id| !self.to_preread.contains_key(*id))
            .map(|id| self.program().layout(&self.program().states[*id].ty).size.div_ceil(8) * 8)
            .filter(|size| *size <= cat::limits::ZERO_ON_STACK_MAX)
            .max();
        let reorder = !self.hook.may_write_state;
        zero_bytes.map(|size| match reorder {
            true => self.b.slot_for_function(size, "zero value"),
            false => self.b.slot(size, "zero value"),
        })
    }

    /// Looks up the entry of state `id` for this lock, thread or CPU and keeps the pointer
    /// in a slot; a missing `per_lock`/`per_thread` entry is created zeroed (or, in a
    /// reorder hook, read as zeroes); if the map cannot give an entry the hook returns.
    fn look_up_state(&mut self, id: StateId, zero_slot: Option<Slot>) {
        let reorder = !self.hook.may_write_state;
        {
            let storage = self.program().states[id].storage.clone();
            let Some(&map) = self.m.state_maps.get(&id) else { return };
            let (key_value, key_size) = match storage {
                StateStorage::Global | StateStorage::PerCpu => (self.b.iconst(0), 4),
                StateStorage::PerLock => (self.lock_addr(), 8),
                StateStorage::PerThread => (self.tid(), 4),
                _ => return,
            };
            let key_slot = self.b.slot(8, "state key");
            let ka = self.b.slot_addr(key_slot, 0);
            self.b.store(ka, 0, key_size as u8, key_value);
            let key = self.b.slot_addr(key_slot, 0);
            let mref = self.map_ref(map);
            let ptr = self.b.call(helper::MAP_LOOKUP, vec![mref, key], ValTy::MapValueOrNull);
            if let Some(fields) = self.to_preread.remove(&id) {
                // Read the few fields the hook uses now: zero if the entry is missing.
                let slots: Vec<(Vec<usize>, Slot, i64, u8)> = fields
                    .into_iter()
                    .map(|(path, off, size)| {
                        let slot = self.b.slot(8, format!("{}.{path:?}", self.program().states[id].name));
                        let a = self.b.slot_addr(slot, 0);
                        let z = self.b.iconst(0);
                        self.b.store(a, 0, 8, z);
                        (path, slot, off, size)
                    })
                    .collect();
                let hit = self.b.create_block();
                let next = self.b.create_block();
                let pslot = self.branch_if_found(ptr, "entry", hit, next);
                self.b.switch_to(hit);
                let p = self.reload_ptr(pslot);
                for (_, slot, off, size) in &slots {
                    let (p, off) = match i16::try_from(*off) {
                        Ok(o) => (p, o),
                        Err(_) => (self.offset_ptr_wide(p, *off), 0),
                    };
                    let v = self.b.load(p, off, *size);
                    let a = self.b.slot_addr(*slot, 0);
                    self.b.store(a, 0, 8, v);
                }
                self.b.terminate(Terminator::Jump(next));
                self.b.switch_to(next);
                for (path, slot, _, _) in slots {
                    self.preread.insert((id, path), slot);
                }
                return;
            }
            let next = self.b.create_block();
            let missing = self.b.create_block();
            let name = format!("&{}", self.program().states[id].name);
            let slot = self.branch_if_found(ptr, name, next, missing);
            self.b.switch_to(missing);
            let creates = matches!(storage, StateStorage::PerLock | StateStorage::PerThread);
            let size = self.program().layout(&self.program().states[id].ty).size.div_ceil(8) * 8;
            let on_stack = zero_slot.filter(|_| size <= cat::limits::ZERO_ON_STACK_MAX);
            match (creates, on_stack, self.m.zero_map) {
                (true, Some(zs), _) => {
                    let za = self.b.slot_addr(zs, 0);
                    self.b.push(InstData::MemZero { ptr: za, size });
                    let za = self.b.slot_addr(zs, 0);
                    if reorder {
                        let saddr = self.b.slot_addr(slot, 0);
                        self.b.store(saddr, 0, 8, za);
                        self.b.terminate(Terminator::Jump(next));
                    } else {
                        self.create_entry(map, key_slot, za, slot, next);
                    }
                }
                (true, None, Some(zm)) => {
                    // A missing entry reads as the all-zero map's value; unless this hook
                    // may not write state, the entry is then created from it.
                    let zkey_v = self.b.iconst(0);
                    let zkey = self.spill(zkey_v, 4, "zero key");
                    let zref = self.map_ref(zm);
                    let zptr = self.b.call(helper::MAP_LOOKUP, vec![zref, zkey], ValTy::MapValueOrNull);
                    let have_zero = self.b.create_block();
                    self.branch_if_found_in(zptr, slot, have_zero, self.exit);
                    self.b.switch_to(have_zero);
                    if reorder {
                        self.b.terminate(Terminator::Jump(next));
                    } else {
                        let zaddr = self.b.slot_addr(slot, 0);
                        let zval = self.b.load_ptr(zaddr, 0, ValTy::MapValue);
                        self.create_entry(map, key_slot, zval, slot, next);
                    }
                }
                _ => self.b.terminate(Terminator::Jump(self.exit)),
            }
            self.b.switch_to(next);
            self.state_ptrs.insert(id, slot);
        }
    }

    /// In a reorder hook (which writes no state), the fields of `per_lock`/`per_thread`
    /// state `id` to read where the state is looked up, when the hook (with the functions
    /// it calls) reads at most two distinct fields of it and nothing else: their paths,
    /// byte offsets and sizes. Reading them there, zero for a missing entry, costs a
    /// branch and a load each instead of a zeroed copy of the entry on the stack.
    fn prereads(&self, id: StateId) -> Option<Vec<(Vec<usize>, i64, u8)>> {
        if self.hook.may_write_state {
            return None;
        }
        let program = self.program();
        if !matches!(program.states[id].storage, StateStorage::PerLock | StateStorage::PerThread) {
            return None;
        }
        let mut paths: Vec<Vec<usize>> = Vec::new();
        let mut other_use = false;
        let mut seen = HashSet::default();
        let note = |p: &hir::Place, paths: &mut Vec<Vec<usize>>, other_use: &mut bool| {
            if !matches!(p.base, PlaceBase::State(s) if s == id) {
                return;
            }
            match field_path(p) {
                Some(path) if p.ty.is_scalar() => {
                    if !paths.contains(&path) {
                        paths.push(path);
                    }
                }
                _ => *other_use = true,
            }
        };
        walk_stmts(program, &self.frames[0].body.block.stmts, &mut seen, &mut |e| match &e.kind {
            ExprKind::Read(p) => note(p, &mut paths, &mut other_use),
            ExprKind::Call(_, args) | ExprKind::Builtin(_, args) => {
                for a in args {
                    if let Arg::Place(p) = a {
                        if matches!(p.base, PlaceBase::State(s) if s == id) {
                            other_use = true;
                        }
                    }
                }
            }
            _ => {}
        });
        if other_use || paths.is_empty() || paths.len() > 2 {
            return None;
        }
        paths
            .into_iter()
            .map(|path| {
                let mut ty = program.states[id].ty.clone();
                let mut off = 0i64;
                for &i in &path {
                    let Ty::Struct(st) = &ty else { return None };
                    let f = &program.structs[*st].fields[i];
                    off += i64::from(f.offset);
                    ty = f.ty.clone();
                }
                Some((path, off, scalar_size(&ty)))
            })
            .collect()
    }

    /// Creates the missing entry of `map` under the key in `key_slot` from the zeroed
    /// value at `zval`, looks it up again into `slot`, and goes on at `next` (or leaves, if
    /// the map could not take it).
    fn create_entry(&mut self, map: MapId, key_slot: Slot, zval: Value, slot: Slot, next: Block) {
        let key2 = self.b.slot_addr(key_slot, 0);
        let mref = self.map_ref(map);
        let noexist = self.b.iconst(1);
        let _ = self.b.call(helper::MAP_UPDATE, vec![mref, key2, zval, noexist], ValTy::Int);
        let key3 = self.b.slot_addr(key_slot, 0);
        let mref = self.map_ref(map);
        let p2 = self.b.call(helper::MAP_LOOKUP, vec![mref, key3], ValTy::MapValueOrNull);
        self.branch_if_found_in(p2, slot, next, self.exit);
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

    fn binding(&self, local: LocalId) -> Option<Binding> {
        self.frames.last().and_then(|f| f.locals.get(&local)).copied()
    }

    fn local_ty(&self, local: LocalId) -> Ty {
        self.frames.last().expect("a frame").body.locals[local].ty.clone()
    }

    /// The slot of a plain local, created on first use.
    fn local_slot(&mut self, local: LocalId) -> Slot {
        if let Some(Binding::Slot(s)) = self.frames.last().and_then(|f| f.locals.get(&local)) {
            return *s;
        }
        let ty = self.local_ty(local);
        let size = self.program().layout(&ty).size;
        let name = self.frames.last().expect("a frame").body.locals[local].name.clone();
        let slot = self.b.slot(size, name);
        self.frames.last_mut().expect("a frame").locals.insert(local, Binding::Slot(slot));
        slot
    }

    // ------------------------------------------------------------------------------
    // Statements

    fn block(&mut self, block: &'p hir::Block) {
        for s in &block.stmts {
            if self.b.is_terminated() {
                // Code after a `return`, `break` or `continue` never runs.
                return;
            }
            self.stmt(s);
        }
    }

    fn stmt(&mut self, s: &'p Stmt) {
        match s {
            Stmt::Let(local, init) => {
                let slot = self.fresh_local_slot(*local);
                let ty = self.local_ty(*local);
                match init {
                    Some(e) => {
                        // The statement has no position of its own in the HIR: its
                        // initialiser's line is the `let`'s line.
                        self.b.loc = e.loc;
                        if !ty.is_scalar() {
                            // Padding bytes too: the value may become a map key.
                            let a = self.b.slot_addr(slot, 0);
                            self.zero(a, &ty);
                        }
                        self.store_value(Dest::Slot(slot, 0), &ty, e)
                    }
                    None => {
                        let addr = self.b.slot_addr(slot, 0);
                        self.zero(addr, &ty);
                    }
                }
            }
            Stmt::Assign { place, op, value, loc } => {
                self.b.loc = *loc;
                match op {
                    None => self.store_value(Dest::Place(place, 0), &place.ty, value),
                    Some(op) => {
                        // The right side first: it may open blocks.
                        let rhs = self.expr(value);
                        let kept = may_branch_place(Dest::Place(place, 0)).then(|| self.spill_value(rhs));
                        let ty = place.ty.clone();
                        let size = scalar_size(&ty);
                        let Some((ptr, off)) = self.place_ptr(place) else { return };
                        let rhs = match kept {
                            Some(slot) => self.reload(slot),
                            None => rhs,
                        };
                        let old = self.b.load(ptr, off, size);
                        let old = self.canon_load(old, &ty);
                        let v = self.arith(*op, &ty, old, rhs, &value.ty);
                        self.b.store(ptr, off, size, v);
                    }
                }
            }
            Stmt::Expr(e) => {
                self.b.loc = e.loc;
                let _ = self.expr(e);
            }
            Stmt::If { arms, else_ } => {
                let join = self.b.create_block();
                for (cond, body) in arms {
                    let then = self.b.create_block();
                    let next = self.b.create_block();
                    self.cond(cond, then, next);
                    self.b.switch_to(then);
                    self.block(body);
                    self.b.terminate(Terminator::Jump(join));
                    self.b.switch_to(next);
                }
                if let Some(e) = else_ {
                    self.block(e);
                }
                self.b.terminate(Terminator::Jump(join));
                self.b.switch_to(join);
            }
            Stmt::For { var, start, end, body, loc } => {
                // A hidden counter drives the loop; the loop variable gets its value at the
                // top of each iteration, so assigning the variable in the body cannot change
                // how many times the loop runs (the kernel verifier relies on that bound).
                self.b.loc = *loc;
                let slot = self.fresh_local_slot(*var);
                let ty = self.local_ty(*var);
                let size = scalar_size(&ty);
                let counter = self.b.slot(8, "loop counter");
                let ca = self.b.slot_addr(counter, 0);
                let s = self.b.iconst(*start as i64);
                self.b.store(ca, 0, 8, s);
                let header = self.b.create_block();
                let body_block = self.b.create_block();
                let latch = self.b.create_block();
                let exit = self.b.create_block();
                self.b.terminate(Terminator::Jump(header));
                self.b.switch_to(header);
                let ca = self.b.slot_addr(counter, 0);
                let i = self.b.load(ca, 0, 8);
                let e = self.b.iconst(*end as i64);
                let cond = if int_of(&ty).signed { Cond::SLt } else { Cond::ULt };
                let c = self.b.cmp(cond, i, e);
                self.b.terminate(Terminator::Branch { cond: c, then: body_block, else_: exit });
                self.b.switch_to(body_block);
                let ca = self.b.slot_addr(counter, 0);
                let i = self.b.load(ca, 0, 8);
                let va = self.b.slot_addr(slot, 0);
                self.b.store(va, 0, size, i);
                self.loops.push((latch, exit));
                self.loop_depth += 1;
                self.block(body);
                self.loop_depth -= 1;
                self.loops.pop();
                self.b.terminate(Terminator::Jump(latch));
                self.b.switch_to(latch);
                let ca = self.b.slot_addr(counter, 0);
                let i = self.b.load(ca, 0, 8);
                let one = self.b.iconst(1);
                let next = self.b.bin(BinOp::Add, Width::W64, i, one);
                self.b.store(ca, 0, 8, next);
                self.b.terminate(Terminator::Jump(header));
                self.b.switch_to(exit);
            }
            Stmt::Return(value, loc) => {
                self.b.loc = *loc;
                let target = self.frames.last().and_then(|f| f.ret);
                match target {
                    Some((result, cont)) => {
                        if let (Some(slot), Some(e)) = (result, value) {
                            let v = self.expr(e);
                            let addr = self.b.slot_addr(slot, 0);
                            self.b.store(addr, 0, 8, v);
                        }
                        self.b.terminate(Terminator::Jump(cont));
                    }
                    None => {
                        let v = match value {
                            Some(e) => self.expr(e),
                            None => self.b.iconst(0),
                        };
                        self.b.terminate(Terminator::Return(v));
                    }
                }
            }
            Stmt::Break => {
                if let Some(&(_, exit)) = self.loops.last() {
                    self.b.terminate(Terminator::Jump(exit));
                }
            }
            Stmt::Continue => {
                if let Some(&(latch, _)) = self.loops.last() {
                    self.b.terminate(Terminator::Jump(latch));
                }
            }
            Stmt::Block(b) => self.block(b),
        }
    }

    /// A new slot for a local (a `let` or loop variable gets fresh storage each time it is
    /// declared, so shadowing works).
    fn fresh_local_slot(&mut self, local: LocalId) -> Slot {
        let ty = self.local_ty(local);
        let size = self.program().layout(&ty).size;
        let name = self.frames.last().expect("a frame").body.locals[local].name.clone();
        let slot = match self.frames.last().and_then(|f| f.locals.get(&local)) {
            Some(Binding::Slot(s)) => *s,
            _ => self.b.slot(size, name),
        };
        self.frames.last_mut().expect("a frame").locals.insert(local, Binding::Slot(slot));
        slot
    }

    /// Branches to `then` if `cond` holds, else to `else_`.
    fn cond(&mut self, cond: &'p HCond, then: Block, else_: Block) {
        match cond {
            HCond::Expr(e) => self.branch_on(e, then, else_),
            HCond::MapGet { local, map, key, loc } => {
                self.b.loc = *loc;
                let p = self.lookup(*map, key);
                let slot = self.branch_if_found(p, "if let", then, else_);
                self.frames.last_mut().expect("a frame").locals.insert(*local, Binding::Ref(slot, ValTy::MapValue));
            }
        }
    }

    /// Branches on a boolean expression. Outside loops `&&`, `||` and `!` become control
    /// flow (one conditional jump per operand, no 0/1 values); inside a loop every branch
    /// is another path for the kernel verifier to walk on each iteration, so there the
    /// condition is computed as a value (branch-free where it can be) and tested once.
    fn branch_on(&mut self, e: &'p hir::Expr, then: Block, else_: Block) {
        if self.loop_depth == 0 {
            match &e.kind {
                ExprKind::Binary(HBin::And, a, b) => {
                    let rhs = self.b.create_block();
                    self.branch_on(a, rhs, else_);
                    self.b.switch_to(rhs);
                    return self.branch_on(b, then, else_);
                }
                ExprKind::Binary(HBin::Or, a, b) => {
                    let rhs = self.b.create_block();
                    self.branch_on(a, then, rhs);
                    self.b.switch_to(rhs);
                    return self.branch_on(b, then, else_);
                }
                ExprKind::Unary(UnOp::Not, a) if matches!(a.ty, Ty::Bool) => {
                    return self.branch_on(a, else_, then);
                }
                _ => {}
            }
        }
        self.b.loc = e.loc;
        let v = self.expr(e);
        self.b.terminate(Terminator::Branch { cond: v, then, else_ });
    }

    /// Keeps a lookup's result `p` in a new slot (IR values do not cross blocks) and ends
    /// the block with a branch to `hit` when it is not null, else to `miss`. In `hit`,
    /// [`Self::reload_ptr`] of the returned slot gives the pointer back, known not null: the
    /// spilled copy shares the checked register's identity in the kernel verifier.
    fn branch_if_found(&mut self, p: Value, name: impl Into<String>, hit: Block, miss: Block) -> Slot {
        let slot = self.b.slot(8, name);
        self.branch_if_found_in(p, slot, hit, miss);
        slot
    }

    /// [`Self::branch_if_found`], keeping `p` in the given slot.
    fn branch_if_found_in(&mut self, p: Value, slot: Slot, hit: Block, miss: Block) {
        let sa = self.b.slot_addr(slot, 0);
        self.b.store(sa, 0, 8, p);
        let zero = self.b.iconst(0);
        let found = self.b.cmp(Cond::Ne, p, zero);
        self.b.terminate(Terminator::Branch { cond: found, then: hit, else_: miss });
    }

    /// `map_lookup_elem(map, key)` for a key already on the stack, then
    /// [`Self::branch_if_found`].
    fn lookup_branch(&mut self, map: MapId, key: Value, hit: Block, miss: Block) -> Slot {
        let mref = self.map_ref(map);
        let p = self.b.call(helper::MAP_LOOKUP, vec![mref, key], ValTy::MapValueOrNull);
        self.branch_if_found(p, "lookup ptr", hit, miss)
    }

    /// The map-value pointer kept in `slot` by [`Self::branch_if_found`].
    fn reload_ptr(&mut self, slot: Slot) -> Value {
        let sa = self.b.slot_addr(slot, 0);
        self.b.load_ptr(sa, 0, ValTy::MapValue)
    }

    /// `map_lookup_elem(map, &key)`.
    fn lookup(&mut self, map: StateId, key: &'p hir::Expr) -> Value {
        let mid = self.m.state_maps[&map];
        let key_size = self.m.module.maps[mid].key_size;
        let k = self.arg_ptr(key, key_size);
        let mref = self.map_ref(mid);
        self.b.call(helper::MAP_LOOKUP, vec![mref, k], ValTy::MapValueOrNull)
    }

    /// A pointer to `size` bytes holding `e`, for a helper argument: the state field `e`
    /// reads, if it is one of exactly that size (a map value the helper may read), else a
    /// new stack slot the value is stored in.
    fn arg_ptr(&mut self, e: &'p hir::Expr, size: u32) -> Value {
        // A local used as a map key more than once is passed from its own slot: it then
        // stays on the stack, stored once, rather than stored again for every call.
        if let ExprKind::Read(p) = &e.kind {
            if let (PlaceBase::Local(l), true) = (p.base, p.projections.is_empty()) {
                let own = matches!(self.binding(l), Some(Binding::Slot(_)) | None);
                let body = self.frames.last().expect("a frame").body;
                if own && self.program().layout(&e.ty).size == size && e.ty.is_scalar() && key_reads(&body.block, l) > 1 {
                    let slot = self.local_slot(l);
                    return self.b.slot_addr(slot, 0);
                }
            }
        }
        if let ExprKind::Read(p) = &e.kind {
            let in_map = matches!(p.base, PlaceBase::State(id) if !matches!(self.program().states[id].storage, StateStorage::Config(_)));
            if in_map && self.program().layout(&e.ty).size == size {
                if let Some((ptr, off)) = self.place_ptr(p) {
                    return self.offset_ptr(ptr, off);
                }
            }
        }
        let slot = self.materialize(e, size);
        self.b.slot_addr(slot, 0)
    }

    /// A stack slot holding `e` (`size` bytes), for helper arguments.
    fn materialize(&mut self, e: &'p hir::Expr, size: u32) -> Slot {
        let slot = self.b.slot(size.max(8), "tmp");
        if !e.ty.is_scalar() {
            // Padding bytes are part of a key (and of a value user space reads): zero them.
            let a = self.b.slot_addr(slot, 0);
            self.b.push(InstData::MemZero { ptr: a, size: size.div_ceil(8) * 8 });
        }
        self.store_value(Dest::Slot(slot, 0), &e.ty, e);
        slot
    }

    /// Keeps a scalar in a new stack slot, so it survives new blocks.
    fn spill_value(&mut self, v: Value) -> Slot {
        let slot = self.b.slot(8, "spill");
        let a = self.b.slot_addr(slot, 0);
        self.b.store(a, 0, 8, v);
        slot
    }

    /// Reads back a scalar kept by [`Self::spill_value`].
    fn reload(&mut self, slot: Slot) -> Value {
        let a = self.b.slot_addr(slot, 0);
        self.b.load(a, 0, 8)
    }

    /// The pointer of a destination, derived in the current block.
    fn dest_ptr(&mut self, d: Dest<'p>) -> Option<(Value, i16)> {
        match d {
            Dest::Slot(slot, off) => Some((self.b.slot_addr(slot, 0), off as i16)),
            Dest::Place(p, off) => self.place_ptr(p).map(|(ptr, o)| (ptr, o + off as i16)),
        }
    }

    fn dest_field(d: Dest<'p>, extra: u32) -> Dest<'p> {
        match d {
            Dest::Slot(s, off) => Dest::Slot(s, off + extra),
            Dest::Place(p, off) => Dest::Place(p, off + extra),
        }
    }

    /// Stores `e` of type `ty` at `dest` (scalars, struct literals, copies, zero).
    fn store_value(&mut self, dest: Dest<'p>, ty: &Ty, e: &'p hir::Expr) {
        if ty.is_scalar() {
            let v = self.expr(e);
            let before = self.b.block;
            let v_slot = (!matches!(dest, Dest::Slot(..)) && may_branch_place(dest)).then(|| self.spill_value(v));
            let Some((ptr, off)) = self.dest_ptr(dest) else { return };
            let v = match v_slot {
                Some(s) => self.reload(s),
                None => {
                    debug_assert_eq!(before, self.b.block);
                    v
                }
            };
            self.b.store(ptr, off, scalar_size(ty), v);
            return;
        }
        match &e.kind {
            ExprKind::Const(0) => {
                if let Some((ptr, off)) = self.dest_ptr(dest) {
                    let p = self.offset_ptr(ptr, off);
                    self.zero(p, ty);
                }
            }
            ExprKind::Struct(s, fields) => {
                let sd = &self.program().structs[*s];
                let offsets: Vec<(u32, Ty)> = sd.fields.iter().map(|f| (f.offset, f.ty.clone())).collect();
                for ((foff, fty), fe) in offsets.into_iter().zip(fields) {
                    self.store_value(Self::dest_field(dest, foff), &fty, fe);
                }
            }
            ExprKind::Read(place) => {
                let size = self.program().layout(ty).size;
                let Some((src, soff)) = self.place_ptr(place) else { return };
                let src = self.offset_ptr(src, soff);
                let src_ty = self.b.func.values[src].ty;
                let src_slot = self.spill_value(src);
                let Some((ptr, off)) = self.dest_ptr(dest) else { return };
                let dst = self.offset_ptr(ptr, off);
                let sa = self.b.slot_addr(src_slot, 0);
                let src = self.b.load_ptr(sa, 0, src_ty);
                self.b.push(InstData::MemCopy { dst_ptr: dst, src, size });
            }
            _ => {
                let _ = self.expr(e);
            }
        }
    }

    fn offset_ptr(&mut self, ptr: Value, off: i16) -> Value {
        self.offset_ptr_wide(ptr, i64::from(off))
    }

    /// `ptr + off` for any offset into a value (up to `MAX_VALUE_BYTES`).
    fn offset_ptr_wide(&mut self, ptr: Value, off: i64) -> Value {
        if off == 0 {
            return ptr;
        }
        let o = self.b.iconst(off);
        self.b.ptr_add(ptr, o)
    }

    fn zero(&mut self, ptr: Value, ty: &Ty) {
        let size = self.program().layout(ty).size;
        if ty.is_scalar() {
            let z = self.b.iconst(0);
            self.b.store(ptr, 0, scalar_size(ty), z);
        } else {
            self.b.push(InstData::MemZero { ptr, size });
        }
    }

    // ------------------------------------------------------------------------------
    // Places

    /// A pointer and constant offset for a place in memory; `None` for the read-only views
    /// (lock and waiter fields, per_waiter state), which `read_place` handles.
    fn place_ptr(&mut self, p: &'p hir::Place) -> Option<(Value, i16)> {
        let (mut ptr, mut off, mut ty) = match p.base {
            PlaceBase::Local(l) => match self.binding(l) {
                Some(Binding::Ref(slot, vt)) => {
                    let a = self.b.slot_addr(slot, 0);
                    (self.b.load_ptr(a, 0, vt), 0i64, self.local_ty(l))
                }
                Some(Binding::Lock | Binding::Waiter(_) | Binding::Ok | Binding::Value(_)) => return None,
                Some(Binding::Slot(_)) | None => {
                    let s = self.local_slot(l);
                    (self.b.slot_addr(s, 0), 0, self.local_ty(l))
                }
            },
            PlaceBase::State(id) => {
                let st = &self.program().states[id];
                let ty = st.ty.clone();
                match st.storage {
                    StateStorage::Config(_) => {
                        let offset = self.m.rodata[&id];
                        let dst = self.b.value(ValTy::MapValue);
                        self.b.push(InstData::Rodata { dst, offset });
                        (dst, 0, ty)
                    }
                    _ => {
                        let slot = *self.state_ptrs.get(&id)?;
                        let a = self.b.slot_addr(slot, 0);
                        (self.b.load_ptr(a, 0, ValTy::MapValue), 0, ty)
                    }
                }
            }
            PlaceBase::LockField(_) | PlaceBase::WaiterField(..) | PlaceBase::PerWaiter(..) => return None,
        };
        for pr in &p.projections {
            match pr {
                Projection::Field(i) => {
                    let Ty::Struct(s) = &ty else { return None };
                    let f = &self.program().structs[*s].fields[*i];
                    off += i64::from(f.offset);
                    ty = f.ty.clone();
                }
                Projection::Index(idx) => {
                    let Ty::Array(elem, n) = ty.clone() else { return None };
                    let esize = self.program().layout(&elem).size;
                    // A constant index in range is an offset like a field's.
                    if let ExprKind::Const(k) = idx.kind {
                        if (0..i128::from(n)).contains(&k) {
                            off += k as i64 * i64::from(esize);
                            ty = *elem;
                            continue;
                        }
                    }
                    // Keep the base and the index in slots: the index may open blocks, and
                    // the bounds check does.
                    let base = self.offset_ptr_wide(ptr, off);
                    let vt = self.b.func.values[base].ty;
                    let base_slot = self.spill_value(base);
                    let i = self.expr(idx);
                    let i_slot = self.spill_value(i);
                    let bound = self.b.iconst(i64::from(n));
                    let inside = self.b.cmp(Cond::ULt, i, bound);
                    let ok = self.b.create_block();
                    let bad = self.b.create_block();
                    let join = self.b.create_block();
                    let elem_slot = self.b.slot(8, "element");
                    // An index out of range reads 0 and writes nothing: it is redirected to
                    // a zeroed scratch element.
                    let scratch = self.b.slot(esize, "out of range");
                    self.b.terminate(Terminator::Branch { cond: inside, then: ok, else_: bad });
                    self.b.switch_to(ok);
                    let ba = self.b.slot_addr(base_slot, 0);
                    let base = self.b.load_ptr(ba, 0, vt);
                    let i = self.reload(i_slot);
                    // The kernel verifier knows the bound from the check above (the spilled
                    // index shares the checked register's identity); for a power-of-two
                    // length, `i & (n - 1)` (which is `i` here) states it outright.
                    let i = if n.is_power_of_two() {
                        let mask = self.b.iconst(i64::from(n) - 1);
                        self.b.bin(BinOp::And, Width::W64, i, mask)
                    } else {
                        i
                    };
                    let sz = self.b.iconst(i64::from(esize));
                    let byte = self.b.bin(BinOp::Mul, Width::W64, i, sz);
                    let elem_ptr = self.b.ptr_add(base, byte);
                    let ea = self.b.slot_addr(elem_slot, 0);
                    self.b.store(ea, 0, 8, elem_ptr);
                    self.b.terminate(Terminator::Jump(join));
                    self.b.switch_to(bad);
                    let sa = self.b.slot_addr(scratch, 0);
                    self.b.push(InstData::MemZero { ptr: sa, size: esize.div_ceil(8) * 8 });
                    let sa = self.b.slot_addr(scratch, 0);
                    let ea = self.b.slot_addr(elem_slot, 0);
                    self.b.store(ea, 0, 8, sa);
                    self.b.terminate(Terminator::Jump(join));
                    self.b.switch_to(join);
                    let ea = self.b.slot_addr(elem_slot, 0);
                    // A map value or a stack pointer, depending on the path: the kernel's
                    // verifier follows each path; the IR records the in-range kind.
                    ptr = self.b.load_ptr(ea, 0, vt);
                    off = 0;
                    ty = *elem;
                }
            }
        }
        // An instruction's displacement is 16 bits; callers add a field's offset or a few
        // bytes of a copy to what is returned, so keep it well inside.
        if off > i64::from(i16::MAX / 2) {
            ptr = self.offset_ptr_wide(ptr, off);
            off = 0;
        }
        Some((ptr, off as i16))
    }

    /// Reads a scalar place.
    fn read_place(&mut self, p: &'p hir::Place) -> Value {
        match p.base {
            PlaceBase::LockField(f) => return self.lock_field(f.name),
            PlaceBase::WaiterField(w, f) => {
                if let Some(Binding::Waiter(base)) = self.binding(w) {
                    let v = self.ctx_field(base + f.offset, f.size as u8);
                    return v;
                }
                return self.b.iconst(0);
            }
            PlaceBase::PerWaiter(w, id) => {
                let (Some(Binding::Waiter(base)), StateStorage::PerWaiter { offset }) = (self.binding(w), self.program().states[id].storage.clone()) else {
                    return self.b.iconst(0);
                };
                let size = scalar_size(&p.ty);
                let v = self.ctx_field(base + cat::WAITER_DATA_OFFSET + offset, size);
                return self.canon_load(v, &p.ty);
            }
            PlaceBase::Local(l) => match self.binding(l) {
                Some(Binding::Value(v)) if p.projections.is_empty() => return v,
                Some(Binding::Lock) => return self.lock_addr(),
                Some(Binding::Waiter(_)) => return self.b.iconst(0),
                Some(Binding::Ok) => {
                    // contention_end's `ret`: 0 means the lock was acquired.
                    let ret = self.ctx_arg(1);
                    let r = self.b.ext(32, true, ret);
                    let zero = self.b.iconst(0);
                    return self.b.cmp(Cond::Eq, r, zero);
                }
                _ => {}
            },
            PlaceBase::State(id) => {
                if let Some(&slot) = field_path(p).and_then(|path| self.preread.get(&(id, path))) {
                    let v = self.reload(slot);
                    return self.canon_load(v, &p.ty);
                }
            }
        }
        match self.place_ptr(p) {
            Some((ptr, off)) => {
                let v = self.b.load(ptr, off, scalar_size(&p.ty));
                self.canon_load(v, &p.ty)
            }
            None => self.b.iconst(0),
        }
    }

    /// Loads are zero-extended; signed types are sign-extended again.
    fn canon_load(&mut self, v: Value, ty: &Ty) -> Value {
        match ty {
            Ty::Int(i) if i.signed && i.bits < 64 => self.b.ext(i.bits, true, v),
            _ => v,
        }
    }

    // ------------------------------------------------------------------------------
    // Expressions

    /// Lowers a scalar expression to a value.
    fn expr(&mut self, e: &'p hir::Expr) -> Value {
        match &e.kind {
            ExprKind::Const(v) => self.b.iconst(*v as i64),
            ExprKind::Read(p) => self.read_place(p),
            ExprKind::Unary(op, x) => {
                let v = self.expr(x);
                match op {
                    UnOp::Not => {
                        let one = self.b.iconst(1);
                        self.b.bin(BinOp::Xor, Width::W64, v, one)
                    }
                    UnOp::Neg => {
                        let i = int_of(&e.ty);
                        let dst = self.b.value(ValTy::Int);
                        self.b.push(InstData::Neg { width: width(i), dst, a: v });
                        self.canon(dst, i)
                    }
                    UnOp::BitNot => {
                        let i = int_of(&e.ty);
                        let all = self.b.iconst(-1);
                        let r = self.b.bin(BinOp::Xor, width(i), v, all);
                        self.canon(r, i)
                    }
                }
            }
            ExprKind::Binary(op, a, b) => self.binary(*op, a, b, &e.ty),
            ExprKind::Cast(x) => {
                let v = self.expr(x);
                match &e.ty {
                    Ty::Int(to) => {
                        if let Ty::Int(from) = &x.ty {
                            if from.signed == to.signed && from.bits <= to.bits {
                                return v; // canonical values widen for free
                            }
                        }
                        self.canon(v, *to)
                    }
                    _ => v,
                }
            }
            ExprKind::Call(f, args) => self.inline_call(*f, args),
            ExprKind::Builtin(def, args) => self.builtin(def, args, &e.ty),
            ExprKind::Method(map, def, args) => self.method(*map, def, args, &e.ty),
            ExprKind::Struct(..) | ExprKind::Error => self.b.iconst(0),
        }
    }

    /// Re-canonicalises `v` as an integer of type `i` after arithmetic.
    fn canon(&mut self, v: Value, i: IntTy) -> Value {
        match (i.bits, i.signed) {
            (64, _) => v,
            (32, false) => v, // the 32-bit ALU zero-extends
            (bits, signed) => self.b.ext(bits, signed, v),
        }
    }

    fn binary(&mut self, op: HBin, a: &'p hir::Expr, b: &'p hir::Expr, ty: &Ty) -> Value {
        match op {
            HBin::And | HBin::Or => return self.logic(op, a, b),
            _ => {}
        }
        let (x, y) = self.pair(a, b);
        if op.is_comparison() {
            let signed = int_of(&a.ty).signed && a.ty != Ty::Bool;
            let cond = match (op, signed) {
                (HBin::Eq, _) => Cond::Eq,
                (HBin::Ne, _) => Cond::Ne,
                (HBin::Lt, false) => Cond::ULt,
                (HBin::Le, false) => Cond::ULe,
                (HBin::Gt, false) => Cond::UGt,
                (HBin::Ge, false) => Cond::UGe,
                (HBin::Lt, true) => Cond::SLt,
                (HBin::Le, true) => Cond::SLe,
                (HBin::Gt, true) => Cond::SGt,
                (HBin::Ge, true) => Cond::SGe,
                _ => Cond::Eq,
            };
            return self.b.cmp(cond, x, y);
        }
        self.arith(op, ty, x, y, &b.ty)
    }

    /// Evaluates `a` then `b`, keeping `a` in a slot if `b` opens blocks.
    fn pair(&mut self, a: &'p hir::Expr, b: &'p hir::Expr) -> (Value, Value) {
        let x = self.expr(a);
        if !may_branch(b) {
            let y = self.expr(b);
            return (x, y);
        }
        let kept = self.spill_value(x);
        let y = self.expr(b);
        let y_kept = self.spill_value(y);
        let x = self.reload(kept);
        let y = self.reload(y_kept);
        (x, y)
    }

    /// `x op y` at type `ty`, canonical result.
    fn arith(&mut self, op: HBin, ty: &Ty, x: Value, y: Value, _rhs_ty: &Ty) -> Value {
        let i = int_of(ty);
        let w = width(i);
        let bop = match (op, i.signed) {
            (HBin::Add, _) => BinOp::Add,
            (HBin::Sub, _) => BinOp::Sub,
            (HBin::Mul, _) => BinOp::Mul,
            (HBin::Div, false) => BinOp::UDiv,
            (HBin::Div, true) => BinOp::SDiv,
            (HBin::Rem, false) => BinOp::URem,
            (HBin::Rem, true) => BinOp::SRem,
            (HBin::BitAnd, _) => BinOp::And,
            (HBin::BitOr, _) => BinOp::Or,
            (HBin::BitXor, _) => BinOp::Xor,
            (HBin::Shl, _) => BinOp::Shl,
            (HBin::Shr, false) => BinOp::LShr,
            (HBin::Shr, true) => BinOp::AShr,
            _ => BinOp::Add,
        };
        let y = if matches!(bop, BinOp::Shl | BinOp::LShr | BinOp::AShr) {
            // Shift counts wrap at the ALU width, as the hardware does.
            let mask = self.b.iconst(if w == Width::W32 { 31 } else { 63 });
            self.b.bin(BinOp::And, Width::W64, y, mask)
        } else {
            y
        };
        // Signed 32-bit operations work on the low 32 bits; smaller types too.
        let r = self.b.bin(bop, w, x, y);
        let needs = matches!(bop, BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Shl | BinOp::SDiv | BinOp::SRem | BinOp::AShr)
            || (i.signed && i.bits == 32);
        if needs || (i.signed && i.bits < 64) {
            self.canon(r, i)
        } else {
            r
        }
    }

    /// `&&` / `||`: short-circuit when the right side has effects, else branch-free.
    fn logic(&mut self, op: HBin, a: &'p hir::Expr, b: &'p hir::Expr) -> Value {
        let x = self.expr(a);
        if is_pure(b) {
            let y = self.expr(b);
            return self.b.bin(if op == HBin::And { BinOp::And } else { BinOp::Or }, Width::W64, x, y);
        }
        let slot = self.b.slot(8, "logic");
        let addr = self.b.slot_addr(slot, 0);
        self.b.store(addr, 0, 8, x);
        let rhs = self.b.create_block();
        let join = self.b.create_block();
        let (then, else_) = if op == HBin::And { (rhs, join) } else { (join, rhs) };
        self.b.terminate(Terminator::Branch { cond: x, then, else_ });
        self.b.switch_to(rhs);
        let y = self.expr(b);
        let addr = self.b.slot_addr(slot, 0);
        self.b.store(addr, 0, 8, y);
        self.b.terminate(Terminator::Jump(join));
        self.b.switch_to(join);
        let addr = self.b.slot_addr(slot, 0);
        self.b.load(addr, 0, 8)
    }

    fn inline_call(&mut self, f: hir::FuncId, args: &'p [Arg]) -> Value {
        let func = &self.program().funcs[f];
        // A function that is one `return EXPR;` whose evaluation opens no block is inlined
        // as an expression: its scalar arguments are used as values, with no slots, no
        // result slot and no continuation block.
        if let [Stmt::Return(Some(e), _)] = func.body.block.stmts.as_slice() {
            let simple_args = func.params.iter().zip(args).all(|((l, inout), a)| match a {
                Arg::Value(v) => !inout && (func.body.locals[*l].ty.is_scalar() || matches!(v.ty, Ty::Lock | Ty::Waiter)) && !may_branch(v),
                Arg::Place(_) => false,
            });
            if simple_args && !may_branch(e) {
                let mut locals = HashMap::default();
                for ((local, _), arg) in func.params.iter().zip(args) {
                    let Arg::Value(v) = arg else { unreachable!("checked above") };
                    let binding = match &v.kind {
                        ExprKind::Read(hir::Place { base: PlaceBase::Local(l), projections, .. }) if projections.is_empty() => {
                            match self.binding(*l) {
                                Some(b @ (Binding::Lock | Binding::Waiter(_) | Binding::Ok)) => Some(b),
                                _ => None,
                            }
                        }
                        _ => None,
                    };
                    let binding = binding.unwrap_or_else(|| Binding::Value(self.expr(v)));
                    locals.insert(*local, binding);
                }
                self.frames.push(Frame { body: &func.body, locals, ret: None });
                let r = self.expr(e);
                self.frames.pop();
                return r;
            }
        }
        let mut locals = HashMap::default();
        for ((local, inout), arg) in func.params.iter().zip(args) {
            match (inout, arg) {
                (true, Arg::Place(p)) => {
                    let Some((ptr, off)) = self.place_ptr(p) else { continue };
                    let ptr = self.offset_ptr(ptr, off);
                    let vt = self.b.func.values[ptr].ty;
                    let slot = self.b.slot(8, format!("&{}", func.body.locals[*local].name));
                    let a = self.b.slot_addr(slot, 0);
                    self.b.store(a, 0, 8, ptr);
                    locals.insert(*local, Binding::Ref(slot, vt));
                }
                (_, Arg::Value(e)) => {
                    // `lock` and `waiter` are views of the context: the parameter is the same view.
                    if let ExprKind::Read(hir::Place { base: PlaceBase::Local(l), projections, .. }) = &e.kind {
                        if projections.is_empty() {
                            if let Some(b @ (Binding::Lock | Binding::Waiter(_) | Binding::Ok)) = self.binding(*l) {
                                locals.insert(*local, b);
                                continue;
                            }
                        }
                    }
                    let ty = func.body.locals[*local].ty.clone();
                    // A struct or array the callee only reads is passed by reference, not copied.
                    if !ty.is_scalar() && !writes_local(&func.body.block, *local) {
                        if let ExprKind::Read(place) = &e.kind {
                            if let Some((ptr, off)) = self.place_ptr(place) {
                                let ptr = self.offset_ptr(ptr, off);
                                let vt = self.b.func.values[ptr].ty;
                                let slot = self.b.slot(8, format!("&{}", func.body.locals[*local].name));
                                let a = self.b.slot_addr(slot, 0);
                                self.b.store(a, 0, 8, ptr);
                                locals.insert(*local, Binding::Ref(slot, vt));
                                continue;
                            }
                        }
                    }
                    let size = self.program().layout(&ty).size;
                    let slot = self.b.slot(size, func.body.locals[*local].name.clone());
                    self.store_value(Dest::Slot(slot, 0), &ty, e);
                    locals.insert(*local, Binding::Slot(slot));
                }
                (_, Arg::Place(_)) => {}
            }
        }
        let result = (func.ret != Ty::Void).then(|| self.b.slot(8, format!("{} result", func.name)));
        if let Some(r) = result {
            let a = self.b.slot_addr(r, 0);
            let z = self.b.iconst(0);
            self.b.store(a, 0, 8, z);
        }
        let cont = self.b.create_block();
        let saved_loops = std::mem::take(&mut self.loops);
        self.frames.push(Frame { body: &func.body, locals, ret: Some((result, cont)) });
        self.block(&func.body.block);
        self.frames.pop();
        self.loops = saved_loops;
        self.b.terminate(Terminator::Jump(cont));
        self.b.switch_to(cont);
        match result {
            Some(r) => {
                let a = self.b.slot_addr(r, 0);
                self.b.load(a, 0, 8)
            }
            None => self.b.iconst(0),
        }
    }

    fn builtin(&mut self, def: &'static cat::BuiltinDef, args: &'p [Arg], ty: &Ty) -> Value {
        let stock = self.target() == Target::Stock;
        let value = |s: &mut Self, i: usize| match &args[i] {
            Arg::Value(e) => s.expr(e),
            Arg::Place(p) => s.read_place(p),
        };
        match def.name {
            "now" => self.b.call(helper::KTIME, Vec::new(), ValTy::Int),
            "cpu" if stock => self.b.call(helper::SMP_ID, Vec::new(), ValTy::Int),
            "numa_node" if stock => self.b.call(helper::NUMA_ID, Vec::new(), ValTy::Int),
            "cpu" => self.ctx_field(16, 4),
            "numa_node" => self.ctx_field(20, 4),
            "tid" => self.tid(),
            "tgid" if stock => {
                let v = self.b.call(helper::PID_TGID, Vec::new(), ValTy::Int);
                let s = self.b.iconst(32);
                self.b.bin(BinOp::LShr, Width::W64, v, s)
            }
            "tgid" => self.ctx_field(28, 4),
            "random" => self.b.call(helper::PRANDOM, Vec::new(), ValTy::Int),
            "min" | "max" => {
                let known = args.iter().all(|a| matches!(a, Arg::Value(e) if self.verifier_known(e)));
                let (a, b) = match (&args[0], &args[1]) {
                    (Arg::Value(x), Arg::Value(y)) => self.pair(x, y),
                    _ => (value(self, 0), value(self, 1)),
                };
                let depth = self.loop_depth;
                if known {
                    self.loop_depth = 0;
                }
                let v = self.min_max(def.name == "min", int_of(ty).signed, a, b);
                self.loop_depth = depth;
                v
            }
            "log2" => {
                let v = value(self, 0);
                self.log2(v)
            }
            "back_off" | "sleep" => {
                // The clamp's operands are the limit (a constant or frozen config) and, most
                // often, a config value or constant too: then the verifier knows which way
                // the clamp goes and a jump over a move adds no path, even in a loop.
                let known = matches!(args.first(), Some(Arg::Value(e)) if self.verifier_known(e));
                let ns = value(self, 0);
                let limit = if def.name == "back_off" { self.backoff_limit() } else { self.b.iconst(cat::SLEEP_LIMIT_NS as i64) };
                self.wait(ns, limit, known);
                self.b.iconst(0)
            }
            "read_user" => {
                let addr = value(self, 0);
                let slot = self.b.slot(8, "read_user");
                let a = self.b.slot_addr(slot, 0);
                let z = self.b.iconst(0);
                self.b.store(a, 0, 8, z);
                let a = self.b.slot_addr(slot, 0);
                let n = self.b.iconst(8);
                let _ = self.b.call(helper::COPY_FROM_USER, vec![a, n, addr], ValTy::Int);
                let a = self.b.slot_addr(slot, 0);
                self.b.load(a, 0, 8)
            }
            "atomic_add" | "atomic_cas" => self.atomic(def.name, args, ty),
            _ => self.b.iconst(0),
        }
    }

    /// The clamp of `back_off`: the policy's `config max_backoff_ns`, or the default.
    fn backoff_limit(&mut self) -> Value {
        let program = self.program();
        let config = program.states.iter().find(|(_, s)| s.name == cat::BACK_OFF_CONFIG && matches!(s.storage, StateStorage::Config(_)));
        match config {
            Some((id, _)) => {
                let offset = self.m.rodata[&id];
                let dst = self.b.value(ValTy::MapValue);
                self.b.push(InstData::Rodata { dst, offset });
                self.b.load(dst, 0, 8)
            }
            None => self.b.iconst(cat::BACK_OFF_DEFAULT_MAX_NS as i64),
        }
    }

    /// Busy-waits `min(ns, limit)` nanoseconds: `bpf_loop` runs the wait callback, which
    /// stops at the deadline, at most `WAIT_POLLS` times. The callback is verified once,
    /// so a wait costs the verifier a handful of instructions whatever its length.
    /// `min(a, b)` (or `max`): outside loops a jump over a move, `t = a; if !(a < b) t = b`;
    /// inside loops branch-free, `min = b ^ ((a ^ b) & -(a < b))` with `max` swapping the
    /// roles, so an iteration adds no path for the verifier (callers whose operands the
    /// verifier knows use the jump there too: it knows which way it goes).
    fn min_max(&mut self, min: bool, signed: bool, a: Value, b: Value) -> Value {
        let lt_cond = if signed { Cond::SLt } else { Cond::ULt };
        let (if_lt, otherwise) = if min { (a, b) } else { (b, a) };
        if self.loop_depth == 0 {
            return self.b.select(lt_cond, a, b, if_lt, otherwise);
        }
        let lt = self.b.cmp(lt_cond, a, b);
        let zero = self.b.iconst(0);
        let mask = self.b.bin(BinOp::Sub, Width::W64, zero, lt);
        let x = self.b.bin(BinOp::Xor, Width::W64, a, b);
        let m = self.b.bin(BinOp::And, Width::W64, x, mask);
        self.b.bin(BinOp::Xor, Width::W64, otherwise, m)
    }

    fn wait(&mut self, ns: Value, limit: Value, known: bool) {
        let d = if known { self.b.select(Cond::ULt, ns, limit, ns, limit) } else { self.min_max(true, false, ns, limit) };
        let now = self.b.call(helper::KTIME, Vec::new(), ValTy::Int);
        let deadline = self.b.bin(BinOp::Add, Width::W64, now, d);
        let dslot = self.b.slot(8, "deadline");
        let da = self.b.slot_addr(dslot, 0);
        self.b.store(da, 0, 8, deadline);
        let count = self.b.iconst(WAIT_POLLS);
        let da = self.b.slot_addr(dslot, 0);
        let dst = self.b.value(ValTy::Int);
        self.b.push(InstData::Loop { dst, callback: Callback::WaitUntil, count, ctx_ptr: da });
    }

    /// True if the kernel verifier knows `e`'s value: a constant, or a config value (in
    /// `.rodata`, frozen before the program loads).
    fn verifier_known(&self, e: &hir::Expr) -> bool {
        match &e.kind {
            ExprKind::Const(_) => true,
            ExprKind::Read(p) => {
                p.projections.iter().all(|pr| matches!(pr, Projection::Field(_)))
                    && matches!(p.base, PlaceBase::State(id) if matches!(self.program().states[id].storage, StateStorage::Config(_)))
            }
            ExprKind::Cast(x) => self.verifier_known(x),
            _ => false,
        }
    }

    /// floor(log2(v)), branch-free: a binary search over 32, 16, 8, 4, 2, 1.
    fn log2(&mut self, v: Value) -> Value {
        let mut v = v;
        let mut r = self.b.iconst(0);
        for shift in [32i64, 16, 8, 4, 2, 1] {
            let s = self.b.iconst(shift);
            let hi = self.b.bin(BinOp::LShr, Width::W64, v, s);
            let zero = self.b.iconst(0);
            let t = self.b.cmp(Cond::Ne, hi, zero);
            let sc = self.b.iconst(shift);
            let step = self.b.bin(BinOp::Mul, Width::W64, t, sc);
            v = self.b.bin(BinOp::LShr, Width::W64, v, step);
            r = self.b.bin(BinOp::Add, Width::W64, r, step);
        }
        r
    }

    fn atomic(&mut self, name: &str, args: &'p [Arg], ty: &Ty) -> Value {
        let Arg::Place(place) = &args[0] else { return self.b.iconst(0) };
        // Operands first, kept in slots: they may open blocks, and so may the place.
        let mut kept = Vec::new();
        for a in &args[1..] {
            let v = match a {
                Arg::Value(e) => self.expr(e),
                Arg::Place(p) => self.read_place(p),
            };
            kept.push(self.spill_value(v));
        }
        let Some((ptr, off)) = self.place_ptr(place) else { return self.b.iconst(0) };
        let size = scalar_size(&place.ty);
        let shared = self.b.func.values[ptr].ty == ValTy::MapValue && size >= 4;
        let operands: Vec<Value> = kept.iter().map(|s| self.reload(*s)).collect();
        if name == "atomic_add" {
            let v = operands[0];
            if shared {
                let dst = self.b.value(ValTy::Int);
                self.b.push(InstData::Atomic { op: AtomicOp::FetchAdd, size, dst, ptr, offset: off, val: v, expected: None });
                return self.canon_load(dst, ty);
            }
            // A local (or a narrow field) is not shared: a plain read-modify-write.
            let old = self.b.load(ptr, off, size);
            let old = self.canon_load(old, &place.ty);
            let new = self.arith(HBin::Add, &place.ty, old, v, &place.ty);
            self.b.store(ptr, off, size, new);
            return old;
        }
        let (expected, new) = (operands[0], operands[1]);
        if shared {
            let dst = self.b.value(ValTy::Int);
            self.b.push(InstData::Atomic { op: AtomicOp::CmpXchg, size, dst, ptr, offset: off, val: new, expected: Some(expected) });
            let old = self.canon_load(dst, &place.ty);
            return self.b.cmp(Cond::Eq, old, expected);
        }
        let old = self.b.load(ptr, off, size);
        let old = self.canon_load(old, &place.ty);
        let same = self.b.cmp(Cond::Eq, old, expected);
        // Not shared and in one block: store `same ? new : old`, branch-free.
        let zero = self.b.iconst(0);
        let mask = self.b.bin(BinOp::Sub, Width::W64, zero, same);
        let x = self.b.bin(BinOp::Xor, Width::W64, new, old);
        let m = self.b.bin(BinOp::And, Width::W64, x, mask);
        let v = self.b.bin(BinOp::Xor, Width::W64, old, m);
        self.b.store(ptr, off, size, v);
        same
    }

    fn method(&mut self, map: StateId, def: &'static cat::MethodDef, args: &'p [hir::Expr], ty: &Ty) -> Value {
        let mid = self.m.state_maps[&map];
        let decl = self.m.module.maps[mid].clone();
        match def.name {
            "get_or" => {
                let out = self.b.slot(8, "get_or");
                let d = self.expr(&args[1]);
                let oa = self.b.slot_addr(out, 0);
                self.b.store(oa, 0, 8, d);
                let p = self.lookup(map, &args[0]);
                let yes = self.b.create_block();
                let join = self.b.create_block();
                let slot = self.branch_if_found(p, "get_or ptr", yes, join);
                self.b.switch_to(yes);
                let p = self.reload_ptr(slot);
                let v = self.b.load(p, 0, scalar_size(ty));
                let v = self.canon_load(v, ty);
                let oa = self.b.slot_addr(out, 0);
                self.b.store(oa, 0, 8, v);
                self.b.terminate(Terminator::Jump(join));
                self.b.switch_to(join);
                let oa = self.b.slot_addr(out, 0);
                self.b.load(oa, 0, 8)
            }
            "set" => {
                // IR values do not cross blocks: if the value may branch, the key waits in
                // a slot of its own.
                let k = match may_branch(&args[1]) {
                    true => Err(self.materialize(&args[0], decl.key_size)),
                    false => Ok(self.arg_ptr(&args[0], decl.key_size)),
                };
                let v = self.arg_ptr(&args[1], decl.value_size);
                let k = k.unwrap_or_else(|slot| self.b.slot_addr(slot, 0));
                let mref = self.map_ref(mid);
                let flags = self.b.iconst(0);
                self.b.call(helper::MAP_UPDATE, vec![mref, k, v, flags], ValTy::Int)
            }
            "delete" => {
                let k = self.arg_ptr(&args[0], decl.key_size);
                let mref = self.map_ref(mid);
                self.b.call(helper::MAP_DELETE, vec![mref, k], ValTy::Int)
            }
            "emit" => {
                let size = self.program().layout(&args[0].ty).size;
                let v = self.materialize(&args[0], size);
                let v = self.b.slot_addr(v, 0);
                let mref = self.map_ref(mid);
                let n = self.b.iconst(i64::from(size));
                let flags = self.b.iconst(0);
                self.b.call(helper::RINGBUF_OUTPUT, vec![mref, v, n, flags], ValTy::Int)
            }
            _ => self.b.iconst(0),
        }
    }
}

/// True if `block` may write local `l` (an assignment to it or a part of it, or passing it
/// as a place to an `inout` parameter or an atomic).
fn writes_local(block: &hir::Block, l: LocalId) -> bool {
    fn rooted(p: &hir::Place, l: LocalId) -> bool {
        matches!(p.base, PlaceBase::Local(x) if x == l)
    }
    fn expr(e: &hir::Expr, l: LocalId) -> bool {
        match &e.kind {
            ExprKind::Call(_, args) | ExprKind::Builtin(_, args) => args.iter().any(|a| match a {
                Arg::Place(p) => rooted(p, l),
                Arg::Value(v) => expr(v, l),
            }),
            ExprKind::Unary(_, x) | ExprKind::Cast(x) => expr(x, l),
            ExprKind::Binary(_, a, b) => expr(a, l) || expr(b, l),
            ExprKind::Method(_, _, args) | ExprKind::Struct(_, args) => args.iter().any(|a| expr(a, l)),
            _ => false,
        }
    }
    block.stmts.iter().any(|s| match s {
        Stmt::Assign { place, value, .. } => rooted(place, l) || expr(value, l),
        Stmt::Let(_, Some(e)) | Stmt::Expr(e) | Stmt::Return(Some(e), _) => expr(e, l),
        Stmt::If { arms, else_ } => {
            arms.iter().any(|(c, b)| {
                (match c {
                    HCond::Expr(e) => expr(e, l),
                    HCond::MapGet { key, .. } => expr(key, l),
                }) || writes_local(b, l)
            }) || else_.as_ref().is_some_and(|b| writes_local(b, l))
        }
        Stmt::For { body, .. } | Stmt::Block(body) => writes_local(body, l),
        _ => false,
    })
}

/// True if deriving the destination's pointer opens blocks (an indexed place).
fn may_branch_place(d: Dest<'_>) -> bool {
    match d {
        Dest::Slot(..) => false,
        Dest::Place(p, _) => p.projections.iter().any(|pr| matches!(pr, Projection::Index(_))),
    }
}

/// True if lowering `e` may open new blocks (so values computed before it must be kept in
/// slots): calls, lookups, indexing, waits, short-circuit logic.
fn may_branch(e: &hir::Expr) -> bool {
    match &e.kind {
        ExprKind::Const(_) => false,
        ExprKind::Read(p) => {
            p.projections.iter().any(|pr| matches!(pr, Projection::Index(_))) || lock_flag_read(p)
        }
        ExprKind::Unary(_, x) | ExprKind::Cast(x) => may_branch(x),
        ExprKind::Binary(op, a, b) => {
            may_branch(a) || may_branch(b) || (matches!(op, HBin::And | HBin::Or) && !is_pure(b))
        }
        ExprKind::Builtin(def, args) => {
            matches!(def.name, "back_off" | "sleep" | "atomic_cas")
                || args.iter().any(|a| match a {
                    Arg::Value(v) => may_branch(v),
                    Arg::Place(p) => p.projections.iter().any(|pr| matches!(pr, Projection::Index(_))),
                })
        }
        ExprKind::Call(..) | ExprKind::Method(..) | ExprKind::Struct(..) => true,
        ExprKind::Error => false,
    }
}

/// On the stock target, `contention_end` reads the lock's flags through a lookup.
fn lock_flag_read(p: &hir::Place) -> bool {
    matches!(p.base, PlaceBase::LockField(f) if f.name != "addr")
}

/// True if evaluating `e` has no effect and cannot fail, so `&&`/`||` may evaluate it
/// unconditionally.
fn is_pure(e: &hir::Expr) -> bool {
    if may_branch(e) {
        return false;
    }
    match &e.kind {
        ExprKind::Const(_) => true,
        ExprKind::Read(p) => p.projections.iter().all(|pr| matches!(pr, Projection::Field(_))),
        ExprKind::Unary(_, x) | ExprKind::Cast(x) => is_pure(x),
        ExprKind::Binary(_, a, b) => is_pure(a) && is_pure(b),
        _ => false,
    }
}

/// Where a map comes from, for maps the compiler adds itself.
impl MapOrigin {
    /// True for maps the policy did not declare.
    pub fn is_hidden(&self) -> bool {
        matches!(self, MapOrigin::Hidden)
    }
}
