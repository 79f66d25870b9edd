// Inputs the fuzzer (test/fuzz, target "image") found that crashed manifest/index handling,
// kept as regression tests: each must now be refused by the parser with its own error.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hostPlatform, selectManifest } from '../../src/image/platform.js';
import { parseIndex, parseManifest } from '../../src/image/types.js';

const M = 'application/vnd.oci.image.manifest.v1+json';
const D = `sha256:${'a'.repeat(64)}`;

test('an index entry whose platform is not {os, architecture} strings is refused (fuzz: TypeError in normalizePlatform)', () => {
  for (const platform of [null, [], 'linux/amd64', {}, { os: 'linux' }, { os: 1, architecture: 'amd64' }, { os: 'linux', architecture: 'amd64', variant: 8 }]) {
    const text = JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: M, digest: D, size: 1, platform }, { mediaType: M, digest: D, size: 1, platform: { os: 'linux', architecture: 'arm64' } }] });
    assert.throws(
      () => selectManifest(parseIndex(text).manifests, hostPlatform()),
      (e: Error) => e.constructor === Error && /index entry 1: descriptor has an invalid platform/.test(e.message),
      JSON.stringify(platform),
    );
  }
  const ok = { schemaVersion: 2, manifests: [{ mediaType: M, digest: D, size: 1, platform: { os: 'linux', architecture: 'amd64', variant: 'v1' } }] };
  assert.equal(selectManifest(parseIndex(JSON.stringify(ok)).manifests, { os: 'linux', architecture: 'amd64' }).digest, D);
  const layerPlatform = { schemaVersion: 2, config: { mediaType: M, digest: D, size: 1 }, layers: [{ mediaType: M, digest: D, size: 1, platform: null }] };
  assert.throws(() => parseManifest(JSON.stringify(layerPlatform)), /manifest layer 1: descriptor has an invalid platform/);
});
