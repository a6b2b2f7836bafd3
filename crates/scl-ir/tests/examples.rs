//! Every example, lowered for every target its header names, gives IR the verifier accepts.

use scl_catalogue::Target;
use scl_diagnostics::Files;
use std::path::Path;

/// (file name, text, targets from its `// targets:` header).
pub fn examples() -> Vec<(String, String, Vec<Target>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("examples/").flatten() {
        let p = e.path();
        if p.extension().is_none_or(|x| x != "scl") {
            continue;
        }
        let text = std::fs::read_to_string(&p).expect("readable");
        let targets = Target::in_header(&text);
        out.push((p.file_name().unwrap().to_string_lossy().into_owned(), text, targets));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn every_example_lowers_to_verified_ir() {
    let examples = examples();
    assert!(examples.len() >= 7);
    for (name, text, targets) in examples {
        assert!(!targets.is_empty(), "{name} names its targets");
        for target in targets {
            let mut files = Files::new();
            let id = files.add(name.clone(), text.clone());
            let checked = scl_sema::check_file(&mut files, id, &scl_sema::Options { target: Some(target) });
            assert!(!checked.has_errors(), "{name} checks for {target}: {:?}", checked.diagnostics);
            let module = scl_ir::lower::lower(&checked.program, target);
            assert!(!module.programs.is_empty(), "{name} has programs for {target}");
            for p in &module.programs {
                if let Err(errors) = scl_ir::verify::verify(&p.func) {
                    panic!("{name} ({target}) hook {}:\n{}\n{}", p.name, errors.join("\n"), p.func);
                }
            }
        }
    }
}
