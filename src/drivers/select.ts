// Storage drivers by name, and the choice of one for a store root the way Docker makes it:
// data already in the root decides; else the first usable driver in priority order.
import { opendir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { DriverError, type Driver, type DriverOptions } from './driver.js';
import { isRootless } from '../sys/rootless.js';

export type DriverFactory = (opts: DriverOptions) => Promise<Driver>;

export interface DriverTraits {
  /** Lower is tried first when nothing decides otherwise (Docker's order: btrfs, zfs, overlay2, fuse-overlayfs, …, vfs). */
  priority: number;
  /** Whether the driver can work for this root on this machine; a string says why not. */
  usable(root: string): Promise<true | string>;
  /**
   * Never chosen by default, only when named (`--driver`) or when the root already holds its
   * data: Docker's last releases treated aufs and devicemapper this way.
   */
  explicitOnly?: boolean;
  /** Works only for real root (loop devices, dm, zfs-fuse's daemon), never rootless. */
  needsRoot?: boolean;
}

interface Entry extends DriverTraits {
  name: string;
  factory: DriverFactory;
}

const drivers = new Map<string, Entry>();

/** Names Docker uses for driver data directories: data under one of them pins the root to it. */
const KNOWN_DATA_DIRS = ['btrfs', 'zfs', 'overlay2', 'fuse-overlayfs', 'aufs', 'overlay', 'devicemapper', 'vfs'];

/** Make a driver available under name. Called once per driver, in ./index.ts. */
export function register(name: string, factory: DriverFactory, traits: DriverTraits): void {
  if (drivers.has(name)) throw new Error(`storage driver ${name} registered twice`);
  drivers.set(name, { name, factory, ...traits });
}

/** Registered driver names, in priority order. */
export function driverNames(): string[] {
  return [...drivers.values()].sort((a, b) => a.priority - b.priority).map((d) => d.name);
}

/** Open the named driver without any choosing; unknown names are an error. */
export async function createDriver(name: string, opts: DriverOptions): Promise<Driver> {
  return lookup(name).factory(opts);
}

/** A driver accepted for a root (known, usable) and not opened yet: nothing is made under the root until open. */
export interface ChosenDriver {
  name: string;
  open(options: Record<string, string>): Promise<Driver>;
}

/**
 * The driver for a store root: the requested one (which must be known and usable), else the
 * one whose data the root already holds, else the first usable one by priority. Choosing only
 * looks, so that a refusal leaves the root as it was.
 */
export async function chooseDriver(root: string, requested: string | undefined): Promise<ChosenDriver> {
  const chosen = (entry: Entry): ChosenDriver => ({ name: entry.name, open: (options) => entry.factory({ root, options }) });
  if (requested !== undefined && requested !== '') {
    const entry = lookup(requested);
    const ok = await usable(entry, root);
    if (ok !== true) throw new DriverError(`storage driver ${requested} is not usable for ${root}: ${ok}`);
    return chosen(entry);
  }

  const prior = await driversWithData(root);
  if (prior.length > 1) {
    throw new DriverError(
      `${root} contains several valid storage drivers: ${prior.join(', ')}; clean up or choose one explicitly (--driver NAME)`,
    );
  }
  if (prior.length === 1) {
    const name = prior[0];
    const entry = drivers.get(name);
    if (!entry) throw new DriverError(`${root} holds data of storage driver ${name}, which strata does not support`);
    const ok = await usable(entry, root);
    if (ok !== true) throw new DriverError(`${root} holds data of storage driver ${name}, which is not usable here: ${ok}`);
    return chosen(entry);
  }

  const refusals: string[] = [];
  for (const name of driverNames()) {
    const entry = drivers.get(name) as Entry;
    if (entry.explicitOnly) continue;
    const ok = await usable(entry, root);
    if (ok === true) return chosen(entry);
    refusals.push(`${name}: ${ok}`);
  }
  throw new DriverError(`no usable storage driver for ${root} (${refusals.join('; ') || 'none registered'})`);
}

/** chooseDriver, then open the driver with options. */
export async function selectDriver(root: string, requested: string | undefined, options: Record<string, string>): Promise<Driver> {
  return (await chooseDriver(root, requested)).open(options);
}

/**
 * Driver names whose data directory under root exists and is not empty. The root is listed
 * first, so only the data directories it holds are read (none on a root that does not exist).
 */
export async function driversWithData(root: string): Promise<string[]> {
  const names = new Set([...KNOWN_DATA_DIRS, ...drivers.keys()]);
  const found: string[] = [];
  for (const name of (await listDir(root)).filter((n) => names.has(n))) {
    if (await hasEntries(join(root, name))) found.push(name);
  }
  return found.sort((a, b) => rank(a) - rank(b));
}

/** Whether the data directory of driver name under root holds anything. */
export async function hasDriverData(root: string, name: string): Promise<boolean> {
  return hasEntries(join(root, name));
}

/**
 * Whether dir holds anything. One entry is enough: a store's driver directory holds an entry per
 * layer, and this runs at every open.
 */
async function hasEntries(dir: string): Promise<boolean> {
  try {
    const d = await opendir(dir, { bufferSize: 1 });
    try {
      return (await d.read()) !== null;
    } finally {
      await d.close();
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
    return false;
  }
}

/** A directory's names; none when it does not exist or is not a directory. */
async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
    return [];
  }
}

function usable(entry: Entry, root: string): Promise<true | string> {
  if (entry.needsRoot && isRootless()) return Promise.resolve(`${entry.name} needs root; without root use overlay2, fuse-overlayfs or vfs`);
  return entry.usable(root);
}

function rank(name: string): number {
  return drivers.get(name)?.priority ?? Number.MAX_SAFE_INTEGER;
}

function lookup(name: string): Entry {
  const entry = drivers.get(name);
  if (!entry) {
    throw new DriverError(`unknown storage driver ${JSON.stringify(name)} (known: ${driverNames().join(', ')})`);
  }
  return entry;
}
