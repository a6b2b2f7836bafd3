//! Every mistake the writer refuses, made once on the valid sample spec, with the error it
//! gives and its message.

mod common;

use common::*;
use scl_object::{CType, LineInfo, ObjectError, ObjectSpec, Reloc, RodataSpec};

fn err(change: impl FnOnce(&mut ObjectSpec)) -> ObjectError {
    let mut spec = sample_spec();
    change(&mut spec);
    scl_object::write(&spec).expect_err("the writer should refuse this spec")
}

#[test]
fn the_sample_is_valid() {
    scl_object::write(&sample_spec()).unwrap();
}

#[test]
fn names_are_unique_across_programs_maps_and_variables() {
    let e = err(|s| s.maps[1].name = "counts".into());
    assert_eq!(
        e,
        ObjectError::DuplicateName {
            name: "counts".into()
        }
    );
    let e = err(|s| s.rodata[0].name = "run".into());
    assert_eq!(e, ObjectError::DuplicateName { name: "run".into() });
    assert_eq!(
        e.to_string(),
        "the name `run` is used by more than one program, map or variable"
    );
}

#[test]
fn names_must_be_c_identifiers() {
    for (name, change) in [
        (
            "run-it",
            Box::new(|s: &mut ObjectSpec| s.programs[0].name = "run-it".into())
                as Box<dyn FnOnce(&mut ObjectSpec)>,
        ),
        (
            "1counts",
            Box::new(|s: &mut ObjectSpec| s.maps[0].name = "1counts".into()),
        ),
        (
            "cfg.scale",
            Box::new(|s: &mut ObjectSpec| s.rodata[0].name = "cfg.scale".into()),
        ),
        (
            "",
            Box::new(|s: &mut ObjectSpec| s.maps[2].name = String::new()),
        ),
    ] {
        match err(change) {
            ObjectError::BadName { name: n, .. } => assert_eq!(n, name),
            other => panic!("{name:?}: {other:?}"),
        }
    }
    let e = err(|s| {
        let CType::Struct { members, .. } = s.maps[1].value.as_mut().unwrap() else {
            unreachable!()
        };
        members[0].0 = "total ns".into();
    });
    assert_eq!(
        e,
        ObjectError::BadName {
            what: "struct member",
            name: "total ns".into()
        }
    );
    assert_eq!(
        e.to_string(),
        "struct member name `total ns` is not a C identifier"
    );
    assert!(scl_object::is_c_identifier("_x9"));
    assert!(!scl_object::is_c_identifier("9x"));
    assert!(!scl_object::is_c_identifier("é"));
}

#[test]
fn sections_and_license_are_checked() {
    for bad in ["", ".text", "license", "maps", "a\0b"] {
        let e = err(|s| s.programs[0].section = bad.into());
        assert!(
            matches!(e, ObjectError::BadSection { .. }),
            "{bad:?}: {e:?}"
        );
    }
    assert!(matches!(
        err(|s| s.license = String::new()),
        ObjectError::BadLicense { .. }
    ));
    assert!(matches!(
        err(|s| s.license = "G\0PL".into()),
        ObjectError::BadLicense { .. }
    ));
    let e = err(|s| {
        s.programs[0].insns.clear();
        s.programs[0].relocs.clear();
        s.programs[0].lines.clear();
    });
    assert_eq!(
        e,
        ObjectError::EmptyProgram {
            program: "run".into()
        }
    );
}

#[test]
fn relocations_name_known_maps_and_variables() {
    let e = err(|s| {
        s.programs[0].relocs[2] = Reloc::Map {
            insn: RUN_COUNTS_INSN,
            map: "nope".into(),
        }
    });
    assert_eq!(
        e,
        ObjectError::UnknownMap {
            program: "run".into(),
            map: "nope".into()
        }
    );
    assert_eq!(e.to_string(), "program `run` refers to unknown map `nope`");
    let e = err(|s| {
        s.programs[0].relocs[0] = Reloc::Rodata {
            insn: RUN_SCALE_INSN,
            var: "nope".into(),
        }
    });
    assert_eq!(
        e,
        ObjectError::UnknownVar {
            program: "run".into(),
            var: "nope".into()
        }
    );
}

#[test]
fn relocations_sit_on_whole_ld_imm64() {
    let cases = [
        (RUN_SCALE_INSN + 1, "not the first slot of an ld_imm64"), // second slot
        (0, "not the first slot of an ld_imm64"),                  // an ldx
        (20, "no whole ld_imm64 there (past the end of the program)"),
        (99, "no whole ld_imm64 there (past the end of the program)"),
        (RUN_THRESHOLD_INSN, "two relocations on one instruction"),
    ];
    for (insn, why) in cases {
        let e = err(|s| {
            s.programs[0].relocs.push(Reloc::Map {
                insn,
                map: "counts".into(),
            })
        });
        assert_eq!(
            e,
            ObjectError::BadReloc {
                program: "run".into(),
                insn,
                why
            },
            "insn {insn}"
        );
    }
}

fn line(insn: u32) -> LineInfo {
    LineInfo {
        insn,
        file: "f.scl".into(),
        source: String::new(),
        line: 1,
        column: 1,
    }
}

#[test]
fn line_info_is_checked() {
    let e = err(|s| drop(s.programs[1].lines.remove(0)));
    assert_eq!(
        e,
        ObjectError::FirstInsnUncovered {
            program: "on_contention".into()
        }
    );
    let e = err(|s| s.programs[1].lines.clear());
    assert_eq!(
        e,
        ObjectError::FirstInsnUncovered {
            program: "on_contention".into()
        }
    );
    let e = err(|s| s.programs[0].lines.push(line(3)));
    assert_eq!(
        e,
        ObjectError::LineNotIncreasing {
            program: "run".into(),
            insn: 3
        }
    );
    let e = err(|s| s.programs[0].lines.insert(1, line(0)));
    assert_eq!(
        e,
        ObjectError::LineNotIncreasing {
            program: "run".into(),
            insn: 0
        }
    );
    assert_eq!(
        e.to_string(),
        "line info of program `run` is not strictly increasing at instruction 0"
    );
    let e = err(|s| s.programs[0].lines = vec![line(0), line(RUN_COUNTS_INSN + 1)]);
    assert_eq!(
        e,
        ObjectError::BadLineInfo {
            program: "run".into(),
            insn: RUN_COUNTS_INSN + 1,
            why: "on the second slot of an ld_imm64"
        }
    );
    let e = err(|s| s.programs[0].lines.push(line(21)));
    assert!(matches!(
        e,
        ObjectError::BadLineInfo {
            insn: 21,
            why: "past the end of the program",
            ..
        }
    ));
    let e = err(|s| s.programs[0].lines[4].line = 1 << 22);
    assert!(matches!(e, ObjectError::BadLineInfo { .. }), "{e:?}");
    // Columns beyond BTF's 10 bits are clamped, not refused.
    let mut spec = sample_spec();
    spec.programs[0].lines[0].column = 5000;
    scl_object::write(&spec).unwrap();
}

#[test]
fn types_are_checked() {
    let e = err(|s| {
        s.maps[0].value = Some(CType::Int {
            name: "u24".into(),
            bytes: 3,
            signed: false,
        })
    });
    assert!(
        matches!(e, ObjectError::BadType { ref name, .. } if name == "u24"),
        "{e:?}"
    );
    let e = err(|s| {
        s.rodata[0].ty = CType::Int {
            name: "bool".into(),
            bytes: 4,
            signed: false,
        }
    });
    assert!(matches!(e, ObjectError::BadType { .. }), "{e:?}");
    let with_members = |members: Vec<(String, CType, u32)>, size| CType::Struct {
        name: "s".into(),
        size,
        members,
    };
    for (members, size) in [
        (vec![("a".into(), u64_t(), 0), ("b".into(), u32_t(), 4)], 16), // overlap
        (vec![("a".into(), u32_t(), 8), ("b".into(), u32_t(), 0)], 16), // out of order
        (vec![("a".into(), u32_t(), 2)], 8),                            // misaligned
        (vec![("a".into(), u64_t(), 8)], 8),                            // outside
        (vec![("a".into(), u32_t(), 0), ("a".into(), u32_t(), 4)], 8),  // twice
        (vec![("a".into(), u64_t(), 0)], 12),                           // size not aligned
    ] {
        let e = err(|s| s.maps[1].value = Some(with_members(members.clone(), size)));
        assert!(
            matches!(e, ObjectError::BadType { ref name, .. } if name == "s"),
            "{members:?}: {e:?}"
        );
    }
    let e = err(|s| {
        s.maps[1].value = Some(CType::Array {
            elem: Box::new(u64_t()),
            len: u32::MAX,
        });
    });
    assert!(matches!(e, ObjectError::BadType { .. }), "{e:?}");
    // Two different types may not share a name.
    let e = err(|s| {
        s.rodata[1].ty = CType::Int {
            name: "u32".into(),
            bytes: 8,
            signed: false,
        }
    });
    assert_eq!(e, ObjectError::ConflictingType { name: "u32".into() });
    let e = err(|s| {
        s.maps[0].value = Some(CType::Struct {
            name: "wait_stat".into(),
            size: 8,
            members: vec![("x".into(), u64_t(), 0)],
        })
    });
    assert_eq!(
        e,
        ObjectError::ConflictingType {
            name: "wait_stat".into()
        }
    );
}

#[test]
fn maps_are_checked() {
    let bad_map = |e: ObjectError, name: &str| match e {
        ObjectError::BadMap { map, .. } => assert_eq!(map, name),
        other => panic!("{other:?}"),
    };
    bad_map(err(|s| s.maps[0].max_entries = 0), "counts");
    bad_map(err(|s| s.maps[0].key = None), "counts");
    bad_map(err(|s| s.maps[0].key = Some(u64_t())), "counts"); // array key must be 4 bytes
    bad_map(err(|s| s.maps[2].key = Some(u32_t())), "events");
    bad_map(err(|s| s.maps[2].max_entries = 4096 + 4096 * 2), "events");
    bad_map(err(|s| s.maps[2].max_entries = 2048), "events");
    bad_map(
        err(|s| {
            s.maps[1].value = Some(CType::Struct {
                name: "empty".into(),
                size: 0,
                members: vec![],
            })
        }),
        "waits",
    );
}

#[test]
fn rodata_is_checked() {
    let bad_var = |e: ObjectError, name: &str| match e {
        ObjectError::BadRodata { var, .. } => assert_eq!(var, name),
        other => panic!("{other:?}"),
    };
    bad_var(err(|s| s.rodata[0].init.pop().map(drop).unwrap()), "scale");
    bad_var(err(|s| s.rodata[1].offset = 4), "threshold"); // misaligned u64
    bad_var(
        err(|s| {
            s.rodata.push(RodataSpec {
                name: "third".into(),
                ty: u32_t(),
                offset: 12,
                init: vec![0; 4],
            })
        }),
        "third",
    );
}

#[test]
fn dump_helpers_refuse_garbage() {
    assert!(matches!(
        scl_object::dump_btf(b"not btf at all, clearly"),
        Err(ObjectError::MalformedBtf(_))
    ));
    assert!(matches!(
        scl_object::dump_btf(&[0x9f, 0xeb]),
        Err(ObjectError::MalformedBtf(_))
    ));
}
