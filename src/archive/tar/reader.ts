// Streaming tar reader: ustar, pax (global and per-file), GNU long names and old sparse, pax
// sparse 0.0/0.1/1.0, base-256 numbers, v7 headers. One entry at a time, constant memory.
import type { Readable } from 'node:stream';
import {
  BLOCK,
  LayerArchiveError,
  bytesToName,
  checkName,
  cString,
  headerChecksums,
  isZeroBlock,
  normalizePath,
  paddingFor,
  parseNumeric,
  type EntryType,
  type TarHeader,
} from './header.js';
import { ByteSource } from './source.js';

export interface TarEntry {
  header: TarHeader;
  /** Content ('file' only; empty otherwise), to be read before the next entry or never. Sparse entries: holes expanded as zeros. */
  body: AsyncIterable<Buffer>;
  /** Byte offset in the input where this entry's data starts (valid for non-sparse entries). */
  offset: number;
}

const CHUNK = 1 << 20;
const ZEROS = Buffer.alloc(CHUNK);
/** Largest pax / GNU long-name body we hold in memory. */
const MAX_META = 16 << 20;
/**
 * Largest real size of a sparse file: its holes are handed out as zeros a chunk at a time, so a
 * few bytes of header claiming 2^53 bytes would keep a reader busy for days.
 */
const MAX_SPARSE_SIZE = 2 ** 36;

const TYPES: Record<string, EntryType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'dir',
  '6': 'fifo',
  S: 'file',
  D: 'dir',
};

interface Segment {
  off: number;
  len: number;
}

/** Where an entry's bytes come from: stored data, possibly with a sparse map. */
class BodyPlan {
  private pos = 0;
  private seg = 0;
  constructor(
    private readonly src: ByteSource,
    private readonly name: string,
    public stored: number,
    private readonly realSize: number,
    private readonly map: Segment[] | null,
  ) {}

  private async fromSource(max: number): Promise<Buffer> {
    const p = await this.src.piece(Math.min(max, this.stored));
    if (p === null) throw truncated(this.name);
    this.stored -= p.length;
    return p;
  }

  async next(): Promise<Buffer | null> {
    if (this.map === null) {
      if (this.stored === 0) return null;
      const p = await this.fromSource(CHUNK);
      this.pos += p.length;
      return p;
    }
    if (this.pos >= this.realSize) return null;
    while (this.seg < this.map.length && this.pos >= this.map[this.seg]!.off + this.map[this.seg]!.len) this.seg++;
    const s = this.map[this.seg];
    if (s === undefined || this.pos < s.off) {
      const end = s === undefined ? this.realSize : Math.min(s.off, this.realSize);
      const n = Math.min(end - this.pos, CHUNK);
      this.pos += n;
      return ZEROS.subarray(0, n);
    }
    const p = await this.fromSource(Math.min(s.off + s.len - this.pos, CHUNK));
    this.pos += p.length;
    return p;
  }

  async skipRest(): Promise<void> {
    const want = this.stored;
    const got = await this.src.skip(want);
    this.stored -= got;
    if (got < want) throw truncated(this.name);
  }
}

/**
 * An entry's content, read once by async iteration, straight from the source's chunks. Not a
 * Readable: a stream object per entry (thousands per layer) cost more than the reading itself.
 */
class EntryBody implements AsyncIterable<Buffer> {
  private reading: Promise<Buffer | null> | null = null;
  private started = false;
  private ended = false;
  private failure: Error | null = null;

  constructor(private readonly plan: BodyPlan) {}

  [Symbol.asyncIterator](): AsyncIterator<Buffer> {
    if (this.started) throw new Error('a tar entry body can be read only once');
    this.started = true;
    return {
      next: async (): Promise<IteratorResult<Buffer>> => {
        if (this.ended) return { done: true, value: undefined };
        this.reading = this.plan.next();
        try {
          const chunk = await this.reading;
          if (chunk === null) {
            this.ended = true;
            return { done: true, value: undefined };
          }
          return { done: false, value: chunk };
        } catch (err) {
          this.failure = err as Error;
          this.ended = true;
          throw err;
        } finally {
          this.reading = null;
        }
      },
      return: async (): Promise<IteratorResult<Buffer>> => {
        this.ended = true;
        return { done: true, value: undefined };
      },
    };
  }

  /** Called when the consumer moves on: finish any read, skip what is left. */
  async settle(): Promise<void> {
    while (this.reading !== null) await this.reading.catch(() => undefined);
    if (this.failure) throw this.failure;
    this.ended = true;
    await this.plan.skipRest();
  }
}

function truncated(name: string): LayerArchiveError {
  return new LayerArchiveError(`unexpected end of layer archive in entry ${JSON.stringify(name)}`);
}

/** Pax records by key; a key holds several values only where the format repeats it (GNU sparse 0.0). */
export type PaxRecords = Map<string, Buffer[]>;

/** Parse the records of a pax extended header into `into` (later records replace earlier ones). */
export function parsePax(buf: Buffer, into: PaxRecords): void {
  let pos = 0;
  while (pos < buf.length) {
    if (buf[pos] === 0) break; // some writers pad with NULs
    const sp = buf.indexOf(0x20, pos);
    if (sp < 0) throw new LayerArchiveError('malformed pax record in layer archive');
    const len = Number(buf.toString('ascii', pos, sp));
    if (!Number.isSafeInteger(len) || len <= sp - pos + 1 || pos + len > buf.length || buf[pos + len - 1] !== 0x0a) {
      throw new LayerArchiveError('malformed pax record length in layer archive');
    }
    const rec = buf.subarray(sp + 1, pos + len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq <= 0) throw new LayerArchiveError('malformed pax record (no key) in layer archive');
    const key = rec.toString('utf8', 0, eq);
    const value = rec.subarray(eq + 1);
    const list = into.get(key);
    // Only the sparse 0.0 offset/numbytes pairs are meant to repeat; otherwise the last one wins.
    if (list && (key === 'GNU.sparse.offset' || key === 'GNU.sparse.numbytes')) list.push(Buffer.from(value));
    else into.set(key, [Buffer.from(value)]);
    pos += len;
  }
}

function paxNumber(v: Buffer, key: string): number {
  const s = v.toString('ascii');
  // Bounded like the header's own numbers: futimes refuses times of 1e20 seconds (EINVAL).
  if (!/^-?\d+(\.\d+)?$/.test(s) || Math.abs(Number(s)) > Number.MAX_SAFE_INTEGER) {
    throw new LayerArchiveError(`invalid pax ${key} value ${JSON.stringify(s)} in layer archive`);
  }
  return Number(s);
}

function paxInt(v: Buffer, key: string): number {
  const n = paxNumber(v, key);
  if (!Number.isSafeInteger(n) || n < 0) throw new LayerArchiveError(`invalid pax ${key} value in layer archive`);
  return n;
}

function noNul(b: Buffer, what: string): Buffer {
  if (b.includes(0)) {
    throw new LayerArchiveError(`NUL byte in ${what} of layer archive entry ${JSON.stringify(bytesToName(cString(b)))}`);
  }
  return b;
}

/** GNU long name/link bodies end with NUL (possibly several); a NUL before the end is an error. */
function gnuLongValue(b: Buffer, what: string): Buffer {
  let end = b.length;
  while (end > 0 && b[end - 1] === 0) end--;
  return noNul(b.subarray(0, end), what);
}

function parseSparseNumbers(list: Buffer[] | undefined): number[] {
  return (list ?? []).map((b) => paxInt(b, 'GNU.sparse'));
}

function pairsToMap(nums: number[]): Segment[] {
  if (nums.length % 2 !== 0) throw new LayerArchiveError('odd number of values in sparse map of layer archive');
  const map: Segment[] = [];
  for (let i = 0; i < nums.length; i += 2) map.push({ off: nums[i]!, len: nums[i + 1]! });
  return map;
}

function checkMap(map: Segment[], realSize: number, stored: number, name: string): void {
  let last = 0;
  let sum = 0;
  for (const s of map) {
    if (s.off < last || s.off + s.len > realSize) throw new LayerArchiveError(`invalid sparse map in layer archive entry ${JSON.stringify(name)}`);
    last = s.off + s.len;
    sum += s.len;
  }
  if (sum !== stored) throw new LayerArchiveError(`sparse map does not match stored size in layer archive entry ${JSON.stringify(name)}`);
}

/** What the entries before a file's header said about it (pax records, GNU long names). */
interface ReaderState {
  globalPax: PaxRecords;
  localPax: PaxRecords;
  longName: Buffer | null;
  longLink: Buffer | null;
  lastName: string;
}

const KNOWN_PAX = new Set(['path', 'linkpath', 'size', 'uid', 'gid', 'uname', 'gname', 'mtime', 'atime', 'ctime', 'hdrcharset']);

interface BuiltHeader {
  header: TarHeader;
  type: EntryType;
  name: string;
  dataSize: number;
  pax: PaxRecords;
  one: (k: string) => Buffer | undefined;
}

// The reading loop is kept small, with the header's fields and sparse maps worked out in
// functions of their own: V8 optimises a function as a whole, and one big generator holding
// every rare branch was recompiled five times per pull (~200 ms of CPU on nginx) as each
// branch first ran.

/** A file-like entry's header, from its block and what came before it (consumed from st). */
function buildHeader(block: Buffer, flag: string, isPosix: boolean, isGnu: boolean, size: number, st: ReaderState): BuiltHeader {
  let type = TYPES[flag];
  if (type === undefined) {
    throw new LayerArchiveError(`unsupported tar entry type ${JSON.stringify(flag)} after entry ${JSON.stringify(st.lastName)}`);
  }

  const pax: PaxRecords = new Map(st.globalPax);
  for (const [k, v] of st.localPax) pax.set(k, v);
  st.localPax = new Map();
  const one = (k: string): Buffer | undefined => {
    const v = pax.get(k);
    return v === undefined || v.length === 0 || v[v.length - 1]!.length === 0 ? undefined : v[v.length - 1];
  };

  let rawName = cString(block.subarray(0, 100));
  if (isPosix) {
    const prefix = cString(block.subarray(345, 500));
    if (prefix.length > 0) rawName = Buffer.concat([prefix, Buffer.from('/'), rawName]);
  }
  if (st.longName) rawName = st.longName;
  const paxPath = one('GNU.sparse.name') ?? one('path');
  if (paxPath) rawName = noNul(paxPath, 'name');
  st.longName = null;

  let rawLink = cString(block.subarray(157, 257));
  if (st.longLink) rawLink = st.longLink;
  const paxLink = one('linkpath');
  if (paxLink) rawLink = noNul(paxLink, 'link name');
  st.longLink = null;

  const nameStr = bytesToName(rawName);
  st.lastName = nameStr;
  if ((type === 'file' && flag !== 'S') && nameStr.endsWith('/')) type = 'dir';
  const name = normalizePath(nameStr);
  checkName(name, 'name');

  const header: TarHeader = {
    name,
    type,
    mode: parseNumeric(block.subarray(100, 108), 'mode') & 0o7777,
    uid: parseNumeric(block.subarray(108, 116), 'uid'),
    gid: parseNumeric(block.subarray(116, 124), 'gid'),
    size: 0,
    mtime: parseNumeric(block.subarray(136, 148), 'mtime'),
  };
  if (isPosix || isGnu) {
    const un = cString(block.subarray(265, 297));
    const gn = cString(block.subarray(297, 329));
    if (un.length) header.uname = bytesToName(un);
    if (gn.length) header.gname = bytesToName(gn);
  }
  if (type === 'symlink' || type === 'hardlink') {
    const link = bytesToName(rawLink);
    checkName(link, 'link name');
    // The kernel refuses an empty symlink target (ENOENT), and an empty hardlink names nothing.
    if (link === '') throw new LayerArchiveError(`${type} ${JSON.stringify(name)} has an empty target in layer archive`);
    header.linkname = type === 'hardlink' ? normalizePath(link) : link;
  }
  if (type === 'char' || type === 'block') {
    header.devmajor = parseNumeric(block.subarray(329, 337), 'devmajor');
    header.devminor = parseNumeric(block.subarray(337, 345), 'devminor');
  }

  let dataSize = size;
  const v = (k: string) => one(k);
  let b: Buffer | undefined;
  if ((b = v('size'))) dataSize = paxInt(b, 'size');
  if ((b = v('uid'))) header.uid = paxInt(b, 'uid');
  if ((b = v('gid'))) header.gid = paxInt(b, 'gid');
  if ((b = v('uname'))) header.uname = bytesToName(b);
  if ((b = v('gname'))) header.gname = bytesToName(b);
  if ((b = v('mtime'))) header.mtime = paxNumber(b, 'mtime');
  if ((b = v('atime'))) header.atime = paxNumber(b, 'atime');
  if ((b = v('ctime'))) header.ctime = paxNumber(b, 'ctime');
  for (const [k, vals] of pax) {
    const val = vals[vals.length - 1]!;
    if (k.startsWith('SCHILY.xattr.')) {
      (header.xattrs ??= new Map()).set(k.slice('SCHILY.xattr.'.length), val);
    } else if (!KNOWN_PAX.has(k) && !k.startsWith('GNU.sparse.')) {
      (header.pax ??= {})[k] = val.toString('utf8');
    }
  }
  // Negative (base-256) or wider than the kernel's 32-bit ids: chown and mknod would throw a RangeError.
  for (const k of ['uid', 'gid', 'devmajor', 'devminor'] as const) {
    const n = header[k];
    if (n !== undefined && (n < 0 || n > 0xffffffff)) {
      throw new LayerArchiveError(`${k} ${n} out of range in layer archive entry ${JSON.stringify(name)}`);
    }
  }
  return { header, type, name, dataSize, pax, one };
}

/** A sparse entry's map of data segments, its real size, and the stored bytes left after a map kept in the data. */
async function sparseLayout(
  src: ByteSource,
  block: Buffer,
  flag: string,
  built: BuiltHeader,
  storedSize: number,
): Promise<{ map: Segment[] | null; realSize: number; storedLeft: number }> {
  const { pax, one, name, dataSize } = built;
  let map: Segment[] | null = null;
  let realSize = dataSize;
  let storedLeft = storedSize;
  if (flag === 'S') {
    const nums: number[] = [];
    const addEntries = (blk: Buffer, off: number, count: number) => {
      for (let i = 0; i < count; i++) {
        const o = blk.subarray(off + i * 24, off + i * 24 + 12);
        const n = blk.subarray(off + i * 24 + 12, off + i * 24 + 24);
        if (o[0] === 0 && n[0] === 0) return;
        nums.push(parseNumeric(o, 'sparse offset'), parseNumeric(n, 'sparse size'));
      }
    };
    addEntries(block, 386, 4);
    let extended = block[482] !== 0;
    realSize = parseNumeric(block.subarray(483, 495), 'sparse real size');
    while (extended) {
      const ext = await src.read(BLOCK);
      if (ext === null) throw truncated(name);
      addEntries(ext, 0, 21);
      extended = ext[504] !== 0;
    }
    map = pairsToMap(nums);
  } else if (pax.has('GNU.sparse.major') || pax.has('GNU.sparse.map') || pax.has('GNU.sparse.offset')) {
    const major = one('GNU.sparse.major')?.toString('ascii');
    realSize = paxInt(one('GNU.sparse.realsize') ?? one('GNU.sparse.size') ?? Buffer.from(String(dataSize)), 'GNU.sparse.realsize');
    if (major === '1') {
      // 1.0: the map is at the start of the data, decimal numbers one per line, block padded.
      const lines: number[] = [];
      let text = '';
      let want = -1;
      let mapBytes = 0;
      while (want < 0 || lines.length < want * 2 + 1) {
        const blk = await src.read(BLOCK);
        if (blk === null) throw truncated(name);
        mapBytes += BLOCK;
        if (mapBytes > storedLeft || mapBytes > MAX_META) throw new LayerArchiveError(`invalid sparse map in layer archive entry ${JSON.stringify(name)}`);
        text += blk.toString('latin1');
        const parts = text.split('\n');
        text = parts.pop()!;
        for (const p of parts) {
          if (want >= 0 && lines.length >= want * 2 + 1) break;
          if (!/^\d+$/.test(p)) throw new LayerArchiveError(`invalid sparse map in layer archive entry ${JSON.stringify(name)}`);
          lines.push(Number(p));
          if (lines.length === 1) want = lines[0]!;
        }
      }
      storedLeft -= mapBytes;
      map = pairsToMap(lines.slice(1));
    } else if (pax.has('GNU.sparse.map')) {
      const s = one('GNU.sparse.map')?.toString('ascii') ?? '';
      map = pairsToMap(s === '' ? [] : s.split(',').map((x) => paxInt(Buffer.from(x), 'GNU.sparse.map')));
    } else {
      const offs = parseSparseNumbers(pax.get('GNU.sparse.offset'));
      const lens = parseSparseNumbers(pax.get('GNU.sparse.numbytes'));
      if (offs.length !== lens.length) throw new LayerArchiveError(`invalid sparse map in layer archive entry ${JSON.stringify(name)}`);
      map = offs.map((off, i) => ({ off, len: lens[i]! }));
    }
  }
  if (map !== null && (realSize < 0 || realSize > MAX_SPARSE_SIZE)) {
    throw new LayerArchiveError(`sparse file ${JSON.stringify(name)} of ${realSize} bytes: not between 0 and the ${MAX_SPARSE_SIZE} bytes a layer may expand`);
  }
  if (map !== null) checkMap(map, realSize, storedLeft, name);
  return { map, realSize, storedLeft };
}

interface NextEntry {
  header: TarHeader;
  type: EntryType;
  name: string;
  storedSize: number;
  storedLeft: number;
  realSize: number;
  map: Segment[] | null;
}

async function readMeta(src: ByteSource, st: ReaderState, size: number, what: string): Promise<Buffer> {
  if (size > MAX_META) throw new LayerArchiveError(`${what} of ${size} bytes is too large in layer archive`);
  const b = await src.read(size);
  if (b === null) throw truncated(st.lastName);
  if ((await src.skip(paddingFor(size))) !== paddingFor(size)) throw truncated(st.lastName);
  return b;
}

/** Entries that only describe the next one (pax, GNU long names) or carry nothing (volume label). */
async function readMetaEntry(src: ByteSource, st: ReaderState, flag: string, size: number): Promise<void> {
  if (flag === 'x' || flag === 'X') parsePax(await readMeta(src, st, size, 'pax header'), st.localPax);
  else if (flag === 'g') parsePax(await readMeta(src, st, size, 'pax global header'), st.globalPax);
  else if (flag === 'L') st.longName = gnuLongValue(await readMeta(src, st, size, 'GNU long name'), 'name');
  else if (flag === 'K') st.longLink = gnuLongValue(await readMeta(src, st, size, 'GNU long link'), 'link name');
  else if ((await src.skip(size + paddingFor(size))) !== size + paddingFor(size)) throw truncated(st.lastName);
}

const META_FLAGS = new Set(['x', 'X', 'g', 'L', 'K', 'V']);

/** The next entry's header and layout, or null at the end of the archive (the rest drained). */
async function nextEntry(src: ByteSource, st: ReaderState): Promise<NextEntry | null> {
  for (;;) {
    const before = src.offset;
    const block = await src.read(BLOCK);
    if (block === null) {
      if (src.offset !== before) throw new LayerArchiveError(`unexpected end of layer archive in a header after entry ${JSON.stringify(st.lastName)}`);
      if (st.longName || st.longLink || st.localPax.size > 0) throw truncated(st.lastName);
      return null; // EOF at a block boundary without the end marker: accepted, like GNU tar
    }
    if (isZeroBlock(block)) {
      // End of archive (one or two zero blocks); everything after it is drained.
      await src.drain();
      return null;
    }
    const stored = parseNumeric(block.subarray(148, 156), 'checksum');
    const [u, s] = headerChecksums(block);
    if (stored !== u && stored !== s) {
      throw new LayerArchiveError(`tar header checksum mismatch after entry ${JSON.stringify(st.lastName)} (not a tar archive, or corrupt)`);
    }
    const flag = String.fromCharCode(block[156]!);
    const size = parseNumeric(block.subarray(124, 136), 'size');
    if (size < 0) throw new LayerArchiveError('negative size in layer archive header');
    if (META_FLAGS.has(flag)) {
      await readMetaEntry(src, st, flag, size);
      continue;
    }
    const magic = block.toString('latin1', 257, 263);
    const built = buildHeader(block, flag, magic === 'ustar\0', magic === 'ustar ', size, st);
    const { header, type, name } = built;
    // Header-only types carry no data whatever their size field says (as Go's archive/tar).
    const hasData = type === 'file' || flag === 'D';
    const storedSize = hasData ? built.dataSize : 0;
    const sparse = flag === 'S' || built.pax.has('GNU.sparse.major') || built.pax.has('GNU.sparse.map') || built.pax.has('GNU.sparse.offset');
    const { map, realSize, storedLeft } = sparse
      ? await sparseLayout(src, block, flag, built, storedSize)
      : { map: null, realSize: built.dataSize, storedLeft: storedSize };
    header.size = type === 'file' ? realSize : 0;
    return { header, type, name, storedSize, storedLeft, realSize, map };
  }
}

/** Read a layer tar entry by entry. After the end-of-archive marker the input is drained to EOF. */
export async function* readTar(input: Readable): AsyncGenerator<TarEntry, void, undefined> {
  const src = new ByteSource(input);
  const st: ReaderState = { globalPax: new Map(), localPax: new Map(), longName: null, longLink: null, lastName: '(start of archive)' };
  try {
    for (;;) {
      const e = await nextEntry(src, st);
      if (e === null) return;
      const offset = src.offset;
      const plan = new BodyPlan(src, e.name, e.storedLeft, e.realSize, e.map);
      const body = new EntryBody(e.type === 'file' ? plan : new BodyPlan(src, e.name, 0, 0, null));
      yield { header: e.header, body, offset };
      await body.settle();
      if (e.type !== 'file') await plan.skipRest();
      const pad = paddingFor(e.storedSize);
      if ((await src.skip(pad)) !== pad) throw truncated(e.name);
    }
  } finally {
    await src.close().catch(() => undefined);
  }
}
