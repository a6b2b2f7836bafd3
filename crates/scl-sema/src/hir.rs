//! The checked program: every name resolved, every expression typed, constants folded.
//!
//! This is what the code generator lowers. Entities live in `PrimaryMap`s and are referred
//! to by small copyable ids, in the style of Cranelift. Spans point back at the source
//! (`Loc` carries the file, since inlined stdlib functions live in other files).

use crate::ty::{Layout, Ty};
use cranelift_entity::{entity_impl, PrimaryMap};
use scl_catalogue::{BuiltinDef, FieldDef, HookDef, LockKind, MapKind, MethodDef, Target};
use scl_diagnostics::{FileId, Span};
use scl_syntax::ast::{BinOp, StateKind, UnOp};

/// A user struct.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StructId(u32);
entity_impl!(StructId, "struct");

/// A piece of policy state (config, global, per_*, map).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StateId(u32);
entity_impl!(StateId, "state");

/// A user function.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FuncId(u32);
entity_impl!(FuncId, "fn");

/// A local variable or parameter of one body.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LocalId(u32);
entity_impl!(LocalId, "v");

/// A place in the source: file and span.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Loc {
    /// The file.
    pub file: FileId,
    /// The span in it.
    pub span: Span,
}

/// A whole checked policy.
#[derive(Debug, Default)]
pub struct Program {
    /// Structs of every module.
    pub structs: PrimaryMap<StructId, StructDef>,
    /// State of every module.
    pub states: PrimaryMap<StateId, StateDef>,
    /// Functions of every module.
    pub funcs: PrimaryMap<FuncId, Func>,
    /// The policy, if the file has one.
    pub policy: Option<Policy>,
    /// The target checked for, if one was chosen.
    pub target: Option<Target>,
}

impl Program {
    /// Size and alignment of `ty`.
    pub fn layout(&self, ty: &Ty) -> Layout {
        match ty {
            Ty::Int(i) => Layout { size: u32::from(i.bits / 8), align: u32::from(i.bits / 8) },
            Ty::Bool => Layout { size: 1, align: 1 },
            Ty::KStack => Layout { size: 8, align: 8 },
            Ty::Struct(s) => self.structs[*s].layout,
            Ty::Array(elem, n) => {
                let l = self.layout(elem);
                Layout { size: l.size.saturating_mul(*n), align: l.align }
            }
            Ty::Lock | Ty::Waiter | Ty::Void | Ty::Error => Layout { size: 0, align: 1 },
        }
    }

    /// How a type is written in SCL, for messages.
    pub fn ty_name(&self, ty: &Ty) -> String {
        match ty {
            Ty::Int(i) => i.to_string(),
            Ty::Bool => "bool".into(),
            Ty::KStack => "kstack".into(),
            Ty::Struct(s) => self.structs[*s].name.clone(),
            Ty::Array(e, n) => format!("[{}; {n}]", self.ty_name(e)),
            Ty::Lock => "lock".into(),
            Ty::Waiter => "waiter".into(),
            Ty::Void => "()".into(),
            Ty::Error => "{unknown}".into(),
        }
    }
}

/// A struct and its C layout.
#[derive(Debug)]
pub struct StructDef {
    /// Its name (qualified for imported modules: `hist::Log2`).
    pub name: String,
    /// Its fields in order.
    pub fields: Vec<FieldInfo>,
    /// Size and alignment.
    pub layout: Layout,
    /// Where it is declared.
    pub loc: Loc,
}

/// A struct field.
#[derive(Debug)]
pub struct FieldInfo {
    /// Its name.
    pub name: String,
    /// Its type.
    pub ty: Ty,
    /// Byte offset in the struct.
    pub offset: u32,
    /// Where the field is declared.
    pub loc: Loc,
}

/// What kind of storage a state declaration has, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StateStorage {
    /// `config`, with its default value (integers and bools as u64 bits).
    Config(u64),
    /// `global`.
    Global,
    /// `per_lock[capacity]`.
    PerLock,
    /// `per_cpu`.
    PerCpu,
    /// `per_thread[capacity]`.
    PerThread,
    /// `per_waiter`: bits `[offset*8, (offset+size)*8)` of the waiter's data word.
    PerWaiter {
        /// Byte offset in the data word.
        offset: u32,
    },
    /// `map NAME: kind<K, V>[capacity]`.
    Map {
        /// The map kind.
        kind: MapKind,
        /// The key type (`u32` for arrays, none for ring buffers).
        key: Option<Ty>,
    },
}

/// A piece of policy state.
#[derive(Debug)]
pub struct StateDef {
    /// Its name as declared (qualified for imported modules).
    pub name: String,
    /// The keyword it was declared with.
    pub kind: StateKind,
    /// Where it lives.
    pub storage: StateStorage,
    /// The value type (for maps, the map's value type).
    pub ty: Ty,
    /// Entry bound for per_lock, per_thread and maps (bytes for ring buffers).
    pub capacity: Option<u64>,
    /// Where it is declared.
    pub loc: Loc,
    /// True once any hook or function refers to it.
    pub used: bool,
}

/// A user function (inlined into each hook that calls it).
#[derive(Debug)]
pub struct Func {
    /// Its name (qualified for imported modules).
    pub name: String,
    /// Its parameters: the local each one binds and whether it is `inout`.
    pub params: Vec<(LocalId, bool)>,
    /// Its result type (`Void` for none).
    pub ret: Ty,
    /// Its body.
    pub body: Body,
    /// Where its name is.
    pub loc: Loc,
}

/// The policy of the file.
#[derive(Debug)]
pub struct Policy {
    /// Its name.
    pub name: String,
    /// The lock kinds it applies to.
    pub kinds: Vec<LockKind>,
    /// Its hook handlers.
    pub hooks: Vec<HookImpl>,
    /// Where its name is.
    pub loc: Loc,
}

/// One hook handler.
#[derive(Debug)]
pub struct HookImpl {
    /// The catalogue entry.
    pub def: &'static HookDef,
    /// The locals its parameters bind, in the catalogue's order.
    pub params: Vec<LocalId>,
    /// Its body.
    pub body: Body,
    /// True if it runs in atomic context for some declared kind on some checked target.
    pub atomic: bool,
    /// Where its name is.
    pub loc: Loc,
}

/// Locals and statements of a function or hook.
#[derive(Debug, Default)]
pub struct Body {
    /// Every local, parameters first.
    pub locals: PrimaryMap<LocalId, LocalDef>,
    /// The statements.
    pub block: Block,
}

/// A local variable.
#[derive(Debug)]
pub struct LocalDef {
    /// Its name.
    pub name: String,
    /// Its type.
    pub ty: Ty,
    /// For `if let` bindings: the map whose value it names (a reference into the map).
    pub map_ref: Option<StateId>,
    /// Where it is declared.
    pub loc: Loc,
}

/// A sequence of statements.
#[derive(Debug, Default)]
pub struct Block {
    /// The statements.
    pub stmts: Vec<Stmt>,
}

/// A checked statement.
#[derive(Debug)]
pub enum Stmt {
    /// `let x = e;` (`None`: zero).
    Let(LocalId, Option<Expr>),
    /// `place op= value`.
    Assign {
        /// What is written.
        place: Place,
        /// `None` for `=`, else the compound operator.
        op: Option<BinOp>,
        /// The value.
        value: Expr,
        /// The statement.
        loc: Loc,
    },
    /// An expression evaluated for its effects.
    Expr(Expr),
    /// `if` / `else if` / `else`.
    If {
        /// Conditions and blocks in order.
        arms: Vec<(Cond, Block)>,
        /// The final `else`.
        else_: Option<Block>,
    },
    /// `for var in start..end`: bounds are constants.
    For {
        /// The loop variable.
        var: LocalId,
        /// First value.
        start: i128,
        /// One past the last.
        end: i128,
        /// The body.
        body: Block,
        /// The `for` statement.
        loc: Loc,
    },
    /// `return e;`
    Return(Option<Expr>, Loc),
    /// `break;`
    Break,
    /// `continue;`
    Continue,
    /// `{ ... }`
    Block(Block),
}

/// The condition of an `if` arm.
#[derive(Debug)]
pub enum Cond {
    /// A bool expression.
    Expr(Expr),
    /// `let v = map.get(key)`: taken when the key is present; `v` names the map's value.
    MapGet {
        /// The local bound to the value.
        local: LocalId,
        /// The map.
        map: StateId,
        /// The key.
        key: Expr,
        /// The `get` call.
        loc: Loc,
        /// `m.entry(key)`: a missing entry is created zeroed first.
        create: bool,
    },
}

/// A checked expression.
#[derive(Debug)]
pub struct Expr {
    /// What it computes.
    pub kind: ExprKind,
    /// Its type.
    pub ty: Ty,
    /// Where it is.
    pub loc: Loc,
}

/// The forms of checked expression.
#[derive(Debug)]
pub enum ExprKind {
    /// An integer or bool constant (bools as 0/1), already folded.
    Const(i128),
    /// The value in a place.
    Read(Place),
    /// `op e`.
    Unary(UnOp, Box<Expr>),
    /// `a op b`, both operands converted to `ty` (or to a common type for comparisons).
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// An integer conversion (widening, narrowing or from bool).
    Cast(Box<Expr>),
    /// A call of a user function.
    Call(FuncId, Vec<Arg>),
    /// A call of a built-in.
    Builtin(&'static BuiltinDef, Vec<Arg>),
    /// `map.method(args)`.
    Method(StateId, &'static MethodDef, Vec<Expr>),
    /// `S { ... }`, fields in declaration order.
    Struct(crate::hir::StructId, Vec<Expr>),
    /// Something already reported; never reaches code generation.
    Error,
}

/// An argument: a value, or a place for `inout` parameters and atomics.
#[derive(Debug)]
pub enum Arg {
    /// Passed by value.
    Value(Expr),
    /// Passed by reference.
    Place(Place),
}

/// Where a value lives: a base and a path of projections.
#[derive(Debug)]
pub struct Place {
    /// The root.
    pub base: PlaceBase,
    /// Fields and elements from the root.
    pub projections: Vec<Projection>,
    /// Its type.
    pub ty: Ty,
    /// Where it is written.
    pub loc: Loc,
}

/// The root of a place.
#[derive(Debug, Clone, Copy)]
pub enum PlaceBase {
    /// A local or parameter.
    Local(LocalId),
    /// State: `global`, `per_lock`, `per_cpu`, `per_thread` (their current entry), or `config`.
    State(StateId),
    /// A read-only field of the hook's lock.
    LockField(&'static FieldDef),
    /// A read-only field of a waiter parameter.
    WaiterField(LocalId, &'static FieldDef),
    /// A `per_waiter` field of a waiter parameter.
    PerWaiter(LocalId, StateId),
}

/// One step from a place to a part of it.
#[derive(Debug)]
pub enum Projection {
    /// A struct field, by index.
    Field(usize),
    /// An array element.
    Index(Box<Expr>),
}

impl Block {
    /// True if an expression of this block (at any depth) is `ExprKind::Error`: the checker
    /// gave up on it. It always reports why; a checked program without errors that still
    /// holds one would compile the expression to a constant, so the driver refuses it.
    pub fn has_error_expr(&self) -> bool {
        self.stmts.iter().any(|s| match s {
            Stmt::Let(_, e) => e.as_ref().is_some_and(Expr::has_error),
            Stmt::Assign { place, value, .. } => place.has_error() || value.has_error(),
            Stmt::Expr(e) => e.has_error(),
            Stmt::If { arms, else_ } => {
                arms.iter().any(|(c, b)| {
                    (match c {
                        Cond::Expr(e) => e.has_error(),
                        Cond::MapGet { key, .. } => key.has_error(),
                    }) || b.has_error_expr()
                }) || else_.as_ref().is_some_and(Block::has_error_expr)
            }
            Stmt::For { body, .. } | Stmt::Block(body) => body.has_error_expr(),
            Stmt::Return(e, _) => e.as_ref().is_some_and(Expr::has_error),
            Stmt::Break | Stmt::Continue => false,
        })
    }
}

impl Expr {
    fn has_error(&self) -> bool {
        match &self.kind {
            ExprKind::Error => true,
            ExprKind::Const(_) => false,
            ExprKind::Read(p) => p.has_error(),
            ExprKind::Unary(_, x) | ExprKind::Cast(x) => x.has_error(),
            ExprKind::Binary(_, a, b) => a.has_error() || b.has_error(),
            ExprKind::Call(_, args) | ExprKind::Builtin(_, args) => args.iter().any(|a| match a {
                Arg::Value(e) => e.has_error(),
                Arg::Place(p) => p.has_error(),
            }),
            ExprKind::Method(_, _, args) | ExprKind::Struct(_, args) => args.iter().any(Expr::has_error),
        }
    }
}

impl Place {
    fn has_error(&self) -> bool {
        self.projections.iter().any(|p| matches!(p, Projection::Index(e) if e.has_error()))
    }
}
