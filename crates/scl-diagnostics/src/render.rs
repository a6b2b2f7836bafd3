//! The three renderings of a diagnostic: human (ariadne), short (codespan-reporting) and
//! JSON. Each writes to any `io::Write`; none decides on its own whether to use colour.

use crate::{Diagnostic, Files, Label, Severity, Span};
use std::io::{self, Write};
use std::ops::Range;

/// The output formats of `--format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Source snippets with labels, for people (ariadne).
    Human,
    /// `file:line:col: error[CODE]: message`, one line each (codespan-reporting).
    Short,
    /// One JSON object per line.
    Json,
}

/// At most this many diagnostics are rendered by [`emit`] in the human and short formats;
/// one line counts the rest. (A file of garbage can have one error per few bytes.)
pub const MAX_SHOWN: usize = 500;

/// A line longer than this many bytes is shown cropped around the label (the human format
/// otherwise prints the whole line for every diagnostic on it).
pub const MAX_LINE_SHOWN: usize = 512;

/// Messages, labels, notes and help longer than this many bytes are cut (they may quote a
/// name of the input, and names have no length limit until the checker refuses them).
pub const MAX_TEXT_SHOWN: usize = 1024;

/// Writes every diagnostic in `format` (the first [`MAX_SHOWN`] in the human and short
/// formats, then a count of the rest). The cost of each is bounded whatever the input's
/// shape: the source line tables are built once per call, long lines are cropped, and long
/// messages cut.
pub fn emit(
    w: &mut dyn Write,
    files: &Files,
    diagnostics: &[Diagnostic],
    format: Format,
    color: bool,
) -> io::Result<()> {
    let mut cache = SourceCache { files, sources: std::collections::HashMap::new() };
    let shown = if format == Format::Json { diagnostics.len() } else { diagnostics.len().min(MAX_SHOWN) };
    for d in &diagnostics[..shown] {
        match format {
            Format::Human => human_cached(w, files, &mut cache, d, color)?,
            Format::Short => short(w, files, d, color)?,
            Format::Json => writeln!(w, "{}", json(files, d))?,
        }
    }
    if shown < diagnostics.len() {
        let rest = &diagnostics[shown..];
        let errors = rest.iter().filter(|d| d.is_error()).count();
        writeln!(
            w,
            "... and {} more not shown ({errors} errors, {} warnings): only the first {MAX_SHOWN} are printed",
            rest.len(),
            rest.len() - errors
        )?;
    }
    Ok(())
}

/// `text`, cut to [`MAX_TEXT_SHOWN`] bytes (on a char boundary) with a note of the rest.
fn clip(text: &str) -> std::borrow::Cow<'_, str> {
    if text.len() <= MAX_TEXT_SHOWN {
        return text.into();
    }
    let mut end = MAX_TEXT_SHOWN;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} more bytes)", &text[..end], text.len() - end).into()
}

/// ariadne's view of [`Files`]: each file's line table built once, on first use.
struct SourceCache<'a> {
    files: &'a Files,
    sources: std::collections::HashMap<String, ariadne::Source<&'a str>>,
}

impl<'a> ariadne::Cache<String> for SourceCache<'a> {
    type Storage = &'a str;

    fn fetch(&mut self, id: &String) -> Result<&ariadne::Source<&'a str>, impl std::fmt::Debug> {
        if !self.sources.contains_key(id) {
            let Some(file) = self.files.find(id) else { return Err(format!("no file `{id}`")) };
            self.sources.insert(id.clone(), ariadne::Source::from(self.files.get(file).text.as_str()));
        }
        self.sources.get(id).ok_or_else(|| format!("no file `{id}`"))
    }

    fn display<'b>(&self, id: &'b String) -> Option<impl std::fmt::Display + 'b> {
        Some(id)
    }
}

/// A span that renderers can show: inside the text, on char boundaries, and at least one
/// character wide where the text allows (an empty span at the end of a file points at the
/// last character, so "unexpected end of file" still shows a line).
fn visible(files: &Files, label: &Label) -> Range<usize> {
    let text = &files.get(label.file).text;
    let fix = |mut i: usize| {
        i = i.min(text.len());
        while !text.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    let (mut start, mut end) = (fix(label.span.start as usize), fix(label.span.end as usize));
    if start == end {
        if let Some(c) = text[start..].chars().next().filter(|&c| c != '\n' && c != '\r') {
            end = start + c.len_utf8();
        } else if start > 0 && start == text.len() {
            let c = text[..start].chars().next_back().unwrap_or(' ');
            start -= c.len_utf8();
        }
    }
    start..end
}

/// Renders `d` for a person, with ariadne.
pub fn human(w: &mut dyn Write, files: &Files, d: &Diagnostic, color: bool) -> io::Result<()> {
    let mut cache = SourceCache { files, sources: std::collections::HashMap::new() };
    human_cached(w, files, &mut cache, d, color)
}

/// True when a label of `d` sits on a line longer than [`MAX_LINE_SHOWN`].
fn on_long_line(files: &Files, d: &Diagnostic) -> bool {
    std::iter::once(&d.primary).chain(&d.secondary).any(|l| {
        let f = files.get(l.file);
        let line = f.line_index(l.span.start.min(f.text.len() as u32));
        let starts = f.line_starts();
        let end = starts.get(line + 1).map_or(f.text.len(), |&e| e as usize);
        end - starts[line] as usize > MAX_LINE_SHOWN
    })
}

fn human_cached(w: &mut dyn Write, files: &Files, cache: &mut SourceCache<'_>, d: &Diagnostic, color: bool) -> io::Result<()> {
    use ariadne::{Color, Config, IndexType, Label as ALabel, Report, ReportKind};
    if on_long_line(files, d) {
        return human_cropped(w, files, d);
    }
    let name = |l: &Label| files.get(l.file).name.clone();
    let kind = match d.severity {
        Severity::Error => ReportKind::Error,
        Severity::Warning => ReportKind::Warning,
    };
    let primary_color = if d.severity == Severity::Error { Color::Red } else { Color::Yellow };
    let mut report = Report::build(kind, (name(&d.primary), visible(files, &d.primary)))
        .with_config(Config::default().with_color(color).with_index_type(IndexType::Byte))
        .with_code(format!("{}", d.code))
        .with_message(clip(&d.message));
    let mut primary = ALabel::new((name(&d.primary), visible(files, &d.primary))).with_order(0);
    if !d.primary.message.is_empty() {
        primary = primary.with_message(clip(&d.primary.message));
    }
    if color {
        primary = primary.with_color(primary_color);
    }
    report = report.with_label(primary);
    for (i, l) in d.secondary.iter().enumerate() {
        let mut label = ALabel::new((name(l), visible(files, l))).with_order(i as i32 + 1);
        if !l.message.is_empty() {
            label = label.with_message(clip(&l.message));
        }
        if color {
            label = label.with_color(Color::Blue);
        }
        report = report.with_label(label);
    }
    for n in &d.notes {
        report = report.with_note(clip(n));
    }
    if let Some(h) = &d.help {
        report = report.with_help(clip(h));
    }
    report.finish().write(cache, w)
}

/// Bytes of a long line shown on each side of a label.
const CONTEXT_SHOWN: usize = 60;
/// Bytes of a long label shown.
const LABEL_SHOWN: usize = 120;

/// The human form of a diagnostic on a long line: the same layout, with a window of the
/// line around the primary label instead of the whole line, and the other labels by
/// position. Control characters show as U+FFFD so the window cannot drive a terminal.
fn human_cropped(w: &mut dyn Write, files: &Files, d: &Diagnostic) -> io::Result<()> {
    let floor = |text: &str, mut i: usize| {
        i = i.min(text.len());
        while !text.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    let f = files.get(d.primary.file);
    let text = f.text.as_str();
    let range = visible(files, &d.primary);
    let line = f.line_index(range.start as u32);
    let line_start = f.line_starts()[line] as usize;
    let line_end = line_start + f.line_text(line).len();
    let label_end = floor(text, range.end.min(range.start + LABEL_SHOWN).min(line_end.max(range.start)));
    let from = floor(text, range.start.saturating_sub(CONTEXT_SHOWN).max(line_start));
    let to = floor(text, (label_end + CONTEXT_SHOWN).min(line_end).max(label_end));
    let show = |s: &str| -> String { s.chars().map(|c| if c.is_control() { '\u{fffd}' } else { c }).collect() };
    let before = show(&text[from..range.start]);
    let under = show(&text[range.start..label_end]);
    let after = show(&text[label_end..to]);
    let pos = f.line_col(range.start as u32);
    let kind = if d.is_error() { "Error" } else { "Warning" };
    let margin = (line + 1).to_string().len() + 2;
    let pad = " ".repeat(margin);
    writeln!(w, "[{}] {kind}: {}", d.code, clip(&d.message))?;
    writeln!(w, "{pad}╭─[ {}:{}:{} ]", f.name, pos.line, pos.column)?;
    writeln!(w, "{pad}│")?;
    let (open, close) = (if from > line_start { "…" } else { "" }, if to < line_end { "…" } else { "" });
    writeln!(w, "{:>width$} │ {open}{before}{under}{after}{close}", line + 1, width = margin - 1)?;
    let carets = "^".repeat(under.chars().count().max(1));
    let lead = " ".repeat(open.chars().count() + before.chars().count());
    writeln!(w, "{pad}│ {lead}{carets} {}", clip(&d.primary.message))?;
    for l in &d.secondary {
        let lf = files.get(l.file);
        let at = lf.line_col(l.span.start);
        writeln!(w, "{pad}│ also {}:{}:{}: {}", lf.name, at.line, at.column, clip(&l.message))?;
    }
    if let Some(h) = &d.help {
        writeln!(w, "{pad}│\n{pad}│ Help: {}", clip(h))?;
    }
    for n in &d.notes {
        writeln!(w, "{pad}│\n{pad}│ Note: {}", clip(n))?;
    }
    writeln!(w, "{pad}│\n{pad}│ Note: line {} is {} bytes long; only the part around the label is shown", line + 1, line_end - line_start)?;
    writeln!(w, "{}╯", "─".repeat(margin))
}

/// Renders `d` on one line, `file:line:col: error[CODE]: message`, with codespan-reporting.
pub fn short(w: &mut dyn Write, files: &Files, d: &Diagnostic, color: bool) -> io::Result<()> {
    use codespan_reporting::diagnostic::{Diagnostic as CDiagnostic, Label as CLabel};
    use codespan_reporting::term::{self, Config, DisplayStyle};
    let mut labels = vec![CLabel::primary(d.primary.file.0, visible(files, &d.primary))
        .with_message(clip(&d.primary.message))];
    labels.extend(
        d.secondary
            .iter()
            .map(|l| CLabel::secondary(l.file.0, visible(files, l)).with_message(clip(&l.message))),
    );
    let diag = match d.severity {
        Severity::Error => CDiagnostic::error(),
        Severity::Warning => CDiagnostic::warning(),
    }
    .with_code(d.code.code)
    .with_message(clip(&d.message))
    .with_labels(labels);
    let config = Config { display_style: DisplayStyle::Short, ..Config::default() };
    let db = CodespanFiles(files);
    let result = if color {
        let mut ansi = term::termcolor::Ansi::new(&mut *w);
        term::emit_to_write_style(&mut ansi, &config, &db, &diag)
    } else {
        term::emit_to_io_write(w, &config, &db, &diag)
    };
    result.map_err(|e| match e {
        codespan_reporting::files::Error::Io(e) => e,
        other => io::Error::other(other.to_string()),
    })
}

/// One diagnostic as a JSON object. Lines and columns count from 1; columns in characters.
pub fn json(files: &Files, d: &Diagnostic) -> serde_json::Value {
    let label = |l: &Label, primary: bool| {
        let f = files.get(l.file);
        let (s, e) = (f.line_col(l.span.start), f.line_col(l.span.end));
        serde_json::json!({
            "primary": primary,
            "file": f.name,
            "span": { "start": l.span.start, "end": l.span.end },
            "start": { "line": s.line, "column": s.column },
            "end": { "line": e.line, "column": e.column },
            "message": l.message,
        })
    };
    let primary = label(&d.primary, true);
    let mut labels = vec![primary.clone()];
    labels.extend(d.secondary.iter().map(|l| label(l, false)));
    serde_json::json!({
        "severity": d.severity.as_str(),
        "code": d.code.code,
        "name": d.code.name,
        "message": d.message,
        "file": primary["file"],
        "span": primary["span"],
        "start": primary["start"],
        "end": primary["end"],
        "labels": labels,
        "notes": d.notes,
        "help": d.help,
    })
}

/// codespan-reporting's view of [`Files`].
struct CodespanFiles<'a>(&'a Files);

impl<'a> codespan_reporting::files::Files<'a> for CodespanFiles<'a> {
    type FileId = u32;
    type Name = &'a str;
    type Source = &'a str;

    fn name(&'a self, id: u32) -> Result<&'a str, codespan_reporting::files::Error> {
        Ok(&self.0.get(crate::FileId(id)).name)
    }

    fn source(&'a self, id: u32) -> Result<&'a str, codespan_reporting::files::Error> {
        Ok(&self.0.get(crate::FileId(id)).text)
    }

    fn line_index(&'a self, id: u32, byte: usize) -> Result<usize, codespan_reporting::files::Error> {
        Ok(self.0.get(crate::FileId(id)).line_index(Span::point(byte).start))
    }

    /// From the file's block index: counting from the line start would cost the length of
    /// the line for every diagnostic on it.
    fn column_number(&'a self, id: u32, _line: usize, byte: usize) -> Result<usize, codespan_reporting::files::Error> {
        Ok(self.0.get(crate::FileId(id)).line_col(byte as u32).column as usize)
    }

    fn line_range(&'a self, id: u32, line: usize) -> Result<Range<usize>, codespan_reporting::files::Error> {
        let f = self.0.get(crate::FileId(id));
        let starts = f.line_starts();
        let start = *starts.get(line).ok_or(codespan_reporting::files::Error::LineTooLarge {
            given: line,
            max: starts.len() - 1,
        })? as usize;
        let end = starts.get(line + 1).map_or(f.text.len(), |&e| e as usize);
        Ok(start..end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Code, Diagnostic, Files};

    const CODE: Code = Code { code: "E9999", name: "test-code" };

    fn sample() -> (Files, Diagnostic) {
        let mut files = Files::new();
        let f = files.add("p.scl", "let x = 1\nlet y = 2;\n");
        let d = Diagnostic::error(CODE, f, Span::new(9, 9), "expected `;`")
            .with_label("add `;` here")
            .with_secondary(f, Span::new(0, 3), "this statement")
            .with_note("statements end with `;`")
            .with_help("write `let x = 1;`");
        (files, d)
    }

    fn render(format: Format, files: &Files, d: &Diagnostic) -> String {
        let mut out = Vec::new();
        emit(&mut out, files, std::slice::from_ref(d), format, false).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn short_form_is_one_line_with_position_and_code() {
        let (files, d) = sample();
        assert_eq!(render(Format::Short, &files, &d), "p.scl:1:10: error[E9999]: expected `;`\n");
    }

    #[test]
    fn human_form_shows_code_labels_note_and_help() {
        let (files, d) = sample();
        let out = render(Format::Human, &files, &d);
        for needle in ["[E9999] Error: expected `;`", "p.scl:1:10", "add `;` here", "this statement",
            "statements end with `;`", "write `let x = 1;`"]
        {
            assert!(out.contains(needle), "missing {needle:?} in\n{out}");
        }
        assert!(!out.contains('\u{1b}'), "no colour unless asked");
    }

    #[test]
    fn json_has_byte_and_line_column_ranges() {
        let (files, d) = sample();
        let v: serde_json::Value = serde_json::from_str(render(Format::Json, &files, &d).trim()).unwrap();
        assert_eq!(v["code"], "E9999");
        assert_eq!(v["name"], "test-code");
        assert_eq!(v["span"]["start"], 9);
        assert_eq!(v["start"]["line"], 1);
        assert_eq!(v["start"]["column"], 10);
        assert_eq!(v["labels"].as_array().unwrap().len(), 2);
        assert_eq!(v["help"], "write `let x = 1;`");
    }

    #[test]
    fn empty_file_still_renders() {
        let mut files = Files::new();
        let f = files.add("empty.scl", "");
        let d = Diagnostic::error(CODE, f, Span::point(0), "nothing here");
        for format in [Format::Human, Format::Short, Format::Json] {
            assert!(!render(format, &files, &d).is_empty());
        }
    }
}
