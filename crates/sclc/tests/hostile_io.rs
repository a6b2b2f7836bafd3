//! Hostile output (issue 15, class 2): every command whose output cannot be written.
//!
//! One table of commands, each run three ways: stdout a pipe whose reader is already gone,
//! stdout `/dev/full`, and stderr a pipe whose reader is gone. A closed pipe must end the
//! command quietly with status 141 (as a tool killed by SIGPIPE), any other write error
//! must be status 2 with a message, and nothing may panic. `sclc run | head -1` must stop,
//! and detach its programs, once its reader is gone.

mod common;
use common::repo_root;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn kernel() -> bool {
    scl_loader::kernel_tests_can_run()
}

/// A pipe whose read end is closed: every write to the other end fails with EPIPE.
fn closed_pipe() -> Stdio {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    writer.into()
}

fn dev_full() -> Stdio {
    std::fs::OpenOptions::new().write(true).open("/dev/full").expect("/dev/full").into()
}

#[derive(Clone, Copy, Debug)]
enum Sink {
    ClosedStdout,
    FullStdout,
    ClosedStderr,
}

fn run(args: &[&str], sink: Sink) -> (Option<i32>, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sclc"));
    c.current_dir(repo_root()).args(args).stdin(Stdio::null());
    match sink {
        Sink::ClosedStdout => {
            c.stdout(closed_pipe()).stderr(Stdio::piped());
        }
        Sink::FullStdout => {
            c.stdout(dev_full()).stderr(Stdio::piped());
        }
        Sink::ClosedStderr => {
            c.stdout(Stdio::null()).stderr(closed_pipe());
        }
    }
    let out = c.output().expect("sclc runs");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Commands that write to stdout, and whether they need the kernel.
const STDOUT_COMMANDS: &[(&[&str], bool)] = &[
    (&["explain"], false),
    (&["explain", "E0301"], false),
    (&["explain", "--safety-markdown"], false),
    (&["check", "--cost", "examples/numa_grouping.scl"], false),
    (&["build", "--emit", "asm", "examples/numa_grouping.scl"], false),
    (&["build", "--emit", "ir", "examples/numa_grouping.scl"], false),
    (&["build", "--emit", "btf", "examples/numa_grouping.scl"], false),
    (&["build", "--emit", "obj", "-o", "/dev/stdout", "examples/numa_grouping.scl"], false),
    (&["sim", "examples/numa_grouping.scl", "--duration", "1ms"], false),
    (&["sim", "examples/numa_grouping.scl", "--duration", "1ms", "--format", "json"], false),
    (&["ls"], true),
    (&["ls", "--format", "json"], true),
    (&["run", "examples/contention_profiler.scl", "--duration", "300ms", "--interval", "100ms"], true),
    (&["run", "examples/contention_profiler.scl", "--duration", "300ms", "--format", "json"], true),
    // The trace on stdout (the summary on stderr), and the summary on stdout.
    (&["record", "-o", "-", "--duration", "300ms"], true),
    (&["record", "-o", "/dev/null", "--duration", "300ms", "--format", "json"], true),
];

/// Commands that write diagnostics or messages to stderr.
const STDERR_COMMANDS: &[&[&str]] = &[
    &["check", "tests/ui/sema/state_too_large.scl"],
    &["check", "--format", "short", "tests/ui/sema/state_too_large.scl"],
    &["check", "--format", "json", "tests/ui/sema/state_too_large.scl"],
    &["build", "tests/ui/sema/state_too_large.scl"],
    &["check", "no/such/file.scl"],
    &["explain", "E9999"],
    &["sim", "examples/numa_grouping.scl", "--machine", "0x0"],
    &["record", "--max-events", "0"],
    &["record", "-o", "/", "--duration", "100ms"],
];

/// Pins the profiler for the `map` commands; unpins when dropped.
struct Pinned(String);

impl Pinned {
    fn new(what: &str) -> Pinned {
        let name = format!("test_io_{what}_{}", std::process::id());
        let out = Command::new(env!("CARGO_BIN_EXE_sclc"))
            .current_dir(repo_root())
            .args(["load", "examples/contention_profiler.scl", "--pin", &name])
            .output()
            .expect("sclc runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        Pinned(name)
    }

    /// The commands that read this pinned policy.
    fn commands(&self) -> Vec<Vec<String>> {
        let n = self.0.clone();
        [
            vec!["map", &n, "dump", "kind_hist"],
            vec!["map", &n, "dump", "kind_hist", "--format", "json"],
            vec!["map", &n, "get", "kind_hist", "0"],
        ]
        .into_iter()
        .map(|v| v.into_iter().map(String::from).collect())
        .collect()
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        let dir = Path::new(scl_loader::pin::SCL_ROOT).join(&self.0);
        if dir.exists() {
            let _ = scl_loader::pin::unpin(&dir);
        }
    }
}

/// Every command of [`STDOUT_COMMANDS`] this machine can run, with the `map` commands on a
/// policy pinned for the test.
fn stdout_commands(what: &str) -> (Vec<Vec<String>>, Option<Pinned>) {
    let with_kernel = kernel();
    let mut v: Vec<Vec<String>> = STDOUT_COMMANDS
        .iter()
        .filter(|(_, k)| with_kernel || !k)
        .map(|(a, _)| a.iter().map(|s| s.to_string()).collect())
        .collect();
    let pinned = with_kernel.then(|| Pinned::new(what));
    if let Some(p) = &pinned {
        v.extend(p.commands());
    }
    (v, pinned)
}

#[test]
fn a_closed_stdout_ends_every_command_quietly() {
    let (commands, _pinned) = stdout_commands("closed");
    for args in &commands {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let args = &args;
        let (code, err) = run(args, Sink::ClosedStdout);
        assert_eq!(code, Some(141), "sclc {}: {err}", args.join(" "));
        assert!(!err.contains("panicked"), "sclc {}: {err}", args.join(" "));
        assert!(!err.contains("error"), "a closed pipe is not an error to report: sclc {}: {err}", args.join(" "));
    }
}

#[test]
fn a_full_stdout_is_an_environment_error() {
    let (commands, _pinned) = stdout_commands("full");
    for args in &commands {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let args = &args;
        let (code, err) = run(args, Sink::FullStdout);
        assert_eq!(code, Some(2), "sclc {}: {err}", args.join(" "));
        assert!(err.contains("sclc: error: cannot write") && err.contains("No space left on device"), "sclc {}: {err}", args.join(" "));
        assert!(!err.contains("panicked"), "sclc {}: {err}", args.join(" "));
    }
}

#[test]
fn a_closed_stderr_ends_every_command_quietly() {
    for args in STDERR_COMMANDS {
        let (code, _) = run(args, Sink::ClosedStderr);
        assert_eq!(code, Some(141), "sclc {}", args.join(" "));
    }
}

/// `sclc run ... | head -1`: once the reader has its line and goes, `run` stops within a
/// refresh and its programs are freed (they are never pinned).
#[test]
fn run_stops_and_detaches_when_its_reader_goes() {
    if !kernel() {
        return;
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_sclc"))
        .current_dir(repo_root())
        .args(["run", "examples/contention_profiler.scl", "--format", "json", "--interval", "200ms"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sclc runs");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("a first refresh");
    let v: serde_json::Value = serde_json::from_str(&line).expect("json");
    let ids: Vec<u64> = v["programs"].as_array().expect("programs").iter().filter_map(|p| p["id"].as_u64()).collect();
    assert!(!ids.is_empty(), "{line}");
    // The reader (BufReader above) is dropped: the pipe has no reader now.
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("sclc run kept running after its reader went away");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(141));
    for id in ids {
        assert!(program_gone(id), "program {id} is still loaded");
    }
}

/// True once the kernel has freed program `id` (freeing is deferred; waits up to 5 s).
fn program_gone(id: u64) -> bool {
    for _ in 0..50 {
        match Command::new("bpftool").args(["prog", "show", "id", &id.to_string()]).output() {
            Ok(out) if !out.status.success() => return true,
            Ok(_) => std::thread::sleep(Duration::from_millis(100)),
            Err(_) => {
                eprintln!("SKIPPED (leak check): bpftool is not installed");
                return true;
            }
        }
    }
    false
}

/// The tidy rule behind all of this: no `print!`-family macro in the binary's sources, whose
/// failures would panic; everything goes through `output`.
#[test]
fn the_binary_prints_only_through_its_output_writer() {
    // Every `.rs` file under src/, in subdirectories (`run/`) too.
    let mut files = Vec::new();
    let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    assert!(files.iter().any(|p| p.ends_with("run/mod.rs")), "the walk reaches subdirectories");
    for path in files {
        let text = std::fs::read_to_string(&path).expect("read");
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for bad in ["println!", "print!(", "eprintln!", "eprint!(", "io::stdout()", "io::stderr()"] {
                let allowed = path.ends_with("output.rs") && bad.starts_with("io::");
                assert!(
                    allowed || !code.contains(bad) || code.contains("is_terminal"),
                    "{}:{}: `{bad}` bypasses crate::output: {line}",
                    path.display(),
                    n + 1
                );
            }
        }
    }
}
