// `Store.analyze()` and `strata analyze` against ground truth made on purpose, per driver: an
// imported base and three committed layers that overwrite a file twice (the last time with its
// first size: stored twice), delete a file and a directory, and add a file. The wasted bytes are
// exactly the versions the image no longer shows; `--ci` fails exactly past them.
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Store } from '../../src/index.js';
import { strataIn } from '../helpers/cli.js';
import { corpusImage, scratch } from '../helpers/env.js';
import { unmountAllUnder } from '../helpers/mounts.js';
import { overlay2Available } from '../helpers/registry.js';
import { commitSteps, importBase, writeBytes } from './build.js';

const work = scratch(null, 'strata-analyze-');
after(() => unmountAllUnder(work));

// keep 100 + over 1000 + del 2000 + dir/x 300 + dir/y 400 in the base, then:
const STEPS = [
  { cmd: 'overwrite', change: (r: string) => (writeBytes(join(r, 'over'), 1500, 0x62), writeBytes(join(r, 'new'), 50)) },
  { cmd: 'delete', change: (r: string) => (rmSync(join(r, 'del')), rmSync(join(r, 'dir'), { recursive: true })) },
  { cmd: 'again', change: (r: string) => writeFileSync(join(r, 'over'), Buffer.alloc(1000, 0x63)) },
];
// Hidden versions: over (1000 in the base, 1500 in layer 1), del 2000, dir/x 300, dir/y 400.
const WASTED = 1000 + 1500 + 2000 + 300 + 400;
const SIZE = 3800 + 1550 + 0 + 1000;
// dive's score: per path the smallest version over all versions (a removal is a 0-byte version).
const EFFICIENCY = (100 + 1000 + 0 + 0 + 0 + 50) / (100 + (1000 + 1500 + 1000) + 2000 + 300 + 400 + 50);

for (const driver of ['vfs', 'overlay2']) {
  test(`${driver}: analyze reports exactly the overwritten and deleted bytes`, async (t) => {
    if (driver === 'overlay2' && !(await overlay2Available())) return t.skip('overlay2 does not mount here');
    const root = join(work, driver);
    const store = await Store.open({ root, driver });
    try {
      const base = await importBase(store, work, 'base:1', { keep: 100, over: 1000, del: 2000, 'dir/x': 300, 'dir/y': 400 });
      await commitSteps(store, base, 'waste:1', STEPS);
      const a = await store.analyze('waste:1');
      assert.deepEqual(a.names, ['docker.io/library/waste:1']);
      assert.equal(a.layers.length, 4);
      assert.equal(a.wastedBytes, WASTED);
      assert.equal(a.sizeBytes, SIZE);
      assert.equal(a.visibleBytes, 100 + 1000 + 50);
      assert.ok(Math.abs(a.efficiency - EFFICIENCY) < 1e-12, `${a.efficiency} != ${EFFICIENCY}`);

      const [l0, l1, l2, l3] = a.layers;
      assert.deepEqual(a.layers.map((l) => l.wastedBytes), [1000 + 2000 + 300 + 400, 1500, 0, 0]);
      assert.deepEqual(a.layers.map((l) => l.createdBy), ['', 'overwrite', 'delete', 'again']);
      assert.deepEqual([l0.added.bytes, l0.changed.files, l0.removed.files], [3800, 0, 0]);
      assert.deepEqual([l1.added, l1.changed, l1.removed], [{ files: 1, bytes: 50 }, { files: 1, bytes: 1500 }, { files: 0, bytes: 0 }]);
      assert.deepEqual([l2.added.files, l2.changed.files, l2.removed], [0, 0, { files: 2, bytes: 2700 }]);
      assert.deepEqual([l3.added.files, l3.changed, l3.removed.files], [0, { files: 1, bytes: 1000 }, 0]);
      const mark = (l: typeof l0) => l.files.filter((f) => f.type !== 'dir' || f.kind === 'D').map((f) => `${f.kind} ${f.path} ${f.bytes}${f.hidden ? ' hidden' : ''}`).sort();
      assert.deepEqual(mark(l0), ['A /del 2000 hidden', 'A /dir/x 300 hidden', 'A /dir/y 400 hidden', 'A /keep 100', 'A /over 1000 hidden']);
      assert.deepEqual(mark(l1), ['A /new 50', 'C /over 1500 hidden']);
      assert.deepEqual(mark(l2), ['D /del 2000', 'D /dir 700']);
      assert.deepEqual(mark(l3), ['C /over 1000']);
      assert.deepEqual(
        a.wasted.map((w) => [w.path, w.versions, w.wastedBytes, w.totalBytes]),
        [
          ['/over', 3, 2500, 3500],
          ['/del', 2, 2000, 2000],
          ['/dir/y', 2, 400, 400],
          ['/dir/x', 2, 300, 300],
        ],
      );
    } finally {
      await store.close();
    }

    const cli = strataIn(root, driver);
    const text = cli.ok(['analyze', 'waste:1']);
    assert.match(text, /^Image: waste:1 \([0-9a-f]{12}\), 4 layers$/m);
    assert.match(text, /^Wasted: 5.2kB \(81\.9% of the layers' bytes\): overwritten or deleted by a later layer$/m);
    assert.match(text, /^3 +2.5kB +3.5kB +\/over$/m);
    const json = JSON.parse(cli.ok(['analyze', '--format', 'json', 'waste:1'])) as { wastedBytes: number; layers: object[]; wasted: object[] };
    assert.equal(json.wastedBytes, WASTED);
    assert.equal(json.wasted.length, 4);
    assert.ok(json.layers.every((l) => !('files' in l)));
    assert.equal(JSON.parse(cli.ok(['analyze', '--format', 'json', '--top', '1', 'waste:1'])).wasted.length, 1);

    // --ci: exit 1 exactly past a threshold.
    assert.equal(cli.run(['analyze', '--ci', '--highest-wasted-bytes', String(WASTED), 'waste:1']).code, 0);
    const over = cli.run(['analyze', '--ci', '--highest-wasted-bytes', String(WASTED - 1), 'waste:1']);
    assert.equal(over.code, 1);
    assert.match(over.stdout, /FAIL {2}highest-wasted-bytes: 5200 \(limit 5199\)/);
    assert.match(over.stdout, /Result: FAIL/);
    assert.equal(cli.run(['analyze', '--ci', '--lowest-efficiency', '0.18', 'waste:1']).code, 0);
    assert.equal(cli.run(['analyze', '--ci', '--lowest-efficiency', '0.19', 'waste:1']).code, 1);
    // --ci alone: dive's 0.9.
    const plain = cli.run(['analyze', '--ci', '--format', 'json', 'waste:1']);
    assert.equal(plain.code, 1);
    assert.deepEqual(JSON.parse(plain.stdout).ci.checks.map((c: { rule: string; limit: number }) => [c.rule, c.limit]), [['lowest-efficiency', 0.9]]);

    // Bad input: one line, docker's flag exit code, nothing analysed.
    const bad = cli.run(['analyze', '--lowest-efficiency', '0.5', 'waste:1']);
    assert.equal(bad.code, 125);
    assert.equal(bad.stderr, 'Error: --lowest-efficiency and --highest-wasted-bytes take effect only with --ci\n');
    assert.equal(cli.run(['analyze', '--ci', '--lowest-efficiency', '2', 'waste:1']).code, 125);
    assert.equal(cli.run(['analyze', 'nope:1']).stderr, 'Error: No such image: nope:1\n');
  });
}

// The corpus's edge image, built by Docker from a Dockerfile whose every step is known: what
// it deletes (L3), hides under an opaque directory (L4), stores again for a mode change (L5), a
// new hard link (L6), a type change (L9) or a new mtime (L21) is exactly what is wasted.
test('vfs: the edge corpus image wastes exactly what its Dockerfile overwrites and deletes', async () => {
  const store = await Store.open({ root: join(work, 'edge'), driver: 'vfs' });
  try {
    const [img] = await store.load(corpusImage('edge.oci.tar'));
    const a = await store.analyze(img.id);
    const text = (s: string) => Buffer.byteLength(s);
    const expected: [string, number][] = [
      ['/edge/chmod/file', text('mode changes in L5, content does not\n')],
      ['/edge/replace/was-file', text('replaced by a directory in L9\n')],
      ['/edge/replace/was-dir/sub/c', text('dir replaced by a file in L9\n')],
      ['/edge/whiteout/dir-to-delete/sub/file', text('deleted with its dir in L3\n')],
      ['/edge/whiteout/file-to-delete', text('this file is deleted in L3\n')],
      ['/edge/hardlink/lower-target', text('hard-linked from L6\n')],
      ['/edge/whiteout/keep', text('this file stays\n')],
      ['/edge/opaque/a', text('old a\n')],
      ['/edge/opaque/sub/b', text('old b\n')],
    ];
    assert.deepEqual(a.wasted.map((w) => [w.path, w.wastedBytes]), expected);
    assert.equal(a.wastedBytes, expected.reduce((n, [, b]) => n + b, 0));
    const removed = a.layers.flatMap((l) => l.files.filter((f) => f.kind === 'D').map((f) => `${f.path} ${f.bytes}`));
    assert.deepEqual(removed, ['/edge/whiteout/dir-to-delete 27', '/edge/whiteout/file-to-delete 27', '/edge/opaque/a 6', '/edge/opaque/sub 6']);
  } finally {
    await store.close();
  }
});
