// The fuse-overlayfs program, which two drivers mount with: fuse-overlayfs itself and aufs
// (whose branches it serves when the kernel has no aufs). Whether it can run here, and one
// way to mount with it.
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { backingFsName, FS_MAGIC } from '../../sys/fsprobe.js';
import { statfsType } from '../../sys/linux.js';
import { isMountPoint } from '../../sys/mountinfo.js';
import { runTool } from '../../sys/run.js';
import { DriverError } from '../driver.js';
import { dTypeSupported, nearestExisting } from './backing.js';

export const FUSE_OVERLAYFS = 'fuse-overlayfs';

export function findProgram(name: string): string | null {
  for (const dir of (process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(delimiter)) {
    if (dir === '') continue;
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return null;
}

/** Why fuse-overlayfs cannot run with its data under root, or null when it can. */
export function fuseOverlayUnusable(root: string): string | null {
  if (findProgram(FUSE_OVERLAYFS) === null) return `the ${FUSE_OVERLAYFS} program is not installed`;
  if (!existsSync('/dev/fuse')) return '/dev/fuse is missing';
  try {
    accessSync('/dev/fuse', constants.R_OK | constants.W_OK);
  } catch {
    // Rootless: a host without udev may leave it root's alone.
    return '/dev/fuse may not be opened by this user (udev makes it 0666; as root: chmod 0666 /dev/fuse)';
  }
  let fs = '';
  try {
    fs = readFileSync('/proc/filesystems', 'utf8');
  } catch {
    // no /proc: let the mount itself fail later with its own message
  }
  if (fs !== '' && !/\tfuse$/m.test(fs)) return 'the kernel has no fuse filesystem';
  const at = nearestExisting(join(root, 'fuse-overlayfs'));
  if (statfsType(at) === FS_MAGIC.overlay) return `${at} is on overlayfs, which fuse-overlayfs cannot use as upper`;
  if (!dTypeSupported(root, at)) return `the backing filesystem of ${at} (${backingFsName(at)}) does not support d_type`;
  return null;
}

/**
 * Mount an overlay with the fuse-overlayfs program from cwd (relative lowerdirs in data are
 * resolved against it once). The program leaves its daemon behind, so stdout is not connected;
 * the host's mount options echo back as "unknown argument ignored", which is left out of errors.
 */
export async function mountFuseOverlay(program: string, data: string, mountPoint: string, cwd: string, who?: string): Promise<void> {
  await runTool(program, ['-o', data, mountPoint], { cwd, ignoreStdout: true, who, noise: /^unknown argument ignored/ });
  if (!isMountPoint(mountPoint)) throw new DriverError(`${who ? `${who}: ` : ''}${FUSE_OVERLAYFS} exited without mounting ${mountPoint}`);
}
