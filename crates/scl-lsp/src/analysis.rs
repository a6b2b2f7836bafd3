//! One document checked by the compiler: the syntax tree, the checked program, its
//! diagnostics and resolved references, kept until the document changes.

use crate::links;
use lsp_types::Uri;
use scl_diagnostics::{Diagnostic, FileId, Files, SourceFile};
use scl_sema::{Checked, Options};
use scl_syntax::ast;

/// What the compiler made of one version of a document.
#[derive(Debug)]
pub struct Analysis {
    /// The document and the stdlib modules it imports.
    pub files: Files,
    /// The document's id in `files`.
    pub file: FileId,
    /// The document's syntax tree, for the outline and for completion context.
    pub ast: ast::SourceFile,
    /// The checker's result; its diagnostics include the syntax errors, sorted.
    pub checked: Checked,
}

impl Analysis {
    /// The document's source file (text and line table).
    pub fn source(&self) -> &SourceFile {
        self.files.get(self.file)
    }

    /// The document's text.
    pub fn text(&self) -> &str {
        &self.source().text
    }

    /// The URI of `file`: the document's own (`uri`) or a stdlib module's cached copy.
    pub fn uri_of(&self, uri: &Uri, file: FileId) -> Option<Uri> {
        if file == self.file {
            return Some(uri.clone());
        }
        let name = self.files.get(file).name.strip_prefix("<stdlib>/")?.strip_suffix(".scl")?;
        links::stdlib_uri(name)
    }
}

/// Parses and checks `text` as the file `name`, exactly as `sclc check` would.
///
/// This is `scl_sema::check_file` with the syntax tree kept: the editor needs the tree
/// for the outline and completion, and parsing twice would cost a parse on every change.
pub fn analyse(name: &str, text: &str, options: &Options) -> Analysis {
    let mut files = Files::new();
    let file = files.add(name, text);
    let (ast, mut diagnostics) = scl_syntax::parse_file(file, text);
    let broken: Vec<scl_diagnostics::Span> = diagnostics.iter().filter(|d| d.is_error()).map(|d| d.primary.span).collect();
    let mut checked = scl_sema::check(&mut files, file, &ast, &broken, options);
    diagnostics.append(&mut checked.diagnostics);
    scl_diagnostics::sort(&mut diagnostics);
    diagnostics.dedup();
    checked.diagnostics = diagnostics;
    Analysis { files, file, ast, checked }
}

/// True if `d` is about the document itself rather than an imported module.
pub fn is_local(analysis: &Analysis, d: &Diagnostic) -> bool {
    d.primary.file == analysis.file
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_diagnostics_as_check_file() {
        let text = "import hist;\nglobal x: u32;\npolicy p for spinlock {\n    on contended(l: lock) {\n        x = y;\n        sleep(1us);\n    }\n    on bogus(l: lock) {}\n}\n";
        let ours = analyse("a.scl", text, &Options::default());
        let mut files = Files::new();
        let id = files.add("a.scl", text);
        let theirs = scl_sema::check_file(&mut files, id, &Options::default());
        assert!(!ours.checked.diagnostics.is_empty());
        assert_eq!(ours.checked.diagnostics, theirs.diagnostics);
    }
}
