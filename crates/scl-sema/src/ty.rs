//! Types of checked SCL values, and their memory layout (C rules, as BPF and BTF see them).

use crate::hir::StructId;
use std::fmt;

/// An integer type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IntTy {
    /// True for `i8`..`i64`.
    pub signed: bool,
    /// 8, 16, 32 or 64.
    pub bits: u8,
}

impl IntTy {
    /// `u32`.
    pub const U32: IntTy = IntTy { signed: false, bits: 32 };
    /// `u64`.
    pub const U64: IntTy = IntTy { signed: false, bits: 64 };

    /// The type called `name` (`u8`..`u64`, `i8`..`i64`).
    pub fn from_name(name: &str) -> Option<IntTy> {
        let (signed, bits) = match name {
            "u8" => (false, 8),
            "u16" => (false, 16),
            "u32" => (false, 32),
            "u64" => (false, 64),
            "i8" => (true, 8),
            "i16" => (true, 16),
            "i32" => (true, 32),
            "i64" => (true, 64),
            _ => return None,
        };
        Some(IntTy { signed, bits })
    }

    /// The smallest value.
    pub fn min(self) -> i128 {
        if self.signed {
            -(1i128 << (self.bits - 1))
        } else {
            0
        }
    }

    /// The largest value.
    pub fn max(self) -> i128 {
        if self.signed {
            (1i128 << (self.bits - 1)) - 1
        } else {
            (1i128 << self.bits) - 1
        }
    }

    /// True if `v` fits.
    pub fn contains(self, v: i128) -> bool {
        self.min() <= v && v <= self.max()
    }
}

impl fmt::Display for IntTy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", if self.signed { 'i' } else { 'u' }, self.bits)
    }
}

/// The type of a checked value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Ty {
    /// An integer.
    Int(IntTy),
    /// `bool`.
    Bool,
    /// A user struct.
    Struct(StructId),
    /// `[T; N]`.
    Array(Box<Ty>, u32),
    /// `kstack`: a kernel stack recorded by `kstack()`, an opaque id in the object's
    /// stack-trace map (8 bytes, negative when the stack could not be recorded). It can be
    /// stored, compared with `==`/`!=` and key maps; it is not an integer.
    KStack,
    /// The `lock` view (hook parameters only).
    Lock,
    /// The `waiter` view (hook parameters only).
    Waiter,
    /// No value (calls of functions without a result).
    Void,
    /// The type of something already reported as wrong; compatible with everything, so
    /// one mistake gives one error.
    Error,
}

impl Ty {
    /// `u32`.
    pub const U32: Ty = Ty::Int(IntTy::U32);
    /// `u64`.
    pub const U64: Ty = Ty::Int(IntTy::U64);

    /// The integer type, if this is one.
    pub fn as_int(&self) -> Option<IntTy> {
        match self {
            Ty::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// True for integers (and for `Error`, which is compatible with everything).
    pub fn is_int_like(&self) -> bool {
        matches!(self, Ty::Int(_) | Ty::Error)
    }

    /// True for a scalar that fits a register: integers, bool and `kstack`.
    pub fn is_scalar(&self) -> bool {
        matches!(self, Ty::Int(_) | Ty::Bool | Ty::KStack)
    }
}

/// Size and alignment of a type, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Size in bytes.
    pub size: u32,
    /// Alignment in bytes.
    pub align: u32,
}

/// Rounds `x` up to a multiple of `align` (a power of two).
pub fn align_to(x: u32, align: u32) -> u32 {
    // Saturates: a layout over 4 GiB is refused wherever it lives (E0343, E0342).
    x.div_ceil(align.max(1)).saturating_mul(align.max(1))
}
