// LayerStore on a real SQLite file and the vfs driver: chain IDs, reuse, and above all that no
// image layer is ever left complete and unused: rmi's claim shares a transaction with the
// image row, a crash after it is finished at open, and open drops what nothing uses unless a
// live importer still owns it.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { VfsDriver } from '../../src/drivers/vfs/vfs.js';
import { openDatabase, writeTx, type DB } from '../../src/store/db.js';
import { ImageStore } from '../../src/store/images.js';
import { chainIds, LayerStore, sha256, type LayerInput } from '../../src/store/layers.js';
import { identityOf } from '../../src/sys/process.js';
import { scratch } from '../helpers/env.js';

/** A layer tar made by GNU tar (the oracle) from files, with its input for the store. */
function layer(work: string, files: Record<string, string>, label: string): LayerInput & { diffID: string } {
  const dir = join(work, `src-${label}`);
  for (const [name, body] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), body);
  }
  const tar = execFileSync('tar', ['-C', dir, '--sort=name', '--mtime=@0', '--owner=0', '--group=0', '--numeric-owner', '-cf', '-', '.']);
  return { open: async () => Readable.from([tar]), diffID: sha256(tar), label };
}

async function open(t: { after(fn: () => void): void }) {
  const root = scratch(t);
  const driver = await VfsDriver.open({ root, options: {} });
  const db = openDatabase(root);
  t.after(() => db.close());
  return { root, db, driver, layers: new LayerStore(db, driver, root, 1), images: new ImageStore(db) };
}

/** An image row whose top is `top` (config bytes only need to be unique). */
function addImage(images: ImageStore, top: string, tag: string): string {
  const config = Buffer.from(JSON.stringify({ tag }));
  const id = sha256(config);
  images.add({ id, config, topLayer: top, manifest: null }, []);
  return id;
}

/** The identity of a process that has exited: a crashed owner. */
async function deadOwner(): Promise<string> {
  const child = spawn('true', { stdio: 'ignore' });
  const id = identityOf(child.pid!);
  await once(child, 'exit');
  assert.ok(id);
  return id;
}

function setOwner(db: DB, ids: string[], owner: string | null, state = 'complete'): void {
  writeTx(db, () => {
    for (const id of ids) db.prepare('UPDATE layers SET owner = ?, state = ? WHERE id = ?').run(owner, state, id);
  });
}

describe('LayerStore', () => {
  test('stores a chain once per chain ID, with diffIDs, sizes and its files', async (t) => {
    const s = await open(t);
    const a = layer(s.root, { 'etc/a': 'a' }, 'a');
    const b = layer(s.root, { 'etc/b': 'bb' }, 'b');
    const top = await s.layers.ensureImageLayers([a, b]);
    assert.ok(top);
    const chain = s.layers.ancestry(top.id);
    assert.deepEqual(chain.map((l) => l.diffID), [b.diffID, a.diffID]);
    assert.deepEqual(chain.map((l) => l.chainId).reverse(), chainIds([a.diffID, b.diffID]));
    assert.equal(chainIds([a.diffID, b.diffID])[1], sha256(`${a.diffID} ${b.diffID}`));
    assert.ok(chain.every((l) => l.state === 'complete' && l.kind === 'image'));
    assert.deepEqual(readdirSync(join(await s.driver.get(top.id), 'etc')).sort(), ['a', 'b']);
    // The same chain again: found by chain ID, nothing new made.
    const again = await s.layers.ensureImageLayers([a, b]);
    assert.equal(again?.id, top.id);
    assert.equal(s.layers.all().length, 2);
  });

  test('a layer whose content does not match its diffID is refused, and the import leaves nothing of its own', async (t) => {
    const s = await open(t);
    const a = layer(s.root, { a: 'a' }, 'a');
    const kept = await s.layers.ensureImageLayers([a]);
    addImage(s.images, kept!.id, 'kept');
    const b = layer(s.root, { b: 'b' }, 'b');
    const c = layer(s.root, { c: 'c' }, 'c');
    await assert.rejects(s.layers.ensureImageLayers([a, b, { ...c, diffID: b.diffID }]), /does not match its diffID/);
    assert.deepEqual(s.layers.all().map((l) => l.id), [kept!.id]);
    assert.deepEqual(readdirSync(join(s.root, 'vfs', 'dir')), [kept!.id]);
  });

  test('release claims, in the caller\'s transaction, only the layers no other image stands on, children first', async (t) => {
    const s = await open(t);
    const base = layer(s.root, { base: '0' }, 'base');
    const x1 = layer(s.root, { x1: '1' }, 'x1');
    const x2 = layer(s.root, { x2: '2' }, 'x2');
    const y = layer(s.root, { y: 'y' }, 'y');
    const xTop = (await s.layers.ensureImageLayers([base, x1, x2]))!;
    const yTop = (await s.layers.ensureImageLayers([base, y]))!;
    const xImage = addImage(s.images, xTop.id, 'x');
    addImage(s.images, yTop.id, 'y');
    s.layers.adopted();
    const claimed = writeTx(s.db, () => {
      s.images.delete(xImage);
      return s.layers.claimUnused([xTop.id]);
    });
    const xChain = s.layers.ancestry(xTop.id);
    assert.deepEqual(claimed.map((l) => l.diffID), [x2.diffID, x1.diffID]);
    assert.deepEqual(xChain.map((l) => l.state), ['removing', 'removing', 'complete']);
    const removed = await s.layers.removeClaimed(claimed);
    assert.deepEqual(removed, claimed.map((l) => l.chainId));
    assert.deepEqual(s.layers.all().map((l) => l.diffID).sort(), [base.diffID, y.diffID].sort());
    assert.deepEqual(readdirSync(join(s.root, 'vfs', 'dir')).sort(), s.layers.all().map((l) => l.id).sort());
  });

  test('recover finishes a removal whose remover died after its claim', async (t) => {
    const s = await open(t);
    const top = (await s.layers.ensureImageLayers([layer(s.root, { a: 'a' }, 'a'), layer(s.root, { b: 'b' }, 'b')]))!;
    const ids = s.layers.ancestry(top.id).map((l) => l.id);
    // What a kill right after rmi's transaction leaves: no image, both rows removing, owner dead.
    setOwner(s.db, ids, await deadOwner(), 'removing');
    assert.equal(await s.layers.recover(), 2);
    assert.deepEqual(s.layers.all(), []);
    assert.deepEqual(readdirSync(join(s.root, 'vfs', 'dir')), []);
  });

  test('recover drops complete layers nothing uses, whether adopted or a dead importer\'s, and keeps a live importer\'s', async (t) => {
    const s = await open(t);
    const unused = (await s.layers.ensureImageLayers([layer(s.root, { u: 'u' }, 'u')]))!;
    const crashed = (await s.layers.ensureImageLayers([layer(s.root, { d: 'd' }, 'd')]))!;
    const importing = (await s.layers.ensureImageLayers([layer(s.root, { l: 'l' }, 'l')]))!;
    const used = (await s.layers.ensureImageLayers([layer(s.root, { i: 'i' }, 'i')]))!;
    addImage(s.images, used.id, 'used');
    const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
    t.after(() => sleeper.kill('SIGKILL'));
    setOwner(s.db, [unused.id, used.id], null);
    setOwner(s.db, [crashed.id], await deadOwner());
    setOwner(s.db, [importing.id], identityOf(sleeper.pid!));
    await s.layers.recover();
    assert.deepEqual(s.layers.all().map((l) => l.id).sort(), [importing.id, used.id].sort());
    sleeper.kill('SIGKILL');
    await once(sleeper, 'exit');
    await s.layers.recover();
    assert.deepEqual(s.layers.all().map((l) => l.id), [used.id]);
  });

  test('a layer something stands on stays: an init layer on an image layer no image names', async (t) => {
    const s = await open(t);
    const top = (await s.layers.ensureImageLayers([layer(s.root, { a: 'a' }, 'a')]))!;
    s.layers.adopted();
    const init = await s.layers.createReadWrite(top.id, 'init');
    s.layers.markComplete([init.id]);
    await s.layers.recover();
    assert.deepEqual(s.layers.all().map((l) => l.id).sort(), [init.id, top.id].sort());
    assert.deepEqual(await s.layers.dropUnused(), []);
  });
});
