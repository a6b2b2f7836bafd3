//! `.BTF.ext`: func_info (one record per program, naming its BTF FUNC) and line_info (the
//! caller's [`LineInfo`] records), grouped by ELF section, plus [`dump_btf_ext`] to print
//! them back.
//!
//! Layout: a 24-byte header (`magic, version 1, flags 0, hdr_len = 24`, then func_info and
//! line_info offset/length relative to the end of the header). Each info block starts with
//! its record size (8 for func_info, 16 for line_info) followed, per ELF section, by
//! `{sec_name_off, num_info}` and the records. Instruction offsets in records are BYTE
//! offsets from the start of the section (libbpf divides them by 8); the caller gives
//! instruction indexes, converted here. The kernel insists that line records strictly
//! increase, that every function's first instruction has one, and that none points at the
//! second slot of an `ld_imm64`: all three are checked here.

use crate::btf::{ParsedBtf, Strings, MAGIC};
use crate::error::ObjectError;
use crate::ProgramSpec;

const HEADER_LEN: u32 = 24;
const FUNC_REC_SIZE: u32 = 8;
const LINE_REC_SIZE: u32 = 16;
/// BTF packs the line into 22 bits and the column into 10.
const MAX_LINE: u32 = (1 << 22) - 1;
const MAX_COL: u32 = (1 << 10) - 1;

/// The func_info and line_info records of one ELF section.
pub(crate) struct SectionExt {
    /// Offset of the section's name in the BTF strings.
    pub(crate) name_off: u32,
    /// `{insn_off (bytes), func_type_id}`.
    pub(crate) funcs: Vec<[u32; 2]>,
    /// `{insn_off (bytes), file_name_off, line_off, line << 10 | col}`.
    pub(crate) lines: Vec<[u32; 4]>,
}

/// The line records of `prog`, which starts `base` bytes into its section. `second[i]` is
/// true when instruction `i` is the second slot of an `ld_imm64`. Columns beyond 1023 are
/// clamped (BTF has 10 bits for them).
pub(crate) fn line_records(
    prog: &ProgramSpec,
    base: u32,
    second: &[bool],
    strings: &mut Strings,
) -> Result<Vec<[u32; 4]>, ObjectError> {
    if prog.lines.first().map(|l| l.insn) != Some(0) {
        return Err(ObjectError::FirstInsnUncovered {
            program: prog.name.clone(),
        });
    }
    let bad = |insn, why| ObjectError::BadLineInfo {
        program: prog.name.clone(),
        insn,
        why,
    };
    let mut out = Vec::with_capacity(prog.lines.len());
    let mut prev: Option<u32> = None;
    for l in &prog.lines {
        if prev.is_some_and(|p| l.insn <= p) {
            return Err(ObjectError::LineNotIncreasing {
                program: prog.name.clone(),
                insn: l.insn,
            });
        }
        prev = Some(l.insn);
        match second.get(l.insn as usize) {
            None => return Err(bad(l.insn, "past the end of the program")),
            Some(true) => return Err(bad(l.insn, "on the second slot of an ld_imm64")),
            Some(false) => {}
        }
        if l.line > MAX_LINE {
            return Err(bad(l.insn, "line number does not fit in 22 bits"));
        }
        if l.file.contains('\0') || l.source.contains('\0') {
            return Err(bad(l.insn, "file name or source text contains a NUL byte"));
        }
        out.push([
            base + l.insn * 8,
            strings.add(&l.file),
            strings.add(&l.source),
            l.line << 10 | l.column.min(MAX_COL),
        ]);
    }
    Ok(out)
}

fn block<const N: usize>(
    rec_size: u32,
    sections: &[SectionExt],
    records: impl Fn(&SectionExt) -> &[[u32; N]],
) -> Vec<u8> {
    let mut out = rec_size.to_le_bytes().to_vec();
    for sec in sections {
        let recs = records(sec);
        if recs.is_empty() {
            continue;
        }
        out.extend(sec.name_off.to_le_bytes());
        out.extend((recs.len() as u32).to_le_bytes());
        for rec in recs {
            for w in rec {
                out.extend(w.to_le_bytes());
            }
        }
    }
    out
}

/// The finished `.BTF.ext` section.
pub(crate) fn write(sections: &[SectionExt]) -> Vec<u8> {
    let funcs = block(FUNC_REC_SIZE, sections, |s| &s.funcs);
    let lines = block(LINE_REC_SIZE, sections, |s| &s.lines);
    let mut out = Vec::new();
    out.extend(MAGIC.to_le_bytes());
    out.push(1); // version
    out.push(0); // flags
    for w in [
        HEADER_LEN,
        0,
        funcs.len() as u32,
        funcs.len() as u32,
        lines.len() as u32,
    ] {
        out.extend(w.to_le_bytes());
    }
    out.extend(funcs);
    out.extend(lines);
    out
}

/// Prints a `.BTF.ext` blob, resolving its strings in the matching `.BTF` blob:
///
/// ```text
/// func_info section 'syscall':
///     insn_off=0 type_id=12
/// line_info section 'syscall':
///     insn_off=0 file='p.scl' line=3 col=5 source='let x = 1;'
/// ```
///
/// Records are indented by one tab (shown as spaces above). Instruction offsets are
/// printed in bytes, as stored.
pub fn dump_btf_ext(btf: &[u8], ext: &[u8]) -> Result<String, ObjectError> {
    use std::fmt::Write;
    let malformed = |m: &str| ObjectError::MalformedBtf(format!(".BTF.ext: {m}"));
    let strings = ParsedBtf::parse(btf)?;
    let word = |at: usize| {
        ext.get(at..at + 4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
            .ok_or_else(|| malformed("truncated"))
    };
    if ext.len() < 8 || u16::from_le_bytes([ext[0], ext[1]]) != MAGIC {
        return Err(malformed("bad magic"));
    }
    let hdr_len = word(4)? as usize;
    let mut out = String::new();
    for (what, field) in [("func_info", 8), ("line_info", 16)] {
        let (off, len) = (word(field)? as usize, word(field + 4)? as usize);
        if len == 0 {
            continue;
        }
        let start = hdr_len + off;
        let end = start + len;
        if end > ext.len() {
            return Err(malformed("info block out of bounds"));
        }
        let rec_size = word(start)? as usize;
        if rec_size < 8 || rec_size & 3 != 0 {
            return Err(malformed("bad record size"));
        }
        let mut at = start + 4;
        while at < end {
            let sec = strings.string(word(at)?)?;
            let n = word(at + 4)? as usize;
            at += 8;
            let _ = writeln!(out, "{what} section '{sec}':");
            for _ in 0..n {
                if at + rec_size > end {
                    return Err(malformed("records run past their block"));
                }
                if what == "func_info" {
                    let _ = writeln!(out, "\tinsn_off={} type_id={}", word(at)?, word(at + 4)?);
                } else {
                    let line_col = word(at + 12)?;
                    let _ = writeln!(
                        out,
                        "\tinsn_off={} file='{}' line={} col={} source='{}'",
                        word(at)?,
                        strings.string(word(at + 4)?)?,
                        line_col >> 10,
                        line_col & MAX_COL,
                        strings.string(word(at + 8)?)?
                    );
                }
                at += rec_size;
            }
        }
    }
    Ok(out)
}
