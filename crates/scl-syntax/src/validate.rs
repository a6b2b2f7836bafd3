//! Checks of the tree that need no name resolution: the shape rules the grammar is too
//! permissive to state (a `config` needs a value, `break` needs a loop, `1 = x` is not an
//! assignment, lock kinds are a closed set). Like the parser, it reports every problem.

use crate::ast::*;
use crate::codes;
use scl_diagnostics::{Diagnostic, FileId};

/// The lock kinds a policy can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LockKind {
    /// Queued spinlock; hooks run in atomic context.
    Spinlock,
    /// Sleeping mutex.
    Mutex,
    /// Reader-writer semaphore.
    Rwsem,
}

impl LockKind {
    /// Every kind, in ABI order (`kind` field of the context: 0, 1, 2).
    pub const ALL: [LockKind; 3] = [LockKind::Spinlock, LockKind::Mutex, LockKind::Rwsem];

    /// The kind's name in SCL.
    pub fn name(self) -> &'static str {
        match self {
            LockKind::Spinlock => "spinlock",
            LockKind::Mutex => "mutex",
            LockKind::Rwsem => "rwsem",
        }
    }

    /// The kind named `name`, if any.
    pub fn from_name(name: &str) -> Option<LockKind> {
        LockKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// The known name closest to `name`, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(name, c), c))
        .filter(|&(d, c)| {
            // One edit in three characters; names of one or two characters are too short
            // for a guess to be more help than noise.
            let longest = c.len().max(name.len());
            longest >= 3 && d <= (longest / 3).max(1)
        })
        .min()
        .map(|(_, c)| c)
}

/// Runs every check on `ast`.
pub fn validate(file: FileId, ast: &SourceFile) -> Vec<Diagnostic> {
    let mut v = Validator { file, out: Vec::new(), loop_depth: 0 };
    for item in &ast.items {
        match &item.kind {
            ItemKind::State(s) => v.state(s),
            ItemKind::Fn(f) => v.block(&f.body),
            ItemKind::Policy(p) => {
                for k in &p.kinds {
                    v.lock_kind(k);
                }
                for h in &p.hooks {
                    v.block(&h.body);
                }
            }
            ItemKind::Import(_) | ItemKind::Const(_) | ItemKind::Struct(_) | ItemKind::Error => {}
        }
    }
    v.out
}

struct Validator {
    file: FileId,
    out: Vec<Diagnostic>,
    loop_depth: usize,
}

impl Validator {
    fn lock_kind(&mut self, k: &Ident) {
        if LockKind::from_name(&k.name).is_some() {
            return;
        }
        let mut d = Diagnostic::error(codes::E0109, self.file, k.span, format!("unknown lock kind `{}`", k.name))
            .with_label("not a lock kind")
            .with_note("a policy applies to `spinlock`, `mutex` or `rwsem` locks");
        d = match did_you_mean(&k.name, LockKind::ALL.iter().map(|k| k.name())) {
            Some(s) => d.with_help(format!("did you mean `{s}`?")),
            None => d.with_help("list one or more of `spinlock`, `mutex`, `rwsem`"),
        };
        self.out.push(d);
    }

    fn state(&mut self, s: &StateDecl) {
        let kw = s.kind.keyword();
        match (&s.init, s.kind) {
            (None, StateKind::Config) => self.out.push(
                Diagnostic::error(codes::E0110, self.file, s.name.span, format!("config `{}` has no default value", s.name.name))
                    .with_label("needs `= value`")
                    .with_note("every config value has a default so that a policy loads without `--set`")
                    .with_help(format!("write `config {}: ... = <default>;`", s.name.name)),
            ),
            (Some(init), kind) if kind != StateKind::Config => self.out.push(
                Diagnostic::error(codes::E0111, self.file, init.span, format!("`{kw}` state cannot have an initial value"))
                    .with_label("not allowed here")
                    .with_note("policy state starts zeroed; only `config` values have defaults")
                    .with_help("remove `= ...`, or declare it as `config` if it is a load-time setting"),
            ),
            _ => {}
        }
        match (&s.capacity, s.kind) {
            (None, StateKind::Map) => self.out.push(
                Diagnostic::error(codes::E0112, self.file, s.ty.span, format!("map `{}` needs a capacity", s.name.name))
                    .with_label("add `[N]` after the map type")
                    .with_note("BPF maps are created with a fixed number of entries")
                    .with_help(format!("write `map {}: hash<K, V>[1024];`", s.name.name)),
            ),
            (Some(cap), StateKind::Config | StateKind::Global | StateKind::PerCpu | StateKind::PerWaiter) => self.out.push(
                Diagnostic::error(codes::E0112, self.file, cap.span, format!("`{kw}` state takes no capacity"))
                    .with_label("not allowed here")
                    .with_note("only `per_lock`, `per_thread` and `map` state hold a bounded number of entries")
                    .with_help("remove `[N]`"),
            ),
            _ => {}
        }
    }

    fn block(&mut self, b: &Block) {
        for s in &b.stmts {
            self.stmt(s);
        }
    }

    fn stmt(&mut self, s: &Stmt) {
        match &s.kind {
            StmtKind::Assign(a) => {
                let target = &a.target;
                if !is_place(target) {
                    self.out.push(
                        Diagnostic::error(codes::E0113, self.file, target.span, "cannot assign to this expression")
                            .with_label("not a place")
                            .with_note("only variables, state, fields and elements can be assigned")
                            .with_help("to compare, use `==`"),
                    );
                }
            }
            StmtKind::If { arms, else_ } => {
                for arm in arms {
                    self.block(&arm.block);
                }
                if let Some(b) = else_ {
                    self.block(b);
                }
            }
            StmtKind::For(f) => {
                self.loop_depth += 1;
                self.block(&f.body);
                self.loop_depth -= 1;
            }
            StmtKind::Block(b) => self.block(b),
            StmtKind::Break | StmtKind::Continue if self.loop_depth == 0 => {
                let word = if s.kind == StmtKind::Break { "break" } else { "continue" };
                self.out.push(
                    Diagnostic::error(codes::E0114, self.file, s.span, format!("`{word}` outside of a loop"))
                        .with_label(format!("no `for` loop around this `{word}`"))
                        .with_help("use `return` to leave a hook or function early"),
                );
            }
            _ => {}
        }
    }
}

/// A place: a name, or a field or element of a place.
fn is_place(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Path(_) | ExprKind::Error => true,
        ExprKind::Field(base, _) | ExprKind::Index(base, _) => is_place(base),
        // A map lookup (`m.get(k).count = 1`) is left to the checker, which knows whether
        // `m` is a map and says why a lookup cannot be written (E0340: it may find nothing).
        ExprKind::Call(callee, _) => matches!(&callee.kind, ExprKind::Field(_, m) if m.name == "get"),
        _ => false,
    }
}
