//! The stable codes of syntax errors (`E01xx`) and their `sclc explain` pages.
//!
//! Codes are never renumbered or reused. Every code in this file has a page in [`DOCS`];
//! a test checks that each page's examples behave as they say.

use scl_diagnostics::{Code, CodeDoc};

macro_rules! codes {
    ($($(#[$doc:meta])* $id:ident = $name:literal;)*) => {
        $( $(#[$doc])* pub const $id: Code = Code { code: stringify!($id), name: $name }; )*
    };
}

codes! {
    /// A token the grammar does not allow here.
    E0101 = "unexpected-token";
    /// The file ends in the middle of an item.
    E0102 = "unexpected-eof";
    /// A character that starts no token.
    E0103 = "invalid-character";
    /// `/*` without `*/`.
    E0104 = "unterminated-comment";
    /// `"` without its closing quote.
    E0105 = "unterminated-string";
    /// A malformed or too large number.
    E0106 = "invalid-number";
    /// Brackets or operators nested beyond the limit.
    E0107 = "nesting-too-deep";
    /// Brackets that do not match.
    E0108 = "unbalanced-delimiter";
    /// A policy names a lock kind that does not exist.
    E0109 = "unknown-lock-kind";
    /// A `config` declaration without a default.
    E0110 = "missing-config-value";
    /// A non-config state declaration with an initial value.
    E0111 = "unexpected-initializer";
    /// A `[capacity]` where none is allowed, or missing where one is needed.
    E0112 = "misplaced-capacity";
    /// An assignment to something that is not a place.
    E0113 = "invalid-assignment-target";
    /// `break` or `continue` outside a loop.
    E0114 = "break-outside-loop";
    /// A name longer than the kernel's BTF and symbol names allow.
    E0115 = "name-too-long";
}

/// The explain pages of the syntax codes. Each has a failing example after a line
/// `Erroneous example:` and a fixed one after `Fixed example:`, each in an `scl` block.
pub static DOCS: &[CodeDoc] = &[
    CodeDoc {
        code: E0101,
        summary: "a token appears where the grammar does not allow it",
        explanation: "The parser met a token that cannot continue what came before. The message says \
which tokens could have come next; a missing `;` is pointed at where it belongs.\n\n\
Erroneous example:\n\n```scl\nconst LIMIT: u32 = 10\nconst BATCH: u32 = 4;\n```\n\n\
Fixed example:\n\n```scl\nconst LIMIT: u32 = 10;\nconst BATCH: u32 = 4;\n```\n",
    },
    CodeDoc {
        code: E0102,
        summary: "the file ends in the middle of an item",
        explanation: "The last item of the file is incomplete: a declaration lacks its end, or a \
policy or function lacks its body.\n\n\
Erroneous example:\n\n```scl\nconfig max_batch: u32 =\n```\n\n\
Fixed example:\n\n```scl\nconfig max_batch: u32 = 64;\n```\n",
    },
    CodeDoc {
        code: E0103,
        summary: "a character that starts no SCL token",
        explanation: "SCL source is made of names, numbers, keywords, operators and `//` or `/* */` \
comments. Characters such as `#`, `$`, `@` or `?` have no meaning in SCL.\n\n\
Erroneous example:\n\n```scl\n# the batch size\nconst BATCH: u32 = 4;\n```\n\n\
Fixed example:\n\n```scl\n// the batch size\nconst BATCH: u32 = 4;\n```\n",
    },
    CodeDoc {
        code: E0104,
        summary: "a block comment is never closed",
        explanation: "A `/*` comment runs until its matching `*/`. Block comments nest, so each `/*` \
inside a comment needs its own `*/` as well.\n\n\
Erroneous example:\n\n```scl\n/* tuning knobs\nconst BATCH: u32 = 4;\n```\n\n\
Fixed example:\n\n```scl\n/* tuning knobs */\nconst BATCH: u32 = 4;\n```\n",
    },
    CodeDoc {
        code: E0105,
        summary: "a string literal is never closed",
        explanation: "A `\"` starts a string literal that must close on the same line. SCL v1 has \
no use for strings: policies name things with identifiers and numbers.\n\n\
Erroneous example:\n\n```scl\nconst NAME: u32 = \"numa;\n```\n\n\
Fixed example:\n\n```scl\nconst NAME: u32 = 1;\n```\n",
    },
    CodeDoc {
        code: E0106,
        summary: "a number is malformed or does not fit in 64 bits",
        explanation: "Integers are decimal (`1_000`), hexadecimal (`0x3f`) or binary (`0b101`), and \
may end in a time unit that scales them to nanoseconds: `ns`, `us`, `ms`, `s`. The value, \
after scaling, must fit in a u64. Names cannot start with a digit.\n\n\
Erroneous example:\n\n```scl\nconst WAIT: u64 = 10sec;\n```\n\n\
Fixed example:\n\n```scl\nconst WAIT: u64 = 10s;\n```\n",
    },
    CodeDoc {
        code: E0107,
        summary: "brackets or operators nest beyond the limit",
        explanation: "Brackets may nest at most 256 deep, and an expression may be at most 256 \
operators tall. Such input is refused up front so that no pass of the compiler can run out \
of stack on it; real policies stay far below the limit.\n\n\
An example would not fit on a page: picture `const X: u32 = ` followed by 300 `(`, a `1` \
and 300 `)`. Bind parts of the expression to names instead.\n\n\
Fixed example:\n\n```scl\nconst X: u32 = (1);\n```\n",
    },
    CodeDoc {
        code: E0108,
        summary: "brackets do not match",
        explanation: "Every `(`, `[` and `{` needs its matching `)`, `]` or `}` within the same item. \
The item is not parsed further until its brackets match, so that one missing `}` does not \
turn the rest of the file into errors.\n\n\
Erroneous example:\n\n```scl\nfn twice(x: u64) -> u64 {\n    return x * 2;\n\nconst Y: u64 = 2;\n```\n\n\
Fixed example:\n\n```scl\nfn twice(x: u64) -> u64 {\n    return x * 2;\n}\n\nconst Y: u64 = 2;\n```\n",
    },
    CodeDoc {
        code: E0109,
        summary: "a policy names a lock kind that does not exist",
        explanation: "A policy lists the lock kinds it applies to after `for`. The kinds are \
`spinlock` (queued spinlocks; hooks run in atomic context), `mutex` and `rwsem` \
(reader-writer semaphores).\n\n\
Erroneous example:\n\n```scl\npolicy p for spinlok {\n    on contended(l: lock) {}\n}\n```\n\n\
Fixed example:\n\n```scl\npolicy p for spinlock {\n    on contended(l: lock) {}\n}\n```\n",
    },
    CodeDoc {
        code: E0110,
        summary: "a config value has no default",
        explanation: "`config` values live in the object's read-only data and can be changed at \
load time with `--set NAME=VALUE`. Each needs a default so the policy loads without one.\n\n\
Erroneous example:\n\n```scl\nconfig max_batch: u32;\n```\n\n\
Fixed example:\n\n```scl\nconfig max_batch: u32 = 64;\n```\n",
    },
    CodeDoc {
        code: E0111,
        summary: "policy state other than config has an initial value",
        explanation: "`global`, `per_lock`, `per_cpu`, `per_thread`, `per_waiter` and `map` state \
lives in BPF maps or in the waiter's data word and always starts zeroed. Only `config` takes \
a default.\n\n\
Erroneous example:\n\n```scl\nglobal total: u64 = 1;\n```\n\n\
Fixed example:\n\n```scl\nglobal total: u64;\n```\n",
    },
    CodeDoc {
        code: E0112,
        summary: "a capacity is missing, misplaced or given twice",
        explanation: "`per_lock` and `per_thread` state may bound its number of entries with \
`per_lock[N]`; a `map` must give its capacity after its type, `map m: hash<K, V>[N]`. \
`config`, `global`, `per_cpu` and `per_waiter` state has no entries to bound.\n\n\
Erroneous example:\n\n```scl\nmap prio: hash<u32, u8>;\n```\n\n\
Fixed example:\n\n```scl\nmap prio: hash<u32, u8>[1024];\n```\n",
    },
    CodeDoc {
        code: E0113,
        summary: "the left side of an assignment is not a place",
        explanation: "An assignment writes a variable, a piece of state, a field or an element. \
The result of an operator or a call cannot be written. A `=` written where `==` was meant \
also ends up here.\n\n\
Erroneous example:\n\n```scl\nfn f(x: u32) -> u32 {\n    x + 1 = 2;\n    return x;\n}\n```\n\n\
Fixed example:\n\n```scl\nfn f(x: u32) -> u32 {\n    let y = x + 1;\n    return y;\n}\n```\n",
    },
    CodeDoc {
        code: E0114,
        summary: "`break` or `continue` outside a loop",
        explanation: "`break` and `continue` act on the innermost `for` loop. Outside one, use \
`return` to leave a hook or function early.\n\n\
Erroneous example:\n\n```scl\nfn f(x: u32) -> u32 {\n    if x > 3 {\n        break;\n    }\n    return x;\n}\n```\n\n\
Fixed example:\n\n```scl\nfn f(x: u32) -> u32 {\n    if x > 3 {\n        return 3;\n    }\n    return x;\n}\n```\n",
    },
    CodeDoc {
        code: E0115,
        summary: "a name is longer than 127 bytes",
        explanation: "Names of state, maps, structs, fields, config values, functions and hooks \
become names in the object's BTF and symbol table, which the kernel limits to 127 bytes (it \
refuses longer ones when it loads the object). SCL holds every name to that limit, so a policy \
that checks also loads. Each long name is reported once.\n\n\
Erroneous example:\n\n```scl\nglobal waits_by_lock_and_node_waits_by_lock_and_node_waits_by_lock_and_node_waits_by_lock_and_node_waits_by_lock_and_node_waits_by_lock: u64;\n```\n\n\
Fixed example:\n\n```scl\nglobal waits_by_numa_node_and_lock_kind: u64;\n```\n",
    },
];
