// Devices as sparse image files in the reflink pool (reflink-pool.ts), for kernels without
// dm-thin: `<pool>/<id>.img` is a filesystem image cloned (FICLONE) from its parent's, so it
// shares every block until one side writes; a device is mounted through an autoclear loop
// device. A device exists once its record does (written last, removed first); images no record
// claims are deleted on the first pool use of a process.
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, existsSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { mkdir, readdir, rename, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { backingFsName } from '../../sys/fsprobe.js';
import { mount } from '../../sys/linux.js';
import { attachLoop, detachLoop, freezeFs, listLoops, openAttachedLoop, refreshLoopCapacity, thawFs } from '../../sys/loop.js';
import { isMountPoint, readMounts } from '../../sys/mountinfo.js';
import { runTool } from '../../sys/run.js';
import { fault } from '../../sys/fault.js';
import type { BlockUsage } from '../driver.js';
import { cloneFile, ReflinkPool, type ReflinkBackend } from './reflink-pool.js';
import {
  BASE,
  checkGrowOnly,
  checkMinFree,
  humanSize,
  readDeviceSet,
  recordNames,
  writeDeviceSet,
  type DeviceContext,
  type DevicePool,
  type DeviceRecord,
  type DeviceSet,
} from './devices.js';

/** Another process may be between cloning an image and writing its record: only older ones are leftovers. */
const ORPHAN_AGE_MS = 10 * 60 * 1000;

/** A file's data extents (bytes), as `xfs_io -c 'fiemap -v'` lists them; holes left out. */
async function fiemap(file: string): Promise<{ logical: number; physical: number; length: number; shared: boolean }[]> {
  const out = [];
  for (const line of (await runTool('xfs_io', ['-r', '-c', 'fiemap -v', file])).split('\n')) {
    const m = /^\s*\d+: \[(\d+)\.\.(\d+)\]:\s+(\d+)\.\.(\d+)\s+\d+\s+0x([0-9a-f]+)/.exec(line);
    if (!m) continue;
    // FIEMAP_EXTENT_SHARED
    const shared = (parseInt(m[5], 16) & 0x2000) !== 0;
    out.push({ logical: Number(m[1]) * 512, physical: Number(m[3]) * 512, length: (Number(m[2]) - Number(m[1]) + 1) * 512, shared });
  }
  return out;
}

function mountedSources(): Set<string> {
  return new Set(readMounts().map((m) => m.source));
}

export class ReflinkDevices implements DevicePool {
  private readonly pool: ReflinkPool;
  private swept = false;

  constructor(
    private readonly ctx: DeviceContext,
    readonly backend: ReflinkBackend,
    dataSize: number,
  ) {
    this.pool = new ReflinkPool(ctx.home, backend, dataSize, ctx.mntRoot);
  }

  private image(id: string): string {
    return join(this.pool.dir, `${id}.img`);
  }

  use<T>(fn: () => Promise<T>): Promise<T> {
    return this.pool.use(() => fn());
  }

  async create(id: string, parent: string | null, parentRec: DeviceRecord | null, want: number | null): Promise<void> {
    await this.sweepImages();
    const s = this.pool.space();
    checkMinFree(s.available, s.total, this.ctx.minFreePercent);
    const src = parent === null ? await this.ensureBase() : this.image(parent);
    const srcSize = parentRec?.size ?? this.ctx.baseSize;
    checkGrowOnly(want, srcSize, parent);
    const dst = this.image(id);
    await rm(dst, { force: true });
    await this.snapshot(src, dst, parent);
    try {
      const size = want ?? srcSize;
      await this.grow(dst, srcSize, size);
      const set = (await readDeviceSet(this.ctx.home)) as DeviceSet;
      writeDeviceSet(this.ctx.home, { ...set, next_device_id: set.next_device_id + 1 });
      this.ctx.writeRecord(id, {
        device_id: set.next_device_id,
        size,
        transaction_id: set.next_device_id,
        initialized: true,
        deleted: false,
        parent,
      });
    } catch (err) {
      await rm(dst, { force: true });
      throw err;
    }
  }

  async destroy(id: string): Promise<void> {
    await this.pool.use(() => rm(this.image(id), { force: true }));
  }

  destroyUnrecorded(id: string): Promise<void> {
    return this.destroy(id);
  }

  mount(id: string, _rec: DeviceRecord, dir: string): Promise<void> {
    return this.mountDevice(this.image(id), dir);
  }

  async unmounted(): Promise<void> {
    // The loop device autoclears with the mount.
  }

  async releaseIfIdle(): Promise<void> {
    this.pool.unmountIfIdle();
  }

  /** Loop devices of our images that are neither mounted nor autoclear (autoclear ones go by themselves). */
  async reconcile(sweepMounts: () => Promise<void>): Promise<void> {
    const mounted = mountedSources();
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
    await sweepMounts();
    this.pool.unmountIfIdle();
    // The kernel detaches an autoclear loop device after its last user has gone, but in a work
    // item of its own: wait a moment for the ones just let go, so that a caller removing the
    // store's files next finds no device still holding one.
    for (let i = 0; i < 40 && this.idleLoops(mountedSources()).length > 0; i++) await sleep(50);
  }

  /** Loop devices over our files that no mount here uses (going away, or about to be mounted). */
  private idleLoops(mounted: Set<string>): string[] {
    const ours = [this.pool.dir + sep, this.pool.dataFile];
    return listLoops()
      .filter((l) => ours.some((p) => l.backingFile === p || l.backingFile.startsWith(p)) && !mounted.has(l.device))
      .map((l) => l.device);
  }

  deviceName(id: string): string {
    const st = statSync(this.ctx.home);
    return `strata-${Math.floor(st.dev / 256)}:${st.dev % 256}-${st.ino}-${id}`;
  }

  async status(): Promise<[string, string][]> {
    const st = statSync(this.ctx.home);
    const space = this.pool.space();
    const loops = listLoops().filter((l) => l.backingFile === this.pool.dataFile);
    const rows: [string, string][] = [
      ['Pool Name', `strata-${Math.floor(st.dev / 256)}:${st.dev % 256}-${st.ino}-pool`],
      ['Pool Blocksize', humanSize(space.blockSize)],
      ['Base Device Size', humanSize(this.ctx.baseSize)],
      ['Backing Filesystem', backingFsName(this.ctx.home)],
      ['Base Device Filesystem', this.ctx.fs],
      ['Pool Backend', this.backend === 'reflink-loop' ? 'reflink (sparse device images on a loop-mounted XFS data file)' : 'reflink (sparse device images on the store filesystem)'],
      ['Devices', String(recordNames(readdirSync(this.ctx.metaDir)).length)],
      ['Data file', loops[0]?.device ?? (this.backend === 'reflink-loop' ? '(not attached)' : '')],
      ['Metadata file', this.ctx.metaDir],
      ['Data Space Used', humanSize(space.used)],
      ['Data Space Total', humanSize(space.total)],
      ['Data Space Available', humanSize(space.available)],
      ['Thin Pool Minimum Free Space', humanSize(Math.floor((space.total * this.ctx.minFreePercent) / 100))],
      ['Udev Sync Supported', 'false'],
      ['Deferred Removal Enabled', 'false'],
    ];
    if (this.backend === 'reflink-loop') rows.splice(8, 0, ['Data loop file', this.pool.dataFile]);
    return rows;
  }

  /**
   * The device image's extents that no other image shares (FIEMAP without the shared flag) are
   * the blocks copy-on-write gave this device; a file's own bytes are where its extents on the
   * device (FIEMAP inside) fall in them.
   */
  blockUsage(id: string, files: string[]): Promise<BlockUsage> {
    return this.pool.use(async () => {
      const image = this.image(id);
      // Through the device's filesystem to the loop device, then the image file to its blocks.
      if (files.length) await runTool('sync', ['-f', files[0]]);
      await runTool('sync', [image]);
      const own = (await fiemap(image)).filter((e) => !e.shared).map((e) => [e.logical, e.logical + e.length]);
      const out = new Map<string, number>();
      for (const f of files) {
        let n = 0;
        for (const e of await fiemap(f)) {
          for (const [a, b] of own) n += Math.max(0, Math.min(b, e.physical + e.length) - Math.max(a, e.physical));
        }
        out.set(f, n);
      }
      return { layer: own.reduce((n, [a, b]) => n + b - a, 0), files: out, source: 'FIEMAP (xfs_io): device image blocks no other image shares' };
    });
  }

  /** A device image's allocated bytes and content digest (for checks that devices stay apart). */
  deviceImage(id: string): Promise<{ allocated: number; size: number; sha256: string }> {
    return this.pool.use(async () => {
      const file = this.image(id);
      const st = await stat(file);
      const h = createHash('sha256');
      for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
      return { allocated: st.blocks * 512, size: st.size, sha256: h.digest('hex') };
    });
  }

  /** The loop pool's data file, for tests and `info`. */
  get dataFile(): string {
    return this.pool.dataFile;
  }

  // ---- images ----

  /** Once per process, with the pool there: delete images and records that a crash left half made. */
  private async sweepImages(): Promise<void> {
    if (this.swept) return;
    this.swept = true;
    const before = Date.now() - ORPHAN_AGE_MS;
    const old = async (p: string) => (await stat(p).catch(() => null))?.mtimeMs ?? Infinity;
    for (const name of await readdir(this.pool.dir)) {
      const m = /^(.*)\.img(\.tmp)?$/.exec(name);
      if (!m || (m[1] === BASE && m[2] === undefined)) continue;
      if (m[2] === undefined && existsSync(this.ctx.metaFile(m[1]))) continue;
      if ((await old(join(this.pool.dir, name))) < before) await rm(join(this.pool.dir, name), { force: true });
    }
    for (const name of await readdir(this.ctx.metaDir)) {
      if (!name.endsWith('.tmp') && !name.endsWith('-removing')) continue;
      if ((await old(join(this.ctx.metaDir, name))) < before) await rm(join(this.ctx.metaDir, name), { force: true });
    }
  }

  /** The base image, made and formatted once, grown when dm.basesize grew. */
  private async ensureBase(): Promise<string> {
    const base = this.image(BASE);
    const set = await readDeviceSet(this.ctx.home);
    if (set && existsSync(base)) {
      if (this.ctx.baseSize > set.BaseDeviceSize) {
        await this.grow(base, set.BaseDeviceSize, this.ctx.baseSize);
        writeDeviceSet(this.ctx.home, { ...set, BaseDeviceSize: this.ctx.baseSize });
      }
      return base;
    }
    const tmp = `${base}.tmp`;
    await rm(tmp, { force: true });
    await writeFile(tmp, '', { mode: 0o600 });
    await truncate(tmp, this.ctx.baseSize);
    if (this.ctx.fs === 'ext4') {
      // nodiscard: the image is all holes. Lazy inode tables are never zeroed later either,
      // because every mount says noinit_itable: zeroing would unshare blocks in every device.
      await runTool('mkfs.ext4', ['-q', '-F', '-b', '4096', '-E', 'nodiscard,lazy_itable_init=1,lazy_journal_init=1', tmp]);
    } else {
      await runTool('mkfs.xfs', ['-q', '-f', '-K', tmp]);
    }
    // Docker keeps layer contents in rootfs/ of each device.
    await this.withDeviceMounted(tmp, this.ctx.mnt(`${BASE}.tmp`), async (dir) => {
      await mkdir(join(dir, 'rootfs'), { mode: 0o755 });
    });
    await rename(tmp, base);
    fault('rename');
    writeDeviceSet(this.ctx.home, { next_device_id: set?.next_device_id ?? 1, BaseDeviceSize: this.ctx.baseSize, BaseDeviceFilesystem: this.ctx.fs });
    return base;
  }

  /** A mounted origin is frozen while it is cloned, so the snapshot holds a clean filesystem. */
  private async snapshot(src: string, dst: string, parent: string | null): Promise<void> {
    const parentMnt = parent === null ? null : this.ctx.mnt(parent);
    if (parentMnt === null || !isMountPoint(parentMnt)) return cloneFile(src, dst);
    freezeFs(parentMnt);
    try {
      await cloneFile(src, dst);
    } finally {
      thawFs(parentMnt);
    }
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
    await this.withDeviceMounted(image, tmpMnt, async (dir, device, fd) => {
      refreshLoopCapacity(fd, device);
      await runTool('xfs_growfs', [dir]);
    });
  }

  // ---- mounting ----

  /**
   * Attach image to a loop device and mount it at dir; the loop goes away with the mount. A
   * device still attached (its filesystem held by a container's dying mount namespace) is
   * mounted again rather than a second instance of the same filesystem made beside it.
   */
  private async mountDevice(image: string, dir: string, after?: (device: string, fd: number) => Promise<void>): Promise<void> {
    const loop = openAttachedLoop(realpathSync(image)) ?? attachLoop(image);
    try {
      mount(loop.device, dir, this.ctx.fs, 0, this.ctx.mountData);
      if (after) await after(loop.device, loop.fd);
    } finally {
      closeSync(loop.fd);
    }
  }

  private async withDeviceMounted<T>(image: string, dir: string, fn: (dir: string, device: string, fd: number) => Promise<T>): Promise<T> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    let result: T | undefined;
    try {
      await this.mountDevice(image, dir, async (device, fd) => {
        try {
          result = await fn(dir, device, fd);
        } catch (err) {
          await this.ctx.unmount(dir);
          throw err;
        }
      });
      await this.ctx.unmount(dir);
    } finally {
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    }
    return result as T;
  }
}
