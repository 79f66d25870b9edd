// Deep-image benchmark: an image of 500 layers (each a tar of one file) is made through the
// library, pushed to a local docker-registry, then pulled by the CLI into a fresh root and a
// container created from it, then mounted (`strata mount`: a container's read-write layer sits
// on its init layer and every image layer, 502 lower dirs, past the kernel's 500, so overlay2
// mounts the deepest 500 as one read-only stack). Issue #13 asks that such an image pulls and
// creates. BENCH_DEEP_LAYERS sets the depth (up to 997: a container then has 999 lowers).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hostPlatform } from '../src/image/platform.js';
import { Store } from '../src/store/store.js';
import { strataBin } from '../test/helpers/env.js';
import { unmountAllUnder } from '../test/helpers/mounts.js';
import { fileCleanup, overlay2Available, startRegistry } from '../test/helpers/registry.js';
import { measure } from './measure.js';

export const name = 'deep';

const LAYERS = Number(process.env.BENCH_DEEP_LAYERS ?? 500);

/** LAYERS tar files, layer i holding /layers/i, made with GNU tar. */
function layerTars(dir: string): string[] {
  const files: string[] = [];
  for (let i = 0; i < LAYERS; i++) {
    const src = join(dir, `src-${i}`);
    mkdirSync(join(src, 'layers'), { recursive: true });
    writeFileSync(join(src, 'layers', String(i)), `${i}\n`);
    const tar = join(dir, `layer-${i}.tar`);
    execFileSync('tar', ['--numeric-owner', '--owner=0', '--group=0', '--mtime=@0', '-C', src, '-cf', tar, 'layers']);
    files.push(tar);
  }
  return files;
}

export async function run(): Promise<void> {
  const dir = mkdtempSync('/var/tmp/strata-bench-deep-');
  const cleanup = fileCleanup();
  const driver = (await overlay2Available()) ? 'overlay2' : 'vfs';
  try {
    const reg = await startRegistry(cleanup.add);
    const ref = `${reg.host}/bench/deep:latest`;
    const tars = layerTars(join(dir, 'tars'));
    const plat = hostPlatform();
    const diffIds = tars.map((f) => `sha256:${createHash('sha256').update(readFileSync(f)).digest('hex')}`);
    const config = { architecture: plat.architecture, os: plat.os, config: { Cmd: ['/bin/true'] }, rootfs: { type: 'layers', diff_ids: diffIds } };
    const maker = await Store.open({ root: join(dir, 'maker'), driver });
    const t0 = Date.now();
    try {
      await maker.importImage({
        config: Buffer.from(JSON.stringify(config)),
        layers: tars.map((f) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', open: async () => createReadStream(f) })),
        names: [ref],
      });
      await maker.push(ref);
    } finally {
      await maker.driver.cleanup();
      await maker.close();
    }
    console.log(`  made and pushed a ${LAYERS}-layer image in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const cli = (...args: string[]) => [process.execPath, strataBin, '--root', join(dir, 'fresh'), '--driver', driver, ...args];
    const pulled = measure(cli('pull', '-q', ref), 'pull');
    console.log(`\n${LAYERS}-layer image on ${driver}, into a fresh root:`);
    console.log(`  pull:   ${pulled.wall.toFixed(2)} s (CPU ${pulled.cpu.toFixed(2)} s, peak RSS ${(pulled.peakRss / 1024 / 1024).toFixed(0)} MiB)`);
    const created = measure(cli('create', '--name', 'deep', ref), 'create');
    console.log(`  create: ${created.wall.toFixed(2)} s (CPU ${created.cpu.toFixed(2)} s)`);
    const mounted = measure(cli('mount', 'deep'), 'mount');
    console.log(`  mount:  ${mounted.wall.toFixed(2)} s (CPU ${mounted.cpu.toFixed(2)} s)`);
    const unmounted = measure(cli('umount', 'deep'), 'umount');
    console.log(`  umount: ${unmounted.wall.toFixed(2)} s`);
  } finally {
    await cleanup.run();
    unmountAllUnder(dir);
    rmSync(dir, { recursive: true, force: true });
  }
}
