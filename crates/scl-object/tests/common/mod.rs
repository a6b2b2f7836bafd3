//! Shared fixture: a small object with two programs (`syscall` and
//! `tp_btf/contention_begin`), three maps (array, LRU hash with a struct value, ring buffer)
//! and two `.rodata` variables, plus tiny instruction encoders.

#![allow(dead_code)]

use scl_object::{CType, LineInfo, MapSpec, ObjectSpec, ProgramSpec, Reloc, RodataSpec};

/// One instruction: code, dst | src << 4, off (i16 LE), imm (i32 LE).
pub fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> [u8; 8] {
    let o = off.to_le_bytes();
    let i = imm.to_le_bytes();
    [code, dst | src << 4, o[0], o[1], i[0], i[1], i[2], i[3]]
}

/// `ld_imm64 dst, 0` (two slots), to be relocated.
pub fn ld_imm64(dst: u8) -> [[u8; 8]; 2] {
    [insn(0x18, dst, 0, 0, 0), insn(0, 0, 0, 0, 0)]
}

/// `dst = *(size *)(src + off)`; size is 0x00 W, 0x18 DW.
pub fn ldx(size: u8, dst: u8, src: u8, off: i16) -> [u8; 8] {
    insn(0x61 | size, dst, src, off, 0)
}

/// `*(size *)(dst + off) = src`.
pub fn stx(size: u8, dst: u8, src: u8, off: i16) -> [u8; 8] {
    insn(0x63 | size, dst, src, off, 0)
}

/// `*(size *)(dst + off) = imm`.
pub fn st(size: u8, dst: u8, off: i16, imm: i32) -> [u8; 8] {
    insn(0x62 | size, dst, 0, off, imm)
}

/// `dst = src` (64-bit).
pub fn mov(dst: u8, src: u8) -> [u8; 8] {
    insn(0xbf, dst, src, 0, 0)
}

/// `dst = imm` (64-bit).
pub fn mov_imm(dst: u8, imm: i32) -> [u8; 8] {
    insn(0xb7, dst, 0, 0, imm)
}

/// `dst += src` (64-bit).
pub fn add(dst: u8, src: u8) -> [u8; 8] {
    insn(0x0f, dst, src, 0, 0)
}

/// `dst += imm` (64-bit).
pub fn add_imm(dst: u8, imm: i32) -> [u8; 8] {
    insn(0x07, dst, 0, 0, imm)
}

/// `call helper`.
pub fn call(helper: i32) -> [u8; 8] {
    insn(0x85, 0, 0, 0, helper)
}

/// `if dst == imm goto +off`.
pub fn jeq_imm(dst: u8, imm: i32, off: i16) -> [u8; 8] {
    insn(0x15, dst, 0, off, imm)
}

/// `exit`.
pub fn exit() -> [u8; 8] {
    insn(0x95, 0, 0, 0, 0)
}

pub const W: u8 = 0x00;
pub const DW: u8 = 0x18;

pub fn u32_t() -> CType {
    CType::Int {
        name: "u32".into(),
        bytes: 4,
        signed: false,
    }
}

pub fn u64_t() -> CType {
    CType::Int {
        name: "u64".into(),
        bytes: 8,
        signed: false,
    }
}

/// `struct wait_stat { u64 total_ns; u32 count; bool contended; u8 tag[3]; }` (16 bytes).
pub fn wait_stat() -> CType {
    CType::Struct {
        name: "wait_stat".into(),
        size: 16,
        members: vec![
            ("total_ns".into(), u64_t(), 0),
            ("count".into(), u32_t(), 8),
            (
                "contended".into(),
                CType::Int {
                    name: "bool".into(),
                    bytes: 1,
                    signed: false,
                },
                12,
            ),
            (
                "tag".into(),
                CType::Array {
                    elem: Box::new(CType::Int {
                        name: "u8".into(),
                        bytes: 1,
                        signed: false,
                    }),
                    len: 3,
                },
                13,
            ),
        ],
    }
}

fn line(insn: u32, line: u32, source: &str) -> LineInfo {
    LineInfo {
        insn,
        file: "fixture.scl".into(),
        source: source.into(),
        line,
        column: 5,
    }
}

/// Instruction indexes of the relocated `ld_imm64`s of `run`.
pub const RUN_SCALE_INSN: u32 = 1;
pub const RUN_THRESHOLD_INSN: u32 = 5;
pub const RUN_COUNTS_INSN: u32 = 10;
pub const CONTENTION_WAITS_INSN: u32 = 2;

/// `run` (section `syscall`): returns `ctx.u32[0] + scale + threshold`, stores the sum in
/// `counts[0]`, returns -1 when the lookup fails.
pub fn run_program() -> ProgramSpec {
    let mut insns = vec![ldx(W, 6, 1, 0)]; // 0: r6 = ctx[0]
    insns.extend(ld_imm64(1)); // 1-2: r1 = &scale
    insns.push(ldx(W, 7, 1, 0)); // 3: r7 = scale
    insns.push(add(7, 6)); // 4: r7 += r6
    insns.extend(ld_imm64(1)); // 5-6: r1 = &threshold
    insns.push(ldx(DW, 8, 1, 0)); // 7: r8 = threshold
    insns.push(add(7, 8)); // 8: r7 += r8
    insns.push(st(W, 10, -4, 0)); // 9: key = 0
    insns.extend(ld_imm64(1)); // 10-11: r1 = &counts
    insns.push(mov(2, 10)); // 12
    insns.push(add_imm(2, -4)); // 13: r2 = &key
    insns.push(call(1)); // 14: map_lookup_elem
    insns.push(jeq_imm(0, 0, 3)); // 15: if !r0 goto 19
    insns.push(stx(DW, 0, 7, 0)); // 16: *r0 = r7
    insns.push(mov(0, 7)); // 17
    insns.push(exit()); // 18
    insns.push(mov_imm(0, -1)); // 19
    insns.push(exit()); // 20
    ProgramSpec {
        name: "run".into(),
        section: "syscall".into(),
        insns,
        relocs: vec![
            Reloc::Rodata {
                insn: RUN_SCALE_INSN,
                var: "scale".into(),
            },
            Reloc::Rodata {
                insn: RUN_THRESHOLD_INSN,
                var: "threshold".into(),
            },
            Reloc::Map {
                insn: RUN_COUNTS_INSN,
                map: "counts".into(),
            },
        ],
        lines: vec![
            line(0, 1, "let n = ctx.n;"),
            line(1, 2, "let s = n + scale + threshold;"),
            line(9, 3, "counts[0] = s;"),
            line(17, 4, "return s;"),
            line(19, 5, "return -1;"),
        ],
    }
}

/// `on_contention` (section `tp_btf/contention_begin`): looks the lock up in `waits`.
pub fn contention_program() -> ProgramSpec {
    let mut insns = vec![ldx(DW, 1, 1, 0), stx(DW, 10, 1, -8)]; // key = ctx[0] (the lock)
    insns.extend(ld_imm64(1)); // 2-3: r1 = &waits
    insns.push(mov(2, 10));
    insns.push(add_imm(2, -8));
    insns.push(call(1));
    insns.push(mov_imm(0, 0));
    insns.push(exit());
    ProgramSpec {
        name: "on_contention".into(),
        section: "tp_btf/contention_begin".into(),
        insns,
        relocs: vec![Reloc::Map {
            insn: CONTENTION_WAITS_INSN,
            map: "waits".into(),
        }],
        lines: vec![line(0, 10, "on contention_begin {"), line(7, 11, "}")],
    }
}

pub fn sample_spec() -> ObjectSpec {
    ObjectSpec {
        subprograms: Vec::new(),
        programs: vec![run_program(), contention_program()],
        maps: vec![
            MapSpec {
                name: "counts".into(),
                map_type: 2,
                key: Some(u32_t()),
                value: Some(u64_t()),
                max_entries: 1,
            },
            MapSpec {
                name: "waits".into(),
                map_type: 9,
                key: Some(u64_t()),
                value: Some(wait_stat()),
                max_entries: 1024,
            },
            MapSpec {
                name: "events".into(),
                map_type: 27,
                key: None,
                value: None,
                max_entries: 4096,
            },
        ],
        rodata: vec![
            RodataSpec {
                name: "scale".into(),
                ty: u32_t(),
                offset: 0,
                init: 7u32.to_le_bytes().to_vec(),
            },
            RodataSpec {
                name: "threshold".into(),
                ty: u64_t(),
                offset: 8,
                init: 100u64.to_le_bytes().to_vec(),
            },
        ],
        license: "GPL".into(),
    }
}
