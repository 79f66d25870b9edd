// Turning a writable branch that fuse-overlayfs wrote into the form kernel aufs would have left.
//
// fuse-overlayfs honours aufs's in-band whiteouts (`.wh.<name>`, `.wh..wh..opq`) in every
// branch, but writes its own deletions in the kernel-overlay form: a 0/0 character device at the
// deleted name, and an opaque directory as the trusted.overlay.opaque=y xattr plus a
// `.wh..wh..opq` file plus a 0/0 device named `.wh..opq` (it marks every directory it creates
// opaque, even one no lower branch has). After it has unmounted, each of those becomes what aufs
// writes: `.wh.<name>` files, and `.wh..wh..opq` only in a directory that hides something below.
// The result reads the same through fuse-overlayfs, and the branch is then an aufs diff dir that
// aufsChanges and packDirectory(…, 'aufs') read as they are.
import type { Stats } from 'node:fs';
import { chown, lstat, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { lgetxattr, lremovexattr } from '../../sys/linux.js';
import { lstatOrNull } from '../../sys/errno.js';

const WH = '.wh.';
const OPQ = '.wh..wh..opq';
/** The name fuse-overlayfs gives the 0/0 device it uses as an opaque marker. */
const FUSE_OPQ_DEVICE = '.wh..opq';
const OPAQUE_XATTR = 'trusted.overlay.opaque';

function isOverlayWhiteout(st: Stats): boolean {
  return st.isCharacterDevice() && st.rdev === 0;
}

/** Whether some lower branch has a directory at rel (only then can an opaque marker hide anything). */
async function lowerHasDir(lowers: string[], rel: string): Promise<boolean> {
  for (const lower of lowers) {
    const st = lstatOrNull(join(lower, rel));
    if (st?.isDirectory()) return true;
  }
  return false;
}

/**
 * Rewrite fuse-overlayfs whiteouts under upper (not mounted) into aufs's in-band form.
 * lowers are the branch's lower diff dirs. Returns how many entries were rewritten.
 */
export async function aufsNormalize(upper: string, lowers: string[]): Promise<number> {
  let rewritten = 0;
  const visit = async (rel: string): Promise<void> => {
    const dir = rel === '' ? upper : join(upper, rel);
    const st = await lstat(dir);
    let opaque = false;
    // Marked by fuse-overlayfs (not just by an applied layer's `.wh..wh..opq`).
    let fuseOpaque = false;
    const xattr = lgetxattr(dir, OPAQUE_XATTR);
    if (xattr !== null) {
      lremovexattr(dir, OPAQUE_XATTR);
      rewritten++;
      if (xattr.toString() === 'y') opaque = fuseOpaque = true;
    }
    for (const name of await readdir(dir)) {
      const path = join(dir, name);
      const est = await lstat(path);
      if (name === OPQ && est.isFile()) {
        opaque = true;
        continue;
      }
      if (isOverlayWhiteout(est)) {
        await rm(path);
        rewritten++;
        if (name === FUSE_OPQ_DEVICE) {
          opaque = fuseOpaque = true;
          continue;
        }
        const marker = join(dir, WH + name);
        if (lstatOrNull(marker) === null) {
          await writeFile(marker, '', { mode: 0o444, flag: 'wx' });
          await chown(marker, est.uid, est.gid);
        }
        continue;
      }
      if (est.isDirectory()) await visit(rel === '' ? name : `${rel}/${name}`);
    }
    // The branch root is never marked: aufs has no opaque root, and a layer whose root hides
    // everything below it is written as whiteouts of each name instead.
    const marker = join(dir, OPQ);
    if (opaque && rel !== '' && (await lowerHasDir(lowers, rel))) {
      if (lstatOrNull(marker) === null) {
        await writeFile(marker, '', { mode: 0o444, flag: 'wx' });
        await chown(marker, st.uid, st.gid);
        rewritten++;
      }
    } else if (fuseOpaque && lstatOrNull(marker) !== null) {
      await rm(marker);
      rewritten++;
    }
  };
  await visit('');
  return rewritten;
}
