//! Kernel symbols for people: code addresses as `function+0xoff`, data addresses as the
//! static object they lie in, and which code is the kernel's locking code.
//!
//! Functions come from `/proc/kallsyms` (text symbols, modules' and BPF programs'
//! included); a code address belongs to the nearest function at or below it, as perf and
//! the kernel's own `%pS` assume. Data is stricter: kallsyms gives no sizes, and the
//! nearest data symbol below an address is often the wrong object (a lock inside a
//! `kmalloc`ed structure lands after the last static symbol of its region:
//! `__start_init_stack+0xb740`). So an address is named only when it is provably inside a
//! static object: at its first byte, or within the size the running kernel's BTF
//! (`/sys/kernel/btf/vmlinux`, its `DATASEC` variables) gives for that symbol. Otherwise
//! callers show the address.
//!
//! The locking code is perf's rule (`machine__is_lock_function`): the functions between
//! `__lock_text_start` and `__lock_text_end` (spinlocks, rwlocks and, since Linux 5.19,
//! their slow paths) and between `__sched_text_start` and `__sched_text_end` (mutexes,
//! rwsems, and the scheduler functions they sleep in).

use std::collections::HashMap;

/// Symbols of the running kernel (or of the text given to [`Ksyms::parse`]).
#[derive(Debug, Default)]
pub struct Ksyms {
    /// Text symbols, sorted by address.
    text: Vec<(u64, String)>,
    /// Data symbols (`d`, `b`, `r` and their globals), sorted by address.
    data: Vec<(u64, String)>,
    /// Sizes of static variables, from BTF.
    sizes: HashMap<String, u64>,
    /// `[start, end)` of the lock text and of the sched text, if kallsyms has them.
    lock_ranges: Vec<(u64, u64)>,
    /// `[start, end)` of the sched text alone.
    sched_range: Option<(u64, u64)>,
}

impl Ksyms {
    /// Reads `/proc/kallsyms` and the sizes of `/sys/kernel/btf/vmlinux`'s variables. A
    /// file that cannot be read gives no symbols of that kind (then addresses are shown).
    pub fn load() -> Ksyms {
        let kallsyms = std::fs::read_to_string("/proc/kallsyms").unwrap_or_default();
        let sizes = std::fs::read("/sys/kernel/btf/vmlinux").ok().and_then(|b| crate::btf::Btf::parse(b).ok()).map(|b| b.var_sizes()).unwrap_or_default();
        Ksyms::parse(&kallsyms, sizes)
    }

    /// Symbols from the text of a `/proc/kallsyms` and the sizes of static variables.
    pub fn parse(kallsyms: &str, sizes: HashMap<String, u64>) -> Ksyms {
        let mut text = Vec::new();
        let mut data = Vec::new();
        let mut marks: HashMap<&str, u64> = HashMap::new();
        for line in kallsyms.lines() {
            let mut parts = line.split_whitespace();
            let (Some(addr), Some(kind), Some(name)) = (parts.next(), parts.next(), parts.next()) else { continue };
            let Ok(addr) = u64::from_str_radix(addr, 16) else { continue };
            if addr == 0 {
                continue;
            }
            match kind {
                "t" | "T" | "w" | "W" => {
                    if matches!(name, "__lock_text_start" | "__lock_text_end" | "__sched_text_start" | "__sched_text_end") {
                        marks.insert(name, addr);
                    }
                    text.push((addr, name.to_string()));
                }
                "d" | "D" | "b" | "B" | "r" | "R" => data.push((addr, name.to_string())),
                _ => {}
            }
        }
        let mut lock_ranges = Vec::new();
        for (s, e) in [("__lock_text_start", "__lock_text_end"), ("__sched_text_start", "__sched_text_end")] {
            if let (Some(&a), Some(&b)) = (marks.get(s), marks.get(e)) {
                lock_ranges.push((a, b));
            }
        }
        text.sort();
        data.sort();
        let sched_range = marks.get("__sched_text_start").zip(marks.get("__sched_text_end")).map(|(a, b)| (*a, *b));
        Ksyms { text, data, sizes, lock_ranges, sched_range }
    }

    /// True when kallsyms had functions (it shows zeros to readers without the right).
    pub fn has_text(&self) -> bool {
        !self.text.is_empty()
    }

    /// The function `addr` lies in and the offset into it.
    pub fn function(&self, addr: u64) -> Option<(&str, u64)> {
        let i = self.text.partition_point(|(a, _)| *a <= addr);
        let (a, name) = self.text.get(i.checked_sub(1)?)?;
        Some((name.as_str(), addr - a))
    }

    /// `function+0xoff` (as the kernel's `%pS` prints it), or the address in hex.
    pub fn code(&self, addr: u64) -> String {
        match self.function(addr) {
            Some((name, 0)) => name.to_string(),
            Some((name, off)) => format!("{name}+{off:#x}"),
            None => format!("{addr:#x}"),
        }
    }

    /// True if `addr` is in the kernel's locking code (perf's rule, above).
    pub fn is_lock_function(&self, addr: u64) -> bool {
        self.lock_ranges.iter().any(|(a, b)| *a <= addr && addr < *b)
    }

    /// True if `addr` is in the sched text (mutex and rwsem slow paths, the scheduler).
    pub fn is_sched_function(&self, addr: u64) -> bool {
        self.sched_range.is_some_and(|(a, b)| a <= addr && addr < b)
    }

    /// `name` or `name+0xoff` for an address provably inside a static object: at a data
    /// symbol, or inside the size BTF gives that symbol. `None` otherwise.
    pub fn data(&self, addr: u64) -> Option<String> {
        let i = self.data.partition_point(|(a, _)| *a <= addr);
        let (a, name) = self.data.get(i.checked_sub(1)?)?;
        let off = addr - a;
        if off == 0 {
            return Some(name.clone());
        }
        let size = *self.sizes.get(name)?;
        (off < size).then(|| format!("{name}+{off:#x}"))
    }
}

/// Why a name does not give one static lock's address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LockSymbolError {
    /// `/proc/kallsyms` could not be read.
    Unreadable(String),
    /// No data symbol (`d`, `D`, `b`, `B`) has that name.
    NotFound,
    /// kallsyms shows zeros for it: the reader lacks the right (`kernel.kptr_restrict`).
    Hidden,
    /// Several data symbols have that name (file-local statics of different files).
    Ambiguous(usize),
}

impl std::fmt::Display for LockSymbolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockSymbolError::Unreadable(e) => write!(f, "cannot read /proc/kallsyms: {e}"),
            LockSymbolError::NotFound => f.write_str("no kernel data symbol of that name in /proc/kallsyms"),
            LockSymbolError::Hidden => f.write_str("/proc/kallsyms hides addresses from this user (kernel.kptr_restrict)"),
            LockSymbolError::Ambiguous(n) => write!(f, "{n} kernel data symbols have that name"),
        }
    }
}

/// The address of the static lock `name` in the text of a `/proc/kallsyms`: the one data
/// symbol (`d`, `D`, `b`, `B`; modules' too) of that name. A lock is data, so a function of
/// the same name does not count; two statics of one name (in different files) are refused,
/// not guessed between. The one resolver of `sclc load --lock`, `sclc run --lock` and
/// `sclc record --lock`.
pub fn lock_symbol(kallsyms: &str, name: &str) -> Result<u64, LockSymbolError> {
    let found: Vec<u64> = kallsyms
        .lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let addr = u64::from_str_radix(parts.next()?, 16).ok()?;
            let kind = parts.next()?;
            (parts.next()? == name && matches!(kind, "d" | "D" | "b" | "B")).then_some(addr)
        })
        .collect();
    match found[..] {
        [] => Err(LockSymbolError::NotFound),
        [0, ..] => Err(LockSymbolError::Hidden),
        [a] => Ok(a),
        _ => Err(LockSymbolError::Ambiguous(found.len())),
    }
}

/// [`lock_symbol`] in the running kernel's `/proc/kallsyms`.
pub fn find_lock(name: &str) -> Result<u64, LockSymbolError> {
    let text = std::fs::read_to_string("/proc/kallsyms").map_err(|e| LockSymbolError::Unreadable(e.to_string()))?;
    lock_symbol(&text, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lock's symbol is its one data symbol: functions do not count, hidden addresses and
    /// names two statics share are refused.
    #[test]
    fn lock_symbols_resolve_to_one_data_symbol() {
        let text = "ffffffff82000000 D static_lock\nffffffff81000000 T static_lock\n\
                    ffffffff82000100 b twice\nffffffff82000200 b twice\n\
                    ffffffffc0002000 d mod_lock\t[scl_storm]\n0000000000000000 D hidden_lock\n\
                    ffffffff81001000 T do_work\n";
        let cases: &[(&str, Result<u64, LockSymbolError>)] = &[
            ("static_lock", Ok(0xffff_ffff_8200_0000)),
            ("mod_lock", Ok(0xffff_ffff_c000_2000)),
            ("twice", Err(LockSymbolError::Ambiguous(2))),
            ("hidden_lock", Err(LockSymbolError::Hidden)),
            ("do_work", Err(LockSymbolError::NotFound)),
            ("nothing", Err(LockSymbolError::NotFound)),
            ("", Err(LockSymbolError::NotFound)),
        ];
        for (name, want) in cases {
            assert_eq!(&lock_symbol(text, name), want, "{name}");
        }
    }

    const KALLSYMS: &str = "\
ffffffff81000000 T _stext
ffffffff81001000 T do_work
ffffffff81002000 t helper
ffffffff81f00000 T __sched_text_start
ffffffff81f00100 T __mutex_lock
ffffffff81f01000 T __sched_text_end
ffffffff81f02000 T __lock_text_start
ffffffff81f02100 T _raw_spin_lock
ffffffff81f03000 T __lock_text_end
ffffffffc0001000 t bpf_prog_0123456789abcdef_contended\t[bpf]
ffffffff82000000 D static_lock
ffffffff82000040 d table_of_locks
ffffffff82000400 b __start_init_stack
0000000000000000 A fixed_percpu_data
";

    fn ksyms() -> Ksyms {
        Ksyms::parse(KALLSYMS, HashMap::from([("table_of_locks".to_string(), 0x100)]))
    }

    #[test]
    fn code_addresses_name_their_function() {
        let k = ksyms();
        // (address, as printed, in the locking code)
        let cases = [
            (0xffffffff81001000, "do_work", false),
            (0xffffffff81001234, "do_work+0x234", false),
            (0xffffffff81002010, "helper+0x10", false),
            (0xffffffff81f00120, "__mutex_lock+0x20", true),
            (0xffffffff81f02104, "_raw_spin_lock+0x4", true),
            (0xffffffff81f03000, "__lock_text_end", false),
            (0xffffffffc0001010, "bpf_prog_0123456789abcdef_contended+0x10", false),
            (0xffff000000000000, "0xffff000000000000", false),
        ];
        for (addr, want, lock) in cases {
            assert_eq!(k.code(addr), want, "{addr:#x}");
            assert_eq!(k.is_lock_function(addr), lock, "{addr:#x}");
        }
    }

    #[test]
    fn data_addresses_are_named_only_inside_a_known_object() {
        let k = ksyms();
        let cases = [
            (0xffffffff82000000, Some("static_lock")),
            // No size for `static_lock`: past its first byte it may be anything.
            (0xffffffff82000008, None),
            (0xffffffff82000040, Some("table_of_locks")),
            (0xffffffff82000080, Some("table_of_locks+0x40")),
            // Past the size BTF gives.
            (0xffffffff82000140, None),
            // The issue's wrong name: far past a symbol with no size.
            (0xffffffff8200bb40, None),
            (0xffffffff81000000, None),
        ];
        for (addr, want) in cases {
            assert_eq!(k.data(addr).as_deref(), want, "{addr:#x}");
        }
    }
}
