//! The SCL language server: the only crate that speaks the Language Server Protocol.
//!
//! `sclc lsp` runs [`run_stdio`]. The server keeps the open documents, checks each one with
//! the compiler's own front end and checker (`scl_syntax::parse_file`, then
//! `scl_sema::check`) and answers from what they produced:
//!
//! - diagnostics with their stable codes, secondary labels as related information and a
//!   link to the code's `sclc explain` page ([`diagnostics`]);
//! - hover and go to definition from the checker's resolved references, whose text comes
//!   from the catalogue ([`navigate`]);
//! - completion of hooks per lock kind and target, built-ins, state, fields and methods
//!   ([`complete`]); the outline of a policy ([`symbols`]).
//!
//! Positions cross the boundary here and only here: the compiler counts bytes, LSP counts
//! UTF-16 code units ([`position`]).
//!
//! This crate must not parse or check SCL on its own (it has no grammar and no rules: a
//! second opinion would drift from `sclc check`), must not print to stdout except through
//! the protocol, and must not let a panic in a request take the server down.

#![deny(missing_docs)]

pub mod analysis;
pub mod complete;
pub mod diagnostics;
pub mod document;
pub mod links;
pub mod navigate;
pub mod position;
mod server;
pub mod symbols;
pub mod transport;

pub use analysis::{analyse, Analysis};
pub use server::{run, run_stdio, Error, Exit};
