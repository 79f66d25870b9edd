// The devicemapper driver's kernel pool backend: a dm-thin pool driven through `dmsetup`, as
// Docker's devmapper deviceset drove it through libdevmapper.
//
// The pool is either one the administrator made (`dm.thinpooldev`, Docker's direct-lvm), or
// loop-lvm: sparse `devicemapper/devicemapper/data` and `metadata` files on autoclear loop
// devices, which the pool's table then holds open, so removing the pool also frees the loops.
// Thin devices are created by messages to the pool, snapshots of their parent's device; a
// device is active (has a table, /dev/mapper/<prefix>-<id>) only while it is mounted. A thin
// device's size lives only in its table, so the size we record is what activation uses.
//
// Processes share the pool as they share the reflink pool: each holds a shared flock on
// `.pool.busy` while it works; whoever gets it exclusively may remove an idle loop-lvm pool.
//
// This kernel path was written against the kernel's and Docker's documented behaviour; the
// machine it was written on has no device-mapper, so it has not run here.
import { closeSync, existsSync, openSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm, truncate, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { devMajor, devMinor, LOCK_EX, LOCK_UN, mount, statfs, tryFlock, umount2 } from '../../sys/linux.js';
import { attachLoop, listLoops } from '../../sys/loop.js';
import { runTool, ToolError } from '../../sys/run.js';
import { backingFsName } from '../../sys/fsprobe.js';
import { DriverError } from '../driver.js';
import { BASE, DEVICESET, humanSize, readDeviceSet, writeDeviceSet, type DeviceContext, type DeviceRecord, type DeviceSet, type Pool } from './devices.js';
import { PoolLease } from './lease.js';

const SECTOR = 512;
/** Docker's default data block: 64 KiB. */
export const DEFAULT_BLOCK_SECTORS = 128;
/** Docker's loop-lvm metadata file size. */
export const DEFAULT_METADATA_SIZE = 2 * 1024 ** 3;
/** The low water mark Docker put in every pool table, in data blocks. */
export const LOW_WATER_BLOCKS = 32768;
/** dm-thin metadata blocks are 4 KiB (THIN_METADATA_BLOCK_SIZE). */
export const METADATA_BLOCK_BYTES = 4096;
/** Thin device ids are 24 bits. */
export const MAX_DEVICE_ID = 0xffffff;

function sectors(bytes: number, what: string): number {
  if (!Number.isSafeInteger(bytes) || bytes <= 0 || bytes % SECTOR !== 0) {
    throw new DriverError(`devicemapper: ${what} must be a positive multiple of 512 bytes, not ${bytes}`);
  }
  return bytes / SECTOR;
}

function checkDeviceId(id: number): void {
  if (!Number.isInteger(id) || id < 0 || id > MAX_DEVICE_ID) {
    throw new DriverError(`devicemapper: thin device id ${id} is outside 0..${MAX_DEVICE_ID}`);
  }
}

/** The kernel takes data blocks of 64 KiB to 1 GiB in steps of 64 KiB. */
export function checkBlockSectors(n: number): void {
  if (!Number.isInteger(n) || n < 128 || n > 2097152 || n % 128 !== 0) {
    throw new DriverError(`devicemapper: dm.blocksize must be a multiple of 64K between 64K and 1G, not ${n * SECTOR} bytes`);
  }
}

/** The thin-pool table Docker loaded: its low water mark, and blocks not zeroed before first write. */
export function poolTable(dataBytes: number, metadataDev: string, dataDev: string, blockSectors = DEFAULT_BLOCK_SECTORS): string {
  checkBlockSectors(blockSectors);
  return `0 ${sectors(dataBytes, 'the pool data device')} thin-pool ${metadataDev} ${dataDev} ${blockSectors} ${LOW_WATER_BLOCKS} 1 skip_block_zeroing`;
}

export function thinTable(sizeBytes: number, poolDev: string, deviceId: number): string {
  checkDeviceId(deviceId);
  return `0 ${sectors(sizeBytes, 'a thin device size')} thin ${poolDev} ${deviceId}`;
}

export function createThinMessage(deviceId: number): string {
  checkDeviceId(deviceId);
  return `create_thin ${deviceId}`;
}

export function createSnapMessage(deviceId: number, originId: number): string {
  checkDeviceId(deviceId);
  checkDeviceId(originId);
  if (deviceId === originId) throw new DriverError(`devicemapper: thin device ${deviceId} cannot be a snapshot of itself`);
  return `create_snap ${deviceId} ${originId}`;
}

export function deleteMessage(deviceId: number): string {
  checkDeviceId(deviceId);
  return `delete ${deviceId}`;
}

export function setTransactionIdMessage(current: number, next: number): string {
  return `set_transaction_id ${current} ${next}`;
}

export interface ThinPoolStatus {
  /** Table length in sectors. */
  length: number;
  transactionId: number;
  usedMetadataBlocks: number;
  totalMetadataBlocks: number;
  usedDataBlocks: number;
  totalDataBlocks: number;
  heldMetadataRoot: number | null;
  mode: 'rw' | 'ro' | 'out_of_data_space';
  /** Fields the kernel added over time: null when this kernel's line has no such field. */
  discardPassdown: boolean | null;
  errorIfNoSpace: boolean | null;
  needsCheck: boolean | null;
  metadataLowWatermark: number | null;
}

function uint(field: string, what: string, line: string): number {
  if (!/^\d+$/.test(field)) throw new DriverError(`devicemapper: bad ${what} ${JSON.stringify(field)} in thin-pool status: ${line}`);
  return Number(field);
}

function ratio(field: string, what: string, line: string): [number, number] {
  const m = /^(\d+)\/(\d+)$/.exec(field);
  if (!m) throw new DriverError(`devicemapper: bad ${what} ${JSON.stringify(field)} in thin-pool status: ${line}`);
  return [Number(m[1]), Number(m[2])];
}

/** Drop the "name: " that `dmsetup status` puts before each line when listing several devices. */
function statusFields(text: string, target: string): string[] {
  const line = text.trim().split('\n')[0] ?? '';
  const f = line.replace(/^\S+:\s+/, '').trim().split(/\s+/);
  if (f[2] !== target) throw new DriverError(`devicemapper: not a ${target} status line: ${JSON.stringify(line)}`);
  if (f[3] === 'Fail') throw new DriverError(`devicemapper: the ${target} device has failed (status: ${line.trim()})`);
  return f;
}

/**
 * Parse `dmsetup status <pool>`: `<start> <len> thin-pool <transaction id>
 * <used>/<total metadata blocks> <used>/<total data blocks> <held root|-> ro|rw|out_of_data_space
 * [no_]discard_passdown error|queue_if_no_space needs_check|- <metadata low watermark>`; the
 * fields after the mode came with later kernels.
 */
export function parsePoolStatus(text: string): ThinPoolStatus {
  const f = statusFields(text, 'thin-pool');
  const line = f.join(' ');
  if (f.length < 8) throw new DriverError(`devicemapper: thin-pool status too short: ${line}`);
  const [usedMetadataBlocks, totalMetadataBlocks] = ratio(f[4], 'metadata usage', line);
  const [usedDataBlocks, totalDataBlocks] = ratio(f[5], 'data usage', line);
  const mode = f[7];
  if (mode !== 'rw' && mode !== 'ro' && mode !== 'out_of_data_space') {
    throw new DriverError(`devicemapper: unknown thin-pool mode ${JSON.stringify(mode)} in status: ${line}`);
  }
  const flags = new Set(f.slice(8));
  const has = (yes: string, no: string): boolean | null => (flags.has(yes) ? true : flags.has(no) ? false : null);
  const last = f.length >= 12 ? f[11] : undefined;
  return {
    length: uint(f[1], 'length', line),
    transactionId: uint(f[3], 'transaction id', line),
    usedMetadataBlocks,
    totalMetadataBlocks,
    usedDataBlocks,
    totalDataBlocks,
    heldMetadataRoot: f[6] === '-' ? null : uint(f[6], 'held metadata root', line),
    mode,
    discardPassdown: has('discard_passdown', 'no_discard_passdown'),
    errorIfNoSpace: has('error_if_no_space', 'queue_if_no_space'),
    needsCheck: f.length >= 11 ? f[10] === 'needs_check' : null,
    metadataLowWatermark: last !== undefined && /^\d+$/.test(last) ? Number(last) : null,
  };
}

/** Parse `dmsetup status <thin device>`: `<start> <len> thin <mapped sectors> <highest mapped sector|->`. */
export function parseThinStatus(text: string): { length: number; mappedSectors: number; highestMappedSector: number | null } {
  const f = statusFields(text, 'thin');
  const line = f.join(' ');
  if (f.length < 5) throw new DriverError(`devicemapper: thin status too short: ${line}`);
  return {
    length: uint(f[1], 'length', line),
    mappedSectors: uint(f[3], 'mapped sectors', line),
    highestMappedSector: f[4] === '-' ? null : uint(f[4], 'highest mapped sector', line),
  };
}

export interface ThinSpace {
  blockSize: number;
  dataUsed: number;
  dataTotal: number;
  metadataUsed: number;
  metadataTotal: number;
}

/** Bytes from block counts; the data block size is the table length over the data blocks, as Docker derived it. */
export function poolSpace(s: ThinPoolStatus): ThinSpace {
  if (s.totalDataBlocks === 0) throw new DriverError('devicemapper: the thin pool reports 0 data blocks');
  const blockSize = Math.floor(s.length / s.totalDataBlocks) * SECTOR;
  return {
    blockSize,
    dataUsed: s.usedDataBlocks * blockSize,
    dataTotal: s.totalDataBlocks * blockSize,
    metadataUsed: s.usedMetadataBlocks * METADATA_BLOCK_BYTES,
    metadataTotal: s.totalMetadataBlocks * METADATA_BLOCK_BYTES,
  };
}

/** Docker's device name prefix, from the store's device and inode: `<tag>-<major>:<minor>-<inode>`. */
export function devicePrefix(dir: string, tag = 'strata'): string {
  const st = statSync(dir, { bigint: true });
  return `${tag}-${devMajor(st.dev)}:${devMinor(st.dev)}-${st.ino}`;
}

/** Why kernel dm-thin cannot be used here, or true. */
export async function dmThinUsable(): Promise<true | string> {
  // dmsetup makes /dev/mapper/control itself when it is missing, even with no driver behind
  // it: run it only when the node exists, or the kernel lists the misc device (dm loaded, no devtmpfs).
  let misc = '';
  try {
    misc = readFileSync('/proc/misc', 'utf8');
  } catch {
    // no procfs: the node decides
  }
  if (!existsSync('/dev/mapper/control') && !/\sdevice-mapper$/m.test(misc)) return 'the kernel has no device-mapper (no /dev/mapper/control)';
  try {
    await runTool('dmsetup', ['version']);
  } catch (err) {
    const why = err instanceof ToolError ? err.stderr.trim().split('\n')[0] || err.message : (err as Error).message;
    return `the kernel's device-mapper does not answer dmsetup (${why})`;
  }
  return true;
}

export type PoolKind = 'dm-thin' | 'reflink';
const KIND_FILE = 'pool-backend';

/**
 * Which pool a store uses: the one it was created with (recorded in `pool-backend`; a store
 * from before the record has device images, so reflink), else kernel dm-thin when it works
 * here or dm.thinpooldev asks for it, else reflink.
 */
export async function choosePoolKind(home: string, thinPoolDev: string | null, hasDevices: boolean): Promise<PoolKind> {
  const file = join(home, KIND_FILE);
  let recorded: PoolKind | null = null;
  let written = false;
  try {
    const text = (await readFile(file, 'utf8')).trim();
    if (text !== 'dm-thin' && text !== 'reflink') throw new DriverError(`devicemapper: ${file} names an unknown pool backend ${JSON.stringify(text)}`);
    recorded = text;
    written = true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    if (hasDevices) recorded = 'reflink';
  }
  if (thinPoolDev !== null && recorded === 'reflink') {
    throw new DriverError(`devicemapper: dm.thinpooldev=${thinPoolDev} is not supported for this store: it was created with the reflink pool`);
  }
  const usable = recorded === 'reflink' ? true : await dmThinUsable();
  if (thinPoolDev !== null && usable !== true) {
    throw new DriverError(`devicemapper: dm.thinpooldev=${thinPoolDev} is not supported here: ${usable}`);
  }
  if (recorded === 'dm-thin' && usable !== true) {
    throw new DriverError(`devicemapper: this store's pool is kernel dm-thin, which cannot be used here: ${usable}`);
  }
  const kind: PoolKind = recorded ?? (usable === true ? 'dm-thin' : 'reflink');
  if (!written) {
    await writeFile(`${file}.tmp`, `${kind}\n`, { mode: 0o600 });
    await rename(`${file}.tmp`, file);
  }
  return kind;
}

/** Whether dmsetup said this (its messages are English: runTool runs it in the C locale). */
function said(err: unknown, re: RegExp): boolean {
  return err instanceof ToolError && re.test(err.stderr);
}
const NO_DEVICE = /does not exist|No such device or address/i;

export interface ThinPoolOptions {
  /** The driver's home (`<root>/devicemapper`). */
  home: string;
  /** An existing pool (dm.thinpooldev), or null for loop-lvm. */
  thinPoolDev: string | null;
  dataSize: number;
  metadataSize: number;
  blockSectors: number;
}

export class ThinPool {
  readonly prefix: string;
  readonly poolName: string;
  readonly poolDev: string;
  readonly dataFile: string;
  readonly metadataFile: string;
  private readonly lease: PoolLease;

  constructor(private readonly opts: ThinPoolOptions) {
    checkBlockSectors(opts.blockSectors);
    this.prefix = devicePrefix(opts.home);
    this.poolName = opts.thinPoolDev === null ? `${this.prefix}-pool` : basename(opts.thinPoolDev);
    this.poolDev = `/dev/mapper/${this.poolName}`;
    this.dataFile = join(opts.home, 'devicemapper', 'data');
    this.metadataFile = join(opts.home, 'devicemapper', 'metadata');
    this.lease = new PoolLease(opts.home, () => this.ensurePool());
  }

  get loopLvm(): boolean {
    return this.opts.thinPoolDev === null;
  }

  name(id: string): string {
    return `${this.prefix}-${id}`;
  }

  devPath(id: string): string {
    return `/dev/mapper/${this.name(id)}`;
  }

  /** Run fn with the pool active; an idle loop-lvm pool may be removed after the last user leaves. */
  use<T>(fn: () => Promise<T>): Promise<T> {
    return this.lease.use(fn);
  }

  /** The open count of an active device, or null when it has no table. */
  async openCount(name: string): Promise<number | null> {
    try {
      const out = await runTool('dmsetup', ['info', '-c', '--noheadings', '-o', 'open', name]);
      return Number(out.trim());
    } catch (err) {
      if (said(err, NO_DEVICE)) return null;
      throw err;
    }
  }

  private async ensurePool(): Promise<void> {
    if ((await this.openCount(this.poolName)) !== null) return;
    if (!this.loopLvm) throw new DriverError(`devicemapper: dm.thinpooldev ${this.opts.thinPoolDev} is not an active device-mapper device`);
    await this.ensureFile(this.dataFile, this.opts.dataSize);
    await this.ensureFile(this.metadataFile, this.opts.metadataSize);
    // The pool's table holds both loop devices open once it is loaded; until then our fds do.
    const data = attachLoop(this.dataFile);
    try {
      const meta = attachLoop(this.metadataFile);
      try {
        const size = statSync(this.dataFile).size;
        await runTool('dmsetup', ['create', this.poolName, '--table', poolTable(size - (size % SECTOR), meta.device, data.device, this.opts.blockSectors)]);
      } finally {
        closeSync(meta.fd);
      }
    } finally {
      closeSync(data.fd);
    }
  }

  private async ensureFile(file: string, size: number): Promise<void> {
    if (existsSync(file)) return;
    await mkdir(join(this.opts.home, 'devicemapper'), { recursive: true, mode: 0o700 });
    const fh = await open(`${file}.tmp`, 'w', 0o600);
    await fh.close();
    await truncate(`${file}.tmp`, size);
    await rename(`${file}.tmp`, file);
  }

  /** Remove a loop-lvm pool nobody uses (a pool with active thin devices stays: it is busy). */
  async removeIfIdle(): Promise<boolean> {
    if (!this.loopLvm || this.lease.active) return false;
    const fd = openSync(this.lease.busyFile, 'a', 0o600);
    try {
      if (!tryFlock(fd, LOCK_EX)) return false;
      try {
        if ((await this.openCount(this.poolName)) !== 0) return false;
        await runTool('dmsetup', ['remove', this.poolName]);
        return true;
      } catch (err) {
        if (said(err, /busy|does not exist/i)) return false;
        throw err;
      } finally {
        tryFlock(fd, LOCK_UN);
      }
    } finally {
      closeSync(fd);
    }
  }

  async status(): Promise<ThinPoolStatus> {
    return parsePoolStatus(await runTool('dmsetup', ['status', this.poolName]));
  }

  private message(msg: string): Promise<string> {
    return runTool('dmsetup', ['message', this.poolDev, '0', msg]);
  }

  /** create_thin (origin null) or create_snap from `from` on; an id already taken moves to the next. Returns the id used. */
  async createDevice(from: number, origin: { id: number; name: string } | null): Promise<number> {
    let id = from & MAX_DEVICE_ID;
    for (let tries = 0; tries < 1000; tries++, id = (id + 1) & MAX_DEVICE_ID) {
      if (origin !== null && id === origin.id) continue;
      try {
        if (origin === null) await this.message(createThinMessage(id));
        else await this.snapshot(id, origin);
        return id;
      } catch (err) {
        if (!said(err, /File exists/)) throw err;
      }
    }
    throw new DriverError(`devicemapper: no free thin device id from ${from} on in pool ${this.poolName}`);
  }

  /** An active origin is suspended while it is snapshotted, so the snapshot holds a flushed filesystem. */
  private async snapshot(id: number, origin: { id: number; name: string }): Promise<void> {
    const active = (await this.openCount(origin.name)) !== null;
    if (active) await runTool('dmsetup', ['suspend', origin.name]);
    try {
      await this.message(createSnapMessage(id, origin.id));
    } finally {
      if (active) await runTool('dmsetup', ['resume', origin.name]);
    }
  }

  async deleteDevice(deviceId: number): Promise<void> {
    try {
      await this.message(deleteMessage(deviceId));
    } catch (err) {
      // Already gone (a removal that crashed after the delete).
      if (!said(err, /No data available/)) throw err;
    }
  }

  /**
   * Count a metadata change in the pool's transaction id, as Docker did (it refuses to take over
   * a dm.thinpooldev whose id is not 0). Another process may bump it between our read and
   * write: the kernel then refuses the stale id, and we read again.
   */
  async bumpTransactionId(): Promise<number> {
    for (let attempt = 0; ; attempt++) {
      const { transactionId } = await this.status();
      try {
        await this.message(setTransactionIdMessage(transactionId, transactionId + 1));
        return transactionId + 1;
      } catch (err) {
        if (attempt >= 4) throw err;
      }
    }
  }

  /** Give device id a table of size bytes (if it has none) and return its /dev/mapper path. */
  async activate(id: string, deviceId: number, size: number): Promise<string> {
    if ((await this.openCount(this.name(id))) === null) {
      await runTool('dmsetup', ['create', this.name(id), '--table', thinTable(size, this.poolDev, deviceId)]);
    }
    if (!existsSync(this.devPath(id))) await runTool('dmsetup', ['mknodes', this.name(id)]);
    return this.devPath(id);
  }

  /** Remove a device's table; `deferred` when a lazy unmount may still hold it. */
  async deactivate(id: string, deferred = false): Promise<void> {
    try {
      await runTool('dmsetup', ['remove', deferred ? '--deferred' : '--retry', this.name(id)]);
    } catch (err) {
      if (!said(err, NO_DEVICE)) throw err;
    }
  }

  /** Load a bigger table into an active device. */
  async resize(id: string, deviceId: number, size: number): Promise<void> {
    await runTool('dmsetup', ['reload', this.name(id), '--table', thinTable(size, this.poolDev, deviceId)]);
    await runTool('dmsetup', ['resume', this.name(id)]);
  }

  /** Our thin devices with a table that nobody holds open (a crash's leftovers), by id. */
  async idleDevices(): Promise<string[]> {
    const out = await runTool('dmsetup', ['info', '-c', '--noheadings', '--separator', ' ', '-o', 'name,open']);
    const ids: string[] = [];
    for (const line of out.split('\n')) {
      const [name, open] = line.trim().split(' ');
      if (name === undefined || open !== '0' || name === this.poolName || !name.startsWith(`${this.prefix}-`)) continue;
      ids.push(name.slice(this.prefix.length + 1));
    }
    return ids;
  }

  /** Library and kernel driver versions from `dmsetup version`. */
  async versions(): Promise<{ library: string; driver: string }> {
    const out = await runTool('dmsetup', ['version']);
    const pick = (re: RegExp) => re.exec(out)?.[1]?.trim() ?? '';
    return { library: pick(/Library version:\s*(.+)/), driver: pick(/Driver version:\s*(.+)/) };
  }

  /** Space in bytes; a loop-lvm pool can only fill what the host filesystem still has. */
  async space(): Promise<ThinSpace & { dataAvailable: number; metadataAvailable: number; status: ThinPoolStatus }> {
    const status = await this.status();
    const s = poolSpace(status);
    let dataAvailable = s.dataTotal - s.dataUsed;
    let metadataAvailable = s.metadataTotal - s.metadataUsed;
    if (this.loopLvm) {
      const host = statfs(join(this.opts.home, 'devicemapper'));
      const free = Number(host.blocksAvail) * host.blockSize;
      dataAvailable = Math.min(dataAvailable, free);
      metadataAvailable = Math.min(metadataAvailable, free);
    }
    return { ...s, dataAvailable, metadataAvailable, status };
  }
}

/** Put a filesystem on a fresh thin device, as Docker did (no discard: the device is all unprovisioned). */
export async function makeFilesystem(dev: string, fs: 'ext4' | 'xfs'): Promise<void> {
  if (fs === 'xfs') {
    await runTool('mkfs.xfs', ['-q', '-f', '-K', dev]);
    return;
  }
  await runTool('mkfs.ext4', ['-q', '-F', '-E', 'nodiscard,lazy_itable_init=0,lazy_journal_init=0', dev]);
  await runTool('tune2fs', ['-c', '-1', '-i', '0', dev]);
}

/** Mount dev at dir for fn, then unmount and remove dir whatever happens. */
export async function withMounted<T>(dev: string, dir: string, fs: string, data: string, fn: (dir: string) => Promise<T>): Promise<T> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  try {
    mount(dev, dir, fs, 0, data);
    try {
      return await fn(dir);
    } finally {
      umount2(dir, 0);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Grow the filesystem on an active device whose table was just made bigger (both grow online). */
export async function growFilesystem(dev: string, dir: string, fs: 'ext4' | 'xfs', data: string): Promise<void> {
  await withMounted(dev, dir, fs, data, async (mnt) => {
    if (fs === 'ext4') await runTool('resize2fs', [dev]);
    else await runTool('xfs_growfs', [mnt]);
  });
}

/** Devices as thin devices of a kernel dm-thin pool: snapshots by pool messages, active only while mounted. */
export class ThinDevices implements Pool {
  constructor(
    private readonly ctx: DeviceContext,
    private readonly thin: ThinPool,
  ) {}

  use<T>(fn: () => Promise<T>): Promise<T> {
    return this.thin.use(fn);
  }

  /** A thin snapshot of the parent's device (or the base), grown when size= asks for more. */
  async createDevice(id: string, parent: string | null, parentRec: DeviceRecord | null, want: number | null): Promise<void> {
    const { ctx, thin } = this;
    await this.checkFreeSpace();
    const origin = parentRec ?? (await this.ensureBase());
    const originId = parent ?? BASE;
    if (want !== null && want < origin.size) {
      throw new DriverError(
        `devicemapper: size ${humanSize(want)} is smaller than the ${parent === null ? 'base' : 'parent'} device (${humanSize(origin.size)}): a device can only grow`,
      );
    }
    const set = (await readDeviceSet(ctx.home)) as DeviceSet;
    const deviceId = await thin.createDevice(set.next_device_id, { id: origin.device_id, name: thin.name(originId) });
    try {
      await writeDeviceSet(ctx.home, { ...set, next_device_id: (deviceId + 1) & 0xffffff });
      const size = want ?? origin.size;
      if (size > origin.size) await this.grow(id, deviceId, size);
      const txn = await thin.bumpTransactionId();
      await ctx.writeRecord(id, { device_id: deviceId, size, transaction_id: txn, initialized: true, deleted: false, parent });
    } catch (err) {
      await thin.deactivate(id).catch(() => undefined);
      await thin.deleteDevice(deviceId).catch(() => undefined);
      throw err;
    }
  }

  async removeDevice(id: string, rec: DeviceRecord): Promise<void> {
    await this.thin.deactivate(id);
    await this.thin.deleteDevice(rec.device_id);
  }

  async mountDevice(id: string, rec: DeviceRecord, dir: string): Promise<void> {
    const dev = await this.thin.activate(id, rec.device_id, rec.size);
    try {
      mount(dev, dir, this.ctx.fs, 0, this.ctx.mountData());
    } catch (err) {
      await this.thin.deactivate(id);
      throw err;
    }
  }

  /** A thin device's table goes with its mount (deferred while a lazy unmount still holds it). */
  unmounted(id: string, lazy: boolean): Promise<void> {
    return this.thin.deactivate(id, lazy);
  }

  async released(): Promise<void> {
    await this.thin.removeIfIdle();
  }

  /** Remove thin device tables nobody holds open, then the pool if idle. */
  async reconcile(): Promise<void> {
    const { thin } = this;
    if ((await thin.openCount(thin.poolName)) === null) return;
    for (const id of await thin.idleDevices()) await thin.deactivate(id);
    await thin.removeIfIdle();
  }

  /** The base thin device (made and formatted once, grown when dm.basesize grew), as Docker's `metadata/base`. */
  private async ensureBase(): Promise<DeviceRecord> {
    const { ctx, thin } = this;
    const file = join(ctx.metaDir, BASE);
    const set = await readDeviceSet(ctx.home);
    if (set && existsSync(file)) {
      const base = JSON.parse(await readFile(file, 'utf8')) as DeviceRecord;
      if (ctx.baseSize > base.size) {
        await this.grow(BASE, base.device_id, ctx.baseSize);
        await ctx.writeRecord(BASE, { ...base, size: ctx.baseSize });
        await writeDeviceSet(ctx.home, { ...set, BaseDeviceSize: ctx.baseSize });
        return { ...base, size: ctx.baseSize };
      }
      return base;
    }
    const status = await thin.status();
    if (!thin.loopLvm && (status.usedDataBlocks !== 0 || status.transactionId !== 0)) {
      throw new DriverError(`devicemapper: will not take over thin pool ${thin.poolName}: it already has used data blocks or a transaction id`);
    }
    const deviceId = await thin.createDevice(set?.next_device_id ?? 1, null);
    try {
      const dev = await thin.activate(BASE, deviceId, ctx.baseSize);
      try {
        await makeFilesystem(dev, ctx.fs);
        // Docker keeps layer contents in rootfs/ of each device.
        await withMounted(dev, ctx.mnt(`${BASE}.tmp`), ctx.fs, ctx.mountData(), (dir) => mkdir(join(dir, 'rootfs'), { mode: 0o755 }));
      } finally {
        await thin.deactivate(BASE);
      }
      const txn = await thin.bumpTransactionId();
      const rec: DeviceRecord = { device_id: deviceId, size: ctx.baseSize, transaction_id: txn, initialized: true, deleted: false, parent: null };
      await writeDeviceSet(ctx.home, { next_device_id: (deviceId + 1) & 0xffffff, BaseDeviceSize: ctx.baseSize, BaseDeviceFilesystem: ctx.fs });
      await ctx.writeRecord(BASE, rec);
      return rec;
    } catch (err) {
      await thin.deleteDevice(deviceId).catch(() => undefined);
      throw err;
    }
  }

  /** Give a thin device a bigger table and grow its filesystem to fill it. */
  private async grow(id: string, deviceId: number, size: number): Promise<void> {
    const { ctx, thin } = this;
    const dev = await thin.activate(id, deviceId, size);
    try {
      await thin.resize(id, deviceId, size);
      await growFilesystem(dev, join(ctx.mntRoot, `.grow-${process.pid}-${Date.now()}`), ctx.fs, ctx.mountData());
    } finally {
      await thin.deactivate(id);
    }
  }

  /** Docker refuses new devices once data or metadata free space falls below dm.min_free_space. */
  private async checkFreeSpace(): Promise<void> {
    const s = await this.thin.space();
    for (const [what, total, available] of [
      ['data', s.dataTotal, s.dataAvailable],
      ['metadata', s.metadataTotal, s.metadataAvailable],
    ] as const) {
      const min = Math.floor((total * this.ctx.minFreePercent) / 100);
      if (available < min) {
        throw new DriverError(
          `devicemapper: thin pool has ${humanSize(available)} of ${what} free, less than the minimum ${humanSize(min)} (dm.min_free_space=${this.ctx.minFreePercent}%): free some space or lower dm.min_free_space`,
        );
      }
    }
  }

  /** Docker's info rows for a kernel pool, from `dmsetup status <pool>`. */
  async status(): Promise<[string, string][]> {
    const { ctx, thin } = this;
    const active = (await thin.openCount(thin.poolName)) !== null;
    const s = active ? await thin.space() : null;
    const v = await thin.versions();
    const size = (n: number | undefined) => (n === undefined ? '(pool not active)' : humanSize(n));
    const devices = readdirSync(ctx.metaDir).filter((n) => !n.includes('.') && !n.endsWith('-removing') && n !== DEVICESET && n !== BASE).length;
    const loops = listLoops();
    const loopOf = (file: string) => loops.find((l) => l.backingFile === file)?.device ?? '(not attached)';
    const rows: [string, string][] = [
      ['Pool Name', thin.poolName],
      ['Pool Blocksize', size(s?.blockSize)],
      ['Base Device Size', humanSize(ctx.baseSize)],
      ['Backing Filesystem', backingFsName(ctx.home)],
      ['Base Device Filesystem', ctx.fs],
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
      ['Thin Pool Minimum Free Space', s ? humanSize(Math.floor((s.dataTotal * ctx.minFreePercent) / 100)) : '(pool not active)'],
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

  deviceName(id: string): string {
    return this.thin.name(id);
  }

  deviceImage(): Promise<{ allocated: number; size: number; sha256: string }> {
    return Promise.reject(new DriverError('devicemapper: device images exist only in the reflink pool, not on kernel dm-thin'));
  }
}
