//! An open document: its text as the editor has it, its version, and edits applied to it.

use crate::position::{line_starts, offset_in};
use lsp_types::TextDocumentContentChangeEvent;

/// The text of one open document.
#[derive(Clone, Debug)]
pub struct Document {
    /// The whole text.
    pub text: String,
    /// The editor's version number of this text.
    pub version: i32,
}

impl Document {
    /// A document as opened.
    pub fn new(text: String, version: i32) -> Document {
        Document { text, version }
    }

    /// Applies the changes of one `didChange`, in order, and takes its version.
    ///
    /// A change without a range replaces the whole text (full sync); one with a range
    /// replaces that range (incremental sync). Ranges are clamped to the text, so a
    /// confused client can garble its document but not crash the server.
    pub fn apply(&mut self, changes: Vec<TextDocumentContentChangeEvent>, version: i32) {
        for change in changes {
            match change.range {
                None => self.text = change.text,
                Some(range) => {
                    let starts = line_starts(&self.text);
                    let start = offset_in(&self.text, &starts, range.start);
                    let end = offset_in(&self.text, &starts, range.end).max(start);
                    self.text.replace_range(start..end, &change.text);
                }
            }
        }
        self.version = version;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lsp_types::{Position, Range};

    fn edit(sl: u32, sc: u32, el: u32, ec: u32, text: &str) -> TextDocumentContentChangeEvent {
        let range = Range { start: Position { line: sl, character: sc }, end: Position { line: el, character: ec } };
        TextDocumentContentChangeEvent { range: Some(range), range_length: None, text: text.into() }
    }

    #[test]
    fn incremental_edits_apply_in_order() {
        let mut doc = Document::new("global a: u32;\nglobal b: u32;\n".into(), 1);
        doc.apply(vec![edit(0, 7, 0, 8, "first"), edit(1, 7, 1, 8, "second"), edit(2, 0, 2, 0, "// end\n")], 2);
        assert_eq!(doc.text, "global first: u32;\nglobal second: u32;\n// end\n");
        assert_eq!(doc.version, 2);
        // A deletion across a line break.
        doc.apply(vec![edit(0, 18, 1, 0, "")], 3);
        assert_eq!(doc.text, "global first: u32;global second: u32;\n// end\n");
    }

    #[test]
    fn full_replacement_and_utf16_columns() {
        let mut doc = Document::new("old".into(), 1);
        doc.apply(vec![TextDocumentContentChangeEvent { range: None, range_length: None, text: "// 😀 x".into() }], 2);
        // `x` is at UTF-16 column 6 (the emoji is two units).
        doc.apply(vec![edit(0, 6, 0, 7, "y")], 3);
        assert_eq!(doc.text, "// 😀 y");
    }

    #[test]
    fn reversed_or_outlying_ranges_do_not_panic() {
        let mut doc = Document::new("abc".into(), 1);
        doc.apply(vec![edit(0, 2, 0, 1, "X"), edit(7, 0, 9, 0, "!")], 2);
        assert_eq!(doc.text, "abXc!");
    }
}
