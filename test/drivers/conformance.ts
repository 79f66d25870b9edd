// The scenarios every storage driver must pass (after Docker's graphtest and containerd's
// snapshot testsuite). A driver's test file calls conformance(name, make) once.
// Each test opens its own driver on its own root and, whatever happens, releases every
// mount under that root before removing it.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { constants as fsConstants, mkdtempSync, readFileSync } from 'node:fs';
import { chmod, lchown, link, lstat, mkdir, readdir, readFile, readlink, rm, stat, symlink, unlink, writeFile, open } from 'node:fs/promises';
import { constants as osConstants, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import type { Driver } from '../../src/drivers/driver.js';
import { createDriver } from '../../src/drivers/index.js';
import { backingFsName } from '../../src/sys/fsprobe.js';
import { lgetxattr, lremovexattr, lsetxattr, makedev, mknod } from '../../src/sys/linux.js';
import { BINARY_XATTR, buildBaseTree, gnuTar } from './fixtures.js';
import { diffTrees, snapshotTree, type Node, type SnapshotOptions } from '../helpers/tree.js';
import { unmountAllUnder } from '../helpers/mounts.js';
import { childScript, runChild } from './overlay-fixtures.js';
import { spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { repoRoot } from '../helpers/env.js';

export interface ConformanceOptions {
  /** The driver enforces `size` on writable layers; otherwise it must refuse the option. */
  quota?: boolean;
  /** Layers in the deep-read scenario (default 128). */
  deep?: number;
}

/** A registered driver and its storage options: this process and child processes open it alike. */
export interface DriverSpec {
  driver: string;
  options?: Record<string, string>;
}

type MakeDriver = (root: string) => Promise<Driver>;

/** What a child process runs to take (get) or drop (put) one reference on a layer. */
const CHILD_REF = `
  const d = await mod.createDriver(args[3], { root: args[0], options: JSON.parse(args[4]) });
  if (args[2] === 'get') console.log(await d.get(args[1])); else await d.put(args[1]);`;

/** A child that takes a reference and dies without giving it back; prints the view and its identity. */
const CHILD_CRASH = `
  const drivers = await import(args[2]);
  const d = await drivers.createDriver(args[3], { root: args[0], options: JSON.parse(args[4]) });
  console.log(await d.get(args[1]));
  console.log(mod.processIdentity());
  process.kill(process.pid, 'SIGKILL');`;

export function conformance(name: string, spec: DriverSpec, opts: ConformanceOptions = {}): void {
  const deep = opts.deep ?? 128;
  const options = spec.options ?? {};
  const make: MakeDriver = (root) => createDriver(spec.driver, { root, options });
  /** The driver's home is <root>/<name> for every driver. */
  const inChild = (d: Driver, id: string, op: 'get' | 'put') =>
    runChild('src/drivers/index.js', CHILD_REF, [dirname(d.home), id, op, spec.driver, JSON.stringify(options)]);
  /** Returns the view the crashed child mounted and the child's identity. */
  const crashChild = (d: Driver, id: string): [string, string] => {
    const drivers = pathToFileURL(join(repoRoot, 'dist', 'src', 'drivers', 'index.js')).href;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', childScript('src/sys/process.js', CHILD_CRASH), dirname(d.home), id, drivers, spec.driver, JSON.stringify(options)], {
      encoding: 'utf8',
    });
    assert.equal(r.signal, 'SIGKILL', r.stderr);
    const [path, who] = r.stdout.trim().split('\n');
    return [path!, who!];
  };

  describe(`storage driver conformance: ${name}`, () => {
    it('creates an empty layer', async (t) => {
      const d = await session(t, make);
      const id = newId();
      assert.equal(await d.exists(id), false);
      await d.create(id, null);
      assert.equal(await d.exists(id), true);
      await view(d, id, async (root) => {
        assert.ok((await stat(root)).isDirectory());
        assert.deepEqual(await readdir(root), []);
      });
      await assert.rejects(d.create(id, null), `${name} created layer ${id} twice`);
    });

    it('applies a GNU tar base layer keeping modes, owners, devices, hardlinks and xattrs', async (t) => {
      const d = await session(t, make);
      const src = await sourceTree(t);
      const base = await layerFromTar(d, null, src);
      await view(d, base, async (root) => {
        assert.deepEqual(diffTrees(withoutRoot(await snapshotTree(src, { times: 'files' })), withoutRoot(await snapshotTree(root, { times: 'files' }))), []);
        await checkBaseDetails(root);
      });
    });

    it('keeps a base tree made with direct filesystem calls', async (t) => {
      const d = await session(t, make);
      const src = await sourceTree(t);
      const id = newId();
      await d.create(id, null);
      await view(d, id, (root) => buildBaseTree(root));
      await view(d, id, async (root) => {
        assert.deepEqual(diffTrees(withoutRoot(await snapshotTree(src, { times: 'files' })), withoutRoot(await snapshotTree(root, { times: 'files' }))), []);
        await checkBaseDetails(root);
      });
    });

    it('shows the parent in a new child snapshot', async (t) => {
      const d = await session(t, make);
      const base = await layerFromTar(d, null, await sourceTree(t));
      const child = newId();
      await d.createReadWrite(child, base);
      const want = withoutRoot(await snap(d, base));
      assert.deepEqual(diffTrees(want, withoutRoot(await snap(d, child))), []);
    });

    it('keeps writes in a child invisible to its parent and to a sibling, and the parent untouched', async (t) => {
      const d = await session(t, make);
      const base = await layerFromCalls(d);
      const [c1, c2] = [newId(), newId()];
      await d.createReadWrite(c1, base);
      await d.createReadWrite(c2, base);
      const parentBefore = await snap(d, base, { times: 'ns' });
      const siblingBefore = await snap(d, c2, { times: 'ns' });
      await view(d, c1, async (root) => {
        await writeFile(join(root, 'new-file'), 'only in c1');
        await writeFile(join(root, 'etc/hosts'), 'rewritten in c1\n');
        await unlink(join(root, 'etc/gone'));
        await rm(join(root, 'olddir'), { recursive: true });
        await chmod(join(root, 'keep/sub/file'), 0o600);
        await lchown(join(root, 'owned'), 4242, 4343);
        lsetxattr(join(root, 'xattr-file'), 'user.binary', Buffer.from('other'));
        await writeFile(join(root, 'links/b'), 'hardlink target rewritten');
      });
      await view(d, c1, async (root) => {
        assert.equal(await readFile(join(root, 'new-file'), 'utf8'), 'only in c1');
        assert.equal(await readFile(join(root, 'etc/hosts'), 'utf8'), 'rewritten in c1\n');
        await assert.rejects(lstat(join(root, 'etc/gone')), { code: 'ENOENT' });
        await assert.rejects(lstat(join(root, 'olddir')), { code: 'ENOENT' });
        assert.equal((await stat(join(root, 'keep/sub/file'))).mode & 0o7777, 0o600);
        assert.equal((await lstat(join(root, 'owned'))).uid, 4242);
        assert.deepEqual(lgetxattr(join(root, 'xattr-file'), 'user.binary'), Buffer.from('other'));
      });
      assert.deepEqual(diffTrees(parentBefore, await snap(d, base, { times: 'ns' })), [], 'parent changed');
      assert.deepEqual(diffTrees(siblingBefore, await snap(d, c2, { times: 'ns' })), [], 'sibling changed');
    });

    it(`reads through ${deep} layers`, async (t) => {
      const d = await session(t, make);
      const ids: string[] = [];
      for (let i = 0; i < deep; i++) {
        const id = newId();
        await d.create(id, ids.at(-1) ?? null);
        await view(d, id, async (root) => {
          await writeFile(join(root, `layer-${i}`), `content of layer ${i}\n`);
          await writeFile(join(root, 'top'), String(i));
        });
        ids.push(id);
      }
      const top = newId();
      await d.createReadWrite(top, ids.at(-1) as string);
      await view(d, top, async (root) => {
        const names = (await readdir(root)).filter((n) => n.startsWith('layer-'));
        assert.equal(names.length, deep);
        for (let i = 0; i < deep; i++) {
          assert.equal(await readFile(join(root, `layer-${i}`), 'utf8'), `content of layer ${i}\n`);
        }
        assert.equal(await readFile(join(root, 'top'), 'utf8'), String(deep - 1));
        await unlink(join(root, 'layer-0'));
      });
      await view(d, ids[0], async (root) => assert.equal(await readFile(join(root, 'layer-0'), 'utf8'), 'content of layer 0\n'));
      await view(d, top, async (root) => assert.equal((await readdir(root)).includes('layer-0'), false));
    });

    it('round-trips diff and applyDiff with added, changed, deleted and replaced entries', async (t) => {
      const d = await session(t, make);
      const src = await sourceTree(t);
      const l1 = await layerFromTar(d, null, src);
      const l2 = newId();
      await d.create(l2, l1);
      await view(d, l2, (root) => changeEverything(root));

      const l3 = newId();
      await d.create(l3, l1);
      const size = await d.applyDiff(l3, l1, await d.diff(l2, l1));
      assert.deepEqual(diffTrees(withoutRoot(await snap(d, l2)), withoutRoot(await snap(d, l3))), []);
      assert.equal(size, await d.diffSize(l2, l1), 'applyDiff size vs diffSize');

      // A whole layer (no parent) into a fresh empty layer.
      const l4 = newId();
      await d.create(l4, null);
      await d.applyDiff(l4, null, await d.diff(l1, null));
      assert.deepEqual(diffTrees(withoutRoot(await snap(d, l1)), withoutRoot(await snap(d, l4))), []);

      // The applied layer stacks like the original: a child of each sees the same.
      const [k2, k3] = [newId(), newId()];
      await d.createReadWrite(k2, l2);
      await d.createReadWrite(k3, l3);
      assert.deepEqual(diffTrees(withoutRoot(await snap(d, k2)), withoutRoot(await snap(d, k3))), []);
    });

    it('lists exactly the changes of a child', async (t) => {
      const d = await session(t, make);
      const base = await layerFromTar(d, null, await sourceTree(t));
      const child = newId();
      await d.createReadWrite(child, base);
      await view(d, child, async (root) => {
        await writeFile(join(root, 'etc/hosts'), 'changed\n');
        await unlink(join(root, 'etc/gone'));
        await mkdir(join(root, 'newdir'));
        await writeFile(join(root, 'newdir/f'), 'new');
        await rm(join(root, 'olddir'), { recursive: true });
        await chmod(join(root, 'setuid'), 0o755);
        await lchown(join(root, 'owned'), 0, 0);
        await writeFile(join(root, 'added'), 'a');
      });
      // Only changes whose report Docker's drivers agree on: for a file modified two
      // directories down, the naive diff (ChangesDirs) also reports every directory above
      // it as C while overlay's upper-dir walk reports none of them.
      const got = (await d.changes(child, base)).map((c) => `${c.kind} ${c.path}`).sort(byPath);
      assert.deepEqual(got, [
        'A /added',
        'C /etc',
        'D /etc/gone',
        'C /etc/hosts',
        'A /newdir',
        'A /newdir/f',
        'D /olddir',
        'C /owned',
        'C /setuid',
      ]);
      const all = await d.changes(base, null);
      assert.ok(all.every((c) => c.kind === 'A'), 'a layer without parent has only additions');
      assert.ok(all.some((c) => c.path === '/etc/hosts'));
      assert.ok(all.some((c) => c.path === '/dev/null'));
    });

    if (opts.quota) {
      it('enforces size= on a writable layer: 25 MB fits in 50M, 50 MB more fails', async (t) => {
        const d = await session(t, make);
        const base = await layerFromTar(d, null, await sourceTree(t));
        const id = newId();
        await d.createReadWrite(id, base, { storageOpt: { size: '50M' } });
        await view(d, id, async (root) => {
          await writeBytes(join(root, 'fits'), 25 * 1000 * 1000);
          // Node 20 has no name for EDQUOT (its code reads "Unknown system error -122"): match errno too.
          await assert.rejects(
            writeBytes(join(root, 'too-much'), 50 * 1000 * 1000),
            (err: NodeJS.ErrnoException) =>
              ['EDQUOT', 'ENOSPC'].includes(err.code ?? '') || err.errno === -osConstants.errno.EDQUOT || err.errno === -osConstants.errno.ENOSPC,
          );
        });
      });
    } else {
      it('refuses size= on a writable layer it cannot enforce', async (t) => {
        const d = await session(t, make);
        const id = newId();
        await assert.rejects(d.createReadWrite(id, null, { storageOpt: { size: '50M' } }), /storage-opt|quotas/);
        assert.equal(await d.exists(id), false);
      });
    }

    it('changes owners in a child without touching the parent', async (t) => {
      const d = await session(t, make);
      const base = await layerFromCalls(d);
      const child = newId();
      await d.createReadWrite(child, base);
      await view(d, child, async (root) => {
        await lchown(join(root, 'etc/hosts'), 1234, 5678);
        await lchown(join(root, 'sym-abs'), 7, 8);
        await lchown(join(root, 'keep'), 9, 10);
      });
      await view(d, child, async (root) => {
        assert.equal(owner(await lstat(join(root, 'etc/hosts'))), '1234:5678');
        assert.equal(owner(await lstat(join(root, 'sym-abs'))), '7:8');
        assert.equal(owner(await lstat(join(root, 'keep'))), '9:10');
        assert.equal(await readFile(join(root, 'etc/hosts'), 'utf8'), '127.0.0.1 localhost\n');
      });
      await view(d, base, async (root) => {
        assert.equal(owner(await lstat(join(root, 'etc/hosts'))), '0:0');
        assert.equal(owner(await lstat(join(root, 'sym-abs'))), '0:0');
        assert.equal(owner(await lstat(join(root, 'keep'))), '0:0');
      });
    });

    it('removes a child and then its parent, leaving nothing behind', async (t) => {
      const d = await session(t, make);
      const base = await layerFromCalls(d);
      const child = newId();
      await d.createReadWrite(child, base);
      await view(d, child, (root) => writeFile(join(root, 'x'), 'x'));
      await d.remove(child);
      assert.equal(await d.exists(child), false);
      await view(d, base, async (root) => assert.equal(await readFile(join(root, 'etc/hosts'), 'utf8'), '127.0.0.1 localhost\n'));
      await d.remove(base);
      assert.equal(await d.exists(base), false);
      await d.remove(base); // removing what is gone is not an error
      const leftovers = await walk(d.home);
      assert.deepEqual(
        leftovers.filter((e) => e.path.includes(base) || e.path.includes(child) || e.path.includes('removing')),
        [],
      );
      assert.deepEqual(leftovers.filter((e) => e.dangling), [], 'dangling symlinks left in the driver home');
      assert.deepEqual(mountsUnder(d.home), []);
    });

    it('counts references: two gets and one put keep the layer usable, the last put releases it', async (t) => {
      const d = await session(t, make);
      const base = await layerFromCalls(d);
      const child = newId();
      await d.createReadWrite(child, base);
      const p1 = await d.get(child);
      const p2 = await d.get(child);
      assert.equal(p1, p2);
      await d.put(child);
      assert.equal(await readFile(join(p1, 'etc/hosts'), 'utf8'), '127.0.0.1 localhost\n');
      await writeFile(join(p1, 'still-writable'), 'yes');
      await d.put(child);
      assert.deepEqual(mountsUnder(d.home), []);
      await view(d, child, async (root) => assert.equal(await readFile(join(root, 'still-writable'), 'utf8'), 'yes'));
      await assert.rejects(d.get(newId()), 'get of a layer that does not exist');
    });

    it('shares mount reference counts across processes', async (t) => {
      const d = await session(t, make);
      const base = await layerFromCalls(d);
      const id = newId();
      await d.createReadWrite(id, base);
      const path = inChild(d, id, 'get');
      assert.equal(await d.get(id), path, 'both processes see the same view');
      assert.equal(await readFile(join(path, 'etc/hosts'), 'utf8'), '127.0.0.1 localhost\n', 'the view outlives the process that made it');
      inChild(d, id, 'put');
      assert.equal(await readFile(join(path, 'etc/hosts'), 'utf8'), '127.0.0.1 localhost\n', 'one reference is still held');
      await d.put(id);
      assert.deepEqual(mountsUnder(d.home), [], 'released at zero, although another process took the first reference');
      inChild(d, id, 'get');
      inChild(d, id, 'put');
      assert.deepEqual(mountsUnder(d.home), []);
    });

    it('drops the mount references a crashed process held, and no one else\'s', async (t) => {
      const d = await session(t, make);
      if (!d.releaseCrashed) return t.skip(`${name} mounts nothing`);
      const base = await layerFromCalls(d);
      const id = newId();
      await d.createReadWrite(id, base);
      const [path, crashed] = crashChild(d, id);
      assert.equal(await d.get(id), path);
      await d.releaseCrashed([crashed]);
      assert.equal(await readFile(join(path, 'etc/hosts'), 'utf8'), '127.0.0.1 localhost\n', 'this process still holds it');
      await d.put(id);
      assert.deepEqual(mountsUnder(d.home), [], 'released at zero: the crashed reference no longer counts');
      const [, alone] = crashChild(d, id);
      assert.notDeepEqual(mountsUnder(d.home), []);
      await d.releaseCrashed([alone]);
      assert.deepEqual(mountsUnder(d.home), [], 'a mount only a crashed process held goes');
    });

    it('cleanup releases every mount and leaves the driver usable', async (t) => {
      const d = await session(t, make);
      const base = await layerFromCalls(d);
      const [c1, c2] = [newId(), newId()];
      await d.createReadWrite(c1, base);
      await d.createReadWrite(c2, base);
      await d.get(c1);
      await d.get(c2);
      await d.get(c2);
      await d.cleanup();
      assert.deepEqual(mountsUnder(d.home), []);
      await view(d, c2, async (root) => assert.equal(await readFile(join(root, 'etc/hosts'), 'utf8'), '127.0.0.1 localhost\n'));
    });

    it('answers exists, metadata and status', async (t) => {
      const d = await session(t, make);
      const base = newId();
      await d.create(base, null);
      const child = newId();
      await d.createReadWrite(child, base);
      assert.equal(await d.exists(base), true);
      assert.equal(await d.exists(child), true);
      assert.equal(await d.exists(newId()), false);
      for (const id of [base, child]) {
        const meta = await d.metadata(id);
        for (const [key, value] of Object.entries(meta)) {
          assert.equal(typeof value, 'string', `metadata ${key}`);
          for (const part of value.split(':')) {
            if (part.startsWith('/')) await stat(part); // every path it names exists
          }
        }
      }
      const rows = await d.status();
      for (const row of rows) {
        assert.equal(row.length, 2);
        assert.equal(typeof row[0], 'string');
        assert.equal(typeof row[1], 'string');
      }
      const backing = rows.find(([k]) => k === 'Backing Filesystem');
      assert.equal(backing?.[1], backingFsName(d.home));
      assert.equal(d.home.endsWith(`/${d.name}`), true, 'home is <root>/<name>');
    });
  });
}

// ---------------------------------------------------------------------------------------

/** A fresh root and driver for one test; afterwards every mount under it goes, then the root. */
async function session(t: TestContext, make: MakeDriver): Promise<Driver> {
  const root = mkdtempSync(join(tmpdir(), 'strata-driver-'));
  const opened: { driver?: Driver } = {};
  t.after(async () => {
    let cleanupError: unknown;
    try {
      await opened.driver?.cleanup();
    } catch (err) {
      cleanupError = err;
    }
    unmountAllUnder(root);
    const still = mountsUnder(root);
    if (still.length > 0) throw new Error(`mounts left under ${root}: ${still.join(', ')}`);
    await rm(root, { recursive: true, force: true });
    if (cleanupError) throw cleanupError;
  });
  opened.driver = await make(root);
  return opened.driver;
}

/** The base tree in a scratch directory, made with direct calls (what tars and comparisons start from). */
async function sourceTree(t: TestContext): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'strata-src-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await chmod(dir, 0o755);
  await buildBaseTree(dir);
  return dir;
}

/** A new layer holding a GNU tar of src, on parent. */
async function layerFromTar(d: Driver, parent: string | null, src: string): Promise<string> {
  const id = newId();
  await d.create(id, parent);
  await d.applyDiff(id, parent, gnuTar(src));
  return id;
}

/** A new layer without parent holding the base tree, written through the mounted view. */
async function layerFromCalls(d: Driver): Promise<string> {
  const id = newId();
  await d.create(id, null);
  await view(d, id, (root) => buildBaseTree(root));
  return id;
}

async function view<T>(d: Driver, id: string, fn: (root: string) => Promise<T>): Promise<T> {
  const root = await d.get(id);
  try {
    return await fn(root);
  } finally {
    await d.put(id);
  }
}

/** A layer's tree; times as a layer tar carries them unless opts say otherwise. */
function snap(d: Driver, id: string, opts: SnapshotOptions = { times: 'files' }): Promise<Map<string, Node>> {
  return view(d, id, (root) => snapshotTree(root, opts));
}

function withoutRoot(tree: Map<string, Node>): Map<string, Node> {
  const copy = new Map(tree);
  copy.delete('');
  return copy;
}

async function checkBaseDetails(root: string): Promise<void> {
  const sticky = await lstat(join(root, 'sticky'));
  assert.equal(sticky.mode & 0o7777, 0o1705);
  assert.equal(owner(sticky), '1:2');
  assert.equal((await lstat(join(root, 'setuid'))).mode & 0o7777, 0o4755);
  assert.equal((await lstat(join(root, 'setgid'))).mode & 0o7777, 0o2775);
  assert.equal((await lstat(join(root, 'zero-mode'))).mode & 0o7777, 0);
  const dev = await lstat(join(root, 'dev/null'));
  assert.ok(dev.isCharacterDevice());
  assert.equal(dev.rdev, Number(makedev(1, 3)));
  assert.ok((await lstat(join(root, 'dev/loop9'))).isBlockDevice());
  assert.ok((await lstat(join(root, 'dev/fifo'))).isFIFO());
  assert.equal((await lstat(join(root, 'links/a'))).ino, (await lstat(join(root, 'other/c'))).ino);
  assert.equal(await readlink(join(root, 'dangling')), '/nowhere/at/all');
  assert.equal(owner(await lstat(join(root, 'dangling'))), '5:6');
  assert.deepEqual(lgetxattr(join(root, 'xattr-file'), 'user.binary'), BINARY_XATTR);
  assert.deepEqual(lgetxattr(join(root, 'xattr-dir'), 'user.dir'), Buffer.from('on a directory'));
}

/** Every kind of change a layer can hold, made in a mounted layer that holds the base tree. */
async function changeEverything(root: string): Promise<void> {
  const p = (rel: string) => join(root, rel);
  await writeFile(p('etc/hosts'), 'changed content\n');
  await unlink(p('etc/gone'));
  await rm(p('olddir'), { recursive: true });
  await mkdir(p('newdir/deeper'), { recursive: true });
  await writeFile(p('newdir/deeper/file'), 'new');
  await link(p('newdir/deeper/file'), p('newdir/hard'));
  await symlink('../etc/hosts', p('newdir/sym'));
  mknod(p('newdir/tty'), fsConstants.S_IFCHR | 0o620, makedev(4, 1));
  await chmod(p('newdir/tty'), 0o620);
  // A file becomes a directory and a directory a file.
  await unlink(p('empty'));
  await mkdir(p('empty'));
  await writeFile(p('empty/now-a-dir'), 'x');
  await rm(p('xattr-dir'), { recursive: true });
  await writeFile(p('xattr-dir'), 'now a file');
  // A directory emptied and refilled: an opaque directory in a layered driver.
  await rm(p('keep/sub'), { recursive: true });
  await mkdir(p('keep/sub'));
  await writeFile(p('keep/sub/other'), 'replaced');
  await chmod(p('setuid'), 0o755);
  await lchown(p('owned'), 77, 88);
  await chmod(p('sticky'), 0o1777);
  lsetxattr(p('xattr-file'), 'user.added', Buffer.from([0xde, 0xad, 0x00, 0xbe, 0xef]));
  lremovexattr(p('xattr-file'), 'trusted.strata');
  await rm(p('ro'), { recursive: true, force: true });
  await writeFile(p('links/b'), 'all three names see this');
  await unlink(p('dev/fifo'));
}

async function writeBytes(path: string, size: number): Promise<void> {
  const fh = await open(path, 'w');
  try {
    const chunk = randomBytes(1 << 20);
    for (let done = 0; done < size; done += chunk.length) {
      await fh.write(chunk, 0, Math.min(chunk.length, size - done));
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function owner(st: { uid: number; gid: number }): string {
  return `${st.uid}:${st.gid}`;
}

function newId(): string {
  return randomBytes(32).toString('hex');
}

function byPath(a: string, b: string): number {
  const pa = a.slice(2);
  const pb = b.slice(2);
  return pa < pb ? -1 : pa > pb ? 1 : 0;
}

/** Mount points at or below dir, shallowest first, from /proc/self/mountinfo. */
export function mountsUnder(dir: string): string[] {
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => line.split(' ')[4].replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8))))
    .filter((mnt) => mnt === dir || mnt.startsWith(prefix))
    .sort((a, b) => a.length - b.length);
}

async function walk(dir: string): Promise<{ path: string; dangling: boolean }[]> {
  const out: { path: string; dangling: boolean }[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isSymbolicLink()) {
      let dangling = false;
      try {
        await stat(path);
      } catch {
        dangling = true;
      }
      out.push({ path, dangling });
    } else {
      out.push({ path, dangling: false });
      if (entry.isDirectory()) out.push(...(await walk(path)));
    }
  }
  return out;
}
