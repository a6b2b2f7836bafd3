//! The standard library: SCL modules shipped inside the compiler, so `import hist;` works
//! wherever `sclc` is installed. The sources are the files in the repository's `stdlib/`.

/// Every stdlib module: its name and its source.
pub static STDLIB: &[(&str, &str)] = &[
    ("hist", include_str!("../../../stdlib/hist.scl")),
    ("topo", include_str!("../../../stdlib/topo.scl")),
];

/// The source of the module `name`.
pub(crate) fn source(name: &str) -> Option<&'static str> {
    STDLIB.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

/// The names of the stdlib modules.
pub(crate) fn names() -> Vec<&'static str> {
    STDLIB.iter().map(|(n, _)| *n).collect()
}

/// The names of the stdlib modules, for tools (the language server completes them).
pub fn stdlib_modules() -> Vec<&'static str> {
    names()
}
