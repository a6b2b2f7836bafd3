; Folds for SCL: every brace-delimited body, and runs of comments.

[
  (policy_body)
  (block)
  (field_declaration_list)
  (field_initializer_list)
  (parameters)
  (arguments)
] @fold

(block_comment) @fold
