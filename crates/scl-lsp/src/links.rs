//! Files the editor can open that are not the user's: the stdlib modules (for go to
//! definition into `hist::record`) and the `sclc explain` page of each diagnostic code
//! (the link on a diagnostic's code).
//!
//! Both are compiled into the binary, and a path to the repository's `stdlib/` is not
//! reliable once `sclc` is installed, so they are written once into a cache directory under
//! the system's temporary directory, named after the version and a hash of the contents:
//! a changed stdlib or page gets a new directory instead of a stale file.

use lsp_types::Uri;
use scl_diagnostics::CodeDoc;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::OnceLock;

/// Every documented diagnostic code, from every stage, as `sclc explain` lists them.
pub fn explain_pages() -> Vec<&'static CodeDoc> {
    let mut docs: Vec<&'static CodeDoc> = scl_syntax::codes::DOCS.iter().collect();
    docs.extend(scl_sema::codes::docs());
    docs.sort_by_key(|d| d.code.code);
    docs
}

/// The Markdown of one code's page, as `sclc explain CODE` prints it.
fn page_text(doc: &CodeDoc) -> String {
    format!("# {} {}\n\n{}\n\n{}", doc.code.code, doc.code.name, doc.summary, doc.explanation)
}

/// The URI of the stdlib module `name`, written to the cache on first use.
pub fn stdlib_uri(name: &str) -> Option<Uri> {
    scl_sema::STDLIB.iter().find(|(n, _)| *n == name)?;
    file_uri(&cache_dir()?.join("stdlib").join(format!("{name}.scl")))
}

/// The URI of the explain page of `code` (such as `E0310`), written to the cache on first use.
pub fn explain_uri(code: &str) -> Option<Uri> {
    explain_pages().iter().find(|d| d.code.code == code)?;
    file_uri(&cache_dir()?.join("explain").join(format!("{code}.md")))
}

/// The cache directory with every stdlib module and explain page written, or `None` if it
/// cannot be written (then the links are left out; nothing else depends on them).
fn cache_dir() -> Option<&'static Path> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("sclc-{}-{:016x}", env!("CARGO_PKG_VERSION"), contents_hash()));
        let stdlib = scl_sema::STDLIB.iter().map(|(n, text)| (PathBuf::from("stdlib").join(format!("{n}.scl")), text.to_string()));
        let pages = explain_pages().into_iter().map(|d| (PathBuf::from("explain").join(format!("{}.md", d.code.code)), page_text(d)));
        for (rel, text) in stdlib.chain(pages) {
            write_once(&dir.join(rel), &text).ok()?;
        }
        Some(dir)
    })
    .as_deref()
}

/// A hash of everything the cache holds, so that each build's cache is its own.
fn contents_hash() -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    scl_sema::STDLIB.hash(&mut h);
    for d in explain_pages() {
        (d.code.code, d.summary, d.explanation).hash(&mut h);
    }
    h.finish()
}

/// Writes `text` to `path` unless it already holds it. Several servers may start at once,
/// so the text goes to a private temporary file first and is renamed into place: a reader
/// never sees half a file.
fn write_once(path: &Path, text: &str) -> std::io::Result<()> {
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    let dir = path.parent().expect("cache paths have a directory");
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{}.{}", path.file_name().and_then(|n| n.to_str()).unwrap_or("f"), std::process::id()));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// The `file://` URI of an absolute path, percent-encoding every byte that is not
/// unreserved in a URI path.
pub fn file_uri(path: &Path) -> Option<Uri> {
    let path = path.to_str()?;
    let mut uri = String::from("file://");
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            uri.push(b as char);
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    Uri::from_str(&uri).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_uris_are_percent_encoded() {
        let uri = file_uri(Path::new("/tmp/a b/ü.scl")).expect("a valid URI");
        assert_eq!(uri.as_str(), "file:///tmp/a%20b/%C3%BC.scl");
    }

    #[test]
    fn stdlib_and_explain_links_point_at_written_files() {
        for (name, text) in scl_sema::STDLIB {
            let uri = stdlib_uri(name).expect("the cache is writable in tests");
            let path = uri.as_str().strip_prefix("file://").expect("a file URI");
            assert_eq!(&std::fs::read_to_string(path).expect("written"), text);
        }
        let uri = explain_uri("E0201").expect("E0201 has a page");
        let page = std::fs::read_to_string(uri.as_str().strip_prefix("file://").unwrap()).unwrap();
        assert!(page.starts_with("# E0201 "), "{page}");
        assert!(explain_uri("E9999").is_none());
        assert!(stdlib_uri("nonexistent").is_none());
    }
}
