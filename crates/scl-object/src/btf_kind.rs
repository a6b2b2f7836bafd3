//! The kinds of BTF types (`BTF_KIND_*` of `<linux/btf.h>`): for the writer of `.BTF` here
//! and for the reader of the kernel's copy in `scl-loader`.

/// An integer (and `bool`).
pub const KIND_INT: u32 = 1;
/// A pointer.
pub const KIND_PTR: u32 = 2;
/// An array.
pub const KIND_ARRAY: u32 = 3;
/// A struct.
pub const KIND_STRUCT: u32 = 4;
/// A union.
pub const KIND_UNION: u32 = 5;
/// An enum of 32-bit values.
pub const KIND_ENUM: u32 = 6;
/// A forward declaration.
pub const KIND_FWD: u32 = 7;
/// A typedef.
pub const KIND_TYPEDEF: u32 = 8;
/// `volatile`.
pub const KIND_VOLATILE: u32 = 9;
/// `const`.
pub const KIND_CONST: u32 = 10;
/// `restrict`.
pub const KIND_RESTRICT: u32 = 11;
/// A function.
pub const KIND_FUNC: u32 = 12;
/// A function prototype.
pub const KIND_FUNC_PROTO: u32 = 13;
/// A global variable.
pub const KIND_VAR: u32 = 14;
/// A data section (`.rodata`, `.maps`).
pub const KIND_DATASEC: u32 = 15;
/// A floating-point type.
pub const KIND_FLOAT: u32 = 16;
/// A declaration tag.
pub const KIND_DECL_TAG: u32 = 17;
/// A type tag.
pub const KIND_TYPE_TAG: u32 = 18;
/// An enum of 64-bit values.
pub const KIND_ENUM64: u32 = 19;
