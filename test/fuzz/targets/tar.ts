// Target: the tar reader (src/archive/tar/reader.ts). Its clean error is LayerArchiveError.
// Inputs are structured archives (tar-gen.ts) and mutated corpus layers, fed in chunks of a
// size the input picks (reads that span chunks), with each entry's body read whole, in part or
// not at all. A body read to its end must hold exactly header.size bytes.
import fc from 'fast-check';
import { Readable } from 'node:stream';
import { LayerArchiveError } from '../../../src/archive/tar/header.js';
import { readTar } from '../../../src/archive/tar/reader.js';
import { corpusSamples } from '../corpus.js';
import { mutatedBytes } from '../mutate.js';
import { encodeTar, tarSpecArb } from '../tar-gen.js';
import { FuzzViolation, type FuzzTarget } from '../target.js';

export interface TarInput {
  bytes: Buffer;
  chunk: number;
  /** Per entry: 0 read the body whole, 1 read one piece, 2 leave it. */
  reads: number[];
}

export function chunks(bytes: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size));
  return out;
}

/** Structured archives or mutated corpus layers (half and half). */
export async function tarBytesArb(escapes: string[]): Promise<fc.Arbitrary<Buffer>> {
  const { layers } = await corpusSamples(false);
  return fc.oneof(tarSpecArb({ escapes }).map(encodeTar), mutatedBytes(layers));
}

export async function readAll(input: TarInput): Promise<void> {
  let i = 0;
  for await (const { header, body } of readTar(Readable.from(chunks(input.bytes, input.chunk)))) {
    if (header.size < 0 || !Number.isSafeInteger(header.size)) throw new FuzzViolation(`entry ${JSON.stringify(header.name)} has size ${header.size}`);
    if (header.name !== '.' && (header.name.startsWith('/') || header.name.split('/').some((c) => c === '' || c === '.'))) {
      throw new FuzzViolation(`entry name ${JSON.stringify(header.name)} is not normalised`);
    }
    const how = input.reads[i++ % input.reads.length] ?? 0;
    if (how === 2) continue;
    let n = 0;
    for await (const c of body) {
      n += c.length;
      if (how === 1) break;
    }
    if (how === 0 && n !== header.size) throw new FuzzViolation(`entry ${JSON.stringify(header.name)}: body of ${n} bytes, header says ${header.size}`);
  }
}

export async function make(): Promise<FuzzTarget<TarInput>> {
  return {
    name: 'tar',
    arbitrary: fc.record({
      bytes: await tarBytesArb(['/sentinel', '../sentinel']),
      chunk: fc.oneof(fc.constant(1 << 20), fc.integer({ min: 1, max: 1500 })),
      reads: fc.array(fc.nat(2), { minLength: 1, maxLength: 6 }),
    }),
    run: readAll,
    clean: (err) => err instanceof LayerArchiveError,
    bytes: (input) => input.bytes,
  };
}
