//! Reading policy files from disk, with the environment errors a user should see.

use std::fmt;
use std::path::Path;

/// Largest source file sclc reads. Real policies are a few kilobytes; the limit keeps a
/// stray multi-gigabyte input from exhausting memory.
pub const MAX_SOURCE_BYTES: u64 = 16 << 20;

/// Why a file could not be read as a policy.
#[derive(Debug)]
pub enum SourceError {
    /// The path does not exist or cannot be opened.
    Io(std::io::Error),
    /// The path is a directory.
    Directory,
    /// The file is larger than [`MAX_SOURCE_BYTES`]: its size, when `stat` knew it (a
    /// device such as `/dev/zero` has none; reading stopped at the limit).
    TooLarge(Option<u64>),
    /// The file is not UTF-8; the offset of the first bad byte.
    NotUtf8 { offset: usize, line: usize },
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceError::Io(e) => write!(f, "{e}"),
            SourceError::Directory => write!(f, "it is a directory; give the `.scl` files inside it"),
            SourceError::TooLarge(Some(n)) => write!(
                f,
                "it is {} MiB; policy files are limited to {} MiB",
                n >> 20,
                MAX_SOURCE_BYTES >> 20
            ),
            SourceError::TooLarge(None) => {
                write!(f, "it holds more than {} MiB; policy files are limited to {} MiB", MAX_SOURCE_BYTES >> 20, MAX_SOURCE_BYTES >> 20)
            }
            SourceError::NotUtf8 { offset, line } => {
                write!(f, "it is not UTF-8 text (first invalid byte at offset {offset}, line {line})")
            }
        }
    }
}

/// Reads `path` as UTF-8 text.
pub fn read(path: &Path) -> Result<String, SourceError> {
    let bytes = read_capped(path, MAX_SOURCE_BYTES)?;
    String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..offset].iter().filter(|&&b| b == b'\n').count() + 1;
        SourceError::NotUtf8 { offset, line }
    })
}

/// Reads at most `limit` bytes of `path`. The limit is on the bytes actually read, not on
/// what `stat` says: `/dev/zero`, `/dev/urandom` and a FIFO have no size and never end.
pub fn read_capped(path: &Path, limit: u64) -> Result<Vec<u8>, SourceError> {
    use std::io::Read;
    let meta = std::fs::metadata(path).map_err(SourceError::Io)?;
    if meta.is_dir() {
        return Err(SourceError::Directory);
    }
    if meta.len() > limit {
        return Err(SourceError::TooLarge(Some(meta.len())));
    }
    let file = std::fs::File::open(path).map_err(SourceError::Io)?;
    let mut bytes = Vec::with_capacity(meta.len().min(limit) as usize);
    file.take(limit + 1).read_to_end(&mut bytes).map_err(SourceError::Io)?;
    if bytes.len() as u64 > limit {
        return Err(SourceError::TooLarge(None));
    }
    Ok(bytes)
}

/// Reads a small text input (a machine or workload description) with the same cap.
pub fn read_text(path: &Path) -> Result<String, SourceError> {
    read(path)
}
