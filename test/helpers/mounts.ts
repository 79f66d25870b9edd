// The one way tests undo mounts: whatever a test, a driver or a CLI process left mounted
// under a scratch directory, so the directory (and its loop devices) can go.
import { MNT_DETACH, umount2 } from '../../src/sys/linux.js';
import { isMountPoint, mountsUnder } from '../../src/sys/mountinfo.js';

/**
 * Unmount every mount below dir (and dir itself when it is a mount point), deepest first:
 * plainly when possible, so a loop device behind it is free at once, else lazily. Returns how
 * many there were.
 */
export function unmountAllUnder(dir: string): number {
  const mps = mountsUnder(dir);
  if (isMountPoint(dir)) mps.push(dir);
  for (const mp of mps) {
    try {
      umount2(mp, 0);
    } catch {
      try {
        umount2(mp, MNT_DETACH);
      } catch {
        // already gone (a parent's lazy unmount took it along)
      }
    }
  }
  return mps.length;
}
