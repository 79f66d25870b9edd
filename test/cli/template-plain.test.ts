// formatRows prints rows of a template made only of text and `{{.Field}}` straight from their
// string fields (exec.ts runPlain), without the evaluator: the same text as execute gives for
// every such row, and any other row or template still goes through execute (its output, its
// errors), so that the shortcut cannot change what a list command prints.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compile, execute, formatRows, goStruct, IMAGES_TABLE, PS_TABLE } from '../../src/cli/template/index.js';
import { plainParts, runPlain } from '../../src/cli/template/exec.js';

test('plainParts takes text and single fields only', () => {
  assert.deepEqual(plainParts(compile('a{{.ID}}\t{{.Names}}b')), ['a', { field: 'ID' }, '\t', { field: 'Names' }, 'b']);
  for (const src of ['{{.A.B}}', '{{.A | printf "%s"}}', '{{upper .A}}', '{{if .A}}x{{end}}', '{{$x := .A}}', '{{.}}', '{{.Label "k"}}', '{{json .}}']) {
    assert.equal(plainParts(compile(src)), null, src);
  }
});

test('runPlain prints what execute prints, and declines every row it cannot print the same', () => {
  const parts = plainParts(compile('{{.ID}} [{{.Name}}]'))!;
  const row = goStruct('*formatter.ContainerContext', { ID: 'abc', Name: '' });
  assert.equal(runPlain(parts, row), execute(compile('{{.ID}} [{{.Name}}]'), row));
  // Getters are own fields too: the lazy rows of ps and images.
  assert.equal(runPlain(parts, { ID: 'x', get Name() { return 'lazy'; } }), 'x [lazy]');
  assert.equal(runPlain(parts, { ID: 'x' }), null, 'a missing field');
  assert.equal(runPlain(parts, { ID: 'x', Name: 3 }), null, 'a number');
  assert.equal(runPlain(parts, { ID: 'x', Name: undefined }), null, 'undefined');
  assert.equal(runPlain(parts, { ID: 'x', Name: () => 'm' }), null, 'a method');
});

test('formatRows gives the same text with and without the shortcut, errors included', () => {
  const rows = [
    { ID: 'a', Image: 'busybox', Command: '"sh"', RunningFor: '1 hour ago', Status: 'Created', Ports: '', Names: 'one', Size: 3, Label: (k: string) => k },
    { ID: 'b', Image: 'nginx', Command: '"nginx"', RunningFor: '2 hours ago', Status: 'Up 2 hours', Ports: '80/tcp', Names: 'two', Size: 4, Label: (k: string) => k },
  ];
  const table = formatRows(rows, '', { command: 'ps', ...PS_TABLE });
  assert.equal(table.split('\n')[1].split(/ {3,}/)[0], 'a');
  assert.match(table, /^CONTAINER ID {3}IMAGE {5}COMMAND/);
  // A field that a row lacks fails as execute fails, shortcut or not.
  assert.throws(() => formatRows(rows, '{{.Nope}}', { command: 'images', ...IMAGES_TABLE }), /can't evaluate field Nope/);
  // A non-string field goes through execute: Go's formatting of an int.
  assert.equal(formatRows(rows, '{{.ID}}:{{.Size}}', { command: 'images', ...IMAGES_TABLE }), 'a:3\nb:4\n');
});
