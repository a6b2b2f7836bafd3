//! `sclc sim FILE`: run a policy in the lock simulator and report what it did to the lock.
//!
//! The policy is compiled for the `sim` target and its bytecode runs in `scl-vm`, inside the
//! discrete-event lock simulator of `scl-sim` (docs/simulator.md). With `--compare baseline`
//! the same workload, with the same seed, also runs on the stock FIFO lock, and the two are
//! shown side by side with ratios (policy over baseline); `--compare shfllock` compares with
//! ShflLock's NUMA grouping with free hooks (the "static ShflLock"), `--compare FILE` with
//! another policy. `--replay TRACE` simulates a recorded workload instead (`replay.rs`).
//! Exit codes: 0 ok, 1 policy errors (or a hook that failed while running), 2 usage
//! problems (a bad machine, workload or trace file, a lock kind the policy does not apply
//! to).

use crate::run::{config_overrides, parse_duration};
use crate::{source, ColorArg, Status};
use scl_catalogue::Target;
use scl_diagnostics::render::Format;
use scl_diagnostics::Files;
use scl_sim::{Config, LockKind, Machine, Metrics, Policy, Workload, WorkloadDefaults};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How `sim` prints.
#[derive(Clone, Copy, Debug, clap::ValueEnum, PartialEq, Eq)]
pub enum SimFormat {
    /// A table; with `--compare`, the runs side by side with ratios.
    Table,
    /// One JSON object: machine, workload and every run's metrics.
    Json,
}

/// With `--replay`: the lock implementation the trace was recorded on, which the FIFO
/// baseline runs on.
#[derive(Clone, Copy, Debug, clap::ValueEnum, PartialEq, Eq)]
pub enum RecordedOn {
    /// Linux's stock mutex or rwsem (a trace of an ordinary kernel).
    Linux,
    /// The lock-hook module's governed lock with no policy loaded (its FIFO hand-off), as
    /// in the guest validation of tests/kernel-reality (`run.sh --record`).
    Module,
}

/// A lock kind on the command line.
#[derive(Clone, Copy, Debug, clap::ValueEnum, PartialEq, Eq)]
pub enum LockArg {
    /// Queued spinlock with ShflLock-style shuffling.
    Spinlock,
    /// Blocking mutex.
    Mutex,
    /// Reader-writer semaphore.
    Rwsem,
}

impl LockArg {
    pub(crate) fn kind(self) -> LockKind {
        match self {
            LockArg::Spinlock => LockKind::Spinlock,
            LockArg::Mutex => LockKind::Mutex,
            LockArg::Rwsem => LockKind::Rwsem,
        }
    }
}

/// Arguments of `sclc sim`.
#[derive(clap::Args, Debug)]
pub struct SimArgs {
    /// The policy (its hooks must be available on the `sim` target).
    #[arg(value_name = "FILE")]
    pub(crate) file: PathBuf,
    /// The machine: SOCKETSxCORES (`2x8`) or a TOML file (docs/simulator.md).
    #[arg(long, value_name = "SxC|FILE", default_value = "2x8")]
    machine: String,
    /// The workload, a TOML file (docs/simulator.md); default: one thread per CPU, 0.5-1.5 us
    /// critical sections, 2 us mean think time.
    #[arg(long, value_name = "FILE")]
    workload: Option<PathBuf>,
    /// Simulate the workload of a trace `sclc record` wrote, on the machine it was recorded
    /// on, under the policy and under FIFO, after a table of how well the FIFO replay
    /// reproduces the trace (docs/simulator.md, "Replaying a recorded trace").
    #[arg(long, value_name = "TRACE", conflicts_with_all = ["machine", "workload", "threads", "compare"])]
    pub(crate) replay: Option<PathBuf>,
    /// With --replay: keep the fitted think time even when the FIFO replay contends less
    /// often than the trace (by default it is scaled down until it does).
    #[arg(long, requires = "replay")]
    pub(crate) no_calibrate: bool,
    /// The lock kind (spinlock, mutex, rwsem); default: the workload's, else the first kind
    /// the policy applies to. With --replay: the trace's lock, by name or address (default:
    /// the hottest).
    #[arg(long, value_name = "KIND|NAME|ADDR")]
    pub(crate) lock: Option<String>,
    /// With --replay: the lock the trace was recorded on, where the FIFO baseline runs
    /// (`module`: governed by kernel/ with no policy). The policy always runs on the
    /// module's lock.
    #[arg(long, value_enum, value_name = "linux|module", default_value_t = RecordedOn::Linux, requires = "replay")]
    pub(crate) recorded_on: RecordedOn,
    /// Number of threads (one per CPU at most); default: the workload's, else one per CPU.
    #[arg(long, value_parser = crate::unsigned::<u32>, allow_negative_numbers = true)]
    threads: Option<u32>,
    /// Simulated time to run (`100ms`, `1s`); default 100ms, with --replay the trace's
    /// duration (at most 1s).
    #[arg(long, value_parser = parse_duration)]
    pub(crate) duration: Option<Duration>,
    /// Seed of every random draw: the same seed gives the same run.
    #[arg(long, default_value_t = 1, value_parser = crate::unsigned::<u64>, allow_negative_numbers = true)]
    pub(crate) seed: u64,
    /// Also run `baseline` (the stock FIFO lock, no policy), `shfllock` (ShflLock's NUMA
    /// grouping with hooks that cost nothing) or another policy FILE on the same workload
    /// and seed, and show both with ratios.
    #[arg(long, value_name = "baseline|shfllock|FILE")]
    compare: Option<String>,
    /// Mark threads latency-critical by index (`--critical 0,3`): written into the policy's
    /// `latency_critical` map, and their waits are reported separately.
    #[arg(long, value_name = "I,...", value_delimiter = ',', value_parser = crate::unsigned::<u32>, allow_negative_numbers = true)]
    pub(crate) critical: Vec<u32>,
    /// Set a config value of FILE's policy: `--set NAME=VALUE` (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub(crate) set: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = SimFormat::Table)]
    pub(crate) format: SimFormat,
    /// When to colour diagnostics.
    #[arg(long, value_enum, default_value_t = ColorArg::Auto)]
    pub(crate) color: ColorArg,
}

/// The default simulated time.
const DEFAULT_DURATION: Duration = Duration::from_millis(100);

/// A compiled policy, ready to run.
pub(crate) struct Compiled {
    out: scl_driver::Output,
    kinds: Vec<LockKind>,
}

fn kind_of(k: scl_catalogue::LockKind) -> LockKind {
    match k {
        scl_catalogue::LockKind::Spinlock => LockKind::Spinlock,
        scl_catalogue::LockKind::Mutex => LockKind::Mutex,
        scl_catalogue::LockKind::Rwsem => LockKind::Rwsem,
    }
}

/// Reads and compiles `path` for the sim target; diagnostics go to stderr.
pub(crate) fn compile(path: &Path, color: bool) -> Result<Compiled, Status> {
    let text = source::read(path).map_err(|e| {
        errln!("sclc: error: cannot read `{}`: {e}", path.display());
        Status::Usage
    })?;
    let mut files = Files::new();
    let id = files.add(path.display().to_string(), text);
    let report = |files: &Files, d: &[scl_diagnostics::Diagnostic]| {
        crate::output::diagnostics(files, d, Format::Human, color);
    };
    match scl_driver::compile(&mut files, id, Target::Sim) {
        Ok(out) => {
            report(&files, &out.warnings);
            let kinds = out.program.policy.as_ref().map(|p| p.kinds.iter().map(|k| kind_of(*k)).collect()).unwrap_or_default();
            Ok(Compiled { out, kinds })
        }
        Err(d) => {
            report(&files, &d);
            Err(Status::PolicyErrors)
        }
    }
}

pub(crate) fn usage(msg: impl std::fmt::Display) -> Status {
    errln!("sclc: error: {msg}");
    Status::Usage
}

fn read_machine(spec: &str) -> Result<Machine, Status> {
    let path = Path::new(spec);
    if spec.ends_with(".toml") || path.is_file() {
        let text = source::read_text(path).map_err(|e| usage(format!("cannot read machine `{spec}`: {e}")))?;
        Machine::from_toml(&text).map_err(|e| usage(format!("machine `{spec}`: {e}")))
    } else {
        Machine::parse_spec(spec).map_err(|e| usage(format!("--machine: {e}")))
    }
}

/// A progress bar on stderr, drawn only on a terminal and only once a run has taken a while.
struct Progress {
    enabled: bool,
    label: String,
    start: Instant,
    last: Instant,
    drawn: bool,
}

impl Progress {
    fn new(label: &str) -> Progress {
        let now = Instant::now();
        Progress { enabled: std::io::stderr().is_terminal(), label: label.to_string(), start: now, last: now, drawn: false }
    }

    fn update(&mut self, done: u64, total: u64) {
        if !self.enabled || self.start.elapsed() < Duration::from_millis(300) || self.last.elapsed() < Duration::from_millis(100) {
            return;
        }
        self.last = Instant::now();
        let frac = if total == 0 { 1.0 } else { done as f64 / total as f64 };
        let width = 30;
        let full = (frac * width as f64).round() as usize;
        err!(
            "\r{} [{}{}] {:3.0}%",
            self.label,
            "#".repeat(full.min(width)),
            " ".repeat(width - full.min(width)),
            frac * 100.0
        );
        self.drawn = true;
    }

    fn finish(&mut self) {
        if self.drawn {
            err!("\r{}\r", " ".repeat(self.label.len() + 40));
        }
    }
}

pub(crate) fn run_one(cfg: &Config, policy: &mut dyn Policy) -> Result<Metrics, Status> {
    let mut bar = Progress::new(&format!("simulating {}", policy.name()));
    let result = scl_sim::simulate(cfg, policy, Some(&mut |done, total| bar.update(done, total)));
    bar.finish();
    result.map_err(|e| {
        errln!("sclc: error: the simulation of `{}` stopped: {e}", policy.name());
        match e {
            scl_sim::SimError::Model(_) => Status::Usage,
            scl_sim::SimError::Hook { .. } => Status::PolicyErrors,
        }
    })
}

pub(crate) fn vm_policy(c: &Compiled, sets: &[String], cpus: u32) -> Result<scl_sim::VmPolicy, Status> {
    let overrides = config_overrides(&c.out, sets).map_err(usage)?;
    scl_sim::VmPolicy::new(&c.out, &overrides, cpus).map_err(|e| {
        errln!("sclc: error: the VM cannot run `{}`: {e}", c.out.module.name);
        Status::PolicyErrors
    })
}

pub(crate) fn check_kind(c: &Compiled, lock: LockKind, file: &Path) -> Result<(), Status> {
    if c.kinds.contains(&lock) {
        return Ok(());
    }
    let kinds: Vec<&str> = c.kinds.iter().map(|k| k.name()).collect();
    Err(usage(format!(
        "`{}` applies to {}, not to a {}\n  help: pick one of its lock kinds with `--lock` or in the workload",
        file.display(),
        kinds.join(", "),
        lock.name()
    )))
}

/// The JSON ratios of run `b` over run `a` (`null` where `a`'s value is 0).
pub(crate) fn ratios(a: &Metrics, b: &Metrics) -> serde_json::Value {
    let ratio = |x: f64, y: f64| if x == 0.0 { serde_json::Value::Null } else { serde_json::json!(y / x) };
    serde_json::json!({
        "throughput": ratio(a.throughput, b.throughput),
        "fairness": ratio(a.fairness, b.fairness),
        "local_handoff_ratio": ratio(a.local_handoff_ratio, b.local_handoff_ratio),
        "wait_p50": ratio(a.wait.p50_ns as f64, b.wait.p50_ns as f64),
        "wait_p99": ratio(a.wait.p99_ns as f64, b.wait.p99_ns as f64),
        "wait_max": ratio(a.max_wait_ns() as f64, b.max_wait_ns() as f64),
    })
}

/// Runs `sclc sim`.
pub fn run(args: SimArgs) -> Status {
    match sim(args) {
        Ok(s) | Err(s) => s,
    }
}

fn sim(args: SimArgs) -> Result<Status, Status> {
    let color = args.color.enabled();
    if let Some(d) = args.duration {
        if d.as_nanos() > u128::from(scl_sim::MAX_DURATION_NS) {
            return Err(usage(format!(
                "--duration {d:?}: the simulator runs at most {} s of simulated time",
                scl_sim::MAX_DURATION_NS / 1_000_000_000
            )));
        }
    }
    if let Some(trace) = &args.replay {
        return crate::replay::replay(&args, trace);
    }
    let duration = args.duration.unwrap_or(DEFAULT_DURATION);
    let machine = read_machine(&args.machine)?;
    let main = compile(&args.file, color)?;
    let lock_default = main.kinds.first().copied().unwrap_or(LockKind::Spinlock);
    let lock_override = match &args.lock {
        None => None,
        Some(l) => Some(<LockArg as clap::ValueEnum>::from_str(l, false).map(LockArg::kind).map_err(|_| {
            usage(format!("--lock `{l}`: not a lock kind (spinlock, mutex, rwsem); a lock by name or address goes with --replay"))
        })?),
    };
    let mut workload = match &args.workload {
        Some(path) => {
            let text = source::read_text(path).map_err(|e| usage(format!("cannot read workload `{}`: {e}", path.display())))?;
            Workload::from_toml(&text, &machine, args.threads, lock_default, lock_override)
                .map_err(|e| usage(format!("workload `{}`: {e}", path.display())))?
        }
        None => {
            let d = WorkloadDefaults { lock: lock_override.unwrap_or(lock_default), ..WorkloadDefaults::default() };
            Workload::uniform(&machine, args.threads.unwrap_or(machine.cpus()), &d).map_err(|e| usage(format!("--threads: {e}")))?
        }
    };
    for &i in &args.critical {
        let n = workload.threads.len();
        let t = workload.threads.get_mut(i as usize).ok_or_else(|| usage(format!("--critical {i}: there are {n} threads (0..{})", n - 1)))?;
        t.latency_critical = true;
    }
    check_kind(&main, workload.lock, &args.file)?;
    let cfg = Config { machine, workload, duration_ns: duration.as_nanos().min(u128::from(u64::MAX)) as u64, seed: args.seed };
    let cpus = cfg.machine.cpus();
    let mut runs = Vec::new();
    match args.compare.as_deref() {
        None => {}
        Some("baseline") => runs.push(run_one(&cfg, &mut scl_sim::Fifo)?),
        Some("shfllock") => runs.push(run_one(&cfg, &mut scl_sim::StaticShfl)?),
        Some(other) => {
            let path = PathBuf::from(other);
            let c = compile(&path, color)?;
            check_kind(&c, cfg.workload.lock, &path)?;
            let mut p = vm_policy(&c, &[], cpus)?;
            runs.push(run_one(&cfg, &mut p)?);
        }
    }
    let mut p = vm_policy(&main, &args.set, cpus)?;
    runs.push(run_one(&cfg, &mut p)?);
    let mut stdout = crate::output::stdout();
    let written = match args.format {
        SimFormat::Table => {
            let text = format!(
                "machine:  {}\nworkload: {}\nrun:      {} simulated, seed {}\n\n{}",
                cfg.machine.describe(),
                cfg.workload.describe(),
                scl_sim::metrics::ns(cfg.duration_ns),
                cfg.seed,
                scl_sim::metrics::table(&runs)
            );
            stdout.write_all(text.as_bytes())
        }
        SimFormat::Json => {
            let mut v = serde_json::json!({
                "machine": cfg.machine,
                "workload": cfg.workload,
                "duration_ns": cfg.duration_ns,
                "seed": cfg.seed,
                "runs": runs,
            });
            if runs.len() == 2 {
                v["ratios"] = ratios(&runs[0], &runs[1]);
            }
            writeln!(stdout, "{v}")
        }
    };
    // A failure is recorded and decides the exit status (`output::exit_code`).
    let _ = written.and_then(|_| stdout.flush());
    Ok(Status::Ok)
}
