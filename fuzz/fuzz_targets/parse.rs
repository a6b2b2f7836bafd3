//! The lexer and parser on arbitrary bytes (read as UTF-8, lossily): no panic, no stack
//! overflow, no hang; every diagnostic span lies inside the text on character boundaries.

#![no_main]

use libfuzzer_sys::fuzz_target;
use scl_diagnostics::FileId;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let lexed = scl_syntax::lexer::lex(FileId(0), &text);
    for &(start, _, end) in &lexed.tokens {
        assert!(start <= end && end <= text.len(), "token {start}..{end} outside the text");
    }
    let (_ast, diags) = scl_syntax::parse_file(FileId(0), &text);
    for d in &diags {
        assert!(!d.message.is_empty(), "empty message: {d:?}");
        for l in std::iter::once(&d.primary).chain(&d.secondary) {
            let (s, e) = (l.span.start as usize, l.span.end as usize);
            assert!(s <= e, "inverted span in {d:?}");
            assert!(e <= text.len(), "span past the end in {d:?}");
            assert!(text.is_char_boundary(s) && text.is_char_boundary(e), "span inside a character in {d:?}");
        }
    }
});
