//! What each resolved name refers to, for editors: the language server answers hover and
//! go-to-definition from these records, with the same text the checker and the docs use.

use crate::hir::{FuncId, Loc, Program, StateId, StateStorage, StructId};
use scl_catalogue as cat;
use scl_diagnostics::FileId;

/// One resolved use of a name.
#[derive(Clone, Debug)]
pub struct Reference {
    /// Where the name is written.
    pub at: Loc,
    /// What it names.
    pub target: Target,
}

/// What a name refers to.
#[derive(Clone, Debug)]
pub enum Target {
    /// A local variable or parameter.
    Local {
        /// Its declaration.
        loc: Loc,
        /// Its name.
        name: String,
        /// Its type, as written in SCL.
        ty: String,
    },
    /// A piece of state.
    State(StateId),
    /// A user function.
    Func(FuncId),
    /// A struct.
    Struct(StructId),
    /// A field of a struct.
    Field {
        /// The struct.
        owner: StructId,
        /// The field's index.
        index: usize,
    },
    /// A constant.
    Const {
        /// Its declaration.
        loc: Loc,
        /// Its name.
        name: String,
    },
    /// A stdlib module.
    Module {
        /// Its name.
        name: String,
        /// Its file.
        file: FileId,
    },
    /// A built-in function.
    Builtin(&'static str),
    /// A hook of the catalogue.
    Hook(&'static str),
    /// A map method.
    Method(&'static str),
    /// A field of `lock`.
    LockField(&'static str),
    /// A field of `waiter`.
    WaiterField(&'static str),
}

impl Target {
    /// Where the name is declared in SCL source, if it is (built-ins and hooks are not).
    pub fn definition(&self, program: &Program) -> Option<Loc> {
        match self {
            Target::Local { loc, .. } | Target::Const { loc, .. } => Some(*loc),
            Target::State(id) => Some(program.states[*id].loc),
            Target::Func(f) => Some(program.funcs[*f].loc),
            Target::Struct(s) => Some(program.structs[*s].loc),
            Target::Field { owner, index } => program.structs[*owner].fields.get(*index).map(|f| f.loc),
            Target::Module { file, .. } => Some(Loc { file: *file, span: scl_diagnostics::Span::point(0) }),
            _ => None,
        }
    }

    /// Hover text in Markdown: a signature line in an `scl` block, then the documentation.
    pub fn describe(&self, program: &Program) -> String {
        let code = |s: String| format!("```scl\n{s}\n```");
        match self {
            Target::Local { name, ty, .. } => code(format!("let {name}: {ty}")),
            Target::State(id) => {
                let st = &program.states[*id];
                let ty = program.ty_name(&st.ty);
                let line = match &st.storage {
                    StateStorage::Config(v) => format!("config {}: {ty} = {v}", st.name),
                    StateStorage::Map { kind, key } => {
                        let kname = cat::MAP_KINDS.iter().find(|d| d.kind == *kind).map_or("map", |d| d.name);
                        let args = match key {
                            Some(k) if matches!(kind, cat::MapKind::Hash | cat::MapKind::LruHash) => format!("{}, {ty}", program.ty_name(k)),
                            _ => ty.clone(),
                        };
                        format!("map {}: {kname}<{args}>[{}]", st.name, st.capacity.unwrap_or(0))
                    }
                    _ => match st.capacity {
                        Some(c) => format!("{}[{c}] {}: {ty}", st.kind.keyword(), st.name),
                        None => format!("{} {}: {ty}", st.kind.keyword(), st.name),
                    },
                };
                let doc = match &st.storage {
                    StateStorage::Config(_) => "Set at load time with `--set NAME=VALUE`; read-only in hooks.",
                    StateStorage::Global => "One value for the whole policy (a one-entry array map).",
                    StateStorage::PerLock => "One entry per lock address (an LRU hash map); in a hook, the entry of the hook's lock.",
                    StateStorage::PerCpu => "One value per CPU (a per-CPU array map); in a hook, the current CPU's.",
                    StateStorage::PerThread => "One entry per thread id (an LRU hash map); in a hook, the current thread's.",
                    StateStorage::PerWaiter { .. } => "Bits of each waiter's data word; read through a waiter: `candidate.NAME`.",
                    StateStorage::Map { kind, .. } => cat::MAP_KINDS.iter().find(|d| d.kind == *kind).map_or("", |d| d.doc),
                };
                format!("{}\n\n{doc}", code(line))
            }
            Target::Func(f) => {
                let func = &program.funcs[*f];
                let params: Vec<String> = func
                    .params
                    .iter()
                    .map(|(l, inout)| {
                        let local = &func.body.locals[*l];
                        format!("{}{}: {}", if *inout { "inout " } else { "" }, local.name, program.ty_name(&local.ty))
                    })
                    .collect();
                let ret = if func.ret == crate::ty::Ty::Void { String::new() } else { format!(" -> {}", program.ty_name(&func.ret)) };
                code(format!("fn {}({}){ret}", func.name, params.join(", ")))
            }
            Target::Struct(s) => {
                let sd = &program.structs[*s];
                let fields: Vec<String> = sd.fields.iter().map(|f| format!("    {}: {},", f.name, program.ty_name(&f.ty))).collect();
                format!("{}\n\n{} bytes, aligned to {}.", code(format!("struct {} {{\n{}\n}}", sd.name, fields.join("\n"))), sd.layout.size, sd.layout.align)
            }
            Target::Field { owner, index } => {
                let sd = &program.structs[*owner];
                match sd.fields.get(*index) {
                    Some(f) => format!("{}\n\nAt byte offset {} of `{}`.", code(format!("{}: {}", f.name, program.ty_name(&f.ty))), f.offset, sd.name),
                    None => String::new(),
                }
            }
            Target::Const { name, .. } => code(format!("const {name}")),
            Target::Module { name, .. } => format!("{}\n\nA module of the SCL standard library.", code(format!("import {name};"))),
            Target::Builtin(n) => match cat::builtin(n) {
                Some(b) => {
                    let effects = if b.may_sleep { "May sleep: not allowed in atomic context." } else { "Allowed in atomic context." };
                    format!("{}\n\n{}\n\n{effects} Cost: {} instructions.", code(b.signature()), b.doc, b.cost)
                }
                None => String::new(),
            },
            Target::Hook(n) => match cat::hook(n) {
                Some(h) => {
                    let targets: Vec<&str> = h.targets.iter().map(|t| t.name()).collect();
                    format!("{}\n\n{}\n\nTargets: {}. Budget: {} instructions in atomic context.", code(format!("on {}", h.signature())), h.doc, targets.join(", "), h.budget)
                }
                None => String::new(),
            },
            Target::Method(n) => match cat::method(n) {
                Some(m) => format!("{}\n\n{}", code(format!("m.{}({})", m.name, m.params.iter().map(|(p, _)| *p).collect::<Vec<_>>().join(", "))), m.doc),
                None => String::new(),
            },
            Target::LockField(n) => match cat::lock_field(n) {
                Some(f) => format!("{}\n\n{} Read-only.", code(format!("lock.{}: {}", f.name, f.ty.name())), f.doc),
                None => String::new(),
            },
            Target::WaiterField(n) => match cat::waiter_field(n) {
                Some(f) => format!("{}\n\n{} Read-only.", code(format!("waiter.{}: {}", f.name, f.ty.name())), f.doc),
                None => String::new(),
            },
        }
    }
}
