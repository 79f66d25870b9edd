// The zfs driver on a zfs-fuse pool of the test's own (on a sparse file): the shared
// conformance suite (with quotas) and what is particular to zfs, checked with zfs/zpool.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { readdir, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isMountPoint } from '../../src/sys/mountinfo.js';
import { ZfsDriver, zfsUsable } from '../../src/drivers/zfs/zfs.js';
import { createDriver, selectDriver } from '../../src/drivers/index.js';
import { scratch } from '../helpers/env.js';
import { tmpdirOn, useZfsPool } from '../helpers/fsimages.js';
import { conformance } from './conformance.js';
import { runToolSync } from '../../src/sys/run.js';

const outside = tmpdir();
const pool = useZfsPool();
tmpdirOn(pool);

conformance('zfs', { driver: 'zfs' }, { quota: true });

function zfsGet(dataset: string, prop: string): string {
  return runToolSync('zfs', ['get', '-H', '-p', '-o', 'value', prop, dataset]).trim();
}

function datasets(): string[] {
  return runToolSync('zfs', ['list', '-H', '-t', 'all', '-o', 'name', '-r', pool.pool]).trim().split('\n');
}

describe('zfs specifics', () => {
  it('keeps each layer as a dataset <pool dataset>/<id>, a child being a clone of its parent', async (t) => {
    const root = scratch(t);
    const d = await ZfsDriver.open({ root, options: {} });
    assert.equal(d.dataset, pool.pool);
    const base = 'a'.repeat(64);
    const child = 'b'.repeat(64);
    await d.create(base, null);
    const path = await d.get(base);
    assert.equal(path, join(root, 'zfs', 'graph', base));
    assert.ok(isMountPoint(path));
    await writeFile(join(path, 'f'), 'base');
    await d.put(base);
    assert.equal(isMountPoint(path), false, 'the last put unmounts');
    await d.createReadWrite(child, base);
    assert.equal(isMountPoint(join(root, 'zfs/graph', child)), false, 'a new layer is not left mounted');
    assert.equal(zfsGet(`${pool.pool}/${child}`, 'origin'), `${pool.pool}/${base}@${child}`);
    assert.equal(zfsGet(`${pool.pool}/${child}`, 'canmount'), 'noauto');
    // The origin snapshot is marked for deferred destruction right away, as Docker does.
    assert.equal(zfsGet(`${pool.pool}/${base}@${child}`, 'defer_destroy'), 'on');
    const childPath = await d.get(child);
    assert.equal(readFileSync(join(childPath, 'f'), 'utf8'), 'base');
    await d.put(child);
    assert.deepEqual(await d.metadata(child), { Dataset: `${pool.pool}/${child}`, Mountpoint: join(root, 'zfs/graph', child) });
    assert.equal((await stat(join(root, 'zfs'))).mode & 0o777, 0o710);
    assert.equal((await stat(join(root, 'zfs/graph'))).mode & 0o777, 0o710);

    await assert.rejects(d.remove(base), /dependent clones|has children|snapshot/, 'a layer with a child cannot go');
    assert.equal(await d.exists(base), true);
    await d.remove(child);
    assert.equal(datasets().some((n) => n.includes(child)), false, 'the clone and its origin snapshot are gone');
    await d.remove(base);
    assert.equal(datasets().some((n) => n.includes(base)), false);
    assert.deepEqual(await readdir(join(root, 'zfs/graph')), []);
  });

  it('sets the quota property for size=', async (t) => {
    const d = await ZfsDriver.open({ root: scratch(t), options: {} });
    const id = 'c'.repeat(64);
    await d.createReadWrite(id, null, { storageOpt: { size: '20M' } });
    assert.equal(zfsGet(`${pool.pool}/${id}`, 'quota'), String(20 * 1024 * 1024));
    await d.remove(id);
  });

  it('refuses bad options and ids, leaving nothing behind', async (t) => {
    const root = scratch(t);
    await assert.rejects(ZfsDriver.open({ root, options: { 'overlay2.size': '1G' } }), /zfs: unknown storage option overlay2.size/);
    await assert.rejects(ZfsDriver.open({ root, options: { 'zfs.fsname': `${pool.pool}/nothing-here` } }), /cannot use dataset/);
    const d = await ZfsDriver.open({ root, options: {} });
    const before = datasets();
    await assert.rejects(d.createReadWrite('d'.repeat(64), null, { storageOpt: { inodes: '5' } }), /Unknown option inodes$/);
    await assert.rejects(d.createReadWrite('d'.repeat(64), null, { storageOpt: { size: 'big' } }), /invalid size: 'big'$/);
    await assert.rejects(d.create('../escape', null), /invalid layer id/);
    await assert.rejects(d.create('e'.repeat(64), '0'.repeat(64)), /parent layer 0+ does not exist/);
    await assert.rejects(d.get('f'.repeat(64)), /layer f+ does not exist/);
    assert.deepEqual(datasets(), before);
    assert.deepEqual(await readdir(join(root, 'zfs/graph')), []);
  });

  it('shows what docker info shows for zfs', async (t) => {
    const d = await ZfsDriver.open({ root: scratch(t), options: {} });
    const rows = new Map(await d.status());
    assert.deepEqual(
      [...rows.keys()],
      ['Backing Filesystem', 'Zpool', 'Zpool Health', 'Parent Dataset', 'Space Used By Parent', 'Space Available', 'Parent Quota', 'Compression'],
    );
    assert.equal(rows.get('Zpool'), pool.pool);
    assert.equal(rows.get('Zpool Health'), 'ONLINE');
    assert.equal(rows.get('Parent Dataset'), pool.pool);
    assert.match(rows.get('Space Used By Parent') ?? '', /^\d+$/);
    assert.match(rows.get('Space Available') ?? '', /^\d+$/);
    assert.equal(rows.get('Parent Quota'), 'no');
    assert.equal(rows.get('Compression'), 'off');
  });

  it('is chosen first for a root on zfs and refused elsewhere', async (t) => {
    const root = scratch(t);
    assert.equal(await zfsUsable(root), true);
    const chosen = await selectDriver(root, undefined, {});
    assert.equal(chosen.name, 'zfs');
    assert.equal((await createDriver('zfs', { root: scratch(t), options: {} })).name, 'zfs');
    const onOther = mkdtempSync(join(outside, 'strata-not-zfs-'));
    t.after(() => rmSync(onOther, { recursive: true, force: true }));
    assert.match(String(await zfsUsable(join(onOther, 'root'))), /not on a ZFS dataset/);
    await assert.rejects(selectDriver(join(onOther, 'root'), 'zfs', {}), /storage driver zfs is not usable/);
    await assert.rejects(ZfsDriver.open({ root: join(onOther, 'root'), options: {} }), /is not on a ZFS dataset/);
  });
});
