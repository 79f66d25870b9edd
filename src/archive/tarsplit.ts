// Tar-split: keep every byte of a layer tar except regular files' contents, so that the exact
// original tar (and so its diffID) can be rebuilt later from the extracted layer — what
// `save` and `push` need. Same idea as Docker's tar-split, our own compact format:
//   'M' u32 length, bytes          verbatim bytes (headers, extension records, padding, trailer)
//   'F' u16 name length, name, u64 size   `size` bytes of the file `name` inside the layer
// The whole record stream is gzip-compressed.
import { createReadStream, createWriteStream, promises as fsp, realpathSync } from 'node:fs';
import { PassThrough, Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { UnsafeArchiveError } from './apply.js';
import { createGunzip, createGzip } from 'node:zlib';
import { parsePax, type PaxRecords } from './tar/reader.js';

const BLOCK = 512;

function parseNumber(field: Buffer): number {
  if (field.length > 0 && (field[0] & 0x80) !== 0) {
    // base-256, big-endian, first byte's top bit is the marker
    let v = BigInt(field[0] & 0x7f);
    for (let i = 1; i < field.length; i++) v = (v << 8n) | BigInt(field[i]);
    return Number(v);
  }
  const s = field.toString('latin1').replace(/\0.*$/s, '').trim();
  return s === '' ? 0 : parseInt(s, 8);
}

/**
 * A header's octal number field at `at`: plain digits (what every tar writer puts there) read
 * in place, anything else (base-256, odd spacing) through parseNumber. Runs once per entry.
 */
function numberField(block: Buffer, at: number, len: number): number {
  const end = at + len;
  if ((block[at] & 0x80) === 0) {
    let i = at;
    while (i < end && block[i] === 0x20) i++;
    let v = 0;
    const first = i;
    for (; i < end; i++) {
      const c = block[i];
      if (c < 0x30 || c > 0x37) break;
      v = v * 8 + (c - 0x30);
    }
    if (i > first && (i === end || block[i] === 0 || block[i] === 0x20)) return v;
  }
  return parseNumber(block.subarray(at, end));
}

function cstr(field: Buffer): Buffer {
  const nul = field.indexOf(0);
  return nul < 0 ? field : field.subarray(0, nul);
}

type SplitRecord = { kind: 'meta'; bytes: Buffer } | { kind: 'file'; name: Buffer; size: number };

const STAGE = 1 << 20;
const ZERO_BLOCK = Buffer.alloc(BLOCK);
const SLASH = Buffer.from('/');
// Type flags (header byte 156) that matter here.
const TYPE_FILE = 0x30; // '0'
const TYPE_CONTIGUOUS = 0x37; // '7'
const TYPE_PAX = 0x78; // 'x'
const TYPE_PAX_GLOBAL = 0x67; // 'g'
const TYPE_GNU_LONGNAME = 0x4c; // 'L'
const TYPE_GNU_LONGLINK = 0x4b; // 'K'

/**
 * Pass-through that watches a layer tar and writes its tar-split to `tmpPath` (gzip). Bytes flow
 * on unchanged; call `finish()` after the stream ended to flush the file.
 */
export class TarSplitRecorder extends Transform {
  private buf: Buffer[] = [];
  private bufLen = 0;
  // Parser state: reading a header block, or `remaining` bytes of data (+ padding) of an entry.
  private remaining = 0;
  private padding = 0;
  private fileData = false;
  private collecting: Buffer[] | null = null; // extension data (pax / GNU long name) being read
  private collectType = '';
  private pendingPax = new Map<string, Buffer>();
  private pendingLongName: Buffer | null = null;
  private globalSparse = false;
  /**
   * Records are built straight into a 1 MiB staging buffer that goes to gzip whole: one zlib
   * write (a thread-pool round trip) per MiB instead of one per record.
   */
  private stage = Buffer.allocUnsafe(STAGE);
  private stageLen = 0;
  /** Offset in `stage` of the open 'M' record's header, or -1. */
  private metaAt = -1;
  // Level 1: headers compress nearly as well (nginx's base layer: 156 KB instead of 125 KB) at a
  // third of level 6's CPU, which every pull pays while the same core inflates the layer.
  private readonly gzip = createGzip({ chunkSize: 1 << 20, level: 1 });
  private readonly written: Promise<void>;

  constructor(tmpPath: string) {
    super({ highWaterMark: 1 << 20 });
    this.written = pipeline(this.gzip, createWriteStream(tmpPath, { mode: 0o600, highWaterMark: 1 << 20 }));
    this.written.catch(() => undefined);
  }

  /** Close the open 'M' record (its length is what follows its header). */
  private closeMeta(): void {
    if (this.metaAt < 0) return;
    this.stage.writeUInt32BE(this.stageLen - this.metaAt - 5, this.metaAt + 1);
    this.metaAt = -1;
  }

  private flushStage(): void {
    this.closeMeta();
    if (this.stageLen === 0) return;
    // gzip keeps the buffer until it has read it: the next records go into a fresh one.
    this.gzip.write(this.stage.subarray(0, this.stageLen));
    this.stage = Buffer.allocUnsafe(STAGE);
    this.stageLen = 0;
  }

  private meta(bytes: Buffer): void {
    let pos = 0;
    while (pos < bytes.length) {
      if (this.metaAt < 0) {
        if (STAGE - this.stageLen < 6) this.flushStage();
        this.metaAt = this.stageLen;
        this.stage[this.stageLen] = 0x4d; // 'M'
        this.stageLen += 5;
      }
      const n = bytes.copy(this.stage, this.stageLen, pos);
      this.stageLen += n;
      pos += n;
      if (pos < bytes.length) this.flushStage();
    }
  }

  private file(name: Buffer, size: number): void {
    this.closeMeta();
    if (STAGE - this.stageLen < 11 + name.length) this.flushStage();
    const s = this.stage;
    let at = this.stageLen;
    s[at] = 0x46; // 'F'
    s.writeUInt16BE(name.length, at + 1);
    at += 3 + name.copy(s, at + 3);
    s.writeUInt32BE(Math.floor(size / 0x100000000), at);
    s.writeUInt32BE(size >>> 0, at + 4);
    this.stageLen = at + 8;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      this.consume(chunk);
      cb(null, chunk);
    } catch (err) {
      cb(err as Error);
    }
  }

  private consume(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length) {
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, chunk.length - pos);
        const part = chunk.subarray(pos, pos + n);
        // Input chunks are never written again once passed on, so views of them can be kept.
        if (this.collecting) this.collecting.push(part);
        if (!this.fileData) this.meta(part);
        this.remaining -= n;
        pos += n;
        if (this.remaining === 0) this.endData();
        continue;
      }
      if (this.padding > 0) {
        const n = Math.min(this.padding, chunk.length - pos);
        this.meta(chunk.subarray(pos, pos + n));
        this.padding -= n;
        pos += n;
        continue;
      }
      // Header block (or end-of-archive / trailing bytes, which are simply kept verbatim).
      if (this.bufLen === 0 && chunk.length - pos >= BLOCK) {
        this.header(chunk.subarray(pos, pos + BLOCK));
        pos += BLOCK;
        continue;
      }
      const need = BLOCK - this.bufLen;
      const n = Math.min(need, chunk.length - pos);
      this.buf.push(chunk.subarray(pos, pos + n));
      this.bufLen += n;
      pos += n;
      if (this.bufLen === BLOCK) {
        const block = Buffer.concat(this.buf);
        this.buf = [];
        this.bufLen = 0;
        this.header(block);
      }
    }
  }

  private header(block: Buffer): void {
    this.meta(block);
    // End-of-archive blocks and anything after them (a real header's checksum is never zero).
    if (block[0] === 0 && block[148] === 0 && block.equals(ZERO_BLOCK)) return;
    const type = block[156];
    const size = numberField(block, 124, 12);
    const pad = (BLOCK - (size % BLOCK)) % BLOCK;
    this.remaining = size;
    this.padding = pad;
    if (type === TYPE_PAX || type === TYPE_PAX_GLOBAL || type === TYPE_GNU_LONGNAME || type === TYPE_GNU_LONGLINK) {
      this.collecting = [];
      this.collectType = String.fromCharCode(type);
      this.fileData = false;
      if (size === 0) this.endData();
      return;
    }
    const pax = this.pendingPax;
    // Only a regular file's data is left to the layer (a GNU sparse 'S' entry is kept whole).
    const isFile = type === TYPE_FILE || type === TYPE_CONTIGUOUS || type === 0;
    let fileData = isFile && size > 0 && !this.globalSparse;
    if (fileData && pax.size > 0) {
      const realSize = pax.has('size') ? Number(pax.get('size')!.toString('latin1')) : size;
      fileData = realSize === size && ![...pax.keys()].some((k) => k.startsWith('GNU.sparse'));
    }
    this.fileData = fileData;
    if (fileData) this.file(this.entryName(block), size);
    if (pax.size > 0) this.pendingPax = new Map();
    this.pendingLongName = null;
  }

  /** The entry's path as the tar spells it: pax path, GNU long name, or ustar prefix + name. */
  private entryName(block: Buffer): Buffer {
    const pax = this.pendingPax.get('path');
    if (pax) return pax;
    if (this.pendingLongName) return cstr(this.pendingLongName);
    const base = cstr(block.subarray(0, 100));
    const ustar = block[257] === 0x75 && block[258] === 0x73 && block[259] === 0x74 && block[260] === 0x61 && block[261] === 0x72 && block[262] === 0;
    if (!ustar || block[345] === 0) return base;
    return Buffer.concat([cstr(block.subarray(345, 500)), SLASH, base]);
  }

  private endData(): void {
    if (this.collecting) {
      const data = Buffer.concat(this.collecting);
      if (this.collectType === 'x' || this.collectType === 'g') {
        const recs: PaxRecords = new Map();
        parsePax(data, recs);
        if (this.collectType === 'x') for (const [k, v] of recs) this.pendingPax.set(k, v[v.length - 1]);
        else if ([...recs.keys()].some((k) => k.startsWith('GNU.sparse'))) this.globalSparse = true;
      } else if (this.collectType === 'L') this.pendingLongName = data;
      this.collecting = null;
    }
    this.fileData = false;
  }

  override _flush(cb: TransformCallback): void {
    if (this.bufLen > 0) this.meta(Buffer.concat(this.buf));
    this.buf = [];
    this.bufLen = 0;
    this.flushStage();
    cb();
  }

  /** Close the tar-split file once the stream has ended. */
  async finish(): Promise<void> {
    this.flushStage();
    this.gzip.end();
    await this.written;
  }

  /** Abandon the file (on failure). */
  abort(): void {
    this.gzip.destroy();
  }
}

async function* records(splitPath: string): AsyncGenerator<SplitRecord> {
  const input = createReadStream(splitPath, { highWaterMark: 1 << 20 }).pipe(createGunzip({ chunkSize: 1 << 20 }));
  let pending: Buffer = Buffer.alloc(0);
  for await (const chunk of input as AsyncIterable<Buffer>) {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    let pos = 0;
    for (;;) {
      if (pending.length - pos < 1) break;
      const kind = String.fromCharCode(pending[pos]);
      if (kind === 'M') {
        if (pending.length - pos < 5) break;
        const len = pending.readUInt32BE(pos + 1);
        if (pending.length - pos < 5 + len) break;
        yield { kind: 'meta', bytes: pending.subarray(pos + 5, pos + 5 + len) };
        pos += 5 + len;
      } else if (kind === 'F') {
        if (pending.length - pos < 3) break;
        const nlen = pending.readUInt16BE(pos + 1);
        if (pending.length - pos < 3 + nlen + 8) break;
        const name = pending.subarray(pos + 3, pos + 3 + nlen);
        const size = Number(pending.readBigUInt64BE(pos + 3 + nlen));
        yield { kind: 'file', name, size };
        pos += 3 + nlen + 8;
      } else {
        throw new Error(`corrupt tar-split file ${splitPath}`);
      }
    }
    pending = pending.subarray(pos);
  }
  if (pending.length) throw new Error(`truncated tar-split file ${splitPath}`);
}

// Names are raw bytes from the tar (they need not be UTF-8), so paths are built as Buffers.
function layerFile(root: Buffer, name: Buffer): Buffer {
  let start = 0;
  while (start < name.length && (name[start] === 0x2f || (name[start] === 0x2e && name[start + 1] === 0x2f))) {
    start += name[start] === 0x2f ? 1 : 2;
  }
  const rel = name.subarray(start);
  const p = Buffer.concat([root, Buffer.from('/'), rel]);
  const slash = p.lastIndexOf(0x2f);
  const parent = realpathSync(p.subarray(0, slash), { encoding: 'buffer' });
  const rootSlash = Buffer.concat([root, Buffer.from('/')]);
  if (!parent.equals(root) && !parent.subarray(0, rootSlash.length).equals(rootSlash)) {
    throw new UnsafeArchiveError(`layer file ${rel.toString()} resolves outside the layer`);
  }
  return p;
}

/**
 * Rebuild the original layer tar from its tar-split and the layer's files under `root`
 * (a driver's mounted view of that layer).
 */
export function assembleLayer(splitPath: string, root: string): Readable {
  const out = new PassThrough({ highWaterMark: 1 << 20 });
  const realRoot = realpathSync(Buffer.from(root), { encoding: 'buffer' });
  (async () => {
    for await (const rec of records(splitPath)) {
      if (rec.kind === 'meta') {
        if (!out.write(rec.bytes)) await new Promise((r) => out.once('drain', r));
        continue;
      }
      const path = layerFile(realRoot, rec.name);
      const fh = await fsp.open(path, 'r');
      try {
        let left = rec.size;
        let pos = 0;
        while (left > 0) {
          const buf = Buffer.allocUnsafe(Math.min(left, 1 << 20));
          const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
          if (bytesRead === 0) throw new Error(`layer file ${rec.name.toString()} is shorter than its tar entry`);
          const part = bytesRead === buf.length ? buf : buf.subarray(0, bytesRead);
          if (!out.write(part)) await new Promise((r) => out.once('drain', r));
          left -= bytesRead;
          pos += bytesRead;
        }
      } finally {
        await fh.close();
      }
    }
    out.end();
  })().catch((err) => out.destroy(err));
  return out;
}

const SKELETON_ZEROS = Buffer.alloc(1 << 20);
/** Runs shorter than this are copied into the batch rather than yielded on their own. */
const SKELETON_SMALL = 64 << 10;

/**
 * A layer's tar from its tar-split alone, each regular file's content replaced by zeros: every
 * header as the original has it, for reading what a layer holds (`analyze`) without reading
 * the layer's files. Headers and small files go out in batches of about 1 MiB: one chunk per
 * entry made a layer of thousands of small files cost a second in stream overhead alone.
 */
export function layerSkeleton(splitPath: string): Readable {
  return Readable.from(
    (async function* () {
      let batch: Buffer[] = [];
      let batched = 0;
      const take = () => {
        const out = Buffer.concat(batch, batched);
        batch = [];
        batched = 0;
        return out;
      };
      for await (const rec of records(splitPath)) {
        if (rec.kind === 'meta' || rec.size < SKELETON_SMALL) {
          const bytes = rec.kind === 'meta' ? rec.bytes : SKELETON_ZEROS.subarray(0, rec.size);
          batch.push(bytes);
          batched += bytes.length;
          if (batched >= STAGE) yield take();
          continue;
        }
        if (batched > 0) yield take();
        for (let left = rec.size; left > 0; left -= SKELETON_ZEROS.length) yield SKELETON_ZEROS.subarray(0, Math.min(left, SKELETON_ZEROS.length));
      }
      if (batched > 0) yield take();
    })(),
    { objectMode: false, highWaterMark: 1 << 20 },
  );
}
