// Store-growth benchmark: the commands that should cost the same in a big store as in an empty
// one (`create`, `inspect`, `rm`, `mount` as whole processes), timed on a root holding one image,
// then again once the root holds 1,000 images and 10,000 containers made through the library
// (BENCH_GROWTH_IMAGES, BENCH_GROWTH_CONTAINERS); and `ps -a` and `images`, whose work grows with
// the rows they print, as the time added per 1,000 rows. Goals (issue #13): at most 1.2x the
// empty root's time, and at most 20 ms more per 1,000 rows.
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

type Times = Map<string, number>;

/** Median wall ms of each command over RUNS rounds (create → inspect → mount → umount → rm). */
function flatCommands(cli: (...a: string[]) => string[], image: string): Times {
  const t = new Map<string, number[]>([['create', []], ['inspect', []], ['mount', []], ['rm', []], ['ps -a', []], ['images', []]]);
  const ms = (argv: string[], what: string) => measure(argv, what).wall * 1000;
  for (let i = 0; i < RUNS; i++) {
    const name = `bench-growth-${process.pid}-${i}`;
    t.get('create')!.push(ms(cli('create', '--name', name, image), 'create'));
    t.get('inspect')!.push(ms(cli('inspect', name), 'inspect'));
    t.get('mount')!.push(ms(cli('mount', name), 'mount'));
    measure(cli('umount', name), 'umount');
    t.get('rm')!.push(ms(cli('rm', name), 'rm'));
    t.get('ps -a')!.push(ms(cli('ps', '-a'), 'ps'));
    t.get('images')!.push(ms(cli('images'), 'images'));
  }
  return new Map([...t].map(([k, v]) => [k, median(v)]));
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
  const root = join(dir, 'root');
  const driver = (await overlay2Available()) ? 'overlay2' : 'vfs';
  const store = await Store.open({ root, driver });
  try {
    const [img] = await store.load(corpusImage('busybox.oci.tar'));
    const cli = (...args: string[]) => [process.execPath, strataBin, '--root', root, '--driver', driver, ...args];
    const empty = flatCommands(cli, img!.id);
    await grow(store, img!.id);
    await store.driver.cleanup();
    const grown = flatCommands(cli, img!.id);

    const table = [['command', '1 image, 0 containers', `${IMAGES} images, ${CONTAINERS} containers`, 'ratio / growth', 'goal']];
    for (const cmd of ['create', 'inspect', 'mount', 'rm']) {
      const ratio = grown.get(cmd)! / empty.get(cmd)!;
      table.push([cmd, `${empty.get(cmd)!.toFixed(0)} ms`, `${grown.get(cmd)!.toFixed(0)} ms`, `${ratio.toFixed(2)}x`, ratio <= FLAT_RATIO ? 'met' : `missed (> ${FLAT_RATIO}x)`]);
    }
    for (const [cmd, rows] of [['ps -a', CONTAINERS], ['images', IMAGES]] as const) {
      const per1000 = (grown.get(cmd)! - empty.get(cmd)!) / (rows / 1000);
      table.push([cmd, `${empty.get(cmd)!.toFixed(0)} ms`, `${grown.get(cmd)!.toFixed(0)} ms`, `${per1000.toFixed(1)} ms / 1,000 rows`, per1000 <= PER_1000_MS ? 'met' : `missed (> ${PER_1000_MS} ms)`]);
    }
    console.log(`\nstore growth on ${driver}, whole-process commands, median of ${RUNS} rounds:`);
    printTable(table);
  } finally {
    await store.driver.cleanup();
    await store.close();
    unmountAllUnder(dir);
    rmSync(dir, { recursive: true, force: true });
  }
}
