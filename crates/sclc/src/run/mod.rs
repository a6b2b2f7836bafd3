//! `sclc run FILE`: attach a stock policy to the kernel's lock tracepoints and show its
//! maps live, until the duration ends or Ctrl-C (SIGINT or SIGTERM); then a final summary.
//!
//! The tables come from the policy's own state: `per_lock` state becomes one row per lock,
//! other maps one row per key; the key's columns (a lock's name, a `kstack`'s caller and,
//! with `--stacks`, its stack, a lock type) come from `run/keys.rs`; struct fields of the
//! value become columns, a `hist::Log2` field a histogram (drawn with `--hist`; `units.rs`
//! prints times and summarises histogram-only values). `--per-task` shows per-thread state
//! instead, with command names (`tasks.rs`). Filters are compiled into the programs
//! (`filter.rs`); `-- CMD` runs a command in a cgroup of its own and stops with it
//! (`workload.rs`). docs/profiling.md is the user's guide. Programs are never pinned, so
//! they detach when `sclc` exits for any reason, a panic or a kill included.

mod keys;

use crate::{source, ColorArg, Status};
use keys::{Key, Names};
use scl_loader::ksyms::Ksyms;
use scl_catalogue::Target;
use scl_diagnostics::render::Format;
use scl_diagnostics::{Diagnostic, Files};
use scl_ir::MapOrigin;
use scl_sema::hir::{Program, StateStorage};
use scl_sema::ty::Ty;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) mod filter;
pub(crate) mod tasks;
pub(crate) mod units;
pub(crate) mod workload;

/// How `run` prints.
#[derive(Clone, Copy, Debug, clap::ValueEnum, PartialEq, Eq)]
pub enum RunFormat {
    /// Tables, refreshed in place on a terminal.
    Table,
    /// One JSON object per refresh, the last with `"final": true`.
    Json,
    /// Comma-separated values, one row per table cell and refresh: `elapsed_s`, `final`,
    /// `map`, `key`, `column`, `value` (integers as the kernel counted them).
    Csv,
}

/// Arguments of `sclc run`.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The policy (its hooks must run on the stock kernel: `contended`, `contention_end`).
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Stop after this long (`10s`, `500ms`, `2m`); default: until Ctrl-C.
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// How often to refresh.
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    interval: Duration,
    /// Rows per table.
    #[arg(long, default_value_t = 20, value_parser = crate::unsigned::<usize>, allow_negative_numbers = true)]
    top: usize,
    /// The column to sort by (descending); default: the first column. An unknown column is
    /// an error that lists the policy's columns.
    #[arg(long)]
    sort: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = RunFormat::Table)]
    format: RunFormat,
    /// Set a config value before loading: `--set NAME=VALUE` (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    set: Vec<String>,
    /// Draw log2 histograms.
    #[arg(long)]
    hist: bool,
    /// Show each row's whole kernel stack (of a `kstack` key) under it, innermost frame
    /// first.
    #[arg(long)]
    stacks: bool,
    /// When to colour diagnostics.
    #[arg(long, value_enum, default_value_t = ColorArg::Auto)]
    color: ColorArg,
    /// Rows by task (thread id and command name) from the policy's per-thread state, in
    /// place of its other tables.
    #[arg(long)]
    per_task: bool,
    #[command(flatten)]
    filter: filter::FilterArgs,
    /// A command to profile (after `--`): started once the programs are attached, its
    /// process tree alone observed (through a cgroup of its own), the run ending when it
    /// exits.
    #[arg(last = true, value_name = "CMD")]
    command: Vec<String>,
}

/// Parses `10s`, `500ms`, `2m`, `100us`, or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("`{s}` is not a duration (try `5s` or `500ms`)"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1e3,
        "us" => n / 1e6,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("unknown unit `{unit}` in `{s}` (use ms, s, m or h)")),
    };
    if !(secs.is_finite() && secs > 0.0) {
        return Err(format!("`{s}` is not a positive duration"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Runs `sclc run`.
pub fn run(args: RunArgs) -> Status {
    let text = match source::read(&args.file) {
        Ok(t) => t,
        Err(e) => {
            errln!("sclc: error: cannot read `{}`: {e}", args.file.display());
            return Status::Usage;
        }
    };
    // A policy with a syntax error goes straight to the compiler, which shows the error;
    // only a policy that parses is judged by its hooks.
    let parses = scl_syntax::parse_file(scl_diagnostics::FileId(0), &text).1.iter().all(|d| d.severity != scl_diagnostics::Severity::Error);
    if parses && crate::build::default_target(&text) != Target::Stock && changes_lock_behaviour(&text) {
        errln!(
            "sclc: error: `{}` has hooks that change lock behaviour; the running kernel has no SCL lock-policy hooks\n  \
             note: `sclc run` attaches policies to the stock lock tracepoints, which only observe (`contended`, `contention_end`)\n  \
             help: check the policy against this kernel's verifier with `sclc build --target syncord --verify {}`",
            args.file.display(),
            args.file.display()
        );
        return Status::Usage;
    }
    let (filter, cgroup) = match filter_for(&args.filter, &args.command, "observe", "observed") {
        Ok(f) => f,
        Err(status) => return status,
    };
    let mut files = Files::new();
    let id = files.add(args.file.display().to_string(), text);
    let color = args.color.enabled();
    let report = |files: &Files, d: &[Diagnostic]| {
        crate::output::diagnostics(files, d, Format::Human, color);
    };
    let options = scl_driver::Options { filter };
    let out = match scl_driver::compile_with(&mut files, id, Target::Stock, &options) {
        Ok(o) => o,
        Err(d) => {
            report(&files, &d);
            return Status::PolicyErrors;
        }
    };
    report(&files, &out.warnings);
    if args.per_task && sort_keys(&out, true).is_empty() {
        errln!(
            "sclc: error: --per-task: `{}` keeps no per-thread state to show\n  help: a `per_thread` state with counters gives one row per task (see examples/contention_profiler.scl)",
            args.file.display()
        );
        return Status::Usage;
    }
    if let Some(sort) = &args.sort {
        let columns = sort_keys(&out, args.per_task);
        if !columns.iter().any(|c| c == sort) {
            let hint = scl_syntax::validate::did_you_mean(sort, columns.iter().map(String::as_str))
                .map(|c| format!("\n  help: did you mean `{c}`?"))
                .unwrap_or_default();
            errln!("sclc: error: --sort {sort}: no column of that name; the columns of this policy: {}{hint}", columns.join(", "));
            return Status::Usage;
        }
    }
    let overrides = match config_overrides(&out, &args.set) {
        Ok(o) => o,
        Err(msg) => {
            errln!("sclc: error: {msg}");
            return Status::Usage;
        }
    };
    let mut loaded = match crate::build::load_or_report("sclc_run", &files, id, &out.object, &overrides, &report, scl_loader::Options::default()) {
        Ok(l) => l,
        Err(status) => return status,
    };
    if let Err(e) = loaded.attach_all() {
        errln!("sclc: error: {e}\n  note: the lock tracepoints need Linux 5.19 or later with BTF");
        return Status::Usage;
    }
    let stop = stop_on_signal();
    let symbols = Ksyms::load();
    let mut comms = tasks::Comms::default();
    let program_ids: Vec<(String, u32)> =
        loaded.programs().into_iter().filter_map(|p| loaded.info(&p).ok().map(|i| (p, i.id))).collect();
    let mut child = match workload::start(&args.command, cgroup.as_ref()) {
        Ok(c) => c,
        Err(status) => return status,
    };
    let started = Instant::now();
    let tty = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let mut last = Instant::now();
    let mut last_csv_header = true;
    let mut command_status = None;
    loop {
        let exited = child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))));
        let done = exited || stop.load(Ordering::SeqCst) || args.duration.is_some_and(|d| started.elapsed() >= d);
        if done {
            if let Some(c) = child.as_mut() {
                command_status = Some(workload::describe(&args.command, c.id(), workload::finish(c)));
            }
        }
        if done || last.elapsed() >= args.interval {
            last = Instant::now();
            let names = Names { ksyms: &symbols, loaded: &loaded, stacks: args.stacks };
            let mut snapshot = snapshot(&out, &loaded, &names, args.per_task);
            if args.per_task {
                for t in &mut snapshot {
                    t.comms = t.rows.iter().filter_map(|r| r.0.columns.first()).map(|tid| (tid.clone(), comms.get(tid))).collect();
                }
            }
            let mut text = String::new();
            match args.format {
                RunFormat::Json => {
                    let mut json = to_json(&snapshot, &program_ids, started.elapsed(), done);
                    if let Some((_, status)) = &command_status {
                        json["command"] = status.clone();
                    }
                    text = format!("{json}\n");
                }
                RunFormat::Csv => text = to_csv(&snapshot, started.elapsed(), done, last_csv_header),
                RunFormat::Table => {
                    if tty && !done {
                        text.push_str("\x1b[H\x1b[2J");
                    }
                    let title = if done { "final summary" } else { "live" };
                    text += &format!("sclc run {}: {title}, {:.1}s\n", args.file.display(), started.elapsed().as_secs_f64());
                    text += &render_tables(&snapshot, &args);
                }
            }
            out!("{text}");
            last_csv_header = false;
            let _ = crate::output::stdout().flush();
        }
        // The reader is gone (`sclc run | head -1`) or stdout failed: stop and detach now,
        // the exit status says why (`output::exit_code`).
        if crate::output::broken() || crate::output::stdout_reader_gone() {
            break;
        }
        if done {
            break;
        }
        std::thread::sleep(Duration::from_millis(50).min(args.interval));
    }
    drop(loaded);
    if let Some(c) = child.as_mut() {
        // Stopped by a closed output: the command is stopped too.
        let (sentence, _) = command_status.unwrap_or_else(|| workload::describe(&args.command, c.id(), workload::finish(c)));
        errln!("sclc: {sentence}");
    }
    drop(cgroup);
    Status::Ok
}

/// The event filter of the filter options and, with a command after `--`, the command's
/// cgroup, created before the programs are compiled (its id is in them; `sclc run` and
/// `sclc record` share this). `verb` and `participle` say what happens to the tasks'
/// events in the messages ("observe", "observed").
pub(crate) fn filter_for(
    args: &filter::FilterArgs,
    command: &[String],
    verb: &str,
    participle: &str,
) -> Result<(scl_ir::lower::EventFilter, Option<workload::Cgroup>), Status> {
    if !command.is_empty() && !args.cgroups.is_empty() {
        errln!("sclc: error: --cgroup and a command after `--` both choose the tasks to {verb}\n  help: give one of them (the command runs in a cgroup of its own)");
        return Err(Status::Usage);
    }
    let mut filter = args.to_filter().map_err(|msg| {
        errln!("sclc: error: {msg}");
        Status::Usage
    })?;
    let cgroup = if command.is_empty() {
        None
    } else {
        match workload::Cgroup::create() {
            Ok(cg) => {
                filter.cgroups = vec![cg.id];
                Some(cg)
            }
            Err(e) => {
                errln!("sclc: warning: {e}; `{}` runs without a filter to its processes (every task's locks are {participle})", command[0]);
                None
            }
        }
    };
    Ok((filter, cgroup))
}

/// A flag that SIGINT and SIGTERM set (shared by `sclc run` and `sclc record`).
pub(crate) fn stop_on_signal() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    if let Err(e) = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst)) {
        errln!("sclc: warning: Ctrl-C will not stop cleanly: {e}");
    }
    stop
}

/// True when some hook of the policy in `text` is a known hook that the stock kernel does
/// not have (an unknown hook is the checker's to report).
fn changes_lock_behaviour(text: &str) -> bool {
    let (ast, _) = scl_syntax::parse_file(scl_diagnostics::FileId(0), text);
    ast.items.iter().any(|i| match &i.kind {
        scl_syntax::ast::ItemKind::Policy(p) => {
            p.hooks.iter().any(|h| scl_catalogue::hook(&h.name.name).is_some_and(|d| !d.on_target(Target::Stock)))
        }
        _ => false,
    })
}

/// The columns `--sort` can name: every scalar column of every table `run` shows.
fn sort_keys(out: &scl_driver::Output, per_task: bool) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for m in out.module.maps.values() {
        if m.origin.is_hidden() {
            continue;
        }
        // As `snapshot` shows them: per-thread state only in the per-task view, and then
        // alone.
        if matches!(&m.origin, MapOrigin::State(id) if out.program.states[*id].storage == StateStorage::PerThread) != per_task {
            continue;
        }
        let (Some(_), Some(value_ty)) = (&m.key, &m.value) else { continue };
        let zero = vec![0u8; m.value_size as usize];
        let (cols, _, _) = decode(&out.program, value_ty, &zero, m.value_size as usize);
        for c in cols {
            if !keys.contains(&c) {
                keys.push(c);
            }
        }
    }
    keys
}

/// `.rodata` overrides from `--set NAME=VALUE`, checked against the config declarations.
pub(crate) fn config_overrides(out: &scl_driver::Output, sets: &[String]) -> Result<Vec<(usize, Vec<u8>)>, String> {
    let mut result = Vec::new();
    for s in sets {
        let Some((name, value)) = s.split_once('=') else {
            return Err(format!("`--set {s}`: write NAME=VALUE"));
        };
        let (name, value) = (name.trim(), value.trim());
        let Some(var) = out.module.rodata.iter().find(|v| v.name == name) else {
            let names: Vec<&str> = out.module.rodata.iter().map(|v| v.name.as_str()).collect();
            let hint = scl_syntax::validate::did_you_mean(name, names.iter().copied())
                .map(|n| format!(" (did you mean `{n}`?)"))
                .unwrap_or_default();
            let list = if names.is_empty() { "this policy has none".to_string() } else { format!("its config values: {}", names.join(", ")) };
            return Err(format!("no config value `{name}`{hint}; {list}"));
        };
        let bits: i128 = match &var.ty {
            Ty::Bool => match value {
                "true" => 1,
                "false" => 0,
                _ => return Err(format!("`{name}` is a bool: write true or false, not `{value}`")),
            },
            Ty::Int(i) => {
                let (neg, digits) = value.strip_prefix('-').map_or((false, value), |d| (true, d));
                let lit = scl_syntax::lexer::parse_int(digits).map_err(|e| match e {
                    scl_syntax::lexer::LexError::NumberTooLarge => {
                        format!("{value} does not fit `{name}`, a `{i}` ({}..={})", i.min(), i.max())
                    }
                    _ => format!("`{value}` is not a number for `{name}` ({i})"),
                })?;
                let v = if neg { -i128::from(lit.value) } else { i128::from(lit.value) };
                if !i.contains(v) {
                    return Err(format!("{v} does not fit `{name}`, a `{i}` ({}..={})", i.min(), i.max()));
                }
                v
            }
            _ => return Err(format!("`{name}` cannot be set from the command line")),
        };
        result.push((var.offset as usize, (bits as u64).to_le_bytes()[..var.size as usize].to_vec()));
    }
    Ok(result)
}

/// Named log2 histograms: a title and the counts of its buckets.
type Histograms = Vec<(String, Vec<u64>)>;

/// One row of a table: the key as printed (`keys.rs`), the scalar columns, the histograms.
type Row = (Key, Vec<u64>, Histograms);

/// One map's rows at one moment.
struct Table {
    map: String,
    /// The key's columns (`lock`; `lock`, `caller`, ...).
    key_labels: Vec<String>,
    /// In the per-task view, the command name of each row's thread (by thread id).
    comms: std::collections::HashMap<String, String>,
    columns: Vec<String>,
    rows: Vec<Row>,
}

fn snapshot(out: &scl_driver::Output, loaded: &scl_loader::Loaded, names: &Names, per_task: bool) -> Vec<Table> {
    let program = &out.program;
    let mut tables = Vec::new();
    for m in out.module.maps.values() {
        if m.origin.is_hidden() {
            continue;
        }
        let (Some(key_ty), Some(value_ty)) = (&m.key, &m.value) else { continue };
        let per_lock = matches!(&m.origin, MapOrigin::State(id) if program.states[*id].storage == StateStorage::PerLock);
        // Per-thread state is shown in the per-task view, and then alone.
        let per_thread = matches!(&m.origin, MapOrigin::State(id) if program.states[*id].storage == StateStorage::PerThread);
        if per_thread != per_task {
            continue;
        }
        // An array indexed by lock kind reads better with the kinds' names.
        let by_kind = m.name.contains("kind") && m.kind == scl_catalogue::MapKind::Array && m.max_entries == 3;
        let Ok(keys) = loaded.keys(&m.name) else { continue };
        let mut columns = Vec::new();
        let mut rows = Vec::new();
        for key in keys {
            let Ok(Some(value)) = loaded.lookup(&m.name, &key) else { continue };
            let k = le(&key);
            let label = if by_kind {
                let name = scl_catalogue::LockKind::ALL.get(k as usize).map_or_else(|| k.to_string(), |kind| kind.name().to_string());
                Key { columns: vec![name], stack: Vec::new() }
            } else {
                keys::key(program, key_ty, &key, per_lock, names)
            };
            let (cols, vals, hists) = decode(program, value_ty, &value, m.value_size as usize);
            if columns.is_empty() {
                columns = cols;
            }
            if vals.iter().all(|v| *v == 0) && hists.iter().all(|(_, b)| b.iter().all(|x| *x == 0)) {
                continue;
            }
            rows.push((label, vals, hists));
        }
        if per_thread && columns.is_empty() {
            continue;
        }
        let rows = keys::merge_same_keys(&columns, rows);
        let key_labels = if by_kind {
            vec!["kind".to_string()]
        } else if per_thread {
            vec!["tid".to_string()]
        } else {
            keys::key_labels(program, key_ty, per_lock)
        };
        tables.push(Table { map: m.name.clone(), key_labels, columns, rows, comms: Default::default() });
    }
    tables
}

fn le(bytes: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = bytes.len().min(8);
    b[..n].copy_from_slice(&bytes[..n]);
    u64::from_le_bytes(b)
}

/// Scalar columns and histograms of a value; a per-CPU value (one copy per CPU, each
/// padded to 8 bytes) is summed over the CPUs.
fn decode(program: &Program, ty: &Ty, bytes: &[u8], size: usize) -> (Vec<String>, Vec<u64>, Histograms) {
    let stride = size.div_ceil(8).max(1) * 8;
    let copies = if bytes.len() > size { (bytes.len() / stride).max(1) } else { 1 };
    let mut cols: Vec<String> = Vec::new();
    let mut vals: Vec<u64> = Vec::new();
    let mut hists: Vec<(String, Vec<u64>)> = Vec::new();
    for c in 0..copies {
        let slice = &bytes[(c * stride).min(bytes.len())..];
        let (mut k, mut h) = (0usize, 0usize);
        walk(program, ty, slice, 0, String::new(), &mut |name, v, hist| match hist {
            Some(b) => {
                if c == 0 {
                    hists.push((name, b));
                } else if let Some((_, acc)) = hists.get_mut(h) {
                    acc.iter_mut().zip(b).for_each(|(a, x)| *a += x);
                }
                h += 1;
            }
            None => {
                if c == 0 {
                    cols.push(name);
                    vals.push(v);
                } else if let Some(x) = vals.get_mut(k) {
                    *x += v;
                }
                k += 1;
            }
        });
    }
    // A value that is histograms alone (`kind_hist`) gets their summary as columns, so its
    // table says something without `--hist`.
    if cols.is_empty() {
        if let Some((name, buckets)) = hists.first() {
            let prefix = if hists.len() == 1 { String::new() } else { format!("{name}.") };
            cols = units::HIST_SUMMARY.iter().map(|c| format!("{prefix}{c}")).collect();
            vals = units::hist_summary(buckets).to_vec();
        }
    }
    // Derived: a mean where a total sits beside a count.
    if let Some(ci) = cols.iter().position(|c| c == "contentions" || c.ends_with("count")) {
        for ti in 0..cols.len() {
            if cols[ti].contains("total") {
                let mean = vals[ti].checked_div(vals[ci]).unwrap_or(0);
                cols.push(cols[ti].replace("total", "mean"));
                vals.push(mean);
            }
        }
    }
    (cols, vals, hists)
}

/// Calls `f(name, value, histogram)` for each scalar and each `hist::Log2` in a value.
fn walk(program: &Program, ty: &Ty, bytes: &[u8], off: usize, name: String, f: &mut dyn FnMut(String, u64, Option<Vec<u64>>)) {
    let read = |o: usize, n: usize| bytes.get(o..o + n).map_or(0, le);
    match ty {
        Ty::Int(i) => f(if name.is_empty() { "value".into() } else { name }, read(off, usize::from(i.bits / 8)), None),
        Ty::Bool => f(if name.is_empty() { "value".into() } else { name }, read(off, 1), None),
        Ty::Struct(s) => {
            let sd = &program.structs[*s];
            if sd.name.ends_with("Log2") {
                if let Some(field) = sd.fields.first() {
                    if let Ty::Array(_, n) = &field.ty {
                        let buckets = (0..*n as usize).map(|k| read(off + field.offset as usize + k * 8, 8)).collect();
                        f(if name.is_empty() { "hist".into() } else { name }, 0, Some(buckets));
                        return;
                    }
                }
            }
            for field in &sd.fields {
                // A field whose name begins with `_` is the policy's bookkeeping.
                if field.name.starts_with('_') {
                    continue;
                }
                let n = if name.is_empty() { field.name.clone() } else { format!("{name}.{}", field.name) };
                walk(program, &field.ty, bytes, off + field.offset as usize, n, f);
            }
        }
        Ty::Array(e, n) if e.is_scalar() && *n <= 8 => {
            let sz = program.layout(e).size as usize;
            for k in 0..*n as usize {
                walk(program, e, bytes, off + k * sz, format!("{name}[{k}]"), f);
            }
        }
        _ => {}
    }
}

fn render_tables(tables: &[Table], args: &RunArgs) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    for t in tables {
        let _ = writeln!(s, "\n{} ({} rows)", t.map, t.rows.len());
        if t.rows.is_empty() {
            let _ = writeln!(s, "  (nothing yet)");
            continue;
        }
        let sort_col = args.sort.as_ref().and_then(|c| t.columns.iter().position(|x| x == c)).unwrap_or(0);
        let mut rows: Vec<&Row> = t.rows.iter().collect();
        rows.sort_by(|a, b| b.1.get(sort_col).cmp(&a.1.get(sort_col)));
        let widths: Vec<usize> = t
            .key_labels
            .iter()
            .enumerate()
            .map(|(i, l)| rows.iter().map(|r| r.0.columns.get(i).map_or(0, String::len)).max().unwrap_or(4).max(l.len()).min(48))
            .collect();
        let _ = write!(s, " ");
        for (l, width) in t.key_labels.iter().zip(&widths) {
            let _ = write!(s, " {l:<width$}");
        }
        if !t.comms.is_empty() {
            let _ = write!(s, " {:<16}", "comm");
        }
        for c in &t.columns {
            let _ = write!(s, " {:>14}", c);
        }
        s.push('\n');
        for r in rows.iter().take(args.top) {
            let _ = write!(s, " ");
            for (c, width) in r.0.columns.iter().zip(&widths) {
                let _ = write!(s, " {c:<width$}");
            }
            if let Some(comm) = r.0.columns.first().and_then(|tid| t.comms.get(tid)) {
                let _ = write!(s, " {comm:<16}");
            }
            for (c, v) in t.columns.iter().zip(&r.1) {
                if units::is_ns(c) {
                    let _ = write!(s, " {:>14}", units::human_ns(*v));
                } else {
                    let _ = write!(s, " {:>14}", v);
                }
            }
            s.push('\n');
            for frame in &r.0.stack {
                let _ = writeln!(s, "      {frame}");
            }
            if args.hist {
                for (name, buckets) in &r.2 {
                    let _ = write!(s, "{}", draw_hist(name, buckets));
                }
            }
        }
    }
    s
}

/// A log2 histogram as bars, one line per non-empty bucket.
pub fn draw_hist(name: &str, buckets: &[u64]) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let max = buckets.iter().copied().max().unwrap_or(0);
    if max == 0 {
        return s;
    }
    let _ = writeln!(s, "    {name}:");
    for (k, &n) in buckets.iter().enumerate() {
        if n == 0 {
            continue;
        }
        let lo = if k == 0 { 0 } else { 1u64 << k };
        let bar = "#".repeat(((n as f64 / max as f64) * 40.0).ceil() as usize);
        let _ = writeln!(s, "      [{:>12}, {:>12}) ns {:>10} {bar}", lo, 1u64 << (k + 1), n);
    }
    s
}

fn to_json(tables: &[Table], programs: &[(String, u32)], elapsed: Duration, last: bool) -> serde_json::Value {
    let maps: serde_json::Map<String, serde_json::Value> = tables
        .iter()
        .map(|t| {
            let rows: Vec<serde_json::Value> = t
                .rows
                .iter()
                .map(|(key, vals, hists)| {
                    let mut o = serde_json::Map::new();
                    for (l, c) in t.key_labels.iter().zip(&key.columns) {
                        o.insert(l.clone(), serde_json::Value::from(c.clone()));
                    }
                    if let Some(comm) = key.columns.first().and_then(|tid| t.comms.get(tid)) {
                        o.insert("comm".to_string(), serde_json::Value::from(comm.clone()));
                    }
                    if !key.stack.is_empty() {
                        o.insert("stack".into(), serde_json::Value::from(key.stack.clone()));
                    }
                    for (c, v) in t.columns.iter().zip(vals) {
                        o.insert(c.clone(), serde_json::Value::from(*v));
                    }
                    for (n, b) in hists {
                        o.insert(n.clone(), serde_json::Value::from(b.clone()));
                    }
                    serde_json::Value::Object(o)
                })
                .collect();
            (t.map.clone(), serde_json::Value::from(rows))
        })
        .collect();
    let programs: Vec<serde_json::Value> = programs.iter().map(|(name, id)| serde_json::json!({ "name": name, "id": id })).collect();
    serde_json::json!({ "elapsed_s": elapsed.as_secs_f64(), "final": last, "programs": programs, "maps": maps })
}

/// One refresh as CSV: a header line first (`header`), then one line per table cell and
/// per non-empty histogram bucket (column `NAME[LO]`, LO the bucket's lower bound in ns).
fn to_csv(tables: &[Table], elapsed: Duration, last: bool, header: bool) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    if header {
        s.push_str("elapsed_s,final,map,key,column,value\n");
    }
    let prefix = format!("{:.3},{last}", elapsed.as_secs_f64());
    for t in tables {
        for (key, vals, hists) in &t.rows {
            // The key's columns (lock, caller, type, ...) as one field, space-separated.
            let label = &key.columns.join(" ");
            for (c, v) in t.columns.iter().zip(vals) {
                let _ = writeln!(s, "{prefix},{},{},{},{v}", csv_field(&t.map), csv_field(label), csv_field(c));
            }
            for (name, buckets) in hists {
                for (k, n) in buckets.iter().enumerate().filter(|(_, n)| **n > 0) {
                    let lo = if k == 0 { 0 } else { 1u64 << k };
                    let _ = writeln!(s, "{prefix},{},{},{},{n}", csv_field(&t.map), csv_field(label), csv_field(&format!("{name}[{lo}]")));
                }
            }
        }
    }
    s
}

/// A CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("0s").is_err());
    }

    #[test]
    fn histograms_draw_one_bar_per_bucket() {
        let mut b = vec![0u64; 32];
        b[10] = 4;
        b[12] = 2;
        let s = draw_hist("waits", &b);
        assert!(s.contains("[        1024,         2048) ns          4 ########################################"), "{s}");
        assert_eq!(s.lines().count(), 3);
    }

    #[test]
    fn csv_fields_are_quoted_only_when_they_must_be() {
        assert_eq!(csv_field("stats"), "stats");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
