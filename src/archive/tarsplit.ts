// Tar-split: keep every byte of a layer tar except regular files' contents, so that the exact
// original tar (and so its diffID) can be rebuilt later from the extracted layer — what
// `save` and `push` need. Same idea as Docker's tar-split, our own compact format:
//   'M' u32 length, bytes          verbatim bytes (headers, extension records, padding, trailer)
//   'F' u16 name length, name, u64 size   `size` bytes of the file `name` inside the layer
// The whole record stream is gzip-compressed.
import { createReadStream, createWriteStream, promises as fsp, realpathSync } from 'node:fs';
import { PassThrough, Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';

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

function cstr(field: Buffer): Buffer {
  const nul = field.indexOf(0);
  return nul < 0 ? field : field.subarray(0, nul);
}

function parsePax(data: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let pos = 0;
  while (pos < data.length) {
    const space = data.indexOf(0x20, pos);
    if (space < 0) break;
    const len = parseInt(data.toString('latin1', pos, space), 10);
    if (!Number.isFinite(len) || len <= 0) break;
    const rec = data.subarray(space + 1, pos + len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq > 0) out.set(rec.toString('utf8', 0, eq), rec.subarray(eq + 1));
    pos += len;
  }
  return out;
}

type SplitRecord = { kind: 'meta'; bytes: Buffer } | { kind: 'file'; name: Buffer; size: number };

const STAGE = 1 << 20;
const ZERO_BLOCK = Buffer.alloc(BLOCK);

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
  private readonly gzip = createGzip({ chunkSize: 1 << 20 });
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
    s.writeBigUInt64BE(BigInt(size), at);
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
    if (block.equals(ZERO_BLOCK)) return; // end-of-archive blocks and anything after them
    const type = String.fromCharCode(block[156] || 0x30);
    const size = parseNumber(block.subarray(124, 136));
    const pad = (BLOCK - (size % BLOCK)) % BLOCK;
    if (type === 'x' || type === 'g' || type === 'L' || type === 'K') {
      this.collecting = [];
      this.collectType = type;
      this.fileData = false;
    } else {
      const pax = this.pendingPax;
      const realSize = pax.has('size') ? Number(pax.get('size')!.toString('latin1')) : size;
      const sparse = type === 'S' || this.globalSparse || [...pax.keys()].some((k) => k.startsWith('GNU.sparse'));
      const isFile = type === '0' || type === '7' || block[156] === 0;
      let name: Buffer;
      if (pax.has('path')) name = pax.get('path')!;
      else if (this.pendingLongName) name = cstr(this.pendingLongName);
      else {
        const base = cstr(block.subarray(0, 100));
        const magic = block.toString('latin1', 257, 263);
        const prefix = magic === 'ustar\0' ? cstr(block.subarray(345, 500)) : Buffer.alloc(0);
        name = prefix.length ? Buffer.concat([prefix, Buffer.from('/'), base]) : base;
      }
      this.pendingPax = new Map();
      this.pendingLongName = null;
      this.fileData = isFile && !sparse && realSize === size && size > 0;
      if (this.fileData) this.file(name, size);
      this.remaining = size;
      this.padding = pad;
      if (size === 0) this.padding = 0;
      return;
    }
    this.remaining = size;
    this.padding = pad;
    if (size === 0) this.endData();
  }

  private endData(): void {
    if (this.collecting) {
      const data = Buffer.concat(this.collecting);
      if (this.collectType === 'x') for (const [k, v] of parsePax(data)) this.pendingPax.set(k, v);
      else if (this.collectType === 'g') {
        if ([...parsePax(data).keys()].some((k) => k.startsWith('GNU.sparse'))) this.globalSparse = true;
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
    throw new Error(`layer file ${rel.toString()} resolves outside the layer`);
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
