//! `sclc sim --replay TRACE [--lock NAME|ADDR] POLICY.scl`: the recorded workload under a
//! policy.
//!
//! Reads a trace `sclc record` wrote (`scl_trace::format`), picks a lock (`--lock` by name
//! or address, else the hottest), fits its workload model (`scl_trace::fit`), builds the
//! recorded machine and workload (`scl_sim::replay`), and runs it under FIFO and under the
//! policy with the same seed. It prints first how well the FIFO run reproduces the trace
//! (wait percentiles, contention rate and hand-off locality, recorded vs simulated, with a
//! verdict), then the two runs side by side exactly as `sclc sim --compare baseline` does.
//! The baseline runs on Linux's stock mutex or rwsem (what the trace saw), the policy on the
//! module's governed lock (where a policy runs in the kernel); the spinlock is the queued
//! spinlock in both.
//! A trace the reader refuses is a usage error (exit 2), as a bad workload file is.

use crate::sim::{check_kind, compile, ratios, run_one, usage, vm_policy, RecordedOn, SimArgs, SimFormat};
use crate::Status;
use scl_sim::{Config, LockImpl, LockKind, Metrics, Workload};
use scl_trace::fit::{self, LockModel, LockSummary, Samples};
use scl_trace::format::{read_path, Limits};
use scl_trace::Trace;
use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

/// The longest simulated time a replay runs by default (the trace's duration, up to this).
const MAX_DEFAULT_NS: u64 = 1_000_000_000;
/// The shortest.
const MIN_DEFAULT_NS: u64 = 10_000_000;
/// Fewer recorded waits than this and the fit table says it cannot judge.
const MIN_WAITS: u64 = 30;
/// The verdict's bounds on the simulated over recorded wait median and contention rate: a
/// good fit within 25%, a rough one within a factor of 2.
const GOOD: f64 = 0.25;
const ROUGH: f64 = 2.0;

/// How far to trust a prediction, from the FIFO replay's fit to the trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Good,
    Rough,
    Poor,
    TooFewWaits,
}

impl Verdict {
    fn name(self) -> &'static str {
        match self {
            Verdict::Good => "good",
            Verdict::Rough => "rough",
            Verdict::Poor => "poor",
            Verdict::TooFewWaits => "too few waits",
        }
    }
}

/// One side of the fit table.
struct Side {
    waits: u64,
    p50: u64,
    p90: u64,
    p99: u64,
    rate: f64,
    local: Option<f64>,
    duration_ns: u64,
}

impl Side {
    fn recorded(m: &LockModel, trace: &Trace) -> Side {
        Side {
            waits: m.waits,
            p50: m.wait.quantile(0.5),
            p90: m.wait.quantile(0.9),
            p99: m.wait.quantile(0.99),
            rate: m.contention_rate,
            local: m.local_handoff_share,
            duration_ns: trace.end_ns.saturating_sub(trace.start_ns),
        }
    }

    fn simulated(r: &Metrics) -> Side {
        let w = &r.contended_wait;
        Side {
            waits: w.count,
            p50: w.p50_ns,
            p90: w.p90_ns,
            p99: w.p99_ns,
            rate: w.count as f64 / (r.duration_ns as f64 / 1e9),
            local: (w.count >= 2).then_some(r.contended_local_ratio),
            duration_ns: r.duration_ns,
        }
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "waits": self.waits,
            "wait_p50_ns": self.p50,
            "wait_p90_ns": self.p90,
            "wait_p99_ns": self.p99,
            "contention_rate": self.rate,
            "handoffs": self.waits,
            "local_handoff_share": self.local,
            "duration_ns": self.duration_ns,
        })
    }
}

fn ratio(rec: f64, sim: f64) -> Option<f64> {
    (rec > 0.0).then(|| sim / rec)
}

fn verdict(rec: &Side, sim: &Side) -> (Verdict, String) {
    if rec.waits < MIN_WAITS {
        return (
            Verdict::TooFewWaits,
            format!("the trace has {} waits on this lock, too few to judge the fit (at least {MIN_WAITS})", rec.waits),
        );
    }
    let (Some(w), Some(r)) = (ratio(rec.p50 as f64, sim.p50 as f64), ratio(rec.rate, sim.rate)) else {
        return (Verdict::Poor, "the FIFO replay had no contended wait, or the trace no duration, to compare".into());
    };
    let off = |x: f64| (x - 1.0).abs() * 100.0;
    let worst = |x: f64| x.max(1.0 / x);
    let text = format!("the FIFO replay's wait median is {:.0}% and its contention rate {:.0}% off the trace's", off(w), off(r));
    let v = if (1.0 - GOOD..=1.0 + GOOD).contains(&w) && (1.0 - GOOD..=1.0 + GOOD).contains(&r) {
        Verdict::Good
    } else if worst(w) <= ROUGH && worst(r) <= ROUGH {
        Verdict::Rough
    } else {
        Verdict::Poor
    };
    let advice = match v {
        Verdict::Good => "the prediction below is about as close",
        Verdict::Rough => "read the prediction below for the direction of the effect, not its size",
        _ => "do not trust the prediction below",
    };
    (v, format!("{text}: {advice}"))
}

fn lock_label(addr: u64, name: Option<&str>) -> String {
    match name {
        Some(n) => format!("{n} ({addr:#x})"),
        None => format!("{addr:#x}"),
    }
}

/// Picks the lock `--lock` names (a name, or an address in hex or decimal), else the
/// hottest.
fn pick(locks: &[LockSummary], want: Option<&str>, path: &Path) -> Result<u64, Status> {
    let Some(want) = want else {
        return match locks.first() {
            Some(l) if l.waits > 0 => Ok(l.addr),
            Some(_) => Err(usage(format!("{}: no lock in the trace has a completed wait to replay", path.display()))),
            None => Err(usage(format!("{}: the trace has no lock events", path.display()))),
        };
    };
    let addr = match want.strip_prefix("0x").or_else(|| want.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => want.parse::<u64>().ok(),
    };
    if let Some(l) = locks.iter().find(|l| Some(l.addr) == addr || l.name.as_deref() == Some(want)) {
        return Ok(l.addr);
    }
    const SHOWN: usize = 20;
    let kind = if ["spinlock", "mutex", "rwsem"].contains(&want) { " (with --replay, --lock names a lock, not a kind)" } else { "" };
    let mut msg = format!("--lock `{want}`: the trace `{}` has no such lock{kind}; its locks, hottest first:", path.display());
    for l in locks.iter().take(SHOWN) {
        let _ = write!(msg, "\n  {:#x}  {:<8} {:>8} waits  {}", l.addr, fit::kind_name(l.kind), l.waits, l.name.as_deref().unwrap_or("-"));
    }
    if locks.len() > SHOWN {
        let _ = write!(msg, "\n  ... and {} more", locks.len() - SHOWN);
    }
    if locks.is_empty() {
        msg.push_str(" none");
    }
    Err(usage(msg))
}

fn samples_json(s: &Samples) -> serde_json::Value {
    serde_json::json!({
        "samples": s.count,
        "events_used": s.events_used,
        "share": s.share,
        "p50_ns": s.quantile(0.5),
        "p90_ns": s.quantile(0.9),
        "p99_ns": s.quantile(0.99),
        "mean_ns": s.mean(),
    })
}

fn samples_text(s: &Samples) -> String {
    format!(
        "median {}, p90 {} from {} samples ({:.0}% of the lock's events)",
        scl_sim::metrics::ns(s.quantile(0.5)),
        scl_sim::metrics::ns(s.quantile(0.9)),
        s.count,
        s.share * 100.0
    )
}

/// Runs `sclc sim --replay TRACE`.
pub fn replay(args: &SimArgs, path: &Path) -> Result<Status, Status> {
    let trace = read_path(path, &Limits::default()).map_err(|e| usage(format!("{}: {e}", path.display())))?;
    let locks = fit::locks(&trace);
    let addr = pick(&locks, args.lock.as_deref(), path)?;
    let model = fit::fit_lock(&trace, addr);
    let label = lock_label(model.addr, model.name.as_deref());
    let mut r = scl_sim::replay::build(&model, &trace.topology)
        .map_err(|e| usage(format!("{}: cannot replay lock {label}: {e}", path.display())))?;
    // The baseline runs where the trace was recorded (`--recorded-on`).
    if args.recorded_on == RecordedOn::Module {
        r.workload.locks = LockImpl::Module;
    }
    let baseline_on = if r.workload.locks == LockImpl::Module { "module" } else { "linux" };
    if trace.lost > 0 {
        r.notes.push(format!(
            "the recorder lost {} events (its ring buffer was full): waits around them may be missing or merged, and the estimates near them off",
            trace.lost
        ));
    }
    for &i in &args.critical {
        let n = r.workload.threads.len();
        let t = r
            .workload
            .threads
            .get_mut(i as usize)
            .ok_or_else(|| usage(format!("--critical {i}: the replay has {n} threads (0..{})", n - 1)))?;
        t.latency_critical = true;
    }
    let main = compile(&args.file, args.color.enabled())?;
    check_kind(&main, r.workload.lock, &args.file)?;
    let recorded_ns = trace.end_ns.saturating_sub(trace.start_ns);
    let duration_ns = match args.duration {
        Some(d) => d.as_nanos().min(u128::from(u64::MAX)) as u64,
        None => recorded_ns.clamp(MIN_DEFAULT_NS, MAX_DEFAULT_NS),
    };
    let mut cfg = Config { machine: r.machine.clone(), workload: r.workload.clone(), duration_ns, seed: args.seed };
    let rec = Side::recorded(&model, &trace);
    let mut fifo = run_one(&cfg, &mut scl_sim::Fifo)?;
    let uncalibrated = Side::simulated(&fifo);
    let mut scale = None;
    if !args.no_calibrate && rec.waits >= MIN_WAITS && uncalibrated.rate < (1.0 - GOOD) * rec.rate {
        let s = calibrate(&cfg, rec.rate)?;
        cfg.workload = scaled_think(&cfg.workload, s);
        fifo = run_one(&cfg, &mut scl_sim::Fifo)?;
        scale = Some(s);
    }
    // The policy runs where a policy runs in the kernel: on the module's governed lock
    // (`kernel/`); the baseline on Linux's stock lock, the one the trace was recorded on.
    let mut governed = cfg.clone();
    governed.workload.locks = LockImpl::Module;
    let mut p = vm_policy(&main, &args.set, cfg.machine.cpus())?;
    let policy = run_one(&governed, &mut p)?;
    let sim = Side::simulated(&fifo);
    let (v, mut why) = verdict(&rec, &sim);
    if let Some(s) = scale {
        why = format!(
            "{why} (think time calibrated: x{s:.3} made the FIFO replay contend as often as the trace; uncalibrated, its wait median was {:.2}x and its contention rate {:.2}x the trace's)",
            ratio(rec.p50 as f64, uncalibrated.p50 as f64).unwrap_or(0.0),
            ratio(rec.rate, uncalibrated.rate).unwrap_or(0.0)
        );
    }
    let nodes = {
        let mut n: Vec<u32> = trace.topology.cpus.iter().flatten().map(|c| c.node).collect();
        n.sort_unstable();
        n.dedup();
        n.len()
    };
    let online = trace.topology.cpus.iter().flatten().count();
    let mut stdout = crate::output::stdout();
    let written = match args.format {
        SimFormat::Table => {
            let mut t = String::new();
            let _ = writeln!(
                t,
                "trace:    {}: {} on {online} CPUs in {nodes} nodes, {} events ({} lost), {} locks",
                path.display(),
                scl_sim::metrics::ns(recorded_ns),
                trace.events.len(),
                trace.lost,
                locks.len()
            );
            let _ = writeln!(
                t,
                "lock:     {label}, {}, {} threads, {} waits ({} failed), {}",
                model.kind_name(),
                model.threads.len(),
                model.waits,
                model.failed_waits,
                if model.exact { "module hooks: exact" } else { "stock tracepoints: inferred" }
            );
            let _ = writeln!(t, "fit:      critical section {}; {}", samples_text(&model.cs), model.cs_rule.describe());
            let _ = writeln!(t, "          think time {}", samples_text(&model.think));
            let _ = writeln!(t, "machine:  {}", cfg.machine.describe());
            let _ = writeln!(t, "workload: {}", cfg.workload.describe());
            if cfg.workload.lock != LockKind::Spinlock {
                let _ = writeln!(
                    t,
                    "          baseline on {2}, {1} on the module's governed {0} (kernel/)",
                    cfg.workload.lock.name(),
                    policy.policy,
                    if baseline_on == "module" {
                        format!("the module's governed {} with no policy (--recorded-on module)", cfg.workload.lock.name())
                    } else {
                        format!("Linux's stock {}", cfg.workload.lock.name())
                    }
                );
            }
            let _ = writeln!(t, "run:      {} simulated, seed {}", scl_sim::metrics::ns(cfg.duration_ns), cfg.seed);
            for n in &r.notes {
                let _ = writeln!(t, "note:     {n}");
            }
            t.push('\n');
            t.push_str(&fit_table(&rec, &sim));
            let _ = writeln!(t, "fit: {}: {why}\n", v.name());
            t.push_str(&scl_sim::metrics::table(&[fifo.clone(), policy.clone()]));
            stdout.write_all(t.as_bytes())
        }
        SimFormat::Json => {
            let threads: Vec<serde_json::Value> = model
                .threads
                .iter()
                .map(|t| {
                    let sim_cpu = r.threads.iter().find(|x| x.tid == t.tid).map(|x| x.cpu);
                    serde_json::json!({
                        "tid": t.tid, "pid": t.pid, "comm": t.comm, "cpu": t.cpu, "node": t.node,
                        "migrations": t.migrations, "events": t.events, "waits": t.waits,
                        "contention_rate": t.contention_rate, "think": samples_json(&t.think),
                        "sim_cpu": sim_cpu,
                    })
                })
                .collect();
            let w = |x: Option<f64>| x.map_or(serde_json::Value::Null, |v| serde_json::json!(v));
            let v = serde_json::json!({
                "trace": {
                    "path": path.display().to_string(),
                    "start_ns": trace.start_ns,
                    "end_ns": trace.end_ns,
                    "duration_ns": recorded_ns,
                    "events": trace.events.len(),
                    "lost": trace.lost,
                    "cpus": online,
                    "nodes": nodes,
                    "locks": locks.len(),
                },
                "lock": {
                    "addr": model.addr,
                    "addr_hex": format!("{:#x}", model.addr),
                    "name": model.name,
                    "kind": model.kind_name(),
                    "events": model.events,
                    "exact": model.exact,
                    "waits": model.waits,
                    "failed_waits": model.failed_waits,
                    "total_wait_ns": model.total_wait_ns,
                    "contention_rate": model.contention_rate,
                    "read_share": model.read_share,
                    "wait": samples_json(&model.wait),
                    "cs": samples_json(&model.cs),
                    "cs_rule": model.cs_rule,
                    "think": samples_json(&model.think),
                    "threads": threads,
                },
                "fit": {
                    "recorded": rec.json(),
                    "simulated": sim.json(),
                    "ratios": {
                        "wait_p50": w(ratio(rec.p50 as f64, sim.p50 as f64)),
                        "wait_p90": w(ratio(rec.p90 as f64, sim.p90 as f64)),
                        "wait_p99": w(ratio(rec.p99 as f64, sim.p99 as f64)),
                        "contention_rate": w(ratio(rec.rate, sim.rate)),
                        "local_handoff_share": w(rec.local.zip(sim.local).and_then(|(a, b)| ratio(a, b))),
                    },
                    "verdict": v.name(),
                    "think_scale": scale,
                    "uncalibrated": uncalibrated.json(),
                    "verdict_text": why,
                },
                "machine": cfg.machine,
                "locks": { "baseline": baseline_on, "policy": "module" },
                "notes": r.notes,
                "duration_ns": cfg.duration_ns,
                "seed": cfg.seed,
                "runs": [policy, fifo],
                "ratios": ratios(&fifo, &policy),
            });
            writeln!(stdout, "{v}")
        }
    };
    let _ = written.and_then(|_| stdout.flush());
    Ok(Status::Ok)
}

/// `w` with every thread's think time scaled by `s`.
fn scaled_think(w: &Workload, s: f64) -> Workload {
    let mut w = w.clone();
    for t in &mut w.threads {
        t.think = t.think.scaled(s);
    }
    w
}

/// The think-time scale in [1/256, 1] that makes the FIFO replay contend as often as the
/// trace (`rate` waits per second): the fitted think time is an upper bound (uncontended
/// acquisitions are invisible), so the replay may only shorten it. A bisection over the
/// scale's logarithm, on runs of at most 200 ms with the same seed; the contention rate
/// falls as the think time grows.
fn calibrate(cfg: &Config, rate: f64) -> Result<f64, Status> {
    let probe = |s: f64| -> Result<f64, Status> {
        let c = Config { workload: scaled_think(&cfg.workload, s), duration_ns: cfg.duration_ns.min(200_000_000), ..cfg.clone() };
        Ok(Side::simulated(&run_one(&c, &mut scl_sim::Fifo)?).rate)
    };
    // `lo` contends at least as often as the trace (or is the floor), `hi` less often.
    let (mut lo, mut hi) = (-8.0f64, 0.0f64);
    if probe(lo.exp2())? < rate {
        return Ok(lo.exp2());
    }
    for _ in 0..8 {
        let mid = (lo + hi) / 2.0;
        if probe(mid.exp2())? >= rate {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(lo.exp2())
}

/// Recorded vs simulated-under-FIFO, with the ratio.
fn fit_table(rec: &Side, sim: &Side) -> String {
    // The simulated run's hand-offs scaled to the trace's duration.
    let sim_waits = if sim.duration_ns == 0 { 0.0 } else { sim.waits as f64 * rec.duration_ns as f64 / sim.duration_ns as f64 };
    let t = |v: u64| scl_sim::metrics::ns(v);
    let share = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |x| format!("{x:.3}"));
    let r = |a: f64, b: f64| ratio(a, b).map_or_else(|| "-".to_string(), |x| format!("{x:.2}x"));
    let rows = [
        ("wait p50", t(rec.p50), t(sim.p50), r(rec.p50 as f64, sim.p50 as f64)),
        ("wait p90", t(rec.p90), t(sim.p90), r(rec.p90 as f64, sim.p90 as f64)),
        ("wait p99", t(rec.p99), t(sim.p99), r(rec.p99 as f64, sim.p99 as f64)),
        ("contention rate (waits/s)", format!("{:.0}", rec.rate), format!("{:.0}", sim.rate), r(rec.rate, sim.rate)),
        ("hand-offs in the trace's time", rec.waits.to_string(), format!("{:.0}", sim_waits), r(rec.waits as f64, sim_waits)),
        ("local hand-off share", share(rec.local), share(sim.local), rec.local.zip(sim.local).map_or_else(|| "-".into(), |(a, b)| r(a, b))),
    ];
    let mut out = format!("{:<28}  {:>10}  {:>14}  {:>7}\n", "FIFO replay vs trace", "recorded", "simulated FIFO", "ratio");
    for (label, a, b, c) in rows {
        let _ = writeln!(out, "{label:<28}  {a:>10}  {b:>14}  {c:>7}");
    }
    out
}
