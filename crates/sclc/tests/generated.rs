//! Soundness: random well-typed policies (issue 8). Every program the generator makes must
//! check clean, compile, load into the running kernel (its verifier accepts it) and run
//! through `BPF_PROG_TEST_RUN` on a random context. A verifier rejection is a compiler bug:
//! the failing program is printed with its seed so it can be kept as a regression test.
//!
//! `SCL_GEN_PROGRAMS=N` sets how many programs (default 2,000); `SCL_GEN_SEED=S` the first
//! seed (default 1). The generator covers integer types and operators, casts, comparisons and
//! logic, `let`, assignments and compound assignments, `if`/`else if`/`else`, bounded `for`
//! loops with `break`/`continue`, `if let` lookups, map `set`/`get_or`/`delete`, atomics,
//! user functions with value and `inout` parameters, structs and arrays in state and locals,
//! lock and waiter fields, built-ins, every syncord hook, and every kind of state.

use scl_catalogue::Target;
use scl_diagnostics::Files;

/// A small deterministic generator (xorshift64*), so a seed names a program.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
}

const INTS: &[&str] = &["u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64"];

fn signed(t: &str) -> bool {
    t.starts_with('i')
}

fn max_literal(t: &str) -> u64 {
    match t {
        "u8" => 255,
        "i8" => 127,
        "u16" => 65535,
        "i16" => 32767,
        "u32" | "i32" => 1 << 30,
        _ => 1 << 40,
    }
}

/// What a piece of code may touch where it is generated.
struct Scope {
    /// Locals visible here: name and type.
    locals: Vec<(String, String)>,
    /// True inside `should_reorder`/`skip_reorder` (no state writes).
    pure: bool,
    /// True when waiter parameters `s`/`c` exist.
    waiters: bool,
    /// Nesting depth, to keep programs small.
    depth: u32,
    /// Inside a loop (for `break`/`continue`); also keeps branching small for the verifier.
    in_loop: bool,
    next_local: u32,
}

/// State every generated policy declares: name, type (all integers, readable anywhere).
const STATE: &[(&str, &str)] = &[
    ("g8", "u8"),
    ("g16", "i16"),
    ("g32", "u32"),
    ("g64", "i64"),
    ("pl.count", "u64"),
    ("pl.last", "u32"),
    ("pc", "u64"),
    ("pt", "u32"),
    ("arr[1]", "u16"),
    ("limit", "u32"),
];

/// True for an expression the checker folds to a constant: literals, casts and `min`/`max`
/// of constants, and operators on them (no local, state, field or other call).
fn constant(e: &str) -> bool {
    e.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_'))
        .all(|w| w == "as" || w == "min" || w == "max" || INTS.contains(&w))
}

/// `e`, computed at run time when it is a constant: arithmetic on two constants is folded
/// exactly and refused if it overflows (E0218), while the generator means run-time
/// arithmetic, which wraps. `keep_T` is an identity function the checker does not fold.
fn run_time(e: String, t: &str) -> String {
    if constant(&e) {
        format!("keep_{t}({e})")
    } else {
        e
    }
}

struct Gen {
    rng: Rng,
}

impl Gen {
    fn literal(&mut self, t: &str) -> String {
        let v = self.rng.below(max_literal(t).min(1000) + 1);
        if signed(t) && self.rng.chance(30) && v > 0 {
            format!("(-{v})")
        } else {
            v.to_string()
        }
    }

    /// An expression of integer type `t`.
    fn int(&mut self, s: &mut Scope, t: &str, depth: u32) -> String {
        let leaf = depth == 0 || self.rng.chance(35);
        if leaf {
            let locals: Vec<String> = s.locals.iter().filter(|(_, lt)| lt == t).map(|(n, _)| n.clone()).collect();
            let states: Vec<&str> = STATE.iter().filter(|(_, st)| *st == t).map(|(n, _)| *n).collect();
            return match self.rng.below(5) {
                0 if !locals.is_empty() => self.rng.pick(&locals).clone(),
                1 if !states.is_empty() => self.rng.pick(&states).to_string(),
                2 => {
                    let src = *self.rng.pick(&["l.addr", "l.kind", "now()", "cpu()", "tid()", "numa_node()", "tgid()"]);
                    format!("({src} as {t})")
                }
                3 if s.waiters => {
                    let w = *self.rng.pick(&["s", "c"]);
                    let f = *self.rng.pick(&["cpu", "numa_node", "tid", "prio", "wait_start"]);
                    format!("({w}.{f} as {t})")
                }
                _ => self.literal(t),
            };
        }
        let d = depth - 1;
        match self.rng.below(9) {
            0..=3 => {
                let op = *self.rng.pick(&["+", "-", "*", "&", "|", "^"]);
                let mut a = self.int(s, t, d);
                let b = self.int(s, t, d);
                // Arithmetic on two constants is exact and range-checked; one run-time
                // operand makes it wrap like the rest.
                if constant(&b) {
                    a = run_time(a, t);
                }
                format!("({a} {op} {b})")
            }
            4 => {
                let op = *self.rng.pick(&["/", "%"]);
                let mut a = self.int(s, t, d);
                let b = self.int(s, t, d);
                if constant(&b) {
                    a = run_time(a, t);
                }
                // Never a constant zero divisor: `| 1` keeps it odd.
                format!("({a} {op} ({b} | 1))")
            }
            5 => {
                let op = *self.rng.pick(&["<<", ">>"]);
                let a = run_time(self.int(s, t, d), t);
                let sh = self.rng.below(7);
                format!("({a} {op} {sh})")
            }
            6 => {
                let from = *self.rng.pick(INTS);
                let e = self.int(s, from, d);
                format!("({e} as {t})")
            }
            7 => {
                let f = *self.rng.pick(&["min", "max"]);
                let a = self.int(s, t, d);
                let b = self.int(s, t, d);
                format!("{f}({a}, {b})")
            }
            _ => {
                if t == "u32" && self.rng.chance(50) {
                    let e = self.int(s, "u64", d);
                    format!("log2({e})")
                } else {
                    let e = self.int(s, t, d);
                    let k = self.literal(t);
                    format!("twist_{t}({e}, {k})")
                }
            }
        }
    }

    /// A bool expression.
    fn boolean(&mut self, s: &mut Scope, depth: u32) -> String {
        match self.rng.below(if depth == 0 { 2 } else { 5 }) {
            0 | 1 => {
                let t = *self.rng.pick(INTS);
                let op = *self.rng.pick(&["==", "!=", "<", "<=", ">", ">="]);
                let a = self.int(s, t, depth.min(2));
                let b = self.int(s, t, depth.min(2));
                format!("({a} {op} {b})")
            }
            2 => {
                let a = self.boolean(s, depth - 1);
                let b = self.boolean(s, depth - 1);
                format!("({a} && {b})")
            }
            3 => {
                let a = self.boolean(s, depth - 1);
                let b = self.boolean(s, depth - 1);
                format!("({a} || {b})")
            }
            _ => {
                let a = self.boolean(s, depth - 1);
                format!("!{a}")
            }
        }
    }

    fn block(&mut self, s: &mut Scope, out: &mut String, indent: usize, n: u32) {
        let saved = s.locals.len();
        for _ in 0..n {
            self.stmt(s, out, indent);
        }
        s.locals.truncate(saved);
    }

    fn stmt(&mut self, s: &mut Scope, out: &mut String, indent: usize) {
        let pad = " ".repeat(indent);
        let nested = s.depth < 2;
        match self.rng.below(12) {
            0 | 1 => {
                let t = *self.rng.pick(INTS);
                let name = format!("v{}", s.next_local);
                s.next_local += 1;
                let e = self.int(s, t, 2);
                out.push_str(&format!("{pad}let {name}: {t} = {e};\n"));
                s.locals.push((name, t.to_string()));
            }
            2 | 3 if !s.locals.is_empty() => {
                let (name, t) = self.rng.pick(&s.locals).clone();
                let op = *self.rng.pick(&["=", "+=", "-=", "^=", "|=", "&="]);
                let e = self.int(s, &t, 2);
                out.push_str(&format!("{pad}{name} {op} {e};\n"));
            }
            4 if !s.pure => {
                let (name, t) = *self.rng.pick(&STATE[..STATE.len() - 1]);
                let e = self.int(s, t, 2);
                out.push_str(&format!("{pad}{name} += {e};\n"));
            }
            5 if nested && !(s.in_loop && s.depth > 0) => {
                let c = self.boolean(s, 2);
                out.push_str(&format!("{pad}if {c} {{\n"));
                s.depth += 1;
                let n = 1 + self.rng.below(2) as u32;
                self.block(s, out, indent + 4, n);
                if self.rng.chance(50) {
                    let c2 = self.boolean(s, 1);
                    out.push_str(&format!("{pad}}} else if {c2} {{\n"));
                    self.block(s, out, indent + 4, 1);
                }
                if self.rng.chance(50) {
                    out.push_str(&format!("{pad}}} else {{\n"));
                    self.block(s, out, indent + 4, 1);
                }
                s.depth -= 1;
                out.push_str(&format!("{pad}}}\n"));
            }
            6 if nested && !s.in_loop => {
                let n = 1 + self.rng.below(6);
                let var = format!("i{}", s.next_local);
                s.next_local += 1;
                out.push_str(&format!("{pad}for {var} in 0..{n} {{\n"));
                s.depth += 1;
                s.in_loop = true;
                s.locals.push((var.clone(), "u32".into()));
                if self.rng.chance(30) {
                    let c = self.boolean(s, 1);
                    let word = *self.rng.pick(&["break", "continue"]);
                    out.push_str(&format!("{pad}    if {c} {{\n{pad}        {word};\n{pad}    }}\n"));
                }
                let n = 1 + self.rng.below(2) as u32;
                self.block(s, out, indent + 4, n);
                s.locals.retain(|(n, _)| *n != var);
                s.in_loop = false;
                s.depth -= 1;
                out.push_str(&format!("{pad}}}\n"));
            }
            7 => {
                let k = self.int(s, "u32", 1);
                if s.pure {
                    let e = self.int(s, "u64", 1);
                    let name = format!("v{}", s.next_local);
                    s.next_local += 1;
                    out.push_str(&format!("{pad}let {name}: u64 = m.get_or({k}, {e});\n"));
                    s.locals.push((name, "u64".into()));
                } else if nested && !s.in_loop {
                    out.push_str(&format!("{pad}if let hit = m.get({k}) {{\n{pad}    hit += 1;\n{pad}}} else {{\n"));
                    let v = self.int(s, "u64", 1);
                    out.push_str(&format!("{pad}    m.set({k}, {v});\n{pad}}}\n"));
                } else {
                    out.push_str(&format!("{pad}m.delete({k});\n"));
                }
            }
            8 if !s.pure => {
                let (place, t) = *self.rng.pick(&[("g32", "u32"), ("g64", "i64"), ("pl.count", "u64"), ("pc", "u64")]);
                if self.rng.chance(50) {
                    let v = self.int(s, t, 1);
                    out.push_str(&format!("{pad}let old{}: {t} = atomic_add({place}, {v});\n", s.next_local));
                } else {
                    let a = self.int(s, t, 1);
                    let b = self.int(s, t, 1);
                    out.push_str(&format!("{pad}let swapped{}: bool = atomic_cas({place}, {a}, {b});\n", s.next_local));
                }
                s.next_local += 1;
            }
            9 if !s.pure => {
                let v = self.int(s, "u16", 1);
                out.push_str(&format!("{pad}bump(arr[2], {v});\n"));
            }
            10 if !s.pure => {
                let a = self.int(s, "u32", 1);
                out.push_str(&format!("{pad}pl.last = {a};\n{pad}tmp = Pair {{ x: {a}, y: pl.count }};\n"));
            }
            _ => {
                let t = *self.rng.pick(INTS);
                let name = format!("v{}", s.next_local);
                s.next_local += 1;
                out.push_str(&format!("{pad}let {name}: {t} = {};\n", self.literal(t)));
                s.locals.push((name, t.to_string()));
            }
        }
    }

    fn hook(&mut self, name: &str, out: &mut String) {
        let (params, ret, pure, waiters) = match name {
            "should_reorder" => ("l: lock, s: waiter, c: waiter", " -> bool", true, true),
            "skip_reorder" => ("l: lock, s: waiter", " -> bool", true, false),
            "enable_fastpath" => ("l: lock", " -> bool", false, false),
            _ => ("l: lock", "", false, false),
        };
        let mut s = Scope { locals: Vec::new(), pure, waiters, depth: 0, in_loop: false, next_local: 0 };
        if name == "skip_reorder" {
            s.waiters = false;
        }
        out.push_str(&format!("    on {name}({params}){ret} {{\n"));
        let n = if pure { 1 + self.rng.below(2) } else { 2 + self.rng.below(4) } as u32;
        self.block(&mut s, out, 8, n);
        if !ret.is_empty() {
            let c = self.boolean(&mut s, 2);
            out.push_str(&format!("        return {c};\n"));
        }
        out.push_str("    }\n");
    }

    fn policy(&mut self) -> String {
        let mut out = String::from(
            "struct Pl { count: u64, last: u32 }\nstruct Pair { x: u32, y: u64 }\n\
             global g8: u8;\nglobal g16: i16;\nglobal g32: u32;\nglobal g64: i64;\n\
             global arr: [u16; 4];\nglobal tmp: Pair;\nper_lock[64] pl: Pl;\nper_cpu pc: u64;\n\
             per_thread[64] pt: u32;\nconfig limit: u32 = 7;\nmap m: hash<u32, u64>[64];\n\
             fn bump(inout slot: u16, v: u16) {\n    slot += v;\n}\n",
        );
        for t in INTS {
            out.push_str(&format!("fn keep_{t}(x: {t}) -> {t} {{\n    return x;\n}}\n"));
            out.push_str(&format!(
                "fn twist_{t}(a: {t}, b: {t}) -> {t} {{\n    if a > b {{\n        return a - b;\n    }}\n    return (a ^ b) + {};\n}}\n",
                if signed(t) { "1" } else { "2" }
            ));
        }
        let kind = *self.rng.pick(&["spinlock", "mutex", "spinlock, mutex"]);
        out.push_str(&format!("policy gen for {kind} {{\n"));
        let hooks = ["to_acquire", "contended", "acquired", "to_release", "released", "enable_fastpath", "should_reorder", "skip_reorder"];
        let mut any = false;
        for h in hooks {
            if self.rng.chance(45) {
                self.hook(h, &mut out);
                any = true;
            }
        }
        if !any {
            self.hook("acquired", &mut out);
        }
        out.push_str("}\n");
        // Keep every declaration used, so the program is warning-free too.
        out.push_str("// uses: g8 g16 g32 g64 arr tmp pl pc pt limit m\n");
        out
    }
}

#[test]
fn generated_policies_check_compile_load_and_run() {
    let count: u64 = std::env::var("SCL_GEN_PROGRAMS").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    let first: u64 = std::env::var("SCL_GEN_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    let kernel = match scl_loader::check_support() {
        Ok(()) => true,
        Err(e) => {
            eprintln!("SKIPPED (kernel): {e}; generated programs are only checked and compiled");
            false
        }
    };
    let mut loaded = 0u64;
    let mut runs = 0u64;
    for seed in first..first + count {
        let mut g = Gen { rng: Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1) };
        let text = g.policy();
        let mut files = Files::new();
        let id = files.add(format!("gen-{seed}.scl"), text.clone());
        let out = match scl_driver::compile(&mut files, id, Target::Syncord) {
            Ok(o) => o,
            Err(d) => {
                let errors: Vec<_> = d.iter().filter(|d| d.is_error()).collect();
                panic!("seed {seed}: a generated program must check and compile:\n{text}\n{errors:#?}");
            }
        };
        if !kernel {
            continue;
        }
        match scl_loader::load("gen", &out.object, &[]) {
            Ok(mut obj) => {
                loaded += 1;
                let mut ctx = [0u8; 128];
                for (i, b) in ctx.iter_mut().enumerate() {
                    *b = (seed.wrapping_mul(31).wrapping_add(i as u64 * 7) % 251) as u8;
                }
                ctx[8..12].copy_from_slice(&((seed % 2) as u32).to_le_bytes());
                for p in obj.programs() {
                    let mut c = ctx;
                    let r = obj.test_run(&p, &mut c).unwrap_or_else(|e| panic!("seed {seed}: {p} does not run: {e}\n{text}"));
                    let info = scl_catalogue::hook(&p).expect("programs are named after hooks");
                    assert!(!info.returns_bool || r <= 1, "seed {seed}: {p} returned {r}, not a bool");
                    runs += 1;
                }
            }
            Err(e) => panic!("seed {seed}: the kernel verifier rejected a program sclc accepted:\n{text}\n{e}"),
        }
    }
    println!("generated programs: {count} checked and compiled, {loaded} passed the kernel verifier, {runs} hook runs");
}
