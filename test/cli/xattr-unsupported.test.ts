// xattrs on a filesystem that has none (issue #15 item 9): ramfs refuses every setxattr with
// ENOTSUP, as Debian's zfs-fuse service does. Loading corpus/xattr (user.* and
// security.capability records) must succeed with one warning per layer, as Docker 20.10 loads it,
// and the files must be there without the attributes. A bad value the filesystem could hold
// (EINVAL) still fails: that is test/archive/apply-order.test.ts.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { readXattrs } from '../../src/sys/linux.js';
import { strataIn } from '../helpers/cli.js';
import { corpusImage } from '../helpers/env.js';
import { unmountAllUnder } from '../helpers/mounts.js';

test('load of an image with xattrs onto a filesystem without them skips them with one warning', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'strata-ramfs-'));
  const mnt = join(dir, 'mnt');
  const made = spawnSync('sh', ['-c', `mkdir ${mnt} && mount -t ramfs none ${mnt}`]);
  t.after(() => {
    unmountAllUnder(dir);
    rmSync(dir, { recursive: true, force: true });
  });
  assert.equal(made.status, 0, made.stderr.toString());
  const cli = strataIn(join(mnt, 'root'), 'vfs');
  const r = cli.run(['load', '-i', corpusImage('xattr.oci.tar')]);
  assert.equal(r.code, 0, r.stderr);
  const warnings = r.stderr.split('\n').filter(Boolean);
  // The busybox layer has no xattrs; the second layer's are all skipped in one line.
  assert.equal(warnings.length, 1, r.stderr);
  assert.match(warnings[0], /level=warn msg="ignored xattrs in archive: underlying filesystem doesn't support them \(.*security\.capability on \//);
  const id = /Loaded image ID: (sha256:[0-9a-f]{64})/.exec(r.stdout)?.[1];
  assert.ok(id, r.stdout);
  cli.ok(['create', '--name', 'xx', id, 'sh']);
  const root = cli.ok(['mount', 'xx']).trim();
  try {
    for (const f of ['both', 'file-capability', 'user-xattrs']) {
      assert.ok(existsSync(join(root, 'xattr', f)), f);
      assert.equal(readXattrs(join(root, 'xattr', f)).size, 0, f);
    }
  } finally {
    cli.ok(['umount', 'xx']);
  }
});
