// Fixtures for the overlay-family driver tests: driver roots whose mounts are always undone,
// corpus layers stacked in a driver, tree hashes, and child processes that use a driver.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGunzip } from 'node:zlib';
import type { Driver } from '../../src/drivers/driver.js';
import { readXattrs } from '../../src/sys/linux.js';
import { runToolSync } from '../../src/sys/run.js';
import { corpusImage, repoRoot } from '../helpers/env.js';
import { unmountAllUnder } from '../helpers/mounts.js';

const MiB = 1024 * 1024;

const liveRoots = new Set<string>();
process.on('exit', () => {
  for (const r of liveRoots) {
    unmountAllUnder(r);
    rmSync(r, { recursive: true, force: true });
  }
});

/**
 * A scratch store root (in parent, the temp dir unless told); its mounts are detached and it
 * is removed after the test (or at exit).
 */
export function driverRoot(t: { after(fn: () => void): void } | null, prefix = 'strata-ovl-', parent = tmpdir()): string {
  const dir = mkdtempSync(join(parent, prefix));
  liveRoots.add(dir);
  const clean = () => {
    unmountAllUnder(dir);
    rmSync(dir, { recursive: true, force: true });
    liveRoots.delete(dir);
  };
  if (t) t.after(clean);
  return dir;
}

/** The gzip layer blobs of a corpus OCI archive, bottom first, unpacked under dir. */
function corpusLayerBlobs(file: string, dir: string): string[] {
  runToolSync('tar', ['-xf', corpusImage(file), '-C', dir]);
  const blob = (digest: string) => join(dir, 'blobs', ...digest.split(':'));
  const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const manifest = JSON.parse(readFileSync(blob(index.manifests[0].digest), 'utf8')) as {
    layers: { digest: string; mediaType: string }[];
  };
  return manifest.layers.map((l) => {
    if (!l.mediaType.endsWith('+gzip')) throw new Error(`unexpected layer type ${l.mediaType}`);
    return blob(l.digest);
  });
}

/** The layers of a corpus OCI archive stored in d, each on the one before it; ids bottom first. */
export async function stackCorpusLayers(t: { after(fn: () => void): void }, d: Driver, file: string): Promise<string[]> {
  const ids: string[] = [];
  for (const blob of corpusLayerBlobs(file, driverRoot(t, 'strata-oci-'))) {
    const parent = ids.at(-1) ?? null;
    const id = randomBytes(32).toString('hex');
    await d.create(id, parent);
    await d.applyDiff(id, parent, createReadStream(blob, { highWaterMark: MiB }).pipe(createGunzip({ chunkSize: MiB })));
    ids.push(id);
  }
  return ids;
}

/** sha256 over a tree: names, types, modes, owners, sizes, contents, link targets, xattrs. */
export function hashTree(root: string): string {
  const h = createHash('sha256');
  const walk = (dir: string, rel: string) => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      const r = `${rel}/${name}`;
      const st = lstatSync(p, { bigint: true });
      h.update(`${r}\0${st.mode}\0${st.uid}\0${st.gid}\0${st.size}\0${st.rdev}\0`);
      for (const [k, v] of [...readXattrs(p)].sort(([a], [b]) => (a < b ? -1 : 1))) h.update(`x:${k}=`).update(v);
      if (st.isSymbolicLink()) h.update(`l:${readlinkSync(p)}`);
      else if (st.isFile()) h.update(readFileSync(p));
      else if (st.isDirectory()) walk(p, r);
    }
  };
  walk(root, '');
  return h.digest('hex');
}

/**
 * Run `node -e` in a child: the script gets `mod` (the compiled module at modPath, relative to
 * the repo's dist/) and `args`, and prints what it wants; returns stdout.
 */
export function runChild(modPath: string, body: string, args: string[]): string {
  return runToolSync(process.execPath, ['--input-type=module', '-e', childScript(modPath, body), ...args]).trim();
}

/** The script runChild runs: `mod` is dist/<modPath>, `args` the arguments. */
export function childScript(modPath: string, body: string): string {
  const url = new URL(`file://${join(repoRoot, 'dist', modPath)}`).href;
  return `const mod = await import(${JSON.stringify(url)}); const args = process.argv.slice(1);\n${body}`;
}

/** A chain of n layers written straight into their upper dirs; layer i holds f<i> and overwrites `top`; ids bottom first. */
export async function chain(d: Driver, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const id = randomBytes(32).toString('hex');
    await d.create(id, ids.at(-1) ?? null);
    const upper = (await d.metadata(id)).UpperDir;
    writeFileSync(join(upper, `f${i}`), String(i));
    writeFileSync(join(upper, 'top'), String(i));
    ids.push(id);
  }
  return ids;
}
