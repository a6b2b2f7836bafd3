//! The key columns of `sclc run`'s tables: what a row is about, decoded from the map's key
//! by its SCL type. A `per_lock` key is a lock; a struct key gives one column per field,
//! with a lock address (a `u64` field named `lock` or `addr`) named as a lock, a `kstack`
//! shown as its caller (and, with `--stacks`, as the whole stack), and a `u32` field named
//! `class` as the lock's type, spelt as perf spells it (`spinlock`, `rwsem:R`, ...).
//!
//! The caller is perf's (`perf lock contention`'s `lock_contention_caller`): the first
//! frame of the stack outside the kernel's locking code ([`Ksyms::is_lock_function`]),
//! counted from the locking code: the frames before it are the tracing machinery that
//! recorded the stack (the BPF program, `bpf_trace_run2`, the tracepoint's glue), which
//! perf skips by number and `kstack()` keeps, as their number varies between kernels.
//!
//! A lock is named only when the name is certain: a static lock by its symbol (inside the
//! object's size, [`Ksyms::data`]); a runqueue lock by its caller, the scheduler function
//! that takes nothing else (perf names these `rq_lock` after the per-CPU `runqueues`).
//! Anything else is its address.

use scl_loader::ksyms::Ksyms;
use scl_sema::hir::Program;
use scl_sema::ty::Ty;

/// What reads stacks and names addresses for the tables.
pub(super) struct Names<'a> {
    /// Kernel symbols.
    pub ksyms: &'a Ksyms,
    /// The loaded policy, to read its stack map.
    pub loaded: &'a scl_loader::Loaded,
    /// Whole stacks for `--stacks`.
    pub stacks: bool,
}

/// A row's key as shown: one value per key column, and the stack lines under the row.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(super) struct Key {
    /// One per column of the table's key.
    pub columns: Vec<String>,
    /// The whole stack, innermost frame first, when asked for and recorded.
    pub stack: Vec<String>,
}

/// The names of the key columns of a map keyed by `ty` (`per_lock`: one, `lock`).
pub(super) fn key_labels(program: &Program, ty: &Ty, per_lock: bool) -> Vec<String> {
    if per_lock {
        return vec!["lock".into()];
    }
    match ty {
        Ty::KStack => vec!["caller".into()],
        Ty::Struct(s) => program.structs[*s].fields.iter().map(|f| label(&f.name, &f.ty)).collect(),
        _ => vec!["key".into()],
    }
}

fn label(field: &str, ty: &Ty) -> String {
    match (field, ty) {
        (_, Ty::KStack) => "caller".into(),
        ("class", Ty::Int(_)) => "type".into(),
        _ => field.into(),
    }
}

/// The key `bytes` of a map keyed by `ty`, decoded into its columns.
pub(super) fn key(program: &Program, ty: &Ty, bytes: &[u8], per_lock: bool, names: &Names) -> Key {
    let mut key = Key::default();
    if per_lock {
        key.columns.push(lock_name(names.ksyms, le(bytes), None, None));
        return key;
    }
    match ty {
        Ty::Struct(s) => {
            let fields = &program.structs[*s].fields;
            // The stack first: a lock is named through its caller.
            let frames = fields
                .iter()
                .find(|f| f.ty == Ty::KStack)
                .and_then(|f| stack(names, le(bytes.get(f.offset as usize..).unwrap_or(&[])) as i64));
            let by = frames.as_deref().and_then(|f| taker(names.ksyms, f));
            let class = fields.iter().find(|f| f.name == "class" && matches!(f.ty, Ty::Int(_))).map(|f| le(bytes.get(f.offset as usize..f.offset as usize + 4).unwrap_or(&[])));
            for f in fields {
                let at = &bytes[(f.offset as usize).min(bytes.len())..];
                let size = program.layout(&f.ty).size as usize;
                let v = le(&at[..size.min(at.len())]);
                key.columns.push(match (&f.ty, f.name.as_str()) {
                    (Ty::KStack, _) => caller_column(names, v as i64, frames.as_deref(), &mut key.stack),
                    (Ty::Int(i), "lock" | "addr") if i.bits == 64 => lock_name(names.ksyms, v, by, class),
                    (Ty::Int(_), "class") => class_name(v),
                    (Ty::Bool, _) => (v != 0).to_string(),
                    _ => v.to_string(),
                });
            }
        }
        Ty::KStack => {
            let value = le(bytes) as i64;
            let frames = stack(names, value);
            key.columns.push(caller_column(names, value, frames.as_deref(), &mut key.stack));
        }
        _ => key.columns.push(le(bytes).to_string()),
    }
    key
}

/// The frames of the stack a `kstack` value names, if it names one the map holds.
fn stack(names: &Names, value: i64) -> Option<Vec<u64>> {
    let id = scl_catalogue::kstack::id(value)?;
    names.loaded.stack(scl_catalogue::kstack::MAP, i64::from(id)).ok().flatten()
}

fn caller_column(names: &Names, value: i64, frames: Option<&[u64]>, stack: &mut Vec<String>) -> String {
    let Some(frames) = frames else {
        return match value {
            // Never set: the policy did not record a stack there.
            0 => "(no stack)".into(),
            // An error of `bpf_get_stackid` (its map was full, or another stack had its hash).
            v if v < 0 => "(stack not recorded)".into(),
            v => format!("(stack {} gone)", v - 1),
        };
    };
    if names.stacks {
        // From the locking code on, without the machinery that recorded the stack.
        let from = frames.iter().position(|&f| !is_machinery(names.ksyms, f)).unwrap_or(0);
        *stack = frames[from..].iter().map(|&f| names.ksyms.code(f)).collect();
    }
    match caller(names.ksyms, frames) {
        Some(f) => names.ksyms.code(f),
        None => "(no caller)".into(),
    }
}

/// The caller in `frames` (innermost first): the first frame outside the locking code
/// after the locking code; with no locking code in the stack (a stack recorded elsewhere
/// than in a wait, or kallsyms without the section markers), the first frame outside the
/// tracing machinery.
pub(super) fn caller(ksyms: &Ksyms, frames: &[u64]) -> Option<u64> {
    match frames.iter().position(|&f| ksyms.is_lock_function(f)) {
        Some(first) => frames[first..].iter().copied().find(|&f| !ksyms.is_lock_function(f)),
        None => frames.iter().copied().find(|&f| !is_machinery(ksyms, f)),
    }
}

/// The function that took the lock itself: the frame right after the innermost run of lock
/// text frames (`_raw_spin_lock`, `down_write_killable`, ...), which may itself be in the
/// sched text (`__schedule` takes its runqueue's lock). Only for naming per-object locks.
fn taker(ksyms: &Ksyms, frames: &[u64]) -> Option<u64> {
    let first = frames.iter().position(|&f| ksyms.is_lock_function(f))?;
    let rest = &frames[first..];
    // The locking code's frames, innermost first: slow paths, then entry points.
    let k = rest.iter().position(|&f| !ksyms.is_lock_function(f)).unwrap_or(rest.len());
    let spin_entry = rest[..k].iter().rposition(|&f| !ksyms.is_sched_function(f));
    match spin_entry {
        // A spinlock's entry point (lock text) is called by the taker, in the sched text or not.
        Some(i) => rest.get(i + 1).copied(),
        None => rest.get(k).copied(),
    }
}

/// The frames `kstack()` records above the policy's own code: its BPF program and the
/// tracepoint's glue.
fn is_machinery(ksyms: &Ksyms, addr: u64) -> bool {
    ksyms.function(addr).is_some_and(|(name, _)| {
        name.starts_with("bpf_prog_")
            || name.starts_with("bpf_trace_run")
            || name.starts_with("__bpf_trace_")
            || name.starts_with("__traceiter_")
            || name.starts_with("trace_contention_")
            || name.starts_with("bpf_trampoline_")
    })
}

/// Well-known per-object locks, by the function that takes them itself and the lock's
/// type: functions that take exactly one lock of that type directly, so a contention there
/// is on that lock (perf names the same locks `rq_lock` and `mmap_lock`, from the per-CPU
/// `runqueues` and from `current->mm`). Each name is followed by the lock's address, as
/// one name covers many objects (one runqueue per CPU, one mm per process).
const PER_OBJECT_LOCKS: &[(&str, &[&str], &str)] = &[
    // kernel/sched/core.c: `rq_lock()` and friends.
    ("rq_lock", &["spinlock"], "raw_spin_rq_lock_nested"),
    ("rq_lock", &["spinlock"], "__schedule"),
    // mm/util.c, mm/vma.c, mm/mmap.c, mm/mprotect.c, mm/memory.c: `mmap_write_lock_killable`,
    // `mmap_read_lock` on the calling process's mm.
    ("mmap_lock", &["rwsem:R", "rwsem:W"], "vm_mmap_pgoff"),
    ("mmap_lock", &["rwsem:R", "rwsem:W"], "__vm_munmap"),
    ("mmap_lock", &["rwsem:R", "rwsem:W"], "lock_mm_and_find_vma"),
    ("mmap_lock", &["rwsem:R", "rwsem:W"], "__do_sys_brk"),
    ("mmap_lock", &["rwsem:R", "rwsem:W"], "do_mprotect_pkey"),
];

/// A lock's name: its static object, a well-known per-object lock by the function that
/// took it (the frame at `taker`) and its type (`class`), or its address.
pub(super) fn lock_name(ksyms: &Ksyms, addr: u64, taker: Option<u64>, class: Option<u64>) -> String {
    if let Some(name) = ksyms.data(addr) {
        return name;
    }
    let by = taker.and_then(|c| ksyms.function(c)).map(|(n, _)| n);
    let ty = class.map(class_name);
    let known = PER_OBJECT_LOCKS.iter().find(|(_, types, f)| by == Some(*f) && ty.as_deref().is_some_and(|t| types.contains(&t)));
    match known {
        Some((name, _, _)) => format!("{name}@{addr:#x}"),
        None => format!("{addr:#x}"),
    }
}

/// The lock types of `lock.class`, as perf prints them.
pub(super) fn class_name(class: u64) -> String {
    scl_catalogue::LOCK_CLASSES.get(class as usize).map_or_else(|| format!("class {class}"), |c| c.to_string())
}

fn le(bytes: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = bytes.len().min(8);
    b[..n].copy_from_slice(&bytes[..n]);
    u64::from_le_bytes(b)
}

/// Merges the rows whose keys read the same (two stacks with one caller, shown without
/// `--stacks`): counts and totals add up, maxima take the larger, histograms add up, and
/// means are worked out again from the merged total and count.
pub(super) fn merge_same_keys(columns: &[String], mut rows: Vec<super::Row>) -> Vec<super::Row> {
    name_alike(&mut rows);
    let mut merged: Vec<super::Row> = Vec::with_capacity(rows.len());
    let mut at: std::collections::HashMap<Key, usize> = std::collections::HashMap::new();
    for row in rows {
        match at.get(&row.0) {
            Some(&i) => {
                let into = &mut merged[i];
                for (c, (a, b)) in columns.iter().zip(into.1.iter_mut().zip(&row.1)) {
                    *a = if c.contains("max") { (*a).max(*b) } else { a.saturating_add(*b) };
                }
                for ((_, a), (_, b)) in into.2.iter_mut().zip(&row.2) {
                    a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
                }
            }
            None => {
                at.insert(row.0.clone(), merged.len());
                merged.push(row);
            }
        }
    }
    let count = columns.iter().position(|c| c == "contentions" || c.ends_with("count"));
    for (mi, c) in columns.iter().enumerate().filter(|(_, c)| c.contains("mean")) {
        let total = columns.iter().position(|t| *t == c.replace("mean", "total"));
        if let (Some(ci), Some(ti)) = (count, total) {
            for r in &mut merged {
                r.1[mi] = r.1[ti].checked_div(r.1[ci]).unwrap_or(0);
            }
        }
    }
    merged
}

/// A lock one row names (`rq_lock@0x...`, through the stack of its wait) is the same lock
/// in the rows that show only its address (other callers took it through functions that
/// say nothing of it): an address names one lock while the table lives.
fn name_alike(rows: &mut [super::Row]) {
    let mut named: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    for r in rows.iter() {
        for c in &r.0.columns {
            if let Some((_, addr)) = c.split_once('@') {
                named.entry(addr.to_string()).or_insert_with(|| c.clone());
            }
        }
    }
    for r in rows.iter_mut() {
        for c in &mut r.0.columns {
            if let Some(name) = named.get(c.as_str()) {
                *c = name.clone();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kernel laid out as 6.x kernels are: the sched text (mutex and rwsem slow paths,
    /// the scheduler), then the lock text (spinlock entry points and slow paths).
    const KALLSYMS: &str = "\
ffffffff81100000 T vm_mmap_pgoff
ffffffff81101000 T anon_pipe_write
ffffffff81102000 T raw_spin_rq_lock_nested
ffffffff81103000 T irqentry_exit_to_user_mode
ffffffff81104000 T bpf_trace_run2
ffffffff81105000 T sched_tick
ffffffff82000000 T __sched_text_start
ffffffff82000100 t __mutex_lock.constprop.0
ffffffff82000200 t rwsem_down_write_slowpath
ffffffff82000300 T down_write_killable
ffffffff82000400 T __schedule
ffffffff82000500 T schedule
ffffffff82001000 T __sched_text_end
ffffffff82001000 T __lock_text_start
ffffffff82001100 T native_queued_spin_lock_slowpath
ffffffff82001200 T _raw_spin_lock
ffffffff82001300 T _raw_spin_lock_nested
ffffffff82002000 T __lock_text_end
ffffffffc0000000 t bpf_prog_f9d380378ae2d3e5_contended\t[bpf]
ffffffff83000000 D jiffies_lock
";

    const PROG: u64 = 0xffffffffc0000010;
    const TRACE: u64 = 0xffffffff81104010;

    fn ksyms() -> Ksyms {
        Ksyms::parse(KALLSYMS, Default::default())
    }

    /// (what the stack is, its frames innermost first, the caller, the lock's name as
    /// taken there with its type)
    #[test]
    fn callers_and_lock_names_follow_perf() {
        let k = ksyms();
        let cases: [(&str, Vec<u64>, &str, &str, &str); 6] = [
            (
                "mmap's rwsem",
                vec![PROG, TRACE, 0xffffffff82000210, 0xffffffff82000320, 0xffffffff81100040],
                "vm_mmap_pgoff+0x40",
                "rwsem:W",
                "mmap_lock@0x1000",
            ),
            ("a pipe's mutex", vec![PROG, TRACE, 0xffffffff82000120, 0xffffffff81101043], "anon_pipe_write+0x43", "mutex", "0x1000"),
            (
                "a runqueue lock in __schedule: the caller is past the sched text",
                vec![PROG, TRACE, 0xffffffff82001110, 0xffffffff82001210, 0xffffffff82000410, 0xffffffff82000510, 0xffffffff81103011],
                "irqentry_exit_to_user_mode+0x11",
                "spinlock",
                "rq_lock@0x1000",
            ),
            (
                "a runqueue lock through raw_spin_rq_lock_nested",
                vec![PROG, TRACE, 0xffffffff82001110, 0xffffffff82001310, 0xffffffff81102011, 0xffffffff81105046],
                "raw_spin_rq_lock_nested+0x11",
                "spinlock",
                "rq_lock@0x1000",
            ),
            (
                "a spinlock the taker says nothing of",
                vec![PROG, TRACE, 0xffffffff82001110, 0xffffffff82001210, 0xffffffff81105046],
                "sched_tick+0x46",
                "spinlock",
                "0x1000",
            ),
            (
                "the right function for the wrong type names nothing",
                vec![PROG, TRACE, 0xffffffff82000120, 0xffffffff81100040],
                "vm_mmap_pgoff+0x40",
                "mutex",
                "0x1000",
            ),
        ];
        for (what, frames, want_caller, class, want_lock) in cases {
            assert_eq!(caller(&k, &frames).map(|f| k.code(f)).as_deref(), Some(want_caller), "{what}");
            let class = scl_catalogue::LOCK_CLASSES.iter().position(|c| *c == class).map(|c| c as u64);
            assert_eq!(lock_name(&k, 0x1000, taker(&k, &frames), class), want_lock, "{what}");
        }
        // A static lock is named by its symbol, whatever the stack.
        assert_eq!(lock_name(&k, 0xffffffff83000000, None, Some(0)), "jiffies_lock");
        // No locking code in the stack: the first frame past the machinery.
        assert_eq!(caller(&k, &[PROG, TRACE, 0xffffffff81105046]), Some(0xffffffff81105046));
    }

    #[test]
    fn classes_read_as_perf_prints_them() {
        let names: Vec<String> = (0..13).map(class_name).collect();
        assert_eq!(
            names,
            [
                "spinlock", "mutex", "rwsem:R", "rwsem:W", "rwlock:R", "rwlock:W", "rt-mutex", "rwlock-rt:R", "rwlock-rt:W", "pcpu-sem:R",
                "pcpu-sem:W", "rwsem", "class 12"
            ]
        );
    }

    fn row(cols: &[&str], vals: &[u64]) -> super::super::Row {
        (Key { columns: cols.iter().map(|c| c.to_string()).collect(), stack: Vec::new() }, vals.to_vec(), vec![("waits".into(), vec![1, 0])])
    }

    #[test]
    fn rows_that_read_the_same_merge_and_a_named_lock_names_its_address_everywhere() {
        let columns: Vec<String> = ["contentions", "wait_total_ns", "wait_max_ns", "wait_mean_ns"].iter().map(|c| c.to_string()).collect();
        let rows = vec![
            row(&["0x10", "f+0x1"], &[2, 20, 15, 10]),
            row(&["0x10", "f+0x1"], &[1, 40, 40, 40]),
            row(&["rq_lock@0x20", "g+0x2"], &[1, 5, 5, 5]),
            row(&["0x20", "h+0x3"], &[3, 30, 12, 10]),
        ];
        let merged = merge_same_keys(&columns, rows);
        assert_eq!(merged.len(), 3);
        assert_eq!(merged[0].1, [3, 60, 40, 20], "counts add, maxima take the larger, the mean is worked out again");
        assert_eq!(merged[0].2[0].1, [2, 0], "histograms add");
        assert_eq!(merged[2].0.columns, ["rq_lock@0x20", "h+0x3"]);
    }
}
