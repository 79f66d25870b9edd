// What the devicemapper driver and its two pools share: the device records Docker kept in
// `devicemapper/metadata/`, and the DevicePool interface. The driver picks one pool when it
// opens a store (reflink images without dm-thin, a kernel thin pool with it) and from then on
// only calls the interface, so no method of the driver asks which backend it is on.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../sys/fileio.js';
import { isCode } from '../../sys/errno.js';
import { humanSize as goHumanSize } from '../../sys/units.js';
import { DriverError, type BlockUsage } from '../driver.js';

/** The base device's name, as Docker's `metadata/base`. */
export const BASE = 'base';
/** The pool-wide record: next device id, base device size and filesystem. */
export const DEVICESET = 'deviceset-metadata';

export type DeviceFs = 'ext4' | 'xfs';

/** One device's record, `metadata/<id>`, with Docker's field names. */
export interface DeviceRecord {
  device_id: number;
  size: number;
  transaction_id: number;
  initialized: boolean;
  deleted: boolean;
  parent: string | null;
}

export interface DeviceSet {
  next_device_id: number;
  BaseDeviceSize: number;
  BaseDeviceFilesystem: DeviceFs;
}

/** Docker's units.HumanSize, as its devicemapper status printed sizes: 4 significant digits. */
export function humanSize(n: number): string {
  return goHumanSize(n, 4);
}

export async function readDeviceSet(home: string): Promise<DeviceSet | null> {
  try {
    return JSON.parse(await readFile(join(home, 'metadata', DEVICESET), 'utf8')) as DeviceSet;
  } catch (err) {
    if (isCode(err, 'ENOENT')) return null;
    throw err;
  }
}

export function writeDeviceSet(home: string, set: DeviceSet): void {
  writeFileAtomic(join(home, 'metadata', DEVICESET), JSON.stringify(set), 0o600);
}

/** Docker refuses new devices once free space falls below dm.min_free_space. */
export function checkMinFree(available: number, total: number, percent: number, what = ''): void {
  const min = Math.floor((total * percent) / 100);
  if (available < min) {
    throw new DriverError(
      `devicemapper: thin pool has ${humanSize(available)}${what ? ` of ${what}` : ''} free, less than the minimum ${humanSize(min)} (dm.min_free_space=${percent}%): free some space or lower dm.min_free_space`,
    );
  }
}

/** A device may grow past its origin, never shrink below it. */
export function checkGrowOnly(want: number | null, originSize: number, parent: string | null): void {
  if (want !== null && want < originSize) {
    throw new DriverError(
      `devicemapper: size ${humanSize(want)} is smaller than the ${parent === null ? 'base' : 'parent'} device (${humanSize(originSize)}): a device can only grow`,
    );
  }
}

/** The names and settings the driver hands its pool. */
export interface DeviceContext {
  /** `<root>/devicemapper` */
  readonly home: string;
  readonly metaDir: string;
  readonly mntRoot: string;
  readonly baseSize: number;
  readonly fs: DeviceFs;
  readonly minFreePercent: number;
  /** Mount data for a device's filesystem (with dm.mountopt). */
  readonly mountData: string;
  mnt(id: string): string;
  metaFile(id: string): string;
  writeRecord(id: string, rec: DeviceRecord): void;
  /** Unmount a device's mount point, lazily when it is busy (the pool's unmounted() follows). */
  unmount(dir: string): Promise<void>;
}

/** Where devices live and how they are made, mounted and freed. */
export interface DevicePool {
  /** The `Pool Backend` info row says which. */
  readonly backend: 'reflink-loop' | 'reflink-dir' | 'dm-thin';
  /** Run fn while the pool is there (it may go away after its last user in any process leaves). */
  use<T>(fn: () => Promise<T>): Promise<T>;
  /**
   * Make id's device: a snapshot of parent's device (or the base device, made on first use),
   * `want` bytes or its origin's size, then id's record. Called within use().
   */
  create(id: string, parent: string | null, parentRec: DeviceRecord | null, want: number | null): Promise<void>;
  /** Free the device of id, whose record (rec) is already renamed away. */
  destroy(id: string, rec: DeviceRecord): Promise<void>;
  /** Free what a creation of id cut short before it wrote the record. */
  destroyUnrecorded(id: string): Promise<void>;
  /** Mount id's device at dir (for its first reference). Called within use(). */
  mount(id: string, rec: DeviceRecord, dir: string): Promise<void>;
  /** After id's mount point was unmounted (lazy: it was busy and is detached). */
  unmounted(id: string, lazy: boolean): Promise<void>;
  /** Let go of pool resources nobody uses now (an idle loop mount, an idle kernel pool). */
  releaseIfIdle(): Promise<void>;
  /**
   * Crash recovery: what dead processes left that is not a mount under mnt/, then sweepMounts
   * (unmount what no live process holds), then what that made idle.
   */
  reconcile(sweepMounts: () => Promise<void>): Promise<void>;
  /** Docker's info rows for this pool. */
  status(): Promise<[string, string][]>;
  /** The device name `inspect` shows. */
  deviceName(id: string): string;
  /** Bytes of id's device no other device shares, in all and under each of files (null: the pool cannot tell). */
  blockUsage(id: string, files: string[]): Promise<BlockUsage | null>;
}

/** Device records in metaDir (not the device set, temporary or doomed ones). */
export function recordNames(names: string[]): string[] {
  return names.filter((n) => !n.includes('.') && !n.endsWith('-removing') && n !== DEVICESET);
}
