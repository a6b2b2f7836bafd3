//! The SCL intermediate representation, between the checked program and BPF.
//!
//! A [`ir::Module`] holds the policy's BPF maps, its config values in `.rodata`, and one
//! [`ir::Program`] per hook. Programs are functions of basic blocks over SSA values,
//! shaped for BPF: 64-bit values in canonical form, locals in stack slots, pointers typed
//! the way the kernel verifier types them, and values used only in the block that defines
//! them (see [`verify`]). [`print`] gives the text form that `--emit ir` shows.
//!
//! This crate owns the IR's data, its builder, its printer and its verifier. It must not
//! know how instructions are encoded or how an object file is laid out.

#![deny(missing_docs)]

pub mod builder;
pub mod ir;
pub mod lower;
pub mod opt;
pub mod print;
pub mod verify;

pub use ir::*;

#[cfg(test)]
mod tests {
    use super::builder::Builder;
    use super::*;

    /// `if ctx.lock == 0 { return 1 } else { return 2 }`, built by hand.
    fn sample() -> Function {
        let mut b = Builder::new();
        let then = b.create_block();
        let else_ = b.create_block();
        let ctx = b.ctx();
        let lock = b.load(ctx, 0, 8);
        let zero = b.iconst(0);
        let c = b.cmp(Cond::Eq, lock, zero);
        b.terminate(Terminator::Branch { cond: c, then, else_ });
        b.switch_to(then);
        let one = b.iconst(1);
        b.terminate(Terminator::Return(one));
        b.switch_to(else_);
        let two = b.iconst(2);
        b.terminate(Terminator::Return(two));
        b.finish()
    }

    #[test]
    fn a_well_formed_function_verifies_and_prints() {
        let f = sample();
        assert_eq!(verify::verify(&f), Ok(()));
        let text = f.to_string();
        assert_eq!(
            text,
            "  block0:\n    v0 = ctx\n    v1 = load.u64 v0+0\n    v2 = const 0\n    v3 = cmp.eq v1, v2\n    br v3, block1, block2\n  block1:\n    v4 = const 1\n    ret v4\n  block2:\n    v5 = const 2\n    ret v5\n"
        );
    }

    #[test]
    fn the_verifier_catches_cross_block_uses_and_unreachable_blocks() {
        let mut f = sample();
        // Return the entry block's `v1` from block1: a cross-block use.
        let b1 = f.layout[1];
        let v1 = Value::from_u32(1);
        f.blocks[b1].term = Some(Terminator::Return(v1));
        let orphan = f.blocks.push(BlockData { insts: Vec::new(), term: Some(Terminator::Return(v1)) });
        f.layout.push(orphan);
        let errors = verify::verify(&f).unwrap_err();
        assert!(errors.iter().any(|e| e.contains("uses v1, defined in block0")), "{errors:?}");
        assert!(errors.iter().any(|e| e.contains("block3 is unreachable")), "{errors:?}");
    }

    #[test]
    fn the_verifier_refuses_dereferencing_a_maybe_null_map_value() {
        let mut b = Builder::new();
        let key = b.slot(8, "key");
        let key_addr = b.slot_addr(key, 0);
        let map = b.value(ValTy::MapRef);
        b.push(InstData::MapRef { dst: map, map: MapId::from_u32(0) });
        let p = b.call(1, vec![map, key_addr], ValTy::MapValueOrNull);
        let v = b.load(p, 0, 8);
        b.terminate(Terminator::Return(v));
        let f = b.finish();
        let errors = verify::verify(&f).unwrap_err();
        assert!(errors.iter().any(|e| e.contains("dereferences v2, a MapValueOrNull")), "{errors:?}");
    }
}
