// The storage driver contract, modelled on Docker's graphdriver.ProtoDriver/DiffDriver.
// Layer ids are driver ids (random 64-hex), never chain IDs: the store maps between them.
import type { Readable } from 'node:stream';
import type { Change } from '../archive/changes.js';

export interface CreateOpts {
  /** Driver-specific per-layer options, e.g. { size: '50M' } for a quota. */
  storageOpt?: Record<string, string>;
}

export interface DriverOptions {
  /** The store root; the driver keeps its data under `${root}/${name}`. */
  root: string;
  /** Global options from `--storage-opt` (e.g. overlay2.size, dm.basesize). */
  options: Record<string, string>;
}

/** Something interrupted work left in a driver's home that is not a layer. */
export interface Leftover {
  /** What it is, for `check` to print (a path relative to the store root, or a mount point). */
  what: string;
  /** The layer it was part of (a half-removed layer), or null. */
  layer: string | null;
  /** The process that made it ("pid:starttime"), when the name tells; a live one's stays. */
  owner: string | null;
  /** Delete it (or unmount it). */
  remove(): Promise<void>;
}

/** What a driver holds on disk, whatever the store's records say (`check` compares the two). */
export interface Inventory {
  /** Ids of every layer, whole or half-made, that the driver has data for. */
  layers: string[];
  leftovers: Leftover[];
}

/** Block-level sharing of a layer as its driver's storage reports it (copy-up accounting, `diff -v`). */
export interface BlockUsage {
  /** Bytes of the layer's storage that no other layer shares (what copy-on-write allocated to it). */
  layer: number;
  /** For each file asked about that the storage tells about: bytes of its data that are the layer's own. */
  files: Map<string, number>;
  /** The tool and what it counts, for the output to say. */
  source: string;
}

export interface Driver {
  readonly name: string;
  /** `${root}/${name}` */
  readonly home: string;
  /**
   * True when a layer's contents do not depend on its parent's (overlay2, aufs, fuse-overlayfs:
   * each layer is its own directory), so the layers of one image can be applied in parallel.
   */
  readonly independentLayers?: boolean;

  /** Read-only (image) layer on top of parent. */
  create(id: string, parent: string | null, opts?: CreateOpts): Promise<void>;
  /** Writable (container or init) layer on top of parent. */
  createReadWrite(id: string, parent: string | null, opts?: CreateOpts): Promise<void>;
  /**
   * Delete a layer; refused while layers are built on it. `leaf`: the caller's records show that
   * none is (the store checks its database first), so a driver that finds children only by
   * reading every layer it holds (overlay2, fuse-overlayfs, aufs) skips that scan, whose cost
   * grew with the store (`rm` in a root of 20,000 layers read 20,000 files).
   */
  remove(id: string, opts?: { leaf?: boolean }): Promise<void>;
  /** Mount (reference counted, across processes) and return the root of the merged view. */
  get(id: string): Promise<string>;
  /** Drop one reference taken by get; unmount at zero. */
  put(id: string): Promise<void>;
  exists(id: string): Promise<boolean>;
  /** Rows printed under "Storage Driver" by `strata info`. */
  status(): Promise<[string, string][]>;
  /**
   * The directory that holds exactly what layer id adds or changes, each entry as itself, plus
   * its deletion markers (overlay's upper dir, aufs's branch): every write to the layer lands in
   * it, and an entry read there has the size and blocks the layer's mounted view shows, so it
   * is read without mounting. Absent where a layer's directory is a full copy of its view
   * (vfs, btrfs, zfs, devicemapper); null when this setup keeps some entries in another form
   * (overlay's metadata-only copy-up or redirected directories).
   */
  ownDir?(id: string): Promise<string | null>;
  /** Driver data for inspect's GraphDriver.Data (LowerDir/UpperDir/… for overlay2). */
  metadata(id: string): Promise<Record<string, string>>;
  /** The changeset of id against parent as a layer tar stream. */
  diff(id: string, parent: string | null): Promise<Readable>;
  /** The A/C/D list of id against parent, as `docker diff` prints it. */
  changes(id: string, parent: string | null): Promise<Change[]>;
  /** Apply an uncompressed layer tar into the (empty, just created) layer id; returns bytes of content. */
  applyDiff(id: string, parent: string | null, tar: Readable): Promise<number>;
  /** Bytes of content in id's changeset against parent. */
  diffSize(id: string, parent: string | null): Promise<number>;
  /**
   * Every layer the driver has data for and every leftover of interrupted work (half-removed
   * layers, probe temp dirs, mounts that no process holds).
   */
  inventory(): Promise<Inventory>;
  /** Release every mount this process or a crashed one left (store close / open). */
  cleanup(): Promise<void>;
  /**
   * Drop the mount references these processes ("pid:starttime") held when they crashed,
   * unmounting what nobody else holds. Drivers that mount nothing have nothing to drop.
   */
  releaseCrashed?(owners: string[]): Promise<void>;
  /**
   * Block-level sharing of layer id, held mounted by the caller; `files` are host paths in its
   * mounted view. Only drivers whose storage shares blocks between layers have it (btrfs, zfs,
   * devicemapper); null when this instance's storage cannot tell.
   */
  blockUsage?(id: string, files: string[]): Promise<BlockUsage | null>;
  /**
   * Layer id's files as its merged view shows them, read and written without mounting it (a
   * container's -init layer is made this way); null when this layer's view needs a mount.
   */
  unmountedFiles?(id: string): Promise<LayerFiles | null>;
}

/** What the init layer asks of an entry of a view. */
export interface ViewEntry {
  isDirectory(): boolean;
}

/** A layer's view, paths relative to its root ("etc/hosts"). Modes are masked by the umask, as mkdir(2) masks them. */
export interface LayerFiles {
  lstat(rel: string): Promise<ViewEntry | undefined>;
  /** rel's parent is a directory in the view. */
  mkdir(rel: string, mode: number): Promise<void>;
  /** An empty file that must not exist yet. */
  createFile(rel: string, mode: number): Promise<void>;
  chmod(rel: string, mode: number): Promise<void>;
  symlink(target: string, rel: string): Promise<void>;
}

export class DriverError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DriverError';
  }
}
