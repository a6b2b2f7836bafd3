//! The SCL checker: name resolution, types, and the safety rules of design §8.
//!
//! [`check`] takes a parsed file, loads the stdlib modules it imports, resolves every
//! name, types every expression (folding constants as it goes) and produces a
//! [`hir::Program`] for the code generator, with every problem found as diagnostics. It
//! never stops at the first problem. The safety rules live one per module in [`rules`],
//! each opening with its codes and their explain pages.
//!
//! It reads hook signatures, built-in effects and costs only from `scl-catalogue`, and it
//! must not generate code or touch the kernel.

#![deny(missing_docs)]

pub mod codes;
pub mod hir;
pub mod refs;
pub mod rules;
mod stdlib;
pub mod ty;
mod typeck;

use hir::{FuncId, Program, StateId, StructId};
use scl_catalogue::Target;
use scl_diagnostics::{Diagnostic, FileId, Files};
use scl_syntax::ast;
use std::collections::HashMap;
use std::rc::Rc;

pub use stdlib::{stdlib_modules, STDLIB};

/// What to check for.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The target; `None` checks against every target a hook exists on.
    pub target: Option<Target>,
}

/// The result of checking one policy file.
#[derive(Debug)]
pub struct Checked {
    /// The checked program; complete only when there are no errors.
    pub program: Program,
    /// Every problem found, sorted by position.
    pub diagnostics: Vec<Diagnostic>,
    /// Per hook: the worst-case estimate the cost rule computed.
    pub costs: Vec<rules::cost::HookCost>,
    /// Every name use the checker resolved, for editors (hover, go to definition).
    pub references: Vec<refs::Reference>,
}

impl Checked {
    /// True if any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Parses and checks the file `file` of `files`, loading the stdlib modules it imports
/// into `files` as it goes.
pub fn check_file(files: &mut Files, file: FileId, options: &Options) -> Checked {
    let (ast, mut diagnostics) = scl_syntax::parse_file(file, &files.get(file).text);
    let broken: Vec<scl_diagnostics::Span> =
        diagnostics.iter().filter(|d| d.is_error()).map(|d| d.primary.span).collect();
    let mut checked = check_shared(files, file, Rc::new(ast), &broken, options);
    diagnostics.append(&mut checked.diagnostics);
    scl_diagnostics::sort(&mut diagnostics);
    diagnostics.dedup();
    checked.diagnostics = diagnostics;
    checked
}

/// Checks an already parsed file. Syntax errors of the file itself are the caller's; those
/// of imported modules are reported here. `broken` are the spans of the file's syntax
/// errors: bodies that contain one are not checked (their gaps would only produce echoes
/// of the syntax error), and the whole-program rules wait until the file parses.
pub fn check(files: &mut Files, file: FileId, ast: &ast::SourceFile, broken: &[scl_diagnostics::Span], options: &Options) -> Checked {
    check_shared(files, file, Rc::new(ast.clone()), broken, options)
}

fn check_shared(files: &mut Files, file: FileId, ast: Rc<ast::SourceFile>, broken: &[scl_diagnostics::Span], options: &Options) -> Checked {
    scl_syntax::validate::reset_suggestion_budget();
    let mut cx = Checker {
        program: Program { target: options.target, ..Program::default() },
        modules: Vec::new(),
        diagnostics: Vec::new(),
        options: options.clone(),
        bodies: HashMap::new(),
        consts: HashMap::new(),
        broken: broken.to_vec(),
        references: Vec::new(),
    };
    cx.load_modules(files, file, ast);
    typeck::check_program(&mut cx);
    // The whole-program rules follow the call graph; they run once the file parses, also
    // after type errors, so every problem shows in one run.
    let costs = if broken.is_empty() { rules::run(&mut cx) } else { Vec::new() };
    let mut diagnostics = cx.diagnostics;
    scl_diagnostics::sort(&mut diagnostics);
    Checked { program: cx.program, diagnostics, costs, references: cx.references }
}

/// One module: the main file or an imported stdlib module.
pub(crate) struct Module {
    /// `None` for the main file, else the module's name (`hist`).
    pub name: Option<String>,
    /// Its file.
    pub file: FileId,
    /// Its syntax tree.
    /// Shared, so that passes can walk the items while they change the checker.
    pub ast: Rc<ast::SourceFile>,
    /// Struct names.
    pub types: HashMap<String, StructId>,
    /// Constants, state and functions.
    pub values: HashMap<String, Value>,
    /// Imported modules by name, as indexes into `Checker::modules`.
    pub imports: HashMap<String, usize>,
}

/// What a module-level value name stands for.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Value {
    /// `const`, by its item index in the module's AST.
    Const(usize),
    /// State.
    State(StateId),
    /// A function.
    Func(FuncId),
}

/// Facts about one checked body that the rules use.
#[derive(Debug, Default, Clone)]
pub(crate) struct BodyFacts {
    /// Calls of user functions: callee, the call, and per argument whether it passes a
    /// place rooted in state (`State`) or in one of this body's `inout` parameters.
    pub calls: Vec<(FuncId, hir::Loc, Vec<ArgRoot>)>,
    /// May-sleep built-ins called directly.
    pub sleeps: Vec<(hir::Loc, &'static str)>,
    /// Direct writes of state (assignments, map writes, atomics on state).
    pub state_writes: Vec<hir::Loc>,
    /// Writes of this function's own `inout` parameters, by parameter index.
    pub param_writes: Vec<(usize, hir::Loc)>,
}

/// Where an argument place is rooted, for the write-through analysis of `inout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArgRoot {
    /// A value, or a place in a plain local.
    Other,
    /// A place in policy state.
    State,
    /// A place in the caller's `inout` parameter with this index.
    Param(usize),
}

/// Which body: a function or the n-th hook of the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum BodyId {
    /// A user function.
    Func(FuncId),
    /// A hook, by index in the policy.
    Hook(usize),
}

/// The checker's state while it works.
pub(crate) struct Checker {
    pub program: Program,
    pub modules: Vec<Module>,
    pub diagnostics: Vec<Diagnostic>,
    pub options: Options,
    pub bodies: HashMap<BodyId, BodyFacts>,
    /// Spans of the main file's syntax errors.
    pub broken: Vec<scl_diagnostics::Span>,
    /// Resolved name uses, for editors.
    pub references: Vec<refs::Reference>,
    /// Folded constants by (module, item index); `None` for one that failed (reported once).
    pub consts: HashMap<(usize, usize), Option<(i128, ty::Ty)>>,
}

impl Checker {
    /// Loads the main module and, transitively, every stdlib module it imports.
    fn load_modules(&mut self, files: &mut Files, file: FileId, ast: Rc<ast::SourceFile>) {
        self.modules.push(Module {
            name: None,
            file,
            ast,
            types: HashMap::new(),
            values: HashMap::new(),
            imports: HashMap::new(),
        });
        let mut next = 0;
        while next < self.modules.len() {
            let imports: Vec<ast::Ident> = self.modules[next]
                .ast
                .items
                .iter()
                .filter_map(|i| match &i.kind {
                    ast::ItemKind::Import(name) => Some(name.clone()),
                    _ => None,
                })
                .collect();
            for name in imports {
                let loaded = self.modules.iter().position(|m| m.name.as_deref() == Some(&name.name));
                let index = match loaded {
                    Some(i) => i,
                    None => match stdlib::source(&name.name) {
                        Some(text) => {
                            let display = format!("<stdlib>/{}.scl", name.name);
                            let id = files.find(&display).unwrap_or_else(|| files.add(display, text));
                            let (module_ast, diags) = scl_syntax::parse_file(id, text);
                            self.diagnostics.extend(diags);
                            self.modules.push(Module {
                                name: Some(name.name.clone()),
                                file: id,
                                ast: Rc::new(module_ast),
                                types: HashMap::new(),
                                values: HashMap::new(),
                                imports: HashMap::new(),
                            });
                            self.modules.len() - 1
                        }
                        None => {
                            let file = self.modules[next].file;
                            let mut d = Diagnostic::error(codes::E0208, file, name.span, format!("no module named `{}`", name.name))
                                .with_label("not in the standard library")
                                .with_note(format!(
                                    "the standard library has: {}",
                                    stdlib::names().iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
                                ));
                            if let Some(s) = scl_syntax::validate::did_you_mean(&name.name, stdlib::names().iter().copied()) {
                                d = d.with_help(format!("did you mean `{s}`?"));
                            }
                            self.diagnostics.push(d);
                            continue;
                        }
                    },
                };
                self.modules[next].imports.insert(name.name.clone(), index);
                let at = hir::Loc { file: self.modules[next].file, span: name.span };
                let target = refs::Target::Module { name: name.name.clone(), file: self.modules[index].file };
                self.references.push(refs::Reference { at, target });
            }
            next += 1;
        }
    }

    /// True if a syntax error of the main file lies inside `span` of module `m`.
    pub fn is_broken(&self, m: usize, span: scl_diagnostics::Span) -> bool {
        m == 0 && self.broken.iter().any(|b| span.start <= b.start && b.start <= span.end)
    }

    /// Reports `d`.
    pub fn report(&mut self, d: Diagnostic) {
        self.diagnostics.push(d);
    }
}
