// The external scanner of tree-sitter-scl: comments.
//
// SCL's block comments nest, as in the compiler's lexer (`block_comment` in
// crates/scl-syntax/src/lexer.rs): every `/*` needs its own `*/`. A regular expression
// cannot count, so this scanner does. An unterminated comment is not a comment (the lexer
// reports it as an error too). Line comments are scanned here too: a generated lexer reads a
// NUL byte as the end of the input, and the compiler's lexer skips a comment with NULs in it
// like any other. The scanner keeps no state between tokens.

#include "tree_sitter/parser.h"

enum TokenType {
  LINE_COMMENT,
  BLOCK_COMMENT,
};

void *tree_sitter_scl_external_scanner_create(void) { return NULL; }

void tree_sitter_scl_external_scanner_destroy(void *payload) { (void)payload; }

unsigned tree_sitter_scl_external_scanner_serialize(void *payload, char *buffer) {
  (void)payload;
  (void)buffer;
  return 0;
}

void tree_sitter_scl_external_scanner_deserialize(void *payload, const char *buffer, unsigned length) {
  (void)payload;
  (void)buffer;
  (void)length;
}

static void advance(TSLexer *lexer) { lexer->advance(lexer, false); }

bool tree_sitter_scl_external_scanner_scan(void *payload, TSLexer *lexer, const bool *valid_symbols) {
  (void)payload;
  if (!valid_symbols[LINE_COMMENT] && !valid_symbols[BLOCK_COMMENT]) {
    return false;
  }
  while (lexer->lookahead == ' ' || lexer->lookahead == '\t' || lexer->lookahead == '\r' ||
         lexer->lookahead == '\n' || lexer->lookahead == '\f' || lexer->lookahead == 0xFEFF) {
    lexer->advance(lexer, true);
  }
  if (lexer->lookahead != '/') {
    return false;
  }
  advance(lexer);
  if (lexer->lookahead == '/' && valid_symbols[LINE_COMMENT]) {
    // `//` to the end of the line, NULs included: only the real end of the input stops it.
    while (!lexer->eof(lexer) && lexer->lookahead != '\n') {
      advance(lexer);
    }
    lexer->result_symbol = LINE_COMMENT;
    return true;
  }
  if (lexer->lookahead != '*' || !valid_symbols[BLOCK_COMMENT]) {
    return false;
  }
  advance(lexer);
  unsigned depth = 1;
  while (!lexer->eof(lexer)) {
    if (lexer->lookahead == '/') {
      advance(lexer);
      if (lexer->lookahead == '*') {
        advance(lexer);
        depth++;
      }
    } else if (lexer->lookahead == '*') {
      advance(lexer);
      if (lexer->lookahead == '/') {
        advance(lexer);
        if (--depth == 0) {
          lexer->result_symbol = BLOCK_COMMENT;
          return true;
        }
      }
    } else {
      advance(lexer);
    }
  }
  // Unterminated: no token, so the parse has an error here, as the compiler reports one
  // (E0104).
  return false;
}
