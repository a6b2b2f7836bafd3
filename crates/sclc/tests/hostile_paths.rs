//! Hostile output paths (issue 15, class 1): what `sclc build -o PATH` does to what is at
//! PATH. A regular file (or nothing) is replaced atomically; a device, a FIFO or a symlink
//! is written in place and stays what it was; an input of the command is never overwritten.
//!
//! One table: each case makes something at the output path in a scratch directory, runs
//! `sclc build`, and checks the exit status and what is left there.

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const POLICY: &str = "global n: u64;\npolicy p for spinlock {\n    on contended(l: lock) {\n        n += 1;\n    }\n}\n";

fn scratch(case: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sclc-paths-{}-{case}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    std::fs::write(dir.join("p.scl"), POLICY).expect("policy");
    dir
}

fn build(dir: &Path, args: &[&str]) -> (Option<i32>, Vec<u8>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sclc"))
        .current_dir(dir)
        .arg("build")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("sclc runs");
    (out.status.code(), out.stdout, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn is_elf(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\x7fELF")
}

/// No temporary file left in `dir`.
fn no_leftovers(dir: &Path) {
    for e in std::fs::read_dir(dir).expect("dir") {
        let name = e.expect("entry").file_name().to_string_lossy().into_owned();
        assert!(!name.ends_with(".tmp"), "left behind: {name}");
    }
}

struct Case {
    name: &'static str,
    /// Makes what is at the output path; returns the arguments for `sclc build`.
    setup: fn(&Path) -> Vec<String>,
    /// Checks the outcome: exit status, stdout, stderr, the directory.
    check: fn(Option<i32>, &[u8], &str, &Path),
}

fn refused(code: Option<i32>, err: &str, dir: &Path) {
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("it is an input of this command; refusing to overwrite it"), "{err}");
    assert_eq!(std::fs::read_to_string(dir.join("p.scl")).expect("policy"), POLICY, "the input was overwritten");
    no_leftovers(dir);
}

const CASES: &[Case] = &[
    Case {
        name: "nothing there yet",
        setup: |_| vec!["p.scl".into(), "-o".into(), "out.o".into()],
        check: |code, _, err, dir| {
            assert_eq!(code, Some(0), "{err}");
            assert!(is_elf(&std::fs::read(dir.join("out.o")).expect("out.o")));
            no_leftovers(dir);
        },
    },
    Case {
        name: "a regular file is replaced",
        setup: |dir| {
            std::fs::write(dir.join("out.o"), b"old").expect("old");
            vec!["p.scl".into(), "-o".into(), "out.o".into()]
        },
        check: |code, _, err, dir| {
            assert_eq!(code, Some(0), "{err}");
            assert!(is_elf(&std::fs::read(dir.join("out.o")).expect("out.o")));
            no_leftovers(dir);
        },
    },
    Case {
        name: "a symlink keeps pointing at its target, which gets the object",
        setup: |dir| {
            std::fs::write(dir.join("real.o"), b"old").expect("old");
            std::os::unix::fs::symlink("real.o", dir.join("link.o")).expect("symlink");
            vec!["p.scl".into(), "-o".into(), "link.o".into()]
        },
        check: |code, _, err, dir| {
            assert_eq!(code, Some(0), "{err}");
            assert!(std::fs::symlink_metadata(dir.join("link.o")).expect("link").file_type().is_symlink());
            assert!(is_elf(&std::fs::read(dir.join("real.o")).expect("real.o")));
        },
    },
    Case {
        name: "a dangling symlink creates its target",
        setup: |dir| {
            std::os::unix::fs::symlink("made.o", dir.join("link.o")).expect("symlink");
            vec!["p.scl".into(), "-o".into(), "link.o".into()]
        },
        check: |code, _, err, dir| {
            assert_eq!(code, Some(0), "{err}");
            assert!(std::fs::symlink_metadata(dir.join("link.o")).expect("link").file_type().is_symlink());
            assert!(is_elf(&std::fs::read(dir.join("made.o")).expect("made.o")));
        },
    },
    Case {
        name: "/dev/null stays a device",
        setup: |_| vec!["p.scl".into(), "-o".into(), "/dev/null".into()],
        check: |code, _, err, _| {
            assert_eq!(code, Some(0), "{err}");
            assert!(std::fs::symlink_metadata("/dev/null").expect("/dev/null").file_type().is_char_device());
        },
    },
    Case {
        name: "/dev/stdout writes to standard output",
        setup: |_| vec!["p.scl".into(), "-o".into(), "/dev/stdout".into()],
        check: |code, out, err, _| {
            assert_eq!(code, Some(0), "{err}");
            assert!(is_elf(out));
            assert!(std::fs::symlink_metadata("/dev/stdout").expect("/dev/stdout").file_type().is_symlink());
        },
    },
    Case {
        name: "a FIFO is written, not replaced",
        setup: |dir| {
            let fifo = dir.join("fifo");
            assert!(Command::new("mkfifo").arg(&fifo).status().expect("mkfifo").success());
            // A reader, so that opening the FIFO for writing does not block.
            std::thread::spawn(move || std::fs::read(&fifo).expect("read fifo"));
            vec!["p.scl".into(), "-o".into(), "fifo".into()]
        },
        check: |code, _, err, dir| {
            assert_eq!(code, Some(0), "{err}");
            assert!(std::fs::symlink_metadata(dir.join("fifo")).expect("fifo").file_type().is_fifo());
        },
    },
    Case {
        name: "the policy's own source is refused",
        setup: |_| vec!["p.scl".into(), "-o".into(), "p.scl".into()],
        check: |code, _, err, dir| refused(code, err, dir),
    },
    Case {
        name: "the source through another spelling is refused",
        setup: |_| vec!["p.scl".into(), "-o".into(), "./././p.scl".into()],
        check: |code, _, err, dir| refused(code, err, dir),
    },
    Case {
        name: "the source through a symlink is refused",
        setup: |dir| {
            std::os::unix::fs::symlink("p.scl", dir.join("link.o")).expect("symlink");
            vec!["p.scl".into(), "-o".into(), "link.o".into()]
        },
        check: |code, _, err, dir| refused(code, err, dir),
    },
    Case {
        name: "the source through a hard link is refused",
        setup: |dir| {
            std::fs::hard_link(dir.join("p.scl"), dir.join("hard.o")).expect("hard link");
            vec!["p.scl".into(), "-o".into(), "hard.o".into()]
        },
        check: |code, _, err, dir| refused(code, err, dir),
    },
    Case {
        name: "a source named like its default output is refused",
        setup: |dir| {
            std::fs::rename(dir.join("p.scl"), dir.join("p.o")).expect("rename");
            std::fs::hard_link(dir.join("p.o"), dir.join("p.scl")).expect("link back");
            vec!["p.o".into()]
        },
        check: |code, _, err, dir| refused(code, err, dir),
    },
    Case {
        name: "a directory is refused",
        setup: |dir| {
            std::fs::create_dir(dir.join("d.o")).expect("dir");
            vec!["p.scl".into(), "-o".into(), "d.o".into()]
        },
        check: |code, _, err, dir| {
            assert_eq!(code, Some(2), "{err}");
            assert!(err.contains("it is a directory"), "{err}");
            assert!(dir.join("d.o").is_dir());
        },
    },
];

#[test]
fn output_paths_keep_what_is_there() {
    for (i, case) in CASES.iter().enumerate() {
        let dir = scratch(&i.to_string());
        let args = (case.setup)(&dir);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, out, err) = build(&dir, &args);
        eprintln!("case: {}", case.name);
        (case.check)(code, &out, &err, &dir);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
