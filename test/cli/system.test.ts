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
  cli.ok(['create', '--name', 'cx', 'corpus/busybox']);
  const mnt = cli.ok(['mount', 'cx']).trim();
  writeFileSync(join(mnt, 'three-mb'), Buffer.alloc(3_000_000, 1));
  cli.ok(['umount', 'cx']);

  const df = cli.ok(['system', 'df', '--format', 'json']).trim().split('\n').map((l) => JSON.parse(l));
  const images = df.find((r) => r.Type === 'Images');
  const containers = df.find((r) => r.Type === 'Containers');
  assert.equal(images.TotalCount, '2');
  assert.equal(images.Active, '1');
  // edge's 21 layers include busybox's: counted once, so the total is edge's size.
  assert.match(images.Size, /^5\d\.\d\dMB$/); // go-units' HumanSize: 4 significant digits
  assert.equal(containers.Size, '3MB');
  assert.match(cli.ok(['system', 'df', '-v']), /corpus\/busybox\s+latest\s+[0-9a-f]{12}\s+\S.*ago\s+2\.043MB\s+2\.043MB\s+0B\s+1/);

  // Without -f it asks, as docker does; anything but y leaves everything.
  const declined = cli.run(['system', 'prune'], 'n\n');
  assert.equal(declined.code, 0);
  assert.match(declined.stdout, /^WARNING! This will remove:\n {2}- all stopped containers\n[^]*Are you sure you want to continue\? \[y\/N\] $/);
  assert.equal(JSON.parse(cli.ok(['info', '--format', 'json'])).Containers, 1);
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
