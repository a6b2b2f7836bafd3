//! Topology from sysfs: a fake tree in a temporary directory, and the real `/sys`.

use std::fs;
use std::path::{Path, PathBuf};

use scl_trace::topology::{from_sysfs, parse_cpulist};
use scl_trace::CpuPlace;

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("scl-trace-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn put(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

#[test]
fn cpulists() {
    assert_eq!(parse_cpulist("0-3,6,8-9\n").unwrap(), vec![0, 1, 2, 3, 6, 8, 9]);
    assert_eq!(parse_cpulist("\n").unwrap(), Vec::<u32>::new());
    assert_eq!(parse_cpulist("5").unwrap(), vec![5]);
    for bad in ["x", "3-1", "1-", "99999999", "0-70000"] {
        assert!(parse_cpulist(bad).is_err(), "{bad}");
    }
}

#[test]
fn fake_two_socket_tree() {
    let t = TempDir::new("two-socket");
    let r = &t.0;
    put(r, "devices/system/cpu/online", "0-2,4\n");
    for (c, pkg) in [(0, 0), (1, 0), (2, 1), (3, 1), (4, 1)] {
        put(r, &format!("devices/system/cpu/cpu{c}/topology/physical_package_id"), &format!("{pkg}\n"));
    }
    put(r, "devices/system/node/node0/cpulist", "0-1\n");
    put(r, "devices/system/node/node1/cpulist", "2-4\n");
    put(r, "devices/system/node/online", "0-1\n");
    let topo = from_sysfs(r).unwrap();
    let p = |node, socket| Some(CpuPlace { node, socket });
    assert_eq!(topo.cpus, vec![p(0, 0), p(0, 0), p(1, 1), None, p(1, 1)]);
    assert_eq!(topo.online().collect::<Vec<_>>(), vec![0, 1, 2, 4]);
}

#[test]
fn no_numa_and_no_package_id() {
    let t = TempDir::new("flat");
    put(&t.0, "devices/system/cpu/online", "0-1\n");
    put(&t.0, "devices/system/cpu/cpu0/topology/physical_package_id", "-1\n");
    let topo = from_sysfs(&t.0).unwrap();
    assert_eq!(topo.cpus, vec![Some(CpuPlace::default()); 2]);
}

#[test]
fn bad_trees_are_errors() {
    let t = TempDir::new("bad");
    let err = from_sysfs(&t.0).unwrap_err().to_string();
    assert!(err.contains("devices/system/cpu/online"), "{err}");
    put(&t.0, "devices/system/cpu/online", "garbage\n");
    assert!(from_sysfs(&t.0).is_err());
    put(&t.0, "devices/system/cpu/online", "0\n");
    put(&t.0, "devices/system/cpu/cpu0/topology/physical_package_id", "many\n");
    let err = from_sysfs(&t.0).unwrap_err().to_string();
    assert!(err.contains("is not a number"), "{err}");
}

#[test]
fn real_sys() {
    let online = fs::read_to_string("/sys/devices/system/cpu/online").unwrap();
    let want = parse_cpulist(&online).unwrap();
    let topo = from_sysfs(Path::new("/sys")).unwrap();
    assert_eq!(topo.online().collect::<Vec<_>>(), want);
    let nodes = fs::read_dir("/sys/devices/system/node").map(|d| d.count()).unwrap_or(0);
    for c in &want {
        let place = topo.cpus[*c as usize].unwrap();
        if nodes > 0 {
            let list = fs::read_to_string(format!("/sys/devices/system/node/node{}/cpulist", place.node)).unwrap();
            assert!(parse_cpulist(&list).unwrap().contains(c), "cpu{c} not in node{}", place.node);
        }
    }
}
