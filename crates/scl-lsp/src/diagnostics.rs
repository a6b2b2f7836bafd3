//! The compiler's diagnostics as LSP diagnostics.
//!
//! One compiler diagnostic becomes one LSP diagnostic: the primary span is the range, the
//! code is the stable code (`E0310`) with a link to its `sclc explain` page, secondary
//! labels become related information, and the primary label, notes and help follow the
//! headline in the message, as they do under the snippet in a terminal.

use crate::analysis::{is_local, Analysis};
use crate::links;
use crate::position::range;
use lsp_types::{
    CodeDescription, Diagnostic, DiagnosticRelatedInformation, DiagnosticSeverity, DiagnosticTag, Location,
    NumberOrString, Uri,
};
use scl_diagnostics::Severity;

/// The `source` of every diagnostic, shown by editors next to the code.
pub const SOURCE: &str = "sclc";

/// The document's diagnostics for an editor; `uri` is the document's.
///
/// Diagnostics whose primary span lies in an imported stdlib module are left out: the
/// editor shows them on the document they belong to, and the stdlib is tested clean.
pub fn to_lsp(analysis: &Analysis, uri: &Uri) -> Vec<Diagnostic> {
    analysis.checked.diagnostics.iter().filter(|d| is_local(analysis, d)).map(|d| convert(analysis, uri, d)).collect()
}

fn convert(analysis: &Analysis, uri: &Uri, d: &scl_diagnostics::Diagnostic) -> Diagnostic {
    let code = d.code.code;
    let unused = d.code.name.starts_with("unused");
    Diagnostic {
        range: range(analysis.source(), d.primary.span),
        severity: Some(match d.severity {
            Severity::Error => DiagnosticSeverity::ERROR,
            Severity::Warning => DiagnosticSeverity::WARNING,
        }),
        code: Some(NumberOrString::String(code.to_string())),
        code_description: links::explain_uri(code).map(|href| CodeDescription { href }),
        source: Some(SOURCE.to_string()),
        message: message(d),
        related_information: related(analysis, uri, d),
        // Editors fade out code tagged unnecessary, which is what an unused declaration is.
        tags: unused.then(|| vec![DiagnosticTag::UNNECESSARY]),
        // For clients that do not follow `code_description`: the command that explains it.
        data: Some(serde_json::json!({ "explain": format!("sclc explain {code}") })),
    }
}

/// The headline, then the primary label, the notes and the help, one per line.
fn message(d: &scl_diagnostics::Diagnostic) -> String {
    let mut lines = vec![d.message.clone()];
    if !d.primary.message.is_empty() {
        lines.push(d.primary.message.clone());
    }
    lines.extend(d.notes.iter().map(|n| format!("note: {n}")));
    lines.extend(d.help.iter().map(|h| format!("help: {h}")));
    lines.join("\n")
}

/// Secondary labels as related information; a label in a stdlib module points at the
/// module's cached file.
fn related(analysis: &Analysis, uri: &Uri, d: &scl_diagnostics::Diagnostic) -> Option<Vec<DiagnosticRelatedInformation>> {
    let infos: Vec<DiagnosticRelatedInformation> = d
        .secondary
        .iter()
        .filter_map(|label| {
            let location = Location { uri: analysis.uri_of(uri, label.file)?, range: range(analysis.files.get(label.file), label.span) };
            let message = if label.message.is_empty() { "related".to_string() } else { label.message.clone() };
            Some(DiagnosticRelatedInformation { location, message })
        })
        .collect();
    (!infos.is_empty()).then_some(infos)
}
