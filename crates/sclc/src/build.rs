//! `sclc build FILE`: compile a policy to a BPF object, or show a stage (`--emit`).

use crate::check::TargetArg;
use crate::{source, ColorArg, FormatArg, Status};
use scl_catalogue::Target;
use scl_diagnostics::render::Format;
use scl_diagnostics::{Diagnostic, Files};
use std::io::Write as _;
use std::path::PathBuf;

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
    /// A C header for applications: the maps' key and value types, pin paths, and
    /// functions to open the pinned maps and get, set and delete entries (libbpf).
    CHeader,
    /// The same for Python: a module over ctypes and the system's libbpf.
    Python,
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
    /// Also load the object into the running kernel (needs root), so its verifier checks
    /// every program; a rejection is reported against the `.scl` line it concerns.
    #[arg(long)]
    verify: bool,
}

/// The target a policy builds for when none is given.
pub fn default_target(text: &str) -> Target {
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
            errln!("sclc: error: cannot read `{}`: {e}", args.file.display());
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
        crate::output::diagnostics(files, diags, format, args.color.enabled());
    };
    let out = match scl_driver::compile(&mut files, id, target) {
        Ok(out) => out,
        Err(diags) => {
            report(&files, &diags);
            return Status::PolicyErrors;
        }
    };
    report(&files, &out.warnings);
    if args.verify {
        // Verified as they run: syncord programs in lock context (non-sleepable raw
        // tracepoint programs, which may, say, record stacks), the others as built.
        let opts = scl_loader::Options { lock_context: target == Target::Syncord };
        if let Err(status) = load_or_report("scl_verify", &files, id, &out.object, &[], &report, opts) {
            return status;
        }
    }
    let bytes: Vec<u8> = match args.emit {
        EmitArg::Obj => out.object.clone(),
        EmitArg::Ir => out.module.to_string().into_bytes(),
        EmitArg::Asm => scl_driver::asm(&files, &out).into_bytes(),
        EmitArg::Btf => scl_driver::btf_text(&out).into_bytes(),
        EmitArg::CHeader | EmitArg::Python => {
            let stem = args.file.file_stem().map_or_else(|| "policy".into(), |s| s.to_string_lossy().into_owned());
            let prefix = scl_driver::gen::prefix(&out, &stem);
            let source = args.file.display().to_string();
            if args.emit == EmitArg::CHeader {
                scl_driver::gen::c_header(&out, &prefix, &source).into_bytes()
            } else {
                match scl_driver::gen::python(&out, &prefix, &source) {
                    Ok(text) => text.into_bytes(),
                    Err(e) => {
                        errln!("sclc: error: cannot generate the Python module of `{source}`: {e}");
                        return Status::PolicyErrors;
                    }
                }
            }
        }
    };
    let path = match (&args.output, args.emit) {
        (Some(p), _) => Some(p.clone()),
        (None, EmitArg::Obj) => Some(args.file.with_extension("o")),
        (None, _) => None,
    };
    match path {
        Some(p) => match crate::output::write_file(&p, &bytes, &[&args.file]) {
            Ok(()) => Status::Ok,
            // `-o /dev/stdout` into a pipe whose reader is gone: quiet, as for stdout.
            Err(crate::output::FileError::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                crate::output::record_closed_pipe();
                Status::Ok
            }
            Err(e) => {
                errln!("sclc: error: cannot write `{}`: {e}", p.display());
                if matches!(e, crate::output::FileError::IsInput) {
                    errln!("  help: name another output file with `-o`");
                }
                Status::Usage
            }
        },
        None => {
            // A failure is recorded and decides the exit status (`output::exit_code`).
            let _ = crate::output::stdout().write_all(&bytes);
            Status::Ok
        }
    }
}

/// Loads a compiled policy into the kernel, or says why not: an environment problem (no
/// privilege or BTF, a map this machine cannot create, any step of libbpf or the kernel
/// other than the verifier's judgement) is reported plainly, with the step and the errno,
/// with exit code 2; a verifier rejection is a diagnostic on the `.scl` line it concerns
/// (E0901, exit 1), naming the program and quoting the end of its log.
/// `report` renders diagnostics as the command was asked to; `opts` are the loader's
/// (lock-context programs for the lock-hook module).
pub fn load_or_report(
    name: &str,
    files: &Files,
    id: scl_diagnostics::FileId,
    object: &[u8],
    overrides: &[(usize, Vec<u8>)],
    report: &dyn Fn(&Files, &[Diagnostic]),
    opts: scl_loader::Options,
) -> Result<scl_loader::Loaded, Status> {
    match scl_loader::load_with(name, object, overrides, opts) {
        Ok(l) => Ok(l),
        Err(scl_loader::LoadError::Unsupported(why)) => {
            errln!("sclc: error: cannot load BPF programs here: {why}");
            if why.contains("(os error 1)") {
                // Root without its capabilities (a container, `setpriv`, systemd's
                // CapabilityBoundingSet): the euid check passed, the kernel said EPERM.
                errln!("  note: loading and attaching tracing programs needs CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN); this process lacks them");
            }
            Err(Status::Usage)
        }
        // A limit of this kernel or machine, not a verifier rejection: nothing was loaded.
        Err(e @ scl_loader::LoadError::Map { .. }) => {
            errln!("sclc: error: {e}\n  note: nothing was loaded\n  help: declare the map smaller, or with a smaller key or value");
            Err(Status::Usage)
        }
        // The verifier judged a program and said no: a compiler bug, on the `.scl` line.
        Err(scl_loader::LoadError::Verifier { log, .. }) => {
            report(files, &[verifier_diagnostic(files, id, &log)]);
            Err(Status::PolicyErrors)
        }
        // Any other step: what libbpf and the kernel said, as an environment error (a
        // kernel without a feature sclc needs is not a fault of the policy).
        Err(e) => {
            errln!("sclc: error: {e}");
            errln!("  note: this is not a verifier rejection: libbpf or the kernel failed before any program was judged; nothing was loaded");
            errln!("  help: sclc needs Linux >= 5.19 with BTF (/sys/kernel/btf/vmlinux), `bpf_loop`, `syscall` programs and, for `stock`, the lock tracepoints");
            Err(Status::Usage)
        }
    }
}

/// The code of a program the kernel verifier refused although the checker accepted it.
const E0901: scl_diagnostics::Code = scl_diagnostics::Code { code: "E0901", name: "verifier-rejected" };

/// Turns the kernel verifier's refusal into a diagnostic on the `.scl` line it concerns:
/// the last `; SOURCE @ FILE:LINE` annotation (from our BTF line info) before the error.
pub fn verifier_diagnostic(files: &Files, main: scl_diagnostics::FileId, log: &str) -> Diagnostic {
    let program = log
        .lines()
        .find_map(|l| l.split("prog '").nth(1).and_then(|r| r.split('\'').next()))
        .unwrap_or("?")
        .to_string();
    let mut at = None;
    let mut complaint = None;
    for line in log.lines() {
        let line = line.trim_start_matches("libbpf: ").trim();
        if let Some(rest) = line.strip_prefix("; ") {
            if let Some((_, place)) = rest.rsplit_once(" @ ") {
                if let Some((file, n)) = place.rsplit_once(':') {
                    if let (Some(id), Ok(n)) = (files.find(file), n.trim().parse::<usize>()) {
                        at = Some((id, n));
                    }
                }
            }
        } else if !line.is_empty()
            && !line.starts_with("processed ")
            && !line.starts_with("--")
            && !line.starts_with("verification time")
            && !line.starts_with("stack depth")
            && !line.chars().next().is_some_and(|c| c.is_ascii_digit())
            && !line.starts_with("prog '")
            && !line.contains("failed to load")
            && !line.contains("BPF program load failed")
        {
            complaint = Some(line.to_string());
        }
    }
    let (file, span) = match at {
        Some((id, n)) => {
            let f = files.get(id);
            let start = f.line_starts().get(n.saturating_sub(1)).copied().unwrap_or(0) as usize;
            let text = f.line_text(n.saturating_sub(1));
            let indent = text.len() - text.trim_start().len();
            (id, scl_diagnostics::Span::new(start + indent, start + text.trim_end().len()))
        }
        None => (main, scl_diagnostics::Span::point(0)),
    };
    // The end of the log, where the verifier says what it objected to.
    let tail: Vec<&str> = log
        .lines()
        .map(|l| l.trim_start_matches("libbpf: ").trim_end())
        .filter(|l| !l.is_empty() && !l.contains("-- END PROG LOAD LOG --") && !l.contains("failed to load"))
        .collect();
    let tail = tail[tail.len().saturating_sub(12)..].join("\n");
    Diagnostic::error(E0901, file, span, format!("the kernel verifier rejected hook `{program}`"))
        .with_label(complaint.clone().unwrap_or_else(|| "rejected here".into()))
        .with_note(format!("the verifier's log of `{program}` ends:\n{tail}"))
        .with_note("the checker accepted this policy, so this is a bug in sclc: what sclc accepts must pass the verifier")
        .with_help("please report it with the policy and `sclc build --emit asm` attached")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verifier_log_maps_to_the_scl_line_it_names() {
        let mut files = Files::new();
        let id = files.add("p.scl", "global n: u64;\npolicy p for spinlock {\n    on contended(l: lock) {\n        n += 1;\n    }\n}\n");
        let log = "libbpf: prog 'contended': BPF program load failed: Permission denied\n\
                   libbpf: prog 'contended': -- BEGIN PROG LOAD LOG --\n\
                   0: R1=ctx() R10=fp0\n\
                   ; n += 1; @ p.scl:4\n\
                   5: (79) r1 = *(u64 *)(r0 +0)\n\
                   R0 invalid mem access 'map_value_or_null'\n\
                   processed 6 insns (limit 1000000) max_states_per_insn 0\n\
                   -- END PROG LOAD LOG --\n";
        let d = verifier_diagnostic(&files, id, log);
        assert_eq!(d.code.code, "E0901");
        assert_eq!(d.message, "the kernel verifier rejected hook `contended`");
        assert_eq!(files.get(id).slice(d.primary.span), "n += 1;");
        assert_eq!(d.primary.message, "R0 invalid mem access 'map_value_or_null'");
        assert!(d.notes[0].starts_with("the verifier's log of `contended` ends:") && d.notes[0].contains("5: (79) r1 = *(u64 *)(r0 +0)"), "{:?}", d.notes);
    }
}
