//! `sclc check FILE...`: parse and check policies, report every problem.

use crate::{source, ColorArg, FormatArg, Status};
use scl_diagnostics::render::{self, Format};
use scl_diagnostics::{Diagnostic, Files, Severity};
use std::io::Write;
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
    let mut unreadable = false;
    for path in &args.files {
        match source::read(path) {
            Ok(text) => {
                let id = files.add(path.display().to_string(), text);
                let (_ast, mut diags) = scl_syntax::parse_file(id, &files.get(id).text);
                diagnostics.append(&mut diags);
            }
            Err(e) => {
                eprintln!("sclc: error: cannot read `{}`: {e}", path.display());
                unreadable = true;
            }
        }
    }
    let stderr = std::io::stderr();
    let mut out = stderr.lock();
    if render::emit(&mut out, &files, &diagnostics, format, color).is_err() {
        // stderr is gone (a closed pipe): nowhere left to report to but the exit status.
        return Status::Usage;
    }
    let errors = diagnostics.iter().filter(|d| d.severity == Severity::Error).count();
    let warnings = diagnostics.len() - errors;
    if format == Format::Human && !diagnostics.is_empty() {
        let _ = writeln!(out, "{}", summary(errors, warnings, files.iter().count()));
    }
    if unreadable {
        Status::Usage
    } else if errors > 0 {
        Status::PolicyErrors
    } else {
        Status::Ok
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
