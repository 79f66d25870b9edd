// Docker's devicemapper driver: every layer is a block device holding its own filesystem, a
// thin snapshot of its parent's device; the first is a snapshot of a base device of
// dm.basesize formatted once (ext4, or xfs with dm.fs=xfs). Layer contents live under
// `rootfs/` of the device's filesystem, as in Docker, so lost+found stays out of the view.
//
// Where devices live is a DevicePool (devices.ts), chosen once when the store opens: with
// dm-thin in the kernel, ThinDevices on a kernel pool driven through dmsetup (thin-devices.ts,
// thin-pool.ts); without it, ReflinkDevices: sparse device images cloned with FICLONE and
// mounted through autoclear loop devices (reflink-devices.ts, reflink-pool.ts). The backend a
// store was created with is recorded in `pool-backend` and kept. This file holds what both
// share: options, device records (`devicemapper/metadata/<id>`, as Docker kept them), mount
// references and the Driver methods.
//
// Crash safety: a loop device lives only as long as the fd that attached it or the mount made
// of it; mount references are in MountRefs (`.mountrefs.json`), reconciled against mountinfo;
// a device exists once its metadata file does (written last, removed first).
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { basename, join, sep } from 'node:path';
import { writeFileAtomic } from '../../sys/fileio.js';
import { MNT_DETACH, umount2 } from '../../sys/linux.js';
import { listLoops } from '../../sys/loop.js';
import { mountsUnder } from '../../sys/mountinfo.js';
import { canReflink } from './reflink-pool.js';
import { ReflinkDevices } from './reflink-devices.js';
import { ThinDevices } from './thin-devices.js';
import { checkBlockSectors, choosePoolKind, DEFAULT_BLOCK_SECTORS, DEFAULT_METADATA_SIZE, ThinPool } from './thin-pool.js';
import { BASE, DEVICESET, humanSize, readDeviceSet, type DeviceContext, type DeviceFs, type DevicePool, type DeviceRecord } from './devices.js';
import { checkLayerId, isLayerId } from '../common/layer-id.js';
import { DriverError, type BlockUsage, type CreateOpts, type Driver, type DriverOptions, type Inventory } from '../driver.js';
import { MountRefs } from '../common/mountref.js';
import { NaiveDiffDriver } from '../common/naivediff.js';
import { isCode } from '../../sys/errno.js';
import { parseSizeOption } from '../common/size-option.js';
import { layerSize } from '../common/storage-opt.js';
import { fault } from '../../sys/fault.js';

export { humanSize } from './devices.js';

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

interface Settings {
  baseSize: number;
  fs: DeviceFs;
  minFreePercent: number;
  mountOpts: string;
}

export class DevmapperDriver extends NaiveDiffDriver implements Driver {
  readonly name = 'devicemapper';
  readonly home: string;
  private readonly devices: DevicePool;
  private readonly refs: MountRefs;
  private readonly metaDir: string;
  private readonly mntRoot: string;
  /** References this process took with get() and has not put() (cleanup() drops them). */
  private readonly own = new Map<string, number>();

  private constructor(root: string, settings: Settings, makePool: (ctx: DeviceContext) => DevicePool) {
    super();
    this.home = join(root, 'devicemapper');
    this.metaDir = join(this.home, 'metadata');
    this.mntRoot = join(this.home, 'mnt');
    this.refs = new MountRefs(this.home, '.mountrefs');
    const fsOpts = settings.fs === 'ext4' ? 'discard,noinit_itable' : 'discard,nouuid';
    this.devices = makePool({
      home: this.home,
      metaDir: this.metaDir,
      mntRoot: this.mntRoot,
      baseSize: settings.baseSize,
      fs: settings.fs,
      minFreePercent: settings.minFreePercent,
      mountData: settings.mountOpts === '' ? fsOpts : `${fsOpts},${settings.mountOpts}`,
      mnt: (id) => this.mnt(id),
      metaFile: (id) => this.metaFile(id),
      writeRecord: (id, rec) => writeFileAtomic(this.metaFile(id), JSON.stringify(rec), 0o600),
      unmount: (dir) => this.unmountDevice(dir),
    });
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
    const settings: Settings = { baseSize, fs, minFreePercent: minFree, mountOpts };
    const kind = await choosePoolKind(home, thinPoolDev, set !== null);
    let makePool: (ctx: DeviceContext) => DevicePool;
    if (kind === 'dm-thin') {
      const thin = new ThinPool({ home, thinPoolDev, dataSize, metadataSize, blockSectors });
      makePool = (ctx) => new ThinDevices(ctx, thin);
    } else {
      const backend = (await canReflink(home)) ? 'reflink-dir' : 'reflink-loop';
      makePool = (ctx) => new ReflinkDevices(ctx, backend, dataSize);
    }
    const d = new DevmapperDriver(opts.root, settings, makePool);
    await d.reconcile();
    return d;
  }

  // ---- names ----

  private checkId(id: string): void {
    checkLayerId('devicemapper', id, (i) => i === BASE || i.endsWith('.tmp') || i.endsWith('-removing') || i === DEVICESET);
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

  // ---- mounts ----

  /** Release what a crashed process left: the pool's leftovers, and mounts nobody holds. */
  private reconcile(): Promise<void> {
    return this.devices.reconcile(async () => {
      await this.refs.sweep((mp) => this.unmountDevice(mp), mountsUnder(this.mntRoot));
    });
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
    await this.devices.unmounted(basename(dir), lazy);
  }

  // ---- the Driver ----

  async create(id: string, parent: string | null, opts?: CreateOpts): Promise<void> {
    this.checkId(id);
    const want = layerSize(opts);
    if (want === 0) throw new DriverError('devicemapper: size must be more than 0 bytes');
    if (await this.exists(id)) throw new DriverError(`devicemapper: layer ${id} already exists`);
    const parentRec = parent === null ? null : await this.record(parent);
    await this.devices.use(() => this.devices.create(id, parent, parentRec, want));
    await mkdir(this.mnt(id), { recursive: true, mode: 0o755 });
  }

  createReadWrite(id: string, parent: string | null, opts?: CreateOpts): Promise<void> {
    return this.create(id, parent, opts);
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
    await this.refs.forget(id, this.mnt(id), (mp) => this.unmountDevice(mp));
    this.own.delete(id);
    if (!existsSync(this.metaFile(id))) {
      // A creation cut short: the record is written last, so an image (reflink pool) or a thin
      // device named in the pending record may be all there is.
      await rm(`${this.metaFile(id)}.tmp`, { force: true });
      await this.devices.destroyUnrecorded(id);
      await rm(this.mnt(id), { recursive: true, force: true });
      await this.devices.releaseIfIdle();
      return;
    }
    // The record goes first: from then on the device does not exist, whatever follows.
    const doomed = `${this.metaFile(id)}-removing`;
    await rename(this.metaFile(id), doomed);
    fault('rename');
    await this.devices.destroy(id, JSON.parse(await readFile(doomed, 'utf8')) as DeviceRecord);
    await rm(doomed, { force: true });
    await rm(this.mnt(id), { recursive: true, force: true });
  }

  async get(id: string): Promise<string> {
    this.checkId(id);
    await this.record(id);
    const dir = this.mnt(id);
    await mkdir(dir, { recursive: true, mode: 0o755 });
    const count = await this.devices.use(async () => {
      const rec = await this.record(id);
      return this.refs.acquire(id, dir, () => this.devices.mount(id, rec, dir));
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
    await this.devices.releaseIfIdle();
  }

  status(): Promise<[string, string][]> {
    return this.devices.status();
  }

  async metadata(id: string): Promise<Record<string, string>> {
    const rec = await this.record(id);
    return { DeviceId: String(rec.device_id), DeviceSize: String(rec.size), DeviceName: this.devices.deviceName(id) };
  }

  /** The blocks copy-on-write gave this device, where its pool can tell. */
  async blockUsage(id: string, files: string[]): Promise<BlockUsage | null> {
    await this.record(id);
    return this.devices.blockUsage(id, files);
  }

  /** A device image's allocated bytes and content digest (for checks that devices stay apart). */
  async deviceImage(id: string): Promise<{ allocated: number; size: number; sha256: string }> {
    await this.record(id);
    if (!(this.devices instanceof ReflinkDevices)) throw new DriverError('devicemapper: device images exist only in the reflink pool, not on kernel dm-thin');
    return this.devices.deviceImage(id);
  }

  async releaseCrashed(owners: string[]): Promise<void> {
    await this.refs.dropHolders(owners, (mp) => this.unmountDevice(mp));
    await this.devices.releaseIfIdle();
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
