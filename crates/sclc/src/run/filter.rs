//! `sclc run`'s event filters: the command-line options, checked against the running
//! system, and turned into the `EventFilter` the compiler puts at each hook's entry
//! (`scl_ir::lower::EventFilter`; the guard and its pairing are described there). A
//! filtered-out event costs the guard's few instructions and nothing of the policy.
//!
//! The names follow `perf lock contention`'s (`--tid`, `--pid`/`-p`, `--cpu`/`-C`,
//! `--type`/`-Y`, `--lock`/`-L`, `--cgroup`/`-G`), so the options people know work.

use scl_ir::lower::{EventFilter, LOCK_TYPES};
use std::path::{Path, PathBuf};

/// The filter options of `sclc run` (each repeatable, or a comma-separated list; an event
/// must pass every option given, and any value of an option).
#[derive(clap::Args, Debug, Default)]
pub struct FilterArgs {
    /// Only these threads (thread ids).
    #[arg(long = "tid", value_name = "TID,...", value_delimiter = ',', value_parser = crate::unsigned::<u32>)]
    pub tids: Vec<u32>,
    /// Only these processes (process ids: every thread of each).
    #[arg(short = 'p', long = "pid", value_name = "PID,...", value_delimiter = ',', value_parser = crate::unsigned::<u32>)]
    pub pids: Vec<u32>,
    /// Only waits that begin on these CPUs (`0-3,8`).
    #[arg(short = 'C', long = "cpu", value_name = "LIST")]
    pub cpus: Vec<String>,
    /// Only these lock types: spinlock, rwlock, rwsem, mutex, rt-mutex, rwlock-rt,
    /// percpu-rwsem (`:R` or `:W` for one side, `mutex:spin` for optimistic spinning).
    #[arg(short = 'Y', long = "type", value_name = "TYPE,...", value_delimiter = ',')]
    pub types: Vec<String>,
    /// Only these locks: an address (`0xffff888100a3c2d0`) or the symbol of a static lock
    /// (`rtnl_mutex`), from /proc/kallsyms.
    #[arg(short = 'L', long = "lock", value_name = "ADDR|SYMBOL,...", value_delimiter = ',')]
    pub locks: Vec<String>,
    /// Only tasks in these cgroups (v2; a path, absolute or under the cgroup2 mount).
    #[arg(short = 'G', long = "cgroup", value_name = "PATH,...", value_delimiter = ',')]
    pub cgroups: Vec<PathBuf>,
}

impl FilterArgs {
    /// The filter, or a message saying which value is wrong and what would be right.
    pub fn to_filter(&self) -> Result<EventFilter, String> {
        let mut f = EventFilter::default();
        for tid in &self.tids {
            if !Path::new(&format!("/proc/{tid}")).exists() {
                return Err(format!("--tid {tid}: no thread of that id is running"));
            }
            push_new(&mut f.tids, *tid);
        }
        for pid in &self.pids {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let tgid = status.lines().find_map(|l| l.strip_prefix("Tgid:")).map(str::trim);
            match tgid {
                None => return Err(format!("--pid {pid}: no process of that id is running")),
                Some(t) if t != pid.to_string() => {
                    return Err(format!("--pid {pid}: that is a thread of process {t}\n  help: use --tid {pid} for the thread, or --pid {t} for its process"))
                }
                Some(_) => push_new(&mut f.tgids, *pid),
            }
        }
        let possible = possible_cpus();
        for list in &self.cpus {
            for range in parse_cpu_list(list)? {
                if let Some(n) = possible {
                    if range.1 >= n {
                        return Err(format!("--cpu {list}: this machine's CPUs are 0-{}", n - 1));
                    }
                }
                push_new(&mut f.cpus, range);
            }
        }
        for t in &self.types {
            for flags in lock_type(t)? {
                push_new(&mut f.flags, *flags);
            }
        }
        let mut symbols = None;
        for l in &self.locks {
            let addr = lock_address(l, &mut symbols)?;
            push_new(&mut f.locks, addr);
        }
        for c in &self.cgroups {
            push_new(&mut f.cgroups, cgroup_id(c).map_err(|e| format!("--cgroup {}: {e}", c.display()))?);
        }
        Ok(f)
    }
}

fn push_new<T: PartialEq>(v: &mut Vec<T>, x: T) {
    if !v.contains(&x) {
        v.push(x);
    }
}

/// The number of possible CPUs (their ids are `0..n`), from sysfs.
fn possible_cpus() -> Option<u32> {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/possible").ok()?;
    parse_cpu_list(text.trim()).ok()?.iter().map(|(_, hi)| hi + 1).max()
}

/// `0-3,8` as inclusive ranges.
pub fn parse_cpu_list(list: &str) -> Result<Vec<(u32, u32)>, String> {
    let bad = |part: &str| format!("--cpu {list}: `{part}` is not a CPU or a range of CPUs (write `0-3,8`)");
    let mut ranges = Vec::new();
    for part in list.split(',') {
        let part = part.trim();
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        let lo: u32 = lo.trim().parse().map_err(|_| bad(part))?;
        let hi: u32 = hi.trim().parse().map_err(|_| bad(part))?;
        if lo > hi {
            return Err(format!("--cpu {list}: the range `{part}` is backwards (write `{hi}-{lo}`)"));
        }
        ranges.push((lo, hi));
    }
    Ok(ranges)
}

/// The tracepoint flag values of lock type `name` (`LOCK_TYPES`; `_` may stand for `-`,
/// case does not matter).
pub fn lock_type(name: &str) -> Result<&'static [u32], String> {
    let want = name.trim().replace('_', "-").to_ascii_lowercase();
    if let Some((_, flags)) = LOCK_TYPES.iter().find(|(n, _)| n.to_ascii_lowercase() == want) {
        return Ok(flags);
    }
    let names: Vec<&str> = LOCK_TYPES.iter().map(|(n, _)| *n).collect();
    let hint = scl_syntax::validate::did_you_mean(&want, names.iter().copied()).map(|n| format!("\n  help: did you mean `{n}`?")).unwrap_or_default();
    Err(format!("--type {name}: no lock type of that name; the types: {}{hint}", names.join(", ")))
}

/// The address `--lock` means: hexadecimal with `0x`, else a kernel symbol (then bare
/// hexadecimal digits).
fn lock_address(text: &str, kallsyms: &mut Option<String>) -> Result<u64, String> {
    use scl_loader::ksyms::{lock_symbol, LockSymbolError};
    let t = text.trim();
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return u64::from_str_radix(hex, 16).map_err(|_| format!("--lock {t}: not a hexadecimal address"));
    }
    let syms = kallsyms.get_or_insert_with(|| std::fs::read_to_string("/proc/kallsyms").unwrap_or_default());
    match lock_symbol(syms, t) {
        Ok(addr) => Ok(addr),
        // Bare hex digits that name no symbol are an address.
        Err(LockSymbolError::NotFound) if !t.is_empty() && t.chars().all(|c| c.is_ascii_hexdigit()) => {
            u64::from_str_radix(t, 16).map_err(|_| format!("--lock {t}: not a hexadecimal address"))
        }
        Err(LockSymbolError::Hidden) => Err(format!("--lock {t}: /proc/kallsyms hides addresses from this user\n  help: run as root, or give the address")),
        Err(e @ LockSymbolError::Ambiguous(_)) => Err(format!("--lock {t}: {e}\n  help: give the lock's address (`0xffff888100a3c2d0`)")),
        Err(_) => Err(format!("--lock {t}: no kernel symbol of that name in /proc/kallsyms\n  help: give a static lock's symbol (`rtnl_mutex`) or an address (`0xffff888100a3c2d0`)")),
    }
}

/// The mount point of the cgroup v2 hierarchy, from /proc/self/mountinfo.
pub fn cgroup2_mount() -> Option<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    text.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        let mount = left.split_whitespace().nth(4)?;
        (right.split_whitespace().next()? == "cgroup2").then(|| PathBuf::from(mount))
    })
}

/// The id of the cgroup v2 at `path` (its directory's inode number, what
/// `bpf_get_current_cgroup_id` returns), the path absolute or under the cgroup2 mount.
fn cgroup_id(path: &Path) -> Result<u64, String> {
    use std::os::unix::fs::MetadataExt as _;
    let mount = cgroup2_mount().ok_or("no cgroup v2 hierarchy is mounted")?;
    let full = if path.is_absolute() { path.to_path_buf() } else { mount.join(path) };
    if !full.starts_with(&mount) || !full.join("cgroup.procs").exists() {
        return Err(format!("not a cgroup v2 directory (the hierarchy is mounted at {})", mount.display()));
    }
    std::fs::metadata(&full).map(|m| m.ino()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_read_as_taskset_and_perf_write_them() {
        assert_eq!(parse_cpu_list("3"), Ok(vec![(3, 3)]));
        assert_eq!(parse_cpu_list("0-3,8"), Ok(vec![(0, 3), (8, 8)]));
        assert_eq!(parse_cpu_list(" 1 , 2-2 "), Ok(vec![(1, 1), (2, 2)]));
        for bad in ["", "a", "1-", "-1", "3-1", "1,,2"] {
            assert!(parse_cpu_list(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lock_types_are_perfs_names() {
        assert_eq!(lock_type("mutex"), Ok(&[32u32, 33][..]));
        assert_eq!(lock_type("rwsem:W"), Ok(&[4u32][..]));
        assert_eq!(lock_type("RT_MUTEX"), Ok(&[8u32][..]));
        let e = lock_type("mutx").unwrap_err();
        assert!(e.contains("did you mean `mutex`?") && e.contains("spinlock, rwlock"), "{e}");
    }
}
