; Highlights for SCL. Capture names follow nvim-treesitter's conventions; Helix and the
; tree-sitter CLI fall back from them (a theme without `keyword.conditional` uses `keyword`).
;
; Every keyword of the lexer appears below as a string: crates/scl-syntax/tests/tree_sitter.rs
; fails if one is missing. The built-in functions and map kinds are the
; catalogue's, checked by crates/scl-lsp/tests/editors.rs.
;
; Where two patterns match one node, the later one wins (as in Neovim and the tree-sitter
; CLI), so the general patterns come first.

; Names

(type_identifier) @type

((type_identifier) @type.builtin
  (#any-of? @type.builtin
    "u8" "u16" "u32" "u64" "i8" "i16" "i32" "i64" "bool" "kstack" "lock" "waiter"
    "hash" "lru_hash" "array" "percpu_array" "ringbuf"))

(lock_kind) @constant.builtin

(module_identifier) @module

(field_identifier) @property

; Calls

(call_expression
  function: (identifier) @function.call)

(call_expression
  function: (scoped_identifier
    name: (identifier) @function.call))

(call_expression
  function: (field_expression
    field: (field_identifier) @function.method.call))

((call_expression
  function: (identifier) @function.builtin)
  (#any-of? @function.builtin
    "now" "cpu" "numa_node" "tid" "tgid" "min" "max" "log2" "random" "back_off" "sleep"
    "sleep_after" "kstack"
    "read_user" "atomic_add" "atomic_cas"))

; Declarations

(function_declaration
  name: (identifier) @function)

(hook_declaration
  name: (identifier) @function)

(policy_declaration
  name: (identifier) @type.definition)

(const_declaration
  name: (identifier) @constant)

(state_declaration
  name: (identifier) @variable.member)

(parameter
  name: (identifier) @variable.parameter)

(let_statement
  name: (identifier) @variable)

(let_condition
  name: (identifier) @variable)

(for_statement
  variable: (identifier) @variable)

; Keywords

"import" @keyword.import

"fn" @keyword.function

"struct" @keyword.type

[
  "policy"
  "on"
  "let"
] @keyword

[
  "const"
  "config"
  "global"
  "per_lock"
  "per_cpu"
  "per_thread"
  "per_waiter"
  "map"
  "inout"
] @keyword.modifier

[
  "if"
  "else"
] @keyword.conditional

[
  "for"
  "in"
  "break"
  "continue"
] @keyword.repeat

"return" @keyword.return

"as" @keyword.operator

[
  "true"
  "false"
] @boolean

; Literals and comments

(integer_literal) @number

[
  (line_comment)
  (block_comment)
] @comment @spell

; Operators and punctuation

[
  "="
  "+="
  "-="
  "*="
  "/="
  "%="
  "&="
  "|="
  "^="
  "<<="
  ">>="
  "=="
  "!="
  "<"
  "<="
  ">"
  ">="
  "+"
  "-"
  "*"
  "/"
  "%"
  "!"
  "~"
  "&"
  "|"
  "^"
  "<<"
  ">>"
  "&&"
  "||"
  ".."
  "->"
] @operator

[
  "("
  ")"
  "["
  "]"
  "{"
  "}"
] @punctuation.bracket

[
  ","
  ";"
  ":"
  "::"
  "."
] @punctuation.delimiter
