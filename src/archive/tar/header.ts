// Tar header types and the byte-level pieces shared by the reader and the writer.
//
// Names and link targets are bytes in an archive. We represent them as JS strings using
// "surrogate escape" (the scheme Python calls surrogateescape): valid UTF-8 is decoded
// normally, and every byte that is not part of a valid UTF-8 sequence becomes the lone
// surrogate U+DC00+byte (U+DC80..U+DCFF). Lone surrogates never come out of decoding valid
// UTF-8, so the mapping is unambiguous and reversible: `nameToBytes` gives back the exact
// original bytes. Code that touches the filesystem must use `fsPath` (a Buffer path when
// the string holds escaped bytes), never the string itself, because node would encode a
// lone surrogate as U+FFFD.

import { InvalidInputError } from '../../errors.js';

export type EntryType = 'file' | 'hardlink' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

export interface TarHeader {
  /** Path as stored, normalised: no leading "./" or "/", no trailing "/"; the root entry is ".". */
  name: string;
  type: EntryType;
  /** Permission bits incl. setuid/setgid/sticky (& 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  uname?: string;
  gname?: string;
  /** Bytes of content for 'file' (sparse entries: the real, expanded size); else 0. */
  size: number;
  /** Seconds since the epoch, fractional allowed. */
  mtime: number;
  atime?: number;
  ctime?: number;
  /** Symlink target, or the hardlink's target path (normalised like name). */
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** SCHILY.xattr.* records, values byte-exact. */
  xattrs?: Map<string, Buffer>;
  /** Other pax records, kept. */
  pax?: Record<string, string>;
}

/** A layer tar that is malformed: bad headers, checksums, sizes past the end. */
export class LayerArchiveError extends InvalidInputError {
  constructor(message: string) {
    super(message);
    this.name = 'LayerArchiveError';
  }
}

export const BLOCK = 512;

// ---- names: bytes <-> strings ----

/** Decode archive bytes to a string, escaping bytes that are not valid UTF-8 (see top of file). */
export function bytesToName(buf: Buffer): string {
  if (isValidUtf8(buf)) return buf.toString('utf8');
  let out = '';
  let i = 0;
  while (i < buf.length) {
    const n = utf8SeqLen(buf, i);
    if (n > 0) {
      out += buf.toString('utf8', i, i + n);
      i += n;
    } else {
      out += String.fromCharCode(0xdc00 + buf[i]!);
      i += 1;
    }
  }
  return out;
}

/** The exact bytes a name string stands for. */
export function nameToBytes(name: string): Buffer {
  if (!hasEscapes(name)) return Buffer.from(name, 'utf8');
  const parts: Buffer[] = [];
  let run = '';
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c >= 0xdc80 && c <= 0xdcff && !isLowSurrogatePair(name, i)) {
      if (run) parts.push(Buffer.from(run, 'utf8'));
      run = '';
      parts.push(Buffer.from([c - 0xdc00]));
    } else {
      run += name[i];
    }
  }
  if (run) parts.push(Buffer.from(run, 'utf8'));
  return Buffer.concat(parts);
}

/** A path usable with node:fs: the string itself, or its exact bytes when it holds escapes. */
export function fsPath(p: string): string | Buffer {
  return hasEscapes(p) ? nameToBytes(p) : p;
}

/** A NUL-terminated C string for koffi calls (`const char *` accepts a Buffer). */
export function cPath(p: string): string {
  return (hasEscapes(p) ? Buffer.concat([nameToBytes(p), Buffer.alloc(1)]) : p) as unknown as string;
}

export function hasEscapes(s: string): boolean {
  return /[\udc80-\udcff]/.test(s);
}

function isLowSurrogatePair(s: string, i: number): boolean {
  const prev = i > 0 ? s.charCodeAt(i - 1) : 0;
  return prev >= 0xd800 && prev <= 0xdbff;
}

function isValidUtf8(buf: Buffer): boolean {
  for (let i = 0; i < buf.length; ) {
    if (buf[i]! < 0x80) {
      i++;
      continue;
    }
    const n = utf8SeqLen(buf, i);
    if (n === 0) return false;
    i += n;
  }
  return true;
}

/** Length of the valid UTF-8 sequence starting at i, or 0 when the byte there starts none. */
function utf8SeqLen(b: Buffer, i: number): number {
  const c = b[i]!;
  if (c < 0x80) return 1;
  const cont = (k: number) => i + k < b.length && (b[i + k]! & 0xc0) === 0x80;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    if (!cont(1) || !cont(2)) return 0;
    const c1 = b[i + 1]!;
    if (c === 0xe0 && c1 < 0xa0) return 0; // overlong
    if (c === 0xed && c1 >= 0xa0) return 0; // surrogates
    return 3;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    const c1 = b[i + 1]!;
    if (c === 0xf0 && c1 < 0x90) return 0;
    if (c === 0xf4 && c1 >= 0x90) return 0;
    return 4;
  }
  return 0;
}

/**
 * Normalise a stored path: drop leading "/" and "./", empty and "." components and a trailing
 * "/"; ".." components are kept (whoever applies the archive decides about them).
 */
export function normalizePath(raw: string): string {
  const parts = raw.split('/').filter((p) => p !== '' && p !== '.');
  return parts.length === 0 ? '.' : parts.join('/');
}

/** Reject NUL bytes and components longer than the kernel's NAME_MAX (255 bytes). */
export function checkName(name: string, what: string): void {
  if (name.includes('\0')) throw new LayerArchiveError(`NUL byte in ${what} of layer archive entry ${JSON.stringify(name)}`);
  for (const part of name.split('/')) {
    const len = hasEscapes(part) ? nameToBytes(part).length : Buffer.byteLength(part, 'utf8');
    if (len > 255) {
      throw new LayerArchiveError(`${what} component longer than 255 bytes in layer archive entry ${JSON.stringify(name.slice(0, 80) + '…')}`);
    }
  }
}

// ---- numeric fields ----

/** Octal (NUL/space terminated, possibly space padded) or GNU base-256 field. */
export function parseNumeric(field: Buffer, what: string): number {
  if (field.length > 0 && (field[0]! & 0x80) !== 0) {
    const negative = field[0] === 0xff;
    let v = BigInt(field[0]! & 0x7f);
    if (negative) v = BigInt(field[0]!);
    for (let i = 1; i < field.length; i++) v = (v << 8n) | BigInt(field[i]!);
    if (negative) v -= 1n << BigInt(field.length * 8);
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new LayerArchiveError(`${what} field out of range in layer archive header`);
    }
    return Number(v);
  }
  let s = '';
  for (const b of field) {
    if (b === 0) break;
    s += String.fromCharCode(b);
  }
  s = s.trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new LayerArchiveError(`invalid octal ${what} field ${JSON.stringify(s)} in layer archive header`);
  const v = parseInt(s, 8);
  if (!Number.isSafeInteger(v)) throw new LayerArchiveError(`${what} field out of range in layer archive header`);
  return v;
}

/** Write n as octal in a field of `len` bytes (len-1 digits + NUL); false when it does not fit. */
export function writeOctal(buf: Buffer, off: number, len: number, n: number): boolean {
  if (!Number.isSafeInteger(n) || n < 0) return false;
  const s = n.toString(8);
  if (s.length > len - 1) return false;
  buf.write(s.padStart(len - 1, '0'), off, len - 1, 'ascii');
  buf[off + len - 1] = 0;
  return true;
}

/** GNU base-256 encoding of a non-negative n in a field of len bytes. */
export function writeBase256(buf: Buffer, off: number, len: number, n: number): void {
  let v = BigInt(n);
  for (let i = len - 1; i > 0; i--) {
    buf[off + i] = Number(v & 0xffn);
    v >>= 8n;
  }
  buf[off] = 0x80;
}

/** Checksum of a header block with the checksum field counted as spaces: [unsigned, signed]. */
export function headerChecksums(block: Buffer): [number, number] {
  let u = 0;
  let s = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : block[i]!;
    u += b;
    s += b >= 0x80 ? b - 256 : b;
  }
  return [u, s];
}

/** The bytes of a NUL-terminated field. */
export function cString(field: Buffer): Buffer {
  const z = field.indexOf(0);
  return z < 0 ? field : field.subarray(0, z);
}

export function isZeroBlock(block: Buffer, off = 0): boolean {
  for (let i = off; i < off + BLOCK; i++) if (block[i] !== 0) return false;
  return true;
}

export function paddingFor(size: number): number {
  const r = size % BLOCK;
  return r === 0 ? 0 : BLOCK - r;
}
