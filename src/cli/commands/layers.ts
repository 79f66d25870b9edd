// Seeing the layers (issue #14): `layers` draws every layer of the store once as a tree, with
// what made it and who stands on it; `analyze` tells what each layer of an image adds, changes
// and removes and what it wastes, with pass/fail thresholds for CI. The numbers come from the
// library (Store.layerTree, Store.analyze); this file only lays them out.
import type { Command } from 'commander';
import { StrataError } from '../../errors.js';
import { parseSizeOption } from '../../drivers/common/size-option.js';
import { familiar } from '../../store/images.js';
import type { ImageAnalysis } from '../../store/analysis/analyze.js';
import type { CopyUpReport } from '../../store/analysis/copyups.js';
import { walkLayerTree, type LayerNode, type LayerTree } from '../../store/analysis/tree.js';
import { SilentExit, type Context, type Output } from '../context.js';
import { humanSize, shortId, table, truncate } from '../format.js';
import { formatRows, type DockerTable } from '../template/index.js';

/** One name per image ("nginx:latest", or the short ID of an untagged one). */
function imageLabels(images: { id: string; names: string[] }[]): string[] {
  return images.flatMap((i) => (i.names.length ? i.names.map(familiar) : [shortId(i.id)]));
}

/** The `tree`-style prefix of every node ("│   ├── "), in drawing order. */
function treePrefixes(tree: LayerTree): Map<LayerNode, string> {
  const out = new Map<LayerNode, string>();
  const visit = (list: LayerNode[], indent: string, top: boolean) => {
    list.forEach((n, i) => {
      const last = i === list.length - 1;
      out.set(n, top ? '' : `${indent}${last ? '└── ' : '├── '}`);
      visit(n.children, top ? '' : `${indent}${last ? '    ' : '│   '}`, false);
    });
  };
  visit(tree.roots, '', true);
  return out;
}

export const LAYERS_TABLE: DockerTable = {
  headers: {
    // The tree's branches go before the ID in one column: no title of their own.
    Tree: '',
    ID: 'LAYER',
    ChainID: 'CHAIN ID',
    DiffID: 'DIFF ID',
    LayerID: 'DRIVER ID',
    Parent: 'PARENT',
    Depth: 'DEPTH',
    Size: 'SIZE',
    Bytes: 'BYTES',
    CreatedBy: 'CREATED BY',
    Images: 'IMAGES',
    Containers: 'CONTAINERS',
    ImageCount: 'USED BY IMAGES',
    ContainerCount: 'USED BY CONTAINERS',
    Shared: 'SHARED',
  },
  defaultTable: 'table {{.Tree}}{{.ID}}\\t{{.Size}}\\t{{truncate .CreatedBy 45}}\\t{{.Images}}\\t{{.Containers}}',
  typeName: '*strata.layerContext',
};

function layerRows(tree: LayerTree): Record<string, unknown>[] {
  const prefixes = treePrefixes(tree);
  const nodes = walkLayerTree(tree);
  const byId = new Map(nodes.map((n) => [n.id, n]));
  return nodes.map((n) => ({
    Tree: prefixes.get(n) ?? '',
    ID: shortId(n.chainId),
    ChainID: n.chainId,
    DiffID: n.diffID,
    LayerID: n.id,
    Parent: n.parent ? shortId(byId.get(n.parent)?.chainId ?? n.parent) : '',
    Depth: n.depth,
    Size: humanSize(n.size),
    Bytes: n.size,
    // One line per row: history's shell continuations would break the table.
    CreatedBy: n.createdBy.replace(/\s+/g, ' ').trim(),
    Images: imageLabels(n.images).join(','),
    Containers: n.containers.map((c) => c.name).join(','),
    ImageCount: n.imageCount,
    ContainerCount: n.containerCount,
    Shared: n.shared,
  }));
}

/** The tree as text: one line per layer, `tree`'s branches, who stands on it at the end. */
function printLayerTree(io: Output, tree: LayerTree): void {
  const prefixes = treePrefixes(tree);
  for (const n of walkLayerTree(tree)) {
    const who = [...imageLabels(n.images), ...n.containers.map((c) => `container ${c.name}`)];
    const parts = [`${prefixes.get(n)}${shortId(n.chainId)}`, humanSize(n.size)];
    if (n.createdBy) parts.push(truncate(n.createdBy.replace(/\s+/g, ' '), 60));
    if (n.shared) parts.push(`[shared by ${n.imageCount} images]`);
    if (who.length) parts.push(`<- ${who.join(', ')}`);
    io.print(parts.join('  '));
  }
  const bare = [...imageLabels(tree.noLayer.images), ...tree.noLayer.containers.map((c) => `container ${c.name}`)];
  if (bare.length) io.print(`(no layers)  <- ${bare.join(', ')}`);
  io.print(
    `\n${tree.layers} layers, ${humanSize(tree.size)} stored once; ${humanSize(tree.virtualSize)} if every image kept its own copy; ${humanSize(tree.sharedSize)} in shared layers`,
  );
}

/** A threshold as --ci takes it; a bad value is a flag problem (docker's 125). */
function ratio(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) throw new StrataError(`invalid --lowest-efficiency "${v}": expected a number from 0 to 1`, 125);
  return n;
}

function byteCount(v: string): number {
  try {
    return parseSizeOption(v, '--highest-wasted-bytes');
  } catch (err) {
    throw new StrataError((err as Error).message, 125);
  }
}

/** dive's default when --ci is given alone. */
const DEFAULT_LOWEST_EFFICIENCY = 0.9;

interface CiCheck {
  rule: string;
  limit: number;
  value: number;
  pass: boolean;
}

function ciChecks(a: ImageAnalysis, o: { lowestEfficiency?: number; highestWastedBytes?: number }): CiCheck[] {
  const checks: CiCheck[] = [];
  const lowest = o.lowestEfficiency ?? (o.highestWastedBytes === undefined ? DEFAULT_LOWEST_EFFICIENCY : undefined);
  if (lowest !== undefined) checks.push({ rule: 'lowest-efficiency', limit: lowest, value: a.efficiency, pass: a.efficiency >= lowest });
  if (o.highestWastedBytes !== undefined) {
    checks.push({ rule: 'highest-wasted-bytes', limit: o.highestWastedBytes, value: a.wastedBytes, pass: a.wastedBytes <= o.highestWastedBytes });
  }
  return checks;
}

const count = (c: { files: number; bytes: number }) => (c.files ? `${c.files} (${humanSize(c.bytes)})` : '-');
const percent = (x: number) => `${(100 * x).toFixed(1)}%`;

function printAnalysis(io: Output, a: ImageAnalysis): void {
  const name = a.names.length ? `${familiar(a.names[0])} (${shortId(a.id)})` : shortId(a.id);
  io.print(`Image: ${name}, ${a.layers.length} layers\n`);
  io.out.write(
    table(
      ['LAYER', 'SIZE', 'ADDED', 'CHANGED', 'REMOVED', 'WASTED', 'CREATED BY'],
      a.layers.map((l) => [
        shortId(l.chainId),
        humanSize(l.size),
        count(l.added),
        count(l.changed),
        count(l.removed),
        l.wastedBytes ? humanSize(l.wastedBytes) : '-',
        truncate(l.createdBy.replace(/\s+/g, ' ').trim(), 45),
      ]),
    ),
  );
  const wastedShare = a.sizeBytes ? ` (${percent(a.wastedBytes / a.sizeBytes)} of the layers' bytes)` : '';
  io.print(`\nTotal: ${humanSize(a.sizeBytes)} in the layers, ${humanSize(a.visibleBytes)} visible in the image`);
  io.print(`Wasted: ${humanSize(a.wastedBytes)}${wastedShare}: overwritten or deleted by a later layer`);
  io.print(`Efficiency: ${percent(a.efficiency)} (dive's score: per path, the smallest version over all versions)`);
  if (a.wasted.length === 0) return;
  io.print(`\nTop wasted paths:`);
  io.out.write(table(['VERSIONS', 'WASTED', 'TOTAL', 'PATH'], a.wasted.map((w) => [String(w.versions), humanSize(w.wastedBytes), humanSize(w.totalBytes), w.path])));
}

/** `diff -v`: the container's changes with where each came from and what its copy-up cost, in bytes. */
export function printCopyUps(io: Output, r: CopyUpReport): void {
  io.print(`Driver: ${r.driver}, ${r.method}: ${r.note}\n`);
  const n = (b: number) => (b ? String(b) : '-');
  io.out.write(
    table(
      ['KIND', 'PATH', 'FROM LAYER', 'LOWER BYTES', 'BYTES', 'COPIED UP', 'ALLOCATED'],
      r.files.map((f) => [
        f.kind,
        f.path,
        f.from ? (f.from.init ? 'init' : shortId(f.from.chainId ?? f.from.layer)) : '-',
        n(f.lowerBytes),
        n(f.bytes),
        n(f.copiedBytes),
        n(f.allocatedBytes),
      ]),
    ),
  );
  const copied = r.files.filter((f) => f.copiedBytes > 0).length;
  io.print(`\nCopied up: ${r.copiedBytes} bytes (${humanSize(r.copiedBytes)}) in ${copied} file${copied === 1 ? '' : 's'}`);
  io.print(`Allocated on demand for new files: ${r.newBytes} bytes (${humanSize(r.newBytes)})`);
  if (r.layerAllocated) io.print(`Container layer allocation: ${r.layerAllocated.bytes} bytes (${humanSize(r.layerAllocated.bytes)}, ${r.layerAllocated.source})`);
}

export function addLayerCommands(program: Command, { io, withStore }: Context): void {
  program
    .command('layers')
    .description('Show every layer of the store once, as a tree from the base layers up')
    .option('--format <format>', 'json for one JSON object per layer, or a Go template')
    .action(async (o: { format?: string }) => {
      await withStore(async (store) => {
        const tree = await store.layerTree();
        if (!o.format) return printLayerTree(io, tree);
        const rows = layerRows(tree);
        if (o.format === 'json') for (const r of rows) io.print(JSON.stringify(r));
        else io.out.write(formatRows(rows, o.format, { command: 'layers', ...LAYERS_TABLE }));
      });
    });

  program
    .command('analyze')
    .description("Show what each layer of an image adds, changes and removes, and the bytes it wastes")
    .argument('<image>')
    .option('--ci', 'check the image against thresholds and exit 1 when one is crossed (lowest-efficiency 0.9 unless one is given)')
    .option('--lowest-efficiency <ratio>', 'with --ci: fail below this efficiency score (0..1)', ratio)
    .option('--highest-wasted-bytes <size>', 'with --ci: fail above this many wasted bytes (a number, or 20M style)', byteCount)
    .option('--top <n>', 'how many wasted paths to list (0: all)', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0) throw new StrataError(`invalid --top "${v}": expected a whole number`, 125);
      return n;
    }, 10)
    .option('--format <format>', 'json for one JSON object (no per-file lists)')
    .action(async (ref: string, o: { ci?: boolean; lowestEfficiency?: number; highestWastedBytes?: number; top: number; format?: string }) => {
      if (!o.ci && (o.lowestEfficiency !== undefined || o.highestWastedBytes !== undefined)) {
        throw new StrataError('--lowest-efficiency and --highest-wasted-bytes take effect only with --ci', 125);
      }
      if (o.format !== undefined && o.format !== 'json') throw new StrataError(`invalid --format "${o.format}": analyze prints text or json`, 125);
      await withStore(async (store) => {
        const full = await store.analyze(ref);
        const a = o.top === 0 ? full : { ...full, wasted: full.wasted.slice(0, o.top) };
        const checks = o.ci ? ciChecks(full, o) : [];
        if (o.format === 'json') {
          const layers = a.layers.map(({ files: _files, ...l }) => l);
          io.print(JSON.stringify({ ...a, layers, ...(o.ci ? { ci: { pass: checks.every((c) => c.pass), checks } } : {}) }));
        } else {
          printAnalysis(io, a);
          if (o.ci) {
            io.print('\nCI:');
            for (const c of checks) {
              const shown = c.rule === 'lowest-efficiency' ? [c.value.toFixed(4), c.limit] : [c.value, c.limit];
              io.print(`  ${c.pass ? 'PASS' : 'FAIL'}  ${c.rule}: ${shown[0]} (limit ${shown[1]})`);
            }
            io.print(checks.every((c) => c.pass) ? 'Result: PASS' : 'Result: FAIL');
          }
        }
        if (checks.some((c) => !c.pass)) throw new SilentExit(1);
      });
    });
}
