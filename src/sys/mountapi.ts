// The new mount API (fsopen/fsconfig/fsmount/move_mount, Linux >= 5.2) through raw syscall(2):
// glibc has no wrappers we can rely on. It lets overlay take its lower layers one `lowerdir+`
// call at a time (Linux >= 6.8), so a stack of hundreds of layers is not bound by the
// one-page limit of mount(2)'s data argument.
import { closeSync } from 'node:fs';
import { arch } from 'node:process';
import { koffi, libcDeclarations } from './ffi.js';
import { sysError } from './linux.js';

const libcSyscall = libcDeclarations((libc) => libc.func('long syscall(long number, ...)'));
const syscall = (...args: unknown[]): number | bigint => libcSyscall()(...args) as number | bigint;

// Syscall numbers are the same on x86_64 and aarch64 for these (the "new" unified table).
const NR = { move_mount: 429, fsopen: 430, fsconfig: 431, fsmount: 432 } as const;

export const FSOPEN_CLOEXEC = 1;
export const FSCONFIG_SET_FLAG = 0;
export const FSCONFIG_SET_STRING = 1;
export const FSCONFIG_CMD_CREATE = 6;
export const FSMOUNT_CLOEXEC = 1;
export const MOVE_MOUNT_F_EMPTY_PATH = 4;
const AT_FDCWD = -100;

function check(ret: number | bigint, name: string, path?: string): number {
  const n = Number(ret);
  if (n < 0) throw sysError(name, koffi().errno(), path);
  return n;
}

function supportedArch(): boolean {
  return arch === 'x64' || arch === 'arm64';
}

export function fsopen(fsname: string, flags = FSOPEN_CLOEXEC): number {
  if (!supportedArch()) throw new Error(`fsopen: syscall numbers unknown on ${arch}`);
  return check(syscall(NR.fsopen, 'const char *', fsname, 'unsigned int', flags), 'fsopen', fsname);
}

export function fsconfigString(fd: number, key: string, value: string): void {
  check(
    syscall(NR.fsconfig, 'int', fd, 'unsigned int', FSCONFIG_SET_STRING, 'const char *', key, 'const char *', value, 'int', 0),
    `fsconfig(${key})`,
    value,
  );
}

export function fsconfigFlag(fd: number, key: string): void {
  check(
    syscall(NR.fsconfig, 'int', fd, 'unsigned int', FSCONFIG_SET_FLAG, 'const char *', key, 'void *', null, 'int', 0),
    `fsconfig(${key})`,
  );
}

export function fsconfigCreate(fd: number): void {
  check(
    syscall(NR.fsconfig, 'int', fd, 'unsigned int', FSCONFIG_CMD_CREATE, 'void *', null, 'void *', null, 'int', 0),
    'fsconfig(create)',
  );
}

export function fsmount(fd: number, flags = FSMOUNT_CLOEXEC, attrFlags = 0): number {
  return check(syscall(NR.fsmount, 'int', fd, 'unsigned int', flags, 'unsigned int', attrFlags), 'fsmount');
}

export function moveMountTo(mntFd: number, target: string): void {
  check(
    syscall(
      NR.move_mount,
      'int', mntFd, 'const char *', '',
      'int', AT_FDCWD, 'const char *', target,
      'unsigned int', MOVE_MOUNT_F_EMPTY_PATH,
    ),
    'move_mount',
    target,
  );
}

/** One filesystem option: a string value, or `true` for a bare flag such as `userxattr`. */
export type FsOption = [key: string, value: string | true];

/**
 * Create a filesystem from options applied in order and attach it at target.
 * Repeated keys (overlay's `lowerdir+`) are sent one call each.
 */
export function mountWithFsConfig(fstype: string, source: string, options: FsOption[], target: string): void {
  const fsfd = fsopen(fstype);
  let mntfd = -1;
  try {
    fsconfigString(fsfd, 'source', source);
    for (const [key, value] of options) {
      if (value === true) fsconfigFlag(fsfd, key);
      else fsconfigString(fsfd, key, value);
    }
    fsconfigCreate(fsfd);
    mntfd = fsmount(fsfd);
    moveMountTo(mntfd, target);
  } finally {
    if (mntfd >= 0) closeSync(mntfd);
    closeSync(fsfd);
  }
}

/**
 * True when overlay accepts `lowerdir+` (Linux >= 6.8). Probed by asking a fresh fs context
 * for the key: an unknown key fails with EINVAL, a known one fails on the missing path.
 */
let lowerdirPlus: boolean | undefined;
export function overlaySupportsLowerdirPlus(): boolean {
  if (lowerdirPlus !== undefined) return lowerdirPlus;
  if (!supportedArch()) return (lowerdirPlus = false);
  let fd: number;
  try {
    fd = fsopen('overlay');
  } catch {
    return (lowerdirPlus = false);
  }
  try {
    fsconfigString(fd, 'lowerdir+', '/nonexistent-strata-probe');
    lowerdirPlus = true;
  } catch (err) {
    lowerdirPlus = (err as { code?: string }).code === 'ENOENT';
  } finally {
    closeSync(fd);
  }
  return lowerdirPlus;
}
