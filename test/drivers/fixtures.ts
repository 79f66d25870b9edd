// Trees with everything a layer can hold, built with direct filesystem calls, and GNU tar
// streams of them (the real tool as the source of layer tars).
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, lchown, link, mkdir, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { constants as fsConstants } from 'node:fs';
import { lsetxattr, makedev, mknod } from '../../src/sys/linux.js';

/** Bytes no text codec round-trips: NUL, 0xff, a lone UTF-8 continuation byte. */
export const BINARY_XATTR = Buffer.from([0x00, 0x01, 0xff, 0xfe, 0x80, 0x0a, 0x00]);

// Whole seconds so a tar (which keeps seconds) carries them exactly.
const T0 = new Date('2021-03-04T05:06:07Z');

/**
 * Fill dir (existing, empty or not) with the base tree of the driver tests: sticky 0705 dir
 * owned 1:2, setuid file, setgid dir, read-only dir, mode-0 file, hardlinks across dirs,
 * symlinks (relative, absolute, dangling, owned), char/block devices, fifo, binary xattrs.
 */
export async function buildBaseTree(dir: string): Promise<void> {
  const p = (rel: string) => join(dir, rel);
  await mkdir(p('etc'), { mode: 0o755 });
  await writeFile(p('etc/hosts'), '127.0.0.1 localhost\n');
  await writeFile(p('etc/gone'), 'to be deleted\n');
  await mkdir(p('bin'));
  await writeFile(p('bin/tool'), pseudoRandom(1536 * 1024)); // more than one 1 MiB chunk
  await chmod(p('bin/tool'), 0o755);
  await writeFile(p('setuid'), '#!/bin/sh\n');
  await chmod(p('setuid'), 0o4755);
  await mkdir(p('sticky'));
  await writeFile(p('sticky/inside'), 'x');
  await lchown(p('sticky'), 1, 2);
  await chmod(p('sticky'), 0o1705);
  await mkdir(p('setgid'));
  await writeFile(p('setgid/file'), 'g');
  await chmod(p('setgid'), 0o2775);
  await writeFile(p('zero-mode'), 'nobody may read');
  await chmod(p('zero-mode'), 0);
  await writeFile(p('owned'), 'mine');
  await lchown(p('owned'), 1000, 1001);
  await chmod(p('owned'), 0o640);
  await writeFile(p('empty'), '');
  await mkdir(p('links'));
  await mkdir(p('other'));
  await writeFile(p('links/a'), 'shared inode');
  await link(p('links/a'), p('links/b'));
  await link(p('links/a'), p('other/c'));
  await symlink('etc/hosts', p('sym-rel'));
  await symlink('/etc/hosts', p('sym-abs'));
  await symlink('/nowhere/at/all', p('dangling'));
  await lchown(p('dangling'), 5, 6);
  await mkdir(p('dev'));
  mknod(p('dev/null'), fsConstants.S_IFCHR | 0o666, makedev(1, 3));
  mknod(p('dev/loop9'), fsConstants.S_IFBLK | 0o660, makedev(7, 9));
  mknod(p('dev/fifo'), fsConstants.S_IFIFO | 0o644, 0);
  await chmod(p('dev/null'), 0o666);
  await chmod(p('dev/loop9'), 0o660);
  await chmod(p('dev/fifo'), 0o644);
  await writeFile(p('xattr-file'), 'has attributes');
  lsetxattr(p('xattr-file'), 'user.binary', BINARY_XATTR);
  lsetxattr(p('xattr-file'), 'trusted.strata', Buffer.from('t'));
  await mkdir(p('xattr-dir'));
  lsetxattr(p('xattr-dir'), 'user.dir', Buffer.from('on a directory'));
  await mkdir(p('olddir/inner'), { recursive: true });
  await writeFile(p('olddir/inner/f'), 'deep');
  await mkdir(p('keep/sub'), { recursive: true });
  await writeFile(p('keep/sub/file'), 'kept');
  await mkdir(p('ro'));
  await writeFile(p('ro/file'), 'read only');
  await chmod(p('ro/file'), 0o444);
  await chmod(p('ro'), 0o555);
  const timed = ['etc/hosts', 'etc/gone', 'bin/tool', 'setuid', 'sticky/inside', 'setgid/file', 'zero-mode', 'owned', 'empty'];
  timed.push('links/a', 'dev/null', 'dev/loop9', 'dev/fifo', 'xattr-file', 'olddir/inner/f', 'keep/sub/file', 'ro/file');
  for (const rel of timed) await utimes(p(rel), T0, T0);
}

/** The same incompressible bytes every time, so two trees built apart compare equal. */
export function pseudoRandom(size: number, seed = 'strata'): Buffer {
  const out = Buffer.alloc(size);
  let block = createHash('sha256').update(seed).digest();
  for (let at = 0; at < size; at += block.length) {
    block.copy(out, at);
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

/** A pax tar of dir's contents made by GNU tar, numeric owners, all xattrs. */
export function gnuTar(dir: string): Readable {
  const child = spawn(
    'tar',
    ['--format=pax', '--numeric-owner', '--xattrs', '--xattrs-include=*', '-C', dir, '-cf', '-', '.'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const out = new PassThrough({ highWaterMark: 1 << 20 });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.pipe(out, { end: false });
  child.on('close', (code) => {
    if (code === 0) out.end();
    else out.destroy(new Error(`GNU tar of ${dir} exited ${code}: ${stderr.trim()}`));
  });
  child.on('error', (err) => out.destroy(err));
  return out;
}
