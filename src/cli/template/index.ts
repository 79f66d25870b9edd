// Docker's --format semantics on top of the Go template engine, in the two calls every command
// makes: formatRows for list commands (images, ps, history, system df) and formatOne for one
// value (inspect, info, system df -v). What each command does differently, measured against
// docker 20.10's client, is in COMMANDS; nothing else here is per-command.
//
// Measured with docker 20.10 (the oracle), not assumed:
// - `--format json` is not special: "json" is a literal template, printed once per row.
// - `table` is a prefix (case-sensitive, no space needed: `table{{.ID}}` works; `tablex {{.ID}}`
//   prints "x …"); `table` alone or an empty format means the command's default table.
// - list formats are trimmed of spaces and have the two-character sequences `\t` and `\n`
//   turned into a tab and a newline; inspect and info take the template as it is.
// - a table's header row is the same template run over docker's header map (field name ->
//   column title) with the string functions replaced by ones that return their input; an error
//   there is ignored and whatever was written before it stays (docker ignores it too).
// - rows go through text/tabwriter: minwidth 10, padding 3.
// - errors: list commands exit 1 ("template parsing error: …"; ps says "failed to parse
//   template: …" / "failed to execute template: …"); inspect and info exit 64 on a malformed
//   template and 1 when it fails to execute (info without a prefix). Nothing is printed on
//   a list command's error; docker's inspect and info print one empty line first (the caller's
//   part: this module returns the text or throws).

import { StrataError } from '../../errors.js';
import { compile, execute, plainParts, runPlain, TemplateExecError, type Template } from './exec.js';
import { HEADER_FUNCS } from './funcs.js';
import { TemplateSyntaxError } from './lex.js';
import { tabwrite } from './tabwriter.js';
import { entriesOf, goStruct, toJSON, jsonString } from './values.js';

export { goStruct } from './values.js';
export { tabwrite } from './tabwriter.js';
export { TemplateSyntaxError } from './lex.js';
export { TemplateExecError, compile, execute } from './exec.js';
export * from './tables.js';

export type FormatCommand = 'images' | 'ps' | 'history' | 'system df' | 'inspect' | 'info' | 'system df -v' | 'layers';

interface CommandSpec {
  parse: [prefix: string, exitCode: number];
  exec: [prefix: string, exitCode: number];
  /** docker's formatter.Context preFormat: strip `table`, trim spaces, `\t` and `\n` escapes. */
  preformat: boolean;
  /** A newline after formatOne's output (docker's inspect and info add one; `system df -v` does not). */
  newline: boolean;
  /** Go's missingkey option: docker's inspect runs its JSON fallback with missingkey=error. */
  missingKey: 'default' | 'error';
}

const LIST: CommandSpec = { parse: ['template parsing error: ', 1], exec: ['template parsing error: ', 1], preformat: true, newline: true, missingKey: 'default' };

export const COMMANDS: Record<FormatCommand, CommandSpec> = {
  images: LIST,
  history: LIST,
  'system df': LIST,
  ps: { ...LIST, parse: ['failed to parse template: ', 1], exec: ['failed to execute template: ', 1] },
  inspect: { parse: ['template parsing error: ', 64], exec: ['template parsing error: ', 1], preformat: false, newline: true, missingKey: 'error' },
  info: { parse: ['template parsing error: ', 64], exec: ['', 1], preformat: false, newline: true, missingKey: 'default' },
  'system df -v': { ...LIST, exec: ['', 1], newline: false },
  // strata's own list command: docker's list conventions.
  layers: LIST,
};

/** A header map value: a column title, or a method such as ps's `{{.Label "com.x"}}`. */
export type HeaderValue = string | ((...args: string[]) => string);

export interface RowsOptions {
  command: FormatCommand;
  /** The Go type docker's errors name for a row, e.g. `*formatter.imageContext` (per row for `system df`). */
  typeName: string | ((row: Record<string, unknown>) => string);
  /** Column titles by field name: docker's header map for this command. */
  headers: Record<string, HeaderValue>;
  /** The command's default table format, used for an empty format or a bare `table`. */
  defaultTable: string;
}

function fail(spec: CommandSpec, err: unknown): never {
  if (err instanceof TemplateSyntaxError) throw new StrataError(spec.parse[0] + err.message, spec.parse[1]);
  if (err instanceof TemplateExecError) throw new StrataError(spec.exec[0] + err.message, spec.exec[1]);
  throw err;
}

function preformat(format: string, spec: CommandSpec): { text: string; table: boolean } {
  if (!spec.preformat) return { text: format, table: false };
  const table = format.startsWith('table');
  const text = (table ? format.slice('table'.length) : format)
    .replace(/^ +| +$/g, '')
    .replace(/\\t|\\n/g, (m) => (m === '\\t' ? '\t' : '\n'));
  return { text, table };
}

function compileFor(spec: CommandSpec, text: string): Template {
  try {
    return compile(text);
  } catch (err) {
    fail(spec, err);
  }
}

/** A row as docker's formatter contexts are: a struct whose JSON is its fields sorted, HTML-escaped (json.Marshal of a map). */
function rowStruct(typeName: string, row: Record<string, unknown>): Record<string, unknown> {
  // The row itself, not a copy: a copy would read every field, and list commands give fields
  // as getters so that a template computes only those it names (`ps -a` over 10,000 rows).
  return goStruct(typeName, row, () => '{' + entriesOf(Object.assign({}, row)).map(([k, v]) => `${jsonString(k, true)}:${toJSON(v, true)}`).join(',') + '}');
}

/**
 * Render list rows as docker does for `--format`: a template per row, or a `table` with a header
 * row, aligned by tabwriter. Returns the text to print (ending in a newline unless empty);
 * throws a StrataError with docker's message and exit code for a bad template.
 */
export function formatRows(rows: Record<string, unknown>[], format: string, opts: RowsOptions): string {
  const spec = COMMANDS[opts.command];
  const chosen = format === '' || format === 'table' ? opts.defaultTable : format;
  const { text, table } = preformat(chosen, spec);
  const t = compileFor(spec, text);
  const plain = plainParts(t);
  let body = '';
  for (const row of rows) {
    const fast = plain && runPlain(plain, row);
    if (typeof fast === 'string') {
      body += fast + '\n';
      continue;
    }
    try {
      const typeName = typeof opts.typeName === 'string' ? opts.typeName : opts.typeName(row);
      body += execute(t, rowStruct(typeName, row), { missingKey: spec.missingKey }) + '\n';
    } catch (err) {
      fail(spec, err);
    }
  }
  if (!table) return body;
  let header = '';
  try {
    header = execute(t, opts.headers, { funcs: HEADER_FUNCS });
  } catch (err) {
    if (!(err instanceof TemplateExecError)) throw err;
    header = err.partial;
  }
  return tabwrite(header + '\n' + body);
}

/**
 * Render one value (inspect's object, info, `system df -v`) with a user template.
 * Returns the text to print; throws a StrataError with docker's message and exit code.
 */
export function formatOne(value: unknown, format: string, command: 'inspect' | 'info' | 'system df -v'): string {
  const spec = COMMANDS[command];
  const { text } = preformat(format, spec);
  const t = compileFor(spec, text);
  try {
    return execute(t, value, { missingKey: spec.missingKey }) + (spec.newline ? '\n' : '');
  } catch (err) {
    fail(spec, err);
  }
}
