import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { VfsDriver } from '../../src/drivers/vfs/vfs.js';
import { identityOf } from '../../src/sys/process.js';
import { scratch } from '../helpers/env.js';
import { conformance } from './conformance.js';

conformance('vfs', { driver: 'vfs' });

describe('vfs specifics', () => {
  it('lays layers out as vfs/dir/<id> with 0710 parents, and a child is a full copy', async (t) => {
    const root = scratch(t);
    const d = await VfsDriver.open({ root, options: {} });
    const base = 'a'.repeat(64);
    const child = 'b'.repeat(64);
    await d.create(base, null);
    const path = await d.get(base);
    assert.equal(path, join(root, 'vfs', 'dir', base));
    await writeFile(join(path, 'f'), 'base');
    await d.createReadWrite(child, base);
    assert.deepEqual(await readdir(join(root, 'vfs', 'dir', child)), ['f']);
    assert.notEqual((await stat(join(root, 'vfs/dir', child, 'f'))).ino, (await stat(join(path, 'f'))).ino);
    assert.equal((await stat(join(root, 'vfs'))).mode & 0o777, 0o710);
    assert.equal((await stat(join(root, 'vfs/dir'))).mode & 0o777, 0o710);
    assert.deepEqual(await d.metadata(base), {});
  });

  it('finishes a removal that a crash cut short when it opens', async (t) => {
    const root = scratch(t);
    await VfsDriver.open({ root, options: {} });
    const half = join(root, 'vfs/dir', `${'c'.repeat(64)}-removing`);
    await mkdir(join(half, 'usr/lib'), { recursive: true });
    await writeFile(join(half, 'usr/lib/x'), 'x');
    const d = await VfsDriver.open({ root, options: {} });
    assert.deepEqual(await readdir(join(root, 'vfs/dir')), []);
    assert.equal(await d.exists('c'.repeat(64)), false);
  });

  it('at open leaves a removal whose remover still runs, and finishes one whose remover died', async (t) => {
    const root = scratch(t);
    await VfsDriver.open({ root, options: {} });
    const live = spawn('sleep', ['60'], { stdio: 'ignore' });
    t.after(() => live.kill('SIGKILL'));
    const dead = spawn('true', { stdio: 'ignore' });
    const deadId = identityOf(dead.pid!);
    await once(dead, 'exit');
    assert.ok(deadId);
    const doomed = (id: string, owner: string) => `${id}-removing-${owner.replace(':', '-')}`;
    const running = doomed('c'.repeat(64), identityOf(live.pid!)!);
    const crashed = doomed('d'.repeat(64), deadId);
    for (const name of [running, crashed]) await mkdir(join(root, 'vfs/dir', name, 'usr'), { recursive: true });
    const d = await VfsDriver.open({ root, options: {} });
    assert.deepEqual(await readdir(join(root, 'vfs/dir')), [running]);
    // check skips a leftover whose owner is alive: the inventory names the remover.
    const inv = await d.inventory();
    assert.deepEqual(inv.layers, []);
    assert.deepEqual(
      inv.leftovers.map((l) => [l.layer, l.owner]),
      [['c'.repeat(64), identityOf(live.pid!)]],
    );
    await assert.rejects(d.create(running, null), /invalid layer id/);
  });

  it('refuses size quotas, unknown options, storage options on read-only layers and bad ids', async (t) => {
    const root = scratch(t);
    await assert.rejects(VfsDriver.open({ root, options: { 'vfs.size': '10G' } }), /Filesystem does not support, or has not enabled quotas \(vfs enforces/);
    await assert.rejects(VfsDriver.open({ root, options: { 'overlay2.size': '10G' } }), /vfs: unknown storage option overlay2.size/);
    const d = await VfsDriver.open({ root, options: {} });
    await assert.rejects(d.createReadWrite('d'.repeat(64), null, { storageOpt: { size: '50M' } }), /Filesystem does not support, or has not enabled quotas/);
    await assert.rejects(d.createReadWrite('d'.repeat(64), null, { storageOpt: { inodes: '5' } }), /Storage opt inodes not supported$/);
    await assert.rejects(d.create('d'.repeat(64), null, { storageOpt: { size: '1G' } }), /--storage-opt is not supported for vfs on read-only layers$/);
    await assert.rejects(d.create('../escape', null), /invalid layer id/);
    await assert.rejects(d.create('e'.repeat(64), 'f'.repeat(64)), /parent layer f+ does not exist/);
    assert.equal(await d.exists('e'.repeat(64)), false);
    assert.deepEqual(await readdir(join(root, 'vfs/dir')), []);
  });
});
