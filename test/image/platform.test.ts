import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  formatPlatform,
  hostPlatform,
  normalizePlatform,
  parsePlatform,
  platformMatches,
  selectManifest,
} from '../../src/image/platform.js';
import type { Descriptor } from '../../src/image/types.js';

const d = (digest: string, platform?: Descriptor['platform']): Descriptor => ({
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  digest: 'sha256:' + digest.repeat(64),
  size: 1,
  ...(platform ? { platform } : {}),
});

test('host platform is linux/amd64 on this machine', () => {
  assert.equal(process.arch, 'x64', 'these expectations are for an x86-64 host');
  assert.deepEqual(hostPlatform(), { os: 'linux', architecture: 'amd64' });
});

test('parsePlatform takes os/arch[/variant] and rejects anything else', () => {
  assert.deepEqual(parsePlatform('linux/arm64/v8'), { os: 'linux', architecture: 'arm64', variant: 'v8' });
  assert.deepEqual(parsePlatform('linux/amd64'), { os: 'linux', architecture: 'amd64' });
  for (const bad of ['linux', 'linux/', '/amd64', 'linux/arm/v7/x', '', 'linux/am d64']) {
    assert.throws(() => parsePlatform(bad), /invalid platform .*os\/arch\[\/variant\]/, bad);
  }
});

test('normalisation folds aliases and default variants like containerd', () => {
  assert.deepEqual(normalizePlatform({ os: 'Linux', architecture: 'x86_64' }), { os: 'linux', architecture: 'amd64' });
  assert.deepEqual(normalizePlatform({ os: 'linux', architecture: 'aarch64' }), { os: 'linux', architecture: 'arm64' });
  assert.deepEqual(normalizePlatform({ os: 'linux', architecture: 'arm64', variant: 'v8' }), { os: 'linux', architecture: 'arm64' });
  assert.deepEqual(normalizePlatform({ os: 'linux', architecture: 'arm' }), { os: 'linux', architecture: 'arm', variant: 'v7' });
  assert.deepEqual(normalizePlatform({ os: 'linux', architecture: 'armel' }), { os: 'linux', architecture: 'arm', variant: 'v6' });
  assert.deepEqual(normalizePlatform({ os: 'linux', architecture: 'i386' }), { os: 'linux', architecture: '386' });
  assert.ok(platformMatches(parsePlatform('linux/arm64'), { os: 'linux', architecture: 'arm64', variant: 'v8' }));
  assert.ok(platformMatches(parsePlatform('linux/arm64/v8'), { os: 'linux', architecture: 'arm64' }));
  assert.ok(!platformMatches(parsePlatform('linux/arm/v6'), { os: 'linux', architecture: 'arm', variant: 'v7' }));
  assert.ok(!platformMatches(parsePlatform('linux/amd64'), { os: 'windows', architecture: 'amd64' }));
  assert.equal(formatPlatform({ os: 'linux', architecture: 'arm64', variant: 'v8' }), 'linux/arm64/v8');
});

test('selectManifest picks the matching platform and names the choices when none fits', () => {
  const list = [
    d('a', { os: 'linux', architecture: 'arm64', variant: 'v8' }),
    d('b', { os: 'linux', architecture: 'amd64' }),
    d('c'),
  ];
  assert.equal(selectManifest(list, parsePlatform('linux/amd64')), list[1]);
  assert.equal(selectManifest(list, parsePlatform('linux/arm64')), list[0]);
  assert.throws(
    () => selectManifest(list, parsePlatform('linux/s390x')),
    /^InvalidInputError: no image for platform linux\/s390x in index \(it has: linux\/arm64\/v8, linux\/amd64\)$/,
  );
  assert.equal(selectManifest([d('c'), d('e')], parsePlatform('linux/amd64')).digest, 'sha256:' + 'c'.repeat(64));
  assert.throws(() => selectManifest([], parsePlatform('linux/amd64')), /lists no manifests/);
});
