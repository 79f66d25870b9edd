// Entries that depend on an earlier small file (same path, a path below it, a hardlink to it, a
// whiteout of it, directory times) must see it finished, exactly as if every entry had been
// applied one after another, with many small files before them.
import assert from 'node:assert/strict';
import { lstatSync, mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { applyLayer, type WhiteoutFormat } from '../../src/archive/apply.js';
import type { TarHeader } from '../../src/archive/tar/header.js';
import { scratch } from '../helpers/env.js';
import { D, F, tarOf, type Entry } from './tarfixtures.js';

const H = (name: string, linkname: string, extra: Partial<TarHeader> = {}): Entry => [
  { name, type: 'hardlink', linkname, mode: 0o640, uid: 0, gid: 0, size: 0, mtime: 1000, ...extra },
];
const S = (name: string, linkname: string): Entry => [{ name, type: 'symlink', linkname, mode: 0o777, uid: 0, gid: 0, size: 0, mtime: 1000 }];

/** Many small files ahead of the entries under test. */
function filler(dir: string, n = 80): Entry[] {
  return Array.from({ length: n }, (_, i) => F(`${dir}/f${i}`, `content ${i}\n`.repeat(50)));
}

async function apply(root: string, entries: Entry[], whiteouts: WhiteoutFormat = 'snapshot') {
  return applyLayer(root, Readable.from([await tarOf(entries)]), { whiteouts });
}

test('later entries see earlier small files finished: same path, below it, hardlinks, whiteouts', async (t) => {
  const dir = scratch(t);
  const root = join(dir, 'root');
  mkdirSync(root);
  const entries: Entry[] = [
    D('a'),
    ...filler('a'),
    F('a/twice', 'first version, longer than the second'),
    F('a/twice', 'second'),
    F('a/becomes-dir', 'x'),
    D('a/becomes-dir', { mode: 0o711 }),
    F('a/becomes-dir/inside', 'y'),
    F('a/linked', 'shared inode', { uid: 3, gid: 4, mode: 0o600, mtime: 5000 }),
    H('a/link', 'a/linked', { uid: 7, gid: 8, mode: 0o640 }),
    F('a/gone', 'z'),
    F('a/.wh.gone', ''),
    D('o'),
    ...filler('o', 40),
    F('o/.wh..wh..opq', ''),
    F('a/via-symlink-target', 'before'),
    S('l', 'a'),
    F('l/via-symlink-target', 'after, through the symlink'),
  ];
  const { size } = await apply(root, entries);
  // Every regular-file entry counts, replaced or deleted later or not (as Docker's ApplyLayer).
  assert.equal(size, entries.reduce((n, [h]) => n + (h.type === 'file' ? h.size : 0), 0));
  assert.equal(readFileSync(join(root, 'a', 'twice'), 'utf8'), 'second');
  assert.ok(statSync(join(root, 'a', 'becomes-dir')).isDirectory());
  assert.equal(statSync(join(root, 'a', 'becomes-dir')).mode & 0o7777, 0o711);
  assert.equal(readFileSync(join(root, 'a', 'becomes-dir', 'inside'), 'utf8'), 'y');
  // The hardlink's own header sets the shared inode's metadata last.
  const a = statSync(join(root, 'a', 'linked'));
  const b = statSync(join(root, 'a', 'link'));
  assert.equal(a.ino, b.ino);
  assert.equal(a.nlink, 2);
  assert.equal(a.uid, 7);
  assert.equal(a.mode & 0o7777, 0o640);
  assert.equal(a.mtimeMs, 1000 * 1000);
  assert.equal(readFileSync(join(root, 'a', 'link'), 'utf8'), 'shared inode');
  assert.throws(() => lstatSync(join(root, 'a', 'gone')), /ENOENT/);
  assert.equal(readdirSync(join(root, 'o')).length, 40);
  assert.equal(readFileSync(join(root, 'a', 'via-symlink-target'), 'utf8'), 'after, through the symlink');
  for (let i = 0; i < 80; i++) assert.equal(readFileSync(join(root, 'a', `f${i}`), 'utf8'), `content ${i}\n`.repeat(50));
  // Directory times come last, after every pending write into them.
  assert.equal(statSync(join(root, 'a')).mtimeMs, 1000 * 1000);
  assert.equal(statSync(join(root, 'o')).mtimeMs, 1000 * 1000);
});

test('a second layer replaces, deletes and re-creates what the first wrote, small files or big', async (t) => {
  const dir = scratch(t);
  const root = join(dir, 'root');
  mkdirSync(root);
  await apply(root, [D('d'), ...filler('d'), D('d/sub'), F('d/sub/x', 'x'), S('s', 'd/sub')]);
  await apply(root, [
    D('d'),
    // d is not new in this layer: whether d/new exists is asked of the filesystem.
    ...['first', 'second', 'third'].map((v) => F('d/new', v)),
    D('d/newdir'),
    F('d/newdir/x', 'first'),
    ...filler('d/newdir', 30),
    F('d/newdir/x', 'second'),
    F('d/.wh.sub', ''),
    ...filler('d', 20).map(([h]) => F(h.name, 'rewritten')),
    F('d/sub', 'now a file'),
    F('s', 'symlink replaced by a file'),
    D('e'),
    ...filler('e', 30),
    F('.wh.e', ''),
    F('e', 'e is a file again'),
  ]);
  assert.equal(readFileSync(join(root, 'd', 'new'), 'utf8'), 'third');
  assert.equal(readFileSync(join(root, 'd', 'newdir', 'x'), 'utf8'), 'second');
  assert.equal(readFileSync(join(root, 'd', 'sub'), 'utf8'), 'now a file');
  assert.equal(readFileSync(join(root, 'd', 'f3'), 'utf8'), 'rewritten');
  assert.equal(readFileSync(join(root, 'd', 'f79'), 'utf8'), `content 79\n`.repeat(50));
  assert.ok(lstatSync(join(root, 's')).isFile());
  assert.equal(readFileSync(join(root, 'e'), 'utf8'), 'e is a file again');
});

test('a failure in a small-file write rejects applyLayer with its own message, and nothing writes after', async (t) => {
  const dir = scratch(t);
  const root = join(dir, 'root');
  mkdirSync(root);
  // security.* must be set; an invalid capability value is refused by the kernel (EINVAL).
  const bad = new Map([['security.capability', Buffer.from('not a capability')]]);
  await assert.rejects(
    apply(root, [D('a'), ...filler('a', 10), F('a/bad', 'x', { xattrs: bad }), ...filler('a/more', 60)]),
    /cannot set xattr security\.capability on "a\/bad"/,
  );
  // Nothing is still being written once the promise has settled.
  const n = readdirSync(join(root, 'a')).length;
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(readdirSync(join(root, 'a')).length, n);
});

test('an archive that ends inside a small file still names that entry', async (t) => {
  const dir = scratch(t);
  const root = join(dir, 'root');
  mkdirSync(root);
  const whole = await tarOf([D('a'), ...filler('a', 30), F('a/last', Buffer.alloc(5000, 1))]);
  const cut = whole.subarray(0, whole.length - 1024 - 4096);
  await assert.rejects(applyLayer(root, Readable.from([cut]), { whiteouts: 'overlay' }), /unexpected end of layer archive in entry "a\/last"/);
});
