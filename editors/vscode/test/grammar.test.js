// The TextMate grammar (syntaxes/scl.tmLanguage.json) against every SCL file of examples/
// (recursively) and stdlib/, tokenized by vscode-textmate with the Oniguruma engine VS Code
// uses. Run with `npm test` (node's test runner); `cargo test -p scl-syntax --test vscode`
// runs it too.
//
// - every keyword of the compiler's lexer (scl_syntax::lexer::KEYWORDS), wherever it stands
//   in code, is one token with a keyword scope (`keyword.*` but not `keyword.operator.*`,
//   `storage.type.state.*`, `storage.modifier.*`, `constant.language.*`), and so is each
//   keyword alone on a line;
// - nothing else is: a name that merely contains a keyword (`per_lock_x`, `format`) is not;
// - no token of a real policy is `invalid` (the grammar marks string literals so).
'use strict';

const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const vsctm = require('vscode-textmate');
const oniguruma = require('vscode-oniguruma');

const ROOT = path.resolve(__dirname, '..', '..', '..');
const GRAMMAR = path.resolve(__dirname, '..', 'syntaxes', 'scl.tmLanguage.json');

/** The lexer's keyword table, read from its one definition. */
function lexerKeywords() {
  const source = fs.readFileSync(path.join(ROOT, 'crates/scl-syntax/src/lexer.rs'), 'utf8');
  const table = source.match(/pub const KEYWORDS: &\[&str\] = &\[([^\]]*)\];/);
  assert.ok(table, 'crates/scl-syntax/src/lexer.rs has a KEYWORDS table');
  return [...table[1].matchAll(/"([a-z_]+)"/g)].map((m) => m[1]);
}

function sclFiles(dir) {
  const out = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...sclFiles(p));
    else if (entry.name.endsWith('.scl')) out.push(p);
  }
  return out;
}

async function loadGrammar() {
  const wasm = fs.readFileSync(require.resolve('vscode-oniguruma/release/onig.wasm'));
  await oniguruma.loadWASM(wasm.buffer.slice(wasm.byteOffset, wasm.byteOffset + wasm.byteLength));
  const registry = new vsctm.Registry({
    onigLib: Promise.resolve({
      createOnigScanner: (patterns) => new oniguruma.OnigScanner(patterns),
      createOnigString: (s) => new oniguruma.OnigString(s),
    }),
    loadGrammar: async (scopeName) => {
      if (scopeName !== 'source.scl') return null;
      return vsctm.parseRawGrammar(fs.readFileSync(GRAMMAR, 'utf8'), GRAMMAR);
    },
  });
  return registry.loadGrammar('source.scl');
}

/** Every token of `text`: { line, text, scopes }. */
function tokenize(grammar, text) {
  const tokens = [];
  let state = vsctm.INITIAL;
  text.split('\n').forEach((line, i) => {
    const r = grammar.tokenizeLine(line, state);
    for (const t of r.tokens) {
      tokens.push({ line: i + 1, start: t.startIndex, text: line.slice(t.startIndex, t.endIndex), scopes: t.scopes });
    }
    state = r.ruleStack;
  });
  return tokens;
}

const isKeywordScope = (s) => /^(keyword\.(?!operator)|storage\.type\.state\.|storage\.modifier\.|constant\.language\.)/.test(s);
const inComment = (t) => t.scopes.some((s) => s.startsWith('comment.'));

/** The problems of one text: keywords not scoped as such, scoped words that are not keywords. */
function problems(grammar, text, keywords, where) {
  const found = [];
  const tokens = tokenize(grammar, text);
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    for (const m of line.matchAll(/[A-Za-z_][A-Za-z0-9_]*/g)) {
      if (!keywords.has(m[0])) continue;
      const t = tokens.find((t) => t.line === i + 1 && t.start <= m.index && m.index < t.start + t.text.length);
      if (inComment(t)) continue;
      if (t.start !== m.index || t.text !== m[0] || !t.scopes.some(isKeywordScope)) {
        found.push(`${where}:${i + 1}:${m.index + 1}: keyword \`${m[0]}\` is token \`${t.text}\` with scopes ${t.scopes.join(' ')}`);
      }
    }
  });
  for (const t of tokens) {
    if (inComment(t)) continue;
    if (t.scopes.some(isKeywordScope) && /^[A-Za-z_]/.test(t.text.trim()) && !keywords.has(t.text.trim())) {
      found.push(`${where}:${t.line}:${t.start + 1}: \`${t.text}\` is not a keyword but has scopes ${t.scopes.join(' ')}`);
    }
    if (t.scopes.some((s) => s.startsWith('invalid'))) {
      found.push(`${where}:${t.line}:${t.start + 1}: \`${t.text}\` is marked invalid`);
    }
  }
  return found;
}

test('every keyword of the lexer is scoped as a keyword on its own', async () => {
  const grammar = await loadGrammar();
  const keywords = lexerKeywords();
  assert.ok(keywords.length >= 20, `only ${keywords.length} keywords read`);
  // `KW;` on a line each: no declaration pattern (`policy NAME`) applies, so this checks
  // each keyword pattern alone.
  const text = keywords.map((k) => `${k};`).join('\n');
  assert.deepStrictEqual(problems(grammar, text, new Set(keywords), 'keywords'), []);
});

test('names that contain keywords are not keywords', async () => {
  const grammar = await loadGrammar();
  const keywords = lexerKeywords();
  const text = keywords.map((k) => `let ${k}_x: u32 = x_${k} + ${k}1;`).join('\n');
  assert.deepStrictEqual(problems(grammar, text, new Set(keywords), 'names'), []);
});

test('every example and stdlib module: keywords scoped, nothing invalid', async () => {
  const grammar = await loadGrammar();
  const keywords = new Set(lexerKeywords());
  const files = [...sclFiles(path.join(ROOT, 'examples')), ...sclFiles(path.join(ROOT, 'stdlib'))];
  assert.ok(files.length >= 9, `found only ${files}`);
  const found = [];
  let checked = 0;
  for (const file of files) {
    const text = fs.readFileSync(file, 'utf8');
    found.push(...problems(grammar, text, keywords, path.relative(ROOT, file)));
    checked += [...text.matchAll(/\b[a-z_]+\b/g)].filter((m) => keywords.has(m[0])).length;
  }
  assert.ok(checked > 100, `only ${checked} keyword occurrences seen`);
  assert.deepStrictEqual(found, []);
});
