//! Run tests: small policies compiled by sclc, loaded into the running kernel and run
//! through `BPF_PROG_TEST_RUN` on hand-made contexts; their results and the state they
//! leave in their maps are compared with values worked out by hand from
//! `docs/language.md`. These tests are how compiler bugs are found, so an expected value
//! is never copied from what the kernel returned.
//!
//! # Files
//!
//! - `tests/run/*.scl`: a policy whose `//` directive lines say what to do with it.
//! - `tests/run/examples/NAME.run`: directives only, for the shipped policy that the
//!   `// example: examples/NAME.scl` line names (the examples stay free of test lines).
//!
//! `SCL_RUN=word cargo test -p sclc --test run` runs only the files whose name contains
//! `word`; `SCL_RUN_DIR=dir` runs the `.scl` files of another directory (a scratch one for
//! reproducing a bug) instead of `tests/run`.
//!
//! # Directives
//!
//! One per line, `// KEY: ...`, anywhere in the file (by convention at the top). The
//! steps (`run`, `expect`, `put`) are executed in file order on *one* loaded object, so
//! state persists from one run to the next; `set` lines apply before the load.
//!
//! ```text
//! // target: syncord, sim             targets to compile for (default: syncord). For
//! //                                  `stock`, the programs are loaded and attached (they
//! //                                  cannot be test-run); no steps are allowed.
//! // set: max_batch=2                 a config value, written into .rodata before load
//! // put: prio[7] = 3                 writes a map entry from user space (as an app does)
//! // run: HOOK FIELD=V ... => R       runs program HOOK on a fresh zeroed 128-byte context
//! //                                  with the given fields; its r0 must be R (`any`: not
//! //                                  checked; `true`/`false` are 1/0; hooks without a
//! //                                  result return 0)
//! // expect: REF OP RHS               reads state after the steps above
//! ```
//!
//! Context fields (design §5, the 128-byte context of the syncord and sim targets):
//! `lock` (u64 @0), `kind` (u32 @8), `flags` (u32 @12), `reader` and `writer` (bits 0
//! and 1 of flags), `cpu` (@16), `numa_node` (@20), `tid` (@24), `tgid` (@28), and for the
//! waiters `shuffler.F` (@32) and `candidate.F` (@64) with `F` one of `cpu` (+0),
//! `numa_node` (+4), `tid` (+8), `prio` (+12), `wait_start` (u64 +16), `data` (u64 +24) or
//! the name of a `per_waiter` state (its bytes of the data word). `@OFF:SIZE=V` writes
//! any bytes.
//!
//! A REF is `MAP`, `MAP[KEY]` and then any `.field` and `[index]` path into the value:
//! `stats[0x1000].count`, `waits[0x1].buckets[3]`. `global` and `per_cpu` state has no
//! key (the harness uses 0): `total`, `r.field`, `arr[2]` (brackets index the value). Map
//! names are the object's: state `x` is map
//! `x`, a stdlib name `hist::x` is `hist__x`. A struct key is written `{field=V, ...}`. The
//! value read is the scalar at the end of the path, zero- or sign-extended by its type;
//! for per-CPU maps it is the slot of the CPU the test runs on (the test thread is pinned
//! to one CPU). A config name reads `.rodata` as written before the load.
//!
//! OP is `=` (or `==`), `!=`, `<`, `<=`, `>`, `>=`. RHS is a number, another REF, or
//! `none` (with `=` or `!=`: the key is absent). Numbers are decimal, `0x`, `0b`, may
//! have `_`, a leading `-` (two's complement in the field's size) and a time unit (`ns`,
//! `us`, `ms`, `s`), or are `true`/`false`. A `put` value is a number, or `{path=V, ...}`
//! for a struct (unnamed fields zero).
//!
//! The harness skips only when the kernel cannot load BPF at all (`SKIPPED (kernel): ...`).

use scl_catalogue::{MapKind, Target};
use scl_diagnostics::Files;
use scl_sema::hir::{Program, StateStorage};
use scl_sema::ty::Ty;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Skips (loudly) only when the kernel truly cannot load BPF here.
fn kernel_or_skip() -> bool {
    scl_loader::kernel_tests_can_run()
}

extern "C" {
    fn sched_getcpu() -> i32;
    fn sched_setaffinity(pid: i32, size: usize, mask: *const u64) -> i32;
}

/// Pins the calling thread to the CPU it runs on, so per-CPU state is one known slot.
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

// ---------------------------------------------------------------------------------------
// Directives

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn text(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }
}

#[derive(Debug)]
enum Rhs {
    Num(String),
    Ref(String),
    None,
}

#[derive(Debug)]
enum Step {
    Run { hook: String, fields: Vec<(String, String)>, result: Option<String> },
    Expect { lhs: String, op: Op, rhs: Rhs },
    Put { target: String, value: String },
}

#[derive(Debug, Default)]
struct Script {
    targets: Vec<Target>,
    sets: Vec<(String, String)>,
    steps: Vec<(usize, Step)>,
    example: Option<String>,
}

const KEYS: [&str; 6] = ["target", "set", "put", "run", "expect", "example"];

fn parse_script(text: &str) -> Result<Script, String> {
    let mut s = Script::default();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let Some(rest) = line.trim().strip_prefix("//") else { continue };
        let rest = rest.trim();
        let Some((key, body)) = rest.split_once(':') else { continue };
        let key = key.trim();
        if !KEYS.contains(&key) {
            continue;
        }
        // Trailing `# comment` on a directive line.
        let body = body.split(" # ").next().unwrap_or("").trim();
        let err = |m: String| format!("line {line_no}: {m}");
        match key {
            "target" => {
                for t in body.split(',') {
                    s.targets.push(Target::from_name(t.trim()).ok_or_else(|| err(format!("unknown target `{t}`")))?);
                }
            }
            "example" => s.example = Some(body.to_string()),
            "set" => {
                let (n, v) = body.split_once('=').ok_or_else(|| err("`set: NAME=VALUE`".into()))?;
                s.sets.push((n.trim().to_string(), v.trim().to_string()));
            }
            "put" => {
                let (t, v) = body.split_once(" = ").ok_or_else(|| err("`put: MAP[KEY] = VALUE`".into()))?;
                s.steps.push((line_no, Step::Put { target: t.trim().to_string(), value: v.trim().to_string() }));
            }
            "run" => {
                let (call, result) = match body.split_once("=>") {
                    Some((c, r)) => (c.trim(), Some(r.trim().to_string())),
                    None => return Err(err("`run: HOOK FIELD=V ... => RESULT`".into())),
                };
                let mut words = call.split_whitespace();
                let hook = words.next().ok_or_else(|| err("no hook".into()))?.to_string();
                let mut fields = Vec::new();
                for w in words {
                    let (f, v) = w.split_once('=').ok_or_else(|| err(format!("`{w}` is not FIELD=VALUE")))?;
                    fields.push((f.to_string(), v.to_string()));
                }
                let result = result.filter(|r| r != "any");
                s.steps.push((line_no, Step::Run { hook, fields, result }));
            }
            "expect" => {
                let words: Vec<&str> = body.split_whitespace().collect();
                let [lhs, op, rhs] = words[..] else { return Err(err("`expect: REF OP VALUE`, spaces around OP".into())) };
                let op = match op {
                    "=" | "==" => Op::Eq,
                    "!=" => Op::Ne,
                    "<" => Op::Lt,
                    "<=" => Op::Le,
                    ">" => Op::Gt,
                    ">=" => Op::Ge,
                    _ => return Err(err(format!("unknown operator `{op}`"))),
                };
                let rhs = if rhs == "none" {
                    if !matches!(op, Op::Eq | Op::Ne) {
                        return Err(err("`none` only with = or !=".into()));
                    }
                    Rhs::None
                } else if rhs.starts_with(|c: char| c.is_ascii_digit() || c == '-') || rhs == "true" || rhs == "false" {
                    Rhs::Num(rhs.to_string())
                } else {
                    Rhs::Ref(rhs.to_string())
                };
                s.steps.push((line_no, Step::Expect { lhs: lhs.to_string(), op, rhs }));
            }
            _ => unreachable!(),
        }
    }
    if s.targets.is_empty() {
        s.targets.push(Target::Syncord);
    }
    Ok(s)
}

/// A number: decimal, hex, binary, `_`, leading `-`, time units, true/false.
fn number(text: &str) -> Result<i128, String> {
    let t = text.trim();
    match t {
        "true" => return Ok(1),
        "false" => return Ok(0),
        _ => {}
    }
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t),
    };
    let t = t.replace('_', "");
    let (digits, scale) = if let Some(d) = t.strip_suffix("ns") {
        (d.to_string(), 1)
    } else if let Some(d) = t.strip_suffix("us") {
        (d.to_string(), 1_000)
    } else if let Some(d) = t.strip_suffix("ms") {
        (d.to_string(), 1_000_000)
    } else if !t.starts_with("0x") && !t.starts_with("0X") && t.ends_with('s') {
        (t[..t.len() - 1].to_string(), 1_000_000_000)
    } else {
        (t.clone(), 1)
    };
    let v = if let Some(h) = digits.strip_prefix("0x").or_else(|| digits.strip_prefix("0X")) {
        i128::from_str_radix(h, 16)
    } else if let Some(b) = digits.strip_prefix("0b") {
        i128::from_str_radix(b, 2)
    } else {
        digits.parse::<i128>()
    }
    .map_err(|e| format!("bad number `{text}`: {e}"))?;
    let v = v * scale;
    Ok(if neg { -v } else { v })
}

fn le_bytes(v: i128, size: usize) -> Vec<u8> {
    v.to_le_bytes()[..size].to_vec()
}

// ---------------------------------------------------------------------------------------
// Types and paths

/// Size and signedness of a scalar type.
fn scalar(ty: &Ty) -> Option<(usize, bool)> {
    match ty {
        Ty::Int(i) => Some((usize::from(i.bits / 8), i.signed)),
        Ty::Bool => Some((1, false)),
        _ => None,
    }
}

/// Resolves `.f`, `[i]` path segments in `ty`: byte offset and the final type.
fn resolve_path(program: &Program, ty: &Ty, path: &str) -> Result<(usize, Ty), String> {
    let mut ty = ty.clone();
    let mut off = 0usize;
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let name = &r[..end];
            let Ty::Struct(id) = ty else { return Err(format!("`.{name}` on a non-struct in `{path}`")) };
            let sd = &program.structs[id];
            let f = sd.fields.iter().find(|f| f.name == name).ok_or_else(|| format!("no field `{name}` in `{}`", sd.name))?;
            off += f.offset as usize;
            ty = f.ty.clone();
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']').ok_or_else(|| format!("unclosed `[` in `{path}`"))?;
            let i = number(&r[..end])? as usize;
            let Ty::Array(elem, n) = ty else { return Err(format!("`[{i}]` on a non-array in `{path}`")) };
            if i >= n as usize {
                return Err(format!("index {i} out of 0..{n} in `{path}`"));
            }
            off += i * program.layout(&elem).size as usize;
            ty = *elem;
            rest = &r[end + 1..];
        } else {
            return Err(format!("cannot read `{rest}` in `{path}`"));
        }
    }
    Ok((off, ty))
}

/// Encodes a value of `ty`: a number for a scalar, `{path=V, ...}` for a struct.
fn encode(program: &Program, ty: &Ty, text: &str) -> Result<Vec<u8>, String> {
    let size = program.layout(ty).size as usize;
    let text = text.trim();
    if let Some(inner) = text.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
        let mut buf = vec![0u8; size];
        for item in inner.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (p, v) = item.split_once('=').ok_or_else(|| format!("`{item}` is not path=value"))?;
            let (off, fty) = resolve_path(program, ty, &format!(".{}", p.trim()))?;
            let (fsize, _) = scalar(&fty).ok_or_else(|| format!("`{p}` is not a scalar"))?;
            buf[off..off + fsize].copy_from_slice(&le_bytes(number(v)?, fsize));
        }
        return Ok(buf);
    }
    let (s, _) = scalar(ty).ok_or_else(|| format!("a value of this type is written {{field=V, ...}}, not `{text}`"))?;
    Ok(le_bytes(number(text)?, s))
}

fn decode(bytes: &[u8], signed: bool) -> i128 {
    let mut buf = [0u8; 16];
    buf[..bytes.len()].copy_from_slice(bytes);
    if signed && bytes.last().is_some_and(|b| b & 0x80 != 0) {
        for b in &mut buf[bytes.len()..] {
            *b = 0xff;
        }
    }
    i128::from_le_bytes(buf)
}

// ---------------------------------------------------------------------------------------
// Running a script

struct Env<'a> {
    out: &'a scl_driver::Output,
    obj: scl_loader::Loaded,
    cpu: usize,
    rodata: Vec<(usize, Vec<u8>)>,
}

/// `NAME[KEY]rest` → (name, key text, rest).
fn split_ref(r: &str) -> (&str, Option<&str>, &str) {
    let name_end = r.find(['[', '.']).unwrap_or(r.len());
    let name = &r[..name_end];
    let rest = &r[name_end..];
    if let Some(after) = rest.strip_prefix('[') {
        // The key ends at the matching `]` (a struct key has no nested brackets).
        if let Some(end) = after.find(']') {
            return (name, Some(&after[..end]), &after[end + 1..]);
        }
    }
    (name, None, rest)
}

impl Env<'_> {
    fn program(&self) -> &Program {
        &self.out.program
    }

    /// True for the map of a `global` or `per_cpu` state (one entry, key 0).
    fn keyless(&self, map: &str) -> bool {
        self.program()
            .states
            .values()
            .any(|s| s.name.replace("::", "__") == map && matches!(s.storage, StateStorage::Global | StateStorage::PerCpu))
    }

    /// Whether the key of a REF is in its map.
    fn present(&self, r: &str) -> Result<bool, String> {
        let (name, key, _) = split_ref(r);
        let map = self.out.module.maps.values().find(|m| m.name == name).ok_or_else(|| format!("no map `{name}`"))?;
        let key_bytes = encode(self.program(), map.key.as_ref().ok_or("no key")?, key.unwrap_or("0"))?;
        Ok(self.obj.lookup(name, &key_bytes).map_err(|e| e.to_string())?.is_some())
    }

    /// The keys of a REF's map, in hex, for failure messages.
    fn dump_keys(&self, r: &str) -> String {
        let (name, _, _) = split_ref(r);
        let keys = self.obj.keys(name).unwrap_or_default();
        let hex: Vec<String> = keys.iter().take(8).map(|k| k.iter().map(|b| format!("{b:02x}")).collect()).collect();
        format!("[{}]{}", hex.join(", "), if keys.len() > 8 { " ..." } else { "" })
    }

    /// Reads a REF: `None` when the key is absent.
    fn read(&self, r: &str) -> Result<Option<i128>, String> {
        let (name, key, path) = split_ref(r);
        if let Some(var) = self.out.module.rodata.iter().find(|v| v.name == name) {
            if key.is_some() || !path.is_empty() {
                return Err(format!("config `{name}` has no key or path"));
            }
            let mut bytes = le_bytes(var.default as i128, var.size as usize);
            for (off, v) in &self.rodata {
                if *off == var.offset as usize {
                    bytes = v.clone();
                }
            }
            let (_, signed) = scalar(&var.ty).unwrap_or((0, false));
            return Ok(Some(decode(&bytes, signed)));
        }
        let map = self.out.module.maps.values().find(|m| m.name == name).ok_or_else(|| format!("no map or config `{name}`"))?;
        let key_ty = map.key.clone().ok_or_else(|| format!("map `{name}` has no key"))?;
        // `global` and `per_cpu` state has no key to write: `x[3]` indexes the value.
        let (key, path) = if self.keyless(name) { (None, &r[name.len()..]) } else { (key, path) };
        let key_bytes = encode(self.program(), &key_ty, key.unwrap_or("0"))?;
        let vty = map.value.clone().ok_or_else(|| format!("map `{name}` has no value"))?;
        let (off, fty) = resolve_path(self.program(), &vty, path)?;
        let (size, signed) = scalar(&fty).ok_or_else(|| format!("`{r}` is not a scalar: add a .field or [index]"))?;
        let Some(value) = self.obj.lookup(name, &key_bytes).map_err(|e| e.to_string())? else { return Ok(None) };
        let base = if map.kind == MapKind::PercpuArray { self.cpu * map.value_size as usize } else { 0 };
        let bytes = value.get(base + off..base + off + size).ok_or_else(|| format!("`{r}`: value too short"))?;
        Ok(Some(decode(bytes, signed)))
    }

    fn put(&self, target: &str, value: &str) -> Result<(), String> {
        let (name, key, path) = split_ref(target);
        if !path.is_empty() || (self.keyless(name) && key.is_some()) {
            return Err("put writes a whole value: `put: MAP[KEY] = VALUE`, or `put: NAME = VALUE` for global state".into());
        }
        let map = self.out.module.maps.values().find(|m| m.name == name).ok_or_else(|| format!("no map `{name}`"))?;
        let key = if self.keyless(name) { None } else { key };
        let key_bytes = encode(self.program(), map.key.as_ref().ok_or("no key")?, key.unwrap_or("0"))?;
        let val = encode(self.program(), map.value.as_ref().ok_or("no value")?, value)?;
        self.obj.update(name, &key_bytes, &val).map_err(|e| e.to_string())
    }

    fn context(&self, fields: &[(String, String)]) -> Result<[u8; 128], String> {
        let mut ctx = [0u8; 128];
        let mut write = |off: usize, size: usize, v: i128| ctx[off..off + size].copy_from_slice(&le_bytes(v, size));
        let mut flags: u32 = 0;
        let mut flags_set = false;
        for (f, v) in fields {
            let n = number(v)?;
            if let Some(raw) = f.strip_prefix('@') {
                let (o, s) = raw.split_once(':').ok_or_else(|| format!("`{f}`: @OFFSET:SIZE"))?;
                write(number(o)? as usize, number(s)? as usize, n);
                continue;
            }
            let (off, size) = match f.as_str() {
                "lock" => (0, 8),
                "kind" => (8, 4),
                "flags" => {
                    flags = n as u32;
                    flags_set = true;
                    continue;
                }
                "reader" | "writer" => {
                    let bit = if f == "reader" { 1 } else { 2 };
                    if n != 0 {
                        flags |= bit;
                    } else {
                        flags &= !bit;
                    }
                    flags_set = true;
                    continue;
                }
                "cpu" => (16, 4),
                "numa_node" => (20, 4),
                "tid" => (24, 4),
                "tgid" => (28, 4),
                other => {
                    let (w, field) = other.split_once('.').ok_or_else(|| format!("unknown context field `{other}`"))?;
                    let base = match w {
                        "shuffler" => 32,
                        "candidate" => 64,
                        _ => return Err(format!("unknown context field `{other}`")),
                    };
                    let (o, s) = match field {
                        "cpu" => (0, 4),
                        "numa_node" => (4, 4),
                        "tid" => (8, 4),
                        "prio" => (12, 4),
                        "wait_start" => (16, 8),
                        "data" => (24, 8),
                        pw => {
                            let st = self
                                .program()
                                .states
                                .values()
                                .find(|s| s.name == pw && matches!(s.storage, StateStorage::PerWaiter { .. }))
                                .ok_or_else(|| format!("no waiter field or per_waiter state `{pw}`"))?;
                            let StateStorage::PerWaiter { offset } = st.storage else { unreachable!() };
                            (24 + offset as usize, self.program().layout(&st.ty).size as usize)
                        }
                    };
                    (base + o, s)
                }
            };
            write(off, size, n);
        }
        if flags_set {
            write(12, 4, i128::from(flags));
        }
        Ok(ctx)
    }

    fn step(&mut self, step: &Step) -> Result<(), String> {
        match step {
            Step::Put { target, value } => self.put(target, value),
            Step::Run { hook, fields, result } => {
                let mut ctx = self.context(fields)?;
                let r0 = self.obj.test_run(hook, &mut ctx).map_err(|e| e.to_string())?;
                if let Some(want) = result {
                    let want = number(want)? as u32;
                    if r0 != want {
                        return Err(format!("`{hook}` returned {r0}, expected {want}"));
                    }
                }
                Ok(())
            }
            Step::Expect { lhs, op, rhs } => {
                if matches!(rhs, Rhs::None) {
                    let present = self.present(lhs)?;
                    if present == (*op == Op::Eq) {
                        let keys = self.dump_keys(lhs);
                        return Err(format!("expected {lhs} {} none, but it is {}; keys: {keys}", op.text(), if present { "present" } else { "absent" }));
                    }
                    return Ok(());
                }
                let got = self.read(lhs)?;
                let want = match rhs {
                    Rhs::None => None,
                    Rhs::Num(n) => {
                        // A negative number compares as the field's type reads it.
                        Some(number(n)?)
                    }
                    Rhs::Ref(r) => Some(self.read(r)?.ok_or_else(|| format!("`{r}` is absent"))?),
                };
                let ok = match (got, want, op) {
                    (g, None, Op::Eq) => g.is_none(),
                    (g, None, _) => g.is_some(),
                    (None, Some(_), _) => false,
                    (Some(g), Some(w), op) => match op {
                        Op::Eq => g == w,
                        Op::Ne => g != w,
                        Op::Lt => g < w,
                        Op::Le => g <= w,
                        Op::Gt => g > w,
                        Op::Ge => g >= w,
                    },
                };
                if ok {
                    Ok(())
                } else {
                    // Hex only for non-negative values: a negative i128 in hex is 32 digits.
                    let show = |v: Option<i128>| {
                        v.map_or("none".to_string(), |v| if v < 0 { v.to_string() } else { format!("{v} ({v:#x})") })
                    };
                    let rhs_text = match rhs {
                        Rhs::None => "none".to_string(),
                        Rhs::Num(n) => n.clone(),
                        Rhs::Ref(r) => format!("{r} = {}", show(want)),
                    };
                    let keys = if got.is_none() { format!("; keys in the map: {}", self.dump_keys(lhs)) } else { String::new() };
                    Err(format!("expected {lhs} {} {rhs_text}, but {lhs} = {}{keys}", op.text(), show(got)))
                }
            }
        }
    }
}

/// Compiles `text` for each of the script's targets, loads it and runs the steps.
fn run_script(name: &str, text: &str, script: &Script, cpu: usize) -> Result<usize, String> {
    let mut runs = 0;
    for &target in &script.targets {
        let mut files = Files::new();
        let id = files.add(name.to_string(), text.to_string());
        let out = match scl_driver::compile(&mut files, id, target) {
            Ok(o) => o,
            Err(diags) => {
                let mut s = Vec::new();
                for d in &diags {
                    let _ = scl_diagnostics::render::short(&mut s, &files, d, false);
                }
                return Err(format!("({target}) does not compile:\n{}", String::from_utf8_lossy(&s)));
            }
        };
        let mut rodata = Vec::new();
        for (n, v) in &script.sets {
            let var = out.module.rodata.iter().find(|r| &r.name == n).ok_or_else(|| format!("no config `{n}`"))?;
            rodata.push((var.offset as usize, le_bytes(number(v)?, var.size as usize)));
        }
        let obj = scl_loader::load("t", &out.object, &rodata).map_err(|e| format!("({target}) {e}"))?;
        let mut env = Env { out: &out, obj, cpu, rodata };
        if target == Target::Stock {
            if !script.steps.is_empty() {
                return Err("stock programs cannot be test-run: no run/expect/put steps".into());
            }
            let n = env.obj.attach_all().map_err(|e| format!("(stock) {e}"))?;
            let want = out.module.programs.len();
            if n != want {
                return Err(format!("(stock) attached {n} programs of {want}"));
            }
            continue;
        }
        for (line, step) in &script.steps {
            env.step(step).map_err(|e| format!("({target}) line {line}: {e}"))?;
            if matches!(step, Step::Run { .. }) {
                runs += 1;
            }
        }
    }
    Ok(runs)
}

fn cases(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let filter = std::env::var("SCL_RUN").unwrap_or_default();
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().contains(&filter)))
        .collect();
    v.sort();
    v
}

fn report(kind: &str, passed: usize, runs: usize, failures: Vec<String>) {
    println!("{kind}: {passed} files passed, {runs} hook runs");
    assert!(failures.is_empty(), "{} failing:\n\n{}", failures.len(), failures.join("\n\n"));
}

#[test]
fn run_tests_give_the_expected_results_in_the_kernel() {
    if !kernel_or_skip() {
        return;
    }
    let cpu = pin_to_cpu();
    let dir = std::env::var("SCL_RUN_DIR").map_or_else(|_| root().join("tests/run"), PathBuf::from);
    let files = cases(&dir, "scl");
    if std::env::var("SCL_RUN").is_err() && std::env::var("SCL_RUN_DIR").is_err() {
        assert!(files.len() >= 40, "issue 4 asks for at least 40 run tests, found {}", files.len());
    }
    let (mut passed, mut runs, mut failures) = (0, 0, Vec::new());
    for path in files {
        let name = path.strip_prefix(root()).map_or_else(|_| path.display().to_string(), |p| p.display().to_string());
        let text = std::fs::read_to_string(&path).expect("readable");
        let result = parse_script(&text).and_then(|s| {
            let is_stock = s.targets.contains(&Target::Stock);
            if s.steps.iter().all(|(_, st)| !matches!(st, Step::Run { .. })) && !is_stock {
                return Err("no `run:` lines".into());
            }
            run_script(&name, &text, &s, cpu)
        });
        match result {
            Ok(n) => {
                passed += 1;
                runs += n;
            }
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    report("run tests", passed, runs, failures);
}

#[test]
fn examples_give_the_expected_results_in_the_kernel() {
    if !kernel_or_skip() {
        return;
    }
    let cpu = pin_to_cpu();
    let dir = std::env::var("SCL_RUN_DIR").map_or_else(|_| root().join("tests/run"), PathBuf::from).join("examples");
    if !dir.is_dir() {
        println!("no {}", dir.display());
        return;
    }
    let (mut passed, mut runs, mut failures) = (0, 0, Vec::new());
    for path in cases(&dir, "run") {
        let name = path.strip_prefix(root()).map_or_else(|_| path.display().to_string(), |p| p.display().to_string());
        let script_text = std::fs::read_to_string(&path).expect("readable");
        let result = parse_script(&script_text).and_then(|s| {
            let example = s.example.clone().ok_or("no `// example: examples/NAME.scl` line")?;
            let text = std::fs::read_to_string(root().join(&example)).map_err(|e| format!("{example}: {e}"))?;
            let n = s.steps.iter().filter(|(_, st)| matches!(st, Step::Run { .. })).count();
            if n < 3 {
                return Err(format!("{n} runs: each example is run on at least 3 contexts"));
            }
            run_script(&example, &text, &s, cpu)
        });
        match result {
            Ok(n) => {
                passed += 1;
                runs += n;
            }
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    report("examples", passed, runs, failures);
}

#[test]
fn directive_parsing() {
    assert_eq!(number("0x10").unwrap(), 16);
    assert_eq!(number("1_000").unwrap(), 1000);
    assert_eq!(number("-3").unwrap(), -3);
    assert_eq!(number("2us").unwrap(), 2000);
    assert_eq!(number("1s").unwrap(), 1_000_000_000);
    assert_eq!(number("0b101").unwrap(), 5);
    assert_eq!(number("true").unwrap(), 1);
    assert_eq!(le_bytes(-1, 2), vec![0xff, 0xff]);
    assert_eq!(decode(&[0xfe], true), -2);
    assert_eq!(decode(&[0xfe], false), 254);
    assert_eq!(split_ref("stats[0x10].count"), ("stats", Some("0x10"), ".count"));
    assert_eq!(split_ref("total"), ("total", None, ""));
    assert_eq!(split_ref("k[{a=1, b=2}].x[3]"), ("k", Some("{a=1, b=2}"), ".x[3]"));
    let s = parse_script("// target: syncord, sim\n// set: a=1\n// run: acquired lock=1 cpu=2 => 0\n// expect: x[1] >= y\nfn f() {}\n").unwrap();
    assert_eq!(s.targets, vec![Target::Syncord, Target::Sim]);
    assert_eq!(s.sets.len(), 1);
    assert_eq!(s.steps.len(), 2);
}
