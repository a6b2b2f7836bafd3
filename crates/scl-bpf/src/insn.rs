//! BPF instructions: their encoding (8 bytes, little-endian) and a disassembler whose text
//! follows the kernel's and bpftool's notation (`r1 = *(u64 *)(r10 -8)`).

/// One BPF instruction (an `ld_imm64` is two of these).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    /// Opcode: class | size/op | mode/source.
    pub code: u8,
    /// Destination register.
    pub dst: u8,
    /// Source register.
    pub src: u8,
    /// Offset (jumps, memory, sign-extension width, signed division).
    pub off: i16,
    /// Immediate.
    pub imm: i32,
}

/// Instruction classes.
pub mod class {
    /// Wide load (`ld_imm64`).
    pub const LD: u8 = 0x00;
    /// Load from memory.
    pub const LDX: u8 = 0x01;
    /// Store an immediate.
    pub const ST: u8 = 0x02;
    /// Store a register.
    pub const STX: u8 = 0x03;
    /// 32-bit arithmetic.
    pub const ALU: u8 = 0x04;
    /// 64-bit jumps.
    pub const JMP: u8 = 0x05;
    /// 64-bit arithmetic.
    pub const ALU64: u8 = 0x07;
}

/// Memory access sizes.
pub mod size {
    /// 4 bytes.
    pub const W: u8 = 0x00;
    /// 2 bytes.
    pub const H: u8 = 0x08;
    /// 1 byte.
    pub const B: u8 = 0x10;
    /// 8 bytes.
    pub const DW: u8 = 0x18;
}

/// Arithmetic operations (high nibble).
pub mod alu {
    pub const ADD: u8 = 0x00;
    pub const SUB: u8 = 0x10;
    pub const MUL: u8 = 0x20;
    pub const DIV: u8 = 0x30;
    pub const OR: u8 = 0x40;
    pub const AND: u8 = 0x50;
    pub const LSH: u8 = 0x60;
    pub const RSH: u8 = 0x70;
    pub const NEG: u8 = 0x80;
    pub const MOD: u8 = 0x90;
    pub const XOR: u8 = 0xa0;
    pub const MOV: u8 = 0xb0;
    pub const ARSH: u8 = 0xc0;
}

/// Jump operations (high nibble).
pub mod jmp {
    pub const JA: u8 = 0x00;
    pub const JEQ: u8 = 0x10;
    pub const JGT: u8 = 0x20;
    pub const JGE: u8 = 0x30;
    pub const JSET: u8 = 0x40;
    pub const JNE: u8 = 0x50;
    pub const JSGT: u8 = 0x60;
    pub const JSGE: u8 = 0x70;
    pub const CALL: u8 = 0x80;
    pub const EXIT: u8 = 0x90;
    pub const JLT: u8 = 0xa0;
    pub const JLE: u8 = 0xb0;
    pub const JSLT: u8 = 0xc0;
    pub const JSLE: u8 = 0xd0;
}

/// Source operand: immediate (K) or register (X).
pub const SRC_K: u8 = 0x00;
/// Source operand: register.
pub const SRC_X: u8 = 0x08;
/// Memory mode.
pub const MODE_MEM: u8 = 0x60;
/// Immediate mode (`ld_imm64`).
pub const MODE_IMM: u8 = 0x00;
/// Atomic mode.
pub const MODE_ATOMIC: u8 = 0xc0;
/// `imm` of an atomic: fetch the old value.
pub const ATOMIC_FETCH: i32 = 0x01;
/// `imm` of an atomic: compare-and-exchange.
pub const ATOMIC_CMPXCHG: i32 = 0xf0 | ATOMIC_FETCH;

impl Insn {
    /// True for the instructions of BPF ISA v4 (Linux 6.6+): sign-extending moves and
    /// loads, signed division and modulo, unconditional byte swaps and the 32-bit-offset
    /// `gotol`. The code generator never emits them, so programs load on Debian 12's 6.1
    /// (`emit::compile` checks its output in debug builds; the tests run in debug).
    pub fn is_isa_v4(&self) -> bool {
        let class = self.code & 0x07;
        let op = self.code & 0xf0;
        match class {
            class::ALU | class::ALU64 => {
                (op == alu::MOV && self.off != 0)
                    || (matches!(op, alu::DIV | alu::MOD) && self.off != 0)
                    || (class == class::ALU64 && op == 0xd0)
            }
            class::LDX => self.code & 0xe0 == 0x80,
            0x06 => op == jmp::JA,
            _ => false,
        }
    }

    /// The 8 bytes of the instruction.
    pub fn encode(&self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0] = self.code;
        b[1] = (self.src << 4) | (self.dst & 0x0f);
        b[2..4].copy_from_slice(&self.off.to_le_bytes());
        b[4..8].copy_from_slice(&self.imm.to_le_bytes());
        b
    }

    /// Decodes 8 bytes.
    pub fn decode(b: [u8; 8]) -> Insn {
        Insn {
            code: b[0],
            dst: b[1] & 0x0f,
            src: b[1] >> 4,
            off: i16::from_le_bytes([b[2], b[3]]),
            imm: i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    /// The instruction class.
    pub fn class(&self) -> u8 {
        self.code & 0x07
    }

    /// True for the first slot of an `ld_imm64`.
    pub fn is_wide(&self) -> bool {
        self.code == (class::LD | size::DW | MODE_IMM)
    }
}

fn size_name(code: u8) -> &'static str {
    match code & 0x18 {
        size::B => "u8",
        size::H => "u16",
        size::W => "u32",
        _ => "u64",
    }
}

fn off(o: i16) -> String {
    if o >= 0 {
        format!("+{o}")
    } else {
        format!("{o}")
    }
}

/// Disassembles `insns`, one line per instruction (an `ld_imm64` takes one line for its two
/// slots). `helper` names helper ids; `reloc` names the target of an `ld_imm64` at an index.
pub fn disassemble(insns: &[Insn], helper: &dyn Fn(i32) -> String, reloc: &dyn Fn(usize) -> Option<String>) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < insns.len() {
        let n = insns[i];
        let text = match n.class() {
            class::LD if n.is_wide() => {
                let hi = insns.get(i + 1).map_or(0, |h| h.imm);
                let value = (i64::from(hi) << 32) | i64::from(n.imm as u32);
                let t = match reloc(i) {
                    Some(target) => format!("r{} = {target} ll", n.dst),
                    None => format!("r{} = {value:#x} ll", n.dst),
                };
                out.push((i, t));
                i += 2;
                continue;
            }
            class::LDX => {
                if n.code & 0xe0 == 0x80 {
                    format!("r{} = *(s{} *)(r{} {})", n.dst, &size_name(n.code)[1..], n.src, off(n.off))
                } else {
                    format!("r{} = *({} *)(r{} {})", n.dst, size_name(n.code), n.src, off(n.off))
                }
            }
            class::ST => format!("*({} *)(r{} {}) = {}", size_name(n.code), n.dst, off(n.off), n.imm),
            class::STX if n.code & 0xe0 == MODE_ATOMIC => {
                let sz = size_name(n.code);
                match n.imm {
                    x if x == ATOMIC_CMPXCHG => format!("r0 = atomic_cmpxchg(({sz} *)(r{} {}), r0, r{})", n.dst, off(n.off), n.src),
                    x if x == (alu::ADD as i32 | ATOMIC_FETCH) => {
                        format!("r{} = atomic_fetch_add(({sz} *)(r{} {}), r{})", n.src, n.dst, off(n.off), n.src)
                    }
                    x if x == alu::ADD as i32 => format!("lock *({sz} *)(r{} {}) += r{}", n.dst, off(n.off), n.src),
                    _ => format!("lock *({sz} *)(r{} {}) op {:#x} r{}", n.dst, off(n.off), n.imm, n.src),
                }
            }
            class::STX => format!("*({} *)(r{} {}) = r{}", size_name(n.code), n.dst, off(n.off), n.src),
            class::ALU | class::ALU64 => {
                let w = if n.class() == class::ALU { "w" } else { "r" };
                let src = if n.code & SRC_X != 0 { format!("{w}{}", n.src) } else { format!("{}", n.imm) };
                let op = n.code & 0xf0;
                match op {
                    alu::NEG => format!("{w}{} = -{w}{}", n.dst, n.dst),
                    alu::MOV if n.off != 0 => format!("{w}{} = (s{}){w}{}", n.dst, n.off, n.src),
                    alu::MOV => format!("{w}{} = {src}", n.dst),
                    _ => {
                        let sym = match op {
                            alu::ADD => "+=",
                            alu::SUB => "-=",
                            alu::MUL => "*=",
                            alu::DIV if n.off == 1 => "s/=",
                            alu::DIV => "/=",
                            alu::OR => "|=",
                            alu::AND => "&=",
                            alu::LSH => "<<=",
                            alu::RSH => ">>=",
                            alu::MOD if n.off == 1 => "s%=",
                            alu::MOD => "%=",
                            alu::XOR => "^=",
                            alu::ARSH => "s>>=",
                            _ => "?=",
                        };
                        format!("{w}{} {sym} {src}", n.dst)
                    }
                }
            }
            class::JMP => {
                let op = n.code & 0xf0;
                let target = format!("goto {}", off(n.off));
                match op {
                    jmp::JA => target,
                    jmp::CALL => format!("call {}", helper(n.imm)),
                    jmp::EXIT => "exit".to_string(),
                    _ => {
                        let sym = match op {
                            jmp::JEQ => "==",
                            jmp::JGT => ">",
                            jmp::JGE => ">=",
                            jmp::JSET => "&",
                            jmp::JNE => "!=",
                            jmp::JSGT => "s>",
                            jmp::JSGE => "s>=",
                            jmp::JLT => "<",
                            jmp::JLE => "<=",
                            jmp::JSLT => "s<",
                            jmp::JSLE => "s<=",
                            _ => "?",
                        };
                        let src = if n.code & SRC_X != 0 { format!("r{}", n.src) } else { format!("{:#x}", n.imm) };
                        format!("if r{} {sym} {src} {target}", n.dst)
                    }
                }
            }
            _ => format!("(unknown {:#04x})", n.code),
        };
        out.push((i, text));
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ISA v4 instructions are told from their v3 look-alikes by their offset or code.
    #[test]
    fn isa_v4_instructions_are_recognised() {
        let i = |code: u8, off: i16| Insn { code, dst: 1, src: 2, off, imm: 0 };
        let v4 = [
            i(class::ALU64 | alu::MOV | SRC_X, 8),
            i(class::ALU | alu::MOV | SRC_X, 16),
            i(class::ALU64 | alu::DIV | SRC_X, 1),
            i(class::ALU64 | alu::MOD | SRC_K, 1),
            i(class::ALU64 | 0xd0, 0),
            i(class::LDX | size::W | 0x80, 0),
            i(0x06 | jmp::JA, 0),
        ];
        let v3 = [
            i(class::ALU64 | alu::MOV | SRC_X, 0),
            i(class::ALU64 | alu::DIV | SRC_X, 0),
            i(class::ALU | 0xd0, 0),
            i(class::LDX | size::DW | MODE_MEM, -8),
            i(class::JMP | jmp::JA, 3),
            i(0x06 | jmp::JEQ, 2),
        ];
        assert!(v4.iter().all(Insn::is_isa_v4), "{v4:?}");
        assert!(!v3.iter().any(Insn::is_isa_v4), "{v3:?}");
    }

    #[test]
    fn encoding_round_trips() {
        let i = Insn { code: class::STX | size::DW | MODE_MEM, dst: 10, src: 1, off: -8, imm: 0 };
        assert_eq!(i.encode(), [0x7b, 0x1a, 0xf8, 0xff, 0, 0, 0, 0]);
        assert_eq!(Insn::decode(i.encode()), i);
    }

    #[test]
    fn disassembly_reads_like_bpftool() {
        let prog = [
            Insn { code: class::ALU64 | alu::MOV | SRC_X, dst: 2, src: 10, off: 0, imm: 0 },
            Insn { code: class::ALU64 | alu::ADD | SRC_K, dst: 2, src: 0, off: 0, imm: -8 },
            Insn { code: class::JMP | jmp::CALL, dst: 0, src: 0, off: 0, imm: 1 },
            Insn { code: class::JMP | jmp::JEQ | SRC_K, dst: 0, src: 0, off: 1, imm: 0 },
            Insn { code: class::LDX | size::W | MODE_MEM, dst: 1, src: 0, off: 4, imm: 0 },
            Insn { code: class::JMP | jmp::EXIT, dst: 0, src: 0, off: 0, imm: 0 },
        ];
        let text: Vec<String> = disassemble(&prog, &|id| format!("#{id}"), &|_| None).into_iter().map(|(_, t)| t).collect();
        assert_eq!(text, ["r2 = r10", "r2 += -8", "call #1", "if r0 == 0x0 goto +1", "r1 = *(u32 *)(r0 +4)", "exit"]);
    }
}
