//! VM speed: hook calls per second on one core, each beside a native Rust baseline in the
//! same run that makes the same decision or state change, so the result reads as a ratio.
//!
//! - `should_reorder` of examples/numa_grouping.scl (no helper calls): the VM against a
//!   function comparing the two waiters' NUMA nodes in the context.
//! - `acquired` of examples/lockstat.scl (two map lookups, atomics, the clock): the VM
//!   against the same bookkeeping on two `std` hash maps.
//!
//! Run: `cargo bench -p scl-vm --bench vm`. Results go to docs/simulator.md, "The VM".

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use scl_vm::{Env, Vm};
use std::collections::HashMap;
use std::hint::black_box;

struct BenchEnv {
    now: u64,
}

impl Env for BenchEnv {
    fn now_ns(&mut self) -> u64 {
        self.now += 100;
        self.now
    }
    fn random_u32(&mut self) -> u32 {
        4
    }
    fn cpu(&self) -> u32 {
        1
    }
    fn numa_node(&self) -> u32 {
        0
    }
    fn pid_tgid(&self) -> u64 {
        (1 << 32) | 1
    }
    fn wait_until(&mut self, deadline_ns: u64) {
        self.now = self.now.max(deadline_ns);
    }
}

fn compile(example: &str) -> scl_driver::Output {
    let path = format!(
        "{}/../../examples/{example}.scl",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).expect("example");
    let mut files = scl_diagnostics::Files::new();
    let id = files.add(path, text);
    scl_driver::compile(&mut files, id, scl_catalogue::Target::Syncord)
        .unwrap_or_else(|_| panic!("{example} compiles"))
}

fn waiter_ctx(i: u64) -> [u8; 128] {
    let mut c = [0u8; 128];
    c[0..8].copy_from_slice(&(0x1000 + (i % 64) * 64).to_le_bytes());
    c[16..20].copy_from_slice(&((i % 8) as u32).to_le_bytes());
    c[24..28].copy_from_slice(&(100 + (i % 16) as u32).to_le_bytes());
    c[36..40].copy_from_slice(&((i % 2) as u32).to_le_bytes());
    c[68..72].copy_from_slice(&(((i / 2) % 2) as u32).to_le_bytes());
    c
}

fn native_should_reorder(ctx: &[u8; 128]) -> u64 {
    let node = |at: usize| u32::from_le_bytes([ctx[at], ctx[at + 1], ctx[at + 2], ctx[at + 3]]);
    u64::from(node(36) == node(68))
}

#[derive(Default)]
struct LockStat {
    acquisitions: u64,
    contentions: u64,
    wait_total_ns: u64,
    wait_max_ns: u64,
    hold_start: u64,
}

#[derive(Default)]
struct Pending {
    wait_start: u64,
    contended: bool,
}

/// lockstat's `acquired`, natively.
fn native_acquired(
    stats: &mut HashMap<u64, LockStat>,
    pending: &mut HashMap<u32, Pending>,
    ctx: &[u8; 128],
    env: &mut BenchEnv,
) -> u64 {
    let lock = u64::from_le_bytes(ctx[0..8].try_into().unwrap());
    let tid = u32::from_le_bytes(ctx[24..28].try_into().unwrap());
    let reader = ctx[12] & 1 != 0;
    let s = stats.entry(lock).or_default();
    let p = pending.entry(tid).or_default();
    let t = env.now_ns();
    s.acquisitions += 1;
    if p.contended && p.wait_start != 0 {
        let wait = t - p.wait_start;
        s.wait_total_ns += wait;
        s.wait_max_ns = s.wait_max_ns.max(wait);
    }
    p.wait_start = 0;
    p.contended = false;
    if !reader {
        s.hold_start = t;
    }
    s.contentions
}

fn bench(c: &mut Criterion) {
    let ctxs: Vec<[u8; 128]> = (0..256).map(waiter_ctx).collect();

    let numa = compile("numa_grouping");
    let mut vm = Vm::new(&numa).expect("vm");
    let mut env = BenchEnv { now: 1 };
    let insns = vm
        .run("should_reorder", &mut ctxs[0].clone(), &mut env)
        .expect("runs")
        .insns;
    eprintln!("should_reorder (numa_grouping): {insns} instructions per call");
    let mut g = c.benchmark_group("should_reorder (numa_grouping)");
    g.throughput(Throughput::Elements(1));
    let mut k = 0usize;
    g.bench_function("vm", |b| {
        b.iter(|| {
            k = (k + 1) & 255;
            let mut ctx = ctxs[k];
            black_box(
                vm.run(black_box("should_reorder"), &mut ctx, &mut env)
                    .expect("runs")
                    .ret,
            )
        })
    });
    g.bench_function("native", |b| {
        b.iter(|| {
            k = (k + 1) & 255;
            let ctx = ctxs[k];
            black_box(native_should_reorder(black_box(&ctx)))
        })
    });
    g.finish();

    let lockstat = compile("lockstat");
    let mut vm = Vm::new(&lockstat).expect("vm");
    let first = vm
        .run("acquired", &mut ctxs[0].clone(), &mut env)
        .expect("runs")
        .insns;
    let again = vm
        .run("acquired", &mut ctxs[64].clone(), &mut env)
        .expect("runs")
        .insns;
    eprintln!(
        "acquired (lockstat): {first} instructions on a new lock and thread, {again} on known ones"
    );
    let mut g = c.benchmark_group("acquired (lockstat)");
    g.throughput(Throughput::Elements(1));
    g.bench_function("vm", |b| {
        b.iter(|| {
            k = (k + 1) & 255;
            let mut ctx = ctxs[k];
            black_box(
                vm.run(black_box("acquired"), &mut ctx, &mut env)
                    .expect("runs")
                    .ret,
            )
        })
    });
    let (mut stats, mut pending) = (HashMap::new(), HashMap::new());
    g.bench_function("native", |b| {
        b.iter(|| {
            k = (k + 1) & 255;
            let ctx = ctxs[k];
            black_box(native_acquired(
                &mut stats,
                &mut pending,
                black_box(&ctx),
                &mut env,
            ))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
