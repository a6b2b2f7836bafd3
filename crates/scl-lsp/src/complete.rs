//! Completion: what may be written at the cursor.
//!
//! The context comes from the compiler's lexer, not from the syntax tree: while a line is
//! being typed the item around the cursor usually does not parse (an unbalanced item is not
//! parsed at all), but its tokens are all there. A scan of the tokens before the cursor
//! tracks the braces (is the cursor in a policy, a hook or function body, a struct?) and the
//! locals each body declares. The candidates come from the checked program (state,
//! functions, structs, with their types) and the catalogue (hooks, built-ins, fields,
//! methods), so completion offers exactly what the checker accepts.

use crate::analysis::Analysis;
use lsp_types::{CompletionItem, CompletionItemKind, Documentation, InsertTextFormat, MarkupContent, MarkupKind};
use scl_catalogue::{self as cat, LockKind, MapKind, Target};
use scl_sema::hir::{Program, StateStorage, StructId};
use scl_sema::refs::Target as Ref;
use scl_sema::ty::Ty;
use scl_syntax::ast::ItemKind;
use scl_syntax::lexer::{lex, Spanned, Tok};

/// What the client can take and what the server checks for.
#[derive(Clone, Copy, Debug, Default)]
pub struct Settings {
    /// The client accepts snippets (`$0` placeholders).
    pub snippets: bool,
    /// The target hooks are offered for; `None` offers every target's.
    pub target: Option<Target>,
}

/// The completions at byte `offset`.
pub fn complete(analysis: &Analysis, offset: usize, settings: &Settings) -> Vec<CompletionItem> {
    let text = analysis.text();
    let offset = floor_char_boundary(text, offset);
    let tokens = lex(analysis.file, text).tokens;
    let split = tokens.partition_point(|(_, _, end)| *end <= offset);
    let (mut before, after) = tokens.split_at(split);
    // The word being typed is not context: `batch.ru|` completes the members of `batch`.
    if let Some((_, Tok::Ident(_), end)) = before.last() {
        if *end == offset {
            before = &before[..before.len() - 1];
        }
    }
    if in_comment(text, before.last().map_or(0, |t| t.2), offset) {
        return Vec::new();
    }
    let cx = Completer { program: &analysis.checked.program, analysis, settings };
    let scan = Scan::run(before);
    match before.last().map(|t| &t.1) {
        Some(Tok::Dot) => cx.members(before, &scan),
        Some(Tok::ColonColon) => match before.iter().rev().nth(1) {
            Some((_, Tok::Ident(m), _)) => cx.module_items(m),
            _ => Vec::new(),
        },
        _ => cx.by_context(&scan, after),
    }
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// True if the cursor is inside a comment that starts after the last token.
fn in_comment(text: &str, from: usize, to: usize) -> bool {
    let gap = &text[from.min(to)..to];
    let line = gap.rsplit('\n').next().unwrap_or("");
    line.contains("//") || gap.matches("/*").count() > gap.matches("*/").count()
}

/// A type as written in a declaration the scan saw.
#[derive(Clone, Debug, PartialEq)]
enum TypeRef {
    /// `u32`, `lock`, `S`, `hist::Log2`.
    Named(String),
    /// `[T; N]`.
    Array(Box<TypeRef>),
    /// The value of a map lookup bound by `if let v = m.get(k)`.
    MapValue(String),
}

/// A local the scan saw declared: a parameter, a `let`, a loop variable or an `if let`.
#[derive(Clone, Debug)]
struct Local {
    name: String,
    ty: Option<TypeRef>,
}

/// What a `{` opened.
#[derive(Clone, Debug, PartialEq)]
enum FrameKind {
    /// `policy p for kinds {`, with the kinds written.
    Policy(Vec<LockKind>),
    /// A hook or function body.
    Body,
    /// A block inside a body (`if`, `for`, a bare block, a struct literal).
    Block,
    /// `struct S {`.
    Struct,
    /// Anything else (a struct literal in a constant, a stray brace).
    Other,
}

#[derive(Clone, Debug)]
struct Frame {
    kind: FrameKind,
    locals: Vec<Local>,
    /// In a policy: the hooks handled so far.
    hooks: Vec<&'static str>,
}

/// The braces open at the cursor, innermost last, and the tokens of the statement or
/// header the cursor is in.
struct Scan<'t, 's> {
    frames: Vec<Frame>,
    header: &'t [Spanned<'s>],
}

impl<'t, 's> Scan<'t, 's> {
    fn run(tokens: &'t [Spanned<'s>]) -> Scan<'t, 's> {
        let mut frames: Vec<Frame> = Vec::new();
        let mut header_start = 0;
        for (i, (_, tok, _)) in tokens.iter().enumerate() {
            match tok {
                Tok::LBrace => {
                    let header = &tokens[header_start..i];
                    let inside_body = matches!(frames.last().map(|f| &f.kind), Some(FrameKind::Body | FrameKind::Block));
                    if let (Some(frame), Some(hook)) = (frames.last_mut(), hook_name(header)) {
                        frame.hooks.push(hook);
                    }
                    frames.push(open_frame(header, inside_body));
                }
                Tok::RBrace => {
                    frames.pop();
                }
                Tok::Semi => {
                    if let (Some(local), Some(frame)) = (let_local(&tokens[header_start..i]), frames.last_mut()) {
                        frame.locals.push(local);
                    }
                }
                _ => continue,
            }
            header_start = i + 1;
        }
        Scan { frames, header: &tokens[header_start..] }
    }

    fn top(&self) -> Option<&FrameKind> {
        self.frames.last().map(|f| &f.kind)
    }

    /// The locals in scope, innermost first.
    fn locals(&self) -> impl Iterator<Item = &Local> {
        self.frames.iter().rev().flat_map(|f| f.locals.iter().rev())
    }

    /// The hooks the innermost policy handles before the cursor.
    fn hooks(&self) -> &[&'static str] {
        self.frames.last().map_or(&[], |f| f.hooks.as_slice())
    }

    fn policy_kinds(&self) -> Option<&[LockKind]> {
        self.frames.iter().rev().find_map(|f| match &f.kind {
            FrameKind::Policy(kinds) => Some(kinds.as_slice()),
            _ => None,
        })
    }
}

/// The frame a `{` opens after `header`, with the locals the header declares.
fn open_frame(header: &[Spanned], inside_body: bool) -> Frame {
    let first = header.first().map(|t| &t.1);
    let (kind, locals) = match first {
        Some(Tok::Policy) => (FrameKind::Policy(lock_kinds(header)), Vec::new()),
        Some(Tok::On | Tok::Fn) => (FrameKind::Body, params(header)),
        Some(Tok::Struct) => (FrameKind::Struct, Vec::new()),
        _ if inside_body => (FrameKind::Block, block_locals(header)),
        _ => (FrameKind::Other, Vec::new()),
    };
    Frame { kind, locals, hooks: Vec::new() }
}

/// The catalogue hook a header `on name(...)` handles.
fn hook_name(header: &[Spanned]) -> Option<&'static str> {
    match header {
        [(_, Tok::On, _), (_, Tok::Ident(name), _), ..] => cat::hook(name).map(|h| h.name),
        _ => None,
    }
}

/// The lock kinds after `for` in a policy header.
fn lock_kinds(header: &[Spanned]) -> Vec<LockKind> {
    header.iter().filter_map(|t| match t.1 {
        Tok::Ident(name) => LockKind::from_name(name),
        _ => None,
    })
    .collect()
}

/// The parameters `name: T` of a hook or function header.
fn params(header: &[Spanned]) -> Vec<Local> {
    let Some(open) = header.iter().position(|t| t.1 == Tok::LParen) else { return Vec::new() };
    let mut locals = Vec::new();
    for i in open + 1..header.len().saturating_sub(1) {
        if let (Tok::Ident(name), Tok::Colon) = (&header[i].1, &header[i + 1].1) {
            locals.push(Local { name: name.to_string(), ty: type_ref(&header[i + 2..]) });
        }
    }
    locals
}

/// The loop variable of `for v in`, or the binding of `if let v = m.get(k)`.
fn block_locals(header: &[Spanned]) -> Vec<Local> {
    let toks: Vec<&Tok> = header.iter().map(|t| &t.1).collect();
    if let [Tok::For, Tok::Ident(v), ..] = toks.as_slice() {
        return vec![Local { name: v.to_string(), ty: None }];
    }
    let Some(at) = toks.iter().position(|t| **t == Tok::Let) else { return Vec::new() };
    match &toks[at..] {
        [_, Tok::Ident(v), Tok::Eq, Tok::Ident(m), Tok::Dot, ..] => {
            vec![Local { name: v.to_string(), ty: Some(TypeRef::MapValue(m.to_string())) }]
        }
        [_, Tok::Ident(v), ..] => vec![Local { name: v.to_string(), ty: None }],
        _ => Vec::new(),
    }
}

/// The local a finished `let name: T = ...;` statement declares.
fn let_local(stmt: &[Spanned]) -> Option<Local> {
    match stmt {
        [(_, Tok::Let, _), (_, Tok::Ident(name), _), (_, Tok::Colon, _), rest @ ..] => Some(Local { name: name.to_string(), ty: type_ref(rest) }),
        [(_, Tok::Let, _), (_, Tok::Ident(name), _), ..] => Some(Local { name: name.to_string(), ty: None }),
        _ => None,
    }
}

/// The type at the start of `tokens`: `T`, `m::T` or `[T; N]`.
fn type_ref(tokens: &[Spanned]) -> Option<TypeRef> {
    match tokens {
        [(_, Tok::Ident(m), _), (_, Tok::ColonColon, _), (_, Tok::Ident(t), _), ..] => Some(TypeRef::Named(format!("{m}::{t}"))),
        [(_, Tok::Ident(t), _), ..] => Some(TypeRef::Named(t.to_string())),
        [(_, Tok::LBracket, _), rest @ ..] => Some(TypeRef::Array(Box::new(type_ref(rest)?))),
        _ => None,
    }
}

/// What a value with members is.
enum Members {
    Lock,
    Waiter,
    Struct(StructId),
    Map(MapKind),
}

/// Builds completion items from the program and the catalogue.
struct Completer<'a> {
    program: &'a Program,
    analysis: &'a Analysis,
    settings: &'a Settings,
}

impl Completer<'_> {
    /// Completions where no `.` or `::` comes first, by where the cursor is.
    fn by_context(&self, scan: &Scan, after: &[Spanned]) -> Vec<CompletionItem> {
        let header: Vec<&Tok> = scan.header.iter().map(|t| &t.1).collect();
        let prev = header.last().copied();
        match (scan.top(), header.first().copied()) {
            (_, Some(Tok::Import)) => self.modules(),
            (None, Some(Tok::Policy)) if header.contains(&&Tok::For) => self.lock_kinds(),
            _ if matches!(prev, Some(Tok::Arrow)) => self.types(false),
            (Some(FrameKind::Struct), _) if matches!(prev, Some(Tok::Colon)) => self.types(false),
            (_, Some(Tok::Map)) if matches!(prev, Some(Tok::Colon)) => self.types(true),
            (_, Some(first)) if matches!(prev, Some(Tok::Colon)) && declares_type(first, &header) => self.types(false),
            (None, _) if header.is_empty() => self.item_keywords(),
            (Some(FrameKind::Policy(_)), None | Some(Tok::On)) if header.len() <= 1 => {
                self.hooks(scan, after, header.is_empty())
            }
            (Some(FrameKind::Body | FrameKind::Block), _) => self.expressions(scan),
            _ => Vec::new(),
        }
    }

    fn item(&self, label: &str, kind: CompletionItemKind, detail: String, doc: Option<String>, rank: u8) -> CompletionItem {
        CompletionItem {
            label: label.to_string(),
            kind: Some(kind),
            detail: (!detail.is_empty()).then_some(detail),
            documentation: doc.filter(|d| !d.is_empty()).map(|value| Documentation::MarkupContent(MarkupContent { kind: MarkupKind::Markdown, value })),
            // Locals first, then state and items, then built-ins, then keywords.
            sort_text: Some(format!("{rank}{label}")),
            ..CompletionItem::default()
        }
    }

    /// `text` inserted as a snippet where the client takes them, else with `$0` removed.
    fn with_snippet(&self, mut item: CompletionItem, text: String) -> CompletionItem {
        if self.settings.snippets {
            item.insert_text_format = Some(InsertTextFormat::SNIPPET);
            item.insert_text = Some(text);
        } else {
            item.insert_text = Some(text.replace("$0", ""));
        }
        item
    }

    fn describe(&self, target: Ref) -> Option<String> {
        Some(target.describe(self.program))
    }

    /// `on HOOK(...) {}` for every hook the policy's lock kinds and the target have,
    /// except those the policy already handles.
    fn hooks(&self, scan: &Scan, after: &[Spanned], with_on: bool) -> Vec<CompletionItem> {
        let kinds = scan.policy_kinds().unwrap_or(&[]);
        let given = hooks_given(scan, after);
        cat::HOOKS
            .iter()
            .filter(|h| kinds.iter().all(|k| h.kinds.includes(*k)))
            .filter(|h| match self.settings.target {
                Some(t) => h.on_target(t),
                None => true,
            })
            .filter(|h| !given.contains(&h.name))
            .map(|h| {
                let item = self.item(h.name, CompletionItemKind::EVENT, format!("on {}", h.signature()), self.describe(Ref::Hook(h.name)), 1);
                self.with_snippet(item, hook_snippet(h, with_on))
            })
            .collect()
    }

    /// Locals, state, constants, functions, structs, modules, built-ins and keywords.
    fn expressions(&self, scan: &Scan) -> Vec<CompletionItem> {
        let mut items = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for local in scan.locals().filter(|l| seen.insert(l.name.clone())) {
            let detail = local.ty.as_ref().map_or(String::new(), type_text);
            items.push(self.item(&local.name, CompletionItemKind::VARIABLE, detail, None, 0));
        }
        items.extend(self.states());
        items.extend(self.consts());
        items.extend(self.functions(|n| !n.contains("::")));
        items.extend(self.structs(|n| !n.contains("::")));
        items.extend(self.modules());
        items.extend(self.builtins());
        for kw in ["let", "if", "else", "for", "in", "return", "break", "continue", "true", "false", "as"] {
            items.push(self.item(kw, CompletionItemKind::KEYWORD, String::new(), None, 5));
        }
        items
    }

    /// The document's state, but for `per_waiter` fields, which are read through a waiter.
    fn states(&self) -> Vec<CompletionItem> {
        self.program
            .states
            .iter()
            .filter(|(_, s)| !s.name.contains("::") && !matches!(s.storage, StateStorage::PerWaiter { .. }))
            .map(|(id, s)| {
                let kind = if matches!(s.storage, StateStorage::Config(_)) { CompletionItemKind::CONSTANT } else { CompletionItemKind::VARIABLE };
                let detail = format!("{}: {}", s.kind.keyword(), self.program.ty_name(&s.ty));
                self.item(&s.name, kind, detail, self.describe(Ref::State(id)), 1)
            })
            .collect()
    }

    /// The document's constants (the checker keeps them in the tree, not the program).
    fn consts(&self) -> Vec<CompletionItem> {
        let file = self.analysis.source();
        self.analysis
            .ast
            .items
            .iter()
            .filter_map(|item| match &item.kind {
                ItemKind::Const(c) => Some(self.item(&c.name.name, CompletionItemKind::CONSTANT, format!("const: {}", file.slice(c.ty.span)), None, 1)),
                _ => None,
            })
            .collect()
    }

    fn functions(&self, keep: impl Fn(&str) -> bool) -> Vec<CompletionItem> {
        self.program
            .funcs
            .iter()
            .filter(|(_, f)| keep(&f.name))
            .map(|(id, f)| {
                let label = short_name(&f.name);
                let item = self.item(label, CompletionItemKind::FUNCTION, "fn".into(), self.describe(Ref::Func(id)), 2);
                self.with_snippet(item, format!("{label}($0)"))
            })
            .collect()
    }

    fn structs(&self, keep: impl Fn(&str) -> bool) -> Vec<CompletionItem> {
        self.program
            .structs
            .iter()
            .filter(|(_, s)| keep(&s.name))
            .map(|(id, s)| self.item(short_name(&s.name), CompletionItemKind::STRUCT, "struct".into(), self.describe(Ref::Struct(id)), 2))
            .collect()
    }

    fn builtins(&self) -> Vec<CompletionItem> {
        cat::BUILTINS
            .iter()
            .map(|b| {
                let detail = if b.may_sleep { format!("{} (may sleep)", b.signature()) } else { b.signature() };
                let item = self.item(b.name, CompletionItemKind::FUNCTION, detail, self.describe(Ref::Builtin(b.name)), 3);
                self.with_snippet(item, if b.params.is_empty() { format!("{}()", b.name) } else { format!("{}($0)", b.name) })
            })
            .collect()
    }

    /// The stdlib modules: the imported ones in a body, all of them after `import`.
    fn modules(&self) -> Vec<CompletionItem> {
        scl_sema::stdlib_modules()
            .into_iter()
            .map(|m| self.item(m, CompletionItemKind::MODULE, "stdlib module".into(), None, 2))
            .collect()
    }

    /// The items of the stdlib module `m`, after `m::`.
    fn module_items(&self, m: &str) -> Vec<CompletionItem> {
        let prefix = format!("{m}::");
        let mut items = self.functions(|n| n.starts_with(&prefix));
        items.extend(self.structs(|n| n.starts_with(&prefix)));
        items
    }

    fn lock_kinds(&self) -> Vec<CompletionItem> {
        LockKind::ALL.iter().map(|k| self.item(k.name(), CompletionItemKind::ENUM_MEMBER, "lock kind".into(), None, 1)).collect()
    }

    /// Type names; with `maps`, the map kinds too (after `map NAME:`).
    fn types(&self, maps: bool) -> Vec<CompletionItem> {
        let scalars = ["u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64", "bool", "kstack", "lock", "waiter"];
        let mut items: Vec<CompletionItem> = scalars
            .iter()
            .map(|t| self.item(t, CompletionItemKind::TYPE_PARAMETER, "type".into(), crate::navigate::builtin_word_doc(t), 1))
            .collect();
        items.extend(self.structs(|_| true).into_iter().map(|mut i| {
            // Module structs are written qualified in a type: `hist::Log2`.
            i.label = self.qualified_struct(&i.label);
            i
        }));
        if maps {
            items.extend(cat::MAP_KINDS.iter().map(|k| self.item(k.name, CompletionItemKind::CLASS, "map kind".into(), Some(k.doc.to_string()), 0)));
        }
        items
    }

    fn qualified_struct(&self, short: &str) -> String {
        self.program.structs.values().map(|s| s.name.as_str()).find(|n| short_name(n) == short).unwrap_or(short).to_string()
    }

    fn item_keywords(&self) -> Vec<CompletionItem> {
        ["import", "const", "struct", "config", "global", "per_lock", "per_cpu", "per_thread", "per_waiter", "map", "fn", "policy"]
            .iter()
            .map(|kw| self.item(kw, CompletionItemKind::KEYWORD, String::new(), None, 5))
            .collect()
    }

    /// Fields, `lock`/`waiter` fields or map methods of the value before the `.`.
    fn members(&self, before: &[Spanned], scan: &Scan) -> Vec<CompletionItem> {
        let Some(members) = receiver(before).and_then(|chain| self.resolve(&chain, scan)) else { return Vec::new() };
        match members {
            Members::Lock => self.context_fields(cat::LOCK_FIELDS, "lock"),
            Members::Waiter => {
                let mut items = self.context_fields(cat::WAITER_FIELDS, "waiter");
                items.extend(self.per_waiter_fields());
                items
            }
            Members::Struct(s) => self.program.structs[s]
                .fields
                .iter()
                .enumerate()
                .map(|(index, f)| self.item(&f.name, CompletionItemKind::FIELD, self.program.ty_name(&f.ty), self.describe(Ref::Field { owner: s, index }), 0))
                .collect(),
            Members::Map(kind) => cat::METHODS
                .iter()
                .filter(|m| m.kinds.contains(&kind))
                .map(|m| {
                    let item = self.item(m.name, CompletionItemKind::METHOD, String::new(), self.describe(Ref::Method(m.name)), 0);
                    self.with_snippet(item, format!("{}($0)", m.name))
                })
                .collect(),
        }
    }

    fn context_fields(&self, fields: &[cat::FieldDef], owner: &str) -> Vec<CompletionItem> {
        fields
            .iter()
            .map(|f| {
                let target = if owner == "lock" { Ref::LockField(f.name) } else { Ref::WaiterField(f.name) };
                self.item(f.name, CompletionItemKind::FIELD, f.ty.name().to_string(), self.describe(target), 0)
            })
            .collect()
    }

    fn per_waiter_fields(&self) -> Vec<CompletionItem> {
        self.program
            .states
            .iter()
            .filter(|(_, s)| matches!(s.storage, StateStorage::PerWaiter { .. }))
            .map(|(id, s)| self.item(&s.name, CompletionItemKind::FIELD, self.program.ty_name(&s.ty), self.describe(Ref::State(id)), 0))
            .collect()
    }

    /// What the chain `a[i].b.c` before the `.` is.
    fn resolve(&self, chain: &[Segment], scan: &Scan) -> Option<Members> {
        let (first, rest) = chain.split_first()?;
        let mut ty = match scan.locals().find(|l| l.name == first.name) {
            Some(local) => self.type_of(local.ty.as_ref()?)?,
            None => match self.state(&first.name) {
                Some((Some(kind), _)) if first.indexed == 0 && rest.is_empty() => return Some(Members::Map(kind)),
                Some((_, ty)) => ty,
                None => return None,
            },
        };
        ty = element(ty, first.indexed)?;
        for seg in rest {
            let Ty::Struct(s) = ty else { return None };
            let field = self.program.structs[s].fields.iter().find(|f| f.name == seg.name)?;
            ty = element(field.ty.clone(), seg.indexed)?;
        }
        match ty {
            Ty::Lock => Some(Members::Lock),
            Ty::Waiter => Some(Members::Waiter),
            Ty::Struct(s) => Some(Members::Struct(s)),
            _ => None,
        }
    }

    /// A piece of state by name: its map kind if it is a map, and its value type.
    fn state(&self, name: &str) -> Option<(Option<MapKind>, Ty)> {
        let (_, st) = self.program.states.iter().find(|(_, s)| s.name == name)?;
        let kind = match &st.storage {
            StateStorage::Map { kind, .. } => Some(*kind),
            _ => None,
        };
        Some((kind, st.ty.clone()))
    }

    fn type_of(&self, ty: &TypeRef) -> Option<Ty> {
        match ty {
            TypeRef::Named(n) if n == "lock" => Some(Ty::Lock),
            TypeRef::Named(n) if n == "waiter" => Some(Ty::Waiter),
            TypeRef::Named(n) => self.program.structs.iter().find(|(_, s)| s.name == *n).map(|(id, _)| Ty::Struct(id)),
            TypeRef::Array(t) => Some(Ty::Array(Box::new(self.type_of(t)?), 0)),
            TypeRef::MapValue(m) => self.state(m).map(|(_, ty)| ty),
        }
    }
}

/// The element type after `n` indexings of `ty`.
fn element(mut ty: Ty, n: usize) -> Option<Ty> {
    for _ in 0..n {
        let Ty::Array(elem, _) = ty else { return None };
        ty = *elem;
    }
    Some(ty)
}

/// One name of a member chain and how many `[i]` follow it.
#[derive(Debug, PartialEq)]
struct Segment {
    name: String,
    indexed: usize,
}

/// The chain `a[i].b` that ends just before the final `.` of `tokens`, first name first.
fn receiver(tokens: &[Spanned]) -> Option<Vec<Segment>> {
    let mut end = tokens.len().checked_sub(1)?; // the `.`
    let mut chain = Vec::new();
    loop {
        let mut indexed = 0;
        while end > 0 && tokens[end - 1].1 == Tok::RBracket {
            end = matching_open(tokens, end - 1)?;
            indexed += 1;
        }
        let (_, Tok::Ident(name), _) = tokens.get(end.checked_sub(1)?)? else { return None };
        chain.push(Segment { name: name.to_string(), indexed });
        end -= 1;
        if end == 0 || tokens[end - 1].1 != Tok::Dot {
            break;
        }
        end -= 1;
    }
    // `hist::x.` names module state: qualify the first name.
    if end >= 2 && tokens[end - 1].1 == Tok::ColonColon {
        if let Tok::Ident(m) = tokens[end - 2].1 {
            let first = chain.last_mut()?;
            first.name = format!("{m}::{}", first.name);
        }
    }
    chain.reverse();
    Some(chain)
}

/// The index of the `[` that the `]` at `close` closes.
fn matching_open(tokens: &[Spanned], close: usize) -> Option<usize> {
    let mut depth = 0usize;
    for i in (0..=close).rev() {
        match tokens[i].1 {
            Tok::RBracket => depth += 1,
            Tok::LBracket => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// True if a `:` after `first ... name` introduces a type: in a `let`, a parameter list, or
/// a state or constant declaration (in a struct literal it introduces a value).
fn declares_type(first: &Tok, header: &[&Tok]) -> bool {
    match first {
        Tok::Let | Tok::Const | Tok::Config | Tok::Global | Tok::PerLock | Tok::PerCpu | Tok::PerThread | Tok::PerWaiter => true,
        Tok::Fn | Tok::On => header.contains(&&Tok::LParen),
        _ => false,
    }
}

/// Hooks the current policy handles, before and after the cursor.
fn hooks_given(scan: &Scan, after: &[Spanned]) -> Vec<&'static str> {
    let mut names = scan.hooks().to_vec();
    let mut depth = 0i32;
    for (i, (_, tok, _)) in after.iter().enumerate() {
        match tok {
            Tok::LBrace => depth += 1,
            Tok::RBrace if depth == 0 => break,
            Tok::RBrace => depth -= 1,
            Tok::On if depth == 0 => names.extend(hook_name(&after[i..])),
            _ => {}
        }
    }
    names
}

/// `on name(l: lock, ...) -> bool {\n\t$0\n}`, or without `on ` when it is written.
fn hook_snippet(h: &cat::HookDef, with_on: bool) -> String {
    let params: Vec<String> = h
        .params
        .iter()
        .map(|p| match p.ty {
            // `lock` is the type's name; handlers conventionally call the lock `l`.
            cat::HookParamTy::Lock => "l: lock".to_string(),
            ty => format!("{}: {}", p.name, ty.name()),
        })
        .collect();
    let ret = if h.returns_bool { " -> bool" } else { "" };
    format!("{}{}({}){ret} {{\n\t$0\n}}", if with_on { "on " } else { "" }, h.name, params.join(", "))
}

fn type_text(ty: &TypeRef) -> String {
    match ty {
        TypeRef::Named(n) => n.clone(),
        TypeRef::Array(t) => format!("[{}; _]", type_text(t)),
        TypeRef::MapValue(m) => format!("value of {m}"),
    }
}

/// `record` for `hist::record`.
fn short_name(name: &str) -> &str {
    name.rsplit("::").next().unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::analyse;

    const HEAD: &str = "import hist;\nstruct Stat { count: u64, buckets: [Inner; 4] }\nstruct Inner { v: u32 }\n\
per_lock stats: Stat;\nper_waiter class: u8;\nmap prio: hash<u32, u8>[64];\nmap events: ringbuf<Stat>[4096];\nconst LIMIT: u32 = 4;\n\
fn helper(x: u32) -> u32 { return x; }\n";

    /// The labels offered where `|` is in `body` (appended to `HEAD`).
    fn labels_with(body: &str, settings: Settings) -> Vec<String> {
        let text = format!("{HEAD}{body}");
        let offset = text.find('|').expect("a cursor");
        let text = text.replacen('|', "", 1);
        let a = analyse("t.scl", &text, &Default::default());
        complete(&a, offset, &settings).into_iter().map(|i| i.label).collect()
    }

    fn labels(body: &str) -> Vec<String> {
        labels_with(body, Settings::default())
    }

    fn has(labels: &[String], want: &[&str]) -> bool {
        want.iter().all(|w| labels.iter().any(|l| l == w))
    }

    #[test]
    fn hooks_per_lock_kind_and_target_without_those_given() {
        let spin = labels("policy p for spinlock {\n    on acquired(l: lock) {}\n    |\n    on released(l: lock) {}\n}\n");
        assert!(has(&spin, &["contended", "should_reorder", "to_acquire"]), "{spin:?}");
        assert!(!spin.iter().any(|l| l == "acquired" || l == "released"), "given hooks are not offered again: {spin:?}");
        assert!(!spin.iter().any(|l| l.starts_with("bypass")), "bypass hooks are rwsem-only: {spin:?}");
        let rw = labels("policy p for rwsem {\n    on |");
        assert!(has(&rw, &["bypass_acquire", "bypass_release"]), "{rw:?}");
        let stock = labels_with("policy p for mutex {\n    |\n}\n", Settings { snippets: true, target: Some(Target::Stock) });
        let mut stock_sorted = stock.clone();
        stock_sorted.sort();
        assert_eq!(stock_sorted, ["contended", "contention_end"]);
    }

    #[test]
    fn hook_snippets_write_the_catalogue_signature() {
        let text = format!("{HEAD}policy p for mutex {{\n    \n}}\n");
        let offset = text.len() - 3;
        let a = analyse("t.scl", &text, &Default::default());
        let items = complete(&a, offset, &Settings { snippets: true, target: None });
        let sr = items.iter().find(|i| i.label == "should_reorder").expect("offered");
        assert_eq!(sr.insert_text.as_deref(), Some("on should_reorder(l: lock, shuffler: waiter, candidate: waiter) -> bool {\n\t$0\n}"));
        assert_eq!(sr.insert_text_format, Some(InsertTextFormat::SNIPPET));
        let plain = complete(&a, offset, &Settings::default());
        let c = plain.iter().find(|i| i.label == "contended").expect("offered");
        assert_eq!(c.insert_text.as_deref(), Some("on contended(l: lock) {\n\t\n}"));
    }

    #[test]
    fn members_of_state_params_locals_and_maps_in_half_written_bodies() {
        let hook = |stmt: &str| labels(&format!("policy p for spinlock {{\n    on should_reorder(l: lock, s: waiter, c: waiter) -> bool {{\n        let st: Stat = stats;\n        {stmt}"));
        assert_eq!(hook("stats.|"), ["count", "buckets"]);
        assert_eq!(hook("stats.buckets[2].|"), ["v"]);
        assert_eq!(hook("st.cou|"), ["count", "buckets"]);
        assert!(has(&hook("l.|"), &["addr", "kind", "is_reader"]));
        assert!(has(&hook("c.|"), &["cpu", "numa_node", "wait_start", "class"]));
        assert_eq!(hook("prio.|"), ["get", "get_or", "set", "entry", "delete"]);
        assert_eq!(hook("events.|"), ["emit"]);
        assert_eq!(hook("if let v = stats.buckets[0].v.|"), Vec::<String>::new(), "integers have no members");
        let bound = labels("fn f() {\n    if let e = events.get(1) {\n        e.|");
        assert_eq!(bound, ["count", "buckets"]);
    }

    #[test]
    fn expressions_offer_locals_state_items_and_builtins() {
        let got = labels("policy p for spinlock {\n    on acquired(l: lock) {\n        let n: u32 = 3;\n        for i in 0..4 {\n            |");
        assert!(has(&got, &["n", "i", "l", "stats", "prio", "LIMIT", "helper", "Stat", "hist", "now", "atomic_add", "let"]), "{got:?}");
        assert!(!got.iter().any(|l| l == "class"), "per_waiter state is read through a waiter");
        let module = labels("fn f() {\n    hist::|");
        assert!(has(&module, &["record", "count", "Log2"]), "{module:?}");
    }

    #[test]
    fn types_kinds_items_and_comments() {
        assert!(has(&labels("fn f() {\n    let x: |"), &["u32", "bool", "Stat", "hist::Log2"]));
        assert!(has(&labels("map m: |"), &["hash", "lru_hash", "u32"]));
        assert_eq!(labels("policy p for |"), ["spinlock", "mutex", "rwsem"]);
        assert!(has(&labels("|"), &["policy", "per_lock", "import"]));
        assert_eq!(labels("import |"), ["hist", "topo"]);
        assert!(labels("fn f() {\n    // stats.|").is_empty(), "nothing inside a comment");
        assert!(labels("fn f() {\n    /* x |").is_empty());
    }
}
