//! Unit tests: each instruction class on hand-assembled programs, the memory checks, the
//! program check, and the helpers on policies compiled by the real driver.

use super::*;
use scl_bpf::insn::{
    alu, class, jmp, size, Insn, ATOMIC_CMPXCHG, ATOMIC_FETCH, MODE_ATOMIC, MODE_IMM, MODE_MEM,
    SRC_K, SRC_X,
};

/// A simulated machine whose clock only moves when asked.
#[derive(Default)]
struct TestEnv {
    now: u64,
    cpu: u32,
    waits: Vec<u64>,
    rand: u32,
    /// The calling task's `pid_tgid`; 0 means `7 << 32 | 42`.
    task: u64,
}

impl Env for TestEnv {
    fn now_ns(&mut self) -> u64 {
        self.now
    }
    fn random_u32(&mut self) -> u32 {
        self.rand = self.rand.wrapping_mul(1_103_515_245).wrapping_add(12345);
        self.rand
    }
    fn cpu(&self) -> u32 {
        self.cpu
    }
    fn numa_node(&self) -> u32 {
        self.cpu / 4
    }
    fn pid_tgid(&self) -> u64 {
        if self.task != 0 {
            self.task
        } else {
            (7 << 32) | 42
        }
    }
    fn wait_until(&mut self, deadline_ns: u64) {
        self.waits.push(deadline_ns);
        self.now = self.now.max(deadline_ns);
    }
}

// A small assembler.
fn i(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        dst,
        src,
        off,
        imm,
    }
}
fn mov64(dst: u8, imm: i32) -> Insn {
    i(class::ALU64 | alu::MOV | SRC_K, dst, 0, 0, imm)
}
fn mov64x(dst: u8, src: u8) -> Insn {
    i(class::ALU64 | alu::MOV | SRC_X, dst, src, 0, 0)
}
fn alu64k(op: u8, dst: u8, imm: i32) -> Insn {
    i(class::ALU64 | op | SRC_K, dst, 0, 0, imm)
}
fn alu64x(op: u8, dst: u8, src: u8) -> Insn {
    i(class::ALU64 | op | SRC_X, dst, src, 0, 0)
}
fn alu32k(op: u8, dst: u8, imm: i32) -> Insn {
    i(class::ALU | op | SRC_K, dst, 0, 0, imm)
}
fn alu32x(op: u8, dst: u8, src: u8) -> Insn {
    i(class::ALU | op | SRC_X, dst, src, 0, 0)
}
fn lddw(dst: u8, v: u64) -> [Insn; 2] {
    [
        i(class::LD | size::DW | MODE_IMM, dst, 0, 0, v as u32 as i32),
        i(0, 0, 0, 0, (v >> 32) as u32 as i32),
    ]
}
fn ldx(sz: u8, dst: u8, src: u8, off: i16) -> Insn {
    i(class::LDX | sz | MODE_MEM, dst, src, off, 0)
}
fn stx(sz: u8, dst: u8, src: u8, off: i16) -> Insn {
    i(class::STX | sz | MODE_MEM, dst, src, off, 0)
}
fn st(sz: u8, dst: u8, off: i16, imm: i32) -> Insn {
    i(class::ST | sz | MODE_MEM, dst, 0, off, imm)
}
fn jk(op: u8, dst: u8, imm: i32, off: i16) -> Insn {
    i(class::JMP | op | SRC_K, dst, 0, off, imm)
}
fn jx(op: u8, dst: u8, src: u8, off: i16) -> Insn {
    i(class::JMP | op | SRC_X, dst, src, off, 0)
}
fn exit() -> Insn {
    i(class::JMP | jmp::EXIT, 0, 0, 0, 0)
}

fn vm_of(insns: Vec<Insn>) -> Result<Vm, VmError> {
    Vm::build(
        vec![("h", 0)],
        vec![Code {
            name: "h".into(),
            insns,
            stack: 512,
            wait_until: false,
        }],
        Vec::new(),
        vec![1, 2, 3, 4, 5, 6, 7, 8],
        1,
    )
}

fn run(insns: Vec<Insn>) -> Result<u64, VmError> {
    let mut vm = vm_of(insns)?;
    let mut ctx = [0u8; 128];
    for (k, b) in ctx.iter_mut().enumerate() {
        *b = k as u8;
    }
    vm.run("h", &mut ctx, &mut TestEnv::default())
        .map(|o| o.ret)
}

/// `r0 = <x>; <ops on r0 with r1 = y>; exit`.
fn calc(x: u64, y: u64, ops: &[Insn]) -> u64 {
    let mut p: Vec<Insn> = lddw(0, x).into_iter().chain(lddw(1, y)).collect();
    p.extend_from_slice(ops);
    p.push(exit());
    run(p).unwrap()
}

#[test]
fn alu32_wraps_and_zero_extends() {
    assert_eq!(calc(0x1_0000_0005, 0, &[alu32k(alu::ADD, 0, 0)]), 5);
    assert_eq!(calc(0xffff_ffff, 0, &[alu32k(alu::ADD, 0, 2)]), 1);
    assert_eq!(calc(0, 1, &[alu32x(alu::SUB, 0, 1)]), 0xffff_ffff);
    assert_eq!(calc(0x1_0000_0000, 3, &[alu32x(alu::MUL, 0, 1)]), 0);
    assert_eq!(calc(0x8000_0000, 3, &[alu32x(alu::MUL, 0, 1)]), 0x8000_0000);
    assert_eq!(calc(5, 0, &[alu32k(alu::NEG, 0, 0)]), 0xffff_fffb);
    assert_eq!(
        calc(0xffff_ffff_0000_0001, 0, &[alu32k(alu::XOR, 0, -1)]),
        0xffff_fffe
    );
    // mov32 of an immediate does not sign-extend; mov64 does.
    assert_eq!(calc(0, 0, &[alu32k(alu::MOV, 0, -1)]), 0xffff_ffff);
    assert_eq!(calc(0, 0, &[mov64(0, -1)]), u64::MAX);
    assert_eq!(
        calc(0, 0xdead_beef_1234_5678, &[alu32x(alu::MOV, 0, 1)]),
        0x1234_5678
    );
    // 64-bit immediates are sign-extended.
    assert_eq!(calc(1, 0, &[alu64k(alu::ADD, 0, -2)]), u64::MAX);
    assert_eq!(
        calc(u64::MAX, 0, &[alu64k(alu::AND, 0, -16)]),
        u64::MAX << 4
    );
    assert_eq!(calc(u64::MAX, 1, &[alu64x(alu::ADD, 0, 1)]), 0);
}

#[test]
fn movsx_sign_extends() {
    let movsx64 = |off: i16| i(class::ALU64 | alu::MOV | SRC_X, 0, 1, off, 0);
    let movsx32 = |off: i16| i(class::ALU | alu::MOV | SRC_X, 0, 1, off, 0);
    assert_eq!(calc(0, 0x80, &[movsx64(8)]), 0xffff_ffff_ffff_ff80);
    assert_eq!(calc(0, 0x17f, &[movsx64(8)]), 0x7f);
    assert_eq!(calc(0, 0x8000, &[movsx64(16)]), 0xffff_ffff_ffff_8000);
    assert_eq!(
        calc(0, 0x1_8000_0000, &[movsx64(32)]),
        0xffff_ffff_8000_0000
    );
    assert_eq!(calc(0, 0x80, &[movsx32(8)]), 0xffff_ff80);
    assert_eq!(calc(0, 0x8000, &[movsx32(16)]), 0xffff_8000);
    // movsx32 with off=32 does not exist.
    assert!(matches!(
        run(vec![movsx32(32), exit()]),
        Err(VmError::BadProgram { .. })
    ));
}

#[test]
fn division_and_modulo() {
    let sdiv = i(class::ALU64 | alu::DIV | SRC_X, 0, 1, 1, 0);
    let smod = i(class::ALU64 | alu::MOD | SRC_X, 0, 1, 1, 0);
    let sdiv32 = i(class::ALU | alu::DIV | SRC_X, 0, 1, 1, 0);
    let smod32 = i(class::ALU | alu::MOD | SRC_X, 0, 1, 1, 0);
    let m7 = (-7i64) as u64;
    assert_eq!(calc(m7, 2, &[sdiv]) as i64, -3);
    assert_eq!(calc(m7, 2, &[smod]) as i64, -1);
    assert_eq!(calc(7, (-2i64) as u64, &[smod]) as i64, 1);
    assert_eq!(calc(m7, 0, &[sdiv]), 0);
    assert_eq!(calc(m7, 0, &[smod]), m7);
    assert_eq!(calc(i64::MIN as u64, u64::MAX, &[sdiv]), i64::MIN as u64);
    assert_eq!(calc(i64::MIN as u64, u64::MAX, &[smod]), 0);
    assert_eq!(calc(m7, 2, &[sdiv32]), (-3i32) as u32 as u64);
    assert_eq!(calc(m7, 2, &[smod32]), (-1i32) as u32 as u64);
    assert_eq!(
        calc(i32::MIN as u32 as u64, 0xffff_ffff, &[sdiv32]),
        0x8000_0000
    );
    // Unsigned: x / 0 = 0, x % 0 = x (the 32-bit forms on the low half, zero-extended).
    assert_eq!(calc(m7, 2, &[alu64x(alu::DIV, 0, 1)]), m7 / 2);
    assert_eq!(calc(9, 0, &[alu64x(alu::DIV, 0, 1)]), 0);
    assert_eq!(calc(9, 0, &[alu64x(alu::MOD, 0, 1)]), 9);
    assert_eq!(calc(0x1_0000_0009, 0, &[alu32x(alu::MOD, 0, 1)]), 9);
    assert_eq!(
        calc(0x1_0000_0009, 0x1_0000_0000, &[alu32x(alu::DIV, 0, 1)]),
        0
    );
    assert_eq!(calc(10, 0, &[alu64k(alu::MOD, 0, 3)]), 1);
    // off=2 is not an operation.
    assert!(matches!(
        run(vec![i(class::ALU64 | alu::DIV | SRC_K, 0, 0, 2, 1), exit()]),
        Err(VmError::BadProgram { .. })
    ));
}

#[test]
fn shifts() {
    assert_eq!(calc(1, 65, &[alu64x(alu::LSH, 0, 1)]), 2);
    assert_eq!(
        calc(0x8000_0000_0000_0000, 0, &[alu64k(alu::ARSH, 0, 4)]),
        0xf800_0000_0000_0000
    );
    assert_eq!(
        calc(0x8000_0000_0000_0000, 0, &[alu64k(alu::RSH, 0, 63)]),
        1
    );
    assert_eq!(
        calc(0xffff_ffff_8000_0000, 0, &[alu32k(alu::ARSH, 0, 4)]),
        0xf800_0000
    );
    assert_eq!(
        calc(0x8000_0000, 33, &[alu32x(alu::RSH, 0, 1)]),
        0x4000_0000
    );
    assert_eq!(calc(1, 0, &[alu32k(alu::LSH, 0, 31)]), 0x8000_0000);
    assert_eq!(calc(3, 0, &[alu32k(alu::LSH, 0, 31)]), 0x8000_0000);
}

#[test]
fn byte_swaps() {
    let end = |src: u8, cls: u8, imm: i32| i(cls | 0xd0 | src, 0, 0, 0, imm);
    assert_eq!(
        calc(0x1122_3344_5566_7788, 0, &[end(SRC_X, class::ALU, 16)]),
        0x8877
    );
    assert_eq!(
        calc(0x1122_3344_5566_7788, 0, &[end(SRC_X, class::ALU, 32)]),
        0x8877_6655
    );
    assert_eq!(
        calc(0x1122_3344_5566_7788, 0, &[end(SRC_K, class::ALU, 16)]),
        0x7788
    );
    assert_eq!(
        calc(0x1122_3344_5566_7788, 0, &[end(SRC_K, class::ALU64, 64)]),
        0x8877_6655_4433_2211
    );
}

/// `if r0 OP r1 goto +1; return 0; return 1`.
fn taken(op: u8, a: u64, b: u64) -> bool {
    let mut p: Vec<Insn> = lddw(0, a).into_iter().chain(lddw(1, b)).collect();
    p.extend([jx(op, 0, 1, 2), mov64(0, 0), exit(), mov64(0, 1), exit()]);
    run(p).unwrap() == 1
}

#[test]
fn jumps_signed_and_unsigned() {
    let m1 = u64::MAX;
    assert!(taken(jmp::JGT, m1, 1));
    assert!(!taken(jmp::JSGT, m1, 1));
    assert!(taken(jmp::JSLT, m1, 1));
    assert!(!taken(jmp::JLT, m1, 1));
    assert!(
        taken(jmp::JGE, 5, 5)
            && taken(jmp::JLE, 5, 5)
            && taken(jmp::JSGE, 5, 5)
            && taken(jmp::JSLE, 5, 5)
    );
    assert!(!taken(jmp::JGT, 5, 5) && !taken(jmp::JSLT, 5, 5));
    assert!(taken(jmp::JEQ, 3, 3) && !taken(jmp::JNE, 3, 3));
    assert!(taken(jmp::JSET, 6, 2) && !taken(jmp::JSET, 6, 1));
    // K operands are sign-extended to 64 bits.
    let p = vec![
        mov64(0, -1),
        jk(jmp::JEQ, 0, -1, 1),
        exit(),
        mov64(0, 7),
        exit(),
    ];
    assert_eq!(run(p).unwrap(), 7);
    // JA, backwards too: count r0 down from 3.
    let p = vec![
        mov64(0, 3),
        mov64(1, 0),
        jk(jmp::JEQ, 0, 0, 3),
        alu64k(alu::SUB, 0, 1),
        alu64k(alu::ADD, 1, 1),
        i(class::JMP | jmp::JA, 0, 0, -4, 0),
        mov64x(0, 1),
        exit(),
    ];
    assert_eq!(run(p).unwrap(), 3);
    // JMP32 compares the low halves.
    let mut p: Vec<Insn> = lddw(0, 0x1_0000_0000).into_iter().collect();
    p.extend([
        i(0x06 | jmp::JEQ | SRC_K, 0, 0, 2, 0),
        mov64(0, 0),
        exit(),
        mov64(0, 1),
        exit(),
    ]);
    assert_eq!(run(p).unwrap(), 1);
}

#[test]
fn loads_and_stores() {
    // Store each size on the stack and read it back.
    let p = vec![
        st(size::DW, 10, -8, -1),
        st(size::W, 10, -8, 0x1234_5678),
        st(size::H, 10, -16, 0x7fff),
        st(size::B, 10, -15, 0x11),
        ldx(size::DW, 0, 10, -8),
        ldx(size::H, 1, 10, -16),
        alu64x(alu::ADD, 0, 1),
        exit(),
    ];
    assert_eq!(
        run(p).unwrap(),
        0xffff_ffff_1234_5678u64.wrapping_add(0x11ff)
    );
    // The context: r1 points at it; bytes were filled with their index.
    assert_eq!(
        run(vec![ldx(size::W, 0, 1, 16), exit()]).unwrap(),
        u64::from(u32::from_le_bytes([16, 17, 18, 19]))
    );
    // Sign-extending loads.
    let p = vec![
        st(size::B, 10, -1, 0x80),
        i(class::LDX | size::B | 0x80, 0, 10, -1, 0),
        exit(),
    ];
    assert_eq!(run(p).unwrap(), 0xffff_ffff_ffff_ff80);
    // Writes to the context stick and are copied back.
    let mut vm = vm_of(vec![st(size::W, 1, 96, 9), mov64(0, 0), exit()]).unwrap();
    let mut ctx = [0u8; 128];
    vm.run("h", &mut ctx, &mut TestEnv::default()).unwrap();
    assert_eq!(ctx[96], 9);
    // ld_imm64 of a full constant.
    assert_eq!(calc(0x0123_4567_89ab_cdef, 0, &[]), 0x0123_4567_89ab_cdef);
}

#[test]
fn atomics() {
    let fetch_add = |sz: u8| {
        i(
            class::STX | sz | MODE_ATOMIC,
            10,
            1,
            -8,
            alu::ADD as i32 | ATOMIC_FETCH,
        )
    };
    let cmpxchg = |sz: u8| i(class::STX | sz | MODE_ATOMIC, 10, 1, -8, ATOMIC_CMPXCHG);
    // fetch_add returns the old value and adds.
    let mut p: Vec<Insn> = lddw(2, 0xffff_ffff_ffff_fff0).into();
    p.extend([
        stx(size::DW, 10, 2, -8),
        mov64(1, 0x20),
        fetch_add(size::DW),
        ldx(size::DW, 0, 10, -8),
        alu64x(alu::XOR, 0, 1),
        exit(),
    ]);
    assert_eq!(run(p).unwrap(), 0x10 ^ 0xffff_ffff_ffff_fff0);
    // 32-bit: wraps within the word, the old value zero-extended.
    let p = vec![
        st(size::DW, 10, -8, 0),
        st(size::W, 10, -8, -16),
        mov64(1, 0x20),
        fetch_add(size::W),
        ldx(size::DW, 0, 10, -8),
        exit(),
    ];
    assert_eq!(run(p).unwrap(), 0x10);
    let p = vec![
        st(size::DW, 10, -8, 0),
        st(size::W, 10, -8, -16),
        mov64(1, 0x20),
        fetch_add(size::W),
        mov64x(0, 1),
        exit(),
    ];
    assert_eq!(run(p).unwrap(), 0xffff_fff0);
    // Plain atomic add/or without fetch leave the source register alone.
    let p = vec![
        st(size::DW, 10, -8, 1),
        mov64(1, 6),
        i(
            class::STX | size::DW | MODE_ATOMIC,
            10,
            1,
            -8,
            alu::OR as i32,
        ),
        ldx(size::DW, 0, 10, -8),
        alu64x(alu::ADD, 0, 1),
        exit(),
    ];
    assert_eq!(run(p).unwrap(), 7 + 6);
    // cmpxchg: success stores and returns the old value in r0.
    let p = vec![
        st(size::DW, 10, -8, 5),
        mov64(0, 5),
        mov64(1, 9),
        cmpxchg(size::DW),
        ldx(size::DW, 2, 10, -8),
        alu64k(alu::LSH, 2, 8),
        alu64x(alu::OR, 0, 2),
        exit(),
    ];
    assert_eq!(run(p).unwrap(), (9 << 8) | 5);
    // Failure leaves memory alone.
    let p = vec![
        st(size::DW, 10, -8, 5),
        mov64(0, 4),
        mov64(1, 9),
        cmpxchg(size::DW),
        ldx(size::DW, 2, 10, -8),
        alu64k(alu::LSH, 2, 8),
        alu64x(alu::OR, 0, 2),
        exit(),
    ];
    assert_eq!(run(p).unwrap(), (5 << 8) | 5);
    // 32-bit cmpxchg compares the low half of r0.
    let mut p: Vec<Insn> = lddw(0, 0xffff_0000_0000_0005).into();
    p.extend([
        st(size::DW, 10, -8, 5),
        mov64(1, 9),
        cmpxchg(size::W),
        ldx(size::DW, 2, 10, -8),
        alu64k(alu::LSH, 2, 8),
        alu64x(alu::OR, 0, 2),
        exit(),
    ]);
    assert_eq!(run(p).unwrap(), (9 << 8) | 5);
    // xchg.
    let p = vec![
        st(size::DW, 10, -8, 3),
        mov64(1, 4),
        i(class::STX | size::DW | MODE_ATOMIC, 10, 1, -8, 0xe1),
        ldx(size::DW, 0, 10, -8),
        alu64k(alu::LSH, 0, 8),
        alu64x(alu::OR, 0, 1),
        exit(),
    ];
    assert_eq!(run(p).unwrap(), (4 << 8) | 3);
}

#[test]
fn out_of_bounds_accesses_are_errors() {
    let bad = |p: Vec<Insn>| match run(p) {
        Err(VmError::BadAccess { pc, insn, .. }) => (pc, insn),
        other => panic!("expected a bad access, got {other:?}"),
    };
    // Above the frame.
    assert_eq!(
        bad(vec![ldx(size::DW, 0, 10, 0), exit()]),
        (0, "r0 = *(u64 *)(r10 +0)".to_string())
    );
    // Below the frame.
    assert_eq!(
        bad(vec![mov64(0, 0), st(size::DW, 10, -520, 1), exit()]).0,
        1
    );
    // Straddling the frame's end.
    assert_eq!(bad(vec![ldx(size::DW, 0, 10, -4), exit()]).0, 0);
    // NULL and small numbers.
    assert_eq!(bad(vec![mov64(1, 0), ldx(size::B, 0, 1, 0), exit()]).0, 1);
    assert_eq!(
        bad(vec![mov64(1, 4096), ldx(size::B, 0, 1, 0), exit()]).0,
        1
    );
    // Past the context.
    assert_eq!(bad(vec![ldx(size::DW, 0, 1, 124), exit()]).0, 0);
    assert_eq!(bad(vec![ldx(size::B, 0, 1, -1), exit()]).0, 0);
    // A map handle is not memory.
    let mut p: Vec<Insn> = lddw(1, mem::map_handle(0)).into();
    p.extend([ldx(size::B, 0, 1, 0), exit()]);
    assert_eq!(bad(p).0, 2);
    // .rodata is read-only.
    let mut p: Vec<Insn> = lddw(1, mem::addr(mem::REGION_RODATA, 0, 0)).into();
    p.extend([ldx(size::DW, 0, 1, 0), exit()]);
    assert_eq!(
        run(p).unwrap(),
        u64::from_le_bytes([1, 2, 3, 4, 5, 6, 7, 8])
    );
    let mut p: Vec<Insn> = lddw(1, mem::addr(mem::REGION_RODATA, 0, 0)).into();
    p.extend([st(size::B, 1, 0, 0), exit()]);
    assert!(matches!(
        run(p),
        Err(VmError::BadAccess { write: true, .. })
    ));
}

#[test]
fn the_instruction_limit_stops_endless_loops() {
    let mut vm = vm_of(vec![
        mov64(0, 0),
        i(class::JMP | jmp::JA, 0, 0, -1, 0),
        exit(),
    ])
    .unwrap();
    vm.set_insn_limit(1000);
    let err = vm
        .run("h", &mut [0; 128], &mut TestEnv::default())
        .unwrap_err();
    assert_eq!(
        err,
        VmError::InsnLimit {
            hook: "h".into(),
            limit: 1000
        }
    );
    let mut vm = vm_of(vec![mov64(0, 0), exit()]).unwrap();
    assert_eq!(
        vm.run("h", &mut [0; 128], &mut TestEnv::default()).unwrap(),
        RunOutcome { ret: 0, insns: 2, helpers: 0 }
    );
}

#[test]
fn programs_are_checked_before_they_run() {
    let reason = |p: Vec<Insn>| match vm_of(p) {
        Err(VmError::BadProgram { pc, reason, .. }) => (pc, reason),
        other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
    };
    assert_eq!(reason(vec![i(0xff, 0, 0, 0, 0), exit()]).0, 0);
    assert!(reason(vec![jk(jmp::JEQ, 0, 0, 5), exit()])
        .1
        .contains("jump to 6"));
    // Into the middle of an ld_imm64.
    let mut p = vec![jk(jmp::JEQ, 0, 0, 1)];
    p.extend(lddw(0, 1));
    p.push(exit());
    assert!(reason(p).1.contains("not an instruction"));
    assert!(reason(vec![i(class::JMP | jmp::CALL, 0, 0, 0, 6), exit()])
        .1
        .contains("helper 6"));
    assert!(reason(vec![i(class::JMP | jmp::CALL, 0, 1, 0, 2), exit()])
        .1
        .contains("BPF-to-BPF"));
    assert_eq!(reason(vec![mov64(10, 0), exit()]).0, 0);
    assert_eq!(reason(vec![mov64(11, 0), exit()]).0, 0);
    assert!(vm_of(Vec::new()).is_err());
    // Falling off the end is a run-time error, not a panic.
    assert!(matches!(
        run(vec![mov64(0, 0)]),
        Err(VmError::BadProgram { .. })
    ));
    assert!(matches!(
        vm_of(vec![exit()])
            .unwrap()
            .run("other", &mut [0; 128], &mut TestEnv::default()),
        Err(VmError::NoSuchHook(_))
    ));
}

// Policies compiled by the real driver.

fn compile(src: &str) -> scl_driver::Output {
    let mut files = scl_diagnostics::Files::new();
    let id = files.add("t.scl", src);
    match scl_driver::compile(&mut files, id, scl_catalogue::Target::Sim) {
        Ok(o) => o,
        Err(d) => panic!(
            "{:#?}",
            d.iter().map(|d| d.message.clone()).collect::<Vec<_>>()
        ),
    }
}

fn ctx(lock: u64, cpu: u32, tid: u32) -> [u8; 128] {
    let mut c = [0u8; 128];
    c[0..8].copy_from_slice(&lock.to_le_bytes());
    c[16..20].copy_from_slice(&cpu.to_le_bytes());
    c[20..24].copy_from_slice(&(cpu / 4).to_le_bytes());
    c[24..28].copy_from_slice(&tid.to_le_bytes());
    c
}

#[test]
fn per_lock_state_and_config() {
    let src = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/numa_grouping.scl"
    ))
    .unwrap();
    let out = compile(&src);
    let mut vm = Vm::new(&out).unwrap();
    assert!(vm.hooks().contains(&"acquired") && vm.hooks().contains(&"should_reorder"));
    let mut env = TestEnv::default();
    for _ in 0..3 {
        vm.run("acquired", &mut ctx(0x1000, 5, 1), &mut env)
            .unwrap();
    }
    vm.run("acquired", &mut ctx(0x2000, 0, 1), &mut env)
        .unwrap();
    // Batch { node: 1, run: 3 } for lock 0x1000, { node: 0, run: 1 } for 0x2000.
    assert_eq!(
        vm.lookup("batch", &0x1000u64.to_le_bytes()),
        Some(vec![1, 0, 0, 0, 3, 0, 0, 0])
    );
    assert_eq!(
        vm.lookup("batch", &0x2000u64.to_le_bytes()),
        Some(vec![0, 0, 0, 0, 1, 0, 0, 0])
    );
    assert_eq!(vm.keys("batch").len(), 2);
    // skip_reorder: run >= max_batch (64 by default; set it to 3).
    assert_eq!(
        vm.run("skip_reorder", &mut ctx(0x1000, 5, 1), &mut env)
            .unwrap()
            .ret,
        0
    );
    vm.set_rodata(0, &3u32.to_le_bytes());
    assert_eq!(
        vm.run("skip_reorder", &mut ctx(0x1000, 5, 1), &mut env)
            .unwrap()
            .ret,
        1
    );
    // A lock without an entry reads as zero and gets none (reorder hooks do not write).
    assert_eq!(
        vm.run("skip_reorder", &mut ctx(0x3000, 5, 1), &mut env)
            .unwrap()
            .ret,
        0
    );
    assert_eq!(vm.keys("batch").len(), 2);
    // Writes from user space are seen by programs.
    vm.update("batch", &0x3000u64.to_le_bytes(), &[0, 0, 0, 0, 9, 0, 0, 0])
        .unwrap();
    assert_eq!(
        vm.run("skip_reorder", &mut ctx(0x3000, 5, 1), &mut env)
            .unwrap()
            .ret,
        1
    );
    assert!(vm.update("batch", &[0; 4], &[0; 8]).is_err());
    assert_eq!(
        vm.update("nope", &[0; 4], &[0; 8]),
        Err(VmError::NoSuchMap("nope".into()))
    );
}

#[test]
fn helpers_against_simulated_state() {
    let out = compile(
        "config limit_ns: u64 = 100;
         struct Ev { lock: u64, t: u64, r: u32 }
         map evs: ringbuf<Ev>[4096];
         map hits: hash<u32, u64>[2];
         per_cpu mine: u64;
         global g: u64;
         policy t for mutex {
             on acquired(l: lock) {
                 mine += 1;
                 g = read_user(l.addr);
                 hits.set(tid(), hits.get_or(tid(), 0) + 1);
                 back_off(1000);
                 sleep(50);
                 evs.emit(Ev { lock: l.addr, t: now(), r: random() });
             }
             on released(l: lock) {
                 hits.delete(tid());
             }
         }",
    );
    let mut vm = Vm::with_cpus(&out, 4).unwrap();
    let mut env = TestEnv {
        now: 10_000,
        cpu: 2,
        ..TestEnv::default()
    };
    let o = vm.run("acquired", &mut ctx(0x40, 2, 5), &mut env).unwrap();
    assert_eq!(o.ret, 0);
    assert!(o.insns > 20);
    // Helper calls are counted: map lookups and updates, read_user, the clock, random, the
    // ring buffer, the waits' bpf_loop and the callback's clock reads.
    assert!(o.helpers >= 8, "{} helper calls", o.helpers);
    let mut other = vm_of(vec![mov64(0, 0), exit()]).unwrap();
    assert_eq!(other.run("h", &mut [0; 128], &mut TestEnv::default()).unwrap().helpers, 0);
    // back_off is clamped by the default max_backoff_ns or policy config, then sleep: both
    // wait through the callback.
    assert_eq!(env.waits.len(), 2);
    assert_eq!(env.waits[1], env.waits[0] + 50);
    // per_cpu: CPU 2's copy only.
    let per_cpu = vm.lookup_percpu("mine", &0u32.to_le_bytes()).unwrap();
    assert_eq!(per_cpu.len(), 4);
    assert_eq!(per_cpu[2], 1u64.to_le_bytes());
    assert_eq!(per_cpu[0], 0u64.to_le_bytes());
    assert_eq!(
        vm.lookup("mine", &0u32.to_le_bytes()),
        Some(0u64.to_le_bytes().to_vec())
    );
    // read_user fails without user memory: 0.
    assert_eq!(vm.lookup("g", &0u32.to_le_bytes()), Some(vec![0; 8]));
    assert_eq!(
        vm.lookup("hits", &5u32.to_le_bytes()),
        Some(1u64.to_le_bytes().to_vec())
    );
    // The event.
    let evs = vm.take_events();
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].map, "evs");
    assert_eq!(&evs[0].data[0..8], &0x40u64.to_le_bytes());
    assert_eq!(
        u64::from_le_bytes(evs[0].data[8..16].try_into().unwrap()),
        env.now
    );
    // A full hash map refuses a third key; released deletes.
    vm.run("acquired", &mut ctx(0x40, 2, 6), &mut env).unwrap();
    vm.run("acquired", &mut ctx(0x40, 2, 7), &mut env).unwrap();
    assert_eq!(vm.keys("hits").len(), 2);
    assert_eq!(vm.lookup("hits", &7u32.to_le_bytes()), None);
    vm.run("released", &mut ctx(0x40, 2, 5), &mut env).unwrap();
    assert_eq!(vm.keys("hits"), vec![6u32.to_le_bytes().to_vec()]);
    // The ring buffer fills up (4096 bytes of 32-byte records), then drops events.
    vm.take_events();
    for _ in 0..200 {
        vm.run("acquired", &mut ctx(0x40, 1, 6), &mut env).unwrap();
    }
    assert_eq!(vm.events().len(), 4096 / 32);
    // A CPU the VM does not have.
    env.cpu = 9;
    assert_eq!(
        vm.run("acquired", &mut ctx(0x40, 9, 6), &mut env),
        Err(VmError::NoSuchCpu { cpu: 9, cpus: 4 })
    );
}

#[test]
fn lru_state_evicts_old_locks() {
    let out = compile(
        "per_lock[4] n: u64;
         policy t for spinlock { on acquired(l: lock) { n += 1; } }",
    );
    let mut vm = Vm::new(&out).unwrap();
    let mut env = TestEnv::default();
    for lock in 1..=6u64 {
        vm.run("acquired", &mut ctx(lock, 0, 1), &mut env).unwrap();
    }
    let keys: Vec<u64> = vm
        .keys("n")
        .iter()
        .map(|k| u64::from_le_bytes(k[..8].try_into().unwrap()))
        .collect();
    assert_eq!(keys, vec![3, 4, 5, 6]);
}

#[test]
fn user_callbacks_run_like_the_kernel_runs_them() {
    // bpf_loop(5, cb, &counter, 0) with a callback that adds its index and stops at 3.
    let cb = vec![
        ldx(size::DW, 3, 2, 0),
        alu64x(alu::ADD, 3, 1),
        stx(size::DW, 2, 3, 0),
        mov64(0, 0),
        jk(jmp::JNE, 1, 3, 1),
        mov64(0, 1),
        exit(),
    ];
    let mut main = vec![st(size::DW, 10, -8, 100), mov64(1, 5)];
    main.extend(lddw(2, mem::func_handle(1)));
    main.extend([
        mov64x(3, 10),
        alu64k(alu::ADD, 3, -8),
        mov64(4, 0),
        i(class::JMP | jmp::CALL, 0, 0, 0, 181),
        ldx(size::DW, 1, 10, -8),
        alu64k(alu::LSH, 0, 16),
        alu64x(alu::OR, 0, 1),
        exit(),
    ]);
    let codes = vec![
        Code {
            name: "h".into(),
            insns: main,
            stack: 512,
            wait_until: false,
        },
        Code {
            name: "cb".into(),
            insns: cb,
            stack: 512,
            wait_until: false,
        },
    ];
    let mut vm = Vm::build(vec![("h", 0)], codes, Vec::new(), Vec::new(), 1).unwrap();
    let ret = vm
        .run("h", &mut [0; 128], &mut TestEnv::default())
        .unwrap()
        .ret;
    // Four iterations (0..=3), the sum 106, bpf_loop returns 4.
    assert_eq!(ret, (4 << 16) | 106);
}

/// On the stock target `lock.kind` comes from the tracepoint's flags (the second argument of
/// `contention_begin`): a mutex spinning optimistically reports `LCB_F_MUTEX | LCB_F_SPIN`
/// and is a mutex, a spinning rwlock or plain spinlock is a spinlock, the rest rwsem.
#[test]
fn stock_lock_kind_from_the_tracepoint_flags() {
    let src = "global last: u64;\n\
               policy p for spinlock, mutex, rwsem {\n\
                   on contended(l: lock) { last = l.kind as u64; }\n\
               }\n";
    let mut files = scl_diagnostics::Files::new();
    let id = files.add("t.scl", src);
    let out = scl_driver::compile(&mut files, id, scl_catalogue::Target::Stock).expect("compiles for stock");
    let mut vm = Vm::new(&out).unwrap();
    let mut env = TestEnv::default();
    for (flags, kind) in [(1u64, 0u64), (33, 1), (32, 1), (1 | 2, 0), (2, 2), (4, 2), (16 | 4, 2), (0, 2)] {
        let mut c = [0u8; 128];
        c[0..8].copy_from_slice(&0xffff_8880_1234_5678u64.to_le_bytes());
        c[8..16].copy_from_slice(&flags.to_le_bytes());
        vm.run("contended", &mut c, &mut env).unwrap();
        let last = vm.lookup("last", &0u32.to_le_bytes()).expect("the global");
        assert_eq!(u64::from_le_bytes(last[..8].try_into().unwrap()), kind, "flags {flags:#x}");
    }
}

/// The generated `lock.kind` and `lock.class` of the stock target equal the catalogue's
/// reference functions (`lock_kind`, `lock_class`) for every combination of the six
/// `LCB_F_*` flags, so `sclc run`, `sclc record` and the docs all mean the same.
#[test]
fn stock_kind_and_class_equal_the_catalogues_for_every_flag_combination() {
    let src = "global kind: u64;\n\
               global class: u64;\n\
               policy p for spinlock, mutex, rwsem {\n\
                   on contended(l: lock) { kind = l.kind as u64; class = l.class as u64; }\n\
               }\n";
    let mut files = scl_diagnostics::Files::new();
    let id = files.add("t.scl", src);
    let out = scl_driver::compile(&mut files, id, scl_catalogue::Target::Stock).expect("compiles for stock");
    let mut vm = Vm::new(&out).unwrap();
    let mut env = TestEnv::default();
    let read = |vm: &Vm, name: &str| u64::from_le_bytes(vm.lookup(name, &0u32.to_le_bytes()).expect("the global")[..8].try_into().unwrap());
    for flags in 0u32..64 {
        let mut c = [0u8; 128];
        c[0..8].copy_from_slice(&0xffff_8880_1234_5678u64.to_le_bytes());
        c[8..16].copy_from_slice(&u64::from(flags).to_le_bytes());
        vm.run("contended", &mut c, &mut env).unwrap();
        assert_eq!(read(&vm, "kind"), scl_catalogue::lock_kind(flags) as u64, "kind of flags {flags:#x}");
        assert_eq!(read(&vm, "class"), u64::from(scl_catalogue::lock_class(flags)), "class of flags {flags:#x}");
    }
}

/// `contention_end` has no flags: the stock `contended` records each thread's flags in the
/// hidden `scl_flags` map, by an update the first time and in place after that, and
/// `contention_end` reads them back.
#[test]
fn stock_contention_end_sees_the_flags_of_the_threads_last_contention() {
    let src = "global last: u64;\n\
               policy p for spinlock, mutex, rwsem {\n\
                   on contention_end(l: lock, ok: bool) { last = l.kind as u64; }\n\
               }\n";
    let mut files = scl_diagnostics::Files::new();
    let id = files.add("t.scl", src);
    let out = scl_driver::compile(&mut files, id, scl_catalogue::Target::Stock).expect("compiles for stock");
    let mut vm = Vm::new(&out).unwrap();
    assert!(vm.hooks().contains(&"contended"), "sclc adds the program that records the flags");
    let mut env = TestEnv::default();
    for (flags, kind) in [(1u64, 0u64), (32, 1), (4, 2), (33, 1), (1, 0)] {
        let mut c = [0u8; 128];
        c[0..8].copy_from_slice(&0xffff_8880_1234_5678u64.to_le_bytes());
        c[8..16].copy_from_slice(&flags.to_le_bytes());
        vm.run("contended", &mut c, &mut env).unwrap();
        let mut e = [0u8; 128];
        e[0..8].copy_from_slice(&0xffff_8880_1234_5678u64.to_le_bytes());
        vm.run("contention_end", &mut e, &mut env).unwrap();
        let last = vm.lookup("last", &0u32.to_le_bytes()).expect("the global");
        assert_eq!(u64::from_le_bytes(last[..8].try_into().unwrap()), kind, "flags {flags:#x}");
    }
    assert_eq!(vm.keys("scl_flags").len(), 1, "one entry for the one thread");
}

/// `kstack()` in the VM: one stand-in stack per call site and task, so equal stacks key
/// the same entry and other tasks or sites other ones; the stack map holds the frames.
#[test]
fn kstack_records_one_stand_in_stack_per_site_and_task() {
    let out = compile(
        "map seen: hash<kstack, u64>[64];
         map last: hash<u32, kstack>[64];
         policy p for spinlock {
             on contended(l: lock) {
                 let s: kstack = kstack();
                 seen.set(s, seen.get_or(s, 0) + 1);
                 last.set(tid(), s);
             }
             on acquired(l: lock) {
                 let s: kstack = kstack();
                 seen.set(s, seen.get_or(s, 0) + 100);
             }
         }",
    );
    let mut vm = Vm::new(&out).unwrap();
    // The compiler adds the stack-trace map, hidden from the policy's maps but readable
    // by name (below); programs cannot read it.
    assert!(!vm.maps().contains(&scl_catalogue::kstack::MAP));
    let mut env = TestEnv::default();
    // (hook, task) calls in order, and the `kstack` value each call's stack must get: map
    // ids are given from 0 in the order stacks are first seen, and a value is its id + 1.
    let calls: [(&str, u32, u64); 6] = [
        ("contended", 42, 1),
        ("contended", 42, 1),
        ("contended", 43, 2),
        ("acquired", 42, 3),
        ("contended", 43, 2),
        ("contended", 42, 1),
    ];
    for (hook, tid, _) in calls {
        env.task = (7 << 32) | u64::from(tid);
        vm.run(hook, &mut ctx(0x1000, 0, tid), &mut env).unwrap();
    }
    let count = |id: u64| vm.lookup("seen", &id.to_le_bytes()).map(|v| u64::from_le_bytes(v[..8].try_into().unwrap()));
    assert_eq!(count(1), Some(3), "task 42 at `contended`: one stack, three calls");
    assert_eq!(count(2), Some(2), "task 43 at `contended`: another stack");
    assert_eq!(count(3), Some(100), "`acquired` is another call site");
    assert_eq!(count(0), None, "zero is no stack");
    assert_eq!(vm.keys("seen").len(), 3);
    for (_, tid, id) in calls.iter().filter(|c| c.0 == "contended") {
        let s = vm.lookup("last", &tid.to_le_bytes()).unwrap();
        assert_eq!(u64::from_le_bytes(s[..8].try_into().unwrap()), *id, "task {tid}'s last stack");
    }
    // The frames: the call site, then the task; the rest of the 16 are zero.
    let base = scl_catalogue::kstack::SIM_TEXT_BASE;
    let frames = |id: u32| -> Vec<u64> {
        let v = vm.lookup(scl_catalogue::kstack::MAP, &id.to_le_bytes()).expect("a recorded stack");
        v.chunks(8).map(|c| u64::from_le_bytes(c.try_into().unwrap())).collect()
    };
    let (a, b, c) = (frames(0), frames(1), frames(2));
    assert_eq!(a.len() as u32, scl_catalogue::kstack::DEPTH);
    assert_eq!(a[0], b[0], "one call site");
    assert_ne!(a[0], c[0], "two call sites");
    assert_eq!((a[1], b[1], c[1]), (base + (1 << 27) + 42, base + (1 << 27) + 43, base + (1 << 27) + 42));
    assert!(a.iter().chain(&b).chain(&c).all(|&f| f == 0 || f >= base));
    assert!(a[2..].iter().all(|&f| f == 0));
    assert_eq!(vm.keys(scl_catalogue::kstack::MAP).len(), 3);
}
