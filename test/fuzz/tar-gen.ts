// Structured tar inputs: archives built entry by entry from valid-ish headers whose fields are
// now and then replaced with hostile values (octal overflow, base-256, negative numbers, garbage,
// bad checksums), with pax records (sizes, paths, xattrs, sparse maps, broken lengths), GNU long
// names and links, old GNU and pax sparse files, hardlinks and symlinks aimed outside the root,
// whiteouts and opaque markers, and endings that are missing or cut short. The header layout is
// written here byte by byte (not with our encoder) so that any field can hold any bytes.
import fc from 'fast-check';

type Num = { k: 'oct'; v: number } | { k: 'b256'; v: number } | { k: 'neg256'; v: number } | { k: 'raw'; bytes: number[] } | { k: 'spaces'; v: number };

interface Header {
  name: Buffer;
  prefix: Buffer;
  mode: Num;
  uid: Num;
  gid: Num;
  size: Num;
  mtime: Num;
  flag: number;
  link: Buffer;
  magic: 'posix' | 'gnu' | 'v7' | 'junk';
  uname: Buffer;
  gname: Buffer;
  devmajor: Num;
  devminor: Num;
  checksum: 'ok' | 'signed' | 'bad';
  /** Old GNU sparse: up to 4 (offset, size) pairs, the extended flag and the real size. */
  sparse?: { pairs: [Num, Num][]; extended: boolean; real: Num; ext: [Num, Num][][] };
}

export interface Entry {
  header: Header;
  body: Buffer;
  /** Padding after the body: to the block boundary, none, or one block too many. */
  pad: 'ok' | 'none' | 'extra';
}

export interface TarSpec {
  entries: Entry[];
  end: 'two' | 'one' | 'none' | 'cut';
  cutAt: number;
}

const byte = (s: string) => Buffer.from(s, 'latin1');

function numField(n: Num, len: number): Buffer {
  const b = Buffer.alloc(len);
  switch (n.k) {
    case 'oct':
      b.write(Math.max(0, Math.trunc(n.v)).toString(8).padStart(len - 1, '0').slice(-(len - 1)), 0, 'ascii');
      break;
    case 'spaces':
      b.fill(0x20);
      b.write(Math.max(0, Math.trunc(n.v)).toString(8), 1, 'ascii');
      break;
    case 'b256': {
      let v = BigInt(Math.max(0, Math.trunc(n.v)));
      for (let i = len - 1; i > 0; i--) {
        b[i] = Number(v & 0xffn);
        v >>= 8n;
      }
      b[0] = 0x80;
      break;
    }
    case 'neg256': {
      let v = (1n << BigInt(len * 8)) - BigInt(Math.max(1, Math.trunc(n.v)));
      for (let i = len - 1; i >= 0; i--) {
        b[i] = Number(v & 0xffn);
        v >>= 8n;
      }
      b[0] = 0xff;
      break;
    }
    case 'raw':
      Buffer.from(n.bytes.slice(0, len)).copy(b);
      break;
  }
  return b;
}

function put(block: Buffer, off: number, len: number, v: Buffer): void {
  v.copy(block, off, 0, Math.min(len, v.length));
}

function headerBlock(h: Header): Buffer {
  const b = Buffer.alloc(512);
  put(b, 0, 100, h.name);
  put(b, 100, 8, numField(h.mode, 8));
  put(b, 108, 8, numField(h.uid, 8));
  put(b, 116, 8, numField(h.gid, 8));
  put(b, 124, 12, numField(h.size, 12));
  put(b, 136, 12, numField(h.mtime, 12));
  b[156] = h.flag;
  put(b, 157, 100, h.link);
  const magic = { posix: 'ustar\x0000', gnu: 'ustar  \x00', v7: '', junk: 'ustaR\x00x0' }[h.magic];
  put(b, 257, 8, byte(magic));
  put(b, 265, 32, h.uname);
  put(b, 297, 32, h.gname);
  put(b, 329, 8, numField(h.devmajor, 8));
  put(b, 337, 8, numField(h.devminor, 8));
  if (h.sparse) {
    h.sparse.pairs.slice(0, 4).forEach(([o, s], i) => {
      put(b, 386 + i * 24, 12, numField(o, 12));
      put(b, 398 + i * 24, 12, numField(s, 12));
    });
    b[482] = h.sparse.extended ? 1 : 0;
    put(b, 483, 12, numField(h.sparse.real, 12));
  } else {
    put(b, 345, 155, h.prefix);
  }
  b.fill(0x20, 148, 156);
  let u = 0;
  let s = 0;
  for (const x of b) {
    u += x;
    s += x >= 0x80 ? x - 256 : x;
  }
  const sum = h.checksum === 'ok' ? u : h.checksum === 'signed' ? s : u + 1;
  if (sum >= 0) b.write(sum.toString(8).padStart(6, '0') + '\x00 ', 148, 'latin1');
  else b.write('-' + (-sum).toString(8).padStart(5, '0') + '\x00 ', 148, 'latin1');
  return b;
}

function extBlocks(h: Header): Buffer[] {
  if (!h.sparse?.extended) return [];
  const out: Buffer[] = [];
  const ext = h.sparse.ext.length > 0 ? h.sparse.ext : [[]];
  ext.forEach((pairs, i) => {
    const b = Buffer.alloc(512);
    pairs.slice(0, 21).forEach(([o, s], j) => {
      put(b, j * 24, 12, numField(o, 12));
      put(b, j * 24 + 12, 12, numField(s, 12));
    });
    b[504] = i < ext.length - 1 ? 1 : 0;
    out.push(b);
  });
  return out;
}

export function encodeTar(spec: TarSpec): Buffer {
  const parts: Buffer[] = [];
  for (const e of spec.entries) {
    parts.push(headerBlock(e.header), ...extBlocks(e.header), e.body);
    const r = e.body.length % 512;
    if (e.pad === 'ok' && r !== 0) parts.push(Buffer.alloc(512 - r));
    if (e.pad === 'extra') parts.push(Buffer.alloc(512 + (r === 0 ? 0 : 512 - r)));
  }
  if (spec.end === 'two' || spec.end === 'cut') parts.push(Buffer.alloc(1024));
  if (spec.end === 'one') parts.push(Buffer.alloc(512));
  const all = Buffer.concat(parts);
  return spec.end === 'cut' ? all.subarray(0, spec.cutAt % (all.length + 1)) : all;
}

// ---- generators ----

export interface TarGenOptions {
  /** Link targets that point at things outside the root (the sentinel beside it), absolute and relative. */
  escapes: string[];
}

const COMPONENTS = [
  'a', 'b', 'c', 'd', 'etc', 'bin', 'sentinel', '..', '.', '',
  '.wh.a', '.wh.b', '.wh.d', '.wh..wh..opq', '.wh.', '.wh..', '.wh...', '.wh..wh.plnk', '.wh..wh.aufs',
  'x'.repeat(255), 'y'.repeat(256), 'caf\u00e9', '\udcff',
];

function nameBytes(escapes: string[]): fc.Arbitrary<Buffer> {
  const comp = fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom(...COMPONENTS.slice(0, 8)) },
    { weight: 3, arbitrary: fc.constantFrom(...COMPONENTS) },
    { weight: 1, arbitrary: fc.string({ maxLength: 6 }) },
  );
  const path = fc
    .tuple(fc.constantFrom('', '', '', '/', './', '../'), fc.array(comp, { minLength: 1, maxLength: 4 }), fc.constantFrom('', '', '/'))
    .map(([pre, cs, post]) => pre + cs.join('/') + post);
  return fc
    .oneof({ weight: 10, arbitrary: path }, { weight: 2, arbitrary: fc.constantFrom(...escapes, '/', '.', '', 'a/../..', '../sentinel/file') })
    .map((s) => {
      // \udcXX in the pools stands for a raw byte that is not UTF-8
      const parts = s.split(/(\udcff)/).map((p) => (p === '\udcff' ? Buffer.from([0xff]) : Buffer.from(p, 'utf8')));
      return Buffer.concat(parts);
    });
}

const smallNum = (max: number): fc.Arbitrary<Num> =>
  fc.oneof(
    { weight: 12, arbitrary: fc.integer({ min: 0, max }).map((v): Num => ({ k: 'oct', v })) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max }).map((v): Num => ({ k: 'spaces', v })) },
    { weight: 1, arbitrary: fc.oneof(fc.integer({ min: 0, max }), fc.constant(2 ** 53 - 1), fc.constant(2 ** 53 + 2), fc.constant(Number.MAX_VALUE)).map((v): Num => ({ k: 'b256', v })) },
    { weight: 1, arbitrary: fc.integer({ min: 1, max: 2 ** 40 }).map((v): Num => ({ k: 'neg256', v })) },
    { weight: 1, arbitrary: fc.array(fc.oneof(fc.integer({ min: 0x30, max: 0x39 }), fc.constantFrom(0, 0x20, 0x2d, 0x80, 0xff, 0x2b)), { maxLength: 12 }).map((bytes): Num => ({ k: 'raw', bytes })) },
  );

const FLAGS = '0\x00712345678SDxgLKVMNA'.split('').map((c) => c.charCodeAt(0));

function headerArb(escapes: string[]): fc.Arbitrary<Header> {
  return fc.record({
    name: nameBytes(escapes),
    prefix: fc.oneof({ weight: 6, arbitrary: fc.constant(Buffer.alloc(0)) }, { weight: 1, arbitrary: nameBytes(escapes) }),
    mode: smallNum(0o7777),
    uid: smallNum(70000),
    gid: smallNum(70000),
    size: smallNum(2000),
    mtime: smallNum(2 ** 33),
    flag: fc.oneof({ weight: 12, arbitrary: fc.constantFrom(...FLAGS) }, { weight: 1, arbitrary: fc.nat(255) }),
    link: nameBytes(escapes),
    magic: fc.constantFrom('posix', 'posix', 'gnu', 'v7', 'junk'),
    uname: fc.constantFrom(Buffer.from('root'), Buffer.alloc(0), Buffer.from([0xff, 0x41])),
    gname: fc.constantFrom(Buffer.from('root'), Buffer.alloc(0)),
    devmajor: smallNum(300),
    devminor: smallNum(300),
    checksum: fc.oneof({ weight: 30, arbitrary: fc.constant('ok' as const) }, { weight: 1, arbitrary: fc.constantFrom('signed' as const, 'bad' as const) }),
  });
}

const sparsePair = fc.tuple(smallNum(1 << 20), smallNum(4096));
const oldSparse = fc.record({
  pairs: fc.array(sparsePair, { maxLength: 4 }),
  extended: fc.boolean(),
  real: smallNum(1 << 22),
  ext: fc.array(fc.array(sparsePair, { maxLength: 21 }), { maxLength: 3 }),
});

const XATTRS = ['SCHILY.xattr.user.a', 'SCHILY.xattr.user.b', 'SCHILY.xattr.security.capability', 'SCHILY.xattr.trusted.overlay.opaque', 'SCHILY.xattr.trusted.x', 'SCHILY.xattr.', 'SCHILY.xattr.bogus'];
const PAX_KEYS = ['path', 'linkpath', 'size', 'uid', 'gid', 'uname', 'gname', 'mtime', 'atime', 'ctime', 'hdrcharset', 'comment', ...XATTRS,
  'GNU.sparse.major', 'GNU.sparse.minor', 'GNU.sparse.name', 'GNU.sparse.realsize', 'GNU.sparse.size', 'GNU.sparse.map', 'GNU.sparse.offset', 'GNU.sparse.numbytes', 'GNU.sparse.numblocks'];

function paxValue(escapes: string[]): fc.Arbitrary<Buffer> {
  return fc.oneof(
    fc.integer({ min: 0, max: 5000 }).map((n) => Buffer.from(String(n))),
    fc.constantFrom('0', '1', '-1', '1.5', '1e3', '9007199254740993', '99999999999999999999', '', ' ', '0,10,20,30', '0,10,', '1,2,3', 'y').map((s) => Buffer.from(s)),
    nameBytes(escapes),
    fc.uint8Array({ maxLength: 24 }).map((a) => Buffer.from(a)),
  );
}

/** A pax header body: records with their length right, or off by some bytes, or junk. */
function paxBody(escapes: string[]): fc.Arbitrary<Buffer> {
  const record = fc.tuple(fc.constantFrom(...PAX_KEYS), paxValue(escapes), fc.oneof({ weight: 20, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -5, max: 5 }) }), fc.boolean()).map(([k, v, delta, nl]) => {
    const inner = Buffer.concat([Buffer.from(` ${k}=`), v, Buffer.from(nl || delta === 0 ? '\n' : '')]);
    let len = inner.length + 1;
    while (String(len).length + inner.length !== len) len = String(len).length + inner.length;
    return Buffer.concat([Buffer.from(String(len + delta)), inner]);
  });
  return fc.oneof({ weight: 10, arbitrary: fc.array(record, { minLength: 1, maxLength: 5 }).map((rs) => Buffer.concat(rs)) }, { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)) });
}

/** A pax sparse 1.0 map at the start of the data: count, then offset/size lines, block padded. */
const sparseMap10 = fc.array(fc.tuple(fc.nat(8192), fc.nat(600)), { maxLength: 4 }).map((pairs) => {
  const text = [String(pairs.length), ...pairs.flatMap(([o, s]) => [String(o), String(s)])].join('\n') + '\n';
  const b = Buffer.alloc(Math.ceil(text.length / 512) * 512);
  b.write(text, 'latin1');
  return b;
});

function entryArb(escapes: string[]): fc.Arbitrary<Entry[]> {
  const h = headerArb(escapes);
  const body = fc.oneof({ weight: 6, arbitrary: fc.uint8Array({ maxLength: 700 }).map((a) => Buffer.from(a)) }, { weight: 1, arbitrary: fc.nat(3000).map((n) => Buffer.alloc(n)) });
  const pad = fc.oneof({ weight: 30, arbitrary: fc.constant('ok' as const) }, { weight: 1, arbitrary: fc.constantFrom('none' as const, 'extra' as const) });
  // Most of the time the size field tells the body's real length.
  const withSize = (hd: Header, b: Buffer, keep: boolean): Header => (keep ? hd : { ...hd, size: { k: 'oct', v: b.length } });
  const plain = fc.tuple(h, body, pad, fc.nat(9)).map(([hd, b, p, r]) => [{ header: withSize(hd, b, r === 0), body: b, pad: p }]);
  const meta = (flag: string, bodyArb: fc.Arbitrary<Buffer>) =>
    fc.tuple(h, bodyArb, h, body, fc.nat(9)).map(([mh, mb, fh, fb, r]) => [
      { header: { ...mh, flag: flag.charCodeAt(0), size: { k: 'oct', v: mb.length } as Num }, body: mb, pad: 'ok' as const },
      { header: withSize(fh, fb, r === 0), body: fb, pad: 'ok' as const },
    ]);
  const gnuLong = (flag: string) => meta(flag, nameBytes(escapes).map((n) => Buffer.concat([n, Buffer.alloc(1)])));
  const oldSparseEntry = fc.tuple(h, oldSparse, body).map(([hd, sp, b]) => [{ header: { ...hd, flag: 0x53, magic: 'gnu' as const, sparse: sp, size: { k: 'oct', v: b.length } as Num }, body: b, pad: 'ok' as const }]);
  const sparse10 = fc.tuple(h, sparseMap10, body, fc.nat(8192)).map(([hd, map, b, real]) => {
    const pax = Buffer.from(`22 GNU.sparse.major=1\n22 GNU.sparse.minor=0\n${paxLine('GNU.sparse.realsize', String(real))}`);
    const data = Buffer.concat([map, b]);
    return [
      { header: { ...hd, flag: 0x78, size: { k: 'oct', v: pax.length } as Num }, body: pax, pad: 'ok' as const },
      { header: { ...hd, flag: 0x30, size: { k: 'oct', v: data.length } as Num }, body: data, pad: 'ok' as const },
    ];
  });
  return fc.oneof(
    { weight: 10, arbitrary: plain },
    { weight: 4, arbitrary: meta('x', paxBody(escapes)) },
    { weight: 1, arbitrary: meta('g', paxBody(escapes)) },
    { weight: 2, arbitrary: gnuLong('L') },
    { weight: 2, arbitrary: gnuLong('K') },
    { weight: 1, arbitrary: oldSparseEntry },
    { weight: 1, arbitrary: sparse10 },
  );
}

function paxLine(k: string, v: string): string {
  const inner = ` ${k}=${v}\n`;
  let len = inner.length + 1;
  while (String(len).length + inner.length !== len) len = String(len).length + inner.length;
  return `${len}${inner}`;
}

/** Whole archives: 1 to `max` entries (pax and long-name headers count with their entry). */
export function tarSpecArb(opts: TarGenOptions, max = 8): fc.Arbitrary<TarSpec> {
  return fc.record({
    entries: fc.array(entryArb(opts.escapes), { minLength: 1, maxLength: max }).map((es) => es.flat()),
    end: fc.oneof({ weight: 10, arbitrary: fc.constant('two' as const) }, { weight: 1, arbitrary: fc.constantFrom('one' as const, 'none' as const, 'cut' as const) }),
    cutAt: fc.nat(),
  });
}
