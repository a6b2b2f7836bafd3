//! Messages that must not mislead (issue 15, class 5): one table of inputs and command
//! lines, each with the exit status, what the message must say and what it must not.

mod common;
use common::repo_root;

use std::path::PathBuf;
use std::process::Command;

/// Scratch files the cases name as `@NAME`.
fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sclc-messages-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch");
    let numa = std::fs::read(repo_root().join("examples/numa_grouping.scl")).expect("example");
    let mut bom = b"\xef\xbb\xbf".to_vec();
    bom.extend_from_slice(&numa);
    let long = "a".repeat(128);
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("empty.scl", Vec::new()),
        ("huge.toml", b"sockets = 100000\ncores_per_socket = 100000\n".to_vec()),
        ("helpers.scl", b"fn twice(x: u32) -> u32 {\n    return x * 2;\n}\n".to_vec()),
        ("bom.scl", bom),
        (
            "syntax.scl",
            b"policy p for spinlock {\n    on contended(l: lock) {\n        let x = ;\n    }\n    on should_reorder(l: lock, a: waiter, b: waiter) -> bool {\n        return false;\n    }\n}\n".to_vec(),
        ),
        ("long.scl", format!("global {long}: u64;\npolicy p for spinlock {{\n    on contended(l: lock) {{\n        {long} += 1;\n    }}\n}}\n").into_bytes()),
    ];
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).expect("write");
    }
    dir
}

struct Case {
    args: &'static [&'static str],
    code: i32,
    says: &'static [&'static str],
    never: &'static [&'static str],
}

const CASES: &[Case] = &[
    // An empty file, or one without a policy, cannot be loaded, run or simulated.
    Case { args: &["sim", "@empty.scl"], code: 1, says: &["[E0336]", "no policy to compile"], never: &["applies to ,"] },
    Case { args: &["sim", "@helpers.scl"], code: 1, says: &["[E0336]"], never: &["applies to"] },
    Case { args: &["run", "@empty.scl", "--duration", "1s"], code: 1, says: &["[E0336]"], never: &["final summary"] },
    Case { args: &["load", "@empty.scl", "--pin", "test_msg_empty"], code: 1, says: &["[E0336]"], never: &["pinned `"] },
    // A byte-order mark is not a character of the policy.
    Case { args: &["check", "@bom.scl"], code: 0, says: &[], never: &["E0103"] },
    Case { args: &["build", "@bom.scl", "--emit", "ir"], code: 0, says: &[], never: &["error"] },
    // A name the kernel would refuse is the checker's error, not an internal one.
    Case { args: &["check", "@long.scl"], code: 1, says: &["[E0115]", "a name of 128 bytes"], never: &["E0900"] },
    Case { args: &["build", "@long.scl"], code: 1, says: &["[E0115]"], never: &["E0900"] },
    // Numbers on the command line say what is wrong with them.
    Case {
        args: &["sim", "examples/app_priority.scl", "--set", "max_wait_ns=18446744073709551616"],
        code: 2,
        says: &["18446744073709551616 does not fit `max_wait_ns`, a `u64`"],
        never: &["not a number"],
    },
    Case {
        args: &["sim", "examples/numa_grouping.scl", "--set", "max_batch=4294967296"],
        code: 2,
        says: &["4294967296 does not fit `max_batch`, a `u32`"],
        never: &["not a number"],
    },
    Case { args: &["sim", "examples/numa_grouping.scl", "--set", "max_batch=ten"], code: 2, says: &["`ten` is not a number"], never: &[] },
    Case { args: &["sim", "examples/numa_grouping.scl", "--seed", "-1"], code: 2, says: &["--seed", "must not be negative"], never: &["-- -1"] },
    Case { args: &["sim", "examples/numa_grouping.scl", "--seed", "18446744073709551616"], code: 2, says: &["does not fit"], never: &[] },
    Case { args: &["sim", "examples/numa_grouping.scl", "--threads", "-2"], code: 2, says: &["--threads", "must not be negative"], never: &["-- -2"] },
    Case { args: &["sim", "examples/numa_grouping.scl", "--critical", "-1"], code: 2, says: &["--critical", "must not be negative"], never: &["-- -1"] },
    Case { args: &["run", "examples/contention_profiler.scl", "--top", "-1"], code: 2, says: &["--top", "must not be negative"], never: &["-- -1"] },
    // The simulator checks sizes before it allocates, and refuses absurd durations.
    Case {
        args: &["sim", "examples/numa_grouping.scl", "--machine", "1000000x1000000"],
        code: 2,
        says: &["1000000000000 CPUs, more than the simulator's 4096"],
        never: &["memory allocation"],
    },
    Case { args: &["sim", "examples/numa_grouping.scl", "--machine", "65536x65536"], code: 2, says: &["4294967296 CPUs"], never: &[] },
    Case { args: &["sim", "examples/numa_grouping.scl", "--machine", "4097x1"], code: 2, says: &["4097 CPUs"], never: &[] },
    Case { args: &["sim", "examples/numa_grouping.scl", "--machine", "0x8"], code: 2, says: &["at least one socket"], never: &[] },
    Case { args: &["sim", "examples/numa_grouping.scl", "--machine", "@huge.toml"], code: 2, says: &["10000000000 CPUs"], never: &[] },
    Case {
        args: &["sim", "examples/numa_grouping.scl", "--duration", "1000000000h"],
        code: 2,
        says: &["the simulator runs at most 3600 s of simulated time"],
        never: &[],
    },
    // `run` shows a syntax error rather than judging the policy's hooks.
    Case {
        args: &["run", "@syntax.scl", "--duration", "1s"],
        code: 1,
        says: &["[E0101]", "expected an expression"],
        never: &["change lock behaviour"],
    },
    // `--sort` names a column of the policy's tables.
    Case {
        args: &["run", "examples/contention_profiler.scl", "--sort", "nosuch", "--duration", "1s"],
        code: 2,
        says: &["--sort nosuch: no column of that name", "contentions, failed, wait_total_ns, wait_max_ns, wait_mean_ns"],
        never: &["final summary"],
    },
    Case {
        args: &["run", "examples/contention_profiler.scl", "--sort", "contentons", "--duration", "1s"],
        code: 2,
        says: &["did you mean `contentions`?"],
        never: &[],
    },
    // The filters of `sclc run`: each wrong value named, with what would be right.
    Case {
        args: &["run", "examples/contention_profiler.scl", "--type", "mutx", "--duration", "1s"],
        code: 2,
        says: &["--type mutx: no lock type of that name", "spinlock, rwlock", "did you mean `mutex`?"],
        never: &["final summary"],
    },
    Case {
        args: &["run", "examples/contention_profiler.scl", "--cpu", "3-1", "--duration", "1s"],
        code: 2,
        says: &["--cpu 3-1: the range `3-1` is backwards"],
        never: &["final summary"],
    },
    Case {
        args: &["run", "examples/contention_profiler.scl", "--cpu", "100000", "--duration", "1s"],
        code: 2,
        says: &["--cpu 100000: this machine's CPUs are 0-"],
        never: &["final summary"],
    },
    Case {
        args: &["run", "examples/contention_profiler.scl", "--lock", "no_such_lock_symbol", "--duration", "1s"],
        code: 2,
        says: &["--lock no_such_lock_symbol: no kernel symbol of that name", "help: give a static lock's symbol"],
        never: &["final summary"],
    },
    Case {
        args: &["run", "examples/contention_profiler.scl", "--pid", "4000000", "--duration", "1s"],
        code: 2,
        says: &["--pid 4000000: no process of that id is running"],
        never: &["final summary"],
    },
    Case {
        args: &["run", "examples/contention_profiler.scl", "--cgroup", "no/such/group", "--duration", "1s"],
        code: 2,
        says: &["--cgroup no/such/group: "],
        never: &["final summary"],
    },
    Case {
        args: &["run", "tests/live/filter_probe.scl", "--per-task", "--duration", "1s"],
        code: 2,
        says: &["--per-task: `tests/live/filter_probe.scl` keeps no per-thread state to show"],
        never: &["final summary"],
    },
    Case {
        args: &["run", "examples/contention_profiler.scl", "--cgroup", "/", "--", "true"],
        code: 2,
        says: &["--cgroup and a command after `--` both choose the tasks to observe"],
        never: &["final summary"],
    },
    Case {
        args: &["run", "examples/contention_profiler.scl", "--", "/no/such/command"],
        code: 2,
        says: &["cannot start `/no/such/command`"],
        never: &["final summary"],
    },
];

#[test]
fn messages_say_what_is_wrong() {
    let dir = scratch();
    for case in CASES {
        let args: Vec<String> =
            case.args.iter().map(|a| a.strip_prefix('@').map_or_else(|| a.to_string(), |f| dir.join(f).display().to_string())).collect();
        let out = Command::new(env!("CARGO_BIN_EXE_sclc")).args(&args).current_dir(repo_root()).output().expect("sclc runs");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        let shown = format!("sclc {}:\n{text}", case.args.join(" "));
        assert_eq!(out.status.code(), Some(case.code), "{shown}");
        for s in case.says {
            assert!(text.contains(s), "missing `{s}`: {shown}");
        }
        for s in case.never {
            assert!(!text.contains(s), "unwanted `{s}`: {shown}");
        }
        assert!(!text.contains("panicked"), "{shown}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Inputs whose size `stat` does not know: the bytes read are capped, not trusted to end.
#[test]
fn endless_inputs_are_cut_at_the_limit() {
    for (args, message) in [
        (&["check", "/dev/zero"][..], "holds more than 16 MiB; policy files are limited to 16 MiB"),
        (&["check", "/dev/urandom"][..], "holds more than 16 MiB"),
        (&["build", "/dev/zero"][..], "holds more than 16 MiB"),
        (&["sim", "examples/numa_grouping.scl", "--workload", "/dev/zero"][..], "holds more than 16 MiB"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_sclc")).args(args).current_dir(repo_root()).output().expect("sclc runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(message), "{args:?}: {err}");
    }
}
