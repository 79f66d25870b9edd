import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import { DigestStream, sha256Digest } from '../../src/image/digest.js';
import { digestHex, isDigest, validateDigest } from '../../src/reference/digest.js';

const data = Buffer.from('hello layer\n'.repeat(100_000));
const good = 'sha256:' + createHash('sha256').update(data).digest('hex');

function sink(): { w: Writable; bytes: () => Buffer } {
  const parts: Buffer[] = [];
  return {
    w: new Writable({ write(c: Buffer, _e, cb) { parts.push(c); cb(); } }),
    bytes: () => Buffer.concat(parts),
  };
}

function chunks(): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < data.length; i += 65536) parts.push(data.subarray(i, i + 65536));
  return Readable.from(parts);
}

test('sha256Digest and validation', () => {
  assert.equal(sha256Digest(data), good);
  assert.equal(sha256Digest(''), 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  assert.ok(isDigest(good));
  assert.equal(digestHex(good), good.slice(7));
  assert.throws(() => validateDigest('sha256:abc'), /^InvalidInputError: invalid digest: "sha256:abc"$/);
  assert.throws(() => validateDigest('sha256:' + 'A'.repeat(64)), /invalid digest/);
  assert.throws(() => validateDigest('sha512:' + 'a'.repeat(128), 'layer digest'), /^InvalidInputError: unsupported layer digest algorithm: sha512/);
  assert.throws(() => validateDigest(42), /expected a string/);
});

test('DigestStream passes the bytes through unchanged and reports digest and size', async () => {
  const ds = new DigestStream({ expected: good, expectedSize: data.length });
  const s = sink();
  await pipeline(chunks(), ds, s.w);
  assert.ok(s.bytes().equals(data));
  assert.equal(ds.digest, good);
  assert.equal(ds.size, data.length);
});

test('DigestStream errors at the end on a digest mismatch', async () => {
  const wrong = 'sha256:' + '0'.repeat(64);
  await assert.rejects(
    pipeline(chunks(), new DigestStream({ expected: wrong, what: 'layer 1' }), sink().w),
    { name: 'DigestMismatchError', message: `digest mismatch for layer 1: expected ${wrong}, got ${good}` },
  );
});

test('DigestStream errors on too many and too few bytes', async () => {
  await assert.rejects(
    pipeline(chunks(), new DigestStream({ expectedSize: 1000, what: 'blob' }), sink().w),
    { name: 'SizeMismatchError', message: /^size mismatch for blob: expected 1000 bytes, got \d+$/ },
  );
  await assert.rejects(
    pipeline(chunks(), new DigestStream({ expectedSize: data.length + 1, what: 'blob' }), sink().w),
    { name: 'SizeMismatchError', message: `size mismatch for blob: expected ${data.length + 1} bytes, got ${data.length}` },
  );
});

test('reading the digest before the end is an error', () => {
  assert.throws(() => new DigestStream({ what: 'x' }).digest, /digest of x read before the stream ended/);
});
