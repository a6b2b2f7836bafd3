//! The set of source files a compilation reads, with line tables for positions.
//!
//! Columns are counted in Unicode scalar values from 1, as editors and compilers print
//! them; the LSP crate converts to UTF-16 itself.

use crate::Span;

/// Index of a file in [`Files`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct FileId(pub u32);

/// One source file: its display name, its text and where its lines start.
#[derive(Clone, Debug)]
pub struct SourceFile {
    /// The name diagnostics print (a path as the user gave it, or `<stdlib>/hist.scl`).
    pub name: String,
    /// The full text.
    pub text: String,
    line_starts: Vec<u32>,
    /// Characters before each [`CHECKPOINT`]-byte block: a column is found by counting at
    /// most one block, however long its line.
    chars_before_block: Vec<u32>,
}

/// Bytes per block of [`SourceFile`]'s character index.
const CHECKPOINT: usize = 4096;

/// A 1-based line and column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LineCol {
    /// Line number, from 1.
    pub line: u32,
    /// Column in characters, from 1.
    pub column: u32,
}

impl SourceFile {
    /// Builds the line table of `text`.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> SourceFile {
        let text = text.into();
        let mut line_starts = vec![0u32];
        line_starts.extend(
            text.bytes().enumerate().filter(|&(_, b)| b == b'\n').map(|(i, _)| (i + 1) as u32),
        );
        let mut chars_before_block = Vec::with_capacity(text.len() / CHECKPOINT + 1);
        let mut chars = 0u32;
        for block in text.as_bytes().chunks(CHECKPOINT) {
            chars_before_block.push(chars);
            chars += block.iter().filter(|&&b| b & 0xc0 != 0x80).count() as u32;
        }
        SourceFile { name: name.into(), text, line_starts, chars_before_block }
    }

    /// The number of characters before byte `offset` (a char boundary).
    fn chars_before(&self, offset: usize) -> usize {
        let block = offset / CHECKPOINT;
        let base = self.chars_before_block.get(block).copied().unwrap_or(0) as usize;
        let start = (block * CHECKPOINT).min(offset);
        base + self.text.as_bytes()[start..offset].iter().filter(|&&b| b & 0xc0 != 0x80).count()
    }

    /// Byte offsets at which lines start; the first is 0.
    pub fn line_starts(&self) -> &[u32] {
        &self.line_starts
    }

    /// The 0-based line holding byte `offset`.
    pub fn line_index(&self, offset: u32) -> usize {
        match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        }
    }

    /// The line and column of byte `offset` (clamped to the text and to a char boundary).
    pub fn line_col(&self, offset: u32) -> LineCol {
        let mut offset = (offset as usize).min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.line_index(offset as u32);
        let start = self.line_starts[line] as usize;
        let column = self.chars_before(offset) - self.chars_before(start) + 1;
        LineCol { line: line as u32 + 1, column: column as u32 }
    }

    /// The text of 0-based line `line`, without its line ending.
    pub fn line_text(&self, line: usize) -> &str {
        let start = self.line_starts[line] as usize;
        let end = self.line_starts.get(line + 1).map_or(self.text.len(), |&e| e as usize);
        self.text[start..end].trim_end_matches(['\n', '\r'])
    }

    /// The source text under `span`.
    pub fn slice(&self, span: Span) -> &str {
        self.text.get(span.range()).unwrap_or("")
    }
}

/// All files of one compilation.
#[derive(Clone, Debug, Default)]
pub struct Files {
    files: Vec<SourceFile>,
}

impl Files {
    /// No files yet.
    pub fn new() -> Files {
        Files::default()
    }

    /// Adds a file and returns its id.
    pub fn add(&mut self, name: impl Into<String>, text: impl Into<String>) -> FileId {
        self.files.push(SourceFile::new(name, text));
        FileId((self.files.len() - 1) as u32)
    }

    /// The file with this id.
    ///
    /// Ids come only from [`Files::add`] on the same value, so an unknown id is a bug in
    /// the caller.
    pub fn get(&self, id: FileId) -> &SourceFile {
        &self.files[id.0 as usize]
    }

    /// Finds a file by its name.
    pub fn find(&self, name: &str) -> Option<FileId> {
        self.files.iter().position(|f| f.name == name).map(|i| FileId(i as u32))
    }

    /// Every file with its id.
    pub fn iter(&self) -> impl Iterator<Item = (FileId, &SourceFile)> {
        self.files.iter().enumerate().map(|(i, f)| (FileId(i as u32), f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The block index gives the same columns as counting from the line start, for text
    /// with long lines and characters of every width across block boundaries.
    #[test]
    fn columns_from_the_block_index_match_counting() {
        let pieces = ["a", "é", "€", "😀", "\n", "bcd", "\t"];
        let mut x = 7u64;
        let mut text = String::new();
        while text.len() < 3 * CHECKPOINT + 100 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            // Mostly one long line, with a few line ends.
            let i = (x >> 60) as usize % pieces.len();
            text.push_str(if i == 4 && !x.is_multiple_of(16) { "a" } else { pieces[i] });
        }
        let f = SourceFile::new("t", text.clone());
        for (offset, _) in text.char_indices().step_by(37) {
            let line = f.line_index(offset as u32);
            let start = f.line_starts()[line] as usize;
            let expected = text[start..offset].chars().count() as u32 + 1;
            assert_eq!(f.line_col(offset as u32).column, expected, "at {offset}");
        }
    }

    #[test]
    fn line_and_column_count_characters() {
        let f = SourceFile::new("a.scl", "ab\r\nµx\n\ty");
        assert_eq!(f.line_col(0), LineCol { line: 1, column: 1 });
        assert_eq!(f.line_col(4), LineCol { line: 2, column: 1 });
        // `µ` is two bytes: `x` is the second character.
        assert_eq!(f.line_col(6), LineCol { line: 2, column: 2 });
        assert_eq!(f.line_col(9), LineCol { line: 3, column: 2 });
        assert_eq!(f.line_text(0), "ab");
        // An offset inside a character is moved back to its start.
        assert_eq!(f.line_col(5), LineCol { line: 2, column: 1 });
        assert_eq!(f.line_col(999), LineCol { line: 3, column: 3 });
    }
}
