// The seeded byte mutator: an arbitrary that picks one of the real inputs and applies a few
// edits to it (bit flips, set bytes, "interesting" values in a 512-byte block's numeric fields,
// insertions, deletions, block duplication, truncation, splices from another input). Being a
// fast-check arbitrary, it is seeded, replayable by path, and shrinks toward fewer edits.
import fc from 'fast-check';

type Edit =
  | { op: 'flip'; at: number; bit: number }
  | { op: 'set'; at: number; value: number }
  | { op: 'field'; block: number; field: number; bytes: number[] }
  | { op: 'insert'; at: number; bytes: number[] }
  | { op: 'delete'; at: number; len: number }
  | { op: 'dup-block'; block: number; to: number }
  | { op: 'truncate'; at: number }
  | { op: 'splice'; at: number; from: number; src: number; len: number };

/** Offsets of a ustar header's fields, so that edits land where parsers look. */
const FIELDS = [0, 100, 108, 116, 124, 136, 148, 156, 157, 257, 263, 265, 297, 329, 337, 345, 386, 482, 483];
const INTERESTING = [0x00, 0x20, 0x30, 0x37, 0x38, 0x7f, 0x80, 0xff, 0x2f, 0x2e, 0x0a, 0x3d];

const editArb: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat(7) }),
  fc.record({ op: fc.constant('set' as const), at: fc.nat(), value: fc.oneof(fc.constantFrom(...INTERESTING), fc.nat(255)) }),
  fc.record({
    op: fc.constant('field' as const),
    block: fc.nat(),
    field: fc.constantFrom(...FIELDS),
    bytes: fc.array(fc.oneof(fc.constantFrom(...INTERESTING), fc.integer({ min: 0x30, max: 0x37 }), fc.nat(255)), { minLength: 1, maxLength: 12 }),
  }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), bytes: fc.array(fc.nat(255), { minLength: 1, maxLength: 600 }) }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 1024 }) }),
  fc.record({ op: fc.constant('dup-block' as const), block: fc.nat(), to: fc.nat() }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('splice' as const), at: fc.nat(), from: fc.nat(), src: fc.nat(), len: fc.integer({ min: 1, max: 4096 }) }),
);

function apply(base: Buffer, edits: Edit[], pool: Buffer[]): Buffer {
  let b = Buffer.from(base);
  for (const e of edits) {
    const n = b.length;
    if (n === 0) break;
    switch (e.op) {
      case 'flip':
        b[e.at % n] = b[e.at % n]! ^ (1 << e.bit);
        break;
      case 'set':
        b[e.at % n] = e.value;
        break;
      case 'field': {
        const blocks = Math.max(1, Math.floor(n / 512));
        const at = (e.block % blocks) * 512 + e.field;
        for (let i = 0; i < e.bytes.length && at + i < n; i++) b[at + i] = e.bytes[i]!;
        break;
      }
      case 'insert':
        b = Buffer.concat([b.subarray(0, e.at % n), Buffer.from(e.bytes), b.subarray(e.at % n)]);
        break;
      case 'delete':
        b = Buffer.concat([b.subarray(0, e.at % n), b.subarray((e.at % n) + e.len)]);
        break;
      case 'dup-block': {
        const blocks = Math.max(1, Math.floor(n / 512));
        const blk = b.subarray((e.block % blocks) * 512, (e.block % blocks) * 512 + 512);
        const to = (e.to % blocks) * 512;
        b = Buffer.concat([b.subarray(0, to), blk, b.subarray(to)]);
        break;
      }
      case 'truncate':
        b = b.subarray(0, e.at % n);
        break;
      case 'splice': {
        const src = pool[e.src % pool.length]!;
        if (src.length === 0) break;
        const from = e.from % src.length;
        b = Buffer.concat([b.subarray(0, e.at % n), src.subarray(from, from + e.len), b.subarray(e.at % n)]);
        break;
      }
    }
  }
  return b;
}

/** Mutated copies of the inputs in pool: 1 to `maxEdits` edits of one of them. */
export function mutatedBytes(pool: Buffer[], maxEdits = 6): fc.Arbitrary<Buffer> {
  if (pool.length === 0) throw new Error('mutatedBytes: no inputs to mutate');
  return fc
    .tuple(fc.nat(pool.length - 1), fc.array(editArb, { minLength: 1, maxLength: maxEdits }))
    .map(([i, edits]) => apply(pool[i]!, edits, pool));
}

type CharEdit = { at: number; op: 'insert' | 'delete' | 'replace' | 'repeat'; c: string; n: number };

function applyEdits(s: string, edits: CharEdit[]): string {
  for (const e of edits) {
    const at = s.length === 0 ? 0 : e.at % (s.length + 1);
    if (e.op === 'insert') s = s.slice(0, at) + e.c + s.slice(at);
    else if (e.op === 'delete') s = s.slice(0, at) + s.slice(at + 1);
    else if (e.op === 'replace') s = s.slice(0, at) + e.c + s.slice(at + 1);
    // A stretch repeated many times: where backtracking regular expressions and deep nesting blow up.
    else s = s.slice(0, at) + s.slice(at, at + 3).repeat(e.n) + s.slice(at + 3);
  }
  return s;
}

/**
 * Strings of a grammar with one to three character edits: an insertion, deletion or
 * replacement from `chars` (or any three characters), or a short stretch repeated 2..2000 times.
 */
export function editedString(grammar: fc.Arbitrary<string>, chars: string[]): fc.Arbitrary<string> {
  const edit = fc.record({
    at: fc.nat(),
    op: fc.constantFrom('insert' as const, 'delete' as const, 'replace' as const, 'repeat' as const),
    c: fc.oneof(fc.constantFrom(...chars), fc.string({ maxLength: 3 })),
    n: fc.integer({ min: 2, max: 2000 }),
  });
  return fc.tuple(grammar, fc.array(edit, { minLength: 1, maxLength: 3 })).map(([s, es]) => applyEdits(s, es));
}
