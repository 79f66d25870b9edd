// The template functions: Go text/template's builtins that scripts use (index len print printf
// println eq ne lt le gt ge not; `and`/`or` are evaluated lazily by the executor) and the ones
// docker's CLI adds (json split join title lower upper pad truncate), with their Go signatures
// so wrong argument types fail the way docker fails.

import { sprint, sprintf, sprintln } from './printf.js';
import { basicKind, basicValue, entriesOf, formatV, goType, isInt, isMap, isStruct, isTrue, mapGet, NO_VALUE, toJSON } from './values.js';

/** The parameter types the executor checks arguments against. */
export type ParamType = 'any' | 'string' | 'int' | '[]string';

export interface GoFunc {
  params: ParamType[];
  /** Type of the trailing `...` parameter, if the function is variadic. */
  variadic?: ParamType;
  call: (...args: unknown[]) => unknown;
}

/** An error a function returns; the executor reports it as "error calling NAME: …". */
export class FuncError extends Error {}

function eq(a: unknown, ...rest: unknown[]): boolean {
  if (rest.length === 0) throw new FuncError('missing argument for comparison');
  const ka = basicKind(a);
  for (const b of rest) {
    const kb = basicKind(b);
    // nil equals only nil (docker: `eq .State.Health nil` is true when there is no health).
    if (ka === null || kb === null) {
      if (ka === kb) return true;
      continue;
    }
    if (ka !== kb) throw new FuncError('incompatible types for comparison');
    if (ka === 'other') throw new FuncError(`non-comparable type ${formatV(b, false)}: ${goType(b)}`);
    if (basicValue(a) === basicValue(b)) return true;
  }
  return false;
}

function lt(a: unknown, b: unknown): boolean {
  const ka = basicKind(a);
  const kb = basicKind(b);
  if (ka !== kb) throw new FuncError('incompatible types for comparison');
  if (ka !== 'int' && ka !== 'float' && ka !== 'string') throw new FuncError('invalid type for comparison');
  return (basicValue(a) as number | string) < (basicValue(b) as number | string);
}

function index(item: unknown, ...keys: unknown[]): unknown {
  let v = item;
  for (const k of keys) {
    if (v === null || v === undefined || v === NO_VALUE) throw new FuncError('index of untyped nil');
    if (Array.isArray(v) || typeof v === 'string') {
      if (!isInt(k)) throw new FuncError(`cannot index slice/array with type ${goType(k)}`);
      const n = Number(k);
      const len = typeof v === 'string' ? Buffer.byteLength(v) : v.length;
      if (n < 0 || n >= len) throw new FuncError(`index out of range: ${n}`);
      // Indexing a Go string yields a byte.
      v = typeof v === 'string' ? Buffer.from(v, 'utf8')[n] : v[n];
    } else if (isMap(v)) {
      if (typeof k !== 'string') throw new FuncError(`value has type ${goType(k)}; should be string`);
      const got = mapGet(v, k);
      if (got === NO_VALUE) {
        // The zero value of the map's element type: "" for a map[string]string, nil otherwise.
        v = entriesOf(v).every(([, x]) => typeof x === 'string') ? '' : null;
      } else v = got;
    } else {
      throw new FuncError(`can't index item of type ${goType(v)}`);
    }
  }
  return v;
}

function len(v: unknown): number {
  if (typeof v === 'string') return Buffer.byteLength(v);
  if (Array.isArray(v)) return v.length;
  if (isMap(v) && !isStruct(v)) return entriesOf(v).length;
  if (v === null || v === undefined || v === NO_VALUE) throw new FuncError('len of nil pointer');
  throw new FuncError(`len of type ${goType(v)}`);
}

/** strings.Title: upper-case the first letter of each word (letters after a non-letter). */
function title(s: string): string {
  let prev = ' ';
  let out = '';
  for (const ch of s) {
    out += /[\p{L}\p{N}_']/u.test(prev) ? ch : ch.toUpperCase();
    prev = ch;
  }
  return out;
}

/** docker's truncate: the first n bytes (Go slices strings by byte). */
function truncate(s: string, n: number): string {
  const b = Buffer.from(s, 'utf8');
  return b.length <= n ? s : b.subarray(0, n).toString('utf8');
}

export const FUNCS: Record<string, GoFunc> = {
  // Go builtins
  index: { params: ['any'], variadic: 'any', call: index },
  len: { params: ['any'], call: (v) => len(v) },
  not: { params: ['any'], call: (v) => !isTrue(v) },
  eq: { params: ['any'], variadic: 'any', call: (a, ...rest) => eq(a, ...rest) },
  ne: { params: ['any', 'any'], call: (a, b) => !eq(a, b) },
  lt: { params: ['any', 'any'], call: (a, b) => lt(a, b) },
  le: { params: ['any', 'any'], call: (a, b) => lt(a, b) || eq(a, b) },
  gt: { params: ['any', 'any'], call: (a, b) => !lt(a, b) && !eq(a, b) },
  ge: { params: ['any', 'any'], call: (a, b) => !lt(a, b) },
  print: { params: [], variadic: 'any', call: (...a) => sprint(a) },
  printf: { params: ['string'], variadic: 'any', call: (f, ...a) => sprintf(f as string, a) },
  println: { params: [], variadic: 'any', call: (...a) => sprintln(a) },
  // docker's additions (cli/templates)
  json: { params: ['any'], call: (v) => toJSON(v, false) },
  split: { params: ['string', 'string'], call: (s, sep) => (s as string).split(sep as string) },
  join: { params: ['[]string', 'string'], call: (a, sep) => (a as string[]).join(sep as string) },
  title: { params: ['string'], call: (s) => title(s as string) },
  lower: { params: ['string'], call: (s) => (s as string).toLowerCase() },
  upper: { params: ['string'], call: (s) => (s as string).toUpperCase() },
  pad: { params: ['string', 'int', 'int'], call: (s, l, r) => ((s as string) === '' ? '' : ' '.repeat(l as number) + s + ' '.repeat(r as number)) },
  truncate: { params: ['string', 'int'], call: (s, n) => truncate(s as string, n as number) },
};

/** docker renders a table's header row with these in place of the string functions: each returns its input. */
export const HEADER_FUNCS: Record<string, GoFunc> = {
  ...FUNCS,
  json: { params: ['string'], call: (v) => v },
  split: { params: ['string', 'string'], call: (v) => v },
  join: { params: ['string', 'string'], call: (v) => v },
  title: { params: ['string'], call: (v) => v },
  lower: { params: ['string'], call: (v) => v },
  upper: { params: ['string'], call: (v) => v },
  pad: { params: ['string', 'int', 'int'], call: (v) => v },
  truncate: { params: ['string', 'int'], call: (v) => v },
};

/** Names the parser accepts: the functions plus the lazily evaluated `and`/`or`. */
export const FUNC_NAMES: ReadonlySet<string> = new Set([...Object.keys(FUNCS), 'and', 'or']);
