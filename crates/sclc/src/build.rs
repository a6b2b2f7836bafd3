//! `sclc build FILE`: compile a policy to a BPF object, or show a stage (`--emit`).

use crate::check::TargetArg;
use crate::{source, ColorArg, FormatArg, Status};
use scl_catalogue::Target;
use scl_diagnostics::render::{self, Format};
use scl_diagnostics::{Diagnostic, Files};
use std::io::Write;
use std::path::{Path, PathBuf};

/// What `--emit` writes.
#[derive(Clone, Copy, Debug, clap::ValueEnum, PartialEq, Eq)]
pub enum EmitArg {
    /// The BPF ELF object (the default).
    Obj,
    /// A disassembly with the source lines interleaved.
    Asm,
    /// The IR, after optimisation.
    Ir,
    /// The types, maps and config the object's BTF describes.
    Btf,
}

/// Arguments of `sclc build`.
#[derive(clap::Args, Debug)]
pub struct BuildArgs {
    /// The policy to compile.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Where to write the output; default: FILE with `.o` for objects, stdout otherwise.
    #[arg(short, long, value_name = "OUT")]
    output: Option<PathBuf>,
    /// The target; default: `stock` if every hook of the policy runs there, else `syncord`.
    #[arg(long, value_enum)]
    target: Option<TargetArg>,
    /// What to write.
    #[arg(long, value_enum, default_value_t = EmitArg::Obj)]
    emit: EmitArg,
    /// How to print diagnostics.
    #[arg(long, value_enum, default_value_t = FormatArg::Human)]
    format: FormatArg,
    /// When to colour diagnostics.
    #[arg(long, value_enum, default_value_t = ColorArg::Auto)]
    color: ColorArg,
}

/// The target a policy builds for when none is given.
fn default_target(text: &str) -> Target {
    let (ast, _) = scl_syntax::parse_file(scl_diagnostics::FileId(0), text);
    let all_stock = ast.items.iter().all(|i| match &i.kind {
        scl_syntax::ast::ItemKind::Policy(p) => {
            p.hooks.iter().all(|h| scl_catalogue::hook(&h.name.name).is_some_and(|d| d.on_target(Target::Stock)))
        }
        _ => true,
    });
    if all_stock {
        Target::Stock
    } else {
        Target::Syncord
    }
}

/// Runs `sclc build`.
pub fn run(args: BuildArgs) -> Status {
    let text = match source::read(&args.file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("sclc: error: cannot read `{}`: {e}", args.file.display());
            return Status::Usage;
        }
    };
    let target = args.target.map_or_else(|| default_target(&text), TargetArg::target);
    let mut files = Files::new();
    let id = files.add(args.file.display().to_string(), text);
    let format = match args.format {
        FormatArg::Human => Format::Human,
        FormatArg::Short => Format::Short,
        FormatArg::Json => Format::Json,
    };
    let report = |files: &Files, diags: &[Diagnostic]| {
        let _ = render::emit(&mut std::io::stderr().lock(), files, diags, format, args.color.enabled());
    };
    let out = match scl_driver::compile(&mut files, id, target) {
        Ok(out) => out,
        Err(diags) => {
            report(&files, &diags);
            return Status::PolicyErrors;
        }
    };
    report(&files, &out.warnings);
    let bytes: Vec<u8> = match args.emit {
        EmitArg::Obj => out.object.clone(),
        EmitArg::Ir => out.module.to_string().into_bytes(),
        EmitArg::Asm => scl_driver::asm(&files, &out).into_bytes(),
        EmitArg::Btf => scl_driver::btf_text(&out).into_bytes(),
    };
    let path = match (&args.output, args.emit) {
        (Some(p), _) => Some(p.clone()),
        (None, EmitArg::Obj) => Some(args.file.with_extension("o")),
        (None, _) => None,
    };
    match path {
        Some(p) => match write_atomically(&p, &bytes) {
            Ok(()) => Status::Ok,
            Err(e) => {
                eprintln!("sclc: error: cannot write `{}`: {e}", p.display());
                Status::Usage
            }
        },
        None => {
            let _ = std::io::stdout().lock().write_all(&bytes);
            Status::Ok
        }
    }
}

/// Writes `bytes` to a temporary file beside `path`, then renames it: a failed or
/// interrupted build never leaves a partial object behind.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
