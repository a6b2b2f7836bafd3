//! What the integration tests of `sclc` share (each test file that needs it says
//! `mod common;`).

use std::path::{Path, PathBuf};

/// The repository's root: examples, stdlib, tests and docs are found from here.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repo root")
}
