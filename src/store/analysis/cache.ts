// What a long-lived reader of the store (`strata ui`, answering many requests over one Store)
// keeps between analyses, and why each is safe to keep:
// - an image's analysed chain, keyed by image ID and the driver id of its top layer: an image's
//   layers never change, and a layer's driver id is random and never reused, so a removed image
//   that is loaded again (new layers) cannot meet the old entry. Entries of images that are gone
//   are dropped whenever a new one is made, and the oldest go past a bound.
// - a container layer's change list (the driver compares two mounted trees: it reads the whole
//   image twice), keyed by a fingerprint of the layer's own directory and of its parent's when
//   that is the container's init layer: every entry's inode, mode, size, mtime and ctime (the
//   directory's own ctime aside, see fingerprintOf). A write anywhere in the layer changes the
//   ctime of what it wrote or of the directory it changed, and the image below never changes,
//   so the same fingerprint means the same changes. A layer with an entry touched in the last
//   100 ms is not kept (a write in the same coarse clock tick could leave the same times, as
//   git's "racy" index entries). Drivers whose layers have no directory of their own
//   (Driver.ownDir: vfs, btrfs, zfs, devicemapper hold full copies) are not fingerprinted:
//   their changes are read afresh every time.
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, type BigIntStats } from 'node:fs';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { Change } from '../../archive/changes.js';
import type { Driver } from '../../drivers/driver.js';
import type { ImageRecord } from '../images.js';
import type { LayerRecord } from '../layers.js';
import { analyzeChain, type ChainAnalyzer, type ImageAnalysis } from './analyze.js';
import { READS_PER_TURN } from './copyups.js';

/** Chains kept at most (one image's chain holds a node per path of the image). */
const MAX_CHAINS = 128;
/** Container layers' change lists kept at most. */
const MAX_CHANGES = 256;

interface ChainEntry {
  imageId: string;
  topLayer: string | null;
  chain: Promise<ChainAnalyzer>;
  /** The last result made from it, for the names it was made with (a tag can come and go). */
  result?: { names: string; analysis: ImageAnalysis };
}

interface ChangesEntry {
  fingerprint: string;
  changes: Promise<Change[]>;
}

export interface CacheLookups {
  /** Whether the store still has the image (entries of removed images are dropped). */
  hasImage(id: string): boolean;
  /** Whether the store still has the layer. */
  hasLayer(id: string): boolean;
}

export class AnalysisCache {
  private readonly chains = new Map<string, ChainEntry>();
  private readonly changeLists = new Map<string, ChangesEntry>();

  constructor(private readonly lookups: CacheLookups) {}

  /** The analysed chain of img, whose layers (base first) have their tar-split records at splitPath. */
  chain(img: ImageRecord, layers: LayerRecord[], splitPath: (l: LayerRecord) => string): Promise<ChainAnalyzer> {
    return this.chainEntry(img, layers, splitPath).chain;
  }

  /** Store.analyze's answer for img under its current names. */
  async analysis(img: ImageRecord, names: string[], layers: LayerRecord[], splitPath: (l: LayerRecord) => string): Promise<ImageAnalysis> {
    const entry = this.chainEntry(img, layers, splitPath);
    const chain = await entry.chain;
    const key = names.join('\n');
    if (entry.result?.names !== key) entry.result = { names: key, analysis: chain.result(img.id, names) };
    return entry.result.analysis;
  }

  private chainEntry(img: ImageRecord, layers: LayerRecord[], splitPath: (l: LayerRecord) => string): ChainEntry {
    const topLayer = layers.at(-1)?.id ?? null;
    const key = `${img.id} ${topLayer}`;
    let entry = this.chains.get(key);
    if (entry) {
      // Most recently used last: the oldest is the first to go.
      this.chains.delete(key);
      this.chains.set(key, entry);
      return entry;
    }
    for (const [k, e] of this.chains) {
      if (!this.lookups.hasImage(e.imageId) || (e.topLayer !== null && !this.lookups.hasLayer(e.topLayer))) this.chains.delete(k);
    }
    entry = { imageId: img.id, topLayer, chain: analyzeChain(img, layers, splitPath) };
    const made = entry;
    made.chain.catch(() => {
      if (this.chains.get(key) === made) this.chains.delete(key);
    });
    this.chains.set(key, made);
    if (this.chains.size > MAX_CHAINS) this.chains.delete(this.chains.keys().next().value!);
    return made;
  }

  /**
   * driver.changes(id, parent) for a container's init or read-write layer, kept while the
   * fingerprint of id's own directory (and of parent's, when parent is one of the container's
   * own layers) stays the same.
   */
  async changes(driver: Driver, id: string, parent: string | null, parentIsOwn: boolean): Promise<Change[]> {
    const own = await ownDir(driver, id);
    const parentOwn = parentIsOwn && parent !== null ? await ownDir(driver, parent) : null;
    if (own === null || (parentIsOwn && parentOwn === null)) return driver.changes(id, parent);
    const prints = [await fingerprintOf(own), parentOwn === null ? '' : await fingerprintOf(parentOwn)];
    if (prints.includes(null)) return driver.changes(id, parent);
    const fingerprint = prints.join(' ');
    const key = `${id} ${parent}`;
    const entry = this.changeLists.get(key);
    if (entry?.fingerprint === fingerprint) return entry.changes;
    for (const k of this.changeLists.keys()) {
      if (!this.lookups.hasLayer(k.split(' ')[0]!)) this.changeLists.delete(k);
    }
    const made: ChangesEntry = { fingerprint, changes: driver.changes(id, parent) };
    made.changes.catch(() => {
      if (this.changeLists.get(key) === made) this.changeLists.delete(key);
    });
    this.changeLists.delete(key);
    this.changeLists.set(key, made);
    if (this.changeLists.size > MAX_CHANGES) this.changeLists.delete(this.changeLists.keys().next().value!);
    return made.changes;
  }
}

/** The directory that holds exactly what a layered driver's layer adds (Driver.ownDir), or null. */
async function ownDir(driver: Driver, id: string): Promise<string | null> {
  return (await driver.ownDir?.(id)) ?? null;
}

/**
 * Timestamps nearer than this to now may still be shared by a write to come: the kernel stamps
 * files from a coarse clock (one tick, at most 10 ms, behind the fine one Date.now reads).
 */
const RACY_NS = 100_000_000n;

/**
 * A hash of every entry under dir: path, inode, mode, size, mtime and ctime (ns; dir's own
 * ctime aside); null when an entry vanished while it was read or was touched so recently that
 * a write in the same clock tick would leave it the same timestamps (git's "racy" entries):
 * such a layer is not kept. Read with the synchronous calls (see READS_PER_TURN).
 */
async function fingerprintOf(dir: string): Promise<string | null> {
  const hash = createHash('sha256');
  const recent = BigInt(Date.now()) * 1_000_000n - RACY_NS;
  let read = 0;
  const walk = async (path: Buffer): Promise<boolean> => {
    if (++read % READS_PER_TURN === 0) await yieldToLoop();
    let st: BigIntStats | undefined;
    try {
      st = lstatSync(path, { bigint: true, throwIfNoEntry: false });
    } catch {
      return false;
    }
    // The top's own metadata is never a change (changes list paths under it); only what it
    // holds is, which its mtime follows. Its ctime also moves when kernel overlay marks a
    // fresh upper dir on its first mount (the trusted.overlay.uuid xattr), as the change list's
    // own mount of an init layer does: counting it made the next answer read the list again.
    const ctime = read === 1 ? 0n : st?.ctimeNs ?? 0n;
    if (st === undefined || st.mtimeNs >= recent || ctime >= recent) return false;
    hash.update(path).update(`\0${st.ino}\0${st.mode}\0${st.size}\0${st.mtimeNs}\0${ctime}\n`);
    if (!st.isDirectory()) return true;
    let names: Buffer[];
    try {
      names = readdirSync(path, { encoding: 'buffer' });
    } catch {
      return false;
    }
    for (const name of names.sort(Buffer.compare)) {
      if (!(await walk(Buffer.concat([path, SLASH, name])))) return false;
    }
    return true;
  };
  return (await walk(Buffer.from(dir))) ? hash.digest('hex') : null;
}

const SLASH = Buffer.from('/');
