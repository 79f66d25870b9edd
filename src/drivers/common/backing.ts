// Where a store root will live before it exists: the filesystem of its nearest existing
// ancestor decides whether btrfs or zfs can keep layers there.
import { existsSync, statSync } from 'node:fs';
import { dirname, resolve, sep } from 'node:path';
import { FS_MAGIC, supportsDType } from '../../sys/fsprobe.js';
import { statfsType } from '../../sys/linux.js';
import { readMounts, type MountEntry } from '../../sys/mountinfo.js';
import { cachedProbeSync, probeCache } from './probe-cache.js';

/** path itself when it exists, else its closest existing ancestor. */
export function nearestExisting(path: string): string {
  let p = resolve(path);
  while (!existsSync(p)) {
    const up = dirname(p);
    if (up === p) break;
    p = up;
  }
  return p;
}

/** The mount that holds path (the longest mount point at or above it), from mountinfo. */
export function mountOf(path: string): MountEntry | null {
  const p = resolve(path);
  let best: MountEntry | null = null;
  for (const m of readMounts()) {
    const at = m.mountPoint === '/' ? '/' : m.mountPoint + sep;
    if (p !== m.mountPoint && !p.startsWith(at)) continue;
    // Later lines win at equal length: a mount over another hides it.
    if (!best || m.mountPoint.length >= best.mountPoint.length) best = m;
  }
  return best;
}

/**
 * The ZFS dataset holding path, or null when path is not on ZFS. The kernel module reports
 * the ZFS magic; zfs-fuse mounts are FUSE mounts whose type mountinfo names `fuse.zfs`.
 */
export function zfsDatasetOf(path: string): { dataset: string; mountPoint: string } | null {
  const at = nearestExisting(path);
  const magic = statfsType(at);
  if (magic !== FS_MAGIC.zfs && magic !== FS_MAGIC.fuse) return null;
  const m = mountOf(at);
  if (!m || (m.fsType !== 'zfs' && m.fsType !== 'fuse.zfs')) return null;
  return { dataset: m.source, mountPoint: m.mountPoint };
}

/**
 * supportsDType(dir) for a driver of the store at root, kept in the root's probe cache while dir
 * is the same directory (device, inode) on the same kind of filesystem: the probe loads the FFI,
 * which commands that only read the store otherwise never need.
 */
export function dTypeSupported(root: string, dir: string): boolean {
  let key: string;
  try {
    const st = statSync(dir, { bigint: true });
    key = `${st.dev} ${st.ino} ${statfsType(dir)}`;
  } catch {
    return supportsDType(dir);
  }
  return cachedProbeSync(probeCache(root), `d_type ${dir}`, key, () => supportsDType(dir));
}
