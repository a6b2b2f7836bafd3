//! Every byte `sclc` writes to standard output or standard error goes through here.
//!
//! `println!` and `eprintln!` panic when the write fails (a closed pipe, a full disk), and
//! `let _ = writeln!(...)` loses the failure. Instead, [`stdout`] and [`stderr`] are writers
//! that remember the first failure of their stream and refuse every later write, so a
//! command stops producing output the moment its reader is gone; `outln!`
//! and `errln!` are the print macros over them (a tidy test keeps the
//! std ones out of this crate). Long-running commands poll [`broken`] to stop early (`sclc
//! run` detaches its programs then). When the command ends, [`exit_code`] flushes stdout
//! and turns a failure into the exit status:
//!
//! - a closed pipe (EPIPE) on either stream ends the command quietly with status 141, what a
//!   shell reports for a tool killed by SIGPIPE (`cat`, `grep`, `git`), so `set -o pipefail`
//!   scripts see `sclc ... | head` as they see the others;
//! - any other write error (ENOSPC on `/dev/full`, EIO) is status 2, with a message on
//!   stderr when stderr still works.

use std::io::{self, Write};
use std::sync::atomic::{AtomicI32, Ordering};

/// The exit status of a command cut short by a closed pipe: 128 + SIGPIPE.
pub const CLOSED_PIPE_STATUS: u8 = 141;

/// A standard stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Out,
    /// Standard error.
    Err,
}

/// No failure yet.
const OK: i32 = 0;
/// A failure without an OS error number.
const OTHER: i32 = -1;

static OUT_FAILURE: AtomicI32 = AtomicI32::new(OK);
static ERR_FAILURE: AtomicI32 = AtomicI32::new(OK);

fn slot(stream: Stream) -> &'static AtomicI32 {
    match stream {
        Stream::Out => &OUT_FAILURE,
        Stream::Err => &ERR_FAILURE,
    }
}

/// The first write failure of `stream`, if any.
pub fn failure(stream: Stream) -> Option<io::Error> {
    match slot(stream).load(Ordering::Relaxed) {
        OK => None,
        OTHER => Some(io::Error::other("write failed")),
        errno => Some(io::Error::from_raw_os_error(errno)),
    }
}

/// True once a write to either stream has failed: the command should stop.
pub fn broken() -> bool {
    failure(Stream::Out).is_some() || failure(Stream::Err).is_some()
}

fn record(stream: Stream, e: &io::Error) {
    if e.kind() == io::ErrorKind::Interrupted {
        return;
    }
    let code = match e.raw_os_error() {
        Some(n) if n > 0 => n,
        _ if e.kind() == io::ErrorKind::BrokenPipe => libc::EPIPE,
        _ => OTHER,
    };
    let _ = slot(stream).compare_exchange(OK, code, Ordering::Relaxed, Ordering::Relaxed);
}

/// A writer to one standard stream that records its first failure and fails every write
/// after it (see the module documentation).
#[derive(Clone, Copy, Debug)]
pub struct Writer(Stream);

/// Standard output.
pub fn stdout() -> Writer {
    Writer(Stream::Out)
}

/// Standard error.
pub fn stderr() -> Writer {
    Writer(Stream::Err)
}

impl Writer {
    fn guard<T>(&self, f: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
        if let Some(e) = failure(self.0) {
            return Err(e);
        }
        let r = f();
        if let Err(e) = &r {
            record(self.0, e);
        }
        r
    }
}

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.0 {
            Stream::Out => self.guard(|| io::stdout().write(buf)),
            Stream::Err => self.guard(|| io::stderr().write(buf)),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self.0 {
            Stream::Out => self.guard(|| io::stdout().lock().write_all(buf)),
            Stream::Err => self.guard(|| io::stderr().lock().write_all(buf)),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.0 {
            Stream::Out => self.guard(|| io::stdout().flush()),
            Stream::Err => self.guard(|| io::stderr().flush()),
        }
    }
}

/// Writes formatted text to stdout; a failure is recorded, never a panic.
macro_rules! out {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::write!($crate::output::stdout(), $($arg)*);
    }};
}

/// Writes a line to stdout; a failure is recorded, never a panic.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::writeln!($crate::output::stdout(), $($arg)*);
    }};
}

/// Writes a line to stderr; a failure is recorded, never a panic.
macro_rules! errln {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::writeln!($crate::output::stderr(), $($arg)*);
    }};
}

/// Writes formatted text to stderr; a failure is recorded, never a panic.
macro_rules! err {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::write!($crate::output::stderr(), $($arg)*);
    }};
}

/// True when stdout is a pipe or socket whose reader has gone, found without writing to it
/// (`poll` reports POLLERR or POLLHUP on it): `sclc run` checks it between refreshes. It
/// counts as a closed pipe for the exit status.
pub fn stdout_reader_gone() -> bool {
    let mut fd = libc::pollfd { fd: 1, events: 0, revents: 0 };
    // SAFETY: one valid pollfd, no timeout.
    let n = unsafe { libc::poll(&mut fd, 1, 0) };
    let gone = n == 1 && fd.revents & (libc::POLLERR | libc::POLLHUP) != 0;
    if gone {
        record(Stream::Out, &io::Error::from(io::ErrorKind::BrokenPipe));
    }
    gone
}

/// Renders diagnostics to stderr (buffered: the renderers write in small pieces). Returns
/// false when stderr failed; the failure is recorded for the exit status.
pub fn diagnostics(
    files: &scl_diagnostics::Files,
    diagnostics: &[scl_diagnostics::Diagnostic],
    format: scl_diagnostics::render::Format,
    color: bool,
) -> bool {
    let mut w = io::BufWriter::with_capacity(64 << 10, stderr());
    scl_diagnostics::render::emit(&mut w, files, diagnostics, format, color).and_then(|()| w.flush()).is_ok()
}

/// Records that stdout's reader has gone, for a closed pipe met outside [`stdout`] (`-o
/// /dev/stdout` written in place).
pub fn record_closed_pipe() {
    record(Stream::Out, &io::Error::from_raw_os_error(libc::EPIPE));
}

/// Records a failure of stdout met outside [`stdout`] (the language server's writer).
pub fn record_stdout_failure(e: &io::Error) {
    record(Stream::Out, e);
}

/// Why [`write_file`] did not write.
#[derive(Debug)]
pub enum FileError {
    /// The path is one of the command's inputs (`sclc build p.scl -o p.scl`).
    IsInput,
    /// The path is a directory.
    Directory,
    /// The system refused.
    Io(io::Error),
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FileError::IsInput => write!(f, "it is an input of this command; refusing to overwrite it"),
            FileError::Directory => write!(f, "it is a directory"),
            FileError::Io(e) => write!(f, "{e}"),
        }
    }
}

/// Writes `bytes` to the file at `path`, an output the user named, without destroying what
/// is there:
///
/// - a regular file, or nothing yet: written to a new temporary file beside it and renamed
///   over it, so a failed or interrupted write never leaves a partial file;
/// - anything else (a device such as `/dev/null`, a FIFO, a symlink such as `/dev/stdout`):
///   opened and written in place, as a shell's `>` would, so the node or link stays;
/// - one of `inputs` (the same file, by device and inode, through any link): refused.
pub fn write_file(path: &std::path::Path, bytes: &[u8], inputs: &[&std::path::Path]) -> Result<(), FileError> {
    use std::os::unix::fs::MetadataExt;
    if let Ok(target) = std::fs::metadata(path) {
        if target.is_dir() {
            return Err(FileError::Directory);
        }
        let same = |i: &&std::path::Path| std::fs::metadata(i).is_ok_and(|m| m.dev() == target.dev() && m.ino() == target.ino());
        if inputs.iter().any(same) {
            return Err(FileError::IsInput);
        }
    }
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => replace_atomically(path, bytes),
        Err(e) => Err(FileError::Io(e)),
        Ok(m) if m.file_type().is_file() => replace_atomically(path, bytes),
        Ok(_) => {
            let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).open(path).map_err(FileError::Io)?;
            f.write_all(bytes).and_then(|()| f.flush()).map_err(FileError::Io)
        }
    }
}

/// Writes a new temporary file beside `path`, then renames it over `path`.
fn replace_atomically(path: &std::path::Path, bytes: &[u8]) -> Result<(), FileError> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
    let mut attempt = 0u32;
    let (tmp, mut file) = loop {
        let tmp = dir.join(format!(".{name}.{}.{attempt}.tmp", std::process::id()));
        // `create_new`: never write through a file or link someone left at that name.
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(f) => break (tmp, f),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 100 => attempt += 1,
            Err(e) => return Err(FileError::Io(e)),
        }
    };
    let result = file.write_all(bytes).and_then(|()| file.sync_data()).and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(FileError::Io)
}

/// The exit status once a command has returned `status`: flushes stdout, then lets a write
/// failure decide (141 for a closed pipe, 2 with a message for any other), else `status`.
pub fn exit_code(status: u8) -> u8 {
    let _ = stdout().flush();
    let _ = stderr().flush();
    let epipe = |s| failure(s).is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe);
    if epipe(Stream::Out) || epipe(Stream::Err) {
        return CLOSED_PIPE_STATUS;
    }
    if let Some(e) = failure(Stream::Out) {
        errln!("sclc: error: cannot write to standard output: {e}");
        return 2;
    }
    if failure(Stream::Err).is_some() {
        return 2;
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failure_is_kept_and_interruptions_are_not_failures() {
        record(Stream::Err, &io::Error::from(io::ErrorKind::Interrupted));
        assert!(failure(Stream::Err).is_none());
        record(Stream::Err, &io::Error::from_raw_os_error(libc::EPIPE));
        record(Stream::Err, &io::Error::from_raw_os_error(28));
        assert_eq!(failure(Stream::Err).map(|e| e.kind()), Some(io::ErrorKind::BrokenPipe));
        // Later writes fail at once, without touching the stream.
        assert!(stderr().write_all(b"x").is_err());
        assert!(broken());
    }
}
