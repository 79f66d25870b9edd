// What each layer of an image adds, changes and removes, and what it stores that the image
// never shows (what dive reports, without a TUI). Read from the layers' tar-split records
// alone: every header as pulled, no file content, so a large image is analysed in the time its
// headers take to parse, whatever the driver.
//
// Definitions (facts, so the numbers can be checked by hand):
// - A layer's entry is A (added) when the layers below do not have its path, C (changed) when
//   they do (a directory listed again with its contents is not a change by itself), and D
//   (removed) for a whiteout, or every lower entry an opaque directory hides; a D's bytes are
//   those of every file it removes.
// - Wasted bytes: bytes of file versions a layer stores that a later layer overwrites (also
//   with the same content: stored twice) or deletes, so the image's root never shows them.
// - Efficiency, as dive scores it: for every file path, the smallest version over the sum of
//   all versions, summed over paths (Σ smallest / Σ all); a removal is a version of 0 bytes.
//   dive counts that for a removed file; here the files inside a removed directory count too.
//   An image without file bytes scores 1.
import { existsSync } from 'node:fs';
import { readTar } from '../../archive/tar/reader.js';
import type { EntryType } from '../../archive/tar/header.js';
import { layerSkeleton } from '../../archive/tarsplit.js';
import { StrataError } from '../errors.js';
import type { ImageRecord } from '../images.js';
import type { LayerRecord } from '../layers.js';
import { layerHistory } from './tree.js';

export type FileKind = 'A' | 'C' | 'D';

export interface LayerFile {
  /** Absolute path in the image ("/etc/passwd"). */
  path: string;
  kind: FileKind;
  /** The entry's type; for a D, the type of what it removed. */
  type: EntryType;
  /** A and C: the file's bytes in this layer; D: the bytes of every file it removed. */
  bytes: number;
  /** A and C: a later layer of the image overwrites or deletes this version. */
  hidden: boolean;
}

export interface FileCount {
  files: number;
  bytes: number;
}

export interface LayerAnalysis {
  /** The driver's id of the layer. */
  id: string;
  chainId: string;
  diffID: string;
  /** The history entry that made the layer. */
  createdBy: string;
  /** Bytes of file content the layer stores. */
  size: number;
  added: FileCount;
  changed: FileCount;
  removed: FileCount;
  /** Bytes this layer stores that later layers overwrite or delete. */
  wastedBytes: number;
  /** Every entry, in the layer's order (directories only when the layer creates them). */
  files: LayerFile[];
}

export interface WastedPath {
  path: string;
  /** Versions of the path the layers store, plus the removals of it. */
  versions: number;
  /** Bytes of its versions that the image does not show. */
  wastedBytes: number;
  /** Bytes of all its versions (dive's "total space"). */
  totalBytes: number;
}

export interface ImageAnalysis {
  id: string;
  names: string[];
  /** Base layer first. */
  layers: LayerAnalysis[];
  /** Bytes of file content in all layers. */
  sizeBytes: number;
  /** Bytes the image's root shows. */
  visibleBytes: number;
  wastedBytes: number;
  /** dive's efficiency score, 0..1. */
  efficiency: number;
  /** Paths with bytes stored that the image does not show, most wasted first. */
  wasted: WastedPath[];
}

interface Node {
  type: EntryType;
  /** The version's record (absent for directories made implicitly or listed again). */
  file?: LayerFile;
  layer: number;
  bytes: number;
  /** The last layer that listed this entry. */
  seen: number;
  children?: Map<string, Node>;
}

interface PathStats {
  versions: number;
  total: number;
  min: number;
  wasted: number;
}

const WH = '.wh.';
const WH_META = '.wh..wh.';
const WH_OPAQUE = '.wh..wh..opq';

/** Analyses a chain of layers fed to it base first. */
export class ChainAnalyzer {
  private readonly root: Node = { type: 'dir', layer: -1, bytes: 0, seen: -1, children: new Map() };
  private readonly stats = new Map<string, PathStats>();
  readonly layers: LayerAnalysis[] = [];

  async add(layer: LayerRecord, createdBy: string, splitPath: string): Promise<void> {
    const i = this.layers.length;
    const la: LayerAnalysis = {
      id: layer.id,
      chainId: layer.chainId ?? '',
      diffID: layer.diffID ?? '',
      createdBy,
      size: 0,
      added: { files: 0, bytes: 0 },
      changed: { files: 0, bytes: 0 },
      removed: { files: 0, bytes: 0 },
      wastedBytes: 0,
      files: [],
    };
    this.layers.push(la);
    for await (const e of readTar(layerSkeleton(splitPath))) {
      const name = e.header.name;
      if (name === '.') continue;
      const slash = name.lastIndexOf('/');
      const dirPath = slash < 0 ? '' : name.slice(0, slash);
      const base = name.slice(slash + 1);
      const dir = this.dirAt(dirPath, i);
      if (base === WH_OPAQUE) {
        this.hideBelow(dir, dirPath, i, la);
        continue;
      }
      if (base.startsWith(WH_META)) continue;
      if (base.startsWith(WH)) {
        const target = base.slice(WH.length);
        const node = dir.children!.get(target);
        if (!node) continue;
        dir.children!.delete(target);
        this.removed(la, node, join(dirPath, target));
        continue;
      }
      this.entry(la, i, dir, dirPath, base, e.header.type, e.header.size);
    }
  }

  /** The directory node at path, made (as this layer's, unrecorded) where the tar skipped it. */
  private dirAt(path: string, layer: number): Node {
    let cur = this.root;
    if (path === '') return cur;
    let at = '';
    for (const part of path.split('/')) {
      at = join(at, part);
      let next = cur.children!.get(part);
      if (!next || next.type !== 'dir') {
        // A file where this layer has a directory: the file is gone from the image.
        if (next) this.hide(next, at, false);
        next = { type: 'dir', layer, bytes: 0, seen: layer, children: new Map() };
        cur.children!.set(part, next);
      }
      cur = next;
    }
    return cur;
  }

  private entry(la: LayerAnalysis, i: number, dir: Node, dirPath: string, base: string, type: EntryType, size: number): void {
    const path = join(dirPath, base);
    const bytes = type === 'file' ? size : 0;
    la.size += bytes;
    const old = dir.children!.get(base);
    if (old && old.type === 'dir' && type === 'dir') {
      old.seen = i;
      return;
    }
    const file: LayerFile = { path: `/${path}`, kind: old ? 'C' : 'A', type, bytes, hidden: false };
    if (old) this.hide(old, path, true);
    la.files.push(file);
    const count = old ? la.changed : la.added;
    count.files++;
    count.bytes += bytes;
    dir.children!.set(base, { type, file, layer: i, bytes, seen: i, children: type === 'dir' ? new Map() : undefined });
    if (type !== 'dir') this.version(path, bytes);
    else if (old) this.version(path, 0);
  }

  /** An opaque directory: everything below it that came from lower layers is gone. */
  private hideBelow(dir: Node, dirPath: string, i: number, la: LayerAnalysis): void {
    for (const [name, child] of [...dir.children!]) {
      if (child.seen < i) {
        dir.children!.delete(name);
        this.removed(la, child, join(dirPath, name));
      } else if (child.type === 'dir') {
        this.hideBelow(child, join(dirPath, name), i, la);
      }
    }
  }

  private removed(la: LayerAnalysis, node: Node, path: string): void {
    const bytes = this.hide(node, path, false);
    la.files.push({ path: `/${path}`, kind: 'D', type: node.type, bytes, hidden: false });
    la.removed.files++;
    la.removed.bytes += bytes;
  }

  /**
   * A stored version (and, for a directory, everything under it) that the image no longer
   * shows: its bytes are wasted where it was stored. Returns the bytes hidden.
   */
  private hide(node: Node, path: string, replaced: boolean): number {
    let bytes = 0;
    if (node.children) {
      for (const [name, child] of node.children) bytes += this.hide(child, join(path, name), false);
    } else if (!replaced) {
      this.version(path, 0);
    }
    if (node.file) node.file.hidden = true;
    if (node.bytes > 0) {
      this.layers[node.layer].wastedBytes += node.bytes;
      this.stats.get(path)!.wasted += node.bytes;
      bytes += node.bytes;
    }
    return bytes;
  }

  private version(path: string, bytes: number): void {
    const s = this.stats.get(path);
    if (!s) {
      this.stats.set(path, { versions: 1, total: bytes, min: bytes, wasted: 0 });
      return;
    }
    s.versions++;
    s.total += bytes;
    s.min = Math.min(s.min, bytes);
  }

  /** The layer whose version of `path` ("/etc/passwd") the stack shows, with its bytes; undefined when none has it. */
  locate(path: string): { layer: LayerAnalysis; bytes: number; type: EntryType } | undefined {
    let cur: Node | undefined = this.root;
    for (const part of path.split('/').filter((p) => p !== '')) cur = cur?.children?.get(part);
    if (!cur || cur.layer < 0) return undefined;
    return { layer: this.layers[cur.layer], bytes: cur.bytes, type: cur.type };
  }

  result(id: string, names: string[]): ImageAnalysis {
    let smallest = 0;
    let total = 0;
    const wasted: WastedPath[] = [];
    for (const [path, s] of this.stats) {
      smallest += s.min;
      total += s.total;
      if (s.wasted > 0) wasted.push({ path: `/${path}`, versions: s.versions, wastedBytes: s.wasted, totalBytes: s.total });
    }
    wasted.sort((a, b) => b.wastedBytes - a.wastedBytes || b.totalBytes - a.totalBytes || (a.path < b.path ? -1 : 1));
    const sizeBytes = this.layers.reduce((n, l) => n + l.size, 0);
    const wastedBytes = this.layers.reduce((n, l) => n + l.wastedBytes, 0);
    return {
      id,
      names,
      layers: this.layers,
      sizeBytes,
      visibleBytes: sizeBytes - wastedBytes,
      wastedBytes,
      efficiency: total === 0 ? 1 : smallest / total,
      wasted,
    };
  }
}

/** The analyser fed with an image's layers (base first), whose tar-split records are at `splitPath(layer)`. */
export async function analyzeChain(img: ImageRecord, layers: LayerRecord[], splitPath: (l: LayerRecord) => string): Promise<ChainAnalyzer> {
  const hist = layerHistory(img);
  const a = new ChainAnalyzer();
  for (const [i, l] of layers.entries()) {
    const split = splitPath(l);
    if (!existsSync(split)) throw new StrataError(`layer ${l.chainId ?? l.id} has no tar-split record (${split}): run 'strata check'`);
    await a.add(l, hist[i]?.created_by ?? '', split);
  }
  return a;
}

function join(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}
