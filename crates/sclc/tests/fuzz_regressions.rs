//! The inputs the fuzzers found (`fuzz/regressions/`, see its README): each goes through
//! the parser, the checker and the whole compiler for every target, as the `parse`,
//! `check` and `compile` fuzz targets drive them, and must neither panic nor end in an
//! internal compiler error (E0900). A finding is added here together with its fix.

use scl_catalogue::Target;
use scl_diagnostics::{FileId, Files};
use std::path::{Path, PathBuf};

fn cases(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions").join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| rd.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "scl")).collect())
        .unwrap_or_default();
    files.sort();
    files
}

/// What the three fuzz targets do with one input; the problems found, if any.
fn run_case(path: &Path) -> Vec<String> {
    let bytes = std::fs::read(path).expect("readable");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let name = path.display().to_string();
    let mut problems = Vec::new();
    let outcome = std::panic::catch_unwind(|| {
        let mut found = Vec::new();
        let _ = scl_syntax::parse_file(FileId(0), &text);
        for target in [None, Some(Target::Stock), Some(Target::Syncord), Some(Target::Sim)] {
            let mut files = Files::new();
            let id = files.add("case.scl", text.as_str());
            let _ = scl_sema::check_file(&mut files, id, &scl_sema::Options { target });
        }
        for target in Target::ALL {
            let mut files = Files::new();
            let id = files.add("case.scl", text.as_str());
            match scl_driver::compile(&mut files, id, target) {
                Ok(out) => {
                    if out.object.is_empty() {
                        found.push(format!("{target}: empty object"));
                    }
                    for p in &out.module.programs {
                        if let Err(e) = scl_ir::verify::verify(&p.func) {
                            found.push(format!("{target}: IR of `{}` does not verify: {}", p.name, e.join("; ")));
                        }
                    }
                }
                Err(diags) => {
                    for d in diags.iter().filter(|d| d.code.code == scl_driver::E0900.code) {
                        found.push(format!("{target}: internal compiler error: {}", d.message));
                    }
                }
            }
        }
        found
    });
    match outcome {
        Ok(found) => problems.extend(found.into_iter().map(|p| format!("{name}: {p}"))),
        Err(_) => problems.push(format!("{name}: panicked")),
    }
    problems
}

#[test]
fn fixed_fuzz_findings_stay_fixed() {
    let cases = cases("");
    assert!(cases.len() >= 2, "fuzz/regressions/ holds the findings");
    let problems: Vec<String> = cases.iter().flat_map(|p| run_case(p)).collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
