//! The text form of the IR (`sclc build --emit ir`): stable, one instruction per line, so
//! tests compare it and a kernel rejection can be read against it.

use crate::ir::*;
use std::fmt::{self, Write};

fn size_suffix(size: u8) -> &'static str {
    match size {
        1 => "u8",
        2 => "u16",
        4 => "u32",
        _ => "u64",
    }
}

impl fmt::Display for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (slot, data) in self.slots.iter() {
            let whole = if data.whole_function { ", live throughout" } else { "" };
            writeln!(f, "    {slot} = {} bytes  ; {}{whole}", data.size, data.name)?;
        }
        for &b in &self.layout {
            writeln!(f, "  {b}:")?;
            for &i in &self.blocks[b].insts {
                writeln!(f, "    {}", DisplayInst(&self.insts[i]))?;
            }
            match &self.blocks[b].term {
                Some(Terminator::Jump(t)) => writeln!(f, "    jump {t}")?,
                Some(Terminator::Branch { cond, then, else_ }) => writeln!(f, "    br {cond}, {then}, {else_}")?,
                Some(Terminator::Return(v)) => writeln!(f, "    ret {v}")?,
                None => writeln!(f, "    ; (no terminator)")?,
            }
        }
        Ok(())
    }
}

struct DisplayInst<'a>(&'a InstData);

impl fmt::Display for DisplayInst<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = |w: Width| if w == Width::W32 { ".32" } else { "" };
        match self.0 {
            InstData::Const { dst, imm } => write!(f, "{dst} = const {imm}"),
            InstData::Ctx { dst } => write!(f, "{dst} = ctx"),
            InstData::Bin { op, width, dst, a, b } => {
                write!(f, "{dst} = {}{} {a}, {b}", format!("{op:?}").to_lowercase(), w(*width))
            }
            InstData::Neg { width, dst, a } => write!(f, "{dst} = neg{} {a}", w(*width)),
            InstData::Cmp { cond, dst, a, b } => write!(f, "{dst} = cmp.{} {a}, {b}", format!("{cond:?}").to_lowercase()),
            InstData::Select { cond, dst, x, y, a, b } => {
                write!(f, "{dst} = select.{} {x}, {y} ? {a} : {b}", format!("{cond:?}").to_lowercase())
            }
            InstData::Ext { bits, signed, dst, a } => write!(f, "{dst} = {}ext{bits} {a}", if *signed { 's' } else { 'z' }),
            InstData::Copy { dst, a } => write!(f, "{dst} = copy {a}"),
            InstData::Load { dst, ptr, offset, size } => write!(f, "{dst} = load.{} {ptr}{offset:+}", size_suffix(*size)),
            InstData::Store { ptr, offset, size, val } => write!(f, "store.{} {ptr}{offset:+}, {val}", size_suffix(*size)),
            InstData::SlotAddr { dst, slot, offset } => write!(f, "{dst} = addr {slot}+{offset}"),
            InstData::MapRef { dst, map } => write!(f, "{dst} = mapref {map}"),
            InstData::Rodata { dst, offset } => write!(f, "{dst} = rodata+{offset}"),
            InstData::Call { dst, helper, args } => {
                let mut s = String::new();
                for (i, a) in args.iter().enumerate() {
                    let _ = write!(s, "{}{a}", if i > 0 { ", " } else { "" });
                }
                write!(f, "{dst} = call {} ({s})", helper_name(*helper))
            }
            InstData::Atomic { op, size, dst, ptr, offset, val, expected } => match op {
                AtomicOp::FetchAdd => write!(f, "{dst} = atomic.fetch_add.{} {ptr}{offset:+}, {val}", size_suffix(*size)),
                AtomicOp::CmpXchg => write!(
                    f,
                    "{dst} = atomic.cmpxchg.{} {ptr}{offset:+}, {}, {val}",
                    size_suffix(*size),
                    expected.map_or("?".to_string(), |e| e.to_string())
                ),
            },
            InstData::MemCopy { dst_ptr, src, size } => write!(f, "memcpy {dst_ptr}, {src}, {size}"),
            InstData::MemZero { ptr, size } => write!(f, "memzero {ptr}, {size}"),
            InstData::Loop { dst, callback, count, ctx_ptr } => write!(f, "{dst} = call loop ({count}, {callback:?}, {ctx_ptr})"),
        }
    }
}

/// The name of a BPF helper the back end uses.
pub fn helper_name(id: u32) -> String {
    match crate::ir::HELPERS.iter().find(|h| h.id == id) {
        Some(h) => h.name.into(),
        None => format!("helper#{id}"),
    }
}

impl fmt::Display for Module {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "; policy {}", self.name)?;
        for (id, m) in self.maps.iter() {
            writeln!(
                f,
                "{id} = map {} {:?} key {} value {} entries {}",
                m.name, m.kind, m.key_size, m.value_size, m.max_entries
            )?;
        }
        for v in &self.rodata {
            writeln!(f, "rodata+{} = config {} ({} bytes, default {})", v.offset, v.name, v.size, v.default)?;
        }
        for p in &self.programs {
            writeln!(f, "\nprogram {} (hook {}):", p.name, p.hook.name)?;
            write!(f, "{}", p.func)?;
        }
        Ok(())
    }
}
