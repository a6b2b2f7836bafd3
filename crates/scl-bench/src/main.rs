//! `scl-bench`: sclc against clang -O2 on the example policies of the syncord target.
//!
//! For each example in [`EXAMPLES`] the bench compiles `examples/NAME.scl` with sclc and
//! the hand-written equivalent `bench/c/NAME.bpf.c` with clang, loads both objects into the
//! running kernel, drives both with the same stream of lock events (one
//! `BPF_PROG_TEST_RUN` per hook call, on the 128-byte context of design §5) with
//! `bpf_stats` enabled, and reports per hook:
//!
//! - instructions after the verifier (`xlated_prog_len / 8`, callbacks included);
//! - kernel-measured nanoseconds per call (`run_time_ns / run_cnt`, median over rounds);
//! - whether the two programs returned the same value on every call;
//!
//! and per example the compile wall time: sclc in-process (`scl_driver::compile`), the
//! `sclc build` process, and the clang process.
//!
//! It needs root, a kernel with BTF and BPF, and clang with libbpf's headers. It is not run
//! by `cargo test`; `bench/run.sh` builds and runs it. See `docs/performance.md`.

#![deny(missing_docs)]

mod workload;

use clap::Parser;
use scl_catalogue::Target;
use scl_diagnostics::Files;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The examples of the syncord target, each with a C twin in `bench/c/`.
pub const EXAMPLES: &[&str] = &["numa_grouping", "amp", "scl_fairness", "bravo", "lockstat", "app_priority"];

/// The command line.
#[derive(Parser, Debug)]
#[command(about = "Compare sclc with clang -O2 on the example policies (needs root, clang, BPF)")]
struct Args {
    /// Lock events per round; each event calls every hook of its lifecycle once or more.
    #[arg(long, default_value_t = 2_000)]
    events: usize,
    /// Measurement rounds; ns per call is the median over rounds. Many short rounds: a
    /// round that an interrupt or the hypervisor slowed for one program drops out as an
    /// outlier instead of shifting a long round's mean.
    #[arg(long, default_value_t = 101)]
    rounds: usize,
    /// How many times both objects are loaded afresh during the measured rounds (each
    /// load runs its share of the rounds): a program's time per call depends on where the
    /// kernel put it and its maps, and new loads average that out.
    #[arg(long, default_value_t = 10)]
    loads: usize,
    /// In-process sclc compilations timed per example.
    #[arg(long, default_value_t = 200)]
    compile_iters: usize,
    /// Process runs (sclc build, clang) timed per example.
    #[arg(long, default_value_t = 21)]
    process_runs: usize,
    /// The clang to compare with.
    #[arg(long, default_value = "clang")]
    clang: String,
    /// The sclc binary (default: `sclc` beside this binary).
    #[arg(long)]
    sclc: Option<PathBuf>,
    /// A statically linked sclc to time beside it (`bench/run.sh` builds one).
    #[arg(long)]
    sclc_static: Option<PathBuf>,
    /// Skip the control run (clang's object against a second load of itself), which gives
    /// the resolution the ns ratios are read against.
    #[arg(long)]
    no_control: bool,
    /// Only these examples (default: all).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Where to write the Markdown report.
    #[arg(long, default_value = "target/scl-bench/report.md")]
    out: PathBuf,
}

/// What one example measured.
struct ExampleResult {
    name: String,
    sclc_inproc: Duration,
    sclc_process: Duration,
    sclc_static_process: Option<Duration>,
    clang_process: Duration,
    hooks: Vec<HookResult>,
}

/// What one hook measured.
struct HookResult {
    hook: String,
    sclc_insns: u32,
    clang_insns: u32,
    sclc_ns: f64,
    clang_ns: f64,
    /// sclc's ns over clang's, round by round (each round ran both on the same events): the
    /// median and an interval that holds the true median with at least 90% confidence.
    ratio: (f64, f64, f64),
    /// The same for clang's object against a second load of itself (the control run).
    control: Option<(f64, f64, f64)>,
    counts: workload::Counts,
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(&args) {
        eprintln!("scl-bench: error: {e}");
        std::process::exit(2);
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap_or_else(|_| PathBuf::from("."))
}

fn run(args: &Args) -> Result<(), String> {
    scl_loader::check_support().map_err(|e| e.to_string())?;
    let root = repo_root();
    let sclc = match &args.sclc {
        Some(p) => p.clone(),
        None => std::env::current_exe().map_err(|e| e.to_string())?.with_file_name("sclc"),
    };
    if !sclc.exists() {
        return Err(format!("no sclc binary at {} (build it: cargo build --release -p sclc)", sclc.display()));
    }
    if let Some(p) = args.sclc_static.as_ref().filter(|p| !p.exists()) {
        return Err(format!("no sclc binary at {} (bench/run.sh builds the static one)", p.display()));
    }
    let clang_version = Command::new(&args.clang)
        .arg("--version")
        .output()
        .map_err(|e| format!("cannot run `{}`: {e} (apt-get install -y clang libbpf-dev)", args.clang))?;
    let clang_version = String::from_utf8_lossy(&clang_version.stdout).lines().next().unwrap_or("").to_string();
    let tmp = root.join("target/scl-bench");
    std::fs::create_dir_all(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;

    // Hold bpf_stats on for the whole run: the kernel counts run_cnt and run_time_ns only
    // while at least one such fd is open.
    // SAFETY: bpf_enable_stats takes an enum value and returns an fd or a negative errno.
    let stats_fd = unsafe { libbpf_sys::bpf_enable_stats(libbpf_sys::BPF_STATS_RUN_TIME) };
    if stats_fd < 0 {
        return Err(format!("bpf_enable_stats failed: {}", std::io::Error::last_os_error()));
    }

    let mut results = Vec::new();
    for name in EXAMPLES.iter().filter(|n| args.only.is_empty() || args.only.iter().any(|o| o == *n)) {
        eprintln!("== {name}");
        results.push(bench_example(args, &root, &tmp, &sclc, name)?);
    }
    // SAFETY: stats_fd is an fd this process opened and owns.
    unsafe { close(stats_fd) };

    let report = markdown(args, &clang_version, &results);
    print!("{report}");
    if let Some(dir) = args.out.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    std::fs::write(&args.out, &report).map_err(|e| format!("{}: {e}", args.out.display()))?;
    eprintln!("report written to {}", args.out.display());
    Ok(())
}

extern "C" {
    fn close(fd: i32) -> i32;
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The median of `v` and a distribution-free interval around it: the order statistics
/// `k`-th from either end for the largest `k` whose binomial coverage of the true median is
/// still at least 90% (for 101 rounds the 42nd and the 60th of the sorted values, 92.7%).
fn median_interval(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    // P(Binomial(n, 1/2) <= j), for j = 0, 1, ...
    let mut below = Vec::with_capacity(n);
    let (mut c, mut sum) = (1f64, 0f64);
    for j in 0..n {
        sum += c / 2f64.powi(n as i32);
        below.push(sum);
        c = c * (n - j) as f64 / (j + 1) as f64;
    }
    // The interval [v[k], v[n-1-k]] misses the median with probability 2 P(B <= k).
    let mut k = 0;
    while k + 1 < n / 2 && 1.0 - 2.0 * below[k + 1] >= 0.90 {
        k += 1;
    }
    (v[k], v[n / 2], v[n - 1 - k])
}

fn median_f(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// The wall time of each command, median over `runs` rounds after one warm-up round; each
/// round runs every command once, in turn.
fn time_processes(commands: &mut [Command], runs: usize) -> Result<Vec<Duration>, String> {
    let mut samples = vec![Vec::new(); commands.len()];
    for round in 0..=runs.max(1) {
        for (cmd, samples) in commands.iter_mut().zip(&mut samples) {
            let t0 = Instant::now();
            let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
            let dt = t0.elapsed();
            if !out.status.success() {
                return Err(format!("{cmd:?} failed:\n{}", String::from_utf8_lossy(&out.stderr)));
            }
            if round > 0 {
                samples.push(dt);
            }
        }
    }
    Ok(samples.into_iter().map(median).collect())
}

/// The clang command line of the baseline: the libbpf convention, plus `-mcpu=v3` for the
/// atomic compare-and-swap bravo needs (and which the kernel's own selftests use).
fn clang_command(clang: &str, src: &Path, out: &Path) -> Command {
    let mut cmd = Command::new(clang);
    cmd.args(["-O2", "-g", "-target", "bpf", "-mcpu=v3"]);
    // <linux/bpf.h> includes <asm/types.h>, which lives in the multiarch directory.
    let multiarch = PathBuf::from(format!("/usr/include/{}-linux-gnu", std::env::consts::ARCH));
    if multiarch.exists() {
        cmd.arg(format!("-I{}", multiarch.display()));
    }
    cmd.arg("-c").arg(src).arg("-o").arg(out);
    cmd
}

fn bench_example(args: &Args, root: &Path, tmp: &Path, sclc: &Path, name: &str) -> Result<ExampleResult, String> {
    let scl_path = root.join("examples").join(format!("{name}.scl"));
    let c_path = root.join("bench/c").join(format!("{name}.bpf.c"));
    let text = std::fs::read_to_string(&scl_path).map_err(|e| format!("{}: {e}", scl_path.display()))?;

    // Compile time: sclc in-process.
    let label = scl_path.display().to_string();
    let compile_once = || {
        let mut files = Files::new();
        let id = files.add(label.clone(), text.clone());
        scl_driver::compile(&mut files, id, Target::Syncord)
    };
    let sclc_obj = match compile_once() {
        Ok(out) => out.object,
        Err(diags) => return Err(format!("sclc rejected {name}: {:?}", diags.iter().map(|d| d.message.clone()).collect::<Vec<_>>())),
    };
    for _ in 0..5 {
        std::hint::black_box(compile_once().is_ok());
    }
    let mut samples = Vec::with_capacity(args.compile_iters);
    for _ in 0..args.compile_iters.max(1) {
        let t0 = Instant::now();
        std::hint::black_box(compile_once().is_ok());
        samples.push(t0.elapsed());
    }
    let sclc_inproc = median(samples);

    // Compile time: the processes, run in turn so that a slower moment of the machine
    // weighs on all of them.
    let sclc_out = tmp.join(format!("{name}.sclc.o"));
    let clang_out = tmp.join(format!("{name}.clang.o"));
    let sclc_build = |bin: &Path| {
        let mut c = Command::new(bin);
        c.arg("build").arg(&scl_path).args(["--target", "syncord", "-o"]).arg(&sclc_out);
        c
    };
    let mut commands = vec![sclc_build(sclc), clang_command(&args.clang, &c_path, &clang_out)];
    if let Some(bin) = &args.sclc_static {
        commands.push(sclc_build(bin));
    }
    let times = time_processes(&mut commands, args.process_runs)?;
    let (sclc_process, clang_process, sclc_static_process) = (times[0], times[1], times.get(2).copied());
    eprintln!(
        "   compile: sclc in-process {:.2} ms, sclc process {:.1} ms{}, clang process {:.1} ms",
        ms(sclc_inproc),
        ms(sclc_process),
        sclc_static_process.map(|t| format!(" (static {:.1} ms)", ms(t))).unwrap_or_default(),
        ms(clang_process)
    );

    // Run both, then the control.
    let clang_obj = std::fs::read(&clang_out).map_err(|e| format!("{}: {e}", clang_out.display()))?;
    let main = drive_pair(args, name, (&sclc_obj, "sclc's"), (&clang_obj, "clang's"))?;
    let control = if args.no_control { None } else { Some(drive_pair(args, name, (&clang_obj, "clang's"), (&clang_obj, "clang's"))?) };
    let mut out = Vec::new();
    for (h, m) in main {
        let control = control.as_ref().and_then(|c| c.get(&h)).map(|c| c.ratio);
        let r = HookResult {
            hook: h,
            sclc_insns: m.first.xlated_insns,
            clang_insns: m.second.xlated_insns,
            sclc_ns: median_f(m.first_ns),
            clang_ns: median_f(m.second_ns),
            ratio: m.ratio,
            control,
            counts: m.counts,
        };
        eprintln!(
            "   {:<15} insns {:>4} vs {:>4}   ns {:>7.1} vs {:>7.1} ({:.2}x{})   {} calls, {} different results",
            r.hook,
            r.sclc_insns,
            r.clang_insns,
            r.sclc_ns,
            r.clang_ns,
            r.ratio.1,
            r.control.map(|c| format!(", control {:.2}x", c.1)).unwrap_or_default(),
            r.counts.calls,
            r.counts.mismatches
        );
        out.push(r);
    }
    Ok(ExampleResult { name: name.to_string(), sclc_inproc, sclc_process, sclc_static_process, clang_process, hooks: out })
}

/// What one hook measured in a run of two objects.
struct PairRun {
    /// Program info at the end, of the first object's program and the second's.
    first: scl_loader::ProgInfo,
    second: scl_loader::ProgInfo,
    /// ns per call of each round.
    first_ns: Vec<f64>,
    second_ns: Vec<f64>,
    /// The first's ns over the second's, round by round: median and interval.
    ratio: (f64, f64, f64),
    counts: workload::Counts,
}

/// Loads `a` and `b` and drives both with the same events, in `args.loads` rounds of
/// loading: each loads both afresh, runs a warm-up, then its share of `args.rounds`
/// measured rounds. Per hook of the policy, in name order.
///
/// Why load more than once: the control run (clang's object against a second load of
/// itself) shows that where the kernel places a program and its maps moves its time per
/// call by up to several percent, the same for the whole life of that load. Loading again
/// gives each side new places; the median over rounds of many loads is the typical place.
fn drive_pair(args: &Args, name: &str, a: (&[u8], &str), b: (&[u8], &str)) -> Result<BTreeMap<String, PairRun>, String> {
    let rodata = workload::rodata_overrides(name);
    let mut ns: BTreeMap<String, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
    let mut counts: BTreeMap<String, workload::Counts> = BTreeMap::new();
    let mut last: BTreeMap<String, (scl_loader::ProgInfo, scl_loader::ProgInfo)> = BTreeMap::new();
    let mut rng = workload::Rng(0x5c1c_be4c_0000_0001);
    let loads = args.loads.clamp(1, args.rounds.max(1));
    let mut hooks = Vec::new();
    for l in 0..loads {
        // A load that is not measured comes first: without it the control run found the
        // first of two loads of the same object slower on most hooks (by 1-2% on average).
        // The same order in the control run as in the main one, so that whatever order
        // still does shows in the control's ratios too.
        let _first = scl_loader::load(&format!("x_{name}"), b.0, &rodata).map_err(|e| format!("loading {} {name}: {e}", b.1))?;
        let mut s = scl_loader::load(&format!("a_{name}"), a.0, &rodata).map_err(|e| format!("loading {} {name}: {e}", a.1))?;
        let mut c = scl_loader::load(&format!("b_{name}"), b.0, &rodata).map_err(|e| format!("loading {} {name}: {e}", b.1))?;
        hooks = s.programs();
        let second = c.programs();
        for h in &hooks {
            if !second.contains(h) {
                return Err(format!("bench/c/{name}.bpf.c has no program `{h}`"));
            }
        }
        workload::setup(name, &s, &c).map_err(|e| e.to_string())?;

        let mut pair = workload::Pair::new(&mut s, &mut c, &hooks);
        workload::drive(name, &mut pair, &mut rng, args.events / 10 + 1)?;
        let rounds = args.rounds.max(1) * (l + 1) / loads - args.rounds.max(1) * l / loads;
        for _ in 0..rounds {
            let before = pair.infos()?;
            workload::drive(name, &mut pair, &mut rng, args.events)?;
            let after = pair.infos()?;
            for h in &hooks {
                let (sb, cb) = &before[h];
                let (sa, ca) = &after[h];
                let per = |a: &scl_loader::ProgInfo, b: &scl_loader::ProgInfo| {
                    let n = a.run_cnt.saturating_sub(b.run_cnt);
                    if n == 0 {
                        f64::NAN
                    } else {
                        a.run_time_ns.saturating_sub(b.run_time_ns) as f64 / n as f64
                    }
                };
                let e = ns.entry(h.clone()).or_default();
                e.0.push(per(sa, sb));
                e.1.push(per(ca, cb));
            }
        }
        for h in &hooks {
            let n = pair.counts(h);
            let e = counts.entry(h.clone()).or_default();
            e.calls += n.calls;
            e.mismatches += n.mismatches;
            e.nonzero.0 += n.nonzero.0;
            e.nonzero.1 += n.nonzero.1;
        }
        last = pair.infos()?;
    }
    let mut out = BTreeMap::new();
    for h in &hooks {
        let (first, second) = last.remove(h).unwrap_or_default();
        let (first_ns, second_ns) = ns.remove(h).unwrap_or_default();
        let ratio = median_interval(first_ns.iter().zip(&second_ns).map(|(s, c)| s / c).collect());
        let counts = counts.remove(h).unwrap_or_default();
        out.insert(h.clone(), PairRun { first, second, first_ns, second_ns, ratio, counts });
    }
    Ok(out)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn markdown(args: &Args, clang: &str, results: &[ExampleResult]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "sclc: {}. Baseline: `{clang}`, `clang -O2 -g -target bpf -mcpu=v3`. Kernel: {}.", revision(), kernel_release());
    let _ = writeln!(
        s,
        "{} events per round, {} rounds over {} loads of both objects (ns: median of the rounds); compile: median of {} in-process compilations, {} process runs.\n",
        args.events, args.rounds, args.loads, args.compile_iters, args.process_runs
    );
    let _ = writeln!(
        s,
        "| example | hook | xlated insns sclc | clang | ratio | ns/call sclc | clang | ratio (90% interval) | control: clang / clang | same results |"
    );
    let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|---:|---:|---|");
    // The resolution: how far from 1.0x the control's ratios stray, over every hook.
    let resolution = results.iter().flat_map(|r| &r.hooks).filter_map(|h| h.control).map(|c| (c.1 - 1.0).abs()).fold(0.0, f64::max);
    let controlled = results.iter().flat_map(|r| &r.hooks).all(|h| h.control.is_some());
    let mut insn_ratios = Vec::new();
    let mut ns_ratios = Vec::new();
    let (mut insn_ok, mut ns_ok, mut ns_slower, mut ns_beyond, mut control_slower, mut n) = (0, 0, 0, 0, 0, 0);
    for r in results {
        for h in &r.hooks {
            let ir = f64::from(h.sclc_insns) / f64::from(h.clang_insns.max(1));
            let (lo, nr, hi) = h.ratio;
            insn_ratios.push(ir);
            ns_ratios.push(nr);
            n += 1;
            insn_ok += usize::from(ir <= 1.0);
            ns_ok += usize::from(nr <= 1.0);
            ns_slower += usize::from(lo > 1.0);
            ns_beyond += usize::from(lo > 1.0 + resolution);
            control_slower += usize::from(h.control.is_some_and(|c| c.0 > 1.0));
            let c = h.counts;
            let same = if c.mismatches == 0 {
                "yes".to_string()
            } else if workload::time_dependent(&r.name, &h.hook) {
                let pct = |n: u64| 100.0 * n as f64 / c.calls.max(1) as f64;
                format!(
                    "{} of {} differ (time-dependent state; non-zero: sclc {:.1}%, clang {:.1}%)",
                    c.mismatches,
                    c.calls,
                    pct(c.nonzero.0),
                    pct(c.nonzero.1)
                )
            } else {
                format!("**no: {} of {} differ**", c.mismatches, c.calls)
            };
            let _ = writeln!(
                s,
                "| {} | `{}` | {} | {} | {} | {:.1} | {:.1} | {} ({:.2}-{:.2}) | {} | {} |",
                r.name,
                h.hook,
                h.sclc_insns,
                h.clang_insns,
                ratio(ir),
                h.sclc_ns,
                h.clang_ns,
                ratio(nr),
                lo,
                hi,
                h.control.map(|c| format!("{:.2}x ({:.2}-{:.2})", c.1, c.0, c.2)).unwrap_or_else(|| "-".into()),
                same
            );
        }
    }
    let _ = writeln!(
        s,
        "\nHooks at or under 1.0x clang: instructions {insn_ok} of {n}, ns {ns_ok} of {n} (median ratio). Geometric mean of the ratios: instructions {:.2}x, ns {:.2}x.",
        geomean(&insn_ratios),
        geomean(&ns_ratios)
    );
    let _ = writeln!(s, "ns measurably slower (the whole 90% interval above 1.0x): {ns_slower} of {n}.");
    if controlled {
        let _ = writeln!(
            s,
            "Resolution of this run: clang's object against a second load of itself strays up to {:.1}% from 1.0x, and is measurably slower than itself on {control_slower} of {n} hooks; sclc slower than clang by more than that: {ns_beyond} of {n}.",
            resolution * 100.0
        );
    }
    let _ = writeln!(s);
    let statics = results.iter().all(|r| r.sclc_static_process.is_some());
    if statics {
        let _ = writeln!(
            s,
            "| example | sclc in-process | sclc process | sclc process, static | clang process | clang / sclc in-process | clang / sclc process | clang / sclc process, static |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|");
    } else {
        let _ = writeln!(s, "| example | sclc in-process | sclc process | clang process | clang / sclc in-process | clang / sclc process |");
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|");
    }
    for r in results {
        let clang = r.clang_process.as_secs_f64();
        let (st_time, st_ratio) = match r.sclc_static_process.filter(|_| statics) {
            Some(t) => (format!(" {:.1} ms |", ms(t)), format!(" {:.1}x |", clang / t.as_secs_f64())),
            None => (String::new(), String::new()),
        };
        let _ = writeln!(
            s,
            "| {} | {:.2} ms | {:.1} ms |{st_time} {:.1} ms | {:.0}x | {:.1}x |{st_ratio}",
            r.name,
            ms(r.sclc_inproc),
            ms(r.sclc_process),
            ms(r.clang_process),
            clang / r.sclc_inproc.as_secs_f64(),
            clang / r.sclc_process.as_secs_f64()
        );
    }
    s
}

fn ratio(r: f64) -> String {
    if r > 1.0 {
        format!("**{r:.2}x**")
    } else {
        format!("{r:.2}x")
    }
}

fn geomean(v: &[f64]) -> f64 {
    let v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite() && *x > 0.0).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    (v.iter().map(|x| x.ln()).sum::<f64>() / v.len() as f64).exp()
}

/// The commit sclc was built from, `+dirty` if the work tree had changes.
fn revision() -> String {
    let git = |args: &[&str]| {
        Command::new("git").current_dir(repo_root()).args(args).output().ok().filter(|o| o.status.success()).map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match git(&["rev-parse", "--short", "HEAD"]) {
        Some(rev) => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
            format!("commit {rev}{}", if dirty { "+dirty" } else { "" })
        }
        None => "unknown commit".into(),
    }
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|s| format!("Linux {}", s.trim())).unwrap_or_else(|_| "Linux".into())
}
