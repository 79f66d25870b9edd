// Help that answers: every command's --help has its usage, options and an example, `help
// COMMAND…` reaches any command, and a misspelt command gets the nearest one suggested.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildProgram } from '../../src/cli/main.js';
import { commandPaths, EXAMPLES } from '../../src/cli/help.js';
import { strataIn } from '../helpers/cli.js';
import { scratch } from '../helpers/env.js';

test('every command has an example, and no example names a command that is gone', () => {
  const paths = commandPaths(buildProgram()).map(([p]) => p);
  assert.ok(paths.length > 20);
  assert.deepEqual(
    paths.filter((p) => !EXAMPLES[p]),
    [],
    'commands without an example in src/cli/help.ts',
  );
  assert.deepEqual(
    Object.keys(EXAMPLES).filter((p) => !paths.includes(p)),
    [],
  );
  for (const [p, example] of Object.entries(EXAMPLES)) assert.match(example, new RegExp(`strata .*${p.split(' ')[0]}`), p);
});

test('--help and help COMMAND print usage, options and the example', (t) => {
  const cli = strataIn(scratch(t), 'vfs');
  for (const path of ['load', 'images', 'create', 'system df', 'pull', 'completion']) {
    const out = cli.ok([...path.split(' '), '--help']);
    assert.match(out, new RegExp(`^Usage: strata ${path}`), path);
    assert.match(out, /\nOptions:\n/, path);
    assert.ok(out.includes(`\nExample:\n  $ ${EXAMPLES[path]}\n`), path);
    assert.equal(cli.ok(['help', ...path.split(' ')]), out, `help ${path}`);
  }
  assert.match(cli.ok(['help']), /^Usage: strata \[options\] \[command\]/);
  assert.match(cli.ok(['help', 'unmount']), /^Usage: strata umount\|unmount/);
});

test('a misspelt command or help topic gets the nearest command', (t) => {
  const cli = strataIn(scratch(t), 'vfs');
  for (const args of [['imags'], ['help', 'imags']]) {
    const r = cli.run(args);
    assert.notEqual(r.code, 0);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, "strata: 'imags' is not a strata command.\nSee 'strata --help'\n(Did you mean one of image, images?)\n");
  }
  let r = cli.run(['help', 'system', 'prnue']);
  assert.match(r.stderr, /'prnue' is not a strata command\.\nSee 'strata --help'\n\(Did you mean prune\?\)/);
  r = cli.run(['help', 'images', 'foo']);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, 'Error: images has no subcommand "foo"\n');
});
