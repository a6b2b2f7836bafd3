//! The lock-hook module: `kernel/` of this repository (`scl_hooks.ko`), which runs pinned
//! syncord policies inside the kernel's mutex, spinlock and rwsem code. This is its control
//! interface, the files under `/sys/kernel/scl_hooks/` (docs/abi.md §4):
//!
//! - `policy`: the active policy's name; `NAME KIND,KIND` activates the programs pinned
//!   under `/sys/fs/bpf/scl/NAME/` for those lock kinds, `-` deactivates;
//! - `locks`: the governed locks, one address a line; `+ADDR`, `-ADDR`, `clear`;
//! - `stats`: `policy NAME`, `hook HOOK CALLS` lines and a `lock ADDR (COUNTER VALUE)...`
//!   line per governed lock;
//! - `error`: why the module refused the last request; `abi`: the context ABI version.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Where the module's control files are.
pub const SYSFS: &str = "/sys/kernel/scl_hooks";

/// The context ABI version this loader speaks.
pub const ABI: &str = "1";

/// What went wrong talking to the module.
#[derive(Debug)]
pub enum KmodError {
    /// The running kernel has no `scl_hooks` module (or one of another ABI).
    Absent(String),
    /// The module refused a request; `reason` is its own explanation.
    Refused {
        /// The request.
        what: String,
        /// The error of the write.
        error: io::Error,
        /// The module's `error` file after the refusal.
        reason: String,
    },
    /// Reading a control file failed.
    Io(String, io::Error),
}

impl fmt::Display for KmodError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KmodError::Absent(why) => write!(f, "{why}"),
            KmodError::Refused { what, error, reason } => {
                write!(f, "the lock-hook module refused to {what}: ")?;
                if reason.is_empty() {
                    write!(f, "{error}")
                } else {
                    write!(f, "{reason}")
                }
            }
            KmodError::Io(what, e) => write!(f, "cannot read {what}: {e}"),
        }
    }
}

impl std::error::Error for KmodError {}

/// The module's counters (the `stats` file).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// The active policy, if any.
    pub policy: Option<String>,
    /// Calls of each hook since the policy was activated, in catalogue order.
    pub hook_calls: Vec<(String, u64)>,
    /// Per governed lock, its counters in the module's order.
    pub locks: Vec<LockStats>,
}

/// The module's counters of one governed lock.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LockStats {
    /// The lock's address.
    pub addr: u64,
    /// Counter name and value (`acquisitions`, `handoffs`, `mixed`, ...).
    pub counters: Vec<(String, u64)>,
}

impl Stats {
    /// Parses the `stats` file.
    pub fn parse(text: &str) -> Stats {
        let mut s = Stats::default();
        for line in text.lines() {
            let mut words = line.split_whitespace();
            match words.next() {
                Some("policy") => s.policy = words.next().filter(|n| *n != "-").map(str::to_string),
                Some("hook") => {
                    if let (Some(h), Some(n)) = (words.next(), words.next().and_then(|n| n.parse().ok())) {
                        s.hook_calls.push((h.to_string(), n));
                    }
                }
                Some("lock") => {
                    let Some(addr) = words.next().and_then(parse_addr) else { continue };
                    let rest: Vec<&str> = words.collect();
                    let counters = rest.chunks(2).filter_map(|c| Some((c[0].to_string(), c.get(1)?.parse().ok()?))).collect();
                    s.locks.push(LockStats { addr, counters });
                }
                _ => {}
            }
        }
        s
    }
}

/// `0x...` hex or decimal.
pub fn parse_addr(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// The loaded module.
#[derive(Clone, Debug)]
pub struct Module {
    dir: PathBuf,
}

impl Module {
    /// The module of the running kernel, or why there is none.
    pub fn open() -> Result<Module, KmodError> {
        Module::at(Path::new(SYSFS))
    }

    /// The module whose control files are in `dir`.
    pub fn at(dir: &Path) -> Result<Module, KmodError> {
        match std::fs::read_to_string(dir.join("abi")) {
            Ok(v) if v.trim() == ABI => Ok(Module { dir: dir.to_path_buf() }),
            Ok(v) => Err(KmodError::Absent(format!(
                "the lock-hook module speaks context ABI v{}, this sclc speaks v{ABI}: rebuild one of them from the same release",
                v.trim()
            ))),
            Err(_) => Err(KmodError::Absent(format!(
                "this kernel has no lock-hook module ({} is missing): policies that change lock behaviour run only where kernel/ (scl_hooks.ko) is loaded; build it with `make -C kernel` and `insmod kernel/scl_hooks.ko` (Linux 6.1 with livepatch support), or try the policy in a throwaway guest with tests/kernel-reality/run.sh",
                dir.display()
            ))),
        }
    }

    fn read(&self, file: &str) -> Result<String, KmodError> {
        std::fs::read_to_string(self.dir.join(file)).map_err(|e| KmodError::Io(self.dir.join(file).display().to_string(), e))
    }

    fn write(&self, file: &str, line: &str, what: impl FnOnce() -> String) -> Result<(), KmodError> {
        std::fs::write(self.dir.join(file), line).map_err(|error| KmodError::Refused {
            what: what(),
            error,
            reason: std::fs::read_to_string(self.dir.join("error")).map(|r| r.trim().to_string()).unwrap_or_default(),
        })
    }

    /// The active policy's name.
    pub fn active(&self) -> Result<Option<String>, KmodError> {
        let name = self.read("policy")?;
        let name = name.trim();
        Ok((!name.is_empty()).then(|| name.to_string()))
    }

    /// The governed locks.
    pub fn locks(&self) -> Result<Vec<u64>, KmodError> {
        Ok(self.read("locks")?.lines().filter_map(|l| parse_addr(l.trim())).collect())
    }

    /// Governs the lock at `addr` (its hooked entry points run this module's code).
    pub fn govern(&self, addr: u64) -> Result<(), KmodError> {
        self.write("locks", &format!("+{addr:#x}"), || format!("govern the lock at {addr:#x}"))
    }

    /// Stops governing the lock at `addr`: it runs the kernel's own code again.
    pub fn release(&self, addr: u64) -> Result<(), KmodError> {
        self.write("locks", &format!("-{addr:#x}"), || format!("release the lock at {addr:#x}"))
    }

    /// Stops governing every lock: they run the kernel's own code again.
    pub fn release_all(&self) -> Result<(), KmodError> {
        self.write("locks", "clear", || "release the governed locks".into())
    }

    /// Activates the policy pinned as `name` for the lock kinds `kinds`.
    pub fn activate(&self, name: &str, kinds: &[&str]) -> Result<(), KmodError> {
        self.write("policy", &format!("{name} {}", kinds.join(",")), || format!("activate `{name}`"))
    }

    /// Deactivates the active policy.
    pub fn deactivate(&self) -> Result<(), KmodError> {
        self.write("policy", "-", || "deactivate the policy".into())
    }

    /// The module's counters.
    pub fn stats(&self) -> Result<Stats, KmodError> {
        Ok(Stats::parse(&self.read("stats")?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stats_file_parses_into_hooks_and_locks() {
        let s = Stats::parse(
            "policy numa\nhook to_acquire 3\nhook should_reorder 12\nlock 0xffffffffc0a01000 acquisitions 40 handoffs 7\nlock junk\n",
        );
        assert_eq!(s.policy.as_deref(), Some("numa"));
        assert_eq!(s.hook_calls, vec![("to_acquire".into(), 3), ("should_reorder".into(), 12)]);
        assert_eq!(s.locks.len(), 1);
        assert_eq!(s.locks[0].addr, 0xffff_ffff_c0a0_1000);
        assert_eq!(s.locks[0].counters, vec![("acquisitions".into(), 40), ("handoffs".into(), 7)]);
        assert_eq!(Stats::parse("policy -\n").policy, None);
    }

    #[test]
    fn a_missing_module_says_what_to_do() {
        let dir = std::env::temp_dir().join(format!("scl-kmod-{}", std::process::id()));
        let e = Module::at(&dir).unwrap_err().to_string();
        assert!(e.contains("no lock-hook module") && e.contains("insmod kernel/scl_hooks.ko"), "{e}");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("abi"), "2\n").unwrap();
        let e = Module::at(&dir).unwrap_err().to_string();
        assert!(e.contains("ABI v2"), "{e}");
        std::fs::write(dir.join("abi"), "1\n").unwrap();
        std::fs::write(dir.join("policy"), "\n").unwrap();
        std::fs::write(dir.join("locks"), "0x10\n0x20\n").unwrap();
        let m = Module::at(&dir).unwrap();
        assert_eq!(m.active().unwrap(), None);
        assert_eq!(m.locks().unwrap(), vec![0x10, 0x20]);
        // The requests, as the module's control files read them.
        m.release(0x20).unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("locks")).unwrap(), "-0x20");
        m.govern(0x30).unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("locks")).unwrap(), "+0x30");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
