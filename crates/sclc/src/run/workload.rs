//! `sclc run POLICY -- CMD ARGS`: profile one command. The command starts once the
//! programs are attached, in a cgroup of its own (a child of the cgroup v2 root named
//! `sclc-run-PID`), so the filter follows its whole process tree, forks included, with one
//! comparison in the kernel (`bpf_get_current_cgroup_id`). The run stops when the command
//! exits; one stopped earlier (`--duration`, Ctrl-C) sends the command SIGTERM and waits
//! for it. Its exit status is reported on stderr and in the final JSON. Without a
//! writable cgroup v2 hierarchy the command runs unfiltered, with a warning.

use std::ffi::CString;
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus};

/// The cgroup the command runs in; removed on drop.
pub struct Cgroup {
    path: PathBuf,
    /// Its id, what `bpf_get_current_cgroup_id` returns for its tasks.
    pub id: u64,
}

impl Cgroup {
    /// A new cgroup for this run, or why there is none.
    pub fn create() -> Result<Cgroup, String> {
        use std::os::unix::fs::MetadataExt as _;
        let mount = super::filter::cgroup2_mount().ok_or("no cgroup v2 hierarchy is mounted")?;
        let path = mount.join(format!("sclc-run-{}", std::process::id()));
        std::fs::create_dir(&path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        match std::fs::metadata(&path) {
            Ok(m) => Ok(Cgroup { id: m.ino(), path }),
            Err(e) => {
                let _ = std::fs::remove_dir(&path);
                Err(format!("cannot read {}: {e}", path.display()))
            }
        }
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        // Empty once the command's process tree has exited; a process it left running
        // keeps it, and it is named so the user can find it.
        for _ in 0..50 {
            if std::fs::remove_dir(&self.path).is_ok() || !self.path.exists() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        errln!("sclc: warning: {} still has processes of the command; it stays", self.path.display());
    }
}

/// The command after `--`, started once the programs are attached: none without one; a
/// command that cannot start is reported (`sclc: error: ...`) and is a usage error.
pub fn start(argv: &[String], cgroup: Option<&Cgroup>) -> Result<Option<Child>, crate::Status> {
    if argv.is_empty() {
        return Ok(None);
    }
    spawn(argv, cgroup).map(Some).map_err(|e| {
        errln!("sclc: error: {e}");
        crate::Status::Usage
    })
}

/// Starts `argv` (in `cgroup` when there is one).
pub fn spawn(argv: &[String], cgroup: Option<&Cgroup>) -> Result<Child, String> {
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    if let Some(cg) = cgroup {
        let procs = CString::new(cg.path.join("cgroup.procs").into_os_string().into_encoded_bytes()).map_err(|e| e.to_string())?;
        // SAFETY: between fork and exec only async-signal-safe calls (open, write, close)
        // on memory prepared before the fork.
        unsafe {
            cmd.pre_exec(move || {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let n = libc::write(fd, b"0".as_ptr().cast(), 1);
                let err = std::io::Error::last_os_error();
                libc::close(fd);
                if n != 1 {
                    return Err(err);
                }
                Ok(())
            });
        }
    }
    cmd.spawn().map_err(|e| format!("cannot start `{}`: {e}", argv[0]))
}

/// Stops `child` if it still runs (SIGTERM) and waits for it.
pub fn finish(child: &mut Child) -> Option<ExitStatus> {
    if let Ok(Some(s)) = child.try_wait() {
        return Some(s);
    }
    // SAFETY: kill(2) on the id of a child not yet reaped, so it cannot be another process.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    child.wait().ok()
}

/// The status as a sentence and as JSON.
pub fn describe(argv: &[String], pid: u32, status: Option<ExitStatus>) -> (String, serde_json::Value) {
    let name = argv.join(" ");
    match status {
        Some(s) if s.code().is_some() => {
            let code = s.code().unwrap_or(0);
            (format!("`{name}` exited with status {code}"), serde_json::json!({ "argv": argv, "pid": pid, "status": code }))
        }
        Some(s) => {
            let sig = s.signal().unwrap_or(0);
            (format!("`{name}` was killed by signal {sig}"), serde_json::json!({ "argv": argv, "pid": pid, "signal": sig }))
        }
        None => (format!("`{name}`: its status is unknown"), serde_json::json!({ "argv": argv, "pid": pid })),
    }
}
