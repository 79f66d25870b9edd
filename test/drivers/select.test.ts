import assert from 'node:assert/strict';
import { lstat, mkdir, writeFile } from 'node:fs/promises';
import type { Driver } from '../../src/drivers/driver.js';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { chooseDriver, createDriver, driverNames, driversWithData, hasDriverData, register, selectDriver } from '../../src/drivers/index.js';
import { VfsDriver } from '../../src/drivers/vfs/vfs.js';
import { scratch } from '../helpers/env.js';

// A second real driver under another name, usable only where a marker file says so: lets
// the tests see priority, usability and existing-data rules without mocking a driver.
register('vfs-test-preferred', async (opts) => rename(await VfsDriver.open(opts), 'vfs-test-preferred'), {
  priority: 1,
  usable: async (root) => ((await exists(join(root, 'allow-preferred'))) ? true : 'no allow-preferred marker in the root'),
});

function rename(d: Driver, name: string): Driver {
  return Object.create(d, { name: { value: name } }) as Driver;
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

describe('driver selection', () => {
  it('lists drivers in priority order', () => {
    const names = driverNames();
    assert.ok(names.indexOf('vfs-test-preferred') < names.indexOf('vfs'));
  });

  it('picks the first usable driver by priority on an empty root', async (t) => {
    const root = scratch(t);
    const plain = await selectDriver(root, undefined, {});
    assert.notEqual(plain.name, 'vfs-test-preferred', 'an unusable driver was chosen');
    assert.ok(driverNames().includes(plain.name));
    const other = scratch(t);
    await writeFile(join(other, 'allow-preferred'), '');
    assert.equal((await selectDriver(other, undefined, {})).name, 'vfs-test-preferred');
  });

  it('keeps the driver whose data the root already holds', async (t) => {
    const root = scratch(t);
    await writeFile(join(root, 'allow-preferred'), '');
    const d = await createDriver('vfs', { root, options: {} });
    await d.create('a'.repeat(64), null);
    assert.deepEqual(await driversWithData(root), ['vfs']);
    const again = await selectDriver(root, undefined, {});
    assert.equal(again.name, 'vfs');
    assert.equal(await again.exists('a'.repeat(64)), true);
  });

  it('ignores empty driver directories', async (t) => {
    const root = scratch(t);
    await writeFile(join(root, 'allow-preferred'), '');
    await mkdir(join(root, 'overlay2'));
    await mkdir(join(root, 'vfs'));
    assert.deepEqual(await driversWithData(root), []);
    assert.equal((await selectDriver(root, undefined, {})).name, 'vfs-test-preferred');
  });

  it('chooses without making anything, on a root that does not exist or is a file', async (t) => {
    const missing = join(scratch(t), 'missing');
    assert.deepEqual(await driversWithData(missing), []);
    assert.equal(await hasDriverData(missing, 'vfs'), false);
    const chosen = await chooseDriver(missing, 'vfs');
    assert.equal(chosen.name, 'vfs');
    assert.equal(await exists(missing), false);
    const file = join(scratch(t), 'file');
    await writeFile(file, '');
    assert.deepEqual(await driversWithData(file), []);
    assert.equal(await hasDriverData(file, 'vfs'), false);
    assert.equal((await chosen.open({})).name, 'vfs');
    assert.equal(await exists(join(missing, 'vfs')), true);
  });

  it('refuses a root holding the data of two drivers, naming both', async (t) => {
    const root = scratch(t);
    await createDriver('vfs', { root, options: {} });
    await mkdir(join(root, 'overlay2/l'), { recursive: true });
    await assert.rejects(selectDriver(root, undefined, {}), /contains several valid storage drivers: .*overlay2.*vfs|vfs.*overlay2/);
  });

  it('refuses a root holding data of a driver strata lacks', async (t) => {
    const root = scratch(t);
    // Docker's old "overlay" driver, which strata does not implement.
    await mkdir(join(root, 'overlay/l'), { recursive: true });
    await assert.rejects(selectDriver(root, undefined, {}), /holds data of storage driver overlay, which strata does not support/);
  });

  it('honours a requested driver, and refuses unknown or unusable ones clearly', async (t) => {
    const root = scratch(t);
    await mkdir(join(root, 'overlay2/l'), { recursive: true });
    assert.equal((await selectDriver(root, 'vfs', {})).name, 'vfs');
    await assert.rejects(selectDriver(root, 'nosuchfs', {}), /unknown storage driver "nosuchfs" \(known: .*vfs/);
    await assert.rejects(createDriver('nosuchfs', { root, options: {} }), /unknown storage driver "nosuchfs"/);
    await assert.rejects(
      selectDriver(root, 'vfs-test-preferred', {}),
      /storage driver vfs-test-preferred is not usable for .*: no allow-preferred marker/,
    );
  });

  it('passes storage options to the driver it picks', async (t) => {
    const root = scratch(t);
    await assert.rejects(selectDriver(root, 'vfs', { 'vfs.size': '1G' }), /Filesystem does not support, or has not enabled quotas/);
    await writeFile(join(root, 'allow-preferred'), '');
    // The stand-in is vfs underneath: the options reach the factory on automatic choice too.
    await assert.rejects(selectDriver(root, undefined, { 'vfs.size': '1G' }), /Filesystem does not support, or has not enabled quotas/);
  });
});
