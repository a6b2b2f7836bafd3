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

/// The longest name a suggestion is looked for (or offered): names are at most 127 bytes
/// (E0115), and edit distance costs the product of the two lengths.
const MAX_SUGGESTED_NAME: usize = 128;

/// Edit-distance work (cells of the distance table) that suggestions may use on one thread
/// until [`reset_suggestion_budget`]: with thousands of unknown names each compared with
/// thousands of declared ones, suggesting would cost the product. Past the budget there
/// are no more suggestions; the diagnostics stay.
pub const SUGGESTION_BUDGET: u64 = 20_000_000;

thread_local! {
    static BUDGET: std::cell::Cell<u64> = const { std::cell::Cell::new(SUGGESTION_BUDGET) };
}

/// Gives this thread a fresh suggestion budget; the checker calls it once per check.
pub fn reset_suggestion_budget() {
    BUDGET.with(|b| b.set(SUGGESTION_BUDGET));
}

/// The known name closest to `name`, if it is close enough to be a likely typo. Bounded:
/// names over 128 bytes are not compared, candidates whose length alone rules them out are
/// skipped, and the work done on this thread is capped ([`SUGGESTION_BUDGET`]).
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    if name.len() > MAX_SUGGESTED_NAME {
        return None;
    }
    // One edit in three characters; names of one or two characters are too short for a
    // guess to be more help than noise.
    let allowed = |longest: usize| (longest / 3).max(1);
    let mut best: Option<(usize, &'a str)> = None;
    for c in candidates {
        let longest = c.len().max(name.len());
        if c.len() > MAX_SUGGESTED_NAME || longest < 3 || c.len().abs_diff(name.len()) > allowed(longest) {
            continue;
        }
        let cost = (c.len() as u64 + 1) * (name.len() as u64 + 1);
        let affordable = BUDGET.with(|b| {
            let left = b.get();
            b.set(left.saturating_sub(cost));
            left >= cost
        });
        if !affordable {
            break;
        }
        let d = strsim::damerau_levenshtein(name, c);
        if d <= allowed(longest) && best.is_none_or(|b| (d, c) < b) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_are_bounded_work() {
        reset_suggestion_budget();
        let long = "x".repeat(1 << 20);
        let long2 = format!("{}y", "x".repeat((1 << 20) - 1));
        let table: &[(&str, &[&str], Option<&str>)] = &[
            ("contnded", &["contended", "acquired"], Some("contended")),
            ("ab", &["xyz"], None),
            (&long, &[&long2], None),
            ("waits", &[&long2, "wait"], Some("wait")),
        ];
        for (name, candidates, expected) in table {
            assert_eq!(did_you_mean(name, candidates.iter().copied()), *expected, "{}", &name[..name.len().min(20)]);
        }
        // Past the budget: no more suggestions, and no more work.
        let names: Vec<String> = (0..10_000).map(|i| format!("name_{i:06}")).collect();
        for _ in 0..100 {
            let _ = did_you_mean("name_x00000", names.iter().map(String::as_str));
        }
        assert_eq!(did_you_mean("contnded", ["contended"]), None);
        reset_suggestion_budget();
        assert_eq!(did_you_mean("contnded", ["contended"]), Some("contended"));
    }
}
