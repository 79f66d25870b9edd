// The run scenario every storage driver must pass (the conformance addition of issue #12):
// a container runs on the driver's root, keeps its changes across a second start, does not
// share them with another container, and a detached one is removed with rm -f, leaving no
// process, runc container or mount. A driver's test file calls runScenario(name) once.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { leftovers, runtimeStore } from './harness.js';

export function runScenario(driver: string, cleanup?: (root: string) => void): void {
  describe(`run scenario: ${driver}`, () => {
    const s = runtimeStore(driver, { after }, cleanup);
    const { cli } = s;

    test('run --rm, changes kept across start -a and private, rm -f of a running one', (t) => {
      t.after(() => {
        for (const n of ['cx', 'other', 'bg']) cli.run(['rm', '-f', n]);
      });
      const hi = cli.run(['run', '--rm', 'bb', 'echo', 'hi']);
      assert.equal(hi.code, 0, hi.stderr);
      assert.equal(hi.stdout, 'hi\n');

      const line = 'cat /f 2>/dev/null; echo 1 > /f; exit 3';
      const first = cli.run(['run', '--name', 'cx', 'bb', 'sh', '-c', line]);
      assert.equal(first.code, 3, first.stderr);
      assert.equal(first.stdout, '');
      const again = cli.run(['start', '-a', 'cx']);
      assert.equal(again.code, 3, again.stderr);
      assert.equal(again.stdout, '1\n');
      const other = cli.run(['run', '--name', 'other', 'bb', 'sh', '-c', line]);
      assert.equal(other.code, 3, other.stderr);
      assert.equal(other.stdout, '', 'another container of the image does not see the file');

      cli.ok(['run', '-d', '--name', 'bg', 'bb', 'sleep', '60']);
      assert.equal(JSON.parse(cli.ok(['inspect', 'bg']))[0].State.Running, true);
      cli.ok(['rm', '-f', 'bg', 'cx', 'other']);
      assert.equal(cli.ok(['ps', '-a', '-q']), '');
      assert.equal(JSON.parse(cli.ok(['info', '--format', 'json'])).Containers, 0);
      assert.deepEqual(leftovers(s.root, s.work), []);
    });
  });
}
