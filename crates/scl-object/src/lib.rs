//! The BPF object writer: a standard `ET_REL`/`EM_BPF` ELF file with `.BTF` and `.BTF.ext`,
//! loadable by libbpf, made without clang or LLVM.
//!
//! The input is a plain description of what goes in ([`ObjectSpec`]): programs with their
//! encoded instructions, relocations and line info; BTF-defined maps; `.rodata` config
//! variables; the license. Types are described as C types ([`CType`]) so the writer can
//! emit BTF for map keys and values and for config variables. This crate makes no
//! syscalls and knows nothing of SCL's syntax or checker: bytes in, bytes out.
//! `shared/reference/bpf-object.md` (beside the repository) records what libbpf and the
//! kernel require of such a file, confirmed by experiment.
//!
//! The entry point is [`write()`]; it checks the spec first and reports mistakes as
//! [`ObjectError`]s rather than writing a file libbpf would refuse (or, worse, accept while
//! silently dropping its BTF). [`dump_btf`] and [`dump_btf_ext`] print the two BTF sections
//! back for tests and debugging.
//!
//! Modules: `btf` builds the type and string tables, `ext` the func_info and line_info
//! records, `elf` the sections, symbols and relocations; `error` holds [`ObjectError`].

#![deny(missing_docs)]

mod btf;
pub mod btf_kind;
mod elf;
mod error;
mod ext;

use std::collections::{HashMap, HashSet};

pub use btf::dump_btf;
pub use error::{is_c_identifier, ObjectError};
pub use ext::dump_btf_ext;

/// A C type, for BTF.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CType {
    /// An integer of `bytes` bytes (1, 2, 4, 8), signed or not. `bool` is an unsigned byte
    /// named `bool`.
    Int {
        /// Its BTF name (`u32`, `i64`, `bool`, ...).
        name: String,
        /// Size in bytes.
        bytes: u32,
        /// Signed.
        signed: bool,
    },
    /// A struct with named members at byte offsets.
    Struct {
        /// Its name (a C identifier).
        name: String,
        /// Size in bytes.
        size: u32,
        /// Members: name, type, byte offset.
        members: Vec<(String, CType, u32)>,
    },
    /// `elem[len]`.
    Array {
        /// Element type.
        elem: Box<CType>,
        /// Number of elements.
        len: u32,
    },
}

/// A relocation on one instruction of a program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reloc {
    /// An `ld_imm64` at instruction index `insn` that loads the map called `map`.
    Map {
        /// Index of the first slot of the `ld_imm64`.
        insn: u32,
        /// The map's name.
        map: String,
    },
    /// An `ld_imm64` at `insn` that loads the address of `.rodata` variable `var`
    /// (the writer puts the variable's offset within itself, 0, in `imm`).
    Rodata {
        /// Index of the first slot of the `ld_imm64`.
        insn: u32,
        /// The variable's name.
        var: String,
    },
    /// An `ld_imm64` at `insn` that loads the address of the subprogram `name` in `.text`
    /// (a `bpf_loop` callback); the writer puts its byte offset in `.text` in `imm`.
    Subprog {
        /// Index of the first slot of the `ld_imm64`.
        insn: u32,
        /// The subprogram's name.
        name: String,
    },
}

/// A subprogram in `.text`: a `bpf_loop` callback of prototype
/// `long NAME(u32 index, void *ctx)`, static, reached through [`Reloc::Subprog`].
#[derive(Clone, Debug)]
pub struct SubprogSpec {
    /// Its symbol name (a C identifier).
    pub name: String,
    /// Encoded instructions.
    pub insns: Vec<[u8; 8]>,
    /// Line info, as for programs (one at instruction 0).
    pub lines: Vec<LineInfo>,
}

/// One line-info record: instruction `insn` comes from `line`:`column` of `file`, whose
/// text at that line is `source`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineInfo {
    /// Instruction index (not byte offset).
    pub insn: u32,
    /// File name as shown in verifier logs.
    pub file: String,
    /// The source line's text.
    pub source: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
}

/// One BPF program.
#[derive(Clone, Debug)]
pub struct ProgramSpec {
    /// Its symbol name (a C identifier; libbpf's program name).
    pub name: String,
    /// Its ELF section (`tp_btf/contention_begin`, `syscall`, ...).
    pub section: String,
    /// Encoded instructions, 8 bytes each.
    pub insns: Vec<[u8; 8]>,
    /// Relocations.
    pub relocs: Vec<Reloc>,
    /// Line info, strictly increasing by `insn`, with one at instruction 0. Every program
    /// gets the BTF prototype `int NAME(void *ctx)` for its func_info.
    pub lines: Vec<LineInfo>,
}

/// One BTF-defined map, written into `.maps`.
#[derive(Clone, Debug)]
pub struct MapSpec {
    /// Its name (a C identifier).
    pub name: String,
    /// The BPF map type number (1 hash, 2 array, 6 percpu array, 9 LRU hash, 27 ringbuf).
    pub map_type: u32,
    /// Key type (`None` for ring buffers).
    pub key: Option<CType>,
    /// Value type (`None` for ring buffers).
    pub value: Option<CType>,
    /// `max_entries` (bytes for ring buffers).
    pub max_entries: u32,
}

/// One `.rodata` variable.
#[derive(Clone, Debug)]
pub struct RodataSpec {
    /// Its name (a C identifier; libbpf sees it as a global variable).
    pub name: String,
    /// Its type.
    pub ty: CType,
    /// Its offset in `.rodata`.
    pub offset: u32,
    /// Its initial bytes (little-endian; length = the type's size).
    pub init: Vec<u8>,
}

/// Everything that goes into one object.
#[derive(Clone, Debug, Default)]
pub struct ObjectSpec {
    /// The programs.
    pub programs: Vec<ProgramSpec>,
    /// Subprograms in `.text` that programs refer to.
    pub subprograms: Vec<SubprogSpec>,
    /// The maps.
    pub maps: Vec<MapSpec>,
    /// The config variables.
    pub rodata: Vec<RodataSpec>,
    /// The license string (`GPL`).
    pub license: String,
}

/// `BPF_MAP_TYPE_ARRAY`.
const MAP_ARRAY: u32 = 2;
/// `BPF_MAP_TYPE_PERCPU_ARRAY`.
const MAP_PERCPU_ARRAY: u32 = 6;
/// `BPF_MAP_TYPE_RINGBUF`.
const MAP_RINGBUF: u32 = 27;
/// Ring buffer sizes must be a multiple of the page size; 4096 is the smallest Linux has.
const MIN_PAGE: u32 = 4096;

/// Writes `spec` as a relocatable BPF ELF object (`ET_REL`, `EM_BPF`) with `.BTF` and
/// `.BTF.ext`, ready for libbpf.
///
/// Programs that name the same section are placed back to back in it, in spec order. Each
/// program gets a GLOBAL `STT_FUNC` symbol, a BTF `FUNC` of prototype `int (void *ctx)`,
/// a func_info record and its line_info records (instruction indexes become byte offsets
/// in the section). Each map becomes a BTF-defined map: a GLOBAL `STT_OBJECT` symbol in
/// `.maps` and a `VAR` of an anonymous struct (`type`, `key`, `value`, `max_entries`; ring
/// buffers only `type` and `max_entries`), all listed in `DATASEC .maps`. Each `.rodata`
/// variable gets a symbol and a `VAR` in `DATASEC .rodata`. Relocated `ld_imm64`
/// instructions are normalised: source register and both `imm` fields are set to 0 (the
/// offset within the map or variable), as libbpf expects.
///
/// # Errors
///
/// Anything libbpf or the kernel would refuse, or that is ambiguous: see [`ObjectError`].
pub fn write(spec: &ObjectSpec) -> Result<Vec<u8>, ObjectError> {
    if spec.license.is_empty() || spec.license.contains('\0') {
        return Err(ObjectError::BadLicense {
            license: spec.license.clone(),
        });
    }
    check_names(spec)?;
    let map_index: HashMap<&str, usize> = spec
        .maps
        .iter()
        .enumerate()
        .map(|(i, m)| (m.name.as_str(), i))
        .collect();
    let var_index: HashMap<&str, usize> = spec
        .rodata
        .iter()
        .enumerate()
        .map(|(i, v)| (v.name.as_str(), i))
        .collect();

    let mut btf = btf::BtfBuilder::new();

    // Maps: one definition struct each, back to back in `.maps`.
    let mut maps = Vec::with_capacity(spec.maps.len());
    let mut maps_secinfo = Vec::with_capacity(spec.maps.len());
    let mut maps_len = 0u32;
    for map in &spec.maps {
        let (def, size) = map_definition(&mut btf, map)?;
        let var = btf.var(&map.name, def, btf::LINKAGE_GLOBAL);
        maps_secinfo.push((var, maps_len, size));
        maps.push((map.name.clone(), u64::from(maps_len), u64::from(size)));
        maps_len += size;
    }

    // `.rodata`: the variables at their offsets, gaps zeroed.
    let (rodata, vars, rodata_secinfo) = rodata(&mut btf, &spec.rodata)?;

    // Programs, grouped by section in order of first appearance.
    let int = btf.c_int()?;
    let void_ptr = btf.ptr(0);
    let proto = btf.func_proto(int, &[("ctx", void_ptr)]);
    let mut code: Vec<elf::CodeSection> = Vec::new();
    let mut exts: Vec<ext::SectionExt> = Vec::new();
    // `.text` first: the subprograms, static, each a `long (u32 index, void *ctx)`.
    let mut text_offsets: HashMap<&str, u32> = HashMap::new();
    if !spec.subprograms.is_empty() {
        let long = btf.int("long", 8, true)?;
        let u32_ty = btf.u32_index()?;
        let cb_proto = btf.func_proto(long, &[("index", u32_ty), ("ctx", void_ptr)]);
        let mut sec = elf::CodeSection { name: ".text".into(), code: Vec::new(), programs: Vec::new(), relocs: Vec::new() };
        let mut sec_ext = ext::SectionExt { name_off: btf.strings.add(".text"), funcs: Vec::new(), lines: Vec::new() };
        for sub in &spec.subprograms {
            if sub.insns.is_empty() {
                return Err(ObjectError::EmptyProgram { program: sub.name.clone() });
            }
            let base = sec.code.len() as u32;
            let as_prog = ProgramSpec { name: sub.name.clone(), section: ".text".into(), insns: sub.insns.clone(), relocs: Vec::new(), lines: sub.lines.clone() };
            let second = elf::ld_imm64_second_slots(&sub.insns);
            let lines = ext::line_records(&as_prog, base, &second, &mut btf.strings)?;
            let func = btf.func(&sub.name, cb_proto, btf::LINKAGE_STATIC);
            sec.programs.push((sub.name.clone(), u64::from(base), sub.insns.len() as u64 * 8));
            sec.code.extend(sub.insns.iter().flatten());
            sec_ext.funcs.push([base, func]);
            sec_ext.lines.extend(lines);
            text_offsets.insert(sub.name.as_str(), base);
        }
        code.push(sec);
        exts.push(sec_ext);
    }
    for prog in &spec.programs {
        if prog.insns.is_empty() {
            return Err(ObjectError::EmptyProgram {
                program: prog.name.clone(),
            });
        }
        let slot = match code.iter().position(|c| c.name == prog.section) {
            Some(i) => i,
            None => {
                code.push(elf::CodeSection {
                    name: prog.section.clone(),
                    code: Vec::new(),
                    programs: Vec::new(),
                    relocs: Vec::new(),
                });
                exts.push(ext::SectionExt {
                    name_off: btf.strings.add(&prog.section),
                    funcs: Vec::new(),
                    lines: Vec::new(),
                });
                code.len() - 1
            }
        };
        let sec = &mut code[slot];
        let base = u32::try_from(sec.code.len())
            .ok()
            .filter(|b| b.checked_add(prog.insns.len() as u32 * 8).is_some())
            .ok_or_else(|| ObjectError::BadSection {
                program: prog.name.clone(),
                section: prog.section.clone(),
            })?;
        let second = elf::ld_imm64_second_slots(&prog.insns);
        let (insns, relocs) = elf::relocate(prog, &second, &map_index, &var_index, &text_offsets)?;
        let lines = ext::line_records(prog, base, &second, &mut btf.strings)?;
        let func = btf.func(&prog.name, proto, btf::LINKAGE_GLOBAL);
        let size = insns.len() as u64 * 8;
        sec.programs
            .push((prog.name.clone(), u64::from(base), size));
        sec.relocs.extend(
            relocs
                .into_iter()
                .map(|(insn, target)| (u64::from(base) + u64::from(insn) * 8, target)),
        );
        sec.code.extend(insns.iter().flatten());
        exts[slot].funcs.push([base, func]);
        exts[slot].lines.extend(lines);
    }

    if !spec.maps.is_empty() {
        btf.datasec(".maps", maps_len, &maps_secinfo);
    }
    if !spec.rodata.is_empty() {
        btf.datasec(".rodata", rodata.len() as u32, &rodata_secinfo);
    }
    let btf_ext = (!spec.programs.is_empty()).then(|| ext::write(&exts));
    let mut license = spec.license.as_bytes().to_vec();
    license.push(0);
    elf::write(elf::ElfParts {
        code,
        license,
        rodata,
        vars,
        maps_len: u64::from(maps_len),
        maps,
        btf: btf.finish(),
        btf_ext,
    })
}

/// Program, map and variable names are C identifiers, unique across all three (they share
/// the symbol table); program sections are usable.
fn check_names(spec: &ObjectSpec) -> Result<(), ObjectError> {
    let mut seen = HashSet::new();
    let names = spec
        .programs
        .iter()
        .map(|p| ("program", &p.name))
        .chain(spec.maps.iter().map(|m| ("map", &m.name)))
        .chain(spec.rodata.iter().map(|v| (".rodata variable", &v.name)))
        .chain(spec.subprograms.iter().map(|p| ("subprogram", &p.name)));
    for (what, name) in names {
        if !is_c_identifier(name) {
            return Err(ObjectError::BadName {
                what,
                name: name.clone(),
            });
        }
        if !seen.insert(name.as_str()) {
            return Err(ObjectError::DuplicateName { name: name.clone() });
        }
    }
    for p in &spec.programs {
        let s = &p.section;
        if s.is_empty()
            || s.starts_with('.')
            || s.contains('\0')
            || matches!(s.as_str(), "license" | "version" | "maps")
        {
            return Err(ObjectError::BadSection {
                program: p.name.clone(),
                section: s.clone(),
            });
        }
    }
    Ok(())
}

/// The BTF of one map's definition struct and its size in `.maps`.
fn map_definition(btf: &mut btf::BtfBuilder, map: &MapSpec) -> Result<(u32, u32), ObjectError> {
    let bad = |why: String| ObjectError::BadMap {
        map: map.name.clone(),
        why,
    };
    if map.max_entries == 0 {
        return Err(bad("max_entries is 0".into()));
    }
    let int = btf.c_int()?;
    let index = btf.u32_index()?;
    let attr = |btf: &mut btf::BtfBuilder, value: u32| {
        let arr = btf.array(int, index, value);
        btf.ptr(arr)
    };
    let type_attr = attr(btf, map.map_type);
    let max_attr = attr(btf, map.max_entries);
    let members: Vec<(&str, u32)> = if map.map_type == MAP_RINGBUF {
        if map.key.is_some() || map.value.is_some() {
            return Err(bad("a ring buffer has no key or value type".into()));
        }
        // A power of two is a multiple of 4096 exactly when it is at least 4096.
        if !map.max_entries.is_power_of_two() || map.max_entries < MIN_PAGE {
            return Err(bad(format!(
                "ring buffer size {} is not a power of two and a multiple of {MIN_PAGE}",
                map.max_entries
            )));
        }
        vec![("type", type_attr), ("max_entries", max_attr)]
    } else {
        let (Some(key), Some(value)) = (&map.key, &map.value) else {
            return Err(bad("needs both a key and a value type".into()));
        };
        let (key_size, _) = btf::layout(key)?;
        let (value_size, _) = btf::layout(value)?;
        if key_size == 0 || value_size == 0 {
            return Err(bad("key and value must not be empty".into()));
        }
        if matches!(map.map_type, MAP_ARRAY | MAP_PERCPU_ARRAY) && key_size != 4 {
            return Err(bad(format!(
                "an array's key must be 4 bytes, not {key_size}"
            )));
        }
        let key = btf.ctype(key)?;
        let value = btf.ctype(value)?;
        let key_ptr = btf.ptr(key);
        let value_ptr = btf.ptr(value);
        vec![
            ("type", type_attr),
            ("key", key_ptr),
            ("value", value_ptr),
            ("max_entries", max_attr),
        ]
    };
    let fields: Vec<(&str, u32, u32)> = members
        .iter()
        .enumerate()
        .map(|(i, &(name, ty))| (name, ty, i as u32 * 64))
        .collect();
    let size = members.len() as u32 * 8;
    Ok((btf.structure("", size, &fields), size))
}

/// `.rodata` bytes, a symbol per variable (spec order) and the DATASEC entries (sorted
/// by offset).
#[allow(clippy::type_complexity)]
fn rodata(
    btf: &mut btf::BtfBuilder,
    vars: &[RodataSpec],
) -> Result<(Vec<u8>, Vec<elf::Sym>, Vec<(u32, u32, u32)>), ObjectError> {
    let mut data = Vec::new();
    let mut syms = Vec::with_capacity(vars.len());
    let mut secinfo = Vec::with_capacity(vars.len());
    for v in vars {
        let bad = |why: String| ObjectError::BadRodata {
            var: v.name.clone(),
            why,
        };
        let (size, align) = btf::layout(&v.ty)?;
        if v.init.len() != size as usize {
            return Err(bad(format!(
                "{} initial bytes for a type of {size} bytes",
                v.init.len()
            )));
        }
        if v.offset % align != 0 {
            return Err(bad(format!("offset {} is not {align}-aligned", v.offset)));
        }
        let end = v
            .offset
            .checked_add(size)
            .ok_or_else(|| bad("offset overflows".into()))?;
        let ty = btf.ctype(&v.ty)?;
        let var = btf.var(&v.name, ty, btf::LINKAGE_GLOBAL);
        secinfo.push((var, v.offset, size));
        syms.push((v.name.clone(), u64::from(v.offset), u64::from(size)));
        if data.len() < end as usize {
            data.resize(end as usize, 0);
        }
        data[v.offset as usize..end as usize].copy_from_slice(&v.init);
    }
    secinfo.sort_by_key(|&(_, off, _)| off);
    for pair in secinfo.windows(2) {
        if pair[0].1 + pair[0].2 > pair[1].1 {
            let i = syms
                .iter()
                .position(|s| s.1 == u64::from(pair[1].1))
                .unwrap_or(0);
            return Err(ObjectError::BadRodata {
                var: vars[i].name.clone(),
                why: "overlaps another variable".into(),
            });
        }
    }
    Ok((data, syms, secinfo))
}
