//! The SCL front end: lexer, parser and syntax tree.
//!
//! This crate turns the text of a `.scl` file into an [`ast::SourceFile`] and a list of
//! diagnostics. It reports every syntax error of a file, not just the first, and never
//! panics or overflows its stack, whatever bytes it is given. It owns the tokens
//! ([`lexer`]), the tree ([`ast`]), the grammar driver ([`parser`], over the lalrpop
//! grammar in `grammar/scl.lalrpop`), the shape checks that need no name resolution
//! ([`validate`]) and the syntax error codes ([`codes`]).
//!
//! It must not know anything of BPF, of the hook catalogue or of types: those belong to
//! the checker and the back end.

#![deny(missing_docs)]

pub mod ast;
pub mod codes;
pub mod lexer;
pub mod parser;
pub mod validate;

pub use parser::parse_file;
pub use validate::LockKind;
