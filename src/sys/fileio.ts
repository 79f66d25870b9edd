// File calls node:fs lacks that an exact tree copy needs: SEEK_DATA/SEEK_HOLE to keep a
// sparse file's holes, and utimensat(AT_SYMLINK_NOFOLLOW) to set times to the nanosecond
// on any file type (node's lutimes goes through a double and loses the last digits).
import koffi from 'koffi';
import { constants as osConstants } from 'node:os';
import { sysError } from './linux.js';

const libc = koffi.load('libc.so.6');
const c = {
  lseek: libc.func('int64_t lseek(int fd, int64_t offset, int whence)'),
  utimensat: libc.func('int utimensat(int dirfd, const char *path, const void *times, int flags)'),
};

const SEEK_DATA = 3;
const SEEK_HOLE = 4;
const AT_FDCWD = -100;
const AT_SYMLINK_NOFOLLOW = 0x100;

/**
 * Start of the next data segment at or after offset, or null past the last one.
 * Filesystems without hole reporting answer as if the whole file were data.
 */
export function seekData(fd: number, offset: number): number | null {
  const r = Number(c.lseek(fd, offset, SEEK_DATA));
  if (r >= 0) return r;
  const e = koffi.errno();
  if (e === osConstants.errno.ENXIO) return null;
  throw sysError('lseek(SEEK_DATA)', e);
}

/** Start of the next hole at or after offset (the file size when there is none). */
export function seekHole(fd: number, offset: number): number {
  const r = Number(c.lseek(fd, offset, SEEK_HOLE));
  if (r >= 0) return r;
  throw sysError('lseek(SEEK_HOLE)', koffi.errno());
}

/** Set atime and mtime (nanoseconds since the epoch) without following a final symlink. */
export function lutimensNs(path: string, atimeNs: bigint, mtimeNs: bigint): void {
  const buf = Buffer.alloc(32);
  writeTimespec(buf, 0, atimeNs);
  writeTimespec(buf, 16, mtimeNs);
  if ((c.utimensat(AT_FDCWD, path, buf, AT_SYMLINK_NOFOLLOW) as number) < 0) {
    throw sysError('utimensat', koffi.errno(), path);
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
