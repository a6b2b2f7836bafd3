//! The trace format: arbitrary traces round-trip; every bad input (each truncation point,
//! wrong version, garbage, bit flips, huge counts, an empty file, arbitrary bytes) is
//! refused with its error, never a panic and never a shorter trace.

use proptest::prelude::*;
use scl_trace::format::{self, Limits, ReadError};
use scl_trace::{CpuPlace, Event, EventKind, Topology, Trace};

fn kind() -> impl Strategy<Value = EventKind> {
    prop_oneof![
        Just(EventKind::ContentionBegin),
        Just(EventKind::ContentionEnd),
        Just(EventKind::ToAcquire),
        Just(EventKind::Acquired),
        Just(EventKind::ToRelease),
        Just(EventKind::Released),
    ]
}

fn event() -> impl Strategy<Value = Event> {
    // Few distinct locks and threads so the tables are reused, plus arbitrary values.
    (
        any::<u64>(),
        kind(),
        prop_oneof![0u64..4, any::<u64>()],
        any::<u32>(),
        0u32..3,
        any::<bool>(),
        prop_oneof![1u32..4, any::<u32>()],
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(|(ts, kind, lock, flags, lock_kind, ok, tid, pid, cpu)| Event {
            ts,
            kind,
            lock,
            flags,
            lock_kind,
            ok,
            tid,
            pid,
            cpu,
        })
}

fn trace() -> impl Strategy<Value = Trace> {
    (
        prop::collection::vec(prop::option::of((any::<u32>(), any::<u32>())), 0..10),
        any::<u64>(),
        any::<u64>(),
        prop::collection::vec((any::<u64>(), ".{0,12}"), 0..4),
        prop::collection::vec((any::<u32>(), ".{0,16}"), 0..4),
        any::<u64>(),
        prop::collection::vec(event(), 0..60),
    )
        .prop_map(|(cpus, start_ns, end_ns, lock_names, comms, lost, events)| Trace {
            topology: Topology {
                cpus: cpus.into_iter().map(|c| c.map(|(node, socket)| CpuPlace { node, socket })).collect(),
            },
            start_ns,
            end_ns,
            lock_names,
            comms,
            lost,
            events,
        })
}

fn bytes(t: &Trace) -> Vec<u8> {
    let mut out = Vec::new();
    format::write(&mut out, t).unwrap();
    out
}

fn small() -> Trace {
    let ev = |ts, kind, lock, tid, cpu, ok| Event {
        ts,
        kind,
        lock,
        flags: 2,
        lock_kind: 1,
        ok,
        tid,
        pid: 100,
        cpu,
    };
    Trace {
        topology: Topology {
            cpus: vec![Some(CpuPlace { node: 0, socket: 0 }), None, Some(CpuPlace { node: 1, socket: 1 })],
        },
        start_ns: 1_000_000,
        end_ns: 2_000_000,
        lock_names: vec![(0xffff_0000_1234, "big_lock".into())],
        comms: vec![(101, "storm".into()), (102, "storm".into())],
        lost: 3,
        events: vec![
            ev(1_000_100, EventKind::ContentionBegin, 0xffff_0000_1234, 101, 0, true),
            ev(1_000_900, EventKind::ContentionEnd, 0xffff_0000_1234, 101, 0, true),
            ev(1_001_000, EventKind::ContentionBegin, 0xffff_0000_9999, 102, 2, true),
            ev(1_001_500, EventKind::ContentionEnd, 0xffff_0000_9999, 102, 2, false),
        ],
    }
}

fn read(b: &[u8]) -> Result<Trace, ReadError> {
    format::read(b, &Limits::default())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn round_trip(t in trace()) {
        let b = bytes(&t);
        prop_assert_eq!(read(&b).unwrap(), t);
    }

    #[test]
    fn arbitrary_bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = read(&b);
    }

    #[test]
    fn arbitrary_bytes_after_the_magic_never_panic(b in prop::collection::vec(any::<u8>(), 0..400)) {
        let mut v = b"SCLTRACE\x01\x00\x00\x00".to_vec();
        v.extend(b);
        let _ = read(&v);
    }

    #[test]
    fn mutated_traces_are_refused_or_unchanged(t in trace(), pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut b = bytes(&t);
        let i = pos.index(b.len());
        prop_assume!(b[i] != byte);
        b[i] = byte;
        // A change of one byte is always caught (by a field check or the checksum).
        prop_assert!(read(&b).is_err());
    }
}

#[test]
fn every_truncation_point_is_refused() {
    let b = bytes(&small());
    assert_eq!(read(&b).unwrap(), small());
    for n in 0..b.len() {
        let err = read(&b[..n]).expect_err(&format!("a prefix of {n} bytes was accepted"));
        match (n, &err) {
            (0, ReadError::NotATrace { empty: true }) => {}
            (1.., ReadError::Truncated { offset, .. }) => assert_eq!(*offset, n as u64, "{err}"),
            _ => panic!("prefix of {n} bytes: {err}"),
        }
    }
}

#[test]
fn truncation_message_counts_events() {
    let b = bytes(&small());
    // Cut inside the trailer: all four events were read.
    let err = read(&b[..b.len() - 10]).unwrap_err();
    assert!(err.to_string().contains("after 4 events"), "{err}");
}

#[test]
fn every_bit_flip_is_refused() {
    let b = bytes(&small());
    for i in 0..b.len() {
        for bit in 0..8 {
            let mut c = b.clone();
            c[i] ^= 1 << bit;
            assert!(read(&c).is_err(), "flipping bit {bit} of byte {i} was not noticed");
        }
    }
}

#[test]
fn bad_inputs_have_their_messages() {
    let good = bytes(&small());
    let mut v2 = good.clone();
    v2[8] = 2;
    let mut trailing = good.clone();
    trailing.push(0);
    let mut sum = good.clone();
    let last = sum.len() - 1;
    sum[last] ^= 0x40;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", vec![], "not a trace: the file is empty"),
        ("garbage", b"hello world, not a trace".to_vec(), "not a trace: the file does not start with `SCLTRACE`"),
        ("elf", b"\x7fELF\x02\x01\x01".to_vec(), "not a trace"),
        ("short magic", b"SCLT".to_vec(), "truncated trace: the file ends after 0 events (byte 4)"),
        ("version 2", v2, "trace format version 2 is not supported (this sclc reads version 1)"),
        ("trailing", trailing, "bytes after the checksum"),
        ("checksum", sum, "checksum mismatch"),
    ];
    for (name, b, want) in cases {
        let err = read(&b).expect_err(name).to_string();
        assert!(err.contains(want), "{name}: `{err}` lacks `{want}`");
        assert!(!err.contains('\n'), "{name}: `{err}` is not one line");
    }
}

/// A header claiming huge counts is refused before anything is allocated from them.
#[test]
fn huge_counts_are_refused_by_the_limits() {
    let mut h = b"SCLTRACE\x01\x00\x00\x00".to_vec();
    h.extend(0u64.to_le_bytes());
    // 2^63 CPUs.
    let mut cpus = h.clone();
    cpus.extend([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
    let err = read(&cpus).unwrap_err();
    assert!(matches!(err, ReadError::Limit { what: "CPUs", .. }), "{err}");
    assert!(err.to_string().contains("more than 65536 CPUs"), "{err}");

    // A lock name of 2^40 bytes in the trailer.
    let mut name = h.clone();
    name.push(0); // no CPUs
    name.push(0x80); // end of events
    name.extend(0u64.to_le_bytes());
    name.extend(0u64.to_le_bytes());
    name.extend(0u64.to_le_bytes());
    name.push(1); // one lock name
    name.extend(7u64.to_le_bytes());
    name.extend([0x80, 0x80, 0x80, 0x80, 0x80, 0x20]);
    let err = read(&name).unwrap_err();
    assert!(err.to_string().contains("more than 4096 bytes in a name"), "{err}");

    // Event and table limits.
    let t = small();
    let b = bytes(&t);
    let tight = |f: &dyn Fn(&mut Limits)| {
        let mut l = Limits::default();
        f(&mut l);
        format::read(&b[..], &l).unwrap_err().to_string()
    };
    assert!(tight(&|l| l.max_events = 3).contains("more than 3 events"));
    assert!(tight(&|l| l.max_locks = 1).contains("more than 1 locks"));
    assert!(tight(&|l| l.max_threads = 1).contains("more than 1 threads"));
    assert!(tight(&|l| l.max_cpus = 2).contains("more than 2 CPUs"));
    assert!(tight(&|l| l.max_names = 1).contains("more than 1 comms"));
}

#[test]
fn index_beyond_the_table_is_corrupt() {
    let mut b = b"SCLTRACE\x01\x00\x00\x00".to_vec();
    b.extend(0u64.to_le_bytes());
    b.push(0);
    // A ContentionBegin that refers to lock 5 with no lock defined.
    b.extend([0x20, 0x00, 0x05]);
    let err = read(&b).unwrap_err().to_string();
    assert!(err.contains("lock index 5 beyond the 0 locks defined"), "{err}");
}

#[test]
fn events_are_compact() {
    // A storm-like trace: 2 locks, 8 threads, ~1 µs apart.
    let mut t = small();
    t.events.clear();
    for i in 0..10_000u64 {
        t.events.push(Event {
            ts: 1_000_000 + i * 700,
            kind: if i % 2 == 0 { EventKind::ContentionBegin } else { EventKind::ContentionEnd },
            lock: 0xffff_8880_0000_0000 + (i % 2) * 64,
            flags: if i % 2 == 0 { 2 } else { 0 },
            lock_kind: 1,
            ok: true,
            tid: 1000 + (i % 8) as u32,
            pid: 1000,
            cpu: (i % 2) as u32,
        });
    }
    let b = bytes(&t);
    let per_event = b.len() as f64 / 10_000.0;
    assert!(per_event <= 8.0, "{per_event} bytes per event");
    assert_eq!(read(&b).unwrap(), t);
}

#[test]
fn writer_counts() {
    let t = small();
    let mut out = Vec::new();
    let mut w = format::Writer::new(&mut out, &t.topology, t.start_ns).unwrap();
    for e in &t.events {
        w.event(e).unwrap();
    }
    assert_eq!((w.events_written(), w.lock_count(), w.thread_count()), (4, 2, 2));
    let before = w.bytes_written();
    w.finish(t.end_ns, t.lost, &t.lock_names, &t.comms).unwrap();
    assert!(out.len() as u64 > before);
    assert_eq!(read(&out).unwrap(), t);
}

#[test]
fn read_path_refuses_a_directory_and_a_missing_file() {
    let dir = std::env::temp_dir();
    let err = format::read_path(&dir, &Limits::default()).unwrap_err();
    assert!(matches!(err, ReadError::Io(_)), "{err}");
    let err = format::read_path(&dir.join("no-such-trace-file.scltrace"), &Limits::default()).unwrap_err();
    assert!(err.to_string().contains("cannot read the trace"), "{err}");
}
