// The pool behind the devicemapper driver when the kernel has no dm-thin: sparse device image
// files whose snapshots are reflinks (FICLONE), so a snapshot shares every block with its
// origin until one side writes it: allocate-on-demand and copy-on-write at block level, as a
// thin pool does.
//
// The images live on an XFS filesystem with reflink, which is either the store's own filesystem
// (when it can reflink) or a sparse `devicemapper/devicemapper/data` file formatted as XFS and
// loop-mounted at `devicemapper/pool` while some process works on it. The mount is shared by
// processes: each holds a shared flock on `.pool.busy` while it works, and whoever finds no
// holder and no device mounted unmounts it (the loop device goes with it: autoclear).
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, existsSync, openSync, readdirSync, statSync } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { dirname, join, sep } from 'node:path';
import { isCode } from '../../sys/errno.js';
import { backingFsName } from '../../sys/fsprobe.js';
import { ficlone, LOCK_EX, LOCK_UN, MNT_DETACH, mount, statfs, tryFlock, umount2, flock } from '../../sys/linux.js';
import { attachLoop, detachLoop, freezeFs, listLoops, refreshLoopCapacity, thawFs } from '../../sys/loop.js';
import { isMountPoint, mountsUnder, readMounts } from '../../sys/mountinfo.js';
import { runTool } from '../../sys/run.js';
import { DriverError } from '../driver.js';
import { BASE, DEVICESET, humanSize, readDeviceSet, writeDeviceSet, type DeviceContext, type DeviceRecord, type DeviceSet, type Pool } from './devices.js';
import { PoolLease } from './lease.js';

/** Where the reflink pool's images are: a loop-mounted XFS data file, or the store's own filesystem. */
export type PoolBackend = 'reflink-loop' | 'reflink-dir';

/** Whether files in dir can share blocks (FICLONE works there). */
export async function canReflink(dir: string): Promise<boolean> {
  const a = join(dir, `.reflink-probe-${process.pid}-a`);
  const b = join(dir, `.reflink-probe-${process.pid}-b`);
  try {
    const fa = await open(a, 'w');
    await fa.write(Buffer.alloc(4096, 1));
    await fa.close();
    const src = openSync(a, 'r');
    const dst = openSync(b, 'w');
    try {
      ficlone(dst, src);
      return true;
    } catch {
      return false;
    } finally {
      closeSync(src);
      closeSync(dst);
    }
  } finally {
    await rm(a, { force: true });
    await rm(b, { force: true });
  }
}

/** Clone src to dst (which must not exist) sharing all blocks; the file appears whole or not at all. */
export async function cloneFile(src: string, dst: string): Promise<void> {
  const tmp = `${dst}.tmp`;
  await rm(tmp, { force: true });
  const s = openSync(src, 'r');
  try {
    const d = openSync(tmp, 'wx', 0o600);
    try {
      ficlone(d, s);
    } finally {
      closeSync(d);
    }
  } catch (err) {
    await rm(tmp, { force: true });
    throw new DriverError(`devicemapper: cannot reflink ${src}: ${(err as Error).message}`);
  } finally {
    closeSync(s);
  }
  await rename(tmp, dst);
}

export interface PoolSpace {
  used: number;
  total: number;
  available: number;
  blockSize: number;
}

export class ReflinkPool {
  /** Where the device images are (the XFS mount, or a plain dir on a reflink filesystem). */
  readonly dir: string;
  readonly dataFile: string;
  private readonly lockFile: string;
  private readonly lease: PoolLease;

  constructor(
    private readonly home: string,
    readonly backend: PoolBackend,
    private readonly dataSize: number,
    /** Mount points of devices: while any is mounted the pool must stay. */
    private readonly deviceMounts: string,
  ) {
    this.dir = join(home, 'pool');
    this.dataFile = join(home, 'devicemapper', 'data');
    this.lease = new PoolLease(home, () => this.ensureMounted(), (fd) => this.unmountIfIdle(fd));
    this.lockFile = join(home, '.pool.lock');
  }

  /** Run fn with the pool available; the pool may go away after the last user leaves. */
  use<T>(fn: () => Promise<T>): Promise<T> {
    return this.lease.use(fn);
  }

  /**
   * Unmount the pool when no process is working on it and no device is mounted. Synchronous,
   * so nothing in this process can start using the pool half way.
   */
  unmountIfIdle(busyFd?: number): boolean {
    if (this.backend !== 'reflink-loop' || this.lease.active || !isMountPoint(this.dir)) return false;
    if (mountsUnder(this.deviceMounts).length > 0) return false;
    const lock = openSync(this.lockFile, 'a', 0o600);
    const busy = busyFd ?? openSync(this.lease.busyFile, 'a', 0o600);
    try {
      if (!tryFlock(lock, LOCK_EX)) return false;
      if (!tryFlock(busy, LOCK_EX)) return false;
      if (!isMountPoint(this.dir) || mountsUnder(this.deviceMounts).length > 0) return false;
      try {
        umount2(this.dir, 0);
      } catch (err) {
        // A device image still attached (e.g. a mount being made right now): leave it.
        if ((err as NodeJS.ErrnoException).code === 'EBUSY') return false;
        throw err;
      }
      return true;
    } finally {
      tryFlock(busy, LOCK_UN);
      if (busyFd === undefined) closeSync(busy);
      tryFlock(lock, LOCK_UN);
      closeSync(lock);
    }
  }

  private async ensureMounted(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    if (this.backend === 'reflink-dir' || isMountPoint(this.dir)) return;
    const lock = openSync(this.lockFile, 'a', 0o600);
    try {
      if (!tryFlock(lock, LOCK_EX)) await flock(lock, LOCK_EX);
      if (isMountPoint(this.dir)) return;
      if (!existsSync(this.dataFile)) await this.format();
      const loop = attachLoop(this.dataFile);
      try {
        // discard: space freed in the pool is punched out of the sparse data file.
        mount(loop.device, this.dir, 'xfs', 0, 'discard');
      } finally {
        closeSync(loop.fd);
      }
    } finally {
      tryFlock(lock, LOCK_UN);
      closeSync(lock);
    }
  }

  /** Make the sparse data file and put XFS with reflink on it (once). */
  private async format(): Promise<void> {
    await mkdir(dirname(this.dataFile), { recursive: true, mode: 0o700 });
    const tmp = `${this.dataFile}.tmp`;
    await rm(tmp, { force: true });
    const fh = await open(tmp, 'wx', 0o600);
    await fh.close();
    await truncate(tmp, this.dataSize);
    // -K: no discard of a file that is all holes anyway.
    await runTool('mkfs.xfs', ['-q', '-K', '-m', 'reflink=1', tmp]);
    await rename(tmp, this.dataFile);
  }

  /** Data space, as Docker's loop-lvm reported it: blocks allocated to the data file. */
  space(): PoolSpace {
    if (this.backend === 'reflink-loop' && !existsSync(this.dataFile)) {
      const host = statfs(this.home);
      const hostFree = Number(host.blocksAvail) * host.blockSize;
      return { used: 0, total: this.dataSize, available: Math.min(this.dataSize, hostFree), blockSize: 4096 };
    }
    if (this.backend === 'reflink-loop') {
      const st = statSync(this.dataFile);
      const host = statfs(dirname(this.dataFile));
      const used = st.blocks * 512;
      const total = st.size;
      const hostFree = Number(host.blocksAvail) * host.blockSize;
      return { used, total, available: Math.max(0, Math.min(total - used, hostFree)), blockSize: 4096 };
    }
    const where = existsSync(this.dir) ? this.dir : this.home;
    const s = statfs(where);
    const total = Number(s.blocks) * s.blockSize;
    return {
      used: total - Number(s.blocksFree) * s.blockSize,
      total,
      available: Number(s.blocksAvail) * s.blockSize,
      blockSize: s.blockSize,
    };
  }
}

/** Crash leftovers younger than this may be another process's work in progress. */
const ORPHAN_AGE_MS = 10 * 60 * 1000;

/**
 * Devices as sparse image files in the ReflinkPool: a snapshot is a reflink clone of its
 * origin's image, attached through an autoclear loop device while it is mounted.
 */
export class ReflinkDevices implements Pool {
  private readonly pool: ReflinkPool;
  private swept = false;

  constructor(
    private readonly ctx: DeviceContext,
    backend: PoolBackend,
    dataSize: number,
  ) {
    this.pool = new ReflinkPool(ctx.home, backend, dataSize, ctx.mntRoot);
  }

  use<T>(fn: () => Promise<T>): Promise<T> {
    return this.pool.use(fn);
  }

  private image(id: string): string {
    return join(this.pool.dir, `${id}.img`);
  }

  async createDevice(id: string, parent: string | null, parentRec: DeviceRecord | null, want: number | null): Promise<void> {
    const { ctx } = this;
    await this.sweepImages();
    this.checkFreeSpace();
    const src = parent === null ? await this.ensureBase() : this.image(parent);
    const srcSize = parentRec?.size ?? ctx.baseSize;
    if (want !== null && want < srcSize) {
      throw new DriverError(
        `devicemapper: size ${humanSize(want)} is smaller than the ${parent === null ? 'base' : 'parent'} device (${humanSize(srcSize)}): a device can only grow`,
      );
    }
    const dst = this.image(id);
    await rm(dst, { force: true });
    await this.snapshot(src, dst, parent);
    try {
      const size = want ?? srcSize;
      await this.grow(dst, srcSize, size);
      const set = (await readDeviceSet(ctx.home)) as DeviceSet;
      const rec: DeviceRecord = {
        device_id: set.next_device_id,
        size,
        transaction_id: set.next_device_id,
        initialized: true,
        deleted: false,
        parent,
      };
      await writeDeviceSet(ctx.home, { ...set, next_device_id: set.next_device_id + 1 });
      await ctx.writeRecord(id, rec);
    } catch (err) {
      await rm(dst, { force: true });
      throw err;
    }
  }

  async removeDevice(id: string): Promise<void> {
    await rm(this.image(id), { force: true });
  }

  mountDevice(id: string, _rec: DeviceRecord, dir: string): Promise<void> {
    return this.mountImage(this.image(id), dir);
  }

  unmounted(): Promise<void> {
    // The loop device is autoclear: it went with the mount.
    return Promise.resolve();
  }

  released(): Promise<void> {
    this.pool.unmountIfIdle();
    return Promise.resolve();
  }

  /** Loop devices of our images that are neither mounted nor autoclear (autoclear ones vanish by themselves). */
  reconcile(): Promise<void> {
    const mounted = new Set(readMounts().map((m) => m.source));
    const ours = [this.pool.dir + sep, this.pool.dataFile];
    for (const loop of listLoops()) {
      const file = loop.backingFile.replace(/ \(deleted\)$/, '');
      if (!ours.some((p) => file === p || file.startsWith(p))) continue;
      if (loop.autoclear || mounted.has(loop.device)) continue;
      try {
        detachLoop(loop.device);
      } catch {
        // busy: somebody does use it after all
      }
    }
    this.pool.unmountIfIdle();
    return Promise.resolve();
  }

  /** Once per process, with the pool mounted: delete images that no metadata file claims. */
  private async sweepImages(): Promise<void> {
    if (this.swept) return;
    this.swept = true;
    const { ctx } = this;
    const pool = this.pool.dir;
    // Another process may be between cloning an image and writing its record: only what has
    // been lying there a while is a crash's leftover.
    const before = Date.now() - ORPHAN_AGE_MS;
    const old = async (p: string) => (await stat(p).catch(() => null))?.mtimeMs ?? Infinity;
    for (const name of await readdir(pool)) {
      const m = /^(.*)\.img(\.tmp)?$/.exec(name);
      if (!m || (m[1] === BASE && m[2] === undefined)) continue;
      if (m[2] === undefined && existsSync(ctx.metaFile(m[1]))) continue;
      if ((await old(join(pool, name))) < before) await rm(join(pool, name), { force: true });
    }
    for (const name of await readdir(ctx.metaDir)) {
      if (!name.endsWith('.tmp') && !name.endsWith('-removing')) continue;
      if ((await old(join(ctx.metaDir, name))) < before) await rm(join(ctx.metaDir, name), { force: true });
    }
  }

  private async ensureBase(): Promise<string> {
    const { ctx } = this;
    const base = this.image(BASE);
    const set = await readDeviceSet(ctx.home);
    if (set && existsSync(base)) {
      if (ctx.baseSize > set.BaseDeviceSize) {
        await this.grow(base, set.BaseDeviceSize, ctx.baseSize);
        await writeDeviceSet(ctx.home, { ...set, BaseDeviceSize: ctx.baseSize });
      }
      return base;
    }
    const tmp = `${base}.tmp`;
    await rm(tmp, { force: true });
    await writeFile(tmp, '', { mode: 0o600 });
    await truncate(tmp, ctx.baseSize);
    if (ctx.fs === 'ext4') {
      // nodiscard: the image is all holes. Lazy inode tables are never zeroed later either,
      // because every mount says noinit_itable: zeroing would unshare blocks in every device.
      await runTool('mkfs.ext4', ['-q', '-F', '-b', '4096', '-E', 'nodiscard,lazy_itable_init=1,lazy_journal_init=1', tmp]);
    } else {
      await runTool('mkfs.xfs', ['-q', '-f', '-K', tmp]);
    }
    // Docker keeps layer contents in rootfs/ of each device.
    await this.withImageMounted(tmp, ctx.mnt(`${BASE}.tmp`), async (dir) => {
      await mkdir(join(dir, 'rootfs'), { mode: 0o755 });
    });
    await rename(tmp, base);
    await writeDeviceSet(ctx.home, {
      next_device_id: set?.next_device_id ?? 1,
      BaseDeviceSize: ctx.baseSize,
      BaseDeviceFilesystem: ctx.fs,
    });
    return base;
  }

  /** Attach image to a loop device and mount it at dir; the loop goes away with the mount. */
  private async mountImage(image: string, dir: string, after?: (device: string, fd: number) => Promise<void>): Promise<void> {
    const loop = attachLoop(image);
    try {
      mount(loop.device, dir, this.ctx.fs, 0, this.ctx.mountData());
      if (after) await after(loop.device, loop.fd);
    } finally {
      closeSync(loop.fd);
    }
  }

  private async withImageMounted<T>(image: string, dir: string, fn: (dir: string, device: string, fd: number) => Promise<T>): Promise<T> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    let result: T | undefined;
    try {
      await this.mountImage(image, dir, async (device, fd) => {
        try {
          result = await fn(dir, device, fd);
        } catch (err) {
          await unmountQuietly(dir);
          throw err;
        }
      });
      await unmountQuietly(dir);
    } finally {
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    }
    return result as T;
  }

  /** Grow the device image and the filesystem on it from `from` to `to` bytes. */
  private async grow(image: string, from: number, to: number): Promise<void> {
    if (to <= from) return;
    await truncate(image, to);
    if (this.ctx.fs === 'ext4') {
      // Offline: resize2fs wants a freshly checked filesystem (a snapshot of a device that was
      // mounted has a journal to replay); e2fsck exits 1 when it fixed something.
      await runTool('e2fsck', ['-f', '-y', image], { okCodes: [0, 1] });
      await runTool('resize2fs', [image]);
      return;
    }
    // XFS grows only while mounted.
    const tmpMnt = join(this.ctx.mntRoot, `.grow-${process.pid}-${Date.now()}`);
    await this.withImageMounted(image, tmpMnt, async (dir, device, fd) => {
      refreshLoopCapacity(fd, device);
      await runTool('xfs_growfs', [dir]);
    });
  }

  /** A mounted origin is frozen while it is cloned, so the snapshot holds a clean filesystem. */
  private async snapshot(src: string, dst: string, parent: string | null): Promise<void> {
    const parentMnt = parent === null ? null : this.ctx.mnt(parent);
    if (parentMnt !== null && isMountPoint(parentMnt)) {
      freezeFs(parentMnt);
      try {
        await cloneFile(src, dst);
      } finally {
        thawFs(parentMnt);
      }
    } else {
      await cloneFile(src, dst);
    }
  }

  /** Docker refuses new devices once the pool's free space falls below dm.min_free_space. */
  private checkFreeSpace(): void {
    const s = this.pool.space();
    const min = Math.floor((s.total * this.ctx.minFreePercent) / 100);
    if (s.available < min) {
      throw new DriverError(
        `devicemapper: thin pool has ${humanSize(s.available)} free, less than the minimum ${humanSize(min)} (dm.min_free_space=${this.ctx.minFreePercent}%): free some space or lower dm.min_free_space`,
      );
    }
  }

  async status(): Promise<[string, string][]> {
    const { ctx } = this;
    const st = statSync(ctx.home);
    const major = Math.floor(st.dev / 256);
    const minor = st.dev % 256;
    const space = this.pool.space();
    const loops = listLoops().filter((l) => l.backingFile === this.pool.dataFile);
    const devices = readdirSync(ctx.metaDir).filter((n) => !n.includes('.') && !n.endsWith('-removing') && n !== DEVICESET).length;
    const rows: [string, string][] = [
      ['Pool Name', `strata-${major}:${minor}-${st.ino}-pool`],
      ['Pool Blocksize', humanSize(space.blockSize)],
      ['Base Device Size', humanSize(ctx.baseSize)],
      ['Backing Filesystem', backingFsName(ctx.home)],
      ['Base Device Filesystem', ctx.fs],
      ['Pool Backend', this.pool.backend === 'reflink-loop' ? 'reflink (sparse device images on a loop-mounted XFS data file)' : 'reflink (sparse device images on the store filesystem)'],
      ['Devices', String(devices)],
      ['Data file', loops[0]?.device ?? (this.pool.backend === 'reflink-loop' ? '(not attached)' : '')],
      ['Metadata file', ctx.metaDir],
      ['Data Space Used', humanSize(space.used)],
      ['Data Space Total', humanSize(space.total)],
      ['Data Space Available', humanSize(space.available)],
      ['Thin Pool Minimum Free Space', humanSize(Math.floor((space.total * ctx.minFreePercent) / 100))],
      ['Udev Sync Supported', 'false'],
      ['Deferred Removal Enabled', 'false'],
    ];
    if (this.pool.backend === 'reflink-loop') rows.splice(8, 0, ['Data loop file', this.pool.dataFile]);
    return rows;
  }

  deviceName(id: string): string {
    const st = statSync(this.ctx.home);
    return `strata-${Math.floor(st.dev / 256)}:${st.dev % 256}-${st.ino}-${id}`;
  }

  deviceImage(id: string): Promise<{ allocated: number; size: number; sha256: string }> {
    return this.pool.use(async () => {
      const file = this.image(id);
      const st = await stat(file);
      const h = createHash('sha256');
      for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
      return { allocated: st.blocks * 512, size: st.size, sha256: h.digest('hex') };
    });
  }
}

/** Unmount a scratch mount of a device image; busy, it is detached (its loop goes when it is free). */
async function unmountQuietly(dir: string): Promise<void> {
  try {
    umount2(dir, 0);
  } catch (err) {
    if (!isCode(err, 'EINVAL', 'ENOENT', 'EBUSY')) throw err;
    if (isCode(err, 'EBUSY')) umount2(dir, MNT_DETACH);
  }
}
