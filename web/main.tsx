// strata ui's page: the store's images and containers (left), the layer graph or the disk view
// (middle) and the selected layer, image or container (right). It follows the store: when
// another process changes it, the server's event stream says so and the page fetches it again.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import type { UiState } from '../src/ui/views.js';
import { follow, getJSON, short, size } from './api.js';
import { DetailPanel } from './detail.js';
import { DiskView } from './disk.js';
import { LayerGraph } from './graph.js';
import './style.css';

export interface Selection {
  kind: 'layer' | 'image' | 'container';
  id: string;
}

function App() {
  const [state, setState] = useState<UiState | null>(null);
  const [error, setError] = useState('');
  const [view, setView] = useState<'graph' | 'disk'>('graph');
  const [sel, setSel] = useState<Selection | null>(null);
  useEffect(() => {
    let latest = -1;
    const load = () =>
      getJSON<UiState>('/api/state').then(
        (s) => {
          latest = s.version;
          setState(s);
          setError('');
        },
        (err: Error) => setError(err.message),
      );
    void load();
    return follow((v) => {
      if (v !== latest) void load();
    });
  }, []);
  if (!state) return <p class="loading">{error || 'Loading the store…'}</p>;
  const gone = sel && !(sel.kind === 'layer' ? state.layers : sel.kind === 'image' ? state.images : state.containers).some((x) => x.id === sel.id);
  const total = state.layers.reduce((n, l) => n + l.bytes, 0);
  return (
    <div class="app">
      <header>
        <h1>strata</h1>
        <span class="summary">
          {state.driver} · {state.root} · {state.images.length} images · {state.containers.length} containers · {state.layers.length} layers · {size(total)}
        </span>
        {error && <span class="error">{error}</span>}
        <nav>
          <button class={view === 'graph' ? 'on' : ''} onClick={() => setView('graph')}>
            layers
          </button>
          <button class={view === 'disk' ? 'on' : ''} onClick={() => setView('disk')}>
            disk
          </button>
        </nav>
      </header>
      <aside class="lists">
        <h2>images</h2>
        <ul id="images">
          {state.images.map((i) => (
            <li key={i.id} data-image={i.id} class={sel?.id === i.id ? 'selected' : ''} onClick={() => setSel({ kind: 'image', id: i.id })}>
              <span class="name">{i.names.join(', ') || `<none> ${short(i.id)}`}</span> <span class="size">{size(i.size)}</span>
            </li>
          ))}
        </ul>
        <h2>containers</h2>
        <ul id="containers">
          {state.containers.map((c) => (
            <li key={c.id} data-container={c.id} class={sel?.id === c.id ? 'selected' : ''} onClick={() => setSel({ kind: 'container', id: c.id })}>
              <span class="name">{c.name}</span> <span class="status">{c.status}</span> <span class="image">{c.imageRef}</span>
            </li>
          ))}
        </ul>
      </aside>
      <main>{view === 'graph' ? <LayerGraph state={state} selected={sel} onSelect={setSel} /> : <DiskView state={state} onSelect={setSel} />}</main>
      <aside id="detail">{sel && !gone ? <DetailPanel sel={sel} state={state} onSelect={setSel} /> : <p class="hint">Click a layer, image or container.</p>}</aside>
    </div>
  );
}

render(<App />, document.getElementById('app')!);
