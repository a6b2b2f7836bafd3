; Indentation for SCL (nvim-treesitter's captures): the contents of braces, brackets and
; parentheses are indented one level; the closing delimiter goes back.

[
  (policy_body)
  (block)
  (field_declaration_list)
  (field_initializer_list)
  (parameters)
  (arguments)
  (type_arguments)
] @indent.begin

[
  "}"
  ")"
  "]"
] @indent.branch @indent.end

[
  (line_comment)
  (block_comment)
] @indent.auto
