//! `sclc record`: record the kernel's lock events into a trace file (docs/trace-format.md)
//! for `sclc sim --replay`.
//!
//! The recorder is an SCL policy (`recorder.scl`, embedded): one ring-buffer record per
//! call of the stock `contended` and `contention_end` hooks, compiled here with the filters
//! of `sclc run` (`run/filter.rs`) and a `-- CMD`'s cgroup (`run/workload.rs`). This module
//! reads the ring buffer ([`scl_loader::Ring`]), pairs each end with its thread's open
//! wait on that lock (an end without one, of a wait that began before the recording or
//! whose beginning was lost, is dropped and counted), puts the records in timestamp order (records from several CPUs
//! reach the ring buffer up to a few microseconds out of order; a 50 ms window sorts them),
//! and streams them into [`scl_trace::format::Writer`]. It stops at `--duration`,
//! `--max-events`, `--max-size`, Ctrl-C or SIGTERM, or when CMD exits; then detaches,
//! drains the ring buffer, and counts as lost what the recorder's per-CPU call counter
//! says was sent minus what arrived (records the full ring buffer refused), plus the
//! programs' recursion misses (an event in an interrupt that came while the recorder's
//! program ran on that CPU: the kernel does not run a tracing program inside another).
//!
//! `--module` (`module.rs`) records a governed lock's full hook set in the kernel's
//! lock-hook module instead, through `module_recorder.scl` (the same record layout).
//!
//! Output: `-o FILE` is written to a temporary file beside it (`.FILE.PID.partial`) and
//! renamed into place at the end, so a killed recording never leaves half a trace under
//! FILE; a device, FIFO or symlink is written in place (as `sclc build -o` does); `-o -`
//! is stdout. The summary goes to stdout, or to stderr when the trace goes to stdout.

pub mod module;

use crate::run::{filter, parse_duration, tasks, workload};
use crate::Status;
use scl_catalogue::Target;
use scl_diagnostics::render::Format;
use scl_diagnostics::{Diagnostic, Files};
use scl_loader::ksyms::Ksyms;
use scl_trace::format::Writer;
use scl_trace::{Event, EventKind, Topology};
use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// The recorder policy's source.
pub const RECORDER: &str = include_str!("recorder.scl");

/// Records arrive up to this far out of timestamp order (ns); older ones are written.
const REORDER_NS: u64 = 50_000_000;
/// The deepest nesting of waits kept per thread (a mutex's slow path spinning on its
/// `wait_lock` is two).
const MAX_NESTED: usize = 16;

/// How the summary is printed.
#[derive(Clone, Copy, Debug, clap::ValueEnum, PartialEq, Eq)]
pub enum SummaryFormat {
    /// Lines for people.
    Table,
    /// One JSON object.
    Json,
}

/// Arguments of `sclc record`.
#[derive(clap::Args, Debug)]
pub struct RecordArgs {
    /// Where the trace goes (`-` for stdout).
    #[arg(short = 'o', long = "output", value_name = "FILE", default_value = "sclc.trace")]
    output: PathBuf,
    /// Stop after this long (`10s`, `500ms`, `2m`); default: until Ctrl-C or CMD exits.
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Stop after this many events.
    #[arg(long, value_name = "N", value_parser = crate::unsigned::<u64>, allow_negative_numbers = true)]
    max_events: Option<u64>,
    /// Stop once the trace reaches this many bytes (the event that crosses it and the
    /// trailer are still written).
    #[arg(long, value_name = "BYTES", value_parser = crate::unsigned::<u64>, allow_negative_numbers = true)]
    max_size: Option<u64>,
    /// Hottest locks in the summary.
    #[arg(long, default_value_t = 10, value_parser = crate::unsigned::<usize>, allow_negative_numbers = true)]
    top: usize,
    /// How the summary is printed.
    #[arg(long, value_enum, default_value_t = SummaryFormat::Table)]
    format: SummaryFormat,
    #[command(flatten)]
    filter: filter::FilterArgs,
    /// Record the full hook set (about to acquire, contended, acquired, about to release,
    /// released) of the `--lock` locks in the kernel's lock-hook module (kernel/), which
    /// governs them for the recording, instead of the stock tracepoints.
    #[arg(long)]
    module: bool,
    /// A command to record (after `--`): started once the programs are attached, its
    /// process tree alone recorded (through a cgroup of its own), the recording ending
    /// when it exits.
    #[arg(last = true, value_name = "CMD")]
    command: Vec<String>,
}

/// Where the trace bytes go.
enum Sink {
    /// Stdout, through the recorded writer (a closed pipe exits 141).
    Stdout(crate::output::Writer),
    /// A file: the temporary one renamed over `path` at the end, or a special file written
    /// in place (`tmp` is `None`).
    File { f: File, tmp: Option<PathBuf>, path: PathBuf },
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Stdout(w) => w.write(buf),
            Sink::File { f, .. } => f.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Sink::Stdout(w) => w.write_all(buf),
            Sink::File { f, .. } => f.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Stdout(w) => w.flush(),
            Sink::File { f, .. } => f.flush(),
        }
    }
}

impl Sink {
    fn open(path: &Path) -> Result<Sink, String> {
        if path.as_os_str() == "-" {
            if io::IsTerminal::is_terminal(&io::stdout()) {
                return Err("-o -: stdout is a terminal; a trace is binary\n  help: redirect it (`> FILE`) or give -o FILE".into());
            }
            return Ok(Sink::Stdout(crate::output::stdout()));
        }
        let shown = path.display();
        if std::fs::metadata(path).is_ok_and(|m| m.is_dir()) {
            return Err(format!("-o {shown}: it is a directory"));
        }
        match std::fs::symlink_metadata(path) {
            Ok(m) if !m.file_type().is_file() => {
                // A device, FIFO or symlink: written in place, as a shell's `>` would.
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(path)
                    .map_err(|e| format!("-o {shown}: cannot open it: {e}"))?;
                return Ok(Sink::File { f, tmp: None, path: path.to_path_buf() });
            }
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(format!("-o {shown}: {e}")),
            _ => {}
        }
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).ok_or_else(|| format!("-o {shown}: not a file name"))?;
        for attempt in 0..100 {
            let tmp = dir.join(format!(".{name}.{}.{attempt}.partial", std::process::id()));
            // `create_new`: never write through a file or link someone left at that name.
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp) {
                Ok(f) => return Ok(Sink::File { f, tmp: Some(tmp), path: path.to_path_buf() }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(format!("-o {shown}: cannot create a file in {}: {e}", dir.display())),
            }
        }
        Err(format!("-o {shown}: cannot find a free temporary name in {}", dir.display()))
    }

    /// Puts a finished trace in place.
    fn commit(self) -> Result<(), String> {
        match self {
            Sink::Stdout(mut w) => w.flush().map_err(|e| format!("cannot write the trace to stdout: {e}")),
            Sink::File { f, tmp: None, path } => f.sync_data().or_else(|e| if e.kind() == io::ErrorKind::InvalidInput { Ok(()) } else { Err(e) }).map_err(|e| format!("cannot write {}: {e}", path.display())),
            Sink::File { f, tmp: Some(tmp), path } => {
                let r = f.sync_data().and_then(|()| std::fs::rename(&tmp, &path));
                if let Err(e) = r {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(format!("cannot write {}: {e}", path.display()));
                }
                Ok(())
            }
        }
    }

    /// Removes what a failed recording wrote (the temporary file).
    fn abandon(self) {
        if let Sink::File { tmp: Some(tmp), .. } = self {
            let _ = std::fs::remove_file(tmp);
        }
    }

    /// True when the file is standard output itself (the same open file's device and
    /// inode).
    fn is_stdout(&self) -> bool {
        use std::os::unix::fs::MetadataExt as _;
        let Sink::File { f, .. } = self else { return true };
        let (Ok(mine), Ok(out)) = (f.metadata(), std::fs::metadata("/proc/self/fd/1")) else { return false };
        mine.dev() == out.dev() && mine.ino() == out.ino()
    }

    fn describe(&self, path: &Path) -> String {
        match self {
            Sink::Stdout(_) => "stdout".into(),
            Sink::File { .. } => path.display().to_string(),
        }
    }
}

/// One ring-buffer record (`Rec` of recorder.scl).
#[derive(Clone, Copy, Debug)]
struct Rec {
    ts: u64,
    lock: u64,
    tid: u32,
    pid: u32,
    cpu: u32,
    info: u32,
}

fn decode(b: &[u8]) -> Option<Rec> {
    let u64_at = |o: usize| Some(u64::from_le_bytes(b.get(o..o + 8)?.try_into().ok()?));
    let u32_at = |o: usize| Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?));
    Some(Rec { ts: u64_at(0)?, lock: u64_at(8)?, tid: u32_at(16)?, pid: u32_at(20)?, cpu: u32_at(24)?, info: u32_at(28)? })
}

/// The `LCB_F_*` flags of a `lock.class` (perf's type): the class is what the recorder can
/// read (`scl_catalogue::lock_class_flags`; a mutex's optimistic spinning reads as a plain
/// mutex).
pub fn class_flags(class: u32) -> u32 {
    scl_catalogue::lock_class_flags(class)
}

/// The policy ABI's lock kind of a class, as `lock.kind` computes it on the stock target.
pub fn class_kind(class: u32) -> u32 {
    scl_catalogue::lock_kind(class_flags(class)) as u32
}

/// Per lock, for the summary.
#[derive(Default)]
struct LockStat {
    class: u32,
    /// `acquired` hooks (--module; 0 on the stock tracepoints, which see only waits).
    acquisitions: u64,
    waits: u64,
    failed: u64,
    wait_total: u64,
    wait_max: u64,
}

/// Turns records into trace events: pairs ends with begins, keeps the summary's counts.
#[derive(Default)]
struct Pairing {
    /// Per thread: its open waits (lock, class, start), innermost last.
    open: HashMap<u32, Vec<(u64, u32, u64)>>,
    locks: HashMap<u64, LockStat>,
    threads: HashMap<u32, ()>,
    unpaired_ends: u64,
    /// Second beginnings of a wait already open on the same lock (a mutex that stopped
    /// spinning to sleep), left out.
    merged_begins: u64,
    comms: tasks::Comms,
    comm_list: Vec<(u32, String)>,
    /// --module: the end of a mutex's or rwsem's wait, written just before the `Acquired`
    /// that [`Pairing::event`] returns.
    wait_end: Option<Event>,
}

impl Pairing {
    /// The events of one record, in order, onto `out`.
    fn push(&mut self, r: Rec, out: &mut Vec<Event>) {
        let e = self.event(r);
        out.extend(self.wait_end.take());
        out.extend(e);
    }

    fn event(&mut self, r: Rec) -> Option<Event> {
        if self.threads.insert(r.tid, ()).is_none() {
            let c = self.comms.get(&r.tid.to_string());
            if c != "?" {
                self.comm_list.push((r.tid, c));
            }
        }
        let what = r.info & 0xff;
        if what >= 3 {
            return self.module_event(r, what);
        }
        if what == 0 {
            let class = (r.info >> 8) & 0xff;
            let stack = self.open.entry(r.tid).or_default();
            // A mutex reports its wait twice: `contention_begin` before it spins
            // optimistically and again before it sleeps, with one `contention_end`. The
            // wait began at the first, as perf and `sclc run` count it.
            if stack.last().is_some_and(|(l, _, _)| *l == r.lock) {
                self.merged_begins += 1;
                return None;
            }
            if stack.len() >= MAX_NESTED {
                stack.remove(0);
            }
            stack.push((r.lock, class, r.ts));
            self.locks.entry(r.lock).or_default().class = class;
            return Some(Event {
                ts: r.ts,
                kind: EventKind::ContentionBegin,
                lock: r.lock,
                flags: class_flags(class),
                lock_kind: class_kind(class),
                ok: true,
                tid: r.tid,
                pid: r.pid,
                cpu: r.cpu,
            });
        }
        let stack = self.open.entry(r.tid).or_default();
        let Some(i) = stack.iter().rposition(|(l, _, _)| *l == r.lock) else {
            self.unpaired_ends += 1;
            return None;
        };
        let (_, class, start) = stack.remove(i);
        let ok = what == 1;
        let st = self.locks.entry(r.lock).or_default();
        let w = r.ts.saturating_sub(start);
        st.waits += 1;
        st.failed += u64::from(!ok);
        st.wait_total += w;
        st.wait_max = st.wait_max.max(w);
        Some(Event {
            ts: r.ts,
            kind: EventKind::ContentionEnd,
            lock: r.lock,
            flags: 0,
            lock_kind: class_kind(class),
            ok,
            tid: r.tid,
            pid: r.pid,
            cpu: r.cpu,
        })
    }
}

impl Pairing {
    /// A record of the module recorder's other hooks (module_recorder.scl): 3 to_acquire, 4
    /// acquired, 5 to_release, 6 released. The wait a `contended` opened ends at `acquired`
    /// with a `contention_end`: for a spinlock, whose module hooks are its slow path's alone
    /// (no release hooks, no uncontended acquisition), that alone (the fit's hand-off
    /// inference applies, as on a stock trace); for a mutex or rwsem followed by `Acquired`
    /// (in `wait_end`), which with `ToRelease` gives the fit exact critical sections.
    fn module_event(&mut self, r: Rec, what: u32) -> Option<Event> {
        let class = (r.info >> 8) & 0xff;
        let lock_kind = class_kind(class);
        let mut flags = 0;
        let kind = match what {
            3 => {
                flags = class_flags(class);
                EventKind::ToAcquire
            }
            4 => {
                if let Some(stack) = self.open.get_mut(&r.tid) {
                    if let Some(i) = stack.iter().rposition(|(l, _, _)| *l == r.lock) {
                        let (_, _, start) = stack.remove(i);
                        let st = self.locks.entry(r.lock).or_default();
                        let w = r.ts.saturating_sub(start);
                        st.waits += 1;
                        st.wait_total += w;
                        st.wait_max = st.wait_max.max(w);
                        let end = Event { ts: r.ts, kind: EventKind::ContentionEnd, lock: r.lock, flags: 0, lock_kind, ok: true, tid: r.tid, pid: r.pid, cpu: r.cpu };
                        if lock_kind == 0 {
                            st.acquisitions += 1;
                            return Some(end);
                        }
                        self.wait_end = Some(end);
                    }
                }
                if lock_kind == 0 {
                    // A spinlock's `acquired` whose `contended` was lost: left out, as an end
                    // without its beginning.
                    self.unpaired_ends += 1;
                    return None;
                }
                EventKind::Acquired
            }
            5 => EventKind::ToRelease,
            6 => EventKind::Released,
            _ => return None,
        };
        let st = self.locks.entry(r.lock).or_default();
        st.class = class;
        st.acquisitions += u64::from(kind == EventKind::Acquired);
        Some(Event { ts: r.ts, kind, lock: r.lock, flags, lock_kind, ok: true, tid: r.tid, pid: r.pid, cpu: r.cpu })
    }
}

/// Monotonic clock, as `bpf_ktime_get_ns` reads it.
fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid timespec to write.
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Why the recording stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    Duration,
    MaxEvents,
    MaxSize,
    Signal,
    Command,
    Output,
}

impl Stop {
    fn text(self) -> &'static str {
        match self {
            Stop::Duration => "--duration reached",
            Stop::MaxEvents => "--max-events reached",
            Stop::MaxSize => "--max-size reached",
            Stop::Signal => "interrupted",
            Stop::Command => "the command exited",
            Stop::Output => "the output failed",
        }
    }
}

/// Runs `sclc record`.
pub fn run(args: RecordArgs) -> Status {
    if args.max_events == Some(0) || args.max_size == Some(0) {
        errln!("sclc: error: --max-events and --max-size must be at least 1");
        return Status::Usage;
    }
    let topology = match Topology::from_host() {
        Ok(t) => t,
        Err(e) => {
            errln!("sclc: error: cannot read this machine's topology: {e}");
            return Status::Usage;
        }
    };
    // --module: the module and the locks, checked before anything is loaded.
    let governed = if args.module {
        // The module runs the recorder on every acquisition of a governed lock: the filters
        // are the stock tracepoints' (compiled into stock programs only).
        let f = &args.filter;
        if !f.tids.is_empty() || !f.pids.is_empty() || !f.cpus.is_empty() || !f.types.is_empty() || !f.cgroups.is_empty() || !args.command.is_empty() {
            errln!("sclc: error: --module records every acquisition of the `--lock` locks: --tid, --pid, --cpu, --type, --cgroup and `-- CMD` filter the stock tracepoints only\n  help: record without --module to filter, or filter the trace afterwards");
            return Status::Usage;
        }
        match module::prepare(&args.filter.locks) {
            Ok(g) => Some(g),
            Err(msg) => {
                errln!("sclc: error: {msg}");
                return Status::Usage;
            }
        }
    } else {
        None
    };
    let (filter, cgroup) = match crate::run::filter_for(&args.filter, &args.command, "record", "recorded") {
        Ok(f) => f,
        Err(status) => return status,
    };
    let (name, source, target) = match governed {
        Some(_) => ("module_recorder.scl", module::MODULE_RECORDER, Target::Syncord),
        None => ("recorder.scl", RECORDER, Target::Stock),
    };
    let mut files = Files::new();
    let id = files.add(format!("<sclc record>/{name}"), source.to_string());
    let report = |files: &Files, d: &[Diagnostic]| {
        crate::output::diagnostics(files, d, Format::Human, false);
    };
    let out = match scl_driver::compile_with(&mut files, id, target, &scl_driver::Options { filter }) {
        Ok(o) => o,
        Err(d) => {
            errln!("sclc: internal error: the recorder policy does not compile");
            report(&files, &d);
            return Status::PolicyErrors;
        }
    };
    // Loaded before the output is opened: without BPF nothing is written.
    // Programs the lock-hook module runs inside lock code must not be sleepable.
    let opts = scl_loader::Options { lock_context: target == Target::Syncord };
    let mut loaded = match crate::build::load_or_report("sclc_record", &files, id, &out.object, &[], &report, opts) {
        Ok(l) => l,
        Err(status) => return status,
    };
    let sink = match Sink::open(&args.output) {
        Ok(s) => s,
        Err(msg) => {
            errln!("sclc: error: {msg}");
            return Status::Usage;
        }
    };
    // The trace on stdout (`-o -`, or `-o /dev/stdout` and the like): the summary on stderr.
    let to_stdout = matches!(sink, Sink::Stdout(_)) || sink.is_stdout();
    let target = sink.describe(&args.output);
    let inbox: Rc<RefCell<Vec<Rec>>> = Rc::default();
    let received = Rc::new(RefCell::new(0u64));
    let ring = {
        let (inbox, received) = (inbox.clone(), received.clone());
        loaded.ring("records", move |b| {
            *received.borrow_mut() += 1;
            if let Some(r) = decode(b) {
                inbox.borrow_mut().push(r);
            }
            0
        })
    };
    let ring = match ring {
        Ok(r) => r,
        Err(e) => {
            errln!("sclc: error: {e}");
            sink.abandon();
            return Status::Usage;
        }
    };
    let start_ns = monotonic_ns();
    let tmp = match &sink {
        Sink::File { tmp, .. } => tmp.clone(),
        Sink::Stdout(_) => None,
    };
    let mut writer = match Writer::new(sink, &topology, start_ns) {
        Ok(w) => w,
        Err(e) => {
            // The writer dropped the file with itself: remove what it left.
            if let Some(tmp) = tmp {
                let _ = std::fs::remove_file(tmp);
            }
            return write_failed(&target, &e, None);
        }
    };
    // Before anything is attached or deployed: Ctrl-C or SIGTERM from here on ends the
    // recording through its clean-up.
    let stop_flag = crate::run::stop_on_signal();
    let mut deployment = None;
    if let Some((kmodule, locks)) = governed {
        let hidden: Vec<&str> = out.module.maps.values().filter(|m| m.origin.is_hidden()).map(|m| m.name.as_str()).collect();
        let kinds: Vec<&str> = out.program.policy.as_ref().map(|p| p.kinds.iter().map(|k| k.name()).collect()).unwrap_or_default();
        match module::deploy(&mut loaded, &hidden, &kinds, kmodule, locks) {
            Ok(d) => deployment = Some(d),
            Err(msg) => {
                errln!("sclc: error: {msg}");
                writer_abandon(writer);
                return Status::Usage;
            }
        }
    } else if let Err(e) = loaded.attach_all() {
        errln!("sclc: error: {e}\n  note: the lock tracepoints need Linux 5.19 or later with BTF");
        writer_abandon(writer);
        return Status::Usage;
    }
    let mut child = match workload::start(&args.command, cgroup.as_ref()) {
        Ok(c) => c,
        Err(status) => {
            writer_abandon(writer);
            return status;
        }
    };
    let started = Instant::now();
    let max_events = args.max_events.unwrap_or(u64::MAX);
    let max_size = args.max_size.unwrap_or(u64::MAX);
    let mut pairing = Pairing::default();
    let mut pending: Vec<Event> = Vec::new();
    let mut command_status = None;
    let mut write_error: Option<io::Error> = None;
    let mut poll_error = None;
    // Writes the pending events older than `horizon` in timestamp order, within the bounds.
    let flush = |writer: &mut Writer<Sink>, pending: &mut Vec<Event>, horizon: u64| -> Result<Option<Stop>, io::Error> {
        pending.sort_by_key(|e| e.ts);
        let ready = pending.partition_point(|e| e.ts <= horizon);
        let mut stop = None;
        let mut taken = 0;
        for e in &pending[..ready] {
            if writer.events_written() >= max_events {
                stop = Some(Stop::MaxEvents);
                break;
            }
            if writer.bytes_written() >= max_size {
                stop = Some(Stop::MaxSize);
                break;
            }
            writer.event(e)?;
            taken += 1;
        }
        if stop.is_some() {
            pending.clear();
        } else {
            pending.drain(..taken);
        }
        Ok(stop)
    };
    let mut newest = 0u64;
    let stop = loop {
        // Drained every 10 ms rather than woken per record: a record committed while the
        // reader is caught up makes the kernel wake it (an interrupt per record at worst),
        // which cost more than the rest of the recorder together (docs/performance.md). The
        // ring buffer holds about 130 ms of the busiest storm measured.
        std::thread::sleep(Duration::from_millis(10));
        if let Err(e) = ring.consume() {
            poll_error = Some(e);
            break Stop::Output;
        }
        for r in inbox.borrow_mut().drain(..) {
            newest = newest.max(r.ts);
            pairing.push(r, &mut pending);
        }
        match flush(&mut writer, &mut pending, newest.saturating_sub(REORDER_NS)) {
            Ok(Some(s)) => break s,
            Ok(None) => {}
            Err(e) => {
                write_error = Some(e);
                break Stop::Output;
            }
        }
        // Bounds met by what is already pending stop now; its order is settled at the end.
        if writer.events_written() + pending.len() as u64 >= max_events {
            break Stop::MaxEvents;
        }
        if crate::output::broken() {
            break Stop::Output;
        }
        if stop_flag.load(Ordering::SeqCst) {
            break Stop::Signal;
        }
        if args.duration.is_some_and(|d| started.elapsed() >= d) {
            break Stop::Duration;
        }
        if child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(Some(_)))) {
            break Stop::Command;
        }
    };
    // Detach, let programs already running finish, then take what is left: the recording
    // ends after the last event that can arrive.
    match deployment.as_mut() {
        Some(d) => {
            if let Err(e) = d.stop() {
                errln!("sclc: error: cannot deactivate the module recorder `{}`: {e}", d.name);
            }
        }
        None => loaded.detach_all(),
    }
    std::thread::sleep(Duration::from_millis(20));
    let end_ns = monotonic_ns();
    let elapsed = started.elapsed();
    if let Some(c) = child.as_mut() {
        command_status = Some(workload::describe(&args.command, c.id(), workload::finish(c)));
    }
    let _ = ring.consume();
    for r in inbox.borrow_mut().drain(..) {
        pairing.push(r, &mut pending);
    }
    let mut stop = stop;
    if write_error.is_none() {
        match flush(&mut writer, &mut pending, u64::MAX) {
            Ok(Some(s)) if stop != Stop::Output => stop = s,
            Ok(_) => {}
            Err(e) => write_error = Some(e),
        }
    }
    let calls: u64 = loaded
        .lookup("calls", &0u32.to_le_bytes())
        .ok()
        .flatten()
        .map(|v| v.chunks(8).map(|c| c.iter().rev().fold(0u64, |a, b| (a << 8) | u64::from(*b))).sum())
        .unwrap_or(0);
    let received = *received.borrow();
    // A program does not run while a tracing program runs on its CPU (a lock contended in
    // an interrupt that came during the recorder's own program): the kernel counts those.
    let missed: u64 = loaded.programs().iter().filter_map(|p| loaded.info(p).ok()).map(|i| i.recursion_misses).sum();
    let dropped = calls.saturating_sub(received);
    let lost = dropped + missed;
    drop(ring);
    let module_name = deployment.as_ref().map(|d| d.name.clone());
    if let Some(d) = deployment.take() {
        let name = d.name.clone();
        if let Err(e) = d.remove() {
            errln!("sclc: error: cannot unpin the module recorder `{name}`: {e}\n  help: `sclc unload {name}`");
        }
    }
    drop(loaded);
    if let Some(e) = poll_error {
        errln!("sclc: error: {e}");
        writer_abandon(writer);
        return Status::Usage;
    }
    let events = writer.events_written();
    let threads = writer.thread_count();
    let ksyms = Ksyms::load();
    let mut lock_names: Vec<(u64, String)> = pairing.locks.keys().filter_map(|a| ksyms.data(*a).map(|n| (*a, n))).collect();
    lock_names.sort();
    let mut comms = std::mem::take(&mut pairing.comm_list);
    comms.sort();
    let (lock_count, unpaired) = (writer.lock_count(), pairing.unpaired_ends);
    let bytes_before_trailer = writer.bytes_written();
    let sink = match write_error {
        Some(e) => {
            let status = write_failed(&target, &e, Some(writer));
            report_command(&command_status);
            drop(cgroup);
            return status;
        }
        None => match writer.finish(end_ns, lost, &lock_names, &comms) {
            Ok(s) => s,
            Err(e) => {
                if let Some(tmp) = &tmp {
                    let _ = std::fs::remove_file(tmp);
                }
                let status = write_failed(&target, &e, None);
                report_command(&command_status);
                drop(cgroup);
                return status;
            }
        },
    };
    let size = file_size(&sink, bytes_before_trailer);
    if let Err(msg) = sink.commit() {
        if !crate::output::broken() {
            errln!("sclc: error: {msg}");
        }
        report_command(&command_status);
        drop(cgroup);
        return Status::Usage;
    }
    let names: HashMap<u64, String> = lock_names.into_iter().collect();
    let summary = Summary {
        target: &target,
        stop,
        events,
        locks: lock_count,
        threads,
        elapsed,
        lost,
        dropped,
        missed,
        unpaired,
        merged: pairing.merged_begins,
        size,
        stats: &pairing.locks,
        names: &names,
        top: args.top,
        command: command_status.as_ref().map(|c| c.1.clone()),
        module: module_name,
    };
    let text = match args.format {
        SummaryFormat::Json => format!("{}\n", summary.json()),
        SummaryFormat::Table => summary.table(),
    };
    if to_stdout {
        err!("{text}");
    } else {
        out!("{text}");
    }
    report_command(&command_status);
    drop(cgroup);
    Status::Ok
}

fn report_command(status: &Option<(String, serde_json::Value)>) {
    if let Some((sentence, _)) = status {
        errln!("sclc: {sentence}");
    }
}

/// The size of the finished trace: the file's, or what was written to stdout.
fn file_size(sink: &Sink, before_trailer: u64) -> u64 {
    match sink {
        Sink::File { f, .. } => f.metadata().ok().filter(|m| m.is_file()).map(|m| m.len()).unwrap_or(before_trailer),
        Sink::Stdout(_) => before_trailer,
    }
}

fn writer_abandon(w: Writer<Sink>) {
    w.into_inner().abandon();
}

/// Reports a failed write of the trace and removes the temporary file.
fn write_failed(target: &str, e: &io::Error, w: Option<Writer<Sink>>) -> Status {
    if let Some(w) = w {
        writer_abandon(w);
    }
    if target == "stdout" {
        // Recorded by the output writer, which decides the exit status: a closed pipe
        // 141 quietly, anything else 2 with a message.
        return Status::Ok;
    }
    errln!("sclc: error: cannot write the trace to {target}: {e}; no trace was written");
    Status::Usage
}

struct Summary<'a> {
    target: &'a str,
    stop: Stop,
    events: u64,
    locks: u64,
    threads: u64,
    elapsed: Duration,
    lost: u64,
    dropped: u64,
    missed: u64,
    unpaired: u64,
    merged: u64,
    size: u64,
    stats: &'a HashMap<u64, LockStat>,
    names: &'a HashMap<u64, String>,
    top: usize,
    command: Option<serde_json::Value>,
    /// --module: the recorder's pin name.
    module: Option<String>,
}

impl Summary<'_> {
    fn hottest(&self) -> Vec<(u64, &LockStat)> {
        let mut v: Vec<(u64, &LockStat)> = self.stats.iter().filter(|(_, s)| s.waits > 0 || s.acquisitions > 0).map(|(a, s)| (*a, s)).collect();
        v.sort_by(|a, b| b.1.wait_total.cmp(&a.1.wait_total).then(a.0.cmp(&b.0)));
        v.truncate(self.top);
        v
    }

    fn name(&self, addr: u64) -> String {
        self.names.get(&addr).cloned().unwrap_or_else(|| format!("{addr:#x}"))
    }

    fn per_event(&self) -> f64 {
        if self.events == 0 {
            0.0
        } else {
            self.size as f64 / self.events as f64
        }
    }

    fn table(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(s, "sclc record: {} ({})", self.target, self.stop.text());
        let _ = writeln!(
            s,
            "  {} events, {} locks, {} threads in {:.2}s; {} lost; {} bytes ({:.1} bytes/event)",
            self.events,
            self.locks,
            self.threads,
            self.elapsed.as_secs_f64(),
            self.lost,
            self.size,
            self.per_event()
        );
        if self.lost > 0 {
            let _ = writeln!(
                s,
                "  note: {} events were lost ({} with the ring buffer full, {} while a tracing program already ran on that CPU); the trace has gaps there",
                self.lost, self.dropped, self.missed
            );
        }
        if self.unpaired > 0 {
            let _ = writeln!(s, "  {} ends of waits without their beginning (begun before the recording, or lost) were left out", self.unpaired);
        }
        if let Some(m) = &self.module {
            let _ = writeln!(s, "  recorded in the lock-hook module as `{m}`, taken out again: the full hook set of the governed locks");
        }
        let hot = self.hottest();
        if !hot.is_empty() {
            let _ = writeln!(s, "\n  {:<40} {:<12} {:>10} {:>14} {:>14}", "lock", "type", "waits", "wait_total", "wait_max");
            for (addr, st) in hot {
                let _ = writeln!(
                    s,
                    "  {:<40} {:<12} {:>10} {:>14} {:>14}",
                    self.name(addr),
                    class_name(st.class),
                    st.waits,
                    crate::run::units::human_ns(st.wait_total),
                    crate::run::units::human_ns(st.wait_max)
                );
            }
        }
        s
    }

    fn json(&self) -> serde_json::Value {
        let hot: Vec<serde_json::Value> = self
            .hottest()
            .into_iter()
            .map(|(addr, st)| {
                serde_json::json!({
                    "lock": format!("{addr:#x}"),
                    "name": self.names.get(&addr),
                    "type": class_name(st.class),
                    "waits": st.waits,
                    "acquisitions": st.acquisitions,
                    "failed": st.failed,
                    "wait_total_ns": st.wait_total,
                    "wait_max_ns": st.wait_max,
                })
            })
            .collect();
        let mut v = serde_json::json!({
            "output": self.target,
            "stopped": self.stop.text(),
            "events": self.events,
            "locks": self.locks,
            "threads": self.threads,
            "duration_s": self.elapsed.as_secs_f64(),
            "lost": self.lost,
            "lost_ring_full": self.dropped,
            "lost_recursion": self.missed,
            "unpaired_ends": self.unpaired,
            "merged_begins": self.merged,
            "bytes": self.size,
            "bytes_per_event": self.per_event(),
            "hottest": hot,
        });
        if let Some(c) = &self.command {
            v["command"] = c.clone();
        }
        if let Some(m) = &self.module {
            v["module"] = m.clone().into();
        }
        v
    }
}

fn class_name(class: u32) -> String {
    scl_catalogue::LOCK_CLASSES.get(class as usize).map_or_else(|| format!("class {class}"), |c| c.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_map_to_their_flags_and_kinds() {
        // As `lock.class` and `lock.kind` compute them from the flags (scl-ir lower/mod.rs).
        assert_eq!(scl_catalogue::LOCK_CLASSES.len(), 12);
        assert_eq!((class_flags(1), class_kind(1)), (32, 1));
        assert_eq!((class_flags(3), class_kind(3)), (4, 2));
        assert_eq!((class_flags(4), class_kind(4)), (3, 0));
        assert_eq!((class_flags(9), class_kind(9)), (18, 2));
        for (name, flags) in scl_ir::lower::LOCK_TYPES {
            for f in *flags {
                if let Some(class) = (0..12u32).find(|c| class_flags(*c) == *f) {
                    assert!(name.starts_with(class_name(class).split(':').next().unwrap().trim_end_matches("-sem")) || name.contains("percpu"), "{name} {f} -> {}", class_name(class));
                }
            }
        }
    }

    #[test]
    fn ends_pair_with_their_begins() {
        let mut p = Pairing::default();
        let rec = |ts, lock, tid, info| Rec { ts, lock, tid, pid: 1, cpu: 0, info };
        // An end of a wait that began before the recording: dropped.
        assert!(p.event(rec(1, 0xa, 7, 1)).is_none());
        let b = p.event(rec(2, 0xa, 7, 1 << 8)).unwrap();
        assert_eq!((b.kind, b.flags, b.lock_kind), (EventKind::ContentionBegin, 32, 1));
        // The mutex stops spinning and sleeps: one wait, from its first beginning.
        assert!(p.event(rec(2, 0xa, 7, 1 << 8)).is_none());
        assert_eq!(p.merged_begins, 1);
        // Nested: the mutex's wait_lock.
        p.event(rec(3, 0xb, 7, 0)).unwrap();
        let e = p.event(rec(4, 0xb, 7, 1)).unwrap();
        assert_eq!((e.kind, e.lock_kind, e.ok), (EventKind::ContentionEnd, 0, true));
        let e = p.event(rec(9, 0xa, 7, 2)).unwrap();
        assert_eq!((e.lock_kind, e.ok), (1, false));
        assert_eq!(p.unpaired_ends, 1);
        let st = &p.locks[&0xa];
        assert_eq!((st.waits, st.failed, st.wait_total), (1, 1, 7));
    }
}

#[cfg(test)]
mod module_tests {
    use super::*;

    fn rec(ts: u64, lock: u64, tid: u32, info: u32) -> Rec {
        Rec { ts, lock, tid, pid: 1, cpu: 0, info }
    }

    #[test]
    fn module_hooks_become_the_events_the_fit_reads() {
        let mut p = Pairing::default();
        // A writer of an rwsem (class 3): to_acquire, contended, acquired, to_release, released.
        let mut out = Vec::new();
        for (what, ts) in [(3u32, 1u64), (0, 2), (4, 5), (5, 9), (6, 10)] {
            p.push(rec(ts, 0xa, 7, what | (3 << 8)), &mut out);
        }
        let kinds: Vec<(EventKind, u32, u32)> = out.iter().map(|e| (e.kind, e.flags, e.lock_kind)).collect();
        assert_eq!(out[2].ts, out[3].ts, "the wait ends as the lock is acquired");
        assert_eq!(
            kinds,
            [
                (EventKind::ToAcquire, 4, 2),
                (EventKind::ContentionBegin, 4, 2),
                (EventKind::ContentionEnd, 0, 2),
                (EventKind::Acquired, 0, 2),
                (EventKind::ToRelease, 0, 2),
                (EventKind::Released, 0, 2)
            ]
        );
        let st = &p.locks[&0xa];
        assert_eq!((st.waits, st.wait_total, st.acquisitions), (1, 3, 1));
        // An uncontended mutex acquisition: no wait.
        assert_eq!(p.event(rec(20, 0xb, 8, 3 | (1 << 8))).unwrap().kind, EventKind::ToAcquire);
        assert_eq!(p.event(rec(21, 0xb, 8, 4 | (1 << 8))).unwrap().kind, EventKind::Acquired);
        assert!(p.wait_end.is_none(), "no wait to end");
        assert_eq!((p.locks[&0xb].waits, p.locks[&0xb].acquisitions), (0, 1));
        // A spinlock's slow path ends its wait with a contention_end (no release hooks).
        p.event(rec(30, 0xc, 9, 0)).unwrap();
        let e = p.event(rec(33, 0xc, 9, 4)).unwrap();
        assert_eq!((e.kind, e.ok, e.lock_kind), (EventKind::ContentionEnd, true, 0));
        // ... and one whose contended was lost is left out.
        assert!(p.event(rec(40, 0xc, 9, 4)).is_none());
        assert_eq!(p.unpaired_ends, 1);
        // Unknown codes are dropped.
        assert!(p.event(rec(50, 0xc, 9, 7)).is_none());
    }
}
