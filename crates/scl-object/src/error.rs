//! [`ObjectError`]: why an [`ObjectSpec`](crate::ObjectSpec) cannot be written, or why a
//! BTF blob cannot be dumped.
//!
//! Every variant is a mistake of the caller (the code generator) or a corrupt input to the
//! dump helpers: the writer checks what libbpf and the kernel would otherwise reject, often
//! silently (a bad `.BTF` is dropped by libbpf with only a warning), so the mistake is
//! reported where it was made.

use std::fmt;

/// Why an object could not be written (or a BTF blob could not be dumped).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ObjectError {
    /// Two programs, maps or `.rodata` variables share a name (they share the ELF symbol
    /// table, so a program and a map may not have the same name either).
    DuplicateName {
        /// The name used twice.
        name: String,
    },
    /// A name that must be a C identifier is not one (the kernel rejects such BTF).
    BadName {
        /// What was being named (`program`, `map`, `struct member`, ...).
        what: &'static str,
        /// The offending name.
        name: String,
    },
    /// A program's ELF section name is empty, contains a NUL, starts with `.` or is one of
    /// the sections the writer owns (`license`, `version`, `maps`).
    BadSection {
        /// The program.
        program: String,
        /// Its section name.
        section: String,
    },
    /// A program has no instructions.
    EmptyProgram {
        /// The program.
        program: String,
    },
    /// The license string is empty or contains a NUL byte.
    BadLicense {
        /// The license as given.
        license: String,
    },
    /// A relocation names a map that is not in the spec.
    UnknownMap {
        /// The program holding the relocation.
        program: String,
        /// The unknown map name.
        map: String,
    },
    /// A relocation names a `.rodata` variable that is not in the spec.
    UnknownVar {
        /// The program holding the relocation.
        program: String,
        /// The unknown variable name.
        var: String,
    },
    /// A relocation does not sit on a whole `ld_imm64` instruction, or two relocations
    /// share an instruction.
    BadReloc {
        /// The program holding the relocation.
        program: String,
        /// The instruction index given.
        insn: u32,
        /// What is wrong.
        why: &'static str,
    },
    /// A program has no line-info record for its first instruction.
    FirstInsnUncovered {
        /// The program.
        program: String,
    },
    /// Line-info records are not strictly increasing by instruction index.
    LineNotIncreasing {
        /// The program.
        program: String,
        /// The instruction index of the record that does not increase.
        insn: u32,
    },
    /// A line-info record points past the end of the program or at the second slot of an
    /// `ld_imm64`, or its line number does not fit BTF's 22 bits.
    BadLineInfo {
        /// The program.
        program: String,
        /// The instruction index of the record.
        insn: u32,
        /// What is wrong.
        why: &'static str,
    },
    /// A [`CType`](crate::CType) cannot be laid out or described in BTF.
    BadType {
        /// The type's name (or `array` for an array).
        name: String,
        /// What is wrong.
        why: String,
    },
    /// Two different types were given the same name.
    ConflictingType {
        /// The name.
        name: String,
    },
    /// A map is malformed (a ring buffer with a key, a hash without one, a zero size, ...).
    BadMap {
        /// The map.
        map: String,
        /// What is wrong.
        why: String,
    },
    /// A `.rodata` variable is malformed (initial bytes of the wrong length, overlapping
    /// another variable, misaligned).
    BadRodata {
        /// The variable.
        var: String,
        /// What is wrong.
        why: String,
    },
    /// The `object` crate failed to write the ELF file.
    Elf(String),
    /// A blob given to a dump helper is not well-formed BTF or BTF.ext.
    MalformedBtf(String),
}

impl fmt::Display for ObjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObjectError::DuplicateName { name } => {
                write!(
                    f,
                    "the name `{name}` is used by more than one program, map or variable"
                )
            }
            ObjectError::BadName { what, name } => {
                write!(f, "{what} name `{name}` is not a C identifier")
            }
            ObjectError::BadSection { program, section } => write!(
                f,
                "program `{program}` cannot be placed in ELF section `{section}`"
            ),
            ObjectError::EmptyProgram { program } => {
                write!(f, "program `{program}` has no instructions")
            }
            ObjectError::BadLicense { license } => {
                write!(f, "license {license:?} is empty or contains a NUL byte")
            }
            ObjectError::UnknownMap { program, map } => {
                write!(f, "program `{program}` refers to unknown map `{map}`")
            }
            ObjectError::UnknownVar { program, var } => write!(
                f,
                "program `{program}` refers to unknown .rodata variable `{var}`"
            ),
            ObjectError::BadReloc { program, insn, why } => write!(
                f,
                "relocation at instruction {insn} of program `{program}`: {why}"
            ),
            ObjectError::FirstInsnUncovered { program } => write!(
                f,
                "program `{program}` has no line info for its first instruction"
            ),
            ObjectError::LineNotIncreasing { program, insn } => write!(
                f,
                "line info of program `{program}` is not strictly increasing at instruction {insn}"
            ),
            ObjectError::BadLineInfo { program, insn, why } => write!(
                f,
                "line info at instruction {insn} of program `{program}`: {why}"
            ),
            ObjectError::BadType { name, why } => write!(f, "type `{name}`: {why}"),
            ObjectError::ConflictingType { name } => {
                write!(f, "two different types are both named `{name}`")
            }
            ObjectError::BadMap { map, why } => write!(f, "map `{map}`: {why}"),
            ObjectError::BadRodata { var, why } => {
                write!(f, ".rodata variable `{var}`: {why}")
            }
            ObjectError::Elf(msg) => write!(f, "writing the ELF file failed: {msg}"),
            ObjectError::MalformedBtf(msg) => write!(f, "malformed BTF: {msg}"),
        }
    }
}

impl std::error::Error for ObjectError {}

/// Whether `name` is a C identifier as the kernel's BTF checker understands it: ASCII
/// letters, digits and `_`, not starting with a digit, shorter than 128 bytes.
pub fn is_c_identifier(name: &str) -> bool {
    let bytes = name.as_bytes();
    match bytes.first() {
        Some(c) if c.is_ascii_alphabetic() || *c == b'_' => {}
        _ => return false,
    }
    bytes.len() < 128
        && bytes
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}
