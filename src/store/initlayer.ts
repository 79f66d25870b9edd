// The files Docker puts in a container's `-init` layer (daemon/initlayer): mount points and
// files that the runtime bind-mounts over, so they exist whatever the image holds. They are
// written through the layer's view: its mounted root, or, where the driver can write a layer
// without mounting it (overlay2), its own directory.
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import type { LayerFiles } from '../drivers/driver.js';

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

/** The view of a mounted layer rooted at `root`. */
export function filesAt(root: string): LayerFiles {
  return {
    lstat: (rel) => fsp.lstat(join(root, rel)).catch(() => undefined),
    mkdir: (rel, mode) => fsp.mkdir(join(root, rel), { mode }).then(() => undefined),
    createFile: async (rel, mode) => (await fsp.open(join(root, rel), 'wx', mode)).close(),
    chmod: (rel, mode) => fsp.chmod(join(root, rel), mode),
    symlink: (target, rel) => fsp.symlink(target, join(root, rel)),
  };
}

/**
 * Create the init entries in the layer where the image lacks them, as Docker does: parents
 * 0755, files and dirs 0755, owned by root. A parent that exists as a symlink in the image is
 * left alone (the entry is skipped) so nothing is written through it.
 */
export async function setupInitLayer(files: LayerFiles): Promise<void> {
  for (const [path, kind] of INIT_ENTRIES) {
    const parts = path.split('/').filter(Boolean);
    let blocked = false;
    for (let i = 1; i < parts.length; i++) {
      const rel = parts.slice(0, i).join('/');
      const st = await files.lstat(rel);
      if (st === undefined) {
        await files.mkdir(rel, 0o755);
        continue;
      }
      if (!st.isDirectory()) {
        blocked = true;
        break;
      }
    }
    if (blocked) continue;
    const rel = parts.join('/');
    if ((await files.lstat(rel)) !== undefined) continue;
    if (kind === 'dir') {
      await files.mkdir(rel, 0o755);
      await files.chmod(rel, 0o755);
    } else if (kind === 'file') {
      await files.createFile(rel, 0o755);
      await files.chmod(rel, 0o755);
    } else {
      await files.symlink(kind.symlink, rel);
    }
  }
}
