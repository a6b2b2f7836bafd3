//! From tokens to a syntax tree, reporting every syntax error of a file.
//!
//! Recovery works at two levels. First the token stream is cut into top-level items: each
//! item keyword (`fn`, `policy`, `const`, `config`, ...) starts a new one, and a `;` or a
//! closing `}` at bracket depth zero ends one. Each item is checked for balanced brackets
//! and then parsed on its own by the lalrpop parser, so a broken item never swallows the
//! items after it. Inside an item, the grammar's `!` productions resume after a bad
//! statement or hook.

use crate::ast::*;
use crate::codes;
use crate::lexer::{self, Spanned, Tok};
use lalrpop_util::{ErrorRecovery, ParseError};
use scl_diagnostics::{Diagnostic, FileId};

#[allow(clippy::all, unused_parens, missing_docs, dead_code, unused_imports)]
mod generated {
    lalrpop_util::lalrpop_mod!(pub scl, "/scl.rs");
}

/// How tall an expression tree may grow through operators without brackets (`a + a + ...`,
/// `- - - x`). Brackets are limited by the lexer; together they bound every recursive pass.
pub const MAX_EXPR_HEIGHT: u32 = 256;

/// The parser's user error type: it has none, errors come from the lexer beforehand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Never {}

/// A span from lalrpop's locations.
pub(crate) fn sp(l: usize, r: usize) -> Span {
    Span::new(l, r)
}

/// What the grammar's actions can reach: the diagnostics so far and a few tree builders
/// that keep the tree's height bounded.
pub struct State {
    file: FileId,
    /// Byte ranges of every token in the file, to find the token before an error.
    token_spans: Vec<(usize, usize)>,
    /// Errors found while building the tree (too deep, capacity twice, brackets).
    diagnostics: Vec<Diagnostic>,
    /// Grammar errors, each with the offset of the token that triggered it; some are later
    /// dropped as echoes (see [`suppress_cascades`]).
    parse_errors: Vec<(usize, Diagnostic)>,
    too_tall_reported: bool,
    /// The token that follows the item being parsed: the end of an item's tokens is the
    /// end of the file only if this is `None`.
    next_token: Option<(Span, String)>,
}

impl State {
    /// Records a syntax error the grammar recovered from.
    pub(crate) fn recovered<'s>(&mut self, e: ErrorRecovery<usize, Tok<'s>, Never>) {
        self.error(e.error);
    }

    fn error(&mut self, e: ParseError<usize, Tok<'_>, Never>) {
        let trigger = match &e {
            ParseError::UnrecognizedToken { token: (l, ..), .. } | ParseError::ExtraToken { token: (l, ..) } => *l,
            ParseError::UnrecognizedEof { location, .. } => {
                self.next_token.as_ref().map_or(*location, |(span, _)| span.start as usize)
            }
            ParseError::InvalidToken { location } => *location,
            ParseError::User { error } => match *error {},
        };
        let d = match e {
            ParseError::UnrecognizedToken { token: (l, tok, r), expected } => {
                self.unexpected(Span::new(l, r), Some(&tok.describe()), &expected)
            }
            ParseError::ExtraToken { token: (l, tok, r) } => {
                self.unexpected(Span::new(l, r), Some(&tok.describe()), &[])
            }
            ParseError::UnrecognizedEof { location, expected } => match self.next_token.clone() {
                // The item stopped short because the next one began: name that token.
                Some((span, found)) => self.unexpected(span, Some(&found), &expected),
                None => self.unexpected(Span::point(location), None, &expected),
            },
            ParseError::InvalidToken { location } => {
                Diagnostic::error(codes::E0103, self.file, Span::point(location), "invalid token")
            }
            ParseError::User { error } => match error {},
        };
        self.parse_errors.push((trigger, d));
    }

    /// The diagnostic for an unexpected token, described as by [`Tok::describe`] (`None`:
    /// the end of the file).
    fn unexpected(&self, span: Span, found: Option<&str>, expected: &[String]) -> Diagnostic {
        let expected = friendly_expected(expected);
        let found_text = found.unwrap_or("end of file");
        let message = if expected.is_empty() {
            format!("unexpected {found_text}")
        } else {
            format!("expected {}, found {found_text}", join_or(&expected))
        };
        let code = if found.is_some() { codes::E0101 } else { codes::E0102 };
        let wants_semi = expected.iter().any(|e| e == "`;`");
        // A missing `;` is best shown where it belongs: right after the previous token.
        let prev_end = self.token_spans.iter().rev().find(|&&(_, end)| end <= span.start as usize).map(|&(_, e)| e);
        let mut d = match (wants_semi, prev_end) {
            (true, Some(end)) if found.is_some() => Diagnostic::error(code, self.file, Span::point(end), message)
                .with_label("expected `;` here")
                .with_secondary(self.file, span, format!("unexpected {found_text}")),
            _ => Diagnostic::error(code, self.file, span, message).with_label(match found {
                Some(_) => "unexpected token".to_string(),
                None => "the file ends here".to_string(),
            }),
        };
        let keyword = found.and_then(|f| f.strip_prefix('`')).and_then(|f| f.strip_suffix('`'));
        d = match found {
            Some("string literal") => d.with_note("SCL v1 has no string literals").with_help("name things with identifiers and numbers"),
            Some("`=`") if expected.iter().any(|e| e == "`{`") => d.with_help("to compare two values, use `==`"),
            Some(op @ ("`<`" | "`<=`" | "`>`" | "`>=`" | "`==`" | "`!=`")) => d
                .with_note("comparisons do not chain")
                .with_help(format!("compare each pair and join them with `&&`: `a {0} b && b {0} c`", op.trim_matches('`'))),
            Some(_) if expected.iter().any(|e| e == "identifier") && keyword.is_some_and(|k| k.chars().all(|c| c.is_ascii_alphabetic() || c == '_')) => {
                d.with_help(format!("`{}` is a keyword and cannot be used as a name", keyword.unwrap_or_default()))
            }
            _ if wants_semi => d.with_help("statements and declarations end with `;`"),
            None => d.with_help("the file ends in the middle of an item; complete or remove it"),
            _ => d,
        };
        d
    }

    /// Builds an expression, replacing it with an error node if it grows too tall.
    pub(crate) fn expr(&mut self, kind: ExprKind, span: Span) -> Expr {
        let child = match &kind {
            ExprKind::Int { .. } | ExprKind::Bool(_) | ExprKind::Path(_) | ExprKind::Error => 0,
            ExprKind::Unary(_, e) | ExprKind::Cast(e, _) | ExprKind::Field(e, _) => e.height,
            ExprKind::Binary(_, a, b) | ExprKind::Index(a, b) => a.height.max(b.height),
            ExprKind::Call(f, args) => args.iter().map(|a| a.height).fold(f.height, u32::max),
            ExprKind::Struct(_, fields) => fields.iter().map(|f| f.value.height).max().unwrap_or(0),
        };
        let height = child + 1;
        if height > MAX_EXPR_HEIGHT {
            if !self.too_tall_reported {
                self.too_tall_reported = true;
                self.diagnostics.push(
                    Diagnostic::error(codes::E0107, self.file, span, "expression nests too deeply")
                        .with_label(format!("more than {MAX_EXPR_HEIGHT} operators deep"))
                        .with_note("deeply nested expressions are refused so that no compiler pass can run out of stack")
                        .with_help("split the expression with `let` bindings"),
                );
            }
            return Expr { kind: ExprKind::Error, span, height: 1 };
        }
        Expr { kind, span, height }
    }

    /// Builds `a op b`.
    pub(crate) fn binary(&mut self, op: BinOp, a: Expr, b: Expr, span: Span) -> Expr {
        self.expr(ExprKind::Binary(op, Box::new(a), Box::new(b)), span)
    }

    /// Builds a generic or array type, refusing types nested too deeply (`a<a<a<...>>>`).
    pub(crate) fn ty(&mut self, kind: TypeKind, span: Span) -> Type {
        let ty = Type { kind, span };
        if type_height(&ty) > MAX_EXPR_HEIGHT as usize {
            if !self.too_tall_reported {
                self.too_tall_reported = true;
                self.diagnostics.push(
                    Diagnostic::error(codes::E0107, self.file, span, "type nests too deeply")
                        .with_label(format!("more than {MAX_EXPR_HEIGHT} levels deep")),
                );
            }
            return Type { kind: TypeKind::Named(Path::simple(Ident { name: "_".into(), span })), span };
        }
        ty
    }

    /// Builds a state declaration, checking where its `[capacity]` was written.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn state_decl(
        &mut self,
        kind: StateKind,
        kind_span: Span,
        before: Option<Expr>,
        name: Ident,
        ty: Type,
        after: Option<Expr>,
        init: Option<Expr>,
    ) -> StateDecl {
        if let (Some(b), Some(a)) = (&before, &after) {
            self.diagnostics.push(
                Diagnostic::error(codes::E0112, self.file, a.span, "capacity given twice")
                    .with_secondary(self.file, b.span, "first given here")
                    .with_help("keep one `[N]`"),
            );
        }
        StateDecl { kind, kind_span, capacity: before.or(after), name, ty, init }
    }
}

/// Types only nest through generics and arrays, whose children were checked when built:
/// this recursion is bounded by [`MAX_EXPR_HEIGHT`].
fn type_height(t: &Type) -> usize {
    match &t.kind {
        TypeKind::Named(_) => 1,
        TypeKind::Generic(g) => 1 + g.1.iter().map(type_height).max().unwrap_or(0),
        TypeKind::Array(e, _) => 1 + type_height(e),
    }
}

/// Turns lalrpop's expected-terminal list into words a person reads: binary operators are
/// dropped when the statement could also just end, and the many tokens that can start an
/// expression, a statement or an item are each named once.
fn friendly_expected(expected: &[String]) -> Vec<String> {
    let names: Vec<&str> = expected.iter().map(|e| e.trim_matches('"')).collect();
    let has = |n: &str| names.contains(&n);
    const CONTINUATIONS: &[&str] = &[
        "+", "-", "*", "/", "%", "&", "|", "^", "<<", ">>", "==", "!=", "<", "<=", ">", ">=", "&&",
        "||", "as", ".", "(", "[", "::", "=", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "<<=",
        ">>=",
    ];
    const EXPR_START: &[&str] = &["identifier", "integer", "(", "!", "-", "~", "true", "false"];
    const STMT_START: &[&str] = &["let", "if", "for", "return", "break", "continue", "{"];
    const ITEM_START: &[&str] =
        &["import", "const", "struct", "config", "global", "per_lock", "per_cpu", "per_thread", "per_waiter", "map", "fn", "policy"];
    let ends = has(";") || has(")") || has("]") || has(",") || has("{") || has("..");
    let is_expr = EXPR_START.iter().all(|t| has(t));
    let is_stmt = is_expr && STMT_START.iter().all(|t| has(t));
    let is_item = ITEM_START.iter().all(|t| has(t));
    let mut out = Vec::new();
    if is_stmt {
        out.push("a statement".to_string());
    } else if is_expr {
        out.push("an expression".to_string());
    }
    if is_item {
        out.push("an item (`import`, `const`, `struct`, state, `fn` or `policy`)".to_string());
    }
    for n in &names {
        let covered = (is_expr && EXPR_START.contains(n))
            || (is_stmt && STMT_START.contains(n))
            || (is_item && ITEM_START.contains(n))
            || (ends && CONTINUATIONS.contains(n));
        if !covered {
            out.push(match *n {
                "identifier" | "integer" | "string literal" => n.to_string(),
                other => format!("`{other}`"),
            });
        }
    }
    out
}

fn join_or(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [a] => a.clone(),
        [a, b] => format!("{a} or {b}"),
        [rest @ .., last] => format!("one of {}, or {last}", rest.join(", ")),
    }
}

fn is_item_start(t: &Tok<'_>) -> bool {
    matches!(
        t,
        Tok::Import | Tok::Const | Tok::Struct | Tok::Config | Tok::Global | Tok::PerLock | Tok::PerCpu
            | Tok::PerThread | Tok::PerWaiter | Tok::Map | Tok::Fn | Tok::Policy
    )
}

/// Cuts the token stream into items (see the module comment).
fn split_items<'a, 's>(tokens: &'a [Spanned<'s>]) -> Vec<&'a [Spanned<'s>]> {
    let mut items = Vec::new();
    let (mut start, mut depth, mut braced) = (0usize, 0usize, false);
    for (i, (_, tok, _)) in tokens.iter().enumerate() {
        if is_item_start(tok) && i > start {
            items.push(&tokens[start..i]);
            start = i;
            depth = 0;
        }
        if i == start {
            braced = matches!(tok, Tok::Fn | Tok::Policy | Tok::Struct);
        }
        match tok {
            Tok::LParen | Tok::LBrace | Tok::LBracket => depth += 1,
            Tok::RParen | Tok::RBrace | Tok::RBracket => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth == 0 && (matches!(tok, Tok::Semi) || (braced && matches!(tok, Tok::RBrace))) {
            items.push(&tokens[start..=i]);
            start = i + 1;
        }
    }
    if start < tokens.len() {
        items.push(&tokens[start..]);
    }
    items
}

/// Checks that the brackets of one item match; reports the first mismatch.
fn check_delimiters(file: FileId, item: &[Spanned<'_>], next: Option<&Spanned<'_>>, text_len: usize) -> Option<Diagnostic> {
    let mut open: Vec<(&Tok<'_>, Span)> = Vec::new();
    for (l, tok, r) in item {
        let span = Span::new(*l, *r);
        let closer = match tok {
            Tok::LParen | Tok::LBrace | Tok::LBracket => {
                open.push((tok, span));
                continue;
            }
            Tok::RParen => Tok::LParen,
            Tok::RBrace => Tok::LBrace,
            Tok::RBracket => Tok::LBracket,
            _ => continue,
        };
        match open.pop() {
            Some((o, _)) if *o == closer => {}
            Some((o, ospan)) => {
                return Some(
                    Diagnostic::error(codes::E0108, file, span, format!("mismatched closing delimiter `{}`", tok.text()))
                        .with_label(format!("this does not close the `{}`", o.text()))
                        .with_secondary(file, ospan, format!("this `{}` is still open", o.text()))
                        .with_help(format!("close the `{}` with `{}` first", o.text(), matching(o))),
                )
            }
            None => {
                return Some(
                    Diagnostic::error(codes::E0108, file, span, format!("unexpected closing delimiter `{}`", tok.text()))
                        .with_label(format!("there is no `{}` to close", tok_open(tok)))
                        .with_help("remove it, or add the opening delimiter it belongs to"),
                )
            }
        }
    }
    let (o, ospan) = open.pop()?;
    let end = next.map_or(text_len, |(l, _, _)| *l);
    let mut d = Diagnostic::error(codes::E0108, file, ospan, format!("unclosed delimiter `{}`", o.text()))
        .with_label(format!("this `{}` is never closed", o.text()))
        .with_help(format!("add the missing `{}`", matching(o)));
    if let Some((l, t, r)) = next {
        d = d.with_secondary(file, Span::new(*l, *r), format!("the next item begins here with {}", t.describe()));
    } else {
        d = d.with_secondary(file, Span::point(end), "the file ends here");
    }
    Some(d)
}

fn matching(open: &Tok<'_>) -> &'static str {
    match open {
        Tok::LParen => ")",
        Tok::LBracket => "]",
        _ => "}",
    }
}

fn tok_open(close: &Tok<'_>) -> &'static str {
    match close {
        Tok::RParen => "(",
        Tok::RBracket => "[",
        _ => "{",
    }
}

/// Drops parse errors that are only echoes of an earlier error.
///
/// After an error (a bad character the lexer dropped, or a parse error the grammar
/// recovered from) the parser resumes at the next token it can use, which is often in the
/// middle of the broken statement. A parse error whose triggering token comes before any
/// statement boundary (`;`, `{` or `}`) after the previous error is such an echo.
fn suppress_cascades(
    tokens: &[Spanned<'_>],
    lex_errors: &[Diagnostic],
    parse_errors: Vec<(usize, Diagnostic)>,
) -> Vec<Diagnostic> {
    let mut errors: Vec<(usize, Option<Diagnostic>)> =
        lex_errors.iter().map(|d| (d.primary.span.start as usize, None)).collect();
    errors.extend(parse_errors.into_iter().map(|(at, d)| (at, Some(d))));
    errors.sort_by_key(|(at, _)| *at);
    let boundary_between = |from: usize, to: usize| {
        let first = tokens.partition_point(|(l, _, _)| *l <= from);
        tokens[first..]
            .iter()
            .take_while(|(l, _, _)| *l < to)
            .any(|(_, t, _)| matches!(t, Tok::Semi | Tok::LBrace | Tok::RBrace))
    };
    let mut kept = Vec::new();
    let mut previous: Option<usize> = None;
    for (at, d) in errors {
        let echo = previous.is_some_and(|p| !boundary_between(p, at));
        previous = Some(at);
        if let Some(d) = d.filter(|_| !echo) {
            kept.push(d);
        }
    }
    kept
}

/// Parses a whole file: every item it could read, and every syntax error.
///
/// Items that failed to parse appear as [`ItemKind::Error`]. The diagnostics are sorted by
/// position. This function never panics, whatever `text` holds.
pub fn parse_file(file: FileId, text: &str) -> (SourceFile, Vec<Diagnostic>) {
    let lexed = lexer::lex(file, text);
    let mut diagnostics = lexed.diagnostics;
    if lexed.too_deep {
        return (SourceFile { items: Vec::new() }, diagnostics);
    }
    let mut st = State {
        file,
        token_spans: lexed.tokens.iter().map(|(l, _, r)| (*l, *r)).collect(),
        diagnostics: Vec::new(),
        parse_errors: Vec::new(),
        too_tall_reported: false,
        next_token: None,
    };
    let parser = generated::scl::ItemParser::new();
    let chunks = split_items(&lexed.tokens);
    let mut items = Vec::with_capacity(chunks.len());
    let mut consumed = 0;
    for chunk in chunks {
        consumed += chunk.len();
        let next = lexed.tokens.get(consumed);
        let span = Span::new(chunk[0].0, chunk[chunk.len() - 1].2);
        if let Some(d) = check_delimiters(file, chunk, next, text.len()) {
            st.diagnostics.push(d);
            items.push(Item { kind: ItemKind::Error, span });
            continue;
        }
        st.next_token = next.map(|(l, t, r)| (Span::new(*l, *r), t.describe()));
        let stream = chunk.iter().cloned().map(Ok::<_, Never>);
        match parser.parse(&mut st, stream) {
            Ok(item) => items.push(item),
            Err(e) => {
                st.error(e);
                items.push(Item { kind: ItemKind::Error, span });
            }
        }
    }
    let parse_errors = suppress_cascades(&lexed.tokens, &diagnostics, st.parse_errors);
    diagnostics.extend(parse_errors);
    diagnostics.append(&mut st.diagnostics);
    let file_ast = SourceFile { items };
    diagnostics.extend(crate::validate::validate(file, &file_ast));
    scl_diagnostics::sort(&mut diagnostics);
    (file_ast, diagnostics)
}
