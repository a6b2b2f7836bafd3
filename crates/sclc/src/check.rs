//! `sclc check FILE...`: parse and check policies, report every problem.

use crate::{source, ColorArg, FormatArg, Status};
use scl_diagnostics::render::Format;
use scl_diagnostics::{Diagnostic, Files, Severity};
use std::path::PathBuf;

/// Arguments of `sclc check`.
#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// Policy files to check.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// How to print diagnostics.
    #[arg(long, value_enum, default_value_t = FormatArg::Human)]
    format: FormatArg,
    /// When to colour diagnostics.
    #[arg(long, value_enum, default_value_t = ColorArg::Auto)]
    color: ColorArg,
    /// Check for one target's hooks; without it, a policy's hooks must share some target.
    #[arg(long, value_enum)]
    target: Option<TargetArg>,
    /// Print each hook's worst-case instruction estimate and stack size.
    #[arg(long)]
    cost: bool,
}

/// The targets of design §3.
#[derive(Clone, Copy, Debug, clap::ValueEnum, PartialEq, Eq)]
pub enum TargetArg {
    /// Any Linux >= 5.19 with BTF: the lock contention tracepoints (observation only).
    Stock,
    /// A kernel with SynCord-style lock-policy hooks.
    Syncord,
    /// The user-space lock simulator.
    Sim,
}

impl TargetArg {
    /// The catalogue's target.
    pub fn target(self) -> scl_catalogue::Target {
        match self {
            TargetArg::Stock => scl_catalogue::Target::Stock,
            TargetArg::Syncord => scl_catalogue::Target::Syncord,
            TargetArg::Sim => scl_catalogue::Target::Sim,
        }
    }
}

/// Runs `sclc check`.
pub fn run(args: CheckArgs) -> Status {
    let format = match args.format {
        FormatArg::Human => Format::Human,
        FormatArg::Short => Format::Short,
        FormatArg::Json => Format::Json,
    };
    let color = args.color.enabled();
    let mut files = Files::new();
    let mut diagnostics: Vec<Diagnostic> = Vec::new();
    let mut unreadable = 0usize;
    let options = scl_sema::Options { target: args.target.map(TargetArg::target) };
    let mut cost_tables = Vec::new();
    for path in &args.files {
        match source::read(path) {
            Ok(text) => {
                let id = files.add(path.display().to_string(), text);
                let mut checked = scl_sema::check_file(&mut files, id, &options);
                diagnostics.append(&mut checked.diagnostics);
                if args.cost {
                    cost_tables.push((path.display().to_string(), checked.costs));
                }
            }
            Err(e) => {
                errln!("sclc: error: cannot read `{}`: {e}", path.display());
                unreadable += 1;
            }
        }
    }
    if !crate::output::diagnostics(&files, &diagnostics, format, color) {
        // stderr is gone: the exit status reports it (`output::exit_code`).
        return Status::Usage;
    }
    for (path, costs) in &cost_tables {
        print_costs(path, costs);
    }
    let errors = diagnostics.iter().filter(|d| d.severity == Severity::Error).count();
    let warnings = diagnostics.len() - errors;
    if format == Format::Human && !diagnostics.is_empty() {
        errln!("{}", summary(errors, warnings, args.files.len() - unreadable));
    }
    if unreadable > 0 {
        Status::Usage
    } else if errors > 0 {
        Status::PolicyErrors
    } else {
        Status::Ok
    }
}

/// `--cost`: one table per file on stdout.
fn print_costs(path: &str, costs: &[scl_sema::rules::cost::HookCost]) {
    if costs.is_empty() {
        outln!("{path}: no cost estimate (no policy, or the policy has errors)");
        return;
    }
    outln!("{path}:");
    outln!("  {:<16} {:>12} {:>8} {:>12}", "hook", "insns (max)", "budget", "stack bytes");
    for c in costs {
        outln!("  {:<16} {:>12} {:>8} {:>12}", c.hook, c.insns, c.budget, c.stack);
    }
}

fn summary(errors: usize, warnings: usize, files: usize) -> String {
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    format!(
        "sclc: {} and {} in {}",
        plural(errors, "error"),
        plural(warnings, "warning"),
        plural(files, "file")
    )
}
