//! `sclc explain CODE`: the documentation page of a diagnostic code.

use crate::Status;
use scl_diagnostics::CodeDoc;

/// Arguments of `sclc explain`.
#[derive(clap::Args, Debug)]
pub struct ExplainArgs {
    /// A code such as `E0101`, or its name such as `unexpected-token`. Without one, every
    /// code is listed.
    #[arg(value_name = "CODE")]
    code: Option<String>,
    /// Print every safety rule's page as Markdown (the source of `docs/safety.md`).
    #[arg(long, conflicts_with = "code")]
    safety_markdown: bool,
}

/// Every documented code, from every stage of the compiler, in code order.
pub fn all_docs() -> Vec<&'static CodeDoc> {
    let mut docs: Vec<&'static CodeDoc> = scl_syntax::codes::DOCS.iter().collect();
    docs.extend(scl_sema::codes::docs());
    docs.sort_by_key(|d| d.code.code);
    docs
}

/// Finds the page for `query`: a code in any case, or a code's kebab-case name.
pub fn find(query: &str) -> Option<&'static CodeDoc> {
    let q = query.trim();
    all_docs().into_iter().find(|d| d.code.code.eq_ignore_ascii_case(q) || d.code.name == q)
}

/// Runs `sclc explain`.
pub fn run(args: ExplainArgs) -> Status {
    if args.safety_markdown {
        out!("{}", safety_markdown());
        return Status::Ok;
    }
    let Some(query) = args.code else {
        for d in all_docs() {
            outln!("{}  {:<28} {}", d.code.code, d.code.name, d.summary);
        }
        return Status::Ok;
    };
    match find(&query) {
        Some(d) => {
            outln!("{} {}: {}\n", d.code.code, d.code.name, d.summary);
            out!("{}", d.explanation);
            Status::Ok
        }
        None => {
            let names = all_docs().into_iter().flat_map(|d| [d.code.code, d.code.name]);
            errln!("sclc: error: no diagnostic code `{query}`");
            if let Some(s) = scl_syntax::validate::did_you_mean(&query, names) {
                errln!("  help: did you mean `{s}`?");
            }
            errln!("  help: `sclc explain` lists every code");
            Status::Usage
        }
    }
}

/// `docs/safety.md`: the safety rules and warnings with their examples, generated from the
/// same pages `sclc explain` prints (a test keeps the file in step).
pub fn safety_markdown() -> String {
    let mut out = String::from(
        "# Safety rules\n\nGenerated from the checker's explain pages (`crates/scl-sema/src/rules/`); \
         do not edit by hand: run `SCL_BLESS=1 cargo test -p sclc --test cli` after changing a page. \
         `sclc explain CODE` prints the same text. Everything `sclc` accepts must also pass the \
         kernel verifier; these rules are how the compiler makes sure of it first, with a precise \
         message instead of a verifier log.\n\n",
    );
    let sections: [(&str, &str); 7] = [
        ("E030", "Termination"),
        ("E031", "No sleeping in atomic context"),
        ("E032", "Lock integrity"),
        ("E033", "Hooks"),
        ("E034", "Memory"),
        ("E035", "Bounded cost"),
        ("W04", "Warnings"),
    ];
    for (prefix, title) in sections {
        out.push_str(&format!("## {title}\n\n"));
        for d in all_docs().into_iter().filter(|d| d.code.code.starts_with(prefix)) {
            out.push_str(&format!("### {} `{}`: {}\n\n{}\n", d.code.code, d.code.name, d.summary, d.explanation));
        }
    }
    out
}
