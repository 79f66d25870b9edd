// Blob transport: resume after a connection cut mid-blob, refusal of a blob whose bytes do not
// match its digest, and redirects to another host that must not carry our Authorization.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { openSync, readSync, writeSync, closeSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { RegistryClient } from '../../src/registry/client.js';
import { resolveImage } from '../../src/registry/pull.js';
import { drainDigest, fileCleanup, startDroppingProxy, startRegistry, type TestRegistry } from '../helpers/registry.js';

let reg: TestRegistry;
const cleanup = fileCleanup();
after(cleanup.run);

before(async () => {
  reg = await startRegistry(cleanup.add);
  await reg.load('busybox');
  await reg.load('xattr');
});

test('a blob download cut midway resumes with a Range request and yields the right bytes', async (t) => {
  const direct = await resolveImage(`${reg.host}/corpus/busybox:latest`);
  const layer = direct.source.layers[0];
  await direct.close();
  const proxy = await startDroppingProxy((fn) => t.after(fn), reg.port, layer.digest!, 300_000);
  const r = await resolveImage(`${proxy.host}/corpus/busybox:latest`, { backoffMs: 10 });
  try {
    const got = await drainDigest(await r.source.layers[0].open());
    assert.equal(got.digest, layer.digest);
    assert.equal(got.size, layer.size);
    assert.equal(proxy.drops, 1);
    const resumed = proxy.requests.filter((q) => q.includes(`/blobs/${layer.digest}`) && /\r\nrange: bytes=\d+-/i.test(q));
    assert.equal(resumed.length, 1, 'exactly one ranged request');
    const from = Number(/range: bytes=(\d+)-/i.exec(resumed[0])![1]);
    assert.ok(from > 0 && from < layer.size!, `resumed from byte ${from}`);
  } finally {
    await r.close();
  }
});

test('a blob whose stored bytes do not match its digest is refused at the end of the stream', async () => {
  const r = await resolveImage(`${reg.host}/corpus/xattr:latest`);
  try {
    const layer = r.source.layers[1];
    const file = reg.blobPath(layer.digest!);
    // Flip one byte in the middle: same size, different content.
    const fd = openSync(file, 'r+');
    const pos = Math.floor(layer.size! / 2);
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, pos);
    b[0] ^= 0xff;
    writeSync(fd, b, 0, 1, pos);
    closeSync(fd);
    await assert.rejects(drainDigest(await layer.open()), /digest mismatch for layer [0-9a-f]{12} of .*: blob sha256:[0-9a-f]{64}: expected sha256:[0-9a-f]{64}, got sha256:[0-9a-f]{64}/);
  } finally {
    await r.close();
  }
});

test('a redirect to another host drops Authorization; the registry itself gets it', async (t) => {
  const content = Buffer.alloc(3 << 20, 7);
  const digest = `sha256:${createHash('sha256').update(content).digest('hex')}`;
  const seenByStorage: IncomingHttpHeaders[] = [];
  const seenByRegistry: IncomingHttpHeaders[] = [];
  const storage = createServer((req, res) => {
    seenByStorage.push(req.headers);
    res.writeHead(200, { 'content-length': String(content.length) }).end(content);
  });
  await new Promise<void>((r) => storage.listen(0, '127.0.0.1', r));
  const storagePort = (storage.address() as AddressInfo).port;
  const registry: Server = createServer((req, res) => {
    seenByRegistry.push(req.headers);
    if (req.headers.authorization !== `Basic ${Buffer.from('u:p').toString('base64')}`) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="test"' }).end();
      return;
    }
    if (req.url === `/v2/repo/blobs/${digest}`) {
      res.writeHead(307, { location: `http://localhost:${storagePort}/bucket/blob?sig=1` }).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
  await new Promise<void>((r) => registry.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => (storage.closeAllConnections(), storage.close(() => r()))));
  t.after(() => new Promise<void>((r) => (registry.closeAllConnections(), registry.close(() => r()))));
  const host = `127.0.0.1:${(registry.address() as AddressInfo).port}`;

  const client = new RegistryClient({ credentials: { [host]: { username: 'u', password: 'p' } } });
  try {
    const got = await drainDigest(client.openBlob(host, 'repo', digest, { size: content.length }));
    assert.equal(got.digest, digest);
    assert.equal(seenByStorage.length, 1);
    assert.equal(seenByStorage[0].authorization, undefined);
    assert.ok(seenByRegistry.some((h) => h.authorization?.startsWith('Basic ')));
  } finally {
    await client.close();
  }
});
