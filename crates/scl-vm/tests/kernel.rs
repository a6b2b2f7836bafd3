//! Differential tests against the kernel (issue 6, item 4): the VM and the kernel run the
//! same object, hook by hook, on the same random contexts, and must return the same values
//! and leave the same state.
//!
//! For every example whose `// targets:` line names `syncord` (numa_grouping, amp,
//! scl_fairness, bravo, lockstat, app_priority and the paper's own paper_numa, paper_amp,
//! paper_scl, paper_bravo) the object compiled for the syncord target
//! is loaded into the running kernel with `scl_loader::load` and into a [`Vm`]. For each of
//! 250 random contexts (lock addresses from a small set so that per-lock and per-thread
//! state accumulates; random kind, flags, CPU, NUMA node, tid, and waiters with random
//! fields) every hook of the policy runs, in a random order, first in the kernel
//! (`BPF_PROG_TEST_RUN`) and then in the VM. After each hook the return values must be equal
//! and every map of the policy must hold the same keys and the same values, key by key.
//!
//! Time. The kernel's `now()` is `CLOCK_MONOTONIC`, which this test cannot stop, so the
//! VM's [`Env`] reads the same clock (a little later) and its waits spin on it. Decisions
//! are kept independent of the exact instant:
//! - waiter `wait_start` values lie either ten seconds or more in the past or a thousand
//!   seconds in the future, far from the 500 µs and 1 ms thresholds of `amp` and
//!   `app_priority`'s `skip_reorder`;
//! - fields that store a time or a duration are listed per example ([`Case::time_fields`])
//!   and left out of the comparison; after each comparison the VM's entry is overwritten
//!   with the kernel's, so later hooks read the same times in both. The rest of those
//!   entries (counters, flags, depths, the keys present) is compared exactly. These are
//!   `scl_fairness`'s `acct` times and `usage` values, `lockstat`'s wait and hold times and
//!   `pending.wait_start`, `bravo`'s and `paper_bravo`'s `inhibit_until`, and `paper_scl`'s
//!   start and hold times and the lock's total;
//! - `paper_amp` runs with `patience_ns = 2000` (short back-offs on the runs' slow cores);
//! - `bravo` and `paper_bravo` run with `inhibit_factor = 0` (the bias may be re-armed as soon as a writer's
//!   revocation ends, in both worlds) and `drain_poll_ns = 2000` (short sleeps);
//! - `app_priority`'s `latency_critical` map is written from user space, as the policy
//!   expects: before some contexts the test marks or unmarks a random thread in both.
//!
//! Not compared: per-CPU maps (a `syscall` program's test run happens on whatever CPU the
//! test thread is on; no example has per-CPU state) and ring buffers (no example has one).
//! Hash maps stay far below capacity, so LRU eviction order, which is approximate in the
//! kernel, never matters.
//!
//! Skipped, with one `SKIPPED (kernel): ...` line, only when `scl_loader::check_support()`
//! says this process cannot load BPF (not root, no BTF).

use scl_catalogue::{MapKind, Target};
use scl_object::CType;
use scl_vm::{Env, Vm};
use std::collections::HashMap;

const STEPS: usize = 250;

/// What an example needs to be compared deterministically.
struct Case {
    example: &'static str,
    /// Config overrides, in both worlds.
    rodata: &'static [(&'static str, u64)],
    /// Per map, the value fields that hold times (empty: the whole value).
    time_fields: &'static [(&'static str, &'static [&'static str])],
    /// Maps user space writes: (map, key is a tid, values 0..n).
    user_written: Option<(&'static str, u64)>,
}

const CASES: &[Case] = &[
    Case {
        example: "paper_numa",
        rodata: &[],
        time_fields: &[],
        user_written: None,
    },
    Case {
        example: "paper_amp",
        rodata: &[("cores_per_socket", 8), ("patience_ns", 2000)],
        time_fields: &[],
        user_written: None,
    },
    Case {
        example: "paper_bravo",
        rodata: &[("inhibit_factor", 0), ("drain_poll_ns", 2000)],
        time_fields: &[("biases", &["inhibit_until"])],
        user_written: None,
    },
    Case {
        example: "paper_scl",
        rodata: &[],
        time_fields: &[("mine", &["start", "held"]), ("usage", &["total"])],
        user_written: None,
    },
    Case {
        example: "numa_grouping",
        rodata: &[("max_batch", 5)],
        time_fields: &[],
        user_written: None,
    },
    Case {
        example: "amp",
        rodata: &[],
        time_fields: &[],
        user_written: None,
    },
    Case {
        example: "scl_fairness",
        rodata: &[],
        time_fields: &[
            (
                "acct",
                &["hold_start", "window_start", "used", "banned_until"],
            ),
            ("usage", &[]),
        ],
        user_written: None,
    },
    Case {
        example: "bravo",
        rodata: &[("inhibit_factor", 0), ("drain_poll_ns", 2000)],
        time_fields: &[("biases", &["inhibit_until"])],
        user_written: None,
    },
    Case {
        example: "lockstat",
        rodata: &[],
        time_fields: &[
            (
                "stats",
                &[
                    "wait_total_ns",
                    "wait_max_ns",
                    "hold_total_ns",
                    "hold_max_ns",
                    "hold_start",
                ],
            ),
            ("pending", &["wait_start"]),
        ],
        user_written: None,
    },
    Case {
        example: "app_priority",
        rodata: &[],
        time_fields: &[],
        user_written: Some(("latency_critical", 2)),
    },
];

fn supported() -> bool {
    scl_loader::kernel_tests_can_run()
}

fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for clock_gettime to write.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The machine the VM sees: the kernel's clock, the task and CPU of the context.
struct RealEnv {
    cpu: u32,
    numa: u32,
    pid_tgid: u64,
}

impl Env for RealEnv {
    fn now_ns(&mut self) -> u64 {
        monotonic_ns()
    }
    fn random_u32(&mut self) -> u32 {
        0
    }
    fn cpu(&self) -> u32 {
        self.cpu
    }
    fn numa_node(&self) -> u32 {
        self.numa
    }
    fn pid_tgid(&self) -> u64 {
        self.pid_tgid
    }
    fn wait_until(&mut self, deadline_ns: u64) {
        // Spin as the kernel's callback does, but never for long.
        let give_up = monotonic_ns() + 20_000_000;
        while monotonic_ns() < deadline_ns.min(give_up) {
            std::hint::spin_loop();
        }
    }
}

/// splitmix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const LOCKS: [u64; 6] = [
    0xffff_8880_0100_0000,
    0xffff_8880_0100_0040,
    0xffff_8880_0100_0080,
    0xffff_8880_0200_0000,
    0xffff_8880_0200_1000,
    0xffff_8880_7fff_ffc0,
];
const TIDS: [u32; 6] = [1000, 1001, 1002, 1003, 2000, 4242];

fn put(c: &mut [u8; 128], at: usize, bytes: &[u8]) {
    c[at..at + bytes.len()].copy_from_slice(bytes);
}

fn wait_start(rng: &mut Rng) -> u64 {
    let now = monotonic_ns();
    match rng.below(5) {
        0 => 0,
        1 => now.saturating_sub(10_000_000_000 + rng.below(1 << 40)),
        2 => now + 1_000_000_000_000 + rng.below(1 << 40),
        3 => u64::MAX - rng.below(1000),
        _ => now / 4,
    }
}

fn random_ctx(rng: &mut Rng) -> [u8; 128] {
    let mut c = [0u8; 128];
    let cpu = rng.below(8) as u32;
    put(&mut c, 0, &LOCKS[rng.below(6) as usize].to_le_bytes());
    put(&mut c, 8, &(rng.below(3) as u32).to_le_bytes());
    put(&mut c, 12, &(rng.below(8) as u32).to_le_bytes());
    put(&mut c, 16, &cpu.to_le_bytes());
    put(&mut c, 20, &(cpu / 4).to_le_bytes());
    let tid = TIDS[rng.below(6) as usize];
    put(&mut c, 24, &tid.to_le_bytes());
    put(&mut c, 28, &(900 + tid % 2).to_le_bytes());
    for base in [32usize, 64] {
        let wcpu = rng.below(8) as u32;
        put(&mut c, base, &wcpu.to_le_bytes());
        put(
            &mut c,
            base + 4,
            &(if rng.below(4) == 0 {
                rng.below(4) as u32
            } else {
                wcpu / 4
            })
            .to_le_bytes(),
        );
        put(&mut c, base + 8, &TIDS[rng.below(6) as usize].to_le_bytes());
        put(&mut c, base + 12, &(rng.below(4) as u32).to_le_bytes());
        put(&mut c, base + 16, &wait_start(rng).to_le_bytes());
        put(&mut c, base + 24, &rng.next().to_le_bytes());
    }
    c
}

fn compile(example: &str) -> scl_driver::Output {
    let path = format!(
        "{}/../../examples/{example}.scl",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).expect("example");
    assert!(scl_catalogue::Target::in_header(&text).contains(&scl_catalogue::Target::Syncord), "{example} targets syncord");
    let mut files = scl_diagnostics::Files::new();
    let id = files.add(path, text);
    scl_driver::compile(&mut files, id, Target::Syncord).unwrap_or_else(|d| {
        panic!(
            "{example}: {:?}",
            d.iter().map(|d| &d.message).collect::<Vec<_>>()
        )
    })
}

/// Byte ranges of the named fields of a map's value type (the whole value for no names).
fn time_ranges(out: &scl_driver::Output, map: &str, fields: &[&str]) -> Vec<(usize, usize)> {
    let m = out
        .module
        .maps
        .values()
        .find(|m| m.name == map)
        .unwrap_or_else(|| panic!("no map {map}"));
    if fields.is_empty() {
        return vec![(0, m.value_size as usize)];
    }
    let ty = scl_driver::c_type(&out.program, m.value.as_ref().expect("a value type"));
    let CType::Struct { members, .. } = ty else {
        panic!("{map} has no struct values")
    };
    fields
        .iter()
        .map(|f| {
            let (_, t, off) = members
                .iter()
                .find(|(n, _, _)| n == f)
                .unwrap_or_else(|| panic!("{map} has no field {f}"));
            let CType::Int { bytes, .. } = t else {
                panic!("{map}.{f} is not an integer")
            };
            (*off as usize, (*off + *bytes) as usize)
        })
        .collect()
}

fn masked(v: &[u8], ranges: &[(usize, usize)]) -> Vec<u8> {
    let mut v = v.to_vec();
    for &(a, b) in ranges {
        v[a..b].fill(0);
    }
    v
}

/// Compares every compared map; then copies the kernel's time fields into the VM.
fn compare_maps(
    loaded: &scl_loader::Loaded,
    vm: &mut Vm,
    maps: &[(String, Vec<(usize, usize)>)],
    what: &dyn Fn() -> String,
) -> usize {
    let mut entries = 0;
    for (map, times) in maps {
        let mut kernel_keys = loaded.keys(map).expect("kernel keys");
        kernel_keys.sort();
        let vm_keys = vm.keys(map);
        assert_eq!(
            kernel_keys,
            vm_keys,
            "map `{map}` has different keys {}",
            what()
        );
        for key in &kernel_keys {
            let kv = loaded
                .lookup(map, key)
                .expect("kernel lookup")
                .expect("kernel value");
            let vv = vm.lookup(map, key).expect("vm value");
            assert_eq!(
                masked(&kv, times),
                masked(&vv, times),
                "map `{map}` key {key:x?} differs {}",
                what()
            );
            if kv != vv {
                vm.update(map, key, &kv).expect("re-sync");
            }
            entries += 1;
        }
    }
    entries
}

fn differential(case: &Case, rng: &mut Rng) {
    let out = compile(case.example);
    let overrides: Vec<(usize, Vec<u8>)> = case
        .rodata
        .iter()
        .map(|(name, v)| {
            let var = out
                .module
                .rodata
                .iter()
                .find(|r| r.name == *name)
                .unwrap_or_else(|| panic!("no config {name}"));
            (
                var.offset as usize,
                v.to_le_bytes()[..var.size as usize].to_vec(),
            )
        })
        .collect();
    let mut loaded = scl_loader::load(case.example, &out.object, &overrides)
        .unwrap_or_else(|e| panic!("{}: the kernel refused the object: {e}", case.example));
    let mut vm = Vm::new(&out).expect("vm");
    for (off, bytes) in &overrides {
        vm.set_rodata(*off, bytes);
    }
    let programs: HashMap<&str, &str> = out
        .module
        .programs
        .iter()
        .map(|p| (p.hook.name, p.name.as_str()))
        .collect();
    let maps: Vec<(String, Vec<(usize, usize)>)> = out
        .module
        .maps
        .values()
        .filter(|m| {
            m.origin != scl_ir::MapOrigin::Hidden
                && !matches!(m.kind, MapKind::PercpuArray | MapKind::Ringbuf)
        })
        .map(|m| {
            let times = case
                .time_fields
                .iter()
                .find(|(n, _)| *n == m.name)
                .map(|(_, f)| time_ranges(&out, &m.name, f))
                .unwrap_or_default();
            (m.name.clone(), times)
        })
        .collect();
    assert_eq!(
        vm.maps().len(),
        maps.len(),
        "{}: every map of the policy is compared",
        case.example
    );
    let mut hooks = vm.hooks();
    let (mut runs, mut entries, mut decisions) = (0, 0, [0usize; 2]);
    for step in 0..STEPS {
        if let Some((map, values)) = case.user_written {
            if rng.below(4) == 0 {
                let tid = TIDS[rng.below(6) as usize].to_le_bytes();
                let v = rng.below(values) as u8;
                loaded.update(map, &tid, &[v]).expect("kernel update");
                vm.update(map, &tid, &[v]).expect("vm update");
            }
        }
        let ctx = random_ctx(rng);
        for k in (1..hooks.len()).rev() {
            hooks.swap(k, rng.below(k as u64 + 1) as usize);
        }
        for &hook in &hooks {
            let mut kctx = ctx.to_vec();
            let kret = loaded
                .test_run(programs[hook], &mut kctx)
                .unwrap_or_else(|e| panic!("{}: {hook}: {e}", case.example));
            let mut vctx = ctx;
            let cpu = u32::from_le_bytes(ctx[16..20].try_into().unwrap());
            let tid = u32::from_le_bytes(ctx[24..28].try_into().unwrap());
            let tgid = u32::from_le_bytes(ctx[28..32].try_into().unwrap());
            let mut env = RealEnv {
                cpu,
                numa: cpu / 4,
                pid_tgid: (u64::from(tgid) << 32) | u64::from(tid),
            };
            let vret = vm
                .run(hook, &mut vctx, &mut env)
                .unwrap_or_else(|e| panic!("{}: {hook}: {e}", case.example));
            let what = || {
                format!(
                    "in {} after `{hook}` at step {step}, context {ctx:02x?}",
                    case.example
                )
            };
            assert_eq!(
                u64::from(kret),
                vret.ret & 0xffff_ffff,
                "return values differ {}",
                what()
            );
            if kret <= 1 {
                decisions[kret as usize] += 1;
            }
            runs += 1;
            entries += compare_maps(&loaded, &mut vm, &maps, &what);
        }
    }
    eprintln!(
        "{}: {STEPS} contexts, {runs} hook runs ({} returned 0, {} returned 1), {entries} map entries compared",
        case.example, decisions[0], decisions[1]
    );
}

#[test]
fn examples_behave_as_in_the_kernel() {
    if !supported() {
        return;
    }
    let mut rng = Rng(0x5c1_2026);
    for case in CASES {
        differential(case, &mut rng);
    }
    // Every syncord example is covered.
    let dir = format!("{}/../../examples", env!("CARGO_MANIFEST_DIR"));
    let mut syncord: Vec<String> = std::fs::read_dir(&dir)
        .expect("examples")
        .filter_map(|e| {
            let p = e.ok()?.path();
            let text = std::fs::read_to_string(&p).ok()?;
            scl_catalogue::Target::in_header(&text)
                .contains(&scl_catalogue::Target::Syncord)
                .then(|| p.file_stem()?.to_str().map(str::to_string))
                .flatten()
        })
        .collect();
    syncord.sort();
    let mut covered: Vec<String> = CASES.iter().map(|c| c.example.to_string()).collect();
    covered.sort();
    assert_eq!(
        syncord, covered,
        "each syncord example has a differential case"
    );
}
