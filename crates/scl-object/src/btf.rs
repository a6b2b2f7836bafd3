//! `.BTF`: the type table and string table, built with deduplication, plus [`dump_btf`],
//! which prints a BTF blob in `bpftool btf dump`'s raw format for tests and debugging.
//!
//! Layout (see `shared/reference/bpf-object.md`): a 24-byte header, then the types (ids
//! from 1; 0 is `void`), then the strings (starting and ending with `\0`). Every type is
//! hash-consed on its encoded bytes, so identical types, including identical anonymous
//! pointers and arrays, get one id. Named integers and structs are also checked for
//! conflicts: two different types called `u32` would make the BTF ambiguous.

use std::collections::HashMap;

use crate::error::{is_c_identifier, ObjectError};
use crate::CType;

/// `0xEB9F`, the magic number of `.BTF` and `.BTF.ext`.
pub(crate) const MAGIC: u16 = 0xeb9f;
const HEADER_LEN: u32 = 24;

use crate::btf_kind::*;

/// `BTF_INT_SIGNED`.
const INT_SIGNED: u32 = 1;
/// `BTF_INT_CHAR`.
const INT_CHAR: u32 = 2;
/// `BTF_INT_BOOL`.
const INT_BOOL: u32 = 4;

/// Linkage of a FUNC or VAR: global (`BTF_FUNC_GLOBAL`, `BTF_VAR_GLOBAL_ALLOCATED`).
pub(crate) const LINKAGE_GLOBAL: u32 = 1;
/// `BTF_FUNC_STATIC`: a function local to its object (subprograms in `.text`).
pub(crate) const LINKAGE_STATIC: u32 = 0;

/// The BTF string table: `\0`-separated, deduplicated, offset 0 is the empty string.
pub(crate) struct Strings {
    data: Vec<u8>,
    index: HashMap<String, u32>,
}

impl Strings {
    fn new() -> Strings {
        let mut index = HashMap::new();
        index.insert(String::new(), 0);
        Strings {
            data: vec![0],
            index,
        }
    }

    /// The offset of `s`, adding it if new. `s` must not contain a NUL (callers check).
    pub(crate) fn add(&mut self, s: &str) -> u32 {
        if let Some(&off) = self.index.get(s) {
            return off;
        }
        let off = self.data.len() as u32;
        self.data.extend_from_slice(s.as_bytes());
        self.data.push(0);
        self.index.insert(s.to_owned(), off);
        off
    }
}

/// Builds a `.BTF` section.
pub(crate) struct BtfBuilder {
    /// The string table, shared with `.BTF.ext` (file names, source lines, section names).
    pub(crate) strings: Strings,
    types: Vec<u8>,
    next_id: u32,
    dedup: HashMap<Vec<u8>, u32>,
    named: HashMap<String, u32>,
}

fn u32s(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

fn info(kind: u32, vlen: usize) -> u32 {
    kind << 24 | (vlen as u32 & 0xffff)
}

impl BtfBuilder {
    pub(crate) fn new() -> BtfBuilder {
        BtfBuilder {
            strings: Strings::new(),
            types: Vec::new(),
            next_id: 1,
            dedup: HashMap::new(),
            named: HashMap::new(),
        }
    }

    fn add(&mut self, record: Vec<u8>) -> u32 {
        if let Some(&id) = self.dedup.get(&record) {
            return id;
        }
        let id = self.next_id;
        self.next_id += 1;
        self.types.extend_from_slice(&record);
        self.dedup.insert(record, id);
        id
    }

    /// Adds a named type, refusing a second, different type of the same name.
    fn add_named(&mut self, name: &str, record: Vec<u8>) -> Result<u32, ObjectError> {
        let id = self.add(record);
        match self.named.get(name) {
            Some(&old) if old != id => Err(ObjectError::ConflictingType {
                name: name.to_owned(),
            }),
            _ => {
                self.named.insert(name.to_owned(), id);
                Ok(id)
            }
        }
    }

    /// An integer of `bytes` bytes; `bool` gets `BTF_INT_BOOL`.
    pub(crate) fn int(&mut self, name: &str, bytes: u32, signed: bool) -> Result<u32, ObjectError> {
        let enc = if name == "bool" {
            INT_BOOL
        } else if signed {
            INT_SIGNED
        } else {
            0
        };
        let name_off = self.strings.add(name);
        let record = u32s(&[name_off, info(KIND_INT, 0), bytes, enc << 24 | (bytes * 8)]);
        self.add_named(name, record)
    }

    /// `int`, the return type of every program's prototype and the element type of the
    /// arrays that carry map attributes (as clang's `__uint` does).
    pub(crate) fn c_int(&mut self) -> Result<u32, ObjectError> {
        self.int("int", 4, true)
    }

    /// `u32`, the index type of every array.
    pub(crate) fn u32_index(&mut self) -> Result<u32, ObjectError> {
        self.int("u32", 4, false)
    }

    /// A pointer to `ty` (0 for `void *`).
    pub(crate) fn ptr(&mut self, ty: u32) -> u32 {
        self.add(u32s(&[0, info(KIND_PTR, 0), ty]))
    }

    /// `elem[nelems]`, indexed by `index`.
    pub(crate) fn array(&mut self, elem: u32, index: u32, nelems: u32) -> u32 {
        self.add(u32s(&[0, info(KIND_ARRAY, 0), 0, elem, index, nelems]))
    }

    /// A struct; `members` are (name, type, bit offset). An empty name makes it anonymous.
    pub(crate) fn structure(&mut self, name: &str, size: u32, members: &[(&str, u32, u32)]) -> u32 {
        let name_off = self.strings.add(name);
        let mut words = vec![name_off, info(KIND_STRUCT, members.len()), size];
        for &(m, ty, bits) in members {
            words.extend([self.strings.add(m), ty, bits]);
        }
        self.add(u32s(&words))
    }

    /// A function prototype returning `ret`, with (name, type) parameters.
    pub(crate) fn func_proto(&mut self, ret: u32, params: &[(&str, u32)]) -> u32 {
        let mut words = vec![0, info(KIND_FUNC_PROTO, params.len()), ret];
        for &(p, ty) in params {
            words.extend([self.strings.add(p), ty]);
        }
        self.add(u32s(&words))
    }

    /// A function of prototype `proto`; the linkage goes in vlen.
    pub(crate) fn func(&mut self, name: &str, proto: u32, linkage: u32) -> u32 {
        let name_off = self.strings.add(name);
        self.add(u32s(&[name_off, info(KIND_FUNC, linkage as usize), proto]))
    }

    /// A variable of type `ty`.
    pub(crate) fn var(&mut self, name: &str, ty: u32, linkage: u32) -> u32 {
        let name_off = self.strings.add(name);
        self.add(u32s(&[name_off, info(KIND_VAR, 0), ty, linkage]))
    }

    /// A data section of `size` bytes; `vars` are (VAR id, offset, size), sorted by offset.
    pub(crate) fn datasec(&mut self, name: &str, size: u32, vars: &[(u32, u32, u32)]) -> u32 {
        let name_off = self.strings.add(name);
        let mut words = vec![name_off, info(KIND_DATASEC, vars.len()), size];
        for &(var, off, sz) in vars {
            words.extend([var, off, sz]);
        }
        self.add(u32s(&words))
    }

    /// The BTF id of a C type, adding it (and what it refers to) if needed. Checks that
    /// names are identifiers and that the type can be laid out.
    pub(crate) fn ctype(&mut self, ty: &CType) -> Result<u32, ObjectError> {
        layout(ty)?;
        self.ctype_unchecked(ty)
    }

    fn ctype_unchecked(&mut self, ty: &CType) -> Result<u32, ObjectError> {
        match ty {
            CType::Int {
                name,
                bytes,
                signed,
            } => self.int(name, *bytes, *signed),
            CType::Array { elem, len } => {
                let elem = self.ctype_unchecked(elem)?;
                let index = self.u32_index()?;
                Ok(self.array(elem, index, *len))
            }
            CType::Struct {
                name,
                size,
                members,
            } => {
                let mut ids = Vec::with_capacity(members.len());
                for (_, mty, _) in members {
                    ids.push(self.ctype_unchecked(mty)?);
                }
                let fields: Vec<(&str, u32, u32)> = members
                    .iter()
                    .zip(ids)
                    .map(|((m, _, off), id)| (m.as_str(), id, off * 8))
                    .collect();
                let id = self.structure(name, *size, &fields);
                match self.named.get(name.as_str()) {
                    Some(&old) if old != id => {
                        Err(ObjectError::ConflictingType { name: name.clone() })
                    }
                    _ => {
                        self.named.insert(name.clone(), id);
                        Ok(id)
                    }
                }
            }
        }
    }

    /// The finished `.BTF` section.
    pub(crate) fn finish(self) -> Vec<u8> {
        let type_len = self.types.len() as u32;
        let str_len = self.strings.data.len() as u32;
        let mut out = Vec::with_capacity((HEADER_LEN + type_len + str_len) as usize);
        out.extend_from_slice(&MAGIC.to_le_bytes());
        out.push(1); // version
        out.push(0); // flags
        out.extend_from_slice(&u32s(&[HEADER_LEN, 0, type_len, type_len, str_len]));
        out.extend_from_slice(&self.types);
        out.extend_from_slice(&self.strings.data);
        out
    }
}

/// Size and alignment of a C type, checking that it is well formed: integers of 1, 2, 4
/// or 8 bytes (`bool` of 1, unsigned), identifier names, struct members named uniquely,
/// in increasing offset order, aligned, not overlapping and inside the struct.
pub(crate) fn layout(ty: &CType) -> Result<(u32, u32), ObjectError> {
    let bad = |name: &str, why: String| ObjectError::BadType {
        name: name.to_owned(),
        why,
    };
    match ty {
        CType::Int {
            name,
            bytes,
            signed,
        } => {
            if !is_c_identifier(name) {
                return Err(ObjectError::BadName {
                    what: "type",
                    name: name.clone(),
                });
            }
            if !matches!(bytes, 1 | 2 | 4 | 8) {
                return Err(bad(name, format!("an integer of {bytes} bytes")));
            }
            if name == "bool" && (*bytes != 1 || *signed) {
                return Err(bad(name, "`bool` must be one unsigned byte".into()));
            }
            Ok((*bytes, *bytes))
        }
        CType::Array { elem, len } => {
            let (size, align) = layout(elem)?;
            let total = size
                .checked_mul(*len)
                .ok_or_else(|| bad("array", format!("{len} elements of {size} bytes overflow")))?;
            Ok((total, align))
        }
        CType::Struct {
            name,
            size,
            members,
        } => {
            if !is_c_identifier(name) {
                return Err(ObjectError::BadName {
                    what: "struct",
                    name: name.clone(),
                });
            }
            let mut align = 1;
            let mut end = 0u32;
            let mut seen = std::collections::HashSet::new();
            for (m, mty, off) in members {
                if !is_c_identifier(m) {
                    return Err(ObjectError::BadName {
                        what: "struct member",
                        name: m.clone(),
                    });
                }
                if !seen.insert(m.as_str()) {
                    return Err(bad(name, format!("member `{m}` appears twice")));
                }
                let (msize, malign) = layout(mty)?;
                if off % malign != 0 {
                    return Err(bad(
                        name,
                        format!("member `{m}` at offset {off} is misaligned"),
                    ));
                }
                if *off < end {
                    return Err(bad(
                        name,
                        format!("member `{m}` at offset {off} overlaps or precedes the one before"),
                    ));
                }
                end = off
                    .checked_add(msize)
                    .filter(|e| *e <= *size && off.checked_mul(8).is_some())
                    .ok_or_else(|| {
                        bad(name, format!("member `{m}` does not fit in {size} bytes"))
                    })?;
                align = align.max(malign);
            }
            if size % align != 0 {
                return Err(bad(
                    name,
                    format!("size {size} is not a multiple of its alignment {align}"),
                ));
            }
            Ok((*size, align))
        }
    }
}

/// A parsed BTF blob: the type records (kind, name offset, info word, size/type, extra
/// words) and the string table.
pub(crate) struct ParsedBtf<'a> {
    types: Vec<(u32, u32, u32, u32, Vec<u32>)>,
    strings: &'a [u8],
}

fn word(data: &[u8], at: usize) -> Option<u32> {
    data.get(at..at + 4)
        .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
}

impl<'a> ParsedBtf<'a> {
    pub(crate) fn parse(data: &'a [u8]) -> Result<ParsedBtf<'a>, ObjectError> {
        let malformed = |m: &str| ObjectError::MalformedBtf(m.to_owned());
        if data.len() < HEADER_LEN as usize {
            return Err(malformed("shorter than its header"));
        }
        if u16::from_le_bytes([data[0], data[1]]) != MAGIC {
            return Err(malformed("bad magic"));
        }
        let hdr_len = word(data, 4).unwrap() as usize;
        let field = |i: usize| word(data, 8 + 4 * i).unwrap() as usize;
        let (type_off, type_len, str_off, str_len) = (field(0), field(1), field(2), field(3));
        let types = data
            .get(hdr_len + type_off..)
            .and_then(|d| d.get(..type_len))
            .ok_or_else(|| malformed("type section out of bounds"))?;
        let strings = data
            .get(hdr_len + str_off..)
            .and_then(|d| d.get(..str_len))
            .ok_or_else(|| malformed("string section out of bounds"))?;
        let mut parsed = Vec::new();
        let mut at = 0;
        while at < types.len() {
            let head =
                |i: usize| word(types, at + 4 * i).ok_or_else(|| malformed("truncated type"));
            let (name_off, info, size_or_type) = (head(0)?, head(1)?, head(2)?);
            let kind = (info >> 24) & 0x1f;
            let vlen = (info & 0xffff) as usize;
            let extra = match kind {
                KIND_INT | KIND_VAR | KIND_DECL_TAG => 1,
                KIND_PTR | KIND_FWD | KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT
                | KIND_FUNC | KIND_FLOAT | KIND_TYPE_TAG => 0,
                KIND_ARRAY => 3,
                KIND_STRUCT | KIND_UNION | KIND_DATASEC | KIND_ENUM64 => 3 * vlen,
                KIND_ENUM | KIND_FUNC_PROTO => 2 * vlen,
                _ => return Err(malformed(&format!("unknown kind {kind}"))),
            };
            let words = (0..extra)
                .map(|i| word(types, at + 12 + 4 * i).ok_or_else(|| malformed("truncated type")))
                .collect::<Result<Vec<_>, _>>()?;
            parsed.push((kind, name_off, info, size_or_type, words));
            at += 12 + 4 * extra;
        }
        Ok(ParsedBtf {
            types: parsed,
            strings,
        })
    }

    /// The string at `off`, or an error if it is out of bounds or not terminated.
    pub(crate) fn string(&self, off: u32) -> Result<&'a str, ObjectError> {
        let rest = self.strings.get(off as usize..).ok_or_else(|| {
            ObjectError::MalformedBtf(format!("string offset {off} out of bounds"))
        })?;
        let end = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| ObjectError::MalformedBtf(format!("string at {off} not terminated")))?;
        std::str::from_utf8(&rest[..end])
            .map_err(|_| ObjectError::MalformedBtf(format!("string at {off} is not UTF-8")))
    }

    fn name(&self, off: u32) -> Result<String, ObjectError> {
        let s = self.string(off)?;
        Ok(if s.is_empty() {
            "(anon)".into()
        } else {
            s.into()
        })
    }
}

fn kind_name(kind: u32) -> &'static str {
    match kind {
        KIND_INT => "INT",
        KIND_PTR => "PTR",
        KIND_ARRAY => "ARRAY",
        KIND_STRUCT => "STRUCT",
        KIND_UNION => "UNION",
        KIND_ENUM => "ENUM",
        KIND_FWD => "FWD",
        KIND_TYPEDEF => "TYPEDEF",
        KIND_VOLATILE => "VOLATILE",
        KIND_CONST => "CONST",
        KIND_RESTRICT => "RESTRICT",
        KIND_FUNC => "FUNC",
        KIND_FUNC_PROTO => "FUNC_PROTO",
        KIND_VAR => "VAR",
        KIND_DATASEC => "DATASEC",
        KIND_FLOAT => "FLOAT",
        KIND_DECL_TAG => "DECL_TAG",
        KIND_TYPE_TAG => "TYPE_TAG",
        _ => "ENUM64",
    }
}

fn linkage(kind: u32, l: u32) -> &'static str {
    match (kind, l) {
        (_, 0) => "static",
        (KIND_VAR, 1) | (KIND_FUNC, 1) => "global",
        (_, 2) => "extern",
        _ => "unknown",
    }
}

/// Prints a `.BTF` blob one type per line (members indented by a tab) in the raw format of
/// `bpftool btf dump file X.o`, e.g. `[3] VAR 'counts' type_id=2, linkage=global`, so that
/// tests can assert on it without bpftool and compare with bpftool where it is installed.
/// Kinds the writer never emits are printed with their name and id only.
pub fn dump_btf(btf: &[u8]) -> Result<String, ObjectError> {
    use std::fmt::Write;
    let parsed = ParsedBtf::parse(btf)?;
    let mut out = String::new();
    for (i, (kind, name_off, info, st, words)) in parsed.types.iter().enumerate() {
        let (kind, st) = (*kind, *st);
        let id = i + 1;
        let name = parsed.name(*name_off)?;
        let vlen = (info & 0xffff) as usize;
        let k = kind_name(kind);
        let _ = match kind {
            KIND_INT => {
                let enc = match words[0] >> 24 {
                    0 => "(none)",
                    INT_SIGNED => "SIGNED",
                    INT_CHAR => "CHAR",
                    INT_BOOL => "BOOL",
                    _ => "UNKN",
                };
                writeln!(
                    out,
                    "[{id}] {k} '{name}' size={st} bits_offset={} nr_bits={} encoding={enc}",
                    (words[0] >> 16) & 0xff,
                    words[0] & 0xff
                )
            }
            KIND_PTR | KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT
            | KIND_TYPE_TAG => writeln!(out, "[{id}] {k} '{name}' type_id={st}"),
            KIND_ARRAY => writeln!(
                out,
                "[{id}] {k} '{name}' type_id={} index_type_id={} nr_elems={}",
                words[0], words[1], words[2]
            ),
            KIND_STRUCT | KIND_UNION => {
                let _ = writeln!(out, "[{id}] {k} '{name}' size={st} vlen={vlen}");
                for m in words.chunks(3) {
                    let _ = writeln!(
                        out,
                        "\t'{}' type_id={} bits_offset={}",
                        parsed.name(m[0])?,
                        m[1],
                        m[2]
                    );
                }
                Ok(())
            }
            KIND_FUNC_PROTO => {
                let _ = writeln!(out, "[{id}] {k} '{name}' ret_type_id={st} vlen={vlen}");
                for p in words.chunks(2) {
                    let _ = writeln!(out, "\t'{}' type_id={}", parsed.name(p[0])?, p[1]);
                }
                Ok(())
            }
            KIND_FUNC => writeln!(
                out,
                "[{id}] {k} '{name}' type_id={st} linkage={}",
                linkage(kind, vlen as u32)
            ),
            KIND_VAR => writeln!(
                out,
                "[{id}] {k} '{name}' type_id={st}, linkage={}",
                linkage(kind, words[0])
            ),
            KIND_DATASEC => {
                let _ = writeln!(out, "[{id}] {k} '{name}' size={st} vlen={vlen}");
                for v in words.chunks(3) {
                    let var = match parsed.types.get((v[0] as usize).wrapping_sub(1)) {
                        Some(t) => format!(" ({} '{}')", kind_name(t.0), parsed.name(t.1)?),
                        None => String::new(),
                    };
                    let _ = writeln!(out, "\ttype_id={} offset={} size={}{var}", v[0], v[1], v[2]);
                }
                Ok(())
            }
            _ => writeln!(out, "[{id}] {k} '{name}'"),
        };
    }
    Ok(out)
}
