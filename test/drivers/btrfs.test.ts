// The btrfs driver on a loop-mounted btrfs image of the test's own: the shared conformance
// suite (with quotas) and what is particular to btrfs, checked with btrfs-progs itself.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { BtrfsDriver, btrfsUsable } from '../../src/drivers/btrfs/btrfs.js';
import { createDriver, selectDriver } from '../../src/drivers/index.js';
import { scratch } from '../helpers/env.js';
import { tmpdirOn, useBtrfs } from '../helpers/fsimages.js';
import { conformance } from './conformance.js';
import { runToolSync } from '../../src/sys/run.js';

const outside = tmpdir();
const fs = useBtrfs();
tmpdirOn(fs);

conformance('btrfs', { driver: 'btrfs' }, { quota: true });

function subvolumeShow(path: string): string {
  return runToolSync('btrfs', ['subvolume', 'show', path]);
}

function subvolumesUnder(mountPoint: string, dir: string): string[] {
  // `subvolume list -o` would only list direct children; -a lists all with paths from the top.
  const out = runToolSync('btrfs', ['subvolume', 'list', mountPoint]);
  const rel = dir.slice(mountPoint.length + 1);
  return out
    .split('\n')
    .map((l) => /path (.*)$/.exec(l)?.[1])
    .filter((p): p is string => p !== undefined && p.startsWith(`${rel}/`));
}

describe('btrfs specifics', () => {
  it('keeps each layer as a subvolume at btrfs/subvolumes/<id>, a child being a snapshot of its parent', async (t) => {
    const root = scratch(t);
    const d = await BtrfsDriver.open({ root, options: {} });
    const base = 'a'.repeat(64);
    const child = 'b'.repeat(64);
    await d.create(base, null);
    const path = await d.get(base);
    assert.equal(path, join(root, 'btrfs', 'subvolumes', base));
    await writeFile(join(path, 'f'), 'base');
    await d.createReadWrite(child, base);
    const childPath = await d.get(child);
    assert.match(subvolumeShow(path), /Parent UUID:\s+-/);
    const baseUuid = /^\s*UUID:\s+(\S+)/m.exec(subvolumeShow(path))?.[1];
    assert.ok(baseUuid);
    assert.match(subvolumeShow(childPath), new RegExp(`Parent UUID:\\s+${baseUuid}`));
    assert.equal(readFileSync(join(childPath, 'f'), 'utf8'), 'base');
    assert.equal((await stat(join(root, 'btrfs'))).mode & 0o777, 0o710);
    assert.equal((await stat(join(root, 'btrfs/subvolumes'))).mode & 0o777, 0o710);
    assert.deepEqual(await d.metadata(base), {});
    assert.deepEqual(subvolumesUnder(fs.mountPoint, join(root, 'btrfs/subvolumes')).sort(), [
      `${join(root, 'btrfs/subvolumes', base).slice(fs.mountPoint.length + 1)}`,
      `${join(root, 'btrfs/subvolumes', child).slice(fs.mountPoint.length + 1)}`,
    ]);
  });

  it('removes a layer holding nested subvolumes, and finishes a removal a crash cut short', async (t) => {
    const root = scratch(t);
    const d = await BtrfsDriver.open({ root, options: {} });
    const id = 'c'.repeat(64);
    await d.createReadWrite(id, null);
    const path = await d.get(id);
    await mkdir(join(path, 'var/lib'), { recursive: true });
    runToolSync('btrfs', ['subvolume', 'create', join(path, 'var/lib/inner')]);
    runToolSync('btrfs', ['subvolume', 'create', join(path, 'var/lib/inner/deeper')]);
    await writeFile(join(path, 'var/lib/inner/deeper/f'), 'x');
    await d.remove(id);
    assert.equal(await d.exists(id), false);
    assert.deepEqual(subvolumesUnder(fs.mountPoint, join(root, 'btrfs/subvolumes')), []);

    // A crash between rename and delete leaves <id>-removing: the next open deletes it.
    const half = join(root, 'btrfs/subvolumes', `${'e'.repeat(64)}-removing`);
    runToolSync('btrfs', ['subvolume', 'create', half]);
    mkdirSync(join(half, 'usr'));
    await BtrfsDriver.open({ root, options: {} });
    assert.deepEqual(await readdir(join(root, 'btrfs/subvolumes')), []);
    assert.deepEqual(subvolumesUnder(fs.mountPoint, join(root, 'btrfs/subvolumes')), []);
  });

  it('sets a qgroup limit for size= and records it under btrfs/quotas', async (t) => {
    const root = scratch(t);
    const d = await BtrfsDriver.open({ root, options: {} });
    const id = 'd'.repeat(64);
    await d.createReadWrite(id, null, { storageOpt: { size: '20M' } });
    const path = await d.get(id);
    const show = runToolSync('btrfs', ['qgroup', 'show', '-re', '--raw', path]);
    const subvolId = runToolSync('btrfs', ['inspect-internal', 'rootid', path]).trim();
    const row = show.split('\n').find((l) => l.startsWith(`0/${subvolId} `));
    assert.ok(row, show);
    assert.equal(row.trim().split(/\s+/)[3], String(20 * 1024 * 1024), `max referenced in: ${row}`);
    assert.equal(readFileSync(join(root, 'btrfs/quotas', id), 'utf8'), String(20 * 1024 * 1024));
    await d.remove(id);
    assert.deepEqual(await readdir(join(root, 'btrfs/quotas')), []);
  });

  it('refuses bad options and ids, leaving nothing behind', async (t) => {
    const root = scratch(t);
    await assert.rejects(BtrfsDriver.open({ root, options: { 'overlay2.size': '1G' } }), /btrfs: unknown storage option overlay2.size/);
    await assert.rejects(BtrfsDriver.open({ root, options: { 'btrfs.min_space': 'lots' } }), /invalid size for btrfs.min_space/);
    const d = await BtrfsDriver.open({ root, options: { 'btrfs.min_space': '10M' } });
    await assert.rejects(d.createReadWrite('f'.repeat(64), null, { storageOpt: { size: '5M' } }), /btrfs: storage size cannot be less than 10.49MB$/);
    await assert.rejects(d.createReadWrite('f'.repeat(64), null, { storageOpt: { inodes: '5' } }), /Unknown option inodes$/);
    await assert.rejects(d.create('../escape', null), /invalid layer id/);
    await assert.rejects(d.create('f'.repeat(64), '0'.repeat(64)), /parent layer 0+ does not exist/);
    assert.deepEqual(await readdir(join(root, 'btrfs/subvolumes')), []);
  });

  it('shows the build and library versions Docker shows', async (t) => {
    const d = await BtrfsDriver.open({ root: scratch(t), options: {} });
    const rows = new Map(await d.status());
    assert.equal(rows.get('Backing Filesystem'), 'btrfs');
    const version = /v(\d+(?:\.\d+)*)/.exec(runToolSync('btrfs', ['--version']))?.[1];
    assert.equal(rows.get('Build Version'), `Btrfs v${version}`);
    // libbtrfs-dev's header, the one Docker is compiled against: 0.1.2 is 102.
    const header = readFileSync('/usr/include/btrfs/version.h', 'utf8');
    const n = (name: string) => Number(new RegExp(`#define\\s+${name}\\s+(\\d+)`).exec(header)?.[1]);
    assert.equal(rows.get('Library Version'), String(n('BTRFS_LIB_MAJOR') * 10000 + n('BTRFS_LIB_MINOR') * 100 + n('BTRFS_LIB_PATCHLEVEL')));
  });

  it('is chosen first for a root on btrfs and refused elsewhere', async (t) => {
    const root = scratch(t);
    assert.equal(await btrfsUsable(root), true);
    assert.equal((await selectDriver(root, undefined, {})).name, 'btrfs');
    assert.equal((await createDriver('btrfs', { root: scratch(t), options: {} })).name, 'btrfs');
    const onOther = mkdtempSync(join(outside, 'strata-not-btrfs-'));
    t.after(() => rmSync(onOther, { recursive: true, force: true }));
    assert.match(String(await btrfsUsable(join(onOther, 'root'))), /not btrfs/);
    await assert.rejects(selectDriver(join(onOther, 'root'), 'btrfs', {}), /storage driver btrfs is not usable/);
    await assert.rejects(BtrfsDriver.open({ root: join(onOther, 'root'), options: {} }), /is not on a btrfs filesystem/);
  });
});
