// Seeing the layers (issue #14): `layers` draws every layer of the store once as a tree, with
// what made it and who stands on it. The numbers come from the library (Store.layerTree); this
// file only lays them out.
import type { Command } from 'commander';
import { familiar } from '../../store/images.js';
import { walkLayerTree, type LayerNode, type LayerTree } from '../../store/analysis/tree.js';
import type { Context, Output } from '../context.js';
import { humanSize, shortId, truncate } from '../format.js';
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
  const byId = new Map(walkLayerTree(tree).map((n) => [n.id, n]));
  return walkLayerTree(tree).map((n) => ({
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
}
