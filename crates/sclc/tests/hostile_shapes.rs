//! Input shapes that made rendering or checking cost grow faster than the input (issue 15,
//! class 3), through the real binary. What is asserted is the size of the output and the
//! count of diagnostics, never a time: each case's output must stay within a bound that does
//! not grow with the input, where the old renderer printed a whole long line per error and
//! every warning of 100,000.

use std::path::PathBuf;
use std::process::Command;

fn scratch(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sclc-shapes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch");
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write");
    p
}

/// Printable garbage on one line, from a fixed seed.
fn garbage(n: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            33 + (x % 94) as u8
        })
        .collect()
}

fn many_globals(n: usize) -> Vec<u8> {
    let mut s = String::new();
    for i in 0..n {
        s += &format!("global g{i}: u64;\n");
    }
    s += "policy p for spinlock {\n    on contended(l: lock) {\n        g0 += 1;\n    }\n}\n";
    s.into_bytes()
}

struct Shape {
    name: &'static str,
    bytes: fn() -> Vec<u8>,
    /// The most bytes of output allowed, over all formats' stderr.
    max_output: usize,
    /// A line of the output that must appear.
    says: &'static str,
}

const SHAPES: &[Shape] = &[
    Shape { name: "a 1 MB line of garbage", bytes: || garbage(1 << 20), max_output: 2 << 20, says: "only the part around the label is shown" },
    Shape {
        name: "a million characters no token starts with, each alone",
        bytes: || b"\x01a".repeat(1 << 20),
        max_output: 2 << 20,
        says: "sclc: 1000 errors and 0 warnings in 1 file",
    },
    Shape { name: "a run of 2 MB of control characters", bytes: || vec![1u8; 2 << 20], max_output: 16 << 10, says: "2097152 unexpected characters" },
    Shape { name: "100,000 warnings", bytes: || many_globals(100_000), max_output: 2 << 20, says: "more not shown (0 errors, 99499 warnings)" },
    Shape {
        name: "two 1 MB names one edit apart",
        bytes: || {
            let (a, b) = ("x".repeat(1 << 20), format!("{}y", "x".repeat((1 << 20) - 1)));
            format!("global {a}: u64;\npolicy p for spinlock {{\n    on contended(l: lock) {{\n        {b} += 1;\n    }}\n}}\n").into_bytes()
        },
        max_output: 64 << 10,
        says: "a name of 1048576 bytes",
    },
];

#[test]
fn output_stays_bounded_whatever_the_shape() {
    for shape in SHAPES {
        let path = scratch(&format!("{}.scl", shape.name.replace(' ', "_")), &(shape.bytes)());
        for format in ["human", "short"] {
            let out = Command::new(env!("CARGO_BIN_EXE_sclc"))
                .args(["check", "--color", "never", "--format", format])
                .arg(&path)
                .output()
                .expect("sclc runs");
            let err = String::from_utf8_lossy(&out.stderr);
            let shown = format!("{} ({format}): {} bytes of output", shape.name, err.len());
            assert!(matches!(out.status.code(), Some(0 | 1)), "{shown}: {}", &err[..err.len().min(2000)]);
            assert!(err.len() <= shape.max_output, "{shown}");
            assert!(err.lines().all(|l| l.len() <= 4096), "{shown}: a line over 4 KiB");
            if format == "human" {
                assert!(err.contains(shape.says), "{shown}: missing `{}`", shape.says);
            }
        }
    }
}
