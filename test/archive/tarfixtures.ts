// Test helpers for the archive tests: GNU tar listings as an oracle, and reading tars fully.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { decompress } from '../../src/archive/compression.js';
import { bytesToName, type TarHeader } from '../../src/archive/tar/header.js';
import { readTar } from '../../src/archive/tar/reader.js';
import { TarWriter } from '../../src/archive/tar/writer.js';
import { runToolSync } from '../../src/sys/run.js';

export interface ListedEntry {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  name: string;
  link?: string;
  dev?: string;
  sha256?: string;
}

const TYPECHAR: Record<string, string> = {
  file: '-',
  hardlink: 'h',
  symlink: 'l',
  char: 'c',
  block: 'b',
  dir: 'd',
  fifo: 'p',
};

function permBits(s: string): number {
  let m = 0;
  const bit = (i: number, c: string, v: number) => (s[i] === c ? v : 0);
  m |= bit(0, 'r', 0o400) | bit(1, 'w', 0o200) | bit(3, 'r', 0o40) | bit(4, 'w', 0o20) | bit(6, 'r', 0o4) | bit(7, 'w', 0o2);
  const x = (i: number, special: number, lower: string, upper: string, xv: number) => {
    if (s[i] === 'x') m |= xv;
    else if (s[i] === lower) m |= xv | special;
    else if (s[i] === upper) m |= special;
  };
  x(2, 0o4000, 's', 'S', 0o100);
  x(5, 0o2000, 's', 'S', 0o10);
  x(8, 0o1000, 't', 'T', 0o1);
  return m;
}

function clean(n: string): string {
  const parts = n.split('/').filter((p) => p !== '' && p !== '.');
  return parts.length === 0 ? '.' : parts.join('/');
}

/** `tar -tvf` of a file (gzip/zstd detected by GNU tar), parsed. */
export function gnuList(file: string, extra: string[] = []): ListedEntry[] {
  const out = execFileSync('tar', [...extra, '--numeric-owner', '--full-time', '--quoting-style=literal', '-tvf', file], {
    maxBuffer: 1 << 28,
  });
  const entries: ListedEntry[] = [];
  // GNU tar pads the time column once some entry shows fractional seconds.
  const padded = /\d\d:\d\d:\d\d\.\d+ /.test(out.toString('latin1'));
  for (const lineBuf of splitLines(out)) {
    const line = bytesToName(lineBuf);
    const m = /^(\S)(\S{9}) (\d+)\/(\d+)\s+(\d+,\d+|\d+) (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?) (.*)$/s.exec(line);
    if (!m) throw new Error(`cannot parse tar listing line ${JSON.stringify(line)}`);
    const [, t, perms, uid, gid, sizeOrDev, , restRaw] = m;
    const rest = padded ? restRaw!.replace(/^ +/, '') : restRaw;
    const e: ListedEntry = { type: t!, mode: permBits(perms!), uid: Number(uid), gid: Number(gid), size: 0, name: rest! };
    if (sizeOrDev!.includes(',')) e.dev = sizeOrDev!;
    else e.size = Number(sizeOrDev);
    if (t === 'l') {
      const i = rest!.indexOf(' -> ');
      e.name = rest!.slice(0, i);
      e.link = rest!.slice(i + 4);
    } else if (t === 'h') {
      const i = rest!.indexOf(' link to ');
      e.name = rest!.slice(0, i);
      e.link = clean(rest!.slice(i + 9));
      e.size = 0;
    }
    if (t !== '-') e.size = 0;
    e.name = clean(e.name);
    entries.push(e);
  }
  return entries;
}

function splitLines(b: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < b.length; i++) {
    if (b[i] === 0x0a) {
      out.push(b.subarray(start, i));
      start = i + 1;
    }
  }
  if (start < b.length) out.push(b.subarray(start));
  return out;
}

/** Our reader's view of a tar stream, in the same shape as gnuList (plus content hashes). */
export async function ourList(input: Readable, withHash = false): Promise<ListedEntry[]> {
  const entries: ListedEntry[] = [];
  for await (const { header: h, body } of readTar(input)) {
    const e: ListedEntry = { type: TYPECHAR[h.type]!, mode: h.mode, uid: h.uid, gid: h.gid, size: h.size, name: h.name };
    if (h.linkname !== undefined) e.link = h.linkname;
    if (h.type === 'char' || h.type === 'block') e.dev = `${h.devmajor},${h.devminor}`;
    if (withHash && h.type === 'file') {
      const hash = createHash('sha256');
      for await (const c of body) hash.update(c as Buffer);
      e.sha256 = hash.digest('hex');
    }
    entries.push(e);
  }
  return entries;
}

export async function listFile(file: string, withHash = false): Promise<ListedEntry[]> {
  return ourList(await decompress(createReadStream(file, { highWaterMark: 1 << 20 })), withHash);
}

export function run(cmd: string, args: string[], opts: { cwd?: string } = {}): string {
  return runToolSync(cmd, args, { cwd: opts.cwd });
}

export async function collect(stream: AsyncIterable<Buffer | string>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** One archive entry: a header and, for files, its content. */
export type Entry = [TarHeader, Buffer?];

/** The bytes of a tar holding `entries`, written by our TarWriter. */
export async function tarOf(entries: Entry[]): Promise<Buffer> {
  const w = new TarWriter();
  const p = (async () => {
    for (const [h, b] of entries) await w.add(h, b);
    await w.finish();
  })();
  const out = await collect(w.stream);
  await p;
  return out;
}

// Entry makers: root-owned, mtime 1000, the usual modes; `extra` overrides any header field.
export const D = (name: string, extra: Partial<TarHeader> = {}): Entry => [{ name, type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 1000, ...extra }];
export const F = (name: string, content: string | Buffer, extra: Partial<TarHeader> = {}): Entry => {
  const b = Buffer.isBuffer(content) ? content : Buffer.from(content);
  return [{ name, type: 'file', mode: 0o644, uid: 0, gid: 0, size: b.length, mtime: 1000, ...extra }, b];
};
