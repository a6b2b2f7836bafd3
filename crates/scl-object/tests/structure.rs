//! The written ELF file, read back with the `object` crate: sections with their types,
//! flags and contents, symbols, relocations, and the BTF through `dump_btf` and bpftool.

mod common;

use std::collections::HashMap;

use common::*;
use object::elf;
use object::read::elf::{ElfFile64, FileHeader, SectionHeader};
use object::{
    Endianness, Object, ObjectSection, ObjectSymbol, RelocationFlags, RelocationTarget,
    SymbolFlags, SymbolKind, SymbolSection,
};

fn section_data<'a>(file: &ElfFile64<'a, Endianness>, name: &str) -> &'a [u8] {
    file.section_by_name(name)
        .unwrap_or_else(|| panic!("no section {name}"))
        .data()
        .unwrap()
}

fn written() -> Vec<u8> {
    scl_object::write(&sample_spec()).expect("the sample spec is valid")
}

fn parse(bytes: &[u8]) -> ElfFile64<'_, Endianness> {
    ElfFile64::<Endianness>::parse(bytes).expect("a well-formed ELF64 file")
}

#[test]
fn header_is_a_relocatable_bpf_object() {
    let bytes = written();
    let file = parse(&bytes);
    let e = file.endian();
    let h = file.elf_header();
    assert_eq!(h.e_type(e), elf::ET_REL);
    assert_eq!(h.e_machine(e), elf::EM_BPF);
    assert_eq!(h.e_flags(e), elf::FileFlags(0));
    assert_eq!(h.e_phnum(e), 0);
    assert!(file.is_little_endian());
}

#[test]
fn sections_have_the_documented_types_flags_and_contents() {
    let bytes = written();
    let file = parse(&bytes);
    let e = file.endian();
    let mut found = HashMap::new();
    for s in file.sections() {
        let h = s.elf_section_header();
        found.insert(
            s.name().unwrap().to_owned(),
            (h.sh_type(e), h.sh_flags(e), s.align()),
        );
    }
    let ax = elf::SHF_ALLOC | elf::SHF_EXECINSTR;
    let wa = elf::SHF_ALLOC | elf::SHF_WRITE;
    let a = elf::SHF_ALLOC;
    let none = elf::SectionFlags(0);
    let expect = [
        ("syscall", elf::SHT_PROGBITS, ax),
        ("tp_btf/contention_begin", elf::SHT_PROGBITS, ax),
        ("license", elf::SHT_PROGBITS, wa),
        (".rodata", elf::SHT_PROGBITS, a),
        (".maps", elf::SHT_PROGBITS, wa),
        (".BTF", elf::SHT_PROGBITS, none),
        (".BTF.ext", elf::SHT_PROGBITS, none),
        (".relsyscall", elf::SHT_REL, elf::SHF_INFO_LINK),
        (
            ".reltp_btf/contention_begin",
            elf::SHT_REL,
            elf::SHF_INFO_LINK,
        ),
        (".symtab", elf::SHT_SYMTAB, none),
        (".strtab", elf::SHT_STRTAB, none),
    ];
    for (name, ty, flags) in expect {
        let (t, f, _) = found
            .get(name)
            .unwrap_or_else(|| panic!("no section {name}: {found:?}"));
        assert_eq!((*t, *f), (ty, flags), "section {name}");
    }
    assert_eq!(found["syscall"].2, 8);
    assert_eq!(found["tp_btf/contention_begin"].2, 8);
    assert!(
        !found.keys().any(|n| n.starts_with(".rela")),
        "REL, not RELA: {found:?}"
    );
    assert_eq!(
        file.sections()
            .filter(|s| s.kind() == object::SectionKind::Metadata && s.name() == Ok(".symtab"))
            .count(),
        1
    );

    assert_eq!(
        section_data(&file, "syscall").len(),
        run_program().insns.len() * 8
    );
    assert_eq!(section_data(&file, "license"), b"GPL\0");
    let mut rodata = [0u8; 16];
    rodata[..4].copy_from_slice(&7u32.to_le_bytes());
    rodata[8..].copy_from_slice(&100u64.to_le_bytes());
    assert_eq!(section_data(&file, ".rodata"), &rodata[..]);
    // array and LRU hash: type, key, value, max_entries; ring buffer: type, max_entries.
    assert_eq!(section_data(&file, ".maps"), &[0u8; 32 + 32 + 16][..]);
    // Relocation sections point at the symbol table and their target.
    for s in file.sections() {
        let h = s.elf_section_header();
        if h.sh_type(e) == elf::SHT_REL {
            assert_eq!(h.sh_entsize(e), 16);
            let link = file
                .section_by_index(object::SectionIndex(h.sh_link(e) as usize))
                .unwrap();
            assert_eq!(link.name(), Ok(".symtab"));
            let target = file
                .section_by_index(object::SectionIndex(h.sh_info(e) as usize))
                .unwrap();
            assert_eq!(s.name().unwrap(), format!(".rel{}", target.name().unwrap()));
        }
    }
}

#[test]
fn programs_maps_and_variables_have_global_default_symbols() {
    let bytes = written();
    let file = parse(&bytes);
    let mut syms = HashMap::new();
    for sym in file.symbols() {
        let name = sym.name().unwrap().to_owned();
        if name.is_empty() {
            continue;
        }
        let SymbolSection::Section(idx) = sym.section() else {
            panic!("{name} undefined")
        };
        let section = file
            .section_by_index(idx)
            .unwrap()
            .name()
            .unwrap()
            .to_owned();
        let SymbolFlags::Elf { st_info, st_other } = sym.flags() else {
            unreachable!()
        };
        assert_eq!(st_info.st_bind(), elf::STB_GLOBAL, "{name} is GLOBAL");
        assert_eq!(
            st_other.visibility(),
            elf::STV_DEFAULT,
            "{name} has default visibility"
        );
        assert!(sym.is_global());
        syms.insert(
            name,
            (
                sym.kind(),
                section,
                sym.address(),
                sym.size(),
                st_info.st_type(),
            ),
        );
    }
    let run_size = run_program().insns.len() as u64 * 8;
    let contention_size = contention_program().insns.len() as u64 * 8;
    let expect = [
        (
            "run",
            SymbolKind::Text,
            "syscall",
            0,
            run_size,
            elf::STT_FUNC,
        ),
        (
            "on_contention",
            SymbolKind::Text,
            "tp_btf/contention_begin",
            0,
            contention_size,
            elf::STT_FUNC,
        ),
        ("counts", SymbolKind::Data, ".maps", 0, 32, elf::STT_OBJECT),
        ("waits", SymbolKind::Data, ".maps", 32, 32, elf::STT_OBJECT),
        ("events", SymbolKind::Data, ".maps", 64, 16, elf::STT_OBJECT),
        ("scale", SymbolKind::Data, ".rodata", 0, 4, elf::STT_OBJECT),
        (
            "threshold",
            SymbolKind::Data,
            ".rodata",
            8,
            8,
            elf::STT_OBJECT,
        ),
    ];
    for (name, kind, section, value, size, stt) in expect {
        assert_eq!(
            syms.remove(name),
            Some((kind, section.to_owned(), value, size, stt)),
            "symbol {name}"
        );
    }
    assert!(syms.is_empty(), "unexpected symbols: {syms:?}");
}

#[test]
fn relocations_are_r_bpf_64_64_on_zeroed_ld_imm64() {
    // Give the relocated instructions junk in src and imm: the writer must clear them.
    let mut spec = sample_spec();
    for i in [RUN_SCALE_INSN, RUN_THRESHOLD_INSN, RUN_COUNTS_INSN] {
        let i = i as usize;
        spec.programs[0].insns[i] = insn(0x18, 1, 2, 0, 1234);
        spec.programs[0].insns[i + 1] = insn(0, 0, 0, 0, 5678);
    }
    let bytes = scl_object::write(&spec).unwrap();
    let file = parse(&bytes);
    let mut relocs = Vec::new();
    for s in file.sections() {
        for (offset, r) in s.relocations() {
            let RelocationTarget::Symbol(idx) = r.target() else {
                panic!("not a symbol")
            };
            let sym = file
                .symbol_by_index(idx)
                .unwrap()
                .name()
                .unwrap()
                .to_owned();
            let RelocationFlags::Elf { r_type } = r.flags() else {
                unreachable!()
            };
            assert_eq!(r_type, elf::R_BPF_64_64);
            assert!(r.has_implicit_addend());
            assert_eq!(r.addend(), 0);
            relocs.push((s.name().unwrap().to_owned(), offset, sym));
            let code = s.data().unwrap();
            let at = offset as usize;
            assert_eq!(code[at], 0x18, "on an ld_imm64");
            assert_eq!(code[at + 1], 0x01, "dst kept, src cleared");
            assert_eq!(&code[at + 4..at + 8], &[0; 4], "imm of slot 1 is 0");
            assert_eq!(&code[at + 12..at + 16], &[0; 4], "imm of slot 2 is 0");
        }
    }
    relocs.sort();
    let at = |i: u32| u64::from(i) * 8;
    let mut expect = vec![
        ("syscall".to_owned(), at(RUN_SCALE_INSN), "scale".to_owned()),
        (
            "syscall".to_owned(),
            at(RUN_THRESHOLD_INSN),
            "threshold".to_owned(),
        ),
        (
            "syscall".to_owned(),
            at(RUN_COUNTS_INSN),
            "counts".to_owned(),
        ),
        (
            "tp_btf/contention_begin".to_owned(),
            at(CONTENTION_WAITS_INSN),
            "waits".to_owned(),
        ),
    ];
    expect.sort();
    assert_eq!(relocs, expect);
}

fn btf_dump() -> (String, String) {
    let bytes = written();
    let file = parse(&bytes);
    let btf = section_data(&file, ".BTF");
    (
        scl_object::dump_btf(btf).unwrap(),
        scl_object::dump_btf_ext(btf, section_data(&file, ".BTF.ext")).unwrap(),
    )
}

fn has_line(dump: &str, pattern: &str) -> bool {
    dump.lines().any(|l| l.contains(pattern))
}

#[test]
fn btf_describes_maps_variables_and_functions() {
    let (btf, _) = btf_dump();
    for want in [
        "VAR 'counts' type_id=",
        "VAR 'waits' type_id=",
        "VAR 'events' type_id=",
        "VAR 'scale' type_id=",
        "VAR 'threshold' type_id=",
        "DATASEC '.maps' size=80 vlen=3",
        "DATASEC '.rodata' size=16 vlen=2",
        "FUNC 'run' type_id=",
        "FUNC 'on_contention' type_id=",
        "STRUCT 'wait_stat' size=16 vlen=4",
        "\t'contended' type_id=",
        "INT 'bool' size=1 bits_offset=0 nr_bits=8 encoding=BOOL",
        "INT 'int' size=4 bits_offset=0 nr_bits=32 encoding=SIGNED",
        "index_type_id=2 nr_elems=27", // ringbuf type
        "index_type_id=2 nr_elems=4096",
        "\t'ctx' type_id=",
        "offset=32 size=32 (VAR 'waits')",
        "offset=8 size=8 (VAR 'threshold')",
    ] {
        assert!(has_line(&btf, want), "missing {want:?} in\n{btf}");
    }
    // The ring buffer's definition has only `type` and `max_entries`.
    let lines: Vec<&str> = btf.lines().collect();
    let events = lines.iter().find(|l| l.contains("VAR 'events'")).unwrap();
    let def_id: usize = events
        .split("type_id=")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let def = lines
        .iter()
        .position(|l| l.starts_with(&format!("[{def_id}] STRUCT '(anon)' size=16 vlen=2")))
        .unwrap();
    assert!(lines[def + 1].starts_with("\t'type' "));
    assert!(lines[def + 2].starts_with("\t'max_entries' "));
    // Each integer type once.
    assert_eq!(btf.matches("INT 'u32'").count(), 1, "{btf}");
    assert_eq!(btf.matches("INT 'u64'").count(), 1, "{btf}");
    assert_eq!(btf.matches("FUNC_PROTO").count(), 1, "{btf}");
}

#[test]
fn btf_ext_has_func_and_line_info_with_byte_offsets() {
    let (btf, ext) = btf_dump();
    let run_id = btf.lines().find(|l| l.contains("FUNC 'run'")).unwrap();
    let run_id = &run_id[1..run_id.find(']').unwrap()];
    assert!(
        ext.contains(&format!(
            "func_info section 'syscall':\n\tinsn_off=0 type_id={run_id}\n"
        )),
        "{ext}"
    );
    assert!(
        ext.contains("func_info section 'tp_btf/contention_begin':\n"),
        "{ext}"
    );
    assert!(
        ext.contains("\tinsn_off=72 file='fixture.scl' line=3 col=5 source='counts[0] = s;'"),
        "{ext}"
    );
    assert!(
        ext.contains(
            "line_info section 'tp_btf/contention_begin':\n\tinsn_off=0 file='fixture.scl' line=10"
        ),
        "{ext}"
    );
}

#[test]
fn programs_sharing_a_section_are_placed_back_to_back() {
    let mut spec = sample_spec();
    let mut second = contention_program();
    second.name = "on_contention_too".into();
    spec.programs.push(second);
    let bytes = scl_object::write(&spec).unwrap();
    let file = parse(&bytes);
    let len = contention_program().insns.len() as u64 * 8;
    assert_eq!(
        section_data(&file, "tp_btf/contention_begin").len() as u64,
        2 * len
    );
    let sym = file
        .symbols()
        .find(|s| s.name() == Ok("on_contention_too"))
        .unwrap();
    assert_eq!((sym.address(), sym.size()), (len, len));
    let relocs: Vec<u64> = file
        .section_by_name("tp_btf/contention_begin")
        .unwrap()
        .relocations()
        .map(|(off, _)| off)
        .collect();
    let waits = u64::from(CONTENTION_WAITS_INSN) * 8;
    assert_eq!(relocs, vec![waits, len + waits]);
    let btf = section_data(&file, ".BTF");
    let ext = scl_object::dump_btf_ext(btf, section_data(&file, ".BTF.ext")).unwrap();
    let section = ext
        .split("func_info section 'tp_btf/contention_begin':\n")
        .nth(1)
        .unwrap();
    let offs: Vec<&str> = section.lines().take(2).collect();
    assert!(
        offs[0].starts_with("\tinsn_off=0 ") && offs[1].starts_with(&format!("\tinsn_off={len} ")),
        "{ext}"
    );
    assert!(
        ext.contains(&format!(
            "\tinsn_off={} file='fixture.scl' line=11",
            len + 56
        )),
        "{ext}"
    );
}

#[test]
fn bpftool_reads_the_btf_as_dump_btf_prints_it() {
    let bytes = written();
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("scl-object-structure.o");
    std::fs::write(&path, &bytes).unwrap();
    let out = match std::process::Command::new("bpftool")
        .args(["btf", "dump", "file"])
        .arg(&path)
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("SKIPPED: bpftool not installed");
            return;
        }
        Err(e) => panic!("running bpftool: {e}"),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bpftool failed: {}{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "VAR 'counts'",
        "VAR 'waits'",
        "VAR 'events'",
        "VAR 'scale'",
        "VAR 'threshold'",
        "DATASEC '.maps'",
        "DATASEC '.rodata'",
        "FUNC 'run'",
        "FUNC 'on_contention'",
    ] {
        assert!(
            has_line(&stdout, want),
            "bpftool output lacks {want:?}:\n{stdout}"
        );
    }
    // dump_btf imitates bpftool's raw format (checked against bpftool 7.1).
    let (ours, _) = btf_dump();
    assert_eq!(ours.trim_end(), stdout.trim_end());
}

#[test]
fn sections_without_content_are_left_out() {
    // No programs: no `.BTF.ext`; no maps or variables: no `.maps`, `.rodata` or DATASEC.
    let mut spec = sample_spec();
    spec.programs.clear();
    let bytes = scl_object::write(&spec).unwrap();
    let file = parse(&bytes);
    assert!(file.section_by_name(".BTF.ext").is_none());
    assert!(file.section_by_name(".maps").is_some());

    let spec = scl_object::ObjectSpec {
        subprograms: Vec::new(),
        license: "GPL".into(),
        ..Default::default()
    };
    let bytes = scl_object::write(&spec).unwrap();
    let file = parse(&bytes);
    for name in [".maps", ".rodata", ".BTF.ext"] {
        assert!(file.section_by_name(name).is_none(), "{name}");
    }
    assert_eq!(section_data(&file, "license"), b"GPL\0");
    let btf = scl_object::dump_btf(section_data(&file, ".BTF")).unwrap();
    assert!(!btf.contains("DATASEC"), "{btf}");
}
