import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DevmapperDriver, loopsUnder } from '../../src/drivers/devicemapper/devicemapper.js';
import {
  createSnapMessage,
  createThinMessage,
  deleteMessage,
  dmThinUsable,
  parsePoolStatus,
  parseThinStatus,
  poolSpace,
  poolTable,
  setTransactionIdMessage,
  thinTable,
} from '../../src/drivers/devicemapper/thin-pool.js';
import { driverRoot } from './overlay-fixtures.js';

// The kernel dm-thin path cannot run on a kernel without device-mapper; what is tested here is
// what is real on any machine: which backend a store gets, and the pure table/message builders
// and status parsers, against status lines captured from real pools.

const GiB = 1024 ** 3;

function dmRoot(t: { after(fn: () => void): void }): string {
  const root = driverRoot(t, 'strata-dmthin-');
  t.after(() => assert.deepEqual(loopsUnder(root), [], `loop devices left attached for ${root}`));
  return root;
}

const poolBackend = async (d: DevmapperDriver) => new Map(await d.status()).get('Pool Backend') ?? '';

describe('devicemapper pool backend selection', () => {
  it('says why kernel dm-thin is unusable when there is no /dev/mapper/control', async () => {
    const usable = await dmThinUsable();
    if (!existsSync('/dev/mapper/control')) assert.equal(usable, 'the kernel has no device-mapper (no /dev/mapper/control)');
    else assert.ok(usable === true || /dmsetup/.test(usable), String(usable));
  });

  it('picks the pool from the kernel, records it, and refuses dm.thinpooldev without device-mapper', async (t) => {
    const root = dmRoot(t);
    const usable = await dmThinUsable();
    if (usable === true) {
      // A kernel with dm-thin: the store goes on it (exercised by no test on this machine).
      const d = await DevmapperDriver.open({ root, options: { 'dm.basesize': '64M', 'dm.loopdatasize': '1G' } });
      await d.cleanup();
      assert.equal(readFileSync(join(root, 'devicemapper/pool-backend'), 'utf8'), 'dm-thin\n');
      return;
    }
    await assert.rejects(
      DevmapperDriver.open({ root, options: { 'dm.thinpooldev': '/dev/mapper/docker-thinpool' } }),
      new RegExp(`^DriverError: devicemapper: dm.thinpooldev=/dev/mapper/docker-thinpool is not supported here: ${usable.replace(/[()/]/g, '\\$&')}$`),
    );
    // A bare pool name means the same /dev/mapper device, as in Docker.
    await assert.rejects(DevmapperDriver.open({ root, options: { 'dm.thinpooldev': 'docker-thinpool' } }), /dm.thinpooldev=\/dev\/mapper\/docker-thinpool is not supported here: the kernel has no device-mapper/);
    assert.equal(existsSync(join(root, 'devicemapper/pool-backend')), false, 'a refused open records nothing');

    const d = await DevmapperDriver.open({ root, options: { 'dm.basesize': '32M' } });
    assert.match(await poolBackend(d), /^reflink /);
    assert.equal(readFileSync(join(root, 'devicemapper/pool-backend'), 'utf8'), 'reflink\n');
    const id = randomBytes(32).toString('hex');
    await d.create(id, null);
    await d.cleanup();
    // The store keeps its backend: dm.thinpooldev is refused for what it is, a reflink store.
    await assert.rejects(
      DevmapperDriver.open({ root, options: { 'dm.thinpooldev': '/dev/mapper/x' } }),
      /dm.thinpooldev=\/dev\/mapper\/x is not supported for this store: it was created with the reflink pool/,
    );
    // A store from before the record (device records, no pool-backend) is a reflink store.
    rmSync(join(root, 'devicemapper/pool-backend'));
    const again = await DevmapperDriver.open({ root, options: {} });
    assert.match(await poolBackend(again), /^reflink /);
    assert.equal(readFileSync(join(root, 'devicemapper/pool-backend'), 'utf8'), 'reflink\n');
    assert.equal(await again.exists(id), true);
    await again.cleanup();
  });

  it('a store recorded as dm-thin is not silently moved to reflink on a kernel without dm-thin', async (t) => {
    const usable = await dmThinUsable();
    if (usable === true) return t.skip('this kernel has dm-thin');
    const root = dmRoot(t);
    const d = await DevmapperDriver.open({ root, options: {} });
    await d.cleanup();
    writeFileSync(join(root, 'devicemapper/pool-backend'), 'dm-thin\n');
    await assert.rejects(DevmapperDriver.open({ root, options: {} }), /this store's pool is kernel dm-thin, which cannot be used here: the kernel has no device-mapper/);
    writeFileSync(join(root, 'devicemapper/pool-backend'), 'lvm\n');
    await assert.rejects(DevmapperDriver.open({ root, options: {} }), /names an unknown pool backend "lvm"/);
  });

  it('checks dm.blocksize as the kernel does', async (t) => {
    const root = dmRoot(t);
    await assert.rejects(DevmapperDriver.open({ root, options: { 'dm.blocksize': '32K' } }), /dm.blocksize must be a multiple of 64K between 64K and 1G/);
    await assert.rejects(DevmapperDriver.open({ root, options: { 'dm.blocksize': '96K' } }), /dm.blocksize must be a multiple of 64K/);
  });
});

describe('dm-thin tables and messages', () => {
  it('builds the loop-lvm pool table Docker loaded (metadata device first, 64K blocks, low water 32768, skip_block_zeroing)', () => {
    // Docker's default 100G loop data file is 209715200 sectors.
    assert.equal(poolTable(100 * GiB, '/dev/loop1', '/dev/loop0'), '0 209715200 thin-pool /dev/loop1 /dev/loop0 128 32768 1 skip_block_zeroing');
    assert.equal(poolTable(20 * GiB, '/dev/loop5', '/dev/loop4', 1024), '0 41943040 thin-pool /dev/loop5 /dev/loop4 1024 32768 1 skip_block_zeroing');
    assert.throws(() => poolTable(100 * GiB + 1, '/dev/loop1', '/dev/loop0'), /multiple of 512 bytes/);
    assert.throws(() => poolTable(GiB, '/dev/loop1', '/dev/loop0', 64), /dm.blocksize must be a multiple of 64K/);
  });

  it('builds thin tables and pool messages as in the kernel documentation', () => {
    // Documentation/admin-guide/device-mapper/thin-provisioning.rst: a 1 GiB thin device.
    assert.equal(thinTable(GiB, '/dev/mapper/pool', 0), '0 2097152 thin /dev/mapper/pool 0');
    assert.equal(thinTable(10 * GiB, '/dev/mapper/strata-8:1-42-pool', 7), '0 20971520 thin /dev/mapper/strata-8:1-42-pool 7');
    assert.equal(createThinMessage(0), 'create_thin 0');
    assert.equal(createSnapMessage(1, 0), 'create_snap 1 0');
    assert.equal(deleteMessage(1), 'delete 1');
    assert.equal(setTransactionIdMessage(0, 1), 'set_transaction_id 0 1');
    assert.throws(() => createThinMessage(0x1000000), /outside 0\.\.16777215/);
    assert.throws(() => createSnapMessage(3, 3), /cannot be a snapshot of itself/);
    assert.throws(() => thinTable(1000, '/dev/mapper/pool', 1), /multiple of 512 bytes/);
  });
});

describe('dmsetup status parsing', () => {
  it('reads a pool line from a kernel that has the needs_check and low watermark fields', () => {
    // Quoted in a Red Hat support script's comments, as `dmsetup status` printed it.
    const s = parsePoolStatus('RHELCSB-test_pool: 0 20971520 thin-pool 0 4356/3932160 0/163840 - rw no_discard_passdown queue_if_no_space - 1024 \n');
    assert.deepEqual(s, {
      length: 20971520,
      transactionId: 0,
      usedMetadataBlocks: 4356,
      totalMetadataBlocks: 3932160,
      usedDataBlocks: 0,
      totalDataBlocks: 163840,
      heldMetadataRoot: null,
      mode: 'rw',
      discardPassdown: false,
      errorIfNoSpace: false,
      needsCheck: false,
      metadataLowWatermark: 1024,
    });
    const space = poolSpace(s);
    assert.equal(space.blockSize, 65536);
    assert.equal(space.dataTotal, 10 * GiB);
    assert.equal(space.dataUsed, 0);
    assert.equal(space.metadataUsed, 4356 * 4096);
  });

  it('reads a pool line from an older kernel (no needs_check, no watermark) and thin device lines', () => {
    // From a walkthrough of Docker's devicemapper that set up a pool by hand and ran `dmsetup status`.
    const s = parsePoolStatus('pool: 0 20971520 thin-pool 0 280/4161600 780/163840 - rw discard_passdown queue_if_no_space ');
    assert.equal(s.usedDataBlocks, 780);
    assert.equal(s.usedMetadataBlocks, 280);
    assert.equal(s.discardPassdown, true);
    assert.equal(s.needsCheck, null);
    assert.equal(s.metadataLowWatermark, null);
    assert.equal(poolSpace(s).dataUsed, 780 * 65536);
    assert.deepEqual(parseThinStatus('snap: 0 2097152 thin 99840 2097151'), { length: 2097152, mappedSectors: 99840, highestMappedSector: 2097151 });
    assert.deepEqual(parseThinStatus('0 2097152 thin 99840 2097151\n'), { length: 2097152, mappedSectors: 99840, highestMappedSector: 2097151 });
  });

  it('refuses lines it cannot trust', () => {
    // "Fail" is what the kernel documents for a pool or thin device that hit device errors.
    assert.throws(() => parsePoolStatus('0 20971520 thin-pool Fail'), /the thin-pool device has failed/);
    assert.throws(() => parseThinStatus('0 2097152 thin Fail'), /the thin device has failed/);
    assert.throws(() => parsePoolStatus('fedora-root: 0 104857600 linear '), /not a thin-pool status line/);
    assert.throws(() => parsePoolStatus('0 20971520 thin-pool 0 280/4161600 780 - rw'), /bad data usage "780"/);
    assert.throws(() => parsePoolStatus('0 20971520 thin-pool 0 280/4161600 780/163840 - melted'), /unknown thin-pool mode "melted"/);
    assert.throws(() => parsePoolStatus('0 20971520 thin-pool 0 1/2'), /too short/);
  });
});
