//! Name resolution and type checking: from the syntax tree to the checked program.
//!
//! Items are collected first (so order of declaration does not matter), then struct
//! layouts, state, function signatures, and finally bodies. Expressions are checked with
//! an expected type when one is known, which is how integer literals get their type;
//! constants are folded as they are checked. Errors produce `Ty::Error`, which is
//! compatible with everything, so one mistake gives one diagnostic.

use crate::codes::*;
use crate::hir::{self, *};
use crate::ty::{align_to, IntTy, Layout, Ty};
use crate::refs::{Reference, Target as RefTarget};
use crate::{ArgRoot, BodyFacts, BodyId, Checker, Value};
use cranelift_entity::PrimaryMap;
use scl_catalogue::{self as cat, LockKind, MapKind, MethodTy, Target};
use scl_diagnostics::{CodeDoc, Diagnostic, FileId, Span};
use scl_syntax::ast::{self, BinOp, StateKind, UnOp};
use scl_syntax::validate::did_you_mean;
use std::collections::{HashMap, HashSet};

/// Explain pages of the name and type codes.
pub static DOCS: &[CodeDoc] = &[
    CodeDoc { code: E0201, summary: "a name that is not declared", explanation: "Every name must be declared: a local with `let`, a parameter, a constant, a piece of state, a function or a built-in. Names from an imported module are written `module::name`.\n\nErroneous example:\n\n```scl\nfn f() -> u64 {\n    return totl;\n}\nglobal total: u64;\n```\n\nFixed example:\n\n```scl\nfn f() -> u64 {\n    return total;\n}\nglobal total: u64;\n```\n" },
    CodeDoc { code: E0202, summary: "a name declared twice", explanation: "Constants, state, structs and functions of a module share one namespace per kind (types; values), and built-in function names are reserved. Each name is declared once.\n\nErroneous example:\n\n```scl\nglobal total: u64;\nper_cpu total: u64;\n```\n\nFixed example:\n\n```scl\nglobal total: u64;\nper_cpu hits: u64;\n```\n" },
    CodeDoc { code: E0203, summary: "a type that does not exist", explanation: "Types are the integers `u8`..`u64` and `i8`..`i64`, `bool`, arrays `[T; N]`, structs, and `lock` and `waiter` for hook parameters.\n\nErroneous example:\n\n```scl\nglobal total: uint64;\n```\n\nFixed example:\n\n```scl\nglobal total: u64;\n```\n" },
    CodeDoc { code: E0204, summary: "a value of the wrong type", explanation: "SCL converts integers only where no value can change: a narrower integer widens to a wider one of the same signedness, and a literal takes the type it is used at if it fits. Mixing signed and unsigned, narrowing, or using an integer as a bool needs an explicit `as` or a comparison.\n\nErroneous example:\n\n```scl\nfn f(a: u64, b: i64) -> u64 {\n    return a + b;\n}\n```\n\nFixed example:\n\n```scl\nfn f(a: u64, b: i64) -> u64 {\n    return a + (b as u64);\n}\n```\n" },
    CodeDoc { code: E0205, summary: "a field or method the value does not have", explanation: "A struct has the fields it declares; `lock` has `addr`, `kind`, `is_reader`, `is_writer`; `waiter` has `cpu`, `numa_node`, `tid`, `prio`, `wait_start` and the policy's `per_waiter` fields; maps have the methods `get`, `get_or`, `set`, `delete` (and `emit` for ring buffers).\n\nErroneous example:\n\n```scl\nfn f(w: waiter) -> u32 {\n    return w.node;\n}\n```\n\nFixed example:\n\n```scl\nfn f(w: waiter) -> u32 {\n    return w.numa_node;\n}\n```\n" },
    CodeDoc { code: E0206, summary: "a call with the wrong number of arguments", explanation: "A call passes exactly one argument per parameter.\n\nErroneous example:\n\n```scl\nfn f() -> u64 {\n    return min(1);\n}\n```\n\nFixed example:\n\n```scl\nfn f() -> u64 {\n    return min(1, 2);\n}\n```\n" },
    CodeDoc { code: E0208, summary: "an import of a module that does not exist", explanation: "`import NAME;` loads a module of the standard library (`hist`, `topo`).\n\nErroneous example:\n\n```scl\nimport histogram;\n```\n\nFixed example:\n\n```scl\nimport hist;\n```\n" },
    CodeDoc { code: E0209, summary: "an operator applied to values it does not take", explanation: "Arithmetic and bit operators take integers; `&&`, `||` and `!` take bools; `==` and `!=` compare two integers or two bools; `<`, `<=`, `>`, `>=` compare integers; unary `-` takes signed integers. Conditions must be bools: compare an integer with 0 explicitly.\n\nErroneous example:\n\n```scl\nfn f(x: u32) -> bool {\n    if x {\n        return true;\n    }\n    return false;\n}\n```\n\nFixed example:\n\n```scl\nfn f(x: u32) -> bool {\n    if x != 0 {\n        return true;\n    }\n    return false;\n}\n```\n" },
    CodeDoc { code: E0210, summary: "a value that must be known at compile time is not", explanation: "Constants, config defaults, array sizes, capacities and loop bounds are computed by the compiler; they may use literals, other constants and operators, but not state, locals or calls.\n\nErroneous example:\n\n```scl\nglobal n: u32;\nconst N: u32 = n;\n```\n\nFixed example:\n\n```scl\nconst M: u32 = 4;\nconst N: u32 = M * 2;\n```\n" },
    CodeDoc { code: E0211, summary: "a function or bool hook can end without returning a value", explanation: "A function with a result type and a hook that returns `bool` must reach a `return` with a value on every path: the kernel uses the result to decide what the lock does.\n\nErroneous example:\n\n```scl\nfn pick(x: u32) -> bool {\n    if x > 3 {\n        return true;\n    }\n}\n```\n\nFixed example:\n\n```scl\nfn pick(x: u32) -> bool {\n    if x > 3 {\n        return true;\n    }\n    return false;\n}\n```\n" },
    CodeDoc { code: E0212, summary: "a write to something read-only", explanation: "`config` values are fixed when the policy is loaded (`--set NAME=VALUE`) and live in read-only memory; constants and functions cannot be assigned either.\n\nErroneous example:\n\n```scl\nconfig limit: u32 = 4;\nfn f() {\n    limit = 5;\n}\n```\n\nFixed example:\n\n```scl\nconfig limit: u32 = 4;\nglobal current: u32;\nfn f() {\n    current = limit + 1;\n}\n```\n" },
    CodeDoc { code: E0213, summary: "a conversion `as` cannot make", explanation: "`as` converts between integer types (truncating or extending) and from `bool` to an integer. It does not convert to `bool` (compare with 0 instead) or between structs.\n\nErroneous example:\n\n```scl\nfn f(x: u32) -> bool {\n    return x as bool;\n}\n```\n\nFixed example:\n\n```scl\nfn f(x: u32) -> bool {\n    return x != 0;\n}\n```\n" },
    CodeDoc { code: E0214, summary: "a struct literal misses, repeats or invents a field", explanation: "A struct literal gives every field of the struct exactly once.\n\nErroneous example:\n\n```scl\nstruct P { a: u32, b: u32 }\nfn f() -> u32 {\n    let p = P { a: 1 };\n    return p.a;\n}\n```\n\nFixed example:\n\n```scl\nstruct P { a: u32, b: u32 }\nfn f() -> u32 {\n    let p = P { a: 1, b: 0 };\n    return p.a;\n}\n```\n" },
    CodeDoc { code: E0215, summary: "more than one policy in a file", explanation: "A policy file holds one `policy`: it is one BPF object, loaded and unloaded as a unit. Put other policies in their own files.\n\nErroneous example:\n\n```scl\npolicy a for spinlock {\n    on contended(l: lock) {}\n}\npolicy b for mutex {\n    on contended(l: lock) {}\n}\n```\n\nFixed example:\n\n```scl\npolicy a for spinlock, mutex {\n    on contended(l: lock) {}\n}\n```\n" },
    CodeDoc { code: E0216, summary: "a type that cannot be used here", explanation: "State holds plain data: integers, bools, arrays and structs of them. `lock` and `waiter` are views of the kernel's data and exist only as parameters. Map types (`hash<K, V>`, ...) appear only in `map` declarations; map keys are integers or structs; `per_waiter` state is integers or bools.\n\nErroneous example:\n\n```scl\nglobal last: lock;\n```\n\nFixed example:\n\n```scl\nglobal last_addr: u64;\n```\n" },
    CodeDoc { code: E0217, summary: "an `inout` argument or atomic target that is not a place", explanation: "An `inout` parameter and the first argument of `atomic_add` and `atomic_cas` are written through, so the caller must pass a place: a local, a piece of state, or a field or element of one.\n\nErroneous example:\n\n```scl\nglobal total: u64;\nfn f() {\n    atomic_add(total + 1, 1);\n}\n```\n\nFixed example:\n\n```scl\nglobal total: u64;\nfn f() {\n    atomic_add(total, 1);\n}\n```\n" },
    CodeDoc { code: E0218, summary: "a constant outside its type's range, or an index outside its array", explanation: "A literal or constant expression must fit the type it is used at, and a constant index must lie inside its array. (An index computed at run time that falls outside reads 0 and writes nothing.)\n\nErroneous example:\n\n```scl\nconst SMALL: u8 = 300;\n```\n\nFixed example:\n\n```scl\nconst SMALL: u16 = 300;\n```\n" },
];

/// The largest array length SCL accepts (anything larger could not live anywhere anyway).
const MAX_ARRAY_LEN: i128 = 1 << 16;

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
        let items = cx.modules[m].ast.items.clone();
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
                        layout: Layout { size: 0, align: 1 },
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
    let items = cx.modules[m].ast.items.clone();
    let file = cx.modules[m].file;
    for item in &items {
        let ast::ItemKind::Struct(s) = &item.kind else { continue };
        let Some(&id) = cx.modules[m].types.get(&s.name.name) else { continue };
        if cx.program.structs[id].layout.size > 0 || !cx.program.structs[id].fields.is_empty() {
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
                return;
            }
            if cx.program.structs[inner].layout.size == 0 && cx.program.structs[inner].fields.is_empty() {
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
                            .with_label(format!("must be between 1 and {MAX_ARRAY_LEN}")),
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
    let items = cx.modules[m].ast.items.clone();
    let file = cx.modules[m].file;
    let mut waiter_bytes = 0u32;
    for item in &items {
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
            if !(matches!(k, Ty::Int(_) | Ty::Struct(_) | Ty::Error)) {
                let name = cx.program.ty_name(&k);
                cx.report(
                    Diagnostic::error(E0216, file, args[0].span, format!("map keys are integers or structs, not `{name}`"))
                        .with_label("invalid key type"),
                );
            }
            Some(k)
        }
        MapKind::Array | MapKind::PercpuArray => Some(Ty::U32),
        MapKind::Ringbuf => None,
    };
    if matches!(value_ty, Ty::Lock | Ty::Waiter | Ty::Bool) && def.kind != MapKind::Ringbuf || matches!(value_ty, Ty::Lock | Ty::Waiter) {
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
        let items = cx.modules[m].ast.items.clone();
        for item in &items {
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
    let Some(policy) = cx.modules[0].ast.items.iter().find_map(|i| match &i.kind {
        ast::ItemKind::Policy(p) => Some(p.clone()),
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
                    Diagnostic::warning(crate::codes::W0403, file, k.span, format!("lock kind `{}` is listed twice", k.name))
                        .with_label("already listed"),
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
        let def = crate::rules::hooks::check_hook_header(cx, file, h, &kinds, &mut seen);
        if let Some(d) = cat::hook(&h.name.name) {
            cx.references.push(Reference { at: loc(file, h.name.span), target: RefTarget::Hook(d.name) });
        }
        let mut b = BodyCx::new(cx, 0, BodyKind::Hook(def));
        b.sigs = Some(sigs);
        let mut params = Vec::new();
        for (i, p) in h.params.iter().enumerate() {
            let ty = match def.and_then(|d| d.params.get(i)) {
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
            let atomic = kinds.iter().any(|k| targets.iter().any(|t| def.on_target(*t) && def.is_atomic(*k, *t)))
                || kinds.is_empty();
            cx.bodies.insert(BodyId::Hook(hooks.len()), facts);
            hooks.push(HookImpl { def, params, body: Body { locals, block }, atomic, loc: loc(file, h.name.span) });
        }
    }
    crate::rules::hooks::check_companions(cx, file, &policy, &hooks);
    cx.program.policy = Some(hir::Policy { name: policy.name.name.clone(), kinds, hooks, loc: loc(file, policy.name.span) });
}

/// What kind of body is being checked.
#[derive(Clone, Debug)]
pub(crate) enum BodyKind {
    /// A constant expression: no locals, state or calls.
    Const,
    /// A function with this result type.
    Func(Ty),
    /// A hook handler (`None` if the hook is unknown).
    Hook(Option<&'static cat::HookDef>),
}

/// The state of checking one body.
pub(crate) struct BodyCx<'a> {
    pub cx: &'a mut Checker,
    pub module: usize,
    pub file: FileId,
    pub kind: BodyKind,
    pub locals: PrimaryMap<LocalId, LocalDef>,
    scopes: Vec<HashMap<String, LocalId>>,
    /// Locals that are `inout` parameters, with their index.
    pub inout: HashMap<LocalId, usize>,
    pub facts: BodyFacts,
    loop_depth: usize,
    sigs: Option<&'a HashMap<FuncId, Sig>>,
    const_stack: Vec<usize>,
}

impl<'a> BodyCx<'a> {
    fn new(cx: &'a mut Checker, module: usize, kind: BodyKind) -> BodyCx<'a> {
        let file = cx.modules[module].file;
        BodyCx {
            cx,
            module,
            file,
            kind,
            locals: PrimaryMap::new(),
            scopes: vec![HashMap::new()],
            inout: HashMap::new(),
            facts: BodyFacts::default(),
            loop_depth: 0,
            sigs: None,
            const_stack: Vec::new(),
        }
    }

    fn loc(&self, span: Span) -> Loc {
        Loc { file: self.file, span }
    }

    fn err(&mut self, d: Diagnostic) -> Expr {
        let span = d.primary.span;
        self.cx.report(d);
        Expr { kind: ExprKind::Error, ty: Ty::Error, loc: self.loc(span) }
    }

    fn declare(&mut self, name: &str, ty: Ty, span: Span, map_ref: Option<StateId>) -> LocalId {
        let id = self.locals.push(LocalDef { name: name.to_string(), ty, map_ref, loc: self.loc(span) });
        self.scopes.last_mut().expect("a scope").insert(name.to_string(), id);
        self.record_local(span, id);
        id
    }

    fn lookup_local(&self, name: &str) -> Option<LocalId> {
        self.scopes.iter().rev().find_map(|s| s.get(name).copied())
    }

    fn is_const(&self) -> bool {
        matches!(self.kind, BodyKind::Const)
    }

    // ----------------------------------------------------------------------------------
    // Statements

    fn block(&mut self, b: &ast::Block) -> hir::Block {
        self.scopes.push(HashMap::new());
        let stmts = b.stmts.iter().filter_map(|s| self.stmt(s)).collect();
        self.scopes.pop();
        hir::Block { stmts }
    }

    fn stmt(&mut self, s: &ast::Stmt) -> Option<Stmt> {
        Some(match &s.kind {
            ast::StmtKind::Let(l) => {
                let declared = l.ty.as_ref().map(|t| resolve_type(self.cx, self.module, t));
                if let Some(t @ (Ty::Lock | Ty::Waiter)) = &declared {
                    let name = self.cx.program.ty_name(t);
                    self.cx.report(
                        Diagnostic::error(E0216, self.file, l.ty.as_ref().expect("typed").span, format!("a local cannot be a `{name}`"))
                            .with_label("views exist only as parameters"),
                    );
                }
                let init = l.init.as_ref().map(|e| {
                    let e = self.expr(e, declared.as_ref());
                    match &declared {
                        Some(t) => self.coerce(e, t),
                        None => e,
                    }
                });
                let ty = declared.or_else(|| init.as_ref().map(|e| e.ty.clone())).unwrap_or(Ty::Error);
                if ty == Ty::Void {
                    self.cx.report(
                        Diagnostic::error(E0204, self.file, l.name.span, format!("`{}` would hold no value", l.name.name))
                            .with_label("the initialiser returns nothing"),
                    );
                }
                let id = self.declare(&l.name.name, ty, l.name.span, None);
                Stmt::Let(id, init)
            }
            ast::StmtKind::Assign(a) => {
                let place = self.place(&a.target, true)?;
                self.write_effect(&place, a.target.span);
                let op = match a.op {
                    ast::AssignOp::Set => None,
                    ast::AssignOp::Compound(op) => Some(op),
                };
                let value = self.expr(&a.value, Some(&place.ty));
                let value = match op {
                    None => self.coerce(value, &place.ty),
                    Some(op) => {
                        self.check_compound(op, &place.ty, &value, a.target.span);
                        if matches!(op, BinOp::Shl | BinOp::Shr) {
                            value
                        } else {
                            self.coerce(value, &place.ty)
                        }
                    }
                };
                Stmt::Assign { place, op, value, loc: self.loc(s.span) }
            }
            ast::StmtKind::Expr(e) => {
                let e = self.expr(e, None);
                Stmt::Expr(e)
            }
            ast::StmtKind::If { arms, else_ } => {
                let mut out = Vec::new();
                for arm in arms {
                    self.scopes.push(HashMap::new());
                    let cond = self.cond(&arm.cond);
                    let block = self.block(&arm.block);
                    self.scopes.pop();
                    if let Some(c) = cond {
                        out.push((c, block));
                    }
                }
                let else_ = else_.as_ref().map(|b| self.block(b));
                Stmt::If { arms: out, else_ }
            }
            ast::StmtKind::For(f) => {
                let bounds = self.loop_bounds(f);
                self.scopes.push(HashMap::new());
                let (start, end, ty) = bounds.unwrap_or((0, 0, Ty::Error));
                let var = self.declare(&f.var.name, ty, f.var.span, None);
                self.loop_depth += 1;
                let body = self.block(&f.body);
                self.loop_depth -= 1;
                self.scopes.pop();
                Stmt::For { var, start, end, body, loc: self.loc(s.span) }
            }
            ast::StmtKind::Return(e) => {
                let expected = match &self.kind {
                    BodyKind::Func(t) => t.clone(),
                    BodyKind::Hook(Some(d)) if d.returns_bool => Ty::Bool,
                    BodyKind::Hook(_) => Ty::Void,
                    BodyKind::Const => Ty::Void,
                };
                let value = match (e, &expected) {
                    (Some(e), Ty::Void) => {
                        let _ = self.expr(e, None);
                        self.cx.report(
                            Diagnostic::error(E0204, self.file, e.span, "this returns nothing, but a value is given")
                                .with_label("unexpected value")
                                .with_help("write `return;`, or give the function a result type"),
                        );
                        None
                    }
                    (Some(e), t) => {
                        let v = self.expr(e, Some(t));
                        Some(self.coerce(v, t))
                    }
                    (None, Ty::Void | Ty::Error) => None,
                    (None, t) => {
                        let name = self.cx.program.ty_name(t);
                        self.cx.report(
                            Diagnostic::error(E0204, self.file, s.span, format!("`return` needs a `{name}` value here"))
                                .with_label("no value"),
                        );
                        None
                    }
                };
                Stmt::Return(value, self.loc(s.span))
            }
            ast::StmtKind::Break => Stmt::Break,
            ast::StmtKind::Continue => Stmt::Continue,
            ast::StmtKind::Block(b) => Stmt::Block(self.block(b)),
            ast::StmtKind::Error => return None,
        })
    }

    fn loop_bounds(&mut self, f: &ast::ForStmt) -> Option<(i128, i128, Ty)> {
        // The loop variable takes the bounds' type; with two bare literals it is a `u32`,
        // which widens wherever a wider unsigned value is wanted.
        let literal = |e: &ast::Expr| matches!(e.kind, ast::ExprKind::Int { .. });
        let (start_e, end_e) = match (literal(&f.start), literal(&f.end)) {
            (true, true) => {
                let s = self.expr(&f.start, Some(&Ty::U32));
                let e = self.expr(&f.end, Some(&Ty::U32));
                (s, e)
            }
            (true, false) => {
                let e = self.expr(&f.end, None);
                let s = self.expr(&f.start, Some(&e.ty.clone()));
                (s, e)
            }
            _ => {
                let s = self.expr(&f.start, None);
                let e = self.expr(&f.end, Some(&s.ty.clone()));
                (s, e)
            }
        };
        let mut ty = if start_e.ty == Ty::Error { end_e.ty.clone() } else { start_e.ty.clone() };
        if !ty.is_int_like() {
            let name = self.cx.program.ty_name(&ty);
            self.cx.report(Diagnostic::error(E0209, self.file, f.start.span, format!("loop bounds are integers, not `{name}`")));
            ty = Ty::Error;
        }
        crate::rules::termination::check_loop(self.cx, self.file, f, &start_e, &end_e).map(|(s, e)| (s, e, ty))
    }

    fn cond(&mut self, c: &ast::Cond) -> Option<Cond> {
        match c {
            ast::Cond::Expr(e) => {
                let e = self.expr(e, Some(&Ty::Bool));
                Some(Cond::Expr(self.expect_bool(e)))
            }
            ast::Cond::Let(name, e) => {
                let lookup = self.map_get(e)?;
                let (map, key, value_ty) = lookup;
                let local = self.declare(&name.name, value_ty, name.span, Some(map));
                Some(Cond::MapGet { local, map, key, loc: self.loc(e.span) })
            }
        }
    }

    /// `m.get(k)` in an `if let`: the map, the checked key and the value type.
    fn map_get(&mut self, e: &ast::Expr) -> Option<(StateId, Expr, Ty)> {
        if let ast::ExprKind::Call(callee, args) = &e.kind {
            if let ast::ExprKind::Field(base, method) = &callee.kind {
                if method.name == "get" {
                    if let Some(map) = self.map_state(base) {
                        let key_ty = self.map_key_ty(map);
                        if args.len() != 1 {
                            self.cx.report(
                                Diagnostic::error(E0206, self.file, e.span, format!("`get` takes 1 argument, {} given", args.len())),
                            );
                            return None;
                        }
                        self.use_state(map);
                        let key = self.expr(&args[0], key_ty.as_ref());
                        let key = match &key_ty {
                            Some(t) => self.coerce(key, t),
                            None => key,
                        };
                        let value_ty = self.cx.program.states[map].ty.clone();
                        return Some((map, key, value_ty));
                    }
                }
            }
        }
        self.cx.report(
            Diagnostic::error(E0340, self.file, e.span, "`if let` takes a map lookup")
                .with_label("not `map.get(key)`")
                .with_help("write `if let v = m.get(key) { ... }`, or use a plain `if` with a bool condition"),
        );
        let _ = self.expr(e, None);
        None
    }

    fn map_key_ty(&self, map: StateId) -> Option<Ty> {
        match &self.cx.program.states[map].storage {
            StateStorage::Map { key, .. } => key.clone(),
            _ => None,
        }
    }

    /// If `e` names a map of this module (or `module::map`), that map.
    fn map_state(&mut self, e: &ast::Expr) -> Option<StateId> {
        let ast::ExprKind::Path(p) = &e.kind else { return None };
        if p.is_simple() && self.lookup_local(&p.name.name).is_some() {
            return None;
        }
        match self.resolve_value(p)? {
            Value::State(id) if self.cx.program.states[id].kind == StateKind::Map => Some(id),
            _ => None,
        }
    }

    fn check_compound(&mut self, op: BinOp, target: &Ty, value: &Expr, span: Span) {
        if !(target.is_int_like() && value.ty.is_int_like()) {
            let (t, v) = (self.cx.program.ty_name(target), self.cx.program.ty_name(&value.ty));
            self.cx.report(
                Diagnostic::error(E0209, self.file, span, format!("`{}=` takes integers, not `{t}` and `{v}`", op.symbol()))
                    .with_label("not an integer"),
            );
        }
        if matches!(op, BinOp::Div | BinOp::Rem) {
            if let ExprKind::Const(0) = value.kind {
                crate::rules::cost::report_div_zero(self.cx, self.file, value.loc.span, op);
            }
        }
    }

    // ----------------------------------------------------------------------------------
    // Places and effects

    /// Resolves `e` as a place. `for_write` reports read-only places.
    pub(crate) fn place(&mut self, e: &ast::Expr, for_write: bool) -> Option<Place> {
        let place = match &e.kind {
            ast::ExprKind::Path(p) => {
                if p.is_simple() {
                    if let Some(local) = self.lookup_local(&p.name.name) {
                        self.record_local(p.name.span, local);
                        let ty = self.locals[local].ty.clone();
                        return Some(Place { base: PlaceBase::Local(local), projections: Vec::new(), ty, loc: self.loc(e.span) });
                    }
                }
                match self.resolve_value(p) {
                    Some(Value::State(id)) => {
                        self.use_state(id);
                        let st = &self.cx.program.states[id];
                        match st.kind {
                            StateKind::Map => {
                                let name = st.name.clone();
                                self.cx.report(
                                    Diagnostic::error(E0209, self.file, e.span, format!("map `{name}` is not a value"))
                                        .with_label("a map")
                                        .with_help(format!("read an entry with `if let v = {name}.get(key) {{ ... }}` or `{name}.get_or(key, default)`")),
                                );
                                return None;
                            }
                            StateKind::PerWaiter => {
                                let name = st.name.clone();
                                self.cx.report(
                                    Diagnostic::error(E0201, self.file, e.span, format!("per_waiter state `{name}` belongs to a waiter"))
                                        .with_label("which waiter's?")
                                        .with_help(format!("read it through a waiter parameter: `candidate.{name}`")),
                                );
                                return None;
                            }
                            StateKind::Config if for_write => {
                                let name = st.name.clone();
                                let decl = st.loc;
                                self.cx.report(
                                    Diagnostic::error(E0212, self.file, e.span, format!("config `{name}` is read-only"))
                                        .with_label("cannot be written")
                                        .with_secondary(decl.file, decl.span, "declared as `config` here")
                                        .with_note("config values are fixed when the policy is loaded (`--set NAME=VALUE`)")
                                        .with_help("keep values that change in `global` or `per_*` state"),
                                );
                                return None;
                            }
                            _ => {}
                        }
                        let ty = self.cx.program.states[id].ty.clone();
                        Place { base: PlaceBase::State(id), projections: Vec::new(), ty, loc: self.loc(e.span) }
                    }
                    Some(Value::Const(_)) | Some(Value::Func(_)) if for_write => {
                        self.cx.report(
                            Diagnostic::error(E0212, self.file, e.span, format!("`{p}` cannot be assigned"))
                                .with_label("a constant or function, not a variable"),
                        );
                        return None;
                    }
                    Some(_) => return None,
                    None => {
                        self.unknown_name(p);
                        return None;
                    }
                }
            }
            ast::ExprKind::Field(base, field) => {
                let base_place = self.place(base, for_write)?;
                return self.project_field(base_place, field, e.span, for_write);
            }
            ast::ExprKind::Index(base, index) => {
                let mut base_place = self.place(base, for_write)?;
                let Ty::Array(elem, n) = base_place.ty.clone() else {
                    if base_place.ty != Ty::Error {
                        let name = self.cx.program.ty_name(&base_place.ty);
                        self.cx.report(
                            Diagnostic::error(E0209, self.file, base.span, format!("`{name}` cannot be indexed"))
                                .with_label("not an array"),
                        );
                    }
                    return None;
                };
                let i = self.expr(index, None);
                if !i.ty.is_int_like() {
                    let name = self.cx.program.ty_name(&i.ty);
                    self.cx.report(
                        Diagnostic::error(E0204, self.file, index.span, format!("array indexes are integers, not `{name}`")),
                    );
                }
                if let ExprKind::Const(v) = i.kind {
                    if v < 0 || v >= i128::from(n) {
                        self.cx.report(
                            Diagnostic::error(E0218, self.file, index.span, format!("index {v} is outside the array"))
                                .with_label(format!("the array has {n} elements")),
                        );
                    }
                }
                base_place.projections.push(Projection::Index(Box::new(i)));
                base_place.ty = *elem;
                base_place.loc = self.loc(e.span);
                base_place
            }
            _ => {
                if for_write {
                    // The syntax check already reported assignments to non-places.
                    return None;
                }
                return None;
            }
        };
        Some(place)
    }

    fn project_field(&mut self, mut base: Place, field: &ast::Ident, span: Span, for_write: bool) -> Option<Place> {
        match base.ty.clone() {
            Ty::Struct(s) => {
                let sd = &self.cx.program.structs[s];
                match sd.fields.iter().position(|f| f.name == field.name) {
                    Some(i) => {
                        self.record(field.span, RefTarget::Field { owner: s, index: i });
                        let sd = &self.cx.program.structs[s];
                        base.ty = sd.fields[i].ty.clone();
                        base.projections.push(Projection::Field(i));
                        base.loc = self.loc(span);
                        Some(base)
                    }
                    None => {
                        let names: Vec<String> = sd.fields.iter().map(|f| f.name.clone()).collect();
                        let sname = sd.name.clone();
                        self.unknown_field(field, &sname, names.iter().map(String::as_str));
                        None
                    }
                }
            }
            Ty::Lock => {
                let PlaceBase::Local(_) = base.base else { return None };
                match cat::lock_field(&field.name) {
                    Some(def) => {
                        self.record(field.span, RefTarget::LockField(def.name));
                        if for_write {
                            crate::rules::integrity::report_view_write(self.cx, self.file, span, "lock", def.name);
                        }
                        Some(Place { base: PlaceBase::LockField(def), projections: Vec::new(), ty: scalar(def.ty), loc: self.loc(span) })
                    }
                    None => {
                        self.unknown_field(field, "lock", cat::LOCK_FIELDS.iter().map(|f| f.name));
                        None
                    }
                }
            }
            Ty::Waiter => {
                let PlaceBase::Local(w) = base.base else { return None };
                if let Some(def) = cat::waiter_field(&field.name) {
                    self.record(field.span, RefTarget::WaiterField(def.name));
                    if for_write {
                        crate::rules::integrity::report_view_write(self.cx, self.file, span, "waiter", def.name);
                    }
                    return Some(Place { base: PlaceBase::WaiterField(w, def), projections: Vec::new(), ty: scalar(def.ty), loc: self.loc(span) });
                }
                // The policy's per_waiter fields, declared in the main module.
                let per_waiter = self.cx.modules[0].values.get(&field.name).copied();
                if let Some(Value::State(id)) = per_waiter {
                    if self.cx.program.states[id].kind == StateKind::PerWaiter {
                        self.record(field.span, RefTarget::State(id));
                        self.use_state(id);
                        let ty = self.cx.program.states[id].ty.clone();
                        return Some(Place { base: PlaceBase::PerWaiter(w, id), projections: Vec::new(), ty, loc: self.loc(span) });
                    }
                }
                let mut names: Vec<String> = cat::WAITER_FIELDS.iter().map(|f| f.name.to_string()).collect();
                names.extend(
                    self.cx.program.states.values().filter(|s| s.kind == StateKind::PerWaiter).map(|s| s.name.clone()),
                );
                self.unknown_field(field, "waiter", names.iter().map(String::as_str));
                None
            }
            Ty::Error => None,
            other => {
                let name = self.cx.program.ty_name(&other);
                self.cx.report(
                    Diagnostic::error(E0205, self.file, field.span, format!("`{name}` has no fields"))
                        .with_label(format!("no field `{}`", field.name)),
                );
                None
            }
        }
    }

    fn unknown_field<'n>(&mut self, field: &ast::Ident, owner: &str, names: impl Iterator<Item = &'n str> + Clone) {
        let mut d = Diagnostic::error(E0205, self.file, field.span, format!("`{owner}` has no field `{}`", field.name))
            .with_label("unknown field");
        if let Some(s) = did_you_mean(&field.name, names.clone()) {
            d = d.with_help(format!("did you mean `{s}`?"));
        } else {
            d = d.with_note(format!("its fields are: {}", names.map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")));
        }
        self.cx.report(d);
    }

    /// Records what writing `place` does, for the rules.
    fn write_effect(&mut self, place: &Place, span: Span) {
        let l = self.loc(span);
        match place.base {
            PlaceBase::State(_) | PlaceBase::PerWaiter(..) => self.facts.state_writes.push(l),
            PlaceBase::Local(local) => {
                if self.locals[local].map_ref.is_some() {
                    self.facts.state_writes.push(l);
                } else if let Some(&i) = self.inout.get(&local) {
                    self.facts.param_writes.push((i, l));
                }
            }
            PlaceBase::LockField(_) | PlaceBase::WaiterField(..) => {}
        }
    }

    fn arg_root(&self, place: &Place) -> ArgRoot {
        match place.base {
            PlaceBase::State(_) | PlaceBase::PerWaiter(..) => ArgRoot::State,
            PlaceBase::Local(l) if self.locals[l].map_ref.is_some() => ArgRoot::State,
            PlaceBase::Local(l) => self.inout.get(&l).map_or(ArgRoot::Other, |&i| ArgRoot::Param(i)),
            _ => ArgRoot::Other,
        }
    }

    fn use_state(&mut self, id: StateId) {
        self.cx.program.states[id].used = true;
    }

    fn resolve_value(&mut self, p: &ast::Path) -> Option<Value> {
        let (module, v) = match &p.module {
            None => (self.module, self.cx.modules[self.module].values.get(&p.name.name).copied()),
            Some(m) => {
                let Some(&im) = self.cx.modules[self.module].imports.get(&m.name) else {
                    let d = unknown_module(self.file, m);
                    self.cx.report(d);
                    return Some(Value::Const(usize::MAX));
                };
                let mfile = self.cx.modules[im].file;
                self.record(m.span, RefTarget::Module { name: m.name.clone(), file: mfile });
                let v = self.cx.modules[im].values.get(&p.name.name).copied();
                if v.is_none() {
                    self.cx.report(
                        Diagnostic::error(E0201, self.file, p.name.span, format!("module `{}` has no `{}`", m.name, p.name.name))
                            .with_label("not declared there"),
                    );
                    return Some(Value::Const(usize::MAX));
                }
                (im, v)
            }
        };
        let target = match v? {
            Value::State(id) => RefTarget::State(id),
            Value::Func(f) => RefTarget::Func(f),
            Value::Const(index) => match &self.cx.modules[module].ast.items[index].kind {
                ast::ItemKind::Const(c) => RefTarget::Const { loc: loc(self.cx.modules[module].file, c.name.span), name: c.name.name.clone() },
                _ => return v,
            },
        };
        self.record(p.name.span, target);
        v
    }

    fn record(&mut self, span: Span, target: RefTarget) {
        let at = self.loc(span);
        self.cx.references.push(Reference { at, target });
    }

    fn record_local(&mut self, span: Span, local: LocalId) {
        let l = &self.locals[local];
        let target = RefTarget::Local { loc: l.loc, name: l.name.clone(), ty: self.cx.program.ty_name(&l.ty) };
        self.record(span, target);
    }

    fn unknown_name(&mut self, p: &ast::Path) {
        let mut candidates: Vec<String> = self.scopes.iter().flat_map(|s| s.keys().cloned()).collect();
        candidates.extend(self.cx.modules[self.module].values.keys().cloned());
        let mut d = Diagnostic::error(E0201, self.file, p.span, format!("cannot find `{p}`")).with_label("not declared");
        if let Some(s) = did_you_mean(&p.name.name, candidates.iter().map(String::as_str)) {
            d = d.with_help(format!("did you mean `{s}`?"));
        }
        self.cx.report(d);
    }

    // ----------------------------------------------------------------------------------
    // Expressions

    fn expect_bool(&mut self, e: Expr) -> Expr {
        if e.ty == Ty::Bool || e.ty == Ty::Error {
            return e;
        }
        let name = self.cx.program.ty_name(&e.ty);
        let mut d = Diagnostic::error(E0209, self.file, e.loc.span, format!("conditions are bools, not `{name}`"))
            .with_label("not a bool");
        if e.ty.is_int_like() {
            d = d.with_help("compare explicitly, for example `x != 0`");
        }
        self.err(d)
    }

    /// Converts `e` to `target` where no value can change, or reports a mismatch.
    pub(crate) fn coerce(&mut self, e: Expr, target: &Ty) -> Expr {
        if &e.ty == target || e.ty == Ty::Error || *target == Ty::Error {
            return e;
        }
        match (&e.ty, target) {
            (Ty::Int(from), Ty::Int(to)) => {
                if let ExprKind::Const(v) = e.kind {
                    if to.contains(v) {
                        return Expr { kind: ExprKind::Const(v), ty: target.clone(), loc: e.loc };
                    }
                    return self.err(
                        Diagnostic::error(E0218, self.file, e.loc.span, format!("{v} does not fit in `{to}`"))
                            .with_label(format!("`{to}` holds {}..={}", to.min(), to.max())),
                    );
                }
                if from.signed == to.signed && from.bits <= to.bits {
                    let loc = e.loc;
                    return Expr { kind: ExprKind::Cast(Box::new(e)), ty: target.clone(), loc };
                }
                let (f, t) = (*from, *to);
                let why = if f.signed != t.signed { "signedness differs" } else { "it would narrow" };
                self.err(
                    Diagnostic::error(E0204, self.file, e.loc.span, format!("expected `{t}`, found `{f}`"))
                        .with_label(format!("`{f}` value"))
                        .with_note(format!("SCL converts integers implicitly only when no value can change; here {why}"))
                        .with_help(format!("convert explicitly with `as {t}`")),
                )
            }
            _ => {
                let (f, t) = (self.cx.program.ty_name(&e.ty), self.cx.program.ty_name(target));
                self.err(
                    Diagnostic::error(E0204, self.file, e.loc.span, format!("expected `{t}`, found `{f}`"))
                        .with_label(format!("`{f}` value")),
                )
            }
        }
    }

    /// Checks an expression; `expected` guides the type of literals.
    pub(crate) fn expr(&mut self, e: &ast::Expr, expected: Option<&Ty>) -> Expr {
        let l = self.loc(e.span);
        match &e.kind {
            ast::ExprKind::Int { value, .. } => {
                let ty = match expected {
                    Some(t @ Ty::Int(_)) => t.clone(),
                    _ => Ty::U64,
                };
                let v = i128::from(*value);
                if let Ty::Int(i) = ty {
                    if !i.contains(v) {
                        return self.err(
                            Diagnostic::error(E0218, self.file, e.span, format!("{v} does not fit in `{i}`"))
                                .with_label(format!("`{i}` holds {}..={}", i.min(), i.max())),
                        );
                    }
                }
                Expr { kind: ExprKind::Const(v), ty, loc: l }
            }
            ast::ExprKind::Bool(b) => Expr { kind: ExprKind::Const(i128::from(*b)), ty: Ty::Bool, loc: l },
            ast::ExprKind::Path(p) => self.path_expr(p, e, expected),
            ast::ExprKind::Field(..) | ast::ExprKind::Index(..) => {
                if self.is_const() {
                    return self.not_const(e.span);
                }
                if let ast::ExprKind::Field(base, f) = &e.kind {
                    if let Some(map) = self.map_state(base) {
                        let name = self.cx.program.states[map].name.clone();
                        return self.err(
                            Diagnostic::error(E0205, self.file, f.span, format!("map `{name}` has no field `{}`", f.name))
                                .with_label("maps have methods, not fields")
                                .with_help(format!("call a method: `{name}.get(key)`")),
                        );
                    }
                }
                match self.place(e, false) {
                    Some(p) => {
                        let ty = p.ty.clone();
                        Expr { kind: ExprKind::Read(p), ty, loc: l }
                    }
                    None => Expr { kind: ExprKind::Error, ty: Ty::Error, loc: l },
                }
            }
            ast::ExprKind::Unary(op, inner) => self.unary(*op, inner, e, expected),
            ast::ExprKind::Binary(op, a, b) => self.binary(*op, a, b, e, expected),
            ast::ExprKind::Cast(inner, ty_name) => {
                let inner_e = self.expr(inner, None);
                let Some(to) = IntTy::from_name(&ty_name.name) else {
                    let d = if ty_name.name == "bool" {
                        Diagnostic::error(E0213, self.file, ty_name.span, "`as` cannot convert to `bool`")
                            .with_label("not an integer type")
                            .with_help("compare instead: `x != 0`")
                    } else {
                        Diagnostic::error(E0213, self.file, ty_name.span, format!("`as` converts to integer types, not `{}`", ty_name.name))
                            .with_label("not an integer type")
                    };
                    return self.err(d);
                };
                match (&inner_e.ty, inner_e.kind) {
                    (Ty::Int(_) | Ty::Bool, ExprKind::Const(v)) => {
                        Expr { kind: ExprKind::Const(wrap(v, to)), ty: Ty::Int(to), loc: l }
                    }
                    (Ty::Int(_) | Ty::Bool, kind) => {
                        let inner_e = Expr { kind, ty: inner_e.ty, loc: inner_e.loc };
                        Expr { kind: ExprKind::Cast(Box::new(inner_e)), ty: Ty::Int(to), loc: l }
                    }
                    (Ty::Error, _) => Expr { kind: ExprKind::Error, ty: Ty::Error, loc: l },
                    (other, _) => {
                        let name = self.cx.program.ty_name(other);
                        self.err(
                            Diagnostic::error(E0213, self.file, inner.span, format!("cannot convert `{name}` with `as`"))
                                .with_label("not an integer or bool"),
                        )
                    }
                }
            }
            ast::ExprKind::Call(callee, args) => {
                if self.is_const() {
                    return self.not_const(e.span);
                }
                self.call(callee, args, e)
            }
            ast::ExprKind::Struct(path, fields) => {
                if self.is_const() {
                    return self.not_const(e.span);
                }
                self.struct_lit(path, fields, e)
            }
            ast::ExprKind::Error => Expr { kind: ExprKind::Error, ty: Ty::Error, loc: l },
        }
    }

    fn not_const(&mut self, span: Span) -> Expr {
        self.err(
            Diagnostic::error(E0210, self.file, span, "this must be known at compile time")
                .with_label("computed at run time")
                .with_note("constant expressions may use literals, constants and operators, but not state, locals or calls"),
        )
    }

    fn path_expr(&mut self, p: &ast::Path, e: &ast::Expr, expected: Option<&Ty>) -> Expr {
        let l = self.loc(e.span);
        if p.is_simple() && !self.is_const() {
            if let Some(local) = self.lookup_local(&p.name.name) {
                self.record_local(p.name.span, local);
                let ty = self.locals[local].ty.clone();
                return Expr { kind: ExprKind::Read(Place { base: PlaceBase::Local(local), projections: Vec::new(), ty: ty.clone(), loc: l }), ty, loc: l };
            }
        }
        match self.resolve_value(p) {
            Some(Value::Const(usize::MAX)) => Expr { kind: ExprKind::Error, ty: Ty::Error, loc: l },
            Some(Value::Const(index)) => {
                let module = match &p.module {
                    None => self.module,
                    Some(m) => self.cx.modules[self.module].imports[&m.name],
                };
                self.const_value(module, index, e.span, expected)
            }
            Some(Value::Func(_)) => self.err(
                Diagnostic::error(E0209, self.file, e.span, format!("function `{p}` is not a value"))
                    .with_label("a function")
                    .with_help(format!("call it: `{p}(...)`")),
            ),
            Some(Value::State(_)) if self.is_const() => self.not_const(e.span),
            Some(Value::State(_)) => match self.place(e, false) {
                Some(place) => {
                    let ty = place.ty.clone();
                    Expr { kind: ExprKind::Read(place), ty, loc: l }
                }
                None => Expr { kind: ExprKind::Error, ty: Ty::Error, loc: l },
            },
            None => {
                if p.is_simple() && cat::builtin(&p.name.name).is_some() {
                    return self.err(
                        Diagnostic::error(E0209, self.file, e.span, format!("built-in `{}` is not a value", p.name.name))
                            .with_help(format!("call it: `{}()`", p.name.name)),
                    );
                }
                self.unknown_name(p);
                Expr { kind: ExprKind::Error, ty: Ty::Error, loc: l }
            }
        }
    }

    /// The folded value of the constant item `index` of module `module`.
    fn const_value(&mut self, module: usize, index: usize, span: Span, expected: Option<&Ty>) -> Expr {
        let l = self.loc(span);
        let ast::ItemKind::Const(c) = &self.cx.modules[module].ast.items[index].kind else {
            return Expr { kind: ExprKind::Error, ty: Ty::Error, loc: l };
        };
        let c = c.clone();
        if let Some(cached) = self.cx.consts.get(&(module, index)) {
            return match cached {
                Some((v, ty)) => Expr { kind: ExprKind::Const(*v), ty: ty.clone(), loc: l },
                None => Expr { kind: ExprKind::Error, ty: Ty::Error, loc: l },
            };
        }
        let key = module * 1_000_000 + index;
        if self.const_stack.contains(&key) {
            return self.err(
                Diagnostic::error(E0210, self.file, span, format!("constant `{}` depends on itself", c.name.name))
                    .with_label("used in its own definition"),
            );
        }
        let ty = resolve_type(self.cx, module, &c.ty);
        if !(ty.is_scalar() || ty == Ty::Error) {
            let name = self.cx.program.ty_name(&ty);
            let file = self.cx.modules[module].file;
            self.cx.report(Diagnostic::error(E0216, file, c.ty.span, format!("constants are integers or bools, not `{name}`")));
            return Expr { kind: ExprKind::Error, ty: Ty::Error, loc: l };
        }
        let mut inner = BodyCx::new(self.cx, module, BodyKind::Const);
        inner.const_stack = self.const_stack.clone();
        inner.const_stack.push(key);
        let v = inner.expr(&c.value, Some(&ty));
        let v = inner.coerce(v, &ty);
        let _ = expected;
        let result = match v.kind {
            ExprKind::Const(x) => Some((x, ty.clone())),
            ExprKind::Error => None,
            _ => {
                let file = self.cx.modules[module].file;
                self.cx.report(
                    Diagnostic::error(E0210, file, c.value.span, format!("constant `{}` must be known at compile time", c.name.name))
                        .with_label("computed at run time")
                        .with_note("constants may use literals, other constants and operators, but not state, locals or calls")
                        .with_help("use `config` for a value set at load time, or `global` state for one that changes"),
                );
                None
            }
        };
        self.cx.consts.insert((module, index), result.clone());
        match result {
            Some((v, ty)) => Expr { kind: ExprKind::Const(v), ty, loc: l },
            None => Expr { kind: ExprKind::Error, ty: Ty::Error, loc: l },
        }
    }

    fn unary(&mut self, op: UnOp, inner: &ast::Expr, e: &ast::Expr, expected: Option<&Ty>) -> Expr {
        let l = self.loc(e.span);
        match op {
            UnOp::Not => {
                let x = self.expr(inner, Some(&Ty::Bool));
                let x = self.expect_bool(x);
                if let ExprKind::Const(v) = x.kind {
                    return Expr { kind: ExprKind::Const(1 - v), ty: Ty::Bool, loc: l };
                }
                Expr { kind: ExprKind::Unary(op, Box::new(x)), ty: Ty::Bool, loc: l }
            }
            UnOp::Neg | UnOp::BitNot => {
                // A literal operand of `-` is folded at the expected type, so `-128` fits `i8`.
                let x = if op == UnOp::Neg && matches!(inner.kind, ast::ExprKind::Int { .. }) {
                    let ty = match expected {
                        Some(t @ Ty::Int(i)) if i.signed => t.clone(),
                        _ => Ty::Int(IntTy { signed: true, bits: 64 }),
                    };
                    let ast::ExprKind::Int { value, .. } = inner.kind else { unreachable!() };
                    let v = -i128::from(value);
                    let Ty::Int(i) = ty else { unreachable!() };
                    if !i.contains(v) {
                        return self.err(
                            Diagnostic::error(E0218, self.file, e.span, format!("{v} does not fit in `{i}`"))
                                .with_label(format!("`{i}` holds {}..={}", i.min(), i.max())),
                        );
                    }
                    return Expr { kind: ExprKind::Const(v), ty, loc: l };
                } else {
                    self.expr(inner, expected)
                };
                match &x.ty {
                    Ty::Int(i) => {
                        if op == UnOp::Neg && !i.signed {
                            let i = *i;
                            return self.err(
                                Diagnostic::error(E0209, self.file, e.span, format!("cannot negate an unsigned `{i}`"))
                                    .with_label("unsigned")
                                    .with_help("convert to a signed type first, or subtract from a larger value"),
                            );
                        }
                        let i = *i;
                        if let ExprKind::Const(v) = x.kind {
                            let r = if op == UnOp::Neg { -v } else { !v };
                            return Expr { kind: ExprKind::Const(wrap(r, i)), ty: x.ty, loc: l };
                        }
                        let ty = x.ty.clone();
                        Expr { kind: ExprKind::Unary(op, Box::new(x)), ty, loc: l }
                    }
                    Ty::Error => x,
                    other => {
                        let name = self.cx.program.ty_name(other);
                        self.err(
                            Diagnostic::error(E0209, self.file, e.span, format!("`{}` takes an integer, not `{name}`", op.symbol()))
                                .with_label("not an integer")
                                .with_help(if op == UnOp::BitNot && *other == Ty::Bool { "use `!` for bools" } else { "" }),
                        )
                    }
                }
            }
        }
    }

    fn binary(&mut self, op: BinOp, a: &ast::Expr, b: &ast::Expr, e: &ast::Expr, expected: Option<&Ty>) -> Expr {
        let l = self.loc(e.span);
        if matches!(op, BinOp::And | BinOp::Or) {
            let x = self.expr(a, Some(&Ty::Bool));
            let x = self.expect_bool(x);
            let y = self.expr(b, Some(&Ty::Bool));
            let y = self.expect_bool(y);
            if let (ExprKind::Const(p), ExprKind::Const(q)) = (&x.kind, &y.kind) {
                let v = if op == BinOp::And { p & q } else { p | q };
                return Expr { kind: ExprKind::Const(v), ty: Ty::Bool, loc: l };
            }
            return Expr { kind: ExprKind::Binary(op, Box::new(x), Box::new(y)), ty: Ty::Bool, loc: l };
        }
        let literal = |x: &ast::Expr| matches!(x.kind, ast::ExprKind::Int { .. });
        let arith_expected = if op.is_comparison() { None } else { expected.filter(|t| t.is_int_like()) };
        // Check the typed side first, so a literal on either side takes its type.
        let (x, y) = if literal(a) && !literal(b) {
            let y = self.expr(b, arith_expected);
            let x = self.expr(a, Some(&y.ty.clone()));
            (x, y)
        } else {
            let x = self.expr(a, arith_expected);
            let hint = if matches!(op, BinOp::Shl | BinOp::Shr) { None } else { Some(x.ty.clone()) };
            let y = self.expr(b, hint.as_ref());
            (x, y)
        };
        if x.ty == Ty::Error || y.ty == Ty::Error {
            return Expr { kind: ExprKind::Error, ty: Ty::Error, loc: l };
        }
        if matches!(op, BinOp::Eq | BinOp::Ne) && x.ty == Ty::Bool && y.ty == Ty::Bool {
            return self.fold(op, x, y, Ty::Bool, Ty::Bool, l);
        }
        let (Some(xi), Some(yi)) = (x.ty.as_int(), y.ty.as_int()) else {
            let (tx, ty_) = (self.cx.program.ty_name(&x.ty), self.cx.program.ty_name(&y.ty));
            let what = if op.is_comparison() && !matches!(op, BinOp::Eq | BinOp::Ne) { "integers" } else if op.is_comparison() { "two integers or two bools" } else { "integers" };
            return self.err(
                Diagnostic::error(E0209, self.file, e.span, format!("`{}` takes {what}, not `{tx}` and `{ty_}`", op.symbol()))
                    .with_label("invalid operands")
                    .with_help(if x.ty == Ty::Bool || y.ty == Ty::Bool { "combine bools with `&&`, `||` and `!`" } else { "" }),
            );
        };
        if matches!(op, BinOp::Shl | BinOp::Shr) {
            if let ExprKind::Const(s) = y.kind {
                if s < 0 || s >= i128::from(xi.bits) {
                    return self.err(
                        Diagnostic::error(E0218, self.file, b.span, format!("shift by {s} is out of range for `{xi}`"))
                            .with_label(format!("shifts of `{xi}` take 0..{}", xi.bits)),
                    );
                }
            }
            let ty = x.ty.clone();
            return self.fold(op, x, y, ty.clone(), ty, l);
        }
        // A common type: the wider of two integers of the same signedness.
        let common = if xi == yi {
            x.ty.clone()
        } else if let ExprKind::Const(v) = x.kind.clone_const() {
            if yi.contains(v) { y.ty.clone() } else { x.ty.clone() }
        } else if let ExprKind::Const(v) = y.kind.clone_const() {
            if xi.contains(v) { x.ty.clone() } else { y.ty.clone() }
        } else if xi.signed == yi.signed {
            Ty::Int(if xi.bits >= yi.bits { xi } else { yi })
        } else {
            return self.err(
                Diagnostic::error(E0204, self.file, e.span, format!("`{}` mixes `{xi}` and `{yi}`", op.symbol()))
                    .with_label("signed and unsigned operands")
                    .with_secondary(self.file, a.span, format!("`{xi}`"))
                    .with_secondary(self.file, b.span, format!("`{yi}`"))
                    .with_note("SCL does not mix signed and unsigned integers implicitly")
                    .with_help("convert one side with `as`"),
            );
        };
        let x = self.coerce(x, &common);
        let y = self.coerce(y, &common);
        if matches!(op, BinOp::Div | BinOp::Rem) {
            if let ExprKind::Const(0) = y.kind {
                crate::rules::cost::report_div_zero(self.cx, self.file, b.span, op);
                return Expr { kind: ExprKind::Error, ty: Ty::Error, loc: l };
            }
        }
        let result = if op.is_comparison() { Ty::Bool } else { common.clone() };
        self.fold(op, x, y, common, result, l)
    }

    /// Builds `x op y`, folding it when both sides are constants.
    fn fold(&mut self, op: BinOp, x: Expr, y: Expr, operand: Ty, result: Ty, l: Loc) -> Expr {
        if let (ExprKind::Const(p), ExprKind::Const(q)) = (&x.kind, &y.kind) {
            let (p, q) = (*p, *q);
            let int = operand.as_int().unwrap_or(IntTy::U64);
            let v = match op {
                BinOp::Add => Some(wrap(p + q, int)),
                BinOp::Sub => Some(wrap(p - q, int)),
                BinOp::Mul => Some(wrap(p.wrapping_mul(q), int)),
                BinOp::Div => (q != 0).then(|| wrap(p / q, int)),
                BinOp::Rem => (q != 0).then(|| wrap(p % q, int)),
                BinOp::BitAnd => Some(wrap(p & q, int)),
                BinOp::BitOr => Some(wrap(p | q, int)),
                BinOp::BitXor => Some(wrap(p ^ q, int)),
                BinOp::Shl => Some(wrap(p << (q & 127), int)),
                BinOp::Shr => Some(wrap(if int.signed { p >> q } else { (p & int.max()) >> q }, int)),
                BinOp::Eq => Some(i128::from(p == q)),
                BinOp::Ne => Some(i128::from(p != q)),
                BinOp::Lt => Some(i128::from(p < q)),
                BinOp::Le => Some(i128::from(p <= q)),
                BinOp::Gt => Some(i128::from(p > q)),
                BinOp::Ge => Some(i128::from(p >= q)),
                BinOp::And | BinOp::Or => None,
            };
            if let Some(v) = v {
                return Expr { kind: ExprKind::Const(v), ty: result, loc: l };
            }
        }
        Expr { kind: ExprKind::Binary(op, Box::new(x), Box::new(y)), ty: result, loc: l }
    }

    fn call(&mut self, callee: &ast::Expr, args: &[ast::Expr], e: &ast::Expr) -> Expr {
        let l = self.loc(e.span);
        match &callee.kind {
            ast::ExprKind::Field(base, method) => {
                if let Some(map) = self.map_state(base) {
                    return self.method_call(map, method, args, e);
                }
                let _ = self.expr(base, None);
                self.err(
                    Diagnostic::error(E0205, self.file, method.span, format!("no method `{}` here", method.name))
                        .with_label("only maps have methods"),
                )
            }
            ast::ExprKind::Path(p) => {
                if p.is_simple() && self.lookup_local(&p.name.name).is_some() {
                    return self.err(
                        Diagnostic::error(E0209, self.file, callee.span, format!("`{}` is a variable, not a function", p.name.name))
                            .with_label("not callable"),
                    );
                }
                match self.resolve_value(p) {
                    Some(Value::Func(f)) => self.user_call(f, args, e),
                    Some(Value::Const(usize::MAX)) => Expr { kind: ExprKind::Error, ty: Ty::Error, loc: l },
                    Some(_) => self.err(
                        Diagnostic::error(E0209, self.file, callee.span, format!("`{p}` is not a function"))
                            .with_label("not callable"),
                    ),
                    None if p.is_simple() => match cat::builtin(&p.name.name) {
                        Some(def) => {
                            self.record(p.name.span, RefTarget::Builtin(def.name));
                            self.builtin_call(def, args, e)
                        }
                        None => {
                            let mut names: Vec<String> = self
                                .cx
                                .modules[self.module]
                                .values
                                .iter()
                                .filter(|(_, v)| matches!(v, Value::Func(_)))
                                .map(|(k, _)| k.clone())
                                .collect();
                            names.extend(cat::BUILTINS.iter().map(|b| b.name.to_string()));
                            let mut d = Diagnostic::error(E0201, self.file, callee.span, format!("cannot find function `{p}`"))
                                .with_label("not declared");
                            if let Some(s) = did_you_mean(&p.name.name, names.iter().map(String::as_str)) {
                                d = d.with_help(format!("did you mean `{s}`?"));
                            }
                            for a in args {
                                let _ = self.expr(a, None);
                            }
                            self.err(d)
                        }
                    },
                    None => {
                        self.unknown_name(p);
                        Expr { kind: ExprKind::Error, ty: Ty::Error, loc: l }
                    }
                }
            }
            _ => self.err(
                Diagnostic::error(E0209, self.file, callee.span, "this is not a function").with_label("not callable"),
            ),
        }
    }

    fn arity(&mut self, want: usize, got: usize, name: &str, e: &ast::Expr) -> bool {
        if want == got {
            return true;
        }
        self.cx.report(
            Diagnostic::error(E0206, self.file, e.span, format!("`{name}` takes {want} argument{}, {got} given", if want == 1 { "" } else { "s" }))
                .with_label(format!("{got} argument{}", if got == 1 { "" } else { "s" })),
        );
        false
    }

    fn user_call(&mut self, f: FuncId, args: &[ast::Expr], e: &ast::Expr) -> Expr {
        let l = self.loc(e.span);
        let Some(sig) = self.sigs.and_then(|s| s.get(&f)).cloned() else {
            return Expr { kind: ExprKind::Error, ty: Ty::Error, loc: l };
        };
        let name = self.cx.program.funcs[f].name.clone();
        if !self.arity(sig.params.len(), args.len(), &name, e) {
            return Expr { kind: ExprKind::Error, ty: sig.ret.clone(), loc: l };
        }
        let mut out = Vec::new();
        let mut roots = Vec::new();
        for (a, (pname, pty, inout, _)) in args.iter().zip(&sig.params) {
            if *inout {
                match self.place(a, true) {
                    Some(p) => {
                        if p.ty != *pty && p.ty != Ty::Error && *pty != Ty::Error {
                            let (want, got) = (self.cx.program.ty_name(pty), self.cx.program.ty_name(&p.ty));
                            self.cx.report(
                                Diagnostic::error(E0204, self.file, a.span, format!("`inout {pname}` needs a `{want}`, found `{got}`"))
                                    .with_label("wrong type")
                                    .with_note("an `inout` argument is passed by reference, so its type must match exactly"),
                            );
                        }
                        roots.push(self.arg_root(&p));
                        out.push(Arg::Place(p));
                    }
                    None => {
                        if !matches!(a.kind, ast::ExprKind::Path(_) | ast::ExprKind::Field(..) | ast::ExprKind::Index(..)) {
                            let _ = self.expr(a, None);
                            self.cx.report(
                                Diagnostic::error(E0217, self.file, a.span, format!("`inout {pname}` needs a place"))
                                    .with_label("a value, not a place")
                                    .with_help("pass a local, a piece of state, or a field or element of one"),
                            );
                        }
                        roots.push(ArgRoot::Other);
                    }
                }
            } else {
                let v = self.expr(a, Some(pty));
                let v = self.coerce(v, pty);
                roots.push(ArgRoot::Other);
                out.push(Arg::Value(v));
            }
        }
        self.facts.calls.push((f, l, roots));
        Expr { kind: ExprKind::Call(f, out), ty: sig.ret, loc: l }
    }

    fn builtin_call(&mut self, def: &'static cat::BuiltinDef, args: &[ast::Expr], e: &ast::Expr) -> Expr {
        let l = self.loc(e.span);
        if def.may_sleep {
            self.facts.sleeps.push((l, def.name));
        }
        if !self.arity(def.params.len(), args.len(), def.name, e) {
            return Expr { kind: ExprKind::Error, ty: Ty::Error, loc: l };
        }
        // The generic `T`: from the first typed integer argument (places first).
        let mut t: Option<Ty> = None;
        let mut out = Vec::new();
        for (a, (pname, pty)) in args.iter().zip(def.params) {
            match pty {
                cat::BuiltinTy::IntPlace => match self.place(a, true) {
                    Some(p) => {
                        self.write_effect(&p, a.span);
                        if !p.ty.is_int_like() {
                            let name = self.cx.program.ty_name(&p.ty);
                            self.cx.report(
                                Diagnostic::error(E0204, self.file, a.span, format!("`{}` works on integers, not `{name}`", def.name))
                                    .with_label("not an integer"),
                            );
                        } else if p.ty != Ty::Error {
                            t = Some(p.ty.clone());
                        }
                        out.push(Arg::Place(p));
                    }
                    None => {
                        if !matches!(a.kind, ast::ExprKind::Path(_) | ast::ExprKind::Field(..) | ast::ExprKind::Index(..)) {
                            let _ = self.expr(a, None);
                            self.cx.report(
                                Diagnostic::error(E0217, self.file, a.span, format!("`{}` needs a place to update", def.name))
                                    .with_label("a value, not a place")
                                    .with_help(format!("pass the state itself: `{}(counter, 1)`", def.name)),
                            );
                        }
                        t = Some(Ty::Error);
                    }
                },
                cat::BuiltinTy::Int => {
                    let v = self.expr(a, t.as_ref());
                    let v = match &t {
                        Some(tt) => self.coerce(v, tt),
                        None => {
                            if !v.ty.is_int_like() {
                                let name = self.cx.program.ty_name(&v.ty);
                                self.cx.report(
                                    Diagnostic::error(E0204, self.file, a.span, format!("`{pname}` of `{}` is an integer, not `{name}`", def.name))
                                        .with_label("not an integer"),
                                );
                            }
                            t = Some(v.ty.clone());
                            v
                        }
                    };
                    out.push(Arg::Value(v));
                }
                cat::BuiltinTy::Scalar(s) => {
                    let want = scalar(*s);
                    let v = self.expr(a, Some(&want));
                    let v = self.coerce(v, &want);
                    out.push(Arg::Value(v));
                }
                cat::BuiltinTy::Void => {}
            }
        }
        // `min`/`max` of two constants fold; a literal-only `min` takes the other's type.
        let ret = match def.ret {
            cat::BuiltinTy::Scalar(s) => scalar(s),
            cat::BuiltinTy::Int => t.clone().unwrap_or(Ty::U64),
            cat::BuiltinTy::IntPlace | cat::BuiltinTy::Void => Ty::Void,
        };
        if matches!(def.name, "min" | "max") {
            if let [Arg::Value(a), Arg::Value(b)] = &out[..] {
                if let (ExprKind::Const(x), ExprKind::Const(y)) = (&a.kind, &b.kind) {
                    let v = if def.name == "min" { (*x).min(*y) } else { (*x).max(*y) };
                    return Expr { kind: ExprKind::Const(v), ty: ret, loc: l };
                }
            }
        }
        crate::rules::cost::check_wait_bound(self.cx, self.file, def, &out, l);
        Expr { kind: ExprKind::Builtin(def, out), ty: ret, loc: l }
    }

    fn method_call(&mut self, map: StateId, method: &ast::Ident, args: &[ast::Expr], e: &ast::Expr) -> Expr {
        let l = self.loc(e.span);
        if let Some(def) = cat::method(&method.name) {
            self.record(method.span, RefTarget::Method(def.name));
        }
        self.use_state(map);
        let StateStorage::Map { kind, key } = self.cx.program.states[map].storage.clone() else {
            return Expr { kind: ExprKind::Error, ty: Ty::Error, loc: l };
        };
        let map_name = self.cx.program.states[map].name.clone();
        let kind_name = cat::MAP_KINDS.iter().find(|d| d.kind == kind).map_or("map", |d| d.name);
        let Some(def) = cat::method(&method.name) else {
            let mut d = Diagnostic::error(E0205, self.file, method.span, format!("maps have no method `{}`", method.name))
                .with_label("unknown method");
            if let Some(s) = did_you_mean(&method.name, cat::METHODS.iter().map(|m| m.name)) {
                d = d.with_help(format!("did you mean `{s}`?"));
            }
            return self.err(d);
        };
        if !def.kinds.contains(&kind) {
            return self.err(
                Diagnostic::error(E0205, self.file, method.span, format!("`{kind_name}` maps have no method `{}`", def.name))
                    .with_label(format!("`{map_name}` is a `{kind_name}`"))
                    .with_note(def.doc),
            );
        }
        if def.ret == MethodTy::OptValue {
            for a in args {
                let _ = self.expr(a, None);
            }
            return self.err(
                Diagnostic::error(E0340, self.file, e.span, format!("`{map_name}.get(...)` may find nothing"))
                    .with_label("an optional value, not handled")
                    .with_note("a map lookup can miss; BPF programs must check for that before using the value")
                    .with_help(format!("write `if let v = {map_name}.get(key) {{ ... }}`, or `{map_name}.get_or(key, default)`")),
            );
        }
        if !self.arity(def.params.len(), args.len(), def.name, e) {
            return Expr { kind: ExprKind::Error, ty: Ty::Error, loc: l };
        }
        if def.writes_state {
            self.facts.state_writes.push(l);
        }
        let value_ty = self.cx.program.states[map].ty.clone();
        let mut out = Vec::new();
        for (a, (_, pty)) in args.iter().zip(def.params) {
            let want = match pty {
                MethodTy::Key => key.clone().unwrap_or(Ty::Error),
                MethodTy::Value | MethodTy::OptValue => value_ty.clone(),
                MethodTy::Void => Ty::Void,
            };
            let v = self.expr(a, Some(&want));
            out.push(self.coerce(v, &want));
        }
        let ret = match def.ret {
            MethodTy::Value => value_ty,
            _ => Ty::Void,
        };
        if !(ret.is_scalar() || ret == Ty::Void || ret == Ty::Error) {
            let name = self.cx.program.ty_name(&ret);
            return self.err(
                Diagnostic::error(E0216, self.file, e.span, format!("`{}` returns a `{name}`, which is not a scalar", def.name))
                    .with_label("struct values are read in place")
                    .with_help(format!("write `if let v = {map_name}.get(key) {{ ... }}` and read `v`'s fields")),
            );
        }
        Expr { kind: ExprKind::Method(map, def, out), ty: ret, loc: l }
    }

    fn struct_lit(&mut self, path: &ast::Path, fields: &[ast::FieldInit], e: &ast::Expr) -> Expr {
        let l = self.loc(e.span);
        let ty = resolve_type(self.cx, self.module, &ast::Type { kind: ast::TypeKind::Named(path.clone()), span: path.span });
        let Ty::Struct(s) = ty else {
            if ty != Ty::Error {
                let name = self.cx.program.ty_name(&ty);
                self.cx.report(Diagnostic::error(E0214, self.file, path.span, format!("`{name}` is not a struct")));
            }
            return Expr { kind: ExprKind::Error, ty: Ty::Error, loc: l };
        };
        let decl: Vec<(String, Ty)> = self.cx.program.structs[s].fields.iter().map(|f| (f.name.clone(), f.ty.clone())).collect();
        let sname = self.cx.program.structs[s].name.clone();
        let mut values: Vec<Option<Expr>> = decl.iter().map(|_| None).collect();
        let mut ok = true;
        for fi in fields {
            match decl.iter().position(|(n, _)| *n == fi.name.name) {
                Some(i) if values[i].is_some() => {
                    ok = false;
                    self.cx.report(
                        Diagnostic::error(E0214, self.file, fi.name.span, format!("field `{}` is given twice", fi.name.name))
                            .with_label("again"),
                    );
                }
                Some(i) => {
                    let v = self.expr(&fi.value, Some(&decl[i].1));
                    let v = self.coerce_init(v, &decl[i].1);
                    values[i] = Some(v);
                }
                None => {
                    ok = false;
                    self.unknown_field(&fi.name, &sname, decl.iter().map(|(n, _)| n.as_str()));
                    let _ = self.expr(&fi.value, None);
                }
            }
        }
        let missing: Vec<&str> = decl.iter().zip(&values).filter(|(_, v)| v.is_none()).map(|((n, _), _)| n.as_str()).collect();
        if !missing.is_empty() {
            self.cx.report(
                Diagnostic::error(E0214, self.file, path.span, format!("`{sname}` literal is missing {}", missing.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ")))
                    .with_label("incomplete")
                    .with_help("give every field a value; write `0` for the ones that start empty"),
            );
            ok = false;
        }
        if !ok {
            return Expr { kind: ExprKind::Error, ty: Ty::Error, loc: l };
        }
        Expr { kind: ExprKind::Struct(s, values.into_iter().map(|v| v.expect("all given")).collect()), ty: Ty::Struct(s), loc: l }
    }

    /// Struct fields and locals of array or struct type may be initialised with `0`.
    fn coerce_init(&mut self, e: Expr, target: &Ty) -> Expr {
        if matches!(target, Ty::Array(..) | Ty::Struct(_)) && matches!(e.kind, ExprKind::Const(0)) {
            return Expr { kind: ExprKind::Const(0), ty: target.clone(), loc: e.loc };
        }
        self.coerce(e, target)
    }
}

trait CloneConst {
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

fn scalar(s: cat::Scalar) -> Ty {
    match s {
        cat::Scalar::U32 => Ty::U32,
        cat::Scalar::U64 => Ty::U64,
        cat::Scalar::Bool => Ty::Bool,
    }
}
