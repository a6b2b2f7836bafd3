//! Loading sclc's BPF objects into the running kernel, with libbpf-rs.
//!
//! This is the only crate that makes BPF syscalls. It opens an object from memory, sets
//! `.rodata` before load, loads it (the kernel verifier runs here), runs `syscall`
//! programs through `BPF_PROG_TEST_RUN`, attaches tracepoint programs, reads maps and
//! program info, and turns the kernel's refusals into errors that carry the verifier's
//! log. It must not know SCL: it sees bytes and names.
//!
//! Deployment: [`pin`] pins a loaded object under `/sys/fs/bpf/scl/NAME/` (and lists and
//! removes pinned policies); [`pinned`] opens a pinned policy's maps with keys and values
//! typed from the object's BTF, for `sclc map` and for applications.

#![deny(missing_docs)]

mod btf;
pub mod kmod;
pub mod ksyms;
pub mod pin;
pub mod pinned;

use libbpf_rs::{MapCore, MapFlags, ObjectBuilder, PrintLevel, ProgramInput};
use std::fmt;
use std::sync::Mutex;

/// libbpf's log callback is process-wide: loads are serialised so each error carries its
/// own verifier log.
static LOG: Mutex<Option<String>> = Mutex::new(None);
static LOAD: Mutex<()> = Mutex::new(());

/// Why the kernel could not take an object.
#[derive(Debug)]
pub enum LoadError {
    /// The environment cannot load BPF at all: not privileged, or no kernel BTF. Tests
    /// may skip on this, and only on this.
    Unsupported(String),
    /// libbpf or the kernel failed at a step that is not the verifier's judgement of a
    /// program: opening the object, loading its BTF, resolving a program's attach point,
    /// a program type or feature this kernel lacks, attaching, a test run, a map access.
    Refused {
        /// What was being done, with the failing step libbpf named (`loading object `x` into
        /// the kernel, at: prog 'p': failed to find kernel BTF type ID of 'tp': -ESRCH`).
        what: String,
        /// The error, with its errno name (`No such process (os error 3, ESRCH)`).
        error: String,
        /// What libbpf said about the failure: its warning and error lines.
        log: String,
    },
    /// The kernel verifier rejected program `program`: its log says why.
    Verifier {
        /// The program's name.
        program: String,
        /// The error (EACCES or EINVAL, with its errno name).
        error: String,
        /// The verifier's log of the program, as libbpf printed it.
        log: String,
    },
    /// The kernel refused to create one of the object's maps (larger than this kernel
    /// allows, or more memory than this process may use): a limit of the environment, not
    /// a verifier rejection. Nothing of the object stays loaded.
    Map {
        /// The map's name.
        name: String,
        /// The error.
        error: String,
    },
    /// A name that is not in the object.
    Missing(String),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Unsupported(why) => write!(f, "this kernel cannot load BPF programs here: {why}"),
            LoadError::Refused { what, error, log } => {
                write!(f, "{what}: {error}")?;
                if !log.is_empty() {
                    write!(f, "\n{log}")?;
                }
                Ok(())
            }
            LoadError::Verifier { program, error, log } => {
                write!(f, "the kernel verifier rejected program `{program}`: {error}")?;
                if !log.is_empty() {
                    write!(f, "\n{log}")?;
                }
                Ok(())
            }
            LoadError::Map { name, error } => {
                write!(f, "the kernel refused to create map `{name}`: {error}")?;
                if error.contains("os error 7") {
                    write!(f, " (the map is larger than this kernel allows: per-CPU values are limited to 32 KiB, hash maps to 2^31 entries)")?;
                } else if error.contains("os error 12") {
                    write!(f, " (not enough memory for it, or over this process's memory cgroup or RLIMIT_MEMLOCK)")?;
                }
                Ok(())
            }
            LoadError::Missing(name) => write!(f, "no program or map named `{name}` in the object"),
        }
    }
}

impl std::error::Error for LoadError {}

/// Checks whether this process can load BPF programs that use kernel BTF.
pub fn check_support() -> Result<(), LoadError> {
    if !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
        return Err(LoadError::Unsupported("the kernel has no BTF (/sys/kernel/btf/vmlinux is missing)".into()));
    }
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc_geteuid() };
    if euid != 0 {
        return Err(LoadError::Unsupported("not running as root (CAP_BPF and CAP_PERFMON are needed)".into()));
    }
    Ok(())
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

fn capture(level: PrintLevel, msg: String) {
    let _ = level;
    if let Ok(mut log) = LOG.lock() {
        if let Some(buf) = log.as_mut() {
            buf.push_str(&msg);
        }
    }
}

/// Runs `f` with libbpf's log captured; returns the log with the result.
fn with_log<T>(f: impl FnOnce() -> T) -> (T, String) {
    let _serial = LOAD.lock().unwrap_or_else(|e| e.into_inner());
    *LOG.lock().unwrap_or_else(|e| e.into_inner()) = Some(String::new());
    libbpf_rs::set_print(Some((PrintLevel::Debug, capture)));
    let out = f();
    libbpf_rs::set_print(None);
    let log = LOG.lock().unwrap_or_else(|e| e.into_inner()).take().unwrap_or_default();
    (out, log)
}

/// Keeps only the verifier's part of libbpf's log, which is long and mostly about BTF.
fn verifier_part(log: &str) -> String {
    let start = log.find("-- BEGIN PROG LOAD LOG --").or_else(|| log.find("libbpf: prog '")).unwrap_or(0);
    let end = log.find("-- END PROG LOAD LOG --").map_or(log.len(), |e| e + "-- END PROG LOAD LOG --".len());
    log[start..end.max(start)].to_string()
}

/// The program whose verifier log libbpf printed, if the log holds a non-empty one: only
/// then did the verifier judge a program (a program the kernel refused before verifying it,
/// for a type or attach point it lacks, has no log).
fn verifier_rejected(log: &str) -> Option<String> {
    let begin = log.find("-- BEGIN PROG LOAD LOG --")?;
    let line_start = log[..begin].rfind('\n').map_or(0, |i| i + 1);
    let program = log[line_start..begin].split("prog '").nth(1)?.split('\'').next()?.to_string();
    let body = &log[begin + "-- BEGIN PROG LOAD LOG --".len()..];
    let body = body.find("-- END PROG LOAD LOG --").map_or(body, |e| &body[..e]);
    (!body.trim().is_empty()).then_some(program)
}

/// The symbolic name of an errno the BPF syscalls return.
fn errno_name(n: i32) -> Option<&'static str> {
    Some(match n {
        1 => "EPERM",
        2 => "ENOENT",
        3 => "ESRCH",
        4 => "EINTR",
        7 => "E2BIG",
        9 => "EBADF",
        12 => "ENOMEM",
        13 => "EACCES",
        14 => "EFAULT",
        16 => "EBUSY",
        17 => "EEXIST",
        19 => "ENODEV",
        22 => "EINVAL",
        28 => "ENOSPC",
        34 => "ERANGE",
        38 => "ENOSYS",
        95 => "EOPNOTSUPP",
        524 => "ENOTSUPP",
        _ => return None,
    })
}

/// `error` with its errno's name: `No such process (os error 3)` becomes
/// `No such process (os error 3, ESRCH)`.
fn with_errno_name(error: &str) -> String {
    let Some(at) = error.rfind("(os error ") else { return error.to_string() };
    let digits: String = error[at + 10..].chars().take_while(char::is_ascii_digit).collect();
    match digits.parse().ok().and_then(errno_name) {
        Some(name) => format!("{}(os error {digits}, {name}){}", &error[..at], &error[at + 10 + digits.len() + 1..]),
        None => error.to_string(),
    }
}

/// libbpf's lines about a failure (errors and warnings), without the generic last one and
/// without the optional steps it went on without.
fn failure_lines(log: &str) -> Vec<&str> {
    log.lines()
        .map(str::trim_end)
        .filter(|l| {
            let low = l.to_ascii_lowercase();
            (low.contains("fail") || low.contains("error") || low.contains("warn") || low.contains("not supported") || low.contains(": -e"))
                && !low.contains("failed to load object")
                // Steps libbpf tries and goes on without (a BPF token, a feature probe).
                && !low.contains("skipping")
                && !low.contains("optional")
                && !low.contains("ignoring")
        })
        .collect()
}

/// Sorts a failure to load object `object` at `stage` into what it is: no privilege, a map
/// the kernel would not create, the verifier rejecting a program (with its log), or another
/// step of libbpf or the kernel failing (the step, the errno and what libbpf said).
fn classify(object: &str, stage: &str, error: &str, log: &str) -> LoadError {
    // EPERM means no privilege; EACCES (also "permission denied" to libbpf-rs) is the
    // verifier refusing the program, which must never be skipped.
    if error.contains("(os error 1)") {
        return LoadError::Unsupported(format!("{stage}: {error}"));
    }
    if let Some(name) = refused_map(log) {
        return LoadError::Map { name, error: error.to_string() };
    }
    let error = with_errno_name(error);
    if let Some(program) = verifier_rejected(log) {
        return LoadError::Verifier { program, error, log: verifier_part(log) };
    }
    let lines = failure_lines(log);
    let what = match lines.first() {
        Some(step) => format!("{stage} object `{object}` failed at: {}", step.trim_start_matches("libbpf: ")),
        None => format!("{stage} object `{object}` failed"),
    };
    LoadError::Refused { what, error, log: lines.iter().map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n") }
}

/// The map libbpf failed to create, from its log (`libbpf: map 'NAME': failed to create: ...`).
fn refused_map(log: &str) -> Option<String> {
    log.lines().find_map(|l| {
        let rest = l.split("map '").nth(1)?;
        let (name, after) = rest.split_once('\'')?;
        after.starts_with(": failed to create").then(|| name.to_string())
    })
}

/// An object loaded into the kernel. Dropping it unloads its programs and maps (and
/// detaches what it attached).
pub struct Loaded {
    obj: libbpf_rs::Object,
    links: Vec<libbpf_rs::Link>,
}

/// Kernel-reported facts about a loaded program.
#[derive(Clone, Debug, Default)]
pub struct ProgInfo {
    /// The kernel's id of the program.
    pub id: u32,
    /// Instructions after the verifier's rewrites (`xlated`).
    pub xlated_insns: u32,
    /// Instructions the verifier processed.
    pub verified_insns: u32,
    /// Calls counted by `bpf_stats`.
    pub run_cnt: u64,
    /// Nanoseconds counted by `bpf_stats`.
    pub run_time_ns: u64,
    /// The program's BTF id (0 when BTF was dropped).
    pub btf_id: u32,
    /// Line info records the kernel kept.
    pub line_info_cnt: u32,
    /// Times the program did not run because it (or another tracing program) was already
    /// running on that CPU: an event it missed.
    pub recursion_misses: u64,
}

/// How programs are loaded.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Load `syscall` programs for lock context: non-sleepable, as
    /// `BPF_PROG_TYPE_RAW_TRACEPOINT`. libbpf loads the `syscall` section sleepable, which
    /// is right for `BPF_PROG_TEST_RUN` but wrong inside lock code (the lock-hook module
    /// refuses sleepable programs), and kernels before 6.5 allow syscall programs only
    /// sleepable. A raw tracepoint program takes the same read-only context (the verifier
    /// bounds its reads to 96 bytes, which covers every field of ABI v1), the same
    /// helpers, and runs non-sleepable (docs/abi.md §4).
    pub lock_context: bool,
}

/// Opens and loads `bytes`, first overwriting `.rodata` bytes at the given offsets.
pub fn load(name: &str, bytes: &[u8], rodata: &[(usize, Vec<u8>)]) -> Result<Loaded, LoadError> {
    load_with(name, bytes, rodata, Options::default())
}

/// [`load`] with [`Options`].
pub fn load_with(name: &str, bytes: &[u8], rodata: &[(usize, Vec<u8>)], opts: Options) -> Result<Loaded, LoadError> {
    check_support()?;
    let (result, log) = with_log(|| -> Result<libbpf_rs::Object, (String, libbpf_rs::Error)> {
        let mut builder = ObjectBuilder::default();
        builder.name(name).map_err(|e| ("naming".to_string(), e))?;
        let mut open = builder.open_memory(bytes).map_err(|e| ("opening".to_string(), e))?;
        if !rodata.is_empty() {
            for mut m in open.maps_mut() {
                if m.name().to_string_lossy().ends_with(".rodata") {
                    if let Some(data) = m.initial_value_mut() {
                        for (off, val) in rodata {
                            if let Some(dst) = data.get_mut(*off..*off + val.len()) {
                                dst.copy_from_slice(val);
                            }
                        }
                    }
                }
            }
        }
        if opts.lock_context {
            for mut p in open.progs_mut() {
                if p.prog_type() == libbpf_rs::ProgramType::Syscall {
                    // Changing a program's type also drops the `syscall` section's handler,
                    // which is what adds BPF_F_SLEEPABLE (bpf_program__set_type).
                    p.set_prog_type(libbpf_rs::ProgramType::RawTracepoint);
                    p.set_flags(0);
                }
            }
        }
        open.load().map_err(|e| ("loading".to_string(), e))
    });
    match result {
        Ok(obj) => Ok(Loaded { obj, links: Vec::new() }),
        Err((stage, e)) => Err(classify(name, &stage, &e.to_string(), &log)),
    }
}

/// The tracepoint programs of `obj` in the order they must attach: the end of a wait
/// before its beginning.
///
/// Between two attachments one program runs without the other. Were `contention_begin`
/// first, a wait that began and ended in between would leave its thread's record open, and
/// the policy would drop that thread's later waits until one ended on the same lock, then
/// count one huge wait (a phantom). With the end first, a policy only sees ends of waits
/// that began before it was attached, which have no recorded beginning to match.
pub(crate) fn attach_order(obj: &mut libbpf_rs::Object) -> Vec<libbpf_rs::ProgramMut<'_>> {
    let mut progs: Vec<_> = obj.progs_mut().filter(|p| p.section().to_string_lossy().starts_with("tp_btf/")).collect();
    progs.sort_by_key(|p| p.section().to_string_lossy() != "tp_btf/contention_end");
    progs
}

/// Before every attachment but the first: for tests, `SCL_ATTACH_GAP_MS` widens the time
/// between two attachments, so that a test can show that the attach order leaves a policy
/// no phantom waits however long the gap.
pub(crate) fn attach_gap(index: usize) {
    let ms = std::env::var("SCL_ATTACH_GAP_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(0u64);
    if index > 0 && ms > 0 {
        std::thread::sleep(std::time::Duration::from_millis(ms.min(10_000)));
    }
}

impl Loaded {
    /// Runs the `syscall` program `prog` once with `ctx` (copied back after the run);
    /// returns its result (`r0`).
    pub fn test_run(&mut self, prog: &str, ctx: &mut [u8]) -> Result<u32, LoadError> {
        let p = self
            .obj
            .progs_mut()
            .find(|p| p.name().to_string_lossy() == prog)
            .ok_or_else(|| LoadError::Missing(prog.into()))?;
        let input = ProgramInput { context_in: Some(ctx), ..Default::default() };
        let out = p.test_run(input).map_err(|e| LoadError::Refused { what: format!("running `{prog}`"), error: e.to_string(), log: String::new() })?;
        Ok(out.return_value)
    }

    /// Attaches every program that can be attached on its own (tracepoints), in
    /// [`attach_order`].
    pub fn attach_all(&mut self) -> Result<usize, LoadError> {
        let mut n = 0;
        for (i, p) in attach_order(&mut self.obj).into_iter().enumerate() {
            attach_gap(i);
            let section = p.section().to_string_lossy().into_owned();
            let name = p.name().to_string_lossy().into_owned();
            let link = p.attach().map_err(|e| LoadError::Refused { what: format!("attaching `{name}` ({section})"), error: e.to_string(), log: String::new() })?;
            self.links.push(link);
            n += 1;
        }
        Ok(n)
    }

    /// Detaches every attached program (the object and its maps stay loaded, so a ring
    /// buffer can be drained and counters read after the last event).
    pub fn detach_all(&mut self) {
        self.links.clear();
    }

    /// A reader of the ring-buffer map `map` that calls `f` with each record's bytes, in
    /// the order the kernel committed them ([`Ring::poll`], [`Ring::consume`]). A negative
    /// return from `f` stops the current poll, which then fails.
    pub fn ring<'cb>(&self, map: &str, f: impl FnMut(&[u8]) -> i32 + 'cb) -> Result<Ring<'cb>, LoadError> {
        let m = self.obj.maps().find(|m| m.name().to_string_lossy() == map).ok_or_else(|| LoadError::Missing(map.into()))?;
        let err = |e: libbpf_rs::Error| LoadError::Refused { what: format!("reading ring buffer `{map}`"), error: e.to_string(), log: String::new() };
        let mut b = libbpf_rs::RingBufferBuilder::new();
        b.add(&m, f).map_err(err)?;
        Ok(Ring { rb: b.build().map_err(err)?, map: map.to_string() })
    }

    /// The value under `key` in map `map` (for a per-CPU map, each CPU's value in turn).
    pub fn lookup(&self, map: &str, key: &[u8]) -> Result<Option<Vec<u8>>, LoadError> {
        let m = self.obj.maps().find(|m| m.name().to_string_lossy() == map).ok_or_else(|| LoadError::Missing(map.into()))?;
        let err = |e: libbpf_rs::Error| LoadError::Refused { what: format!("reading map `{map}`"), error: e.to_string(), log: String::new() };
        if m.map_type().is_percpu() {
            return Ok(m.lookup_percpu(key, MapFlags::ANY).map_err(err)?.map(|v| v.concat()));
        }
        m.lookup(key, MapFlags::ANY).map_err(err)
    }

    /// Writes `value` under `key` in map `map`.
    pub fn update(&self, map: &str, key: &[u8], value: &[u8]) -> Result<(), LoadError> {
        let m = self.obj.maps().find(|m| m.name().to_string_lossy() == map).ok_or_else(|| LoadError::Missing(map.into()))?;
        m.update(key, value, MapFlags::ANY).map_err(|e| LoadError::Refused { what: format!("writing map `{map}`"), error: e.to_string(), log: String::new() })
    }

    /// The stack under `id` in the stack-trace map `map`, innermost frame first, without
    /// the zeros after its last frame; `None` if there is none (a negative id: the program
    /// could not record it).
    pub fn stack(&self, map: &str, id: i64) -> Result<Option<Vec<u64>>, LoadError> {
        let Ok(id) = u32::try_from(id) else { return Ok(None) };
        let Some(bytes) = self.lookup(map, &id.to_le_bytes())? else { return Ok(None) };
        let mut frames: Vec<u64> = bytes.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))).collect();
        while frames.last() == Some(&0) {
            frames.pop();
        }
        Ok(Some(frames))
    }

    /// Every key of map `map`.
    pub fn keys(&self, map: &str) -> Result<Vec<Vec<u8>>, LoadError> {
        let m = self.obj.maps().find(|m| m.name().to_string_lossy() == map).ok_or_else(|| LoadError::Missing(map.into()))?;
        Ok(m.keys().collect())
    }

    /// The names of the programs, in object order.
    pub fn programs(&self) -> Vec<String> {
        self.obj.progs().map(|p| p.name().to_string_lossy().into_owned()).collect()
    }

    /// What the kernel reports about program `prog`.
    pub fn info(&self, prog: &str) -> Result<ProgInfo, LoadError> {
        use std::os::fd::{AsFd, AsRawFd};
        let p = self.obj.progs().find(|p| p.name().to_string_lossy() == prog).ok_or_else(|| LoadError::Missing(prog.into()))?;
        let fd = p.as_fd().as_raw_fd();
        let mut info = libbpf_sys::bpf_prog_info::default();
        let mut len = std::mem::size_of::<libbpf_sys::bpf_prog_info>() as u32;
        // SAFETY: `info` is a valid, writable bpf_prog_info and `len` its size; the kernel
        // writes at most `len` bytes.
        let rc = unsafe { libbpf_sys::bpf_prog_get_info_by_fd(fd, &mut info, &mut len) };
        if rc != 0 {
            return Err(LoadError::Refused { what: format!("reading info of `{prog}`"), error: std::io::Error::last_os_error().to_string(), log: String::new() });
        }
        Ok(ProgInfo {
            id: info.id,
            xlated_insns: info.xlated_prog_len / 8,
            verified_insns: info.verified_insns,
            run_cnt: info.run_cnt,
            run_time_ns: info.run_time_ns,
            btf_id: info.btf_id,
            line_info_cnt: info.nr_line_info,
            recursion_misses: info.recursion_misses,
        })
    }
}

/// A ring buffer being read ([`Loaded::ring`]).
pub struct Ring<'cb> {
    rb: libbpf_rs::RingBuffer<'cb>,
    map: String,
}

impl Ring<'_> {
    fn err(&self, e: libbpf_rs::Error) -> LoadError {
        LoadError::Refused { what: format!("reading ring buffer `{}`", self.map), error: e.to_string(), log: String::new() }
    }

    /// Waits up to `timeout` for records and hands each one available to the callback
    /// (a signal that interrupts the wait is not an error).
    pub fn poll(&self, timeout: std::time::Duration) -> Result<(), LoadError> {
        let rc = self.rb.poll_raw(timeout);
        if rc >= 0 || rc == -libc::EINTR {
            return Ok(());
        }
        Err(self.err(libbpf_rs::Error::from_raw_os_error(-rc)))
    }

    /// Hands every record available now to the callback, without waiting.
    pub fn consume(&self) -> Result<(), LoadError> {
        self.rb.consume().map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_map_libbpf_could_not_create_is_found_in_its_log() {
        let log = "libbpf: map 'small': created successfully, fd=5\nlibbpf: map 'big': failed to create: -E2BIG\nlibbpf: failed to load object 'x'\n";
        assert_eq!(refused_map(log).as_deref(), Some("big"));
        assert_eq!(refused_map("libbpf: prog 'contended': BPF program load failed: -EACCES\n"), None);
        let e = LoadError::Map { name: "big".into(), error: "Argument list too long (os error 7)".into() };
        assert!(e.to_string().starts_with("the kernel refused to create map `big`: Argument list too long (os error 7) (the map is larger"), "{e}");
    }

    /// A verifier rejection is told from every other failure by the program's non-empty
    /// verifier log; the others name libbpf's failing step and the errno (issue 14).
    #[test]
    fn load_failures_are_told_apart() {
        let verifier = "libbpf: prog 'contended': BPF program load failed: Permission denied\n\
                        libbpf: prog 'contended': -- BEGIN PROG LOAD LOG --\n\
                        0: R1=ctx() R10=fp0\nR0 invalid mem access 'map_value_or_null'\n\
                        processed 6 insns (limit 1000000)\n\
                        -- END PROG LOAD LOG --\n\
                        libbpf: failed to load object 'x'\n";
        match classify("x", "loading", "Permission denied (os error 13)", verifier) {
            LoadError::Verifier { program, error, log } => {
                assert_eq!(program, "contended");
                assert_eq!(error, "Permission denied (os error 13, EACCES)");
                assert!(log.contains("invalid mem access"), "{log}");
            }
            other => panic!("not a verifier rejection: {other}"),
        }
        // Seen on this kernel for a tracepoint it does not have (tests/loader_faults.rs).
        let tracepoint = "libbpf: object 'lfault': failed (-95) to create BPF token from '/sys/fs/bpf', skipping optional step...\n\
                          libbpf: prog 'lfault_tp': failed to find kernel BTF type ID of 'lfault_no_such_tracepoint': -ESRCH\n\
                          libbpf: prog 'lfault_tp': failed to prepare load attributes: -ESRCH\n\
                          libbpf: prog 'lfault_tp': failed to load: -ESRCH\n\
                          libbpf: failed to load object 'lfault'\n";
        let e = classify("lfault", "loading", "No such process (os error 3)", tracepoint);
        assert!(matches!(e, LoadError::Refused { .. }), "{e}");
        let text = e.to_string();
        assert!(text.starts_with("loading object `lfault` failed at: prog 'lfault_tp': failed to find kernel BTF type ID of 'lfault_no_such_tracepoint': -ESRCH: No such process (os error 3, ESRCH)"), "{text}");
        assert!(text.contains("failed to prepare load attributes"), "{text}");
        // A program type this kernel lacks: refused before the verifier, with no log.
        let no_type = "libbpf: prog 'contended': BPF program load failed: Invalid argument\n\
                       libbpf: prog 'contended': failed to load: -22\n\
                       libbpf: failed to load object 'scl'\n";
        let e = classify("scl", "loading", "Invalid argument (os error 22)", no_type);
        assert!(matches!(e, LoadError::Refused { .. }), "{e}");
        assert!(e.to_string().contains("(os error 22, EINVAL)"), "{e}");
        // An empty verifier log is no verifier judgement either.
        let empty = "libbpf: prog 'p': BPF program load failed: Invalid argument\n\
                     libbpf: prog 'p': -- BEGIN PROG LOAD LOG --\n-- END PROG LOAD LOG --\n";
        assert!(matches!(classify("o", "loading", "Invalid argument (os error 22)", empty), LoadError::Refused { .. }));
        assert!(matches!(classify("o", "loading", "Operation not permitted (os error 1)", ""), LoadError::Unsupported(_)));
    }
}
