//! The BPF back end: from an IR function to BPF instructions, and back to text.
//!
//! [`compile`] selects instructions and allocates registers for one program (see
//! `emit/` for how) and cleans up the result (`peephole/`); [`insn`] encodes
//! instructions and disassembles them in the kernel's
//! notation for `sclc build --emit asm`. The result carries the relocations the object
//! writer turns into ELF relocations, and the source position of each instruction for
//! BTF line info. This crate makes no syscalls and writes no files.

#![deny(missing_docs)]

mod emit;
mod peephole;
mod promote;
#[allow(missing_docs)]
pub mod insn;

use scl_ir::MapId;
pub use scl_ir::Callback;
use scl_sema::hir::Loc;
use std::fmt;

pub use emit::{callback, callback_name, compile};

/// What an `ld_imm64` refers to, for the object writer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelocTarget {
    /// A map of the module.
    Map(MapId),
    /// A byte offset in `.rodata`.
    Rodata(u32),
    /// A built-in `bpf_loop` callback in `.text`.
    Callback(scl_ir::Callback),
}

/// One compiled program.
#[derive(Clone, Debug)]
pub struct Compiled {
    /// The instructions.
    pub insns: Vec<insn::Insn>,
    /// `ld_imm64` instructions (by index) that need a relocation.
    pub relocs: Vec<(usize, RelocTarget)>,
    /// Where instructions come from: (first instruction index, source position), in order.
    pub lines: Vec<(usize, Loc)>,
    /// Bytes of stack used.
    pub stack_size: u32,
}

/// Why a function could not be compiled. Each is a compiler bug or a limit the checker
/// should have caught first; the driver reports it as an internal error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CodegenError {
    /// The frame exceeds the 512-byte BPF stack.
    StackTooLarge(u32),
    /// A jump does not fit a 16-bit offset.
    TooLarge,
    /// The IR breaks an invariant the back end relies on.
    Malformed(&'static str),
}

impl fmt::Display for CodegenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodegenError::StackTooLarge(n) => write!(f, "the program needs {n} bytes of stack; BPF allows 512"),
            CodegenError::TooLarge => write!(f, "the program is too large for 16-bit jump offsets"),
            CodegenError::Malformed(what) => write!(f, "malformed IR: {what}"),
        }
    }
}

impl std::error::Error for CodegenError {}
