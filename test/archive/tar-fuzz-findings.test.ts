// Inputs the fuzzer (test/fuzz, target "tar") found that crashed the tar reader, kept as
// regression tests: each must now end in the reader's own LayerArchiveError or read cleanly.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { LayerArchiveError } from '../../src/archive/tar/header.js';
import { readTar } from '../../src/archive/tar/reader.js';

/** A header block: the given fields written as they are (latin1), checksum computed. */
function block(fields: Record<number, string>): Buffer {
  const b = Buffer.alloc(512);
  for (const [off, v] of Object.entries(fields)) b.write(v, Number(off), 'latin1');
  b.write('ustar\x0000', 257, 'latin1');
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const x of b) sum += x;
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  return b;
}

async function list(chunks: Buffer[]): Promise<string[]> {
  const names: string[] = [];
  for await (const e of readTar(Readable.from(chunks))) {
    names.push(e.header.name);
    for await (const _ of e.body) void _;
  }
  return names;
}

test('an empty GNU long name read when no input is buffered (fuzz: TypeError in ByteSource.read)', async () => {
  // The long-name header ends one input chunk exactly, so its zero-byte body is read from an empty buffer.
  const longName = block({ 0: '././@LongLink', 124: '00000000000', 156: 'L' });
  const file = block({ 0: 'f', 100: '0000644', 124: '00000000000', 156: '0' });
  // An empty long name replaces the header's name, as in Go's archive/tar: the entry is the root.
  assert.deepEqual(await list([longName, file, Buffer.alloc(1024)]), ['.']);
  const pax = block({ 0: 'pax', 124: '00000000000', 156: 'x' });
  assert.deepEqual(await list([pax, file, Buffer.alloc(1024)]), ['f']);
});

test('negative and 33-bit uid, gid and device numbers (fuzz: RangeError from lchown in the applier)', async () => {
  const neg = '\xff'.repeat(7) + '\xfe'; // base-256 -2
  const big = '\x80\x00\x00\x01\x00\x00\x00\x00'; // base-256 2^32
  for (const [field, value] of [[108, neg], [116, neg], [108, big], [116, big]] as const) {
    const h = block({ 0: 'f', 100: '0000644', 124: '00000000000', 156: '0', [field]: value });
    await assert.rejects(list([h, Buffer.alloc(1024)]), (e: Error) => e instanceof LayerArchiveError && /out of range/.test(e.message));
  }
  const dev = block({ 0: 'c', 100: '0000644', 124: '00000000000', 156: '3', 329: neg });
  await assert.rejects(list([dev, Buffer.alloc(1024)]), /devmajor -2 out of range/);
  const pax = Buffer.from('18 uid=4294967296\n');
  const paxHeader = block({ 0: 'pax', 124: pax.length.toString(8).padStart(11, '0'), 156: 'x' });
  const file = block({ 0: 'f', 100: '0000644', 124: '00000000000', 156: '0' });
  await assert.rejects(list([paxHeader, pax, Buffer.alloc(512 - pax.length), file, Buffer.alloc(1024)]), /uid 4294967296 out of range/);
  // The largest 32-bit ids still read.
  const max = block({ 0: 'f', 100: '0000644', 108: '37777777777', 124: '00000000000', 156: '0' });
  assert.deepEqual(await list([max, Buffer.alloc(1024)]), ['f']);
});

test('a symlink or hardlink with an empty target (fuzz: ENOENT from symlink in the applier)', async () => {
  for (const flag of ['1', '2']) {
    const h = block({ 0: 'l', 100: '0000777', 124: '00000000000', 156: flag });
    await assert.rejects(list([h, Buffer.alloc(1024)]), (e: Error) => e instanceof LayerArchiveError && /"l" has an empty target/.test(e.message));
  }
});

test('an old GNU sparse file claiming 2^53 bytes is refused, not expanded (fuzz: hang in the applier)', async () => {
  const huge = '\x80\x00\x00\x00\x00\x1f' + '\xff'.repeat(6); // base-256 2^53 - 1
  const h = block({ 0: 's', 100: '0000644', 124: '00000000000', 156: 'S', 483: huge });
  await assert.rejects(list([h, Buffer.alloc(1024)]), (e: Error) => e instanceof LayerArchiveError && /not between 0 and the \d+ bytes a layer may expand/.test(e.message));
  const pax = Buffer.from('22 GNU.sparse.major=1\n22 GNU.sparse.minor=0\n40 GNU.sparse.realsize=9007199254740991\n');
  const paxHeader = block({ 0: 'pax', 124: pax.length.toString(8).padStart(11, '0'), 156: 'x' });
  const file = block({ 0: 'f', 100: '0000644', 124: '00000001000', 156: '0' });
  const map = Buffer.alloc(512);
  map.write('0\n', 'latin1');
  await assert.rejects(list([paxHeader, pax, Buffer.alloc(512 - pax.length), file, map, Buffer.alloc(1024)]), /not between 0 and the \d+ bytes a layer may expand/);
});

test('an old GNU sparse file with a negative real size (fuzz: entry of size -1)', async () => {
  const minusOne = '\xff'.repeat(12); // base-256 -1
  const h = block({ 0: 's', 100: '0000644', 124: '00000000000', 156: 'S', 483: minusOne });
  await assert.rejects(list([h, Buffer.alloc(1024)]), /"s" of -1 bytes: not between 0 and/);
});

test('a pax mtime of 1e20 seconds is refused (fuzz: EINVAL from futimes in the applier)', async () => {
  const pax = Buffer.from('31 mtime=100000000000000000000\n');
  const paxHeader = block({ 0: 'pax', 124: pax.length.toString(8).padStart(11, '0'), 156: 'x' });
  const file = block({ 0: 'f', 100: '0000644', 124: '00000000000', 156: '0' });
  await assert.rejects(list([paxHeader, pax, Buffer.alloc(512 - pax.length), file, Buffer.alloc(1024)]), (e: Error) => e instanceof LayerArchiveError && /invalid pax mtime value/.test(e.message));
});
