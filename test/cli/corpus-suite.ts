// End-to-end checks of the foundation through the real CLI, for one storage driver:
// every corpus image loads and a fresh container's root equals `umoci unpack`'s rootfs;
// diff/commit/export; save accepted by skopeo and umoci; a save -> load round trip.
import assert from 'node:assert/strict';
import { chmodSync, lstatSync, mkdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { diffTrees, snapshotTree, type Node } from '../helpers/tree.js';
import { INIT_PATHS, strataIn, umociRootfs } from '../helpers/cli.js';
import { corpusImage, scratch } from '../helpers/env.js';
import { unmountAllUnder } from '../helpers/mounts.js';
import { runToolSync } from '../../src/sys/run.js';

/** Every corpus OCI image, and the layers each adds to a store that already holds the ones before it. */
const OCI_IMAGES: [name: string, newLayers: number][] = [
  ['busybox', 1],
  ['nginx', 7],
  ['edge', 20], // busybox's layer + 20
  ['deep', 129], // busybox's layer + 129
  ['multiarch', 1], // buildah's own tar of the same files: a layer of its own
  ['app', 3],
  ['xattr', 1],
  ['busybox-zstd', 0], // the same layer as busybox, zstd-compressed
];

/** The images a quick run covers (every layer feature, but not the big or the 130-layer image). */
const QUICK = new Set(['busybox', 'edge', 'multiarch', 'xattr', 'busybox-zstd']);

export interface CorpusSuiteOptions {
  cleanup?: (root: string) => void;
  /**
   * 'full' (default): every corpus image. 'quick': the QUICK set, for drivers whose CI time
   * would otherwise dominate (each is also covered by its own conformance suite).
   */
  scope?: 'full' | 'quick';
}

/**
 * A container root's snapshot made comparable with umoci's rootfs: without the init layer's
 * additions that the image lacks, and without directory mtimes (the init layer touches /, /etc
 * and /dev; layer tars and umoci disagree on directory times anyway).
 */
function comparable(tree: Map<string, Node>, reference?: Map<string, Node>): Map<string, Node> {
  const out = new Map<string, Node>();
  for (const [p, n] of tree) {
    if (reference && INIT_PATHS.includes(`/${p}`) && !reference.has(p)) continue;
    out.set(p, n.type === 'dir' ? { ...n, mtime: 0 } : n);
  }
  return out;
}

/** Whether a path exists, without following a final symlink (busybox's applets are absolute links). */
function present(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

export function corpusSuite(driver: string, opts: CorpusSuiteOptions = {}): void {
  const images = OCI_IMAGES.filter(([n]) => opts.scope !== 'quick' || QUICK.has(n));
  const saveImage = opts.scope === 'quick' ? 'edge' : 'nginx';
  describe(`corpus images through the CLI (${driver})`, () => {
    let work: string;
    let root: string;
    let cli: ReturnType<typeof strataIn>;
    const ids = new Map<string, string>();

    before(() => {
      work = scratch(null, `strata-corpus-${driver}-`);
      root = join(work, 'root');
      cli = strataIn(root, driver);
    });
    after(() => {
      opts.cleanup?.(root);
      unmountAllUnder(work);
    });

    for (const [name] of images) {
      test(`${name}: load, and a container's root equals umoci unpack`, async () => {
        const out = cli.ok(['load', '-i', corpusImage(`${name}.oci.tar`)]);
        const m = /^Loaded image ID: (sha256:[0-9a-f]{64})$/m.exec(out);
        assert.ok(m, `load printed: ${out}`);
        ids.set(name, m[1]);
        const cid = cli.ok(['create', '--name', `c-${name}`, m[1], 'sh']).trim();
        assert.match(cid, /^[0-9a-f]{64}$/);
        const mnt = cli.ok(['mount', `c-${name}`]).trim();
        try {
          const reference = umociRootfs(work, name === 'busybox-zstd' ? 'busybox.oci.tar' : `${name}.oci.tar`);
          const want = comparable(await snapshotTree(reference));
          const got = comparable(await snapshotTree(mnt), want);
          assert.deepEqual(diffTrees(got, want), []);
        } finally {
          cli.ok(['umount', `c-${name}`]);
        }
      });
    }

    test('a layer shared by several images is stored once', () => {
      // busybox's layer is the base of edge, deep, app, xattr and busybox-zstd's only layer.
      const info = cli.ok(['info', '--format', 'json']);
      const layers = JSON.parse(info).Layers as number;
      assert.equal(layers, images.reduce((n, [, added]) => n + added, 0));
      const before = cli.ok(['info', '--format', 'json']);
      cli.ok(['load', '-i', corpusImage('busybox.docker.tar')]);
      assert.equal(JSON.parse(cli.ok(['info', '--format', 'json'])).Layers, JSON.parse(before).Layers);
      // busybox.docker.tar names its image; the OCI archives' images are untagged (<none>) but listed.
      const listed = cli.ok(['images', '--format', 'json']).trim().split('\n').map((l) => JSON.parse(l));
      assert.ok(listed.some((i) => i.Repository === 'corpus/busybox' && i.Tag === 'latest'), JSON.stringify(listed));
      assert.ok(listed.filter((i) => i.Repository === '<none>').length >= images.length - 2, JSON.stringify(listed));
    });

    test('diff lists exactly the changes; commit keeps exactly them; other containers see none', async () => {
      const img = ids.get('edge')!;
      cli.ok(['create', '--name', 'changer', img, 'sh']);
      cli.ok(['create', '--name', 'bystander', img, 'sh']);
      const mnt = cli.ok(['mount', 'changer']).trim();
      writeFileSync(join(mnt, 'edge', 'new-file'), 'new\n');
      writeFileSync(join(mnt, 'edge', 'whiteout', 'keep'), 'edited\n');
      unlinkSync(join(mnt, 'bin', 'vi'));
      rmSync(join(mnt, 'edge', 'opaque'), { recursive: true });
      chmodSync(join(mnt, 'edge', 'chmod', 'file'), 0o600);
      cli.ok(['umount', 'changer']);
      const diff = cli.ok(['diff', 'changer']).trim().split('\n');
      const required = ['C /bin', 'D /bin/vi', 'C /edge', 'C /edge/chmod/file', 'A /edge/new-file', 'D /edge/opaque', 'C /edge/whiteout/keep'];
      for (const r of required) assert.ok(diff.includes(r), `diff lacks ${r}: ${diff.join(', ')}`);
      // Docker's naive diff (vfs, btrfs, …) also lists every parent directory of a change as C;
      // its overlay walk lists only directories whose own metadata changed. Nothing else may appear.
      const parents = new Set(required.flatMap((r) => r.slice(2).split('/').slice(1, -1).map((_, i, a) => `C /${a.slice(0, i + 1).join('/')}`)));
      for (const d of diff) assert.ok(required.includes(d) || parents.has(d), `unexpected change ${d}`);
      const paths = diff.map((d) => d.slice(2));
      assert.deepEqual([...paths].sort(), paths, 'diff is sorted by path');
      assert.equal(cli.ok(['diff', 'bystander']), '');

      const newId = cli.ok(['commit', '-m', 'test change', 'changer', 'test/changed:1']).trim();
      assert.match(newId, /^sha256:[0-9a-f]{64}$/);
      // The committed layer holds exactly the changes (GNU tar lists it).
      const saved = join(work, 'changed.tar');
      cli.ok(['save', '-o', saved, 'test/changed:1']);
      const x = join(work, 'changed-x');
      mkdirSync(x);
      runToolSync('tar', ['-xf', saved, '-C', x]);
      const manifest = JSON.parse(readFileSync(join(x, 'manifest.json'), 'utf8'));
      const top = manifest[0].Layers[manifest[0].Layers.length - 1];
      const listing = runToolSync('tar', ['-tf', join(x, top)]).trim().split('\n').sort();
      assert.deepEqual(listing, [
        'bin/',
        'bin/.wh.vi',
        'edge/',
        'edge/.wh.opaque',
        'edge/chmod/',
        'edge/chmod/file',
        'edge/new-file',
        'edge/whiteout/',
        'edge/whiteout/keep',
      ]);
      // A container of the committed image shows them.
      cli.ok(['create', '--name', 'child', 'test/changed:1', 'sh']);
      const c = cli.ok(['mount', 'child']).trim();
      try {
        assert.equal(readFileSync(join(c, 'edge', 'new-file'), 'utf8'), 'new\n');
        assert.equal(readFileSync(join(c, 'edge', 'whiteout', 'keep'), 'utf8'), 'edited\n');
        assert.equal(present(join(c, 'bin', 'vi')), false);
        assert.equal(present(join(c, 'edge', 'opaque')), false);
      } finally {
        cli.ok(['umount', 'child']);
      }
      // The bystander still has everything.
      const b = cli.ok(['mount', 'bystander']).trim();
      try {
        assert.equal(present(join(b, 'bin', 'vi')), true);
        assert.equal(present(join(b, 'edge', 'new-file')), false);
        assert.equal(present(join(b, 'edge', 'opaque', 'new')), true);
      } finally {
        cli.ok(['umount', 'bystander']);
      }
    });

    test('save is accepted by skopeo and umoci, and save -> load keeps ids and layer digests', () => {
      for (const format of ['docker', 'oci'] as const) {
        const file = join(work, `${saveImage}-${format}.tar`);
        cli.ok(['tag', ids.get(saveImage)!, `corpus/${saveImage}:saved`]);
        cli.ok(['save', '--format', format, '-o', file, `corpus/${saveImage}:saved`]);
        const transport = format === 'docker' ? `docker-archive:${file}` : `oci-archive:${file}:saved`;
        const inspected = JSON.parse(runToolSync('skopeo', ['inspect', '--raw', transport]));
        assert.equal(inspected.layers?.length, saveImage === 'nginx' ? 7 : 21, 'skopeo reads every layer of the archive');
        const layout = join(work, `copied-${format}`);
        runToolSync('skopeo', ['copy', '-q', transport, `oci:${layout}:copy`]);
        const bundle = join(work, `bundle-${format}`);
        runToolSync('umoci', ['unpack', '--image', `${layout}:copy`, bundle], { ignoreStdout: true });
        assert.ok(present(join(bundle, 'rootfs', ...(saveImage === 'nginx' ? ['usr', 'sbin', 'nginx'] : ['edge', 'modes', 'setuid']))));

        const other = strataIn(join(work, `roundtrip-${format}`), driver);
        const out = other.ok(['load', '-i', file]);
        assert.match(out, new RegExp(`Loaded image: corpus/${saveImage}:saved`));
        const a = JSON.parse(cli.ok(['inspect', `corpus/${saveImage}:saved`]))[0];
        const b = JSON.parse(other.ok(['inspect', `corpus/${saveImage}:saved`]))[0];
        assert.equal(b.Id, a.Id);
        assert.deepEqual(b.RootFS.Layers, a.RootFS.Layers);
        opts.cleanup?.(join(work, `roundtrip-${format}`));
        unmountAllUnder(join(work, `roundtrip-${format}`));
      }
    });

    test('export writes the whole root; import makes a one-layer image of it', () => {
      const file = join(work, 'export.tar');
      cli.ok(['export', '-o', file, 'c-busybox']);
      const names = runToolSync('tar', ['-tf', file]);
      assert.match(names, /bin\/busybox/);
      assert.match(names, /\.dockerenv/);
      const id = cli.ok(['import', file, 'test/imported']).trim();
      assert.match(id, /^sha256:/);
      const history = cli.ok(['history', 'test/imported']);
      assert.match(history, /Imported from/);
    });

    test('rmi refuses an image in use, rm and rmi then remove everything', () => {
      const r = cli.run(['rmi', ids.get('busybox')!]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /\(must be forced\) - image is being used by stopped container [0-9a-f]{12}$/m);
      for (const line of cli.ok(['ps', '-a', '-q']).trim().split('\n').filter(Boolean)) cli.ok(['rm', line]);
      for (const line of cli.ok(['images', '-a', '-q']).trim().split('\n').filter(Boolean)) cli.ok(['rmi', '-f', line]);
      const info = JSON.parse(cli.ok(['info', '--format', 'json']));
      assert.equal(info.Images, 0);
      assert.equal(info.Layers, 0);
      assert.equal(info.Containers, 0);
    });

    test('bad input: one-line errors and exit codes', () => {
      let r = cli.run(['load', '-i', '/nonexistent.tar']);
      assert.equal(r.code, 1);
      assert.equal(r.stderr.trim().split('\n').length, 1);
      r = cli.run(['rmi', 'no-such-image']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /No such image: no-such-image/);
      // docker 20.10's create exits 1 on a missing image; only run turns failures into 125.
      // (--pull never: a missing image would otherwise be pulled from Docker Hub)
      r = cli.run(['create', '--pull', 'never', 'no-such-image']);
      assert.equal(r.code, 1);
      r = cli.run(['run', '--rm', '--pull', 'never', 'no-such-image']);
      assert.equal(r.code, 125);
      r = cli.run(['tag', 'no-such', 'UPPER']);
      assert.equal(r.code, 1);
    });
  });
}
