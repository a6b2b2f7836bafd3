//! The machine's topology from sysfs: the online CPUs, each one's socket
//! (`cpuN/topology/physical_package_id`) and NUMA node (`node/nodeN/cpulist`).
//!
//! The root is a parameter so tests can point it at a fake tree. A machine without NUMA
//! (no `devices/system/node`) puts every CPU on node 0; a CPU without a readable package id
//! (some virtual machines, or `-1`) is on socket 0.

use std::fs;
use std::io;
use std::path::Path;

use crate::{CpuPlace, Topology};

/// The highest CPU number accepted from sysfs (the kernel's own `NR_CPUS` limit is 8192);
/// a larger one means the tree is not a sysfs tree.
pub const MAX_CPU: u32 = 1 << 16;

fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Parses a kernel CPU list (`0-3,6,8-9`; empty means no CPU).
pub fn parse_cpulist(s: &str) -> io::Result<Vec<u32>> {
    let mut out = Vec::new();
    let s = s.trim();
    if s.is_empty() {
        return Ok(out);
    }
    for part in s.split(',') {
        let num = |t: &str| -> io::Result<u32> {
            let n: u32 = t
                .trim()
                .parse()
                .map_err(|_| bad(format!("`{s}` is not a CPU list (`{t}`)")))?;
            if n >= MAX_CPU {
                return Err(bad(format!("CPU {n} in `{s}` is beyond {MAX_CPU}")));
            }
            Ok(n)
        };
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b {
                    return Err(bad(format!("`{part}` in `{s}` is a backwards range")));
                }
                out.extend(a..=b);
            }
            None => out.push(num(part)?),
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

fn read_context(path: &Path) -> io::Result<String> {
    fs::read_to_string(path).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

/// Reads the topology under `root` (`/sys` on a live system).
pub fn from_sysfs(root: &Path) -> io::Result<Topology> {
    let cpu_dir = root.join("devices/system/cpu");
    let online = parse_cpulist(&read_context(&cpu_dir.join("online"))?)?;
    let Some(&max) = online.last() else {
        return Err(bad(format!("{}: no CPU is online", cpu_dir.join("online").display())));
    };
    let mut cpus: Vec<Option<CpuPlace>> = vec![None; max as usize + 1];
    for &c in &online {
        let pkg = cpu_dir.join(format!("cpu{c}/topology/physical_package_id"));
        let socket = match fs::read_to_string(&pkg) {
            Ok(s) => match s.trim().parse::<i64>() {
                Ok(v) if v >= 0 => u32::try_from(v)
                    .map_err(|_| bad(format!("{}: `{}` is out of range", pkg.display(), s.trim())))?,
                Ok(_) => 0,
                Err(_) => return Err(bad(format!("{}: `{}` is not a number", pkg.display(), s.trim()))),
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", pkg.display()))),
        };
        cpus[c as usize] = Some(CpuPlace { node: 0, socket });
    }
    let node_dir = root.join("devices/system/node");
    let entries = match fs::read_dir(&node_dir) {
        Ok(it) => Some(it),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", node_dir.display()))),
    };
    for entry in entries.into_iter().flatten() {
        let entry = entry?;
        let name = entry.file_name();
        let Some(n) = name.to_str().and_then(|s| s.strip_prefix("node")) else { continue };
        let Ok(node) = n.parse::<u32>() else { continue };
        let list = entry.path().join("cpulist");
        for c in parse_cpulist(&read_context(&list)?)? {
            if let Some(Some(p)) = cpus.get_mut(c as usize) {
                p.node = node;
            }
        }
    }
    Ok(Topology { cpus })
}

impl Topology {
    /// Reads the running machine's topology from `/sys`.
    pub fn from_host() -> io::Result<Topology> {
        from_sysfs(Path::new("/sys"))
    }

    /// The online CPUs.
    pub fn online(&self) -> impl Iterator<Item = u32> + '_ {
        self.cpus.iter().enumerate().filter(|(_, p)| p.is_some()).map(|(i, _)| i as u32)
    }
}
