//! Unit tests of the peephole pass, on hand-written instruction streams.

use super::*;
use scl_sema::hir::Loc;

fn mov(d: u8, s: u8) -> Insn {
    Insn { code: class::ALU64 | alu::MOV | SRC_X, dst: d, src: s, off: 0, imm: 0 }
}
fn movi(d: u8, v: i32) -> Insn {
    Insn { code: class::ALU64 | alu::MOV | SRC_K, dst: d, src: 0, off: 0, imm: v }
}
fn addi(d: u8, v: i32) -> Insn {
    Insn { code: class::ALU64 | alu::ADD | SRC_K, dst: d, src: 0, off: 0, imm: v }
}
fn ldx(d: u8, s: u8, off: i16) -> Insn {
    Insn { code: class::LDX | size::DW | MODE_MEM, dst: d, src: s, off, imm: 0 }
}
fn stx(d: u8, off: i16, s: u8) -> Insn {
    Insn { code: class::STX | size::DW | MODE_MEM, dst: d, src: s, off, imm: 0 }
}
fn jeq(d: u8, v: i32, off: i16) -> Insn {
    Insn { code: class::JMP | jmp::JEQ | SRC_K, dst: d, src: 0, off, imm: v }
}
fn call(id: i32) -> Insn {
    Insn { code: class::JMP | jmp::CALL, dst: 0, src: 0, off: 0, imm: id }
}
fn exit() -> Insn {
    Insn { code: class::JMP | jmp::EXIT, dst: 0, src: 0, off: 0, imm: 0 }
}

fn clean(insns: Vec<Insn>) -> Vec<Insn> {
    let mut c = Compiled { insns, relocs: Vec::new(), lines: vec![(0, Loc::default())], stack_size: 16 };
    run(&mut c);
    c.insns
}

#[test]
fn a_value_spilled_and_reloaded_stays_in_its_register() {
    // r1 = ctx[0]; spill; reload into r0; return it. The slot is never read again.
    let out = clean(vec![ldx(1, 1, 0), stx(FP, -8, 1), ldx(2, FP, -8), mov(0, 2), exit()]);
    assert_eq!(out, vec![ldx(0, 1, 0), exit()]);
}

#[test]
fn a_jump_target_ends_what_is_known_about_slots() {
    // The reload at 4 is reached from the jump at 2 too, where the slot holds r3.
    let insns = vec![
        stx(FP, -8, 3),
        movi(0, 0),
        jeq(1, 0, 1),
        stx(FP, -8, 4),
        ldx(0, FP, -8),
        exit(),
    ];
    let out = clean(insns.clone());
    assert_eq!(out[out.len() - 2], ldx(0, FP, -8), "{out:?}");
}

#[test]
fn slots_a_helper_can_reach_are_not_forwarded_across_the_call() {
    // The buffer at -8 is passed by address to copy_from_user, which writes it.
    let out = clean(vec![
        stx(FP, -8, 6),
        mov(1, FP),
        addi(1, -8),
        call(148),
        ldx(0, FP, -8),
        exit(),
    ]);
    assert_eq!(out[0], stx(FP, -8, 6), "the store a helper reads stays: {out:?}");
    assert_eq!(out[out.len() - 2], ldx(0, FP, -8), "{out:?}");
}

#[test]
fn slots_below_every_handed_out_address_survive_stores_through_pointers() {
    // -16 is below the exposed key at -8: a store through r0 cannot reach it.
    let out = clean(vec![
        stx(FP, -16, 6),
        mov(2, FP),
        addi(2, -8),
        call(1),
        stx(0, 0, 6),
        ldx(0, FP, -16),
        exit(),
    ]);
    assert!(!out.iter().any(|i| *i == ldx(0, FP, -16)), "{out:?}");
    assert!(!out.iter().any(|i| *i == stx(FP, -16, 6)), "the dead spill goes: {out:?}");
}

#[test]
fn jumps_lines_and_relocations_follow_deleted_instructions() {
    let map = Insn { code: class::LD | size::DW | MODE_IMM, dst: 1, src: 1, off: 0, imm: 0 };
    let hi = Insn { code: 0, dst: 0, src: 0, off: 0, imm: 0 };
    let loc = |n: u32| {
        let mut l = Loc::default();
        l.span.start = n;
        l
    };
    let mut c = Compiled {
        insns: vec![
            stx(FP, -16, 1),      // 0: dead store
            mov(3, 3),            // 1: no-op
            jeq(1, 0, 3),         // 2: to 6
            map,                  // 3-4
            hi,
            movi(0, 1),           // 5
            movi(0, 0),           // 6
            exit(),               // 7
        ],
        relocs: vec![(3, crate::RelocTarget::Rodata(0))],
        lines: vec![(0, loc(1)), (2, loc(2)), (6, loc(3))],
        stack_size: 16,
    };
    run(&mut c);
    // r1 = map is dead (never read) but stays: it carries a relocation.
    assert_eq!(c.insns[0], jeq(1, 0, 2));
    assert_eq!(c.relocs, vec![(1, crate::RelocTarget::Rodata(0))]);
    assert_eq!(c.insns[3], movi(0, 0));
    assert_eq!(c.lines.iter().map(|l| (l.0, l.1.span.start)).collect::<Vec<_>>(), vec![(0, 2), (3, 3)]);
}

fn jne(d: u8, v: i32, off: i16) -> Insn {
    Insn { code: class::JMP | jmp::JNE | SRC_K, dst: d, src: 0, off, imm: v }
}
fn ja(off: i16) -> Insn {
    Insn { code: class::JMP | jmp::JA, dst: 0, src: 0, off, imm: 0 }
}
fn ldxb(d: u8, s: u8, off: i16) -> Insn {
    Insn { code: class::LDX | size::B | MODE_MEM, dst: d, src: s, off, imm: 0 }
}

#[test]
fn a_copy_read_past_a_null_check_is_read_from_the_original() {
    // r4 = r0 (a lookup's result); if r4 == 0 goto out; return *(u8 *)(r4 + 0).
    let out = clean(vec![call(1), mov(4, 0), jeq(4, 0, 2), ldxb(0, 4, 0), exit(), movi(0, 0), exit()]);
    assert_eq!(out, vec![call(1), jeq(0, 0, 2), ldxb(0, 0, 0), exit(), movi(0, 0), exit()]);
}

#[test]
fn a_copy_still_read_where_a_jump_lands_stays() {
    // r4 is read at the jump's target too, past the straight line.
    let insns = vec![call(1), mov(4, 0), jeq(1, 0, 2), ldxb(0, 4, 0), exit(), mov(0, 4), exit()];
    let out = clean(insns.clone());
    assert!(out.contains(&mov(4, 0)), "{out:?}");
}

#[test]
fn a_flag_made_by_a_jump_and_tested_at_once_becomes_one_jump() {
    // r3 = 1; if r1 != 0 goto +1; r3 = 0; if r3 == 0 goto L; r0 = 7; exit; L: r0 = 9; exit
    let out = clean(vec![movi(3, 1), jne(1, 0, 1), movi(3, 0), jeq(3, 0, 2), movi(0, 7), exit(), movi(0, 9), exit()]);
    // The flag is gone: r1 != 0 goes on to `r0 = 7`, anything else to `r0 = 9`.
    assert_eq!(out, vec![jeq(1, 0, 2), movi(0, 7), exit(), movi(0, 9), exit()]);
}

#[test]
fn a_jump_over_a_goto_is_the_inverse_jump() {
    let out = clean(vec![jne(1, 0, 1), ja(2), movi(0, 7), exit(), movi(0, 9), exit()]);
    assert_eq!(out, vec![jeq(1, 0, 2), movi(0, 7), exit(), movi(0, 9), exit()]);
}

#[test]
fn a_helper_reads_only_its_own_arguments() {
    // r3 set before ktime_get_ns (no arguments) and overwritten after: dead.
    let out = clean(vec![movi(3, 5), call(5), movi(3, 1), mov(0, 3), exit()]);
    assert_eq!(out, vec![call(5), movi(0, 1), exit()]);
}

fn ldxw(d: u8, s: u8, off: i16) -> Insn {
    Insn { code: class::LDX | size::W | MODE_MEM, dst: d, src: s, off, imm: 0 }
}
fn stxw(d: u8, off: i16, s: u8) -> Insn {
    Insn { code: class::STX | size::W | MODE_MEM, dst: d, src: s, off, imm: 0 }
}
fn stw(d: u8, off: i16, v: i32) -> Insn {
    Insn { code: class::ST | size::W | MODE_MEM, dst: d, src: 0, off, imm: v }
}

#[test]
fn a_map_value_field_just_stored_is_not_loaded_again() {
    // *(u32 *)(r8 + 0) = r2 (r2 from a 32-bit load); r0 = *(u32 *)(r8 + 0)
    let out = clean(vec![ldxw(2, 1, 0), stxw(8, 0, 2), ldxw(0, 8, 0), exit()]);
    assert_eq!(out, vec![ldxw(2, 1, 0), stxw(8, 0, 2), mov(0, 2), exit()]);
}

#[test]
fn a_store_through_another_pointer_or_a_call_forgets_map_values() {
    let other = clean(vec![ldxw(2, 1, 0), stxw(8, 0, 2), stw(7, 0, 5), ldxw(0, 8, 0), exit()]);
    assert_eq!(other[3], ldxw(0, 8, 0), "r7 may point at the same value: {other:?}");
    // map_update_elem may change a value in place.
    let call_between = clean(vec![ldxw(6, 1, 0), stxw(8, 0, 6), call(2), ldxw(0, 8, 0), exit()]);
    assert_eq!(call_between[3], ldxw(0, 8, 0), "{call_between:?}");
    // ktime_get_ns changes no memory.
    let clock = clean(vec![ldxw(6, 1, 0), stxw(8, 0, 6), call(5), ldxw(0, 8, 0), exit()]);
    assert_eq!(clock[3], mov(0, 6), "{clock:?}");
}

#[test]
fn a_key_a_lookup_only_read_is_not_stored_again() {
    // *(u32 *)(r10 - 8) = r7; lookup; *(u32 *)(r10 - 8) = r7 again; lookup
    let key = |out: &mut Vec<Insn>| out.extend([mov(2, FP), addi(2, -8), call(1)]);
    let mut insns = vec![ldxw(7, 1, 0), stxw(FP, -8, 7)];
    key(&mut insns);
    insns.push(stxw(FP, -8, 7));
    key(&mut insns);
    insns.push(exit());
    let out = clean(insns);
    assert_eq!(out.iter().filter(|n| **n == stxw(FP, -8, 7)).count(), 1, "{out:?}");
}

#[test]
fn a_stack_store_where_a_pointer_reaches_forgets_what_was_read_through_it() {
    // r4 = r10 - 16 is handed out; a read through it, a store at r10 - 12, a read again.
    let out = clean(vec![mov(4, FP), addi(4, -16), ldxw(1, 4, 4), stw(FP, -12, 9), ldxw(0, 4, 4), stxw(FP, -20, 1), exit()]);
    assert!(out.contains(&ldxw(0, 4, 4)), "{out:?}");
}

#[test]
fn returns_of_the_same_value_share_one_exit() {
    // if r1 == 0 goto A; if r2 == 0 goto B; r0 = 1; exit; A: r0 = 0; exit; B: r0 = 0; exit
    let out = clean(vec![jeq(1, 0, 3), jeq(2, 0, 4), movi(0, 1), exit(), movi(0, 0), exit(), movi(0, 0), exit()]);
    assert_eq!(out, vec![jeq(1, 0, 3), jeq(2, 0, 2), movi(0, 1), exit(), movi(0, 0), exit()]);
}

#[test]
fn context_fields_stay_known_across_calls_and_stores_through_pointers() {
    // r6 = ctx; r7 = ctx.tid; lookup; *(r0) = 1; r0 = ctx.tid again
    let out = clean(vec![mov(6, 1), ldxw(7, 6, 24), stxw(FP, -8, 7), call(1), stw(0, 0, 1), ldxw(0, 6, 24), stxw(FP, -16, 7), exit()]);
    assert!(out.contains(&mov(0, 7)) && !out.contains(&ldxw(0, 6, 24)), "{out:?}");
}

fn ld64(d: u8, v: i32) -> Insn {
    Insn { code: class::LD | size::DW | MODE_IMM, dst: d, src: 0, off: 0, imm: v }
}

#[test]
fn a_flag_set_on_three_paths_and_tested_once_becomes_jumps() {
    // if r1 != 0 goto A; r4 = 1; goto T; A: if r2 != 0 goto B; r4 = 0; goto T;
    // B: r4 = 1; T: if r4 == 0 goto OUT; r0 = 7; exit; OUT: r0 = 9; exit
    let out = clean(vec![
        jne(1, 0, 2),
        movi(4, 1),
        ja(4),
        jne(2, 0, 2),
        movi(4, 0),
        ja(1),
        movi(4, 1),
        jeq(4, 0, 2),
        movi(0, 7),
        exit(),
        movi(0, 9),
        exit(),
    ]);
    assert!(out.iter().all(|n| n.dst != 4), "the flag is gone: {out:?}");
    assert!(out.len() <= 8, "{out:?}");
}

#[test]
fn unreachable_code_goes_with_both_slots_of_a_wide_load_and_its_relocation() {
    // goto +3 skips a ld_imm64 (two slots) and a move nothing reaches.
    let mut c = Compiled {
        insns: vec![ja(3), ld64(1, 0), Insn { code: 0, dst: 0, src: 0, off: 0, imm: 0 }, movi(0, 1), movi(0, 0), exit()],
        relocs: vec![(1, crate::RelocTarget::Rodata(0))],
        lines: vec![(0, Loc::default())],
        stack_size: 0,
    };
    run(&mut c);
    assert_eq!(c.insns, vec![movi(0, 0), exit()]);
    assert!(c.relocs.is_empty());
}

fn jlt_x(d: u8, s: u8, off: i16) -> Insn {
    Insn { code: class::JMP | jmp::JLT | SRC_X, dst: d, src: s, off, imm: 0 }
}
fn jge_x(d: u8, s: u8, off: i16) -> Insn {
    Insn { code: class::JMP | jmp::JGE | SRC_X, dst: d, src: s, off, imm: 0 }
}

#[test]
fn max_into_the_field_it_read_stores_only_when_it_changes() {
    // r1 = field; r2 = r4; if r1 < r4 goto S; r2 = r1; S: field = r2
    let out = clean(vec![ldx(1, 8, 40), mov(2, 4), jlt_x(1, 4, 1), mov(2, 1), stx(8, 40, 2), movi(0, 0), exit()]);
    assert_eq!(out, vec![ldx(1, 8, 40), jge_x(1, 4, 1), stx(8, 40, 4), movi(0, 0), exit()]);
}

#[test]
fn a_choice_stored_elsewhere_or_reached_from_elsewhere_stays() {
    // Stored to another field: both sides are real stores.
    let other = vec![ldx(1, 8, 40), mov(2, 4), jlt_x(1, 4, 1), mov(2, 1), stx(8, 48, 2), movi(0, 0), exit()];
    assert_eq!(clean(other.clone()).len(), other.len());
    // A store in between may have changed the field.
    let between = vec![ldx(1, 8, 40), stx(7, 0, 3), mov(2, 4), jlt_x(1, 4, 1), mov(2, 1), stx(8, 40, 2), movi(0, 0), exit()];
    assert_eq!(clean(between.clone()).len(), between.len());
}

#[test]
fn a_copy_of_a_dying_value_becomes_the_value_past_a_jump() {
    // r1 = field; if r1 == 0 goto out; r2 = r1; w2 -= 1; field = r2; r0 = r2; exit
    let sub = Insn { code: class::ALU | alu::SUB | SRC_K, dst: 2, src: 0, off: 0, imm: 1 };
    let out = clean(vec![ldxw(1, 8, 0), jeq(1, 0, 5), mov(2, 1), sub, stxw(8, 0, 2), mov(0, 2), exit(), movi(0, 0), exit()]);
    let sub1 = Insn { dst: 1, ..sub };
    assert_eq!(out, vec![ldxw(1, 8, 0), jeq(1, 0, 4), sub1, stxw(8, 0, 1), mov(0, 1), exit(), movi(0, 0), exit()]);
}

#[test]
fn an_atomic_add_fetches_the_old_value_only_when_it_is_read() {
    let add = |imm: i32| Insn { code: class::STX | size::DW | MODE_ATOMIC, dst: 1, src: 2, off: 8, imm };
    let fetch_add = add(i32::from(alu::ADD) | ATOMIC_FETCH);
    // The old value in r2 is dropped: a plain `lock add`.
    let out = clean(vec![movi(2, 1), fetch_add, movi(0, 0), exit()]);
    assert_eq!(out, vec![movi(2, 1), add(i32::from(alu::ADD)), movi(0, 0), exit()]);
    // Returned: it stays a fetch.
    let out = clean(vec![movi(2, 1), fetch_add, mov(0, 2), exit()]);
    assert_eq!(out[1], fetch_add, "{out:?}");
}
