// Go's fmt.Sprintf, Sprint and Sprintln for template values: the verbs scripts use with docker
// (%s %d %v %q %x %X %o %b %c %U %t %e %f %g %T %%), flags `-+# 0`, width and precision, and
// fmt's in-band error forms (%!d(string=x), %!s(MISSING), %!(EXTRA …)).

import { entriesOf, formatFloatV, formatV, GoFloat, goType, isInt, isMap, isStruct, NO_VALUE } from './values.js';

interface Spec {
  minus: boolean;
  plus: boolean;
  sharp: boolean;
  space: boolean;
  zero: boolean;
  width: number | null;
  prec: number | null;
}

/** strconv.Quote: Go escapes, printable runes kept as they are. */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0) as number;
    const named: Record<string, string> = { '\x07': '\\a', '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\v': '\\v', '"': '\\"', '\\': '\\\\' };
    if (named[ch]) out += named[ch];
    else if (c < 0x20 || c === 0x7f) out += '\\x' + c.toString(16).padStart(2, '0');
    else if (/[\p{L}\p{M}\p{N}\p{P}\p{S}]/u.test(ch) || ch === ' ') out += ch;
    else if (c < 0x10000) out += '\\u' + c.toString(16).padStart(4, '0');
    else out += '\\U' + c.toString(16).padStart(8, '0');
  }
  return out + '"';
}

function quoteRune(c: number): string {
  const q = goQuote(String.fromCodePoint(c));
  const body = q.slice(1, -1).replace(/\\"/g, '"');
  return `'${body === "'" ? "\\'" : body}'`;
}

function pad(s: string, spec: Spec, numeric: boolean): string {
  const width = spec.width ?? 0;
  const len = [...s].length;
  if (len >= width) return s;
  if (spec.minus) return s + ' '.repeat(width - len);
  if (spec.zero) {
    // Zero padding goes after the sign of a number.
    const sign = numeric && /^[+\- ]/.test(s) ? s[0] : '';
    return sign + '0'.repeat(width - len) + s.slice(sign.length);
  }
  return ' '.repeat(width - len) + s;
}

function bad(verb: string, v: unknown): string {
  if (v === null || v === undefined || v === NO_VALUE) return `%!${verb}(<nil>)`;
  return `%!${verb}(${goType(v)}=${formatV(v, false)})`;
}

function signed(body: string, negative: boolean, spec: Spec): string {
  return (negative ? '-' : spec.plus ? '+' : spec.space ? ' ' : '') + body;
}

function fmtInt(v: number | bigint, verb: string, spec: Spec): string {
  const big = BigInt(v);
  const neg = big < 0n;
  const abs = neg ? -big : big;
  let body: string;
  switch (verb) {
    case 'd':
    case 'v':
      body = abs.toString(10);
      break;
    case 'x':
      body = (spec.sharp ? '0x' : '') + abs.toString(16);
      break;
    case 'X':
      body = (spec.sharp ? '0X' : '') + abs.toString(16).toUpperCase();
      break;
    case 'o':
      body = (spec.sharp ? '0' : '') + abs.toString(8);
      break;
    case 'O':
      body = '0o' + abs.toString(8);
      break;
    case 'b':
      body = abs.toString(2);
      break;
    case 'c':
      return pad(String.fromCodePoint(Number(big)), spec, false);
    case 'q':
      return pad(quoteRune(Number(big)), spec, false);
    case 'U':
      return pad('U+' + abs.toString(16).toUpperCase().padStart(4, '0'), spec, false);
    case 'e':
    case 'E':
    case 'f':
    case 'F':
    case 'g':
    case 'G':
      return bad(verb, v);
    default:
      return bad(verb, v);
  }
  if (spec.prec !== null) body = body.padStart(spec.prec, '0');
  return pad(signed(body, neg, spec), { ...spec, zero: spec.zero && spec.prec === null }, true);
}

function expForm(s: string, upper: boolean): string {
  // JS writes 1.5e+3; Go writes at least two exponent digits: 1.5e+03.
  const out = s.replace(/e([+-])(\d)$/, 'e$10$2');
  return upper ? out.toUpperCase() : out;
}

function fmtFloat(f: number, verb: string, spec: Spec): string {
  const neg = f < 0 || Object.is(f, -0);
  const a = Math.abs(f);
  let body: string;
  if (!Number.isFinite(a)) body = Number.isNaN(a) ? 'NaN' : 'Inf';
  else
    switch (verb) {
      case 'v':
      case 'g':
      case 'G':
        if (spec.prec === null) body = formatFloatV(a);
        else {
          const p = Math.max(spec.prec, 1);
          const exp = a === 0 ? 0 : Math.floor(Math.log10(Number(a.toExponential(p - 1))));
          body = exp < -4 || exp >= p ? expForm(a.toExponential(p - 1).replace(/\.?0+e/, 'e'), false) : String(Number(a.toPrecision(p)));
        }
        if (verb === 'G') body = body.toUpperCase();
        break;
      case 'e':
      case 'E':
        body = expForm(a.toExponential(spec.prec ?? 6), verb === 'E');
        break;
      case 'f':
      case 'F':
        body = a.toFixed(spec.prec ?? 6);
        break;
      default:
        return bad(verb, f);
    }
  return pad(signed(body, neg, spec), spec, true);
}

function fmtString(s: string, verb: string, spec: Spec): string {
  switch (verb) {
    case 's':
    case 'v':
      return pad(spec.prec !== null ? [...s].slice(0, spec.prec).join('') : s, spec, false);
    case 'q':
      return pad(spec.sharp && !s.includes('`') ? '`' + s + '`' : goQuote(s), spec, false);
    case 'x':
    case 'X': {
      const hex = Buffer.from(s, 'utf8').toString('hex');
      return pad(verb === 'X' ? hex.toUpperCase() : hex, spec, false);
    }
    default:
      return bad(verb, s);
  }
}

/** One value under one verb; slices, maps and structs apply the verb to each element, as fmt does. */
export function fmtValue(v: unknown, verb: string, spec: Spec): string {
  if (verb === 'T') return pad(goType(v), spec, false);
  if (v === null || v === undefined || v === NO_VALUE) return verb === 'v' ? pad('<nil>', spec, false) : bad(verb, v);
  if (typeof v === 'boolean') return verb === 't' || verb === 'v' ? pad(String(v), spec, false) : bad(verb, v);
  if (isInt(v)) return fmtInt(v, verb, spec);
  if (typeof v === 'number') return fmtFloat(v, verb, spec);
  if (v instanceof GoFloat) return fmtFloat(v.value, verb, spec);
  if (typeof v === 'string') return fmtString(v, verb, spec);
  if (Array.isArray(v)) return '[' + v.map((x) => fmtValue(x, verb, spec)).join(' ') + ']';
  if (isStruct(v)) return '{' + entriesOf(v).map(([, x]) => fmtValue(x, verb, spec)).join(' ') + '}';
  if (isMap(v)) return 'map[' + entriesOf(v).map(([k, x]) => `${fmtValue(k, verb, spec)}:${fmtValue(x, verb, spec)}`).join(' ') + ']';
  return bad(verb, v);
}

export function sprintf(format: string, args: unknown[]): string {
  let out = '';
  let argi = 0;
  let i = 0;
  while (i < format.length) {
    const pct = format.indexOf('%', i);
    if (pct < 0) {
      out += format.slice(i);
      break;
    }
    out += format.slice(i, pct);
    i = pct + 1;
    const spec: Spec = { minus: false, plus: false, sharp: false, space: false, zero: false, width: null, prec: null };
    for (; i < format.length; i++) {
      const c = format[i];
      if (c === '-') spec.minus = true;
      else if (c === '+') spec.plus = true;
      else if (c === '#') spec.sharp = true;
      else if (c === ' ') spec.space = true;
      else if (c === '0') spec.zero = !spec.minus;
      else break;
    }
    const num = (): number | null => {
      if (format[i] === '*') {
        i++;
        const a = args[argi++];
        return isInt(a) ? Number(a) : null;
      }
      const m = /^\d+/.exec(format.slice(i));
      if (!m) return null;
      i += m[0].length;
      return Number(m[0]);
    };
    spec.width = num();
    if (format[i] === '.') {
      i++;
      spec.prec = num() ?? 0;
    }
    if (i >= format.length) {
      out += '%!(NOVERB)';
      break;
    }
    const verb = String.fromCodePoint(format.codePointAt(i) as number);
    i += verb.length;
    if (verb === '%') {
      out += '%';
      continue;
    }
    if (argi >= args.length) {
      out += `%!${verb}(MISSING)`;
      continue;
    }
    const v = args[argi++];
    out += verb === '!' ? bad(verb, v) : fmtValue(v, verb, spec);
  }
  if (argi < args.length) {
    out += '%!(EXTRA ' + args.slice(argi).map((a) => `${goType(a)}=${formatV(a, false)}`).join(', ') + ')';
  }
  return out;
}

/** fmt.Sprint: a space between operands when neither is a string. */
export function sprint(args: unknown[]): string {
  let out = '';
  args.forEach((a, k) => {
    if (k > 0 && typeof a !== 'string' && typeof args[k - 1] !== 'string') out += ' ';
    out += formatV(a, false);
  });
  return out;
}

/** fmt.Sprintln: spaces between all operands and a newline at the end. */
export function sprintln(args: unknown[]): string {
  return args.map((a) => formatV(a, false)).join(' ') + '\n';
}
