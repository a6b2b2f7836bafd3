//! The whole front end and the checker, for no target and for every target, then the
//! three diagnostic renderers: no panic, and every span inside its file.

#![no_main]

use libfuzzer_sys::fuzz_target;
use scl_catalogue::Target;
use scl_diagnostics::render::{self, Format};
use scl_diagnostics::Files;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for target in [None, Some(Target::Stock), Some(Target::Syncord), Some(Target::Sim)] {
        let mut files = Files::new();
        let id = files.add("fuzz.scl", text.as_ref());
        let checked = scl_sema::check_file(&mut files, id, &scl_sema::Options { target });
        for d in &checked.diagnostics {
            for l in std::iter::once(&d.primary).chain(&d.secondary) {
                let f = files.get(l.file);
                let (s, e) = (l.span.start as usize, l.span.end as usize);
                assert!(s <= e && e <= f.text.len(), "span outside `{}` in {d:?}", f.name);
                assert!(f.text.is_char_boundary(s) && f.text.is_char_boundary(e), "span inside a character in {d:?}");
            }
        }
        if target.is_none() {
            for format in [Format::Human, Format::Short, Format::Json] {
                let mut out = Vec::new();
                let _ = render::emit(&mut out, &files, &checked.diagnostics, format, false);
            }
        }
    }
});
