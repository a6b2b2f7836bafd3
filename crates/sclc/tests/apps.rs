//! The application interfaces `sclc build --emit c-header|python` generates: every
//! example's header compiles as C11 and C++11 (its static assertions hold) and its Python
//! module imports (its layout assertions hold); and, on the running kernel, programs in
//! each language write a pinned policy's maps and `sclc map` reads the effect back, and the
//! reverse: `examples/apps/mark_critical.{c,py}` for `app_priority`, and a policy with every
//! kind of user-visible map and nested structs for the layouts.
//!
//! gcc, python3 and libbpf-dev are installed by `.ci/run`; their absence is a failure, not a
//! reason to skip. Only the kernel tests skip, when `scl_loader::check_support` fails.

mod common;
use common::repo_root;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn run(cmd: &mut Command) -> Output {
    cmd.current_dir(repo_root()).output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// Runs `cmd`, insists on exit status `code`, returns stdout.
fn ok(cmd: &mut Command, code: i32) -> String {
    let what = format!("{cmd:?}");
    let o = run(cmd);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(code), "{what}\nstdout:\n{out}\nstderr:\n{err}");
    out
}

fn sclc(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sclc"));
    c.args(args);
    c
}

/// A fresh directory under the target directory, removed first if a previous run left it.
fn scratch(what: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("apps_{what}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

/// A policy with every kind of map an application sees, nested structs, arrays, `bool` and
/// signed fields; and a `latency_critical` whose key is not app_priority's.
const ALL_KINDS: &str = r#"
import hist;

struct Inner {
    flag: bool,
    d: i16,
}

struct Rec {
    a: u8,
    b: u64,
    inner: Inner,
    xs: [u16; 3],
    h: hist::Log2,
}

global g: Rec;
per_cpu pc: Inner;
per_thread[64] pt: Rec;
per_lock[64] pl: u32;
map arr: array<i32>[8];
map pca: percpu_array<u64>[4];
map lru: lru_hash<u64, Inner>[16];
map ev: ringbuf<Rec>[4096];
map latency_critical: hash<u64, u8>[8];

policy all_kinds for spinlock {
    on contended(l: lock) {
        g.a += 1;
        pc.d += 1;
        pt.b += 1;
        pl += 1;
        arr.set(0, 1);
        pca.set(0, 1);
        lru.set(l.addr, Inner { flag: true, d: 2 });
        latency_critical.set(l.addr, 1);
    }
}
"#;

/// Members of empty struct types take no bytes in SCL (and BTF); C has no portable empty
/// struct, so the generated types leave them out, and a struct of only such members keeps
/// its one byte as padding.
const EMPTY_MEMBERS: &str = r#"
struct E {
}

struct Only {
    e: E,
}

struct R {
    e: E,
    x: u32,
    o: Only,
}

global r: R;

policy empty_members for spinlock {
    on contended(l: lock) {
        r.x += 1;
    }
}
"#;

/// Writes the all-kinds policy into `dir`.
fn all_kinds(dir: &Path) -> PathBuf {
    let p = dir.join("all_kinds.scl");
    std::fs::write(&p, ALL_KINDS).expect("write policy");
    p
}

/// Generates `policy`'s header and module into `dir` as NAME.h and NAME.py.
fn generate(policy: &Path, dir: &Path, name: &str) {
    let (h, py) = (dir.join(format!("{name}.h")), dir.join(format!("{name}.py")));
    for (emit, out) in [("c-header", &h), ("python", &py)] {
        ok(&mut sclc(&["build", policy.to_str().unwrap(), "--emit", emit, "-o", out.to_str().unwrap()]), 0);
    }
}

#[test]
fn every_example_has_a_header_that_compiles_and_a_module_that_imports() {
    let dir = scratch("compile");
    let mut policies: Vec<PathBuf> = std::fs::read_dir(repo_root().join("examples"))
        .expect("examples/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "scl"))
        .collect();
    policies.sort();
    assert!(policies.len() >= 7);
    policies.push(all_kinds(&dir));
    let empty = dir.join("empty_members.scl");
    std::fs::write(&empty, EMPTY_MEMBERS).unwrap();
    policies.push(empty);
    for policy in &policies {
        let name = policy.file_stem().unwrap().to_str().unwrap().to_string();
        generate(policy, &dir, &name);
        let c = dir.join(format!("use_{name}.c"));
        std::fs::write(&c, format!("#include \"{name}.h\"\n#include \"{name}.h\"\nint main(void) {{ return 0; }}\n")).unwrap();
        ok(Command::new("cc").args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-fsyntax-only"]).arg(&c), 0);
        ok(Command::new("c++").args(["-std=c++11", "-Wall", "-Wextra", "-Werror", "-fsyntax-only", "-x", "c++"]).arg(&c), 0);
        ok(Command::new("python3").arg("-c").arg(format!("import sys; sys.path.insert(0, {:?}); import {name}", dir.to_str().unwrap())), 0);
    }

    // The text emits go to stdout unless -o is given.
    let header = ok(&mut sclc(&["build", "examples/app_priority.scl", "--emit", "c-header"]), 0);
    for want in [
        "#ifndef APP_PRIORITY_SCL_H",
        "#define APP_PRIORITY_PIN(deployment, map) APP_PRIORITY_PIN_ROOT \"/\" deployment \"/map_\" #map",
        "typedef uint32_t app_priority_latency_critical_key_t;",
        "typedef uint8_t app_priority_latency_critical_value_t;",
        "static inline int app_priority_latency_critical_open(const char *deployment)",
        "return app_priority_open_checked(deployment, \"latency_critical\", 1, 4, 1);",
        "static inline int app_priority_latency_critical_get(int fd, const app_priority_latency_critical_key_t *key, app_priority_latency_critical_value_t *value)",
        "bpf_map_update_elem(fd, key, value, BPF_ANY)",
        "bpf_map_delete_elem(fd, key)",
    ] {
        assert!(header.contains(want), "the app_priority header lacks `{want}`:\n{header}");
    }
    // Hidden maps and config are not an application's business.
    assert!(!header.contains("scl_zero") && !header.contains("max_wait_ns") && !header.contains("rodata"), "{header}");
    let module = ok(&mut sclc(&["build", "examples/app_priority.scl", "--emit", "python"]), 0);
    for want in ["ctypes.CDLL(\"libbpf.so.1\", use_errno=True)", "class LatencyCriticalMap(_Map):", "Key = ctypes.c_uint32", "Value = ctypes.c_uint8", "def delete(self, key):"] {
        assert!(module.contains(want), "the app_priority module lacks `{want}`:\n{module}");
    }

    // Per-map shapes: arrays have no delete, single-entry state takes no key, per-CPU
    // values are 8-byte strided arrays, ring buffers have no get/set.
    let h = std::fs::read_to_string(dir.join("all_kinds.h")).unwrap();
    for want in [
        "static inline int all_kinds_g_get(int fd, all_kinds_g_value_t *value)",
        "struct all_kinds_pc_percpu {\n    all_kinds_pc_value_t value;\n} __attribute__((aligned(8)));",
        "static inline int all_kinds_pca_get(int fd, const all_kinds_pca_key_t *key, struct all_kinds_pca_percpu *values /* [all_kinds_possible_cpus()] */)",
        "ALL_KINDS_STATIC_ASSERT(offsetof(struct all_kinds_Rec, h) == 32,",
        "typedef struct all_kinds_Rec all_kinds_ev_record_t;",
    ] {
        assert!(h.contains(want), "all_kinds.h lacks `{want}`:\n{h}");
    }
    for absent in ["all_kinds_arr_delete", "all_kinds_pca_delete", "all_kinds_g_delete", "all_kinds_ev_get", "all_kinds_ev_set"] {
        assert!(!h.contains(absent), "all_kinds.h has `{absent}`");
    }

    // Values that do not fit are refused in Python before anything reaches the kernel.
    let py = format!(
        "import sys; sys.path.insert(0, {:?}); import all_kinds as a\n\
         for ty, v in [(a.ctypes.c_int32, 2**31), (a.ctypes.c_uint8, -1), (a.ctypes.c_bool, 2), (a.ctypes.c_uint16 * 3, [1, 2, 3, 4])]:\n\
         \x20   try:\n\
         \x20       a._c(ty, v, 'v')\n\
         \x20   except ValueError as e:\n\
         \x20       print('refused:', e)\n\
         print(list(a._c(a.ctypes.c_uint16 * 3, [1, 2], 'v')))\n\
         try:\n\
         \x20   a.map_path('../x', 'arr')\n\
         except ValueError as e:\n\
         \x20   print('refused:', e)\n",
        dir.to_str().unwrap()
    );
    let out = ok(Command::new("python3").arg("-c").arg(py), 0);
    assert_eq!(
        out,
        "refused: v: 2147483648 does not fit a i32 (-2147483648..=2147483647)\n\
         refused: v: -1 does not fit a u8 (0..=255)\n\
         refused: v: 2 is not a bool\n\
         refused: v: 4 elements do not fit 3\n\
         [1, 2, 0]\n\
         refused: '../x' is not a valid policy name (use letters, digits, `_`, `-` and `.`)\n"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn kernel_or_skip() -> bool {
    scl_loader::kernel_tests_can_run()
}

/// Unpins the policy when dropped, so a failed assertion leaves nothing behind.
struct Pinned(String);

impl Drop for Pinned {
    fn drop(&mut self) {
        let dir = Path::new(scl_loader::pin::SCL_ROOT).join(&self.0);
        if dir.exists() {
            let _ = scl_loader::pin::unpin(&dir);
        }
    }
}

/// Pins `policy` as a unique name for `what`, without activating it (this kernel has no
/// lock-hook module).
fn pin(policy: &str, what: &str) -> Pinned {
    let name = format!("test_apps_{what}_{}", std::process::id());
    let guard = Pinned(name.clone());
    ok(&mut sclc(&["load", policy, "--target", "syncord", "--pin", &name, "--pin-only"]), 0);
    guard
}

fn map_get(name: &str, map: &str, key: &str) -> String {
    ok(&mut sclc(&["map", name, "get", map, key]), 0).trim_end().to_string()
}

fn map_set(name: &str, map: &str, key: &str, value: &str) {
    ok(&mut sclc(&["map", name, "set", map, key, value]), 0);
}

/// `sclc unload` removes the pins; the guard then has nothing left to do.
fn unload(p: Pinned) {
    ok(&mut sclc(&["unload", &p.0]), 0);
    assert!(!Path::new(scl_loader::pin::SCL_ROOT).join(&p.0).exists());
}

#[test]
fn the_c_example_marks_threads_that_sclc_map_reads_and_reads_what_it_writes() {
    if !kernel_or_skip() {
        return;
    }
    let dir = scratch("c");
    generate(&repo_root().join("examples/app_priority.scl"), &dir, "app_priority");
    let exe = dir.join("mark_critical");
    ok(Command::new("cc").args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-o"]).arg(&exe).arg("examples/apps/mark_critical.c").arg("-I").arg(&dir).arg("-lbpf"), 0);
    let p = pin("examples/app_priority.scl", "c");
    let name = p.0.clone();

    let out = ok(Command::new(&exe).args([&name, "4001", "4002"]), 0);
    assert_eq!(out, "marked 4001\nmarked 4002\n");
    assert_eq!(map_get(&name, "latency_critical", "4001"), "4001 => 1");
    assert_eq!(map_get(&name, "latency_critical", "4002"), "4002 => 1");
    // With no tid it marks its own calling thread.
    let out = ok(Command::new(&exe).arg(&name), 0);
    let tid = out.strip_prefix("marked ").and_then(|r| r.strip_suffix(" (this thread)\n")).unwrap_or_else(|| panic!("{out}"));
    assert_eq!(map_get(&name, "latency_critical", tid), format!("{tid} => 1"));
    let out = ok(Command::new(&exe).args(["--unmark", &name, "4001", "4003"]), 0);
    assert_eq!(out, "unmarked 4001\n4003 was not marked\n");
    assert_eq!(map_get(&name, "latency_critical", "4001"), "4001 => none");

    // The reverse: sclc writes, the generated C reads.
    map_set(&name, "latency_critical", "4005", "1");
    map_set(&name, "latency_critical", "4006", "0");
    let out = ok(Command::new(&exe).args(["--query", &name, "4005", "4006", "4001"]), 0);
    assert_eq!(out, "4005 critical\n4006 not critical\n4001 not critical\n");

    // Errors: no such deployment; not a thread id.
    let err = text(&run(Command::new(&exe).args(["no_such_policy_here", "1"]))).1;
    assert!(err.contains("cannot open map latency_critical of `no_such_policy_here`: No such file or directory"), "{err}");
    ok(Command::new(&exe).args([&name, "12x"]), 2);
    unload(p);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_python_example_marks_threads_that_sclc_map_reads_and_reads_what_it_writes() {
    if !kernel_or_skip() {
        return;
    }
    let dir = scratch("py");
    generate(&repo_root().join("examples/app_priority.scl"), &dir, "app_priority");
    // Run from beside the generated module: Python looks in the script's own directory
    // first, where a reader following examples/apps/README.md keeps a generated copy.
    std::fs::copy(repo_root().join("examples/apps/mark_critical.py"), dir.join("mark_critical.py")).expect("copy the script");
    let p = pin("examples/app_priority.scl", "py");
    let name = p.0.clone();
    let script = |args: &[&str]| {
        let mut c = Command::new("python3");
        c.arg(dir.join("mark_critical.py")).args(args).env("PYTHONDONTWRITEBYTECODE", "1");
        c
    };

    let out = ok(&mut script(&[&name, "5001", "5002"]), 0);
    assert_eq!(out, "marked 5001\nmarked 5002\n");
    assert_eq!(map_get(&name, "latency_critical", "5001"), "5001 => 1");
    assert_eq!(map_get(&name, "latency_critical", "5002"), "5002 => 1");
    let out = ok(&mut script(&[&name]), 0);
    let tid = out.strip_prefix("marked ").and_then(|r| r.strip_suffix(" (this thread)\n")).unwrap_or_else(|| panic!("{out}"));
    assert_eq!(map_get(&name, "latency_critical", tid), format!("{tid} => 1"));
    let out = ok(&mut script(&["--unmark", &name, "5001", "5003"]), 0);
    assert_eq!(out, "unmarked 5001\n5003 was not marked\n");
    assert_eq!(map_get(&name, "latency_critical", "5001"), "5001 => none");

    map_set(&name, "latency_critical", "5005", "1");
    map_set(&name, "latency_critical", "5006", "0");
    let out = ok(&mut script(&["--query", &name, "5005", "5006", "5001"]), 0);
    assert_eq!(out, "5005 critical\n5006 not critical\n5001 not critical\n");

    // A tid that does not fit the key type is refused before the kernel sees it.
    let err = text(&run(&mut script(&[&name, "4294967296"]))).1;
    assert!(err.contains("4294967296 does not fit a u32 (0..=4294967295)"), "{err}");
    unload(p);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The number of possible CPUs: the length of per-CPU values.
fn possible_cpus() -> usize {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/possible").expect("possible CPUs");
    text.trim().split(',').map(|r| r.split_once('-').map_or(1, |(a, b)| b.parse::<usize>().unwrap() - a.parse::<usize>().unwrap() + 1)).sum()
}

const ALL_KINDS_C: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "all_kinds.h"

#define CHECK(x) do { int e_ = (x); if (e_) { fprintf(stderr, "%s: %s\n", #x, strerror(-e_)); return 1; } } while (0)
#define OPEN(fd, m) int fd = all_kinds_##m##_open(d); if (fd < 0) { fprintf(stderr, "open %s: %s\n", #m, strerror(-fd)); return 1; }

int main(int argc, char **argv)
{
    const char *d = argv[1];
    int i, n = all_kinds_possible_cpus();
    OPEN(g, g) OPEN(pc, pc) OPEN(pt, pt) OPEN(pl, pl) OPEN(arr, arr) OPEN(pca, pca) OPEN(lru, lru) OPEN(ev, ev)
    (void)argc;
    if (strcmp(argv[2], "write") == 0) {
        all_kinds_pt_key_t k = 5;
        all_kinds_pt_value_t v;
        all_kinds_lru_key_t lk = 7;
        all_kinds_lru_value_t lv = { true, -2 };
        all_kinds_arr_key_t ak = 3;
        all_kinds_arr_value_t av = -5;
        all_kinds_pl_key_t plk = 0xffff888012345678ULL;
        all_kinds_pl_value_t plv = 4000000000U;
        all_kinds_pca_key_t pk = 2;
        struct all_kinds_pc_percpu *pv = calloc(n, sizeof(*pv));
        struct all_kinds_pca_percpu *pcv = calloc(n, sizeof(*pcv));
        memset(&v, 0, sizeof(v));
        v.a = 1;
        v.b = 0x1122334455667788ULL;
        v.inner.flag = true;
        v.inner.d = -3;
        v.xs[0] = 1;
        v.xs[2] = 3;
        v.h.buckets[31] = 9;
        CHECK(all_kinds_pt_set(pt, &k, &v));
        CHECK(all_kinds_lru_set(lru, &lk, &lv));
        CHECK(all_kinds_arr_set(arr, &ak, &av));
        CHECK(all_kinds_pl_set(pl, &plk, &plv));
        for (i = 0; i < n; i++) {
            pv[i].value.flag = i % 2;
            pv[i].value.d = 100 + i;
            pcv[i].value = 1000 + i;
        }
        CHECK(all_kinds_pc_set(pc, pv));
        CHECK(all_kinds_pca_set(pca, &pk, pcv));
        v.b = 42;
        CHECK(all_kinds_g_set(g, &v));
        CHECK(all_kinds_lru_delete(lru, &lk) == 0 ? all_kinds_lru_delete(lru, &lk) + ENOENT : -1);
        CHECK(all_kinds_lru_set(lru, &lk, &lv));
        puts("written");
    } else {
        all_kinds_pt_key_t k = 6;
        all_kinds_pt_value_t v;
        all_kinds_lru_key_t lk = 8;
        all_kinds_lru_value_t lv;
        all_kinds_arr_key_t ak = 4;
        all_kinds_arr_value_t av;
        all_kinds_pca_key_t pk = 1;
        struct all_kinds_pca_percpu *pcv = calloc(n, sizeof(*pcv));
        CHECK(all_kinds_pt_get(pt, &k, &v));
        printf("pt a=%u b=%llu flag=%d d=%d xs=%u,%u,%u h31=%llu\n", v.a, (unsigned long long)v.b, v.inner.flag, v.inner.d, v.xs[0], v.xs[1], v.xs[2],
               (unsigned long long)v.h.buckets[31]);
        CHECK(all_kinds_lru_get(lru, &lk, &lv));
        printf("lru flag=%d d=%d\n", lv.flag, lv.d);
        CHECK(all_kinds_arr_get(arr, &ak, &av));
        printf("arr %d\n", av);
        CHECK(all_kinds_pca_get(pca, &pk, pcv));
        for (i = 0; i < n; i++)
            printf("pca cpu%d %llu\n", i, (unsigned long long)pcv[i].value);
        k = 999;
        printf("pt 999 %s\n", all_kinds_pt_get(pt, &k, &v) == -ENOENT ? "none" : "?");
    }
    return 0;
}
"#;

#[test]
fn generated_layouts_are_the_kernels_for_every_kind_of_map_in_c_and_python() {
    if !kernel_or_skip() {
        return;
    }
    let dir = scratch("layouts");
    let policy = all_kinds(&dir);
    generate(&policy, &dir, "all_kinds");
    let src = dir.join("all_kinds_app.c");
    std::fs::write(&src, ALL_KINDS_C).unwrap();
    let exe = dir.join("all_kinds_app");
    ok(Command::new("cc").args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-o"]).arg(&exe).arg(&src).arg("-I").arg(&dir).arg("-lbpf"), 0);
    let p = pin(policy.to_str().unwrap(), "layouts");
    let name = p.0.clone();
    let n = possible_cpus();

    // C writes; the kernel's BTF, read by `sclc map`, sees each field where C put it.
    assert_eq!(ok(Command::new(&exe).args([&name, "write"]), 0), "written\n");
    let buckets = |last: u64| (0..32).map(|i| if i == 31 { last.to_string() } else { "0".into() }).collect::<Vec<_>>().join(", ");
    assert_eq!(
        map_get(&name, "pt", "5"),
        format!("5 => {{a: 1, b: 1234605616436508552, inner: {{flag: true, d: -3}}, xs: [1, 0, 3], h: {{buckets: [{}]}}}}", buckets(9))
    );
    assert_eq!(map_get(&name, "lru", "7"), "7 => {flag: true, d: -2}");
    assert_eq!(map_get(&name, "arr", "3"), "3 => -5");
    assert_eq!(map_get(&name, "pl", "0xffff888012345678"), "18446612682375452280 => 4000000000");
    let pc: Vec<String> = (0..n).map(|i| format!("cpu{i}: {{flag: {}, d: {}}}", i % 2 == 1, 100 + i)).collect();
    assert_eq!(map_get(&name, "pc", "0"), format!("0 => {{{}}}", pc.join(", ")));
    let pca: Vec<String> = (0..n).map(|i| format!("cpu{i}: {}", 1000 + i)).collect();
    assert_eq!(map_get(&name, "pca", "2"), format!("2 => {{{}}}", pca.join(", ")));
    assert!(map_get(&name, "g", "0").starts_with("0 => {a: 1, b: 42, inner: {flag: true, d: -3}"));

    // sclc writes; C reads each field where the kernel's BTF put it.
    map_set(&name, "pt", "6", "a=200,b=18446744073709551615,inner={flag=true,d=-32768},xs=[4,5,65535],h={buckets=[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,77]}");
    map_set(&name, "lru", "8", "flag=true,d=300");
    map_set(&name, "arr", "4", "-7");
    map_set(&name, "pca", "1", "123");
    let out = ok(Command::new(&exe).args([&name, "read"]), 0);
    let pca: String = (0..n).map(|i| format!("pca cpu{i} 123\n")).collect();
    assert_eq!(out, format!("pt a=200 b=18446744073709551615 flag=1 d=-32768 xs=4,5,65535 h31=77\nlru flag=1 d=300\narr -7\n{pca}pt 999 none\n"));

    // The same in Python.
    let py = format!(
        r#"import sys; sys.path.insert(0, {dir:?}); import all_kinds as a
d = {name:?}
with a.PtMap(d) as pt:
    r = a.Rec(a=7, b=2**64 - 2)
    r.inner.flag = True
    r.inner.d = -9
    r.xs[1] = 11
    r.h.buckets[0] = 5
    pt.set(9, r)
    v = pt.get(6)
    print("pt", v.a, v.b, v.inner.flag, v.inner.d, list(v.xs), v.h.buckets[31])
    print("pt 999", pt.get(999))
with a.PcMap(d) as pc:
    pc.set([a.Inner(flag=i % 2 == 0, d=-i) for i in range(a.possible_cpus())])
    print("pc", [(x.flag, x.d) for x in pc.get()])
with a.PcaMap(d) as pca:
    pca.set(3, 77)
    print("pca", pca.get(1))
with a.ArrMap(d) as arr:
    arr.set(5, -2**31)
    print("arr", arr.get(4), hasattr(arr, "delete"))
with a.GMap(d) as g:
    print("g", g.get().b)
with a.LruMap(d) as lru:
    lru.set(10, a.Inner(flag=True, d=-1))
    print("lru", lru.delete(10), lru.delete(10))
with a.PlMap(d) as pl:
    pl.set(1, 2**32 - 1)
    print("pl", pl.get(1))
"#,
        dir = dir.to_str().unwrap()
    );
    let out = ok(Command::new("python3").arg("-c").arg(&py).env("PYTHONDONTWRITEBYTECODE", "1"), 0);
    let pc: Vec<String> = (0..n).map(|i| format!("({}, {})", if i % 2 == 0 { "True" } else { "False" }, -(i as i64))).collect();
    let pca: Vec<String> = (0..n).map(|_| "123".to_string()).collect();
    assert_eq!(
        out,
        format!(
            "pt 200 18446744073709551615 True -32768 [4, 5, 65535] 77\npt 999 None\npc [{}]\npca [{}]\narr -7 False\ng 42\nlru True False\npl 4294967295\n",
            pc.join(", "),
            pca.join(", ")
        )
    );
    assert_eq!(
        map_get(&name, "pt", "9"),
        format!("9 => {{a: 7, b: 18446744073709551614, inner: {{flag: true, d: -9}}, xs: [0, 11, 0], h: {{buckets: [5, {}]}}}}", vec!["0"; 31].join(", "))
    );
    let pc: Vec<String> = (0..n).map(|i| format!("cpu{i}: {{flag: {}, d: {}}}", i % 2 == 0, -(i as i64))).collect();
    assert_eq!(map_get(&name, "pc", "0"), format!("0 => {{{}}}", pc.join(", ")));
    let pca: Vec<String> = (0..n).map(|i| format!("cpu{i}: 77")).collect();
    assert_eq!(map_get(&name, "pca", "3"), format!("3 => {{{}}}", pca.join(", ")));
    assert_eq!(map_get(&name, "arr", "5"), "5 => -2147483648");

    // The app_priority interfaces refuse this policy's `latency_critical` (a u64 key):
    // the sizes are checked when the map is opened, before anything is written.
    let app = scratch("layouts_app");
    generate(&repo_root().join("examples/app_priority.scl"), &app, "app_priority");
    let exe = app.join("mark_critical");
    ok(Command::new("cc").args(["-o"]).arg(&exe).arg("examples/apps/mark_critical.c").arg("-I").arg(&app).arg("-lbpf"), 0);
    let err = text(&run(Command::new(&exe).args([&name, "1"]))).1;
    assert!(err.contains("Protocol error (is an app_priority policy deployed under that name?)"), "{err}");
    std::fs::copy(repo_root().join("examples/apps/mark_critical.py"), app.join("mark_critical.py")).expect("copy the script");
    let o = run(Command::new("python3").arg(app.join("mark_critical.py")).args([&name, "1"]).env("PYTHONDONTWRITEBYTECODE", "1"));
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o).1;
    assert!(err.contains("is not map `latency_critical` of policy `app_priority`") && err.contains("(is an app_priority policy deployed under that name?)"), "{err}");
    assert_eq!(map_get(&name, "latency_critical", "1"), "1 => none");

    unload(p);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&app);
}
