//! Application interfaces generated from a compiled policy (`sclc build --emit
//! c-header|python`): what libbpf's skeletons are for BPF programs, for the applications
//! that inform a pinned policy.
//!
//! Both interfaces describe the policy's *user-visible* maps (state and `map` declarations,
//! the ones `sclc load` pins as `map_MAP`; never the maps sclc adds, which it pins as
//! `hidden_...`) with the key and value types the object's BTF carries: the layouts come
//! from the same HIR struct layouts [`crate::c_type`] writes into BTF, so they are the
//! kernel's. Each interface checks itself: the C header with static assertions on every
//! size and member offset, the Python module with assertions at import; and opening a map
//! checks the pinned map's type, key size and value size against the generated ones, so a
//! deployment of another policy under the same name is refused instead of read with the
//! wrong layout.
//!
//! The pin paths are those of docs/abi.md §4: `/sys/fs/bpf/scl/NAME/map_MAP`.

use crate::Output;
use scl_catalogue::MapKind;
use scl_ir::{MapDecl, MapOrigin};
use scl_sema::hir::{Program, StateStorage};
use scl_sema::ty::Ty;
use std::fmt::Write;

/// Where `sclc load` pins policies (docs/abi.md §4).
pub const PIN_ROOT: &str = "/sys/fs/bpf/scl";

/// A map an application sees, and how its entries are addressed.
struct AppMap<'a> {
    /// Its object name, which is its pin name after `map_`.
    name: &'a str,
    /// How the policy declares it, for comments.
    declared: String,
    /// The BPF map type.
    bpf_type: u32,
    /// The key type (`u32` for arrays; `None` for ring buffers).
    key: Option<&'a Ty>,
    /// The value type (a ring buffer's record type).
    value: &'a Ty,
    /// The kernel's key and value sizes (0 for ring buffers).
    key_size: u32,
    value_size: u32,
    /// Functions take a key (false for `global` and `per_cpu` state, one entry at key 0).
    keyed: bool,
    /// Entries can be deleted (hash maps; array entries always exist).
    deletable: bool,
    /// One value per possible CPU.
    percpu: bool,
    /// A ring buffer: records, not entries.
    ringbuf: bool,
}

/// Why a map of the policy has no typed functions, if it has none.
fn left_out(program: &Program, m: &AppMap) -> Option<String> {
    let zero = |t: &Ty| program.layout(t).size == 0;
    if m.key.is_some_and(zero) || zero(m.value) {
        return Some(format!(
            "map `{}` ({}) is left out: its {} type has no bytes, which C cannot declare portably (the kernel stores one byte); write it with `sclc map`",
            m.name,
            m.declared,
            if m.key.is_some_and(zero) { "key" } else { "value" }
        ));
    }
    None
}

fn app_maps(out: &Output) -> Vec<AppMap<'_>> {
    let program = &out.program;
    out.module
        .maps
        .values()
        .filter_map(|m: &MapDecl| {
            let state = match m.origin {
                MapOrigin::State(s) | MapOrigin::Declared(s) => s,
                MapOrigin::Hidden => return None,
            };
            let st = &program.states[state];
            let kind_def = scl_catalogue::MAP_KINDS.iter().find(|d| d.kind == m.kind)?;
            let ty = |t: &Ty| program.ty_name(t);
            let declared = match &st.storage {
                StateStorage::Global => format!("global {}: {}", st.name, ty(&st.ty)),
                StateStorage::PerCpu => format!("per_cpu {}: {}", st.name, ty(&st.ty)),
                StateStorage::PerLock => format!("per_lock[{}] {}: {}, keyed by lock address", m.max_entries, st.name, ty(&st.ty)),
                StateStorage::PerThread => format!("per_thread[{}] {}: {}, keyed by thread id", m.max_entries, st.name, ty(&st.ty)),
                StateStorage::Map { key: Some(k), .. } if kind_def.type_args == 2 => {
                    format!("map {}: {}<{}, {}>[{}]", st.name, kind_def.name, ty(k), ty(&st.ty), m.max_entries)
                }
                _ => format!("map {}: {}<{}>[{}]", st.name, kind_def.name, ty(&st.ty), m.max_entries),
            };
            let single = matches!(st.storage, StateStorage::Global | StateStorage::PerCpu);
            Some(AppMap {
                name: &m.name,
                declared,
                bpf_type: kind_def.bpf_type,
                key: m.key.as_ref(),
                value: &st.ty,
                key_size: m.key_size,
                value_size: m.value_size,
                keyed: !single,
                deletable: matches!(m.kind, MapKind::Hash | MapKind::LruHash),
                percpu: m.kind == MapKind::PercpuArray,
                ringbuf: m.kind == MapKind::Ringbuf,
            })
        })
        .collect()
}

/// The name prefix of a policy's generated names: the policy's name, else `fallback` (the
/// file's stem), made a C identifier.
pub fn prefix(out: &Output, fallback: &str) -> String {
    let name = out.program.policy.as_ref().map_or(fallback, |p| p.name.as_str());
    let mut p = scl_ir::lower::c_name(name);
    if p.is_empty() || p.starts_with(|c: char| c.is_ascii_digit()) {
        p.insert_str(0, "scl_");
    }
    p
}

/// The members of a struct that hold bytes. A member of an empty struct type takes no room
/// in SCL's layout (nor in BTF); C has no portable empty struct (GNU C gives it size 0, C++
/// size 1), so such members are left out of the generated types.
fn members<'p>(program: &Program, sd: &'p scl_sema::hir::StructDef) -> Vec<&'p scl_sema::hir::FieldInfo> {
    sd.fields.iter().filter(|f| program.layout(&f.ty).size > 0).collect()
}

/// The bytes of a struct whose members all have no bytes: SCL gives such a struct one byte,
/// which the generated types hold as padding.
fn padding_only(program: &Program, sd: &scl_sema::hir::StructDef) -> Option<u32> {
    (members(program, sd).is_empty() && sd.layout.size > 0).then_some(sd.layout.size)
}

/// The struct types the maps use, each after the structs it contains (structs with no
/// bytes are left out: see [`members`]).
fn structs_used(program: &Program, maps: &[AppMap]) -> Vec<scl_sema::hir::StructId> {
    fn visit(program: &Program, t: &Ty, out: &mut Vec<scl_sema::hir::StructId>) {
        match t {
            Ty::Struct(s) => {
                if out.contains(s) || program.structs[*s].layout.size == 0 {
                    return;
                }
                for f in &program.structs[*s].fields {
                    visit(program, &f.ty, out);
                }
                out.push(*s);
            }
            Ty::Array(e, _) => visit(program, e, out),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for m in maps.iter().filter(|m| left_out(program, m).is_none()) {
        if let Some(k) = m.key {
            visit(program, k, &mut out);
        }
        visit(program, m.value, &mut out);
    }
    out
}

const C_KEYWORDS: &[&str] = &[
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else", "enum", "extern", "float", "for", "goto", "if", "inline", "int", "long",
    "register", "restrict", "return", "short", "signed", "sizeof", "static", "struct", "switch", "typedef", "union", "unsigned", "void", "volatile", "while",
    "_Alignas", "_Alignof", "_Atomic", "_Bool", "_Complex", "_Generic", "_Imaginary", "_Noreturn", "_Static_assert", "_Thread_local", "bool", "true", "false",
    // C++, so the header also compiles there.
    "class", "delete", "new", "private", "protected", "public", "template", "this", "throw", "try", "catch", "virtual", "operator", "namespace", "using",
    "friend", "mutable", "explicit", "typename", "export",
];

/// A struct member's name in C: SCL names that are C keywords get a trailing `_`.
fn c_field(name: &str) -> String {
    if C_KEYWORDS.contains(&name) {
        format!("{name}_")
    } else {
        name.to_string()
    }
}

/// `decl` of `name` with type `t` in C.
fn c_decl(program: &Program, prefix: &str, t: &Ty, name: &str) -> String {
    match t {
        Ty::Int(i) => format!("{}int{}_t {name}", if i.signed { "" } else { "u" }, i.bits),
        Ty::Bool => format!("bool {name}"),
        // A stack id of the policy's stack-trace map (negative: not recorded).
        Ty::KStack => format!("int64_t {name}"),
        Ty::Struct(s) => format!("struct {} {name}", c_struct(program, prefix, *s)),
        Ty::Array(e, n) => c_decl(program, prefix, e, &format!("{name}[{n}]")),
        // Not plain data: the checker refuses these as state types.
        Ty::Lock | Ty::Waiter | Ty::Void | Ty::Error => format!("uint64_t {name}"),
    }
}

fn c_struct(program: &Program, prefix: &str, s: scl_sema::hir::StructId) -> String {
    format!("{prefix}_{}", scl_ir::lower::c_name(&program.structs[s].name))
}

fn version_line() -> String {
    format!("sclc {}", env!("CARGO_PKG_VERSION"))
}

/// `--emit c-header`: a self-contained C header for applications (C11 or C++11, libbpf 1.0
/// or later): the key and value types, the pin paths, and per map `static inline` functions
/// to open the pinned map and get, set and delete typed entries. `source` is the policy
/// file as the user named it, for the header's comment.
pub fn c_header(out: &Output, prefix: &str, source: &str) -> String {
    let program = &out.program;
    let maps = app_maps(out);
    let p = prefix;
    let up = p.to_ascii_uppercase();
    let mut s = String::new();
    let any_percpu = maps.iter().any(|m| m.percpu && left_out(program, m).is_none());
    let _ = write!(
        s,
        r#"/* {p}.h: the application interface of SCL policy `{p}`.
 *
 * Generated by `{version}`, `sclc build {source} --emit c-header`; do not edit.
 *
 * Deploy the policy with `sclc load {source} --pin NAME`: its maps are pinned as
 * {root}/NAME/map_MAP (docs/abi.md §4). Open a map with `{p}_MAP_open("NAME")` and
 * read or write it with the functions below; link with libbpf (`cc app.c -lbpf`, package
 * libbpf-dev). Opening a pinned map needs the rights to it (root, or CAP_BPF and access to
 * the pin).
 *
 * Every function returns 0 (or, for `_open`, a file descriptor) on success and a negative
 * errno on failure, as libbpf's do: -ENOENT from `_get` when the key has no entry, -EPROTO
 * from `_open` when the pinned map is not this policy's (its type, key size or value size
 * differ: another policy is deployed under that name, or the policy changed since this
 * header was generated), -EINVAL for a deployment name that `sclc load` would refuse.
 * Close the descriptor with close(2) when done.
 *
 * The layouts are the kernel's (the object's BTF); the static assertions below check them.
 */
#ifndef {up}_SCL_H
#define {up}_SCL_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
"#,
        version = version_line(),
        root = PIN_ROOT,
    );
    if any_percpu {
        s.push_str("#include <bpf/libbpf.h>\n");
    }
    let _ = write!(
        s,
        r#"
#ifdef __cplusplus
#define {up}_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#else
#define {up}_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#endif

/* Where `sclc load` pins policies. */
#define {up}_PIN_ROOT "{root}"
/* The pin path of map MAP of deployment NAME, for a string literal NAME:
 * {up}_PIN("prio", {example}) is "{root}/prio/map_{example}". */
#define {up}_PIN(deployment, map) {up}_PIN_ROOT "/" deployment "/map_" #map

"#,
        root = PIN_ROOT,
        example = maps.first().map_or("MAP", |m| m.name),
    );

    // Types.
    let structs = structs_used(program, &maps);
    if !structs.is_empty() {
        s.push_str("/* The policy's struct types, laid out as in the kernel's copy (C layout, no packing). */\n\n");
    }
    for &id in &structs {
        let sd = &program.structs[id];
        let name = c_struct(program, p, id);
        let _ = writeln!(s, "/* SCL `struct {}`: {} bytes, aligned to {}. */", sd.name, sd.layout.size, sd.layout.align);
        let _ = writeln!(s, "struct {name} {{");
        for f in &sd.fields {
            if program.layout(&f.ty).size == 0 {
                let _ = writeln!(s, "    /* `{}`: {}, no bytes (left out) */", f.name, program.ty_name(&f.ty));
            } else {
                let _ = writeln!(s, "    {}; /* offset {} */", c_decl(program, p, &f.ty, &c_field(&f.name)), f.offset);
            }
        }
        if let Some(n) = padding_only(program, sd) {
            let _ = writeln!(s, "    uint8_t scl_padding_[{n}]; /* SCL gives a struct of empty members {n} byte(s) */");
        }
        let _ = writeln!(s, "}};");
        let _ = writeln!(s, "{up}_STATIC_ASSERT(sizeof(struct {name}) == {}, \"struct {name}: the kernel's size is {}\");", sd.layout.size, sd.layout.size);
        for f in members(program, sd) {
            let field = c_field(&f.name);
            let _ = writeln!(
                s,
                "{up}_STATIC_ASSERT(offsetof(struct {name}, {field}) == {off}, \"struct {name}: `{field}` is at offset {off} in the kernel\");",
                off = f.offset
            );
        }
        s.push('\n');
    }

    // Shared helpers.
    let _ = write!(
        s,
        r#"/* 0 if `deployment` is a name `sclc load --pin` accepts (letters, digits, `_`, `-`, `.`;
 * not starting with `.`; at most 64 bytes), else -EINVAL. */
static inline int {p}_check_deployment(const char *deployment)
{{
    size_t n;
    if (deployment == NULL || deployment[0] == '\0' || deployment[0] == '.')
        return -EINVAL;
    for (n = 0; deployment[n] != '\0'; n++) {{
        char c = deployment[n];
        if (n >= 64 || !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
            return -EINVAL;
    }}
    return 0;
}}

/* Writes the pin path of map `map` of `deployment` into buf (len bytes): 0, -EINVAL for a
 * bad name, -ENAMETOOLONG if it does not fit. */
static inline int {p}_path_of_map(char *buf, size_t len, const char *deployment, const char *map)
{{
    int n, err = {p}_check_deployment(deployment);
    if (err)
        return err;
    n = snprintf(buf, len, "%s/%s/map_%s", {up}_PIN_ROOT, deployment, map);
    if (n < 0 || (size_t)n >= len)
        return -ENAMETOOLONG;
    return 0;
}}

/* Opens a pinned map and checks it is the one this header describes. */
static inline int {p}_open_checked(const char *deployment, const char *map, uint32_t type, uint32_t key_size, uint32_t value_size)
{{
    char path[256];
    struct bpf_map_info info;
    uint32_t info_len = sizeof(info);
    int fd, err = {p}_path_of_map(path, sizeof(path), deployment, map);
    if (err)
        return err;
    fd = bpf_obj_get(path);
    if (fd < 0)
        return -errno;
    memset(&info, 0, sizeof(info));
    if (bpf_obj_get_info_by_fd(fd, &info, &info_len)) {{
        err = -errno;
        close(fd);
        return err;
    }}
    if (info.type != type || info.key_size != key_size || info.value_size != value_size) {{
        close(fd);
        errno = EPROTO;
        return -EPROTO;
    }}
    return fd;
}}

static inline int {p}_errno(int ret)
{{
    return ret < 0 ? -errno : 0;
}}
"#
    );
    if any_percpu {
        let _ = write!(
            s,
            r#"
/* The number of possible CPUs: the length of a per-CPU map's value array. */
static inline int {p}_possible_cpus(void)
{{
    return libbpf_num_possible_cpus();
}}
"#
        );
    }

    // Maps.
    for m in &maps {
        let n = m.name;
        let pm = format!("{p}_{n}");
        let _ = writeln!(s, "\n/* ---- `{}`: pinned as NAME/map_{n} ---- */", m.declared);
        if let Some(why) = left_out(program, m) {
            let _ = writeln!(s, "/* {why}. */");
            continue;
        }
        if m.ringbuf {
            let _ = write!(
                s,
                r#"/* A ring buffer: records, not entries, so there is no get/set/delete. Read it with
 * libbpf's ring_buffer__new({pm}_open(NAME), callback, ctx, NULL) and ring_buffer__poll()
 * (<bpf/libbpf.h>); each record is a `{pm}_record_t`. */
typedef {record};
{up}_STATIC_ASSERT(sizeof({pm}_record_t) == {size}, "{n}: records are {size} bytes");

static inline int {pm}_open(const char *deployment)
{{
    return {p}_open_checked(deployment, "{n}", {bpf_type}, 0, 0);
}}
"#,
                record = c_decl(program, p, m.value, &format!("{pm}_record_t")),
                size = program.layout(m.value).size,
                bpf_type = m.bpf_type,
            );
            continue;
        }
        let key = m.key.expect("maps other than ring buffers have keys");
        let _ = writeln!(s, "typedef {};", c_decl(program, p, key, &format!("{pm}_key_t")));
        let _ = writeln!(s, "typedef {};", c_decl(program, p, m.value, &format!("{pm}_value_t")));
        let _ = writeln!(s, "{up}_STATIC_ASSERT(sizeof({pm}_key_t) == {k}, \"{n}: keys are {k} bytes\");", k = m.key_size);
        let _ = writeln!(s, "{up}_STATIC_ASSERT(sizeof({pm}_value_t) == {v}, \"{n}: values are {v} bytes\");", v = m.value_size);
        let _ = write!(
            s,
            r#"
/* The pin path of `{n}` for `deployment` into buf: see {p}_path_of_map. */
static inline int {pm}_path(char *buf, size_t len, const char *deployment)
{{
    return {p}_path_of_map(buf, len, deployment, "{n}");
}}

/* Opens `{n}` of the policy pinned as `deployment`: a file descriptor, or a negative errno. */
static inline int {pm}_open(const char *deployment)
{{
    return {p}_open_checked(deployment, "{n}", {t}, {k}, {v});
}}
"#,
            t = m.bpf_type,
            k = m.key_size,
            v = m.value_size,
        );
        let stride = m.value_size.div_ceil(8) * 8;
        let vt = if m.percpu {
            let _ = write!(
                s,
                r#"
/* One CPU's copy of a `{n}` value. The kernel lays a per-CPU map's values out one per
 * possible CPU, each rounded up to 8 bytes; an array of {p}_possible_cpus() of these is
 * what `_get` fills and `_set` writes. */
struct {pm}_percpu {{
    {pm}_value_t value;
}} __attribute__((aligned(8)));
{up}_STATIC_ASSERT(sizeof(struct {pm}_percpu) == {stride}, "{n}: per-CPU values are {stride} bytes apart");
"#
            );
            format!("struct {pm}_percpu")
        } else {
            format!("{pm}_value_t")
        };
        let (what, values) = if m.percpu { ("every CPU's copy of the value", "values /* [{p}_possible_cpus()] */".replace("{p}", p)) } else { ("the value", "value".to_string()) };
        let (kparam, karg, kdecl) = if m.keyed {
            (format!("const {pm}_key_t *key, "), "key", String::new())
        } else {
            (String::new(), "&key", format!("    {pm}_key_t key = 0; /* `{}` is the one entry, at key 0 */\n", m.declared.split(':').next().unwrap_or(n)))
        };
        let under = if m.keyed { " under *key" } else { "" };
        let _ = write!(
            s,
            r#"
/* Reads {what}{under}: 0, -ENOENT if there is none. */
static inline int {pm}_get(int fd, {kparam}{vt} *{values})
{{
{kdecl}    return {p}_errno(bpf_map_lookup_elem(fd, {karg}, {vname}));
}}

/* Writes {what}{under} (BPF_ANY: creates or replaces). */
static inline int {pm}_set(int fd, {kparam}const {vt} *{values})
{{
{kdecl}    return {p}_errno(bpf_map_update_elem(fd, {karg}, {vname}, BPF_ANY));
}}
"#,
            vname = if m.percpu { "values" } else { "value" },
        );
        if m.deletable {
            let _ = write!(
                s,
                r#"
/* Removes the entry under *key: 0, -ENOENT if there was none. */
static inline int {pm}_delete(int fd, const {pm}_key_t *key)
{{
    return {p}_errno(bpf_map_delete_elem(fd, key));
}}
"#
            );
        } else {
            let _ = writeln!(s, "\n/* No `_delete`: the entries of an array map always exist; set one to zero instead. */");
        }
    }
    let _ = writeln!(s, "\n#endif /* {up}_SCL_H */");
    s
}

/// The ctypes type of `t`.
fn py_type(program: &Program, t: &Ty) -> String {
    match t {
        Ty::Int(i) => format!("ctypes.c_{}int{}", if i.signed { "" } else { "u" }, i.bits),
        Ty::Bool => "ctypes.c_bool".into(),
        Ty::KStack => "ctypes.c_int64".into(),
        Ty::Struct(s) => scl_ir::lower::c_name(&program.structs[*s].name),
        Ty::Array(e, n) => format!("({} * {n})", py_type(program, e)),
        Ty::Lock | Ty::Waiter | Ty::Void | Ty::Error => "ctypes.c_uint64".into(),
    }
}

/// Python's keywords, which cannot follow a `.`: a struct field with such a name is read
/// with `getattr`.
const PY_KEYWORDS: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del", "elif", "else", "except", "finally", "for", "from",
    "global", "if", "import", "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while", "with", "yield",
];

/// `name` as the attribute part of an expression `X.name` (or `getattr` for keywords):
/// returns the text to put after `X`.
fn py_attr(name: &str) -> String {
    if PY_KEYWORDS.contains(&name) {
        format!("__dict__[{name:?}]")
    } else {
        name.to_string()
    }
}

/// A map's Python class name: `latency_critical` is `LatencyCriticalMap`.
fn py_class(map: &str) -> String {
    let mut out = String::new();
    for part in map.split('_').filter(|p| !p.is_empty()) {
        let mut cs = part.chars();
        if let Some(c) = cs.next() {
            out.extend(c.to_uppercase());
            out.push_str(cs.as_str());
        }
    }
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'M');
    }
    out + "Map"
}

/// `--emit python`: a Python 3 module over `ctypes` and the system's libbpf
/// (`libbpf.so.1`), with no compiled code of its own: a `ctypes.Structure` per struct type
/// (sizes and offsets asserted at import) and a class per map to open the pinned map and
/// get, set and delete entries. Fails when two generated names would clash.
pub fn python(out: &Output, prefix: &str, source: &str) -> Result<String, String> {
    let program = &out.program;
    let maps = app_maps(out);
    let p = prefix;
    let mut names: Vec<(String, String)> = Vec::new();
    let mut s = String::new();
    let first = maps.iter().find(|m| !m.ringbuf && left_out(program, m).is_none());
    let example = match first {
        Some(m) if m.keyed && m.deletable => format!(
            "\n    with {p}.{c}(\"prio\") as m:   # deployed with `sclc load {source} --pin prio`\n        m.set(key, value)\n        print(m.get(key))        # None when there is no entry\n        m.delete(key)\n",
            c = py_class(m.name)
        ),
        Some(m) => format!("\n    with {p}.{c}(\"prio\") as m:   # deployed with `sclc load {source} --pin prio`\n        print(m.get({}))\n", if m.keyed { "0" } else { "" }, c = py_class(m.name)),
        None => String::new(),
    };
    let _ = write!(
        s,
        r#""""{p}: the application interface of SCL policy `{p}`.

Generated by `{version}`, `sclc build {source} --emit python`; do not edit.

Deploy the policy with `sclc load {source} --pin NAME`: its maps are pinned as
{root}/NAME/map_MAP (docs/abi.md §4). Each map has a class here whose constructor
opens the pinned map of a deployment (it needs the rights to it: root, or CAP_BPF and
access to the pin); `get`, `set` and `delete` read and write typed entries through the
system's libbpf (`libbpf.so.1`, package libbpf1) over ctypes:
{example}
Integer keys and values are Python ints, checked against their type's range (a value
that does not fit raises ValueError; nothing is truncated); `bool` is a Python bool;
structs are the ctypes.Structure classes below (ctypes truncates integers assigned to
their fields: assign values that fit); arrays are lists or ctypes arrays. Per-CPU maps
read as a list with one value per possible CPU and write from such a list or one value
for every CPU. Kernel errors raise OSError with the errno; opening a map that is not this
policy's (another policy deployed under the name, or the policy changed since this module
was generated) raises OSError(EPROTO).

The layouts are the kernel's (the object's BTF); the assertions below check them at import.
"""

import ctypes
import errno
import os

PIN_ROOT = "{root}"

_libbpf = ctypes.CDLL("libbpf.so.1", use_errno=True)
_libbpf.bpf_obj_get.argtypes = [ctypes.c_char_p]
_libbpf.bpf_obj_get.restype = ctypes.c_int
_libbpf.bpf_obj_get_info_by_fd.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint32)]
_libbpf.bpf_obj_get_info_by_fd.restype = ctypes.c_int
_libbpf.bpf_map_lookup_elem.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
_libbpf.bpf_map_lookup_elem.restype = ctypes.c_int
_libbpf.bpf_map_update_elem.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint64]
_libbpf.bpf_map_update_elem.restype = ctypes.c_int
_libbpf.bpf_map_delete_elem.argtypes = [ctypes.c_int, ctypes.c_void_p]
_libbpf.bpf_map_delete_elem.restype = ctypes.c_int
_libbpf.libbpf_num_possible_cpus.argtypes = []
_libbpf.libbpf_num_possible_cpus.restype = ctypes.c_int

_BPF_ANY = 0


class _BpfMapInfo(ctypes.Structure):
    # The head of the kernel's struct bpf_map_info: the kernel fills as much as is asked for.
    _fields_ = [
        ("type", ctypes.c_uint32),
        ("id", ctypes.c_uint32),
        ("key_size", ctypes.c_uint32),
        ("value_size", ctypes.c_uint32),
        ("max_entries", ctypes.c_uint32),
        ("map_flags", ctypes.c_uint32),
    ]


_INT_RANGES = {{
    ctypes.c_uint8: ("u8", 0, 2**8 - 1),
    ctypes.c_uint16: ("u16", 0, 2**16 - 1),
    ctypes.c_uint32: ("u32", 0, 2**32 - 1),
    ctypes.c_uint64: ("u64", 0, 2**64 - 1),
    ctypes.c_int8: ("i8", -(2**7), 2**7 - 1),
    ctypes.c_int16: ("i16", -(2**15), 2**15 - 1),
    ctypes.c_int32: ("i32", -(2**31), 2**31 - 1),
    ctypes.c_int64: ("i64", -(2**63), 2**63 - 1),
}}


def check_deployment(deployment):
    """Raises ValueError unless `deployment` is a name `sclc load --pin` accepts."""
    ok = (
        isinstance(deployment, str)
        and 0 < len(deployment) <= 64
        and not deployment.startswith(".")
        and all(c.isascii() and (c.isalnum() or c in "_-.") for c in deployment)
    )
    if not ok:
        raise ValueError(f"{{deployment!r}} is not a valid policy name (use letters, digits, `_`, `-` and `.`)")


def map_path(deployment, map_name):
    """The pin path of map `map_name` of the policy deployed as `deployment`."""
    check_deployment(deployment)
    return f"{{PIN_ROOT}}/{{deployment}}/map_{{map_name}}"


def possible_cpus():
    """The number of possible CPUs: the length of a per-CPU map's value list."""
    n = _libbpf.libbpf_num_possible_cpus()
    if n <= 0:
        raise OSError(-n, f"counting the possible CPUs: {{os.strerror(-n)}}")
    return n


def _checked(ctype, v, what):
    """`v` as something a `ctype` holds or is built from, refusing what does not fit."""
    if isinstance(v, ctype):
        return v
    if ctype is ctypes.c_bool:
        if isinstance(v, bool) or v in (0, 1):
            return bool(v)
        raise ValueError(f"{{what}}: {{v!r}} is not a bool")
    if ctype in _INT_RANGES:
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f"{{what}}: {{v!r}} is not an int")
        name, lo, hi = _INT_RANGES[ctype]
        if not lo <= v <= hi:
            raise ValueError(f"{{what}}: {{v}} does not fit a {{name}} ({{lo}}..={{hi}})")
        return v
    if issubclass(ctype, ctypes.Array) and isinstance(v, (list, tuple)):
        if len(v) > ctype._length_:
            raise ValueError(f"{{what}}: {{len(v)}} elements do not fit {{ctype._length_}}")
        return ctype(*[_checked(ctype._type_, x, f"{{what}}[{{i}}]") for i, x in enumerate(v)])
    raise TypeError(f"{{what}}: expected a {{ctype.__name__}}, got {{v!r}}")


def _c(ctype, v, what):
    v = _checked(ctype, v, what)
    return v if isinstance(v, ctype) else ctype(v)


def _py(v):
    """A scalar as a Python int or bool; structs and arrays as they are."""
    return v.value if isinstance(v, ctypes._SimpleCData) else v


class _Map:
    """A pinned map of the policy; subclasses give its name and types."""

    name = None
    _type = 0
    Key = None
    Value = None
    _value_size = 0
    _percpu = False

    def __init__(self, deployment):
        self.deployment = deployment
        self.path = map_path(deployment, self.name)
        fd = _libbpf.bpf_obj_get(self.path.encode())
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"opening {{self.path}}: {{os.strerror(err)}}", self.path)
        info = _BpfMapInfo()
        size = ctypes.c_uint32(ctypes.sizeof(info))
        if _libbpf.bpf_obj_get_info_by_fd(fd, ctypes.byref(info), ctypes.byref(size)) != 0:
            err = ctypes.get_errno()
            os.close(fd)
            raise OSError(err, f"reading the map info of {{self.path}}: {{os.strerror(err)}}")
        want = (self._type, ctypes.sizeof(self.Key), self._value_size)
        got = (info.type, info.key_size, info.value_size)
        if got != want:
            os.close(fd)
            raise OSError(
                errno.EPROTO,
                f"{{self.path}} is not map `{{self.name}}` of policy `{p}` (type, key and value sizes {{got}}, expected {{want}}): "
                "another policy is deployed under that name, or the policy changed since this module was generated",
            )
        self.fd = fd

    def close(self):
        """Closes the map's file descriptor."""
        if getattr(self, "fd", -1) >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()

    def _fail(self, what):
        err = ctypes.get_errno()
        raise OSError(err, f"{{what}} map `{{self.name}}` of {{self.deployment}}: {{os.strerror(err)}}")

    def _stride(self):
        return (ctypes.sizeof(self.Value) + 7) // 8 * 8

    def _get(self, key):
        k = _c(self.Key, key, "key")
        if self._percpu:
            n = possible_cpus()
            buf = ctypes.create_string_buffer(self._stride() * n)
            if _libbpf.bpf_map_lookup_elem(self.fd, ctypes.byref(k), buf) != 0:
                if ctypes.get_errno() == errno.ENOENT:
                    return None
                self._fail("reading")
            return [_py(self.Value.from_buffer_copy(buf, i * self._stride())) for i in range(n)]
        v = self.Value()
        if _libbpf.bpf_map_lookup_elem(self.fd, ctypes.byref(k), ctypes.byref(v)) != 0:
            if ctypes.get_errno() == errno.ENOENT:
                return None
            self._fail("reading")
        return _py(v)

    def _set(self, key, value):
        k = _c(self.Key, key, "key")
        if self._percpu:
            n = possible_cpus()
            per_cpu = isinstance(value, list) and (
                not issubclass(self.Value, ctypes.Array) or all(isinstance(x, (list, tuple, ctypes.Array)) for x in value)
            )
            values = value if per_cpu else [value] * n
            if len(values) != n:
                raise ValueError(f"a per-CPU value is a list of {{n}} values, one per possible CPU; got {{len(values)}}")
            buf = ctypes.create_string_buffer(self._stride() * n)
            for i, one in enumerate(values):
                v = _c(self.Value, one, f"value for CPU {{i}}")
                ctypes.memmove(ctypes.addressof(buf) + i * self._stride(), ctypes.addressof(v), ctypes.sizeof(v))
            if _libbpf.bpf_map_update_elem(self.fd, ctypes.byref(k), buf, _BPF_ANY) != 0:
                self._fail("writing")
            return
        v = _c(self.Value, value, "value")
        if _libbpf.bpf_map_update_elem(self.fd, ctypes.byref(k), ctypes.byref(v), _BPF_ANY) != 0:
            self._fail("writing")

    def _delete(self, key):
        k = _c(self.Key, key, "key")
        if _libbpf.bpf_map_delete_elem(self.fd, ctypes.byref(k)) != 0:
            if ctypes.get_errno() == errno.ENOENT:
                return False
            self._fail("deleting from")
        return True
"#,
        version = version_line(),
        root = PIN_ROOT,
    );
    for n in
        ["PIN_ROOT", "check_deployment", "map_path", "possible_cpus", "ctypes", "errno", "os", "_libbpf", "_BPF_ANY", "_BpfMapInfo", "_INT_RANGES", "_checked", "_c", "_py", "_Map"]
    {
        names.push((n.into(), "the module's own".into()));
    }

    let mut claim = |name: String, what: String| -> Result<(), String> {
        if let Some((_, other)) = names.iter().find(|(n, _)| n == &name) {
            return Err(format!("the Python module would name both {other} and {what} `{name}`; rename one of them in the policy"));
        }
        names.push((name, what));
        Ok(())
    };

    for id in structs_used(program, &maps) {
        let sd = &program.structs[id];
        let class = scl_ir::lower::c_name(&sd.name);
        claim(class.clone(), format!("`struct {}`", sd.name))?;
        let _ = writeln!(s, "\n\nclass {class}(ctypes.Structure):");
        let _ = writeln!(s, "    \"\"\"SCL `struct {}`: {} bytes, aligned to {}.\"\"\"\n", sd.name, sd.layout.size, sd.layout.align);
        let _ = writeln!(s, "    _fields_ = [");
        for f in members(program, sd) {
            let _ = writeln!(s, "        ({:?}, {}),", f.name, py_type(program, &f.ty));
        }
        if let Some(n) = padding_only(program, sd) {
            let _ = writeln!(s, "        (\"scl_padding_\", ctypes.c_uint8 * {n}),  # SCL gives a struct of empty members {n} byte(s)");
        }
        let _ = writeln!(s, "    ]\n");
        let _ = writeln!(s, "\nassert ctypes.sizeof({class}) == {}, \"{class}: the kernel's size is {}\"", sd.layout.size, sd.layout.size);
        for f in members(program, sd) {
            let _ = writeln!(s, "assert {class}.{attr}.offset == {off}, \"{class}.{name}: the kernel's offset is {off}\"", attr = py_attr(&f.name), name = f.name, off = f.offset);
        }
    }

    for m in &maps {
        let n = m.name;
        if let Some(why) = left_out(program, m) {
            let _ = writeln!(s, "\n\n# {why}.");
            continue;
        }
        if m.ringbuf {
            let _ = writeln!(
                s,
                "\n\n# `{}` is a ring buffer, pinned at map_path(NAME, {n:?}): records, not entries, so it has\n# no class here; read it from C with libbpf's ring_buffer__new() (see the C header).",
                m.declared
            );
            continue;
        }
        let class = py_class(n);
        claim(class.clone(), format!("map `{n}`"))?;
        let key = py_type(program, m.key.expect("maps other than ring buffers have keys"));
        let value = py_type(program, m.value);
        let _ = write!(
            s,
            r#"

class {class}(_Map):
    """`{declared}`, pinned as NAME/map_{n}.

    {class}(deployment) opens it for the policy deployed as `deployment`.{percpu_doc}
    """

    name = {n:?}
    _type = {t}
    Key = {key}
    Value = {value}
    _value_size = {vs}
    _percpu = {percpu}
"#,
            declared = m.declared,
            percpu_doc = if m.percpu { "\n    Values are per CPU: `get` returns a list of possible_cpus() values; `set` takes\n    such a list, or one value for every CPU." } else { "" },
            t = m.bpf_type,
            vs = m.value_size,
            percpu = if m.percpu { "True" } else { "False" },
        );
        if m.keyed {
            let _ = write!(
                s,
                r#"
    def get(self, key):
        """The value under `key`, or None."""
        return self._get(key)

    def set(self, key, value):
        """Writes `value` under `key` (creates or replaces)."""
        self._set(key, value)
"#
            );
        } else {
            let _ = write!(
                s,
                r#"
    def get(self):
        """The value (the map's one entry), or None."""
        return self._get(0)

    def set(self, value):
        """Writes the value."""
        self._set(0, value)
"#
            );
        }
        if m.deletable {
            let _ = write!(
                s,
                r#"
    def delete(self, key):
        """Removes the entry under `key`: True, or False if there was none."""
        return self._delete(key)
"#
            );
        }
        let _ = writeln!(s, "\n\nassert ctypes.sizeof({class}.Key) == {} and ctypes.sizeof({class}.Value) == {}", m.key_size, m.value_size);
    }
    Ok(s)
}
