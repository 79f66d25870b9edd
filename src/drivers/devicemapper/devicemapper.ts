// Docker's devicemapper driver: every layer is a block device holding its own filesystem, a
// thin snapshot of its parent's device; the first is a snapshot of a base device of
// dm.basesize formatted once (ext4, or xfs with dm.fs=xfs). Layer contents live under
// `rootfs/` of the device's filesystem, as in Docker, so lost+found stays out of the view.
//
// With dm-thin in the kernel the pool is ThinPool (thin-pool.ts), driven through dmsetup; the
// backend a store was created with is recorded in `pool-backend` and kept.
// Without dm-thin in the kernel (no /dev/mapper/control), the thin pool is ReflinkPool
// (reflink-pool.ts): device images snapshotted with FICLONE, attached through autoclear loop devices
// and mounted at `devicemapper/mnt/<id>` while someone holds a reference. Per-device records
// are JSON files in `devicemapper/metadata/<id>` as Docker kept them.
//
// Crash safety: a loop device lives only as long as the fd that attached it or the mount made
// of it; mount references are in MountRefs (`.mountrefs.json`), reconciled against mountinfo;
// a device exists once its metadata file does (written last, removed first), and images
// without metadata are deleted on the first pool use.
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, existsSync, readdirSync, statSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { basename, join, sep } from 'node:path';
import { writeFileAtomic } from '../../sys/fileio.js';
import { backingFsName } from '../../sys/fsprobe.js';
import { MNT_DETACH, mount, umount2 } from '../../sys/linux.js';
import { attachLoop, detachLoop, freezeFs, listLoops, refreshLoopCapacity, thawFs } from '../../sys/loop.js';
import { isMountPoint, mountsUnder, readMounts } from '../../sys/mountinfo.js';
import { runTool } from '../../sys/run.js';
import { canReflink, cloneFile, ReflinkPool, type PoolBackend } from './reflink-pool.js';
import { checkBlockSectors, choosePoolKind, DEFAULT_BLOCK_SECTORS, DEFAULT_METADATA_SIZE, growFilesystem, makeFilesystem, ThinPool, withMounted } from './thin-pool.js';
import { checkLayerId, isLayerId } from '../common/layer-id.js';
import { DriverError, type CreateOpts, type Driver, type DriverOptions, type Inventory } from '../driver.js';
import { MountRefs } from '../common/mountref.js';
import { NaiveDiffDriver } from '../common/naivediff.js';
import { isCode } from '../../sys/errno.js';
import { humanSize as goHumanSize } from '../../sys/units.js';
import { parseSizeOption } from '../common/size-option.js';
import { layerSize } from '../common/storage-opt.js';
import { fault } from '../../sys/fault.js';

const BASE = 'base';
const GiB = 1024 ** 3;
const DEFAULT_BASE_SIZE = 10 * GiB;
const DEFAULT_DATA_SIZE = 100 * GiB;
const DEFAULT_MIN_FREE_PERCENT = 10;
const DEVICESET = 'deviceset-metadata';
const ORPHAN_AGE_MS = 10 * 60 * 1000;

type DeviceFs = 'ext4' | 'xfs';

interface DeviceRecord {
  device_id: number;
  size: number;
  transaction_id: number;
  initialized: boolean;
  deleted: boolean;
  parent: string | null;
}

interface DeviceSet {
  next_device_id: number;
  BaseDeviceSize: number;
  BaseDeviceFilesystem: DeviceFs;
}

/** A size option as every driver reads it (parseSizeOption), which here must be more than 0. */
function positiveSize(text: string, what: string): number {
  const n = parseSizeOption(text, what);
  if (n <= 0) throw new DriverError(`devicemapper: ${what} must be more than 0 bytes`);
  return n;
}

/** Docker's units.HumanSize, as its devicemapper status printed sizes: 4 significant digits. */
export function humanSize(n: number): string {
  return goHumanSize(n, 4);
}

/** Why devicemapper cannot work here, or true. */
export async function devmapperUsable(root: string): Promise<true | string> {
  if (!existsSync('/dev/loop-control')) return 'no /dev/loop-control (loop devices are needed)';
  if (process.getuid?.() !== 0) return 'loop devices and mounts need root';
  for (const tool of ['mkfs.xfs', 'mkfs.ext4']) {
    if (!['/usr/sbin', '/sbin', '/usr/bin', '/bin'].some((d) => existsSync(join(d, tool)))) return `${tool} is not installed`;
  }
  void root;
  return true;
}

export class DevmapperDriver extends NaiveDiffDriver implements Driver {
  readonly name = 'devicemapper';
  readonly home: string;
  private readonly pool: ReflinkPool;
  private readonly refs: MountRefs;
  private readonly metaDir: string;
  private readonly mntRoot: string;
  /** References this process took with get() and has not put() (cleanup() drops them). */
  private readonly own = new Map<string, number>();
  private swept = false;

  private constructor(
    root: string,
    backend: PoolBackend,
    private readonly baseSize: number,
    private readonly fs: DeviceFs,
    private readonly minFreePercent: number,
    private readonly mountOpts: string,
    dataSize: number,
    /** The kernel pool, when this store is on dm-thin. */
    private readonly thin: ThinPool | null = null,
  ) {
    super();
    this.home = join(root, 'devicemapper');
    this.metaDir = join(this.home, 'metadata');
    this.mntRoot = join(this.home, 'mnt');
    this.pool = new ReflinkPool(this.home, backend, dataSize, this.mntRoot);
    this.refs = new MountRefs(this.home, '.mountrefs');
  }

  /** Open (creating if needed) the devicemapper data under `${root}/devicemapper`. */
  static async open(opts: DriverOptions): Promise<DevmapperDriver> {
    let baseSize = DEFAULT_BASE_SIZE;
    let fs: DeviceFs = 'ext4';
    let dataSize = DEFAULT_DATA_SIZE;
    let minFree = DEFAULT_MIN_FREE_PERCENT;
    let mountOpts = '';
    let thinPoolDev: string | null = null;
    let metadataSize = DEFAULT_METADATA_SIZE;
    let blockSectors = DEFAULT_BLOCK_SECTORS;
    for (const [key, value] of Object.entries(opts.options)) {
      switch (key.toLowerCase()) {
        case 'dm.basesize':
          baseSize = positiveSize(value, key);
          break;
        case 'dm.fs':
          if (value !== 'ext4' && value !== 'xfs') throw new DriverError(`devicemapper: dm.fs must be ext4 or xfs, not ${JSON.stringify(value)}`);
          fs = value;
          break;
        case 'dm.loopdatasize':
          dataSize = positiveSize(value, key);
          break;
        case 'dm.min_free_space': {
          const m = /^(\d{1,2})%$/.exec(value);
          if (!m) throw new DriverError(`devicemapper: dm.min_free_space must be a percentage below 100, like 10%`);
          minFree = Number(m[1]);
          break;
        }
        case 'dm.mountopt':
          mountOpts = value;
          break;
        case 'dm.thinpooldev':
          thinPoolDev = value.startsWith('/dev/mapper/') ? value : `/dev/mapper/${value}`;
          break;
        case 'dm.loopmetadatasize':
          metadataSize = positiveSize(value, key);
          break;
        case 'dm.blocksize':
          blockSectors = positiveSize(value, key) / 512;
          checkBlockSectors(blockSectors);
          break;
        default:
          throw new DriverError(`devicemapper: unknown storage option ${key}`);
      }
    }
    const why = await devmapperUsable(opts.root);
    if (why !== true) throw new DriverError(`devicemapper is not usable: ${why}`);
    const home = join(opts.root, 'devicemapper');
    await mkdir(home, { recursive: true, mode: 0o710 });
    for (const sub of ['metadata', 'mnt']) await mkdir(join(home, sub), { recursive: true, mode: 0o700 });

    // The base device's size and filesystem are fixed when it is made; a later open may grow
    // the size (as Docker allowed) but not shrink it or change the filesystem.
    const set = await readDeviceSet(home);
    if (set) {
      if (opts.options['dm.fs'] !== undefined && set.BaseDeviceFilesystem !== fs) {
        throw new DriverError(`devicemapper: the base device is ${set.BaseDeviceFilesystem}; dm.fs=${fs} would need a new store`);
      }
      fs = set.BaseDeviceFilesystem;
      if (opts.options['dm.basesize'] === undefined) baseSize = set.BaseDeviceSize;
      else if (baseSize < set.BaseDeviceSize) {
        throw new DriverError(
          `devicemapper: dm.basesize ${humanSize(baseSize)} is smaller than the existing base device (${humanSize(set.BaseDeviceSize)}): it can only grow`,
        );
      }
    }
    const kind = await choosePoolKind(home, thinPoolDev, set !== null);
    const thin = kind === 'dm-thin' ? new ThinPool({ home, thinPoolDev, dataSize, metadataSize, blockSectors }) : null;
    const backend: PoolBackend = thin !== null ? 'dm-thin' : (await canReflink(home)) ? 'reflink-dir' : 'reflink-loop';
    const d = new DevmapperDriver(opts.root, backend, baseSize, fs, minFree, mountOpts, dataSize, thin);
    await d.reconcile();
    return d;
  }

  // ---- names ----

  private checkId(id: string): void {
    checkLayerId('devicemapper', id, (i) => i === BASE || i.endsWith('.tmp') || i.endsWith('-removing') || i === DEVICESET);
  }
  private image(pool: string, id: string): string {
    return join(pool, `${id}.img`);
  }
  private mnt(id: string): string {
    return join(this.mntRoot, id);
  }
  private metaFile(id: string): string {
    return join(this.metaDir, id);
  }

  private async record(id: string): Promise<DeviceRecord> {
    try {
      return JSON.parse(await readFile(this.metaFile(id), 'utf8')) as DeviceRecord;
    } catch (err) {
      if (isCode(err, 'ENOENT')) throw new DriverError(`devicemapper: layer ${id} does not exist`);
      throw err;
    }
  }

  async exists(id: string): Promise<boolean> {
    this.checkId(id);
    return existsSync(this.metaFile(id));
  }

  // ---- crash recovery ----

  /**
   * Release what a crashed process left: loop devices of our images that are neither mounted nor
   * autoclear (autoclear ones vanish by themselves), and mounts nobody holds.
   */
  private async reconcile(): Promise<void> {
    if (this.thin !== null) return this.reconcileThin(this.thin);
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
    const strays = mountsUnder(this.mntRoot);
    await this.refs.sweep((mp) => this.unmountDevice(mp), strays);
    this.pool.unmountIfIdle();
  }

  /** Unmount what nobody holds, then remove thin device tables nobody holds open. */
  private async reconcileThin(thin: ThinPool): Promise<void> {
    await this.refs.sweep((mp) => this.unmountDevice(mp), mountsUnder(this.mntRoot));
    if ((await thin.openCount(thin.poolName)) === null) return;
    for (const id of await thin.idleDevices()) await thin.deactivate(id);
    await thin.removeIfIdle();
  }

  /** Once per process, with the pool mounted: delete images that no metadata file claims. */
  private async sweepImages(pool: string): Promise<void> {
    if (this.swept) return;
    this.swept = true;
    // Another process may be between cloning an image and writing its record: only what has
    // been lying there a while is a crash's leftover.
    const before = Date.now() - ORPHAN_AGE_MS;
    const old = async (p: string) => (await stat(p).catch(() => null))?.mtimeMs ?? Infinity;
    for (const name of await readdir(pool)) {
      const m = /^(.*)\.img(\.tmp)?$/.exec(name);
      if (!m || (m[1] === BASE && m[2] === undefined)) continue;
      if (m[2] === undefined && existsSync(this.metaFile(m[1]))) continue;
      if ((await old(join(pool, name))) < before) await rm(join(pool, name), { force: true });
    }
    for (const name of await readdir(this.metaDir)) {
      if (!name.endsWith('.tmp') && !name.endsWith('-removing')) continue;
      if ((await old(join(this.metaDir, name))) < before) await rm(join(this.metaDir, name), { force: true });
    }
  }

  // ---- the base device ----

  private async ensureBase(pool: string): Promise<string> {
    const base = this.image(pool, BASE);
    const set = await readDeviceSet(this.home);
    if (set && existsSync(base)) {
      if (this.baseSize > set.BaseDeviceSize) {
        await this.grow(base, set.BaseDeviceSize, this.baseSize);
        await writeDeviceSet(this.home, { ...set, BaseDeviceSize: this.baseSize });
      }
      return base;
    }
    const tmp = `${base}.tmp`;
    await rm(tmp, { force: true });
    await writeFile(tmp, '', { mode: 0o600 });
    await truncate(tmp, this.baseSize);
    if (this.fs === 'ext4') {
      // nodiscard: the image is all holes. Lazy inode tables are never zeroed later either,
      // because every mount says noinit_itable: zeroing would unshare blocks in every device.
      await runTool('mkfs.ext4', ['-q', '-F', '-b', '4096', '-E', 'nodiscard,lazy_itable_init=1,lazy_journal_init=1', tmp]);
    } else {
      await runTool('mkfs.xfs', ['-q', '-f', '-K', tmp]);
    }
    // Docker keeps layer contents in rootfs/ of each device.
    await this.withDeviceMounted(tmp, this.mnt(`${BASE}.tmp`), async (dir) => {
      await mkdir(join(dir, 'rootfs'), { mode: 0o755 });
    });
    await rename(tmp, base);
    fault('rename');
    await writeDeviceSet(this.home, {
      next_device_id: set?.next_device_id ?? 1,
      BaseDeviceSize: this.baseSize,
      BaseDeviceFilesystem: this.fs,
    });
    return base;
  }

  // ---- mounting devices ----

  private mountData(): string {
    const fsOpts = this.fs === 'ext4' ? 'discard,noinit_itable' : 'discard,nouuid';
    return this.mountOpts === '' ? fsOpts : `${fsOpts},${this.mountOpts}`;
  }

  /** Attach image to a loop device and mount it at dir; the loop goes away with the mount. */
  private mountDevice(image: string, dir: string, after?: (device: string, fd: number) => Promise<void>): Promise<void> {
    return (async () => {
      const loop = attachLoop(image);
      try {
        mount(loop.device, dir, this.fs, 0, this.mountData());
        if (after) await after(loop.device, loop.fd);
      } finally {
        closeSync(loop.fd);
      }
    })();
  }

  private async unmountDevice(dir: string): Promise<void> {
    let lazy = false;
    try {
      umount2(dir, 0);
    } catch (err) {
      if (!isCode(err, 'EINVAL', 'ENOENT', 'EBUSY')) throw err;
      if (isCode(err, 'EBUSY')) {
        umount2(dir, MNT_DETACH);
        lazy = true;
      } else if (this.thin === null) return;
    }
    // A thin device's table goes with its mount (deferred while a lazy unmount still holds it).
    if (this.thin !== null) await this.thin.deactivate(basename(dir), lazy);
  }

  private async withDeviceMounted<T>(
    image: string,
    dir: string,
    fn: (dir: string, device: string, fd: number) => Promise<T>,
  ): Promise<T> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    let result: T | undefined;
    try {
      await this.mountDevice(image, dir, async (device, fd) => {
        try {
          result = await fn(dir, device, fd);
        } catch (err) {
          await this.unmountDevice(dir);
          throw err;
        }
      });
      await this.unmountDevice(dir);
    } finally {
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    }
    return result as T;
  }

  /** Grow the device image and the filesystem on it from `from` to `to` bytes. */
  private async grow(image: string, from: number, to: number): Promise<void> {
    if (to <= from) return;
    await truncate(image, to);
    if (this.fs === 'ext4') {
      // Offline: resize2fs wants a freshly checked filesystem (a snapshot of a device that was
      // mounted has a journal to replay); e2fsck exits 1 when it fixed something.
      await runTool('e2fsck', ['-f', '-y', image], { okCodes: [0, 1] });
      await runTool('resize2fs', [image]);
      return;
    }
    // XFS grows only while mounted.
    const tmpMnt = join(this.mntRoot, `.grow-${process.pid}-${Date.now()}`);
    await this.withDeviceMounted(image, tmpMnt, async (dir, device, fd) => {
      refreshLoopCapacity(fd, device);
      await runTool('xfs_growfs', [dir]);
    });
  }

  // ---- the Driver ----

  async create(id: string, parent: string | null, opts?: CreateOpts): Promise<void> {
    this.checkId(id);
    const want = layerSize(opts);
    if (want === 0) throw new DriverError('devicemapper: size must be more than 0 bytes');
    if (await this.exists(id)) throw new DriverError(`devicemapper: layer ${id} already exists`);
    const parentRec = parent === null ? null : await this.record(parent);
    if (this.thin !== null) {
      const thin = this.thin;
      await thin.use(() => this.createThin(thin, id, parent, parentRec, want));
      await mkdir(this.mnt(id), { recursive: true, mode: 0o755 });
      return;
    }
    await this.pool.use(async (pool) => {
      await this.sweepImages(pool);
      this.checkFreeSpace();
      const src = parent === null ? await this.ensureBase(pool) : this.image(pool, parent);
      const srcSize = parentRec?.size ?? this.baseSize;
      if (want !== null && want < srcSize) {
        throw new DriverError(
          `devicemapper: size ${humanSize(want)} is smaller than the ${parent === null ? 'base' : 'parent'} device (${humanSize(srcSize)}): a device can only grow`,
        );
      }
      const dst = this.image(pool, id);
      await rm(dst, { force: true });
      await this.snapshot(src, dst, parent);
      try {
        const size = want ?? srcSize;
        await this.grow(dst, srcSize, size);
        const set = (await readDeviceSet(this.home)) as DeviceSet;
        const rec: DeviceRecord = {
          device_id: set.next_device_id,
          size,
          transaction_id: set.next_device_id,
          initialized: true,
          deleted: false,
          parent,
        };
        await writeDeviceSet(this.home, { ...set, next_device_id: set.next_device_id + 1 });
        await this.writeRecord(id, rec);
      } catch (err) {
        await rm(dst, { force: true });
        throw err;
      }
    });
    await mkdir(this.mnt(id), { recursive: true, mode: 0o755 });
  }

  private async writeRecord(id: string, rec: DeviceRecord): Promise<void> {
    writeFileAtomic(this.metaFile(id), JSON.stringify(rec), 0o600);
  }

  /** `<id>.pending` holds the thin device id a creation is about to make (deleted with the layer). */
  private pendingFile(id: string): string {
    return `${this.metaFile(id)}.pending`;
  }

  /** Whether a device record (or another layer's pending record) names thin device deviceId. */
  private async deviceIdClaimed(deviceId: number, except: string): Promise<boolean> {
    for (const name of await readdir(this.metaDir)) {
      if (name === DEVICESET || name.endsWith('.tmp') || name.endsWith('-removing') || name === `${except}.pending`) continue;
      try {
        if ((JSON.parse(await readFile(join(this.metaDir, name), 'utf8')) as { device_id?: unknown }).device_id === deviceId) return true;
      } catch (err) {
        if (!isCode(err, 'ENOENT') && !(err instanceof SyntaxError)) throw err;
      }
    }
    return false;
  }

  /** Delete what a creation cut short before its record left: the image, or the pending thin device. */
  private async removeUnrecorded(id: string): Promise<void> {
    await rm(`${this.metaFile(id)}.tmp`, { force: true });
    if (this.thin !== null) {
      const thin = this.thin;
      let pending: number | null = null;
      try {
        pending = Number(JSON.parse(await readFile(this.pendingFile(id), 'utf8')).device_id);
      } catch (err) {
        if (!isCode(err, 'ENOENT')) throw err;
      }
      if (pending !== null && Number.isInteger(pending)) {
        await thin.use(async () => {
          await thin.deactivate(id).catch(() => undefined);
          // Creations are serialised by thin.use, so no live one is half way now; the id is
          // left alone when a record claims it (createDevice moved on to another id).
          if (!(await this.deviceIdClaimed(pending, id))) await thin.deleteDevice(pending);
        });
      }
      await rm(this.pendingFile(id), { force: true });
      return;
    }
    await this.pool.use(async (pool) => {
      await rm(this.image(pool, id), { force: true });
    });
  }

  /** The base thin device (made and formatted once, grown when dm.basesize grew), as Docker's `metadata/base`. */
  private async ensureThinBase(thin: ThinPool): Promise<DeviceRecord> {
    const file = join(this.metaDir, BASE);
    const set = await readDeviceSet(this.home);
    if (set && existsSync(file)) {
      const base = JSON.parse(await readFile(file, 'utf8')) as DeviceRecord;
      if (this.baseSize > base.size) {
        await this.growThin(thin, BASE, base.device_id, this.baseSize);
        await this.writeRecord(BASE, { ...base, size: this.baseSize });
        await writeDeviceSet(this.home, { ...set, BaseDeviceSize: this.baseSize });
        return { ...base, size: this.baseSize };
      }
      return base;
    }
    const status = await thin.status();
    if (!thin.loopLvm && (status.usedDataBlocks !== 0 || status.transactionId !== 0)) {
      throw new DriverError(`devicemapper: will not take over thin pool ${thin.poolName}: it already has used data blocks or a transaction id`);
    }
    const deviceId = await thin.createDevice(set?.next_device_id ?? 1, null);
    try {
      const dev = await thin.activate(BASE, deviceId, this.baseSize);
      try {
        await makeFilesystem(dev, this.fs);
        // Docker keeps layer contents in rootfs/ of each device.
        await withMounted(dev, this.mnt(`${BASE}.tmp`), this.fs, this.mountData(), (dir) => mkdir(join(dir, 'rootfs'), { mode: 0o755 }));
      } finally {
        await thin.deactivate(BASE);
      }
      const txn = await thin.bumpTransactionId();
      const rec: DeviceRecord = { device_id: deviceId, size: this.baseSize, transaction_id: txn, initialized: true, deleted: false, parent: null };
      await writeDeviceSet(this.home, { next_device_id: (deviceId + 1) & 0xffffff, BaseDeviceSize: this.baseSize, BaseDeviceFilesystem: this.fs });
      await this.writeRecord(BASE, rec);
      return rec;
    } catch (err) {
      await thin.deleteDevice(deviceId).catch(() => undefined);
      throw err;
    }
  }

  /** Give a thin device a bigger table and grow its filesystem to fill it. */
  private async growThin(thin: ThinPool, id: string, deviceId: number, size: number): Promise<void> {
    const dev = await thin.activate(id, deviceId, size);
    try {
      await thin.resize(id, deviceId, size);
      await growFilesystem(dev, join(this.mntRoot, `.grow-${process.pid}-${Date.now()}`), this.fs, this.mountData());
    } finally {
      await thin.deactivate(id);
    }
  }

  /** Docker refuses new devices once data or metadata free space falls below dm.min_free_space. */
  private async checkThinFreeSpace(thin: ThinPool): Promise<void> {
    const s = await thin.space();
    for (const [what, total, available] of [
      ['data', s.dataTotal, s.dataAvailable],
      ['metadata', s.metadataTotal, s.metadataAvailable],
    ] as const) {
      const min = Math.floor((total * this.minFreePercent) / 100);
      if (available < min) {
        throw new DriverError(
          `devicemapper: thin pool has ${humanSize(available)} of ${what} free, less than the minimum ${humanSize(min)} (dm.min_free_space=${this.minFreePercent}%): free some space or lower dm.min_free_space`,
        );
      }
    }
  }

  /** A thin snapshot of the parent's device (or the base), grown when size= asks for more. */
  private async createThin(thin: ThinPool, id: string, parent: string | null, parentRec: DeviceRecord | null, want: number | null): Promise<void> {
    await this.checkThinFreeSpace(thin);
    const origin = parentRec ?? (await this.ensureThinBase(thin));
    const originId = parent ?? BASE;
    if (want !== null && want < origin.size) {
      throw new DriverError(
        `devicemapper: size ${humanSize(want)} is smaller than the ${parent === null ? 'base' : 'parent'} device (${humanSize(origin.size)}): a device can only grow`,
      );
    }
    const set = (await readDeviceSet(this.home)) as DeviceSet;
    // Recorded before the device exists, so a kill at any later point leaves a name for it.
    writeFileAtomic(this.pendingFile(id), JSON.stringify({ device_id: set.next_device_id }), 0o600);
    const deviceId = await thin.createDevice(set.next_device_id, { id: origin.device_id, name: thin.name(originId) });
    if (deviceId !== set.next_device_id) writeFileAtomic(this.pendingFile(id), JSON.stringify({ device_id: deviceId }), 0o600);
    try {
      await writeDeviceSet(this.home, { ...set, next_device_id: (deviceId + 1) & 0xffffff });
      const size = want ?? origin.size;
      if (size > origin.size) await this.growThin(thin, id, deviceId, size);
      const txn = await thin.bumpTransactionId();
      await this.writeRecord(id, { device_id: deviceId, size, transaction_id: txn, initialized: true, deleted: false, parent });
      await rm(this.pendingFile(id), { force: true });
    } catch (err) {
      await thin.deactivate(id).catch(() => undefined);
      await thin.deleteDevice(deviceId).catch(() => undefined);
      throw err;
    }
  }

  /** A mounted origin is frozen while it is cloned, so the snapshot holds a clean filesystem. */
  private async snapshot(src: string, dst: string, parent: string | null): Promise<void> {
    const parentMnt = parent === null ? null : this.mnt(parent);
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

  createReadWrite(id: string, parent: string | null, opts?: CreateOpts): Promise<void> {
    return this.create(id, parent, opts);
  }

  /** Docker refuses new devices once the pool's free space falls below dm.min_free_space. */
  private checkFreeSpace(): void {
    const s = this.pool.space();
    const min = Math.floor((s.total * this.minFreePercent) / 100);
    if (s.available < min) {
      throw new DriverError(
        `devicemapper: thin pool has ${humanSize(s.available)} free, less than the minimum ${humanSize(min)} (dm.min_free_space=${this.minFreePercent}%): free some space or lower dm.min_free_space`,
      );
    }
  }

  /**
   * Layers are the metadata records; a `<id>-removing` record is a removal a crash cut short
   * (put back and removed again, which frees its device too); a `.tmp` record a create's.
   */
  async inventory(): Promise<Inventory> {
    const out: Inventory = { layers: [], leftovers: [] };
    const names = await readdir(this.metaDir).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return [];
      throw err;
    });
    for (const name of names) {
      const path = join(this.metaDir, name);
      if (name.endsWith('-removing')) {
        const id = name.slice(0, -'-removing'.length);
        out.leftovers.push({
          what: path,
          layer: id,
          owner: null,
          remove: async () => {
            await rename(path, this.metaFile(id));
            await this.remove(id);
          },
        });
      } else if (name.endsWith('.tmp')) {
        out.leftovers.push({ what: path, layer: name.slice(0, -'.tmp'.length), owner: null, remove: () => rm(path, { force: true }) });
      } else if (name !== BASE && name !== DEVICESET && !name.includes('.') && isLayerId(name)) {
        out.layers.push(name);
      }
    }
    return out;
  }

  async remove(id: string): Promise<void> {
    this.checkId(id);
    await this.refs.forget(id, (mp) => this.unmountDevice(mp));
    this.own.delete(id);
    if (!existsSync(this.metaFile(id))) {
      // A creation cut short: the record is written last, so an image (loop pool) or a thin
      // device named in the pending record may be all there is.
      await this.removeUnrecorded(id);
      await rm(this.mnt(id), { recursive: true, force: true });
      this.pool.unmountIfIdle();
      return;
    }
    // The record goes first: from then on the device does not exist, whatever follows.
    const doomed = `${this.metaFile(id)}-removing`;
    await rename(this.metaFile(id), doomed);
    fault('rename');
    if (this.thin !== null) {
      const thin = this.thin;
      const rec = JSON.parse(await readFile(doomed, 'utf8')) as DeviceRecord;
      await thin.use(async () => {
        await thin.deactivate(id);
        await thin.deleteDevice(rec.device_id);
      });
    } else {
      await this.pool.use(async (pool) => {
        await rm(this.image(pool, id), { force: true });
      });
    }
    await rm(doomed, { force: true });
    await rm(this.pendingFile(id), { force: true });
    await rm(this.mnt(id), { recursive: true, force: true });
  }

  async get(id: string): Promise<string> {
    this.checkId(id);
    await this.record(id);
    const dir = this.mnt(id);
    await mkdir(dir, { recursive: true, mode: 0o755 });
    const thin = this.thin;
    const count =
      thin === null
        ? await this.pool.use((pool) => this.refs.acquire(id, dir, () => this.mountDevice(this.image(pool, id), dir)))
        : await thin.use(async () => {
            const rec = await this.record(id);
            return this.refs.acquire(id, dir, async () => {
              const dev = await thin.activate(id, rec.device_id, rec.size);
              try {
                mount(dev, dir, this.fs, 0, this.mountData());
              } catch (err) {
                await thin.deactivate(id);
                throw err;
              }
            });
          });
    this.own.set(id, Math.min((this.own.get(id) ?? 0) + 1, count));
    return join(dir, 'rootfs');
  }

  async put(id: string): Promise<void> {
    this.checkId(id);
    const mine = this.own.get(id) ?? 0;
    if (mine > 1) this.own.set(id, mine - 1);
    else this.own.delete(id);
    await this.refs.release(id, (mp) => this.unmountDevice(mp));
    this.pool.unmountIfIdle();
    await this.thin?.removeIfIdle();
  }

  async status(): Promise<[string, string][]> {
    if (this.thin !== null) return this.thinStatus(this.thin);
    const st = statSync(this.home);
    const major = Math.floor(st.dev / 256);
    const minor = st.dev % 256;
    const space = this.pool.space();
    const loops = listLoops().filter((l) => l.backingFile === this.pool.dataFile);
    const devices = readdirSync(this.metaDir).filter((n) => !n.includes('.') && !n.endsWith('-removing') && n !== DEVICESET).length;
    const rows: [string, string][] = [
      ['Pool Name', `strata-${major}:${minor}-${st.ino}-pool`],
      ['Pool Blocksize', humanSize(space.blockSize)],
      ['Base Device Size', humanSize(this.baseSize)],
      ['Backing Filesystem', backingFsName(this.home)],
      ['Base Device Filesystem', this.fs],
      ['Pool Backend', this.pool.backend === 'reflink-loop' ? 'reflink (sparse device images on a loop-mounted XFS data file)' : 'reflink (sparse device images on the store filesystem)'],
      ['Devices', String(devices)],
      ['Data file', loops[0]?.device ?? (this.pool.backend === 'reflink-loop' ? '(not attached)' : '')],
      ['Metadata file', this.metaDir],
      ['Data Space Used', humanSize(space.used)],
      ['Data Space Total', humanSize(space.total)],
      ['Data Space Available', humanSize(space.available)],
      ['Thin Pool Minimum Free Space', humanSize(Math.floor((space.total * this.minFreePercent) / 100))],
      ['Udev Sync Supported', 'false'],
      ['Deferred Removal Enabled', 'false'],
    ];
    if (this.pool.backend === 'reflink-loop') rows.splice(8, 0, ['Data loop file', this.pool.dataFile]);
    return rows;
  }

  /** Docker's info rows for a kernel pool, from `dmsetup status <pool>`. */
  private async thinStatus(thin: ThinPool): Promise<[string, string][]> {
    const active = (await thin.openCount(thin.poolName)) !== null;
    const s = active ? await thin.space() : null;
    const v = await thin.versions();
    const size = (n: number | undefined) => (n === undefined ? '(pool not active)' : humanSize(n));
    const devices = readdirSync(this.metaDir).filter((n) => !n.includes('.') && !n.endsWith('-removing') && n !== DEVICESET && n !== BASE).length;
    const loops = listLoops();
    const loopOf = (file: string) => loops.find((l) => l.backingFile === file)?.device ?? '(not attached)';
    const rows: [string, string][] = [
      ['Pool Name', thin.poolName],
      ['Pool Blocksize', size(s?.blockSize)],
      ['Base Device Size', humanSize(this.baseSize)],
      ['Backing Filesystem', backingFsName(this.home)],
      ['Base Device Filesystem', this.fs],
      ['Pool Backend', thin.loopLvm ? 'kernel dm-thin (loop-lvm: sparse data and metadata files on loop devices)' : `kernel dm-thin (dm.thinpooldev=${thin.poolDev})`],
      ['Devices', String(devices)],
    ];
    if (thin.loopLvm) {
      rows.push(['Data file', loopOf(thin.dataFile)], ['Metadata file', loopOf(thin.metadataFile)]);
    }
    rows.push(
      ['Data Space Used', size(s?.dataUsed)],
      ['Data Space Total', size(s?.dataTotal)],
      ['Data Space Available', size(s?.dataAvailable)],
      ['Metadata Space Used', size(s?.metadataUsed)],
      ['Metadata Space Total', size(s?.metadataTotal)],
      ['Metadata Space Available', size(s?.metadataAvailable)],
      ['Thin Pool Minimum Free Space', s ? humanSize(Math.floor((s.dataTotal * this.minFreePercent) / 100)) : '(pool not active)'],
      // udev sync needs a running udev; without one libdevmapper makes the /dev/mapper nodes itself.
      ['Udev Sync Supported', String(existsSync('/run/udev/control'))],
      ['Deferred Removal Enabled', 'false'],
      ['Deferred Deletion Enabled', 'false'],
      ['Deferred Deleted Device Count', '0'],
    );
    if (thin.loopLvm) rows.push(['Data loop file', thin.dataFile], ['Metadata loop file', thin.metadataFile]);
    rows.push(['Library Version', v.library], ['Driver Version', v.driver]);
    return rows;
  }

  async metadata(id: string): Promise<Record<string, string>> {
    const rec = await this.record(id);
    const st = await stat(this.home);
    return {
      DeviceId: String(rec.device_id),
      DeviceSize: String(rec.size),
      DeviceName: this.thin?.name(id) ?? `strata-${Math.floor(st.dev / 256)}:${st.dev % 256}-${st.ino}-${id}`,
    };
  }

  /** A device image's allocated bytes and content digest (for checks that devices stay apart). */
  async deviceImage(id: string): Promise<{ allocated: number; size: number; sha256: string }> {
    await this.record(id);
    if (this.thin !== null) throw new DriverError('devicemapper: device images exist only in the reflink pool, not on kernel dm-thin');
    return this.pool.use(async (pool) => {
      const file = this.image(pool, id);
      const st = await stat(file);
      const h = createHash('sha256');
      for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
      return { allocated: st.blocks * 512, size: st.size, sha256: h.digest('hex') };
    });
  }

  /**
   * Drop the references this process holds, unmount devices nobody holds (and the loop devices
   * with them), then the pool if nobody uses it.
   */
  async cleanup(): Promise<void> {
    for (const [id, n] of [...this.own]) {
      for (let i = 0; i < n; i++) {
        if ((await this.refs.release(id, (mp) => this.unmountDevice(mp))) === 0) break;
      }
      this.own.delete(id);
    }
    await this.refs.sweep((mp) => this.unmountDevice(mp), mountsUnder(this.mntRoot));
    this.pool.unmountIfIdle();
    if (this.thin !== null) await this.reconcileThin(this.thin);
  }
}

async function readDeviceSet(home: string): Promise<DeviceSet | null> {
  try {
    return JSON.parse(await readFile(join(home, 'metadata', DEVICESET), 'utf8')) as DeviceSet;
  } catch (err) {
    if (isCode(err, 'ENOENT')) return null;
    throw err;
  }
}

async function writeDeviceSet(home: string, set: DeviceSet): Promise<void> {
  writeFileAtomic(join(home, 'metadata', DEVICESET), JSON.stringify(set), 0o600);
}

/** Exposed for tests: is this loop device one of a driver's (its backing file under home)? */
export function loopsUnder(home: string): string[] {
  return listLoops()
    .filter((l) => l.backingFile.startsWith(home + sep))
    .map((l) => l.device);
}

