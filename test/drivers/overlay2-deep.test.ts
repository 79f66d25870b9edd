// Chains deeper than the kernel's 500 lower dirs (issue #13). On overlay2 a view mounts the
// deepest 500 layers as one read-only overlay (`<ancestor>/stack`) and that mount as one lower;
// fuse-overlayfs takes the whole chain in one mount. One chain of 1000 layers per driver (one
// small file each, written straight into the upper dirs) is made once and shared by the cases.
// The roots are on tmpfs (/dev/shm): what is tested is the stacking, not the backing
// filesystem, and there the layout's fsyncs cost nothing (a 1000-layer chain takes 2 s, not 26).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { appendFile, mkdir, rm, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Driver } from '../../src/drivers/driver.js';
import { fuseOverlayUnusable } from '../../src/drivers/common/fuse.js';
import { FuseOverlayDriver } from '../../src/drivers/fuse-overlayfs/fuseoverlay.js';
import { Overlay2Driver } from '../../src/drivers/overlay2/overlay2.js';
import { MAX_DEPTH, MAX_LOWERS } from '../../src/drivers/overlay/layout.js';
import { VfsDriver } from '../../src/drivers/vfs/vfs.js';
import { FAULT_ENV } from '../../src/sys/fault.js';
import { lsetxattr, makedev, mknod, MNT_DETACH, umount2 } from '../../src/sys/linux.js';
import { isMountPoint, mountsUnder } from '../../src/sys/mountinfo.js';
import { overlay2Available } from '../helpers/registry.js';
import { gnuTar } from './fixtures.js';
import { childScript, driverRoot, hashTree } from './overlay-fixtures.js';
import { spawnSync } from 'node:child_process';

const S_IFCHR = 0o020000;
const SHM = '/dev/shm';
const LAYERS = MAX_DEPTH + 1; // the top one has the most lower layers a layer may have
const newId = () => randomBytes(32).toString('hex');

/**
 * Layer i holds f<i> = "i". Deep inside the stack part (layer 2, then 5): a file `gone` that a
 * whiteout deletes and a dir `d` that an opaque dir replaces; above the stack, layer 800 deletes
 * f10, which lives in the stack.
 */
async function deepChain(d: Driver): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < LAYERS; i++) {
    const id = newId();
    await d.create(id, ids.at(-1) ?? null);
    const upper = join(d.home, id, 'diff');
    writeFileSync(join(upper, `f${i}`), String(i));
    if (i === 2) {
      writeFileSync(join(upper, 'gone'), 'gone');
      mkdirSync(join(upper, 'd'));
      writeFileSync(join(upper, 'd', 'old'), 'old');
    }
    if (i === 5) {
      mknod(join(upper, 'gone'), S_IFCHR, makedev(0, 0));
      mkdirSync(join(upper, 'd'));
      lsetxattr(join(upper, 'd'), 'trusted.overlay.opaque', Buffer.from('y'));
      writeFileSync(join(upper, 'd', 'new'), 'new');
    }
    if (i === 800) mknod(join(upper, 'f10'), S_IFCHR, makedev(0, 0));
    ids.push(id);
  }
  return ids;
}

/** The names a view of a layer on top of layer `top` of the chain must show at its root. */
function expectedRoot(top: number): string[] {
  const names = ['d'];
  for (let i = 0; i <= top; i++) if (!(i === 10 && top >= 800)) names.push(`f${i}`);
  return names.sort();
}

/** A child that takes a reference on id, killed by STRATA_FAULT at its Nth rename if that comes first. */
const CHILD_GET = `
  const d = await mod.Overlay2Driver.open({ root: args[0], options: {} });
  const { processIdentity } = await import(args[2]);
  console.log(processIdentity());
  await d.get(args[1]);
  process.kill(process.pid, 'SIGKILL');`;

describe('overlay2: chains deeper than the kernel takes', { skip: !(await overlay2Available()) && 'no kernel overlay here' }, () => {
  let root: string;
  let d: Overlay2Driver;
  let ids: string[];
  const stackOf = (i: number) => join(d.home, ids[i]!, 'stack');

  before(async () => {
    root = driverRoot(null, 'strata-deep-', SHM);
    d = await Overlay2Driver.open({ root, options: {} });
    ids = await deepChain(d);
  });
  after(async () => {
    await d.cleanup();
    assert.deepEqual(mountsUnder(root), [], 'cleanup leaves nothing mounted');
    // driverRoot(null) is undone at exit: do it now, and check no mount was left.
    await rm(root, { recursive: true, force: true });
  });

  it(`refuses a layer with more than ${MAX_DEPTH} lower layers in one line, leaving nothing`, async () => {
    const before = readdirSync(d.home).sort();
    const id = newId();
    await assert.rejects(d.create(id, ids.at(-1)!), (err: Error) => {
      assert.match(err.message, new RegExp(`^max depth exceeded: layer ${id} would have 1000 lower layers, at most 999 can be mounted`));
      assert.doesNotMatch(err.message, /\n/);
      return true;
    });
    await assert.rejects(d.createReadWrite(newId(), ids.at(-1)!), /max depth exceeded/);
    assert.deepEqual(readdirSync(d.home).sort(), before);
  });

  it('mounts views through one shared read-only stack of the deepest 500 layers', async () => {
    const [c1, c2] = [newId(), newId()];
    await d.createReadWrite(c1, ids[998]!); // 999 lowers: 499 direct and the stack
    await d.createReadWrite(c2, ids[600]!);
    const v1 = await d.get(c1);
    const v2 = await d.get(c2);
    const stack = stackOf(MAX_LOWERS - 1);
    assert.deepEqual(mountsUnder(d.home).sort(), [join(d.home, c1, 'merged'), join(d.home, c2, 'merged'), stack].sort());
    assert.deepEqual(readdirSync(stack).sort(), expectedRoot(MAX_LOWERS - 1), 'the stack is layers 0..499 merged');
    assert.deepEqual(readdirSync(v1).sort(), expectedRoot(998), 'a whiteout above the stack hides a file inside it');
    assert.deepEqual(readdirSync(v2).sort(), expectedRoot(600));
    for (const v of [v1, v2]) {
      assert.deepEqual(readdirSync(join(v, 'd')), ['new'], 'an opaque dir deep in the stack still hides what is below it');
      assert.equal(readFileSync(join(v, 'f0'), 'utf8'), '0');
      assert.equal(readFileSync(join(v, 'f499'), 'utf8'), '499');
      assert.equal(readFileSync(join(v, 'f500'), 'utf8'), '500');
    }
    // A read-only image layer deeper than 500 mounts the same way.
    const image = await d.get(ids[700]!);
    assert.deepEqual(readdirSync(image).sort(), expectedRoot(700));
    await d.put(ids[700]!);
    await d.put(c1);
    assert.equal(isMountPoint(stack), true, 'c2 still stands on the stack');
    await d.put(c2);
    assert.deepEqual(mountsUnder(d.home), [], 'the last view to go takes the stack with it');
    await d.remove(c1);
    await d.remove(c2);
  });

  it('a view mounted again after its mount vanished still lets the stack go with the last view', async () => {
    const [c1, c2] = [newId(), newId()];
    await d.createReadWrite(c1, ids[998]!);
    await d.createReadWrite(c2, ids[998]!);
    const v1 = await d.get(c1);
    await d.get(c2);
    umount2(v1, MNT_DETACH); // someone else's umount: c1's count is now taken as 0
    assert.equal(await d.get(c1), v1);
    await d.put(c1);
    assert.equal(isMountPoint(stackOf(MAX_LOWERS - 1)), true, 'c2 still holds the stack');
    await d.put(c2);
    assert.deepEqual(mountsUnder(d.home), [], 'nothing held for c1 outlives its put');
    await d.remove(c1);
    await d.remove(c2);
  });

  it('copies up from the stack; changes and a commit match vfs on the same tree', async (t) => {
    const top = ids[998]!;
    const vroot = driverRoot(t, 'strata-deep-vfs-', SHM);
    const vfs = await VfsDriver.open({ root: vroot, options: {} });
    // vfs's base: the deep image's merged tree as one layer.
    const vbase = newId();
    await vfs.create(vbase, null);
    try {
      await vfs.applyDiff(vbase, null, gnuTar(await d.get(top)));
    } finally {
      await d.put(top);
    }
    const change = async (v: string) => {
      await appendFile(join(v, 'f7'), '+'); // copy-up of a file inside the stack
      await appendFile(join(v, 'd', 'new'), '+'); // copy-up inside the opaque dir
      await unlink(join(v, 'f20')); // a deletion of a file inside the stack
      await unlink(join(v, 'f900')); // and of one above it
      await rm(join(v, 'd'), { recursive: true });
      await mkdir(join(v, 'd'));
      await writeFile(join(v, 'd', 'again'), 'again');
      await mkdir(join(v, 'fresh', 'x'), { recursive: true });
    };
    const [c, vc] = [newId(), newId()];
    await d.createReadWrite(c, top);
    await vfs.createReadWrite(vc, vbase);
    const ov = await d.get(c);
    const vv = await vfs.get(vc);
    try {
      await change(ov);
      await change(vv);
      assert.equal(readFileSync(join(d.home, c, 'diff', 'f7'), 'utf8'), '7+', 'copied up into the container upper dir');
      assert.equal(readFileSync(join(d.home, ids[7]!, 'diff', 'f7'), 'utf8'), '7', 'the image layer is untouched');
      assert.equal(hashTree(ov), hashTree(vv), 'the two views hold the same tree');
    } finally {
      await d.put(c);
      await vfs.put(vc);
    }
    const sorted = (cs: { kind: string; path: string }[]) => cs.map((x) => `${x.kind} ${x.path}`).sort();
    assert.deepEqual(sorted(await d.changes(c, top)), sorted(await vfs.changes(vc, vbase)));
    // Commit: each driver's diff applied as a new layer on its parent gives the same tree.
    const [oc, vcm] = [newId(), newId()];
    await d.create(oc, top);
    await d.applyDiff(oc, top, await d.diff(c, top));
    await vfs.create(vcm, vbase);
    await vfs.applyDiff(vcm, vbase, await vfs.diff(vc, vbase));
    try {
      assert.equal(hashTree(await d.get(oc)), hashTree(await vfs.get(vcm)));
    } finally {
      await d.put(oc);
      await vfs.put(vcm);
    }
    assert.deepEqual(mountsUnder(d.home), []);
    await d.remove(oc);
    await d.remove(c);
  });

  it('a get killed after each of its steps (STRATA_FAULT=rename:N) leaves nothing mounted once recovered', async () => {
    const c = newId();
    await d.createReadWrite(c, ids[998]!);
    const identity = new URL(`file://${join(process.cwd(), 'dist', 'src', 'sys', 'process.js')}`).href;
    // A get writes the stack's state, then the view's: N=1 dies with the stack mounted and
    // held by a view that was never mounted; N=2 with both mounted and recorded; N=3 completes.
    for (const n of [1, 2, 3]) {
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', childScript('src/drivers/overlay2/overlay2.js', CHILD_GET), root, c, identity], {
        encoding: 'utf8',
        env: { ...process.env, [FAULT_ENV]: `rename:${n}` },
      });
      assert.equal(r.signal, 'SIGKILL', r.stderr);
      assert.ok(mountsUnder(d.home).includes(stackOf(MAX_LOWERS - 1)), `rename:${n}: the child got as far as the stack`);
      // What the store does at open after a crash: drop the dead process's references, then
      // repair the leftovers check finds.
      await d.releaseCrashed([r.stdout.trim()]);
      for (const l of (await d.inventory()).leftovers) await l.remove();
      assert.deepEqual(mountsUnder(d.home), [], `rename:${n}: nothing left mounted`);
      // And the view mounts again, whole.
      const v = await d.get(c);
      assert.deepEqual(readdirSync(v).sort(), expectedRoot(998));
      await d.put(c);
      assert.deepEqual(mountsUnder(d.home), []);
    }
    await d.remove(c);
  });
});

describe('fuse-overlayfs: chains deeper than the kernel takes', { skip: fuseOverlayUnusable(SHM) ?? false }, () => {
  it(`mounts a view of ${MAX_DEPTH} lower layers in one mount, and refuses one more`, async (t) => {
    const d = await FuseOverlayDriver.open({ root: driverRoot(t, 'strata-deep-fuse-', SHM), options: {} });
    try {
      const ids = await deepChain(d);
      await assert.rejects(d.create(newId(), ids.at(-1)!), /^DriverError: max depth exceeded: .* 1000 lower layers, at most 999/);
      const c = newId();
      await d.createReadWrite(c, ids[998]!);
      const v = await d.get(c);
      try {
        assert.deepEqual(mountsUnder(d.home), [v], 'one mount, no stack');
        assert.deepEqual(readdirSync(v).sort(), expectedRoot(998));
        assert.deepEqual(readdirSync(join(v, 'd')), ['new']);
        await appendFile(join(v, 'f7'), '+');
        assert.equal(readFileSync(join(d.home, c, 'diff', 'f7'), 'utf8'), '7+');
      } finally {
        await d.put(c);
      }
    } finally {
      // Here, not in a hook: driverRoot's hook, added first, runs first and removes the root.
      await d.cleanup();
    }
    assert.deepEqual(mountsUnder(d.home), []);
  });
});
