// Pulling from a real docker-registry loaded with the corpus: manifest negotiation for every
// image by tag and by digest, platform selection, and layer blobs streamed through the digest check.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { Writable } from 'node:stream';
import { RegistryClient } from '../../src/registry/client.js';
import { DOCKER_MANIFEST, OCI_MANIFEST } from '../../src/image/mediatypes.js';
import { sha256Digest as sha256 } from '../../src/image/digest.js';
import { resolveImage, type ProgressEvent } from '../../src/registry/pull.js';
import { ProgressRenderer } from '../../src/cli/progress.js';
import { corpusImage, imagesDir } from '../helpers/env.js';
import { drainDigest, fileCleanup, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { runToolSync } from '../../src/sys/run.js';

let reg: TestRegistry;
const ociImages = readdirSync(imagesDir).filter((f) => f.endsWith('.oci.tar')).map((f) => f.slice(0, -'.oci.tar'.length));
const dockerImages = readdirSync(imagesDir).filter((f) => f.endsWith('.docker.tar')).map((f) => f.slice(0, -'.docker.tar'.length));

const cleanup = fileCleanup();
after(cleanup.run);

before(async () => {
  reg = await startRegistry(cleanup.add);
  for (const name of ociImages) await reg.load(name, 'latest');
  for (const name of dockerImages) await reg.load(name, 'docker');
});

/** The digest the OCI archive's index.json names: skopeo --preserve-digests pushes exactly it. */
function archiveDigest(name: string): string {
  const index = JSON.parse(runToolSync('tar', ['-xOf', corpusImage(`${name}.oci.tar`), 'index.json'])) as {
    manifests: { digest: string }[];
  };
  return index.manifests[0].digest;
}

test('ping of an open registry over plain HTTP on loopback', async () => {
  const c = new RegistryClient();
  try {
    assert.deepEqual(await c.pingInfo(reg.host), { base: `http://${reg.host}`, auth: 'none' });
  } finally {
    await c.close();
  }
});

test('every corpus OCI image resolves by tag and by digest to the archive digest', async () => {
  const client = new RegistryClient();
  try {
    for (const name of ociImages) {
      const want = archiveDigest(name);
      const byTag = await resolveImage(`${reg.host}/corpus/${name}:latest`, { client });
      assert.equal(byTag.manifestDigest, want, `${name} by tag`);
      assert.deepEqual(byTag.source.names, [`${reg.host}/corpus/${name}:latest`]);
      const m = JSON.parse(byTag.source.manifest!.bytes.toString()) as { config: { digest: string }; layers: unknown[] };
      assert.equal(sha256(byTag.source.config), m.config.digest, `${name} config digest`);
      assert.equal(byTag.source.layers.length, m.layers.length);
      const cfg = JSON.parse(byTag.source.config.toString()) as { rootfs: { diff_ids: string[] } };
      assert.equal(cfg.rootfs.diff_ids.length, byTag.source.layers.length);
      const byDigest = await resolveImage(`${reg.host}/corpus/${name}@${want}`, { client });
      assert.equal(byDigest.manifestDigest, want, `${name} by digest`);
      assert.equal(byDigest.imageManifestDigest, byTag.imageManifestDigest);
      assert.deepEqual(byDigest.source.names, []);
      if (name === 'busybox-zstd') assert.equal(byTag.source.layers[0].mediaType, 'application/vnd.oci.image.layer.v1.tar+zstd');
      if (name !== 'multiarch') assert.equal(byTag.source.manifest!.mediaType, OCI_MANIFEST);
    }
  } finally {
    await client.close();
  }
});

test('docker-archive images resolve as Docker schema 2', async () => {
  const client = new RegistryClient();
  try {
    for (const name of dockerImages) {
      const r = await resolveImage(`${reg.host}/corpus/${name}:docker`, { client });
      assert.equal(r.source.manifest!.mediaType, DOCKER_MANIFEST, name);
      assert.equal(r.source.layers[0].mediaType, 'application/vnd.docker.image.rootfs.diff.tar.gzip');
      const again = await resolveImage(`${reg.host}/corpus/${name}@${r.manifestDigest}`, { client });
      assert.equal(sha256(again.source.config), sha256(r.source.config));
    }
  } finally {
    await client.close();
  }
});

test('multiarch index: host platform by default, --platform linux/arm64/v8, clear error for a missing one', async () => {
  const client = new RegistryClient();
  try {
    const ref = `${reg.host}/corpus/multiarch:latest`;
    const amd = await resolveImage(ref, { client });
    assert.equal(amd.source.manifest!.mediaType, OCI_MANIFEST);
    assert.notEqual(amd.imageManifestDigest, amd.manifestDigest);
    assert.equal(amd.platform.architecture, 'amd64');
    assert.equal(JSON.parse(amd.source.config.toString()).architecture, 'amd64');
    const arm = await resolveImage(ref, { client, platform: 'linux/arm64/v8' });
    assert.equal(arm.platform.architecture, 'arm64');
    assert.equal(JSON.parse(arm.source.config.toString()).architecture, 'arm64');
    assert.notEqual(arm.imageManifestDigest, amd.imageManifestDigest);
    const armShort = await resolveImage(ref, { client, platform: 'linux/aarch64' });
    assert.equal(armShort.imageManifestDigest, arm.imageManifestDigest);
    await assert.rejects(resolveImage(ref, { client, platform: 'linux/s390x' }), /no matching manifest for linux\/s390x in the manifest list entries/);
    await assert.rejects(
      resolveImage(`${reg.host}/corpus/busybox:latest`, { client, platform: 'linux/arm64' }),
      /does not match the specified platform: wanted linux\/arm64\/v8, actual: linux\/amd64/,
    );
  } finally {
    await client.close();
  }
});

test('unknown tag and repository give docker-like errors', async () => {
  const client = new RegistryClient();
  try {
    await assert.rejects(resolveImage(`${reg.host}/corpus/busybox:nope`, { client }), /manifest for 127\.0\.0\.1:\d+\/corpus\/busybox:nope not found: manifest unknown/);
    await assert.rejects(resolveImage(`${reg.host}/corpus/missing`, { client }), /not found: name unknown|not found: manifest unknown/);
  } finally {
    await client.close();
  }
});

test('every layer blob of corpus/nginx:latest streams through open() with the right digest, with progress', async () => {
  const events: ProgressEvent[] = [];
  const r = await resolveImage(`${reg.host}/corpus/nginx:latest`, { onProgress: (e) => events.push(e) });
  try {
    assert.equal(r.source.layers.length, 7);
    for (const layer of r.source.layers) {
      const got = await drainDigest(await layer.open());
      assert.equal(got.digest, layer.digest);
      assert.equal(got.size, layer.size);
    }
    const big = r.source.layers[0];
    const id = big.digest!.slice(7, 19);
    const statuses = events.filter((e) => e.id === id).map((e) => e.status);
    assert.equal(statuses[0], 'Pulling fs layer');
    assert.ok(statuses.filter((s) => s === 'Downloading').length > 10);
    assert.deepEqual(statuses.slice(-2), ['Verifying Checksum', 'Download complete']);
    const last = events.filter((e) => e.id === id && e.status === 'Downloading').at(-1)!;
    assert.equal(last.current, big.size);
    assert.equal(last.total, big.size);

    // Plain rendering prints each status once; the terminal rendering rewrites lines in place.
    let plain = '';
    const p = new ProgressRenderer(new Writable({ write: (c, _e, cb) => ((plain += c), cb()) }), { tty: false });
    for (const e of events) p.update(e);
    assert.equal(plain.split('\n').filter((l) => l === `${id}: Downloading`).length, 1);
    let tty = '';
    const t = new ProgressRenderer(new Writable({ write: (c, _e, cb) => ((tty += c), cb()) }), { tty: true });
    for (const e of events) t.update(e);
    const esc = String.fromCharCode(27);
    const rewrite = new RegExp(`${esc}\\[\\d+A${esc}\\[2K\\r[0-9a-f]{12}: Downloading \\[=+>? *\\] +[\\d.]+[kM]?B/[\\d.]+MB\\n`);
    assert.match(tty, rewrite);
  } finally {
    await r.close();
  }
});

test('maxConcurrentDownloads: a layer past the limit waits (and says so) until a running download ends', async () => {
  const events: ProgressEvent[] = [];
  const r = await resolveImage(`${reg.host}/corpus/nginx:latest`, { maxConcurrentDownloads: 1, onProgress: (e) => events.push(e) });
  try {
    const [a, b] = r.source.layers;
    const first = await a.open();
    let secondOpened = false;
    const second = b.open().then((s) => ((secondOpened = true), s));
    await new Promise((res) => setTimeout(res, 200));
    assert.equal(secondOpened, false, 'the second download started while the first held the only slot');
    assert.ok(events.some((e) => e.id === b.digest!.slice(7, 19) && e.status === 'Waiting'));
    assert.equal((await drainDigest(first)).digest, a.digest);
    assert.equal((await drainDigest(await second)).digest, b.digest);
    assert.equal(secondOpened, true);
    await assert.rejects(resolveImage(`${reg.host}/corpus/busybox:latest`, { maxConcurrentDownloads: 0 }), /max concurrent downloads must be a positive integer/);
  } finally {
    await r.close();
  }
});
