//! The one table of what SCL policies can touch: hooks, built-in functions, map kinds and
//! their methods, and the fields of the `lock` and `waiter` views.
//!
//! Everything that needs to know a hook's signature, a built-in's effects or a field's
//! offset in the context reads it here: the checker, the code generator, `sclc explain`,
//! the language server's hover and `docs/hooks.md` (generated from these tables by
//! [`markdown`] and checked by a test so it never drifts). This crate is data and
//! accessors only; it must not contain checking or code-generation logic.

#![deny(missing_docs)]

mod markdown;

pub use markdown::markdown;
pub use scl_syntax::LockKind;

use std::fmt;

/// Where a compiled policy runs (design §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// Any Linux >= 5.19 with BTF: the `lock:contention_begin/end` tracepoints, observation only.
    Stock,
    /// A kernel with SynCord-style lock-policy hooks.
    Syncord,
    /// The user-space lock simulator.
    Sim,
}

impl Target {
    /// Every target.
    pub const ALL: [Target; 3] = [Target::Stock, Target::Syncord, Target::Sim];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Target::Stock => "stock",
            Target::Syncord => "syncord",
            Target::Sim => "sim",
        }
    }

    /// The target called `name`.
    pub fn from_name(name: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The targets a policy's `// targets: syncord, sim` header line names, in its order
    /// (the examples and tests say this way what they are for); empty without one.
    pub fn in_header(text: &str) -> Vec<Target> {
        text.lines()
            .find_map(|l| l.strip_prefix("// targets:"))
            .map(|t| t.split(',').filter_map(|n| Target::from_name(n.trim())).collect())
            .unwrap_or_default()
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The execution context a hook runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Context {
    /// Always atomic: preemption disabled, must not sleep.
    Atomic,
    /// Atomic for spinlocks (and on the stock target, whose tracepoints are atomic); may
    /// sleep for mutexes and rwsems.
    AtomicForSpinlock,
}

/// The type of a hook parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookParamTy {
    /// The lock the hook fires for.
    Lock,
    /// A waiter in the lock's queue.
    Waiter,
    /// A boolean.
    Bool,
}

impl HookParamTy {
    /// The SCL spelling.
    pub fn name(self) -> &'static str {
        match self {
            HookParamTy::Lock => "lock",
            HookParamTy::Waiter => "waiter",
            HookParamTy::Bool => "bool",
        }
    }
}

/// One parameter of a hook: its conventional name and its type.
#[derive(Clone, Copy, Debug)]
pub struct HookParam {
    /// The name the catalogue uses (handlers may name it differently).
    pub name: &'static str,
    /// Its type.
    pub ty: HookParamTy,
    /// Where its data lives in the syncord/sim context (byte offset).
    pub ctx_offset: u32,
}

/// Which lock kinds a hook exists for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookKinds {
    /// Every lock kind.
    All,
    /// Only reader-writer semaphores (taken by readers).
    RwsemReaders,
}

impl HookKinds {
    /// True if a hook with these kinds exists for `kind`.
    pub fn includes(self, kind: LockKind) -> bool {
        match self {
            HookKinds::All => true,
            HookKinds::RwsemReaders => kind == LockKind::Rwsem,
        }
    }
}

/// A lock hook (design §4).
#[derive(Debug)]
pub struct HookDef {
    /// Its name in SCL.
    pub name: &'static str,
    /// Its parameters in order.
    pub params: &'static [HookParam],
    /// True for hooks that return a `bool` decision.
    pub returns_bool: bool,
    /// The lock kinds it exists for.
    pub kinds: HookKinds,
    /// The targets that call it.
    pub targets: &'static [Target],
    /// The context it runs in.
    pub context: Context,
    /// False for hooks that must not write policy state (the reorder hooks).
    pub may_write_state: bool,
    /// A hook that must be given whenever this one is (`bypass_acquire` needs `bypass_release`).
    pub requires: Option<&'static str>,
    /// The most BPF instructions one call may execute in the worst case, in atomic
    /// context; where it may sleep, [`limits::SLEEPABLE_BUDGET`] applies.
    pub budget: u32,
    /// On the stock target: the `tp_btf` tracepoint it attaches to.
    pub tracepoint: Option<&'static str>,
    /// What it is for, in one paragraph.
    pub doc: &'static str,
}

impl HookDef {
    /// True if the hook runs in atomic context for a lock of `kind` on `target`.
    pub fn is_atomic(&self, kind: LockKind, target: Target) -> bool {
        match self.context {
            Context::Atomic => true,
            Context::AtomicForSpinlock => kind == LockKind::Spinlock || target == Target::Stock,
        }
    }

    /// True if `target` calls this hook.
    pub fn on_target(&self, target: Target) -> bool {
        self.targets.contains(&target)
    }

    /// `name(lock: lock, ...) -> bool`, as a handler would be written.
    pub fn signature(&self) -> String {
        let params: Vec<String> = self.params.iter().map(|p| format!("{}: {}", p.name, p.ty.name())).collect();
        format!("{}({}){}", self.name, params.join(", "), if self.returns_bool { " -> bool" } else { "" })
    }
}

const LOCK: HookParam = HookParam { name: "lock", ty: HookParamTy::Lock, ctx_offset: 0 };
const SHUFFLER: HookParam = HookParam { name: "shuffler", ty: HookParamTy::Waiter, ctx_offset: 32 };
const CANDIDATE: HookParam = HookParam { name: "candidate", ty: HookParamTy::Waiter, ctx_offset: 64 };
const ALL_TARGETS: &[Target] = &[Target::Stock, Target::Syncord, Target::Sim];
const POLICY_TARGETS: &[Target] = &[Target::Syncord, Target::Sim];

/// Instruction budgets per call: a hook on the lock's hot path must stay short.
const BUDGET_ATOMIC: u32 = 4096;
const BUDGET_REORDER: u32 = 1024;

/// The hook catalogue v1.
pub static HOOKS: &[HookDef] = &[
    HookDef {
        name: "to_acquire",
        params: &[LOCK],
        returns_bool: false,
        kinds: HookKinds::All,
        targets: POLICY_TARGETS,
        context: Context::AtomicForSpinlock,
        may_write_state: true,
        requires: None,
        budget: BUDGET_ATOMIC,
        tracepoint: None,
        doc: "A task is about to acquire the lock, before its fast path. Good for per-task \
              bookkeeping and for backing off before contending.",
    },
    HookDef {
        name: "contended",
        params: &[LOCK],
        returns_bool: false,
        kinds: HookKinds::All,
        targets: ALL_TARGETS,
        context: Context::Atomic,
        may_write_state: true,
        requires: None,
        budget: BUDGET_ATOMIC,
        tracepoint: Some("contention_begin"),
        doc: "The fast path failed: the task starts to wait for the lock. On the stock target \
              this is the `lock:contention_begin` tracepoint.",
    },
    HookDef {
        name: "acquired",
        params: &[LOCK],
        returns_bool: false,
        kinds: HookKinds::All,
        targets: POLICY_TARGETS,
        context: Context::AtomicForSpinlock,
        may_write_state: true,
        requires: None,
        budget: BUDGET_ATOMIC,
        tracepoint: None,
        doc: "The task now holds the lock. Only the holder runs it, so plain updates of \
              per-lock state here do not race with each other.",
    },
    HookDef {
        name: "to_release",
        params: &[LOCK],
        returns_bool: false,
        kinds: HookKinds::All,
        targets: POLICY_TARGETS,
        context: Context::AtomicForSpinlock,
        may_write_state: true,
        requires: None,
        budget: BUDGET_ATOMIC,
        tracepoint: None,
        doc: "The holder is about to release the lock.",
    },
    HookDef {
        name: "released",
        params: &[LOCK],
        returns_bool: false,
        kinds: HookKinds::All,
        targets: POLICY_TARGETS,
        context: Context::AtomicForSpinlock,
        may_write_state: true,
        requires: None,
        budget: BUDGET_ATOMIC,
        tracepoint: None,
        doc: "The lock has been released.",
    },
    HookDef {
        name: "enable_fastpath",
        params: &[LOCK],
        returns_bool: true,
        kinds: HookKinds::All,
        targets: POLICY_TARGETS,
        context: Context::Atomic,
        may_write_state: true,
        requires: None,
        budget: BUDGET_ATOMIC,
        tracepoint: None,
        doc: "Return false to make this acquisition skip the fast path and queue, so that the \
              policy's ordering applies to it.",
    },
    HookDef {
        name: "should_reorder",
        params: &[LOCK, SHUFFLER, CANDIDATE],
        returns_bool: true,
        kinds: HookKinds::All,
        targets: POLICY_TARGETS,
        context: Context::Atomic,
        may_write_state: false,
        requires: None,
        budget: BUDGET_REORDER,
        tracepoint: None,
        doc: "The shuffler walks the wait queue; return true to move `candidate` forward, next \
              to the shuffler. Called once per candidate, so it must be cheap and must not \
              write policy state.",
    },
    HookDef {
        name: "skip_reorder",
        params: &[LOCK, SHUFFLER],
        returns_bool: true,
        kinds: HookKinds::All,
        targets: POLICY_TARGETS,
        context: Context::Atomic,
        may_write_state: false,
        requires: None,
        budget: BUDGET_REORDER,
        tracepoint: None,
        doc: "Return true to skip reordering for this round and keep the queue's FIFO order \
              (for example to bound how long remote waiters wait). Must not write policy state.",
    },
    HookDef {
        name: "bypass_acquire",
        params: &[LOCK],
        returns_bool: true,
        kinds: HookKinds::RwsemReaders,
        targets: POLICY_TARGETS,
        context: Context::Atomic,
        may_write_state: true,
        requires: Some("bypass_release"),
        budget: BUDGET_ATOMIC,
        tracepoint: None,
        doc: "A reader may take the rwsem without touching its shared counter (BRAVO's reader \
              bias): return true if the policy recorded the read acquisition itself.",
    },
    HookDef {
        name: "bypass_release",
        params: &[LOCK],
        returns_bool: true,
        kinds: HookKinds::RwsemReaders,
        targets: POLICY_TARGETS,
        context: Context::Atomic,
        may_write_state: true,
        requires: Some("bypass_acquire"),
        budget: BUDGET_ATOMIC,
        tracepoint: None,
        doc: "Undo a bypassed read acquisition: return true if this release was one taken by \
              `bypass_acquire`.",
    },
    HookDef {
        name: "contention_end",
        params: &[LOCK, HookParam { name: "ok", ty: HookParamTy::Bool, ctx_offset: 0 }],
        returns_bool: false,
        kinds: HookKinds::All,
        targets: &[Target::Stock],
        context: Context::Atomic,
        may_write_state: true,
        requires: None,
        budget: BUDGET_ATOMIC,
        tracepoint: Some("contention_end"),
        doc: "Stock target only: the wait that `contended` reported is over. `ok` is false when \
              it ended without the lock (a signal or a timeout).",
    },
];

/// The hook called `name`.
pub fn hook(name: &str) -> Option<&'static HookDef> {
    HOOKS.iter().find(|h| h.name == name)
}

/// A scalar type in a signature of the catalogue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scalar {
    /// `u32`.
    U32,
    /// `u64`.
    U64,
    /// `bool`.
    Bool,
    /// `kstack`: a recorded kernel stack (an id in the object's stack-trace map), opaque.
    KStack,
}

impl Scalar {
    /// The SCL spelling.
    pub fn name(self) -> &'static str {
        match self {
            Scalar::U32 => "u32",
            Scalar::U64 => "u64",
            Scalar::Bool => "bool",
            Scalar::KStack => "kstack",
        }
    }
}

/// A parameter or result type of a built-in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuiltinTy {
    /// A fixed scalar type.
    Scalar(Scalar),
    /// Any integer type, the same `T` for every `Int` and `IntPlace` of one call.
    Int,
    /// A writable integer place (state, a local, a field or element) of type `T`.
    IntPlace,
    /// No value.
    Void,
}

impl BuiltinTy {
    /// The spelling in signatures.
    pub fn name(self) -> &'static str {
        match self {
            BuiltinTy::Scalar(s) => s.name(),
            BuiltinTy::Int => "T",
            BuiltinTy::IntPlace => "inout T",
            BuiltinTy::Void => "()",
        }
    }
}

/// A built-in function (design §7) with its effects and its cost.
#[derive(Debug)]
pub struct BuiltinDef {
    /// Its name in SCL.
    pub name: &'static str,
    /// Parameter names and types.
    pub params: &'static [(&'static str, BuiltinTy)],
    /// Its result.
    pub ret: BuiltinTy,
    /// True if it may sleep: never allowed in atomic context.
    pub may_sleep: bool,
    /// True if its BPF helper runs only in a sleepable program. The lock-hook module runs
    /// every hook in a non-sleepable one (docs/abi.md §4), so such a built-in is refused
    /// on the syncord target in any hook. (`sleep` may sleep but is a bounded wait that
    /// needs no sleepable program.)
    pub sleepable_program: bool,
    /// True if it writes its place argument (the atomics) or a map of its own (`kstack`
    /// records a stack): not allowed in reorder hooks.
    pub writes_state: bool,
    /// Worst-case BPF instructions of one call, helper body not included.
    pub cost: u32,
    /// The BPF helper it calls, if any.
    pub helper: Option<u32>,
    /// What it does.
    pub doc: &'static str,
}

impl BuiltinDef {
    /// `name(a: T, b: T) -> T`.
    pub fn signature(&self) -> String {
        let params: Vec<String> = self.params.iter().map(|(n, t)| format!("{n}: {}", t.name())).collect();
        let ret = match self.ret {
            BuiltinTy::Void => String::new(),
            t => format!(" -> {}", t.name()),
        };
        format!("{}({}){ret}", self.name, params.join(", "))
    }

    /// True if it is allowed in atomic context.
    pub fn atomic_safe(&self) -> bool {
        !self.may_sleep
    }
}

const U32: BuiltinTy = BuiltinTy::Scalar(Scalar::U32);
const U64: BuiltinTy = BuiltinTy::Scalar(Scalar::U64);
const BOOL: BuiltinTy = BuiltinTy::Scalar(Scalar::Bool);
const KSTACK: BuiltinTy = BuiltinTy::Scalar(Scalar::KStack);

/// The kernel stacks `kstack()` records: the hidden stack-trace map the compiler adds to an
/// object that calls it, its name, its size and the depth of each stack.
pub mod kstack {
    /// The hidden map's name in the object.
    pub const MAP: &str = "scl_kstacks";
    /// `BPF_MAP_TYPE_STACK_TRACE`.
    pub const BPF_MAP_TYPE: u32 = 7;
    /// Frames kept per stack: the lock's own functions and the tracing machinery take the
    /// first few, which leaves room for the caller and its callers (perf lock contention
    /// keeps 8 after skipping 4).
    pub const DEPTH: u32 = 16;
    /// Distinct stacks the map holds (`perf lock contention`'s default is 16384); a stack
    /// that finds no room is not recorded and its `kstack` value says so (it is negative).
    pub const ENTRIES: u32 = 8192;
    /// `BPF_F_FAST_STACK_CMP`: stacks are told apart by their hash, as perf does.
    pub const FLAGS: u64 = 1 << 9;
    /// The BPF helper, `bpf_get_stackid`.
    pub const HELPER: u32 = 27;
    /// The stack id in the map of a `kstack` value. A value is the id plus one, so that
    /// zero, the value of every `kstack` nothing was stored in, is no stack (as are the
    /// negative values, the errors of `bpf_get_stackid`).
    pub fn id(value: i64) -> Option<u32> {
        u32::try_from(value.checked_sub(1)?).ok()
    }

    /// In the simulator, frames of the stand-in stacks (`scl-vm`) lie in this range, above
    /// any address a real x86-64 kernel text uses, so a simulated stack is never mistaken
    /// for a real one.
    pub const SIM_TEXT_BASE: u64 = 0xffff_ffff_f000_0000;
}

/// The longest `back_off` allowed at all, whatever `max_backoff_ns` says: a busy wait in
/// atomic context longer than this stalls the CPU noticeably.
pub const BACK_OFF_HARD_LIMIT_NS: u64 = 1_000_000;
/// `back_off`'s clamp when the policy declares no `config max_backoff_ns`.
pub const BACK_OFF_DEFAULT_MAX_NS: u64 = 100_000;
/// The name of the config value that clamps `back_off`.
pub const BACK_OFF_CONFIG: &str = "max_backoff_ns";
/// The longest `sleep` allowed.
pub const SLEEP_LIMIT_NS: u64 = 10_000_000;
/// The most one handler run may ask for with `sleep_after`, in all. The task sleeps after
/// the handler returns, off the CPU, so the bound is on latency, not on a stalled CPU (and
/// it fits the `u32` result of a lock-hook program).
pub const SLEEP_AFTER_LIMIT_NS: u64 = 1_000_000_000;

/// The built-in functions.
pub static BUILTINS: &[BuiltinDef] = &[
    BuiltinDef { name: "now", params: &[], ret: U64, may_sleep: false, sleepable_program: false, writes_state: false, cost: 2, helper: Some(5),
        doc: "Monotonic time in nanoseconds (`bpf_ktime_get_ns`)." },
    BuiltinDef { name: "cpu", params: &[], ret: U32, may_sleep: false, sleepable_program: false, writes_state: false, cost: 2, helper: Some(8),
        doc: "The CPU the hook runs on." },
    BuiltinDef { name: "numa_node", params: &[], ret: U32, may_sleep: false, sleepable_program: false, writes_state: false, cost: 2, helper: Some(42),
        doc: "The NUMA node of the CPU the hook runs on." },
    BuiltinDef { name: "tid", params: &[], ret: U32, may_sleep: false, sleepable_program: false, writes_state: false, cost: 3, helper: Some(14),
        doc: "The calling task's thread id." },
    BuiltinDef { name: "tgid", params: &[], ret: U32, may_sleep: false, sleepable_program: false, writes_state: false, cost: 3, helper: Some(14),
        doc: "The calling task's process id (thread group id)." },
    BuiltinDef { name: "min", params: &[("a", BuiltinTy::Int), ("b", BuiltinTy::Int)], ret: BuiltinTy::Int, may_sleep: false, sleepable_program: false,
        writes_state: false, cost: 3, helper: None, doc: "The smaller of two integers of the same type." },
    BuiltinDef { name: "max", params: &[("a", BuiltinTy::Int), ("b", BuiltinTy::Int)], ret: BuiltinTy::Int, may_sleep: false, sleepable_program: false,
        writes_state: false, cost: 3, helper: None, doc: "The larger of two integers of the same type." },
    BuiltinDef { name: "log2", params: &[("v", U64)], ret: U32, may_sleep: false, sleepable_program: false, writes_state: false, cost: 24, helper: None,
        doc: "The floor of the base-2 logarithm of `v`; `log2(0)` is 0." },
    BuiltinDef { name: "random", params: &[], ret: U32, may_sleep: false, sleepable_program: false, writes_state: false, cost: 2, helper: Some(7),
        doc: "A pseudo-random 32-bit number (`bpf_get_prandom_u32`), for sampling." },
    BuiltinDef { name: "back_off", params: &[("ns", U64)], ret: BuiltinTy::Void, may_sleep: false, sleepable_program: false, writes_state: false,
        cost: 24, helper: Some(181),
        doc: "Busy-wait for `ns` nanoseconds, clamped to the policy's `config max_backoff_ns` \
              (100us when not declared; never more than 1ms). Allowed in atomic context." },
    BuiltinDef { name: "sleep", params: &[("ns", U64)], ret: BuiltinTy::Void, may_sleep: true, sleepable_program: false, writes_state: false, cost: 8,
        helper: None,
        doc: "Wait `ns` nanoseconds (at most 10ms) right here, before the handler goes on: a loop \
              polls the clock, so a handler can wait between two looks at its state. The lock-hook \
              module runs every program non-sleepable, so on syncord the task keeps its CPU while it \
              waits; for a long wait that gives the CPU up, use `sleep_after`. Only in hooks that \
              may sleep (mutex and rwsem policies on the syncord and sim targets)." },
    BuiltinDef { name: "sleep_after", params: &[("ns", U64)], ret: BuiltinTy::Void, may_sleep: true, sleepable_program: false, writes_state: false, cost: 8,
        helper: None,
        doc: "Sleep `ns` nanoseconds once the handler has returned: the handler runs to its end, \
              then the task sleeps off the CPU before the lock operation goes on (the lock-hook \
              module and the simulator do the sleeping; the hook's result carries the request). \
              Calls in one handler run add up, to at most 1s in all. Only in hooks that may sleep \
              and have no decision to return (mutex and rwsem policies on the syncord and sim \
              targets)." },
    BuiltinDef { name: "read_user", params: &[("addr", U64)], ret: U64, may_sleep: true, sleepable_program: true, writes_state: false, cost: 10,
        helper: Some(148),
        doc: "Read a u64 from the calling process's memory at `addr` (0 on a fault). May fault \
              and sleep: only in hooks that may sleep, and not on the `syncord` target, where \
              the lock-hook module runs every hook in a non-sleepable program." },
    BuiltinDef { name: "kstack", params: &[], ret: KSTACK, may_sleep: false, sleepable_program: false, writes_state: true, cost: 6,
        helper: Some(kstack::HELPER),
        doc: "The calling task's kernel stack, recorded in the policy's stack-trace map \
              (`bpf_get_stackid`, up to 16 frames; the stack walk makes it the dearest built-in: 1.2-1.5 us a call \
              in docs/performance.md's runs): a `kstack` value that \
              can key maps and be stored and compared with `==`, not computed with. `sclc run` \
              shows it as the caller (the first frame outside the locking code) and, with \
              `--stacks`, as the whole stack. Records a stack, so not in the reorder hooks. \
              In the simulator a stand-in stack per call site and task." },
    BuiltinDef { name: "atomic_add", params: &[("place", BuiltinTy::IntPlace), ("v", BuiltinTy::Int)], ret: BuiltinTy::Int,
        may_sleep: false, sleepable_program: false, writes_state: true, cost: 4, helper: None,
        doc: "Add `v` to `place` atomically; returns the old value. Use it for counters that \
              several CPUs update at once." },
    BuiltinDef { name: "atomic_cas", params: &[("place", BuiltinTy::IntPlace), ("expected", BuiltinTy::Int), ("new", BuiltinTy::Int)],
        ret: BOOL, may_sleep: false, sleepable_program: false, writes_state: true, cost: 6, helper: None,
        doc: "If `place` holds `expected`, store `new` there, atomically; returns whether it did." },
];

/// The built-in called `name`.
pub fn builtin(name: &str) -> Option<&'static BuiltinDef> {
    BUILTINS.iter().find(|b| b.name == name)
}

/// The kinds of explicit map (design §6), with their BPF map type numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MapKind {
    /// `hash<K, V>`: BPF_MAP_TYPE_HASH.
    Hash,
    /// `lru_hash<K, V>`: BPF_MAP_TYPE_LRU_HASH; old entries are evicted when full.
    LruHash,
    /// `array<V>`: BPF_MAP_TYPE_ARRAY, indexed by a u32.
    Array,
    /// `percpu_array<V>`: BPF_MAP_TYPE_PERCPU_ARRAY, one array per CPU.
    PercpuArray,
    /// `ringbuf<T>`: BPF_MAP_TYPE_RINGBUF, events to user space; capacity in bytes.
    Ringbuf,
    /// BPF_MAP_TYPE_STACK_TRACE: the stacks `kstack()` records ([`kstack`]). Not a map a
    /// policy declares (it is not in [`MAP_KINDS`]): the compiler adds it.
    StackTrace,
}

impl MapKind {
    /// The BPF map type number.
    pub fn bpf_type(self) -> u32 {
        match self {
            MapKind::StackTrace => kstack::BPF_MAP_TYPE,
            k => MAP_KINDS.iter().find(|d| d.kind == k).map_or(0, |d| d.bpf_type),
        }
    }
}

/// A map kind's entry in the catalogue.
#[derive(Debug)]
pub struct MapKindDef {
    /// The kind.
    pub kind: MapKind,
    /// Its name in SCL types.
    pub name: &'static str,
    /// How many type arguments it takes: 2 for `<K, V>`, 1 for `<V>`.
    pub type_args: usize,
    /// The BPF map type number.
    pub bpf_type: u32,
    /// What it is for.
    pub doc: &'static str,
}

/// The map kinds.
pub static MAP_KINDS: &[MapKindDef] = &[
    MapKindDef { kind: MapKind::Hash, name: "hash", type_args: 2, bpf_type: 1,
        doc: "A hash table; `get` is optional because the key may be absent." },
    MapKindDef { kind: MapKind::LruHash, name: "lru_hash", type_args: 2, bpf_type: 9,
        doc: "A hash table that evicts the least recently used entry when full." },
    MapKindDef { kind: MapKind::Array, name: "array", type_args: 1, bpf_type: 2,
        doc: "A fixed array indexed by a u32; entries start zeroed and cannot be deleted." },
    MapKindDef { kind: MapKind::PercpuArray, name: "percpu_array", type_args: 1, bpf_type: 6,
        doc: "An array with one copy per CPU; `get` reads the current CPU's copy." },
    MapKindDef { kind: MapKind::Ringbuf, name: "ringbuf", type_args: 1, bpf_type: 27,
        doc: "A ring buffer of events read by user space; its capacity is in bytes (a power of \
              two, a multiple of 4096)." },
];

/// The map kind called `name`.
pub fn map_kind(name: &str) -> Option<&'static MapKindDef> {
    MAP_KINDS.iter().find(|m| m.name == name)
}

/// What a map method takes and gives, in terms of the map's key `K` and value `V`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MethodTy {
    /// The key type (u32 for arrays).
    Key,
    /// The value type.
    Value,
    /// An optional reference to a value: must be handled with `if let`.
    OptValue,
    /// Nothing.
    Void,
}

/// A method of maps.
#[derive(Debug)]
pub struct MethodDef {
    /// Its name.
    pub name: &'static str,
    /// The map kinds that have it.
    pub kinds: &'static [MapKind],
    /// Its parameters.
    pub params: &'static [(&'static str, MethodTy)],
    /// Its result.
    pub ret: MethodTy,
    /// True if it changes the map (not allowed in reorder hooks).
    pub writes_state: bool,
    /// Worst-case BPF instructions, helper body not included.
    pub cost: u32,
    /// What it does.
    pub doc: &'static str,
}

const KEYED: &[MapKind] = &[MapKind::Hash, MapKind::LruHash, MapKind::Array, MapKind::PercpuArray];

/// The map methods.
pub static METHODS: &[MethodDef] = &[
    MethodDef { name: "get", kinds: KEYED, params: &[("key", MethodTy::Key)], ret: MethodTy::OptValue, writes_state: false,
        cost: 10, doc: "The value under `key`, if there is one: handle it with `if let v = m.get(k) { ... }`. \
        Inside, `v` names the value in the map, so writing `v` writes the map." },
    MethodDef { name: "get_or", kinds: KEYED, params: &[("key", MethodTy::Key), ("default", MethodTy::Value)],
        ret: MethodTy::Value, writes_state: false, cost: 14, doc: "The value under `key`, or `default` when there is none." },
    MethodDef { name: "set", kinds: KEYED, params: &[("key", MethodTy::Key), ("value", MethodTy::Value)], ret: MethodTy::Void,
        writes_state: true, cost: 12, doc: "Store `value` under `key`." },
    MethodDef { name: "entry", kinds: &[MapKind::Hash, MapKind::LruHash], params: &[("key", MethodTy::Key)], ret: MethodTy::OptValue,
        writes_state: true, cost: 40,
        doc: "The value under `key`, created zeroed if there is none (as `per_lock` entries are): handle it with \
              `if let v = m.entry(k) { ... }`, whose `else` runs only when a full map refuses the new entry. \
              Of several CPUs that create one entry at once, the first creates it and all update the same \
              value (`BPF_NOEXIST`), so no update is lost." },
    MethodDef { name: "delete", kinds: &[MapKind::Hash, MapKind::LruHash], params: &[("key", MethodTy::Key)],
        ret: MethodTy::Void, writes_state: true, cost: 10, doc: "Remove the entry under `key`, if any." },
    MethodDef { name: "emit", kinds: &[MapKind::Ringbuf], params: &[("event", MethodTy::Value)], ret: MethodTy::Void,
        writes_state: true, cost: 12, doc: "Send `event` to user space; dropped if the buffer is full." },
];

/// The method called `name`.
pub fn method(name: &str) -> Option<&'static MethodDef> {
    METHODS.iter().find(|m| m.name == name)
}

/// A read-only field of the `lock` or `waiter` view.
#[derive(Debug, PartialEq, Eq)]
pub struct FieldDef {
    /// Its name.
    pub name: &'static str,
    /// Its type.
    pub ty: Scalar,
    /// Byte offset in the syncord/sim context (for `lock`), or in the waiter record.
    pub offset: u32,
    /// Its size in the context, in bytes.
    pub size: u32,
    /// What it holds.
    pub doc: &'static str,
}

/// The fields of `lock`. `is_reader` and `is_writer` are bits of the context's `flags`
/// word (offset 12, bits 0 and 1).
pub static LOCK_FIELDS: &[FieldDef] = &[
    FieldDef { name: "addr", ty: Scalar::U64, offset: 0, size: 8, doc: "The lock's address: its identity." },
    FieldDef { name: "kind", ty: Scalar::U32, offset: 8, size: 4, doc: "0 spinlock, 1 mutex, 2 rwsem: the policy's lock kinds (on the stock target rwlocks count as spinlocks, rt-mutexes and per-CPU rwsems as rwsems; `class` tells them apart)." },
    FieldDef { name: "class", ty: Scalar::U32, offset: 8, size: 4,
        doc: "The lock's type for this wait, as perf prints it (an index into `LOCK_CLASSES`): 0 spinlock, \
              1 mutex, 2 rwsem:R, 3 rwsem:W, 4 rwlock:R, 5 rwlock:W, 6 rt-mutex, 7 rwlock-rt:R, 8 rwlock-rt:W, \
              9 pcpu-sem:R, 10 pcpu-sem:W, 11 rwsem (mode unknown). On the stock target from the flags of \
              the `contention_begin` event itself (in `contention_end`, of the thread's last one); elsewhere \
              from `kind` and the reader/writer bits." },
    FieldDef { name: "is_reader", ty: Scalar::Bool, offset: 12, size: 4, doc: "The task takes the lock for reading (rwsem readers)." },
    FieldDef { name: "is_writer", ty: Scalar::Bool, offset: 12, size: 4, doc: "The task takes the lock for writing (rwsem writers)." },
];

/// The lock types `lock.class` tells apart, by value, spelt as `perf lock contention`
/// prints them (from the `LCB_F_*` flags of `lock:contention_begin`; [`lock_class`]).
pub static LOCK_CLASSES: &[&str] = &[
    "spinlock", "mutex", "rwsem:R", "rwsem:W", "rwlock:R", "rwlock:W", "rt-mutex", "rwlock-rt:R", "rwlock-rt:W", "pcpu-sem:R",
    "pcpu-sem:W", "rwsem",
];

/// The flags of `lock:contention_begin` (`LCB_F_*`, include/trace/events/lock.h): what the
/// stock target's `lock.kind`, `lock.class`, `is_reader` and `is_writer` are computed from.
pub mod lcb {
    /// A spinning lock (spinlock, rwlock; with `MUTEX`, a mutex spinning optimistically).
    pub const SPIN: u32 = 1;
    /// Taken for reading.
    pub const READ: u32 = 2;
    /// Taken for writing.
    pub const WRITE: u32 = 4;
    /// An rt-mutex (or an rwlock/rwsem built on one).
    pub const RT: u32 = 8;
    /// A per-CPU rwsem.
    pub const PERCPU: u32 = 16;
    /// A mutex.
    pub const MUTEX: u32 = 32;
}

/// Lock types as `sclc run --type` names them, with the exact tracepoint flags each stands
/// for (the names and sets are `perf lock contention -Y`'s; a name without `:R`/`:W` stands
/// for both). A mutex spinning optimistically reports `MUTEX | SPIN`; `mutex` covers both.
pub static LOCK_TYPES: &[(&str, &[u32])] = {
    use lcb::*;
    &[
        ("spinlock", &[SPIN]),
        ("rwlock", &[SPIN | READ, SPIN | WRITE]),
        ("rwlock:R", &[SPIN | READ]),
        ("rwlock:W", &[SPIN | WRITE]),
        ("rwsem", &[READ, WRITE]),
        ("rwsem:R", &[READ]),
        ("rwsem:W", &[WRITE]),
        ("mutex", &[MUTEX, MUTEX | SPIN]),
        ("mutex:spin", &[MUTEX | SPIN]),
        ("rt-mutex", &[RT]),
        ("rwlock-rt", &[RT | READ, RT | WRITE]),
        ("rwlock-rt:R", &[RT | READ]),
        ("rwlock-rt:W", &[RT | WRITE]),
        ("percpu-rwsem", &[PERCPU | READ, PERCPU | WRITE]),
        ("percpu-rwsem:R", &[PERCPU | READ]),
        ("percpu-rwsem:W", &[PERCPU | WRITE]),
    ]
};

/// What the stock target's `lock.kind` is for a wait with these `contention_begin` flags:
/// the mutex bit decides first (a mutex spinning optimistically also has `SPIN`), then a
/// spinning lock is a spinlock, everything else an rwsem. The code generator computes the
/// same in BPF (scl-vm's tests hold the two equal for every flag value).
pub fn lock_kind(flags: u32) -> LockKind {
    if flags & lcb::MUTEX != 0 {
        LockKind::Mutex
    } else if flags & lcb::SPIN != 0 {
        LockKind::Spinlock
    } else {
        LockKind::Rwsem
    }
}

/// The `contention_begin` flags a class stands for, the inverse of [`lock_class`]: the
/// first flag value of [`LOCK_TYPES`] of that class (a mutex's optimistic spinning,
/// `MUTEX | SPIN`, reads as a plain mutex), 0 for the mode-less rwsem and unknown classes.
/// What a recorder that reads `lock.class` writes as an event's flags.
pub fn lock_class_flags(class: u32) -> u32 {
    LOCK_TYPES.iter().flat_map(|(_, f)| f.iter().copied()).find(|&f| lock_class(f) == class).unwrap_or(0)
}

/// What the stock target's `lock.class` is for a wait with these flags (an index into
/// [`LOCK_CLASSES`]): the most specific flag decides, mutex first, then spin, rt, per-CPU,
/// else an rwsem by its mode (11 when the event gives none).
pub fn lock_class(flags: u32) -> u32 {
    let (r, w) = (u32::from(flags & lcb::READ != 0), u32::from(flags & lcb::WRITE != 0));
    let rw = r | w;
    if flags & lcb::MUTEX != 0 {
        1
    } else if flags & lcb::SPIN != 0 {
        rw * (4 + w)
    } else if flags & lcb::RT != 0 {
        6 + rw + w
    } else if flags & lcb::PERCPU != 0 {
        9 + w
    } else if rw != 0 {
        2 + w
    } else {
        11
    }
}

/// The fields of `waiter` (a 32-byte record in the context).
pub static WAITER_FIELDS: &[FieldDef] = &[
    FieldDef { name: "cpu", ty: Scalar::U32, offset: 0, size: 4, doc: "The CPU the waiter runs on." },
    FieldDef { name: "numa_node", ty: Scalar::U32, offset: 4, size: 4, doc: "The NUMA node of that CPU." },
    FieldDef { name: "tid", ty: Scalar::U32, offset: 8, size: 4, doc: "The waiting task's thread id." },
    FieldDef { name: "prio", ty: Scalar::U32, offset: 12, size: 4, doc: "The waiting task's scheduling priority." },
    FieldDef { name: "wait_start", ty: Scalar::U64, offset: 16, size: 8, doc: "When it started to wait, in ns (`now()` time)." },
];

/// Offset of the waiter's `data` word (its `per_waiter` state) in the waiter record.
pub const WAITER_DATA_OFFSET: u32 = 24;
/// Bytes of `per_waiter` state a policy may declare in all.
pub const PER_WAITER_BYTES: u32 = 8;
/// Size of the syncord/sim context.
pub const CTX_SIZE: u32 = 128;

/// The field `name` of `lock`.
pub fn lock_field(name: &str) -> Option<&'static FieldDef> {
    LOCK_FIELDS.iter().find(|f| f.name == name)
}

/// The field `name` of `waiter`.
pub fn waiter_field(name: &str) -> Option<&'static FieldDef> {
    WAITER_FIELDS.iter().find(|f| f.name == name)
}

/// Limits the checker enforces, kept here so the docs quote the same numbers.
pub mod limits {
    /// The most iterations a `for` loop may have.
    pub const MAX_LOOP_ITERATIONS: u64 = 1024;
    /// The BPF stack.
    pub const MAX_STACK_BYTES: u32 = 512;
    /// Default entries of `per_lock` and `per_thread` state without a capacity.
    pub const DEFAULT_CAPACITY: u64 = 4096;
    /// The most entries any map may have.
    pub const MAX_CAPACITY: u64 = 1 << 20;
    /// The largest value of a map or state entry: the kernel refuses values over
    /// `KMALLOC_MAX_SIZE` (4 MiB) less a hash element's header; this stays below both.
    pub const MAX_VALUE_BYTES: u32 = (4 << 20) - 4096;
    /// The largest value of per-CPU state (`per_cpu`, `percpu_array`): the kernel's
    /// `PCPU_MIN_UNIT_SIZE`, 32 KiB, with the value rounded up to 8 bytes.
    pub const MAX_PERCPU_VALUE_BYTES: u32 = 32 << 10;
    /// The largest `per_lock`/`per_thread` value a hook reads from zeroed stack bytes when
    /// its entry is missing (and creates the entry from); larger ones are read from the
    /// hidden all-zero map `scl_zero`. Zeroing takes one store per 8 bytes, a lookup in
    /// `scl_zero` about a dozen instructions once the verifier has inlined it.
    pub const ZERO_ON_STACK_MAX: u32 = 64;
    /// The instruction budget of a hook that may sleep for every lock kind of its policy
    /// (the hook's own `budget` applies in atomic context).
    pub const SLEEPABLE_BUDGET: u32 = 65_536;
}

#[cfg(test)]
mod tests {
    use super::Target;

    /// A `kstack` value is its stack's id plus one: zero (never set) and the helper's
    /// errors (negative) name no stack.
    #[test]
    fn kstack_values_and_ids() {
        use super::kstack::id;
        let cases = [(0, None), (1, Some(0)), (8192, Some(8191)), (-16, None), (-13, None), (i64::MIN, None)];
        for (value, want) in cases {
            assert_eq!(id(value), want, "{value}");
        }
    }

    /// `--type` names and `lock.class` names say the same of every flag value a type stands
    /// for: `rwsem:R` is class `rwsem:R`, `percpu-rwsem:W` is perf's `pcpu-sem:W`, a type
    /// without a mode covers its two classes, `mutex:spin` is a mutex.
    #[test]
    fn lock_types_and_lock_classes_agree() {
        use super::{lock_class, lock_kind, LockKind, LOCK_CLASSES, LOCK_TYPES};
        for (name, flags) in LOCK_TYPES {
            let base = name.split(':').next().unwrap();
            let class_base = match base {
                "percpu-rwsem" => "pcpu-sem",
                b => b,
            };
            for &f in *flags {
                let class = LOCK_CLASSES[lock_class(f) as usize];
                let want = match *name {
                    "mutex:spin" => "mutex",
                    n if n.contains(':') => &n.replacen(base, class_base, 1),
                    _ => class,
                };
                assert_eq!(class, want, "{name} {f:#x}");
                assert!(class.starts_with(class_base), "{name} {f:#x}: {class}");
                let kind = match class_base {
                    "mutex" => LockKind::Mutex,
                    "spinlock" | "rwlock" => LockKind::Spinlock,
                    _ => LockKind::Rwsem,
                };
                assert_eq!(lock_kind(f), kind, "{name} {f:#x}");
            }
        }
        // Every class has flags that give it back.
        for c in 0..LOCK_CLASSES.len() as u32 {
            assert_eq!(lock_class(super::lock_class_flags(c)), c, "{}", LOCK_CLASSES[c as usize]);
        }
        // Every class but the mode-less rwsem is some type's.
        for (i, c) in LOCK_CLASSES.iter().enumerate().take(11) {
            assert!(LOCK_TYPES.iter().flat_map(|(_, f)| f.iter()).any(|&f| lock_class(f) as usize == i), "{c}");
        }
    }

    #[test]
    fn a_header_names_its_targets_in_order() {
        let text = "// amp.scl: ...\n//\n// targets: syncord, sim\n\nconfig x: u32 = 1;\n";
        assert_eq!(Target::in_header(text), [Target::Syncord, Target::Sim]);
        assert_eq!(Target::in_header("// targets: stock, nonsense\n"), [Target::Stock]);
        assert!(Target::in_header("policy p for spinlock {}\n").is_empty());
    }

    /// A handler's `sleep_after` is returned to the lock as the void hook's result (docs/abi.md
    /// §4), so a hook with a result of its own must never be one that may sleep.
    #[test]
    fn hooks_with_a_result_never_sleep() {
        for h in super::HOOKS {
            if h.returns_bool {
                assert_eq!(h.context, super::Context::Atomic, "{} returns a decision but may sleep", h.name);
            }
        }
        assert!(super::SLEEP_AFTER_LIMIT_NS <= u64::from(u32::MAX), "a sleep request must fit a program's u32 result");
    }
}
