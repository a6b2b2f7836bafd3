; Scopes and definitions for SCL, so editors can tell a local from state of the same name.

[
  (source_file)
  (function_declaration)
  (hook_declaration)
  (block)
  (for_statement)
  (if_statement)
] @local.scope

(parameter
  name: (identifier) @local.definition.parameter)

(let_statement
  name: (identifier) @local.definition.var)

(let_condition
  name: (identifier) @local.definition.var)

(for_statement
  variable: (identifier) @local.definition.var)

(const_declaration
  name: (identifier) @local.definition.constant)

(state_declaration
  name: (identifier) @local.definition.var)

(function_declaration
  name: (identifier) @local.definition.function)

(identifier) @local.reference
