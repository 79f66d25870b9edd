// Where the store's bytes are: a treemap (d3-hierarchy) of every layer, sized by the bytes it
// holds, in two groups: layers that more than one image stands on (stored once, used by many)
// and layers that belong to one image or container alone.
import { hierarchy, treemap } from 'd3-hierarchy';
import type { UiLayer, UiState } from '../src/ui/views.js';
import { short, size } from './api.js';
import type { Selection } from './main.js';

const W = 900;
const H = 520;

interface Box {
  name: string;
  layer?: UiLayer;
  children?: Box[];
}

export function DiskView({ state, onSelect }: { state: UiState; onSelect: (s: Selection) => void }) {
  const groups: Box[] = [
    { name: 'shared', children: state.layers.filter((l) => l.shared).map((l) => ({ name: l.id, layer: l })) },
    { name: 'unique', children: state.layers.filter((l) => !l.shared).map((l) => ({ name: l.id, layer: l })) },
  ];
  const total = (g: Box) => (g.children ?? []).reduce((n, b) => n + (b.layer?.bytes ?? 0), 0);
  const root = treemap<Box>().size([W, H]).paddingOuter(3).paddingTop(20).paddingInner(2)(
    hierarchy<Box>({ name: 'store', children: groups.filter((g) => total(g) > 0) })
      .sum((d) => d.layer?.bytes ?? 0)
      .sort((a, b) => (b.value ?? 0) - (a.value ?? 0)),
  );
  const imageName = new Map(state.images.map((i) => [i.id, i.names[0] ?? short(i.id)]));
  return (
    <div class="disk">
      <p class="legend">
        {groups.map((g) => (
          <span key={g.name} class={`swatch ${g.name}`}>
            {g.name}: {size(total(g))} in {g.children!.length} layers
          </span>
        ))}
      </p>
      <svg width={W} height={H} class="treemap">
        {root.descendants().map((n) => {
          const w = n.x1 - n.x0;
          const h = n.y1 - n.y0;
          const l = n.data.layer;
          if (n.depth === 0) return null;
          if (!l) {
            return (
              <g key={n.data.name} class={`group ${n.data.name}`}>
                <rect x={n.x0} y={n.y0} width={w} height={h} />
                <text x={n.x0 + 4} y={n.y0 + 14}>
                  {n.data.name} · {size(n.value ?? 0)}
                </text>
              </g>
            );
          }
          const who = l.images.map((i) => imageName.get(i) ?? short(i)).join(', ') || l.containers.map((c) => state.containers.find((x) => x.id === c)?.name ?? short(c)).join(', ');
          return (
            <g key={l.id} class={`cell ${l.kind}${l.shared ? " shared" : ""}`} data-layer={l.id} onClick={() => onSelect({ kind: 'layer', id: l.id })}>
              <title>{`${short(l.chainId ?? l.id)} ${size(l.bytes)}\n${who}`}</title>
              <rect x={n.x0} y={n.y0} width={w} height={h} />
              {w > 60 && h > 28 && (
                <text x={n.x0 + 3} y={n.y0 + 12}>
                  <tspan>{size(l.bytes)}</tspan>
                  <tspan x={n.x0 + 3} dy={12}>
                    {who.slice(0, Math.floor(w / 6))}
                  </tspan>
                </text>
              )}
            </g>
          );
        })}
      </svg>
    </div>
  );
}
