// `check` finds images and containers whose layers are gone from disk; `check --repair` removes
// them and leaves everything sound untouched.
import assert from 'node:assert/strict';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { strataIn } from '../helpers/cli.js';
import { corpusImage, scratch } from '../helpers/env.js';

test('check reports a layer whose data is gone, and --repair removes what depended on it', async (t) => {
  const root = join(scratch(t), 'root');
  const cli = strataIn(root, 'vfs');
  const busybox = /sha256:[0-9a-f]{64}/.exec(cli.ok(['load', '-i', corpusImage('busybox.oci.tar')]))![0];
  const edge = /sha256:[0-9a-f]{64}/.exec(cli.ok(['load', '-i', corpusImage('edge.oci.tar')]))![0];
  cli.ok(['create', '--name', 'on-edge', edge, 'sh']);
  cli.ok(['create', '--name', 'on-busybox', busybox, 'sh']);
  assert.equal(cli.ok(['check']).trim(), 'no problems found');

  // On vfs a container's root is its read-write layer's directory: lose it.
  const mounted = cli.ok(['mount', 'on-edge']).trim();
  cli.ok(['umount', 'on-edge']);
  rmSync(mounted, { recursive: true, force: true });

  const r = cli.run(['check']);
  assert.equal(r.code, 1);
  assert.match(r.stdout, /container [0-9a-f]{12} \(on-edge\): layer [0-9a-f]{64} has no vfs data/);
  assert.doesNotMatch(r.stdout, /on-busybox/);

  const repaired = cli.ok(['check', '--repair']);
  assert.match(repaired, /removed container/);
  assert.equal(cli.ok(['check']).trim(), 'no problems found');
  assert.deepEqual(cli.ok(['ps', '-a', '--format', 'json']).trim().split('\n').map((l) => JSON.parse(l).Names), ['on-busybox']);
  // The sound image still makes working containers.
  cli.ok(['create', '--name', 'again', busybox, 'sh']);
  assert.match(cli.ok(['mount', 'again']), /vfs\/dir\//);
  cli.ok(['umount', 'again']);
});

test('check finds an image whose base layer data is gone; --repair removes the image', async (t) => {
  const root = join(scratch(t), 'root');
  const cli = strataIn(root, 'vfs');
  const img = /sha256:[0-9a-f]{64}/.exec(cli.ok(['load', '-i', corpusImage('busybox.oci.tar')]))![0];
  cli.ok(['create', '--name', 'cx', img, 'sh']);
  // The container's init layer is a full copy of the image's single layer: its parent dir holds both.
  const mounted = cli.ok(['mount', 'cx']).trim();
  cli.ok(['rm', 'cx']);
  const dirs = join(mounted, '..');
  for (const d of readdirSync(dirs)) rmSync(join(dirs, d), { recursive: true, force: true });
  const r = cli.run(['check']);
  assert.equal(r.code, 1);
  assert.match(r.stdout, /image [0-9a-f]{12}: layer [0-9a-f]{64} has no vfs data/);
  assert.match(cli.ok(['check', '--repair']), /removed image/);
  assert.equal(JSON.parse(cli.ok(['info', '--format', 'json'])).Images, 0);
  assert.equal(JSON.parse(cli.ok(['info', '--format', 'json'])).Layers, 0);
  assert.equal(cli.ok(['check']).trim(), 'no problems found');
});
