//! The outline of a policy file: its items, the fields of its structs and the hooks of its
//! policy, from the syntax tree. Items the parser could not read are left out until they
//! parse again.

use crate::analysis::Analysis;
use crate::position::range;
use lsp_types::{DocumentSymbol, SymbolKind};
use scl_diagnostics::SourceFile;
use scl_syntax::ast::{self, Ident, ItemKind, StateKind};

/// The document's symbols, in order, nested where items have parts.
pub fn document_symbols(analysis: &Analysis) -> Vec<DocumentSymbol> {
    let file = analysis.source();
    analysis.ast.items.iter().filter_map(|item| item_symbol(file, item)).collect()
}

fn item_symbol(file: &SourceFile, item: &ast::Item) -> Option<DocumentSymbol> {
    let sym = |name: &Ident, kind, detail: String, children| symbol(file, name, item.span, kind, detail, children);
    Some(match &item.kind {
        ItemKind::Import(name) => sym(name, SymbolKind::MODULE, "import".into(), None),
        ItemKind::Const(c) => sym(&c.name, SymbolKind::CONSTANT, format!("const: {}", type_text(file, &c.ty)), None),
        ItemKind::Struct(s) => {
            let fields = s.fields.iter().map(|f| symbol(file, &f.name, f.span, SymbolKind::FIELD, type_text(file, &f.ty), None)).collect();
            sym(&s.name, SymbolKind::STRUCT, "struct".into(), Some(fields))
        }
        ItemKind::State(st) => {
            let kind = if st.kind == StateKind::Config { SymbolKind::CONSTANT } else { SymbolKind::VARIABLE };
            sym(&st.name, kind, format!("{}: {}", st.kind.keyword(), type_text(file, &st.ty)), None)
        }
        ItemKind::Fn(f) => sym(&f.name, SymbolKind::FUNCTION, "fn".into(), None),
        ItemKind::Policy(p) => {
            let hooks = p.hooks.iter().map(|h| symbol(file, &h.name, h.span, SymbolKind::EVENT, "hook".into(), None)).collect();
            let kinds: Vec<&str> = p.kinds.iter().map(|k| k.name.as_str()).collect();
            sym(&p.name, SymbolKind::CLASS, format!("policy for {}", kinds.join(", ")), Some(hooks))
        }
        ItemKind::Error => return None,
    })
}

/// A symbol named `name` covering `whole`. LSP wants the name's range inside the whole
/// range; recovered trees may break that, so the whole range is widened to hold it.
fn symbol(file: &SourceFile, name: &Ident, whole: scl_diagnostics::Span, kind: SymbolKind, detail: String, children: Option<Vec<DocumentSymbol>>) -> DocumentSymbol {
    #[allow(deprecated)] // `deprecated` is a required field of the struct, superseded by `tags`.
    DocumentSymbol {
        name: if name.name.is_empty() { "?".into() } else { name.name.clone() },
        detail: Some(detail),
        kind,
        tags: None,
        deprecated: None,
        range: range(file, whole.to(name.span)),
        selection_range: range(file, name.span),
        children,
    }
}

/// A type as written in the source.
fn type_text(file: &SourceFile, ty: &ast::Type) -> String {
    file.slice(ty.span).split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::analyse;

    #[test]
    fn outline_of_a_policy() {
        let text = "import topo;\nconst N: u32 = 4;\nstruct S {\n    a: u32,\n    b: [u64; N],\n}\nconfig max: u32 = 3;\nmap m: hash<u32, u8>[16];\n\
fn f() {}\npolicy p for spinlock, mutex {\n    on acquired(l: lock) {}\n    on contended(l: lock) {}\n}\n";
        let a = analyse("t.scl", text, &Default::default());
        let syms = document_symbols(&a);
        let names: Vec<&str> = syms.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["topo", "N", "S", "max", "m", "f", "p"]);
        let fields: Vec<(&str, Option<&str>)> = syms[2].children.as_ref().unwrap().iter().map(|c| (c.name.as_str(), c.detail.as_deref())).collect();
        assert_eq!(fields, [("a", Some("u32")), ("b", Some("[u64; N]"))]);
        assert_eq!(syms[4].detail.as_deref(), Some("map: hash<u32, u8>"));
        let policy = &syms[6];
        assert_eq!(policy.detail.as_deref(), Some("policy for spinlock, mutex"));
        let hooks: Vec<&str> = policy.children.as_ref().unwrap().iter().map(|c| c.name.as_str()).collect();
        assert_eq!(hooks, ["acquired", "contended"]);
        assert_eq!(policy.selection_range.start.line, 9);
        assert_eq!(policy.range.end.line, 12);
    }
}
