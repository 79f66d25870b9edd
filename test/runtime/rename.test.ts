// `rename OLD NEW` (issue #12) on overlay2: created and running containers, and Docker's
// messages (taken from docker 20.10's rename: the reason, then "failed to rename container named
// OLD", exit 1) for a missing container, a taken name, the same name, a bad name and empty names.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { leftovers, runtimeStore } from './harness.js';

const s = runtimeStore('overlay2', { after });
const { cli } = s;

function names(): string[] {
  return cli.ok(['ps', '-a', '--format', '{{.Names}}']).trim().split('\n').filter(Boolean).sort();
}

describe('rename (overlay2)', () => {
  test('a created container takes the new name; the old one is free again', (t) => {
    t.after(() => {
      for (const n of ['ren-a', 'ren-b', 'ren-c']) cli.run(['rm', '-f', n]);
    });
    const id = cli.ok(['create', '--name', 'ren-a', '--network', 'none', 'bb', 'true']).trim();
    const r = cli.run(['rename', 'ren-a', 'ren-b']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '');
    assert.deepEqual(names(), ['ren-b']);
    assert.equal(JSON.parse(cli.ok(['inspect', 'ren-b']))[0].Name, '/ren-b');
    // By ID prefix, to a name with docker's leading slash and spaces around it.
    cli.ok(['rename', id.slice(0, 12), ' /ren-c ']);
    assert.deepEqual(names(), ['ren-c']);
    cli.ok(['create', '--name', 'ren-a', '--network', 'none', 'bb', 'true']);
    assert.deepEqual(names(), ['ren-a', 'ren-c']);
  });

  test("docker's errors: missing, taken, same, invalid, empty; nothing changes", (t) => {
    t.after(() => {
      for (const n of ['err-a', 'err-b']) cli.run(['rm', '-f', n]);
    });
    cli.ok(['create', '--name', 'err-a', '--network', 'none', 'bb', 'true']);
    const b = cli.ok(['create', '--name', 'err-b', '--network', 'none', 'bb', 'true']).trim();
    const fails = (args: string[], stderr: string) => {
      const r = cli.run(['rename', ...args]);
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stderr, stderr);
      assert.equal(r.stdout, '');
      assert.deepEqual(names(), ['err-a', 'err-b']);
    };
    fails(['nope', 'x1'], 'Error: No such container: nope\nError: failed to rename container named nope\n');
    fails(
      ['err-a', 'err-b'],
      `Error: Error when allocating new name: Conflict. The container name "/err-b" is already in use by container "${b}". You have to remove (or rename) that container to be able to reuse that name.\nError: failed to rename container named err-a\n`,
    );
    fails(['err-a', 'err-a'], 'Error: Renaming a container with the same name as its current name\nError: failed to rename container named err-a\n');
    fails(['err-a', 'x!x'], 'Error: Error when allocating new name: Invalid container name (/x!x), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed\nError: failed to rename container named err-a\n');
    fails(['err-a', ''], 'Error: Neither old nor new names may be empty\n');
    fails(['', 'x1'], 'Error: Neither old nor new names may be empty\n');
  });

  test('a running container is renamed while it runs; stop, logs and rm reach it by the new name', (t) => {
    t.after(() => {
      for (const n of ['run-a', 'run-b']) cli.run(['rm', '-f', n]);
    });
    const id = cli.ok(['run', '-d', '--name', 'run-a', '--network', 'none', 'bb', 'sh', '-c', 'echo up; sleep 60']).trim();
    cli.ok(['rename', 'run-a', 'run-b']);
    assert.equal(cli.ok(['ps', '--format', '{{.Names}} {{.State}}']), 'run-b running\n');
    const v2 = JSON.parse(readFileSync(join(s.root, 'containers', id, 'config.v2.json'), 'utf8'));
    assert.equal(v2.Name, '/run-b');
    // The hostname stays the one it started with, as docker's.
    assert.equal(cli.ok(['exec', 'run-b', 'hostname']).trim(), id.slice(0, 12));
    assert.equal(cli.run(['stop', 'run-a']).code, 1);
    cli.ok(['stop', '-t', '1', 'run-b']);
    assert.equal(cli.ok(['logs', 'run-b']), 'up\n');
    cli.ok(['rm', 'run-b']);
    assert.deepEqual(leftovers(s.root, s.work), []);
  });
});
