// Tests the TextMate grammar with the engine VS Code uses (vscode-textmate on
// the oniguruma regex library), without VS Code: `node test/grammar.test.js`.
//
// The keywords come from the lexer (crates/writ-lang/src/lexer.rs), and every .writ file
// under examples/ is checked token by token against a small port of that
// lexer, so the grammar cannot drift from the language unnoticed.

'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { test } = require('node:test');
const oniguruma = require('vscode-oniguruma');
const vsctm = require('vscode-textmate');

const here = __dirname;
const repo = path.resolve(here, '..', '..', '..');
const grammarPath = path.resolve(here, '..', 'syntaxes', 'writ.tmLanguage.json');

/** The keywords, in the lexer's `KEYWORDS` table. */
function lexerKeywords() {
  const source = fs.readFileSync(path.join(repo, 'crates', 'writ-lang', 'src', 'lexer.rs'), 'utf8');
  const start = source.indexOf('pub const KEYWORDS');
  assert.ok(start >= 0, 'crates/writ-lang/src/lexer.rs has no KEYWORDS table');
  const table = source.slice(start, source.indexOf('];', start));
  const words = [...table.matchAll(/\("([a-z_]+)", Tok::/g)].map((m) => m[1]);
  assert.ok(words.length >= 40, `only ${words.length} keywords read from crates/writ-lang/src/lexer.rs`);
  return words;
}

const KEYWORDS = new Set(lexerKeywords());

/** The scope each keyword gets; every other keyword is `keyword.other.writ`. */
const KEYWORD_SCOPES = {
  'keyword.other.effect.writ': ['allow', 'deny', 'approve'],
  'keyword.declaration.writ': ['policy', 'agent', 'role', 'every', 'rule'],
  'keyword.operator.logical.writ': ['and', 'or', 'not'],
  'keyword.operator.word.writ': ['in', 'matches', 'contains', 'exists'],
  'constant.language.boolean.writ': ['true', 'false'],
  'constant.language.null.writ': ['null'],
};

function keywordScope(word) {
  for (const [scope, words] of Object.entries(KEYWORD_SCOPES)) {
    if (words.includes(word)) {
      return scope;
    }
  }
  return 'keyword.other.writ';
}

const grammar = (async () => {
  const wasm = fs.readFileSync(require.resolve('vscode-oniguruma/release/onig.wasm'));
  await oniguruma.loadWASM({ data: wasm });
  const registry = new vsctm.Registry({
    onigLib: Promise.resolve({
      createOnigScanner: (patterns) => new oniguruma.OnigScanner(patterns),
      createOnigString: (s) => new oniguruma.OnigString(s),
    }),
    loadGrammar: async (scopeName) =>
      scopeName === 'source.writ' ? vsctm.parseRawGrammar(fs.readFileSync(grammarPath, 'utf8'), grammarPath) : null,
  });
  const loaded = await registry.loadGrammar('source.writ');
  assert.ok(loaded, 'the grammar did not load');
  return loaded;
})();

/**
 * Tokenizes a whole text; each line's tokens are `{start, end, text, scopes}`.
 * Fails when a line stops early or leaves a rule open: nothing in writ spans lines.
 */
async function tokenize(text, name = 'sample') {
  const g = await grammar;
  let state = vsctm.INITIAL;
  return text.split(/\r?\n/).map((line, i) => {
    const r = g.tokenizeLine(line, state);
    assert.equal(r.stoppedEarly, false, `${name}:${i + 1}: tokenizing stopped early`);
    assert.equal(r.ruleStack.depth, 1, `${name}:${i + 1}: a rule is left open at the end of the line`);
    state = r.ruleStack;
    const tokens = r.tokens.map((t) => ({
      start: t.startIndex,
      end: Math.min(t.endIndex, line.length),
      text: line.slice(t.startIndex, t.endIndex),
      scopes: t.scopes,
    }));
    return { text: line, tokens };
  });
}

/** A port of the lexer's token shapes (crates/writ-lang/src/lexer.rs), for one line. */
function lexLine(line) {
  const shapes = [
    ['comment', /#[^\n]*/y],
    ['string', /"(?:[^"\\\n]|\\[^\n])*"?/y],
    ['number', /-?[0-9][0-9_.]*[eE][+-][0-9_]+|-?[0-9][A-Za-z0-9_.]*/y],
    ['word', /[A-Za-z_][A-Za-z0-9_-]*/y],
    ['operator', /==|!=|<=|>=|<|>/y],
    ['punctuation', /[{}[\](),:.]/y],
    ['space', /[ \t\r\f\uFEFF]+/y],
  ];
  const out = [];
  let at = 0;
  while (at < line.length) {
    let matched = false;
    for (const [kind, re] of shapes) {
      re.lastIndex = at;
      const m = re.exec(line);
      if (m && m[0].length > 0) {
        if (kind !== 'space') {
          out.push({ kind, text: m[0], start: at, end: at + m[0].length });
        }
        at += m[0].length;
        matched = true;
        break;
      }
    }
    assert.ok(matched, `the lexer port cannot read ${JSON.stringify(line.slice(at))}`);
  }
  return out;
}

/** The grammar tokens that overlap [start, end). */
function overlapping(tokens, start, end) {
  return tokens.filter((t) => t.start < end && t.end > start);
}

/** The scope a lexer token should get, from the tokens around it. */
function expectedScope(toks, i) {
  const t = toks[i];
  const prev = toks[i - 1];
  const next = toks[i + 1];
  const isWord = (tok, word) => tok !== undefined && tok.kind === 'word' && tok.text === word;
  switch (t.kind) {
    case 'comment':
      return 'comment.line.number-sign.writ';
    case 'number':
      return 'constant.numeric.writ';
    case 'operator':
      return 'keyword.operator.comparison.writ';
    case 'punctuation':
      return 'punctuation.';
  }
  if (isWord(prev, 'rule') && next && next.text === ':') {
    return 'entity.name.function.writ';
  }
  const named = t.kind === 'string' || !KEYWORDS.has(t.text);
  if ((isWord(prev, 'agent') || isWord(prev, 'role')) && named) {
    return 'entity.name.type.writ';
  }
  if (isWord(prev, 'policy') && named) {
    return 'entity.name.namespace.writ';
  }
  if (t.kind === 'string') {
    return 'string.quoted.double.writ';
  }
  // A word in a dotted field path is a field, keyword or not.
  const dotted = (prev && prev.text === '.' && prev.end === t.start) || (next && next.text === '.' && next.start === t.end);
  if (KEYWORDS.has(t.text) && !dotted) {
    return keywordScope(t.text);
  }
  return null;
}

/** Checks a tokenized text against the lexer port; returns how many tokens were checked. */
function agreeWithLexer(lines, name) {
  let checked = 0;
  lines.forEach((line, n) => {
    const toks = lexLine(line.text);
    toks.forEach((t, i) => {
      const where = `${name}:${n + 1}:${t.start + 1} ${JSON.stringify(t.text)}`;
      const grammarTokens = overlapping(line.tokens, t.start, t.end);
      assert.ok(grammarTokens.length > 0, `${where}: no grammar token`);
      if (t.kind !== 'comment' && t.kind !== 'string') {
        assert.equal(grammarTokens.length, 1, `${where}: split into ${grammarTokens.map((g) => g.text).join(' | ')}`);
        assert.ok(grammarTokens[0].start <= t.start && grammarTokens[0].end >= t.end, `${where}: token boundaries differ`);
      }
      const expected = expectedScope(toks, i);
      for (const g of grammarTokens) {
        const inner = g.scopes.slice(1);
        assert.ok(!inner.some((s) => s.startsWith('invalid.')), `${where}: marked invalid: ${inner.join(' ')}`);
        if (expected !== null) {
          assert.ok(inner.some((s) => s.startsWith(expected)), `${where}: expected ${expected}, got ${inner.join(' ') || '(none)'}`);
        } else {
          // A bare word that is not a keyword never looks like one.
          assert.ok(!inner.some((s) => s.startsWith('keyword.')), `${where}: a plain word scoped ${inner.join(' ')}`);
        }
      }
      checked += 1;
    });
  });
  return checked;
}

/**
 * The scopes of the grammar token at `needle`, inside the first line holding
 * `context` (which contains `needle`); the token must cover `needle` whole.
 */
function scopesOf(lines, needle, context = needle) {
  assert.ok(context.includes(needle), `${JSON.stringify(context)} does not hold ${JSON.stringify(needle)}`);
  const line = lines.find((l) => l.text.includes(context));
  assert.ok(line, `no line holds ${JSON.stringify(context)}`);
  const start = line.text.indexOf(context) + context.indexOf(needle);
  const tokens = overlapping(line.tokens, start, start + needle.length);
  assert.equal(tokens.length, 1, `${JSON.stringify(needle)} is split into ${tokens.map((t) => t.text).join(' | ')}`);
  return tokens[0].scopes;
}

function assertScope(lines, needle, scope, context = needle) {
  const scopes = scopesOf(lines, needle, context);
  assert.ok(scopes.includes(scope), `${JSON.stringify(needle)} in ${JSON.stringify(context)}: expected ${scope}, got ${scopes.join(' ')}`);
}

function assertNoScope(lines, needle, prefix, context = needle) {
  const scopes = scopesOf(lines, needle, context);
  assert.ok(!scopes.some((s) => s.startsWith(prefix)), `${JSON.stringify(needle)} in ${JSON.stringify(context)}: unexpected ${prefix}* in ${scopes.join(' ')}`);
}

// Every keyword of the lexer, each where the language puts it.
const SAMPLE = `# every keyword, in context
policy "tour" {
  version "1.0"
  description "All the keywords"
  combine first-match
  default deny risk medium because "{agent} may not {action} {target}"
  timezone "Europe/Paris"
  max_delegation_depth 3
  ceiling strict
  entry_agents [triage-agent]
}

role "billing" {
  token_prefix "tok_billing_"
}

every agent {
  limit 1000 requests per hour
}

agent triage-agent {
  roles [billing]
  tier verified
  tags [eu, beta-2]
  models allow ["gpt-4.1-*"]
  tools block [drop_table] as "dangerous tools"
  hosts allow ["api.example.com"]
  require_tls true
  delegates [billing-agent]
}

agent "billing-agent" {}

rule refund_small: allow "tool:call" on refund  # a trailing comment
  for roles [billing] agents [triage-agent] tiers [verified]
  when amount <= 100 and not (currency in [GBP]) or note == null
  when email matches "*@example.com" and labels contains vip and ticket.id exists
  when time in "08:00-20:00" and weekday in [mon, tue] and verified != false
  require stores or store in [vs_public] as "allowed stores"
  limit 20 per minute shared
  risk low

rule deny "net:connect" on hosts ["*.example.ru"]
  because "ticket #42: \\"no\\" \\u{2014} done"

rule models: approve "model:use"
  when policy.version > -1.5e3

rule "needs a human": approve "payment:*"
`;

test('every keyword of the lexer gets its scope in the sample', async () => {
  const lines = await tokenize(SAMPLE);
  const seen = new Set();
  lines.forEach((line, n) => {
    const toks = lexLine(line.text);
    toks.forEach((t, i) => {
      const expected = expectedScope(toks, i);
      if (t.kind !== 'word' || !KEYWORDS.has(t.text) || expected === null || expected.startsWith('entity.')) {
        return;
      }
      seen.add(t.text);
      const [g] = overlapping(line.tokens, t.start, t.end);
      assert.ok(g.scopes.includes(keywordScope(t.text)), `line ${n + 1}: ${t.text} scoped ${g.scopes.join(' ')}`);
    });
  });
  const missing = [...KEYWORDS].filter((k) => !seen.has(k));
  assert.deepEqual(missing, [], 'keywords the sample does not use');
});

test('the sample agrees with the lexer token by token', async () => {
  const lines = await tokenize(SAMPLE);
  assert.ok(agreeWithLexer(lines, 'sample') > 150);
});

test('comments', async () => {
  const lines = await tokenize(SAMPLE);
  assertScope(lines, ' every keyword, in context', 'comment.line.number-sign.writ');
  assertScope(lines, '#', 'punctuation.definition.comment.writ', '# every keyword');
  assertScope(lines, 'a trailing comment', 'comment.line.number-sign.writ');
  // `#` inside a string is text.
  assertScope(lines, 'ticket #42', 'string.quoted.double.writ');
  assertNoScope(lines, 'ticket #42', 'comment.');
});

test('strings, escapes and placeholders', async () => {
  const lines = await tokenize(SAMPLE);
  assertScope(lines, 'tool:call', 'string.quoted.double.writ');
  assertScope(lines, 'Europe/Paris', 'string.quoted.double.writ');
  assertScope(lines, '\\"', 'constant.character.escape.writ');
  assertScope(lines, '\\u{2014}', 'constant.character.escape.writ');
  assertScope(lines, '{agent}', 'constant.other.placeholder.writ');
  assertScope(lines, '{target}', 'constant.other.placeholder.writ');
  const bad = await tokenize('rule x: allow "a" because "C:\\data" # ok\nrule y: deny "b # still the string');
  assertScope(bad, '\\d', 'invalid.illegal.escape.writ');
  assertScope(bad, 'ok', 'comment.line.number-sign.writ', '# ok');
  // An unterminated string runs to the end of its line, and no further.
  assertScope(bad, '# still the string', 'string.quoted.double.writ');
  assertScope(bad, 'deny', 'keyword.other.effect.writ');
});

test('rule names after `rule`', async () => {
  const lines = await tokenize(SAMPLE);
  assertScope(lines, 'refund_small', 'entity.name.function.writ');
  assertScope(lines, '"needs a human"', 'entity.name.function.writ');
  // A rule name may be a keyword: the `:` makes it a name.
  assertScope(lines, 'models', 'entity.name.function.writ', 'rule models:');
  assertNoScope(lines, 'models', 'keyword.', 'rule models:');
  assertScope(lines, 'models', 'keyword.other.writ', 'models allow');
  // An unnamed rule: the effect follows `rule`.
  assertScope(lines, 'deny', 'keyword.other.effect.writ', 'rule deny');
  assertNoScope(lines, 'deny', 'entity.', 'rule deny');
});

test('effects', async () => {
  const lines = await tokenize(SAMPLE);
  assertScope(lines, 'deny', 'keyword.other.effect.writ', 'default deny');
  assertScope(lines, 'allow', 'keyword.other.effect.writ', 'refund_small: allow');
  assertScope(lines, 'approve', 'keyword.other.effect.writ', 'models: approve');
  assertScope(lines, 'approve', 'keyword.other.effect.writ', '"needs a human": approve');
  // Not inside words.
  const words = await tokenize('rule allowed_stores: allow "x" when denylist == approved');
  assertNoScope(words, 'denylist', 'keyword.');
  assertNoScope(words, 'approved', 'keyword.');
});

test('agent, role and policy names', async () => {
  const lines = await tokenize(SAMPLE);
  assertScope(lines, 'triage-agent', 'entity.name.type.writ', 'agent triage-agent {');
  assertScope(lines, '"billing-agent"', 'entity.name.type.writ');
  assertScope(lines, '"billing"', 'entity.name.type.writ');
  assertScope(lines, '"tour"', 'entity.name.namespace.writ');
  // A name with a hyphen is one word, not a keyword after a minus.
  assertScope(lines, 'triage-agent', 'variable.other.writ', 'entry_agents [triage-agent]');
  assertScope(lines, 'billing-agent', 'variable.other.writ', '[billing-agent]');
  assertScope(lines, 'beta-2', 'variable.other.writ');
  // `every agent {`: `agent` without a name.
  assertScope(lines, 'agent', 'keyword.declaration.writ', 'every agent {');
  assertScope(lines, '{', 'punctuation.section.block.begin.writ', 'every agent {');
});

test('constants, numbers and operators', async () => {
  const lines = await tokenize(SAMPLE);
  assertScope(lines, 'first-match', 'constant.language.combine.writ');
  assertScope(lines, 'medium', 'constant.language.risk.writ');
  assertScope(lines, 'low', 'constant.language.risk.writ', 'risk low');
  assertScope(lines, 'strict', 'constant.language.ceiling.writ');
  assertScope(lines, 'verified', 'constant.language.tier.writ', 'tier verified');
  assertScope(lines, 'requests', 'constant.language.metric.writ');
  assertScope(lines, 'hour', 'constant.language.unit.writ');
  assertScope(lines, 'minute', 'constant.language.unit.writ');
  assertScope(lines, 'true', 'constant.language.boolean.writ');
  assertScope(lines, 'false', 'constant.language.boolean.writ');
  assertScope(lines, 'null', 'constant.language.null.writ');
  assertScope(lines, '1000', 'constant.numeric.writ');
  assertScope(lines, '-1.5e3', 'constant.numeric.writ');
  assertScope(lines, '<=', 'keyword.operator.comparison.writ');
  assertScope(lines, '!=', 'keyword.operator.comparison.writ');
  const units = await tokenize('agent a { limit 50_000 tokens per DAY limit 5 requests per s }');
  assertScope(units, '50_000', 'constant.numeric.writ');
  assertScope(units, 'tokens', 'constant.language.metric.writ');
  assertScope(units, 'DAY', 'constant.language.unit.writ');
  assertScope(units, 's', 'constant.language.unit.writ', 'per s }');
});

test('every example under examples/ tokenizes and agrees with the lexer', async () => {
  const files = [];
  const walk = (dir) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        walk(full);
      } else if (entry.name.endsWith('.writ')) {
        files.push(full);
      }
    }
  };
  walk(path.join(repo, 'examples'));
  assert.ok(files.length >= 5, `only ${files.length} .writ files under examples/`);
  let tokens = 0;
  for (const file of files) {
    const name = path.relative(repo, file);
    const lines = await tokenize(fs.readFileSync(file, 'utf8'), name);
    tokens += agreeWithLexer(lines, name);
  }
  assert.ok(tokens > 1000, `only ${tokens} tokens checked`);
});
