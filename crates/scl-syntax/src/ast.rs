//! The syntax tree of an SCL file. Every node carries the span of the text it came from.
//!
//! The tree is what the parser saw, nothing resolved: names are strings, types are as
//! written. Where the parser recovered from an error it leaves an `Error` node, so later
//! passes can skip the broken piece and still look at the rest.
//!
//! Large nodes are boxed. The LR parser moves every symbol on its stack as one enum as big
//! as the largest node, so keeping nodes small is what keeps parsing fast.

use crate::lexer::TimeUnit;
pub use scl_diagnostics::Span;

/// A name as written, with its span.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ident {
    /// The name.
    pub name: String,
    /// Where it is.
    pub span: Span,
}

/// A name, possibly qualified by the module it was imported from: `x`, `hist::record`.
///
/// SCL modules do not nest, so a path has at most two segments; keeping the module
/// separate spares an allocation for every name in the program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Path {
    /// The module, for `module::name`.
    pub module: Option<Box<Ident>>,
    /// The name itself.
    pub name: Ident,
    /// The whole path.
    pub span: Span,
}

impl Path {
    /// An unqualified path.
    pub fn simple(name: Ident) -> Path {
        Path { span: name.span, module: None, name }
    }

    /// True for a path without a module.
    pub fn is_simple(&self) -> bool {
        self.module.is_none()
    }
}

impl std::fmt::Display for Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(m) = &self.module {
            write!(f, "{}::", m.name)?;
        }
        f.write_str(&self.name.name)
    }
}

/// A whole `.scl` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceFile {
    /// Top-level items in order.
    pub items: Vec<Item>,
}

/// A top-level item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// What it is.
    pub kind: ItemKind,
    /// The whole item.
    pub span: Span,
}

/// The kinds of top-level item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ItemKind {
    /// `import hist;`
    Import(Ident),
    /// `const NAME: T = e;`
    Const(Box<ConstDecl>),
    /// `struct S { a: u32, ... }`
    Struct(StructDecl),
    /// `config`, `global`, `per_lock`, ... and `map` declarations.
    State(Box<StateDecl>),
    /// `fn name(...) -> T { ... }`
    Fn(Box<FnDecl>),
    /// `policy name for spinlock, mutex { on hook(...) { ... } }`
    Policy(Policy),
    /// Something the parser could not read; already reported.
    Error,
}

/// `const NAME: T = value;`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConstDecl {
    /// The constant's name.
    pub name: Ident,
    /// Its type.
    pub ty: Type,
    /// Its value, a constant expression.
    pub value: Expr,
}

/// `struct Name { field: T, ... }`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StructDecl {
    /// The struct's name.
    pub name: Ident,
    /// Its fields in order.
    pub fields: Vec<Field>,
}

/// `name: T` in a struct.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    /// The field's name.
    pub name: Ident,
    /// Its type.
    pub ty: Type,
    /// `name: T`.
    pub span: Span,
}

/// Where a piece of policy state lives (design §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StateKind {
    /// `config`: `.rodata`, set at load time, read-only in hooks.
    Config,
    /// `global`: one value for the whole policy.
    Global,
    /// `per_lock`: one value per lock address.
    PerLock,
    /// `per_cpu`: one value per CPU.
    PerCpu,
    /// `per_thread`: one value per thread id.
    PerThread,
    /// `per_waiter`: bits of the waiter's `data` word.
    PerWaiter,
    /// `map`: an explicit BPF map.
    Map,
}

impl StateKind {
    /// The keyword.
    pub fn keyword(self) -> &'static str {
        match self {
            StateKind::Config => "config",
            StateKind::Global => "global",
            StateKind::PerLock => "per_lock",
            StateKind::PerCpu => "per_cpu",
            StateKind::PerThread => "per_thread",
            StateKind::PerWaiter => "per_waiter",
            StateKind::Map => "map",
        }
    }
}

/// `per_lock[4096] name: T;`, `config name: T = v;`, `map name: hash<K, V>[N];`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateDecl {
    /// Which storage.
    pub kind: StateKind,
    /// The keyword's span.
    pub kind_span: Span,
    /// The entry bound, `[N]` after the keyword or (for maps) after the type.
    pub capacity: Option<Expr>,
    /// The state's name.
    pub name: Ident,
    /// Its type (for a map, the map type such as `hash<u32, u64>`).
    pub ty: Type,
    /// The default value (`config` only).
    pub init: Option<Expr>,
}

/// A type as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Type {
    /// What kind of type.
    pub kind: TypeKind,
    /// Where.
    pub span: Span,
}

/// The forms of a type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TypeKind {
    /// `u32`, `lock`, `Stats`, `hist::Log2`.
    Named(Path),
    /// `hash<u32, Stats>`: the generic's name and its arguments.
    Generic(Box<(Path, Vec<Type>)>),
    /// `[u64; 32]`.
    Array(Box<Type>, Box<Expr>),
}

/// A parameter of a function or hook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Param {
    /// `inout`: the function writes through to the caller's place.
    pub inout: bool,
    /// The parameter's name.
    pub name: Ident,
    /// Its type.
    pub ty: Type,
    /// The whole parameter.
    pub span: Span,
}

/// `fn name(params) -> ret { body }`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FnDecl {
    /// The function's name.
    pub name: Ident,
    /// Its parameters.
    pub params: Vec<Param>,
    /// Its result type; `None` for none.
    pub ret: Option<Type>,
    /// Its body.
    pub body: Block,
}

/// `policy name for kinds { hooks }`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// The policy's name.
    pub name: Ident,
    /// The lock kinds it applies to, as written (`spinlock`, `mutex`, `rwsem`).
    pub kinds: Vec<Ident>,
    /// Its hook handlers, in order.
    pub hooks: Vec<Hook>,
}

/// `on name(params) -> ret { body }` inside a policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hook {
    /// The hook's name, one of the catalogue's.
    pub name: Ident,
    /// The parameters as the handler names them.
    pub params: Vec<Param>,
    /// The result type, for bool hooks.
    pub ret: Option<Type>,
    /// The handler's body.
    pub body: Block,
    /// The whole handler.
    pub span: Span,
}

/// `{ stmts }`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    /// The statements in order.
    pub stmts: Vec<Stmt>,
    /// From `{` to `}`.
    pub span: Span,
}

/// A statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stmt {
    /// What kind.
    pub kind: StmtKind,
    /// Where.
    pub span: Span,
}

/// The forms of statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StmtKind {
    /// `let name: T = init;`
    Let(Box<LetStmt>),
    /// `place op= value;`
    Assign(Box<AssignStmt>),
    /// `e;`
    Expr(Expr),
    /// `if c1 { } else if c2 { } else { }`: the arms in order, then the final `else`.
    ///
    /// `else if` chains are kept flat so that a long chain is not a deep tree.
    If {
        /// `if` and each `else if`, in order; at least one.
        arms: Vec<IfArm>,
        /// The final `else` block.
        else_: Option<Block>,
    },
    /// `for var in start..end { body }`
    For(Box<ForStmt>),
    /// `return e;`
    Return(Option<Expr>),
    /// `break;`
    Break,
    /// `continue;`
    Continue,
    /// `{ ... }`
    Block(Block),
    /// A statement the parser could not read; already reported.
    Error,
}

/// `let name: T = init;` (type and initialiser each optional; no initialiser means zero).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LetStmt {
    /// The new variable.
    pub name: Ident,
    /// Its declared type.
    pub ty: Option<Type>,
    /// Its first value.
    pub init: Option<Expr>,
}

/// `place op= value;`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssignStmt {
    /// What is written.
    pub target: Expr,
    /// `=` or a compound operator.
    pub op: AssignOp,
    /// The value.
    pub value: Expr,
}

/// `for var in start..end { body }`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForStmt {
    /// The loop variable.
    pub var: Ident,
    /// First value.
    pub start: Expr,
    /// One past the last value; must be a compile-time constant.
    pub end: Expr,
    /// The body.
    pub body: Block,
}

/// The condition of an `if`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cond {
    /// A boolean expression.
    Expr(Expr),
    /// `let name = optional`: taken when the optional holds a value, bound to `name`.
    Let(Ident, Box<Expr>),
}

/// One `if` or `else if` of an `if` statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfArm {
    /// The condition.
    pub cond: Cond,
    /// Taken when the condition holds.
    pub block: Block,
}

/// `=` and the compound assignments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssignOp {
    /// `=`
    Set,
    /// `op=` for the binary operator `op`.
    Compound(BinOp),
}

/// An expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expr {
    /// What kind.
    pub kind: ExprKind,
    /// Where.
    pub span: Span,
    /// Height of the tree under this node (a leaf is 1). The parser keeps it bounded so
    /// recursive passes cannot overflow the stack.
    pub height: u32,
}

/// The forms of expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExprKind {
    /// `42`, `0x10`, `5us` (value in nanoseconds).
    Int {
        /// The value, scaled by the unit.
        value: u64,
        /// The time unit written, if any.
        unit: Option<TimeUnit>,
    },
    /// `true` / `false`.
    Bool(bool),
    /// A name: a local, a parameter, state, a constant, a function.
    Path(Path),
    /// `-e`, `!e`, `~e`.
    Unary(UnOp, Box<Expr>),
    /// `a op b`.
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// `e as u32`.
    Cast(Box<Expr>, Ident),
    /// `e.field`.
    Field(Box<Expr>, Ident),
    /// `e[i]`.
    Index(Box<Expr>, Box<Expr>),
    /// `f(args)`, `m.get(k)`.
    Call(Box<Expr>, Vec<Expr>),
    /// `Name { field: e, ... }`.
    Struct(Path, Vec<FieldInit>),
    /// An expression the parser could not read; already reported.
    Error,
}

/// `field: value` in a struct literal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldInit {
    /// The field.
    pub name: Ident,
    /// Its value.
    pub value: Expr,
}

/// Unary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnOp {
    /// `-`
    Neg,
    /// `!`
    Not,
    /// `~`
    BitNot,
}

/// Binary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Rem,
    /// `&`
    BitAnd,
    /// `|`
    BitOr,
    /// `^`
    BitXor,
    /// `<<`
    Shl,
    /// `>>`
    Shr,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `&&`
    And,
    /// `||`
    Or,
}

impl BinOp {
    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        use BinOp::*;
        match self {
            Add => "+", Sub => "-", Mul => "*", Div => "/", Rem => "%", BitAnd => "&",
            BitOr => "|", BitXor => "^", Shl => "<<", Shr => ">>", Eq => "==", Ne => "!=",
            Lt => "<", Le => "<=", Gt => ">", Ge => ">=", And => "&&", Or => "||",
        }
    }

    /// True for the six comparisons.
    pub fn is_comparison(self) -> bool {
        use BinOp::*;
        matches!(self, Eq | Ne | Lt | Le | Gt | Ge)
    }
}

impl UnOp {
    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            UnOp::Neg => "-",
            UnOp::Not => "!",
            UnOp::BitNot => "~",
        }
    }
}
