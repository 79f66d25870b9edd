import assert from 'node:assert/strict';
import {
  copyFileSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { openImageArchive } from '../../src/image/archive-read.js';
import { corpusImage, scratch } from '../helpers/env.js';
import { diffIDs, hashStream, run, sha256, uncompressed } from './layers.js';

// From corpus MANIFEST.md (OCI) and from the Config names docker save wrote (Docker image IDs).
const expected: Record<string, { config: string; manifest?: string; layers: number; names: string[]; mediaType: string }> = {
  'busybox.oci.tar': {
    config: 'sha256:0789f150b1acc05d61968281a0d0fbe4a8ee2367ca81ffdb46b2b108857f1929',
    manifest: 'sha256:32156478618d71c662e4b3aeb291abc561c951e7b0a6e5a832c87467fa08fc53',
    layers: 1, names: [], mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
  },
  'nginx.oci.tar': {
    config: 'sha256:7b7ebc82a833daff29d5db142e84921f271a065f6a2ef211e5a4d446359039c9',
    manifest: 'sha256:06bb92b45d3cc7ad2ae01675b70e12541d5524c36359e42a3377ed0cae89512a',
    layers: 7, names: [], mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
  },
  'edge.oci.tar': {
    config: 'sha256:c8aac1d521dd85e810ea92d5dd5ea5e8dd4f1d4bc22feecae32a8d846c97c330',
    manifest: 'sha256:fc5e7d51059867ef3b211fabf024e2d8742dad6904e174e1c35b5a348937a6e7',
    layers: 21, names: [], mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
  },
  'deep.oci.tar': {
    config: 'sha256:eaebc0192ed72b299b0b46e3a9955f52e1c754753b66754f0eed891ba6dd49f5',
    manifest: 'sha256:1ae22a7c52471893866b2ff9dbdff01de2736ad4a57a745076be73b4a96b10c2',
    layers: 130, names: [], mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
  },
  'multiarch.oci.tar': {
    config: 'sha256:b97535383672d104153abbefb3c0bba7ade58252e2870601d2748128a7eff1c4',
    manifest: 'sha256:53dc2cbfe9d11bbc8e6a2739aa05b0ddcf123214846f0b552fd34dc043a52260',
    layers: 1, names: [], mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
  },
  'busybox-zstd.oci.tar': {
    config: 'sha256:0789f150b1acc05d61968281a0d0fbe4a8ee2367ca81ffdb46b2b108857f1929',
    manifest: 'sha256:da7d668553651a0f58b4bf71d49ff959a40574ada7b697eab5b2f0410e2a685c',
    layers: 1, names: [], mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd',
  },
  'app.oci.tar': {
    config: 'sha256:cffa0c1ddee9e38f310ccff2f308395425ec8f263295a2615e0c6c89091c96c3',
    manifest: 'sha256:73601a41058723fc9b4af82656f52f4308f1cc0e2a2948ea0dc372d8e5ff2b84',
    layers: 4, names: [], mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
  },
  'xattr.oci.tar': {
    config: 'sha256:ce95ca6b058c81fd04e27c2f973fc5911ce6f2d7436c47eec136c2c94b530dc3',
    manifest: 'sha256:2ab2e15e89230c64298174b79d4745b0ebc8fb6f6804aea62853d9075287fff6',
    layers: 2, names: [], mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
  },
  'busybox.docker.tar': {
    config: 'sha256:eb18a39c8c8bbd7281a404839f681e7a77802d7be313f036020339eb118c179c',
    layers: 1, names: ['docker.io/corpus/busybox:latest'], mediaType: 'application/vnd.docker.image.rootfs.diff.tar',
  },
  'app.docker.tar': {
    config: 'sha256:218bd654ad6518a50dd18502bb74f4ae66806f1af0595c42e42d4c47d206aa9d',
    layers: 4, names: ['docker.io/corpus/app:latest'], mediaType: 'application/vnd.docker.image.rootfs.diff.tar',
  },
  'edge.docker.tar': {
    config: 'sha256:7e725db5b9e1008753d3a118072a234afeb4e8aa12fb12045fef84c3e96520be',
    layers: 21, names: ['docker.io/corpus/edge:latest'], mediaType: 'application/vnd.docker.image.rootfs.diff.tar',
  },
};

for (const [file, want] of Object.entries(expected)) {
  test(`${file} opens with the corpus config, layer count and names, and every layer matches`, async () => {
    const images = await openImageArchive(corpusImage(file));
    assert.equal(images.length, 1);
    const [img] = images;
    assert.equal(sha256(img.config), want.config);
    assert.equal(img.layers.length, want.layers);
    assert.deepEqual(img.names, want.names);
    assert.equal(img.manifest?.digest, want.manifest);
    if (want.manifest) assert.equal(sha256(img.manifest!.bytes), want.manifest);
    const ids = diffIDs(img.config);
    for (const [i, layer] of img.layers.entries()) {
      assert.equal(layer.mediaType, want.mediaType);
      if (layer.digest !== undefined) {
        const blob = await hashStream(await layer.open());
        assert.equal(blob.digest, layer.digest, `layer ${i + 1} blob digest`);
        assert.equal(blob.size, layer.size, `layer ${i + 1} blob size`);
      } else {
        assert.ok(file.endsWith('.docker.tar'), 'only docker-archive layers come without a digest');
      }
      const tar = await hashStream(await uncompressed(layer));
      assert.equal(tar.digest, ids[i], `layer ${i + 1} diff_id`);
    }
  });
}

test('multiarch: the host (linux/amd64) by default, arm64 on request, a clear error otherwise', async () => {
  const path = corpusImage('multiarch.oci.tar');
  const amd = await openImageArchive(path);
  assert.equal(sha256(amd[0].config), 'sha256:b97535383672d104153abbefb3c0bba7ade58252e2870601d2748128a7eff1c4');
  for (const p of ['linux/arm64/v8', 'linux/arm64', 'linux/aarch64']) {
    const arm = await openImageArchive(path, { platform: p });
    assert.equal(sha256(arm[0].config), 'sha256:70a3aacbc75cadde926eb8ecd4019cfcd952feadb135209388975a3ce93425ff', p);
    assert.equal(arm[0].manifest?.digest, 'sha256:cbe21ca0e3b9e2034bde0fe7480e4e96f1629dd1b31ac5c299cb4b3c88d96777');
    assert.equal(JSON.parse(arm[0].config.toString()).architecture, 'arm64');
  }
  await assert.rejects(openImageArchive(path, { platform: 'linux/s390x' }), {
    message: /^no image for platform linux\/s390x in index sha256:cb7649\w+ \(it has: linux\/amd64, linux\/arm64\/v8\)$/,
  });
  await assert.rejects(openImageArchive(path, { platform: 'amd64' }), { message: /invalid platform "amd64"/ });
});

/** Unpacks a corpus archive with GNU tar, lets `edit` change it, packs it again. */
function rebuilt(t: Parameters<typeof scratch>[0], file: string, edit: (dir: string) => void): string {
  return rebuiltFrom(t, corpusImage(file), edit);
}

function rebuiltFrom(t: Parameters<typeof scratch>[0], archive: string, edit: (dir: string) => void): string {
  const dir = scratch(t, 'strata-image-edit-');
  const tree = join(dir, 'tree');
  mkdirSync(tree);
  run('tar', ['-xf', archive, '-C', tree]);
  edit(tree);
  const out = join(dir, 'out.tar');
  run('tar', ['-cf', out, '-C', tree, '.']);
  return out;
}

function rewriteOciManifest(tree: string, change: (m: Record<string, unknown>) => void): void {
  const index = JSON.parse(readFileSync(join(tree, 'index.json'), 'utf8'));
  const old = index.manifests[0].digest.slice(7);
  const m = JSON.parse(readFileSync(join(tree, 'blobs/sha256', old), 'utf8'));
  change(m);
  const bytes = Buffer.from(JSON.stringify(m));
  const digest = sha256(bytes);
  rmSync(join(tree, 'blobs/sha256', old));
  writeFileSync(join(tree, 'blobs/sha256', digest.slice(7)), bytes);
  index.manifests[0].digest = digest;
  index.manifests[0].size = bytes.length;
  writeFileSync(join(tree, 'index.json'), JSON.stringify(index));
}

test('a file that is not a tar, an empty file and a tar of other things give clear errors', async (t) => {
  const dir = scratch(t);
  const junk = join(dir, 'junk.tar');
  writeFileSync(junk, Buffer.alloc(4096, 'not a tar archive at all '));
  await assert.rejects(openImageArchive(junk), (e: Error) => e.message.startsWith(`${junk} is not a valid tar archive: `) && !e.message.includes('\n'));
  const empty = join(dir, 'empty.tar');
  writeFileSync(empty, '');
  await assert.rejects(openImageArchive(empty), { message: `${empty}: not an image archive (no manifest.json, index.json or repositories)` });
  await assert.rejects(openImageArchive(join(dir, 'absent.tar')), { message: `cannot open image archive ${join(dir, 'absent.tar')}: no such file` });
  const other = join(dir, 'other.tar');
  mkdirSync(join(dir, 'files'));
  writeFileSync(join(dir, 'files', 'hello.txt'), 'hi');
  run('tar', ['-cf', other, '-C', join(dir, 'files'), '.']);
  await assert.rejects(openImageArchive(other), { message: `${other}: not an image archive (no manifest.json, index.json or repositories)` });
  await assert.rejects(openImageArchive(dir), { message: `image archive ${dir} is not a regular file` });
});

test('a truncated archive is reported as such', async (t) => {
  const dir = scratch(t);
  for (const file of ['busybox.oci.tar', 'busybox.docker.tar']) {
    const cut = join(dir, file);
    copyFileSync(corpusImage(file), cut);
    truncateSync(cut, 600_000);
    await assert.rejects(openImageArchive(cut), { message: new RegExp(`^${cut} is not a valid tar archive: .*(truncated|end)`) });
  }
});

test('a missing layer blob is named', async (t) => {
  const out = rebuilt(t, 'busybox.oci.tar', (tree) =>
    rmSync(join(tree, 'blobs/sha256/6e83cd7db3dfbcf1553aaa2cec9ac3c84ff0299220fa431714677be80e5d6480')));
  await assert.rejects(openImageArchive(out), {
    message: `${out}: missing blob sha256:6e83cd7db3dfbcf1553aaa2cec9ac3c84ff0299220fa431714677be80e5d6480 (layer 1)`,
  });
  const noLayer = rebuilt(t, 'app.docker.tar', (tree) =>
    rmSync(join(tree, '7a9a7cd0eb5388508bf16aeabc741a4a1f151ba2b51b3532cfff31ff5d761bf4/layer.tar')));
  await assert.rejects(openImageArchive(noLayer), {
    message: `${noLayer}: image 1: layer 4 (7a9a7cd0eb5388508bf16aeabc741a4a1f151ba2b51b3532cfff31ff5d761bf4/layer.tar) is missing from the archive`,
  });
});

test('a config whose bytes do not match its digest is refused', async (t) => {
  const cfg = '0789f150b1acc05d61968281a0d0fbe4a8ee2367ca81ffdb46b2b108857f1929';
  const oci = rebuilt(t, 'busybox.oci.tar', (tree) => {
    const p = join(tree, 'blobs/sha256', cfg);
    writeFileSync(p, readFileSync(p, 'utf8').replace('"sh"', '"ls"'));
  });
  await assert.rejects(openImageArchive(oci), { message: new RegExp(`^${oci}: config digest mismatch: expected sha256:${cfg}, got sha256:[0-9a-f]{64}$`) });
  const dockerCfg = 'eb18a39c8c8bbd7281a404839f681e7a77802d7be313f036020339eb118c179c';
  const docker = rebuilt(t, 'busybox.docker.tar', (tree) => {
    const p = join(tree, `${dockerCfg}.json`);
    writeFileSync(p, readFileSync(p, 'utf8').replace('"sh"', '"ls"'));
  });
  await assert.rejects(openImageArchive(docker), { message: new RegExp(`^${docker}: image 1: config digest mismatch: expected sha256:${dockerCfg}, got sha256:[0-9a-f]{64}$`) });
});

test('a layer count that differs from rootfs.diff_ids is refused', async (t) => {
  const docker = rebuilt(t, 'app.docker.tar', (tree) => {
    const m = JSON.parse(readFileSync(join(tree, 'manifest.json'), 'utf8'));
    m[0].Layers.pop();
    writeFileSync(join(tree, 'manifest.json'), JSON.stringify(m));
  });
  await assert.rejects(openImageArchive(docker), { message: `${docker}: image 1: image has 3 layers but its config lists 4 diff_ids` });
  const oci = rebuilt(t, 'xattr.oci.tar', (tree) => rewriteOciManifest(tree, (m) => (m.layers as unknown[]).pop()));
  await assert.rejects(openImageArchive(oci), { message: /: image has 1 layers but its config lists 2 diff_ids$/ });
});

test('unsupported media types are named', async (t) => {
  const layer = rebuilt(t, 'busybox.oci.tar', (tree) =>
    rewriteOciManifest(tree, (m) => ((m.layers as { mediaType: string }[])[0].mediaType = 'application/vnd.example.layer')));
  await assert.rejects(openImageArchive(layer), { message: /: unsupported layer media type "application\/vnd\.example\.layer" \(layer 1\)$/ });
  const config = rebuilt(t, 'busybox.oci.tar', (tree) =>
    rewriteOciManifest(tree, (m) => ((m.config as { mediaType: string }).mediaType = 'application/vnd.example.config+json')));
  await assert.rejects(openImageArchive(config), { message: /: unsupported config media type "application\/vnd\.example\.config\+json"$/ });
  const entry = rebuilt(t, 'busybox.oci.tar', (tree) => {
    const index = JSON.parse(readFileSync(join(tree, 'index.json'), 'utf8'));
    index.manifests[0].mediaType = 'application/vnd.docker.distribution.manifest.v1+prettyjws';
    writeFileSync(join(tree, 'index.json'), JSON.stringify(index));
  });
  await assert.rejects(openImageArchive(entry), { message: /: unsupported media type "application\/vnd\.docker\.distribution\.manifest\.v1\+prettyjws" for sha256:32156478/ });
});

test('OCI names: a full reference in ref.name or io.containerd.image.name names the image, a bare tag does not', async (t) => {
  const named = rebuilt(t, 'busybox.oci.tar', (tree) => {
    const index = JSON.parse(readFileSync(join(tree, 'index.json'), 'utf8'));
    const first = index.manifests[0];
    index.manifests = [
      { ...first, annotations: { 'org.opencontainers.image.ref.name': 'example.com/team/busybox:1.35' } },
      { ...first, annotations: { 'org.opencontainers.image.ref.name': 'stable', 'io.containerd.image.name': 'busybox:stable' } },
      { ...first, annotations: { 'org.opencontainers.image.ref.name': 'latest' } },
    ];
    writeFileSync(join(tree, 'index.json'), JSON.stringify(index));
  });
  const images = await openImageArchive(named);
  assert.equal(images.length, 1, 'three entries for one manifest are one image');
  assert.deepEqual(images[0].names, ['example.com/team/busybox:1.35', 'docker.io/library/busybox:stable']);
  // GNU tar wrote "./"-prefixed member names: the lookup must not care.
  assert.ok(readdirSync(join(named, '..', 'tree')).includes('oci-layout'));
});

test('docker-archive as skopeo writes it: <diffID>.tar layers, v1 directories of symlinks', async (t) => {
  const dir = scratch(t, 'strata-image-skopeo-');
  const out = join(dir, 'sk.tar');
  run('skopeo', ['copy', '-q', `oci-archive:${corpusImage('app.oci.tar')}:latest`, `docker-archive:${out}:corpus/app:sk`]);
  const [img] = await openImageArchive(out);
  assert.equal(sha256(img.config), 'sha256:cffa0c1ddee9e38f310ccff2f308395425ec8f263295a2615e0c6c89091c96c3');
  assert.deepEqual(img.names, ['docker.io/corpus/app:sk']);
  const ids = diffIDs(img.config);
  for (const [i, l] of img.layers.entries()) assert.equal((await hashStream(await l.open())).digest, ids[i]);

  // The same archive with manifest.json pointing at the v1 symlinks instead.
  const viaLinks = rebuiltFrom(t, out, (tree) => {
    const links = readdirSync(tree).filter((n) => /^[0-9a-f]{64}$/.test(n));
    const m = JSON.parse(readFileSync(join(tree, 'manifest.json'), 'utf8'));
    m[0].Layers = m[0].Layers.map((p: string) => {
      const link = links.find((d) => readlinkSync(join(tree, d, 'layer.tar')) === `../${p}`);
      assert.ok(link, p);
      return `${link}/layer.tar`;
    });
    writeFileSync(join(tree, 'manifest.json'), JSON.stringify(m));
  });
  const [linked] = await openImageArchive(viaLinks);
  for (const [i, l] of linked.layers.entries()) assert.equal((await hashStream(await l.open())).digest, ids[i]);
});

test('docker-archive as Docker ≥ 25 writes it: manifest.json beside an OCI layout, blobs/sha256 paths', async (t) => {
  const cfg = 'eb18a39c8c8bbd7281a404839f681e7a77802d7be313f036020339eb118c179c';
  const layerDir = 'f97cbc3e36153cfa7ca3331b020ba30f425f28d89195fcd862fdd41bd2174af6';
  let diffID = '';
  const out = rebuilt(t, 'busybox.docker.tar', (tree) => {
    const config = readFileSync(join(tree, `${cfg}.json`));
    diffID = diffIDs(config)[0];
    mkdirSync(join(tree, 'blobs/sha256'), { recursive: true });
    renameSync(join(tree, `${cfg}.json`), join(tree, 'blobs/sha256', cfg));
    renameSync(join(tree, layerDir, 'layer.tar'), join(tree, 'blobs/sha256', diffID.slice(7)));
    rmSync(join(tree, layerDir), { recursive: true });
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${cfg}`, size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: diffID, size: 2211840 }],
    }));
    writeFileSync(join(tree, 'blobs/sha256', sha256(manifest).slice(7)), manifest);
    writeFileSync(join(tree, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [
      { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha256(manifest), size: manifest.length },
    ] }));
    writeFileSync(join(tree, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    writeFileSync(join(tree, 'manifest.json'), JSON.stringify([
      { Config: `blobs/sha256/${cfg}`, RepoTags: ['corpus/busybox:25'], Layers: [`blobs/sha256/${diffID.slice(7)}`] },
    ]));
  });
  const [img] = await openImageArchive(out);
  assert.equal(sha256(img.config), `sha256:${cfg}`);
  assert.deepEqual(img.names, ['docker.io/corpus/busybox:25'], 'names come from manifest.json, as docker load does');
  assert.equal(img.layers[0].digest, diffID, 'a content-addressed layer path gives the store a digest to verify');
  assert.equal((await hashStream(await img.layers[0].open())).digest, diffID);
});

test('an untagged docker-archive entry takes its names from the legacy repositories file', async (t) => {
  const out = rebuilt(t, 'busybox.docker.tar', (tree) => {
    const m = JSON.parse(readFileSync(join(tree, 'manifest.json'), 'utf8'));
    m[0].RepoTags = null;
    writeFileSync(join(tree, 'manifest.json'), JSON.stringify(m));
  });
  const [img] = await openImageArchive(out);
  assert.deepEqual(img.names, ['docker.io/corpus/busybox:latest']);
});

test('legacy docker archive (repositories and v1 layer json only): config rebuilt, diffIDs hashed', async (t) => {
  const original = JSON.parse(run('tar', ['-xOf', corpusImage('app.docker.tar'), '218bd654ad6518a50dd18502bb74f4ae66806f1af0595c42e42d4c47d206aa9d.json']));
  const out = rebuilt(t, 'app.docker.tar', (tree) => {
    rmSync(join(tree, 'manifest.json'));
    rmSync(join(tree, '218bd654ad6518a50dd18502bb74f4ae66806f1af0595c42e42d4c47d206aa9d.json'));
    // Old Docker sometimes stored layers gzip-compressed; the diffID is of the tar inside.
    const base = join(tree, 'e9b4cadb33f216a95635ea18c58e5aebb068185fe74adaddb2f78b7f37c06c3e', 'layer.tar');
    run('gzip', ['-n', base]);
    renameSync(`${base}.gz`, base);
  });
  const images = await openImageArchive(out);
  assert.equal(images.length, 1);
  const [img] = images;
  assert.deepEqual(img.names, ['docker.io/corpus/app:latest']);
  const cfg = JSON.parse(img.config.toString());
  assert.deepEqual(cfg.rootfs.diff_ids, original.rootfs.diff_ids);
  assert.deepEqual(cfg.config.Cmd, ['sh']);
  assert.equal(cfg.config.WorkingDir, '/app');
  assert.equal(cfg.architecture, 'amd64');
  assert.equal(cfg.history.length, 4);
  assert.equal(cfg.id, undefined);
  assert.equal(cfg.parent, undefined);
  assert.equal(img.layers[0].mediaType, 'application/vnd.docker.image.rootfs.diff.tar.gzip');
  for (const [i, l] of img.layers.entries()) {
    assert.equal((await hashStream(await uncompressed(l))).digest, original.rootfs.diff_ids[i], `layer ${i + 1}`);
  }
  const again = await openImageArchive(out);
  assert.ok(again[0].config.equals(img.config), 'the rebuilt config (so the image ID) is stable');

  const broken = rebuilt(t, 'busybox.docker.tar', (tree) => {
    rmSync(join(tree, 'manifest.json'));
    rmSync(join(tree, 'f97cbc3e36153cfa7ca3331b020ba30f425f28d89195fcd862fdd41bd2174af6', 'layer.tar'));
  });
  await assert.rejects(openImageArchive(broken), {
    message: `${broken}: legacy layer f97cbc3e36153cfa7ca3331b020ba30f425f28d89195fcd862fdd41bd2174af6/layer.tar is missing from the archive`,
  });
});

test('per-platform manifests listed directly in index.json under one name: one is chosen', async (t) => {
  const out = rebuilt(t, 'multiarch.oci.tar', (tree) => {
    const nested = JSON.parse(readFileSync(join(tree, 'blobs/sha256/cb764966a276299f0f7baa7847bb78ca0bd4fd23373187bf60f332b69cdb1815'), 'utf8'));
    const manifests = nested.manifests.map((m: object) => ({ ...m, annotations: { 'org.opencontainers.image.ref.name': 'quay.io/corpus/multi:1' } }));
    writeFileSync(join(tree, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests }));
  });
  const amd = await openImageArchive(out);
  assert.equal(amd.length, 1);
  assert.equal(sha256(amd[0].config), 'sha256:b97535383672d104153abbefb3c0bba7ade58252e2870601d2748128a7eff1c4');
  assert.deepEqual(amd[0].names, ['quay.io/corpus/multi:1']);
  const arm = await openImageArchive(out, { platform: 'linux/arm64/v8' });
  assert.equal(sha256(arm[0].config), 'sha256:70a3aacbc75cadde926eb8ecd4019cfcd952feadb135209388975a3ce93425ff');
});
