//! Name resolution and type checking: from the syntax tree to the checked program.
//!
//! Items are collected first (so order of declaration does not matter), then struct
//! layouts, state, function signatures, and finally bodies. Expressions are checked with
//! an expected type when one is known, which is how integer literals get their type;
//! constants are folded as they are checked. Errors produce `Ty::Error`, which is
//! compatible with everything, so one mistake gives one diagnostic.
//!
//! The pass is split by job: this file checks the program's items (collection, structs,
//! constants, state, signatures, the policy); `body.rs` checks statements and places;
//! `expr.rs` checks expressions; `docs.rs` holds the explain pages of the `E02xx` codes.

mod body;
mod docs;
mod expr;

pub(crate) use body::BodyCx;
pub use docs::DOCS;

use crate::codes::*;
use crate::hir::{self, *};
use crate::ty::{align_to, IntTy, Layout, Ty};
use crate::refs::{Reference, Target as RefTarget};
use crate::{ArgRoot, BodyFacts, BodyId, Checker, Value};
use cranelift_entity::PrimaryMap;
use scl_catalogue::{self as cat, LockKind, MapKind, MethodTy, Target};
use scl_diagnostics::{Diagnostic, FileId, Span};
use scl_syntax::ast::{self, BinOp, StateKind, UnOp};
use scl_syntax::validate::did_you_mean;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

/// The largest array length: the length type's (BTF's `nelems` is a `u32`). What an array
/// may hold is the kernel's business and checked where the array lives: state values by
/// E0343 (4 MiB, 32 KiB per CPU), locals by the stack (E0342).
const MAX_ARRAY_LEN: i128 = u32::MAX as i128;

/// Checks every module and the policy of the main module.
pub(crate) fn check_program(cx: &mut Checker) {
    collect(cx);
    for m in 0..cx.modules.len() {
        resolve_structs(cx, m);
    }
    // Every constant is evaluated, used or not, so each error shows once.
    for m in 0..cx.modules.len() {
        let consts: Vec<(usize, Span)> = cx.modules[m]
            .ast
            .items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| match &item.kind {
                ast::ItemKind::Const(c) if matches!(cx.modules[m].values.get(&c.name.name), Some(Value::Const(j)) if *j == i) => Some((i, c.name.span)),
                _ => None,
            })
            .collect();
        for (index, span) in consts {
            let mut b = BodyCx::new(cx, m, BodyKind::Const);
            let _ = b.const_value(m, index, span, None);
        }
    }
    for m in 0..cx.modules.len() {
        resolve_states(cx, m);
    }
    let sigs = resolve_fn_sigs(cx);
    check_fn_bodies(cx, &sigs);
    check_policy(cx, &sigs);
}

fn loc(file: FileId, span: Span) -> Loc {
    Loc { file, span }
}

fn qualified(module: &Option<String>, name: &str) -> String {
    match module {
        Some(m) => format!("{m}::{name}"),
        None => name.to_string(),
    }
}

/// Registers every item name of every module.
fn collect(cx: &mut Checker) {
    for m in 0..cx.modules.len() {
        let file = cx.modules[m].file;
        let mname = cx.modules[m].name.clone();
        let ast = Rc::clone(&cx.modules[m].ast);
        let items = &ast.items;
        let mut seen_values: HashMap<String, Span> = HashMap::new();
        let mut seen_types: HashMap<String, Span> = HashMap::new();
        let mut policies = 0;
        for (index, item) in items.iter().enumerate() {
            let (name, is_type) = match &item.kind {
                ast::ItemKind::Const(c) => (&c.name, false),
                ast::ItemKind::State(s) => (&s.name, false),
                ast::ItemKind::Fn(f) => (&f.name, false),
                ast::ItemKind::Struct(s) => (&s.name, true),
                ast::ItemKind::Policy(p) => {
                    policies += 1;
                    if policies > 1 || mname.is_some() {
                        let why = if mname.is_some() { "a stdlib module cannot hold a policy" } else { "a file holds one policy" };
                        cx.report(
                            Diagnostic::error(E0215, file, p.name.span, format!("policy `{}` is one policy too many", p.name.name))
                                .with_label("second policy")
                                .with_note(format!("{why}: it becomes one BPF object, loaded and unloaded as a unit"))
                                .with_help("move it to a file of its own, or merge the two"),
                        );
                    }
                    continue;
                }
                ast::ItemKind::Import(_) | ast::ItemKind::Error => continue,
            };
            let seen = if is_type { &mut seen_types } else { &mut seen_values };
            if let Some(prev) = seen.get(&name.name) {
                cx.report(
                    Diagnostic::error(E0202, file, name.span, format!("`{}` is declared twice", name.name))
                        .with_label("second declaration")
                        .with_secondary(file, *prev, "first declared here")
                        .with_help("rename one of them"),
                );
                continue;
            }
            if !is_type && cat::builtin(&name.name).is_some() {
                cx.report(
                    Diagnostic::error(E0202, file, name.span, format!("`{}` is the name of a built-in function", name.name))
                        .with_label("reserved name")
                        .with_help("choose another name"),
                );
                continue;
            }
            seen.insert(name.name.clone(), name.span);
            let full = qualified(&mname, &name.name);
            match &item.kind {
                ast::ItemKind::Const(_) => {
                    cx.modules[m].values.insert(name.name.clone(), Value::Const(index));
                }
                ast::ItemKind::State(s) => {
                    let id = cx.program.states.push(StateDef {
                        name: full,
                        kind: s.kind,
                        storage: StateStorage::Global,
                        ty: Ty::Error,
                        capacity: None,
                        loc: loc(file, name.span),
                        used: false,
                    });
                    cx.modules[m].values.insert(name.name.clone(), Value::State(id));
                }
                ast::ItemKind::Fn(_) => {
                    let id = cx.program.funcs.push(Func {
                        name: full,
                        params: Vec::new(),
                        ret: Ty::Void,
                        body: Body::default(),
                        loc: loc(file, name.span),
                    });
                    cx.modules[m].values.insert(name.name.clone(), Value::Func(id));
                }
                ast::ItemKind::Struct(_) => {
                    let id = cx.program.structs.push(StructDef {
                        name: full,
                        fields: Vec::new(),
                        // Alignment 0: not laid out yet (every laid-out struct has 1 or more).
                        layout: Layout { size: 0, align: 0 },
                        loc: loc(file, name.span),
                    });
                    cx.modules[m].types.insert(name.name.clone(), id);
                }
                _ => {}
            }
        }
    }
}

/// Resolves struct fields and computes layouts, refusing structs that contain themselves.
fn resolve_structs(cx: &mut Checker, m: usize) {
    let ast = Rc::clone(&cx.modules[m].ast);
    let file = cx.modules[m].file;
    for item in &ast.items {
        let ast::ItemKind::Struct(s) = &item.kind else { continue };
        let Some(&id) = cx.modules[m].types.get(&s.name.name) else { continue };
        if cx.program.structs[id].layout.align != 0 {
            continue;
        }
        let mut visiting = HashSet::new();
        layout_struct(cx, m, id, s, file, &mut visiting);
    }
}

fn layout_struct(cx: &mut Checker, m: usize, id: StructId, s: &ast::StructDecl, file: FileId, visiting: &mut HashSet<StructId>) {
    if !visiting.insert(id) {
        return;
    }
    let mut fields = Vec::new();
    let mut offset = 0u32;
    let mut align = 1u32;
    let mut seen: HashMap<&str, Span> = HashMap::new();
    for f in &s.fields {
        if let Some(prev) = seen.insert(&f.name.name, f.name.span) {
            cx.report(
                Diagnostic::error(E0202, file, f.name.span, format!("field `{}` is declared twice", f.name.name))
                    .with_secondary(file, prev, "first declared here"),
            );
            continue;
        }
        let ty = resolve_type(cx, m, &f.ty);
        // A field of struct type needs that struct laid out first.
        for inner in struct_ids_in(&ty) {
            if inner == id || visiting.contains(&inner) {
                cx.report(
                    Diagnostic::error(E0216, file, f.ty.span, format!("struct `{}` contains itself", s.name.name))
                        .with_label("this field holds the struct it is in")
                        .with_note("a struct that contains itself would have infinite size")
                        .with_help("store an index or an address instead"),
                );
                cx.program.structs[id].layout = Layout { size: 0, align: 1 };
                visiting.remove(&id);
                return;
            }
            if cx.program.structs[inner].layout.align == 0 {
                if let Some((im, decl)) = find_struct_decl(cx, inner) {
                    let ifile = cx.modules[im].file;
                    layout_struct(cx, im, inner, &decl, ifile, visiting);
                }
            }
        }
        if matches!(ty, Ty::Lock | Ty::Waiter) {
            cx.report(
                Diagnostic::error(E0216, file, f.ty.span, format!("a struct field cannot be a `{}`", cx.program.ty_name(&ty)))
                    .with_label("not plain data")
                    .with_note("`lock` and `waiter` are views of kernel data that exist only as hook parameters")
                    .with_help("store the field you need, such as `addr` or `tid`"),
            );
            continue;
        }
        let l = cx.program.layout(&ty);
        offset = align_to(offset, l.align);
        fields.push(FieldInfo { name: f.name.name.clone(), ty, offset, loc: loc(file, f.name.span) });
        offset = offset.saturating_add(l.size);
        align = align.max(l.align);
    }
    let layout = Layout { size: align_to(offset, align).max(if fields.is_empty() { 0 } else { 1 }), align };
    cx.program.structs[id].fields = fields;
    cx.program.structs[id].layout = layout;
    // `visiting` is the chain of structs being laid out: a struct met again after it is
    // done (two fields of one type) is not a cycle.
    visiting.remove(&id);
}

fn struct_ids_in(ty: &Ty) -> Vec<StructId> {
    match ty {
        Ty::Struct(s) => vec![*s],
        Ty::Array(e, _) => struct_ids_in(e),
        _ => Vec::new(),
    }
}

fn find_struct_decl(cx: &Checker, id: StructId) -> Option<(usize, ast::StructDecl)> {
    for (mi, m) in cx.modules.iter().enumerate() {
        for item in &m.ast.items {
            if let ast::ItemKind::Struct(s) = &item.kind {
                if m.types.get(&s.name.name) == Some(&id) {
                    return Some((mi, s.clone()));
                }
            }
        }
    }
    None
}

/// Resolves a type as written in module `m`.
pub(crate) fn resolve_type(cx: &mut Checker, m: usize, t: &ast::Type) -> Ty {
    let file = cx.modules[m].file;
    match &t.kind {
        ast::TypeKind::Named(p) => {
            if p.is_simple() {
                let n = p.name.name.as_str();
                if let Some(i) = IntTy::from_name(n) {
                    return Ty::Int(i);
                }
                match n {
                    "bool" => return Ty::Bool,
                    "kstack" => return Ty::KStack,
                    "lock" => return Ty::Lock,
                    "waiter" => return Ty::Waiter,
                    _ => {}
                }
                if let Some(&s) = cx.modules[m].types.get(n) {
                    cx.references.push(Reference { at: loc(file, p.name.span), target: RefTarget::Struct(s) });
                    return Ty::Struct(s);
                }
                if cat::map_kind(n).is_some() {
                    cx.report(
                        Diagnostic::error(E0216, file, t.span, format!("`{n}` is a map type"))
                            .with_label("map types appear only in `map` declarations")
                            .with_help(format!("declare it as state: `map NAME: {n}<...>[N];`")),
                    );
                    return Ty::Error;
                }
                let mut candidates: Vec<String> =
                    ["u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64", "bool"].iter().map(|s| s.to_string()).collect();
                candidates.extend(cx.modules[m].types.keys().cloned());
                let mut d = Diagnostic::error(E0203, file, t.span, format!("unknown type `{n}`")).with_label("not a type");
                if let Some(s) = did_you_mean(n, candidates.iter().map(String::as_str)) {
                    d = d.with_help(format!("did you mean `{s}`?"));
                }
                cx.report(d);
                Ty::Error
            } else {
                let module = p.module.as_ref().expect("qualified path");
                match cx.modules[m].imports.get(&module.name).copied() {
                    Some(im) => match cx.modules[im].types.get(&p.name.name) {
                        Some(&s) => {
                            let mfile = cx.modules[im].file;
                            cx.references.push(Reference { at: loc(file, module.span), target: RefTarget::Module { name: module.name.clone(), file: mfile } });
                            cx.references.push(Reference { at: loc(file, p.name.span), target: RefTarget::Struct(s) });
                            Ty::Struct(s)
                        }
                        None => {
                            cx.report(
                                Diagnostic::error(E0203, file, p.name.span, format!("module `{}` has no type `{}`", module.name, p.name.name))
                                    .with_label("not declared there"),
                            );
                            Ty::Error
                        }
                    },
                    None => {
                        cx.report(unknown_module(file, module));
                        Ty::Error
                    }
                }
            }
        }
        ast::TypeKind::Generic(g) => {
            let name = g.0.to_string();
            cx.report(
                Diagnostic::error(E0216, file, t.span, format!("`{name}<...>` cannot be used here"))
                    .with_label("generic types are map types")
                    .with_help("map types appear only in `map` declarations: `map NAME: hash<K, V>[N];`"),
            );
            Ty::Error
        }
        ast::TypeKind::Array(elem, len) => {
            let elem_ty = resolve_type(cx, m, elem);
            let n = const_eval(cx, m, len, Some(&Ty::U32), "an array length");
            match n {
                Some(n) if n > 0 && n <= MAX_ARRAY_LEN => {
                    if matches!(elem_ty, Ty::Lock | Ty::Waiter) {
                        cx.report(Diagnostic::error(E0216, file, elem.span, "arrays hold plain data").with_label("not plain data"));
                        return Ty::Error;
                    }
                    Ty::Array(Box::new(elem_ty), n as u32)
                }
                Some(n) => {
                    cx.report(
                        Diagnostic::error(E0218, file, len.span, format!("array length {n} is out of range"))
                            .with_label(format!("must be between 1 and {MAX_ARRAY_LEN}"))
                            .with_note("an array has at least one element"),
                    );
                    Ty::Error
                }
                None => Ty::Error,
            }
        }
    }
}

fn unknown_module(file: FileId, module: &ast::Ident) -> Diagnostic {
    Diagnostic::error(E0201, file, module.span, format!("no module `{}` is imported", module.name))
        .with_label("unknown module")
        .with_help(format!("add `import {};` at the top of the file", module.name))
}

/// Evaluates a constant expression of module `m`, reporting why it is not one.
pub(crate) fn const_eval(cx: &mut Checker, m: usize, e: &ast::Expr, expected: Option<&Ty>, what: &str) -> Option<i128> {
    let file = cx.modules[m].file;
    let mut b = BodyCx::new(cx, m, BodyKind::Const);
    let checked = b.expr(e, expected);
    let value = match checked.kind {
        ExprKind::Const(v) => Some(v),
        ExprKind::Error => None,
        _ => {
            b.cx.report(
                Diagnostic::error(E0210, file, e.span, format!("{what} must be known at compile time"))
                    .with_label("computed at run time")
                    .with_note("it may use literals, constants and operators, but not state, locals or calls")
                    .with_help("use a `const`"),
            );
            None
        }
    };
    value
}

/// Resolves state declarations: types, capacities, config defaults, per_waiter packing.
fn resolve_states(cx: &mut Checker, m: usize) {
    let ast = Rc::clone(&cx.modules[m].ast);
    let file = cx.modules[m].file;
    let mut waiter_bytes = 0u32;
    for item in &ast.items {
        let ast::ItemKind::State(s) = &item.kind else { continue };
        let Some(Value::State(id)) = cx.modules[m].values.get(&s.name.name).copied() else { continue };
        let (ty, storage) = if s.kind == StateKind::Map {
            resolve_map_type(cx, m, s)
        } else {
            let ty = resolve_type(cx, m, &s.ty);
            if matches!(ty, Ty::Lock | Ty::Waiter) {
                cx.report(
                    Diagnostic::error(E0216, file, s.ty.span, format!("state cannot hold a `{}`", cx.program.ty_name(&ty)))
                        .with_label("not plain data")
                        .with_note("`lock` and `waiter` are views of kernel data that exist only as hook parameters")
                        .with_help("store the field you need, such as `lock.addr` or `waiter.tid`"),
                );
            }
            let storage = match s.kind {
                StateKind::Config => {
                    let value = match (&s.init, &ty) {
                        (Some(init), Ty::Int(_) | Ty::Bool) => const_eval(cx, m, init, Some(&ty), "a config default").unwrap_or(0),
                        (Some(_), Ty::Error) | (None, _) => 0,
                        (Some(_), other) => {
                            let name = cx.program.ty_name(other);
                            cx.report(
                                Diagnostic::error(E0216, file, s.ty.span, format!("config values are integers or bools, not `{name}`"))
                                    .with_label("not a scalar")
                                    .with_note("config values are set one by one on the command line (`--set NAME=VALUE`)"),
                            );
                            0
                        }
                    };
                    StateStorage::Config(value as u64)
                }
                StateKind::Global => StateStorage::Global,
                StateKind::PerLock => StateStorage::PerLock,
                StateKind::PerCpu => StateStorage::PerCpu,
                StateKind::PerThread => StateStorage::PerThread,
                StateKind::PerWaiter => {
                    let size = if ty.is_scalar() || ty == Ty::Error {
                        cx.program.layout(&ty).size
                    } else {
                        let name = cx.program.ty_name(&ty);
                        cx.report(
                            Diagnostic::error(E0216, file, s.ty.span, format!("per_waiter state is an integer or a bool, not `{name}`"))
                                .with_label("not a scalar")
                                .with_note(format!("all per_waiter state shares the waiter's {}-byte data word", cat::PER_WAITER_BYTES)),
                        );
                        0
                    };
                    let offset = align_to(waiter_bytes, size.max(1));
                    waiter_bytes = offset + size;
                    if waiter_bytes > cat::PER_WAITER_BYTES {
                        cx.report(
                            Diagnostic::error(E0341, file, s.name.span, format!("per_waiter state `{}` does not fit in the waiter's data word", s.name.name))
                                .with_label(format!("needs bytes {offset}..{} of {}", offset + size, cat::PER_WAITER_BYTES))
                                .with_note(format!("each waiter carries one {}-byte data word for all per_waiter state", cat::PER_WAITER_BYTES))
                                .with_help("use narrower types, or keep the data in `per_thread` state keyed by the waiter's tid"),
                        );
                    }
                    StateStorage::PerWaiter { offset }
                }
                StateKind::Map => unreachable!("maps are handled above"),
            };
            (ty, storage)
        };
        let capacity = match (&s.capacity, s.kind) {
            (Some(cap), _) => {
                let v = const_eval(cx, m, cap, Some(&Ty::U64), "a capacity");
                match v {
                    Some(v) if v >= 1 && v <= i128::from(cat::limits::MAX_CAPACITY) => Some(v as u64),
                    Some(v) => {
                        cx.report(
                            Diagnostic::error(E0218, file, cap.span, format!("capacity {v} is out of range"))
                                .with_label(format!("must be between 1 and {}", cat::limits::MAX_CAPACITY)),
                        );
                        None
                    }
                    None => None,
                }
            }
            (None, StateKind::PerLock | StateKind::PerThread) => Some(cat::limits::DEFAULT_CAPACITY),
            (None, _) => None,
        };
        if let (StateStorage::Map { kind: MapKind::Ringbuf, .. }, Some(c)) = (&storage, capacity) {
            if !c.is_power_of_two() || c % 4096 != 0 {
                let span = s.capacity.as_ref().map_or(s.ty.span, |c| c.span);
                cx.report(
                    Diagnostic::error(E0218, file, span, format!("ring buffer size {c} is not a power of two and a multiple of 4096"))
                        .with_label("invalid ring buffer size")
                        .with_note("a ring buffer's capacity is in bytes; the kernel requires a power-of-two number of pages")
                        .with_help("use 4096, 8192, 16384, ..."),
                );
            }
        }
        check_value_size(cx, file, s, &ty, &storage);
        let st = &mut cx.program.states[id];
        st.ty = ty;
        st.storage = storage;
        st.capacity = capacity;
    }
}

fn resolve_map_type(cx: &mut Checker, m: usize, s: &ast::StateDecl) -> (Ty, StateStorage) {
    let file = cx.modules[m].file;
    let bad = |cx: &mut Checker, msg: String| {
        cx.report(
            Diagnostic::error(E0216, file, s.ty.span, msg)
                .with_label("not a map type")
                .with_help("map types are `hash<K, V>`, `lru_hash<K, V>`, `array<V>`, `percpu_array<V>` and `ringbuf<T>`"),
        );
        (Ty::Error, StateStorage::Map { kind: MapKind::Hash, key: None })
    };
    let ast::TypeKind::Generic(g) = &s.ty.kind else {
        return bad(cx, format!("map `{}` needs a map type", s.name.name));
    };
    let (path, args) = &**g;
    let Some(def) = cat::map_kind(&path.name.name).filter(|_| path.is_simple()) else {
        return bad(cx, format!("unknown map type `{path}`"));
    };
    if args.len() != def.type_args {
        let want = if def.type_args == 2 { "<K, V>" } else { "<V>" };
        cx.report(
            Diagnostic::error(E0216, file, s.ty.span, format!("`{}` takes {} type arguments", def.name, def.type_args))
                .with_label(format!("write `{}{want}`", def.name)),
        );
        return (Ty::Error, StateStorage::Map { kind: def.kind, key: None });
    }
    let value_ty = resolve_type(cx, m, args.last().expect("at least one argument"));
    let key = match def.kind {
        MapKind::Hash | MapKind::LruHash => {
            let k = resolve_type(cx, m, &args[0]);
            if !(matches!(k, Ty::Int(_) | Ty::KStack | Ty::Struct(_) | Ty::Error)) {
                let name = cx.program.ty_name(&k);
                cx.report(
                    Diagnostic::error(E0216, file, args[0].span, format!("map keys are integers, `kstack` or structs, not `{name}`"))
                        .with_label("invalid key type"),
                );
            } else if matches!(k, Ty::Struct(_)) && cx.program.layout(&k).size == 0 {
                report_empty(cx, file, args[0].span, &s.name.name, &k, "key");
            }
            Some(k)
        }
        MapKind::Array | MapKind::PercpuArray => Some(Ty::U32),
        MapKind::Ringbuf => None,
        // Not in `MAP_KINDS`: no policy declares one.
        MapKind::StackTrace => None,
    };
    if matches!(value_ty, Ty::Lock | Ty::Waiter) {
        let name = cx.program.ty_name(&value_ty);
        cx.report(
            Diagnostic::error(E0216, file, args.last().expect("argument").span, format!("map values cannot be `{name}`"))
                .with_label("invalid value type")
                .with_help("use an integer or a struct"),
        );
    }
    (value_ty, StateStorage::Map { kind: def.kind, key })
}

/// A function's signature as the body checker needs it.
#[derive(Clone, Debug)]
pub(crate) struct Sig {
    pub module: usize,
    /// The whole item, to know whether a syntax error lies inside it.
    pub span: Span,
    pub params: Vec<(String, Ty, bool, Span)>,
    pub ret: Ty,
    pub decl: ast::FnDecl,
}

fn resolve_fn_sigs(cx: &mut Checker) -> HashMap<FuncId, Sig> {
    let mut sigs = HashMap::new();
    for m in 0..cx.modules.len() {
        let ast = Rc::clone(&cx.modules[m].ast);
        for item in &ast.items {
            let ast::ItemKind::Fn(f) = &item.kind else { continue };
            let Some(Value::Func(id)) = cx.modules[m].values.get(&f.name.name).copied() else { continue };
            let params = f
                .params
                .iter()
                .map(|p| (p.name.name.clone(), resolve_type(cx, m, &p.ty), p.inout, p.name.span))
                .collect();
            let ret = match &f.ret {
                Some(t) => {
                    let ty = resolve_type(cx, m, t);
                    if !(ty.is_scalar() || ty == Ty::Error) {
                        let file = cx.modules[m].file;
                        let name = cx.program.ty_name(&ty);
                        cx.report(
                            Diagnostic::error(E0216, file, t.span, format!("functions return integers or bools, not `{name}`"))
                                .with_label("not a scalar")
                                .with_help("return the field you need, or write into an `inout` parameter"),
                        );
                    }
                    ty
                }
                None => Ty::Void,
            };
            cx.program.funcs[id].ret = ret.clone();
            sigs.insert(id, Sig { module: m, span: item.span, params, ret, decl: (**f).clone() });
        }
    }
    sigs
}

fn check_fn_bodies(cx: &mut Checker, sigs: &HashMap<FuncId, Sig>) {
    let mut ids: Vec<FuncId> = sigs.keys().copied().collect();
    ids.sort();
    for id in ids {
        let sig = &sigs[&id];
        let file = cx.modules[sig.module].file;
        let mut b = BodyCx::new(cx, sig.module, BodyKind::Func(sig.ret.clone()));
        b.sigs = Some(sigs);
        let mut params = Vec::new();
        for (i, (name, ty, inout, span)) in sig.params.iter().enumerate() {
            let local = b.declare(name, ty.clone(), *span, None);
            if *inout {
                b.inout.insert(local, i);
            }
            params.push((local, *inout));
        }
        let broken = b.cx.is_broken(sig.module, sig.span);
        let block = if broken { hir::Block::default() } else { b.block(&sig.decl.body) };
        if !broken && sig.ret != Ty::Void && sig.ret != Ty::Error && !block_returns(&block) {
            b.cx.report(
                Diagnostic::error(E0211, file, sig.decl.name.span, format!("`{}` can end without returning a `{}`", sig.decl.name.name, b.cx.program.ty_name(&sig.ret)))
                    .with_label("some path reaches the end of the body")
                    .with_secondary(file, Span::point(sig.decl.body.span.end.saturating_sub(1) as usize), "the body ends here without `return`")
                    .with_help("add a `return` at the end"),
            );
        }
        let (locals, facts) = (std::mem::take(&mut b.locals), std::mem::take(&mut b.facts));
        cx.program.funcs[id].params = params;
        cx.program.funcs[id].body = Body { locals, block };
        cx.bodies.insert(BodyId::Func(id), facts);
    }
}

/// True if every path through `b` ends in a `return`.
pub(crate) fn block_returns(b: &hir::Block) -> bool {
    b.stmts.iter().any(|s| match s {
        Stmt::Return(..) => true,
        Stmt::If { arms, else_: Some(e) } => arms.iter().all(|(_, b)| block_returns(b)) && block_returns(e),
        Stmt::Block(b) => block_returns(b),
        _ => false,
    })
}

/// The policy of the main module: lock kinds, hooks and their bodies.
fn check_policy(cx: &mut Checker, sigs: &HashMap<FuncId, Sig>) {
    let ast = Rc::clone(&cx.modules[0].ast);
    let Some(policy) = ast.items.iter().find_map(|i| match &i.kind {
        ast::ItemKind::Policy(p) => Some(p),
        _ => None,
    }) else {
        return;
    };
    let file = cx.modules[0].file;
    let mut kinds: Vec<LockKind> = Vec::new();
    for k in &policy.kinds {
        if let Some(kind) = LockKind::from_name(&k.name) {
            if kinds.contains(&kind) {
                cx.report(
                    Diagnostic::warning(crate::codes::W0404, file, k.span, format!("lock kind `{}` is listed twice", k.name))
                        .with_label("already listed")
                        .with_help("remove it, or name the kind you meant"),
                );
            } else {
                kinds.push(kind);
            }
        }
    }
    let targets: Vec<Target> = match cx.options.target {
        Some(t) => vec![t],
        None => Target::ALL.to_vec(),
    };
    let mut hooks = Vec::new();
    let mut seen: HashMap<&str, Span> = HashMap::new();
    for h in &policy.hooks {
        if h.name.name.is_empty() {
            continue; // a hook the parser could not read
        }
        let header = crate::rules::hooks::check_hook_header(cx, file, h, &kinds, &mut seen);
        let def = header.def;
        if let Some(d) = cat::hook(&h.name.name) {
            cx.references.push(Reference { at: loc(file, h.name.span), target: RefTarget::Hook(d.name) });
        }
        // The body is checked against the handler as written: a wrong signature is reported
        // once, by the hook rule, not again by every use of a parameter or a `return`.
        let declared_ret = match &h.ret {
            Some(t) => resolve_type(cx, 0, t),
            None => Ty::Void,
        };
        let mut b = BodyCx::new(cx, 0, BodyKind::Hook(declared_ret));
        b.sigs = Some(sigs);
        let mut params = Vec::new();
        for (i, p) in h.params.iter().enumerate() {
            let ty = match def.filter(|_| header.params_ok).and_then(|d| d.params.get(i)) {
                Some(cp) => match cp.ty {
                    cat::HookParamTy::Lock => Ty::Lock,
                    cat::HookParamTy::Waiter => Ty::Waiter,
                    cat::HookParamTy::Bool => Ty::Bool,
                },
                None => resolve_type(b.cx, 0, &p.ty),
            };
            params.push(b.declare(&p.name.name, ty, p.name.span, None));
        }
        let broken = b.cx.is_broken(0, h.span);
        let block = if broken { hir::Block::default() } else { b.block(&h.body) };
        if let Some(def) = def.filter(|d| d.returns_bool && !broken) {
            if !block_returns(&block) {
                b.cx.report(
                    Diagnostic::error(E0211, file, h.name.span, format!("hook `{}` can end without returning a decision", def.name))
                        .with_label("some path reaches the end of the handler")
                        .with_note("the kernel acts on a bool hook's result every time it runs")
                        .with_help("end the handler with `return false;` (or `true`)"),
                );
            }
        }
        let (locals, facts) = (std::mem::take(&mut b.locals), std::mem::take(&mut b.facts));
        if let Some(def) = def {
            // The context on the targets the hook fires on; a hook that fires on none of
            // the targets checked for (`acquired` with `--target stock`) still has the
            // context those targets give (on stock every program is a tracepoint: atomic).
            let fires: Vec<Target> = targets.iter().copied().filter(|t| def.on_target(*t)).collect();
            let context = if fires.is_empty() { &targets } else { &fires };
            let atomic = kinds.iter().any(|k| context.iter().any(|t| def.is_atomic(*k, *t))) || kinds.is_empty();
            cx.bodies.insert(BodyId::Hook(hooks.len()), facts);
            hooks.push(HookImpl { def, params, body: Body { locals, block }, atomic, loc: loc(file, h.name.span) });
        }
    }
    crate::rules::hooks::check_companions(cx, file, policy, &hooks);
    cx.program.policy = Some(hir::Policy { name: policy.name.name.clone(), kinds, hooks, loc: loc(file, policy.name.span) });
}

/// What kind of body is being checked.
#[derive(Clone, Debug)]
pub(crate) enum BodyKind {
    /// A constant expression: no locals, state or calls.
    Const,
    /// A function with this result type.
    Func(Ty),
    /// A hook handler, with its result type as written.
    Hook(Ty),
}

pub(super) trait CloneConst {
    fn clone_const(&self) -> ExprKind;
}

impl CloneConst for ExprKind {
    fn clone_const(&self) -> ExprKind {
        match self {
            ExprKind::Const(v) => ExprKind::Const(*v),
            _ => ExprKind::Error,
        }
    }
}

/// Wraps `v` to the range of `t`, as the machine's arithmetic does.
pub(crate) fn wrap(v: i128, t: IntTy) -> i128 {
    let bits = u32::from(t.bits);
    let mask = (1i128 << bits) - 1;
    let u = v & mask;
    if t.signed && u > t.max() {
        u - (1i128 << bits)
    } else {
        u
    }
}

pub(super) fn scalar(s: cat::Scalar) -> Ty {
    match s {
        cat::Scalar::U32 => Ty::U32,
        cat::Scalar::U64 => Ty::U64,
        cat::Scalar::Bool => Ty::Bool,
        cat::Scalar::KStack => Ty::KStack,
    }
}

/// E0344: a map's key or value must not be empty.
fn report_empty(cx: &mut Checker, file: FileId, span: Span, name: &str, ty: &Ty, what: &str) {
    let ty_name = cx.program.ty_name(ty);
    cx.report(
        Diagnostic::error(E0344, file, span, format!("`{name}` has an empty {what}: `{ty_name}` holds no bytes"))
            .with_label("an empty type")
            .with_note("every piece of state is a BPF map, and the kernel creates no map with an empty key or value")
            .with_help("give the type a field or an element, or drop the state"),
    );
}

/// E0343: the value of a piece of state must be a size the kernel creates a map for.
fn check_value_size(cx: &mut Checker, file: FileId, s: &ast::StateDecl, ty: &Ty, storage: &StateStorage) {
    let (limit, what) = match storage {
        StateStorage::Config(_) | StateStorage::PerWaiter { .. } | StateStorage::Map { kind: MapKind::Ringbuf, .. } => return,
        StateStorage::PerCpu | StateStorage::Map { kind: MapKind::PercpuArray, .. } => {
            (cat::limits::MAX_PERCPU_VALUE_BYTES, "a per-CPU value")
        }
        _ => (cat::limits::MAX_VALUE_BYTES, "a map value"),
    };
    if *ty == Ty::Error {
        return;
    }
    // The layout saturates at u32::MAX, which is over every limit.
    let size = cx.program.layout(ty).size;
    // `lock`, `waiter` and `void` have no size either, and are refused as state (E0216).
    if size == 0 && !matches!(ty, Ty::Lock | Ty::Waiter | Ty::Void) {
        report_empty(cx, file, s.ty.span, &s.name.name, ty, "value");
        return;
    }
    if size.div_ceil(8).saturating_mul(8) > limit {
        let name = cx.program.ty_name(ty);
        let shown = if size == u32::MAX { "4 GiB or more".to_string() } else { format!("{size} bytes") };
        cx.report(
            Diagnostic::error(E0343, file, s.ty.span, format!("`{}` is too large for {what}: `{name}` is {shown}", s.name.name))
                .with_label(format!("the kernel creates values of at most {limit} bytes here"))
                .with_note("every piece of state is a BPF map; the kernel refuses to create maps with larger values")
                .with_help("split the data over several pieces of state, or use a map with more entries and smaller values"),
        );
    }
}
