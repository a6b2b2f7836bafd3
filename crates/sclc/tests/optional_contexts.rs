//! Optional handling across every expression context (issue 14): a map lookup `m.get(k)`
//! placed in each context the grammar has, as an operand, a field or an index of one, a
//! condition, an argument, an index, a key, a loop body's value, a function's result, an
//! assignment target, must either be refused with E0340 or be accepted and compute, in the
//! kernel and in the VM, what the reference's semantics give.
//!
//! Unhandled (`m.get(1)`, `ms.get(1).b`, `ma.get(1)[2]`, `ma.get(1)[i]` in the hole): the
//! checker must report E0340. Handled (`if let v = M.get(1) { ... v ... } else { ... dflt
//! ... }`, and `m.get_or(1, dflt)` where the value is a scalar): the program must check
//! clean, load, and leave exactly the state of a reference program that reads a plain
//! `config val` holding what the lookup means (the entry's value when present, `dflt`
//! when not), each run in the kernel and in the VM, with the entry present and absent.
//! For assignment contexts (the hole is written), the entry after the run must hold what
//! the reference leaves in a plain `global cell` that starts with the entry's value.
//!
//! Skipped, with one `SKIPPED (kernel): ...` line, only when the kernel cannot load BPF
//! here; then only the refusals and the compilations are checked.

use scl_catalogue::{MapKind, Target};
use scl_diagnostics::Files;
use scl_vm::{Env, Vm};

/// The declarations every program shares. `val` and `dflt` are filled in per scenario.
fn preamble(val: u64) -> String {
    format!(
        "struct S {{ a: u32, b: u64 }}\n\
         map m: hash<u32, u64>[16];\n\
         map ms: hash<u32, S>[16];\n\
         map ma: hash<u32, [u64; 4]>[16];\n\
         config val: u64 = {val};\n\
         config dflt: u64 = {DEFAULT};\n\
         global out: u64;\n\
         global arr: [u64; 8];\n\
         global pair: S;\n\
         global cell: u64;\n\
         fn id(x: u64) -> u64 {{\n    return x;\n}}\n\
         fn bump(inout x: u64) {{\n    x += 1;\n}}\n"
    )
}

/// The default of the handled forms when the entry is absent.
const DEFAULT: u64 = 7;
/// The entry's value (in `m`, in `ms`'s `b`, in `ma`'s element 2) when present.
const STORED: u64 = 5;

/// Contexts where the hole is read: `@` is the hole; `FN:` text before `|` goes before the
/// policy (a function whose body holds the hole).
const VALUE_CONTEXTS: &[&str] = &[
    "out = @;",
    "let x = @; out = x;",
    "let x: u64 = @; out = x;",
    "out += @;",
    "out = @ + 3;",
    "out = 100 - (@ % 50);",
    "out = (@ * 2) ^ 1;",
    "out = @ << 2;",
    "out = @ / 2 + @ % 3;",
    "if @ > 5 { out = 1; } else { out = 2; }",
    "if out == 0 && @ != 5 { out = 9; }",
    "if out == 1 || @ >= 6 { out = 3; }",
    "if !(@ == 5) { out = 4; }",
    "if out > 0 { out = 1; } else if @ < 6 { out = 8; }",
    "out = ~@;",
    "out = (@ as u32) as u64;",
    "out = (@ as i64 - 9) as u64;",
    "out = arr[@ % 8];",
    "arr[@ % 8] = 3; out = arr[5] + arr[7];",
    "arr[@] = 4; out = arr[5] + arr[7];",
    "out = id(@);",
    "out = id(id(@) + 1);",
    "out = min(@, 6);",
    "out = max(@, 6) + log2(@ + 1) as u64;",
    "atomic_add(out, @);",
    "let old = atomic_add(out, @); out += old + 1;",
    "let ok = atomic_cas(out, 0, @); out += 10;",
    "m.set(9, @); out = m.get_or(9, 0);",
    "m.set((@ % 16) as u32, 4); out = m.get_or(5, 0);",
    "out = m.get_or(@ as u32, 11);",
    "if let w = m.get(@ as u32) { out = w; }",
    "pair = S { a: 1, b: @ }; out = pair.b;",
    "pair.a = (@ + 1) as u32; out = pair.a as u64;",
    "for i in 0..4 { out += @; }",
    "for i in 0..8 { if i == @ { break; } out += 1; }",
    "out = (@ == 5) as u64;",
    "FN:fn f() -> u64 {\n    return @;\n}\n| out = f();",
    "FN:fn g(x: u64) -> u64 {\n    return x * 3;\n}\n| out = g(@);",
];

/// Contexts where the hole is written.
const PLACE_CONTEXTS: &[&str] = &["@ = 11;", "@ += 4;", "@ *= 3;", "bump(@);", "atomic_add(@, 2);", "let old = atomic_add(@, 6); out = old;"];

/// Contexts no handled lookup fits either: a run-time loop bound or wait (refused with
/// E0340, whatever else is said) and the constant contexts outside bodies, where a lookup
/// is refused as not a constant (E0210). `ITEM:` text goes before the policy.
const REFUSED_ONLY: &[(&str, &str)] = &[
    ("for i in 0..@ { out += 1; }", "E0340"),
    ("back_off(@);", "E0340"),
    ("ITEM:const C: u64 = @;\n| out = C;", "E0210"),
    ("ITEM:config c: u64 = @;\n| out = c;", "E0210"),
    ("ITEM:global g2: [u64; @];\n| g2[0] = 1;", "E0210"),
    ("ITEM:per_lock[@] pl2: u64;\n| pl2 = 1;", "E0210"),
    ("ITEM:map m2: hash<u32, u64>[@];\n| m2.set(1, 1);", "E0210"),
];

/// How a lookup fills the hole.
struct Filler {
    /// The map and what of its value the hole is (`` for the whole value).
    map: &'static str,
    proj: &'static str,
    /// Where that is in the value, for reading the entry back.
    offset: usize,
}

const FILLERS: &[Filler] = &[
    Filler { map: "m", proj: "", offset: 0 },
    Filler { map: "ms", proj: ".b", offset: 8 },
    Filler { map: "ma", proj: "[2]", offset: 16 },
    Filler { map: "ma", proj: "[(tid() % 2) + 2]", offset: 24 },
];

/// The entry each map holds in the "present" scenario, so that the hole reads `STORED`
/// (`ma[i]` with tid 3 reads element 3; element 2 too holds `STORED`).
fn entry(map: &str) -> Vec<u8> {
    match map {
        "m" => STORED.to_le_bytes().to_vec(),
        "ms" => [&2u32.to_le_bytes()[..], &[0; 4], &STORED.to_le_bytes()].concat(),
        _ => [1u64, 9, STORED, STORED].iter().flat_map(|v| v.to_le_bytes()).collect(),
    }
}

/// A program: the preamble, the functions, and one hook. `fill` turns the context's text
/// with the hole `@` into code (wherever the hole is: in the hook, or in a function).
fn program(val: u64, context: &str, fill: &dyn Fn(&str) -> String) -> String {
    let (items, body) = match context.strip_prefix("FN:") {
        Some(rest) => rest.split_once('|').expect("FN:items|body"),
        None => ("", context),
    };
    let (items, body) = if items.contains('@') {
        let open = items.find('{').expect("a body") + 1;
        let close = items.rfind('}').expect("a body");
        (format!("{}\n    {}\n{}", &items[..open], fill(items[open..close].trim()), &items[close..]), body.to_string())
    } else {
        (items.to_string(), fill(body))
    };
    format!("{}{items}policy p for spinlock {{\n    on contended(l: lock) {{\n        {body}\n    }}\n}}\n", preamble(val))
}

struct FixedEnv;

impl Env for FixedEnv {
    fn now_ns(&mut self) -> u64 {
        1_000_000
    }
    fn random_u32(&mut self) -> u32 {
        0
    }
    fn cpu(&self) -> u32 {
        0
    }
    fn numa_node(&self) -> u32 {
        0
    }
    fn pid_tgid(&self) -> u64 {
        (3 << 32) | 3
    }
    fn wait_until(&mut self, _deadline_ns: u64) {}
}

/// Every map's entries, map by map: (name, [(key, value)]).
type MapState = Vec<(String, Vec<(Vec<u8>, Vec<u8>)>)>;

/// What a run leaves: the hook's result and every map's entries.
type Snapshot = (u64, MapState);

fn compile(text: &str) -> scl_driver::Output {
    let mut files = Files::new();
    let id = files.add("ctx.scl", text);
    match scl_driver::compile(&mut files, id, Target::Syncord) {
        Ok(o) => o,
        Err(d) => panic!("a handled lookup must check and compile:\n{text}\n{:#?}", d.iter().filter(|d| d.is_error()).map(|d| (d.code.code, &d.message)).collect::<Vec<_>>()),
    }
}

fn compared_maps(out: &scl_driver::Output) -> Vec<String> {
    out.module
        .maps
        .values()
        .filter(|m| !matches!(m.kind, MapKind::PercpuArray | MapKind::Ringbuf) && !matches!(m.origin, scl_ir::MapOrigin::Hidden))
        .map(|m| m.name.clone())
        .collect()
}

/// Runs `contended` once in the kernel and once in the VM, with `preload` written first;
/// both must agree; returns what they left.
fn run_both(text: &str, preload: &[(&str, Vec<u8>)], kernel: bool) -> Snapshot {
    let out = compile(text);
    let maps = compared_maps(&out);
    let mut ctx = [0u8; 128];
    ctx[24..28].copy_from_slice(&3u32.to_le_bytes()); // tid 3
    let mut vm = Vm::new(&out).expect("the VM takes the program");
    for (map, value) in preload {
        vm.update(map, &1u32.to_le_bytes(), value).expect("vm preload");
    }
    let mut vctx = ctx;
    let ret = vm.run("contended", &mut vctx, &mut FixedEnv).unwrap_or_else(|e| panic!("the VM fails: {e:?}\n{text}")).ret;
    let snapshot = |keys: &dyn Fn(&str) -> Vec<Vec<u8>>, value: &dyn Fn(&str, &[u8]) -> Vec<u8>| -> MapState {
        maps.iter()
            .map(|m| {
                let mut ks = keys(m);
                ks.sort();
                (m.clone(), ks.into_iter().map(|k| (k.clone(), value(m, &k))).collect())
            })
            .collect()
    };
    let vm_state = snapshot(&|m| vm.keys(m), &|m, k| vm.lookup(m, k).expect("vm value"));
    if kernel {
        let mut loaded = scl_loader::load("optctx", &out.object, &[]).unwrap_or_else(|e| panic!("the verifier refuses a handled lookup: {e}\n{text}"));
        for (map, value) in preload {
            loaded.update(map, &1u32.to_le_bytes(), value).expect("kernel preload");
        }
        let kret = loaded.test_run("contended", &mut ctx).expect("runs");
        let kernel_state = snapshot(&|m| loaded.keys(m).expect("keys"), &|m, k| loaded.lookup(m, k).expect("lookup").expect("value"));
        assert_eq!(u64::from(kret), ret, "kernel and VM return different values:\n{text}");
        assert_eq!(kernel_state, vm_state, "kernel and VM leave different state:\n{text}");
    }
    (ret, vm_state)
}

fn errors(text: &str) -> Vec<&'static str> {
    let mut files = Files::new();
    let id = files.add("ctx.scl", text);
    let checked = scl_sema::check_file(&mut files, id, &scl_sema::Options { target: Some(Target::Syncord) });
    checked.diagnostics.iter().filter(|d| d.is_error()).map(|d| d.code.code).collect()
}

#[test]
fn every_context_refuses_or_computes_the_lookup() {
    let kernel = scl_loader::kernel_tests_can_run_else("handled lookups are only compiled and run in the VM");
    let mut refused = 0;
    let mut compared = 0;
    for context in VALUE_CONTEXTS.iter().chain(PLACE_CONTEXTS) {
        let writes = PLACE_CONTEXTS.contains(context);
        for f in FILLERS {
            // Unhandled: refused with E0340, whatever else is said.
            let hole = format!("{}.get(1){}", f.map, f.proj);
            let text = program(STORED, context, &|t| t.replace('@', &hole));
            let codes = errors(&text);
            assert!(codes.contains(&"E0340"), "an unhandled lookup in `{context}` is not refused with E0340 (got {codes:?}):\n{text}");
            refused += 1;
            // Handled, with the entry present and absent.
            for present in [true, false] {
                let preload: Vec<(&str, Vec<u8>)> = if present { vec![(f.map, entry(f.map))] } else { Vec::new() };
                let meaning = if present { STORED } else { DEFAULT };
                let v = format!("v{}", f.proj);
                let open = |t: &str| format!("if let v = {}.get(1) {{\n        {}\n        }}", f.map, t.replace('@', &v));
                if writes {
                    // `v` is the entry: writing it writes the map; absent, nothing happens.
                    let handled = program(STORED, context, &open);
                    let (_, state) = run_both(&handled, &preload, kernel);
                    let reference = program(STORED, context, &|t| if present { format!("cell = val;\n        {}", t.replace('@', "cell")) } else { String::new() });
                    let (_, ref_state) = run_both(&reference, &[], kernel);
                    if present {
                        let cell = read(&ref_state, "cell", &0u32.to_le_bytes(), 0);
                        assert_eq!(read(&state, f.map, &1u32.to_le_bytes(), f.offset), cell, "writing `{v}` in `{context}` does not write the entry:\n{handled}");
                    } else {
                        assert!(entries(&state, f.map).is_empty(), "an absent entry was created by `{context}`:\n{handled}");
                    }
                    // Everything but the map the hole lives in and `cell` is as the reference left it.
                    assert_eq!(without(&state, &[f.map, "cell"]), without(&ref_state, &[f.map, "cell"]), "`{context}` with `{v}` (entry present: {present}):\n{handled}");
                    compared += 1;
                } else {
                    let handled = program(STORED, context, &|t| format!("{} else {{\n        {}\n        }}", open(t), t.replace('@', "dflt")));
                    let reference = program(meaning, context, &|t| t.replace('@', "val"));
                    let got = run_both(&handled, &preload, kernel);
                    let want = run_both(&reference, &preload, kernel);
                    assert_eq!(got, want, "`{context}` with `{v}` (entry present: {present}) does not compute what `val` = {meaning} does:\n{handled}");
                    compared += 1;
                    if f.map == "m" {
                        let handled = program(STORED, context, &|t| t.replace('@', "m.get_or(1, dflt)"));
                        let got = run_both(&handled, &preload, kernel);
                        assert_eq!(got, want, "`{context}` with `m.get_or(1, dflt)` (entry present: {present}):\n{handled}");
                        compared += 1;
                    }
                }
            }
        }
    }
    for (context, code) in REFUSED_ONLY {
        for f in FILLERS {
            let hole = format!("{}.get(1){}", f.map, f.proj);
            let text = match context.strip_prefix("ITEM:") {
                Some(rest) => {
                    let (item, body) = rest.split_once('|').expect("ITEM:item|body");
                    program(STORED, &format!("FN:{}|{body}", item.replace('@', &hole)), &|t| t.to_string())
                }
                None => program(STORED, context, &|t| t.replace('@', &hole)),
            };
            let codes = errors(&text);
            assert!(codes.contains(code), "a lookup in `{context}` is not refused with {code} (got {codes:?}):\n{text}");
            refused += 1;
        }
    }
    eprintln!("optional contexts: {refused} unhandled lookups refused, {compared} handled ones equal to their reference");
    assert!(refused >= 150 && compared >= 250, "{refused} refused, {compared} compared");
}

fn entries<'a>(state: &'a MapState, map: &str) -> &'a [(Vec<u8>, Vec<u8>)] {
    &state.iter().find(|(m, _)| m == map).unwrap_or_else(|| panic!("no map `{map}`")).1
}

fn read(state: &MapState, map: &str, key: &[u8], offset: usize) -> u64 {
    let (_, v) = entries(state, map).iter().find(|(k, _)| k == key).unwrap_or_else(|| panic!("`{map}` has no entry {key:?}"));
    u64::from_le_bytes(v[offset..offset + 8].try_into().expect("8 bytes"))
}

fn without(state: &MapState, maps: &[&str]) -> MapState {
    state.iter().filter(|(m, _)| !maps.contains(&m.as_str())).cloned().collect()
}
