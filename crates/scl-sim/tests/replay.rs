//! The fit of `scl_trace::fit` against workloads whose truth is known: the simulator runs a
//! known workload and hands out the events a stock kernel's tracepoints would show
//! (`simulate_traced`); the fit must find the critical section and think time it was given,
//! and replaying the fitted model under FIFO must reproduce the recorded waits.
//!
//! Tolerances (stated once, here): the fitted critical-section median within 15% of the
//! truth's plus two remote line transfers (the inferred interval includes the hand-off: up
//! to two line transfers, and for a mutex whose next waiter slept its wake-up), the think
//! median within 25% plus the same (it is the interval less that critical section) (an upper bound: the
//! uncontended acquisitions in between are invisible), and the FIFO replay's contended wait
//! median within 15% of the recorded one, its contention rate within 10%.

use scl_sim::model::FIRST_TID;
use scl_sim::WorkloadDefaults;
use scl_sim::{replay, simulate, simulate_traced, Config, Dist, Fifo, LockImpl, LockKind, Machine, SimEventKind, Workload};
use scl_trace::fit::{self, LCB_F_MUTEX, LCB_F_READ, LCB_F_SPIN, LCB_F_WRITE};
use scl_trace::{CpuPlace, Event, EventKind, Topology, Trace};

/// Runs `cfg` under FIFO and returns the trace a stock kernel (or, with `hooks`, the module)
/// would have given of it, recorded on a machine of `cfg.machine`'s shape.
fn record(cfg: &Config, hooks: bool) -> (Trace, scl_sim::Metrics) {
    let m = &cfg.machine;
    let kind = cfg.workload.lock;
    let mut events = Vec::new();
    let metrics = simulate_traced(cfg, &mut Fifo, &mut |e| {
        let (k, flags) = match e.kind {
            SimEventKind::ContentionBegin => {
                let f = match kind {
                    LockKind::Spinlock => LCB_F_SPIN,
                    LockKind::Mutex => LCB_F_MUTEX | LCB_F_SPIN,
                    LockKind::Rwsem if e.read => LCB_F_READ,
                    LockKind::Rwsem => LCB_F_WRITE,
                };
                (EventKind::ContentionBegin, f)
            }
            SimEventKind::ContentionEnd => (EventKind::ContentionEnd, 0),
            _ if !hooks => return,
            SimEventKind::ToAcquire => (EventKind::ToAcquire, 0),
            SimEventKind::Acquired => (EventKind::Acquired, 0),
            SimEventKind::ToRelease => (EventKind::ToRelease, 0),
            SimEventKind::Released => (EventKind::Released, 0),
        };
        events.push(Event {
            ts: e.ts,
            kind: k,
            lock: 0xffff_8880_0000_1000,
            flags,
            lock_kind: kind.abi(),
            ok: true,
            tid: FIRST_TID + e.thread as u32,
            pid: 7,
            cpu: e.cpu,
        });
    })
    .unwrap();
    let topology = Topology { cpus: (0..m.cpus()).map(|c| Some(CpuPlace { node: m.node(c), socket: m.node(c) })).collect() };
    let trace = Trace {
        topology,
        start_ns: 0,
        end_ns: cfg.duration_ns,
        lock_names: vec![(0xffff_8880_0000_1000, "test_lock".into())],
        comms: Vec::new(),
        lost: 0,
        events,
    };
    (trace, metrics)
}

fn config(lock: LockKind, cs: Dist, think: Dist, threads: u32) -> Config {
    let machine = Machine::symmetric(2, 4);
    let d = WorkloadDefaults { lock, cs, read_cs: Dist::Fixed(1), think, read_ratio: 0.0, ..WorkloadDefaults::default() };
    let mut workload = Workload::uniform(&machine, threads, &d).unwrap();
    workload.locks = LockImpl::Linux;
    Config { machine, workload, duration_ns: 50_000_000, seed: 3 }
}

fn within(got: f64, want: f64, tol: f64) -> bool {
    (got - want).abs() <= tol * want
}

/// The table: known workloads, stock tracepoints only.
#[test]
fn fit_finds_the_known_critical_section_and_think_time() {
    let cases = [
        (LockKind::Spinlock, Dist::Uniform(1_500, 2_500), Dist::Uniform(4_000, 8_000), 8),
        (LockKind::Spinlock, Dist::Fixed(5_000), Dist::Exponential(10_000), 6),
        (LockKind::Mutex, Dist::Uniform(8_000, 12_000), Dist::Uniform(20_000, 40_000), 8),
        (LockKind::Mutex, Dist::Fixed(20_000), Dist::Exponential(50_000), 8),
        // Two threads taking turns: no hand-off has its next waiter waiting before the
        // acquisition, so the relaxed rule gives the critical sections.
        (LockKind::Mutex, Dist::Uniform(8_000, 12_000), Dist::Uniform(1_000, 3_000), 2),
        (LockKind::Spinlock, Dist::Uniform(1_500, 2_500), Dist::Uniform(500, 1_000), 2),
    ];
    for (lock, cs, think, n) in cases {
        let cfg = config(lock, cs.clone(), think.clone(), n);
        let (trace, _) = record(&cfg, false);
        let models = fit::fit(&trace, 1);
        assert_eq!(models.len(), 1);
        let m = &models[0];
        assert_eq!((m.kind, m.name.as_deref(), m.exact), (lock.abi(), Some("test_lock"), false));
        assert_eq!(m.cs_rule, if n == 2 { fit::CsRule::Relaxed } else { fit::CsRule::Busy });
        assert!(m.cs.count > 100 && m.think.count > 100, "{lock:?}: too few samples: {m:?}");
        assert!(m.cs.share > 0.0 && m.cs.share <= 1.0);
        let cs_true = cs.mean();
        let cs_fit = m.cs.quantile(0.5) as f64;
        // The interval includes the hand-off: up to two remote line transfers (the
        // release's and the acquisition's).
        let handoff = 2.0 * cfg.machine.remote_handoff_ns as f64;
        assert!((cs_fit - cs_true).abs() <= 0.15 * cs_true + handoff, "{lock:?} {cs}: fitted cs median {cs_fit} vs {cs_true}");
        // The median of the truth: the mean for the symmetric ones, ln 2 times it for the
        // exponential.
        let think_true = match think {
            Dist::Exponential(m) => m as f64 * std::f64::consts::LN_2,
            ref d => d.mean(),
        };
        let think_fit = m.think.quantile(0.5) as f64;
        eprintln!(
            "{lock:?} cs {cs}: fitted {cs_fit} (truth {cs_true}), think {think}: fitted {think_fit} (truth {think_true}), {} waits",
            m.waits
        );
        // Less that interval: short by the same hand-off.
        assert!(
            (think_fit - think_true).abs() <= 0.25 * think_true + handoff,
            "{lock:?} {think}: fitted think median {think_fit} vs {think_true}"
        );
        assert_eq!(m.threads.len(), n as usize);
        assert!(m.threads.iter().all(|t| t.migrations == 0));
    }
}

/// Replaying the fitted model under FIFO reproduces the recorded waits and contention rate.
#[test]
fn fifo_replay_reproduces_the_recorded_waits() {
    let cases = [
        (LockKind::Spinlock, Dist::Uniform(1_500, 2_500), Dist::Uniform(4_000, 8_000), 8),
        (LockKind::Mutex, Dist::Uniform(8_000, 12_000), Dist::Uniform(20_000, 40_000), 8),
    ];
    for (lock, cs, think, n) in cases {
        let cfg = config(lock, cs, think, n);
        let (trace, truth) = record(&cfg, false);
        let model = fit::fit_lock(&trace, 0xffff_8880_0000_1000);
        let r = replay::build(&model, &trace.topology).unwrap();
        assert_eq!((r.machine.sockets, r.machine.cores_per_socket), (2, 4));
        assert_eq!(r.threads.iter().map(|t| (t.recorded_cpu, t.cpu)).filter(|(a, b)| a != b).count(), 0);
        let sim =
            simulate(&Config { machine: r.machine, workload: r.workload, duration_ns: 50_000_000, seed: 9 }, &mut Fifo, None).unwrap();
        let rec = model.wait.quantile(0.5) as f64;
        let got = sim.contended_wait.p50_ns as f64;
        let rate = sim.contended_wait.count as f64 / 0.05;
        eprintln!("{lock:?}: wait p50 recorded {rec} replayed {got}; rate recorded {} replayed {rate}", model.contention_rate);
        assert!(within(got, rec, 0.15), "{lock:?}: replayed wait median {got} vs recorded {rec}");
        assert!(within(rate, model.contention_rate, 0.10), "{lock:?}: rate {rate} vs {}", model.contention_rate);
        // The recorded truth agrees with what the trace says.
        assert_eq!(truth.contended_wait.count, model.waits);
    }
}

/// With the module's hooks in the trace the fit is exact: every acquisition's critical
/// section, not only the contended hand-offs.
#[test]
fn module_hooks_give_exact_critical_sections() {
    let cfg = config(LockKind::Spinlock, Dist::Fixed(3_000), Dist::Fixed(9_000), 4);
    let (trace, truth) = record(&cfg, true);
    let m = fit::fit_lock(&trace, 0xffff_8880_0000_1000);
    assert!(m.exact);
    assert_eq!(m.cs.count, truth.acquisitions.min(m.cs.count));
    assert!(m.cs.count + 4 >= truth.acquisitions, "{} of {}", m.cs.count, truth.acquisitions);
    assert_eq!(m.cs.quantile(0.5), fit::quantise(3_000));
    assert_eq!(m.cs.quantile(0.99), fit::quantise(3_000));
    assert_eq!(m.waits, truth.contended_wait.count);
}

/// The recorded machine: nodes of unequal size, threads that shared a CPU, a CPU the
/// topology does not know.
#[test]
fn recorded_threads_land_on_their_nodes() {
    let samples = |v: u64| fit::Samples { values: vec![(v, 50)], count: 50, events_used: 100, share: 0.5 };
    let thread = |tid: u32, cpu: u32| fit::ThreadModel {
        tid,
        pid: 1,
        comm: None,
        cpu,
        node: 0,
        migrations: 0,
        events: 100,
        waits: 50,
        contention_rate: 1.0,
        think: samples(2_000),
    };
    let model = fit::LockModel {
        addr: 1,
        name: None,
        kind: 1,
        read_share: None,
        events: 400,
        exact: false,
        waits: 200,
        failed_waits: 0,
        total_wait_ns: 0,
        contention_rate: 1.0,
        local_handoff_share: Some(0.5),
        wait: samples(1_000),
        cs: samples(1_000),
        cs_rule: fit::CsRule::Busy,
        think: samples(2_000),
        // Node 0 is CPUs 0-2, node 1 is CPU 4 (CPU 3 offline).
        threads: vec![thread(10, 0), thread(11, 0), thread(12, 4), thread(13, 4), thread(14, 99)],
    };
    let place = |node| Some(CpuPlace { node, socket: node });
    let topo = Topology { cpus: vec![place(0), place(0), place(0), None, place(1)] };
    let r = replay::build(&model, &topo).unwrap();
    // Node 1 needs a second core for thread 13; node 0 has three CPUs.
    assert_eq!((r.machine.sockets, r.machine.cores_per_socket), (2, 3));
    let cpus: Vec<(u32, u32)> = r.threads.iter().map(|t| (t.tid, t.cpu)).collect();
    // Thread 11 moves to node 0's next free CPU, thread 13 to an added core of node 1,
    // thread 14 (a CPU the topology does not know) to node 0's last free CPU.
    assert_eq!(cpus, vec![(10, 0), (11, 1), (12, 3), (13, 4), (14, 2)]);
    assert_eq!(r.workload.locks, LockImpl::Linux);
    assert!(r.notes.iter().any(|n| n.contains("added to the node")), "{:?}", r.notes);
    r.workload.validate(&r.machine).unwrap();
    // No critical sections: refused with a reason.
    let none = fit::LockModel { cs: fit::Samples::default(), ..model };
    assert!(replay::build(&none, &topo).unwrap_err().0.contains("cannot be inferred"));
}
