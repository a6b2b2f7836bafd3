//! `sclc`, the SCL compiler's command line.
//!
//! This binary owns argument parsing, file reading and process exit codes; the compiler
//! itself lives in the library crates. Exit codes: 0 when the policies are clean (warnings
//! allowed), 1 when a policy has errors, 2 for usage and environment problems (a missing or
//! unreadable file, a bad flag, an unknown code). `sclc lsp` exits 0 after the editor's
//! `shutdown` and `exit`, and 1 when told to exit without a shutdown (as LSP asks). A
//! closed pipe on stdout or stderr ends any command quietly with 141, as for a tool killed
//! by SIGPIPE; any other write failure is 2 (`output`).

#[macro_use]
mod output;

mod build;
mod check;
mod deploy;
mod explain;
mod lsp;
mod record;
mod run;
mod replay;
mod sim;
mod source;

use clap::{Parser, Subcommand, ValueEnum};
use std::process::ExitCode;

/// The SCL compiler: kernel lock policies, checked for safety and compiled to eBPF.
#[derive(Parser, Debug)]
#[command(name = "sclc", version, about, long_about = None, propagate_version = true)]
#[command(after_help = "Exit status: 0 clean, 1 errors in a policy, 2 usage or environment problems,\n\
141 when the output's reader went away (a closed pipe).\n\
Run `sclc explain CODE` for the page of a diagnostic code.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Parse and check policies, and report every problem found.
    Check(check::CheckArgs),
    /// Compile a policy to a BPF object (or show a stage with `--emit`).
    Build(build::BuildArgs),
    /// Attach a stock policy to the kernel's lock tracepoints and show its maps live.
    Run(run::RunArgs),
    /// Compile a policy, load it and pin it under /sys/fs/bpf/scl/NAME (attached on stock).
    Load(deploy::LoadArgs),
    /// List the policies pinned under /sys/fs/bpf/scl, with their programs and maps.
    Ls(deploy::LsArgs),
    /// Remove a pinned policy: its programs detach and its maps go.
    Unload(deploy::UnloadArgs),
    /// Read and write a pinned policy's maps, typed from its BTF (get, set, dump, delete).
    Map(deploy::MapArgs),
    /// Record the kernel's lock events into a trace file, for `sclc sim --replay`.
    Record(record::RecordArgs),
    /// Run a policy in the lock simulator and report throughput, fairness and waits.
    Sim(sim::SimArgs),
    /// Explain a diagnostic code: what the rule protects and how to fix a violation.
    Explain(explain::ExplainArgs),
    /// Run the language server over stdin and stdout, for editors (see docs/editors.md).
    Lsp(lsp::LspArgs),
}

/// How diagnostics are printed.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum FormatArg {
    /// Source snippets with labels, notes and help (for people).
    Human,
    /// One line each: `file:line:col: error[CODE]: message` (for editors and grep).
    Short,
    /// One JSON object per line, with byte and line/column ranges (for tools).
    Json,
}

/// When to use colour.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum ColorArg {
    /// When stderr is a terminal and `NO_COLOR` is unset.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

impl ColorArg {
    /// Resolves `auto` against stderr and `NO_COLOR`.
    pub fn enabled(self) -> bool {
        use std::io::IsTerminal;
        match self {
            ColorArg::Always => true,
            ColorArg::Never => false,
            ColorArg::Auto => std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal(),
        }
    }
}

/// Exit status of a finished command.
pub enum Status {
    /// Everything is fine.
    Ok,
    /// A policy has errors.
    PolicyErrors,
    /// Usage or environment problem; the message was printed.
    Usage,
    /// The language server was told to exit without being shut down first (LSP: status 1).
    Unclean,
}

/// A clap value parser for unsigned numbers that names the range of the type, for `-1`
/// too (clap alone takes `-1` for a flag and suggests `-- -1`; the arguments using this
/// parser set `allow_negative_numbers`).
pub fn unsigned<T>(s: &str) -> Result<T, String>
where
    T: TryFrom<u128> + num_bounds::Max,
{
    let range = format!("a whole number from 0 to {}", T::MAX_TEXT);
    let t = s.trim();
    if t.starts_with('-') {
        return Err(format!("it must not be negative: {range}"));
    }
    let n: u128 = t.parse().map_err(|_| format!("it is not a number: {range}"))?;
    T::try_from(n).map_err(|_| format!("it does not fit: {range}"))
}

/// The largest value of each type [`unsigned`] parses, as text.
pub mod num_bounds {
    /// The largest value, as text.
    pub trait Max {
        /// `MAX` in decimal.
        const MAX_TEXT: &'static str;
    }
    impl Max for u32 {
        const MAX_TEXT: &'static str = "4294967295";
    }
    impl Max for u64 {
        const MAX_TEXT: &'static str = "18446744073709551615";
    }
    impl Max for usize {
        const MAX_TEXT: &'static str = "18446744073709551615";
    }
}

/// The soft limit of the main thread's stack in bytes, from `/proc/self/limits`.
fn main_stack_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max stack size"))?;
    match line["Max stack size".len()..].split_whitespace().next()? {
        "unlimited" => Some(u64::MAX),
        soft => soft.parse().ok(),
    }
}

/// The main thread's stack must be at least this large to run the compiler on it.
const MAIN_STACK_NEEDED: u64 = 8 << 20;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let work = move || match cli.command {
        Command::Check(args) => check::run(args),
        Command::Build(args) => build::run(args),
        Command::Run(args) => run::run(args),
        Command::Record(args) => record::run(args),
        Command::Load(args) => deploy::load(args),
        Command::Ls(args) => deploy::ls(args),
        Command::Unload(args) => deploy::unload(args),
        Command::Map(args) => deploy::map(args),
        Command::Sim(args) => sim::run(args),
        Command::Explain(args) => explain::run(args),
        Command::Lsp(args) => lsp::run(args),
    };
    // Passes over the syntax tree are recursive but bounded (see `scl_syntax::parser`): the
    // deepest input the front end accepts needs 2-4 MiB of stack in a debug build, far less
    // in release. The usual 8 MiB main stack is enough; with less, the compiler runs on a
    // thread with a 64 MiB stack of its own. (Starting that thread and waiting for it costs
    // about 0.9 ms on the development VM, a quarter of a whole `sclc build`.)
    let result = if main_stack_limit().is_some_and(|l| l >= MAIN_STACK_NEEDED) {
        Ok(std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)))
    } else {
        std::thread::Builder::new().stack_size(64 << 20).spawn(work).map(|h| h.join())
    };
    let status = match result {
        Ok(Ok(status)) => status,
        Ok(Err(_)) => {
            errln!("sclc: internal error: the compiler panicked; please report this with the input that caused it");
            return ExitCode::from(output::exit_code(101));
        }
        Err(e) => {
            errln!("sclc: error: cannot start the compiler thread: {e}");
            Status::Usage
        }
    };
    let code = match status {
        Status::Ok => 0,
        Status::PolicyErrors | Status::Unclean => 1,
        Status::Usage => 2,
    };
    ExitCode::from(output::exit_code(code))
}
