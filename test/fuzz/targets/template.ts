// Target: the Go-template engine behind --format (src/cli/template). Inputs are templates built
// from the grammar (text, {{- trims -}}, comments, pipelines of fields, variables, literals and
// every function, parenthesised arguments, if/with/range/else/break/continue blocks), with
// character edits that break them, executed over random inspect-like data (plain objects as
// Go maps, JS Maps as typed maps, goStruct structs with methods, slices, ints, floats, nil).
// Each template also runs as a table's header row does (HEADER_FUNCS) and with missingkey=error.
// Clean errors: the engine's own TemplateSyntaxError (one line) and TemplateExecError.
import fc from 'fast-check';
import { compile, execute, goStruct, TemplateExecError, TemplateSyntaxError } from '../../../src/cli/template/index.js';
import { HEADER_FUNCS } from '../../../src/cli/template/funcs.js';
import { GoFloat } from '../../../src/cli/template/values.js';
import { editedString } from '../mutate.js';
import { FuzzViolation, type FuzzTarget } from '../target.js';

export interface TemplateInput {
  template: string;
  data: unknown;
}

const KEYS = ['ID', 'Name', 'Names', 'Labels', 'Config', 'State', 'Env', 'Size', 'Status', 'a', 'b', 'Mounts', 'x'];
const FUNCS = ['index', 'len', 'not', 'eq', 'ne', 'lt', 'le', 'gt', 'ge', 'print', 'printf', 'println', 'json', 'split', 'join', 'title', 'lower', 'upper', 'pad', 'truncate', 'and', 'or', 'html', 'slice', 'call'];
const VARS = ['$', '$x', '$i', '$v', '$undeclared'];

const key = fc.constantFrom(...KEYS);
const scalar = fc.oneof(
  fc.string({ maxLength: 8 }),
  fc.constantFrom('', 'a,b', '%v %d %s', 'héllo wörld', '\u00e9\ud800', 'x'.repeat(40)),
  fc.integer({ min: -1000, max: 1000 }),
  fc.constantFrom(0, -1, 2 ** 53, -(2 ** 63), 1e21, Number.MAX_SAFE_INTEGER),
  fc.double({ noNaN: false }),
  fc.integer({ min: -5, max: 5 }).map((n) => new GoFloat(n)),
  fc.bigInt({ min: -(2n ** 64n), max: 2n ** 64n }),
  fc.boolean(),
  fc.constant(null),
);

const { value } = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    scalar,
    fc.array(tie('value'), { maxLength: 4 }),
    fc.array(fc.string({ maxLength: 5 }), { maxLength: 4 }),
    fc.dictionary(key, tie('value'), { maxKeys: 4 }),
    fc.dictionary(key, fc.string({ maxLength: 5 }), { maxKeys: 4 }).map((o) => new Map(Object.entries(o))),
    fc.tuple(fc.dictionary(key, tie('value'), { maxKeys: 4 }), fc.boolean()).map(([fields, method]) =>
      goStruct('*formatter.fuzzContext', method ? { ...fields, Label: (k: string) => `label ${k}` } : fields),
    ),
  ),
}));

const literal = fc.oneof(
  fc.constantFrom('"a"', '"a,b"', '","', '`raw`', "'x'", "'\\n'", '"\\x41\\u00e9"', '1', '-2', '0x1F', '1e3', '2.0', '0', '3', '1_000', 'true', 'false', 'nil', '"%v"', '"%5.2f|%-3s|%x|%q|%08d"', '"%!"'),
  fc.integer({ min: -10, max: 100 }).map(String),
);
const fieldChain = fc.array(key, { minLength: 1, maxLength: 3 }).map((ks) => ks.map((k) => `.${k}`).join(''));
const operand = fc.oneof(
  { weight: 4, arbitrary: fieldChain },
  { weight: 1, arbitrary: fc.constant('.') },
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom(...VARS), fc.option(fieldChain, { nil: '' })).map(([v, f]) => v + f) },
  { weight: 3, arbitrary: literal },
);

const { pipeline } = fc.letrec<{ pipeline: string; command: string; arg: string }>((tie) => ({
  arg: fc.oneof({ depthSize: 'small', withCrossShrink: true }, operand, tie('pipeline').map((p) => `(${p})`), tie('pipeline').map((p) => `(${p}).${KEYS[0]}`)),
  command: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    operand,
    fc.tuple(fc.constantFrom(...FUNCS), fc.array(tie('arg'), { maxLength: 3 })).map(([f, args]) => [f, ...args].join(' ')),
  ),
  pipeline: fc
    .tuple(fc.option(fc.constantFrom('$x := ', '$x = ', '$i, $v := ', '$y := '), { nil: '' }), fc.array(tie('command'), { minLength: 1, maxLength: 3 }))
    .map(([decl, cmds]) => decl + cmds.join(' | ')),
}));

const action = (body: string, trim: [boolean, boolean]) => `{{${trim[0] ? '- ' : ''}${body}${trim[1] ? ' -' : ''}}}`;
const trims = fc.tuple(fc.boolean(), fc.boolean());
const text = fc.oneof(fc.constantFrom('', ' ', '\n', 'x', ' | ', '\\t', '{', '}', '{{"{{"}}'), fc.string({ maxLength: 6 }));

const { nodes } = fc.letrec<{ nodes: string; node: string }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    { weight: 3, arbitrary: text },
    { weight: 5, arbitrary: fc.tuple(pipeline, trims).map(([p, t]) => action(p, t)) },
    { weight: 1, arbitrary: fc.constantFrom('{{/* c */}}', '{{- /* c */ -}}', '{{break}}', '{{continue}}', '{{end}}', '{{else}}', '{{template "x"}}', '{{define "x"}}{{end}}', '{{block "x" .}}{{end}}') },
    {
      weight: 2,
      arbitrary: fc
        .tuple(fc.constantFrom('if', 'with', 'range'), pipeline, tie('nodes'), fc.option(fc.tuple(fc.option(pipeline, { nil: undefined }), tie('nodes')), { nil: undefined }), trims)
        .map(([word, p, body, alt, t]) => {
          const elseText = alt === undefined ? '' : alt[0] === undefined ? `{{else}}${alt[1]}` : `{{else ${word} ${alt[0]}}}${alt[1]}`;
          return `${action(`${word} ${p}`, t)}${body}${elseText}{{end}}`;
        }),
    },
  ),
  nodes: fc.array(tie('node'), { maxLength: 4 }).map((ns) => ns.join('')),
}));

const CHARS = ['{{', '}}', '{', '}', '(', ')', '|', '.', '$', ':=', '=', '"', '`', "'", '-', ' ', '\n', '\\', '/*', '*/', ',', '%', '\0', '\u00e9', '\ud800', '('.repeat(200), '{{if 1}}'.repeat(50)];

const template = fc.oneof(
  { weight: 4, arbitrary: nodes },
  { weight: 4, arbitrary: editedString(nodes, CHARS) },
  { weight: 1, arbitrary: fc.string({ maxLength: 40, unit: 'binary' }) },
);

/**
 * The engine's own error: one of its two classes. A syntax error is one line (Go quotes the
 * source it cites); an execution error prints values as Go does (`range can't iterate over`
 * a string with a newline in it spans lines in Go too).
 */
function clean(err: unknown): boolean {
  return (err instanceof TemplateSyntaxError && !err.message.includes('\n')) || err instanceof TemplateExecError;
}

function check(input: TemplateInput): void {
  const t = compile(input.template);
  let first: unknown;
  for (const opts of [{}, { missingKey: 'error' as const }, { funcs: HEADER_FUNCS }]) {
    try {
      const a = execute(t, input.data, opts);
      // Rendering reads its data and nothing else: the same template over the same data prints the same text.
      const b = execute(t, input.data, opts);
      if (a !== b) throw new FuzzViolation(`${JSON.stringify(input.template)} printed ${JSON.stringify(a)} and then ${JSON.stringify(b)}`);
    } catch (err) {
      if (!clean(err)) throw err;
      first ??= err;
    }
  }
  if (first !== undefined) throw first;
}

export async function make(): Promise<FuzzTarget<TemplateInput>> {
  return {
    name: 'template',
    arbitrary: fc.record({ template, data: value }),
    run: check,
    clean,
    bytes: (input) => Buffer.from(JSON.stringify({ template: input.template, data: input.data }, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v instanceof Map ? Object.fromEntries(v) : v))),
  };
}
