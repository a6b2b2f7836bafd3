//! Generates the parser from `grammar/scl.lalrpop` at the top of the repository into
//! `OUT_DIR/scl.rs`, which `src/parser.rs` includes.

fn main() {
    let grammar_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../grammar");
    let out_dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR for build scripts");
    lalrpop::Configuration::new()
        .set_in_dir(&grammar_dir)
        .set_out_dir(out_dir)
        .emit_rerun_directives(true)
        .process()
        .expect("grammar/scl.lalrpop must generate a parser");
}
