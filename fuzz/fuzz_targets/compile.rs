//! The whole compiler (`scl_driver::compile`) for every target: no panic, and no internal
//! compiler error (E0900: the checker accepted what the back end could not compile). When
//! it succeeds, the object is not empty and the IR of every program verifies.

#![no_main]

use libfuzzer_sys::fuzz_target;
use scl_catalogue::Target;
use scl_diagnostics::Files;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for target in Target::ALL {
        let mut files = Files::new();
        let id = files.add("fuzz.scl", text.as_ref());
        match scl_driver::compile(&mut files, id, target) {
            Ok(out) => {
                assert!(!out.object.is_empty(), "empty object for {target}");
                for p in &out.module.programs {
                    if let Err(e) = scl_ir::verify::verify(&p.func) {
                        panic!("IR of `{}` ({target}) does not verify: {}", p.name, e.join("; "));
                    }
                }
            }
            Err(diags) => {
                if let Some(d) = diags.iter().find(|d| d.code.code == scl_driver::E0900.code) {
                    panic!("internal compiler error for {target}: {}", d.message);
                }
            }
        }
    }
});
