// The layer graph: every layer of the store once, as a tree from base layers (left) to the layers
// stacked on them (right), laid out by d3-hierarchy. A node's area grows with the bytes the layer
// holds; a layer that several images share is drawn once, with a thick ring. Image names sit at
// their top layer, container names at their read-write layer.
import { stratify, tree, type HierarchyPointNode } from 'd3-hierarchy';
import type { UiLayer, UiState } from '../src/ui/views.js';
import { short, size } from './api.js';
import type { Selection } from './main.js';

const ROW = 46;
const COL = 220;
const ROOT = '(store)';

interface Item {
  id: string;
  parent: string | null;
  layer?: UiLayer;
}

export function radius(bytes: number, max: number): number {
  return 4 + 14 * Math.sqrt(max > 0 ? bytes / max : 0);
}

function layout(state: UiState): HierarchyPointNode<Item> {
  const ids = new Set(state.layers.map((l) => l.id));
  const items: Item[] = [{ id: ROOT, parent: null }, ...state.layers.map((l) => ({ id: l.id, parent: l.parent && ids.has(l.parent) ? l.parent : ROOT, layer: l }))];
  const root = stratify<Item>()
    .id((d) => d.id)
    .parentId((d) => d.parent)(items);
  root.sort((a, b) => (a.data.layer?.createdBy ?? a.data.id).localeCompare(b.data.layer?.createdBy ?? b.data.id));
  return tree<Item>().nodeSize([ROW, COL])(root);
}

export function LayerGraph({ state, selected, onSelect }: { state: UiState; selected: Selection | null; onSelect: (s: Selection) => void }) {
  if (state.layers.length === 0) return <p class="empty">The store holds no layers yet.</p>;
  const root = layout(state);
  const nodes = root.descendants().filter((n) => n.data.layer);
  const minX = Math.min(...nodes.map((n) => n.x));
  const maxX = Math.max(...nodes.map((n) => n.x));
  const depth = Math.max(...nodes.map((n) => n.depth));
  const max = Math.max(...state.layers.map((l) => l.bytes));
  const tops = new Map<string, string[]>();
  for (const img of state.images) if (img.topLayer) tops.set(img.topLayer, [...(tops.get(img.topLayer) ?? []), ...(img.names.length ? img.names : [`<none> ${short(img.id)}`])]);
  const rw = new Map(state.containers.map((c) => [c.layer, c]));
  // x: depth to the right; y: the layout's breadth, shifted to start at the top.
  const at = (n: HierarchyPointNode<Item>) => ({ x: (n.depth - 1) * COL + 30, y: n.x - minX + ROW });
  return (
    <svg class="graph" width={depth * COL + 200} height={maxX - minX + 2 * ROW}>
      {nodes
        .filter((n) => n.parent?.data.layer)
        .map((n) => {
          const a = at(n.parent!);
          const b = at(n);
          const mid = (a.x + b.x) / 2;
          return <path key={`e${n.id}`} class="edge" d={`M${a.x},${a.y}C${mid},${a.y} ${mid},${b.y} ${b.x},${b.y}`} />;
        })}
      {nodes.map((n) => {
        const l = n.data.layer!;
        const p = at(n);
        const r = radius(l.bytes, max);
        const c = rw.get(l.id);
        const names = [...(tops.get(l.id) ?? []), ...(c ? [`▣ ${c.name}`] : [])];
        const isSel = selected?.kind === 'layer' && selected.id === l.id;
        return (
          <g key={l.id} class={`node ${l.kind}${l.shared ? ' shared' : ''}${isSel ? ' selected' : ''}`} data-layer={l.id} transform={`translate(${p.x},${p.y})`} onClick={() => onSelect({ kind: 'layer', id: l.id })}>
            <title>{`${l.kind} layer ${l.id}\n${size(l.bytes)}${l.createdBy ? `\n${l.createdBy}` : ''}\nimages: ${l.images.length}, containers: ${l.containers.length}`}</title>
            <circle r={r} />
            <text x={r + 5} y={-2} class="label">
              {short(l.chainId ?? l.id)}
              {l.kind === 'image' ? ` · ${size(l.bytes)}` : ''}
            </text>
            <text x={r + 5} y={11} class="cmd">
              {l.kind === 'image' ? trim(l.createdBy, 30) : l.kind}
            </text>
            {names.length > 0 && (
              <text x={r + 5} y={-15} class="tags">
                {trim(names.join(', '), 44)}
              </text>
            )}
          </g>
        );
      })}
    </svg>
  );
}

export function trim(s: string, n: number): string {
  const t = s.replace(/^\/bin\/sh -c (#\(nop\) )?/, '').trim();
  return t.length > n ? `${t.slice(0, n - 1)}…` : t;
}
