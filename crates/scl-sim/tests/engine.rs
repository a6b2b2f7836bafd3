//! The lock models with native (Rust) policies: determinism, the context the hooks get, the
//! reorder bound, costs and waits, and the three lock kinds.

use scl_sim::abi::{self, get_u32, get_u64};
use scl_sim::model::{FIRST_TID, LOCK_ADDR, TGID};
use scl_sim::{simulate, Config, Dist, Hook, HookEnv, HookOutcome, LockKind, Machine, Metrics, Policy, Workload, WorkloadDefaults};

/// A policy written in Rust: a decision function per hook, a fixed instruction count, and
/// an optional wait, with every context it saw checked by `check`.
struct Native {
    hooks: Vec<Hook>,
    decide: fn(Hook, &[u8; 128]) -> bool,
    insns: u64,
    helpers: u64,
    wait_ns: u64,
    check: fn(Hook, &[u8; 128], &HookEnv<'_>),
    calls: Vec<(Hook, u32)>,
}

impl Native {
    fn new(hooks: &[Hook], decide: fn(Hook, &[u8; 128]) -> bool) -> Native {
        Native { hooks: hooks.to_vec(), decide, insns: 10, helpers: 0, wait_ns: 0, check: |_, _, _| {}, calls: Vec::new() }
    }
}

impl Policy for Native {
    fn name(&self) -> &str {
        "native"
    }

    fn has(&self, hook: Hook) -> bool {
        self.hooks.contains(&hook)
    }

    fn call(&mut self, hook: Hook, ctx: &mut [u8; 128], env: &mut HookEnv<'_>) -> Result<HookOutcome, String> {
        (self.check)(hook, ctx, env);
        self.calls.push((hook, get_u32(ctx, abi::TID)));
        if self.wait_ns > 0 {
            let d = env.now + self.wait_ns;
            env.wait_until(d);
        }
        Ok(HookOutcome { ret: u64::from((self.decide)(hook, ctx)), insns: self.insns, helpers: self.helpers })
    }

    fn mark_latency_critical(&mut self, _: u32) -> Result<bool, String> {
        Ok(false)
    }
}

fn cfg(lock: LockKind, threads: u32, ms: u64) -> Config {
    let machine = Machine::symmetric(2, 8);
    let d = WorkloadDefaults { lock, ..WorkloadDefaults::default() };
    let workload = Workload::uniform(&machine, threads, &d).unwrap();
    Config { machine, workload, duration_ns: ms * 1_000_000, seed: 42 }
}

fn fifo(c: &Config) -> Metrics {
    simulate(c, &mut scl_sim::Fifo, None).unwrap()
}

#[test]
fn a_seed_fixes_the_run() {
    let c = cfg(LockKind::Spinlock, 16, 5);
    assert_eq!(fifo(&c), fifo(&c));
    let other = Config { seed: 43, ..c.clone() };
    assert_ne!(fifo(&c).threads, fifo(&other).threads);
    // The shuffler's walk too: its steps are events ordered like every other.
    let shfl = |c: &Config| simulate(c, &mut scl_sim::StaticShfl, None).unwrap();
    assert!(shfl(&c).shuffle.moves > 0);
    assert_eq!(shfl(&c), shfl(&c));
    assert_ne!(shfl(&c).threads, shfl(&other).threads);
}

#[test]
fn fifo_is_fifo_and_fair() {
    let c = cfg(LockKind::Spinlock, 16, 10);
    let m = fifo(&c);
    assert!(m.acquisitions > 5_000, "{}", m.acquisitions);
    assert_eq!(m.shuffle.moves, 0);
    assert_eq!(m.hooks.calls.len(), 0);
    assert!(m.fairness > 0.98, "{}", m.fairness);
    // Threads alternate sockets, so FIFO hands off locally about half the time.
    assert!((0.35..0.65).contains(&m.local_handoff_ratio), "{}", m.local_handoff_ratio);
    assert!(m.wait.p50_ns <= m.wait.p99_ns && m.wait.p99_ns <= m.wait.max_ns);
    // Saturated: throughput is about one critical section plus a hand-off per acquisition.
    let cycle = 1_000.0 + 0.5 * 40.0 + 0.5 * 200.0;
    assert!((m.throughput - 1e9 / cycle).abs() / (1e9 / cycle) < 0.1, "{}", m.throughput);
}

#[test]
fn the_kinds_behave_as_their_kernel_namesakes() {
    let spin = fifo(&cfg(LockKind::Spinlock, 16, 10));
    let mutex = fifo(&cfg(LockKind::Mutex, 16, 10));
    // A mutex hand-off wakes a sleeper: slower than a spinning waiter.
    assert!(mutex.throughput < spin.throughput * 0.7, "{} vs {}", mutex.throughput, spin.throughput);
    let mut rw = cfg(LockKind::Rwsem, 16, 10);
    for t in &mut rw.workload.threads {
        t.read_ratio = 1.0;
    }
    let reads = fifo(&rw);
    // Readers share the lock: far more acquisitions than the exclusive lock, bounded by the
    // shared count's cache line.
    assert!(reads.throughput > spin.throughput * 2.0, "{} vs {}", reads.throughput, spin.throughput);
    assert_eq!(reads.writes.as_ref().unwrap().acquisitions, 0);
    for t in &mut rw.workload.threads {
        t.read_ratio = 0.0;
    }
    let writes = fifo(&rw);
    assert!(writes.throughput < mutex.throughput * 1.1, "{} vs {}", writes.throughput, mutex.throughput);
}

#[test]
fn hooks_get_the_context_of_the_abi() {
    let c = cfg(LockKind::Rwsem, 16, 2);
    let mut p = Native::new(&Hook::ALL, |h, ctx| match h {
        Hook::EnableFastpath => get_u32(ctx, abi::TID) & 1 == 0,
        Hook::ShouldReorder => get_u32(ctx, abi::CANDIDATE + 4) == get_u32(ctx, abi::SHUFFLER + 4),
        _ => false,
    });
    p.check = |h, ctx, env| {
        assert_eq!(get_u64(ctx, abi::LOCK), LOCK_ADDR);
        assert_eq!(get_u32(ctx, abi::KIND), 2);
        let flags = get_u32(ctx, abi::FLAGS);
        assert!(flags == abi::F_READER || flags == abi::F_WRITER, "{flags}");
        if matches!(h, Hook::BypassAcquire | Hook::BypassRelease) {
            assert_eq!(flags, abi::F_READER);
        }
        let (cpu, node, tid) = (get_u32(ctx, abi::CPU), get_u32(ctx, abi::NUMA_NODE), get_u32(ctx, abi::TID));
        assert_eq!(cpu, env.cpu);
        assert_eq!(node, cpu / 8);
        assert_eq!(node, env.numa_node);
        assert_eq!(get_u32(ctx, abi::TGID), TGID);
        assert_eq!(env.pid_tgid, (u64::from(TGID) << 32) | u64::from(tid));
        // Thread i is spread over the sockets: CPU (i % 2) * 8 + i / 2.
        let i = tid - FIRST_TID;
        assert_eq!(cpu, (i % 2) * 8 + i / 2);
        let reorder = matches!(h, Hook::ShouldReorder | Hook::SkipReorder);
        if reorder {
            assert_eq!(get_u32(ctx, abi::SHUFFLER + 8), tid, "the shuffler runs its own reorder hooks");
            assert_eq!(get_u32(ctx, abi::SHUFFLER), cpu);
            assert_eq!(get_u32(ctx, abi::SHUFFLER + 12), 120);
            assert!(get_u64(ctx, abi::SHUFFLER + 16) <= env.now);
        } else {
            assert!(ctx[32..64].iter().all(|b| *b == 0));
        }
        if h == Hook::ShouldReorder {
            let cand = get_u32(ctx, abi::CANDIDATE + 8);
            assert_ne!(cand, tid);
            let j = cand - FIRST_TID;
            assert_eq!(get_u32(ctx, abi::CANDIDATE), (j % 2) * 8 + j / 2);
            assert_eq!(get_u32(ctx, abi::CANDIDATE + 4), j % 2);
            assert!(get_u64(ctx, abi::CANDIDATE + 16) <= env.now);
        } else {
            assert!(ctx[64..128].iter().all(|b| *b == 0));
        }
    };
    let m = simulate(&c, &mut p, None).unwrap();
    for h in [Hook::ToAcquire, Hook::EnableFastpath, Hook::Contended, Hook::Acquired, Hook::ToRelease, Hook::Released] {
        assert!(m.hooks.calls.get(h.name()).copied().unwrap_or(0) > 100, "{h:?}: {:?}", m.hooks.calls);
    }
    assert!(m.hooks.calls.get("should_reorder").copied().unwrap_or(0) > 0);
    assert!(m.hooks.calls.get("bypass_acquire").copied().unwrap_or(0) > 0);
    assert!(m.fastpath_refused > 0);
    // Per acquisition, hooks fire in order: to_acquire ... acquired, to_release, released.
    let mut last = std::collections::HashMap::new();
    for (h, tid) in &p.calls {
        if matches!(h, Hook::ShouldReorder | Hook::SkipReorder) {
            continue;
        }
        let prev = last.insert(*tid, *h);
        let ok = match h {
            Hook::ToAcquire => prev.is_none() || prev == Some(Hook::Released),
            Hook::BypassAcquire => prev == Some(Hook::ToAcquire),
            Hook::EnableFastpath => matches!(prev, Some(Hook::ToAcquire | Hook::BypassAcquire)),
            Hook::Contended => prev == Some(Hook::EnableFastpath),
            Hook::Acquired => matches!(prev, Some(Hook::EnableFastpath | Hook::Contended)),
            Hook::ToRelease => prev == Some(Hook::Acquired),
            Hook::BypassRelease => prev == Some(Hook::ToRelease),
            Hook::Released => matches!(prev, Some(Hook::ToRelease | Hook::BypassRelease)),
            _ => true,
        };
        assert!(ok, "{h:?} after {prev:?} for tid {tid}");
    }
}

#[test]
fn the_reorder_bound_holds_against_an_unfair_policy() {
    // Odd threads always jump the queue: without the bound, even threads could wait
    // forever behind them.
    let mut c = cfg(LockKind::Spinlock, 16, 20);
    for t in &mut c.workload.threads {
        t.think = Dist::Fixed(100);
    }
    for bound in [4, 64] {
        c.workload.max_overtake = bound;
        let mut p = Native::new(&[Hook::ShouldReorder], |_, ctx| get_u32(ctx, abi::CANDIDATE + 8) % 2 == 1);
        p.insns = 1;
        let m = simulate(&c, &mut p, None).unwrap();
        assert_eq!(m.shuffle.max_overtaken, bound, "the bound is reached and never passed");
        assert!(m.shuffle.bound_hits > 0);
        let evens: u64 = m.threads.iter().filter(|t| t.tid % 2 == 0).map(|t| t.acquisitions).sum();
        assert!(evens > m.acquisitions / 20, "even threads still progress: {evens} of {}", m.acquisitions);
        // Queue ahead (15) plus overtakes, each at most one 1.5 us section and a remote
        // hand-off, plus the rounds' hook costs.
        let bound_ns = (15 + u64::from(bound)) * (1_500 + 200 + 16 * 2) + 1_000;
        assert!(m.max_wait_ns() <= bound_ns, "{} > {bound_ns}", m.max_wait_ns());
        let fifo = fifo(&c);
        assert!(m.max_wait_ns() > fifo.max_wait_ns());
    }
}

#[test]
fn skip_reorder_keeps_fifo() {
    let c = cfg(LockKind::Spinlock, 16, 5);
    let mut p = Native::new(&[Hook::SkipReorder, Hook::ShouldReorder], |h, _| h == Hook::SkipReorder || h == Hook::ShouldReorder);
    let m = simulate(&c, &mut p, None).unwrap();
    assert!(m.shuffle.rounds > 0);
    assert_eq!(m.shuffle.rounds, m.shuffle.skipped);
    assert_eq!(m.shuffle.moves, 0);
    assert_eq!(m.hooks.calls.get("should_reorder"), None);
}

#[test]
fn hook_instructions_and_waits_cost_simulated_time() {
    let mut c = cfg(LockKind::Spinlock, 16, 5);
    c.machine.ns_per_insn = 2.0;
    let base = fifo(&c);
    // 200 instructions at 2 ns while holding the lock: 400 ns more per critical section.
    let mut p = Native::new(&[Hook::Acquired], |_, _| false);
    p.insns = 200;
    let slow = simulate(&c, &mut p, None).unwrap();
    assert!(slow.throughput < base.throughput * 0.8, "{} vs {}", slow.throughput, base.throughput);
    assert_eq!(slow.hooks.insns, 200 * slow.hooks.calls["acquired"]);
    // Helper calls are charged apart: 20 calls at 20 ns cost as much as the 200 instructions.
    c.machine.ns_per_helper = 20.0;
    let mut p = Native::new(&[Hook::Acquired], |_, _| false);
    p.insns = 0;
    p.helpers = 20;
    let calls = simulate(&c, &mut p, None).unwrap();
    assert_eq!(calls.hooks.helpers, 20 * calls.hooks.calls["acquired"]);
    let r = calls.throughput / slow.throughput;
    assert!((0.97..=1.03).contains(&r), "{} vs {}", calls.throughput, slow.throughput);
    // A 5 us back-off before each acquisition: the lock idles, waits grow by the back-off.
    let mut p = Native::new(&[Hook::ToAcquire], |_, _| false);
    p.wait_ns = 5_000;
    p.insns = 0;
    let mut c2 = cfg(LockKind::Spinlock, 2, 5);
    c2.workload.threads.iter_mut().for_each(|t| t.think = Dist::Fixed(1_000));
    let quiet = fifo(&c2);
    let waited = simulate(&c2, &mut p, None).unwrap();
    assert!(waited.wait.p50_ns >= 5_000 && waited.wait.p50_ns > quiet.wait.p50_ns, "{} vs {}", waited.wait.p50_ns, quiet.wait.p50_ns);
    assert_eq!(waited.hooks.waited_ns, 5_000 * waited.hooks.calls["to_acquire"]);
}

#[test]
fn little_cores_are_slower() {
    let machine = Machine::symmetric(1, 8).with_little(4..8, 0.25);
    let mut workload = Workload::uniform(&machine, 8, &WorkloadDefaults::default()).unwrap();
    workload.threads.iter_mut().for_each(|t| t.think = Dist::Fixed(100_000));
    let c = Config { machine, workload, duration_ns: 20_000_000, seed: 1 };
    let m = fifo(&c);
    // Uncontended: each thread's rate is set by its own speed.
    let big: u64 = m.threads[..4].iter().map(|t| t.acquisitions).sum();
    let little: u64 = m.threads[4..].iter().map(|t| t.acquisitions).sum();
    assert!(big > little * 3, "{big} vs {little}");
    let hold = |r: std::ops::Range<usize>| m.threads[r].iter().map(|t| t.hold_ns as f64 / t.acquisitions as f64).sum::<f64>() / 4.0;
    assert!(hold(4..8) > hold(0..4) * 3.5);
}

#[test]
fn bad_models_are_refused() {
    let m = Machine::symmetric(1, 4);
    assert!(Workload::uniform(&m, 5, &WorkloadDefaults::default()).is_err());
    let mut c = cfg(LockKind::Spinlock, 4, 1);
    c.workload.threads[1].cpu = c.workload.threads[0].cpu;
    assert!(matches!(simulate(&c, &mut scl_sim::Fifo, None), Err(scl_sim::SimError::Model(_))));
}

#[test]
fn a_failing_hook_stops_the_run_with_its_name() {
    struct Broken;
    impl Policy for Broken {
        fn name(&self) -> &str {
            "broken"
        }
        fn has(&self, h: Hook) -> bool {
            h == Hook::Acquired
        }
        fn call(&mut self, _: Hook, _: &mut [u8; 128], _: &mut HookEnv<'_>) -> Result<HookOutcome, String> {
            Err("out of bounds".into())
        }
        fn mark_latency_critical(&mut self, _: u32) -> Result<bool, String> {
            Ok(false)
        }
    }
    let e = simulate(&cfg(LockKind::Mutex, 2, 1), &mut Broken, None).unwrap_err();
    assert_eq!(e.to_string(), "hook `acquired` failed: out of bounds");
}

#[test]
fn progress_reaches_the_end() {
    let c = cfg(LockKind::Spinlock, 16, 5);
    let mut seen = Vec::new();
    simulate(&c, &mut scl_sim::Fifo, Some(&mut |done, total| seen.push((done, total)))).unwrap();
    assert_eq!(seen.last(), Some(&(c.duration_ns, c.duration_ns)));
    assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0));
}


/// A lock1-like workload (will-it-scale: tiny critical sections, short think time) with
/// thread `i` on CPU `i`, so `threads / cores` sockets take part.
fn lock1(machine: Machine, threads: u32, ms: u64) -> Config {
    let d = WorkloadDefaults { cs: Dist::Uniform(50, 150), think: Dist::Exponential(1_000), ..WorkloadDefaults::default() };
    let mut workload = Workload::uniform(&machine, threads, &d).unwrap();
    for (i, t) in workload.threads.iter_mut().enumerate() {
        t.cpu = i as u32;
    }
    Config { machine, workload, duration_ns: ms * 1_000_000, seed: 7 }
}

#[test]
fn the_walk_overlaps_the_critical_section_and_stops_when_the_lock_is_free() {
    // A policy that never approves and costs 100 instructions (150 ns) per candidate. A
    // head that had to finish a walk over every waiter behind it before taking the lock
    // would delay most hand-offs (0.62x of FIFO's throughput, measured with such a model);
    // here the walk runs while others hold the lock, and a head stops after the step it is
    // in once the lock is free.
    let c = cfg(LockKind::Spinlock, 16, 10);
    let base = fifo(&c);
    let mut p = Native::new(&[Hook::ShouldReorder], |_, _| false);
    p.insns = 100;
    let m = simulate(&c, &mut p, None).unwrap();
    assert!(m.hooks.calls["should_reorder"] > m.acquisitions / 2, "the walk runs: {:?} for {}", m.hooks.calls, m.acquisitions);
    assert!(m.throughput > base.throughput * 0.85, "{} vs {}", m.throughput, base.throughput);
    assert_eq!(m.shuffle.moves, 0);
}

#[test]
fn the_walk_is_incremental_and_the_role_passes_down() {
    // Every waiter is on the shuffler's node: each is visited once and grouped, and the role
    // passes down to the last one grouped, which goes on from there; so the walk costs about
    // one visit per acquisition. Re-walking the queue from the head at each hand-off would
    // cost one visit per waiter queued behind it.
    let c = lock1(Machine::symmetric(1, 16), 16, 5);
    let mut p = scl_sim::StaticShfl;
    let m = simulate(&c, &mut p, None).unwrap();
    let visits = m.hooks.calls["should_reorder"] as f64 / m.acquisitions as f64;
    assert!(visits < 1.5, "{visits} visits per acquisition");
    assert!(m.hooks.calls["should_reorder"] > m.acquisitions / 2, "{visits}");
}

#[test]
fn batches_are_bounded_and_queue_nodes_cost_a_miss() {
    let c = lock1(Machine::symmetric(4, 4), 16, 5);
    let local = |c: &Config| simulate(c, &mut scl_sim::StaticShfl, None).unwrap().local_handoff_ratio;
    let grouped = local(&c);
    assert!(grouped > 0.6, "{grouped}");
    // A batch of at most 2 grouped waiters: at most two local hand-offs in a row, then the
    // queue's own order (mostly remote on 4 sockets).
    let mut small = c.clone();
    small.workload.shuffle_batch = 2;
    let bounded = local(&small);
    assert!(bounded < grouped - 0.15, "{bounded} vs {grouped}");
    // A walk whose every visit costs 1 us finds the shuffler's node's waiters too late.
    let mut slow = c.clone();
    slow.machine.queue_node_ns = 1_000;
    let late = local(&slow);
    assert!(late < grouped - 0.2, "{late} vs {grouped}");
}

/// FIFO throughput of `c`.
fn tput(c: &Config) -> f64 {
    fifo(c).throughput
}

#[test]
fn the_memory_model_charges_each_cost_where_it_arises() {
    // Each row: a cost of the memory model, and a run with it against the same run without
    // it. Every cost makes the stock lock slower; none is free.
    let base = lock1(Machine::symmetric(2, 8), 16, 5);
    let with = |f: &dyn Fn(&mut Config)| {
        let mut c = base.clone();
        f(&mut c);
        c
    };
    let rows: [(&str, Config); 4] = [
        ("4 data lines per critical section", with(&|c| c.workload.threads.iter_mut().for_each(|t| t.cs_lines = 4))),
        ("2 shared lines per critical section", with(&|c| c.workload.threads.iter_mut().for_each(|t| t.shared_lines = 2))),
        ("remote transfers of 400 ns", with(&|c| c.machine.remote_handoff_ns = 400)),
        (
            "4 sockets in a row, 150 ns per extra hop",
            Config {
                machine: Machine::from_toml(
                    "sockets = 4\ncores_per_socket = 4\nhop_ns = 150\nhops = [[0,1,2,3],[1,0,1,2],[2,1,0,1],[3,2,1,0]]",
                )
                .unwrap(),
                ..lock1(Machine::symmetric(4, 4), 16, 5)
            },
        ),
    ];
    let plain_hops = tput(&lock1(Machine::symmetric(4, 4), 16, 5));
    for (what, c) in rows {
        let against = if what.contains("hop") { plain_hops } else { tput(&base) };
        let t = tput(&c);
        eprintln!("{what}: {t:.0} acq/s against {against:.0}");
        assert!(t < against * 0.97, "{what}: {t} vs {against}");
    }
}

#[test]
fn the_stock_lock_collapses_past_one_socket() {
    // lock1's shape: FIFO throughput grows up to a socket's worth of threads and falls once
    // hand-offs cross sockets (the lock word, the data lines and every enqueue's exchange
    // on the lock's line move between sockets).
    let m = || Machine { remote_handoff_ns: 300, ..Machine::symmetric(2, 8) };
    let mut one = lock1(m(), 8, 5);
    let mut two = lock1(m(), 16, 5);
    for c in [&mut one, &mut two] {
        c.workload.threads.iter_mut().for_each(|t| t.cs_lines = 2);
    }
    let (a, b) = (tput(&one), tput(&two));
    assert!(b < a * 0.8, "16 threads on two sockets {b} vs 8 on one {a}");
}

#[test]
fn hops_are_counted_from_the_matrix() {
    let m = Machine::from_toml("sockets = 3\ncores_per_socket = 2\nremote_handoff_ns = 100\nhop_ns = 50\nhops = [[0,1,2],[1,0,1],[2,1,0]]").unwrap();
    // (from CPU, to CPU, ns): CPUs 0-1 are socket 0, 2-3 socket 1, 4-5 socket 2.
    let table = [(0, 1, 40), (0, 0, 5), (0, 2, 100), (0, 4, 150), (5, 0, 150), (2, 4, 100)];
    for (from, to, ns) in table {
        assert_eq!(m.transfer_ns(Some(from), to), ns, "CPU {from} to {to}");
    }
    assert_eq!(m.transfer_ns(None, 3), 40);
    for bad in ["sockets = 2\nhops = [[0,1]]", "sockets = 2\nhops = [[0,1],[2,0]]", "sockets = 2\nhops = [[1,1],[1,0]]", "sockets = 2\nhops = [[0,0],[0,0]]"] {
        assert!(Machine::from_toml(bad).is_err(), "{bad}");
    }
}

/// A mutex workload of `threads` on a 2x8 machine with Linux's stock locks.
fn linux_mutex(threads: u32, spin: Option<u64>) -> Config {
    let mut c = cfg(LockKind::Mutex, threads, 10);
    c.workload.locks = scl_sim::LockImpl::Linux;
    c.workload.mutex_spin_ns = spin;
    c
}

#[test]
fn linux_mutex_waiters_spin_steal_and_hand_off() {
    // Rows: the spin budget, and what follows from it.
    // - Spinning while the owner runs (no preemption here): nobody sleeps, so no hand-off
    //   pays a wake-up and the lock beats the module's mutex, which wakes every new owner.
    let module = fifo(&cfg(LockKind::Mutex, 16, 10));
    let spin = fifo(&linux_mutex(16, None));
    assert_eq!(spin.steals, 0);
    assert!(spin.throughput > module.throughput * 1.2, "{} vs {}", spin.throughput, module.throughput);
    // - Spinning for 500 ns: waiters that queue behind a long line sleep; spinners take the
    //   lock ahead of them while the woken first waiter is on its way (a steal), and the
    //   hand-off flag it then sets makes the next release its.
    let short = fifo(&linux_mutex(16, Some(500)));
    assert!(short.steals > 0, "{short:?}");
    assert!(short.throughput < spin.throughput, "{} vs {}", short.throughput, spin.throughput);
    // The hand-off flag bounds a sleeper's losses: it is overtaken by at most one steal per
    // wake-up, so nobody starves.
    assert!(short.max_wait_ns() < 2_000_000, "{}", short.max_wait_ns());
    // - No spinning at all: every waiter sleeps; a release wakes the first, and newcomers
    //   may still take the free lock meanwhile.
    let none = fifo(&linux_mutex(16, Some(0)));
    assert!(none.steals > 0 && none.throughput < spin.throughput, "{none:?}");
}

#[test]
fn linux_rwsem_wakes_every_queued_reader() {
    // Half the acquisitions are 20 us writes, half 1 us reads: the queue alternates readers
    // and writers. When readers get the lock, Linux 6.x wakes every queued reader, also
    // those queued behind writers (which keep their places); the module wakes only the
    // readers at the front, so its readers wait out the writes queued ahead of them too.
    let machine = Machine::symmetric(2, 8);
    let d = WorkloadDefaults {
        lock: LockKind::Rwsem,
        cs: Dist::Fixed(20_000),
        read_cs: Dist::Fixed(1_000),
        read_ratio: 0.5,
        ..WorkloadDefaults::default()
    };
    let module = Config { machine: machine.clone(), workload: Workload::uniform(&machine, 16, &d).unwrap(), duration_ns: 20_000_000, seed: 42 };
    let mut linux = module.clone();
    linux.workload.locks = scl_sim::LockImpl::Linux;
    let (m, l) = (fifo(&module), fifo(&linux));
    let (mr, lr) = (m.reads.unwrap(), l.reads.unwrap());
    eprintln!("read wait mean {} vs {}; reads/s {} vs {}", lr.wait.mean_ns, mr.wait.mean_ns, lr.throughput, mr.throughput);
    assert!(lr.wait.mean_ns < mr.wait.mean_ns * 0.8, "{} vs {}", lr.wait.mean_ns, mr.wait.mean_ns);
    assert!(lr.throughput > mr.throughput, "{} vs {}", lr.throughput, mr.throughput);
    assert!(l.writes.unwrap().acquisitions > 0);
}

#[test]
fn linux_rwsem_readers_steal_until_a_writer_asks_for_the_hand_off() {
    // Readers that overlap all the time and a few writes: readers take the lock whenever no
    // writer holds it, even past a queued writer (reader lock stealing), so a woken writer
    // finds readers inside again and again. After RWSEM_WAIT_TIMEOUT (4 ms) of waiting it
    // sets the hand-off bit, readers stop stealing, and it gets the lock once the readers
    // inside have left: the longest write wait is just over 4 ms.
    let machine = Machine::symmetric(2, 16);
    let d = WorkloadDefaults {
        lock: LockKind::Rwsem,
        read_cs: Dist::Uniform(2_000, 4_000),
        think: Dist::Fixed(100),
        read_ratio: 0.995,
        ..WorkloadDefaults::default()
    };
    let mut workload = Workload::uniform(&machine, 32, &d).unwrap();
    workload.locks = scl_sim::LockImpl::Linux;
    let c = Config { machine, workload, duration_ns: 40_000_000, seed: 42 };
    let m = fifo(&c);
    let w = m.writes.unwrap();
    eprintln!("steals {}, writes {}, longest write wait {} ns", m.steals, w.acquisitions, w.wait.max_ns);
    assert!(m.steals > 0 && w.acquisitions > 0);
    assert!(w.wait.max_ns > 4_000_000, "stealing holds a writer off until it asks for the hand-off: {}", w.wait.max_ns);
    assert!(w.wait.max_ns < 4_000_000 + 100_000, "the hand-off bounds it: {}", w.wait.max_ns);
}

/// The decision accounting of `kernel/`'s rounds, which the guest reports and
/// `bench/replay-validate` compares with: at each mutex hand-off with waiters behind the new
/// head on its node and on another (a mixed round), whether the one right behind it is on its
/// node. FIFO leaves that to arrival order; NUMA grouping makes it nearly always so; the
/// spinlock (its rounds are the walk's, not hand-offs) and Linux's own mutex count none.
#[test]
fn mixed_rounds_are_counted_as_the_module_counts_them() {
    let c = cfg(LockKind::Mutex, 16, 20);
    let f = fifo(&c);
    assert!(f.shuffle.mixed > 100, "{:?}", f.shuffle);
    let fr = f.shuffle.to_shuffler_node as f64 / f.shuffle.mixed as f64;
    assert!(fr > 0.2 && fr < 0.8, "FIFO sent {fr} of the mixed rounds to the head's node: {:?}", f.shuffle);
    let s = simulate(&c, &mut scl_sim::StaticShfl, None).unwrap();
    assert!(s.shuffle.mixed > 100, "{:?}", s.shuffle);
    let sr = s.shuffle.to_shuffler_node as f64 / s.shuffle.mixed as f64;
    assert!(sr > 0.95 && sr > fr + 0.2, "grouping sent {sr} (FIFO {fr}): {:?}", s.shuffle);
    assert!(s.shuffle.to_shuffler_node <= s.shuffle.mixed);
    assert_eq!(fifo(&cfg(LockKind::Spinlock, 16, 5)).shuffle.mixed, 0);
    let mut linux = cfg(LockKind::Mutex, 16, 5);
    linux.workload.locks = scl_sim::LockImpl::Linux;
    assert_eq!(fifo(&linux).shuffle.mixed, 0);
}

/// Hand-offs as the guest's storm counts them: only a change of CPU is one, so a thread
/// taking the lock again does not count, and their locality is FIFO's arrival order unless a
/// policy groups by node.
#[test]
fn cpu_handoffs_count_changes_of_cpu() {
    let one = cfg(LockKind::Mutex, 1, 5);
    let m = fifo(&one);
    assert!(m.acquisitions > 100);
    assert_eq!(m.cpu_handoffs, 0, "one thread never hands the lock to another CPU");
    let c = cfg(LockKind::Mutex, 16, 20);
    let f = fifo(&c);
    assert!(f.cpu_handoffs > 100 && f.cpu_handoffs <= f.acquisitions, "{} of {}", f.cpu_handoffs, f.acquisitions);
    // 16 threads on 2 sockets of 8: 7 of the 15 others share the holder's node.
    assert!((f.cpu_local_handoff_ratio - 7.0 / 15.0).abs() < 0.15, "FIFO: {}", f.cpu_local_handoff_ratio);
    let s = simulate(&c, &mut scl_sim::StaticShfl, None).unwrap();
    assert!(s.cpu_local_handoff_ratio > f.cpu_local_handoff_ratio + 0.2, "grouping {} vs FIFO {}", s.cpu_local_handoff_ratio, f.cpu_local_handoff_ratio);
}
