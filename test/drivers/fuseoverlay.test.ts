import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { FuseOverlayDriver } from '../../src/drivers/fuse-overlayfs/fuseoverlay.js';
import { lgetxattr, lsetxattr, makedev, mknod } from '../../src/sys/linux.js';
import { isMountPoint, readMounts } from '../../src/sys/mountinfo.js';
import { conformance } from './conformance.js';
import { chain, driverRoot, hashTree, stackCorpusLayers } from './overlay-fixtures.js';

const S_IFCHR = 0o020000;
const newId = () => randomBytes(32).toString('hex');
const open = (root: string) => FuseOverlayDriver.open({ root, options: {} });

conformance('fuse-overlayfs', { driver: 'fuse-overlayfs' }, { deep: 130 });

describe('fuse-overlayfs', () => {
  it('prints its docker info rows', async (t) => {
    const d = await open(driverRoot(t));
    assert.deepEqual(await d.status(), [
      ['Backing Filesystem', 'extfs'],
      ['Supports d_type', 'true'],
      ['Native Overlay Diff', 'false'],
    ]);
    assert.equal(d.home.endsWith('/fuse-overlayfs'), true);
  });

  it('mounts through 130 layers, honouring 0/0 whiteouts and the kernel opaque xattr', async (t) => {
    const d = await open(driverRoot(t));
    const ids = await chain(d, 130);
    const bottom = (await d.metadata(ids[0])).UpperDir;
    mkdirSync(join(bottom, 'dir'));
    writeFileSync(join(bottom, 'dir/old'), 'old');
    const mid = (await d.metadata(ids[60])).UpperDir;
    mknod(join(mid, 'f0'), S_IFCHR, makedev(0, 0));
    mkdirSync(join(mid, 'dir'));
    writeFileSync(join(mid, 'dir/new'), 'new');
    lsetxattr(join(mid, 'dir'), 'trusted.overlay.opaque', Buffer.from('y'));

    const merged = await d.get(ids[129]);
    try {
      assert.equal(readMounts().find((m) => m.mountPoint === merged)?.fsType, 'fuse.fuse-overlayfs');
      const names = readdirSync(merged);
      assert.equal(names.includes('f0'), false, 'whiteout hides f0');
      assert.equal(names.length, 131, 'f1..f129, top, dir');
      assert.deepEqual(readdirSync(join(merged, 'dir')), ['new'], 'opaque dir hides old');
      assert.equal(readFileSync(join(merged, 'top'), 'utf8'), '129');
    } finally {
      await d.put(ids[129]);
    }
    assert.equal(isMountPoint(merged), false);
  });

  it('writes deletions into the upper in the kernel format', async (t) => {
    const d = await open(driverRoot(t));
    const [a, b] = await chain(d, 2);
    const base = (await d.metadata(a)).UpperDir;
    mkdirSync(join(base, 'dir'));
    writeFileSync(join(base, 'dir/x'), 'x');
    const merged = await d.get(b);
    try {
      rmSync(join(merged, 'f0'));
      rmSync(join(merged, 'dir'), { recursive: true });
      mkdirSync(join(merged, 'dir'));
    } finally {
      await d.put(b);
    }
    const upper = (await d.metadata(b)).UpperDir;
    const st = lstatSync(join(upper, 'f0'));
    assert.equal(st.isCharacterDevice() && st.rdev === 0, true, 'f0 is a 0/0 char device');
    assert.equal(lgetxattr(join(upper, 'dir'), 'trusted.overlay.opaque')?.toString(), 'y');
  });

  it('a write in a container lands in its diff only; the image layers are unchanged', async (t) => {
    const root = driverRoot(t);
    const d = await open(root);
    const layers = await stackCorpusLayers(t, d, 'nginx.oci.tar');
    const diffOf = async (id: string) => (await d.metadata(id)).UpperDir;
    const before = await Promise.all(layers.map(async (id) => hashTree(await diffOf(id))));
    const rw = newId();
    await d.createReadWrite(rw, layers.at(-1) as string);
    const merged = await d.get(rw);
    const marker = `strata-cow-${randomBytes(8).toString('hex')}`;
    try {
      writeFileSync(join(merged, 'etc/nginx/nginx.conf'), marker);
    } finally {
      await d.put(rw);
    }
    assert.equal(readFileSync(join(await diffOf(rw), 'etc/nginx/nginx.conf'), 'utf8'), marker);
    const after = await Promise.all(layers.map(async (id) => hashTree(await diffOf(id))));
    assert.deepEqual(after, before);
    const changes = await d.changes(rw, layers.at(-1) as string);
    assert.deepEqual(
      changes.map((c) => `${c.kind} ${c.path}`).sort(),
      ['C /etc', 'C /etc/nginx', 'C /etc/nginx/nginx.conf'],
    );
  });
});
