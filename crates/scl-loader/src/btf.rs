//! A small reader of raw BTF (the kernel's copy of an object's types), enough to type the
//! keys and values of a pinned map: integers, `bool`, enums, structs (members by name and
//! bit offset), arrays and `DATASEC`s (read as structs of their variables). Typedefs and
//! qualifiers are looked through; anything else (pointers, unions, floats) is opaque bytes.

use crate::pinned::{Field, Type};

use scl_object::btf_kind::*;

/// Nesting deeper than this is refused (BTF from the kernel is acyclic except through
/// pointers, which stay opaque, so this only guards against malformed data).
const MAX_DEPTH: usize = 32;

/// Parsed raw BTF: the offset of each type record and the string section.
pub(crate) struct Btf {
    data: Vec<u8>,
    /// Offset in `data` of type id `i` (index 0 is the void type, unused).
    types: Vec<usize>,
    strings: (usize, usize),
}

fn word(data: &[u8], at: usize) -> Option<u32> {
    data.get(at..at + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

impl Btf {
    /// Parses a raw BTF blob (header, type section, string section).
    pub(crate) fn parse(data: Vec<u8>) -> Result<Btf, String> {
        let bad = |what: &str| format!("malformed BTF: {what}");
        if data.len() < 24 || u16::from_le_bytes([data[0], data[1]]) != 0xeb9f {
            return Err(bad("no BTF header"));
        }
        let hdr = word(&data, 4).ok_or_else(|| bad("header"))? as usize;
        let (toff, tlen) = (word(&data, 8).unwrap_or(0) as usize, word(&data, 12).unwrap_or(0) as usize);
        let (soff, slen) = (word(&data, 16).unwrap_or(0) as usize, word(&data, 20).unwrap_or(0) as usize);
        let (tstart, tend) = (hdr + toff, hdr + toff + tlen);
        if tend > data.len() || hdr + soff + slen > data.len() {
            return Err(bad("sections out of bounds"));
        }
        let mut types = vec![0];
        let mut at = tstart;
        while at < tend {
            let info = word(&data, at + 4).ok_or_else(|| bad("truncated type"))?;
            let (kind, vlen) = ((info >> 24) & 0x1f, (info & 0xffff) as usize);
            let extra = match kind {
                KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
                KIND_PTR | KIND_FWD | KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_FUNC | KIND_FLOAT
                | KIND_TYPE_TAG => 0,
                KIND_ARRAY => 12,
                KIND_STRUCT | KIND_UNION | KIND_DATASEC | KIND_ENUM64 => 12 * vlen,
                KIND_ENUM | KIND_FUNC_PROTO => 8 * vlen,
                _ => return Err(bad(&format!("unknown kind {kind}"))),
            };
            types.push(at);
            at += 12 + extra;
        }
        Ok(Btf { data, types, strings: (hdr + soff, slen) })
    }

    fn name(&self, off: u32) -> String {
        let (start, len) = self.strings;
        let off = off as usize;
        if off >= len {
            return String::new();
        }
        let s = &self.data[start + off..start + len];
        let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
        String::from_utf8_lossy(&s[..end]).into_owned()
    }

    /// The type with id `id`, resolved into a [`Type`].
    pub(crate) fn resolve(&self, id: u32) -> Result<Type, String> {
        self.resolve_at(id, 0)
    }

    fn resolve_at(&self, id: u32, depth: usize) -> Result<Type, String> {
        if depth > MAX_DEPTH {
            return Err("BTF types nest too deeply".into());
        }
        let at = *self.types.get(id as usize).filter(|_| id != 0).ok_or_else(|| format!("no BTF type {id}"))?;
        let w = |i: usize| word(&self.data, at + 4 * i).unwrap_or(0);
        let (name_off, info, size_or_type) = (w(0), w(1), w(2));
        let (kind, vlen, kflag) = ((info >> 24) & 0x1f, (info & 0xffff) as usize, info >> 31 == 1);
        Ok(match kind {
            KIND_INT => {
                let enc = w(3);
                let bits = enc & 0xff;
                let encoding = (enc >> 24) & 0xf;
                Type::Int { size: size_or_type, bits, signed: encoding & 1 != 0, boolean: encoding & 4 != 0 }
            }
            KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG => self.resolve_at(size_or_type, depth + 1)?,
            KIND_ARRAY => {
                let (elem, len) = (w(3), w(5));
                Type::Array { elem: Box::new(self.resolve_at(elem, depth + 1)?), len }
            }
            KIND_STRUCT => {
                let mut fields = Vec::with_capacity(vlen);
                for m in 0..vlen {
                    let base = 3 + 3 * m;
                    let (mname, mty, moff) = (w(base), w(base + 1), w(base + 2));
                    let (bit_offset, bit_size) = if kflag { (moff & 0xff_ffff, moff >> 24) } else { (moff, 0) };
                    fields.push(Field { name: self.name(mname), ty: self.resolve_at(mty, depth + 1)?, bit_offset, bit_size });
                }
                Type::Struct { name: self.name(name_off), size: size_or_type, fields }
            }
            KIND_DATASEC => {
                let mut fields = Vec::with_capacity(vlen);
                for v in 0..vlen {
                    let base = 3 + 3 * v;
                    let (var, offset) = (w(base), w(base + 1));
                    let var_at = *self.types.get(var as usize).ok_or_else(|| format!("no BTF type {var}"))?;
                    let var_name = word(&self.data, var_at).unwrap_or(0);
                    let var_ty = word(&self.data, var_at + 8).unwrap_or(0);
                    fields.push(Field { name: self.name(var_name), ty: self.resolve_at(var_ty, depth + 1)?, bit_offset: offset * 8, bit_size: 0 });
                }
                Type::Struct { name: self.name(name_off), size: size_or_type, fields }
            }
            KIND_ENUM | KIND_ENUM64 => {
                let mut variants = Vec::with_capacity(vlen);
                for v in 0..vlen {
                    if kind == KIND_ENUM {
                        let val = w(3 + 2 * v + 1);
                        let val = if kflag { i128::from(val as i32) } else { i128::from(val) };
                        variants.push((self.name(w(3 + 2 * v)), val));
                    } else {
                        let (lo, hi) = (w(3 + 3 * v + 1), w(3 + 3 * v + 2));
                        let raw = (u64::from(hi) << 32) | u64::from(lo);
                        let val = if kflag { i128::from(raw as i64) } else { i128::from(raw) };
                        variants.push((self.name(w(3 + 3 * v)), val));
                    }
                }
                Type::Enum { name: self.name(name_off), size: size_or_type, signed: kflag, variants }
            }
            KIND_UNION => Type::Opaque { size: size_or_type, what: format!("union {}", self.name(name_off)) },
            KIND_FLOAT => Type::Opaque { size: size_or_type, what: self.name(name_off) },
            KIND_PTR => Type::Opaque { size: 8, what: "pointer".into() },
            _ => return Err(format!("BTF type {id} (kind {kind}) cannot be a map key or value")),
        })
    }

    /// The size of every variable of every `DATASEC` (the kernel's static data), by name.
    pub(crate) fn var_sizes(&self) -> std::collections::HashMap<String, u64> {
        let mut sizes = std::collections::HashMap::new();
        for &at in &self.types[1..] {
            let info = word(&self.data, at + 4).unwrap_or(0);
            let (kind, vlen) = ((info >> 24) & 0x1f, (info & 0xffff) as usize);
            if kind != KIND_DATASEC {
                continue;
            }
            for v in 0..vlen {
                let base = at + 12 + 12 * v;
                let (var, size) = (word(&self.data, base).unwrap_or(0), word(&self.data, base + 8).unwrap_or(0));
                let Some(&var_at) = self.types.get(var as usize) else { continue };
                let name = self.name(word(&self.data, var_at).unwrap_or(0));
                if !name.is_empty() {
                    sizes.insert(name, u64::from(size));
                }
            }
        }
        sizes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-written blob: [1] u32, [2] u8 bool, [3] struct S { u32 a; bool b; }, [4] u32[3].
    fn blob() -> Vec<u8> {
        let strings = b"\0u32\0bool\0S\0a\0b\0".to_vec();
        let mut t: Vec<u32> = Vec::new();
        t.extend([1, (KIND_INT << 24), 4, 32]);
        t.extend([5, (KIND_INT << 24), 1, (4 << 24) | 8]);
        t.extend([10, (KIND_STRUCT << 24) | 2, 8, 12, 1, 0, 14, 2, 32]);
        t.extend([0, (KIND_ARRAY << 24), 0, 1, 1, 3]);
        let types: Vec<u8> = t.iter().flat_map(|w| w.to_le_bytes()).collect();
        let mut out = Vec::new();
        out.extend(0xeb9fu16.to_le_bytes());
        out.extend([1, 0]);
        for w in [24u32, 0, types.len() as u32, types.len() as u32, strings.len() as u32] {
            out.extend(w.to_le_bytes());
        }
        out.extend(types);
        out.extend(strings);
        out
    }

    #[test]
    fn ints_structs_and_arrays_resolve() {
        let btf = Btf::parse(blob()).unwrap();
        assert_eq!(btf.resolve(1).unwrap(), Type::Int { size: 4, bits: 32, signed: false, boolean: false });
        assert_eq!(btf.resolve(2).unwrap(), Type::Int { size: 1, bits: 8, signed: false, boolean: true });
        let Type::Struct { name, size, fields } = btf.resolve(3).unwrap() else { panic!() };
        assert_eq!((name.as_str(), size), ("S", 8));
        assert_eq!(fields.iter().map(|f| (f.name.as_str(), f.bit_offset)).collect::<Vec<_>>(), [("a", 0), ("b", 32)]);
        assert_eq!(btf.resolve(4).unwrap().to_string(), "[u32; 3]");
        assert!(btf.resolve(9).is_err());
        assert!(Btf::parse(vec![0; 10]).is_err());
    }

}
