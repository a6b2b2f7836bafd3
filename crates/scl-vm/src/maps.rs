//! Map storage with the kernel's semantics: arrays (zeroed, never deleted), per-CPU arrays
//! (one copy per CPU), hash maps (fixed capacity, `-E2BIG` when full), LRU hash maps (the
//! least recently used entry is evicted when full) and ring buffers (records kept for user
//! space).
//!
//! Every value lives in a slot of a per-map slab and never moves while its slot is used, so
//! a pointer handed to a program (`region | slot | offset`, see `mem.rs`) stays valid the way
//! a pointer into the kernel's preallocated maps does. A deleted slot is reused by a later
//! insertion; a program still holding a pointer to it reads whatever is there then, as in
//! the kernel.

use scl_catalogue::MapKind;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// `-EPERM` and friends, as the kernel's helpers return them.
pub const ENOENT: i64 = 2;
/// Argument list too long: a full hash map, an index past an array.
pub const E2BIG: i64 = 7;
/// Bad address: `copy_from_user` without user memory.
pub const EFAULT: i64 = 14;
/// The entry exists (`BPF_NOEXIST`).
pub const EEXIST: i64 = 17;
/// Invalid argument: bad flags, deleting from an array.
pub const EINVAL: i64 = 22;
/// No space left in a ring buffer.
pub const EAGAIN: i64 = 11;

/// `BPF_ANY`, `BPF_NOEXIST`, `BPF_EXIST`.
const BPF_NOEXIST: u64 = 1;
const BPF_EXIST: u64 = 2;
const NIL: u32 = u32::MAX;

/// A small multiplicative hasher (the Fx hash of rustc): keys are a few bytes and not
/// chosen by an adversary.
#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

impl Hasher for FxHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(b));
        }
    }
    fn write_u64(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

type Fx = BuildHasherDefault<FxHasher>;

/// Keys of at most 8 bytes are kept as a number, longer ones as bytes.
#[derive(Clone, Debug)]
enum Index {
    Small(HashMap<u64, u32, Fx>),
    Big(HashMap<Box<[u8]>, u32, Fx>),
}

fn small_key(key: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b[..key.len()].copy_from_slice(key);
    u64::from_le_bytes(b)
}

/// What a hash map needs beyond its slab.
#[derive(Clone, Debug)]
struct Hash {
    index: Index,
    /// The key of each slot in use (`None` when free).
    keys: Vec<Option<Box<[u8]>>>,
    free: Vec<u32>,
    len: u32,
    /// LRU list (LRU hash maps only): most recently used at `head`.
    prev: Vec<u32>,
    next: Vec<u32>,
    head: u32,
    tail: u32,
}

/// One map.
#[derive(Clone, Debug)]
pub struct Map {
    /// Its name in the object.
    pub name: String,
    /// Its kind.
    pub kind: MapKind,
    /// Key size in bytes.
    pub key_size: usize,
    /// Value size in bytes.
    pub value_size: usize,
    /// Entries (bytes for ring buffers).
    pub max_entries: u32,
    /// True for maps the compiler added (`scl_zero`, `scl_flags`).
    pub hidden: bool,
    /// The values: `slot * value_size`. Arrays: `max_entries` slots; per-CPU arrays:
    /// `cpus * max_entries` slots, CPU `c`'s entry `i` in slot `c * max_entries + i`;
    /// hash maps: grown as slots are first used.
    pub data: Vec<u8>,
    hash: Option<Hash>,
    /// Ring buffers: bytes of records not yet taken by user space.
    pub ring_pending: u64,
}

/// Why a map operation failed, as an errno.
pub type Errno = i64;

impl Map {
    /// An empty map (arrays zeroed).
    pub fn new(
        name: String,
        kind: MapKind,
        key_size: usize,
        value_size: usize,
        max_entries: u32,
        hidden: bool,
        cpus: u32,
    ) -> Map {
        let (data, hash) = match kind {
            MapKind::Array => (vec![0; value_size * max_entries as usize], None),
            MapKind::PercpuArray => (
                vec![0; value_size * max_entries as usize * cpus as usize],
                None,
            ),
            MapKind::Hash | MapKind::LruHash | MapKind::StackTrace => {
                let index = if key_size <= 8 {
                    Index::Small(HashMap::default())
                } else {
                    Index::Big(HashMap::default())
                };
                (
                    Vec::new(),
                    Some(Hash {
                        index,
                        keys: Vec::new(),
                        free: Vec::new(),
                        len: 0,
                        prev: Vec::new(),
                        next: Vec::new(),
                        head: NIL,
                        tail: NIL,
                    }),
                )
            }
            MapKind::Ringbuf => (Vec::new(), None),
        };
        Map {
            name,
            kind,
            key_size,
            value_size,
            max_entries,
            hidden,
            data,
            hash,
            ring_pending: 0,
        }
    }

    fn array_index(&self, key: &[u8]) -> Option<u32> {
        let i = u32::from_le_bytes(key.get(..4)?.try_into().ok()?);
        (i < self.max_entries).then_some(i)
    }

    /// The slot of `key` (for a per-CPU array, `cpu`'s copy), or `None` on a miss. Marks an
    /// LRU entry as used, as `bpf_map_lookup_elem` does.
    pub fn find(&mut self, key: &[u8], cpu: u32) -> Option<u32> {
        match self.kind {
            MapKind::Array => self.array_index(key),
            MapKind::PercpuArray => self.array_index(key).map(|i| cpu * self.max_entries + i),
            MapKind::Hash | MapKind::LruHash => {
                let lru = self.kind == MapKind::LruHash;
                let h = self.hash.as_mut()?;
                let slot = match &h.index {
                    Index::Small(m) => m.get(&small_key(key)).copied(),
                    Index::Big(m) => m.get(key).copied(),
                }?;
                if lru {
                    h.touch(slot);
                }
                Some(slot)
            }
            // Programs cannot look up stacks (the kernel's verifier refuses it).
            MapKind::Ringbuf | MapKind::StackTrace => None,
        }
    }

    /// The slot of `key` without marking it used (user-space reads).
    pub fn peek(&self, key: &[u8], cpu: u32) -> Option<u32> {
        match self.kind {
            MapKind::Array => self.array_index(key),
            MapKind::PercpuArray => self.array_index(key).map(|i| cpu * self.max_entries + i),
            MapKind::Hash | MapKind::LruHash | MapKind::StackTrace => match &self.hash.as_ref()?.index {
                Index::Small(m) => m.get(&small_key(key)).copied(),
                Index::Big(m) => m.get(key).copied(),
            },
            MapKind::Ringbuf => None,
        }
    }

    /// The bytes of a slot.
    pub fn value(&self, slot: u32) -> &[u8] {
        let at = slot as usize * self.value_size;
        &self.data[at..at + self.value_size]
    }

    /// `bpf_map_update_elem` (per-CPU arrays: `cpu`'s copy, or every copy with `cpu = None`).
    pub fn update(
        &mut self,
        key: &[u8],
        value: &[u8],
        flags: u64,
        cpu: Option<u32>,
        cpus: u32,
    ) -> Result<(), Errno> {
        if flags > BPF_EXIST {
            return Err(EINVAL);
        }
        let vs = self.value_size;
        match self.kind {
            MapKind::Array | MapKind::PercpuArray => {
                let i = self.array_index(key).ok_or(E2BIG)?;
                if flags == BPF_NOEXIST {
                    return Err(EEXIST);
                }
                let copies: Vec<u32> = match (self.kind, cpu) {
                    (MapKind::Array, _) => vec![i],
                    (_, Some(c)) => vec![c * self.max_entries + i],
                    (_, None) => (0..cpus).map(|c| c * self.max_entries + i).collect(),
                };
                for slot in copies {
                    let at = slot as usize * vs;
                    self.data[at..at + vs].copy_from_slice(&value[..vs]);
                }
                Ok(())
            }
            MapKind::Hash | MapKind::LruHash => {
                let lru = self.kind == MapKind::LruHash;
                let max = self.max_entries;
                let existing = self.find(key, 0);
                let slot = match existing {
                    Some(_) if flags == BPF_NOEXIST => return Err(EEXIST),
                    Some(s) => s,
                    None if flags == BPF_EXIST => return Err(ENOENT),
                    None => self.insert(key, max, lru)?,
                };
                let at = slot as usize * vs;
                self.data[at..at + vs].copy_from_slice(&value[..vs]);
                Ok(())
            }
            MapKind::Ringbuf | MapKind::StackTrace => Err(EINVAL),
        }
    }

    /// `bpf_get_stackid` into a stack-trace map: the id of `frames` (innermost first),
    /// recording them under the next free id the first time they are seen. Ids are given
    /// in order from 0, so a run is deterministic; a full map refuses a new stack with
    /// `EEXIST`, as the kernel refuses one whose bucket is taken.
    pub fn record_stack(&mut self, frames: &[u64]) -> Result<u32, Errno> {
        let depth = self.value_size / 8;
        let mut value = vec![0u8; self.value_size];
        for (i, f) in frames.iter().take(depth).enumerate() {
            value[i * 8..i * 8 + 8].copy_from_slice(&f.to_le_bytes());
        }
        let used = self.hash.as_ref().map_or(0, |h| h.keys.len() as u32);
        for id in 0..used {
            if let Some(slot) = self.peek(&id.to_le_bytes(), 0) {
                if self.value(slot) == &value[..] {
                    return Ok(id);
                }
            }
        }
        if used >= self.max_entries {
            return Err(EEXIST);
        }
        let slot = self.insert(&used.to_le_bytes(), self.max_entries, false)?;
        let at = slot as usize * self.value_size;
        self.data[at..at + self.value_size].copy_from_slice(&value);
        Ok(used)
    }

    /// Takes a slot for a new key: a free one, a new one, or (LRU) the least recently used.
    fn insert(&mut self, key: &[u8], max: u32, lru: bool) -> Result<u32, Errno> {
        let vs = self.value_size;
        let h = self.hash.as_mut().ok_or(EINVAL)?;
        let slot = if let Some(s) = h.free.pop() {
            s
        } else if (h.keys.len() as u64) < u64::from(max) {
            let s = h.keys.len() as u32;
            h.keys.push(None);
            h.prev.push(NIL);
            h.next.push(NIL);
            self.data.resize(self.data.len() + vs, 0);
            s
        } else if lru && h.tail != NIL {
            let victim = h.tail;
            h.remove(victim);
            victim
        } else {
            return Err(E2BIG);
        };
        let boxed: Box<[u8]> = key.into();
        match &mut h.index {
            Index::Small(m) => {
                m.insert(small_key(key), slot);
            }
            Index::Big(m) => {
                m.insert(boxed.clone(), slot);
            }
        }
        h.keys[slot as usize] = Some(boxed);
        h.len += 1;
        if lru {
            h.push_front(slot);
        }
        Ok(slot)
    }

    /// `bpf_map_delete_elem`.
    pub fn delete(&mut self, key: &[u8]) -> Result<(), Errno> {
        match self.kind {
            MapKind::Hash | MapKind::LruHash => {
                let slot = self.peek(key, 0).ok_or(ENOENT)?;
                let h = self.hash.as_mut().ok_or(EINVAL)?;
                h.remove(slot);
                h.free.push(slot);
                Ok(())
            }
            _ => Err(EINVAL),
        }
    }

    /// Every key: all indices of an array, the keys in use of a hash map (sorted).
    pub fn keys(&self) -> Vec<Vec<u8>> {
        match self.kind {
            MapKind::Array | MapKind::PercpuArray => (0..self.max_entries)
                .map(|i| i.to_le_bytes()[..self.key_size.min(4)].to_vec())
                .collect(),
            MapKind::Hash | MapKind::LruHash | MapKind::StackTrace => {
                let mut keys: Vec<Vec<u8>> = self
                    .hash
                    .iter()
                    .flat_map(|h| h.keys.iter().flatten().map(|k| k.to_vec()))
                    .collect();
                keys.sort();
                keys
            }
            MapKind::Ringbuf => Vec::new(),
        }
    }
}

impl Hash {
    fn unlink(&mut self, s: u32) {
        let (p, n) = (self.prev[s as usize], self.next[s as usize]);
        if p != NIL {
            self.next[p as usize] = n;
        } else if self.head == s {
            self.head = n;
        }
        if n != NIL {
            self.prev[n as usize] = p;
        } else if self.tail == s {
            self.tail = p;
        }
        self.prev[s as usize] = NIL;
        self.next[s as usize] = NIL;
    }

    fn push_front(&mut self, s: u32) {
        self.prev[s as usize] = NIL;
        self.next[s as usize] = self.head;
        if self.head != NIL {
            self.prev[self.head as usize] = s;
        }
        self.head = s;
        if self.tail == NIL {
            self.tail = s;
        }
    }

    fn touch(&mut self, s: u32) {
        if self.head != s {
            self.unlink(s);
            self.push_front(s);
        }
    }

    /// Forgets the key of slot `s` (the slot is then free or reused by the caller).
    fn remove(&mut self, s: u32) {
        if let Some(k) = self.keys[s as usize].take() {
            match &mut self.index {
                Index::Small(m) => {
                    m.remove(&small_key(&k));
                }
                Index::Big(m) => {
                    m.remove(&k);
                }
            }
            self.len -= 1;
        }
        self.unlink(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(kind: MapKind, max: u32) -> Map {
        Map::new("m".into(), kind, 4, 8, max, false, 1)
    }

    #[test]
    fn hash_flags_and_capacity() {
        let mut m = hash(MapKind::Hash, 2);
        let v = [1u8; 8];
        assert_eq!(
            m.update(&1u32.to_le_bytes(), &v, BPF_EXIST, None, 1),
            Err(ENOENT)
        );
        assert_eq!(
            m.update(&1u32.to_le_bytes(), &v, BPF_NOEXIST, None, 1),
            Ok(())
        );
        assert_eq!(
            m.update(&1u32.to_le_bytes(), &v, BPF_NOEXIST, None, 1),
            Err(EEXIST)
        );
        assert_eq!(
            m.update(&1u32.to_le_bytes(), &[2; 8], BPF_EXIST, None, 1),
            Ok(())
        );
        assert_eq!(m.update(&2u32.to_le_bytes(), &v, 0, None, 1), Ok(()));
        assert_eq!(m.update(&3u32.to_le_bytes(), &v, 0, None, 1), Err(E2BIG));
        assert_eq!(m.update(&3u32.to_le_bytes(), &v, 3, None, 1), Err(EINVAL));
        assert_eq!(m.value(m.peek(&1u32.to_le_bytes(), 0).unwrap()), &[2; 8]);
        assert_eq!(m.delete(&1u32.to_le_bytes()), Ok(()));
        assert_eq!(m.delete(&1u32.to_le_bytes()), Err(ENOENT));
        assert_eq!(m.update(&3u32.to_le_bytes(), &v, 0, None, 1), Ok(()));
        assert_eq!(
            m.keys(),
            vec![2u32.to_le_bytes().to_vec(), 3u32.to_le_bytes().to_vec()]
        );
        assert_eq!(m.keys().len(), 2);
    }

    #[test]
    fn lru_evicts_least_recently_used() {
        let mut m = hash(MapKind::LruHash, 3);
        for k in 1u32..=3 {
            m.update(&k.to_le_bytes(), &[k as u8; 8], 0, None, 1)
                .unwrap();
        }
        // Use 1, so 2 is now the least recently used.
        assert!(m.find(&1u32.to_le_bytes(), 0).is_some());
        m.update(&4u32.to_le_bytes(), &[4; 8], 0, None, 1).unwrap();
        let keys: Vec<u32> = m
            .keys()
            .iter()
            .map(|k| u32::from_le_bytes(k[..4].try_into().unwrap()))
            .collect();
        assert_eq!(keys, vec![1, 3, 4]);
        // Updating an existing key also makes it recent: 3 goes next.
        m.update(&1u32.to_le_bytes(), &[9; 8], 0, None, 1).unwrap();
        m.update(&5u32.to_le_bytes(), &[5; 8], 0, None, 1).unwrap();
        let keys: Vec<u32> = m
            .keys()
            .iter()
            .map(|k| u32::from_le_bytes(k[..4].try_into().unwrap()))
            .collect();
        assert_eq!(keys, vec![1, 4, 5]);
        m.delete(&4u32.to_le_bytes()).unwrap();
        m.update(&6u32.to_le_bytes(), &[6; 8], 0, None, 1).unwrap();
        assert_eq!(m.keys().len(), 3);
    }

    #[test]
    fn arrays_and_long_keys() {
        let mut a = Map::new("a".into(), MapKind::Array, 4, 4, 4, false, 1);
        assert_eq!(
            a.update(&4u32.to_le_bytes(), &[1; 4], 0, None, 1),
            Err(E2BIG)
        );
        assert_eq!(
            a.update(&0u32.to_le_bytes(), &[1; 4], BPF_NOEXIST, None, 1),
            Err(EEXIST)
        );
        assert_eq!(a.delete(&0u32.to_le_bytes()), Err(EINVAL));
        assert_eq!(a.find(&9u32.to_le_bytes(), 0), None);
        assert_eq!(a.keys().len(), 4);
        let mut p = Map::new("p".into(), MapKind::PercpuArray, 4, 4, 2, false, 3);
        p.update(&1u32.to_le_bytes(), &[7; 4], 0, None, 3).unwrap();
        p.update(&1u32.to_le_bytes(), &[8; 4], 0, Some(2), 3)
            .unwrap();
        assert_eq!(p.value(p.peek(&1u32.to_le_bytes(), 0).unwrap()), &[7; 4]);
        assert_eq!(p.value(p.peek(&1u32.to_le_bytes(), 2).unwrap()), &[8; 4]);
        let mut h = Map::new("h".into(), MapKind::Hash, 12, 4, 8, false, 1);
        h.update(&[1; 12], &[1; 4], 0, None, 1).unwrap();
        assert!(h.peek(&[1; 12], 0).is_some());
        assert!(h.peek(&[2; 12], 0).is_none());
    }

    /// A stack-trace map gives each distinct stack one id, from 0, and refuses new stacks
    /// once full (`EEXIST`), while stacks it holds still get their id.
    #[test]
    fn stack_trace_ids() {
        let mut m = Map::new("s".into(), MapKind::StackTrace, 4, 16, 2, true, 1);
        assert_eq!(m.record_stack(&[1, 2]), Ok(0));
        assert_eq!(m.record_stack(&[1]), Ok(1), "a prefix is another stack");
        assert_eq!(m.record_stack(&[1, 2]), Ok(0));
        assert_eq!(m.record_stack(&[3, 4]), Err(EEXIST));
        assert_eq!(m.record_stack(&[1, 2, 99]), Ok(0), "frames past the depth are not kept");
        assert_eq!(m.peek(&1u32.to_le_bytes(), 0).map(|s| m.value(s).to_vec()), Some([1u64.to_le_bytes(), [0; 8]].concat()));
        // Programs cannot look stacks up or write them.
        assert_eq!(m.find(&0u32.to_le_bytes(), 0), None);
        assert_eq!(m.update(&0u32.to_le_bytes(), &[0; 16], 0, None, 1), Err(EINVAL));
    }
}
