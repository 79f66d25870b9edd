// `check --repair` removes a driver layer that no record names (an orphan) without reading
// every other layer's `lower` file when the store knows nothing can stand on it: a recorded
// layer's parent is always recorded, so only another orphan could, and there is none left.
// Orphans standing on one another still go in the right order (check-suite.ts).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { selectDriver } from '../../src/drivers/index.js';
import { newId } from '../../src/store/layers.js';
import { strataIn } from '../helpers/cli.js';
import { corpusImage, scratch } from '../helpers/env.js';
import { overlay2Available } from '../helpers/registry.js';

test('check --repair removes a lone overlay2 orphan without reading the other layers', async (t) => {
  if (!(await overlay2Available())) return t.skip('overlay2 is not usable here');
  const strace = ['/usr/bin/strace', '/bin/strace'].find((p) => existsSync(p));
  if (!strace) return t.skip('strace is not installed');
  const root = join(scratch(t), 'root');
  const cli = strataIn(root, 'overlay2');
  // 21 layers, a container on them: every one of them has a lower file to read.
  const img = /sha256:[0-9a-f]{64}/.exec(cli.ok(['load', '-i', corpusImage('edge.oci.tar')]))![0];
  cli.ok(['create', '--name', 'c1', img]);
  const d = await selectDriver(root, 'overlay2', {});
  const orphan = newId();
  await d.create(orphan, null);

  const log = join(scratch(t), 'trace');
  const r = spawnSync(strace, ['-f', '-qq', '-e', 'trace=openat', '-o', log, ...cli.argv, 'check', '--repair'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, new RegExp(`removed overlay2 layer ${orphan}`));
  const lowers = readFileSync(log, 'utf8')
    .split('\n')
    .filter((l) => l.includes(`"${root}/overlay2/`) && /\/lower"/.test(l));
  assert.deepEqual(lowers, []);
  assert.ok(!existsSync(join(root, 'overlay2', orphan)));
  assert.equal(cli.ok(['check']).trim(), 'no problems found');
});
