//! The written object in the running kernel, through libbpf-rs: open, set `.rodata`, load
//! (the verifier checks the code, the maps' BTF, func_info and line_info), run the
//! `syscall` program, read its map back, attach the `tp_btf` program.
//!
//! Skips (with one `SKIPPED (kernel): ...` line) only when the kernel cannot do it at all:
//! no `/sys/kernel/btf/vmlinux`, or no permission (EPERM). Any other failure fails, with
//! libbpf's debug log (and so the verifier log) on stderr.

mod common;

use std::os::fd::AsFd;
use std::path::Path;
use std::sync::Mutex;

use common::*;
use libbpf_rs::query::{ProgInfoIter, ProgInfoQueryOptions};
use libbpf_rs::{MapCore, MapFlags, ObjectBuilder, PrintLevel, ProgramInput};
use scl_object::{LineInfo, ObjectSpec, ProgramSpec};

/// Everything libbpf printed, for tests that look for the verifier log.
static LOG: Mutex<String> = Mutex::new(String::new());

fn log(_: PrintLevel, msg: String) {
    eprint!("{msg}");
    LOG.lock().unwrap_or_else(|e| e.into_inner()).push_str(&msg);
}

/// One loud line for a skip; under CI (`CI` set), where the machine has BPF, a failure
/// instead (as `scl_loader::kernel_tests_can_run`, which this crate does not depend on).
fn skip(why: &str) {
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "0" && v != "false") {
        panic!("the kernel tests cannot run under CI: {why}");
    }
    eprintln!("SKIPPED (kernel): {why}");
}

/// Why this kernel or process cannot load BPF at all, if it cannot: no kernel BTF (needed
/// by `tp_btf`), or neither CAP_SYS_ADMIN nor CAP_BPF with CAP_PERFMON.
fn kernel_unavailable() -> Option<String> {
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        return Some("no /sys/kernel/btf/vmlinux (kernel built without BTF)".into());
    }
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let caps = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    let caps = u64::from_str_radix(caps.trim(), 16).ok()?;
    let has = |bit: u32| caps & (1 << bit) != 0;
    let (sys_admin, perfmon, bpf) = (21, 38, 39);
    let allowed = has(sys_admin) || (has(bpf) && has(perfmon));
    if !allowed {
        return Some(format!(
            "no CAP_SYS_ADMIN nor CAP_BPF + CAP_PERFMON (CapEff {caps:#x})"
        ));
    }
    None
}

/// Whether a load failed with EPERM (not allowed), as opposed to EACCES (the verifier
/// refused the program), which libbpf-rs classifies alike as `PermissionDenied`.
fn is_eperm(e: &libbpf_rs::Error) -> bool {
    format!("{e:#}").contains("(os error 1)")
}

#[test]
fn loads_runs_and_attaches_in_the_kernel() {
    libbpf_rs::set_print(Some((PrintLevel::Debug, log)));
    if let Some(why) = kernel_unavailable() {
        return skip(&why);
    }
    let bytes = scl_object::write(&sample_spec()).expect("the sample spec is valid");

    let mut open = ObjectBuilder::default()
        .name("t")
        .unwrap()
        .open_memory(&bytes)
        .expect("libbpf opens the object");
    let mut set = false;
    for mut map in open.maps_mut() {
        if map.name().to_string_lossy().ends_with(".rodata") {
            let value = map
                .initial_value_mut()
                .expect(".rodata has an initial value");
            assert_eq!(value.len(), 16);
            assert_eq!(
                &value[..4],
                &7u32.to_le_bytes(),
                "the writer's initial value"
            );
            value[..4].copy_from_slice(&41u32.to_le_bytes());
            set = true;
        }
    }
    assert!(set, "libbpf made a .rodata map");
    let obj = match open.load() {
        Ok(obj) => obj,
        Err(e) if is_eperm(&e) => {
            return skip(&format!("no permission to load BPF programs: {e:#}"));
        }
        Err(e) => panic!("load failed (libbpf log above): {e:#}"),
    };

    let mut ids = Vec::new();
    for prog in obj.progs_mut() {
        let name = prog.name().to_string_lossy().into_owned();
        ids.push((
            name.clone(),
            libbpf_rs::Program::id_from_fd(prog.as_fd()).unwrap(),
        ));
        if name == "run" {
            // ctx: one u32, 1. Result: 1 + scale (41, set above) + threshold (100).
            let mut ctx = [0u8; 8];
            ctx[..4].copy_from_slice(&1u32.to_le_bytes());
            let out = prog
                .test_run(ProgramInput {
                    context_in: Some(&mut ctx),
                    ..Default::default()
                })
                .expect("test_run of the syscall program");
            assert_eq!(out.return_value, 142);
        } else {
            assert_eq!(name, "on_contention");
            let link = prog.attach().expect("attach tp_btf/contention_begin");
            std::thread::sleep(std::time::Duration::from_millis(20));
            drop(link);
        }
    }
    assert_eq!(ids.len(), 2);

    let counts = obj
        .maps()
        .find(|m| m.name() == "counts")
        .expect("map counts");
    let value = counts
        .lookup(&0u32.to_le_bytes(), MapFlags::ANY)
        .unwrap()
        .unwrap();
    assert_eq!(value, 142u64.to_le_bytes());
    let waits = obj.maps().find(|m| m.name() == "waits").expect("map waits");
    assert_eq!((waits.key_size(), waits.value_size()), (8, 16));
    let events = obj
        .maps()
        .find(|m| m.name() == "events")
        .expect("map events");
    assert_eq!(events.map_type(), libbpf_rs::MapType::RingBuf);

    // The kernel accepted the BTF: the programs carry func and line info.
    let opts = ProgInfoQueryOptions::default()
        .include_line_info(true)
        .include_func_info(true);
    for (name, id) in ids {
        let info = ProgInfoIter::with_query_opts(opts.clone())
            .find(|i| i.id == id)
            .unwrap_or_else(|| panic!("no info for program {name}"));
        assert_ne!(info.btf_id, 0, "{name}: the kernel dropped the BTF");
        assert!(!info.line_info.is_empty(), "{name}: no line info");
        let spec = sample_spec();
        let prog = spec.programs.iter().find(|p| p.name == name).unwrap();
        // The verifier removes dead code with its line records: with `.rodata` frozen
        // and a constant key into an array, `run`'s null branch is dead on recent kernels.
        assert!(info.line_info.len() <= prog.lines.len(), "{name}");
        assert_eq!(info.line_info[0].insn_off, 0, "{name}");
        assert_eq!(info.func_info.len(), 1, "{name}");
    }
}

#[test]
fn verifier_log_shows_the_source_lines() {
    libbpf_rs::set_print(Some((PrintLevel::Debug, log)));
    if let Some(why) = kernel_unavailable() {
        return skip(&why);
    }
    // `r1 = 0; exit` without setting r0: the verifier refuses it at instruction 1. The
    // object has no maps and no `.rodata` (no DATASECs at all).
    let line = |insn, line, source: &str| LineInfo {
        insn,
        file: "bad.scl".into(),
        source: source.into(),
        line,
        column: 1,
    };
    let spec = ObjectSpec {
        subprograms: Vec::new(),
        programs: vec![ProgramSpec {
            name: "bad".into(),
            section: "syscall".into(),
            insns: vec![mov_imm(1, 0), exit()],
            relocs: vec![],
            lines: vec![line(0, 1, "let x = 0;"), line(1, 2, "return nothing;")],
        }],
        license: "GPL".into(),
        ..Default::default()
    };
    let bytes = scl_object::write(&spec).unwrap();
    let open = ObjectBuilder::default()
        .name("bad")
        .unwrap()
        .open_memory(&bytes)
        .unwrap();
    match open.load() {
        Ok(_) => panic!("the verifier accepted a program that returns an unset r0"),
        Err(e) if is_eperm(&e) => skip(&format!("no permission to load BPF programs: {e:#}")),
        Err(_) => {
            let log = LOG.lock().unwrap_or_else(|e| e.into_inner()).clone();
            assert!(
                log.contains("; return nothing; @ bad.scl:2"),
                "no source line in the log:\n{log}"
            );
            assert!(log.contains("R0 !read_ok"), "{log}");
        }
    }
}

#[test]
fn programs_sharing_a_section_load_and_run_separately() {
    libbpf_rs::set_print(Some((PrintLevel::Debug, log)));
    if let Some(why) = kernel_unavailable() {
        return skip(&why);
    }
    // Two `syscall` programs back to back; each returns its own constant (read from ctx so
    // that a ctx is accepted).
    let program = |name: &str, value: i32| ProgramSpec {
        name: name.into(),
        section: "syscall".into(),
        insns: vec![ldx(W, 2, 1, 0), mov_imm(0, value), exit()],
        relocs: vec![],
        lines: vec![
            LineInfo {
                insn: 0,
                file: "two.scl".into(),
                source: format!("fn {name}() {{"),
                line: 1,
                column: 1,
            },
            LineInfo {
                insn: 1,
                file: "two.scl".into(),
                source: format!("return {value};"),
                line: 2,
                column: 5,
            },
        ],
    };
    let spec = ObjectSpec {
        subprograms: Vec::new(),
        programs: vec![program("first", 11), program("second", 22)],
        license: "GPL".into(),
        ..Default::default()
    };
    let bytes = scl_object::write(&spec).unwrap();
    let open = ObjectBuilder::default()
        .name("two")
        .unwrap()
        .open_memory(&bytes)
        .unwrap();
    let obj = match open.load() {
        Ok(obj) => obj,
        Err(e) if is_eperm(&e) => {
            return skip(&format!("no permission to load BPF programs: {e:#}"));
        }
        Err(e) => panic!("load failed (libbpf log above): {e:#}"),
    };
    let mut seen = Vec::new();
    for prog in obj.progs_mut() {
        let name = prog.name().to_string_lossy().into_owned();
        let mut ctx = [0u8; 8];
        let out = prog
            .test_run(ProgramInput {
                context_in: Some(&mut ctx),
                ..Default::default()
            })
            .expect("test_run");
        let id = libbpf_rs::Program::id_from_fd(prog.as_fd()).unwrap();
        let info =
            ProgInfoIter::with_query_opts(ProgInfoQueryOptions::default().include_line_info(true))
                .find(|i| i.id == id)
                .unwrap();
        assert_ne!(info.btf_id, 0, "{name}");
        assert_eq!(info.line_info.len(), 2, "{name}");
        seen.push((name, out.return_value));
    }
    seen.sort();
    assert_eq!(
        seen,
        vec![("first".to_owned(), 11), ("second".to_owned(), 22)]
    );
}
