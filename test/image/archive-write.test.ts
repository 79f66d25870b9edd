import assert from 'node:assert/strict';
import { createReadStream, createWriteStream, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { before, test } from 'node:test';
import { openImageArchive } from '../../src/image/archive-read.js';
import { writeImageArchive } from '../../src/image/archive-write.js';
import type { ExportImage } from '../../src/image/source.js';
import { corpusImage, scratch } from '../helpers/env.js';
import { diffIDs, exportFrom, hashStream, run, sha256 } from './layers.js';

// app and busybox share their base layer, so the archives must hold it once.
let images: ExportImage[];
const APP = 'sha256:cffa0c1ddee9e38f310ccff2f308395425ec8f263295a2615e0c6c89091c96c3';
const BUSYBOX = 'sha256:0789f150b1acc05d61968281a0d0fbe4a8ee2367ca81ffdb46b2b108857f1929';

before(async () => {
  const [app] = await openImageArchive(corpusImage('app.oci.tar'));
  const [busybox] = await openImageArchive(corpusImage('busybox.oci.tar'));
  images = [
    await exportFrom(app, ['docker.io/corpus/app:v1']),
    await exportFrom(busybox, ['docker.io/corpus/busybox:latest', 'docker.io/library/busybox:1.35']),
  ];
});

/** Saves to a file and, even on failure, waits until the file is closed (the dir goes away after). */
async function save(dir: string, name: string, format: 'docker' | 'oci', imgs = images): Promise<string> {
  const path = join(dir, name);
  const out = createWriteStream(path);
  const closed = new Promise<void>((resolve) => out.once('close', () => resolve()));
  try {
    await writeImageArchive(out, format, imgs);
  } finally {
    await closed;
  }
  return path;
}

test('docker format: GNU tar lists it, skopeo reads every image, layers are shared', async (t) => {
  const dir = scratch(t, 'strata-image-save-');
  const out = await save(dir, 'save.docker.tar', 'docker');
  const listing = run('tar', ['-tf', out]).trim().split('\n');
  assert.ok(listing.includes('manifest.json') && listing.includes('repositories'));
  assert.equal(listing.filter((n) => n.endsWith('/layer.tar')).length, 4, 'the base layer is written once');
  assert.equal(listing.filter((n) => n.endsWith('/VERSION')).length, 4);
  assert.ok(listing.includes(`${APP.slice(7)}.json`) && listing.includes(`${BUSYBOX.slice(7)}.json`));

  const manifest = JSON.parse(run('tar', ['-xOf', out, 'manifest.json']));
  assert.deepEqual(manifest.map((e: { RepoTags: string[] }) => e.RepoTags), [['corpus/app:v1'], ['corpus/busybox:latest', 'busybox:1.35']]);
  assert.equal(manifest[1].Layers[0], manifest[0].Layers[0]);

  for (const [ref, id] of [['corpus/app:v1', APP], ['busybox:1.35', BUSYBOX]] as const) {
    const raw = JSON.parse(run('skopeo', ['inspect', '--raw', `docker-archive:${out}:${ref}`]));
    assert.equal(raw.config.digest, id, ref);
    const info = JSON.parse(run('skopeo', ['inspect', `docker-archive:${out}:${ref}`]));
    assert.deepEqual(info.Layers, diffIDs(images[id === APP ? 0 : 1].config));
  }
  // skopeo copy reads every layer and checks it against the config's diff_ids.
  const layout = join(dir, 'layout');
  run('skopeo', ['copy', '-q', `docker-archive:${out}:corpus/app:v1`, `oci:${layout}:app`]);
  assert.ok(existsSync(join(layout, 'index.json')));
});

test('oci format: skopeo inspects and copies it, umoci unpacks it, layers are uncompressed diffIDs', async (t) => {
  const dir = scratch(t, 'strata-image-save-');
  const out = await save(dir, 'save.oci.tar', 'oci');
  const listing = run('tar', ['-tf', out]).trim().split('\n');
  assert.ok(listing.includes('oci-layout') && listing.includes('index.json'));
  const allDiffIDs = new Set([...diffIDs(images[0].config), ...diffIDs(images[1].config)]);
  for (const d of allDiffIDs) assert.ok(listing.includes(`blobs/sha256/${d.slice(7)}`), d);
  assert.ok(listing.includes(`blobs/sha256/${APP.slice(7)}`) && listing.includes(`blobs/sha256/${BUSYBOX.slice(7)}`));

  const index = JSON.parse(run('tar', ['-xOf', out, 'index.json']));
  assert.deepEqual(
    index.manifests.map((m: { annotations: Record<string, string> }) => m.annotations),
    [
      { 'io.containerd.image.name': 'docker.io/corpus/app:v1', 'org.opencontainers.image.ref.name': 'v1' },
      { 'io.containerd.image.name': 'docker.io/corpus/busybox:latest', 'org.opencontainers.image.ref.name': 'latest' },
      { 'io.containerd.image.name': 'docker.io/library/busybox:1.35', 'org.opencontainers.image.ref.name': '1.35' },
    ],
  );

  const raw = JSON.parse(run('skopeo', ['inspect', '--raw', `oci-archive:${out}:v1`]));
  assert.equal(raw.config.digest, APP);
  assert.deepEqual(raw.layers.map((l: { digest: string }) => l.digest), diffIDs(images[0].config));
  assert.ok(raw.layers.every((l: { mediaType: string }) => l.mediaType === 'application/vnd.oci.image.layer.v1.tar'));

  const copied = join(dir, 'copied');
  run('skopeo', ['copy', '-q', `oci-archive:${out}:1.35`, `oci:${copied}:bb`]);
  assert.ok(existsSync(join(copied, 'blobs/sha256', BUSYBOX.slice(7))), 'config kept byte for byte');

  const layout = join(dir, 'layout');
  mkdirSync(layout);
  run('tar', ['-xf', out, '-C', layout]);
  const bundle = join(dir, 'bundle');
  const rootless = process.getuid?.() === 0 ? [] : ['--rootless'];
  run('umoci', ['unpack', ...rootless, '--image', `${layout}:v1`, bundle]);
  assert.ok(existsSync(join(bundle, 'rootfs', 'bin', 'busybox')));
  assert.ok(existsSync(join(bundle, 'config.json')));
  assert.ok(existsSync(join(bundle, 'rootfs', 'app')));
});

test('write → read round trip keeps config digests, diffIDs and names, in both formats', async (t) => {
  const dir = scratch(t, 'strata-image-save-');
  for (const format of ['docker', 'oci'] as const) {
    const out = await save(dir, `rt.${format}.tar`, format);
    const back = await openImageArchive(out);
    assert.deepEqual(back.map((i) => sha256(i.config)), [APP, BUSYBOX], format);
    assert.deepEqual(back.map((i) => i.names), [
      ['docker.io/corpus/app:v1'],
      ['docker.io/corpus/busybox:latest', 'docker.io/library/busybox:1.35'],
    ], format);
    for (const img of back) {
      const ids = diffIDs(img.config);
      for (const [i, l] of img.layers.entries()) {
        const h = await hashStream(await l.open());
        assert.equal(h.digest, ids[i], `${format} layer ${i + 1}`);
        if (format === 'oci') assert.equal(l.digest, ids[i]);
      }
    }
  }
});

test('output is deterministic', async (t) => {
  const dir = scratch(t, 'strata-image-save-');
  for (const format of ['docker', 'oci'] as const) {
    const a = await hashStream(createReadStream(await save(dir, `a.${format}.tar`, format)));
    const b = await hashStream(createReadStream(await save(dir, `b.${format}.tar`, format)));
    assert.equal(a.digest, b.digest, format);
  }
});

test('untagged images: RepoTags null and an index entry without names', async (t) => {
  const dir = scratch(t, 'strata-image-save-');
  const untagged = [{ ...images[1], names: [] }];
  const docker = await save(dir, 'u.docker.tar', 'docker', untagged);
  assert.equal(JSON.parse(run('tar', ['-xOf', docker, 'manifest.json']))[0].RepoTags, null);
  assert.ok(!run('tar', ['-tf', docker]).split('\n').includes('repositories'));
  const oci = await save(dir, 'u.oci.tar', 'oci', untagged);
  assert.equal(JSON.parse(run('tar', ['-xOf', oci, 'index.json'])).manifests[0].annotations, undefined);
  for (const p of [docker, oci]) {
    const [img] = await openImageArchive(p);
    assert.deepEqual(img.names, []);
    assert.equal(sha256(img.config), BUSYBOX);
  }
});

test('a layer whose bytes differ from its size or diffID fails the save', async (t) => {
  const dir = scratch(t, 'strata-image-save-');
  const base = images[1];
  const layer = base.layers[0];
  const short = { ...base, layers: [{ ...layer, size: layer.size + 512 }] };
  await assert.rejects(save(dir, 'short.tar', 'oci', [short]), {
    message: `size mismatch for layer ${layer.diffID}: expected ${layer.size + 512} bytes, got ${layer.size}`,
  });
  const wrong = 'sha256:' + 'f'.repeat(64);
  const bad = { ...base, layers: [{ ...layer, diffID: wrong }] };
  await assert.rejects(save(dir, 'bad.tar', 'docker', [bad]), {
    message: `digest mismatch for layer ${wrong}: expected ${wrong}, got ${layer.diffID}`,
  });
  const broken = { ...base, layers: [{ ...layer, open: async () => Readable.from((async function* () {
    yield Buffer.alloc(1024);
    throw new Error('disk on fire');
  })()) }] };
  await assert.rejects(save(dir, 'broken.tar', 'oci', [broken]), { message: 'disk on fire' });
  await assert.rejects(save(dir, 'none.tar', 'oci', []), { message: 'no images to save' });
  await assert.rejects(save(dir, 'fmt.tar', 'zip' as 'oci'), { message: 'unknown archive format "zip": use docker or oci' });
});
