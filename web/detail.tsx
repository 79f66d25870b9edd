// The side panel: what one selected layer, image or container holds, fetched when selected and
// again when the store changes (a running container's diff grows).
import { useEffect, useState } from 'preact/hooks';
import type { UiAnalysis, UiChange, UiContainerDetail, UiImageDetail, UiLayerDetail, UiState } from '../src/ui/views.js';
import { getJSON, short, size } from './api.js';
import type { Selection } from './main.js';

type Detail = UiLayerDetail | UiImageDetail | UiContainerDetail;

const PATHS = { layer: 'layers', image: 'images', container: 'containers' } as const;

export function DetailPanel({ sel, state, onSelect }: { sel: Selection; state: UiState; onSelect: (s: Selection) => void }) {
  const [detail, setDetail] = useState<{ key: string; value?: Detail; error?: string } | null>(null);
  const key = `${sel.kind}/${sel.id}`;
  useEffect(() => {
    let live = true;
    getJSON<Detail>(`/api/${PATHS[sel.kind]}/${sel.id}`).then(
      (value) => live && setDetail({ key, value }),
      (err: Error) => live && setDetail({ key, error: err.message }),
    );
    return () => {
      live = false;
    };
  }, [key, state.version]);
  if (!detail || detail.key !== key) return <p class="loading">Loading {sel.kind}…</p>;
  if (detail.error) return <p class="error">{detail.error}</p>;
  const v = detail.value!;
  if ('layer' in v) return <LayerPanel d={v} state={state} onSelect={onSelect} />;
  if ('image' in v) return <ImagePanel d={v} state={state} onSelect={onSelect} />;
  return <ContainerPanel d={v} onSelect={onSelect} />;
}

function LayerPanel({ d, state, onSelect }: { d: UiLayerDetail; state: UiState; onSelect: (s: Selection) => void }) {
  const l = d.layer;
  return (
    <section class="layer-detail">
      <h2>
        {l.kind} layer {short(l.chainId ?? l.id)}
      </h2>
      <dl>
        <dt>bytes</dt>
        <dd>{size(l.bytes)}</dd>
        {l.createdBy && <dt>made by</dt>}
        {l.createdBy && <dd class="cmd">{l.createdBy}</dd>}
        <dt>images</dt>
        <dd>
          {l.images.map((id) => (
            <a key={id} onClick={() => onSelect({ kind: 'image', id })}>
              {state.images.find((i) => i.id === id)?.names[0] ?? short(id)}{' '}
            </a>
          ))}
        </dd>
        <dt>containers</dt>
        <dd>
          {l.containers.map((id) => (
            <a key={id} onClick={() => onSelect({ kind: 'container', id })}>
              {state.containers.find((c) => c.id === id)?.name ?? short(id)}{' '}
            </a>
          ))}
        </dd>
      </dl>
      <h3>
        files ({d.changes.length} changes, {size(d.changes.reduce((n, c) => n + (c.kind === 'D' ? 0 : c.size), 0))} stored)
      </h3>
      <FileTree changes={d.changes} />
    </section>
  );
}

interface Dir {
  name: string;
  change?: UiChange;
  bytes: number;
  children: Map<string, Dir>;
}

/** The changes as a tree of directories, each directory with the bytes below it. */
function toTree(changes: UiChange[]): Dir {
  const root: Dir = { name: '/', bytes: 0, children: new Map() };
  for (const c of changes) {
    // a removal's bytes are what it hides below, not what the layer stores
    const stored = c.kind === 'D' ? 0 : c.size;
    let at = root;
    at.bytes += stored;
    for (const part of c.path.split('/').filter(Boolean)) {
      let next = at.children.get(part);
      if (!next) at.children.set(part, (next = { name: part, bytes: 0, children: new Map() }));
      next.bytes += stored;
      at = next;
    }
    at.change = c;
  }
  return root;
}

function FileTree({ changes }: { changes: UiChange[] }) {
  if (changes.length === 0) return <p class="empty">No files.</p>;
  return <ul class="files">{[...toTree(changes).children.values()].map((d) => <Entry key={d.name} d={d} depth={0} />)}</ul>;
}

function Entry({ d, depth }: { d: Dir; depth: number }) {
  const mark = d.change?.kind ?? ' ';
  const row = (
    <span class={`file${d.change?.hidden ? ' hidden' : ''}`} data-path={d.change?.path} title={d.change?.hidden ? 'a later layer overwrites or deletes this version' : undefined}>
      <span class={`mark ${mark}`}>{mark}</span> {d.name}
      {d.children.size > 0 ? '/' : ''} <span class="size">{mark === 'D' ? (d.change!.size > 0 ? `−${size(d.change!.size)}` : '') : d.bytes > 0 ? size(d.bytes) : ''}</span>
    </span>
  );
  if (d.children.size === 0) return <li>{row}</li>;
  return (
    <li>
      <details open={depth < 1}>
        <summary>{row}</summary>
        <ul>
          {[...d.children.values()].map((c) => (
            <Entry key={c.name} d={c} depth={depth + 1} />
          ))}
        </ul>
      </details>
    </li>
  );
}

function ImagePanel({ d, state, onSelect }: { d: UiImageDetail; state: UiState; onSelect: (s: Selection) => void }) {
  const img = d.image;
  const users = state.containers.filter((c) => c.imageId === img.id);
  return (
    <section class="image-detail">
      <h2>{img.names.join(', ') || `<none> ${short(img.id)}`}</h2>
      <dl>
        <dt>id</dt>
        <dd>{short(img.id)}</dd>
        <dt>size</dt>
        <dd>{size(img.size)}</dd>
        <dt>created</dt>
        <dd>{img.created}</dd>
        <dt>top layer</dt>
        <dd>{img.topLayer && <a onClick={() => onSelect({ kind: 'layer', id: img.topLayer! })}>{short(img.topLayer)}</a>}</dd>
        <dt>containers</dt>
        <dd>
          {users.map((c) => (
            <a key={c.id} onClick={() => onSelect({ kind: 'container', id: c.id })}>
              {c.name}{' '}
            </a>
          ))}
        </dd>
      </dl>
      <Analysis a={d.analysis} onSelect={onSelect} />
      <h3>history</h3>
      <table class="history">
        <thead>
          <tr>
            <th>created by</th>
            <th>size</th>
          </tr>
        </thead>
        <tbody>
          {d.history.map((h, i) => (
            <tr key={i}>
              <td class="cmd">{h.createdBy}</td>
              <td>{size(h.size)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

const count = (c: { files: number; bytes: number }) => (c.files ? `${c.files} · ${size(c.bytes)}` : '');

function Analysis({ a, onSelect }: { a: UiAnalysis; onSelect: (s: Selection) => void }) {
  return (
    <>
      <h3>analysis</h3>
      <dl class="analysis">
        <dt>efficiency</dt>
        <dd>{(a.efficiency * 100).toFixed(2)} %</dd>
        <dt>wasted</dt>
        <dd>{size(a.wastedBytes)}</dd>
        <dt>visible</dt>
        <dd>
          {size(a.visibleBytes)} of {size(a.sizeBytes)} stored
        </dd>
      </dl>
      <table class="history layers">
        <thead>
          <tr>
            <th>layer</th>
            <th>added</th>
            <th>changed</th>
            <th>removed</th>
            <th>wasted</th>
          </tr>
        </thead>
        <tbody>
          {a.layers.map((l) => (
            <tr key={l.id}>
              <td>
                <a onClick={() => onSelect({ kind: 'layer', id: l.id })}>{short(l.chainId)}</a>
              </td>
              <td>{count(l.added)}</td>
              <td>{count(l.changed)}</td>
              <td>{count(l.removed)}</td>
              <td>{l.wastedBytes ? size(l.wastedBytes) : ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {a.wasted.length > 0 && (
        <>
          <h3>most wasted paths</h3>
          <ul class="files wasted">
            {a.wasted.slice(0, 10).map((w) => (
              <li key={w.path}>
                {w.path} <span class="size">{size(w.wastedBytes)} in {w.versions} versions</span>
              </li>
            ))}
          </ul>
        </>
      )}
    </>
  );
}

function ContainerPanel({ d, onSelect }: { d: UiContainerDetail; onSelect: (s: Selection) => void }) {
  const c = d.container;
  const r = d.copyUps;
  const copied = r.files.filter((f) => f.kind === 'C' && f.type === 'file');
  return (
    <section class="container-detail">
      <h2>container {c.name}</h2>
      <dl>
        <dt>id</dt>
        <dd>{short(c.id)}</dd>
        <dt>image</dt>
        <dd>
          <a onClick={() => onSelect({ kind: 'image', id: c.imageId })}>{c.imageRef}</a>
        </dd>
        <dt>status</dt>
        <dd>{c.status}</dd>
        <dt>read-write layer</dt>
        <dd>
          <a onClick={() => onSelect({ kind: 'layer', id: c.layer })}>{short(c.layer)}</a>
        </dd>
        <dt>copied up</dt>
        <dd class="copied">{size(r.copiedBytes)}</dd>
        <dt>new files</dt>
        <dd class="new">{size(r.newBytes)}</dd>
        {r.layerAllocated && <dt>layer allocated</dt>}
        {r.layerAllocated && <dd>{`${size(r.layerAllocated.bytes)} (${r.layerAllocated.source})`}</dd>}
      </dl>
      <p class="note">
        {r.driver}: {r.note}
      </p>
      {copied.length > 0 && (
        <>
          <h3>copy-ups ({copied.length})</h3>
          <table class="history copyups">
            <thead>
              <tr>
                <th>file</th>
                <th>from layer</th>
                <th>was</th>
                <th>copied</th>
              </tr>
            </thead>
            <tbody>
              {copied.map((f) => (
                <tr key={f.path} data-path={f.path}>
                  <td class="cmd">{f.path}</td>
                  <td>{f.from ? <a onClick={() => onSelect({ kind: 'layer', id: f.from!.layer })}>{f.from.init ? 'init' : short(f.from.chainId ?? f.from.layer)}</a> : ''}</td>
                  <td>{size(f.lowerBytes)}</td>
                  <td class="copied">{size(f.copiedBytes)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
      <h3>diff ({r.files.length})</h3>
      <FileTree changes={d.changes} />
    </section>
  );
}
