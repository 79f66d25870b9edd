// Linux system calls that node:fs does not offer, through koffi (FFI into glibc).
// Every wrapper throws a node-style error (err.code = 'ENOENT', …) so callers treat
// these exactly like node:fs failures.
import { koffi, libcDeclarations } from './ffi.js';
import { statfsSync } from 'node:fs';
import { constants as osConstants } from 'node:os';

const errnoNames = new Map<number, string>();
for (const [name, num] of Object.entries(osConstants.errno)) {
  if (!errnoNames.has(num)) errnoNames.set(num, name);
}

export interface SysError extends Error {
  code: string;
  errno: number;
  syscall: string;
  path?: string;
}

export function sysError(syscall: string, errno: number, path?: string): SysError {
  const code = errnoNames.get(errno) ?? `E${errno}`;
  const where = path === undefined ? '' : ` '${path}'`;
  const err = new Error(`${code}: ${syscall}${where} failed (errno ${errno})`) as SysError;
  err.code = code;
  err.errno = -errno;
  err.syscall = syscall;
  if (path !== undefined) err.path = path;
  return err;
}

function check(ret: number, syscall: string, path?: string): number {
  if (ret < 0) throw sysError(syscall, koffi().errno(), path);
  return ret;
}

const c = libcDeclarations((libc) => ({
  mknod: libc.func('int mknod(const char *path, uint32_t mode, uint64_t dev)'),
  lsetxattr: libc.func('int lsetxattr(const char *path, const char *name, const void *value, size_t size, int flags)'),
  lgetxattr: libc.func('intptr_t lgetxattr(const char *path, const char *name, void *value, size_t size)'),
  llistxattr: libc.func('intptr_t llistxattr(const char *path, void *list, size_t size)'),
  lremovexattr: libc.func('int lremovexattr(const char *path, const char *name)'),
  mount: libc.func('int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)'),
  umount2: libc.func('int umount2(const char *target, int flags)'),
  renameat2: libc.func('int renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned int flags)'),
  flock: libc.func('int flock(int fd, int op)'),
  ioctlInt: libc.func('int ioctl(int fd, unsigned long request, int arg)'),
}));

// ---- device numbers (glibc encoding) ----
export function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return ((ma & 0xfffn) << 8n) | ((ma & ~0xfffn) << 32n) | (mi & 0xffn) | ((mi & ~0xffn) << 12n);
}

export function devMajor(dev: number | bigint): number {
  const d = BigInt(dev);
  return Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn));
}

export function devMinor(dev: number | bigint): number {
  const d = BigInt(dev);
  return Number((d & 0xffn) | ((d >> 12n) & ~0xffn));
}

/** mknod(2); mode includes the file type bits (S_IFCHR, S_IFBLK, S_IFIFO). */
export function mknod(path: string, mode: number, dev: bigint | number = 0): void {
  check(c().mknod(path, mode, BigInt(dev)), 'mknod', path);
}

// ---- extended attributes (never following symlinks) ----
export function lsetxattr(path: string, name: string, value: Buffer, flags = 0): void {
  check(c().lsetxattr(path, name, value, value.length, flags), 'lsetxattr', path);
}

/** The value of one xattr, or null when the file does not carry it. */
export function lgetxattr(path: string, name: string): Buffer | null {
  for (;;) {
    const size = c().lgetxattr(path, name, null, 0) as number;
    if (size < 0) {
      const e = koffi().errno();
      if (e === osConstants.errno.ENODATA) return null;
      throw sysError('lgetxattr', e, path);
    }
    if (size === 0) return Buffer.alloc(0);
    const buf = Buffer.alloc(size);
    const got = c().lgetxattr(path, name, buf, size) as number;
    if (got < 0) {
      const e = koffi().errno();
      if (e === osConstants.errno.ERANGE) continue; // value grew in between
      if (e === osConstants.errno.ENODATA) return null;
      throw sysError('lgetxattr', e, path);
    }
    return buf.subarray(0, got);
  }
}

export function llistxattr(path: string): string[] {
  for (;;) {
    const size = c().llistxattr(path, null, 0) as number;
    if (size < 0) {
      const e = koffi().errno();
      if (e === osConstants.errno.ENOTSUP) return [];
      throw sysError('llistxattr', e, path);
    }
    if (size === 0) return [];
    const buf = Buffer.alloc(size);
    const got = c().llistxattr(path, buf, size) as number;
    if (got < 0) {
      const e = koffi().errno();
      if (e === osConstants.errno.ERANGE) continue;
      throw sysError('llistxattr', e, path);
    }
    return buf
      .subarray(0, got)
      .toString('latin1')
      .split('\0')
      .filter((n) => n.length > 0)
      .map((n) => Buffer.from(n, 'latin1').toString('utf8'));
  }
}

export function lremovexattr(path: string, name: string): void {
  check(c().lremovexattr(path, name), 'lremovexattr', path);
}

/** All xattrs of a path, name -> exact bytes. */
export function readXattrs(path: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const name of llistxattr(path)) {
    const v = lgetxattr(path, name);
    if (v !== null) out.set(name, v);
  }
  return out;
}

// ---- mounts ----
export const MS_RDONLY = 1;
export const MS_NOSUID = 2;
export const MS_NODEV = 4;
export const MS_REMOUNT = 32;
export const MS_BIND = 4096;
export const MS_PRIVATE = 1 << 18;
export const MNT_DETACH = 2;

export function mount(source: string, target: string, fstype: string | null, flags: number, data: string | null): void {
  check(c().mount(source, target, fstype, flags, data), 'mount', target);
}

export function umount2(target: string, flags = 0): void {
  check(c().umount2(target, flags), 'umount2', target);
}

// ---- rename ----
export const AT_FDCWD = -100;
export const RENAME_NOREPLACE = 1;
export const RENAME_EXCHANGE = 2;

export function renameat2(oldPath: string, newPath: string, flags: number): void {
  check(c().renameat2(AT_FDCWD, oldPath, AT_FDCWD, newPath, flags), 'renameat2', oldPath);
}

// ---- advisory locks ----
export const LOCK_SH = 1;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const LOCK_UN = 8;

/** Non-blocking flock: true when taken, false when another holder has it. */
export function tryFlock(fd: number, op: number): boolean {
  const r = c().flock(fd, op | LOCK_NB) as number;
  if (r === 0) return true;
  const e = koffi().errno();
  if (e === osConstants.errno.EWOULDBLOCK) return false;
  throw sysError('flock', e);
}

/** Blocking flock, run on koffi's worker pool so the event loop keeps going. */
export function flock(fd: number, op: number): Promise<void> {
  return new Promise((resolve, reject) => {
    c().flock.async(fd, op, (err: unknown, r: number) => {
      if (err) reject(err);
      else if (r < 0) reject(sysError('flock', koffi().errno()));
      else resolve();
    });
  });
}

// ---- statfs ----
// node:fs has statfs (Node 18.15+); f_type is the filesystem magic, kept to its 32 bits.
/** f_type (filesystem magic) of the filesystem holding path. */
export function statfsType(path: string): number {
  return Number(statfsSync(path, { bigint: true }).type & 0xffffffffn);
}

export interface StatfsInfo {
  type: number;
  blockSize: number;
  blocks: bigint;
  blocksFree: bigint;
  blocksAvail: bigint;
}

export function statfs(path: string): StatfsInfo {
  const s = statfsSync(path, { bigint: true });
  return { type: Number(s.type & 0xffffffffn), blockSize: Number(s.bsize), blocks: s.blocks, blocksFree: s.bfree, blocksAvail: s.bavail };
}

// ---- reflink ----
const FICLONE = 0x40049409;

/** Share src's blocks with dst (both open fds); throws EOPNOTSUPP/EXDEV where unsupported. */
export function ficlone(dstFd: number, srcFd: number): void {
  check(c().ioctlInt(dstFd, FICLONE, srcFd), 'ioctl(FICLONE)');
}
