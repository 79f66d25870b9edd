import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, openSync, closeSync, readFileSync, statSync, writeFileSync, writeSync, fsyncSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { DevmapperDriver, humanSize, loopsUnder } from '../../src/drivers/devicemapper/devicemapper.js';
import { parseSizeOption } from '../../src/drivers/common/size-option.js';
import { selectDriver } from '../../src/drivers/index.js';
import { isMountPoint, mountsUnder, readMounts } from '../../src/sys/mountinfo.js';
import { conformance } from './conformance.js';
import { driverRoot, runChild } from './overlay-fixtures.js';

void runChild;

const newId = () => randomBytes(32).toString('hex');
const MiB = 1024 * 1024;

function open(root: string, options: Record<string, string> = {}): Promise<DevmapperDriver> {
  return DevmapperDriver.open({ root, options });
}

/** A driver root whose loop devices are checked gone at the end (after its mounts are). */
function dmRoot(t: { after(fn: () => void): void }): string {
  const root = driverRoot(t, 'strata-dm-');
  t.after(() => {
    const left = loopsUnder(root);
    assert.deepEqual(left, [], `loop devices left attached for ${root}`);
  });
  return root;
}

/** Write size bytes of random data; returns bytes written before ENOSPC (or size). */
function fill(path: string, size: number): { written: number; error: string | null } {
  const fd = openSync(path, 'w');
  const chunk = randomBytes(MiB);
  let written = 0;
  try {
    while (written < size) {
      written += writeSync(fd, chunk, 0, Math.min(chunk.length, size - written));
    }
    fsyncSync(fd);
    return { written, error: null };
  } catch (err) {
    return { written, error: (err as NodeJS.ErrnoException).code ?? String(err) };
  } finally {
    closeSync(fd);
  }
}

// 32M base devices keep 128 layers cheap; size=50M grows past them, as the quota scenario needs.
conformance('devicemapper', { driver: 'devicemapper', options: { 'dm.basesize': '32M', 'dm.loopdatasize': '20G' } }, { quota: true });

describe('devicemapper', () => {
  it('parses sizes and prints them as Docker did', () => {
    assert.equal(parseSizeOption('10G', 'x'), 10 * 1024 ** 3);
    assert.equal(parseSizeOption('64M', 'x'), 64 * MiB);
    assert.equal(parseSizeOption('128MB', 'x'), 128 * MiB);
    assert.throws(() => parseSizeOption('lots', 'dm.basesize'), /invalid size for dm.basesize: "lots"/);
    assert.equal(humanSize(10 * 1024 ** 3), '10.74GB');
    assert.equal(humanSize(65536), '65.54kB');
  });

  it('keeps device images, records and mounts where Docker did, and shows Docker info rows', async (t) => {
    const root = dmRoot(t);
    const d = await open(root, { 'dm.basesize': '64M' });
    const rows = new Map(await d.status());
    assert.equal(rows.get('Base Device Size'), '67.11MB');
    assert.equal(rows.get('Backing Filesystem'), 'extfs');
    assert.equal(rows.get('Pool Backend'), 'reflink (sparse device images on a loop-mounted XFS data file)');
    for (const k of ['Pool Name', 'Pool Blocksize', 'Data file', 'Metadata file', 'Data loop file', 'Data Space Used', 'Data Space Total', 'Data Space Available', 'Thin Pool Minimum Free Space']) {
      assert.ok(rows.has(k), `info row ${k}`);
    }
    assert.equal(rows.get('Data Space Total'), '107.4GB');
    assert.equal(rows.get('Thin Pool Minimum Free Space'), '10.74GB');
    const base = newId();
    await d.create(base, null);
    assert.ok(existsSync(join(root, 'devicemapper/devicemapper/data')));
    const rec = JSON.parse(readFileSync(join(root, 'devicemapper/metadata', base), 'utf8'));
    assert.equal(rec.size, 64 * MiB);
    assert.equal(rec.initialized, true);
    const view = await d.get(base);
    assert.equal(view, join(root, 'devicemapper/mnt', base, 'rootfs'));
    const m = readMounts().find((x) => x.mountPoint === join(root, 'devicemapper/mnt', base));
    assert.equal(m?.fsType, 'ext4');
    assert.match(m?.source ?? '', /^\/dev\/loop\d+$/);
    assert.ok(isMountPoint(join(root, 'devicemapper/pool')), 'the pool is mounted while a device is');
    await d.put(base);
    assert.deepEqual(mountsUnder(d.home), [], 'put unmounts the device, and the idle pool');
    assert.deepEqual(loopsUnder(root), []);
    const meta = await d.metadata(base);
    assert.equal(meta.DeviceSize, String(64 * MiB));
    assert.match(meta.DeviceName, /^strata-\d+:\d+-\d+-[0-9a-f]{64}$/);
    await assert.rejects(open(root, { 'dm.basesize': '32M' }), /can only grow/);
    await assert.rejects(open(root, { 'dm.thinpooldev': '/dev/mapper/x' }), /not supported/);
    await assert.rejects(open(root, { 'dm.bogus': '1' }), /unknown storage option dm.bogus/);
  });

  it('is never picked unless named or already in the root', async (t) => {
    const fresh = dmRoot(t);
    assert.notEqual((await selectDriver(fresh, undefined, {})).name, 'devicemapper');
    const root = dmRoot(t);
    const d = await selectDriver(root, 'devicemapper', { 'dm.basesize': '64M' });
    await d.create(newId(), null);
    assert.equal((await selectDriver(root, undefined, {})).name, 'devicemapper');
  });

  it('dm.basesize=64M: a container fills up with ENOSPC; size=128M holds about twice as much; smaller is refused', async (t) => {
    const root = dmRoot(t);
    const d = await open(root, { 'dm.basesize': '64M' });
    const base = newId();
    await d.create(base, null);
    const [small, big] = [newId(), newId()];
    await d.createReadWrite(small, base);
    await d.createReadWrite(big, base, { storageOpt: { size: '128M' } });
    await assert.rejects(d.createReadWrite(newId(), base, { storageOpt: { size: '32M' } }), /smaller than the parent device .*can only grow/);
    const fits = async (id: string) => {
      const v = await d.get(id);
      try {
        const r = fill(join(v, 'fill'), 400 * MiB);
        assert.equal(r.error, 'ENOSPC', `${id} took 400 MiB`);
        return r.written;
      } finally {
        await d.put(id);
      }
    };
    const a = await fits(small);
    const b = await fits(big);
    assert.ok(a > 40 * MiB && a <= 64 * MiB, `64M device held ${a} bytes`);
    assert.ok(b > 1.8 * a && b < 2.3 * a, `128M device held ${b} bytes, 64M one ${a}`);
    assert.equal((await d.metadata(big)).DeviceSize, String(128 * MiB));
  });

  it('a 100 MB write grows the pool by about 100 MB, not the base size, and leaves other devices alone', async (t) => {
    const root = dmRoot(t);
    const d = await open(root, { 'dm.basesize': '1G' });
    const base = newId();
    await d.create(base, null);
    const v0 = await d.get(base);
    writeFileSync(join(v0, 'base-file'), 'base');
    await d.put(base);
    const [c1, c2] = [newId(), newId()];
    await d.createReadWrite(c1, base);
    await d.createReadWrite(c2, base);
    // The info row, and the data file's allocated blocks it comes from.
    const used = async () => {
      const row = (await d.status()).find(([k]) => k === 'Data Space Used')?.[1] ?? '';
      const bytes = statSync(join(root, 'devicemapper/devicemapper/data')).blocks * 512;
      assert.equal(row, humanSize(bytes));
      return bytes;
    };
    const before = await used();
    const otherBefore = await d.deviceImage(c2);
    const mineBefore = await d.deviceImage(c1);
    const v = await d.get(c1);
    try {
      const r = fill(join(v, 'big'), 100 * 1000 * 1000);
      assert.equal(r.error, null);
    } finally {
      await d.put(c1);
    }
    const grown = (await used()) - before;
    assert.ok(grown > 95 * 1000 * 1000 && grown < 130 * 1000 * 1000, `pool grew by ${grown} bytes`);
    assert.deepEqual(await d.deviceImage(c2), otherBefore, 'the other container device is unchanged');
    const mine = await d.deviceImage(c1);
    const own = mine.allocated - mineBefore.allocated;
    assert.ok(own > 95 * 1000 * 1000 && own < 110 * 1000 * 1000, `the device image grew by ${own} bytes`);
    const v2 = await d.get(c2);
    try {
      assert.equal(existsSync(join(v2, 'big')), false);
      assert.equal(readFileSync(join(v2, 'base-file'), 'utf8'), 'base');
    } finally {
      await d.put(c2);
    }
  });

  /**
   * A process in a mount namespace made now, which copies the pool and device mounts (as runc's
   * and pasta's do) and lives on after this process's unmounts; keepDevice false: it lets go of
   * the device's mount, so it holds just the pool.
   */
  async function nsHolder(t: { after(fn: () => Promise<void>): void }, root: string, device: string, keepDevice: boolean): Promise<void> {
    const script = `${keepDevice ? '' : `umount ${join(root, 'devicemapper/mnt', device)} && `}echo ready && exec sleep 60`;
    const holder = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const gone = new Promise((r) => holder.once('exit', r));
    t.after(async () => {
      holder.kill('SIGKILL');
      await gone;
      // The held filesystem (and its loop device) is let go asynchronously after the namespace ends.
      for (let i = 0; i < 100 && loopsUnder(root).length > 0; i++) await sleep(50);
    });
    await new Promise<void>((resolve, reject) => {
      holder.stdout.once('data', () => resolve());
      holder.once('exit', (code) => reject(new Error(`holder exited ${code}`)));
    });
  }

  it('mounts the pool again while another mount namespace still holds the last mount of it', async (t) => {
    const root = dmRoot(t);
    const d = await open(root, { 'dm.basesize': '32M' });
    const base = newId();
    await d.create(base, null);
    const view = await d.get(base);
    writeFileSync(join(view, 'kept'), 'kept');
    await nsHolder(t, root, base, false);
    await d.put(base);
    assert.equal(isMountPoint(join(root, 'devicemapper/pool')), false, 'the pool is unmounted here');
    const again = await d.get(base);
    try {
      assert.equal(readFileSync(join(again, 'kept'), 'utf8'), 'kept');
    } finally {
      await d.put(base);
    }
  });

  it('mounts a device again through its loop device while another mount namespace still holds it', async (t) => {
    const root = dmRoot(t);
    const d = await open(root, { 'dm.basesize': '32M' });
    const base = newId();
    await d.create(base, null);
    const mp = join(root, 'devicemapper/mnt', base);
    await d.get(base);
    const first = readMounts().find((m) => m.mountPoint === mp)?.source;
    await nsHolder(t, root, base, true);
    await d.put(base);
    await d.get(base);
    try {
      assert.equal(readMounts().find((m) => m.mountPoint === mp)?.source, first, 'one loop device, one filesystem instance');
    } finally {
      await d.put(base);
    }
  });
});
