// How strata's JavaScript data stands for Go values inside templates, and how Go prints them.
//
// Docker renders --format against Go values; strata hands the engine plain JS data. The mapping:
// - a plain object is a Go map[string]interface{}: what docker's `inspect` falls back to when it
//   decodes the JSON it would print. A missing key is `<no value>`, or an error ("map has no
//   entry for key") under `missingKey: 'error'` (docker's inspect). Ranging and %v walk the keys
//   sorted, as Go does; {{json}} keeps the object's own key order, because strata builds those
//   objects in the field order of the docker struct they stand for.
// - a JS Map is a typed Go map inside a docker struct (Config.Labels, NetworkSettings.Networks):
//   a missing key is `<no value>` whatever missingKey says (docker's typed pass never fails
//   there), and {{json}} sorts its keys as Go's encoder does.
// - an object made by goStruct(typeName, fields) is a Go struct: a missing field is Go's
//   "can't evaluate field X in type T" whatever missingKey says, %v prints `{v1 v2 …}`, and a
//   function-valued field is a method (`{{.Label "a"}}` calls it with "a").
// - arrays are slices; numbers are int when integral and float64 otherwise; null is nil.
// - an array whose values are all strings is a []string, so `join .Config.Env ","` works as on
//   docker's typed data; `index` on a map whose values are all strings returns "" for a missing
//   key, as on docker's map[string]string labels.

/**
 * A float64 whose value is integral (the literal `2.0` or `1e21`): JS has one number type, and
 * an integral JS number stands for an int, so such floats are boxed to print and compare as Go's.
 */
export class GoFloat {
  constructor(readonly value: number) {}
}

/** The value of a missing map key: Go's invalid reflect.Value, printed as `<no value>`. */
export const NO_VALUE: unique symbol = Symbol('no value');

/**
 * What goStruct marked: the type name and any custom JSON encoding (a Go type's MarshalJSON,
 * returning the JSON text itself). Kept beside the objects rather than as hidden properties on
 * them: defining two properties per row was most of `ps -a`'s per-row cost.
 */
const structs = new WeakMap<object, { typeName: string; marshalJSON?: () => string }>();

export type GoStruct = Record<string, unknown>;

/** Mark `fields` as a Go struct named `typeName` (e.g. `*formatter.imageContext`). */
export function goStruct<T extends object>(typeName: string, fields: T, marshalJSON?: () => string): T & GoStruct {
  structs.set(fields, { typeName, marshalJSON });
  return fields as T & GoStruct;
}

export function isStruct(v: unknown): v is GoStruct {
  return typeof v === 'object' && v !== null && structs.has(v);
}

export function isMap(v: unknown): v is Record<string, unknown> | Map<string, unknown> {
  return v instanceof Map || (typeof v === 'object' && v !== null && !Array.isArray(v) && !isStruct(v) && !(v instanceof GoFloat));
}

/** Go's kind of a basic value, for comparisons; null for nil, 'other' for slices, maps and structs. */
export function basicKind(v: unknown): 'bool' | 'int' | 'float' | 'string' | 'other' | null {
  if (v === null || v === undefined || v === NO_VALUE) return null;
  if (typeof v === 'boolean') return 'bool';
  if (isInt(v)) return 'int';
  if (typeof v === 'number' || v instanceof GoFloat) return 'float';
  if (typeof v === 'string') return 'string';
  return 'other';
}

/** The JS number or string of a basic value, unboxing GoFloat. */
export function basicValue(v: unknown): unknown {
  return v instanceof GoFloat ? v.value : v;
}

/** The entries of a map (sorted by key, as Go ranges and prints them) or of a struct (in order). */
export function entriesOf(v: Record<string, unknown> | Map<string, unknown>): [string, unknown][] {
  const e = v instanceof Map ? [...v.entries()].map(([k, x]) => [String(k), x] as [string, unknown]) : Object.entries(v);
  const live = e.filter(([, x]) => x !== undefined && typeof x !== 'function');
  return isStruct(v) ? live : live.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

export function mapGet(v: Record<string, unknown> | Map<string, unknown>, key: string): unknown {
  if (v instanceof Map) return v.has(key) ? v.get(key) : NO_VALUE;
  return Object.prototype.hasOwnProperty.call(v, key) && v[key] !== undefined ? v[key] : NO_VALUE;
}

export function isInt(v: unknown): v is number | bigint {
  return typeof v === 'bigint' || (typeof v === 'number' && Number.isInteger(v));
}

/** Go's type name of a value, as %T and error messages print it. */
export function goType(v: unknown): string {
  if (v === null || v === undefined || v === NO_VALUE) return '<nil>';
  if (typeof v === 'string') return 'string';
  if (typeof v === 'boolean') return 'bool';
  if (isInt(v)) return 'int';
  if (typeof v === 'number' || v instanceof GoFloat) return 'float64';
  if (Array.isArray(v)) return v.length > 0 && v.every((x) => typeof x === 'string') ? '[]string' : '[]interface {}';
  const struct = typeof v === 'object' && v !== null ? structs.get(v) : undefined;
  if (struct) return struct.typeName;
  // docker's inspect reports errors from its pass over decoded JSON, where every map is this type.
  if (isMap(v)) return 'map[string]interface {}';
  return typeof v;
}

/** Go's truth: false, 0, nil, and empty strings, slices and maps are false; structs are true. */
export function isTrue(v: unknown): boolean {
  if (v === null || v === undefined || v === NO_VALUE) return false;
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number') return v !== 0;
  if (typeof v === 'bigint') return v !== 0n;
  if (v instanceof GoFloat) return v.value !== 0;
  if (typeof v === 'string') return v.length > 0;
  if (Array.isArray(v)) return v.length > 0;
  if (isStruct(v)) return true;
  if (v instanceof Map) return v.size > 0;
  if (typeof v === 'object') return entriesOf(v as Record<string, unknown>).length > 0;
  return true;
}

/** strconv.FormatFloat(f, 'g', -1, 64), fmt's %v: shortest digits, exponent form from 1e6 and below 1e-4. */
export function formatFloatV(f: number): string {
  if (Number.isNaN(f)) return 'NaN';
  if (!Number.isFinite(f)) return f > 0 ? '+Inf' : '-Inf';
  if (f === 0) return Object.is(f, -0) ? '-0' : '0';
  const [mant, expText] = f.toExponential().split('e');
  const exp = Number(expText);
  // strconv uses precision 6 for this decision when asked for the shortest form.
  if (exp < -4 || exp >= 6) return `${mant}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  const digits = mant.replace('-', '').replace('.', '');
  const neg = f < 0 ? '-' : '';
  if (exp >= digits.length - 1) return neg + digits + '0'.repeat(exp - digits.length + 1);
  if (exp >= 0) return neg + digits.slice(0, exp + 1) + '.' + digits.slice(exp + 1);
  return neg + '0.' + '0'.repeat(-exp - 1) + digits;
}

/** fmt's %v of a value, as an action `{{…}}` prints it. */
export function formatV(v: unknown, top = true): string {
  if (v === NO_VALUE) return top ? '<no value>' : '<nil>';
  if (v === null || v === undefined) return '<nil>';
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean') return String(v);
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : formatFloatV(v);
  if (v instanceof GoFloat) return formatFloatV(v.value);
  if (Array.isArray(v)) return '[' + v.map((x) => formatV(x, false)).join(' ') + ']';
  if (isStruct(v)) return '{' + entriesOf(v).map(([, x]) => formatV(x, false)).join(' ') + '}';
  if (isMap(v)) return 'map[' + entriesOf(v).map(([k, x]) => `${k}:${formatV(x, false)}`).join(' ') + ']';
  return String(v);
}

/** A JSON string as Go's encoding/json writes it (escapeHTML as json.Marshal, off as docker's {{json}}). */
export function jsonString(s: string, escapeHTML: boolean): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0) as number;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (c < 0x20 || c === 0x2028 || c === 0x2029 || (escapeHTML && (ch === '<' || ch === '>' || ch === '&'))) {
      out += '\\u' + c.toString(16).padStart(4, '0');
    } else out += ch;
  }
  return out + '"';
}

/** encoding/json of a value: maps in key order (see the header), structs in field order. */
export function toJSON(v: unknown, escapeHTML: boolean): string {
  if (v === null || v === undefined || v === NO_VALUE) return 'null';
  if (typeof v === 'string') return jsonString(v, escapeHTML);
  if (typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (typeof v === 'number') return Number.isFinite(v) ? JSON.stringify(v) : 'null';
  if (v instanceof GoFloat) return toJSON(v.value, escapeHTML);
  if (Array.isArray(v)) return '[' + v.map((x) => toJSON(x, escapeHTML)).join(',') + ']';
  const marshalJSON = typeof v === 'object' && v !== null ? structs.get(v)?.marshalJSON : undefined;
  if (marshalJSON) return marshalJSON();
  if (v instanceof Map) return toJSON(Object.fromEntries(entriesOf(v)), escapeHTML);
  if (typeof v === 'object') {
    const obj = v as Record<string, unknown> & { toJSON?: () => unknown };
    if (typeof obj.toJSON === 'function') return toJSON(obj.toJSON(), escapeHTML);
    const parts = Object.entries(obj)
      .filter(([, x]) => x !== undefined && typeof x !== 'function')
      .map(([k, x]) => `${jsonString(k, escapeHTML)}:${toJSON(x, escapeHTML)}`);
    return '{' + parts.join(',') + '}';
  }
  return 'null';
}
