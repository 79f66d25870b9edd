// A store opened with a driver it refuses (unknown, unusable on this host, a bad option, another
// driver's root) says so in one line and changes nothing: no root, tmp/, strata.db or probe
// cache is left behind, on a root that did not exist as on one that did. And `-s` naming the
// root's own driver does not list the other drivers' directories (strace shows every open).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { strataIn } from '../helpers/cli.js';
import { corpusImage, scratch } from '../helpers/env.js';
import { diffTrees, snapshotTree } from '../helpers/tree.js';

/** Refused on this host's /tmp (ext4, no zfs), whatever the root holds. */
const REFUSED: { driver: string; opts: string[]; error: RegExp }[] = [
  { driver: 'nosuchfs', opts: [], error: /^Error: unknown storage driver "nosuchfs" \(known: .*\)\n$/ },
  { driver: 'btrfs', opts: [], error: /^Error: storage driver btrfs is not usable for .*: .* not btrfs\n$/ },
  { driver: 'zfs', opts: [], error: /^Error: storage driver zfs is not usable for .*: .* is not on a ZFS dataset\n$/ },
  { driver: 'vfs', opts: ['--storage-opt', 'vfs.bogus=1'], error: /^Error: vfs: unknown storage option vfs\.bogus\n$/ },
  { driver: 'overlay2', opts: ['--storage-opt', 'overlay2.bogus=1'], error: /^Error: overlay2: unknown option overlay2\.bogus=1\n$/ },
  // Keys without the driver's prefix are refused too, as Docker refuses them (they were ignored).
  { driver: 'overlay2', opts: ['--storage-opt', 'bogus.key=1'], error: /^Error: overlay2: unknown option bogus\.key=1\n$/ },
  { driver: 'fuse-overlayfs', opts: ['--storage-opt', 'bogus.key=1'], error: /^Error: fuse-overlayfs: unknown option bogus\.key\n$/ },
  { driver: 'aufs', opts: ['--storage-opt', 'bogus.key=1'], error: /^Error: aufs: unknown storage option bogus\.key\n$/ },
];

function refuse(root: string, r: (typeof REFUSED)[number]): void {
  const out = strataIn(root, r.driver).run([...r.opts, 'info']);
  assert.equal(out.code, 1, `${r.driver}: ${out.stderr}`);
  assert.match(out.stderr, r.error);
  assert.equal(out.stdout, '');
}

test('a refused driver creates nothing: not the root, nor anything in an existing one', async (t) => {
  const work = scratch(t);
  for (const [i, r] of REFUSED.entries()) {
    const fresh = join(work, `fresh-${i}-${r.driver}`);
    refuse(fresh, r);
    assert.equal(existsSync(fresh), false, `${r.driver} made ${fresh}`);

    const empty = join(work, `empty-${i}-${r.driver}`);
    mkdirSync(empty);
    refuse(empty, r);
    assert.deepEqual(readdirSync(empty), [], r.driver);
  }

  // A root in use (vfs, an image, a container): each refusal leaves every file as it was.
  const used = join(work, 'used');
  const vfs = strataIn(used, 'vfs');
  vfs.ok(['load', '-i', corpusImage('busybox.docker.tar')]);
  vfs.ok(['create', '--name', 'c1', 'corpus/busybox']);
  // A directory's time changes when strata.db's WAL comes and goes (or a refused option's
  // probe cache): files and listings must not.
  const before = await snapshotTree(used, { times: 'files' });
  const otherRoot = /^Error: storage driver overlay2 cannot open .*: its images and containers are stored with vfs \(use -s vfs, or another --root\)\n$/;
  for (const r of [...REFUSED, { driver: 'overlay2', opts: [], error: otherRoot }]) {
    const out = strataIn(used, r.driver).run([...r.opts, 'info']);
    assert.notEqual(out.code, 0, r.driver);
    // Another driver with a bad option may meet the root's refusal first.
    const theirs = new RegExp(`^Error: storage driver ${r.driver} cannot open .*: its images and containers are stored with vfs`);
    if (r.driver === 'vfs' || !theirs.test(out.stderr)) assert.match(out.stderr, r.error, r.driver);
    assert.deepEqual(diffTrees(before, await snapshotTree(used, { times: 'files' })), [], r.driver);
  }
  assert.equal(vfs.ok(['ps', '-a', '--format', '{{.Names}}']), 'c1\n');
});

test('-s naming the root\'s own driver looks at no other driver\'s directory', (t) => {
  const strace = ['/usr/bin/strace', '/bin/strace'].find((p) => existsSync(p));
  if (!strace) return t.skip('strace is not installed');
  const root = join(scratch(t), 'root');
  const vfs = strataIn(root, 'vfs');
  vfs.ok(['load', '-i', corpusImage('busybox.docker.tar')]);
  const log = join(scratch(t), 'trace');
  const r = spawnSync(strace, ['-f', '-qq', '-e', 'trace=openat,stat,statx,newfstatat', '-o', log, ...vfs.argv, 'images', '-q'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^[0-9a-f]{12}\n$/);
  const looked = readFileSync(log, 'utf8')
    .split('\n')
    .filter((l) => /"[^"]*"/.test(l))
    .map((l) => /"([^"]*)"/.exec(l)![1]!)
    .filter((p) => p.startsWith(`${root}/`))
    .map((p) => p.slice(root.length + 1).split('/')[0]!);
  for (const other of ['btrfs', 'zfs', 'overlay2', 'fuse-overlayfs', 'aufs', 'overlay', 'devicemapper']) {
    assert.ok(!looked.includes(other), `opened ${root}/${other}: ${[...new Set(looked)].join(' ')}`);
  }
  assert.ok(looked.includes('vfs'));
});
