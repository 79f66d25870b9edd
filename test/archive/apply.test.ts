import assert from 'node:assert/strict';
import { chmodSync, chownSync, createReadStream, mkdirSync, readFileSync, statSync, lstatSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { applyLayer, type WhiteoutFormat } from '../../src/archive/apply.js';
import { decompress } from '../../src/archive/compression.js';
import { lgetxattr } from '../../src/sys/linux.js';
import { corpusImage, scratch } from '../helpers/env.js';
import { diffTrees, snapshotTree } from '../helpers/tree.js';
import { D, F, tarOf, type Entry } from './tarfixtures.js';
import { runToolSync } from '../../src/sys/run.js';

/** Extract an OCI archive and list its layer blobs (bottom first) from index.json → manifest. */
export function ociLayers(archive: string, dir: string): { layout: string; layers: string[] } {
  const layout = join(dir, 'layout');
  mkdirSync(layout, { recursive: true });
  runToolSync('tar', ['-xf', archive, '-C', layout]);
  const blob = (d: string) => join(layout, 'blobs', ...d.split(':'));
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const manifest = JSON.parse(readFileSync(blob(index.manifests[0]!.digest), 'utf8')) as { layers: { digest: string }[] };
  return { layout, layers: manifest.layers.map((l) => blob(l.digest)) };
}

for (const image of ['edge', 'busybox', 'xattr', 'app']) {
  test(`snapshot apply of every ${image} layer matches umoci unpack`, async (t) => {
    const dir = scratch(t);
    const { layout, layers } = ociLayers(corpusImage(`${image}.oci.tar`), dir);
    const root = join(dir, 'root');
    mkdirSync(root);
    let total = 0;
    for (const layer of layers) {
      const { size } = await applyLayer(root, await decompress(createReadStream(layer, { highWaterMark: 1 << 20 })), { whiteouts: 'snapshot' });
      total += size;
    }
    assert.ok(total > 0);
    const bundle = join(dir, 'bundle');
    runToolSync('umoci', ['unpack', '--image', `${layout}:latest`, bundle], { ignoreStdout: true });
    const ours = await snapshotTree(root);
    const theirs = await snapshotTree(join(bundle, 'rootfs'));
    // umoci leaves the rootfs directory's own metadata as it made it.
    const diff = diffTrees(ours, theirs, { skip: (p) => p === '' });
    assert.deepEqual(diff, []);
    if (image === 'edge') {
      // the 50 MiB file of zeros became holes
      const st = statSync(join(root, 'edge', 'sizes', 'sparse-50M'));
      assert.equal(st.size, 52428800);
      assert.ok(st.blocks * 512 < 4 << 20, `sparse-50M uses ${st.blocks * 512} bytes`);
    }
  });
}

async function apply(root: string, entries: Entry[], whiteouts: WhiteoutFormat, lowers?: string[]) {
  return applyLayer(root, Readable.from([await tarOf(entries)]), { whiteouts, lowers });
}

test('snapshot format: whiteouts delete, opaque dirs keep only this layer\'s children (either order)', async (t) => {
  const dir = scratch(t);
  const root = join(dir, 'root');
  mkdirSync(root);
  await apply(root, [D('a'), F('a/keep', '1'), F('a/gone', '2'), D('a/sub'), F('a/sub/x', '3'), D('o'), F('o/old', '4'), D('o/olddir'), D('p'), F('p/old', '5')], 'snapshot');
  await apply(root, [D('a'), F('a/.wh.gone', ''), F('a/.wh.sub', ''), D('o'), F('o/.wh..wh..opq', ''), F('o/new', 'n'), D('p'), F('p/new', 'n'), F('p/.wh..wh..opq', '')], 'snapshot');
  assert.deepEqual(readdirSync(join(root, 'a')).sort(), ['keep']);
  assert.deepEqual(readdirSync(join(root, 'o')).sort(), ['new']);
  assert.deepEqual(readdirSync(join(root, 'p')).sort(), ['new']);
});

test('overlay format: whiteouts become 0/0 char devices, opaque dirs get trusted.overlay.opaque', async (t) => {
  const dir = scratch(t);
  const root = join(dir, 'root');
  mkdirSync(root);
  await apply(root, [D('a'), F('a/.wh.gone', ''), D('o'), F('o/.wh..wh..opq', ''), F('o/new', 'n')], 'overlay');
  const st = lstatSync(join(root, 'a', 'gone'));
  assert.ok(st.isCharacterDevice());
  assert.equal(st.rdev, 0);
  assert.deepEqual(lgetxattr(join(root, 'o'), 'trusted.overlay.opaque'), Buffer.from('y'));
  assert.deepEqual(readdirSync(join(root, 'o')), ['new']);
});

test('aufs format: whiteouts kept in band, AUFS metadata skipped', async (t) => {
  const dir = scratch(t);
  const root = join(dir, 'root');
  mkdirSync(root);
  await apply(root, [D('a'), F('a/.wh.gone', ''), F('a/.wh..wh..opq', ''), D('.wh..wh.plnk'), F('.wh..wh.plnk/123.456', 'x'), F('.wh..wh.aufs', '')], 'aufs');
  assert.deepEqual(readdirSync(join(root, 'a')).sort(), ['.wh..wh..opq', '.wh.gone']);
  assert.deepEqual(readdirSync(root).sort(), ['a']);
});

test('layered formats copy up a hardlink target that lives in a lower layer', async (t) => {
  const dir = scratch(t);
  const lower = join(dir, 'lower');
  const root = join(dir, 'root');
  mkdirSync(join(lower, 'd'), { recursive: true });
  mkdirSync(root);
  writeFileSync(join(lower, 'd', 'target'), 'lower content');
  await apply(root, [D('x'), [{ name: 'x/link', type: 'hardlink', linkname: 'd/target', mode: 0o600, uid: 7, gid: 8, size: 0, mtime: 1000 }]], 'overlay', [lower]);
  assert.equal(readFileSync(join(root, 'x', 'link'), 'utf8'), 'lower content');
  assert.equal(statSync(join(root, 'x', 'link')).uid, 7);
  await assert.rejects(
    apply(join(dir, 'root'), [[{ name: 'y', type: 'hardlink', linkname: 'd/missing', mode: 0o600, uid: 0, gid: 0, size: 0, mtime: 0 }]], 'overlay', [lower]),
    /points to a missing file/,
  );
});

test('type changes: file -> dir, dir -> file, dir merged with dir keeps children', async (t) => {
  const dir = scratch(t);
  const root = join(dir, 'root');
  mkdirSync(root);
  await apply(root, [F('f', 'x'), D('d'), F('d/child', 'c'), D('m', { mode: 0o700 }), F('m/keep', 'k')], 'snapshot');
  await apply(root, [D('f'), F('d', 'now a file'), D('m', { mode: 0o1777, uid: 1, gid: 2 })], 'snapshot');
  assert.ok(statSync(join(root, 'f')).isDirectory());
  assert.equal(readFileSync(join(root, 'd'), 'utf8'), 'now a file');
  const m = statSync(join(root, 'm'));
  assert.equal(m.mode & 0o7777, 0o1777);
  assert.equal(m.uid, 1);
  assert.equal(readFileSync(join(root, 'm', 'keep'), 'utf8'), 'k');
});

test('owners and modes as the archive says, also where creating a file alone would not give them', async (t) => {
  const dir = scratch(t);
  const root = join(dir, 'root');
  mkdirSync(root);
  // A setgid dir passes its group to files made in it; an existing setgid dir (from a lower
  // snapshot) and one made implicitly under it do too; the umask strips bits a mode may want.
  mkdirSync(join(root, 'lower-sgid'));
  chownSync(join(root, 'lower-sgid'), 0, 4321);
  chmodSync(join(root, 'lower-sgid'), 0o2775);
  const old = process.umask(0o027);
  try {
    await apply(
      root,
      [
        D('sgid', { mode: 0o2755, gid: 1234 }),
        F('sgid/f', 'x'),
        D('sgid/sub'),
        [{ name: 'sgid/link', type: 'symlink', linkname: 'f', mode: 0o777, uid: 0, gid: 0, size: 0, mtime: 1000 }],
        D('plain'),
        F('plain/f', 'x', { mode: 0o640 }),
        F('plain/wide', 'x', { mode: 0o666 }),
        F('plain/other', 'x', { uid: 5, gid: 6 }),
        F('plain/setuid', 'x', { mode: 0o4755 }),
        F('lower-sgid/f', 'x'),
        F('lower-sgid/implicit/f', 'x'),
      ],
      'snapshot',
    );
  } finally {
    process.umask(old);
  }
  const want: [string, number, number, number][] = [
    ['sgid/f', 0o644, 0, 0],
    ['sgid/sub', 0o755, 0, 0],
    ['sgid/link', 0o777, 0, 0],
    ['plain/f', 0o640, 0, 0],
    ['plain/wide', 0o666, 0, 0],
    ['plain/other', 0o644, 5, 6],
    ['plain/setuid', 0o4755, 0, 0],
    ['lower-sgid/f', 0o644, 0, 0],
    ['lower-sgid/implicit/f', 0o644, 0, 0],
  ];
  for (const [name, mode, uid, gid] of want) {
    const st = lstatSync(join(root, name));
    assert.deepEqual([st.mode & 0o7777, st.uid, st.gid], [mode, uid, gid], name);
  }
});
