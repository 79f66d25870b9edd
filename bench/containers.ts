// Container benchmark: for each storage driver this machine can run, load corpus/nginx, create
// 100 containers and report the time per create and the disk they add (du of the store root);
// then `load` of nginx on overlay2 with parallel and with one-by-one extraction (alternating,
// medians). btrfs and zfs get a loop-mounted btrfs image and a zfs-fuse pool of their own.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Store } from '../src/store/store.js';
import { MNT_DETACH, statfs, umount2 } from '../src/sys/linux.js';
import { mountsUnder } from '../src/sys/mountinfo.js';
import { corpusImage } from '../test/helpers/env.js';
import { makeBtrfs, makeZfsPool, type ScratchFs } from '../test/helpers/fsimages.js';
import { median } from './measure.js';

export const name = 'containers';

const COUNT = Number(process.env.BENCH_CONTAINERS ?? 100);
const LOAD_RUNS = Math.max(3, Number(process.env.BENCH_RUNS ?? 3));

/**
 * Disk used by a store root. btrfs subvolumes and zfs datasets are filesystems of their own
 * (du -x stops at them, and du cannot see shared blocks), so there the filesystem's own used
 * space counts; elsewhere du of the root.
 */
function usedBytes(dir: string, wholeFs: boolean): number {
  if (wholeFs) {
    execFileSync('sync');
    const s = statfs(dir);
    return Number((s.blocks - s.blocksFree) * BigInt(s.blockSize));
  }
  return Number(execFileSync('du', ['-s', '--block-size=1', '-x', dir], { encoding: 'utf8' }).split('\t')[0]);
}

function release(dir: string): void {
  for (const m of mountsUnder(dir).sort((a, b) => b.length - a.length)) {
    try {
      umount2(m, MNT_DETACH);
    } catch {
      // gone already
    }
  }
}

interface Row {
  driver: string;
  createMs: number;
  imageBytes: number;
  addedBytes: number;
}

async function measure(driver: string, base: string, wholeFs = false): Promise<Row> {
  const root = join(base, `root-${driver}`);
  const store = await Store.open({ root, driver });
  try {
    const [img] = await store.load(corpusImage('nginx.oci.tar'));
    const before = usedBytes(wholeFs ? base : root, wholeFs);
    const t0 = process.hrtime.bigint();
    const ids: string[] = [];
    for (let i = 0; i < COUNT; i++) ids.push((await store.createContainer(img.id)).id);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const after = usedBytes(wholeFs ? base : root, wholeFs);
    for (const id of ids) await store.removeContainer(id);
    await store.removeImage(img.id, { force: true });
    return { driver, createMs: ms / COUNT, imageBytes: before, addedBytes: after - before };
  } finally {
    await store.driver.cleanup();
    await store.close();
    release(root);
    rmSync(root, { recursive: true, force: true });
  }
}

async function loadTime(base: string, parallel: boolean, i: number): Promise<number> {
  const root = join(base, `load-${parallel ? 'par' : 'ser'}-${i}`);
  const store = await Store.open({ root, driver: 'overlay2', parallelExtract: parallel ? 3 : 1 });
  try {
    const t0 = process.hrtime.bigint();
    await store.load(corpusImage('nginx.oci.tar'));
    return Number(process.hrtime.bigint() - t0) / 1e6;
  } finally {
    await store.close();
  }
}

const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;

export async function run(): Promise<void> {
  // Not under /tmp: / is what users have; du -x stays on it.
  const base = mkdtempSync('/var/tmp/strata-bench-containers-');
  const extra: ScratchFs[] = [];
  try {
    const rows: Row[] = [];
    for (const driver of ['overlay2', 'fuse-overlayfs', 'vfs', 'aufs', 'devicemapper']) {
      try {
        rows.push(await measure(driver, base));
      } catch (err) {
        console.log(`${driver}: skipped (${(err as Error).message})`);
      }
    }
    for (const [driver, make] of [
      ['btrfs', () => makeBtrfs(8192)],
      ['zfs', () => makeZfsPool(8192)],
    ] as const) {
      try {
        const fs = make();
        extra.push(fs);
        rows.push(await measure(driver, fs.mountPoint, true));
      } catch (err) {
        console.log(`${driver}: skipped (${(err as Error).message})`);
      }
    }
    console.log(`\n${COUNT} containers of corpus/nginx per driver (store root du before/after):`);
    console.log('driver          create/container   image on disk   added by containers   added / image');
    for (const r of rows) {
      console.log(
        `${r.driver.padEnd(16)}${`${r.createMs.toFixed(1)} ms`.padEnd(19)}${mib(r.imageBytes).padEnd(16)}${mib(r.addedBytes).padEnd(22)}${((100 * r.addedBytes) / r.imageBytes).toFixed(2)}%`,
      );
    }

    // Parallel vs serial extraction, alternating so the filesystem's delayed discards fall on both.
    const par: number[] = [];
    const ser: number[] = [];
    for (let i = 0; i < LOAD_RUNS; i++) {
      par.push(await loadTime(base, true, i));
      ser.push(await loadTime(base, false, i));
    }
    const p = median(par);
    const s = median(ser);
    console.log(`\nload of corpus/nginx on overlay2 (median of ${LOAD_RUNS}):`);
    console.log(`  parallel extraction (3 at once): ${p.toFixed(0)} ms`);
    console.log(`  serial extraction:               ${s.toFixed(0)} ms`);
    console.log(`  parallel / serial:               ${(p / s).toFixed(2)}`);
  } finally {
    release(base);
    rmSync(base, { recursive: true, force: true });
    for (const fs of extra) fs.teardown();
  }
}
