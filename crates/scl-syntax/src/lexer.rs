//! The SCL lexer: logos turns text into tokens; this module adds the errors.
//!
//! Lexing never stops at a bad character: the bad piece becomes a diagnostic and is left
//! out of the token stream, so the parser still sees the rest of the file. Bracket nesting is
//! measured here too, because the one thing the parser must never be given is input deep
//! enough to exhaust a stack in a later, recursive pass.

use crate::codes;
use logos::Logos;
use scl_diagnostics::{Diagnostic, FileId, Span};

/// How deeply `(`, `[` and `{` may nest. Real policies stay under ten.
pub const MAX_NESTING: usize = 256;

/// The longest name, in bytes: the kernel refuses BTF and symbol names of 128 bytes or more
/// (`KSYM_NAME_LEN`), and SCL names become both.
pub const MAX_NAME_BYTES: usize = 127;

/// A unit that turns an integer literal into nanoseconds (`5us`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimeUnit {
    /// Nanoseconds, `ns`.
    Ns,
    /// Microseconds, `us`.
    Us,
    /// Milliseconds, `ms`.
    Ms,
    /// Seconds, `s`.
    S,
}

impl TimeUnit {
    /// Nanoseconds in one unit.
    pub fn nanos(self) -> u64 {
        match self {
            TimeUnit::Ns => 1,
            TimeUnit::Us => 1_000,
            TimeUnit::Ms => 1_000_000,
            TimeUnit::S => 1_000_000_000,
        }
    }

    /// The suffix as written.
    pub fn suffix(self) -> &'static str {
        match self {
            TimeUnit::Ns => "ns",
            TimeUnit::Us => "us",
            TimeUnit::Ms => "ms",
            TimeUnit::S => "s",
        }
    }
}

/// An integer literal: its value (already scaled by the unit) and its unit, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntLit {
    /// The value; for a duration, in nanoseconds.
    pub value: u64,
    /// The time unit suffix, if one was written.
    pub unit: Option<TimeUnit>,
}

/// What went wrong in one piece of input.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum LexError {
    /// A character that starts no token.
    #[default]
    InvalidChar,
    /// `/*` without its `*/`.
    UnterminatedComment,
    /// `"` without its closing `"` on the same line.
    UnterminatedString,
    /// Digits followed by letters that are neither a base prefix nor a time unit.
    BadNumber(String),
    /// A literal larger than `u64::MAX`.
    NumberTooLarge,
}

/// The tokens of SCL. Keywords and punctuation are documented by the text they match.
#[allow(missing_docs)]
#[derive(Logos, Clone, Debug, PartialEq, Eq)]
#[logos(error = LexError)]
#[logos(skip r"[ \t\r\n\f]+")]
#[logos(skip(r"//[^\n]*", allow_greedy = true))]
pub enum Tok<'s> {
    /// `/* ... */`, possibly nested; skipped.
    #[token("/*", block_comment)]
    BlockComment,

    // Keywords.
    #[token("policy")] Policy,
    #[token("for")] For,
    #[token("on")] On,
    #[token("fn")] Fn,
    #[token("struct")] Struct,
    #[token("const")] Const,
    #[token("config")] Config,
    #[token("global")] Global,
    #[token("per_lock")] PerLock,
    #[token("per_cpu")] PerCpu,
    #[token("per_thread")] PerThread,
    #[token("per_waiter")] PerWaiter,
    #[token("map")] Map,
    #[token("import")] Import,
    #[token("let")] Let,
    #[token("if")] If,
    #[token("else")] Else,
    #[token("in")] In,
    #[token("return")] Return,
    #[token("break")] Break,
    #[token("continue")] Continue,
    #[token("true")] True,
    #[token("false")] False,
    #[token("as")] As,
    #[token("inout")] Inout,

    // Punctuation.
    #[token("(")] LParen,
    #[token(")")] RParen,
    #[token("{")] LBrace,
    #[token("}")] RBrace,
    #[token("[")] LBracket,
    #[token("]")] RBracket,
    #[token(",")] Comma,
    #[token(";")] Semi,
    #[token(":")] Colon,
    #[token("::")] ColonColon,
    #[token(".")] Dot,
    #[token("..")] DotDot,
    #[token("->")] Arrow,
    #[token("=")] Eq,
    #[token("+=")] PlusEq,
    #[token("-=")] MinusEq,
    #[token("*=")] StarEq,
    #[token("/=")] SlashEq,
    #[token("%=")] PercentEq,
    #[token("&=")] AmpEq,
    #[token("|=")] PipeEq,
    #[token("^=")] CaretEq,
    #[token("<<=")] ShlEq,
    #[token(">>=")] ShrEq,
    #[token("==")] EqEq,
    #[token("!=")] NotEq,
    #[token("<")] Lt,
    #[token("<=")] Le,
    #[token(">")] Gt,
    #[token(">=")] Ge,
    #[token("+")] Plus,
    #[token("-")] Minus,
    #[token("*")] Star,
    #[token("/")] Slash,
    #[token("%")] Percent,
    #[token("!")] Bang,
    #[token("~")] Tilde,
    #[token("&")] Amp,
    #[token("|")] Pipe,
    #[token("^")] Caret,
    #[token("<<")] Shl,
    #[token(">>")] Shr,
    #[token("&&")] AndAnd,
    #[token("||")] OrOr,

    /// A name.
    #[regex(r"[A-Za-z_][A-Za-z0-9_]*", |lex| lex.slice())]
    Ident(&'s str),

    /// An integer, possibly with a base prefix, `_` separators and a time unit.
    #[regex(r"[0-9][0-9A-Za-z_]*", int_literal)]
    Int(IntLit),

    /// A string literal (not part of SCL v1; lexed so it gets a precise error).
    #[token("\"", string_literal)]
    Str(&'s str),
}

/// Every keyword of SCL as written: the `#[token]`s of [`Tok`] that are words, in their order
/// there. Editor grammars are checked against this table (`tests/tree_sitter.rs` and
/// `tests/vscode.rs`), so a keyword added to the lexer cannot be left uncoloured; the unit
/// test `keyword_table_is_the_lexers` keeps the table equal to the attributes.
pub const KEYWORDS: &[&str] = &[
    "policy", "for", "on", "fn", "struct", "const", "config", "global", "per_lock", "per_cpu",
    "per_thread", "per_waiter", "map", "import", "let", "if", "else", "in", "return", "break",
    "continue", "true", "false", "as", "inout",
];

impl Tok<'_> {
    /// How the token reads in a message: `` `fn` ``, `identifier `x``, ...
    pub fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("identifier `{s}`"),
            Tok::Int(_) => "integer literal".to_string(),
            Tok::Str(_) => "string literal".to_string(),
            other => format!("`{}`", other.text()),
        }
    }

    /// The fixed text of a keyword or punctuation token.
    pub fn text(&self) -> &'static str {
        use Tok::*;
        match self {
            BlockComment => "/*",
            Policy => "policy", For => "for", On => "on", Fn => "fn", Struct => "struct",
            Const => "const", Config => "config", Global => "global", PerLock => "per_lock",
            PerCpu => "per_cpu", PerThread => "per_thread", PerWaiter => "per_waiter", Map => "map",
            Import => "import", Let => "let", If => "if", Else => "else", In => "in",
            Return => "return", Break => "break", Continue => "continue", True => "true",
            False => "false", As => "as", Inout => "inout",
            LParen => "(", RParen => ")", LBrace => "{", RBrace => "}", LBracket => "[",
            RBracket => "]", Comma => ",", Semi => ";", Colon => ":", ColonColon => "::",
            Dot => ".", DotDot => "..", Arrow => "->", Eq => "=", PlusEq => "+=", MinusEq => "-=",
            StarEq => "*=", SlashEq => "/=", PercentEq => "%=", AmpEq => "&=", PipeEq => "|=",
            CaretEq => "^=", ShlEq => "<<=", ShrEq => ">>=", EqEq => "==", NotEq => "!=",
            Lt => "<", Le => "<=", Gt => ">", Ge => ">=", Plus => "+", Minus => "-", Star => "*",
            Slash => "/", Percent => "%", Bang => "!", Tilde => "~", Amp => "&", Pipe => "|",
            Caret => "^", Shl => "<<", Shr => ">>", AndAnd => "&&", OrOr => "||",
            Ident(_) => "identifier", Int(_) => "integer", Str(_) => "string",
        }
    }
}

fn block_comment<'s>(lex: &mut logos::Lexer<'s, Tok<'s>>) -> Result<logos::Skip, LexError> {
    let rest = lex.remainder().as_bytes();
    let mut depth = 1usize;
    let mut i = 0;
    while i + 1 < rest.len() {
        match (rest[i], rest[i + 1]) {
            (b'/', b'*') => {
                depth += 1;
                i += 2;
            }
            (b'*', b'/') => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    lex.bump(i);
                    return Ok(logos::Skip);
                }
            }
            _ => i += 1,
        }
    }
    lex.bump(rest.len());
    Err(LexError::UnterminatedComment)
}

fn string_literal<'s>(lex: &mut logos::Lexer<'s, Tok<'s>>) -> Result<&'s str, LexError> {
    let rest = lex.remainder();
    let mut escaped = false;
    for (i, c) in rest.char_indices() {
        match c {
            '\n' => break,
            '\\' if !escaped => escaped = true,
            '"' if !escaped => {
                lex.bump(i + 1);
                return Ok(&rest[..i]);
            }
            _ => escaped = false,
        }
    }
    let line_len = rest.find('\n').unwrap_or(rest.len());
    lex.bump(line_len);
    Err(LexError::UnterminatedString)
}

fn int_literal<'s>(lex: &mut logos::Lexer<'s, Tok<'s>>) -> Result<IntLit, LexError> {
    parse_int(lex.slice())
}

/// Parses `123`, `1_000`, `0x1f`, `0b101`, and any of them followed by `ns`, `us`, `ms` or `s`.
pub fn parse_int(text: &str) -> Result<IntLit, LexError> {
    let (radix, body) = if let Some(b) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        (16, b)
    } else if let Some(b) = text.strip_prefix("0b").or_else(|| text.strip_prefix("0B")) {
        (2, b)
    } else {
        (10, text)
    };
    let digits_end = body.find(|c: char| !(c.is_digit(radix) || c == '_')).unwrap_or(body.len());
    let (digits, suffix) = body.split_at(digits_end);
    let unit = match suffix {
        "" => None,
        "ns" => Some(TimeUnit::Ns),
        "us" => Some(TimeUnit::Us),
        "ms" => Some(TimeUnit::Ms),
        "s" => Some(TimeUnit::S),
        _ => return Err(LexError::BadNumber(text.to_string())),
    };
    let digits: String = digits.chars().filter(|&c| c != '_').collect();
    if digits.is_empty() {
        return Err(LexError::BadNumber(text.to_string()));
    }
    let value = u64::from_str_radix(&digits, radix).map_err(|_| LexError::NumberTooLarge)?;
    let value = value.checked_mul(unit.map_or(1, TimeUnit::nanos)).ok_or(LexError::NumberTooLarge)?;
    Ok(IntLit { value, unit })
}

/// A token with its byte range, as the parser takes it.
pub type Spanned<'s> = (usize, Tok<'s>, usize);

/// The tokens of a file, and what was wrong with its text.
pub struct Lexed<'s> {
    /// Every good token, in order.
    pub tokens: Vec<Spanned<'s>>,
    /// Lexical errors; the pieces they cover are not in `tokens`.
    pub diagnostics: Vec<Diagnostic>,
    /// Set when brackets nest deeper than [`MAX_NESTING`]; the parser is then not run.
    pub too_deep: bool,
}

/// Splits `text` into tokens.
pub fn lex(file: FileId, text: &str) -> Lexed<'_> {
    let mut tokens = Vec::new();
    let mut diagnostics = Vec::new();
    let mut depth = 0usize;
    let mut too_deep = false;
    // Each long name is reported once, however often it is used.
    let mut long_names = std::collections::HashSet::new();
    // A run of characters no token starts with is one error: (its diagnostic, characters).
    let mut invalid_run: Option<(usize, usize)> = None;
    let mut lexical_errors = 0usize;
    let mut lexer = Tok::lexer(text);
    // A UTF-8 byte-order mark (editors on Windows save one) is not part of the text. Spans
    // stay offsets into the whole text.
    if text.starts_with('\u{feff}') {
        lexer.bump('\u{feff}'.len_utf8());
    }
    while let Some(result) = lexer.next() {
        let range = lexer.span();
        let span = Span::new(range.start, range.end);
        match result {
            Ok(tok) => {
                match tok {
                    Tok::LParen | Tok::LBrace | Tok::LBracket => {
                        depth += 1;
                        if depth > MAX_NESTING && !too_deep {
                            too_deep = true;
                            diagnostics.push(
                                Diagnostic::error(codes::E0107, file, span, "brackets nest too deeply")
                                    .with_label(format!("this is nesting level {depth}"))
                                    .with_note(format!(
                                        "SCL allows at most {MAX_NESTING} levels of `(`, `[` and `{{`; deeper input is refused before parsing so that no later pass can run out of stack"
                                    ))
                                    .with_help("split the expression with `let` bindings or move inner blocks into functions"),
                            );
                        }
                    }
                    Tok::RParen | Tok::RBrace | Tok::RBracket => depth = depth.saturating_sub(1),
                    Tok::Ident(name) if name.len() > MAX_NAME_BYTES && long_names.insert(name) => {
                        diagnostics.push(
                            Diagnostic::error(codes::E0115, file, span, format!("a name of {} bytes", name.len()))
                                .with_label(format!("names are at most {MAX_NAME_BYTES} bytes"))
                                .with_note("names become BTF and symbol names in the object, which the kernel limits to 127 bytes")
                                .with_help("shorten the name"),
                        );
                    }
                    _ => {}
                }
                tokens.push((range.start, tok, range.end));
            }
            Err(LexError::InvalidChar) if invalid_run.is_some_and(|(i, _)| diagnostics[i].primary.span.end == span.start) => {
                let (i, n) = invalid_run.take().unwrap_or_default();
                let d: &mut Diagnostic = &mut diagnostics[i];
                d.primary.span.end = span.end;
                d.message = format!("{} unexpected characters", n + 1);
                d.primary.message = "no SCL token starts with these characters".into();
                invalid_run = Some((i, n + 1));
            }
            Err(e) => {
                lexical_errors += 1;
                if lexical_errors > MAX_LEXICAL_ERRORS {
                    continue;
                }
                if lexical_errors == MAX_LEXICAL_ERRORS {
                    diagnostics.push(too_many_lexical_errors(file, span));
                    continue;
                }
                invalid_run = matches!(e, LexError::InvalidChar).then_some((diagnostics.len(), 1));
                diagnostics.push(lex_error(file, text, span, e));
            }
        }
    }
    Lexed { tokens, diagnostics, too_deep }
}

/// Lexical errors reported per file; the last says that the rest are not. (A file of binary
/// garbage has an error every few bytes; a thousand of them say all there is to say.)
pub const MAX_LEXICAL_ERRORS: usize = 1000;

fn too_many_lexical_errors(file: FileId, span: Span) -> Diagnostic {
    Diagnostic::error(codes::E0103, file, span, "too many lexical errors")
        .with_label(format!("the errors from here on are not reported (only the first {} are)", MAX_LEXICAL_ERRORS - 1))
        .with_note("is this a policy file? it looks like binary or generated data")
}

fn lex_error(file: FileId, text: &str, span: Span, e: LexError) -> Diagnostic {
    match e {
        LexError::InvalidChar => {
            let c = text[span.range()].chars().next().unwrap_or('?');
            let mut d = Diagnostic::error(codes::E0103, file, span, format!("unexpected character `{}`", c.escape_debug()))
                .with_label("no SCL token starts with this character");
            d = match c {
                '#' => d.with_help("comments start with `//`"),
                '\'' => d.with_help("SCL has no character literals; use an integer"),
                '@' | '$' => d.with_help("names are letters, digits and `_`, starting with a letter or `_`"),
                '?' => d.with_help("handle an optional value with `if let x = m.get(k) { ... }`"),
                _ => d,
            };
            d
        }
        LexError::UnterminatedComment => {
            Diagnostic::error(codes::E0104, file, Span::new(span.start as usize, span.start as usize + 2), "unterminated block comment")
                .with_label("this comment is never closed")
                .with_note("block comments nest: every `/*` needs its own `*/`")
                .with_help("add `*/` where the comment should end")
        }
        LexError::UnterminatedString => {
            Diagnostic::error(codes::E0105, file, span, "unterminated string literal")
                .with_label("this string has no closing `\"` on its line")
                .with_help("close the string with `\"` before the end of the line")
        }
        LexError::BadNumber(t) => {
            Diagnostic::error(codes::E0106, file, span, format!("invalid number `{t}`"))
                .with_label("not a number")
                .with_note("integers are decimal (`1_000`), hex (`0x3f`) or binary (`0b101`), optionally followed by a time unit: `ns`, `us`, `ms` or `s`")
                .with_help("names cannot start with a digit")
        }
        LexError::NumberTooLarge => {
            Diagnostic::error(codes::E0106, file, span, "integer literal too large")
                .with_label("does not fit in 64 bits")
                .with_note(format!("the largest integer SCL can hold is {} (u64)", u64::MAX))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<Tok<'_>> {
        lex(FileId(0), text).tokens.into_iter().map(|(_, t, _)| t).collect()
    }

    #[test]
    fn keywords_names_and_compound_operators() {
        assert_eq!(
            kinds("policy p for spinlock { x <<= 2; }"),
            vec![Tok::Policy, Tok::Ident("p"), Tok::For, Tok::Ident("spinlock"), Tok::LBrace,
                Tok::Ident("x"), Tok::ShlEq, Tok::Int(IntLit { value: 2, unit: None }), Tok::Semi, Tok::RBrace]
        );
    }

    #[test]
    fn integers_with_bases_separators_and_units() {
        assert_eq!(parse_int("1_000").unwrap().value, 1000);
        assert_eq!(parse_int("0x1F").unwrap().value, 31);
        assert_eq!(parse_int("0b101").unwrap().value, 5);
        assert_eq!(parse_int("5us").unwrap(), IntLit { value: 5000, unit: Some(TimeUnit::Us) });
        assert_eq!(parse_int("2s").unwrap().value, 2_000_000_000);
        assert_eq!(parse_int("18446744073709551615").unwrap().value, u64::MAX);
        assert_eq!(parse_int("18446744073709551616"), Err(LexError::NumberTooLarge));
        assert_eq!(parse_int("100000000000s"), Err(LexError::NumberTooLarge));
        assert!(matches!(parse_int("12abc"), Err(LexError::BadNumber(_))));
        assert!(matches!(parse_int("0x"), Err(LexError::BadNumber(_))));
    }

    #[test]
    fn comments_are_skipped_and_nest() {
        assert_eq!(kinds("a /* x /* y */ z */ b // c\nd"), vec![Tok::Ident("a"), Tok::Ident("b"), Tok::Ident("d")]);
    }

    #[test]
    fn errors_do_not_stop_lexing() {
        let l = lex(FileId(0), "a # b \"open\nc /* never");
        let codes: Vec<_> = l.diagnostics.iter().map(|d| d.code.code).collect();
        assert_eq!(codes, ["E0103", "E0105", "E0104"]);
        assert_eq!(l.tokens.len(), 3);
    }

    #[test]
    fn keyword_table_is_the_lexers() {
        // The words among the `#[token("...")]` attributes of `Tok`, read from this file.
        let source = include_str!("lexer.rs");
        let enum_body = &source[source.find("pub enum Tok<'s>").unwrap()..source.find("impl Tok<'_>").unwrap()];
        let attributes: Vec<&str> = enum_body
            .split("#[token(\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .filter(|text| text.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
            .collect();
        assert_eq!(attributes, KEYWORDS);
        for &word in KEYWORDS {
            let toks = kinds(word);
            assert_eq!(toks.len(), 1, "{word}");
            assert!(!matches!(toks[0], Tok::Ident(_)), "`{word}` lexes as a name");
            assert_eq!(toks[0].text(), word);
        }
    }

    #[test]
    fn deep_nesting_is_flagged_once() {
        let text = "(".repeat(10_000);
        let l = lex(FileId(0), &text);
        assert!(l.too_deep);
        assert_eq!(l.diagnostics.len(), 1);
    }
}
