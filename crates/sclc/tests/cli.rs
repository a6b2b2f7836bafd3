//! The command line as a user meets it: exit codes, environment errors, `--help`,
//! `--version`, output formats, and `sclc explain` whose examples must do what they say.

mod common;
use common::repo_root;

use std::path::PathBuf;
use std::process::{Command, Output};

fn sclc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sclc"))
        .current_dir(repo_root())
        .args(args)
        .output()
        .expect("sclc runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sclc-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

#[test]
fn examples_and_stdlib_check_clean() {
    let mut files = Vec::new();
    for dir in ["examples", "stdlib"] {
        for e in std::fs::read_dir(repo_root().join(dir)).expect("dir exists").flatten() {
            if e.path().extension().is_some_and(|x| x == "scl") {
                files.push(format!("{dir}/{}", e.file_name().to_string_lossy()));
            }
        }
    }
    assert!(files.len() >= 9, "seven examples and two stdlib modules, found {files:?}");
    let mut args = vec!["check"];
    args.extend(files.iter().map(String::as_str));
    let out = sclc(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
}

#[test]
fn environment_problems_exit_2_with_a_clear_message() {
    let missing = sclc(&["check", "no/such/file.scl"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("cannot read `no/such/file.scl`"), "{}", text(&missing.stderr));

    let dir = sclc(&["check", "examples"]);
    assert_eq!(dir.status.code(), Some(2));
    assert!(text(&dir.stderr).contains("it is a directory"), "{}", text(&dir.stderr));

    let binary = scratch("binary.scl");
    std::fs::write(&binary, b"const A: u32 = 1;\n\xff\xfe\x00").expect("write");
    let out = sclc(&["check", binary.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("not UTF-8 text (first invalid byte at offset 18, line 2)"), "{}", text(&out.stderr));

    // A bad file does not stop the others from being checked.
    let out = sclc(&["check", "no/such/file.scl", "tests/ui/syntax/unknown_lock_kind.scl"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("E0109"));
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(sclc(&[]).status.code(), Some(2));
    assert_eq!(sclc(&["check"]).status.code(), Some(2));
    assert_eq!(sclc(&["check", "--format", "xml", "a.scl"]).status.code(), Some(2));
    assert_eq!(sclc(&["frobnicate"]).status.code(), Some(2));
}

#[test]
fn help_and_version_are_complete() {
    let help = text(&sclc(&["--help"]).stdout);
    for word in ["check", "explain", "Exit status", "sclc explain CODE"] {
        assert!(help.contains(word), "--help lacks {word:?}:\n{help}");
    }
    let check_help = text(&sclc(&["check", "--help"]).stdout);
    for word in ["--format", "human", "short", "json", "--color"] {
        assert!(check_help.contains(word), "check --help lacks {word:?}:\n{check_help}");
    }
    let version = sclc(&["--version"]);
    assert_eq!(version.status.code(), Some(0));
    assert_eq!(text(&version.stdout).trim(), format!("sclc {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn json_output_is_one_object_per_diagnostic() {
    let out = sclc(&["check", "--format", "json", "tests/ui/syntax/many_errors.scl"]);
    assert_eq!(out.status.code(), Some(1));
    let lines: Vec<serde_json::Value> = text(&out.stderr)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is a JSON object"))
        .collect();
    assert!(lines.iter().filter(|v| v["severity"] == "error").count() >= 5, "many_errors.scl reports several errors");
    for v in &lines {
        assert!(v["severity"] == "error" || v["severity"] == "warning");
        assert!(v["code"].as_str().is_some_and(|c| c.starts_with('E') || c.starts_with('W')));
        assert!(v["start"]["line"].as_u64().is_some() && v["span"]["start"].as_u64().is_some());
    }
}

#[test]
fn colour_only_when_asked() {
    let plain = sclc(&["check", "tests/ui/syntax/unknown_lock_kind.scl"]);
    assert!(!plain.stderr.contains(&0x1b), "not a terminal: no colour");
    let coloured = sclc(&["check", "--color", "always", "tests/ui/syntax/unknown_lock_kind.scl"]);
    assert!(coloured.stderr.contains(&0x1b));
}

/// Every explain page's erroneous example fails with its code; its fixed example passes.
#[test]
fn explain_pages_examples_do_what_they_say() {
    let list = text(&sclc(&["explain"]).stdout);
    let codes: Vec<&str> = list.lines().filter_map(|l| l.split_whitespace().next()).collect();
    assert!(codes.len() >= 14, "{list}");
    for code in codes {
        let page = sclc(&["explain", code]);
        assert_eq!(page.status.code(), Some(0));
        let page = text(&page.stdout);
        let block_after = |marker: &str| -> Option<String> {
            let rest = &page[page.find(marker)? + marker.len()..];
            let start = rest.find("```scl\n")? + 7;
            let end = rest[start..].find("```")?;
            Some(rest[start..start + end].to_string())
        };
        // An example may start with `// sclc: ARGS`, as UI tests do; `// sclc: build ARGS`
        // builds it (printing the assembly, writing no file) instead of checking it.
        let run = |name: &str, source: &str| {
            let path = scratch(name);
            std::fs::write(&path, source).expect("write");
            let mut extra: Vec<String> = source
                .lines()
                .next()
                .and_then(|l| l.strip_prefix("// sclc:"))
                .map(|e| e.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default();
            let mut args = if extra.first().is_some_and(|w| w == "build") {
                extra.remove(0);
                vec!["build".to_string(), "--emit".into(), "asm".into(), "--format".into(), "short".into()]
            } else {
                vec!["check".to_string(), "--format".into(), "short".into()]
            };
            args.extend(extra);
            args.push(path.to_str().expect("utf-8").to_string());
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            sclc(&args)
        };
        let is_warning = code.starts_with('W');
        let fixed = block_after("Fixed example:").unwrap_or_else(|| panic!("{code} has no fixed example"));
        let out = run(&format!("{code}-fixed.scl"), &fixed);
        assert_eq!(out.status.code(), Some(0), "{code}'s fixed example fails:\n{}", text(&out.stderr));
        assert!(!text(&out.stderr).contains(&format!("[{code}]")), "{code}'s fixed example still gives:\n{}", text(&out.stderr));
        // E0107's failing input is too large to print; every other page shows one.
        if let Some(bad) = block_after("Erroneous example:") {
            let out = run(&format!("{code}-bad.scl"), &bad);
            assert_eq!(out.status.code(), Some(if is_warning { 0 } else { 1 }), "{code}: {}", text(&out.stderr));
            let tag = format!("{}[{code}]", if is_warning { "warning" } else { "error" });
            assert!(text(&out.stderr).contains(&tag), "{code}'s example gives:\n{}", text(&out.stderr));
        } else {
            assert_eq!(code, "E0107", "{code} lacks an erroneous example");
        }
    }
}

#[test]
fn explain_accepts_names_and_rejects_unknown_codes() {
    let by_name = sclc(&["explain", "unknown-lock-kind"]);
    assert_eq!(by_name.status.code(), Some(0));
    assert!(text(&by_name.stdout).starts_with("E0109 unknown-lock-kind"));
    let unknown = sclc(&["explain", "E0019"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(text(&unknown.stderr).contains("did you mean"), "{}", text(&unknown.stderr));
}

/// `docs/safety.md` is generated from the explain pages; keep it in step.
#[test]
fn safety_md_matches_the_explain_pages() {
    let out = sclc(&["explain", "--safety-markdown"]);
    assert_eq!(out.status.code(), Some(0));
    let generated = text(&out.stdout);
    let path = repo_root().join("docs/safety.md");
    if std::env::var_os("SCL_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write docs/safety.md");
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(on_disk == generated, "docs/safety.md is stale: run `SCL_BLESS=1 cargo test -p sclc --test cli`");
    for code in ["E0301", "E0310", "E0320", "E0334", "E0340", "E0350", "W0401"] {
        assert!(generated.contains(code), "{code} is missing from docs/safety.md");
    }
}

#[test]
fn build_writes_an_object_and_every_stage() {
    let out_path = scratch("numa.o");
    let out = sclc(&["build", "examples/numa_grouping.scl", "--target", "syncord", "-o", out_path.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let bytes = std::fs::read(&out_path).expect("the object is written");
    assert_eq!(&bytes[..4], b"\x7fELF");
    let asm = text(&sclc(&["build", "examples/numa_grouping.scl", "--target", "syncord", "--emit", "asm"]).stdout);
    for needle in ["; program should_reorder (hook should_reorder), section syscall", "call map_lookup_elem", "map[batch] ll", "exit", "@ examples/numa_grouping.scl:"] {
        assert!(asm.contains(needle), "asm lacks {needle:?}:\n{asm}");
    }
    let ir = text(&sclc(&["build", "examples/numa_grouping.scl", "--target", "syncord", "--emit", "ir"]).stdout);
    assert!(ir.contains("program skip_reorder (hook skip_reorder):") && ir.contains("map batch"), "{ir}");
    let btf = text(&sclc(&["build", "examples/contention_profiler.scl", "--emit", "btf"]).stdout);
    assert!(btf.contains("struct WaitStat") && btf.contains("stats : lru_hash") && btf.contains("int contention_end(void *ctx);"), "{btf}");
}

#[test]
fn builds_are_reproducible() {
    // Each process hashes with new keys, so output that follows hash order differs between
    // runs; three builds of every example must give the same bytes.
    let mut examples: Vec<PathBuf> = std::fs::read_dir(repo_root().join("examples"))
        .expect("examples/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "scl"))
        .collect();
    examples.sort();
    assert!(examples.len() >= 7);
    for (k, example) in examples.iter().enumerate() {
        let src = example.to_str().expect("utf-8");
        let mut objects = Vec::new();
        for run in 0..3 {
            let out_path = scratch(&format!("repro-{k}-{run}.o"));
            let out = sclc(&["build", src, "-o", out_path.to_str().expect("utf-8")]);
            assert_eq!(out.status.code(), Some(0), "{src}: {}", text(&out.stderr));
            objects.push(std::fs::read(&out_path).expect("the object is written"));
        }
        assert!(objects.windows(2).all(|w| w[0] == w[1]), "{src}: three builds gave different objects");
    }
}

#[test]
fn a_failed_build_leaves_no_output_file() {
    let out_path = scratch("bad.o");
    let _ = std::fs::remove_file(&out_path);
    let out = sclc(&["build", "tests/ui/sema/recursion_direct.scl", "-o", out_path.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!out_path.exists(), "no object for a policy with errors");
    // An output path that cannot be written: a usage error, and nothing left behind.
    let out = sclc(&["build", "examples/numa_grouping.scl", "--target", "sim", "-o", "/nonexistent-dir/x.o"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot write `/nonexistent-dir/x.o`"), "{}", text(&out.stderr));
}

#[test]
fn build_verify_loads_every_example_into_the_kernel() {
    if !scl_loader::kernel_tests_can_run() {
        return;
    }
    for f in ["examples/numa_grouping.scl", "examples/contention_profiler.scl", "examples/bravo.scl"] {
        let out = sclc(&["build", f, "--verify", "-o", scratch("v.o").to_str().expect("utf-8")]);
        assert_eq!(out.status.code(), Some(0), "{f}: {}", text(&out.stderr));
    }
}

#[test]
fn run_refuses_what_this_kernel_cannot_host_and_bad_settings() {
    let out = sclc(&["run", "examples/numa_grouping.scl", "--duration", "1s"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("no SCL lock-policy hooks") && err.contains("--target syncord --verify"), "{err}");
    let policy = scratch("cfg.scl");
    std::fs::write(&policy, "config limit: u32 = 5;\nglobal n: u64;\npolicy p for spinlock {\n    on contended(l: lock) {\n        if n < limit { n += 1; }\n    }\n}\n").expect("write");
    let p = policy.to_str().expect("utf-8");
    let unknown = sclc(&["run", p, "--duration", "1s", "--set", "limt=3"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(text(&unknown.stderr).contains("no config value `limt` (did you mean `limit`?)"), "{}", text(&unknown.stderr));
    let too_big = sclc(&["run", p, "--duration", "1s", "--set", "limit=5000000000"]);
    assert_eq!(too_big.status.code(), Some(2));
    assert!(text(&too_big.stderr).contains("does not fit `limit`, a `u32`"), "{}", text(&too_big.stderr));
    let bad_duration = sclc(&["run", p, "--duration", "soon"]);
    assert_eq!(bad_duration.status.code(), Some(2));
}

/// README's set-up (issue 14): two commands that do all the set-up on a fresh Debian machine
/// with a Rust toolchain. The first installs every system package `.ci/run` installs (CI's
/// fresh machine) and what libbpf-sys builds against, then the tools the editor tests run
/// (each step exactly as `.ci/run` runs it, and every such step of `.ci/run`), then runs the
/// main job, whose `sclc` part is run here; the second is `.ci/run`'s test command, verbatim.
#[test]
fn readme_set_up_commands_do_all_the_set_up() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("README.md");
    let section = &readme[readme.find("## Set-up on a fresh machine").expect("a set-up section")..];
    let block = &section[section.find("```sh\n").expect("a sh block") + 6..];
    let block = &block[..block.find("```").expect("closed")];
    let commands: Vec<&str> = block.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    assert_eq!(commands.len(), 2, "README's set-up is two commands: {commands:?}");
    let first = commands[0];
    let rest = first.strip_prefix("apt-get update && apt-get install -y ").unwrap_or_else(|| panic!("the first command installs the system packages first: {first}"));
    let (packages, rest) = rest.split_once(" && ").expect("then runs the main job");
    let (tools, main_job) = rest.rsplit_once(" && ").unwrap_or(("", rest));
    let tools: Vec<&str> = tools.split(" && ").filter(|t| !t.is_empty()).collect();
    let packages: Vec<&str> = packages.split_whitespace().collect();
    // libbpf-sys builds libbpf from source: a C compiler and make, pkg-config, libelf, zlib.
    for needed in ["build-essential", "pkg-config", "libelf-dev", "zlib1g-dev"] {
        assert!(packages.contains(&needed), "README's first command does not install {needed}: {first}");
    }
    let ci = std::fs::read_to_string(repo_root().join(".ci/run")).expect(".ci/run");
    let ci_line = ci.lines().find(|l| l.trim_start().starts_with("packages=(")).expect(".ci/run lists its packages");
    let ci_packages = ci_line.trim_start().trim_start_matches("packages=(").trim_end().trim_end_matches(')');
    for p in ci_packages.split_whitespace() {
        assert!(packages.contains(&p), "`.ci/run` installs {p}, README's first command does not: a fresh machine would miss it");
    }
    let ci_tools: Vec<&str> = ci.lines().map(str::trim).filter(|l| l.starts_with("cargo install ") || l.starts_with("npm ci ")).collect();
    assert!(!ci_tools.is_empty(), "`.ci/run` installs the editor tools");
    assert_eq!(tools, ci_tools, "README's first command installs the tools `.ci/run` installs, the same way");
    assert!(ci.lines().any(|l| l.trim() == commands[1]), "`.ci/run` runs README's test command verbatim: {}", commands[1]);
    assert_eq!(commands[1], "cargo test --workspace");
    // The main job, with the binary under test.
    let args = main_job.strip_prefix("cargo run --release -p sclc -- ").unwrap_or_else(|| panic!("the main job runs sclc: {main_job}"));
    let args: Vec<&str> = args.split_whitespace().collect();
    let out = sclc(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    for row in ["baseline (FIFO)", "numa_grouping", "throughput (acquisitions/s)", "local hand-off ratio", "wait p99"] {
        assert!(table.contains(row), "the first command shows `{row}`:\n{table}");
    }
    // The numbers README quotes are the ones it prints.
    for line in table.lines().filter(|l| l.starts_with("throughput") || l.starts_with("local hand-off") || l.starts_with("wait p50") || l.starts_with("wait p99")) {
        assert!(readme.contains(line.trim_end()), "README quotes a different table; today's line is:\n{line}");
    }
}
