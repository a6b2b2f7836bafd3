//! A user-space interpreter for the BPF programs `sclc` emits: the bytecode itself, not the
//! AST, so the lock simulator (`scl-sim`) runs exactly what the kernel would run.
//!
//! [`Vm::new`] takes a compilation's [`scl_driver::Output`]: the compiled instructions of
//! every hook, with their relocations resolved against the VM's own maps and `.rodata`, and
//! the built-in `bpf_loop` callbacks. [`Vm::run`] runs one hook on a 128-byte context
//! (docs/abi.md §1); the helpers it calls are answered from the VM's maps and from an
//! [`Env`], the simulated machine (time, CPU, NUMA node, task, randomness, waiting).
//!
//! This crate owns the instruction semantics (ALU32/ALU64 with ISA v4 `movsx`, `sdiv` and
//! `smod`, 64- and 32-bit jumps, loads and stores, atomics, `ld_imm64`), the address space
//! (stack frames, the context, `.rodata` and each map value as bounds-checked regions), the
//! maps (array, per-CPU array, hash, LRU hash, ring buffer) and the helpers with their
//! kernel semantics. It must not make syscalls or know SCL syntax: it sees instructions,
//! maps and names, and gets them from the driver. A program that misbehaves (an access out
//! of bounds, an unknown instruction, too many instructions) yields a [`VmError`] naming the
//! instruction; the VM never panics on a program. docs/simulator.md, "The VM", says why
//! this is not rbpf.

#![deny(missing_docs)]

mod interp;
mod maps;
mod mem;

use interp::Machine;
use maps::Map;
use scl_bpf::insn::Insn;
use scl_bpf::RelocTarget;
use scl_catalogue::MapKind;
use scl_ir::MapOrigin;
use std::fmt;

pub use interp::DEFAULT_INSN_LIMIT;

/// What the simulated machine provides to helpers.
pub trait Env {
    /// `bpf_ktime_get_ns`: the current (simulated) time in nanoseconds.
    fn now_ns(&mut self) -> u64;
    /// `bpf_get_prandom_u32`.
    fn random_u32(&mut self) -> u32;
    /// `bpf_get_smp_processor_id`, and the CPU whose copy of a per-CPU map a program sees.
    /// On the syncord and sim targets programs read the CPU from the context instead; the
    /// caller must keep the two equal.
    fn cpu(&self) -> u32;
    /// `bpf_get_numa_node_id`.
    fn numa_node(&self) -> u32;
    /// `bpf_get_current_pid_tgid`: `tgid << 32 | pid`.
    fn pid_tgid(&self) -> u64;
    /// The `scl_wait_until` callback of `back_off` and `sleep`: wait until the clock reads
    /// `deadline_ns`. Called instead of running the polling loop, also when the deadline has
    /// already passed (then it must not move time).
    fn wait_until(&mut self, deadline_ns: u64);
}

/// The result of one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunOutcome {
    /// `r0` at exit.
    pub ret: u64,
    /// Instructions executed, callbacks included.
    pub insns: u64,
    /// Helper calls made (`bpf_loop` counts once; its callback's calls count too).
    pub helpers: u64,
}

/// A record a program wrote with `bpf_ringbuf_output`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The ring buffer's name.
    pub map: String,
    /// The record's bytes.
    pub data: Vec<u8>,
}

/// Why the VM could not build or run a program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VmError {
    /// No program for this hook.
    NoSuchHook(String),
    /// No map of this name.
    NoSuchMap(String),
    /// The object holds something the VM does not run: an unknown instruction or helper, a
    /// jump out of the program, a relocation it cannot resolve.
    BadProgram {
        /// The program or callback.
        function: String,
        /// The instruction's index.
        pc: usize,
        /// What is wrong.
        reason: String,
    },
    /// A load or store outside every region, or a store to read-only memory.
    BadAccess {
        /// The program or callback.
        function: String,
        /// The instruction's index.
        pc: usize,
        /// The instruction, disassembled.
        insn: String,
        /// The address.
        addr: u64,
        /// Bytes accessed.
        size: usize,
        /// True for a store.
        write: bool,
    },
    /// A helper got an argument the kernel's verifier would not have let through (a map
    /// pointer that is not one, a key out of bounds).
    BadHelperCall {
        /// The program or callback.
        function: String,
        /// The instruction's index.
        pc: usize,
        /// The helper id.
        helper: i32,
        /// What is wrong.
        reason: String,
    },
    /// The run executed more instructions than the limit.
    InsnLimit {
        /// The hook run.
        hook: String,
        /// The limit.
        limit: u64,
    },
    /// `bpf_loop` callbacks nested deeper than the kernel's 8 frames.
    CallDepth {
        /// The program or callback.
        function: String,
        /// The instruction's index.
        pc: usize,
    },
    /// `Env::cpu` named a CPU the VM has no per-CPU copy for.
    NoSuchCpu {
        /// The CPU.
        cpu: u32,
        /// CPUs the VM was made with.
        cpus: u32,
    },
    /// A user-space map access with a key or value of the wrong size, or that the map kind
    /// refuses (with the kernel's errno).
    MapAccess {
        /// The map.
        map: String,
        /// What is wrong.
        reason: String,
    },
}

impl fmt::Display for VmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VmError::NoSuchHook(h) => write!(f, "no program for hook `{h}`"),
            VmError::NoSuchMap(m) => write!(f, "no map named `{m}`"),
            VmError::BadProgram { function, pc, reason } => write!(f, "{function}, instruction {pc}: {reason}"),
            VmError::BadAccess { function, pc, insn, addr, size, write } => write!(
                f,
                "{function}, instruction {pc} (`{insn}`): {} of {size} bytes at {addr:#x} is outside memory the program may {}",
                if *write { "store" } else { "load" },
                if *write { "write" } else { "read" }
            ),
            VmError::BadHelperCall { function, pc, helper, reason } => {
                write!(f, "{function}, instruction {pc}: call {}: {reason}", scl_ir::print::helper_name(*helper as u32))
            }
            VmError::InsnLimit { hook, limit } => write!(f, "hook `{hook}` ran more than {limit} instructions"),
            VmError::CallDepth { function, pc } => write!(f, "{function}, instruction {pc}: callbacks nested more than 8 deep"),
            VmError::NoSuchCpu { cpu, cpus } => write!(f, "CPU {cpu} does not exist: the VM has {cpus} CPUs"),
            VmError::MapAccess { map, reason } => write!(f, "map `{map}`: {reason}"),
        }
    }
}

impl std::error::Error for VmError {}

/// Code the VM runs: a hook's program or a callback.
#[derive(Clone, Debug)]
pub(crate) struct Code {
    /// The program's (or callback's) name, for errors.
    pub name: String,
    /// The instructions, with every `ld_imm64` resolved to a VM address.
    pub insns: Vec<Insn>,
    /// Bytes of stack it uses (zeroed at entry).
    pub stack: usize,
    /// True for the built-in `scl_wait_until`, which `bpf_loop` answers with
    /// [`Env::wait_until`].
    pub wait_until: bool,
}

/// The default number of CPUs of per-CPU maps.
pub const DEFAULT_CPUS: u32 = 64;

/// A loaded policy: its programs by hook name, its maps and its `.rodata`.
#[derive(Clone, Debug)]
pub struct Vm {
    /// Hook name and index into `codes` of each program, in object order.
    hooks: Vec<(&'static str, usize)>,
    /// Programs first, then callbacks.
    codes: Vec<Code>,
    machine: Machine,
}

impl Vm {
    /// Builds a VM for a compiled policy with [`DEFAULT_CPUS`] CPUs: maps are created empty
    /// (arrays zeroed), `.rodata` holds the config defaults.
    pub fn new(out: &scl_driver::Output) -> Result<Vm, VmError> {
        Vm::with_cpus(out, DEFAULT_CPUS)
    }

    /// [`Vm::new`] with `cpus` copies of each per-CPU map.
    pub fn with_cpus(out: &scl_driver::Output, cpus: u32) -> Result<Vm, VmError> {
        let module = &out.module;
        let cpus = cpus.max(1);
        let mut maps = Vec::new();
        let mut ids = Vec::new();
        for (id, m) in module.maps.iter() {
            let slots = match m.kind {
                MapKind::PercpuArray => u64::from(m.max_entries) * u64::from(cpus),
                MapKind::Ringbuf => 0,
                _ => u64::from(m.max_entries),
            };
            if slots > mem::MAX_SLOTS {
                return Err(VmError::BadProgram {
                    function: m.name.clone(),
                    pc: 0,
                    reason: format!(
                        "the map has {slots} entries; the VM allows {}",
                        mem::MAX_SLOTS
                    ),
                });
            }
            ids.push(id);
            maps.push(Map::new(
                m.name.clone(),
                m.kind,
                m.key_size as usize,
                m.value_size as usize,
                m.max_entries,
                m.origin == MapOrigin::Hidden,
                cpus,
            ));
        }
        if maps.len() > mem::MAX_MAPS {
            return Err(VmError::BadProgram {
                function: module.name.clone(),
                pc: 0,
                reason: "too many maps".into(),
            });
        }
        let mut rodata = vec![0u8; module.rodata_size() as usize];
        for v in &module.rodata {
            let bytes = v.default.to_le_bytes();
            let at = v.offset as usize;
            let n = (v.size as usize).min(8);
            rodata[at..at + n].copy_from_slice(&bytes[..n]);
        }
        let mut hooks = Vec::new();
        let mut codes = Vec::new();
        let mut callbacks: Vec<(scl_bpf::Callback, usize)> = Vec::new();
        let n_programs = module.programs.len();
        for (p, c) in module.programs.iter().zip(&out.compiled) {
            let mut insns = c.insns.clone();
            for (at, target) in &c.relocs {
                let value = match target {
                    RelocTarget::Map(m) => {
                        let k =
                            ids.iter()
                                .position(|i| i == m)
                                .ok_or_else(|| VmError::BadProgram {
                                    function: p.name.clone(),
                                    pc: *at,
                                    reason: "a relocation to a map the module does not have".into(),
                                })?;
                        mem::map_handle(k)
                    }
                    RelocTarget::Rodata(off) => mem::addr(mem::REGION_RODATA, 0, *off),
                    RelocTarget::Callback(cb) => {
                        let k = match callbacks.iter().find(|(c, _)| c == cb) {
                            Some((_, k)) => *k,
                            None => {
                                let k = n_programs + callbacks.len();
                                callbacks.push((*cb, k));
                                k
                            }
                        };
                        mem::func_handle(k)
                    }
                };
                if *at + 1 >= insns.len() || !insns[*at].is_wide() {
                    return Err(VmError::BadProgram {
                        function: p.name.clone(),
                        pc: *at,
                        reason: "a relocation on an instruction that is not ld_imm64".into(),
                    });
                }
                insns[*at].imm = value as u32 as i32;
                insns[*at + 1].imm = (value >> 32) as u32 as i32;
            }
            hooks.push((p.hook.name, codes.len()));
            codes.push(Code {
                name: p.name.clone(),
                insns,
                stack: c.stack_size as usize,
                wait_until: false,
            });
        }
        for (cb, _) in &callbacks {
            codes.push(Code {
                name: scl_bpf::callback_name(*cb).to_string(),
                insns: scl_bpf::callback(*cb),
                stack: 0,
                wait_until: matches!(cb, scl_bpf::Callback::WaitUntil),
            });
        }
        Vm::build(hooks, codes, maps, rodata, cpus)
    }

    /// Checks every program and assembles the VM.
    pub(crate) fn build(
        hooks: Vec<(&'static str, usize)>,
        codes: Vec<Code>,
        maps: Vec<Map>,
        rodata: Vec<u8>,
        cpus: u32,
    ) -> Result<Vm, VmError> {
        for c in &codes {
            interp::validate(c)?;
        }
        Ok(Vm {
            hooks,
            codes,
            machine: Machine::new(maps, rodata, cpus),
        })
    }

    /// Overwrites `.rodata` bytes at `offset` (a config value), as `scl_loader::load` does
    /// before load. Bytes past the end of `.rodata` are ignored, as there.
    pub fn set_rodata(&mut self, offset: usize, bytes: &[u8]) {
        let end = offset.saturating_add(bytes.len());
        if let Some(dst) = self.machine.rodata.get_mut(offset..end) {
            dst.copy_from_slice(bytes);
        }
    }

    /// The `.rodata` bytes.
    pub fn rodata(&self) -> &[u8] {
        &self.machine.rodata
    }

    /// The hooks the policy has programs for, in object order.
    pub fn hooks(&self) -> Vec<&'static str> {
        self.hooks.iter().map(|(h, _)| *h).collect()
    }

    /// The names of the policy's maps (its state and `map` declarations), in object order;
    /// the hidden maps the compiler adds (`scl_zero`, `scl_flags`) are left out, though
    /// [`Vm::lookup`] and [`Vm::keys`] read them too.
    pub fn maps(&self) -> Vec<&str> {
        self.machine
            .maps
            .iter()
            .filter(|m| !m.hidden)
            .map(|m| m.name.as_str())
            .collect()
    }

    /// Sets the limit of instructions per run ([`DEFAULT_INSN_LIMIT`] unless set).
    pub fn set_insn_limit(&mut self, limit: u64) {
        self.machine.limit = limit;
    }

    /// CPUs of the per-CPU maps.
    pub fn cpus(&self) -> u32 {
        self.machine.cpus
    }

    /// Runs the program of `hook` with `ctx` (the program may write it; the bytes are copied
    /// back) and `env`.
    pub fn run(
        &mut self,
        hook: &str,
        ctx: &mut [u8; 128],
        env: &mut dyn Env,
    ) -> Result<RunOutcome, VmError> {
        let code = self
            .hooks
            .iter()
            .find(|(h, _)| *h == hook)
            .map(|(_, c)| *c)
            .ok_or_else(|| VmError::NoSuchHook(hook.to_string()))?;
        self.machine.ctx = *ctx;
        let result = self.machine.run(&self.codes, code, env);
        *ctx = self.machine.ctx;
        result.map_err(|e| match e {
            VmError::InsnLimit { limit, .. } => VmError::InsnLimit {
                hook: hook.to_string(),
                limit,
            },
            e => e,
        })
    }

    fn map(&self, name: &str) -> Result<&Map, VmError> {
        self.machine
            .maps
            .iter()
            .find(|m| m.name == name)
            .ok_or_else(|| VmError::NoSuchMap(name.to_string()))
    }

    fn map_mut(&mut self, name: &str) -> Result<&mut Map, VmError> {
        self.machine
            .maps
            .iter_mut()
            .find(|m| m.name == name)
            .ok_or_else(|| VmError::NoSuchMap(name.to_string()))
    }

    /// The value under `key` in map `map` (no LRU effect). For a per-CPU map this is CPU 0's
    /// copy; [`Vm::lookup_percpu`] gives every CPU's. `None` for a missing key or map.
    pub fn lookup(&self, map: &str, key: &[u8]) -> Option<Vec<u8>> {
        let m = self.map(map).ok()?;
        if key.len() != m.key_size {
            return None;
        }
        m.peek(key, 0).map(|s| m.value(s).to_vec())
    }

    /// Every CPU's copy of the value under `key` of a per-CPU map (one element for other maps).
    pub fn lookup_percpu(&self, map: &str, key: &[u8]) -> Option<Vec<Vec<u8>>> {
        let m = self.map(map).ok()?;
        if key.len() != m.key_size {
            return None;
        }
        if m.kind != MapKind::PercpuArray {
            return self.lookup(map, key).map(|v| vec![v]);
        }
        (0..self.machine.cpus)
            .map(|c| m.peek(key, c).map(|s| m.value(s).to_vec()))
            .collect()
    }

    /// Writes `value` under `key` (`BPF_ANY`). For a per-CPU map, a value of one entry's size
    /// is written to every CPU's copy, and `cpus` values one after the other to each CPU's.
    pub fn update(&mut self, map: &str, key: &[u8], value: &[u8]) -> Result<(), VmError> {
        let cpus = self.machine.cpus;
        let m = self.map_mut(map)?;
        let err = |m: &Map, reason: String| VmError::MapAccess {
            map: m.name.clone(),
            reason,
        };
        if key.len() != m.key_size {
            return Err(err(
                m,
                format!(
                    "a key of {} bytes; the map's keys have {}",
                    key.len(),
                    m.key_size
                ),
            ));
        }
        if m.kind == MapKind::Ringbuf {
            return Err(err(m, "a ring buffer has no keys".into()));
        }
        let vs = m.value_size;
        let result =
            if m.kind == MapKind::PercpuArray && value.len() == vs * cpus as usize && cpus > 1 {
                (0..cpus).try_for_each(|c| {
                    m.update(
                        key,
                        &value[c as usize * vs..(c as usize + 1) * vs],
                        0,
                        Some(c),
                        cpus,
                    )
                })
            } else if value.len() == vs {
                m.update(key, value, 0, None, cpus)
            } else {
                return Err(err(
                    m,
                    format!(
                        "a value of {} bytes; the map's values have {vs}",
                        value.len()
                    ),
                ));
            };
        result.map_err(|e| err(m, format!("the update fails with errno {e}")))
    }

    /// Deletes `key` from a hash map.
    pub fn delete(&mut self, map: &str, key: &[u8]) -> Result<(), VmError> {
        let m = self.map_mut(map)?;
        if key.len() != m.key_size {
            return Err(VmError::MapAccess {
                map: m.name.clone(),
                reason: format!(
                    "a key of {} bytes; the map's keys have {}",
                    key.len(),
                    m.key_size
                ),
            });
        }
        m.delete(key).map_err(|e| VmError::MapAccess {
            map: m.name.clone(),
            reason: format!("the delete fails with errno {e}"),
        })
    }

    /// Every key of `map`: each index of an array, the keys present in a hash map (in byte
    /// order). Empty for a missing map or a ring buffer.
    pub fn keys(&self, map: &str) -> Vec<Vec<u8>> {
        self.map(map).map(Map::keys).unwrap_or_default()
    }

    /// The records written with `bpf_ringbuf_output` and not yet taken.
    pub fn events(&self) -> &[Event] {
        &self.machine.events
    }

    /// Takes the records written with `bpf_ringbuf_output`, freeing their space in the ring
    /// buffers.
    pub fn take_events(&mut self) -> Vec<Event> {
        for m in &mut self.machine.maps {
            m.ring_pending = 0;
        }
        std::mem::take(&mut self.machine.events)
    }
}

#[cfg(test)]
mod tests;
