// Inputs the fuzzer (test/fuzz, target "tar") found that crashed the tar reader, kept as
// regression tests: each must now end in the reader's own LayerArchiveError or read cleanly.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
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
