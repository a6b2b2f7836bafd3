/**
 * @file The tree-sitter grammar of SCL v1, the lock-policy language of sclc.
 * @license GPL-2.0-only
 *
 * It follows the compiler's own definition rule for rule: the tokens of
 * `crates/scl-syntax/src/lexer.rs` (logos) and the productions of `grammar/scl.lalrpop`.
 * Where tree-sitter and lalrpop differ in notation the structure is still the same:
 *
 * - Expressions are the lalrpop grammar's levels, loosest first (`||`, `&&`, comparisons,
 *   `|`, `^`, `&`, shifts, `+ -`, `* / %`, `as`, unary, postfix, primary), each level a
 *   hidden rule, so the tree has one `binary_expression` per operator and the grammar stays
 *   LR(1) without precedence annotations. Comparisons do not chain (`a < b < c` is an error).
 * - Every expression rule comes in two flavours, as `Expr<"S">` and `Expr<"N">` do there:
 *   the `N` flavour (the condition of `if`, the bounds of `for`) has no struct literal at its
 *   top level, so the `{` after `if x` always opens the block. Both flavours produce the same
 *   visible nodes (the `_n` rules are aliased).
 * - Keywords are reserved words, as in the lexer. The parser is generated for ABI 14 (the
 *   newest that Neovim 0.7 to 0.10 and older Helix load), which has no reserved-word sets:
 *   there a keyword where only a name can stand (`let for = 1;`) parses as that name
 *   instead of an error. Valid code parses the same either way; `tree-sitter generate
 *   --abi 15` makes the reservation exact.
 * - Block comments nest, as in the lexer: each opening needs its own close. Counting
 *   them needs the small external scanner in `src/scanner.c`, which scans line comments
 *   too (a generated lexer would end one at a NUL byte, which the compiler's lexer skips).
 *
 * `crates/scl-syntax/tests/tree_sitter.rs` parses every example and stdlib module with this
 * grammar and checks that `queries/highlights.scm` names every keyword of the lexer.
 */

/// <reference types="tree-sitter-cli/dsl" />
// @ts-check

// The keywords of the lexer (`Tok` in crates/scl-syntax/src/lexer.rs), in its order.
const KEYWORDS = [
  'policy', 'for', 'on', 'fn', 'struct', 'const', 'config', 'global', 'per_lock', 'per_cpu',
  'per_thread', 'per_waiter', 'map', 'import', 'let', 'if', 'else', 'in', 'return', 'break',
  'continue', 'true', 'false', 'as', 'inout',
];

const ASSIGN_OPS = ['=', '+=', '-=', '*=', '/=', '%=', '&=', '|=', '^=', '<<=', '>>='];

// Binary levels, loosest first: [level, operators, whether it chains (left-associative)].
const LEVELS = [
  ['or', ['||'], true],
  ['and', ['&&'], true],
  ['cmp', ['==', '!=', '<', '<=', '>', '>='], false],
  ['bitor', ['|'], true],
  ['bitxor', ['^'], true],
  ['bitand', ['&'], true],
  ['shift', ['<<', '>>'], true],
  ['sum', ['+', '-'], true],
  ['product', ['*', '/', '%'], true],
];

/** `Comma<T>`: zero or more, separated by commas, with an optional trailing comma. */
function commaSep(rule) {
  return optional(commaSep1(rule));
}

/** `Comma1<T>`: one or more, separated by commas, with an optional trailing comma. */
function commaSep1(rule) {
  return seq(rule, repeat(seq(',', rule)), optional(','));
}

/**
 * The expression rules of one flavour: `s` (struct literals allowed) or `n` (not at the
 * top level). Rule names get the suffix `_s` or `_n`; the visible nodes are aliases.
 */
function expressionRules(f) {
  const r = (name) => ($) => $[`_${name}_${f}`];
  /** @type {Record<string, ($: any) => any>} */
  const rules = {};
  LEVELS.forEach(([level, ops, chains], i) => {
    const next = i + 1 < LEVELS.length ? LEVELS[i + 1][0] : 'cast';
    const left = chains ? level : next;
    rules[`_${level}_${f}`] = ($) => choice(
      alias($[`_${level}_binary_${f}`], $.binary_expression),
      $[`_${next}_${f}`],
    );
    rules[`_${level}_binary_${f}`] = ($) => seq(
      field('left', $[`_${left}_${f}`]),
      field('operator', ops.length === 1 ? ops[0] : choice(...ops)),
      field('right', $[`_${next}_${f}`]),
    );
  });
  rules[`_cast_${f}`] = ($) => choice(alias($[`_cast_expression_${f}`], $.cast_expression), $[`_unary_${f}`]);
  rules[`_cast_expression_${f}`] = ($) => seq(
    field('value', $[`_cast_${f}`]),
    'as',
    field('type', alias($.identifier, $.type_identifier)),
  );
  rules[`_unary_${f}`] = ($) => choice(alias($[`_unary_expression_${f}`], $.unary_expression), $[`_postfix_${f}`]);
  rules[`_unary_expression_${f}`] = ($) => seq(
    field('operator', choice('-', '!', '~')),
    field('operand', $[`_unary_${f}`]),
  );
  rules[`_postfix_${f}`] = ($) => choice(
    alias($[`_field_expression_${f}`], $.field_expression),
    alias($[`_call_expression_${f}`], $.call_expression),
    alias($[`_index_expression_${f}`], $.index_expression),
    $[`_primary_${f}`],
  );
  rules[`_field_expression_${f}`] = ($) => seq(
    field('value', $[`_postfix_${f}`]),
    '.',
    field('field', alias($.identifier, $.field_identifier)),
  );
  rules[`_call_expression_${f}`] = ($) => seq(
    field('function', $[`_postfix_${f}`]),
    field('arguments', $.arguments),
  );
  rules[`_index_expression_${f}`] = ($) => seq(
    field('value', $[`_postfix_${f}`]),
    '[',
    field('index', $._expression),
    ']',
  );
  rules[`_primary_${f}`] = ($) => choice(
    $.integer_literal,
    $.boolean_literal,
    $._path,
    $.parenthesized_expression,
    ...(f === 's' ? [$.struct_expression] : []),
  );
  return rules;
}

module.exports = grammar({
  name: 'scl',

  // logos skips `[ \t\r\n\f]+` and comments; the comments come from the scanner.
  // A byte-order mark is skipped too (the lexer skips one at the start of the file).
  extras: ($) => [/[ \t\r\n\f\uFEFF]/, $.line_comment, $.block_comment],

  externals: ($) => [$.line_comment, $.block_comment],

  word: ($) => $.identifier,

  reserved: {
    global: (_) => KEYWORDS,
  },

  supertypes: ($) => [$._item, $._statement, $._type],

  rules: {
    source_file: ($) => repeat($._item),

    // -------------------------------------------------------------------------------------
    // Items

    _item: ($) => choice(
      $.import_declaration,
      $.const_declaration,
      $.struct_declaration,
      $.state_declaration,
      $.function_declaration,
      $.policy_declaration,
    ),

    import_declaration: ($) => seq('import', field('name', alias($.identifier, $.module_identifier)), ';'),

    const_declaration: ($) => seq(
      'const',
      field('name', $.identifier),
      ':',
      field('type', $._type),
      '=',
      field('value', $._expression),
      ';',
    ),

    struct_declaration: ($) => seq(
      'struct',
      field('name', alias($.identifier, $.type_identifier)),
      field('body', $.field_declaration_list),
    ),

    field_declaration_list: ($) => seq('{', commaSep($.field_declaration), '}'),

    field_declaration: ($) => seq(
      field('name', alias($.identifier, $.field_identifier)),
      ':',
      field('type', $._type),
    ),

    // `per_lock[4096] batch: Batch;` or `map m: hash<u32, u64>[1024];`: the capacity may
    // stand before the name or after the type (giving both is a checker error).
    state_declaration: ($) => seq(
      field('kind', $.state_kind),
      optional(seq('[', field('capacity', $._expression), ']')),
      field('name', $.identifier),
      ':',
      field('type', $._type),
      optional(seq('[', field('capacity', $._expression), ']')),
      optional(seq('=', field('value', $._expression))),
      ';',
    ),

    state_kind: (_) => choice('config', 'global', 'per_lock', 'per_cpu', 'per_thread', 'per_waiter', 'map'),

    function_declaration: ($) => seq(
      'fn',
      field('name', $.identifier),
      field('parameters', $.parameters),
      optional(seq('->', field('return_type', $._type))),
      field('body', $.block),
    ),

    parameters: ($) => seq('(', commaSep($.parameter), ')'),

    parameter: ($) => seq(
      optional('inout'),
      field('name', $.identifier),
      ':',
      field('type', $._type),
    ),

    policy_declaration: ($) => seq(
      'policy',
      field('name', $.identifier),
      'for',
      field('kinds', $.lock_kinds),
      field('body', $.policy_body),
    ),

    lock_kinds: ($) => commaSep1(alias($.identifier, $.lock_kind)),

    policy_body: ($) => seq('{', repeat($.hook_declaration), '}'),

    hook_declaration: ($) => seq(
      'on',
      field('name', $.identifier),
      field('parameters', $.parameters),
      optional(seq('->', field('return_type', $._type))),
      field('body', $.block),
    ),

    // -------------------------------------------------------------------------------------
    // Types

    _type: ($) => choice($._type_path, $.generic_type, $.array_type),

    _type_path: ($) => choice(
      alias($.identifier, $.type_identifier),
      alias($._scoped_type_identifier, $.scoped_type_identifier),
    ),

    _scoped_type_identifier: ($) => seq(
      field('module', alias($.identifier, $.module_identifier)),
      '::',
      field('name', alias($.identifier, $.type_identifier)),
    ),

    generic_type: ($) => seq(
      field('type', $._type_path),
      field('arguments', $.type_arguments),
    ),

    type_arguments: ($) => seq('<', commaSep1($._type), '>'),

    array_type: ($) => seq(
      '[',
      field('element', $._type),
      ';',
      field('length', $._expression),
      ']',
    ),

    // -------------------------------------------------------------------------------------
    // Statements

    block: ($) => seq('{', repeat($._statement), '}'),

    _statement: ($) => choice(
      $.let_statement,
      $.assignment_statement,
      $.expression_statement,
      $.if_statement,
      $.for_statement,
      $.return_statement,
      $.break_statement,
      $.continue_statement,
      $.block,
    ),

    let_statement: ($) => seq(
      'let',
      field('name', $.identifier),
      optional(seq(':', field('type', $._type))),
      optional(seq('=', field('value', $._expression))),
      ';',
    ),

    assignment_statement: ($) => seq(
      field('target', $._expression),
      field('operator', choice(...ASSIGN_OPS)),
      field('value', $._expression),
      ';',
    ),

    expression_statement: ($) => seq($._expression, ';'),

    if_statement: ($) => seq(
      'if',
      field('condition', $._condition),
      field('consequence', $.block),
      optional(field('alternative', $.else_clause)),
    ),

    // `else { }` or `else if ...`: the lalrpop grammar's ElseTail.
    else_clause: ($) => seq('else', choice($.block, $.if_statement)),

    _condition: ($) => choice($._expression_n, $.let_condition),

    // `if let x = m.get(k) { ... }`
    let_condition: ($) => seq('let', field('name', $.identifier), '=', field('value', $._expression_n)),

    for_statement: ($) => seq(
      'for',
      field('variable', $.identifier),
      'in',
      field('start', $._expression_n),
      '..',
      field('end', $._expression_n),
      field('body', $.block),
    ),

    return_statement: ($) => seq('return', optional($._expression), ';'),

    break_statement: (_) => seq('break', ';'),

    continue_statement: (_) => seq('continue', ';'),

    // -------------------------------------------------------------------------------------
    // Expressions

    _expression: ($) => $._or_s,

    _expression_n: ($) => $._or_n,

    ...expressionRules('s'),
    ...expressionRules('n'),

    arguments: ($) => seq('(', commaSep($._expression), ')'),

    parenthesized_expression: ($) => seq('(', $._expression, ')'),

    struct_expression: ($) => seq(
      field('name', $._type_path),
      field('body', $.field_initializer_list),
    ),

    field_initializer_list: ($) => seq('{', commaSep($.field_initializer), '}'),

    field_initializer: ($) => seq(
      field('name', alias($.identifier, $.field_identifier)),
      ':',
      field('value', $._expression),
    ),

    _path: ($) => choice($.identifier, $.scoped_identifier),

    scoped_identifier: ($) => seq(
      field('module', alias($.identifier, $.module_identifier)),
      '::',
      field('name', $.identifier),
    ),

    boolean_literal: (_) => choice('true', 'false'),

    // As the lexer: digits, then letters, digits and `_` (a base prefix, separators, a time
    // unit). Whether the suffix is valid (`5us` is, `5xy` is not) is the compiler's error.
    integer_literal: (_) => /[0-9][0-9A-Za-z_]*/,

    identifier: (_) => /[A-Za-z_][A-Za-z0-9_]*/,
  },
});
