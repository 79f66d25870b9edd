// `--filter key=value` as docker's list commands take it (images, ps, image prune): the values
// of each key, checked against the keys the command knows, and docker's label and boolean
// matching. Repeating a key ORs its values; different keys AND, as in docker's daemon.
import { InvalidInputError, StrataError } from '../errors.js';

export type Filters = Map<string, string[]>;

/** Parse `k=v` flags; an unknown key or a flag without `=` is docker's "Invalid filter". */
export function parseFilters(flags: string[], known: readonly string[]): Filters {
  const out: Filters = new Map();
  for (const f of flags) {
    const eq = f.indexOf('=');
    // A flag value docker's parser refuses: its flag error, exit 125.
    if (eq <= 0) throw new StrataError(`invalid argument "${f}" for "-f, --filter" flag: bad format of filter (expected name=value)`, 125);
    const key = f.slice(0, eq).trim().toLowerCase();
    if (!known.includes(key)) throw new InvalidInputError(`Invalid filter '${key}'`);
    out.set(key, [...(out.get(key) ?? []), f.slice(eq + 1)]);
  }
  return out;
}

/** A true/false filter (`dangling=true`); undefined when the key is absent. */
export function boolFilter(filters: Filters, key: string): boolean | undefined {
  const values = filters.get(key);
  if (!values) return undefined;
  const bad = values.filter((v) => !/^(true|false|1|0)$/i.test(v));
  if (bad.length) throw new InvalidInputError(`Invalid filter '${key}=[${bad.join(' ')}]'`);
  // docker takes the first truthy one when both are given.
  return values.some((v) => /^(true|1)$/i.test(v));
}

/** docker's MatchKVList: every `label=K` needs K, every `label=K=V` needs K with value V. */
export function matchLabels(filters: Filters, labels: Record<string, string> | null | undefined): boolean {
  const wanted = filters.get('label');
  if (!wanted) return true;
  const have = labels ?? {};
  return wanted.every((w) => {
    const eq = w.indexOf('=');
    if (eq < 0) return Object.hasOwn(have, w);
    return Object.hasOwn(have, w.slice(0, eq)) && have[w.slice(0, eq)] === w.slice(eq + 1);
  });
}

/** Go's path.Match for reference patterns (`corpus/*`): `*` and `?` stop at `/`, `[...]` classes. */
export function globMatch(pattern: string, name: string): boolean {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) return false;
      const body = pattern.slice(i + 1, end);
      re += `[${body.startsWith('^') ? '^' + body.slice(1) : body.replace(/\\/g, '\\\\')}]`;
      i = end;
    } else if (c === '\\' && i + 1 < pattern.length) re += '\\' + pattern[++i];
    else re += c.replace(/[.+^${}()|\]\\/]/g, '\\$&');
  }
  return new RegExp(re + '$').test(name);
}
