//! The trace file: a compact, versioned, little-endian binary format (docs/trace-format.md
//! describes it byte by byte).
//!
//! Layout: magic and version, a header (start time, topology), the events (one tag byte,
//! then LEB128 varints: a zigzag timestamp delta, an index into a lock table and a thread
//! table that grow as the file introduces locks and threads, the flags and the CPU), an end
//! tag, and a trailer (end time, lost events, event count, lock names, comms) closed by an
//! FNV-1a 64 checksum of every byte before it. A reader that meets the end of the input
//! anywhere before the checksum's last byte reports a truncated file, never a shorter trace.
//!
//! The writer streams: its memory is the lock and thread tables and a 64 KiB buffer. The
//! reader never allocates from a length or count field: counts are checked against
//! [`Limits`] and containers grow only as bytes actually arrive.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::Path;

use crate::{CpuPlace, Event, EventKind, Topology, Trace};

/// The file's first eight bytes.
pub const MAGIC: [u8; 8] = *b"SCLTRACE";
/// The format version this crate writes and the only one it reads.
pub const VERSION: u16 = 1;

/// Tag bits of an event record (docs/trace-format.md §3).
const TAG_KIND: u8 = 0x07;
const TAG_FAILED: u8 = 0x08;
const TAG_NEW_LOCK: u8 = 0x10;
const TAG_NEW_THREAD: u8 = 0x20;
const TAG_RESERVED: u8 = 0x40;
/// The tag that ends the events.
const TAG_END: u8 = 0x80;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
const BUF: usize = 64 * 1024;

fn kind_code(k: EventKind) -> u8 {
    match k {
        EventKind::ContentionBegin => 0,
        EventKind::ContentionEnd => 1,
        EventKind::ToAcquire => 2,
        EventKind::Acquired => 3,
        EventKind::ToRelease => 4,
        EventKind::Released => 5,
    }
}

fn kind_from(code: u8) -> Option<EventKind> {
    Some(match code {
        0 => EventKind::ContentionBegin,
        1 => EventKind::ContentionEnd,
        2 => EventKind::ToAcquire,
        3 => EventKind::Acquired,
        4 => EventKind::ToRelease,
        5 => EventKind::Released,
        _ => return None,
    })
}

fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Writes a trace as it is recorded: the header at [`Writer::new`], each event at
/// [`Writer::event`], the trailer at [`Writer::finish`].
pub struct Writer<W: Write> {
    w: W,
    buf: Vec<u8>,
    hash: u64,
    written: u64,
    events: u64,
    prev_ts: u64,
    locks: HashMap<(u64, u32), u64>,
    threads: HashMap<(u32, u32), u64>,
}

impl<W: Write> Writer<W> {
    /// Writes the magic, the version and the header.
    pub fn new(w: W, topology: &Topology, start_ns: u64) -> io::Result<Self> {
        let mut me = Writer {
            w,
            buf: Vec::with_capacity(BUF),
            hash: FNV_OFFSET,
            written: 0,
            events: 0,
            prev_ts: start_ns,
            locks: HashMap::new(),
            threads: HashMap::new(),
        };
        me.buf.extend_from_slice(&MAGIC);
        me.buf.extend_from_slice(&VERSION.to_le_bytes());
        me.buf.extend_from_slice(&0u16.to_le_bytes());
        me.buf.extend_from_slice(&start_ns.to_le_bytes());
        put_varint(&mut me.buf, topology.cpus.len() as u64);
        for cpu in &topology.cpus {
            match cpu {
                None => me.buf.push(0),
                Some(p) => {
                    me.buf.push(1);
                    put_varint(&mut me.buf, u64::from(p.node));
                    put_varint(&mut me.buf, u64::from(p.socket));
                }
            }
        }
        me.flush_buf()?;
        Ok(me)
    }

    fn flush_buf(&mut self) -> io::Result<()> {
        self.hash = fnv(self.hash, &self.buf);
        self.written += self.buf.len() as u64;
        let r = self.w.write_all(&self.buf);
        self.buf.clear();
        r
    }

    /// Appends one event. Events should come in timestamp order (the deltas are smallest
    /// then), but any order round-trips.
    pub fn event(&mut self, e: &Event) -> io::Result<()> {
        let mut tag = kind_code(e.kind);
        if !e.ok {
            tag |= TAG_FAILED;
        }
        let next_lock = self.locks.len() as u64;
        let lock = *self.locks.entry((e.lock, e.lock_kind)).or_insert(next_lock);
        if lock == next_lock {
            tag |= TAG_NEW_LOCK;
        }
        let next_thread = self.threads.len() as u64;
        let thread = *self.threads.entry((e.tid, e.pid)).or_insert(next_thread);
        if thread == next_thread {
            tag |= TAG_NEW_THREAD;
        }
        self.buf.push(tag);
        put_varint(&mut self.buf, zigzag(e.ts.wrapping_sub(self.prev_ts) as i64));
        self.prev_ts = e.ts;
        if lock == next_lock {
            put_varint(&mut self.buf, e.lock);
            put_varint(&mut self.buf, u64::from(e.lock_kind));
        } else {
            put_varint(&mut self.buf, lock);
        }
        if thread == next_thread {
            put_varint(&mut self.buf, u64::from(e.tid));
            put_varint(&mut self.buf, u64::from(e.pid));
        } else {
            put_varint(&mut self.buf, thread);
        }
        put_varint(&mut self.buf, u64::from(e.flags));
        put_varint(&mut self.buf, u64::from(e.cpu));
        self.events += 1;
        if self.buf.len() >= BUF {
            self.flush_buf()?;
        }
        Ok(())
    }

    /// Bytes handed to the underlying writer or buffered so far (the file's size if
    /// [`Writer::finish`] wrote no trailer).
    pub fn bytes_written(&self) -> u64 {
        self.written + self.buf.len() as u64
    }

    /// Events written so far.
    pub fn events_written(&self) -> u64 {
        self.events
    }

    /// Distinct locks (address and kind) seen so far.
    pub fn lock_count(&self) -> u64 {
        self.locks.len() as u64
    }

    /// Distinct threads (tid and pid) seen so far.
    pub fn thread_count(&self) -> u64 {
        self.threads.len() as u64
    }

    /// Gives up: returns the underlying writer without writing the buffered bytes or the
    /// trailer (what it holds is not a trace; the caller removes it).
    pub fn into_inner(self) -> W {
        self.w
    }

    /// Writes the end tag and the trailer, flushes, and returns the underlying writer.
    pub fn finish(
        mut self,
        end_ns: u64,
        lost: u64,
        lock_names: &[(u64, String)],
        comms: &[(u32, String)],
    ) -> io::Result<W> {
        self.buf.push(TAG_END);
        self.buf.extend_from_slice(&end_ns.to_le_bytes());
        self.buf.extend_from_slice(&lost.to_le_bytes());
        self.buf.extend_from_slice(&self.events.to_le_bytes());
        put_varint(&mut self.buf, lock_names.len() as u64);
        for (addr, name) in lock_names {
            self.buf.extend_from_slice(&addr.to_le_bytes());
            put_varint(&mut self.buf, name.len() as u64);
            self.buf.extend_from_slice(name.as_bytes());
            if self.buf.len() >= BUF {
                self.flush_buf()?;
            }
        }
        put_varint(&mut self.buf, comms.len() as u64);
        for (tid, name) in comms {
            self.buf.extend_from_slice(&tid.to_le_bytes());
            put_varint(&mut self.buf, name.len() as u64);
            self.buf.extend_from_slice(name.as_bytes());
            if self.buf.len() >= BUF {
                self.flush_buf()?;
            }
        }
        self.flush_buf()?;
        let sum = self.hash;
        self.w.write_all(&sum.to_le_bytes())?;
        self.written += 8;
        self.w.flush()?;
        Ok(self.w)
    }
}

/// Writes a whole trace.
pub fn write(w: impl Write, t: &Trace) -> io::Result<()> {
    let mut wr = Writer::new(w, &t.topology, t.start_ns)?;
    for e in &t.events {
        wr.event(e)?;
    }
    wr.finish(t.end_ns, t.lost, &t.lock_names, &t.comms)?;
    Ok(())
}

/// What the reader accepts; anything beyond is refused with [`ReadError::Limit`] before it
/// is allocated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Events (each takes 40 bytes in memory).
    pub max_events: u64,
    /// Distinct locks in the lock table.
    pub max_locks: u64,
    /// Distinct threads in the thread table.
    pub max_threads: u64,
    /// Entries of the topology (the highest CPU number plus one).
    pub max_cpus: u64,
    /// Lock names and comms, each.
    pub max_names: u64,
    /// Bytes of one lock name or comm.
    pub max_name_len: u64,
}

impl Default for Limits {
    /// About a gigabyte of memory at most: 16 Mi events, 1 Mi locks, threads and names,
    /// 64 Ki CPUs, names of 4 KiB.
    fn default() -> Self {
        Limits {
            max_events: 16 << 20,
            max_locks: 1 << 20,
            max_threads: 1 << 20,
            max_cpus: 1 << 16,
            max_names: 1 << 20,
            max_name_len: 4096,
        }
    }
}

/// Why a file is not read as a trace. Display is one line saying what and where.
#[derive(Debug)]
pub enum ReadError {
    /// Reading failed (not a format problem).
    Io(io::Error),
    /// The file does not start with the magic (`empty` when it has no byte at all).
    NotATrace {
        /// The file is empty.
        empty: bool,
    },
    /// A version this reader does not know.
    Version(u16),
    /// The input ends before the trailer's checksum.
    Truncated {
        /// Events read completely before the end.
        events: u64,
        /// Bytes read.
        offset: u64,
    },
    /// A field holds a value no writer writes.
    Corrupt {
        /// What is wrong.
        what: String,
        /// Events read before it.
        events: u64,
        /// The byte offset where the bad field ends.
        offset: u64,
    },
    /// The checksum of the bytes read is not the one the trailer holds.
    Checksum {
        /// The trailer's.
        stored: u64,
        /// Computed over the file.
        computed: u64,
    },
    /// The trace holds more of something than [`Limits`] allows.
    Limit {
        /// What (`events`, `locks`, ...).
        what: &'static str,
        /// The limit.
        limit: u64,
        /// The byte offset where it was exceeded.
        offset: u64,
    },
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "cannot read the trace: {e}"),
            ReadError::NotATrace { empty: true } => {
                write!(f, "not a trace: the file is empty")
            }
            ReadError::NotATrace { empty: false } => write!(
                f,
                "not a trace: the file does not start with `SCLTRACE` (sclc record writes traces)"
            ),
            ReadError::Version(v) => write!(
                f,
                "trace format version {v} is not supported (this sclc reads version {VERSION})"
            ),
            ReadError::Truncated { events, offset } => write!(
                f,
                "truncated trace: the file ends after {events} events (byte {offset}) before its trailer; \
                 was the recording killed?"
            ),
            ReadError::Corrupt { what, events, offset } => {
                write!(f, "corrupt trace: {what} at byte {offset} (after {events} events)")
            }
            ReadError::Checksum { stored, computed } => write!(
                f,
                "corrupt trace: checksum mismatch (trailer says {stored:#018x}, the bytes give {computed:#018x})"
            ),
            ReadError::Limit { what, limit, offset } => write!(
                f,
                "trace too large: more than {limit} {what} (at byte {offset}), the limit this reader was given"
            ),
        }
    }
}

impl std::error::Error for ReadError {}

/// A reader that hashes and counts what it reads.
struct Input<R: Read> {
    r: R,
    hash: u64,
    offset: u64,
    events: u64,
}

impl<R: Read> Input<R> {
    fn truncated(&self) -> ReadError {
        ReadError::Truncated { events: self.events, offset: self.offset }
    }

    fn corrupt(&self, what: impl Into<String>) -> ReadError {
        ReadError::Corrupt { what: what.into(), events: self.events, offset: self.offset }
    }

    fn limit(&self, what: &'static str, limit: u64) -> ReadError {
        ReadError::Limit { what, limit, offset: self.offset }
    }

    /// Fills `buf` completely, or reports a truncated file.
    fn exact(&mut self, buf: &mut [u8], hash: bool) -> Result<(), ReadError> {
        let mut got = 0;
        while got < buf.len() {
            match self.r.read(&mut buf[got..]) {
                Ok(0) => {
                    self.offset += got as u64;
                    return Err(self.truncated());
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ReadError::Io(e)),
            }
        }
        if hash {
            self.hash = fnv(self.hash, buf);
        }
        self.offset += buf.len() as u64;
        Ok(())
    }

    fn u8(&mut self) -> Result<u8, ReadError> {
        let mut b = [0u8; 1];
        self.exact(&mut b, true)?;
        Ok(b[0])
    }

    fn u16(&mut self) -> Result<u16, ReadError> {
        let mut b = [0u8; 2];
        self.exact(&mut b, true)?;
        Ok(u16::from_le_bytes(b))
    }

    fn u32(&mut self) -> Result<u32, ReadError> {
        let mut b = [0u8; 4];
        self.exact(&mut b, true)?;
        Ok(u32::from_le_bytes(b))
    }

    fn u64(&mut self) -> Result<u64, ReadError> {
        let mut b = [0u8; 8];
        self.exact(&mut b, true)?;
        Ok(u64::from_le_bytes(b))
    }

    fn varint(&mut self, what: &str) -> Result<u64, ReadError> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = self.u8()?;
            if i == 9 && b > 1 {
                return Err(self.corrupt(format!("{what}: a varint longer than 64 bits")));
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        unreachable!("the tenth byte either ends the varint or is refused")
    }

    fn varint32(&mut self, what: &str) -> Result<u32, ReadError> {
        let v = self.varint(what)?;
        u32::try_from(v).map_err(|_| self.corrupt(format!("{what} {v} does not fit 32 bits")))
    }

    /// A count field, checked against its limit (nothing is allocated from it).
    fn count(&mut self, what: &'static str, limit: u64) -> Result<u64, ReadError> {
        let n = self.varint(what)?;
        if n > limit {
            return Err(self.limit(what, limit));
        }
        Ok(n)
    }

    fn string(&mut self, what: &'static str, limits: &Limits) -> Result<String, ReadError> {
        let len = self.varint(what)?;
        if len > limits.max_name_len {
            return Err(self.limit("bytes in a name", limits.max_name_len));
        }
        // Bounded by the limit just checked.
        let mut b = vec![0u8; len as usize];
        self.exact(&mut b, true)?;
        String::from_utf8(b).map_err(|_| self.corrupt(format!("{what} is not UTF-8")))
    }
}

/// Reads a whole trace, refusing anything a [`Writer`] did not finish.
pub fn read(r: impl Read, limits: &Limits) -> Result<Trace, ReadError> {
    let mut inp = Input { r, hash: FNV_OFFSET, offset: 0, events: 0 };
    let mut magic = [0u8; 8];
    // A short or empty file that is not a trace is "not a trace", not "truncated".
    let mut got = 0;
    while got < magic.len() {
        match inp.r.read(&mut magic[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ReadError::Io(e)),
        }
    }
    if got == 0 {
        return Err(ReadError::NotATrace { empty: true });
    }
    if magic[..got] != MAGIC[..got] {
        return Err(ReadError::NotATrace { empty: false });
    }
    inp.offset = got as u64;
    if got < magic.len() {
        return Err(inp.truncated());
    }
    inp.hash = fnv(inp.hash, &magic);
    let version = inp.u16()?;
    if version != VERSION {
        return Err(ReadError::Version(version));
    }
    let hflags = inp.u16()?;
    if hflags != 0 {
        return Err(inp.corrupt(format!("header flags {hflags:#x} (version 1 has none)")));
    }
    let start_ns = inp.u64()?;
    let ncpus = inp.count("CPUs", limits.max_cpus)?;
    let mut cpus = Vec::new();
    for _ in 0..ncpus {
        match inp.u8()? {
            0 => cpus.push(None),
            1 => {
                let node = inp.varint32("a CPU's node")?;
                let socket = inp.varint32("a CPU's socket")?;
                cpus.push(Some(CpuPlace { node, socket }));
            }
            b => return Err(inp.corrupt(format!("CPU entry tag {b} (0 or 1 expected)"))),
        }
    }
    let mut locks: Vec<(u64, u32)> = Vec::new();
    let mut threads: Vec<(u32, u32)> = Vec::new();
    let mut events = Vec::new();
    let mut prev_ts = start_ns;
    loop {
        let tag = inp.u8()?;
        if tag == TAG_END {
            break;
        }
        if tag & (TAG_RESERVED | TAG_END) != 0 {
            return Err(inp.corrupt(format!("event tag {tag:#04x}")));
        }
        let Some(kind) = kind_from(tag & TAG_KIND) else {
            return Err(inp.corrupt(format!("event kind {}", tag & TAG_KIND)));
        };
        if inp.events >= limits.max_events {
            return Err(inp.limit("events", limits.max_events));
        }
        let ts = prev_ts.wrapping_add(unzigzag(inp.varint("a timestamp")?) as u64);
        prev_ts = ts;
        let (lock, lock_kind) = if tag & TAG_NEW_LOCK != 0 {
            let addr = inp.varint("a lock address")?;
            let k = inp.varint32("a lock kind")?;
            if locks.len() as u64 >= limits.max_locks {
                return Err(inp.limit("locks", limits.max_locks));
            }
            locks.push((addr, k));
            (addr, k)
        } else {
            let i = inp.varint("a lock index")?;
            match locks.get(i as usize) {
                Some(&l) if i < locks.len() as u64 => l,
                _ => {
                    return Err(inp.corrupt(format!(
                        "lock index {i} beyond the {} locks defined",
                        locks.len()
                    )));
                }
            }
        };
        let (tid, pid) = if tag & TAG_NEW_THREAD != 0 {
            let tid = inp.varint32("a tid")?;
            let pid = inp.varint32("a pid")?;
            if threads.len() as u64 >= limits.max_threads {
                return Err(inp.limit("threads", limits.max_threads));
            }
            threads.push((tid, pid));
            (tid, pid)
        } else {
            let i = inp.varint("a thread index")?;
            match threads.get(i as usize) {
                Some(&t) if i < threads.len() as u64 => t,
                _ => {
                    return Err(inp.corrupt(format!(
                        "thread index {i} beyond the {} threads defined",
                        threads.len()
                    )));
                }
            }
        };
        let flags = inp.varint32("the flags")?;
        let cpu = inp.varint32("a CPU")?;
        events.push(Event {
            ts,
            kind,
            lock,
            flags,
            lock_kind,
            ok: tag & TAG_FAILED == 0,
            tid,
            pid,
            cpu,
        });
        inp.events += 1;
    }
    let end_ns = inp.u64()?;
    let lost = inp.u64()?;
    let count = inp.u64()?;
    if count != inp.events {
        return Err(inp.corrupt(format!(
            "the trailer counts {count} events but the file holds {}",
            inp.events
        )));
    }
    let n = inp.count("lock names", limits.max_names)?;
    let mut lock_names = Vec::new();
    for _ in 0..n {
        let addr = inp.u64()?;
        lock_names.push((addr, inp.string("a lock name", limits)?));
    }
    let n = inp.count("comms", limits.max_names)?;
    let mut comms = Vec::new();
    for _ in 0..n {
        let tid = inp.u32()?;
        comms.push((tid, inp.string("a comm", limits)?));
    }
    let computed = inp.hash;
    let mut sum = [0u8; 8];
    inp.exact(&mut sum, false)?;
    let stored = u64::from_le_bytes(sum);
    if stored != computed {
        return Err(ReadError::Checksum { stored, computed });
    }
    let mut extra = [0u8; 1];
    loop {
        match inp.r.read(&mut extra) {
            Ok(0) => break,
            Ok(_) => return Err(inp.corrupt("bytes after the checksum")),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ReadError::Io(e)),
        }
    }
    Ok(Trace { topology: Topology { cpus }, start_ns, end_ns, lock_names, comms, lost, events })
}

/// Opens and reads a trace file.
pub fn read_path(path: &Path, limits: &Limits) -> Result<Trace, ReadError> {
    let f = File::open(path).map_err(ReadError::Io)?;
    if f.metadata().map(|m| m.is_dir()).unwrap_or(false) {
        return Err(ReadError::Io(io::Error::new(io::ErrorKind::Other, "is a directory")));
    }
    read(BufReader::with_capacity(BUF, f), limits)
}
