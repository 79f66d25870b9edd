// The files Docker puts in a container's `-init` layer (daemon/initlayer): mount points and
// files that the runtime bind-mounts over, so they exist whatever the image holds.
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';

const INIT_ENTRIES: [path: string, kind: 'dir' | 'file' | { symlink: string }][] = [
  ['/dev/pts', 'dir'],
  ['/dev/shm', 'dir'],
  ['/proc', 'dir'],
  ['/sys', 'dir'],
  ['/.dockerenv', 'file'],
  ['/etc/resolv.conf', 'file'],
  ['/etc/hosts', 'file'],
  ['/etc/hostname', 'file'],
  ['/dev/console', 'file'],
  ['/etc/mtab', { symlink: '/proc/mounts' }],
];

async function exists(p: string): Promise<boolean> {
  try {
    await fsp.lstat(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * Create the init entries under `root` (the mounted init layer) where the image lacks them,
 * as Docker does: parents 0755, files and dirs 0755, owned by root. A parent that exists as a
 * symlink in the image is left alone (the entry is skipped) so nothing is written through it.
 */
export async function setupInitLayer(root: string): Promise<void> {
  for (const [path, kind] of INIT_ENTRIES) {
    const parts = path.split('/').filter(Boolean);
    let cur = root;
    let blocked = false;
    for (const part of parts.slice(0, -1)) {
      cur = join(cur, part);
      let st;
      try {
        st = await fsp.lstat(cur);
      } catch {
        await fsp.mkdir(cur, { mode: 0o755 });
        continue;
      }
      if (!st.isDirectory()) {
        blocked = true;
        break;
      }
    }
    if (blocked) continue;
    const target = join(root, ...parts);
    if (await exists(target)) continue;
    if (kind === 'dir') {
      await fsp.mkdir(target, { mode: 0o755 });
      await fsp.chmod(target, 0o755);
    } else if (kind === 'file') {
      const fh = await fsp.open(target, 'wx', 0o755);
      await fh.close();
      await fsp.chmod(target, 0o755);
    } else {
      await fsp.symlink(kind.symlink, target);
    }
  }
}
