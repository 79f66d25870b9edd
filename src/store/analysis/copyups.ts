// Copy-up accounting (`diff -v`): for every path a container changed, the layer its previous
// version came from and what the copy-on-write cost, measured the way the driver pays it:
// - whole-file (overlay2, fuse-overlayfs, aufs): the first write to a lower file copies all of
//   it into the container's layer, so a copy-up costs the lower version's bytes;
// - full-copy (vfs): the container's layer is a copy of the whole image made at create, so
//   every file was copied then; a changed file's copy is its lower version's bytes;
// - extents (btrfs) and blocks (devicemapper's reflink pool): the layer shares its storage
//   with the image until written; a change costs the bytes of the file's data no other layer
//   shares, as the driver's tools report them (Driver.blockUsage);
// - file-bytes (zfs, kernel dm-thin): blocks are copied on write, but the tools do not tell
//   them per file: the lower version's bytes stand as an upper bound, and the layer's own
//   allocation is given where the tool reports it (zfs `used` of the container's clone).
// The lower version is found in the image's layers through their tar-split records, and in
// the container's init layer through the driver's change list. Files are sized in the layers'
// own directories where the driver has them (Driver.ownDir), so a report mounts nothing there.
import { lstatSync, type BigIntStats } from 'node:fs';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { Change, ChangeKind } from '../../archive/changes.js';
import { fsPath } from '../../archive/tar/header.js';
import type { Driver } from '../../drivers/driver.js';
import type { ContainerRecord } from '../containers.js';
import type { ChainAnalyzer } from './analyze.js';

export type CopyUpMethod = 'whole-file' | 'full-copy' | 'extents' | 'blocks' | 'file-bytes';

/** How each driver copies; drivers with Driver.blockUsage fall back to file-bytes when it cannot tell per file. */
const METHODS: Record<string, CopyUpMethod> = {
  overlay2: 'whole-file',
  'fuse-overlayfs': 'whole-file',
  aufs: 'whole-file',
  vfs: 'full-copy',
  btrfs: 'extents',
  devicemapper: 'blocks',
};

/** What each method's numbers mean, for the output to say. */
export const METHOD_NOTES: Record<CopyUpMethod, string> = {
  'whole-file': 'file-level copy-up: a changed file was copied whole from the layer below',
  'full-copy': 'the container layer is a full copy of the image made at create; changed files count their copied bytes',
  extents: 'block-level: bytes of extents the file no longer shares with the image (btrfs filesystem du, exclusive)',
  blocks: "block-level: bytes of the file's blocks on the device that the image's device does not share (FIEMAP)",
  'file-bytes': 'block-level copy-on-write that the tools do not report per file: file bytes (an upper bound)',
};

export interface CopyUpSource {
  /** Driver id of the layer the previous version came from. */
  layer: string;
  /** Its chain ID; null for the container's init layer. */
  chainId: string | null;
  /** True when it is the container's init layer (Docker's /etc/hosts, /.dockerenv, …). */
  init: boolean;
}

export interface CopyUp {
  /** Absolute path in the container. */
  path: string;
  kind: ChangeKind;
  /** What the path is now (for D: what was removed). */
  type: 'file' | 'dir' | 'symlink' | 'other';
  /** C and D: where the previous version came from (null when no lower layer tells). */
  from: CopyUpSource | null;
  /** C and D: bytes of the previous version (regular files). */
  lowerBytes: number;
  /** A and C: bytes of the file now. */
  bytes: number;
  /** C: what the copy-up cost (see the method). */
  copiedBytes: number;
  /** A and C: bytes the container's layer allocated for it (st_blocks, or exclusive extents). */
  allocatedBytes: number;
}

export interface CopyUpReport {
  container: { id: string; name: string; imageId: string };
  driver: string;
  method: CopyUpMethod;
  note: string;
  files: CopyUp[];
  /** Sum of copiedBytes. */
  copiedBytes: number;
  /** Bytes allocated on demand for new files (A). */
  newBytes: number;
  /** The container layer's own allocation as the driver's tool reports it, when it does. */
  layerAllocated: { bytes: number; source: string } | null;
}

export interface CopyUpInput {
  driver: Driver;
  container: ContainerRecord;
  /** The image's top layer (the init layer's parent), or null. */
  imageTop: string | null;
  /** The image's layers, analysed from their tar-split records. */
  chain: ChainAnalyzer;
  /** driver.changes, or a cache of it (AnalysisCache.changes). */
  changes: (id: string, parent: string | null) => Promise<Change[]>;
}

function typeOf(st: BigIntStats | null): CopyUp['type'] {
  if (!st) return 'other';
  return st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'other';
}

function lstatOrNull(path: string): BigIntStats | null {
  try {
    return lstatSync(fsPath(path), { bigint: true, throwIfNoEntry: false }) ?? null;
  } catch {
    return null;
  }
}

/**
 * Entries read with the synchronous calls between two turns of the event loop. A report or a
 * fingerprint reads mostly a handful of entries, and each asynchronous call is a round trip
 * through libuv's thread pool that, on a busy machine, cost the ui's answers more than the
 * call; a long walk still lets a server's other answers through every so many.
 */
export const READS_PER_TURN = 256;

/**
 * A layer's own files, read for their type, size and blocks: in the driver's own directory of
 * the layer when it has one (nothing mounted, nothing written to the store: a read-only caller
 * such as `strata ui` answers from it), else through the layer's mounted view, taken on the
 * first read and dropped by close.
 */
export class LayerReader {
  private reads = 0;

  private constructor(
    private readonly driver: Driver,
    private readonly id: string,
    private readonly own: string | null,
    private mounted: string | null,
  ) {}

  /** `mounted`: the caller needs the layer held mounted and paths in that view (Driver.blockUsage). */
  static async open(driver: Driver, id: string, opts: { mounted?: boolean } = {}): Promise<LayerReader> {
    if (opts.mounted) return new LayerReader(driver, id, null, await driver.get(id));
    return new LayerReader(driver, id, (await driver.ownDir?.(id)) ?? null, null);
  }

  /** The host path of path (absolute in the layer's view). */
  async host(path: string): Promise<string> {
    if (this.own !== null) return `${this.own}${path}`;
    this.mounted ??= await this.driver.get(this.id);
    return `${this.mounted}${path}`;
  }

  async lstat(path: string): Promise<BigIntStats | null> {
    if (++this.reads % READS_PER_TURN === 0) await yieldToLoop();
    return lstatOrNull(await this.host(path));
  }

  async close(): Promise<void> {
    if (this.mounted === null) return;
    this.mounted = null;
    await this.driver.put(this.id);
  }
}

export async function copyUps(input: CopyUpInput): Promise<CopyUpReport> {
  const { driver, container: c, chain } = input;
  let method = METHODS[driver.name] ?? 'file-bytes';
  const changes = await input.changes(c.layer, c.initLayer);
  const initChanged = new Set((await input.changes(c.initLayer, input.imageTop)).filter((x) => x.kind !== 'D').map((x) => x.path));
  const layer = await LayerReader.open(driver, c.layer, { mounted: driver.blockUsage !== undefined });
  const init = await LayerReader.open(driver, c.initLayer);
  try {
    const files: CopyUp[] = [];
    for (const ch of changes) {
      const st = ch.kind === 'D' ? null : await layer.lstat(ch.path);
      let from: CopyUpSource | null = null;
      let lowerBytes = 0;
      let lowerType: CopyUp['type'] = 'other';
      if (ch.kind !== 'A') {
        if (initChanged.has(ch.path)) {
          const lst = await init.lstat(ch.path);
          from = { layer: c.initLayer, chainId: null, init: true };
          lowerBytes = lst?.isFile() ? Number(lst.size) : 0;
          lowerType = typeOf(lst);
        } else {
          const found = chain.locate(ch.path);
          if (found) {
            from = { layer: found.layer.id, chainId: found.layer.chainId, init: false };
            lowerBytes = found.bytes;
            lowerType = found.type === 'file' || found.type === 'dir' || found.type === 'symlink' ? found.type : 'other';
          }
        }
      }
      const isFile = st?.isFile() ?? false;
      files.push({
        path: ch.path,
        kind: ch.kind,
        type: ch.kind === 'D' ? lowerType : typeOf(st),
        from,
        lowerBytes,
        bytes: isFile ? Number(st!.size) : 0,
        // Directories and links are made anew, not copied: only a regular file's data is.
        copiedBytes: ch.kind === 'C' && isFile && lowerType === 'file' ? lowerBytes : 0,
        allocatedBytes: isFile ? Number(st!.blocks) * 512 : 0,
      });
    }
    let layerAllocated: CopyUpReport['layerAllocated'] = null;
    if (driver.blockUsage) {
      const measured = files.filter((f) => f.kind !== 'D' && f.type === 'file');
      const hosts = new Map<CopyUp, string>();
      for (const f of measured) hosts.set(f, await layer.host(f.path));
      const usage = await driver.blockUsage(c.layer, [...hosts.values()]);
      if (usage) layerAllocated = { bytes: usage.layer, source: usage.source };
      const told = measured.filter((f) => usage?.files.has(hosts.get(f)!));
      if (!usage || (measured.length > 0 && told.length === 0)) method = 'file-bytes';
      for (const f of told) {
        const own = usage!.files.get(hosts.get(f)!)!;
        f.allocatedBytes = own;
        if (f.copiedBytes > 0) f.copiedBytes = own;
      }
    }
    return {
      container: { id: c.id, name: c.name, imageId: c.imageId },
      driver: driver.name,
      method,
      note: METHOD_NOTES[method],
      files,
      copiedBytes: files.reduce((n, f) => n + f.copiedBytes, 0),
      newBytes: files.filter((f) => f.kind === 'A').reduce((n, f) => n + f.allocatedBytes, 0),
      layerAllocated,
    };
  } finally {
    await init.close();
    await layer.close();
  }
}
