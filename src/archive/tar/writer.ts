// Streaming tar writer: ustar when a header fits, a pax extended header when it does not.
// Deterministic: the same headers and bodies give the same bytes.
import { PassThrough, type Readable } from 'node:stream';
import { BLOCK, headerChecksums, nameToBytes, paddingFor, writeBase256, writeOctal, type TarHeader } from './header.js';

const TYPEFLAG: Record<TarHeader['type'], string> = {
  file: '0',
  hardlink: '1',
  symlink: '2',
  char: '3',
  block: '4',
  dir: '5',
  fifo: '6',
};

const MAX_ID = 0o7777777;
const MAX_SIZE = 0o77777777777;
const ZERO_BLOCKS = Buffer.alloc(BLOCK * 2);

function isAscii(b: Buffer): boolean {
  for (const c of b) if (c >= 0x80) return false;
  return true;
}

function paxRecord(key: string, value: Buffer): Buffer {
  const rest = Buffer.byteLength(key) + value.length + 3; // ' ' '=' '\n'
  let len = rest + String(rest).length;
  if (String(len).length !== String(rest).length) len = rest + String(len).length;
  return Buffer.concat([Buffer.from(`${len} ${key}=`), value, Buffer.from('\n')]);
}

function formatTime(t: number): string {
  if (Number.isInteger(t)) return String(t);
  let s = t.toFixed(9);
  s = s.replace(/0+$/, '');
  return s.endsWith('.') ? s.slice(0, -1) : s;
}

/** Split a name into ustar prefix (155) and name (100), or null when it cannot be. */
function splitUstar(name: Buffer): [Buffer, Buffer] | null {
  if (name.length <= 100) return [Buffer.alloc(0), name];
  for (let i = name.length - 1; i > 0; i--) {
    if (name[i] !== 0x2f) continue;
    const prefix = name.subarray(0, i);
    const rest = name.subarray(i + 1);
    if (rest.length === 0 || rest.length > 100) return null;
    if (prefix.length <= 155) return [prefix, rest];
  }
  return null;
}

function ustarBlock(
  h: TarHeader,
  name: Buffer,
  prefix: Buffer,
  link: Buffer,
  size: number,
  mtime: number,
  typeflag: string,
  uname: Buffer,
  gname: Buffer,
): Buffer {
  const b = Buffer.alloc(BLOCK);
  name.copy(b, 0, 0, Math.min(name.length, 100));
  writeOctal(b, 100, 8, h.mode & 0o7777);
  // Too-large numbers also get a pax record; base-256 here helps readers without pax ids.
  if (!writeOctal(b, 108, 8, h.uid)) writeBase256(b, 108, 8, h.uid);
  if (!writeOctal(b, 116, 8, h.gid)) writeBase256(b, 116, 8, h.gid);
  if (!writeOctal(b, 124, 12, size)) writeBase256(b, 124, 12, size);
  if (!writeOctal(b, 136, 12, mtime)) writeOctal(b, 136, 12, 0);
  b[156] = typeflag.charCodeAt(0);
  link.copy(b, 157, 0, Math.min(link.length, 100));
  b.write('ustar\0', 257, 'latin1');
  b.write('00', 263, 'latin1');
  uname.copy(b, 265, 0, Math.min(uname.length, 32));
  gname.copy(b, 297, 0, Math.min(gname.length, 32));
  if (h.type === 'char' || h.type === 'block') {
    if (!writeOctal(b, 329, 8, h.devmajor ?? 0)) writeBase256(b, 329, 8, h.devmajor ?? 0);
    if (!writeOctal(b, 337, 8, h.devminor ?? 0)) writeBase256(b, 337, 8, h.devminor ?? 0);
  }
  prefix.copy(b, 345, 0, Math.min(prefix.length, 155));
  const [sum] = headerChecksums(b);
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
  return b;
}

/** The header block(s) for one entry: an optional pax header, then the ustar header. */
export function encodeHeader(h: TarHeader): Buffer {
  const records: Buffer[] = [];
  const storedName = h.type === 'dir' ? (h.name === '.' ? './' : `${h.name}/`) : h.name;
  const nameBytes = nameToBytes(storedName);
  const linkBytes = h.linkname === undefined ? Buffer.alloc(0) : nameToBytes(h.linkname);
  const size = h.type === 'file' ? h.size : 0;
  // Names that are not UTF-8 go into pax records as raw bytes, without a hdrcharset record:
  // GNU tar and Go both read them that way, and GNU tar 1.34 warns about hdrcharset.

  let split = isAscii(nameBytes) ? splitUstar(nameBytes) : null;
  if (split === null) {
    records.push(paxRecord('path', nameBytes));
    split = [Buffer.alloc(0), asciiTruncated(nameBytes, 100)];
  }
  let link = linkBytes;
  if (linkBytes.length > 100 || !isAscii(linkBytes)) {
    records.push(paxRecord('linkpath', linkBytes));
    link = asciiTruncated(linkBytes, 100);
  }
  if (size > MAX_SIZE) records.push(paxRecord('size', Buffer.from(String(size))));
  if (h.uid > MAX_ID) records.push(paxRecord('uid', Buffer.from(String(h.uid))));
  if (h.gid > MAX_ID) records.push(paxRecord('gid', Buffer.from(String(h.gid))));
  const uname = h.uname === undefined ? Buffer.alloc(0) : Buffer.from(h.uname, 'utf8');
  const gname = h.gname === undefined ? Buffer.alloc(0) : Buffer.from(h.gname, 'utf8');
  let un = uname;
  let gn = gname;
  if (uname.length > 32 || !isAscii(uname)) {
    records.push(paxRecord('uname', uname));
    un = Buffer.alloc(0);
  }
  if (gname.length > 32 || !isAscii(gname)) {
    records.push(paxRecord('gname', gname));
    gn = Buffer.alloc(0);
  }
  let mtime = h.mtime;
  if (!Number.isInteger(h.mtime) || h.mtime < 0 || h.mtime > MAX_SIZE) {
    records.push(paxRecord('mtime', Buffer.from(formatTime(h.mtime))));
    mtime = Math.min(Math.max(Math.floor(h.mtime), 0), MAX_SIZE);
  }
  if (h.atime !== undefined) records.push(paxRecord('atime', Buffer.from(formatTime(h.atime))));
  if (h.ctime !== undefined) records.push(paxRecord('ctime', Buffer.from(formatTime(h.ctime))));
  if (h.pax) {
    for (const k of Object.keys(h.pax).sort()) records.push(paxRecord(k, Buffer.from(h.pax[k]!, 'utf8')));
  }
  if (h.xattrs) {
    for (const k of [...h.xattrs.keys()].sort()) records.push(paxRecord(`SCHILY.xattr.${k}`, h.xattrs.get(k)!));
  }

  const main = ustarBlock(h, split[1], split[0], link, size, mtime, TYPEFLAG[h.type], un, gn);
  if (records.length === 0) return main;
  const paxBody = Buffer.concat(records);
  const base = nameBytes.subarray(nameBytes.lastIndexOf(0x2f, nameBytes.length - 2) + 1);
  const paxName = asciiTruncated(Buffer.concat([Buffer.from('PaxHeaders/'), base]), 100);
  const paxHeader: TarHeader = { name: '', type: 'file', mode: 0o644, uid: 0, gid: 0, size: paxBody.length, mtime };
  const ph = ustarBlock(paxHeader, paxName, Buffer.alloc(0), Buffer.alloc(0), paxBody.length, mtime, 'x', Buffer.alloc(0), Buffer.alloc(0));
  return Buffer.concat([ph, paxBody, Buffer.alloc(paddingFor(paxBody.length)), main]);
}

function asciiTruncated(b: Buffer, max: number): Buffer {
  const out = Buffer.from(b.subarray(0, max));
  for (let i = 0; i < out.length; i++) if (out[i]! >= 0x80) out[i] = 0x5f;
  return out;
}

export class TarWriter {
  private readonly out = new PassThrough({ highWaterMark: 1 << 20 });
  readonly stream: Readable = this.out;
  private finished = false;
  private busy = false;

  private async put(b: Buffer): Promise<void> {
    if (this.out.destroyed) throw new Error('tar output stream was closed before the archive was finished');
    if (this.out.write(b)) return;
    await new Promise<void>((resolve, reject) => {
      const cleanup = () => {
        this.out.off('drain', onDrain);
        this.out.off('close', onClose);
      };
      const onDrain = () => {
        cleanup();
        resolve();
      };
      const onClose = () => {
        cleanup();
        reject(new Error('tar output stream was closed before the archive was finished'));
      };
      this.out.on('drain', onDrain);
      this.out.on('close', onClose);
    });
  }

  /** Append one entry; body is required for non-empty files and must be exactly h.size bytes. */
  async add(h: TarHeader, body?: Readable | Buffer): Promise<void> {
    if (this.finished) throw new Error('tar writer: add after finish');
    if (this.busy) throw new Error('tar writer: add called before the previous add finished');
    this.busy = true;
    try {
      const size = h.type === 'file' ? h.size : 0;
      if (!Number.isSafeInteger(size) || size < 0) throw new Error(`tar writer: invalid size ${size} for ${h.name}`);
      for (const [k, v] of [['uid', h.uid], ['gid', h.gid]] as const) {
        if (!Number.isSafeInteger(v) || v < 0) throw new Error(`tar writer: invalid ${k} ${v} for ${h.name}`);
      }
      await this.put(encodeHeader(h));
      let written = 0;
      if (size > 0 || body !== undefined) {
        if (Buffer.isBuffer(body)) {
          if (body.length !== size) throw new Error(`tar writer: body of ${h.name} is ${body.length} bytes, header says ${size}`);
          if (size > 0) await this.put(body);
          written = body.length;
        } else if (body !== undefined) {
          for await (const chunk of body as AsyncIterable<Buffer>) {
            written += chunk.length;
            if (written > size) throw new Error(`tar writer: body of ${h.name} is longer than its header size ${size}`);
            await this.put(chunk);
          }
        }
        if (written !== size) throw new Error(`tar writer: body of ${h.name} is ${written} bytes, header says ${size}`);
      }
      const pad = paddingFor(size);
      if (pad > 0) await this.put(ZERO_BLOCKS.subarray(0, pad));
    } catch (err) {
      this.out.destroy(err as Error);
      throw err;
    } finally {
      this.busy = false;
    }
  }

  /** Write the end-of-archive marker (two zero blocks) and end the stream. */
  async finish(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    await this.put(ZERO_BLOCKS);
    this.out.end();
  }

  /** Abort: the stream errors with err. */
  abort(err: Error): void {
    this.finished = true;
    this.out.destroy(err);
  }
}
