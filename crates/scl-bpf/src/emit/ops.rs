//! BPF encodings of the IR's operators and conditions, and the bodies of the built-in
//! `bpf_loop` callbacks.

use super::*;

pub(super) fn alu_op(op: BinOp) -> (u8, i16) {
    match op {
        BinOp::Add => (alu::ADD, 0),
        BinOp::Sub => (alu::SUB, 0),
        BinOp::Mul => (alu::MUL, 0),
        BinOp::UDiv => (alu::DIV, 0),
        BinOp::SDiv => (alu::DIV, 1),
        BinOp::URem => (alu::MOD, 0),
        BinOp::SRem => (alu::MOD, 1),
        BinOp::And => (alu::AND, 0),
        BinOp::Or => (alu::OR, 0),
        BinOp::Xor => (alu::XOR, 0),
        BinOp::Shl => (alu::LSH, 0),
        BinOp::LShr => (alu::RSH, 0),
        BinOp::AShr => (alu::ARSH, 0),
    }
}

pub(super) fn jmp_op(c: Cond) -> u8 {
    match c {
        Cond::Eq => jmp::JEQ,
        Cond::Ne => jmp::JNE,
        Cond::ULt => jmp::JLT,
        Cond::ULe => jmp::JLE,
        Cond::UGt => jmp::JGT,
        Cond::UGe => jmp::JGE,
        Cond::SLt => jmp::JSLT,
        Cond::SLe => jmp::JSLE,
        Cond::SGt => jmp::JSGT,
        Cond::SGe => jmp::JSGE,
    }
}

pub(super) fn negate(c: Cond) -> Cond {
    match c {
        Cond::Eq => Cond::Ne,
        Cond::Ne => Cond::Eq,
        Cond::ULt => Cond::UGe,
        Cond::ULe => Cond::UGt,
        Cond::UGt => Cond::ULe,
        Cond::UGe => Cond::ULt,
        Cond::SLt => Cond::SGe,
        Cond::SLe => Cond::SGt,
        Cond::SGt => Cond::SLe,
        Cond::SGe => Cond::SLt,
    }
}

pub(super) fn size_code(bytes: u8) -> u8 {
    match bytes {
        1 => size::B,
        2 => size::H,
        4 => size::W,
        _ => size::DW,
    }
}

pub(super) fn fits_imm(v: i64) -> bool {
    i32::try_from(v).is_ok()
}

/// The body of a built-in `bpf_loop` callback: `long name(u32 index, void *ctx)`.
pub fn callback(cb: Callback) -> Vec<Insn> {
    let i = |code: u8, dst: u8, src: u8, off: i16, imm: i32| Insn { code, dst, src, off, imm };
    match cb {
        // r6 = ctx; r0 = ktime_get_ns(); stop (return 1) once r0 >= *(u64 *)ctx.
        Callback::WaitUntil => vec![
            i(class::ALU64 | alu::MOV | SRC_X, 6, 2, 0, 0),
            i(class::JMP | jmp::CALL, 0, 0, 0, 5),
            i(class::LDX | size::DW | MODE_MEM, 1, 6, 0, 0),
            i(class::JMP | jmp::JGE | SRC_X, 0, 1, 2, 0),
            i(class::ALU64 | alu::MOV | SRC_K, 0, 0, 0, 0),
            i(class::JMP | jmp::EXIT, 0, 0, 0, 0),
            i(class::ALU64 | alu::MOV | SRC_K, 0, 0, 0, 1),
            i(class::JMP | jmp::EXIT, 0, 0, 0, 0),
        ],
    }
}

/// The symbol name of a callback in `.text`.
pub fn callback_name(cb: Callback) -> &'static str {
    match cb {
        Callback::WaitUntil => "scl_wait_until",
    }
}
