// `system df` counts shared layers once; `system prune` removes containers and dangling images.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { strataIn } from '../helpers/cli.js';
import { corpusImage, scratch } from '../helpers/env.js';

test('system df and system prune', async (t) => {
  const root = join(scratch(t), 'root');
  const cli = strataIn(root, 'vfs');
  cli.ok(['load', '-i', corpusImage('busybox.docker.tar')]); // named corpus/busybox:latest
  cli.ok(['load', '-i', corpusImage('edge.oci.tar')]); // untagged: dangling
  cli.ok(['create', '--name', 'c', 'corpus/busybox']);
  const mnt = cli.ok(['mount', 'c']).trim();
  writeFileSync(join(mnt, 'three-mb'), Buffer.alloc(3_000_000, 1));
  cli.ok(['umount', 'c']);

  const df = cli.ok(['system', 'df', '--format', 'json']).trim().split('\n').map((l) => JSON.parse(l));
  const images = df.find((r) => r.Type === 'Images');
  const containers = df.find((r) => r.Type === 'Containers');
  assert.equal(images.TotalCount, '2');
  assert.equal(images.Active, '1');
  // edge's 21 layers include busybox's: counted once, so the total is edge's size.
  assert.match(images.Size, /^5\d\.\dMB$/);
  assert.equal(containers.Size, '3MB');
  assert.match(cli.ok(['system', 'df', '-v']), /corpus\/busybox\s+latest\s+[0-9a-f]{12}\s+2\.04MB\s+2\.04MB\s+0B\s+1/);

  assert.equal(cli.run(['system', 'prune']).code, 1); // needs -f
  const pruned = cli.ok(['system', 'prune', '-f']);
  assert.match(pruned, /Deleted Containers:/);
  assert.match(pruned, /Total reclaimed space: /);
  const info = JSON.parse(cli.ok(['info', '--format', 'json']));
  assert.equal(info.Containers, 0);
  assert.equal(info.Images, 1); // the named image stays
  assert.equal(info.Layers, 1);
  cli.ok(['system', 'prune', '-a', '-f']);
  assert.equal(JSON.parse(cli.ok(['info', '--format', 'json'])).Images, 0);
});
