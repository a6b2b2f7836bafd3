//! The VM's address space. An address is `region << 54 | slot << 32 | offset`: the region
//! says what memory it is (a stack, the context, `.rodata`, one map's values), the slot which
//! piece of it (a stack frame, a map entry) and the offset a byte inside the piece. Every
//! piece is bounds-checked on its own, so a program cannot read one map value through a
//! pointer to another, or the caller's frame through its own. Pointer arithmetic is plain
//! 64-bit arithmetic: stepping below a piece's start borrows from the slot and gives an
//! offset near 2^32, which no piece is large enough to hold, so it is caught as out of
//! bounds too. Address 0 (NULL) and everything in region 0 is never memory.

/// Bits of the offset inside a piece.
const OFF_BITS: u32 = 32;
/// Bits of the slot.
const SLOT_BITS: u32 = 22;
/// Where the region starts.
const REGION_SHIFT: u32 = OFF_BITS + SLOT_BITS;

/// Slots a region can have.
pub const MAX_SLOTS: u64 = 1 << SLOT_BITS;
/// Maps a VM can have.
pub const MAX_MAPS: usize = (1 << (64 - REGION_SHIFT)) - REGION_MAP0 as usize;

/// The stacks: slot `d` is the 512-byte frame of call depth `d`.
pub const REGION_STACK: u64 = 1;
/// The 128-byte context.
pub const REGION_CTX: u64 = 2;
/// `.rodata` (read-only).
pub const REGION_RODATA: u64 = 3;
/// Map pointers as `ld_imm64` gives them (not memory: only helpers take them).
pub const REGION_MAP_HANDLE: u64 = 4;
/// Callback pointers for `bpf_loop` (not memory).
pub const REGION_FUNC: u64 = 5;
/// Map `k`'s values are region `REGION_MAP0 + k`.
pub const REGION_MAP0: u64 = 16;

/// Bytes in one stack frame.
pub const FRAME: usize = 512;

/// An address.
#[inline]
pub fn addr(region: u64, slot: u64, off: u32) -> u64 {
    (region << REGION_SHIFT) | (slot << OFF_BITS) | u64::from(off)
}

/// The region, slot and offset of an address.
#[inline]
pub fn split(a: u64) -> (u64, u64, u64) {
    (
        a >> REGION_SHIFT,
        (a >> OFF_BITS) & (MAX_SLOTS - 1),
        a & 0xffff_ffff,
    )
}

/// The pointer `ld_imm64` gives for map `k`.
pub fn map_handle(k: usize) -> u64 {
    addr(REGION_MAP_HANDLE, 0, k as u32)
}

/// The pointer `ld_imm64` gives for callback `k` (an index into the VM's code).
pub fn func_handle(k: usize) -> u64 {
    addr(REGION_FUNC, 0, k as u32)
}

/// `r10` of the frame at depth `d`: the end of its 512 bytes.
pub fn frame_pointer(d: usize) -> u64 {
    addr(REGION_STACK, d as u64, FRAME as u32)
}

/// The index a handle of `region` refers to.
pub fn handle(a: u64, region: u64) -> Option<usize> {
    let (r, slot, off) = split(a);
    (r == region && slot == 0).then_some(off as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn underflow_leaves_the_piece() {
        let fp = frame_pointer(0);
        let (r, s, o) = split(fp.wrapping_sub(8));
        assert_eq!((r, s, o), (REGION_STACK, 0, 504));
        // Below the frame: the offset wraps, far beyond any piece.
        let (r, s, o) = split(fp.wrapping_sub(FRAME as u64 + 8));
        assert_eq!(r, 0);
        assert_eq!(s, MAX_SLOTS - 1);
        assert!(o > 1 << 31);
        let (_, s, o) = split(frame_pointer(1).wrapping_sub(FRAME as u64 + 8));
        assert_eq!((s, o), (0, 0xffff_fff8));
        assert_eq!(handle(map_handle(3), REGION_MAP_HANDLE), Some(3));
        assert_eq!(handle(map_handle(3), REGION_FUNC), None);
    }
}
