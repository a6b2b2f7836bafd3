//! The pipeline: check, lower, optimise, select instructions, write the object.
//!
//! [`compile`] is the whole compiler in one short function, from a file in [`Files`] to
//! diagnostics and, if there are no errors, a BPF ELF object and the artefacts of each
//! stage (`--emit ir|asm`). It does no I/O itself and makes no syscalls: the CLI reads
//! files and writes outputs; the loader talks to the kernel.

#![deny(missing_docs)]

pub mod gen;

use scl_catalogue::Target;
use scl_diagnostics::{Code, Diagnostic, FileId, Files, Span};
use scl_ir::{Module, Program};
use scl_object::{CType, LineInfo, MapSpec, ObjectSpec, ProgramSpec, Reloc, RodataSpec, SubprogSpec};
use scl_sema::hir;
use scl_sema::ty::Ty;

/// The code of an internal compiler error: the checker accepted something the back end
/// could not compile. Always a bug.
pub const E0900: Code = Code { code: "E0900", name: "internal-compiler-error" };

/// Everything a successful compilation produced.
pub struct Output {
    /// The checked program.
    pub program: hir::Program,
    /// The IR, after optimisation.
    pub module: Module,
    /// Per program, the compiled instructions.
    pub compiled: Vec<scl_bpf::Compiled>,
    /// The BPF ELF object.
    pub object: Vec<u8>,
    /// Warnings.
    pub warnings: Vec<Diagnostic>,
}

/// What a compilation may add to the policy's own code.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The lock events the programs see (stock only): a guard at each hook's entry,
    /// compiled into the bytecode (`scl_ir::lower::EventFilter`; `sclc run`'s filters).
    pub filter: scl_ir::lower::EventFilter,
}

/// Compiles `file` for `target`. On errors, returns every diagnostic (warnings too).
pub fn compile(files: &mut Files, file: FileId, target: Target) -> Result<Output, Vec<Diagnostic>> {
    compile_with(files, file, target, &Options::default())
}

/// [`compile`] with `options`.
pub fn compile_with(files: &mut Files, file: FileId, target: Target, options: &Options) -> Result<Output, Vec<Diagnostic>> {
    let checked = scl_sema::check_file(files, file, &scl_sema::Options { target: Some(target) });
    if checked.has_errors() {
        return Err(checked.diagnostics);
    }
    // A checked program without errors holds no expression the checker gave up on (each
    // such gives a diagnostic); were one left, it would compile to a constant, silently.
    let bodies = checked.program.funcs.values().map(|f| (f.name.as_str(), &f.body)).chain(checked.program.policy.iter().flat_map(|p| p.hooks.iter().map(|h| (h.def.name, &h.body))));
    for (name, body) in bodies {
        if body.block.has_error_expr() {
            return Err(vec![Diagnostic::error(E0900, file, Span::point(0), format!("`{name}` holds an expression the checker could not type, and no error says why"))
                .with_note("the checker accepted this policy but left part of it unchecked: this is a bug in sclc")
                .with_help("please report it with the policy attached")]);
        }
    }
    if let Some(d) = scl_sema::rules::hooks::check_something_to_compile(&checked.program, file, target) {
        let mut all = checked.diagnostics;
        all.push(d);
        return Err(all);
    }
    let internal = |message: String| {
        vec![Diagnostic::error(E0900, file, Span::point(0), message)
            .with_note("the checker accepted this policy but the back end could not compile it: this is a bug in sclc")
            .with_help("please report it with the policy attached")]
    };
    let mut module = scl_ir::lower::lower_filtered(&checked.program, target, &options.filter);
    let mut compiled = Vec::new();
    for p in &mut module.programs {
        scl_ir::opt::fold_constants(&mut p.func);
        scl_ir::opt::narrow_constants(&mut p.func);
        scl_ir::opt::remove_dead_values(&mut p.func);
        scl_ir::opt::thread_jumps(&mut p.func);
        scl_ir::opt::layout_rpo(&mut p.func);
        if let Err(errors) = scl_ir::verify::verify(&p.func) {
            return Err(internal(format!("IR of hook `{}` is invalid: {}", p.name, errors.join("; "))));
        }
        match scl_bpf::compile(&p.func) {
            Ok(c) => compiled.push(c),
            // The checker's stack estimate is approximate; the real frame is known only
            // now. It is the policy's limit, not a compiler bug: report it as E0342.
            Err(scl_bpf::CodegenError::StackTooLarge(n)) => {
                let loc = checked
                    .program
                    .policy
                    .as_ref()
                    .and_then(|pol| pol.hooks.iter().find(|h| h.def.name == p.hook.name))
                    .map_or(scl_sema::hir::Loc { file, span: Span::point(0) }, |h| h.loc);
                return Err(vec![Diagnostic::error(scl_sema::codes::E0342, loc.file, loc.span, format!("hook `{}` needs {n} bytes of stack", p.name))
                    .with_label("over the 512-byte BPF stack")
                    .with_note("the frame holds the hook's locals, those of every function inlined into it, scratch for map keys, values and struct literals, and the zeroed bytes a missing `per_lock` or `per_thread` entry reads as")
                    .with_help("keep large arrays and structs in state (a `per_cpu` variable works as scratch space), or split the work over several hooks")]);
            }
            Err(e) => return Err(internal(format!("hook `{}`: {e}", p.name))),
        }
    }
    let spec = object_spec(files, &checked.program, &module, &compiled, target);
    let object = scl_object::write(&spec).map_err(|e| internal(format!("object: {e}")))?;
    Ok(Output { program: checked.program, module, compiled, object, warnings: checked.diagnostics })
}

/// The C type of an SCL type, for BTF.
pub fn c_type(program: &hir::Program, ty: &Ty) -> CType {
    match ty {
        Ty::Int(i) => CType::Int { name: i.to_string(), bytes: u32::from(i.bits / 8), signed: i.signed },
        Ty::Bool => CType::Int { name: "bool".into(), bytes: 1, signed: false },
        // Its own BTF name, so tools (`sclc run`) know to show it as a stack.
        Ty::KStack => CType::Int { name: "kstack".into(), bytes: 8, signed: true },
        Ty::Struct(s) => {
            let sd = &program.structs[*s];
            CType::Struct {
                name: scl_ir::lower::c_name(&sd.name),
                size: sd.layout.size,
                members: sd.fields.iter().map(|f| (f.name.clone(), c_type(program, &f.ty), f.offset)).collect(),
            }
        }
        Ty::Array(e, n) => CType::Array { elem: Box::new(c_type(program, e)), len: *n },
        Ty::Lock | Ty::Waiter | Ty::Void | Ty::Error => CType::Int { name: "u64".into(), bytes: 8, signed: false },
    }
}

/// Describes the object: maps, `.rodata`, and each program with relocations and lines.
fn object_spec(files: &Files, program: &hir::Program, module: &Module, compiled: &[scl_bpf::Compiled], target: Target) -> ObjectSpec {
    let maps = module
        .maps
        .values()
        .map(|m| {
            let bpf_type = m.kind.bpf_type();
            MapSpec {
                name: m.name.clone(),
                map_type: bpf_type,
                key: m.key.as_ref().map(|k| c_type(program, k)),
                value: m.value.as_ref().map(|v| c_type(program, v)),
                max_entries: m.max_entries,
            }
        })
        .collect();
    let rodata = module
        .rodata
        .iter()
        .map(|v| RodataSpec {
            name: v.name.clone(),
            ty: c_type(program, &v.ty),
            offset: v.offset,
            init: v.default.to_le_bytes()[..v.size as usize].to_vec(),
        })
        .collect();
    let programs = module.programs.iter().zip(compiled).map(|(p, c)| program_spec(files, module, p, c, target)).collect();
    // The built-in callbacks the programs use, in `.text`.
    let mut callbacks: Vec<scl_bpf::Callback> = compiled
        .iter()
        .flat_map(|c| c.relocs.iter())
        .filter_map(|(_, t)| match t {
            scl_bpf::RelocTarget::Callback(cb) => Some(*cb),
            _ => None,
        })
        .collect();
    callbacks.dedup();
    let subprograms = callbacks
        .into_iter()
        .map(|cb| SubprogSpec {
            name: scl_bpf::callback_name(cb).to_string(),
            insns: scl_bpf::callback(cb).iter().map(|i| i.encode()).collect(),
            lines: vec![LineInfo {
                insn: 0,
                file: "<sclc>".into(),
                source: format!("built-in callback {}", scl_bpf::callback_name(cb)),
                line: 1,
                column: 1,
            }],
        })
        .collect();
    ObjectSpec { programs, subprograms, maps, rodata, license: "GPL".into() }
}

fn program_spec(files: &Files, module: &Module, p: &Program, c: &scl_bpf::Compiled, target: Target) -> ProgramSpec {
    let relocs = c
        .relocs
        .iter()
        .map(|(at, t)| match t {
            scl_bpf::RelocTarget::Map(m) => Reloc::Map { insn: *at as u32, map: module.maps[*m].name.clone() },
            scl_bpf::RelocTarget::Rodata(off) => Reloc::Rodata {
                insn: *at as u32,
                var: module.rodata.iter().find(|v| v.offset == *off).map_or_else(String::new, |v| v.name.clone()),
            },
            scl_bpf::RelocTarget::Callback(cb) => Reloc::Subprog { insn: *at as u32, name: scl_bpf::callback_name(*cb).to_string() },
        })
        .collect();
    let lines = c
        .lines
        .iter()
        .map(|(at, loc)| {
            let f = files.get(loc.file);
            let lc = f.line_col(loc.span.start);
            LineInfo {
                insn: *at as u32,
                // BTF strings end at a NUL; one inside a comment becomes U+FFFD.
                file: f.name.replace('\0', "\u{fffd}"),
                source: f.line_text(lc.line as usize - 1).trim().replace('\0', "\u{fffd}"),
                line: lc.line,
                column: lc.column,
            }
        })
        .collect();
    ProgramSpec {
        name: p.name.clone(),
        section: scl_ir::lower::section(p.hook, target),
        insns: c.insns.iter().map(|i| i.encode()).collect(),
        relocs,
        lines,
    }
}

/// `--emit asm`: each program's instructions in the kernel's notation, with the source
/// line each group of instructions comes from.
pub fn asm(files: &Files, out: &Output) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let target = out.program.target.unwrap_or(Target::Syncord);
    for (p, c) in out.module.programs.iter().zip(&out.compiled) {
        let _ = writeln!(
            s,
            "; program {} (hook {}), section {}, {} instructions, {} bytes of stack",
            p.name,
            p.hook.name,
            scl_ir::lower::section(p.hook, target),
            c.insns.len(),
            c.stack_size
        );
        let reloc = |i: usize| {
            c.relocs.iter().find(|(at, _)| *at == i).map(|(_, t)| match t {
                scl_bpf::RelocTarget::Map(m) => format!("map[{}]", out.module.maps[*m].name),
                scl_bpf::RelocTarget::Rodata(off) => format!(".rodata+{off}"),
                scl_bpf::RelocTarget::Callback(cb) => scl_bpf::callback_name(*cb).to_string(),
            })
        };
        let helper = |id: i32| scl_ir::print::helper_name(id as u32);
        let mut lines = c.lines.iter().peekable();
        for (at, text) in scl_bpf::insn::disassemble(&c.insns, &helper, &reloc) {
            while let Some((_, loc)) = lines.next_if(|(l, _)| *l <= at) {
                if loc.span != Span::default() || loc.file != FileId::default() {
                    let f = files.get(loc.file);
                    let lc = f.line_col(loc.span.start);
                    let _ = writeln!(s, "; {} @ {}:{}", f.line_text(lc.line as usize - 1).trim(), f.name, lc.line);
                }
            }
            let _ = writeln!(s, "{at:5}: {text}");
        }
        s.push('\n');
    }
    s
}

/// `--emit btf`: the types, maps, config variables and functions the object's BTF
/// describes, written as C declarations.
pub fn btf_text(out: &Output) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let mut structs: Vec<String> = Vec::new();
    fn collect(t: &CType, out: &mut Vec<String>) {
        match t {
            CType::Struct { name, size, members } => {
                for (_, m, _) in members {
                    collect(m, out);
                }
                let mut body = format!("struct {name} {{ /* {size} bytes */\n");
                for (n, m, off) in members {
                    let _ = writeln!(body, "    {}; /* offset {off} */", decl(m, n));
                }
                body.push_str("};\n");
                if !out.contains(&body) {
                    out.push(body);
                }
            }
            CType::Array { elem, .. } => collect(elem, out),
            CType::Int { .. } => {}
        }
    }
    fn decl(t: &CType, name: &str) -> String {
        match t {
            CType::Int { name: n, .. } => format!("{n} {name}"),
            CType::Struct { name: n, .. } => format!("struct {n} {name}"),
            CType::Array { elem, len } => decl(elem, &format!("{name}[{len}]")),
        }
    }
    let program = &out.program;
    for m in out.module.maps.values() {
        for t in [&m.key, &m.value].into_iter().flatten() {
            collect(&c_type(program, t), &mut structs);
        }
    }
    for v in &out.module.rodata {
        collect(&c_type(program, &v.ty), &mut structs);
    }
    for st in &structs {
        let _ = writeln!(s, "{st}");
    }
    let _ = writeln!(s, "/* maps (section .maps) */");
    for m in out.module.maps.values() {
        let kind = scl_catalogue::MAP_KINDS.iter().find(|d| d.kind == m.kind).map_or("?", |d| d.name);
        let key = m.key.as_ref().map_or("-".to_string(), |k| decl(&c_type(program, k), "key"));
        let value = m.value.as_ref().map_or("-".to_string(), |v| decl(&c_type(program, v), "value"));
        let _ = writeln!(s, "{} : {kind}, max_entries {}, {key}, {value}", m.name, m.max_entries);
    }
    let _ = writeln!(s, "\n/* config (section .rodata) */");
    for v in &out.module.rodata {
        let _ = writeln!(s, "const volatile {} = {}; /* offset {} */", decl(&c_type(program, &v.ty), &v.name), v.default, v.offset);
    }
    let _ = writeln!(s, "\n/* programs */");
    for p in &out.module.programs {
        let _ = writeln!(s, "int {}(void *ctx);", p.name);
    }
    s
}
