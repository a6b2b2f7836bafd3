//! Diagnostics as plain data, and the three ways sclc shows them.
//!
//! Every stage of the compiler (lexer, parser, checker, code generator, loader) reports
//! problems as [`Diagnostic`] values: a severity, a stable [`Code`], a message, a primary
//! label on a span, secondary labels, notes and a help line. Nothing here knows what SCL is;
//! this crate only owns the data and its renderings:
//!
//! - [`render::human`]: ariadne, for a person at a terminal (colour only when asked);
//! - [`render::short`]: codespan-reporting's one-line `file:line:col: error[CODE]: message`;
//! - [`render::json`]: one JSON object per diagnostic, with byte and line/column ranges.
//!
//! The crate must not decide *what* is wrong with a program, and must not print on its own:
//! callers choose the writer.

#![deny(missing_docs)]

mod files;
pub mod render;

pub use files::{FileId, Files, LineCol, SourceFile};

use std::fmt;

/// A byte range `start..end` in one source file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Span {
    /// Offset of the first byte.
    pub start: u32,
    /// Offset one past the last byte.
    pub end: u32,
}

impl Span {
    /// The span `start..end`.
    pub fn new(start: usize, end: usize) -> Span {
        Span { start: clamp(start), end: clamp(end.max(start)) }
    }

    /// The empty span at `at`.
    pub fn point(at: usize) -> Span {
        Span::new(at, at)
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span { start: self.start.min(other.start), end: self.end.max(other.end) }
    }

    /// The span as a `usize` range, for slicing the source.
    pub fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// Source files are limited well below 4 GiB by the driver; clamping keeps a span valid
/// even if a caller passes a larger offset.
fn clamp(x: usize) -> u32 {
    u32::try_from(x).unwrap_or(u32::MAX)
}

/// How bad a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// A problem the policy author should look at; compilation goes on.
    Warning,
    /// The policy is rejected.
    Error,
}

impl Severity {
    /// `error` or `warning`, as printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// A stable diagnostic code (`E0101`) and its kebab-case name (`unexpected-token`).
///
/// Codes never change meaning once released; `sclc explain CODE` documents each one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Code {
    /// The code, e.g. `E0101`.
    pub code: &'static str,
    /// A short kebab-case name, e.g. `unexpected-token`.
    pub name: &'static str,
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code)
    }
}

/// The documentation of one code, as `sclc explain` prints it.
#[derive(Clone, Copy, Debug)]
pub struct CodeDoc {
    /// The code this page documents.
    pub code: Code,
    /// One line: what is wrong.
    pub summary: &'static str,
    /// Why the rule exists and how to fix a violation, in Markdown.
    pub explanation: &'static str,
}

/// A span in a file, with an optional message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    /// The file the span is in.
    pub file: FileId,
    /// Where.
    pub span: Span,
    /// What to say there; may be empty.
    pub message: String,
}

impl Label {
    /// A label at `span` in `file`.
    pub fn new(file: FileId, span: Span, message: impl Into<String>) -> Label {
        Label { file, span, message: message.into() }
    }
}

/// One problem found in a policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The stable code.
    pub code: Code,
    /// The headline, in lower case without a final period (`expected `;` after a statement`).
    pub message: String,
    /// The offending span.
    pub primary: Label,
    /// Related places (a previous definition, the rest of a call chain).
    pub secondary: Vec<Label>,
    /// Why this is a problem.
    pub notes: Vec<String>,
    /// How to fix it.
    pub help: Option<String>,
}

impl Diagnostic {
    /// An error with `code` at `span` of `file`; the label repeats nothing by default.
    pub fn error(code: Code, file: FileId, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(Severity::Error, code, file, span, message)
    }

    /// A warning with `code` at `span` of `file`.
    pub fn warning(code: Code, file: FileId, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(Severity::Warning, code, file, span, message)
    }

    fn new(severity: Severity, code: Code, file: FileId, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity,
            code,
            message: message.into(),
            primary: Label::new(file, span, String::new()),
            secondary: Vec::new(),
            notes: Vec::new(),
            help: None,
        }
    }

    /// Sets the primary label's message.
    pub fn with_label(mut self, message: impl Into<String>) -> Diagnostic {
        self.primary.message = message.into();
        self
    }

    /// Adds a secondary label.
    pub fn with_secondary(mut self, file: FileId, span: Span, message: impl Into<String>) -> Diagnostic {
        self.secondary.push(Label::new(file, span, message));
        self
    }

    /// Adds a note.
    pub fn with_note(mut self, note: impl Into<String>) -> Diagnostic {
        self.notes.push(note.into());
        self
    }

    /// Sets the help line.
    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    /// True for errors.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Sorts diagnostics by file and position so output is stable whatever order passes ran in.
pub fn sort(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by_key(|d| (d.primary.file, d.primary.span.start, d.primary.span.end));
}
