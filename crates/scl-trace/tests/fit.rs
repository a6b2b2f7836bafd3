//! Properties of the fit on arbitrary event sequences: it never panics (out-of-order
//! timestamps, ends without begins, unknown CPUs, failed waits, module hooks mixed in), and
//! what it reports is consistent: every lock's events are counted once, each distribution
//! holds as many samples as it says, shares are fractions, and the waits the lock list
//! counts are the model's.

use proptest::prelude::*;
use scl_trace::fit;
use scl_trace::{CpuPlace, Event, EventKind, Topology, Trace};

const KINDS: [EventKind; 6] = [
    EventKind::ContentionBegin,
    EventKind::ContentionEnd,
    EventKind::ToAcquire,
    EventKind::Acquired,
    EventKind::ToRelease,
    EventKind::Released,
];

fn event() -> impl Strategy<Value = Event> {
    (0u64..5_000, 0usize..8, 0u64..3, 0u32..64, 0u32..3, any::<bool>(), 0u32..4, 0u32..6).prop_map(
        |(ts, k, lock, flags, lock_kind, ok, tid, cpu)| Event {
            ts,
            // Mostly the stock tracepoints, sometimes a module hook.
            kind: KINDS[if k < 6 { k % 2 } else { k - 4 }],
            lock,
            flags,
            lock_kind,
            ok: ok || k % 3 != 0,
            tid,
            pid: 1,
            cpu,
        },
    )
}

proptest! {
    #[test]
    fn fit_is_total_and_consistent(events in prop::collection::vec(event(), 0..300), end in 0u64..10_000) {
        let topology = Topology { cpus: vec![Some(CpuPlace { node: 0, socket: 0 }), None, Some(CpuPlace { node: 1, socket: 1 })] };
        let trace = Trace { topology, start_ns: 0, end_ns: end, events, ..Trace::default() };
        let locks = fit::locks(&trace);
        prop_assert_eq!(locks.iter().map(|l| l.events).sum::<u64>(), trace.events.len() as u64);
        for w in locks.windows(2) {
            prop_assert!(w[0].waits >= w[1].waits);
        }
        for l in &locks {
            let m = fit::fit_lock(&trace, l.addr);
            prop_assert_eq!(m.events, l.events);
            prop_assert_eq!(m.threads.iter().map(|t| t.events).sum::<u64>(), m.events);
            if !m.exact {
                prop_assert_eq!(m.waits, l.waits);
                prop_assert_eq!(m.wait.count, m.waits);
                prop_assert!(m.cs.count <= m.waits.saturating_sub(1));
            }
            for s in [&m.wait, &m.cs, &m.think] {
                prop_assert_eq!(s.values.iter().map(|v| v.1).sum::<u64>(), s.count);
                prop_assert!(s.values.windows(2).all(|w| w[0].0 < w[1].0));
                prop_assert!((0.0..=1.0).contains(&s.share), "share {}", s.share);
                prop_assert!(s.events_used <= m.events);
            }
            if let Some(r) = m.read_share {
                prop_assert!((0.0..=1.0).contains(&r));
            }
            if let Some(r) = m.local_handoff_share {
                prop_assert!((0.0..=1.0).contains(&r));
            }
        }
        prop_assert!(fit::fit(&trace, 2).len() <= 2);
    }
}
