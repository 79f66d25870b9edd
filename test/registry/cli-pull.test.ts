// `strata pull` end to end against a real docker-registry loaded with the corpus: every image's
// container root equals umoci's unpack (vfs, and overlay2 when it is usable here), docker's
// output lines, Already exists / up to date on a second pull, a corrupted blob refused with
// nothing kept, and a pull killed midway then repeated.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { INIT_PATHS, strataIn, umociRootfs } from '../helpers/cli.js';
import { imagesDir, scratch, strataBin } from '../helpers/env.js';
import { unmountAllUnder } from '../helpers/mounts.js';
import { fileCleanup, overlay2Available, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { diffTrees, snapshotTree, type Node } from '../helpers/tree.js';

const ociImages = readdirSync(imagesDir).filter((f) => f.endsWith('.oci.tar')).map((f) => f.slice(0, -'.oci.tar'.length));
const dockerImages = readdirSync(imagesDir).filter((f) => f.endsWith('.docker.tar')).map((f) => f.slice(0, -'.docker.tar'.length));

const files = fileCleanup();
after(files.run);
let reg: TestRegistry;

before(async () => {
  reg = await startRegistry(files.add);
  for (const name of ociImages) await reg.load(name, 'latest');
  for (const name of dockerImages) await reg.load(name, 'docker');
});

/**
 * A tree as a layer tar defines it: without what the init layer adds (umoci has none of it) and
 * without directory mtimes, which extraction order and whiteouts legitimately change.
 */
async function rootfs(dir: string, reference?: Map<string, Node>): Promise<Map<string, Node>> {
  const tree = await snapshotTree(dir);
  for (const n of tree.values()) if (n.type === 'dir') n.mtime = 0;
  if (reference) for (const p of INIT_PATHS) if (!reference.has(p.slice(1))) tree.delete(p.slice(1));
  return tree;
}

function info(cli: ReturnType<typeof strataIn>): { Images: number; Layers: number } {
  return JSON.parse(cli.ok(['info', '--format', 'json'])) as { Images: number; Layers: number };
}

// overlay2 joins the matrix when it is registered and usable here.
const drivers = (await overlay2Available()) ? ['vfs', 'overlay2'] : ['vfs'];

for (const driver of drivers) {
  describe(`pull through the CLI (${driver})`, () => {
    const work = scratch(null, `strata-clipull-${driver}-`);
    const root = join(work, 'root');
    const cli = strataIn(root, driver);
    after(() => unmountAllUnder(root));

    for (const name of ociImages) {
      test(`${name}: pulled image's container root equals umoci unpack`, async () => {
        const ref = `${reg.host}/corpus/${name}:latest`;
        const out = cli.ok(['pull', ref]);
        const lines = out.trim().split('\n');
        assert.equal(lines[0], `latest: Pulling from ${reg.host}/corpus/${name}`);
        assert.match(out, /^Digest: sha256:[0-9a-f]{64}$/m);
        assert.match(out, /^Status: (Downloaded newer image|Image is up to date) for /m);
        assert.equal(lines.at(-1), ref);
        const cname = `c-${name}`;
        cli.ok(['create', '--name', cname, ref]);
        const mnt = cli.ok(['mount', cname]).trim();
        try {
          const reference = umociRootfs(work, name === 'busybox-zstd' ? 'busybox.oci.tar' : `${name}.oci.tar`);
          const want = await rootfs(reference);
          const got = await rootfs(mnt, want);
          assert.deepEqual(diffTrees(got, want, { skip: (p) => p === '' }), []);
        } finally {
          cli.ok(['umount', cname]);
        }
      });
    }

    test('a second pull prints Already exists for every layer and Image is up to date', () => {
      const ref = `${reg.host}/corpus/nginx:latest`;
      const out = cli.ok(['pull', ref]);
      const layerLines = out.split('\n').filter((l) => /^[0-9a-f]{12}: /.test(l));
      assert.equal(layerLines.length, 7);
      assert.ok(layerLines.every((l) => l.endsWith(': Already exists')), out);
      assert.match(out, new RegExp(`^Status: Image is up to date for ${reg.host.replace(/\./g, '\\.')}/corpus/nginx:latest$`, 'm'));
    });

    test('a docker schema2 image sharing layers with a pulled one shows Already exists for those', () => {
      // app:docker is the same image as app:latest pushed as Docker schema 2 (other blob digests, same diffIDs).
      const before = info(cli);
      const out = cli.ok(['pull', `${reg.host}/corpus/app:docker`]);
      assert.match(out, /Already exists/);
      assert.doesNotMatch(out, /Pull complete/);
      assert.equal(info(cli).Layers, before.Layers);
    });

    test('pull by digest: no tag name, a RepoDigest, the digest line', () => {
      const cli = strataIn(join(work, 'root-digest'), driver);
      const byTag = cli.ok(['pull', '-q', `${reg.host}/corpus/xattr`]);
      assert.equal(byTag.trim(), `${reg.host}/corpus/xattr:latest`);
      const [tagged] = JSON.parse(cli.ok(['inspect', `${reg.host}/corpus/xattr`])) as { Id: string; RepoDigests: string[] }[];
      assert.equal(tagged.RepoDigests.length, 1);
      const digest = tagged.RepoDigests[0].split('@')[1];
      cli.ok(['rmi', `${reg.host}/corpus/xattr`]);
      const out = cli.ok(['pull', `${reg.host}/corpus/xattr@${digest}`]);
      assert.equal(out.split('\n')[0], `${digest}: Pulling from ${reg.host}/corpus/xattr`);
      assert.equal(out.trim().split('\n').at(-1), `${reg.host}/corpus/xattr@${digest}`);
      const [byDigest] = JSON.parse(cli.ok(['inspect', tagged.Id])) as { RepoTags: string[]; RepoDigests: string[] }[];
      assert.deepEqual(byDigest.RepoTags, []);
      assert.deepEqual(byDigest.RepoDigests, [`${reg.host}/corpus/xattr@${digest}`]);
    });

    test('--platform picks the arm64 image of the multiarch index; an unknown platform is a one-line error', () => {
      const out = cli.ok(['pull', '--platform', 'linux/arm64', `${reg.host}/corpus/multiarch`]);
      assert.match(out, /Status: Downloaded newer image/);
      const cfg = JSON.parse(cli.ok(['inspect', `${reg.host}/corpus/multiarch`])) as { Architecture: string }[];
      assert.equal(cfg[0].Architecture, 'arm64');
      const bad = cli.run(['pull', '--platform', 'linux/s390x', `${reg.host}/corpus/multiarch`]);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /^Error: no matching manifest for linux\/s390x in the manifest list entries/);
      assert.equal(bad.stderr.trim().split('\n').length, 1);
    });

    test('unknown image and invalid reference fail with one line and exit 1', () => {
      const missing = cli.run(['pull', `${reg.host}/corpus/busybox:nope`]);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /^Error: manifest for .*corpus\/busybox:nope not found: manifest unknown/);
      const invalid = cli.run(['pull', 'Upper']);
      assert.equal(invalid.code, 1);
      assert.match(invalid.stderr, /^Error: invalid reference format/);
    });
  });
}

/** A store on its own, for the failure tests (vfs: its layer dirs are easy to count). */
function freshStore(t: { after(fn: () => void): void }): { root: string; cli: ReturnType<typeof strataIn> } {
  const root = join(scratch(t), 'root');
  return { root, cli: strataIn(root, 'vfs') };
}

function vfsDirs(root: string): string[] {
  const d = join(root, 'vfs', 'dir');
  return existsSync(d) ? readdirSync(d) : [];
}

test('a blob whose bytes do not match is refused, nothing of it is kept, and the pull can be repeated', async (t) => {
  const local = fileCleanup();
  t.after(local.run);
  const own = await startRegistry(local.add);
  await own.load('app', 'latest');
  const { root, cli } = freshStore(t);
  const ref = `${own.host}/corpus/app:latest`;
  const manifest = JSON.parse(
    (await (await fetch(`http://${own.host}/v2/corpus/app/manifests/latest`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })).text()),
  ) as { layers: { digest: string; size: number }[] };
  const victim = manifest.layers[2];
  const file = own.blobPath(victim.digest);
  const flip = () => {
    const fd = openSync(file, 'r+');
    const b = Buffer.alloc(1);
    const pos = Math.floor(victim.size / 2);
    readSync(fd, b, 0, 1, pos);
    b[0] ^= 0xff;
    writeSync(fd, b, 0, 1, pos);
    closeSync(fd);
  };
  flip();
  const bad = cli.run(['pull', ref]);
  assert.equal(bad.code, 1, bad.stdout);
  assert.match(bad.stderr, /^Error: .*digest mismatch.*expected sha256:[0-9a-f]{64}, got sha256:[0-9a-f]{64}/);
  const after1 = info(cli);
  assert.equal(after1.Images, 0);
  // The layers below the bad one may stay (they are complete and correct); nothing above or of it.
  assert.ok(after1.Layers <= 2, `layers kept: ${after1.Layers}`);
  assert.equal(vfsDirs(root).length, after1.Layers);
  assert.deepEqual(readdirSync(join(root, 'layerdb')).filter((n) => n.endsWith('.tmp')), []);
  flip();
  const good = cli.ok(['pull', ref]);
  assert.match(good, /Status: Downloaded newer image/);
  const after2 = info(cli);
  assert.equal(after2.Images, 1);
  assert.equal(after2.Layers, 4);
  assert.equal(vfsDirs(root).length, 4);
});

test('a pull killed midway, then pulled again, completes with nothing left behind', async (t) => {
  const { root, cli } = freshStore(t);
  const ref = `${reg.host}/corpus/nginx:latest`;
  const child = spawn(process.execPath, [strataBin, '--root', root, '--driver', 'vfs', 'pull', ref], { stdio: ['ignore', 'pipe', 'ignore'] });
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  // Kill once a layer is being extracted: its tar-split is half written.
  let seen = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (seen += d));
  for (;;) {
    const tmp = existsSync(join(root, 'layerdb')) ? readdirSync(join(root, 'layerdb')).filter((n) => n.endsWith('.tmp')) : [];
    if (tmp.length > 0) break;
    if (child.exitCode !== null) throw new Error(`pull finished before it could be killed: ${seen}`);
    await new Promise((r) => setTimeout(r, 5));
  }
  child.kill('SIGKILL');
  await exited;
  const mid = info(cli);
  assert.equal(mid.Images, 0);
  assert.equal(vfsDirs(root).length, mid.Layers);
  const out = cli.ok(['pull', ref]);
  assert.match(out, /Status: Downloaded newer image/);
  assert.equal(out.trim().split('\n').at(-1), ref);
  const done = info(cli);
  assert.equal(done.Images, 1);
  assert.equal(done.Layers, 7);
  assert.equal(vfsDirs(root).length, 7);
  assert.deepEqual(readdirSync(join(root, 'layerdb')).filter((n) => n.endsWith('.tmp')), []);
});
