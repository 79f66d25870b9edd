// Loop devices through the kernel's ioctls (no losetup), and filesystem freeze.
//
// Every device is configured with LO_FLAGS_AUTOCLEAR: the kernel detaches it when its last
// user goes away. Whoever attaches a device holds it open until it is mounted (the mount then
// holds it), so a process that dies in between leaves nothing attached, and an unmount is
// also the detach.
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { koffi, libcDeclarations } from './ffi.js';
import { sysError } from './linux.js';

const c = libcDeclarations((libc) => ({
  ioctlInt: libc.func('int ioctl(int fd, unsigned long request, long arg)'),
  ioctlPtr: libc.func('ioctl', 'int', ['int', 'unsigned long', 'void *']),
}));

const LOOP_CLR_FD = 0x4c01;
const LOOP_SET_CAPACITY = 0x4c07;
const LOOP_CONFIGURE = 0x4c0a;
const LOOP_CTL_GET_FREE = 0x4c82;
const LO_FLAGS_READ_ONLY = 1;
const LO_FLAGS_AUTOCLEAR = 4;
// struct loop_config { u32 fd; u32 block_size; struct loop_info64 info (232 bytes); u64 reserved[8]; }
const LOOP_CONFIG_SIZE = 304;
const INFO_OFFSET = 8;
const LO_FLAGS_OFFSET = INFO_OFFSET + 52;
const LO_FILE_NAME_OFFSET = INFO_OFFSET + 56;

const FIFREEZE = 0xc0045877;
const FITHAW = 0xc0045878;

export interface AttachedLoop {
  /** e.g. /dev/loop3 */
  device: string;
  /** Open on the device; close it once the device is mounted (or to let the kernel detach it). */
  fd: number;
}

function errno(): number {
  return koffi().errno();
}

/**
 * Attach file to a free loop device with autoclear. The caller owns the returned fd: the
 * device stays attached while that fd (or a mount of the device) is open.
 */
export function attachLoop(file: string, opts: { readOnly?: boolean } = {}): AttachedLoop {
  const backing = openSync(file, opts.readOnly ? 'r' : 'r+');
  try {
    const ctl = openSync('/dev/loop-control', 'r+');
    try {
      // Another process can take the free device between GET_FREE and CONFIGURE: try again.
      for (let attempt = 0; attempt < 32; attempt++) {
        const n = c().ioctlInt(ctl, LOOP_CTL_GET_FREE, 0) as number;
        if (n < 0) throw sysError('ioctl(LOOP_CTL_GET_FREE)', errno(), '/dev/loop-control');
        const device = `/dev/loop${n}`;
        let fd: number;
        try {
          fd = openSync(device, opts.readOnly ? 'r' : 'r+');
        } catch (err) {
          // devtmpfs may lag behind a device the kernel just created
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
          throw err;
        }
        const cfg = Buffer.alloc(LOOP_CONFIG_SIZE);
        cfg.writeUInt32LE(backing, 0);
        cfg.writeUInt32LE(LO_FLAGS_AUTOCLEAR | (opts.readOnly ? LO_FLAGS_READ_ONLY : 0), LO_FLAGS_OFFSET);
        Buffer.from(file.slice(-63)).copy(cfg, LO_FILE_NAME_OFFSET);
        if ((c().ioctlPtr(fd, LOOP_CONFIGURE, cfg) as number) === 0) return { device, fd };
        const e = errno();
        closeSync(fd);
        if (e === 16 /* EBUSY */) continue;
        throw sysError('ioctl(LOOP_CONFIGURE)', e, device);
      }
      throw new Error(`no free loop device for ${file} after 32 attempts`);
    } finally {
      closeSync(ctl);
    }
  } finally {
    // The device holds its own reference to the file.
    closeSync(backing);
  }
}

/** Detach a loop device now (for devices that are not mounted; mounted ones autoclear on unmount). */
export function detachLoop(device: string): void {
  const fd = openSync(device, 'r');
  try {
    if ((c().ioctlInt(fd, LOOP_CLR_FD, 0) as number) < 0) {
      const e = errno();
      if (e !== 6 /* ENXIO: not attached */) throw sysError('ioctl(LOOP_CLR_FD)', e, device);
    }
  } finally {
    closeSync(fd);
  }
}

/** Make an attached device see its backing file's new size (after the file grew). */
export function refreshLoopCapacity(fd: number, device: string): void {
  if ((c().ioctlInt(fd, LOOP_SET_CAPACITY, 0) as number) < 0) throw sysError('ioctl(LOOP_SET_CAPACITY)', errno(), device);
}

export interface LoopInfo {
  device: string;
  backingFile: string;
  autoclear: boolean;
}

/** Attached loop devices and their backing files, from sysfs. */
export function listLoops(): LoopInfo[] {
  const out: LoopInfo[] = [];
  let names: string[];
  try {
    names = readdirSync('/sys/block').filter((n) => /^loop\d+$/.test(n));
  } catch {
    return out;
  }
  for (const name of names) {
    try {
      // The kernel appends " (deleted)" when the file was unlinked while attached.
      const backingFile = readFileSync(`/sys/block/${name}/loop/backing_file`, 'utf8').replace(/\n$/, '');
      const autoclear = readFileSync(`/sys/block/${name}/loop/autoclear`, 'utf8').trim() === '1';
      out.push({ device: `/dev/${name}`, backingFile, autoclear });
    } catch {
      // not attached (no loop/ dir) or detached meanwhile
    }
  }
  return out;
}

/**
 * Open a loop device that already has file attached, so it stays attached while the returned
 * fd is open; null when there is none. Mounting the same device again shares the filesystem a
 * mount elsewhere (another mount namespace, a lazy unmount) still holds, where a second device
 * over the same file would be a second, conflicting instance of it.
 */
export function openAttachedLoop(file: string): AttachedLoop | null {
  for (const loop of listLoops()) {
    if (loop.backingFile !== file) continue;
    let fd: number;
    try {
      fd = openSync(loop.device, 'r+');
    } catch {
      continue;
    }
    // Detached and given to another file between the listing and the open?
    const now = listLoops().find((l) => l.device === loop.device);
    if (now?.backingFile === file) return { device: loop.device, fd };
    closeSync(fd);
  }
  return null;
}

/** Freeze the filesystem mounted at dir (flushes it and blocks writers) until thawFs. */
export function freezeFs(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    if ((c().ioctlInt(fd, FIFREEZE, 0) as number) < 0) throw sysError('ioctl(FIFREEZE)', errno(), dir);
  } finally {
    closeSync(fd);
  }
}

export function thawFs(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    if ((c().ioctlInt(fd, FITHAW, 0) as number) < 0) throw sysError('ioctl(FITHAW)', errno(), dir);
  } finally {
    closeSync(fd);
  }
}
