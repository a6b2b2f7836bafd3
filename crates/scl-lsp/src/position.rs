//! Byte offsets (the compiler's) to LSP positions (0-based line, UTF-16 column) and back.
//!
//! The compiler's spans are byte offsets and its columns count characters; LSP counts lines
//! from 0 and columns in UTF-16 code units. This is the one place that converts, so an
//! emoji in a comment shifts nothing after it.

use lsp_types::{Position, Range};
use scl_diagnostics::{SourceFile, Span};

/// Byte offsets at which the lines of `text` start; the first is 0.
pub fn line_starts(text: &str) -> Vec<u32> {
    let mut starts = vec![0u32];
    starts.extend(text.bytes().enumerate().filter(|&(_, b)| b == b'\n').map(|(i, _)| (i + 1) as u32));
    starts
}

/// The position of byte `offset` in `text`, whose line starts are `starts`.
///
/// An offset past the end is clamped to the end, and one inside a character is moved back
/// to the character's start, so every span the compiler makes has a position.
pub fn position_in(text: &str, starts: &[u32], offset: usize) -> Position {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let line = match starts.binary_search(&(offset as u32)) {
        Ok(i) => i,
        Err(i) => i - 1,
    };
    let start = starts[line] as usize;
    let character = text[start..offset].encode_utf16().count();
    Position { line: line as u32, character: character as u32 }
}

/// The byte offset of `pos` in `text`, whose line starts are `starts`.
///
/// Editors may send a column past the end of a line or a line past the end of the file
/// (LSP says both mean "the end"); a column inside a surrogate pair rounds down.
pub fn offset_in(text: &str, starts: &[u32], pos: Position) -> usize {
    let Some(&start) = starts.get(pos.line as usize) else {
        return text.len();
    };
    let start = start as usize;
    let mut line_end = starts.get(pos.line as usize + 1).map_or(text.len(), |&s| s as usize - 1);
    // A `\r` before the `\n` belongs to the line break, not to the line.
    if line_end > start && text.as_bytes()[line_end - 1] == b'\r' && line_end < text.len() {
        line_end -= 1;
    }
    let mut units = 0u32;
    for (i, c) in text[start..line_end].char_indices() {
        let next = units + c.len_utf16() as u32;
        if next > pos.character {
            return start + i;
        }
        units = next;
    }
    line_end
}

/// The position of byte `offset` in a file the compiler built.
pub fn position(file: &SourceFile, offset: u32) -> Position {
    position_in(&file.text, file.line_starts(), offset as usize)
}

/// The range of a compiler span in its file.
pub fn range(file: &SourceFile, span: Span) -> Range {
    Range { start: position(file, span.start), end: position(file, span.end) }
}

/// The byte offset of an LSP position in a file the compiler built.
pub fn offset(file: &SourceFile, pos: Position) -> usize {
    offset_in(&file.text, file.line_starts(), pos)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(line: u32, character: u32) -> Position {
        Position { line, character }
    }

    #[test]
    fn columns_count_utf16_units() {
        // `é` is 2 bytes and 1 unit; `😀` is 4 bytes and 2 units.
        let text = "aé😀b\nxy";
        let starts = line_starts(text);
        assert_eq!(position_in(text, &starts, 0), pos(0, 0));
        assert_eq!(position_in(text, &starts, 1), pos(0, 1));
        assert_eq!(position_in(text, &starts, 3), pos(0, 2));
        assert_eq!(position_in(text, &starts, 7), pos(0, 4));
        assert_eq!(position_in(text, &starts, 9), pos(1, 0));
        assert_eq!(offset_in(text, &starts, pos(0, 4)), 7);
        assert_eq!(offset_in(text, &starts, pos(1, 1)), 10);
    }

    #[test]
    fn round_trips_every_character_boundary() {
        let text = "// µ 😀\r\npolicy p for spinlock {\n\ton contended(l: lock) {}\n}\n";
        let starts = line_starts(text);
        for (i, _) in text.char_indices() {
            // Between `\r` and `\n` is inside the line break: LSP has no position there.
            if text[..i].ends_with('\r') {
                continue;
            }
            assert_eq!(offset_in(text, &starts, position_in(text, &starts, i)), i, "offset {i}");
        }
    }

    #[test]
    fn out_of_range_positions_clamp() {
        let text = "ab\ncd";
        let starts = line_starts(text);
        assert_eq!(offset_in(text, &starts, pos(0, 99)), 2, "past the line's end: the end of the line");
        assert_eq!(offset_in(text, &starts, pos(9, 0)), 5, "past the last line: the end of the text");
        assert_eq!(position_in(text, &starts, 99), pos(1, 2));
        // Inside a character: back to its start.
        let text = "é";
        assert_eq!(position_in(text, &line_starts(text), 1), pos(0, 0));
        // Inside a surrogate pair: the character's start.
        let text = "😀x";
        assert_eq!(offset_in(text, &line_starts(text), pos(0, 1)), 0);
    }
}
