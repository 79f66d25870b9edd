// Layer apply benchmark: every layer of corpus/nginx applied into one directory by our applyLayer
// ('snapshot' format) and by GNU tar (`tar -xzf` per layer, --same-owner --xattrs), on a tmpfs of
// its own so disk discards and page-cache writeback fall on neither tool. Tools alternate
// (A B A B …), trees are removed outside the timed part; medians and strata/GNU tar are printed.
import { execFileSync } from 'node:child_process';
import { createReadStream, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyLayer } from '../src/archive/apply.js';
import { decompress } from '../src/archive/compression.js';
import { MNT_DETACH, mount, umount2 } from '../src/sys/linux.js';
import { corpusImage } from '../test/helpers/env.js';
import { median } from './measure.js';

export const name = 'apply';

const RUNS = Math.max(3, Number(process.env.BENCH_RUNS ?? 5));
const IMAGE = 'nginx.oci.tar';

/** The layer blobs of an extracted OCI layout, bottom first (index.json → first manifest). */
function layersOf(layout: string): string[] {
  const blob = (d: string) => join(layout, 'blobs', ...d.split(':'));
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const manifest = JSON.parse(readFileSync(blob(index.manifests[0]!.digest), 'utf8')) as { layers: { digest: string }[] };
  return manifest.layers.map((l) => blob(l.digest));
}

async function strata(layers: string[], root: string): Promise<number> {
  mkdirSync(root);
  const start = process.hrtime.bigint();
  for (const layer of layers) {
    await applyLayer(root, await decompress(createReadStream(layer, { highWaterMark: 1 << 20 })), { whiteouts: 'snapshot' });
  }
  return Number(process.hrtime.bigint() - start) / 1e9;
}

function gnuTar(layers: string[], root: string): number {
  mkdirSync(root);
  const start = process.hrtime.bigint();
  for (const layer of layers) execFileSync('tar', ['-xzf', layer, '-C', root, '--same-owner', '--xattrs', '--xattrs-include=*'], { stdio: ['ignore', 'ignore', 'pipe'] });
  return Number(process.hrtime.bigint() - start) / 1e9;
}

export async function run(): Promise<void> {
  const mnt = mkdtempSync(join(tmpdir(), 'strata-bench-apply-'));
  let mounted = false;
  try {
    mount('tmpfs', mnt, 'tmpfs', 0, 'size=2g,mode=0755');
    mounted = true;
    const layout = join(mnt, 'layout');
    mkdirSync(layout);
    execFileSync('tar', ['-xf', corpusImage(IMAGE), '-C', layout]);
    const layers = layersOf(layout);
    const ours: number[] = [];
    const theirs: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const a = join(mnt, `strata-${i}`);
      ours.push(await strata(layers, a));
      rmSync(a, { recursive: true, force: true });
      const b = join(mnt, `tar-${i}`);
      theirs.push(gnuTar(layers, b));
      rmSync(b, { recursive: true, force: true });
    }
    const fmt = (xs: number[]) => xs.map((x) => x.toFixed(3)).join(' ');
    console.log(`apply ${IMAGE} (${layers.length} layers) on tmpfs, ${RUNS} runs alternating`);
    console.log(`  strata applyLayer  median ${median(ours).toFixed(3)} s   (${fmt(ours)})`);
    console.log(`  GNU tar -xzf       median ${median(theirs).toFixed(3)} s   (${fmt(theirs)})`);
    console.log(`  strata / GNU tar   ${(median(ours) / median(theirs)).toFixed(2)}`);
  } finally {
    if (mounted) umount2(mnt, MNT_DETACH);
    rmSync(mnt, { recursive: true, force: true });
  }
}
