//! `bench/sim-validate`: the SynCord artefact's experiments in the simulator, side by side
//! with the numbers the artefact publishes, as the markdown table of docs/simulator.md.
//!
//! The machine (`bench/sim/8x28.toml`) and the workloads (`bench/sim/*.toml`) are files, so
//! `sclc sim` runs the same ones. Every run is deterministic (seed 1), so the table is the
//! same on every machine that runs this. With `--write FILE` the table replaces the text
//! between `<!-- sim-validate:begin -->` and `<!-- sim-validate:end -->` in FILE; without,
//! it goes to stdout. `--quick` runs a tenth of the simulated time (for a look, not for the
//! docs).

use scl_sim::{simulate, Config, Dist, LockKind, Machine, Metrics, Policy, VmPolicy, Workload};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

const BEGIN: &str = "<!-- sim-validate:begin -->";
const END: &str = "<!-- sim-validate:end -->";

/// The artefact guide's stock page_fault1 run: threads, faults per second.
const PAGE_FAULT1: &[(u32, f64)] = &[
    (1, 344_532.0),
    (2, 644_264.0),
    (4, 1_210_049.0),
    (8, 2_311_181.0),
    (16, 2_621_709.0),
    (28, 2_527_580.0),
    (56, 1_692_341.0),
    (84, 1_499_735.0),
];

/// The artefact guide's stock xDir-rename 2+2 run: bully ops/s, victim ops/s, fairness.
const XDIR_2_2: (f64, f64, f64) = (108.5, 103.5, 0.500913);

/// The bully of xDir-rename: a rename into a directory of 500,000 entries without an index
/// holds the rename lock for a linear lookup; the unlink that follows looks the name up in
/// the same directory (outside the rename lock).
const BULLY_CS: Dist = Dist::Fixed(9_200_000);
const BULLY_THINK: Dist = Dist::Fixed(9_000_000);

struct Bench {
    root: PathBuf,
    machine: Machine,
    scale: f64,
    out: String,
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut write = None;
    let mut scale = 1.0;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--write" => write = Some(PathBuf::from(args.next().expect("--write FILE"))),
            "--quick" => scale = 0.1,
            other => {
                eprintln!("sim-validate: unknown argument `{other}` (--write FILE, --quick)");
                std::process::exit(2);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let machine_text = std::fs::read_to_string(root.join("bench/sim/8x28.toml")).expect("bench/sim/8x28.toml");
    let machine = Machine::from_toml(&machine_text).expect("the 8x28 machine");
    let mut b = Bench { root, machine, scale, out: String::new() };
    b.page_fault1();
    b.numa("lock1", "lock1", LockKind::Spinlock, 20);
    b.numa("MWRL-like", "mwrl", LockKind::Mutex, 20);
    b.xdir();
    b.bravo();
    let table = b.out;
    match write {
        None => print!("{table}"),
        Some(path) => {
            let doc = std::fs::read_to_string(&path).expect("the docs file");
            let (Some(s), Some(e)) = (doc.find(BEGIN), doc.find(END)) else {
                eprintln!("sim-validate: {} has no {BEGIN} ... {END} markers", path.display());
                std::process::exit(1);
            };
            let new = format!("{}{BEGIN}\n{table}{}", &doc[..s], &doc[e..]);
            std::fs::write(&path, new).expect("write the docs file");
            eprintln!("sim-validate: wrote the table into {}", path.display());
        }
    }
}

fn compile_text(name: &str, text: String) -> scl_driver::Output {
    let mut files = scl_diagnostics::Files::new();
    let id = files.add(name.to_string(), text);
    scl_driver::compile(&mut files, id, scl_catalogue::Target::Sim)
        .unwrap_or_else(|d| panic!("{name}: {:?}", d.iter().map(|d| &d.message).collect::<Vec<_>>()))
}

impl Bench {
    fn workload(&self, file: &str, threads: u32) -> Workload {
        let text = std::fs::read_to_string(self.root.join("bench/sim").join(format!("{file}.toml"))).expect("workload file");
        Workload::from_toml(&text, &self.machine, Some(threads), LockKind::Spinlock, None).expect("the workload")
    }

    fn policy(&self, example: &str) -> VmPolicy {
        self.policy_with(example, &[])
    }

    /// The example with config values `sets`, as `sclc sim --set` gives them.
    fn policy_with(&self, example: &str, sets: &[(&str, u64)]) -> VmPolicy {
        let path = self.root.join("examples").join(format!("{example}.scl"));
        let out = compile_text(&format!("examples/{example}.scl"), std::fs::read_to_string(&path).expect("example"));
        let overrides: Vec<(usize, Vec<u8>)> = sets
            .iter()
            .map(|(n, v)| {
                let var = out.module.rodata.iter().find(|r| r.name == *n).unwrap_or_else(|| panic!("{example} has no config `{n}`"));
                (var.offset as usize, v.to_le_bytes()[..var.size as usize].to_vec())
            })
            .collect();
        VmPolicy::new(&out, &overrides, self.machine.cpus()).expect("the VM loads it")
    }

    fn run(&self, workload: Workload, ms: u64, p: &mut dyn Policy) -> Metrics {
        let duration_ns = ((ms * 1_000_000) as f64 * self.scale) as u64;
        let cfg = Config { machine: self.machine.clone(), workload, duration_ns, seed: 1 };
        let t = std::time::Instant::now();
        let m = simulate(&cfg, p, None).unwrap_or_else(|e| panic!("{}: {e}", p.name()));
        eprintln!("  {} threads, {}: {:.0} acq/s ({:.1} s)", cfg.workload.threads.len(), m.policy, m.throughput, t.elapsed().as_secs_f64());
        m
    }

    fn page_fault1(&mut self) {
        eprintln!("page_fault1");
        let mut s = String::from(
            "#### Stock page_fault1 (rwsem, `bench/sim/page_fault1.toml`)\n\n\
             | threads | published (faults/s) | simulated | simulated / published | within 25% |\n|---|---|---|---|---|\n",
        );
        let mut met = 0;
        for &(n, published) in PAGE_FAULT1 {
            let m = self.run(self.workload("page_fault1", n), 50, &mut scl_sim::Fifo);
            let sim = m.reads.as_ref().map_or(0.0, |r| r.throughput);
            let r = sim / published;
            let ok = (0.75..=1.25).contains(&r);
            met += usize::from(ok);
            let _ = writeln!(s, "| {n} | {} | {} | {r:.2} | {} |", mega(published), mega(sim), yes(ok));
        }
        let _ = writeln!(s, "\nWithin 25% at {met} of {} thread counts.\n", PAGE_FAULT1.len());
        self.out.push_str(&s);
    }

    /// FIFO, static ShflLock, the paper's compare-only NUMA policy and `numa_grouping`.
    fn numa(&mut self, title: &str, file: &str, lock: LockKind, ms: u64) {
        eprintln!("{title}");
        let paper = std::fs::read_to_string(self.root.join("examples/paper_numa.scl")).expect("examples/paper_numa.scl");
        let paper = compile_text("examples/paper_numa.scl", paper);
        let mut s = format!(
            "#### NUMA policies on {title} ({}, `bench/sim/{file}.toml`)\n\n\
             | threads | FIFO (acq/s) | static ShflLock / FIFO | `paper_numa` / FIFO | `paper_numa` / static | `numa_grouping` / static | local hand-offs (FIFO, `paper_numa`) |\n\
             |---|---|---|---|---|---|---|\n",
            lock.name()
        );
        let (mut at_static, mut past, mut past_met) = (true, 0, 0);
        for n in [1u32, 4, 16, 28, 56, 84, 112, 168, 224] {
            let w = self.workload(file, n);
            let fifo = self.run(w.clone(), ms, &mut scl_sim::Fifo);
            let shfl = self.run(w.clone(), ms, &mut scl_sim::StaticShfl);
            let mut pp = VmPolicy::new(&paper, &[], self.machine.cpus()).expect("VM");
            let p = self.run(w.clone(), ms, &mut pp);
            let e = self.run(w, ms, &mut self.policy("numa_grouping"));
            let (ps, pf) = (p.throughput / shfl.throughput, p.throughput / fifo.throughput);
            at_static &= ps >= 0.95;
            if n > self.machine.cores_per_socket {
                past += 1;
                past_met += usize::from(pf > 1.5);
            }
            let _ = writeln!(
                s,
                "| {n} | {} | {:.2}x | {pf:.2}x | {ps:.2}x | {:.2}x | {:.2}, {:.2} |",
                mega(fifo.throughput),
                shfl.throughput / fifo.throughput,
                e.throughput / shfl.throughput,
                fifo.local_handoff_ratio,
                p.local_handoff_ratio
            );
        }
        let _ = writeln!(
            s,
            "\n`paper_numa` at or above 0.95x of static ShflLock at every count: {}; above 1.5x FIFO past one socket at {past_met} of {past} counts.\n",
            yes(at_static)
        );
        self.out.push_str(&s);
    }

    fn xdir_workload(&self, bullies: u32, victims: u32) -> Workload {
        let mut w = self.workload("xdir_rename", bullies + victims);
        for (i, t) in w.threads.iter_mut().enumerate() {
            // As the benchmark: thread i on CPU i, even threads bullies while there are.
            if i % 2 == 0 && (i as u32) / 2 < bullies {
                t.cs = BULLY_CS;
                t.think = BULLY_THINK;
            }
        }
        w
    }

    fn xdir(&mut self) {
        eprintln!("xDir-rename");
        let mut s = String::from(
            "#### xDir-rename (mutex, `bench/sim/xdir_rename.toml`)\n\n\
             | run | bully ops/s | victim ops/s | fairness (Jain, bully and victim averages) |\n|---|---|---|---|\n",
        );
        let (pb, pv, pj) = XDIR_2_2;
        let mut best = 0.0f64;
        let mut best_freed = 0.0f64;
        let _ = writeln!(s, "| 2+2 stock, published | {pb:.1} | {pv:.1} | {pj:.2} |");
        let m = self.run(self.xdir_workload(2, 2), 10_000, &mut scl_sim::Fifo);
        let (b, v, j) = xdir_stats(&m, 2);
        let verdict = format!(
            "2+2 stock: bully and victim ops within 25% of the published: {}; Jain within 0.05: {}.",
            yes((0.75..=1.25).contains(&(b / pb)) && (0.75..=1.25).contains(&(v / pv))),
            yes((j - pj).abs() <= 0.05)
        );
        let _ = writeln!(
            s,
            "| 2+2 stock, simulated | {b:.1} ({:.2}x) | {v:.1} ({:.2}x) | {j:.2} ({:+.2}) |",
            b / pb,
            v / pv,
            j - pj
        );
        for (name, mut p) in [
            ("stock", Box::new(scl_sim::Fifo) as Box<dyn Policy>),
            ("`scl_fairness`", Box::new(self.policy("scl_fairness"))),
            ("`paper_scl`", Box::new(self.policy("paper_scl"))),
        ] {
            let mut w = self.xdir_workload(8, 8);
            if name != "stock" {
                // A policy runs on the module's governed mutex (kernel/mutex.c).
                w.locks = scl_sim::LockImpl::Module;
            }
            let m = self.run(w, 10_000, p.as_mut());
            let (b, v, j) = xdir_stats(&m, 8);
            let _ = writeln!(s, "| 8+8 {name}, simulated | {b:.1} | {v:.1} | {j:.2} |");
            best = best.max(j);
        }
        // The same without the victims' wait on the source directory (think 50-100 us): what
        // the policies do when throttling the bullies frees the victims.
        for (name, mut p) in [
            ("stock", Box::new(scl_sim::Fifo) as Box<dyn Policy>),
            ("`paper_scl`", Box::new(self.policy("paper_scl"))),
        ] {
            let mut w = self.xdir_workload(8, 8);
            for (i, t) in w.threads.iter_mut().enumerate() {
                if i % 2 == 1 {
                    t.think = Dist::Uniform(50_000, 100_000);
                }
            }
            if name != "stock" {
                w.locks = scl_sim::LockImpl::Module;
            }
            let m = self.run(w, 10_000, p.as_mut());
            let (b, v, j) = xdir_stats(&m, 8);
            let _ = writeln!(s, "| 8+8 {name}, victims not held up in create, simulated | {b:.1} | {v:.1} | {j:.2} |");
            best_freed = best_freed.max(j);
        }
        let _ = writeln!(
            s,
            "\n{verdict} 8+8: an SCL-style policy reaches Jain >= 0.9: {} (best {best:.2}); without the victims' wait in create: {} (best {best_freed:.2}).\n",
            yes(best >= 0.9),
            yes(best_freed >= 0.9)
        );
        self.out.push_str(&s);
    }

    fn bravo(&mut self) {
        eprintln!("BRAVO");
        let mut s = String::from(
            "#### BRAVO against the stock rwsem (`bench/sim/page_fault1.toml` with more writes, 56 threads)\n\n\
             | writes | stock reads/s | `bravo` reads/s | ratio | `bravo`, `drain_poll_ns = 2000` | ratio |\n|---|---|---|---|---|---|\n",
        );
        let mut frequent = (0.0, 0.0);
        for (label, ratio) in [("1 in 100", 0.99), ("1 in 1,000", 0.999), ("1 in 16,000", 0.99994)] {
            let mut w = self.workload("page_fault1", 56);
            for t in &mut w.threads {
                t.read_ratio = ratio;
            }
            let reads = |m: &Metrics| m.reads.as_ref().map_or(0.0, |r| r.throughput);
            let rb = reads(&self.run(w.clone(), 50, &mut scl_sim::Fifo));
            let rp = reads(&self.run(w.clone(), 50, &mut self.policy("bravo")));
            let rq = reads(&self.run(w, 50, &mut self.policy_with("bravo", &[("drain_poll_ns", 2000)])));
            let _ = writeln!(s, "| {label} | {} | {} | {:.2}x | {} | {:.2}x |", mega(rb), mega(rp), rp / rb, mega(rq), rq / rb);
            if ratio == 0.99 {
                frequent = (rp / rb, rq / rb);
            }
        }
        let _ = writeln!(
            s,
            "\nBRAVO within 10% of the stock rwsem with 1 write in 100: {} with the defaults ({:.2}x), {} with `drain_poll_ns = 2000` ({:.2}x).\n",
            yes(frequent.0 >= 0.9),
            frequent.0,
            yes(frequent.1 >= 0.9),
            frequent.1
        );
        self.out.push_str(&s);
    }
}

/// Bully and victim ops/s and the benchmark's fairness: Jain's index of the two groups'
/// average hold times (the benchmark's own formula).
fn xdir_stats(m: &Metrics, bullies: usize) -> (f64, f64, f64) {
    let secs = m.duration_ns as f64 / 1e9;
    let (mut bo, mut vo, mut bh, mut vh, mut nb, mut nv) = (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
    for (i, t) in m.threads.iter().enumerate() {
        if i % 2 == 0 && i / 2 < bullies {
            bo += t.acquisitions;
            bh += t.hold_ns;
            nb += 1;
        } else {
            vo += t.acquisitions;
            vh += t.hold_ns;
            nv += 1;
        }
    }
    let (ba, va) = (bh as f64 / nb.max(1) as f64, vh as f64 / nv.max(1) as f64);
    (bo as f64 / secs, vo as f64 / secs, scl_sim::metrics::jain(&[ba, va]))
}

fn yes(ok: bool) -> &'static str {
    if ok {
        "yes"
    } else {
        "**no**"
    }
}

fn mega(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.0}k", v / 1e3)
    } else {
        format!("{v:.1}")
    }
}
