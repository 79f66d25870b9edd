import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Overlay2Driver } from '../../src/drivers/overlay2/overlay2.js';
import { lsetxattr, makedev, mknod, mount, umount2 } from '../../src/sys/linux.js';
import { NaiveDiff } from '../../src/drivers/common/naivediff.js';
import { upperChanges } from '../../src/drivers/overlay/upper-changes.js';
import { filesAt, setupInitLayer } from '../../src/store/initlayer.js';
import { isOverlayXattr } from '../../src/sys/rootless.js';
import { diffTrees, snapshotTree } from '../helpers/tree.js';
import { isMountPoint, readMounts } from '../../src/sys/mountinfo.js';
import { conformance } from './conformance.js';
import { chain, driverRoot, hashTree, stackCorpusLayers, runChild } from './overlay-fixtures.js';

const S_IFCHR = 0o020000;
const newId = () => randomBytes(32).toString('hex');
const open = (root: string, options: Record<string, string> = {}) => Overlay2Driver.open({ root, options });

conformance('overlay2', { driver: 'overlay2' }, { deep: 500 });
// The same scenarios with every mount made by mount(2) (relative paths past a page).
conformance('overlay2 (mount(2) only)', { driver: 'overlay2', options: { 'overlay2.mountapi': 'mount' } });

describe('overlay2 layout', () => {
  it('lays layers out like Docker: 0710 dirs, 26-character links, lower parent first', async (t) => {
    const root = driverRoot(t);
    const d = await open(root);
    const [a, b, c] = [newId(), newId(), newId()];
    await d.create(a, null);
    await d.create(b, a);
    await d.createReadWrite(c, b);
    const home = join(root, 'overlay2');
    assert.equal(lstatSync(home).mode & 0o777, 0o710);
    assert.equal(lstatSync(join(home, a)).mode & 0o777, 0o710);
    const link = (id: string) => readFileSync(join(home, id, 'link'), 'utf8');
    for (const id of [a, b, c]) {
      assert.match(link(id), /^[A-Z2-7]{26}$/);
      assert.equal(readlinkSync(join(home, 'l', link(id))), `../${id}/diff`);
    }
    assert.equal(existsSync(join(home, a, 'lower')), false, 'a base layer has no lower file');
    assert.equal(existsSync(join(home, a, 'work')), false);
    assert.equal(readFileSync(join(home, b, 'lower'), 'utf8'), `l/${link(a)}`);
    assert.equal(readFileSync(join(home, c, 'lower'), 'utf8'), `l/${link(b)}:l/${link(a)}`);
    assert.equal(lstatSync(join(home, c, 'work')).isDirectory(), true);
  });

  it('serves a base layer from its diff dir without mounting', async (t) => {
    const d = await open(driverRoot(t));
    const a = newId();
    await d.create(a, null);
    const p = await d.get(a);
    assert.equal(p, (await d.metadata(a)).UpperDir);
    assert.equal(isMountPoint(p), false);
    await d.put(a);
  });

  it('reports LowerDir/UpperDir/WorkDir/MergedDir as GraphDriver.Data', async (t) => {
    const root = driverRoot(t);
    const d = await open(root);
    const [a, b, c] = [newId(), newId(), newId()];
    await d.create(a, null);
    await d.create(b, a);
    await d.createReadWrite(c, b);
    const home = join(root, 'overlay2');
    assert.deepEqual(await d.metadata(c), {
      LowerDir: `${home}/${b}/diff:${home}/${a}/diff`,
      MergedDir: `${home}/${c}/merged`,
      UpperDir: `${home}/${c}/diff`,
      WorkDir: `${home}/${c}/work`,
    });
    assert.deepEqual(await d.metadata(a), { UpperDir: `${home}/${a}/diff` });
  });

  it('prints the docker info rows', async (t) => {
    const d = await open(driverRoot(t));
    const rows = new Map(await d.status());
    assert.deepEqual([...rows.keys()], ['Backing Filesystem', 'Supports d_type', 'Native Overlay Diff', 'userxattr']);
    assert.equal(rows.get('Backing Filesystem'), 'extfs');
    assert.equal(rows.get('Supports d_type'), 'true');
    // This kernel has redirect_dir and metacopy off, so Docker's check passes.
    const redirect = readFileSync('/sys/module/overlay/parameters/redirect_dir', 'utf8').trim();
    assert.equal(rows.get('Native Overlay Diff'), String(redirect === 'N'));
    assert.equal(rows.get('userxattr'), 'false');
    assert.deepEqual(readdirSync(join(d.home)).filter((n) => n.startsWith('native-diff-check')), []);
  });

  it('refuses quotas clearly', async (t) => {
    const root = driverRoot(t);
    const d = await open(root);
    await assert.rejects(d.createReadWrite(newId(), null, { storageOpt: { size: '10M' } }), /--storage-opt is supported only for overlay over xfs with 'pquota' mount option$/);
    await assert.rejects(open(root, { 'overlay2.size': '10G' }), /overlay2.size needs xfs project quota/);
    await assert.rejects(open(root, { 'overlay2.bogus': '1' }), /unknown option overlay2.bogus/);
  });

  it('refuses to remove a layer others are built on; remove unmounts and drops the link', async (t) => {
    const root = driverRoot(t);
    const d = await open(root);
    const [a, b] = await chain(d, 2);
    await assert.rejects(d.remove(a), /cannot remove layer .*1 layer\(s\) are built on it/);
    const merged = await d.get(b);
    await d.get(b);
    assert.equal(isMountPoint(merged), true);
    const link = readFileSync(join(d.home, b, 'link'), 'utf8');
    await d.remove(b);
    assert.equal(isMountPoint(merged), false);
    assert.equal(existsSync(join(d.home, b)), false);
    assert.equal(existsSync(join(d.home, 'l', link)), false);
    assert.equal(await d.exists(b), false);
    await d.remove(a);
    assert.deepEqual(readdirSync(join(d.home, 'l')), []);
  });
});

describe('overlay2 mounts', () => {
  it('mounts through 500 layers (499 lowers) past the page limit, and 501 lowers through a stack', async (t) => {
    const d = await open(driverRoot(t));
    const ids = await chain(d, 500);
    // A whiteout half way down hides f0.
    mknod(join((await d.metadata(ids[250])).UpperDir, 'f0'), S_IFCHR | 0o000, makedev(0, 0));
    const top = ids[499];
    const merged = await d.get(top);
    try {
      const names = readdirSync(merged);
      assert.equal(names.length, 500, 'f1..f499 and top');
      assert.equal(names.includes('f0'), false);
      assert.equal(readFileSync(join(merged, 'top'), 'utf8'), '499');
      assert.equal(readFileSync(join(merged, 'f1'), 'utf8'), '1');
      const m = readMounts().find((e) => e.mountPoint === merged);
      assert.equal(m?.fsType, 'overlay');
    } finally {
      await d.put(top);
    }
    assert.equal(isMountPoint(merged), false);
    // One more lower than the kernel takes: the deepest 500 are mounted as a read-only stack
    // (test/drivers/overlay2-deep.test.ts has the deep cases and the refusal past 999).
    const extra = newId();
    await d.create(extra, top); // 500 lowers: one overlay
    const past = newId();
    await d.create(past, extra); // 501 lowers
    const view = await d.get(past);
    try {
      assert.equal(readdirSync(view).length, 500);
      assert.equal(isMountPoint(join(d.home, top, 'stack')), true);
    } finally {
      await d.put(past);
    }
    assert.deepEqual(readMounts().filter((e) => e.mountPoint.startsWith(d.home)), []);
  });

  it('mounts 130 layers with mount(2), relative paths from the home', async (t) => {
    const d = await open(driverRoot(t), { 'overlay2.mountapi': 'mount' });
    const ids = await chain(d, 130);
    const merged = await d.get(ids[129]);
    try {
      assert.equal(readdirSync(merged).length, 131);
      assert.equal(readFileSync(join(merged, 'top'), 'utf8'), '129');
    } finally {
      await d.put(ids[129]);
    }
    assert.equal(isMountPoint(merged), false);
    assert.equal(process.cwd().startsWith(d.home), false, 'cwd restored');
  });

  it('mounts a short stack with mount(2) and host paths, like Docker', async (t) => {
    const d = await open(driverRoot(t));
    const ids = await chain(d, 3);
    const merged = await d.get(ids[2]);
    try {
      assert.equal(readFileSync(join(merged, 'top'), 'utf8'), '2');
      assert.equal(readMounts().find((e) => e.mountPoint === merged)?.fsType, 'overlay');
    } finally {
      await d.put(ids[2]);
    }
  });

  it('takes a count whose mount vanished as zero, and cleanup unmounts what nobody holds', async (t) => {
    const root = driverRoot(t);
    const d = await open(root);
    const [, b, c] = await chain(d, 3);
    const merged = await d.get(b);
    await d.get(b);
    umount2(merged); // as a reboot would
    assert.equal(await d.get(b), merged);
    assert.equal(isMountPoint(merged), true, 'remounted although the file said 2');
    await d.put(b);
    assert.equal(isMountPoint(merged), false);

    // A mount with no record (a process died between mounting and writing the count).
    const mc = (await d.metadata(c)).MergedDir;
    mkdirSync(mc, { recursive: true });
    const meta = await d.metadata(c);
    mount('overlay', mc, 'overlay', 0, `lowerdir=${meta.LowerDir},upperdir=${meta.UpperDir},workdir=${meta.WorkDir}`);
    // One reference held by another process, one disowned by this one, one just held here.
    const body = `
      const d = await mod.Overlay2Driver.open({ root: args[0], options: {} });
      if (args[2] === 'get') console.log(await d.get(args[1])); else await d.put(args[1]);`;
    const held = runChild('src/drivers/overlay2/overlay2.js', body, [root, b, 'get']);
    const [x, y] = [newId(), newId()];
    await d.createReadWrite(x, c);
    await d.createReadWrite(y, c);
    const kept = await d.get(x);
    d.disown(x);
    const mine = await d.get(y);
    await d.cleanup();
    assert.equal(isMountPoint(mc), false, 'stray mount removed');
    assert.equal(isMountPoint(held), true, "another process's mount stays");
    assert.equal(isMountPoint(kept), true, 'a disowned mount stays');
    assert.equal(isMountPoint(mine), false, "this process's own references are dropped");
    runChild('src/drivers/overlay2/overlay2.js', body, [root, b, 'put']);
    await d.put(x);
    assert.equal(isMountPoint(held), false);
    assert.equal(isMountPoint(kept), false);
  });
});

describe('overlay2 copy-on-write', () => {
  it('a write in a container lands in its diff only; the image layers are unchanged', async (t) => {
    const root = driverRoot(t);
    const d = await open(root);
    const layers = await stackCorpusLayers(t, d, 'nginx.oci.tar');
    const diffOf = async (id: string) => (await d.metadata(id)).UpperDir;
    const before = await Promise.all(layers.map(async (id) => hashTree(await diffOf(id))));

    const init = `${newId()}-init`;
    const rw = newId();
    await d.createReadWrite(init, layers.at(-1) as string);
    await d.createReadWrite(rw, init);
    assert.deepEqual(readdirSync(await diffOf(rw)), [], 'a new container layer is empty');
    const merged = await d.get(rw);
    let conf: Buffer;
    try {
      conf = readFileSync(join(merged, 'etc/nginx/nginx.conf'));
      const marker = `strata-cow-${randomBytes(8).toString('hex')}`;
      writeFileSync(join(merged, 'etc/nginx/nginx.conf'), Buffer.concat([conf, Buffer.from(marker)]));
      writeFileSync(join(merged, 'new-file'), marker);
      const upper = await diffOf(rw);
      assert.equal(readFileSync(join(upper, 'etc/nginx/nginx.conf'), 'utf8').endsWith(marker), true);
      assert.equal(readFileSync(join(upper, 'new-file'), 'utf8'), marker);
      for (const id of [...layers, init]) {
        const grep = (dir: string): boolean =>
          readdirSync(dir, { recursive: true, withFileTypes: true }).some(
            (e) => e.isFile() && readFileSync(join(e.parentPath, e.name)).includes(marker),
          );
        assert.equal(grep(await diffOf(id)), false, `marker leaked into layer ${id}`);
      }
    } finally {
      await d.put(rw);
    }
    const after = await Promise.all(layers.map(async (id) => hashTree(await diffOf(id))));
    assert.deepEqual(after, before);
    // As Docker 20.10's docker diff on overlay2 (a tree comparison): the directories above a
    // changed file are C too.
    const changes = await d.changes(rw, init);
    assert.deepEqual(
      changes.map((c) => `${c.kind} ${c.path}`),
      ['C /etc', 'C /etc/nginx', 'C /etc/nginx/nginx.conf', 'A /new-file'],
    );
    assert.ok(conf.length > 0);
  });
});

describe('overlay2 changes without mounting', () => {
  it('the upper-dir walk lists exactly what comparing the mounted trees lists', async (t) => {
    const root = driverRoot(t);
    const d = await open(root);
    const naive = new NaiveDiff(d);
    const [base, mid, init, rw] = [newId(), newId(), `${newId()}-init`, newId()];
    await d.create(base, null);
    const b = await d.get(base);
    for (const dir of ['etc/deep/er', 'nest/in', 'gone', 'opq/sub', 'todir', 'keep', 'usr/bin']) mkdirSync(join(b, dir), { recursive: true });
    for (const f of ['etc/passwd', 'etc/deep/er/f', 'gone/x', 'opq/a', 'opq/sub/b', 'keep/k', 'usr/bin/sh', 'nest/in/f', 'tofile']) writeFileSync(join(b, f), f);
    symlinkSync('passwd', join(b, 'etc/link'));
    await d.put(base);
    await d.createReadWrite(mid, base);
    // The kernel writes mid's whiteouts and opaque dir.
    const m = await d.get(mid);
    try {
      rmSync(join(m, 'gone'), { recursive: true });
      rmSync(join(m, 'opq'), { recursive: true });
      mkdirSync(join(m, 'opq'));
      writeFileSync(join(m, 'opq/new'), 'n');
      rmSync(join(m, 'keep/k'));
    } finally {
      await d.put(mid);
    }
    await d.createReadWrite(init, mid);
    await d.createReadWrite(rw, init);
    const r = await d.get(rw);
    try {
      writeFileSync(join(r, 'etc/passwd'), 'changed');
      chmodSync(join(r, 'usr/bin/sh'), 0o755);
      chownSync(join(r, 'etc/deep/er/f'), 0, 0); // a copy-up with the same metadata
      rmSync(join(r, 'etc/link'));
      symlinkSync('elsewhere', join(r, 'etc/link'));
      rmSync(join(r, 'todir'), { recursive: true });
      writeFileSync(join(r, 'todir'), 'now a file');
      rmSync(join(r, 'tofile'));
      mkdirSync(join(r, 'tofile/inside'), { recursive: true });
      rmSync(join(r, 'opq'), { recursive: true });
      mkdirSync(join(r, 'opq'));
      writeFileSync(join(r, 'opq/a'), 'again');
      mkdirSync(join(r, 'fresh/a/b'), { recursive: true });
      writeFileSync(join(r, 'fresh/a/b/c'), 'c');
      mkdirSync(join(r, 'gone'));
      // Below an opaque dir, a dir the upper dir has shows nothing of the lower one.
      rmSync(join(r, 'nest'), { recursive: true });
      mkdirSync(join(r, 'nest/in'), { recursive: true });
      lsetxattr(join(r, 'keep'), 'user.note', Buffer.from('x'));
      rmSync(join(r, 'usr'), { recursive: true });
    } finally {
      await d.put(rw);
    }
    const text = (cs: { kind: string; path: string }[]) => cs.map((c) => `${c.kind} ${c.path}`);
    for (const [id, parent] of [
      [rw, init],
      [mid, base],
      [base, null],
    ] as const) {
      const meta = await d.metadata(id);
      const walked = text(await upperChanges(meta.UpperDir!, meta.LowerDir?.split(':') ?? []));
      assert.deepEqual(walked, text(await naive.changes(id, parent)));
      assert.deepEqual(text(await d.changes(id, parent)), walked);
      assert.ok(walked.length > 0);
    }
    assert.deepEqual(text(await d.changes(rw, init)), [
      'C /etc',
      'C /etc/link',
      'C /etc/passwd',
      'A /fresh',
      'A /fresh/a',
      'A /fresh/a/b',
      'A /fresh/a/b/c',
      'A /gone',
      'C /keep',
      'C /nest',
      'C /nest/in',
      'D /nest/in/f',
      'C /opq',
      'A /opq/a',
      'D /opq/new',
      'C /todir',
      'C /tofile',
      'A /tofile/inside',
      'D /usr',
    ]);
    // The same-metadata copy-up is in the upper dir, and listed by neither.
    assert.equal(existsSync(join(root, 'overlay2', rw, 'diff/etc/deep/er/f')), true);
    assert.equal(isMountPoint(join(root, 'overlay2', rw, 'merged')), false);
  });
});

describe('overlay2 -init layer without mounting', () => {
  it('writes the same view and upper dir as writing through the mounted layer', async (t) => {
    const root = driverRoot(t);
    const d = await open(root);
    const [base, mid, viaMount, direct] = [newId(), newId(), `${newId()}-init`, `${newId()}-init`];
    await d.create(base, null);
    const b = await d.get(base);
    mkdirSync(join(b, 'etc'), { mode: 0o750 });
    chownSync(join(b, 'etc'), 1, 2);
    lsetxattr(join(b, 'etc'), 'user.k', Buffer.from('v'));
    mkdirSync(join(b, 'proc'));
    writeFileSync(join(b, 'etc/hosts'), 'image hosts');
    symlinkSync('/elsewhere', join(b, 'sys'));
    await d.put(base);
    await d.createReadWrite(mid, base);
    const m = await d.get(mid);
    try {
      rmSync(join(m, 'proc'), { recursive: true }); // a whiteout the init layer must see through
    } finally {
      await d.put(mid);
    }
    for (const id of [viaMount, direct]) await d.createReadWrite(id, mid);
    const mounted = await d.get(viaMount);
    try {
      await setupInitLayer(filesAt(mounted));
    } finally {
      await d.put(viaMount);
    }
    const files = await d.unmountedFiles(direct);
    assert.ok(files);
    await setupInitLayer(files);
    assert.equal(isMountPoint(join(root, 'overlay2', direct, 'merged')), false);

    const upper = async (id: string) => snapshotTree((await d.metadata(id)).UpperDir!, { times: 'none', ignoreXattr: isOverlayXattr });
    assert.deepEqual(diffTrees(await upper(viaMount), await upper(direct)), []);
    const view = async (id: string) => {
      try {
        return await snapshotTree(await d.get(id), { times: 'none' });
      } finally {
        await d.put(id);
      }
    };
    const [a, c] = [await view(viaMount), await view(direct)];
    assert.deepEqual(diffTrees(a, c), []);
    assert.equal(c.get('etc')?.mode, 0o750);
    assert.equal(c.get('etc')?.xattrs['user.k'], Buffer.from('v').toString('hex'));
    assert.equal(c.get('proc')?.type, 'dir');
    assert.equal(c.get('etc/hosts')?.size, 'image hosts'.length);
    assert.equal(c.get('sys')?.type, 'symlink');
  });
});
