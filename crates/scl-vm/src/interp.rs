//! The interpreter: instruction semantics, the helpers, and the check every program passes
//! before it may run.
//!
//! Programs are checked once, when the VM is built ([`validate`]): known opcodes only,
//! registers in range, jumps that land on an instruction, helpers the VM implements. The
//! loop in [`Machine::exec`] can then dispatch on the opcode without re-checking encodings;
//! what it checks on every instruction is what depends on values: memory accesses (through
//! `mem.rs`'s regions), helper arguments and the instruction budget.

use crate::maps::{self, Map};
use crate::mem::{
    self, FRAME, REGION_CTX, REGION_FUNC, REGION_MAP0, REGION_MAP_HANDLE, REGION_RODATA,
    REGION_STACK,
};
use crate::{Code, Env, Event, RunOutcome, VmError};
use scl_bpf::insn::{
    alu, class, jmp, size, ATOMIC_CMPXCHG, ATOMIC_FETCH, MODE_ATOMIC, MODE_IMM, MODE_MEM, SRC_X,
};
use scl_catalogue::MapKind;

/// Instructions one run may execute (callbacks included) unless [`crate::Vm::set_insn_limit`]
/// says otherwise: a safety net, as every accepted program is bounded far below it.
pub const DEFAULT_INSN_LIMIT: u64 = 1_000_000;
/// Frames: the program and nested `bpf_loop` callbacks, as the kernel's `MAX_CALL_FRAMES`.
const MAX_DEPTH: usize = 8;
/// The 32-bit jump class.
const JMP32: u8 = 0x06;
/// Sign-extending loads (ISA v4).
const MODE_MEMSX: u8 = 0x80;
/// Byte swaps.
const END: u8 = 0xd0;
/// `bpf_loop`'s limit on iterations.
const BPF_MAX_LOOPS: u64 = 1 << 23;

/// Helper ids.
mod helper {
    pub const MAP_LOOKUP: i32 = 1;
    pub const MAP_UPDATE: i32 = 2;
    pub const MAP_DELETE: i32 = 3;
    pub const KTIME: i32 = 5;
    pub const PRANDOM: i32 = 7;
    pub const SMP_ID: i32 = 8;
    pub const PID_TGID: i32 = 14;
    pub const GET_STACKID: i32 = 27;
    pub const NUMA_ID: i32 = 42;
    pub const RINGBUF_OUTPUT: i32 = 130;
    pub const COPY_FROM_USER: i32 = 148;
    pub const LOOP: i32 = 181;
    pub const ALL: [i32; 12] = [
        MAP_LOOKUP,
        MAP_UPDATE,
        MAP_DELETE,
        KTIME,
        PRANDOM,
        SMP_ID,
        PID_TGID,
        GET_STACKID,
        NUMA_ID,
        RINGBUF_OUTPUT,
        COPY_FROM_USER,
        LOOP,
    ];
}

/// Atomic operations (`imm` of `STX | ATOMIC`).
const ATOMIC_XCHG: i32 = 0xe0 | ATOMIC_FETCH;
const ATOMIC_OPS: [i32; 4] = [
    alu::ADD as i32,
    alu::OR as i32,
    alu::AND as i32,
    alu::XOR as i32,
];

/// The machine state a run works on: memory and maps. Code is kept apart (in the `Vm`) so
/// a run can borrow it while it changes the machine.
#[derive(Clone, Debug)]
pub(crate) struct Machine {
    pub ctx: [u8; 128],
    stack: Vec<u8>,
    pub rodata: Vec<u8>,
    pub maps: Vec<Map>,
    pub events: Vec<Event>,
    pub cpus: u32,
    pub limit: u64,
    /// Helper calls of the current run.
    helper_calls: u64,
}

fn bad(code: &Code, pc: usize, reason: impl Into<String>) -> VmError {
    VmError::BadProgram {
        function: code.name.clone(),
        pc,
        reason: reason.into(),
    }
}

/// Checks that `code` holds only instructions the VM runs, with registers in range and
/// every jump landing on an instruction of the program.
pub(crate) fn validate(code: &Code) -> Result<(), VmError> {
    let insns = &code.insns;
    let n = insns.len();
    if n == 0 {
        return Err(bad(code, 0, "an empty program"));
    }
    let mut inner = vec![false; n];
    let mut targets = Vec::new();
    let mut pc = 0;
    while pc < n {
        let i = insns[pc];
        let fail = |why: &str| Err(bad(code, pc, format!("{why} (opcode {:#04x})", i.code)));
        let (d, s) = (i.dst, i.src);
        if d > 10 || s > 10 {
            return fail("a register beyond r10");
        }
        let op = i.code & 0xf0;
        let x = i.code & SRC_X != 0;
        match i.code & 7 {
            class::LD => {
                if i.code != class::LD | size::DW | MODE_IMM
                    || pc + 1 >= n
                    || insns[pc + 1].code != 0
                    || s != 0
                    || d == 10
                {
                    return fail("an LD instruction other than a plain ld_imm64");
                }
                inner[pc + 1] = true;
                pc += 2;
                continue;
            }
            class::LDX => {
                let ok_mode = match i.code & 0xe0 {
                    MODE_MEM => true,
                    MODE_MEMSX => i.code & 0x18 != size::DW,
                    _ => false,
                };
                if !ok_mode || d == 10 {
                    return fail("an unknown load");
                }
            }
            class::ST => {
                if i.code & 0xe0 != MODE_MEM {
                    return fail("an unknown store");
                }
            }
            class::STX => match i.code & 0xe0 {
                MODE_MEM => {}
                MODE_ATOMIC => {
                    let sz = i.code & 0x18;
                    let known = ATOMIC_OPS.contains(&i.imm)
                        || ATOMIC_OPS.iter().any(|o| o | ATOMIC_FETCH == i.imm)
                        || i.imm == ATOMIC_XCHG
                        || i.imm == ATOMIC_CMPXCHG;
                    if !(sz == size::W || sz == size::DW) || !known {
                        return fail("an unknown atomic operation");
                    }
                    if i.imm & ATOMIC_FETCH != 0 && s == 10 {
                        return fail("an atomic that writes r10");
                    }
                }
                _ => return fail("an unknown store"),
            },
            c @ (class::ALU | class::ALU64) => {
                if d == 10 {
                    return fail("an instruction that writes r10");
                }
                let ok = match op {
                    alu::ADD
                    | alu::SUB
                    | alu::MUL
                    | alu::OR
                    | alu::AND
                    | alu::LSH
                    | alu::RSH
                    | alu::XOR
                    | alu::ARSH => i.off == 0,
                    alu::DIV | alu::MOD => i.off == 0 || i.off == 1,
                    alu::NEG => !x && i.off == 0,
                    alu::MOV if x => {
                        matches!(i.off, 0 | 8 | 16) || (c == class::ALU64 && i.off == 32)
                    }
                    alu::MOV => i.off == 0,
                    END => matches!(i.imm, 16 | 32 | 64) && (c == class::ALU || !x),
                    _ => false,
                };
                if !ok {
                    return fail("an unknown arithmetic instruction");
                }
            }
            c @ (class::JMP | JMP32) => match op {
                jmp::JA => targets.push((
                    pc,
                    pc as i64
                        + 1
                        + if c == JMP32 {
                            i64::from(i.imm)
                        } else {
                            i64::from(i.off)
                        },
                )),
                jmp::CALL if c == class::JMP => {
                    if s != 0 {
                        return fail("a call of something other than a helper (BPF-to-BPF calls and kfuncs are not run)");
                    }
                    if !helper::ALL.contains(&i.imm) {
                        return Err(bad(
                            code,
                            pc,
                            format!("helper {} is not implemented by the VM", i.imm),
                        ));
                    }
                }
                jmp::EXIT if c == class::JMP => {}
                jmp::JEQ
                | jmp::JGT
                | jmp::JGE
                | jmp::JSET
                | jmp::JNE
                | jmp::JSGT
                | jmp::JSGE
                | jmp::JLT
                | jmp::JLE
                | jmp::JSLT
                | jmp::JSLE => {
                    targets.push((pc, pc as i64 + 1 + i64::from(i.off)));
                }
                _ => return fail("an unknown jump"),
            },
            _ => return fail("an unknown instruction class"),
        }
        pc += 1;
    }
    for (from, to) in targets {
        if to < 0 || to as usize >= n || inner[to as usize] {
            return Err(bad(
                code,
                from,
                format!("a jump to {to}, which is not an instruction of the program"),
            ));
        }
    }
    Ok(())
}

#[inline(always)]
fn alu64(op: u8, off: i16, d: u64, s: u64) -> u64 {
    match op {
        alu::ADD => d.wrapping_add(s),
        alu::SUB => d.wrapping_sub(s),
        alu::MUL => d.wrapping_mul(s),
        alu::DIV if off == 1 => {
            if s == 0 {
                0
            } else {
                (d as i64).wrapping_div(s as i64) as u64
            }
        }
        alu::DIV => d.checked_div(s).unwrap_or(0),
        alu::MOD if off == 1 => {
            if s == 0 {
                d
            } else {
                (d as i64).wrapping_rem(s as i64) as u64
            }
        }
        alu::MOD => d.checked_rem(s).unwrap_or(d),
        alu::OR => d | s,
        alu::AND => d & s,
        alu::XOR => d ^ s,
        alu::LSH => d.wrapping_shl(s as u32),
        alu::RSH => d.wrapping_shr(s as u32),
        alu::ARSH => (d as i64).wrapping_shr(s as u32) as u64,
        alu::NEG => (d as i64).wrapping_neg() as u64,
        alu::MOV => match off {
            8 => s as i8 as i64 as u64,
            16 => s as i16 as i64 as u64,
            32 => s as i32 as i64 as u64,
            _ => s,
        },
        // END (64-bit: an unconditional byte swap, ISA v4), with the width in `s`.
        _ => match s {
            16 => u64::from((d as u16).swap_bytes()),
            32 => u64::from((d as u32).swap_bytes()),
            _ => d.swap_bytes(),
        },
    }
}

#[inline(always)]
fn alu32(op: u8, off: i16, d: u32, s: u32) -> u32 {
    match op {
        alu::ADD => d.wrapping_add(s),
        alu::SUB => d.wrapping_sub(s),
        alu::MUL => d.wrapping_mul(s),
        alu::DIV if off == 1 => {
            if s == 0 {
                0
            } else {
                (d as i32).wrapping_div(s as i32) as u32
            }
        }
        alu::DIV => d.checked_div(s).unwrap_or(0),
        alu::MOD if off == 1 => {
            if s == 0 {
                d
            } else {
                (d as i32).wrapping_rem(s as i32) as u32
            }
        }
        alu::MOD => d.checked_rem(s).unwrap_or(d),
        alu::OR => d | s,
        alu::AND => d & s,
        alu::XOR => d ^ s,
        alu::LSH => d.wrapping_shl(s),
        alu::RSH => d.wrapping_shr(s),
        alu::ARSH => (d as i32).wrapping_shr(s) as u32,
        alu::NEG => (d as i32).wrapping_neg() as u32,
        alu::MOV => match off {
            8 => s as i8 as i32 as u32,
            16 => s as i16 as i32 as u32,
            _ => s,
        },
        _ => d,
    }
}

/// `END` in the 32-bit class: to little-endian (`K`, a truncation on this little-endian
/// machine) or big-endian (`X`, a byte swap) of the low `width` bits.
#[inline(always)]
fn end32(to_be: bool, d: u64, width: i32) -> u64 {
    match (to_be, width) {
        (false, 16) => d & 0xffff,
        (false, 32) => d & 0xffff_ffff,
        (false, _) => d,
        (true, 16) => u64::from((d as u16).swap_bytes()),
        (true, 32) => u64::from((d as u32).swap_bytes()),
        (true, _) => d.swap_bytes(),
    }
}

#[inline(always)]
fn cond(op: u8, a: u64, b: u64, sa: i64, sb: i64) -> bool {
    match op {
        jmp::JEQ => a == b,
        jmp::JNE => a != b,
        jmp::JGT => a > b,
        jmp::JGE => a >= b,
        jmp::JLT => a < b,
        jmp::JLE => a <= b,
        jmp::JSET => a & b != 0,
        jmp::JSGT => sa > sb,
        jmp::JSGE => sa >= sb,
        jmp::JSLT => sa < sb,
        _ => sa <= sb,
    }
}

#[inline(always)]
fn bytes_of(size_code: u8) -> usize {
    match size_code {
        size::B => 1,
        size::H => 2,
        size::W => 4,
        _ => 8,
    }
}

/// The stand-in kernel stack `bpf_get_stackid` records in the simulator, innermost frame
/// first: the call site, `SIM_TEXT_BASE + program << 20 + pc * 8` (program: the hook's
/// index in the compiled module), then the calling task, `SIM_TEXT_BASE + 1 << 27 + tid`.
/// One call site and one task always give the same stack, hence the same id; other tasks,
/// or other sites, give other stacks, as callers on a real kernel do. The frames lie above
/// any real kernel text, so no tool takes them for real ones.
pub fn stand_in_stack(program: usize, pc: usize, tid: u32) -> [u64; 2] {
    let base = scl_catalogue::kstack::SIM_TEXT_BASE;
    [base + ((program as u64) << 20) + pc as u64 * 8, base + (1 << 27) + u64::from(tid & 0x07ff_ffff)]
}

/// Arguments of one helper call, and where it is (for errors).
struct Call<'a> {
    code: &'a Code,
    pc: usize,
    id: i32,
    r: [u64; 5],
}

impl Call<'_> {
    fn error(&self, reason: impl Into<String>) -> VmError {
        VmError::BadHelperCall {
            function: self.code.name.clone(),
            pc: self.pc,
            helper: self.id,
            reason: reason.into(),
        }
    }
}

fn errno(e: i64) -> u64 {
    (-e) as u64
}

impl Machine {
    pub fn new(maps: Vec<Map>, rodata: Vec<u8>, cpus: u32) -> Machine {
        Machine {
            ctx: [0; 128],
            stack: vec![0; FRAME * MAX_DEPTH],
            rodata,
            maps,
            events: Vec::new(),
            cpus,
            limit: DEFAULT_INSN_LIMIT,
            helper_calls: 0,
        }
    }

    /// The bytes at `a..a + len`, if they lie inside one piece of memory the program may
    /// access (for a store: may write).
    #[inline(always)]
    fn mem(&mut self, a: u64, len: usize, write: bool) -> Option<&mut [u8]> {
        let (region, slot, off) = mem::split(a);
        let off = off as usize;
        match region {
            REGION_STACK => {
                let slot = slot as usize;
                if slot < MAX_DEPTH && off + len <= FRAME {
                    let at = slot * FRAME + off;
                    self.stack.get_mut(at..at + len)
                } else {
                    None
                }
            }
            REGION_CTX if slot == 0 => self.ctx.get_mut(off..off + len),
            REGION_RODATA if slot == 0 && !write => self.rodata.get_mut(off..off + len),
            r if r >= REGION_MAP0 => {
                let m = self.maps.get_mut((r - REGION_MAP0) as usize)?;
                let vs = m.value_size;
                if off + len <= vs {
                    let at = slot as usize * vs + off;
                    m.data.get_mut(at..at + len)
                } else {
                    None
                }
            }
            _ => None,
        }
    }

    /// Loads `n` (1, 2, 4 or 8) bytes, zero-extended. One fixed-size read per size: a
    /// variable-length copy would cost a call and a store-forwarding stall per load.
    #[inline(always)]
    fn load(&mut self, a: u64, n: usize) -> Option<u64> {
        let s = self.mem(a, n, false)?;
        Some(match n {
            1 => u64::from(s[0]),
            2 => u64::from(u16::from_le_bytes(s.try_into().ok()?)),
            4 => u64::from(u32::from_le_bytes(s.try_into().ok()?)),
            _ => u64::from_le_bytes(s.try_into().ok()?),
        })
    }

    /// Stores the low `n` (1, 2, 4 or 8) bytes of `v`.
    #[inline(always)]
    fn store(&mut self, a: u64, n: usize, v: u64) -> Option<()> {
        let s = self.mem(a, n, true)?;
        match n {
            1 => s[0] = v as u8,
            2 => s.copy_from_slice(&(v as u16).to_le_bytes()),
            4 => s.copy_from_slice(&(v as u32).to_le_bytes()),
            _ => s.copy_from_slice(&v.to_le_bytes()),
        }
        Some(())
    }

    /// Copies `len` bytes at `a` out of VM memory.
    fn read(&mut self, a: u64, len: usize) -> Option<Vec<u8>> {
        self.mem(a, len, false).map(|s| s.to_vec())
    }

    /// Runs code `k` as the program of a run.
    pub fn run(
        &mut self,
        codes: &[Code],
        k: usize,
        env: &mut dyn Env,
    ) -> Result<RunOutcome, VmError> {
        let mut count = 0u64;
        self.helper_calls = 0;
        let ret = self.exec(codes, k, 0, mem::addr(REGION_CTX, 0, 0), 0, env, &mut count)?;
        Ok(RunOutcome {
            ret,
            insns: count,
            helpers: self.helper_calls,
        })
    }

    fn access_error(
        codes: &[Code],
        k: usize,
        pc: usize,
        a: u64,
        size: usize,
        write: bool,
    ) -> VmError {
        let code = &codes[k];
        let end = (pc + 2).min(code.insns.len());
        let text = scl_bpf::insn::disassemble(
            &code.insns[pc..end],
            &|id| scl_ir::print::helper_name(id as u32),
            &|_| None,
        )
        .into_iter()
        .next()
        .map_or_else(String::new, |(_, t)| t);
        VmError::BadAccess {
            function: code.name.clone(),
            pc,
            insn: text,
            addr: a,
            size,
            write,
        }
    }

    /// Runs code `k` in frame `depth` with `r1`, `r2` as arguments; returns `r0`.
    #[allow(clippy::too_many_arguments)]
    fn exec(
        &mut self,
        codes: &[Code],
        k: usize,
        depth: usize,
        r1: u64,
        r2: u64,
        env: &mut dyn Env,
        count: &mut u64,
    ) -> Result<u64, VmError> {
        let code = &codes[k];
        let insns = &code.insns[..];
        let mut r = [0u64; 16];
        r[1] = r1;
        r[2] = r2;
        r[10] = mem::frame_pointer(depth);
        // The frame starts zeroed, as far as the program uses it: its stack reads do not
        // depend on what ran before.
        let used = code.stack.min(FRAME);
        if let Some(frame) = self
            .stack
            .get_mut((depth + 1) * FRAME - used..(depth + 1) * FRAME)
        {
            frame.fill(0);
        }
        let limit = self.limit;
        // Kept in a local (a register) and written back around helper calls.
        let mut n = *count;
        let mut pc = 0usize;
        loop {
            let Some(&i) = insns.get(pc) else {
                *count = n;
                return Err(bad(code, pc, "control ran past the end of the program"));
            };
            n += 1;
            if n > limit {
                *count = n;
                return Err(VmError::InsnLimit {
                    hook: code.name.clone(),
                    limit,
                });
            }
            let at = pc;
            pc += 1;
            let d = usize::from(i.dst & 15);
            let s = usize::from(i.src & 15);
            let op = i.code & 0xf0;
            match i.code & 7 {
                class::ALU64 => {
                    let src = if i.code & SRC_X != 0 {
                        r[s]
                    } else {
                        i.imm as i64 as u64
                    };
                    r[d] = if op == END {
                        alu64(END, 0, r[d], i.imm as u64)
                    } else {
                        alu64(op, i.off, r[d], src)
                    };
                }
                class::ALU => {
                    r[d] = if op == END {
                        end32(i.code & SRC_X != 0, r[d], i.imm)
                    } else {
                        let src = if i.code & SRC_X != 0 {
                            r[s] as u32
                        } else {
                            i.imm as u32
                        };
                        u64::from(alu32(op, i.off, r[d] as u32, src))
                    };
                }
                class::LDX => {
                    let n = bytes_of(i.code & 0x18);
                    let a = r[s].wrapping_add(i.off as i64 as u64);
                    let v = self
                        .load(a, n)
                        .ok_or_else(|| Self::access_error(codes, k, at, a, n, false))?;
                    r[d] = if i.code & 0xe0 == MODE_MEMSX {
                        match n {
                            1 => v as i8 as i64 as u64,
                            2 => v as i16 as i64 as u64,
                            _ => v as i32 as i64 as u64,
                        }
                    } else {
                        v
                    };
                }
                class::ST => {
                    let n = bytes_of(i.code & 0x18);
                    let a = r[d].wrapping_add(i.off as i64 as u64);
                    self.store(a, n, i.imm as i64 as u64)
                        .ok_or_else(|| Self::access_error(codes, k, at, a, n, true))?;
                }
                class::STX => {
                    let n = bytes_of(i.code & 0x18);
                    let a = r[d].wrapping_add(i.off as i64 as u64);
                    if i.code & 0xe0 == MODE_ATOMIC {
                        let old = self
                            .load(a, n)
                            .ok_or_else(|| Self::access_error(codes, k, at, a, n, true))?;
                        let mask = if n == 4 { 0xffff_ffff } else { u64::MAX };
                        let src = r[s] & mask;
                        let new = match i.imm {
                            x if x == ATOMIC_CMPXCHG => {
                                let new = if old == r[0] & mask { src } else { old };
                                r[0] = old;
                                new
                            }
                            x if x == ATOMIC_XCHG => src,
                            x => alu64((x & 0xf0) as u8, 0, old, src) & mask,
                        };
                        self.store(a, n, new)
                            .ok_or_else(|| Self::access_error(codes, k, at, a, n, true))?;
                        if i.imm & ATOMIC_FETCH != 0 && i.imm != ATOMIC_CMPXCHG {
                            r[s] = old;
                        }
                    } else {
                        self.store(a, n, r[s])
                            .ok_or_else(|| Self::access_error(codes, k, at, a, n, true))?;
                    }
                }
                class::LD => {
                    let hi = insns.get(pc).map_or(0, |h| h.imm as u32 as u64);
                    r[d] = (i.imm as u32 as u64) | (hi << 32);
                    pc += 1;
                }
                class::JMP => match op {
                    jmp::JA => pc = pc.wrapping_add_signed(isize::from(i.off)),
                    jmp::EXIT => {
                        *count = n;
                        return Ok(r[0]);
                    }
                    jmp::CALL => {
                        let call = Call {
                            code,
                            pc: at,
                            id: i.imm,
                            r: [r[1], r[2], r[3], r[4], r[5]],
                        };
                        *count = n;
                        r[0] = self.helper(codes, &call, depth, env, count)?;
                        n = *count;
                    }
                    _ => {
                        let b = if i.code & SRC_X != 0 {
                            r[s]
                        } else {
                            i.imm as i64 as u64
                        };
                        if cond(op, r[d], b, r[d] as i64, b as i64) {
                            pc = pc.wrapping_add_signed(isize::from(i.off));
                        }
                    }
                },
                JMP32 => {
                    if op == jmp::JA {
                        pc = pc.wrapping_add_signed(i.imm as isize);
                    } else {
                        let b = if i.code & SRC_X != 0 {
                            r[s] as u32
                        } else {
                            i.imm as u32
                        };
                        let a = r[d] as u32;
                        if cond(
                            op,
                            u64::from(a),
                            u64::from(b),
                            i64::from(a as i32),
                            i64::from(b as i32),
                        ) {
                            pc = pc.wrapping_add_signed(isize::from(i.off));
                        }
                    }
                }
                _ => return Err(bad(code, at, "an unknown instruction class")),
            }
        }
    }

    fn map_arg(&self, call: &Call, a: u64) -> Result<usize, VmError> {
        mem::handle(a, REGION_MAP_HANDLE)
            .filter(|k| *k < self.maps.len())
            .ok_or_else(|| call.error(format!("{a:#x} is not a map")))
    }

    /// The CPU whose per-CPU copy a program sees.
    fn cpu(&self, env: &dyn Env) -> Result<u32, VmError> {
        let cpu = env.cpu();
        if cpu >= self.cpus {
            return Err(VmError::NoSuchCpu {
                cpu,
                cpus: self.cpus,
            });
        }
        Ok(cpu)
    }

    fn helper(
        &mut self,
        codes: &[Code],
        call: &Call,
        depth: usize,
        env: &mut dyn Env,
        count: &mut u64,
    ) -> Result<u64, VmError> {
        self.helper_calls += 1;
        let [r1, r2, r3, r4, _r5] = call.r;
        match call.id {
            helper::MAP_LOOKUP => {
                let k = self.map_arg(call, r1)?;
                let ks = self.maps[k].key_size;
                if self.maps[k].kind == MapKind::Ringbuf {
                    return Err(call.error("a ring buffer has no elements to look up"));
                }
                let mut buf = [0u8; 64];
                let key: Vec<u8>;
                let key = if ks <= 64 {
                    let s = self.mem(r2, ks, false).ok_or_else(|| {
                        call.error(format!("the key at {r2:#x} is outside memory"))
                    })?;
                    buf[..ks].copy_from_slice(s);
                    &buf[..ks]
                } else {
                    key = self.read(r2, ks).ok_or_else(|| {
                        call.error(format!("the key at {r2:#x} is outside memory"))
                    })?;
                    &key[..]
                };
                let cpu = if self.maps[k].kind == MapKind::PercpuArray {
                    self.cpu(env)?
                } else {
                    0
                };
                Ok(match self.maps[k].find(key, cpu) {
                    Some(slot) => mem::addr(REGION_MAP0 + k as u64, u64::from(slot), 0),
                    None => 0,
                })
            }
            helper::MAP_UPDATE => {
                let k = self.map_arg(call, r1)?;
                let (ks, vs, kind) = (
                    self.maps[k].key_size,
                    self.maps[k].value_size,
                    self.maps[k].kind,
                );
                if kind == MapKind::Ringbuf {
                    return Err(call.error("a ring buffer has no elements to update"));
                }
                let key = self
                    .read(r2, ks)
                    .ok_or_else(|| call.error(format!("the key at {r2:#x} is outside memory")))?;
                let value = self
                    .read(r3, vs)
                    .ok_or_else(|| call.error(format!("the value at {r3:#x} is outside memory")))?;
                let cpu = if kind == MapKind::PercpuArray {
                    Some(self.cpu(env)?)
                } else {
                    None
                };
                let cpus = self.cpus;
                Ok(match self.maps[k].update(&key, &value, r4, cpu, cpus) {
                    Ok(()) => 0,
                    Err(e) => errno(e),
                })
            }
            helper::MAP_DELETE => {
                let k = self.map_arg(call, r1)?;
                let ks = self.maps[k].key_size;
                let key = self
                    .read(r2, ks)
                    .ok_or_else(|| call.error(format!("the key at {r2:#x} is outside memory")))?;
                Ok(match self.maps[k].delete(&key) {
                    Ok(()) => 0,
                    Err(e) => errno(e),
                })
            }
            helper::KTIME => Ok(env.now_ns()),
            helper::PRANDOM => Ok(u64::from(env.random_u32())),
            helper::SMP_ID => Ok(u64::from(env.cpu())),
            helper::PID_TGID => Ok(env.pid_tgid()),
            helper::NUMA_ID => Ok(u64::from(env.numa_node())),
            helper::RINGBUF_OUTPUT => {
                let k = self.map_arg(call, r1)?;
                if self.maps[k].kind != MapKind::Ringbuf {
                    return Err(
                        call.error(format!("map `{}` is not a ring buffer", self.maps[k].name))
                    );
                }
                if r4 & !3 != 0 {
                    return Ok(errno(maps::EINVAL));
                }
                let data = self.read(r2, r3 as usize).ok_or_else(|| {
                    call.error(format!("{r3} bytes at {r2:#x} are outside memory"))
                })?;
                let m = &mut self.maps[k];
                // Each record takes an 8-byte header and is padded to 8 bytes.
                let need = (r3 + 8).div_ceil(8) * 8;
                if m.ring_pending + need > u64::from(m.max_entries) {
                    return Ok(errno(maps::EAGAIN));
                }
                m.ring_pending += need;
                let map = m.name.clone();
                self.events.push(Event { map, data });
                Ok(0)
            }
            helper::GET_STACKID => {
                // The simulator has no kernel stack: the stand-in is the call site (which
                // program, which instruction) over the calling task (docs/simulator.md).
                if mem::split(r1).0 != REGION_CTX {
                    return Err(call.error(format!("{r1:#x} is not the context")));
                }
                let k = self.map_arg(call, r2)?;
                if self.maps[k].kind != MapKind::StackTrace {
                    return Err(call.error(format!("map `{}` is not a stack-trace map", self.maps[k].name)));
                }
                let program = codes.iter().position(|c| std::ptr::eq(c, call.code)).unwrap_or(0);
                let frames = stand_in_stack(program, call.pc, env.pid_tgid() as u32);
                Ok(match self.maps[k].record_stack(&frames) {
                    Ok(id) => u64::from(id),
                    Err(e) => errno(e),
                })
            }
            helper::COPY_FROM_USER => {
                // No user memory in the simulator: the kernel zero-fills and fails.
                let dst = self.mem(r1, r2 as usize, true).ok_or_else(|| {
                    call.error(format!("{r2} bytes at {r1:#x} are outside writable memory"))
                })?;
                dst.fill(0);
                Ok(errno(maps::EFAULT))
            }
            helper::LOOP => {
                let (nr, func, ctx, flags) = (r1, r2, r3, r4);
                if flags != 0 {
                    return Ok(errno(maps::EINVAL));
                }
                if nr > BPF_MAX_LOOPS {
                    return Ok(errno(maps::E2BIG));
                }
                let cb = mem::handle(func, REGION_FUNC)
                    .filter(|k| *k < codes.len())
                    .ok_or_else(|| call.error(format!("{func:#x} is not a callback")))?;
                if nr == 0 {
                    return Ok(0);
                }
                if codes[cb].wait_until {
                    // The built-in wait: its loop polls the clock until `*(u64 *)ctx`; the
                    // simulated machine jumps there instead. Reported as one iteration.
                    let deadline = self.load(ctx, 8).ok_or_else(|| {
                        call.error(format!("the deadline at {ctx:#x} is outside memory"))
                    })?;
                    env.wait_until(deadline);
                    return Ok(1);
                }
                if depth + 1 >= MAX_DEPTH {
                    return Err(VmError::CallDepth {
                        function: call.code.name.clone(),
                        pc: call.pc,
                    });
                }
                for i in 0..nr {
                    if self.exec(codes, cb, depth + 1, i, ctx, env, count)? != 0 {
                        return Ok(i + 1);
                    }
                }
                Ok(nr)
            }
            other => Err(call.error(format!("helper {other} is not implemented"))),
        }
    }
}
