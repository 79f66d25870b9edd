// File calls node:fs lacks that an exact tree copy needs: SEEK_DATA/SEEK_HOLE to keep a
// sparse file's holes, and utimensat(AT_SYMLINK_NOFOLLOW) to set times to the nanosecond
// on any file type (node's lutimes goes through a double and loses the last digits); and
// SEEK_END, which skips a log device's (/dev/kmsg's) backlog without reading it.
// And syncfs(2), which node:fs lacks: one call makes a whole applied layer durable.
// Also the crash-safe way to write a small metadata file: a reader (or a process that opens
// the store after a kill or a power cut) sees the old file or the whole new one, never a part.
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { fault } from './fault.js';
import { constants as osConstants } from 'node:os';
import { dirname } from 'node:path';
import { koffi, libcDeclarations } from './ffi.js';
import { sysError } from './linux.js';

const c = libcDeclarations((libc) => ({
  lseek: libc.func('int64_t lseek(int fd, int64_t offset, int whence)'),
  utimensat: libc.func('int utimensat(int dirfd, const char *path, const void *times, int flags)'),
  syncfs: libc.func('int syncfs(int fd)'),
}));

const SEEK_END = 2;
const SEEK_DATA = 3;
const SEEK_HOLE = 4;
const AT_FDCWD = -100;
const AT_SYMLINK_NOFOLLOW = 0x100;

/**
 * Start of the next data segment at or after offset, or null past the last one.
 * Filesystems without hole reporting answer as if the whole file were data.
 */
export function seekData(fd: number, offset: number): number | null {
  const r = Number(c().lseek(fd, offset, SEEK_DATA));
  if (r >= 0) return r;
  const e = koffi().errno();
  if (e === osConstants.errno.ENXIO) return null;
  throw sysError('lseek(SEEK_DATA)', e);
}

/**
 * Move to the end of what fd reads. On /dev/kmsg: past the last record, so the next read returns
 * the next record logged, without reading through the whole ring buffer first.
 */
export function seekEnd(fd: number): void {
  if (Number(c().lseek(fd, 0, SEEK_END)) < 0) throw sysError('lseek(SEEK_END)', koffi().errno());
}

/** Start of the next hole at or after offset (the file size when there is none). */
export function seekHole(fd: number, offset: number): number {
  const r = Number(c().lseek(fd, offset, SEEK_HOLE));
  if (r >= 0) return r;
  throw sysError('lseek(SEEK_HOLE)', koffi().errno());
}

/** Set atime and mtime (nanoseconds since the epoch) without following a final symlink. */
export function lutimensNs(path: string, atimeNs: bigint, mtimeNs: bigint): void {
  const buf = Buffer.alloc(32);
  writeTimespec(buf, 0, atimeNs);
  writeTimespec(buf, 16, mtimeNs);
  if ((c().utimensat(AT_FDCWD, path, buf, AT_SYMLINK_NOFOLLOW) as number) < 0) {
    throw sysError('utimensat', koffi().errno(), path);
  }
}

// tv_nsec must lie in [0, 1e9) even for times before 1970.
function writeTimespec(buf: Buffer, at: number, ns: bigint): void {
  let sec = ns / 1_000_000_000n;
  let nsec = ns % 1_000_000_000n;
  if (nsec < 0n) {
    nsec += 1_000_000_000n;
    sec -= 1n;
  }
  buf.writeBigInt64LE(sec, at);
  buf.writeBigInt64LE(nsec, at + 8);
}

/** fsync a directory, so the names created, renamed or removed in it survive a power cut. */
export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
    fault('fsync');
  } finally {
    closeSync(fd);
  }
}

/**
 * Write path as a whole or not at all: the bytes go to `<path>.tmp`, are fsynced, and the temp
 * name is renamed over path (then the directory is fsynced). A kill at any point leaves path
 * absent (or as it was) and at most a `.tmp` file that the next writer replaces.
 */
export function writeFileAtomic(path: string, data: string | Buffer, mode = 0o644): void {
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w', mode);
  try {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    fsyncSync(fd);
    fault('fsync');
  } catch (err) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
  closeSync(fd);
  try {
    renameSync(tmp, path);
    fault('rename');
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  fsyncDir(dirname(path));
}

// The same two through libuv's pool, for a caller with other work to do meanwhile: an fsync
// on a journaled filesystem waits for a journal commit (and the data it orders), and a pull
// that made each new layer's metadata durable synchronously stalled the extraction of the
// layers already streaming for those waits (nginx: 54 fsyncs, ~0.25 s of the main thread).

export async function fsyncDirAsync(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
    fault('fsync');
  } finally {
    await fh.close();
  }
}

export async function writeFileAtomicAsync(path: string, data: string | Buffer, mode = 0o644): Promise<void> {
  const tmp = `${path}.tmp`;
  const fh = await open(tmp, 'w', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
    fault('fsync');
  } catch (err) {
    await fh.close();
    await rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, path);
    fault('rename');
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await fsyncDirAsync(dirname(path));
}

/**
 * Flush everything written to the filesystem holding path (data and metadata) to its storage,
 * on koffi's worker pool. One call after a layer is applied costs one journal commit, where an
 * fsync of each of its files would cost thousands.
 */
export async function syncFs(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await new Promise<void>((resolve, reject) => {
      c().syncfs.async(fh.fd, (err: unknown, r: number) => {
        if (err) reject(err);
        else if (r < 0) reject(sysError('syncfs', koffi().errno(), path));
        else resolve();
      });
    });
    fault('fsync');
  } finally {
    await fh.close();
  }
}
