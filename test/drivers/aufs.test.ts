import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { readTar } from '../../src/archive/tar/reader.js';
import { AufsDriver } from '../../src/drivers/aufs/aufs.js';
import { selectDriver } from '../../src/drivers/index.js';
import { lgetxattr } from '../../src/sys/linux.js';
import { readMounts } from '../../src/sys/mountinfo.js';
import { conformance } from './conformance.js';
import { driverRoot, hashTree, stackCorpusLayers } from './overlay-fixtures.js';

const newId = () => randomBytes(32).toString('hex');
const open = (root: string) => AufsDriver.open({ root, options: {} });

conformance('aufs', { driver: 'aufs' }, { deep: 128 });

async function tarNames(stream: Readable): Promise<string[]> {
  const names: string[] = [];
  for await (const { header, body } of readTar(stream)) {
    names.push(header.name.replace(/\/$/, ''));
    for await (const chunk of body) void chunk;
  }
  return names.sort();
}

describe('aufs', () => {
  it('lays layers out as Docker did: diff/<id>, layers/<id> (ancestors, parent first), mnt/<id>', async (t) => {
    const root = driverRoot(t, 'strata-aufs-');
    const d = await open(root);
    const [a, b, c] = [newId(), newId(), newId()];
    await d.create(a, null);
    await d.create(b, a);
    await d.createReadWrite(c, b);
    assert.equal(readFileSync(join(root, 'aufs/layers', a), 'utf8'), '');
    assert.equal(readFileSync(join(root, 'aufs/layers', c), 'utf8'), `${b}\n${a}\n`);
    for (const id of [a, b, c]) {
      assert.ok(lstatSync(join(root, 'aufs/diff', id)).isDirectory());
      assert.ok(lstatSync(join(root, 'aufs/mnt', id)).isDirectory());
    }
    assert.equal(lstatSync(join(root, 'aufs')).mode & 0o777, 0o710);
    assert.equal(await d.get(a), join(root, 'aufs/diff', a), 'a base layer is its own branch, unmounted');
    await d.put(a);
    assert.equal(await d.get(c), join(root, 'aufs/mnt', c));
    await d.put(c);
    await assert.rejects(d.remove(b), /built on it/);
    await assert.rejects(d.create(newId(), newId()), /parent layer .* does not exist/);
    await assert.rejects(d.create('../x', null), /invalid layer id/);
  });

  it("an open leaves another process's layers/<id>.tmp alone (it may be writing it); remove takes it", async (t) => {
    const root = driverRoot(t, 'strata-aufs-');
    const d = await open(root);
    const id = newId();
    await d.create(id, null);
    const tmp = join(root, 'aufs/layers', `${id}.tmp`);
    writeFileSync(tmp, 'being written');
    await open(root);
    assert.equal(readFileSync(tmp, 'utf8'), 'being written');
    await d.remove(id);
    assert.deepEqual(readdirSync(join(root, 'aufs/layers')), []);
  });

  it('says which mount method is in use, and is never picked unless named or already in the root', async (t) => {
    const root = driverRoot(t, 'strata-aufs-');
    const d = await open(root);
    const rows = new Map(await d.status());
    assert.match(rows.get('Mount Method') ?? '', /^fuse-overlayfs/);
    assert.equal(d.method, 'fuse-overlayfs');
    const fresh = driverRoot(t, 'strata-aufs-');
    assert.notEqual((await selectDriver(fresh, undefined, {})).name, 'aufs');
    await d.create(newId(), null);
    assert.equal((await selectDriver(root, undefined, {})).name, 'aufs');
    assert.equal((await selectDriver(fresh, 'aufs', {})).name, 'aufs');
  });

  it('keeps whiteouts in band, honours them through 128 branches, and never lets AUFS metadata into a diff', async (t) => {
    const root = driverRoot(t, 'strata-aufs-');
    const d = await open(root);
    const ids: string[] = [];
    for (let i = 0; i < 128; i++) {
      const id = newId();
      await d.create(id, ids.at(-1) ?? null);
      writeFileSync(join(d.diffDir(id), `f${i}`), String(i));
      ids.push(id);
    }
    const bottom = d.diffDir(ids[0]);
    mkdirSync(join(bottom, 'dir'));
    writeFileSync(join(bottom, 'dir/old'), 'old');
    const mid = d.diffDir(ids[60]);
    writeFileSync(join(mid, '.wh.f0'), '');
    mkdirSync(join(mid, 'dir'));
    writeFileSync(join(mid, 'dir/.wh..wh..opq'), '');
    writeFileSync(join(mid, 'dir/new'), 'new');
    // What kernel aufs keeps at a branch root: never part of a layer.
    mkdirSync(join(mid, '.wh..wh.plnk'));
    writeFileSync(join(mid, '.wh..wh.aufs'), '');
    const top = ids[127];
    const merged = await d.get(top);
    try {
      assert.equal(readMounts().find((m) => m.mountPoint === merged)?.fsType, 'fuse.fuse-overlayfs');
      const names = readdirSync(merged);
      assert.equal(names.includes('f0'), false, '.wh.f0 hides f0');
      assert.equal(names.some((n) => n.startsWith('.wh.')), false, 'whiteouts are not shown');
      assert.equal(names.length, 128, 'f1..f127 and dir');
      assert.deepEqual(readdirSync(join(merged, 'dir')), ['new'], '.wh..wh..opq hides dir/old');
    } finally {
      await d.put(top);
    }
    assert.deepEqual(await tarNames(await d.diff(ids[60], ids[59])), ['.wh.f0', 'dir', 'dir/.wh..wh..opq', 'dir/new', 'f60']);
    assert.deepEqual(
      (await d.changes(ids[60], ids[59])).map((c) => `${c.kind} ${c.path}`),
      ['C /dir', 'A /dir/new', 'D /dir/old', 'D /f0', 'A /f60'],
    );
  });

  it("turns fuse-overlayfs's whiteouts in a container's branch into aufs ones, so diff and commit are what aufs gives", async (t) => {
    const root = driverRoot(t, 'strata-aufs-');
    const d = await open(root);
    const base = newId();
    await d.create(base, null);
    const b = d.diffDir(base);
    writeFileSync(join(b, 'gone'), 'x');
    mkdirSync(join(b, 'emptied/sub'), { recursive: true });
    writeFileSync(join(b, 'emptied/old'), 'old');
    mkdirSync(join(b, 'removed'));
    writeFileSync(join(b, 'removed/x'), 'x');
    const c = newId();
    await d.createReadWrite(c, base);
    const m = await d.get(c);
    try {
      rmSync(join(m, 'gone'));
      rmSync(join(m, 'emptied'), { recursive: true });
      mkdirSync(join(m, 'emptied'));
      writeFileSync(join(m, 'emptied/new'), 'new');
      rmSync(join(m, 'removed'), { recursive: true });
      mkdirSync(join(m, 'brand-new'));
      writeFileSync(join(m, 'brand-new/f'), 'f');
      // While mounted the branch is in overlay's form.
      assert.deepEqual(
        (await d.changes(c, base)).map((x) => `${x.kind} ${x.path}`),
        ['A /brand-new', 'A /brand-new/f', 'C /emptied', 'A /emptied/new', 'D /emptied/old', 'D /emptied/sub', 'D /gone', 'D /removed'],
      );
    } finally {
      await d.put(c);
    }
    const up = d.diffDir(c);
    const found: string[] = [];
    const walk = (dir: string, rel: string) => {
      for (const n of readdirSync(dir)) {
        const p = join(dir, n);
        const st = lstatSync(p);
        assert.equal(st.isCharacterDevice(), false, `${rel}${n} is still an overlay whiteout`);
        assert.equal(lgetxattr(p, 'trusted.overlay.opaque'), null, `${rel}${n} still has the opaque xattr`);
        found.push(`${rel}${n}`);
        if (st.isDirectory()) walk(p, `${rel}${n}/`);
      }
    };
    walk(up, '');
    assert.deepEqual(found.sort(), ['.wh.gone', '.wh.removed', 'brand-new', 'brand-new/f', 'emptied', 'emptied/.wh..wh..opq', 'emptied/new'].sort());
    assert.deepEqual(await tarNames(await d.diff(c, base)), found.sort());
    // The same list as while mounted: changes always compare trees, as Docker's diff does.
    assert.deepEqual(
      (await d.changes(c, base)).map((x) => `${x.kind} ${x.path}`),
      ['A /brand-new', 'A /brand-new/f', 'C /emptied', 'A /emptied/new', 'D /emptied/old', 'D /emptied/sub', 'D /gone', 'D /removed'],
    );
    // Mounted again, the aufs form reads the same.
    const again = await d.get(c);
    try {
      assert.deepEqual(readdirSync(again).sort(), ['brand-new', 'emptied']);
      assert.deepEqual(readdirSync(join(again, 'emptied')), ['new']);
      writeFileSync(join(again, 'gone'), 'back');
    } finally {
      await d.put(c);
    }
    assert.equal(readdirSync(up).includes('.wh.gone'), false, 'recreating a name drops its whiteout');
  });

  it('a write in a container over nginx lands in its branch only', async (t) => {
    const root = driverRoot(t, 'strata-aufs-');
    const d = await open(root);
    const layers = await stackCorpusLayers(t, d, 'nginx.oci.tar');
    const before = layers.map((id) => hashTree(d.diffDir(id)));
    const rw = newId();
    await d.createReadWrite(rw, layers.at(-1) as string);
    const merged = await d.get(rw);
    try {
      writeFileSync(join(merged, 'etc/nginx/nginx.conf'), 'changed');
    } finally {
      await d.put(rw);
    }
    assert.equal(readFileSync(join(d.diffDir(rw), 'etc/nginx/nginx.conf'), 'utf8'), 'changed');
    assert.deepEqual(layers.map((id) => hashTree(d.diffDir(id))), before);
    assert.deepEqual(
      (await d.changes(rw, layers.at(-1) as string)).map((c) => `${c.kind} ${c.path}`),
      ['C /etc', 'C /etc/nginx', 'C /etc/nginx/nginx.conf'],
    );
  });
});
