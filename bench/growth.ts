// Store-growth benchmark: the commands that should cost the same in a big store as in an empty
// one (`create`, `inspect`, `rm`, `mount` as whole processes), timed on a root holding one image
// and, in alternation, on one holding 1,000 images and 10,000 containers made through the library
// (BENCH_GROWTH_IMAGES, BENCH_GROWTH_CONTAINERS); and `ps -a` and `images`, whose work grows with
// the rows they print, as the time added per 1,000 rows. Goals (issue #13): at most 1.2x the
// empty root's time, and at most 20 ms more per 1,000 rows. Each row also shows the same figure
// in CPU time (user + system), steadier than wall time when the machine is shared.
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { ImageConfig } from '../src/image/types.js';
import { Store } from '../src/store/store.js';
import { corpusImage, strataBin } from '../test/helpers/env.js';
import { unmountAllUnder } from '../test/helpers/mounts.js';
import { overlay2Available } from '../test/helpers/registry.js';
import { measure, median, printTable } from './measure.js';

export const name = 'growth';

const IMAGES = Number(process.env.BENCH_GROWTH_IMAGES ?? 1000);
const CONTAINERS = Number(process.env.BENCH_GROWTH_CONTAINERS ?? 10000);
const RUNS = Math.max(5, Number(process.env.BENCH_RUNS ?? 7));
const FLAT_RATIO = 1.2;
const PER_1000_MS = 20;

const COMMANDS = ['create', 'inspect', 'mount', 'rm', 'ps -a', 'images'] as const;
/** Per command: wall ms and CPU ms of each run. */
type Times = Map<string, { wall: number[]; cpu: number[] }>;

/** One round on a root: create → inspect → mount → umount → rm, ps -a, images; wall and CPU ms each. */
function round(cli: (...a: string[]) => string[], image: string, i: number, into: Times): void {
  const ms = (cmd: string, argv: string[]) => {
    const m = measure(argv, cmd);
    into.get(cmd)!.wall.push(m.wall * 1000);
    into.get(cmd)!.cpu.push(m.cpu * 1000);
  };
  const name = `bench-growth-${process.pid}-${i}`;
  ms('create', cli('create', '--name', name, image));
  ms('inspect', cli('inspect', name));
  ms('mount', cli('mount', name));
  measure(cli('umount', name), 'umount');
  ms('rm', cli('rm', name));
  ms('ps -a', cli('ps', '-a'));
  ms('images', cli('images'));
}

/** IMAGES images that share busybox's layer (their configs differ by a label) and CONTAINERS containers of them. */
async function grow(store: Store, baseId: string): Promise<void> {
  const base = JSON.parse(store.images.get(baseId)!.config.toString('utf8')) as ImageConfig;
  const ids: string[] = [];
  const t0 = Date.now();
  for (let i = 0; i < IMAGES; i++) {
    const config = { ...base, config: { ...base.config, Labels: { 'bench.growth': String(i) } } };
    const img = await store.importImage({
      config: Buffer.from(JSON.stringify(config)),
      // Stored already (busybox's layer): the store reuses it by chain ID without opening it.
      layers: base.rootfs.diff_ids.map(() => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', open: () => Promise.reject(new Error('layer is stored')) })),
      names: [`bench/growth-${i}:latest`],
    });
    ids.push(img.id);
  }
  const t1 = Date.now();
  for (let i = 0; i < CONTAINERS; i++) {
    await store.createContainer(ids[i % ids.length]!);
    if ((i + 1) % 1000 === 0) process.stdout.write(`  ${i + 1} containers (${((Date.now() - t1) / (i + 1)).toFixed(1)} ms each)\n`);
  }
  console.log(`  grew to ${IMAGES} images in ${((t1 - t0) / 1000).toFixed(1)} s and ${CONTAINERS} containers in ${((Date.now() - t1) / 1000).toFixed(1)} s`);
}

export async function run(): Promise<void> {
  const dir = mkdtempSync('/var/tmp/strata-bench-growth-');
  const driver = (await overlay2Available()) ? 'overlay2' : 'vfs';
  // Two roots on one filesystem, measured in alternation (a round on one, then on the other), so
  // that load from elsewhere on the machine falls on both alike.
  const roots = { small: join(dir, 'small'), big: join(dir, 'big') };
  const stores: Store[] = [];
  try {
    const image: Record<string, string> = {};
    for (const [k, root] of Object.entries(roots)) {
      const store = await Store.open({ root, driver });
      stores.push(store);
      image[k] = (await store.load(corpusImage('busybox.oci.tar')))[0]!.id;
      if (k === 'big') await grow(store, image[k]!);
      await store.driver.cleanup();
    }
    const cli = (root: string) => (...args: string[]) => [process.execPath, strataBin, '--root', root, '--driver', driver, ...args];
    const times = (): Times => new Map(COMMANDS.map((c) => [c, { wall: [], cpu: [] }]));
    const small = times();
    const big = times();
    for (let i = 0; i < RUNS; i++) {
      round(cli(roots.small), image.small!, i, small);
      round(cli(roots.big), image.big!, i, big);
    }
    const m = (t: Times, c: string, k: 'wall' | 'cpu' = 'wall') => median(t.get(c)![k]);
    const cpuMs = (t: Times, c: string) => `${m(t, c, 'cpu').toFixed(0)} ms`;

    const table = [['command', '1 image, 0 containers', `${IMAGES} images, ${CONTAINERS} containers`, 'ratio / growth', 'goal', 'CPU: small, big', 'CPU ratio / growth']];
    for (const cmd of ['create', 'inspect', 'mount', 'rm']) {
      const ratio = m(big, cmd) / m(small, cmd);
      const cpuRatio = m(big, cmd, 'cpu') / m(small, cmd, 'cpu');
      table.push([cmd, `${m(small, cmd).toFixed(0)} ms`, `${m(big, cmd).toFixed(0)} ms`, `${ratio.toFixed(2)}x`, ratio <= FLAT_RATIO ? 'met' : `missed (> ${FLAT_RATIO}x)`, `${cpuMs(small, cmd)}, ${cpuMs(big, cmd)}`, `${cpuRatio.toFixed(2)}x`]);
    }
    for (const [cmd, rows] of [['ps -a', CONTAINERS], ['images', IMAGES]] as const) {
      const per1000 = (k: 'wall' | 'cpu') => (m(big, cmd, k) - m(small, cmd, k)) / (rows / 1000);
      table.push([
        cmd,
        `${m(small, cmd).toFixed(0)} ms`,
        `${m(big, cmd).toFixed(0)} ms`,
        `${per1000('wall').toFixed(1)} ms / 1,000 rows`,
        per1000('wall') <= PER_1000_MS ? 'met' : `missed (> ${PER_1000_MS} ms)`,
        `${cpuMs(small, cmd)}, ${cpuMs(big, cmd)}`,
        `${per1000('cpu').toFixed(1)} ms / 1,000 rows`,
      ]);
    }
    console.log(`\nstore growth on ${driver}, whole-process commands, median of ${RUNS} alternating rounds:`);
    printTable(table);
  } finally {
    for (const store of stores) {
      await store.driver.cleanup();
      await store.close();
    }
    unmountAllUnder(dir);
    rmSync(dir, { recursive: true, force: true });
  }
}
