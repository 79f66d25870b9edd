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
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, join, sep } from 'node:path';
import { isCode } from '../../sys/errno.js';
import { MNT_DETACH, umount2 } from '../../sys/linux.js';
import { listLoops } from '../../sys/loop.js';
import { mountsUnder } from '../../sys/mountinfo.js';
import { checkLayerId } from '../common/layer-id.js';
import { MountRefs } from '../common/mountref.js';
import { NaiveDiffDriver } from '../common/naivediff.js';
import { parseSizeOption } from '../common/size-option.js';
import { DriverError, type CreateOpts, type Driver, type DriverOptions } from '../driver.js';
import { BASE, DEVICESET, humanSize, readDeviceSet, type DeviceContext, type DeviceFs, type DeviceRecord, type Pool } from './devices.js';
import { canReflink, ReflinkDevices } from './reflink-pool.js';
import { checkBlockSectors, choosePoolKind, DEFAULT_BLOCK_SECTORS, DEFAULT_METADATA_SIZE, ThinDevices, ThinPool } from './thin-pool.js';

export { humanSize };

const GiB = 1024 ** 3;
const DEFAULT_BASE_SIZE = 10 * GiB;
const DEFAULT_DATA_SIZE = 100 * GiB;
const DEFAULT_MIN_FREE_PERCENT = 10;

/** A size option as every driver reads it (parseSizeOption), which here must be more than 0. */
function positiveSize(text: string, what: string): number {
  const n = parseSizeOption(text, what);
  if (n <= 0) throw new DriverError(`devicemapper: ${what} must be more than 0 bytes`);
  return n;
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

export class DevmapperDriver extends NaiveDiffDriver implements Driver, DeviceContext {
  readonly name = 'devicemapper';
  readonly home: string;
  readonly metaDir: string;
  readonly mntRoot: string;
  /** Set once by open(), which chooses the backend. */
  private pool!: Pool;
  private readonly refs: MountRefs;
  /** References this process took with get() and has not put() (cleanup() drops them). */
  private readonly own = new Map<string, number>();

  private constructor(
    root: string,
    readonly baseSize: number,
    readonly fs: DeviceFs,
    readonly minFreePercent: number,
    private readonly mountOpts: string,
  ) {
    super();
    this.home = join(root, 'devicemapper');
    this.metaDir = join(this.home, 'metadata');
    this.mntRoot = join(this.home, 'mnt');
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
    // The pool backend is chosen here, once: from then on the driver only calls Pool.
    const kind = await choosePoolKind(home, thinPoolDev, set !== null);
    const makePool = async (ctx: DeviceContext): Promise<Pool> =>
      kind === 'dm-thin'
        ? new ThinDevices(ctx, new ThinPool({ home, thinPoolDev, dataSize, metadataSize, blockSectors }))
        : new ReflinkDevices(ctx, (await canReflink(home)) ? 'reflink-dir' : 'reflink-loop', dataSize);
    const d = new DevmapperDriver(opts.root, baseSize, fs, minFree, mountOpts);
    d.pool = await makePool(d);
    await d.reconcile();
    return d;
  }

  // ---- names ----

  private checkId(id: string): void {
    checkLayerId('devicemapper', id, (i) => i === BASE || i.endsWith('.tmp') || i.endsWith('-removing') || i === DEVICESET);
  }
  mnt(id: string): string {
    return join(this.mntRoot, id);
  }
  metaFile(id: string): string {
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

  async writeRecord(id: string, rec: DeviceRecord): Promise<void> {
    const tmp = `${this.metaFile(id)}.tmp`;
    await writeFile(tmp, JSON.stringify(rec), { mode: 0o600 });
    await rename(tmp, this.metaFile(id));
  }

  async exists(id: string): Promise<boolean> {
    this.checkId(id);
    return existsSync(this.metaFile(id));
  }

  // ---- crash recovery ----

  /**
   * Release what a crashed process left: mounts nobody holds, then what the pool holds for
   * nobody (loop devices, thin device tables).
   */
  private async reconcile(): Promise<void> {
    await this.refs.sweep((mp) => this.unmountDevice(mp), mountsUnder(this.mntRoot));
    await this.pool.reconcile();
  }

  // ---- mounting devices ----

  mountData(): string {
    const fsOpts = this.fs === 'ext4' ? 'discard,noinit_itable' : 'discard,nouuid';
    return this.mountOpts === '' ? fsOpts : `${fsOpts},${this.mountOpts}`;
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
      }
    }
    await this.pool.unmounted(basename(dir), lazy);
  }

  // ---- the Driver ----

  async create(id: string, parent: string | null, opts?: CreateOpts): Promise<void> {
    this.checkId(id);
    let want: number | null = null;
    for (const [key, value] of Object.entries(opts?.storageOpt ?? {})) {
      if (key.toLowerCase() !== 'size') throw new DriverError(`devicemapper: unknown storage option ${key}`);
      want = positiveSize(value, 'size');
    }
    if (await this.exists(id)) throw new DriverError(`devicemapper: layer ${id} already exists`);
    const parentRec = parent === null ? null : await this.record(parent);
    await this.pool.use(() => this.pool.createDevice(id, parent, parentRec, want));
    await mkdir(this.mnt(id), { recursive: true, mode: 0o755 });
  }

  createReadWrite(id: string, parent: string | null, opts?: CreateOpts): Promise<void> {
    return this.create(id, parent, opts);
  }

  async remove(id: string): Promise<void> {
    this.checkId(id);
    await this.refs.forget(id, (mp) => this.unmountDevice(mp));
    this.own.delete(id);
    if (!existsSync(this.metaFile(id))) {
      await rm(this.mnt(id), { recursive: true, force: true });
      await this.pool.released();
      return;
    }
    // The record goes first: from then on the device does not exist, whatever follows.
    const doomed = `${this.metaFile(id)}-removing`;
    await rename(this.metaFile(id), doomed);
    const rec = JSON.parse(await readFile(doomed, 'utf8')) as DeviceRecord;
    await this.pool.use(() => this.pool.removeDevice(id, rec));
    await rm(doomed, { force: true });
    await rm(this.mnt(id), { recursive: true, force: true });
  }

  async get(id: string): Promise<string> {
    this.checkId(id);
    const rec = await this.record(id);
    const dir = this.mnt(id);
    await mkdir(dir, { recursive: true, mode: 0o755 });
    const count = await this.pool.use(() => this.refs.acquire(id, dir, () => this.pool.mountDevice(id, rec, dir)));
    this.own.set(id, Math.min((this.own.get(id) ?? 0) + 1, count));
    return join(dir, 'rootfs');
  }

  async put(id: string): Promise<void> {
    this.checkId(id);
    const mine = this.own.get(id) ?? 0;
    if (mine > 1) this.own.set(id, mine - 1);
    else this.own.delete(id);
    await this.refs.release(id, (mp) => this.unmountDevice(mp));
    await this.pool.released();
  }

  status(): Promise<[string, string][]> {
    return this.pool.status();
  }

  async metadata(id: string): Promise<Record<string, string>> {
    const rec = await this.record(id);
    return {
      DeviceId: String(rec.device_id),
      DeviceSize: String(rec.size),
      DeviceName: this.pool.deviceName(id),
    };
  }

  /** A device image's allocated bytes and content digest (for checks that devices stay apart). */
  async deviceImage(id: string): Promise<{ allocated: number; size: number; sha256: string }> {
    await this.record(id);
    return this.pool.deviceImage(id);
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
    await this.reconcile();
  }
}

/** Exposed for tests: is this loop device one of a driver's (its backing file under home)? */
export function loopsUnder(home: string): string[] {
  return listLoops()
    .filter((l) => l.backingFile.startsWith(home + sep))
    .map((l) => l.device);
}
