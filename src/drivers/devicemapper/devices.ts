// What the devicemapper driver keeps about its devices whatever pool holds them (Docker's
// `metadata/<id>` records and `deviceset-metadata`), and the Pool interface its two pool
// backends implement: the reflink pool (reflink-pool.ts) and kernel dm-thin (thin-pool.ts).
// The driver chooses one at open and from then on only calls the interface.
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isCode } from '../../sys/errno.js';
import { humanSize as goHumanSize } from '../../sys/units.js';

export const BASE = 'base';
export const DEVICESET = 'deviceset-metadata';

export type DeviceFs = 'ext4' | 'xfs';

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

export async function writeDeviceSet(home: string, set: DeviceSet): Promise<void> {
  const file = join(home, 'metadata', DEVICESET);
  await writeFile(`${file}.tmp`, JSON.stringify(set), { mode: 0o600 });
  await rename(`${file}.tmp`, file);
}

/** The driver's settings and names that a pool needs to make and mount devices. */
export interface DeviceContext {
  /** `<root>/devicemapper`. */
  home: string;
  metaDir: string;
  /** Where devices are mounted: `mnt/<id>`. */
  mntRoot: string;
  baseSize: number;
  fs: DeviceFs;
  minFreePercent: number;
  /** The mount(2) data for a device's filesystem. */
  mountData(): string;
  mnt(id: string): string;
  metaFile(id: string): string;
  /** Write a device's record (atomically: the device exists once it is there). */
  writeRecord(id: string, rec: DeviceRecord): Promise<void>;
}

/** Where the driver's devices live, and how they are made, mounted and reported. */
export interface Pool {
  /** Run fn with the pool available (shared with other processes through PoolLease). */
  use<T>(fn: () => Promise<T>): Promise<T>;
  /** Make device id: a snapshot of parent's device (or the base device), grown to `want` bytes when asked. */
  createDevice(id: string, parent: string | null, parentRec: DeviceRecord | null, want: number | null): Promise<void>;
  /** Delete a device whose record is already gone (renamed aside). */
  removeDevice(id: string, rec: DeviceRecord): Promise<void>;
  /** Mount id's device at dir. */
  mountDevice(id: string, rec: DeviceRecord, dir: string): Promise<void>;
  /** After id's device was unmounted (lazily, when `lazy`): release what the mount held. */
  unmounted(id: string, lazy: boolean): Promise<void>;
  /** After a reference was dropped: take the pool down if nobody uses it. */
  released(): Promise<void>;
  /** Release what a crashed process left (devices nobody holds), then the pool if idle. */
  reconcile(): Promise<void>;
  /** The rows `strata info` prints. */
  status(): Promise<[string, string][]>;
  /** The device-mapper name of id's device, as Docker reported it. */
  deviceName(id: string): string;
  /** A device image's allocated bytes and content digest (for checks that devices stay apart). */
  deviceImage(id: string): Promise<{ allocated: number; size: number; sha256: string }>;
}
