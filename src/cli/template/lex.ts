// The lexer of Go's text/template for the subset docker's --format uses: text, {{ }} actions
// with `{{-`/`-}}` trimming and comments, fields, variables, literals, keywords. It keeps each
// token's byte offset, because Go's error messages name the line and the byte column.

import { goQuote } from './printf.js';

export type TokenType =
  | 'text'
  | 'left' // {{
  | 'right' // }}
  | 'field' // .Name
  | 'dot' // .
  | 'variable' // $ or $name
  | 'identifier' // function name
  | 'keyword' // if else end range with template define block break continue
  | 'string' // "quoted" or `raw`, val is the decoded text
  | 'char' // 'a', val is the code point as decimal text
  | 'number'
  | 'bool'
  | 'nil'
  | 'pipe'
  | 'declare' // :=
  | 'assign' // =
  | 'comma'
  | 'lparen'
  | 'rparen'
  | 'eof';

export interface Token {
  type: TokenType;
  /** The source text of the token (for strings: the quoted text as written). */
  text: string;
  /** Decoded value: the string for strings and text, the code point for chars. */
  val: string;
  /** Byte offset in the template (Go counts bytes, not UTF-16 units). */
  pos: number;
  /** 1-based line of the token, for parse errors. */
  line: number;
  /** No space between this token and the one before it in the same action (`$x.Field`, `(...).Field`). */
  glued: boolean;
}

/** A parse-time failure; `line` is 1-based, as Go prints it. */
export class TemplateSyntaxError extends Error {
  constructor(
    readonly line: number,
    readonly detail: string,
  ) {
    super(`template: :${line}: ${detail}`);
    this.name = 'TemplateSyntaxError';
  }
}

const KEYWORDS = new Set(['if', 'else', 'end', 'range', 'with', 'template', 'define', 'block', 'break', 'continue']);

const NUMBER = /[+-]?(0[xX][0-9a-fA-F_]+(\.[0-9a-fA-F_]*)?([pP][+-]?[0-9]+)?|0[bB][01_]+|0[oO][0-7_]+|([0-9][0-9_]*)?\.?[0-9_]*([eE][+-]?[0-9_]+)?)/y;

function isSpace(c: string): boolean {
  return c === ' ' || c === '\t' || c === '\r' || c === '\n';
}

function isAlnum(c: string): boolean {
  const n = c.charCodeAt(0);
  if (n < 0x80) return (n >= 48 && n <= 57) || (n >= 65 && n <= 90) || (n >= 97 && n <= 122) || n === 95;
  return /[\p{L}\p{Nd}]/u.test(c);
}

/** Decode a Go interpreted string literal body (between the quotes). */
function unquote(body: string, line: number): string {
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c !== '\\') {
      out += c;
      continue;
    }
    const e = body[++i];
    const simple: Record<string, string> = { n: '\n', t: '\t', r: '\r', a: '\x07', b: '\b', f: '\f', v: '\v', '\\': '\\', '"': '"', "'": "'" };
    if (e in simple) {
      out += simple[e];
    } else if (e === 'x' || e === 'u' || e === 'U') {
      const n = e === 'x' ? 2 : e === 'u' ? 4 : 8;
      const hex = body.slice(i + 1, i + 1 + n);
      if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== n) throw new TemplateSyntaxError(line, `invalid syntax`);
      // \x escapes are bytes in Go; bytes past 0x7f cannot be kept in a JS string, so they stay code points.
      out += String.fromCodePoint(parseInt(hex, 16));
      i += n;
    } else if (e !== undefined && e >= '0' && e <= '7') {
      const oct = body.slice(i, i + 3);
      if (!/^[0-7]{3}$/.test(oct)) throw new TemplateSyntaxError(line, `invalid syntax`);
      out += String.fromCharCode(parseInt(oct, 8));
      i += 2;
    } else {
      throw new TemplateSyntaxError(line, `invalid syntax`);
    }
  }
  return out;
}

/** Split a template into tokens. Offsets are in UTF-8 bytes. */
export function lex(src: string): Token[] {
  const tokens: Token[] = [];
  // Byte offset and line of every UTF-16 index, computed once so long templates stay linear.
  const bytes = new Uint32Array(src.length + 1);
  const lines = new Uint32Array(src.length + 1);
  lines[0] = 1;
  for (let k = 0; k < src.length; k++) {
    const c = src.charCodeAt(k);
    // UTF-8 length per UTF-16 unit: a surrogate pair (4 bytes) counts 2 + 2.
    bytes[k + 1] = bytes[k] + (c < 0x80 ? 1 : c < 0x800 ? 2 : c >= 0xd800 && c <= 0xdfff ? 2 : 3);
    lines[k + 1] = lines[k] + (c === 10 ? 1 : 0);
  }
  const byteAt = (i: number): number => bytes[i];
  const lineAt = (i: number): number => lines[i];
  let lastEnd = -1;
  const push = (type: TokenType, text: string, val: string, at: number) => {
    tokens.push({ type, text, val, pos: byteAt(at), line: lineAt(at), glued: at === lastEnd });
    lastEnd = at + text.length;
  };

  let i = 0;
  while (i < src.length) {
    let open = src.indexOf('{{', i);
    if (open < 0) open = src.length;
    let textEnd = open;
    const trimLeft = /^\{\{-[ \t\r\n]/.test(src.slice(open, open + 4));
    if (trimLeft) while (textEnd > i && isSpace(src[textEnd - 1])) textEnd--;
    if (textEnd > i) push('text', src.slice(i, textEnd), src.slice(i, textEnd), i);
    if (open >= src.length) break;

    const actionLine = lineAt(open);
    let p = open + 2 + (trimLeft ? 2 : 0);
    // Comments: {{/* ... */}}, the only content allowed is the comment itself.
    if (src.startsWith('/*', p)) {
      const close = src.indexOf('*/', p + 2);
      if (close < 0) throw new TemplateSyntaxError(actionLine, 'unclosed comment');
      let q = close + 2;
      let trimRight = false;
      if (/^[ \t\r\n]-}}/.test(src.slice(q, q + 4))) {
        trimRight = true;
        q += 4;
      } else if (src.startsWith('}}', q)) {
        q += 2;
      } else {
        throw new TemplateSyntaxError(actionLine, 'comment ends before closing delimiter');
      }
      i = q;
      if (trimRight) while (i < src.length && isSpace(src[i])) i++;
      continue;
    }
    push('left', '{{', '', open);

    // Inside the action.
    let closed = false;
    let parens = 0;
    while (p < src.length) {
      const c = src[p];
      const line = lineAt(p);
      if (/^[ \t\r\n]-}}/.test(src.slice(p, p + 4))) {
        push('right', '}}', '', p + 2);
        p += 4;
        while (p < src.length && isSpace(src[p])) p++;
        closed = true;
        break;
      }
      if (src.startsWith('}}', p)) {
        push('right', '}}', '', p);
        p += 2;
        closed = true;
        break;
      }
      if (isSpace(c)) {
        p++;
        continue;
      }
      if (c === '|') {
        push('pipe', c, c, p++);
      } else if (c === ',') {
        push('comma', c, c, p++);
      } else if (c === '(') {
        parens++;
        push('lparen', c, c, p++);
      } else if (c === ')') {
        parens--;
        push('rparen', c, c, p++);
      } else if (c === ':') {
        if (src[p + 1] !== '=') throw new TemplateSyntaxError(line, 'expected :=');
        push('declare', ':=', ':=', p);
        p += 2;
      } else if (c === '=') {
        push('assign', '=', '=', p++);
      } else if (c === '"') {
        let q = p + 1;
        while (q < src.length && src[q] !== '"') {
          if (src[q] === '\\') q++;
          if (src[q] === '\n' || q >= src.length) throw new TemplateSyntaxError(line, 'unterminated quoted string');
          q++;
        }
        if (q >= src.length) throw new TemplateSyntaxError(line, 'unterminated quoted string');
        push('string', src.slice(p, q + 1), unquote(src.slice(p + 1, q), line), p);
        p = q + 1;
      } else if (c === '`') {
        const q = src.indexOf('`', p + 1);
        if (q < 0) throw new TemplateSyntaxError(line, 'unterminated raw quoted string');
        push('string', src.slice(p, q + 1), src.slice(p + 1, q), p);
        p = q + 1;
      } else if (c === "'") {
        let q = p + 1;
        while (q < src.length && src[q] !== "'") {
          if (src[q] === '\\') q++;
          if (src[q] === '\n' || q >= src.length) throw new TemplateSyntaxError(line, 'unterminated character constant');
          q++;
        }
        if (q >= src.length) throw new TemplateSyntaxError(line, 'unterminated character constant');
        const decoded = unquote(src.slice(p + 1, q), line);
        if ([...decoded].length !== 1) throw new TemplateSyntaxError(line, `malformed character constant: ${src.slice(p, q + 1)}`);
        push('char', src.slice(p, q + 1), String(decoded.codePointAt(0)), p);
        p = q + 1;
      } else if (c === '$') {
        let q = p + 1;
        while (q < src.length && isAlnum(src[q])) q++;
        push('variable', src.slice(p, q), src.slice(p, q), p);
        p = q;
      } else if (c === '.' && !(src[p + 1] >= '0' && src[p + 1] <= '9')) {
        let q = p + 1;
        while (q < src.length && isAlnum(src[q])) q++;
        if (q === p + 1) push('dot', '.', '.', p);
        else push('field', src.slice(p, q), src.slice(p + 1, q), p);
        p = q;
      } else if (/[0-9+\-.]/.test(c)) {
        NUMBER.lastIndex = p;
        const m = NUMBER.exec(src);
        const text = m ? m[0] : '';
        if (!text || !/[0-9]/.test(text) || (p + text.length < src.length && isAlnum(src[p + text.length]))) {
          throw new TemplateSyntaxError(line, `bad number syntax: ${goQuote(src.slice(p, p + Math.max(text.length, 1) + 1).replace(/}.*/, ''))}`);
        }
        push('number', text, text, p);
        p += text.length;
      } else if (isAlnum(c)) {
        let q = p;
        while (q < src.length && isAlnum(src[q])) q++;
        const word = src.slice(p, q);
        if (KEYWORDS.has(word)) push('keyword', word, word, p);
        else if (word === 'true' || word === 'false') push('bool', word, word, p);
        else if (word === 'nil') push('nil', word, word, p);
        else push('identifier', word, word, p);
        p = q;
        // A field right after an identifier or ) is a chained field; the loop handles it.
      } else {
        throw new TemplateSyntaxError(line, `unexpected ${JSON.stringify(c)} in command`);
      }
    }
    if (!closed) throw new TemplateSyntaxError(actionLine, 'unclosed action');
    if (parens > 0) throw new TemplateSyntaxError(actionLine, 'unclosed left paren');
    i = p;
  }
  tokens.push({ type: 'eof', text: '', val: '', pos: byteAt(src.length), line: lineAt(src.length), glued: false });
  return tokens;
}

/** 1-based line and 0-based byte column of a byte offset, as Go's ErrorContext prints them. */
export function lineCol(src: string, bytePos: number): [number, number] {
  const bytes = new TextEncoder().encode(src).subarray(0, bytePos);
  let line = 1;
  let lastNl = -1;
  bytes.forEach((b, i) => {
    if (b === 10) {
      line++;
      lastNl = i;
    }
  });
  return [line, bytePos - lastNl - 1];
}
