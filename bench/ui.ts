// strata ui under load: a store of 100 images (busybox and app loaded, 98 more committed from
// containers of them, so layers are shared as in real stores) and 10 containers, served by
// `strata ui` in a process of its own; 10 clients in parallel each load the page as a browser
// does (the page, its script and stylesheet, the state) and then ask for an image, a layer and a
// container, several rounds. Prints the latency of every answer per route (median, p95, max);
// an image's analysis (behind an image's, an image layer's and a container's answer) and a
// container's change lists are made on the first request and kept (store/analysis/cache.ts),
// so first and later answers are shown apart; the clients run twice, on cold caches and warm.
import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { Store } from '../src/store/store.js';
import type { UiState } from '../src/ui/views.js';
import { corpusImage, scratch } from '../test/helpers/env.js';
import { unmountAllUnder } from '../test/helpers/mounts.js';
import { overlay2Available } from '../test/helpers/registry.js';
import { startUi } from '../test/helpers/ui.js';

export const name = 'ui';

const IMAGES = Number(process.env.BENCH_UI_IMAGES ?? 100);
const CLIENTS = 10;
const ROUNDS = Number(process.env.BENCH_UI_ROUNDS ?? 10);

async function fillStore(root: string, driver: string): Promise<void> {
  const store = await Store.open({ root, driver });
  try {
    const bases = [(await store.load(corpusImage('busybox.docker.tar')))[0].id, (await store.load(corpusImage('app.docker.tar')))[0].id];
    for (let i = bases.length; i < IMAGES; i++) {
      const c = await store.createContainer(bases[i % 2], { name: `bench-${i}` });
      writeFileSync(join(await store.mount(c.id), `bench-${i}`), `image ${i}\n`);
      await store.unmount(c.id);
      await store.commit(c.id, `bench/img:${i}`);
      // the last ten stay, as containers of the store
      if (i < IMAGES - 10) await store.removeContainer(c.id);
    }
  } finally {
    await store.driver.cleanup();
    await store.close();
  }
}

function stats(ms: number[]): string {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))].toFixed(1);
  return `n=${s.length} median ${at(0.5)} ms, p95 ${at(0.95)} ms, max ${s[s.length - 1].toFixed(1)} ms`;
}

export async function run(): Promise<void> {
  const driver = (await overlay2Available()) ? 'overlay2' : 'vfs';
  const base = scratch(null, 'strata-bench-ui-');
  const cleanups: (() => void | Promise<void>)[] = [];
  try {
    const t0 = Date.now();
    await fillStore(join(base, 'root'), driver);
    console.log(`store of ${IMAGES} images on ${driver} made in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const ui = await startUi(join(base, 'root'), driver, (fn) => cleanups.push(fn));
    const state = await ui.api<UiState>('/api/state');
    const images = state.images.map((i) => i.id);
    const layers = state.layers.filter((l) => l.kind === 'image').map((l) => l.id);
    const containers = state.containers.map((c) => c.id);
    const asked = new Set<string>();
    // Two passes of the same clients: the first meets cold caches (and its later answers share
    // the CPU with first ones being made), the second is the page as it is used once warm.
    for (const pass of ['cold', 'warm']) {
      const times = new Map<string, number[]>();
      const get = async (route: string, path: string) => {
        // analyses and change lists are made on their first request and kept: first and later
        // apart (answers asked for while the first is being made wait for it: first too)
        const key = asked.has(path) || !/^\/api\/(images|layers|containers)\//.test(path) ? route : `${route} (first)`;
        const t = performance.now();
        const res = await fetch(`${ui.origin}${path}?token=${ui.token}`);
        await res.arrayBuffer();
        if (!res.ok) throw new Error(`${path}: ${res.status}`);
        asked.add(path);
        times.set(key, [...(times.get(key) ?? []), performance.now() - t]);
      };
      const client = async (k: number) => {
        for (let r = 0; r < ROUNDS; r++) {
          await Promise.all([get('page', '/'), get('app.js', '/app.js'), get('app.css', '/app.css'), get('state', '/api/state')]);
          // 20 images, layers and containers between them: each asked for about five times
          const n = (k + 3 * r) % 20;
          await get('image', `/api/images/${images[n % images.length]}`);
          await get('layers', `/api/layers/${layers[n % layers.length]}`);
          await get('container', `/api/containers/${containers[n % containers.length]}`);
        }
      };
      const t1 = Date.now();
      await Promise.all(Array.from({ length: CLIENTS }, (_, k) => client(k)));
      console.log(`${pass}: ${CLIENTS} clients × ${ROUNDS} rounds in ${((Date.now() - t1) / 1000).toFixed(1)} s (${state.layers.length} layers, ${containers.length} containers)`);
      // this machine is shared: the load says how far the numbers are from a quiet one
      console.log(`load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} on ${cpus().length} CPUs`);
      for (const [route, ms] of [...times].sort()) console.log(`  ${route.padEnd(20)} ${stats(ms)}`);
    }
  } finally {
    for (const fn of cleanups.reverse()) await fn();
    unmountAllUnder(base);
  }
}
