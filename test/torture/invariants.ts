// What must hold of a store once a command has opened it after a crash, read from the outside
// (the database file, the driver's directories, /proc) rather than through strata's own view:
// no layer or container left half-made, no driver data the database does not know, no mount,
// loop device or process left behind.
import Database from 'better-sqlite3';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join, sep } from 'node:path';
import { loopsUnder } from '../../src/drivers/devicemapper/devicemapper.js';
import { mountsUnder } from '../../src/sys/mountinfo.js';

export interface Problem {
  /** One word that the summary counts by: partial, orphan, mount-leak, loop-leak, process-leak. */
  kind: string;
  detail: string;
}

/**
 * Where each driver keeps one entry per layer, and the entries there that are not layers.
 * aufs keeps three; devicemapper one metadata file per device beside its pool records.
 */
const LAYER_DIRS: Record<string, { dir: string; fixed: string[] }[]> = {
  vfs: [{ dir: 'vfs/dir', fixed: [] }],
  btrfs: [{ dir: 'btrfs/subvolumes', fixed: [] }],
  zfs: [{ dir: 'zfs/graph', fixed: [] }],
  overlay2: [{ dir: 'overlay2', fixed: ['l'] }],
  'fuse-overlayfs': [{ dir: 'fuse-overlayfs', fixed: ['l'] }],
  aufs: [
    { dir: 'aufs/diff', fixed: [] },
    { dir: 'aufs/layers', fixed: [] },
    { dir: 'aufs/mnt', fixed: [] },
  ],
  devicemapper: [{ dir: 'devicemapper/metadata', fixed: ['base', 'deviceset-metadata', 'transaction-metadata'] }],
};

/** Rows of the store's database, read-only (the store must have been opened once). */
function dbRows<T>(root: string, sql: string): T[] {
  const db = new Database(join(root, 'strata.db'), { readonly: true, fileMustExist: true, timeout: 60_000 });
  try {
    return db.prepare(sql).all() as T[];
  } finally {
    db.close();
  }
}

export function layerIds(root: string): Set<string> {
  return new Set(dbRows<{ id: string }>(root, 'SELECT id FROM layers').map((r) => r.id));
}

/** Every check below; an empty list means the store is as a crash-safe store must be. */
export function storeProblems(root: string, driver: string, zfsDataset?: string): Problem[] {
  return [...dbProblems(root), ...orphanProblems(root, driver, zfsDataset), ...leakProblems(root)];
}

/** Layers or containers that are not complete (nobody is running, so nobody owns them). */
export function dbProblems(root: string): Problem[] {
  const out: Problem[] = [];
  for (const l of dbRows<{ id: string; state: string }>(root, "SELECT id, state FROM layers WHERE state != 'complete'")) {
    out.push({ kind: 'partial', detail: `layer ${l.id.slice(0, 12)} is ${l.state}` });
  }
  for (const c of dbRows<{ id: string; state: string }>(root, "SELECT id, state FROM containers WHERE state != 'created'")) {
    out.push({ kind: 'partial', detail: `container ${c.id.slice(0, 12)} is ${c.state}` });
  }
  return out;
}

// Every layer some image or container stands on: their top layers and all their parents.
const UNUSED_LAYERS = `
WITH RECURSIVE used(id) AS (
  SELECT top_layer FROM images WHERE top_layer IS NOT NULL
  UNION SELECT init_layer FROM containers
  UNION SELECT layer FROM containers
  UNION SELECT l.parent FROM layers l JOIN used u ON l.id = u.id WHERE l.parent IS NOT NULL
)
SELECT id FROM layers WHERE id NOT IN (SELECT id FROM used)`;

/**
 * Layers no image or container uses (nothing would ever remove them), and driver data for
 * layers the database does not list (zfs datasets likewise).
 */
export function orphanProblems(root: string, driver: string, zfsDataset?: string): Problem[] {
  const known = layerIds(root);
  const out: Problem[] = [];
  for (const l of dbRows<{ id: string }>(root, UNUSED_LAYERS)) out.push({ kind: 'orphan', detail: `layer ${l.id.slice(0, 12)} is used by no image or container` });
  for (const { dir, fixed } of LAYER_DIRS[driver] ?? []) {
    const full = join(root, dir);
    if (!existsSync(full)) continue;
    for (const name of readdirSync(full)) {
      if (fixed.includes(name) || known.has(name) || name.startsWith('.')) continue;
      out.push({ kind: 'orphan', detail: `${dir}/${name}` });
    }
  }
  if (zfsDataset) {
    const children = execFileSync('zfs', ['list', '-H', '-o', 'name', '-r', '-d', '1', zfsDataset], { encoding: 'utf8' })
      .split('\n')
      .filter((n) => n.startsWith(`${zfsDataset}/`));
    for (const ds of children) {
      if (!known.has(ds.slice(zfsDataset.length + 1))) out.push({ kind: 'orphan', detail: `dataset ${ds}` });
    }
  }
  return out;
}

/** Mounts below the root, loop devices backed by files below it, processes working in it. */
export function leakProblems(root: string): Problem[] {
  const out: Problem[] = [];
  for (const mp of mountsUnder(root)) out.push({ kind: 'mount-leak', detail: mp });
  for (const dev of loopsUnder(root)) out.push({ kind: 'loop-leak', detail: dev });
  for (const p of processesUsing(root)) out.push({ kind: 'process-leak', detail: p });
  return out;
}

/** Other processes whose working directory or command line is inside root: "pid comm". */
export function processesUsing(root: string): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(pid) || Number(pid) === process.pid) continue;
    try {
      const cwd = readlinkSync(`/proc/${pid}/cwd`);
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (cwd === root || cwd.startsWith(root + sep) || cmdline.some((a) => a.includes(root + sep) || a === root)) {
        out.push(`${pid} ${cmdline.join(' ').trim().slice(0, 160)}`);
      }
    } catch {
      // exited meanwhile, or a kernel thread
    }
  }
  return out;
}
