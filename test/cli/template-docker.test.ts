// The template engine against a live docker 20.10 (the oracle): a private dockerd
// (test/helpers/dockerd.ts, on vfs) loads corpus/busybox, creates
// a labelled container, and every template here is run by docker and by strata on the same data
// (docker's own JSON of it), byte for byte. Skips, saying why, when docker.io is not installed or
// dockerd cannot start; always stops dockerd and removes its directories.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StrataError } from '../../src/store/errors.js';
import { formatOne, formatRows, goStruct, HISTORY_TABLE, IMAGES_TABLE, PS_TABLE, SYSTEM_DF_TABLE, type FormatCommand } from '../../src/cli/template/index.js';
import { startDockerd } from '../helpers/dockerd.js';
import { corpusImage } from '../helpers/env.js';

interface Outcome {
  out: string;
  err: string;
  code: number;
}

test('docker 20.10 and strata render the same --format templates on the same data', { timeout: 180_000 }, async (t) => {
  const started = await startDockerd((fn) => t.after(fn));
  if ('skip' in started) {
    console.warn(`SKIPPED: live docker comparison: ${started.skip}`);
    t.skip(started.skip);
    return;
  }
  const docker = (...args: string[]): Outcome => {
    const r = started.run(args);
    return { out: r.stdout, err: r.stderr, code: r.code };
  };
  const must = (...args: string[]): string => started.ok(args);
  must('load', '-i', corpusImage('busybox.docker.tar'));
  must('create', '--name', 'tpl-c1', '--label', 'b=2', '--label', 'a=1', '--label', 'com.example.some-key_x=v', 'corpus/busybox:latest');
  must('create', '--name', 'tpl-c2', 'corpus/busybox:latest');

  const strata = (run: () => string): Outcome => {
    try {
      return { out: run(), err: '', code: 0 };
    } catch (err) {
      if (!(err instanceof StrataError)) throw err;
      return { out: '', err: err.message + '\n', code: err.exitCode };
    }
  };
  /** docker prints one empty line before an inspect/info execution error; the CLI adds that, not the engine. */
  const same = (d: Outcome, s: Outcome, what: string) => {
    assert.deepEqual({ ...s, out: s.code === 0 ? s.out : '' }, { ...d, out: d.code === 0 ? d.out : '' }, what);
  };

  // inspect: strata's data is the JSON docker prints, with the map-typed fields as Maps.
  const inspected = JSON.parse(must('inspect', 'tpl-c1'))[0];
  inspected.Config.Labels = new Map(Object.entries(inspected.Config.Labels));
  for (const tpl of [
    '{{.Id}}',
    '{{.Name}} {{.State.Status}} {{.State.Running}} {{.RestartCount}}',
    '{{json .Config}}',
    '{{json .Config.Labels}} {{.Config.Labels}} {{len .Config.Labels}}',
    '{{index .Config.Labels "a"}}|{{index .Config.Labels "zz"}}|{{.Config.Labels.zz}}',
    '{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}',
    '{{join .Config.Env ","}} {{upper .Config.Image}} {{printf "%-8s|%5d" .Path .State.Pid}}',
    '{{if .State.Running}}up{{else if eq .State.Status "created"}}created{{end}}',
    '{{.Nope}}',
    '{{.Config.Nope}}',
    '{{.Id',
    '{{nofunc .Id}}',
    '{{index .Config.Cmd 3}}',
  ]) {
    same(docker('inspect', '-f', tpl, 'tpl-c1'), strata(() => formatOne(inspected, tpl, 'inspect')), `inspect -f ${tpl}`);
  }

  // info: a struct (system.info); only fields that do not change between two calls.
  const info = goStruct('system.info', JSON.parse(must('info', '--format', '{{json .}}')));
  for (const tpl of ['{{.Driver}}', '{{.OSType}}/{{.Architecture}} {{.Images}}', '{{json .Driver}}', '{{.Foo}}', '{{.Driver']) {
    same(docker('info', '-f', tpl), strata(() => formatOne(info, tpl, 'info')), `info -f ${tpl}`);
  }

  // list commands: rows are docker's own {{json .}} of each row.
  const rowsOf = (...args: string[]) => must(...args, '--format', '{{json .}}').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  const lists: [FormatCommand, string[], typeof IMAGES_TABLE, string[]][] = [
    ['images', ['images'], IMAGES_TABLE, ['', 'table', 'json', '{{.Repository}}:{{.Tag}}', 'table {{.ID}}\\t{{.Repository}}\\t{{.Size}}', '{{.Foo}}', '{{.ID']],
    // Not {{.Labels}}: docker joins a Go map there, in a different order from one call to the next.
    ['ps', ['ps', '-a'], PS_TABLE, ['{{.Names}}', 'table {{.Names}}\\t{{.Label "com.example.some-key_x"}}\\t{{.Label "a"}}', '{{.Foo}}', '{{.Names']],
    ['history', ['history', 'corpus/busybox'], HISTORY_TABLE, ['table {{.ID}}\\t{{.Size}}\\t{{.Comment}}', '{{json .}}', '{{.Foo}}']],
    ['system df', ['system', 'df'], SYSTEM_DF_TABLE, ['', 'table {{.Type}}\\t{{.TotalCount}}', '{{.Type}}={{.Active}}', '{{.Foo}}']],
  ];
  for (const [command, args, table, formats] of lists) {
    const rows = rowsOf(...args);
    if (command === 'ps') {
      for (const row of rows) {
        const labels = new Map(String(row.Labels).split(',').filter(Boolean).map((kv) => kv.split('=') as [string, string]));
        row.Label = (name: string) => labels.get(name) ?? '';
      }
    }
    for (const f of formats) {
      // ps's formats leave out RunningFor ("2 seconds ago"), which can change between the calls.
      same(docker(...args, '--format', f), strata(() => formatRows(rows, f, { command, ...table })), `${args.join(' ')} --format ${f}`);
    }
  }
});
