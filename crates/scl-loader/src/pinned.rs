//! Typed access to the maps of a pinned policy, for applications and for `sclc map`.
//!
//! `sclc load FILE --pin NAME` pins a policy under `/sys/fs/bpf/scl/NAME/` (the layout is in
//! [`crate::pin`]). This module opens such a policy and reads and writes its maps with keys
//! and values *typed from the policy's BTF*: the kernel keeps each map's key and value type
//! ids ([`bpf_map_info`](libbpf_sys::bpf_map_info)`.btf_key_type_id`, `btf_value_type_id`)
//! and the object's BTF, so a [`Value`] is checked against the declared type (size,
//! signedness, `bool`, struct members, array lengths) before a byte reaches the kernel. A
//! value that does not fit is an [`Error::Value`], never a silent truncation.
//!
//! # Example: an application marks its latency-critical threads
//!
//! `examples/app_priority.scl` declares `map latency_critical: hash<u32, u8>[1024]` and
//! moves waiters whose thread id is in it ahead of the others. After
//! `sclc load examples/app_priority.scl --pin prio`, an application (running as root, or
//! with access to the pinned map) marks its RPC dispatcher thread:
//!
//! ```no_run
//! use scl_loader::pinned::{Policy, Value};
//!
//! fn mark_latency_critical(tid: u32) -> Result<(), scl_loader::pinned::Error> {
//!     let policy = Policy::open("prio")?;
//!     let critical = policy.map("latency_critical")?;
//!     critical.set(&Value::from(tid), &Value::Int(1))?;
//!     Ok(())
//! }
//!
//! fn unmark(tid: u32) -> Result<(), scl_loader::pinned::Error> {
//!     Policy::open("prio")?.map("latency_critical")?.delete(&Value::from(tid))?;
//!     Ok(())
//! }
//!
//! // The calling thread's id, as the kernel's `tid()` sees it.
//! let tid = std::fs::read_link("/proc/thread-self")
//!     .ok()
//!     .and_then(|p| p.file_name()?.to_str()?.parse::<u32>().ok())
//!     .expect("a thread id");
//! mark_latency_critical(tid).expect("the policy is pinned as `prio`");
//! // `Value::Int(300)` would be refused here: the map's value is a `u8`.
//! assert!(Policy::open("prio").unwrap().map("latency_critical").unwrap()
//!     .set(&Value::from(tid), &Value::Int(300)).is_err());
//! unmark(tid).unwrap();
//! ```
//!
//! # Text syntax
//!
//! [`Map::parse_key`] and [`Map::parse_value`] read the syntax `sclc map` uses, guided by
//! the type: integers in decimal or `0x` hex (a leading `-` for signed types, `_` allowed),
//! `true`/`false` for `bool` (or 0/1), enumerator names for enums, structs as
//! `field=value,field=value` (braces optional at the top, required when nested: `a={x=1}`;
//! missing fields are zero), arrays as `[a,b,c]` (missing trailing elements are zero).
//! [`Value`]'s `Display` prints the same syntax back, structs as `{field: v, ...}`.

use crate::btf::Btf;
use crate::pin::{self, SCL_ROOT};
use libbpf_rs::{MapCore, MapFlags, MapHandle};
use std::fmt;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

pub use crate::pin::PinError as Error;

/// A key or value type, from BTF.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Type {
    /// An integer of `size` bytes with `bits` significant bits; `bool` is an integer with
    /// `boolean` set.
    Int {
        /// Bytes.
        size: u32,
        /// Significant bits (BTF `nr_bits`).
        bits: u32,
        /// Two's complement.
        signed: bool,
        /// `bool`: only 0 and 1.
        boolean: bool,
    },
    /// An enum: an integer of `size` bytes with named values.
    Enum {
        /// Its name.
        name: String,
        /// Bytes.
        size: u32,
        /// Signed values.
        signed: bool,
        /// The enumerators.
        variants: Vec<(String, i128)>,
    },
    /// A struct (or a `DATASEC`, read as a struct of its variables).
    Struct {
        /// Its name.
        name: String,
        /// Bytes.
        size: u32,
        /// Members, in order.
        fields: Vec<Field>,
    },
    /// A fixed-length array.
    Array {
        /// Element type.
        elem: Box<Type>,
        /// Number of elements.
        len: u32,
    },
    /// Bytes this module does not interpret (pointers, unions, floats, or no BTF at all).
    Opaque {
        /// Bytes.
        size: u32,
        /// What it is.
        what: String,
    },
}

/// A struct member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    /// Its name.
    pub name: String,
    /// Its type.
    pub ty: Type,
    /// Offset from the start of the struct, in bits.
    pub bit_offset: u32,
    /// Bit-field width (0: the whole of `ty`).
    pub bit_size: u32,
}

impl Type {
    /// Size in bytes.
    pub fn size(&self) -> u32 {
        match self {
            Type::Int { size, .. } | Type::Enum { size, .. } | Type::Struct { size, .. } | Type::Opaque { size, .. } => *size,
            Type::Array { elem, len } => elem.size() * len,
        }
    }

    /// Parses `text` as a value of this type (see the module's text syntax). The result is
    /// checked against the type: it fits.
    pub fn parse(&self, text: &str) -> Result<Value, String> {
        let mut p = Parser { s: text.as_bytes(), at: 0 };
        let v = p.value(self, true)?;
        p.skip_ws();
        if p.at < p.s.len() {
            return Err(format!("unexpected `{}` after the value", &text[p.at..]));
        }
        self.encode(&v)?;
        Ok(v)
    }

    /// Parses per-CPU values of this type, `{cpu0: V, cpu1: V, ...}`, each checked.
    pub fn parse_per_cpu(&self, text: &str) -> Result<Value, String> {
        let mut p = Parser { s: text.as_bytes(), at: 0 };
        let v = p.per_cpu(self)?;
        p.skip_ws();
        if p.at < p.s.len() {
            return Err(format!("unexpected `{}` after the value", &text[p.at..]));
        }
        if let Value::PerCpu(vals) = &v {
            for x in vals {
                self.encode(x)?;
            }
        }
        Ok(v)
    }

    /// The bytes of `v`, checked against this type.
    pub fn encode(&self, v: &Value) -> Result<Vec<u8>, String> {
        let mut out = vec![0u8; self.size() as usize];
        self.write(v, &mut out, 0, 0)?;
        Ok(out)
    }

    /// The value stored in `bytes` (which must be at least [`Type::size`] long).
    pub fn decode(&self, bytes: &[u8]) -> Value {
        self.read(bytes, 0, 0)
    }

    fn range(&self) -> Option<(i128, i128)> {
        let (bits, signed) = match self {
            Type::Int { bits, signed, boolean: false, .. } => (*bits, *signed),
            Type::Int { boolean: true, .. } => return Some((0, 1)),
            Type::Enum { size, signed, .. } => (size * 8, *signed),
            _ => return None,
        };
        let bits = bits.clamp(1, 127);
        Some(if signed { (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1) } else { (0, (1i128 << bits) - 1) })
    }

    fn write(&self, v: &Value, out: &mut [u8], bit_off: u32, bit_size: u32) -> Result<(), String> {
        match (self, v) {
            (Type::Int { .. } | Type::Enum { .. }, Value::Int(_) | Value::Bool(_)) => {
                let n = match v {
                    Value::Int(n) => *n,
                    Value::Bool(b) => {
                        if !matches!(self, Type::Int { boolean: true, .. }) {
                            return Err(format!("`{b}` is not a number for a `{self}`"));
                        }
                        i128::from(*b)
                    }
                    _ => unreachable!(),
                };
                let (lo, hi) = self.range().unwrap_or((0, 0));
                let width = if bit_size > 0 { bit_size } else { self.size() * 8 };
                let (lo, hi) = if bit_size > 0 && width < 127 {
                    if lo < 0 {
                        (lo.max(-(1i128 << (width - 1))), hi.min((1i128 << (width - 1)) - 1))
                    } else {
                        (lo, hi.min((1i128 << width) - 1))
                    }
                } else {
                    (lo, hi)
                };
                if n < lo || n > hi {
                    return Err(format!("{n} does not fit a `{self}` ({lo}..={hi})"));
                }
                put_bits(out, bit_off, width, n as u128);
                Ok(())
            }
            (Type::Struct { fields, name, .. }, Value::Struct(given)) => {
                for (fname, _) in given {
                    if !fields.iter().any(|f| &f.name == fname) {
                        let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
                        return Err(format!("`struct {name}` has no field `{fname}` (its fields: {})", names.join(", ")));
                    }
                }
                for (i, (fname, _)) in given.iter().enumerate() {
                    if given[..i].iter().any(|(n, _)| n == fname) {
                        return Err(format!("field `{fname}` is given twice"));
                    }
                }
                for f in fields {
                    if let Some((_, fv)) = given.iter().find(|(n, _)| n == &f.name) {
                        f.ty.write(fv, out, bit_off + f.bit_offset, f.bit_size).map_err(|e| format!("field `{}`: {e}", f.name))?;
                    }
                }
                Ok(())
            }
            (Type::Array { elem, len }, Value::Array(items)) => {
                if items.len() > *len as usize {
                    return Err(format!("{} elements do not fit a `{self}`", items.len()));
                }
                for (i, item) in items.iter().enumerate() {
                    elem.write(item, out, bit_off + i as u32 * elem.size() * 8, 0).map_err(|e| format!("element {i}: {e}"))?;
                }
                Ok(())
            }
            (Type::Opaque { size, .. }, Value::Bytes(b)) if b.len() == *size as usize => {
                let start = (bit_off / 8) as usize;
                out[start..start + b.len()].copy_from_slice(b);
                Ok(())
            }
            (ty, v) => Err(format!("`{v}` is not a `{ty}`{}", ty.hint())),
        }
    }

    fn hint(&self) -> String {
        match self {
            Type::Struct { fields, .. } => {
                let names: Vec<String> = fields.iter().map(|f| format!("{}=...", f.name)).collect();
                format!(" (write {})", names.join(","))
            }
            Type::Array { len, .. } => format!(" (write [a,b,...] with at most {len} elements)"),
            Type::Int { boolean: true, .. } => " (write true or false)".into(),
            Type::Int { .. } | Type::Enum { .. } => " (write a number, decimal or 0x hex)".into(),
            Type::Opaque { size, .. } => format!(" (write 0x and {} hex digits)", 2 * size),
        }
    }

    fn read(&self, bytes: &[u8], bit_off: u32, bit_size: u32) -> Value {
        match self {
            Type::Int { boolean: true, .. } => Value::Bool(get_bits(bytes, bit_off, if bit_size > 0 { bit_size } else { 8 }) != 0),
            Type::Int { signed, .. } | Type::Enum { signed, .. } => {
                let width = if bit_size > 0 { bit_size } else { self.size() * 8 };
                let raw = get_bits(bytes, bit_off, width);
                if *signed && width > 0 && width < 128 && raw >> (width - 1) & 1 == 1 {
                    Value::Int(raw as i128 - (1i128 << width))
                } else {
                    Value::Int(raw as i128)
                }
            }
            Type::Struct { fields, .. } => {
                Value::Struct(fields.iter().map(|f| (f.name.clone(), f.ty.read(bytes, bit_off + f.bit_offset, f.bit_size))).collect())
            }
            Type::Array { elem, len } => Value::Array((0..*len).map(|i| elem.read(bytes, bit_off + i * elem.size() * 8, 0)).collect()),
            Type::Opaque { size, .. } => {
                let start = (bit_off / 8) as usize;
                Value::Bytes(bytes.get(start..start + *size as usize).map(<[u8]>::to_vec).unwrap_or_default())
            }
        }
    }
}

/// Writes the low `width` bits of `v` at bit `off` (little-endian bit order, as BTF
/// bit-fields on the little-endian machines BPF runs on).
fn put_bits(out: &mut [u8], off: u32, width: u32, v: u128) {
    for i in 0..width.min(128) {
        let (byte, bit) = (((off + i) / 8) as usize, (off + i) % 8);
        if let Some(b) = out.get_mut(byte) {
            if (v >> i) & 1 == 1 {
                *b |= 1 << bit;
            } else {
                *b &= !(1 << bit);
            }
        }
    }
}

fn get_bits(bytes: &[u8], off: u32, width: u32) -> u128 {
    let mut v = 0u128;
    for i in 0..width.min(128) {
        let (byte, bit) = (((off + i) / 8) as usize, (off + i) % 8);
        if bytes.get(byte).is_some_and(|b| (b >> bit) & 1 == 1) {
            v |= 1 << i;
        }
    }
    v
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Int { boolean: true, .. } => write!(f, "bool"),
            Type::Int { size, signed, .. } => write!(f, "{}{}", if *signed { "i" } else { "u" }, size * 8),
            Type::Enum { name, .. } => write!(f, "enum {name}"),
            Type::Struct { name, .. } => write!(f, "struct {name}"),
            Type::Array { elem, len } => write!(f, "[{elem}; {len}]"),
            Type::Opaque { what, .. } => write!(f, "{what}"),
        }
    }
}

/// A key or value of a pinned map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// An integer (also an enum's value).
    Int(i128),
    /// A `bool`.
    Bool(bool),
    /// A struct's members by name (when writing, members not given are zero).
    Struct(Vec<(String, Value)>),
    /// An array's elements (when writing, missing trailing elements are zero).
    Array(Vec<Value>),
    /// Bytes of a type this module does not interpret.
    Bytes(Vec<u8>),
    /// A per-CPU map's value: one per possible CPU (reads only; a write of a plain value
    /// sets every CPU's copy).
    PerCpu(Vec<Value>),
}

macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(n: $t) -> Value {
                Value::Int(i128::from(n))
            }
        }
    )*};
}
from_int!(u8, u16, u32, u64, i8, i16, i32, i64);

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl Value {
    /// The integer, if this is one (a `bool` is 0 or 1).
    pub fn as_int(&self) -> Option<i128> {
        match self {
            Value::Int(n) => Some(*n),
            Value::Bool(b) => Some(i128::from(*b)),
            _ => None,
        }
    }

    /// A member of a struct value.
    pub fn field(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Struct(fields) => fields.iter().find(|(n, _)| n == name).map(|(_, v)| v),
            _ => None,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(n) => write!(f, "{n}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Struct(fields) => {
                write!(f, "{{")?;
                for (i, (n, v)) in fields.iter().enumerate() {
                    write!(f, "{}{n}: {v}", if i > 0 { ", " } else { "" })?;
                }
                write!(f, "}}")
            }
            Value::Array(items) => {
                write!(f, "[")?;
                for (i, v) in items.iter().enumerate() {
                    write!(f, "{}{v}", if i > 0 { ", " } else { "" })?;
                }
                write!(f, "]")
            }
            Value::Bytes(b) => {
                write!(f, "0x")?;
                b.iter().try_for_each(|x| write!(f, "{x:02x}"))
            }
            Value::PerCpu(vals) => {
                write!(f, "{{")?;
                for (i, v) in vals.iter().enumerate() {
                    write!(f, "{}cpu{i}: {v}", if i > 0 { ", " } else { "" })?;
                }
                write!(f, "}}")
            }
        }
    }
}

/// The text syntax's reader, guided by the type.
struct Parser<'a> {
    s: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self.s.get(self.at).is_some_and(u8::is_ascii_whitespace) {
            self.at += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.skip_ws();
        if self.s.get(self.at) == Some(&c) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    /// A run of characters up to `,`, `]`, `}` or the end (and `=` or `:` for a field name).
    fn atom(&mut self, name: bool) -> String {
        self.skip_ws();
        let start = self.at;
        let stop = |c: &u8| matches!(c, b',' | b']' | b'}' | b'[' | b'{') || (name && matches!(*c, b'=' | b':'));
        while self.s.get(self.at).is_some_and(|c| !stop(c)) {
            self.at += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.at]).trim().to_string()
    }

    fn value(&mut self, ty: &Type, top: bool) -> Result<Value, String> {
        match ty {
            Type::Int { boolean, .. } => {
                let a = self.atom(false);
                if a.is_empty() {
                    return Err(format!("expected a `{ty}` value{}", ty.hint()));
                }
                if *boolean {
                    match a.as_str() {
                        "true" => return Ok(Value::Bool(true)),
                        "false" => return Ok(Value::Bool(false)),
                        _ => {}
                    }
                }
                let n = parse_int(&a).ok_or_else(|| format!("`{a}` is not a `{ty}`{}", ty.hint()))?;
                if *boolean {
                    return match n {
                        0 => Ok(Value::Bool(false)),
                        1 => Ok(Value::Bool(true)),
                        _ => Err(format!("{n} is not a `bool` (write true or false, or 0 or 1)")),
                    };
                }
                Ok(Value::Int(n))
            }
            Type::Enum { variants, .. } => {
                let a = self.atom(false);
                if let Some((_, v)) = variants.iter().find(|(n, _)| *n == a) {
                    return Ok(Value::Int(*v));
                }
                parse_int(&a).map(Value::Int).ok_or_else(|| {
                    let names: Vec<&str> = variants.iter().map(|(n, _)| n.as_str()).collect();
                    format!("`{a}` is not a `{ty}` (write a number or one of {})", names.join(", "))
                })
            }
            Type::Struct { fields, .. } => {
                let braced = self.eat(b'{');
                if !braced && !top {
                    return Err(format!("expected `{{` for a `{ty}` inside a value{}", ty.hint()));
                }
                let mut given = Vec::new();
                loop {
                    self.skip_ws();
                    if self.at >= self.s.len() || (braced && self.s[self.at] == b'}') {
                        break;
                    }
                    let name = self.atom(true);
                    // `field=value` as people type it, `field: value` as `dump` prints it.
                    if !self.eat(b'=') && !self.eat(b':') {
                        return Err(format!("expected `field=value` for a `{ty}`, found `{name}`{}", ty.hint()));
                    }
                    let Some(field) = fields.iter().find(|f| f.name == name) else {
                        let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
                        return Err(format!("`{ty}` has no field `{name}` (its fields: {})", names.join(", ")));
                    };
                    let v = self.value(&field.ty, false).map_err(|e| format!("field `{name}`: {e}"))?;
                    given.push((name, v));
                    if !self.eat(b',') {
                        break;
                    }
                }
                if braced && !self.eat(b'}') {
                    return Err(format!("expected `}}` to close the `{ty}`"));
                }
                Ok(Value::Struct(given))
            }
            Type::Array { elem, .. } => {
                if !self.eat(b'[') {
                    return Err(format!("expected `[` for a `{ty}`{}", ty.hint()));
                }
                let mut items = Vec::new();
                if !self.eat(b']') {
                    loop {
                        items.push(self.value(elem, false).map_err(|e| format!("element {}: {e}", items.len()))?);
                        if self.eat(b']') {
                            break;
                        }
                        if !self.eat(b',') {
                            return Err(format!("expected `,` or `]` in a `{ty}`"));
                        }
                    }
                }
                Ok(Value::Array(items))
            }
            Type::Opaque { size, .. } => {
                // As `dump` prints it: `0x` and two hex digits per byte.
                let a = self.atom(false);
                let hex = a.strip_prefix("0x").filter(|h| h.len() == 2 * *size as usize && h.bytes().all(|c| c.is_ascii_hexdigit()));
                let Some(hex) = hex else {
                    return Err(format!("expected `0x` and {} hex digits for a `{ty}`, found `{a}`", 2 * size));
                };
                Ok(Value::Bytes((0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or(0)).collect()))
            }
        }
    }

    /// A per-CPU value as `dump` prints it: `{cpu0: V, cpu1: V, ...}`, every CPU in order.
    fn per_cpu(&mut self, ty: &Type) -> Result<Value, String> {
        if !self.eat(b'{') {
            return Err("expected `{` for per-CPU values".into());
        }
        let mut vals = Vec::new();
        while !self.eat(b'}') {
            let name = self.atom(true);
            if name != format!("cpu{}", vals.len()) {
                return Err(format!("expected `cpu{}:`, found `{name}`", vals.len()));
            }
            if !self.eat(b':') && !self.eat(b'=') {
                return Err(format!("expected `:` after `{name}`"));
            }
            vals.push(self.value(ty, false).map_err(|e| format!("{name}: {e}"))?);
            if !self.eat(b',') {
                if !self.eat(b'}') {
                    return Err("expected `,` or `}` between per-CPU values".into());
                }
                break;
            }
        }
        Ok(Value::PerCpu(vals))
    }
}

/// Decimal or `0x` hex, with `_` separators and an optional leading `-`.
fn parse_int(s: &str) -> Option<i128> {
    let s: String = s.chars().filter(|c| *c != '_').collect();
    let (neg, digits) = s.strip_prefix('-').map_or((false, s.as_str()), |d| (true, d));
    let mag = if let Some(h) = digits.strip_prefix("0x").or_else(|| digits.strip_prefix("0X")) {
        u128::from_str_radix(h, 16).ok()?
    } else {
        if !digits.bytes().all(|b| b.is_ascii_digit()) || digits.is_empty() {
            return None;
        }
        digits.parse::<u128>().ok()?
    };
    let mag = i128::try_from(mag).ok()?;
    Some(if neg { -mag } else { mag })
}

/// A pinned policy: the directory `/sys/fs/bpf/scl/NAME`.
#[derive(Debug)]
pub struct Policy {
    name: String,
    dir: PathBuf,
}

impl Policy {
    /// Opens the policy pinned as `name` under `/sys/fs/bpf/scl`.
    pub fn open(name: &str) -> Result<Policy, Error> {
        Policy::open_in(Path::new(SCL_ROOT), name)
    }

    /// Opens the policy pinned as `name` under `root`.
    pub fn open_in(root: &Path, name: &str) -> Result<Policy, Error> {
        pin::check_name(name)?;
        let dir = root.join(name);
        if !dir.is_dir() {
            return Err(Error::NotFound { what: "pinned policy".into(), within: None, name: name.into(), available: pin::names(root) });
        }
        Ok(Policy { name: name.into(), dir })
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The names of its maps: the policy's own, then the hidden ones (`hidden_...`).
    pub fn maps(&self) -> Vec<String> {
        let files = pin::files(&self.dir);
        let own = files.iter().filter_map(|f| f.strip_prefix(pin::MAP_PREFIX)).map(str::to_string);
        let hidden = files.iter().filter(|f| f.starts_with(pin::HIDDEN_PREFIX)).cloned();
        own.chain(hidden).collect()
    }

    /// Opens map `name`: a policy map (pinned as `map_NAME`), or a hidden one by its pinned
    /// name (`hidden_scl_zero`), which can be read but not written.
    pub fn map(&self, name: &str) -> Result<Map, Error> {
        let (path, hidden) = if name.starts_with(pin::HIDDEN_PREFIX) {
            (self.dir.join(name), true)
        } else {
            (self.dir.join(format!("{}{name}", pin::MAP_PREFIX)), false)
        };
        if name.contains('/') || !path.exists() {
            return Err(Error::NotFound { what: "map".into(), within: Some(format!("policy `{}`", self.name)), name: name.into(), available: self.maps() });
        }
        Map::open(&path, name, hidden)
    }
}

/// A pinned map with its key and value types.
#[derive(Debug)]
pub struct Map {
    name: String,
    hidden: bool,
    handle: MapHandle,
    key: Type,
    value: Type,
    percpu: bool,
}

fn kernel(what: String) -> impl FnOnce(libbpf_rs::Error) -> Error {
    move |e| Error::Kernel { what, error: e.to_string() }
}

impl Map {
    fn open(path: &Path, name: &str, hidden: bool) -> Result<Map, Error> {
        let handle = MapHandle::from_pinned_path(path).map_err(kernel(format!("opening `{}`", path.display())))?;
        let info = libbpf_rs::MapInfo::new(handle.as_fd()).map_err(kernel(format!("reading info of map `{name}`")))?.info;
        let btf = if info.btf_id != 0 { Some(load_btf(info.btf_id)?) } else { None };
        let resolve = |id: u32, size: u32| -> Result<Type, Error> {
            match (&btf, id) {
                (Some(btf), id) if id != 0 => btf.resolve(id).map_err(|e| Error::Kernel { what: format!("reading the BTF of map `{name}`"), error: e }),
                _ if size <= 8 => Ok(Type::Int { size, bits: size * 8, signed: false, boolean: false }),
                _ => Ok(Type::Opaque { size, what: format!("{size} bytes (no BTF)") }),
            }
        };
        let key = resolve(info.btf_key_type_id, info.key_size)?;
        let value = resolve(info.btf_value_type_id, info.value_size)?;
        for (what, ty, size) in [("key", &key, info.key_size), ("value", &value, info.value_size)] {
            if ty.size() != size {
                return Err(Error::Kernel {
                    what: format!("typing map `{name}`"),
                    error: format!("its BTF {what} type `{ty}` is {} bytes, the map's {what}s {size}", ty.size()),
                });
            }
        }
        let percpu = handle.map_type().is_percpu();
        Ok(Map { name: name.into(), hidden, handle, key, value, percpu })
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key type.
    pub fn key_type(&self) -> &Type {
        &self.key
    }

    /// The value type.
    pub fn value_type(&self) -> &Type {
        &self.value
    }

    /// Parses a key written in the text syntax, checked against the key type.
    pub fn parse_key(&self, text: &str) -> Result<Value, Error> {
        self.key.parse(text).map_err(|e| Error::Value(format!("key `{text}` for map `{}` (a `{}`): {e}", self.name, self.key)))
    }

    /// Parses a value written in the text syntax, checked against the value type; for a
    /// per-CPU map also one value per CPU, `{cpu0: V, cpu1: V, ...}`, as [`Map::dump`]'s
    /// values print.
    pub fn parse_value(&self, text: &str) -> Result<Value, Error> {
        let err = |e: String| Error::Value(format!("value `{text}` for map `{}` (a `{}`): {e}", self.name, self.value));
        if self.percpu && text.trim_start().strip_prefix('{').is_some_and(|r| r.trim_start().starts_with("cpu")) {
            return self.value.parse_per_cpu(text).map_err(err);
        }
        self.value.parse(text).map_err(err)
    }

    fn key_bytes(&self, key: &Value) -> Result<Vec<u8>, Error> {
        self.key.encode(key).map_err(|e| Error::Value(format!("key for map `{}` (a `{}`): {e}", self.name, self.key)))
    }

    /// The value under `key`, or `None`.
    pub fn get(&self, key: &Value) -> Result<Option<Value>, Error> {
        let k = self.key_bytes(key)?;
        self.get_raw(&k)
    }

    fn get_raw(&self, k: &[u8]) -> Result<Option<Value>, Error> {
        let what = || format!("reading map `{}`", self.name);
        if self.percpu {
            let vals = self.handle.lookup_percpu(k, MapFlags::ANY).map_err(kernel(what()))?;
            return Ok(vals.map(|v| Value::PerCpu(v.iter().map(|b| self.value.decode(b)).collect())));
        }
        Ok(self.handle.lookup(k, MapFlags::ANY).map_err(kernel(what()))?.map(|b| self.value.decode(&b)))
    }

    /// Writes `value` under `key` (in every CPU's copy for a per-CPU map). Both are checked
    /// against the map's types first; nothing is written when either does not fit.
    pub fn set(&self, key: &Value, value: &Value) -> Result<(), Error> {
        self.writable()?;
        let k = self.key_bytes(key)?;
        let what = || format!("writing map `{}`", self.name);
        if self.percpu {
            let vals: Vec<Vec<u8>> = match value {
                Value::PerCpu(vals) => vals.iter().map(|v| self.value_bytes(v)).collect::<Result<_, _>>()?,
                v => {
                    let one = self.value_bytes(v)?;
                    let n = libbpf_rs::num_possible_cpus().map_err(kernel(what()))?;
                    vec![one; n]
                }
            };
            return self.handle.update_percpu(&k, &vals, MapFlags::ANY).map_err(kernel(what()));
        }
        let v = self.value_bytes(value)?;
        self.handle.update(&k, &v, MapFlags::ANY).map_err(|e| {
            let mut error = e.to_string();
            if error.contains("(os error 7)") {
                let max = self.handle.max_entries();
                error += &if self.handle.map_type().is_hash_map() {
                    format!(" (the map is full: it holds at most {max} entries)")
                } else {
                    format!(" (an array map's keys are 0..={})", max.saturating_sub(1))
                };
            }
            Error::Kernel { what: what(), error }
        })
    }

    fn value_bytes(&self, value: &Value) -> Result<Vec<u8>, Error> {
        self.value.encode(value).map_err(|e| Error::Value(format!("value for map `{}` (a `{}`): {e}", self.name, self.value)))
    }

    fn writable(&self) -> Result<(), Error> {
        if self.hidden {
            let how = if self.name.ends_with("rodata") {
                " (config values are set when the policy is loaded: `sclc load --set NAME=VALUE`)"
            } else {
                ""
            };
            return Err(Error::Value(format!("`{}` is a map sclc added for the policy's own use; it is read-only{how}", self.name)));
        }
        Ok(())
    }

    /// Removes the entry under `key`; false when there was none.
    pub fn delete(&self, key: &Value) -> Result<bool, Error> {
        self.writable()?;
        let k = self.key_bytes(key)?;
        match self.handle.delete(&k) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == libbpf_rs::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::Kernel {
                what: format!("deleting from map `{}`", self.name),
                error: if self.handle.map_type().is_hash_map() { e.to_string() } else { format!("{e} (entries of array maps cannot be deleted; set them to 0)") },
            }),
        }
    }

    /// Every entry, in the kernel's key order.
    pub fn dump(&self) -> Result<Vec<(Value, Value)>, Error> {
        let mut out = Vec::new();
        for k in self.handle.keys() {
            if let Some(v) = self.get_raw(&k)? {
                out.push((self.key.decode(&k), v));
            }
        }
        Ok(out)
    }
}

/// The raw BTF with kernel id `id`.
fn load_btf(id: u32) -> Result<Btf, Error> {
    // SAFETY: a plain libbpf call; the result is checked for NULL (libbpf >= 1.0 returns
    // NULL and sets errno on failure).
    let btf = unsafe { libbpf_sys::btf__load_from_kernel_by_id(id) };
    if btf.is_null() {
        return Err(Error::Kernel { what: format!("loading BTF {id} from the kernel"), error: std::io::Error::last_os_error().to_string() });
    }
    let mut size = 0u32;
    // SAFETY: `btf` is a valid btf object; the returned pointer is valid for `size` bytes
    // until `btf__free`, and is copied before that.
    let data = unsafe {
        let p = libbpf_sys::btf__raw_data(btf, &mut size);
        let data = if p.is_null() { Vec::new() } else { std::slice::from_raw_parts(p.cast::<u8>(), size as usize).to_vec() };
        libbpf_sys::btf__free(btf);
        data
    };
    Btf::parse(data).map_err(|e| Error::Kernel { what: format!("reading BTF {id}"), error: e })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(size: u32) -> Type {
        Type::Int { size, bits: size * 8, signed: false, boolean: false }
    }

    fn s() -> Type {
        Type::Struct {
            name: "S".into(),
            size: 16,
            fields: vec![
                Field { name: "a".into(), ty: u(4), bit_offset: 0, bit_size: 0 },
                Field { name: "on".into(), ty: Type::Int { size: 1, bits: 8, signed: false, boolean: true }, bit_offset: 32, bit_size: 0 },
                Field { name: "d".into(), ty: Type::Int { size: 2, bits: 16, signed: true, boolean: false }, bit_offset: 48, bit_size: 0 },
                Field { name: "xs".into(), ty: Type::Array { elem: Box::new(u(2)), len: 4 }, bit_offset: 64, bit_size: 0 },
            ],
        }
    }

    #[test]
    fn integers_are_checked_against_their_type() {
        assert_eq!(u(1).parse("255"), Ok(Value::Int(255)));
        assert_eq!(u(1).parse("0xff"), Ok(Value::Int(255)));
        assert!(u(1).parse("300").unwrap_err().contains("does not fit a `u8` (0..=255)"));
        assert!(u(4).parse("-1").is_err());
        assert!(u(4).parse("x=1").unwrap_err().contains("`x=1` is not a `u32`"));
        assert!(u(4).parse("4294967296").is_err());
        assert!(u(4).parse("12abc").is_err());
        let i8t = Type::Int { size: 1, bits: 8, signed: true, boolean: false };
        assert_eq!(i8t.encode(&i8t.parse("-128").unwrap()).unwrap(), vec![0x80]);
        assert_eq!(i8t.decode(&[0xff]), Value::Int(-1));
        assert_eq!(u(4).encode(&Value::Int(0x01020304)).unwrap(), vec![4, 3, 2, 1]);
    }

    #[test]
    fn structs_and_arrays_round_trip() {
        let t = s();
        let v = t.parse("a=7, on=true, xs=[1,2]").unwrap();
        let bytes = t.encode(&v).unwrap();
        assert_eq!(bytes.len(), 16);
        let back = t.decode(&bytes);
        assert_eq!(back.to_string(), "{a: 7, on: true, d: 0, xs: [1, 2, 0, 0]}");
        assert_eq!(t.parse("{d=-2}").unwrap(), Value::Struct(vec![("d".into(), Value::Int(-2))]));
        assert!(t.parse("b=1").unwrap_err().contains("no field `b`"));
        assert!(t.parse("xs=[1,2,3,4,5]").is_err());
        assert!(t.parse("on=2").is_err());
        assert!(t.parse("7").is_err());
        assert!(t.parse("a=1,a=2").is_err());
    }

    #[test]
    fn bit_fields_read_and_write_their_bits() {
        let t = Type::Struct {
            name: "B".into(),
            size: 4,
            fields: vec![
                Field { name: "lo".into(), ty: u(4), bit_offset: 0, bit_size: 3 },
                Field { name: "hi".into(), ty: u(4), bit_offset: 3, bit_size: 5 },
            ],
        };
        let bytes = t.encode(&t.parse("lo=5,hi=31").unwrap()).unwrap();
        assert_eq!(bytes, vec![0b1111_1101, 0, 0, 0]);
        assert!(t.parse("lo=8").is_err());
        assert_eq!(t.decode(&bytes).to_string(), "{lo: 5, hi: 31}");
    }

    /// A random type: integers of every size and sign, bools, enums, opaque bytes, and
    /// structs and arrays of them, two levels deep. Sizes and offsets are laid out as a C
    /// compiler would (no padding needed: every field is placed at its byte offset).
    fn any_type() -> impl proptest::strategy::Strategy<Value = Type> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            (prop_oneof![Just(1u32), Just(2), Just(4), Just(8)], any::<bool>())
                .prop_map(|(size, signed)| Type::Int { size, bits: size * 8, signed, boolean: false }),
            Just(Type::Int { size: 1, bits: 8, signed: false, boolean: true }),
            Just(Type::Enum { name: "E".into(), size: 4, signed: false, variants: vec![("A".into(), 0), ("B".into(), 7)] }),
            (1u32..5).prop_map(|size| Type::Opaque { size, what: format!("{size} bytes (no BTF)") }),
        ];
        leaf.prop_recursive(2, 12, 4, |inner| {
            prop_oneof![
                (inner.clone(), 1u32..4).prop_map(|(elem, len)| Type::Array { elem: Box::new(elem), len }),
                proptest::collection::vec(inner, 1..4).prop_map(|tys| {
                    let mut off = 0;
                    let fields = tys
                        .into_iter()
                        .enumerate()
                        .map(|(i, ty)| {
                            let f = Field { name: format!("f{i}"), bit_offset: off * 8, bit_size: 0, ty };
                            off += f.ty.size();
                            f
                        })
                        .collect();
                    Type::Struct { name: "S".into(), size: off, fields }
                }),
            ]
        })
    }

    proptest::proptest! {
        /// `sclc map set` accepts what `sclc map dump` prints: for any type and any bytes,
        /// the printed value parses back to the same value, one CPU's or every CPU's.
        #[test]
        fn what_dump_prints_set_accepts(ty in any_type(), seed in proptest::prelude::any::<u64>()) {
            let mut x = seed;
            let mut bytes = |n: u32| -> Vec<u8> {
                (0..n).map(|_| { x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407); (x >> 56) as u8 }).collect()
            };
            let value = ty.decode(&bytes(ty.size()));
            let text = value.to_string();
            let parsed = ty.parse(&text).map_err(|e| proptest::test_runner::TestCaseError::fail(format!("{text}: {e}")))?;
            proptest::prop_assert_eq!(ty.decode(&ty.encode(&parsed).unwrap()), value.clone(), "{}", text);
            let cpus = Value::PerCpu(vec![value, ty.decode(&bytes(ty.size()))]);
            let text = cpus.to_string();
            let parsed = ty.parse_per_cpu(&text).map_err(|e| proptest::test_runner::TestCaseError::fail(format!("{text}: {e}")))?;
            let Value::PerCpu(vals) = &parsed else { panic!("{parsed:?}") };
            let back = Value::PerCpu(vals.iter().map(|v| ty.decode(&ty.encode(v).unwrap())).collect());
            proptest::prop_assert_eq!(back, cpus);
        }
    }
}
