//! The ELF container: sections, symbols and relocations, written with the `object` crate.
//!
//! What goes where (see `shared/reference/bpf-object.md`, section 1):
//!
//! | section | type / flags |
//! |---|---|
//! | one per program section (`syscall`, `tp_btf/...`) | PROGBITS `AX`, align 8, with `.rel<name>` (SHT_REL) when it has relocations |
//! | `license` | PROGBITS `WA`, the license and a NUL |
//! | `.rodata` | PROGBITS `A`, the config variables' initial bytes |
//! | `.maps` | PROGBITS `WA`, zeros: one map-definition struct per map |
//! | `.BTF`, `.BTF.ext` | PROGBITS, no flags |
//!
//! Every program, map and variable gets a GLOBAL symbol of default visibility
//! (`SymbolScope::Dynamic`; `Linkage` would write STV_HIDDEN, which libbpf refuses).
//! Relocations are `R_BPF_64_64` on the first slot of an `ld_imm64`, against the map's or
//! variable's symbol, with implicit addends: the instruction's `imm` fields hold the offset
//! within the symbol (always 0 here) and the `object` addend is 0.

use std::collections::HashMap;

use object::write::{Object, Relocation, SectionId, Symbol, SymbolId, SymbolSection};
use object::{
    elf, Architecture, BinaryFormat, Endianness, RelocationFlags, SectionKind, SymbolFlags,
    SymbolKind, SymbolScope,
};

use crate::error::ObjectError;
use crate::{ProgramSpec, Reloc};

/// `BPF_LD | BPF_IMM | BPF_DW`, the opcode of `ld_imm64`.
pub(crate) const LD_IMM64: u8 = 0x18;

/// What a relocation points at.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Target {
    /// The map at this index of the spec.
    Map(usize),
    /// The `.rodata` variable at this index of the spec.
    Var(usize),
    /// The `.text` section (through its section symbol; the instruction's `imm` holds the
    /// byte offset of the subprogram).
    Text,
}

/// A symbol to define: name, offset in its section, size in bytes.
pub(crate) type Sym = (String, u64, u64);

/// One program section: its code and the programs and relocations in it.
pub(crate) struct CodeSection {
    /// The section name.
    pub(crate) name: String,
    /// The instructions of all its programs, back to back.
    pub(crate) code: Vec<u8>,
    /// One symbol per program.
    pub(crate) programs: Vec<Sym>,
    /// Relocations: byte offset in the section, target.
    pub(crate) relocs: Vec<(u64, Target)>,
}

/// Everything the ELF file holds, already laid out.
pub(crate) struct ElfParts {
    pub(crate) code: Vec<CodeSection>,
    pub(crate) license: Vec<u8>,
    /// `.rodata` bytes and one symbol per variable (in spec order, for [`Target::Var`]).
    pub(crate) rodata: Vec<u8>,
    pub(crate) vars: Vec<Sym>,
    /// `.maps` size and one symbol per map (in spec order, for [`Target::Map`]).
    pub(crate) maps_len: u64,
    pub(crate) maps: Vec<Sym>,
    pub(crate) btf: Vec<u8>,
    pub(crate) btf_ext: Option<Vec<u8>>,
}

/// `second[i]` is true when instruction `i` is the second slot of an `ld_imm64`.
pub(crate) fn ld_imm64_second_slots(insns: &[[u8; 8]]) -> Vec<bool> {
    let mut second = vec![false; insns.len()];
    let mut i = 0;
    while i < insns.len() {
        if insns[i][0] == LD_IMM64 && i + 1 < insns.len() {
            second[i + 1] = true;
            i += 2;
        } else {
            i += 1;
        }
    }
    second
}

/// A program's normalised instructions and its relocations (instruction index, target).
pub(crate) type Relocated = (Vec<[u8; 8]>, Vec<(u32, Target)>);

/// Checks `prog`'s relocations and returns its code with every relocated `ld_imm64`
/// normalised (src register 0, both `imm` fields 0, as libbpf expects), and the
/// relocations as (instruction index, target).
pub(crate) fn relocate(
    prog: &ProgramSpec,
    second: &[bool],
    maps: &HashMap<&str, usize>,
    vars: &HashMap<&str, usize>,
    text: &HashMap<&str, u32>,
) -> Result<Relocated, ObjectError> {
    let mut insns = prog.insns.clone();
    let mut out = Vec::with_capacity(prog.relocs.len());
    let mut seen = std::collections::HashSet::new();
    for reloc in &prog.relocs {
        let (insn, target) =
            match reloc {
                Reloc::Map { insn, map } => (
                    *insn,
                    Target::Map(*maps.get(map.as_str()).ok_or_else(|| {
                        ObjectError::UnknownMap {
                            program: prog.name.clone(),
                            map: map.clone(),
                        }
                    })?),
                ),
                Reloc::Rodata { insn, var } => (
                    *insn,
                    Target::Var(*vars.get(var.as_str()).ok_or_else(|| {
                        ObjectError::UnknownVar {
                            program: prog.name.clone(),
                            var: var.clone(),
                        }
                    })?),
                ),
                Reloc::Subprog { insn, name } => {
                    if !text.contains_key(name.as_str()) {
                        return Err(ObjectError::UnknownVar { program: prog.name.clone(), var: name.clone() });
                    }
                    (*insn, Target::Text)
                }
            };
        let bad = |why| ObjectError::BadReloc {
            program: prog.name.clone(),
            insn,
            why,
        };
        let i = insn as usize;
        if i + 1 >= insns.len() {
            return Err(bad("no whole ld_imm64 there (past the end of the program)"));
        }
        if insns[i][0] != LD_IMM64 || second[i] {
            return Err(bad("not the first slot of an ld_imm64"));
        }
        if !seen.insert(insn) {
            return Err(bad("two relocations on one instruction"));
        }
        insns[i][1] &= 0x0f; // src register 0: libbpf sets the pseudo kind
        insns[i][4..8].fill(0);
        insns[i + 1][4..8].fill(0);
        if let (Target::Text, Reloc::Subprog { name, .. }) = (target, reloc) {
            // libbpf reads the callee's byte offset in `.text` from `imm`.
            insns[i][4..8].copy_from_slice(&text[name.as_str()].to_le_bytes());
        }
        out.push((insn, target));
    }
    out.sort_by_key(|r| r.0);
    Ok((insns, out))
}

fn symbol(obj: &mut Object<'_>, section: SectionId, kind: SymbolKind, sym: &Sym) -> SymbolId {
    obj.add_symbol(Symbol {
        name: sym.0.as_bytes().to_vec(),
        value: sym.1,
        size: sym.2,
        kind,
        scope: SymbolScope::Dynamic,
        weak: false,
        section: SymbolSection::Section(section),
        flags: SymbolFlags::None,
    })
}

fn section(obj: &mut Object<'_>, name: &str, kind: SectionKind, data: Vec<u8>) -> SectionId {
    let id = obj.add_section(Vec::new(), name.as_bytes().to_vec(), kind);
    obj.set_section_data(id, data, 8);
    id
}

/// Writes the ELF file.
pub(crate) fn write(parts: ElfParts) -> Result<Vec<u8>, ObjectError> {
    let mut obj = Object::new(BinaryFormat::Elf, Architecture::Bpf, Endianness::Little);
    let code_ids: Vec<SectionId> = parts
        .code
        .iter()
        .map(|c| section(&mut obj, &c.name, SectionKind::Text, c.code.clone()))
        .collect();
    for (c, &id) in parts.code.iter().zip(&code_ids) {
        for p in &c.programs {
            let s = symbol(&mut obj, id, SymbolKind::Text, p);
            if c.name == ".text" {
                // Subprograms are static: libbpf refuses global functions it cannot verify
                // on their own, and a static one is verified as part of its caller.
                obj.symbol_mut(s).scope = SymbolScope::Compilation;
            }
        }
    }
    let text_id = parts.code.iter().zip(&code_ids).find(|(c, _)| c.name == ".text").map(|(_, &id)| id);
    section(&mut obj, "license", SectionKind::Data, parts.license);
    let mut var_syms = Vec::new();
    if !parts.vars.is_empty() {
        let rodata = section(&mut obj, ".rodata", SectionKind::ReadOnlyData, parts.rodata);
        for v in &parts.vars {
            var_syms.push(symbol(&mut obj, rodata, SymbolKind::Data, v));
        }
    }
    let mut map_syms = Vec::new();
    if !parts.maps.is_empty() {
        let maps = section(
            &mut obj,
            ".maps",
            SectionKind::Data,
            vec![0; parts.maps_len as usize],
        );
        for m in &parts.maps {
            map_syms.push(symbol(&mut obj, maps, SymbolKind::Data, m));
        }
    }
    section(&mut obj, ".BTF", SectionKind::Other, parts.btf);
    if let Some(ext) = parts.btf_ext {
        section(&mut obj, ".BTF.ext", SectionKind::Other, ext);
    }
    for (c, &id) in parts.code.iter().zip(&code_ids) {
        for &(offset, target) in &c.relocs {
            let symbol = match target {
                Target::Map(i) => map_syms[i],
                Target::Var(i) => var_syms[i],
                Target::Text => obj.section_symbol(text_id.ok_or_else(|| ObjectError::Elf("a reference to .text without subprograms".into()))?),
            };
            obj.add_relocation(
                id,
                Relocation {
                    offset,
                    symbol,
                    addend: 0,
                    flags: RelocationFlags::Elf {
                        r_type: elf::R_BPF_64_64,
                    },
                },
            )
            .map_err(|e| ObjectError::Elf(e.to_string()))?;
        }
    }
    obj.write().map_err(|e| ObjectError::Elf(e.to_string()))
}
