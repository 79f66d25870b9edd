// Where each driver's stores live during a torture run, and how a store is thrown away whatever
// state a crash left it in: btrfs on a loop image, zfs on a zfs-fuse pool (one dataset per
// store, so a store's layer datasets go with it), the others in a scratch dir on the root
// filesystem (devicemapper makes its own XFS loop image inside the store).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loopsUnder } from '../../src/drivers/devicemapper/devicemapper.js';
import { MNT_DETACH, umount2 } from '../../src/sys/linux.js';
import { mountsUnder } from '../../src/sys/mountinfo.js';
import { makeBtrfs, makeZfsPool, type ScratchFs } from '../helpers/fsimages.js';

/** Every driver the harness knows, in the order it runs them. */
export const ALL_DRIVERS = ['vfs', 'overlay2', 'btrfs', 'fuse-overlayfs', 'aufs', 'zfs', 'devicemapper'] as const;

export interface Rig {
  driver: string;
  /** A new empty store root (not yet opened). */
  newRoot(label: string): string;
  /** Unmount, detach and delete everything of a store, sound or not. */
  destroyRoot(root: string): void;
  /** zfs: the dataset holding a store's layer datasets. */
  dataset(root: string): string | undefined;
  /** Undo the rig itself (the loop filesystem or pool); safe to call twice. */
  teardown(): void;
}

/** Deepest first, lazily when a plain unmount is refused (a killed FUSE helper's mount). */
export function unmountUnder(dir: string): void {
  for (const mp of mountsUnder(dir)) {
    try {
      umount2(mp);
    } catch {
      try {
        umount2(mp, MNT_DETACH);
      } catch {
        // gone meanwhile
      }
    }
  }
}

function detachLoopsUnder(dir: string): void {
  for (const dev of loopsUnder(dir)) {
    try {
      execFileSync('losetup', ['-d', dev], { stdio: 'pipe' });
    } catch {
      // autoclear got there first
    }
  }
}

export function makeRig(driver: string): Rig {
  let fs: ScratchFs | null = null;
  let base: string;
  let pool: string | null = null;
  if (driver === 'btrfs') {
    fs = makeBtrfs(4096);
    base = fs.mountPoint;
  } else if (driver === 'zfs') {
    const z = makeZfsPool(4096);
    fs = z;
    pool = z.pool;
    base = z.mountPoint;
  } else {
    base = mkdtempSync(join(tmpdir(), `strata-torture-${driver}-`));
  }
  const roots = new Set<string>();
  const dataset = (root: string) => (pool ? `${pool}/${root.slice(base.length + 1)}` : undefined);
  let n = 0;
  const destroyRoot = (root: string) => {
    // zfs-fuse's own mounts go through its daemon first; unmounting them behind its back
    // leaves it thinking the datasets are still mounted (busy).
    if (pool) {
      for (const mp of mountsUnder(root)) {
        try {
          execFileSync('zfs', ['unmount', '-f', mp], { stdio: 'pipe' });
        } catch {
          // not a zfs mount: the plain unmount below takes it
        }
      }
    }
    unmountUnder(root);
    detachLoopsUnder(root);
    if (pool) {
      // The store's dataset and every layer dataset below it.
      const ds = dataset(root)!;
      // zfs-fuse can take a moment to let go of a dataset it has just unmounted.
      for (let attempt = 1; ; attempt++) {
        try {
          execFileSync('zfs', ['destroy', '-r', '-f', ds], { stdio: 'pipe' });
          break;
        } catch (err) {
          const said = String((err as { stderr?: Buffer }).stderr ?? '').trim();
          if (/does not exist/.test(said)) break;
          if (!/busy/.test(said) || attempt >= 40) throw new Error(`zfs destroy -r -f ${ds}: ${said}`);
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 250);
        }
      }
    }
    rmSync(root, { recursive: true, force: true });
    roots.delete(root);
  };
  let done = false;
  const teardown = () => {
    if (done) return;
    done = true;
    for (const r of [...roots]) {
      try {
        destroyRoot(r);
      } catch {
        // the filesystem below goes next anyway
      }
    }
    if (fs) fs.teardown();
    else rmSync(base, { recursive: true, force: true });
  };
  process.on('exit', teardown);
  return {
    driver,
    newRoot(label) {
      const name = `${label}${n++}`;
      const root = join(base, name);
      if (pool) {
        execFileSync('zfs', ['create', '-o', `mountpoint=${root}`, `${pool}/${name}`], { stdio: 'pipe' });
      } else {
        mkdirSync(root);
      }
      roots.add(root);
      return root;
    },
    destroyRoot,
    dataset,
    teardown,
  };
}
