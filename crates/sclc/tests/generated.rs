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
//! lock and waiter fields, built-ins, every syncord hook, and every kind of state; map
//! lookups consumed in every position an integer takes (`get_or`) and opened with `if let`
//! (struct fields and array elements written, read and passed `inout`), and nested state
//! arrays (global and per-CPU) read and written at run-time indexes that may be out of
//! range (issue 14). Every program that does not read the clock is also run in the VM
//! (`scl-vm`), which must return what the kernel returned and leave the same maps.

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
    /// Above 0 while a key or an index is made: its leaves are plain.
    plain: u32,
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

    /// A map key: often one of a few, so lookups hit entries set before.
    fn key(&mut self, s: &mut Scope) -> String {
        let k = self.plain_leaf(s, "u32");
        if self.rng.chance(70) { format!("({k} % 4)") } else { k }
    }

    /// A leaf that is no lookup nor indexed element: keys and indexes made of lookups of
    /// lookups would make frames larger than the checker's estimate (which the back end
    /// then refuses with E0342), not programs that test more.
    fn plain_leaf(&mut self, s: &mut Scope, t: &str) -> String {
        s.plain += 1;
        let e = self.int(s, t, 0);
        s.plain -= 1;
        e
    }

    /// An index into an array of `n` elements: mostly in range, sometimes not.
    fn index(&mut self, s: &mut Scope, n: u32) -> String {
        let e = self.plain_leaf(s, "u32");
        // A constant index out of range is a compile error (E0218): those are run-time.
        match self.rng.below(10) {
            0..=5 => format!("({e} % {n})"),
            6 | 7 => format!("({} % {})", run_time(e, "u32"), n + 2),
            _ => run_time(e, "u32"),
        }
    }

    /// An expression of integer type `t`.
    fn int(&mut self, s: &mut Scope, t: &str, depth: u32) -> String {
        let leaf = depth == 0 || self.rng.chance(35);
        if leaf {
            let locals: Vec<String> = s.locals.iter().filter(|(_, lt)| lt == t).map(|(n, _)| n.clone()).collect();
            let states: Vec<&str> = STATE.iter().filter(|(_, st)| *st == t).map(|(n, _)| *n).collect();
            // Lookups and bounds-checked elements cost tens of instructions each: fewer in
            // the reorder hooks (a budget of 1,024) and in loops.
            let rich = s.plain == 0 && self.rng.chance(if s.pure || s.in_loop { 15 } else { 60 });
            return match self.rng.below(9) {
                0 if !locals.is_empty() => self.rng.pick(&locals).clone(),
                // A lookup consumed where any integer is: handled by its default.
                5 if rich => {
                    let k = self.key(s);
                    let d = self.literal("u64");
                    if t == "u64" { format!("m.get_or({k}, {d})") } else { format!("(m.get_or({k}, {d}) as {t})") }
                }
                // An element of a nested state array, its indexes maybe out of range.
                6 if rich => {
                    let (i, j) = (self.index(s, 4), self.index(s, 8));
                    if t == "u16" { format!("grid[{i}][{j}]") } else { format!("(grid[{i}][{j}] as {t})") }
                }
                7 if rich => {
                    let (i, j) = (self.index(s, 4), self.index(s, 16));
                    format!("(pcg[{i}][{j}] as {t})")
                }
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
        match self.rng.below(16) {
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
            // Nested state arrays written at run-time indexes, maybe out of range.
            11 if !s.pure => {
                let op = *self.rng.pick(&["=", "+=", "^=", "|="]);
                if self.rng.chance(50) {
                    let (i, j) = (self.index(s, 4), self.index(s, 8));
                    let v = self.int(s, "u16", 1);
                    out.push_str(&format!("{pad}grid[{i}][{j}] {op} {v};\n"));
                } else {
                    let (i, j) = (self.index(s, 4), self.index(s, 16));
                    let v = self.int(s, "u32", 1);
                    out.push_str(&format!("{pad}pcg[{i}][{j}] {op} {v};\n"));
                }
            }
            12 if !s.pure => {
                let (i, j) = (self.index(s, 4), self.index(s, 8));
                let v = self.int(s, "u16", 1);
                if self.rng.chance(50) {
                    out.push_str(&format!("{pad}bump(grid[{i}][{j}], {v});\n"));
                } else {
                    let (i, j) = (self.index(s, 4), self.index(s, 16));
                    let v = self.int(s, "u32", 1);
                    out.push_str(&format!("{pad}let old{}: u32 = atomic_add(pcg[{i}][{j}], {v});\n", s.next_local));
                    s.next_local += 1;
                }
            }
            // A struct value opened with `if let`: its fields are places for the block.
            13 if !s.pure && nested && !s.in_loop => {
                let k = self.key(s);
                let e = format!("e{}", s.next_local);
                s.next_local += 1;
                out.push_str(&format!("{pad}if let {e} = ms.get({k}) {{\n"));
                s.depth += 1;
                let saved = s.locals.len();
                s.locals.push((format!("{e}.count"), "u64".into()));
                s.locals.push((format!("{e}.last"), "u32".into()));
                let n = 1 + self.rng.below(2) as u32;
                self.block(s, out, indent + 4, n);
                s.locals.truncate(saved);
                let c = self.int(s, "u64", 1);
                let l = self.int(s, "u32", 1);
                out.push_str(&format!("{pad}}} else {{\n{pad}    ms.set({k}, Pl {{ count: {c}, last: {l} }});\n"));
                s.depth -= 1;
                out.push_str(&format!("{pad}}}\n"));
            }
            // An array value opened with `if let`, indexed at run time.
            14 if !s.pure && nested && !s.in_loop => {
                let k = self.key(s);
                let a = format!("a{}", s.next_local);
                s.next_local += 1;
                let (i, j) = (self.index(s, 4), self.index(s, 4));
                let (x, y) = (self.int(s, "u16", 1), self.int(s, "u16", 1));
                out.push_str(&format!("{pad}if let {a} = ma.get({k}) {{\n{pad}    {a}[{i}] += {x};\n{pad}    bump({a}[{j}], {y});\n"));
                if self.rng.chance(50) {
                    out.push_str(&format!("{pad}    g64 += {a}[{j}] as i64;\n"));
                }
                let z = format!("z{}", s.next_local);
                s.next_local += 1;
                out.push_str(&format!("{pad}}} else {{\n{pad}    let {z}: [u16; 4];\n{pad}    {z}[{i}] = {x};\n{pad}    ma.set({k}, {z});\n{pad}}}\n"));
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
        let mut s = Scope { locals: Vec::new(), pure, waiters, depth: 0, in_loop: false, next_local: 0, plain: 0 };
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
             map ms: hash<u32, Pl>[64];\nmap ma: hash<u32, [u16; 4]>[64];\n\
             global grid: [[u16; 8]; 4];\nper_cpu pcg: [[u32; 16]; 4];\n\
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
        out.push_str("// uses: g8 g16 g32 g64 arr tmp pl pc pt limit m ms ma grid pcg\n");
        out
    }
}

#[test]
fn generated_policies_check_compile_load_and_run() {
    let count: u64 = std::env::var("SCL_GEN_PROGRAMS").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    let first: u64 = std::env::var("SCL_GEN_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    let kernel = scl_loader::kernel_tests_can_run_else("generated programs are only checked and compiled");
    let mut loaded = 0u64;
    let mut runs = 0u64;
    let mut compared = 0u64;
    // Per-CPU state is compared on the CPU the test thread is pinned to.
    let cpu = if kernel { pin_to_cpu() } else { 0 };
    let cpus = possible_cpus().max(cpu as u32 + 1);
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
                let mut returned = Vec::new();
                for p in obj.programs() {
                    let mut c = ctx;
                    let r = obj.test_run(&p, &mut c).unwrap_or_else(|e| panic!("seed {seed}: {p} does not run: {e}\n{text}"));
                    let info = scl_catalogue::hook(&p).expect("programs are named after hooks");
                    assert!(!info.returns_bool || r <= 1, "seed {seed}: {p} returned {r}, not a bool");
                    returned.push((p, u64::from(r)));
                    runs += 1;
                }
                // VM == kernel: the same hooks on the same context leave the same results
                // and state. `now()` reads a clock the two cannot share: such programs only
                // run in the kernel.
                if !text.contains("now()") {
                    compare_with_vm(&out, &obj, &ctx, &returned, cpu, cpus, &|| format!("seed {seed}:\n{text}"));
                    compared += 1;
                }
            }
            Err(e) => panic!("seed {seed}: the kernel verifier rejected a program sclc accepted:\n{text}\n{e}"),
        }
    }
    println!("generated programs: {count} checked and compiled, {loaded} passed the kernel verifier, {runs} hook runs, {compared} compared with the VM");
    if kernel {
        assert!(compared * 4 >= loaded, "only {compared} of {loaded} programs were compared with the VM");
    }
}

/// The VM's environment: the clock is never read by compared programs.
struct FixedEnv {
    cpu: u32,
}

impl scl_vm::Env for FixedEnv {
    fn now_ns(&mut self) -> u64 {
        0
    }
    fn random_u32(&mut self) -> u32 {
        0
    }
    fn cpu(&self) -> u32 {
        self.cpu
    }
    fn numa_node(&self) -> u32 {
        0
    }
    fn pid_tgid(&self) -> u64 {
        0
    }
    fn wait_until(&mut self, _deadline_ns: u64) {}
}

/// Runs the program's hooks in the VM as they ran in the kernel, and compares the results
/// and every map: per-CPU maps on the CPU the test runs on.
fn compare_with_vm(
    out: &scl_driver::Output,
    obj: &scl_loader::Loaded,
    ctx: &[u8; 128],
    returned: &[(String, u64)],
    cpu: usize,
    cpus: u32,
    what: &dyn Fn() -> String,
) {
    let mut vm = scl_vm::Vm::with_cpus(out, cpus).unwrap_or_else(|e| panic!("the VM refuses the program: {e:?}\n{}", what()));
    let mut env = FixedEnv { cpu: cpu as u32 };
    for (p, r) in returned {
        let mut c = *ctx;
        let got = vm.run(p, &mut c, &mut env).unwrap_or_else(|e| panic!("`{p}` fails in the VM: {e:?}\n{}", what())).ret;
        assert_eq!(got, *r, "`{p}` returns {got} in the VM, {r} in the kernel\n{}", what());
    }
    for m in out.module.maps.values() {
        if m.kind == scl_catalogue::MapKind::Ringbuf {
            continue;
        }
        let mut kernel_keys = obj.keys(&m.name).expect("kernel keys");
        kernel_keys.sort();
        let mut vm_keys = vm.keys(&m.name);
        vm_keys.sort();
        assert_eq!(kernel_keys, vm_keys, "map `{}` has different keys in the VM\n{}", m.name, what());
        let size = m.value_size as usize;
        for key in &kernel_keys {
            let kv = obj.lookup(&m.name, key).expect("kernel lookup").expect("kernel value");
            let (kv, vv) = if m.kind == scl_catalogue::MapKind::PercpuArray {
                let vv = vm.lookup_percpu(&m.name, key).expect("vm value").swap_remove(cpu);
                (kv[cpu * size..(cpu + 1) * size].to_vec(), vv)
            } else {
                (kv, vm.lookup(&m.name, key).expect("vm value"))
            };
            assert_eq!(kv, vv, "map `{}` key {key:x?} differs between the kernel and the VM\n{}", m.name, what());
        }
    }
}

/// The number of CPUs the kernel's per-CPU maps have a copy for.
fn possible_cpus() -> u32 {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/possible").unwrap_or_default();
    text.trim().split(',').filter_map(|r| r.rsplit('-').next()?.parse::<u32>().ok()).max().map_or(1, |m| m + 1)
}

extern "C" {
    fn sched_getcpu() -> i32;
    fn sched_setaffinity(pid: i32, size: usize, mask: *const u64) -> i32;
}

/// Pins the test thread to the CPU it is on, so that its per-CPU state is one copy.
fn pin_to_cpu() -> usize {
    // SAFETY: plain syscalls; the mask is a valid 1024-bit cpu_set_t for the duration.
    unsafe {
        let cpu = sched_getcpu().max(0) as usize;
        let mut mask = [0u64; 16];
        mask[cpu / 64] |= 1 << (cpu % 64);
        let rc = sched_setaffinity(0, std::mem::size_of_val(&mask), mask.as_ptr());
        assert_eq!(rc, 0, "sched_setaffinity failed");
        cpu
    }
}
