// Hostile layer archives: every one must be rejected with a clear error or applied harmlessly,
// in every whiteout format, and a victim directory beside the root must not change at all.
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { applyLayer, type WhiteoutFormat } from '../../src/archive/apply.js';
import { paddingFor, type TarHeader } from '../../src/archive/tar/header.js';
import { encodeHeader } from '../../src/archive/tar/writer.js';
import { scratch } from '../helpers/env.js';
import { diffTrees, snapshotTree } from '../helpers/tree.js';

type Item = TarHeader | [TarHeader, Buffer] | Buffer;

/** Raw archive bytes: headers from our encoder, bodies as given (no size check), end marker. */
function tar(items: Item[], end = true): Buffer {
  const parts: Buffer[] = [];
  for (const it of items) {
    if (Buffer.isBuffer(it)) {
      parts.push(it);
      continue;
    }
    const [h, body] = Array.isArray(it) ? it : [it, Buffer.alloc(0)];
    parts.push(encodeHeader(h), body, Buffer.alloc(paddingFor(body.length)));
  }
  if (end) parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

const base = { mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 1000 };
const file = (name: string, content = 'pwned\n', extra: Partial<TarHeader> = {}): [TarHeader, Buffer] => [
  { ...base, name, type: 'file', size: Buffer.byteLength(content), ...extra },
  Buffer.from(content),
];
const dir = (name: string): TarHeader => ({ ...base, name, type: 'dir', mode: 0o755 });
const sym = (name: string, linkname: string, extra: Partial<TarHeader> = {}): TarHeader => ({ ...base, name, type: 'symlink', linkname, mode: 0o777, ...extra });
const hard = (name: string, linkname: string): TarHeader => ({ ...base, name, type: 'hardlink', linkname });
const wh = (name: string): [TarHeader, Buffer] => file(name, '', { mode: 0o600 });

interface Case {
  name: string;
  /** victim: absolute path of the victim directory beside the root */
  build: (victim: string) => Buffer;
  /** An error message pattern, or 'harmless' when the apply may succeed (confined to the root). */
  expect: RegExp | 'harmless';
  /** Content already in the root before the layer is applied. */
  setup?: (root: string, victim: string) => void;
}

const CASES: Case[] = [
  { name: '../x', build: () => tar([file('../x')]), expect: /climbs above the layer root/ },
  { name: 'a/../../x', build: () => tar([dir('a'), file('a/../../x')]), expect: /climbs above the layer root/ },
  { name: '/../x', build: () => tar([file('/../x')]), expect: /climbs above the layer root/ },
  { name: './../victim/secret', build: () => tar([file('./../victim/secret')]), expect: /climbs above the layer root/ },
  { name: 'dir ../victim', build: () => tar([dir('../victim')]), expect: /climbs above the layer root/ },
  { name: 'symlink a -> / then a/escape', build: () => tar([sym('a', '/'), file('a/escape')]), expect: 'harmless' },
  { name: 'symlink a -> ../../.. then a/escape', build: () => tar([sym('a', '../../..'), file('a/escape')]), expect: 'harmless' },
  { name: 'symlink a -> ../victim then a/secret', build: () => tar([sym('a', '../victim'), file('a/secret')]), expect: 'harmless' },
  { name: 'symlink a -> absolute victim then a/secret', build: (v) => tar([sym('a', v), file('a/secret')]), expect: 'harmless' },
  { name: 'nested symlink d/l -> ../../victim then d/l/secret', build: () => tar([dir('d'), sym('d/l', '../../victim'), file('d/l/secret')]), expect: 'harmless' },
  { name: 'symlink chain a -> b/../../.., b dir, then a/victim/secret', build: () => tar([dir('b'), sym('a', 'b/../../..'), file('a/victim/secret')]), expect: 'harmless' },
  { name: 'symlink to victim file, then a file of the same name', build: () => tar([sym('a', '../victim/secret'), file('a')]), expect: 'harmless' },
  { name: 'file, then symlink of the same name, then a file through it', build: (v) => tar([file('a'), sym('a', v), file('a/secret')]), expect: 'harmless' },
  { name: 'pre-existing symlink in root to the victim, then a write through it', setup: (r, v) => symlinkSync(v, join(r, 'link')), build: () => tar([file('link/secret')]), expect: 'harmless' },
  { name: 'hardlink to ../victim/secret', build: () => tar([hard('h', '../victim/secret')]), expect: /climbs above the layer root/ },
  { name: 'hardlink to absolute victim path', build: (v) => tar([hard('h', `${v}/secret`)]), expect: /points to a missing file/ },
  { name: 'hardlink to a directory', build: () => tar([dir('d'), hard('h', 'd')]), expect: /points to a directory/ },
  { name: 'hardlink to the root', build: () => tar([hard('h', '.')]), expect: /points to the layer root/ },
  { name: 'hardlink to a missing target', build: () => tar([hard('h', 'nope')]), expect: /points to a missing file/ },
  { name: 'symlink then hardlink through it', build: () => tar([sym('a', '../victim'), hard('h', 'a/secret')]), expect: /points to a missing file/ },
  { name: 'hardlink to a symlink pointing outside, then write to the link', build: (v) => tar([sym('s', `${v}/secret`), hard('h', 's'), file('h')]), expect: 'harmless' },
  { name: 'whiteout .wh... (name "..")', build: () => tar([dir('d'), wh('d/.wh...')]), expect: /invalid whiteout/ },
  { name: 'whiteout ../.wh.secret', build: () => tar([wh('../.wh.secret')]), expect: /climbs above the layer root/ },
  { name: 'whiteout with an empty name', build: () => tar([wh('.wh.')]), expect: /invalid whiteout/ },
  { name: 'whiteout .wh.. (name ".")', build: () => tar([dir('d'), wh('d/.wh..')]), expect: /invalid whiteout/ },
  { name: 'whiteout through a symlinked dir to the victim', build: () => tar([sym('dl', '../victim'), wh('dl/.wh.secret')]), expect: 'harmless' },
  { name: 'whiteout through an absolute symlinked dir', build: (v) => tar([sym('dl', v), wh('dl/.wh.secret'), wh('dl/.wh.dir')]), expect: 'harmless' },
  { name: 'opaque marker through a symlinked dir', build: (v) => tar([sym('dl', v), wh('dl/.wh..wh..opq')]), expect: 'harmless' },
  { name: 'char device through a symlinked dir', build: (v) => tar([sym('dl', v), { ...base, name: 'dl/null', type: 'char', devmajor: 1, devminor: 3 }]), expect: 'harmless' },
  { name: 'fifo through a symlinked dir', build: () => tar([sym('dl', '../victim'), { ...base, name: 'dl/fifo', type: 'fifo' }]), expect: 'harmless' },
  { name: 'xattr on a symlinked path', build: () => tar([sym('x', '../victim/secret', { xattrs: new Map([['user.evil', Buffer.from('1')]]) }), file('x2', 'y', { xattrs: new Map([['user.ok', Buffer.from('1')]]) })]), expect: 'harmless' },
  { name: 'xattr on a file through a symlinked parent', build: (v) => tar([sym('dl', v), file('dl/secret', 'z', { xattrs: new Map([['user.evil', Buffer.from('1')]]) })]), expect: 'harmless' },
  { name: 'overlayfs control xattr', build: () => tar([{ ...dir('d'), xattrs: new Map([['trusted.overlay.opaque', Buffer.from('y')]]) }]), expect: /overlayfs control xattr/ },
  { name: 'symlink loop', build: () => tar([sym('a', 'b'), sym('b', 'a'), file('a/x')]), expect: /ELOOP/ },
  { name: 'root entry that is a file', build: () => tar([file('.')]), expect: /layer root entry/ },
  { name: 'truncated header', build: () => tar([file('ok'), encodeHeader({ ...base, name: 'next', type: 'file' }).subarray(0, 200)], false), expect: /unexpected end of layer archive/ },
  { name: 'truncated body', build: () => tar([[{ ...base, name: 'big', type: 'file', size: 5000 }, Buffer.alloc(1000)]], false), expect: /unexpected end of layer archive in entry "big"/ },
  { name: 'size field past the end of the stream', build: () => tar([[{ ...base, name: 'huge', type: 'file', size: 1 << 30 }, Buffer.alloc(512)]], true), expect: /unexpected end of layer archive in entry "huge"/ },
  { name: 'bad checksum', build: () => corrupt(tar([file('f')]), 20), expect: /checksum mismatch/ },
  { name: 'garbage', build: () => Buffer.from('this is not a tar archive at all'.repeat(40)), expect: /checksum mismatch|invalid octal|unexpected end/ },
  { name: 'NUL in name', build: () => tar([file('a\0' + 'b'.repeat(120))]), expect: /NUL byte in name/ },
  { name: 'NUL in hardlink target', build: () => tar([file('t'), hard('h', 't\0' + 'c'.repeat(120))]), expect: /NUL byte in link name/ },
  { name: 'component longer than 255 bytes', build: () => tar([file('x'.repeat(300))]), expect: /longer than 255 bytes/ },
  { name: 'unknown entry type', build: () => retype(tar([file('f')]), 'Q'), expect: /unsupported tar entry type "Q"/ },
];

function corrupt(b: Buffer, at: number): Buffer {
  const c = Buffer.from(b);
  c[at] ^= 0x55;
  return c;
}

function retype(b: Buffer, flag: string): Buffer {
  const c = Buffer.from(b);
  c[156] = flag.charCodeAt(0);
  c.write('        ', 148, 'latin1');
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += c[i]!;
  c.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  return c;
}

function makeVictim(victim: string): void {
  mkdirSync(join(victim, 'dir'), { recursive: true });
  writeFileSync(join(victim, 'secret'), 'do not touch\n');
  writeFileSync(join(victim, 'dir', 'file'), 'nor this\n');
}

test('at least 30 hostile archives', () => assert.ok(CASES.length >= 30));

for (const format of ['snapshot', 'overlay', 'aufs'] as WhiteoutFormat[]) {
  for (const c of CASES) {
    test(`[${format}] ${c.name}`, async (t) => {
      const work = scratch(t);
      const root = join(work, 'root');
      const victim = join(work, 'victim');
      mkdirSync(root);
      makeVictim(victim);
      c.setup?.(root, victim);
      const before = await snapshotTree(victim);
      const input = Readable.from([c.build(victim)]);
      const run = applyLayer(root, input, { whiteouts: format });
      if (c.expect === 'harmless') await run;
      else await assert.rejects(run, c.expect);
      assert.deepEqual(diffTrees(before, await snapshotTree(victim)), [], 'victim unchanged');
      assert.deepEqual(readdirSync(work).sort(), ['root', 'victim'], 'nothing new beside the root');
    });
  }
}
