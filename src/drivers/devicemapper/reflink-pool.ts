// The pool behind the devicemapper driver when the kernel has no dm-thin: sparse device image
// files whose snapshots are reflinks (FICLONE), so a snapshot shares every block with its
// origin until one side writes it: allocate-on-demand and copy-on-write at block level, as a
// thin pool does.
//
// The images live on an XFS filesystem with reflink, which is either the store's own filesystem
// (when it can reflink) or a sparse `devicemapper/devicemapper/data` file formatted as XFS and
// loop-mounted at `devicemapper/pool` while some process works on it. The mount is shared by
// processes: each holds a shared flock on `.pool.busy` while it works, and whoever finds no
// holder and no device mounted unmounts it (the loop device goes with it: autoclear).
import { closeSync, existsSync, openSync, realpathSync, statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { mkdir, open, rename, rm, truncate } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { flock, ficlone, LOCK_EX, LOCK_UN, mount, statfs, tryFlock, umount2 } from '../../sys/linux.js';
import { attachLoop, listLoops, openAttachedLoop } from '../../sys/loop.js';
import { isMountPoint, mountsUnder } from '../../sys/mountinfo.js';
import { runTool } from '../../sys/run.js';
import { DriverError } from '../driver.js';
import { PoolLease } from './lease.js';
import { fault } from '../../sys/fault.js';

/** Where the reflink pool's images are: a loop-mounted XFS data file, or the store's own filesystem. */
export type ReflinkBackend = 'reflink-loop' | 'reflink-dir';

/** Whether files in dir can share blocks (FICLONE works there). */
export async function canReflink(dir: string): Promise<boolean> {
  const a = join(dir, `.reflink-probe-${process.pid}-a`);
  const b = join(dir, `.reflink-probe-${process.pid}-b`);
  try {
    const fa = await open(a, 'w');
    await fa.write(Buffer.alloc(4096, 1));
    await fa.close();
    const src = openSync(a, 'r');
    const dst = openSync(b, 'w');
    try {
      ficlone(dst, src);
      return true;
    } catch {
      return false;
    } finally {
      closeSync(src);
      closeSync(dst);
    }
  } finally {
    await rm(a, { force: true });
    await rm(b, { force: true });
  }
}

/** Clone src to dst (which must not exist) sharing all blocks; the file appears whole or not at all. */
export async function cloneFile(src: string, dst: string): Promise<void> {
  const tmp = `${dst}.tmp`;
  await rm(tmp, { force: true });
  const s = openSync(src, 'r');
  try {
    const d = openSync(tmp, 'wx', 0o600);
    try {
      ficlone(d, s);
    } finally {
      closeSync(d);
    }
  } catch (err) {
    await rm(tmp, { force: true });
    throw new DriverError(`devicemapper: cannot reflink ${src}: ${(err as Error).message}`);
  } finally {
    closeSync(s);
  }
  await rename(tmp, dst);
  fault('rename');
}

export interface PoolSpace {
  used: number;
  total: number;
  available: number;
  blockSize: number;
}

export class ReflinkPool {
  /** Where the device images are (the XFS mount, or a plain dir on a reflink filesystem). */
  readonly dir: string;
  readonly dataFile: string;
  private readonly lockFile: string;
  private readonly lease: PoolLease;

  constructor(
    private readonly home: string,
    readonly backend: ReflinkBackend,
    private readonly dataSize: number,
    /** Mount points of devices: while any is mounted the pool must stay. */
    private readonly deviceMounts: string,
  ) {
    this.dir = join(home, 'pool');
    this.dataFile = join(home, 'devicemapper', 'data');
    this.lease = new PoolLease(home, () => this.ensureMounted(), (fd) => this.unmountIfIdle(fd));
    this.lockFile = join(home, '.pool.lock');
  }

  /** Run fn with the pool available; the pool may go away after the last user leaves. */
  async use<T>(fn: (dir: string) => Promise<T>): Promise<T> {
    return this.lease.use(() => fn(this.dir));
  }

  /**
   * Unmount the pool when no process is working on it and no device is mounted. Synchronous,
   * so nothing in this process can start using the pool half way.
   */
  unmountIfIdle(busyFd?: number): boolean {
    if (this.backend !== 'reflink-loop' || this.lease.active || !isMountPoint(this.dir)) return false;
    if (mountsUnder(this.deviceMounts).length > 0) return false;
    const lock = openSync(this.lockFile, 'a', 0o600);
    const busy = busyFd ?? openSync(this.lease.busyFile, 'a', 0o600);
    try {
      if (!tryFlock(lock, LOCK_EX)) return false;
      if (!tryFlock(busy, LOCK_EX)) return false;
      if (!isMountPoint(this.dir) || mountsUnder(this.deviceMounts).length > 0) return false;
      try {
        umount2(this.dir, 0);
      } catch (err) {
        // A device image still attached (e.g. a mount being made right now): leave it.
        if ((err as NodeJS.ErrnoException).code === 'EBUSY') return false;
        throw err;
      }
      return true;
    } finally {
      tryFlock(busy, LOCK_UN);
      if (busyFd === undefined) closeSync(busy);
      tryFlock(lock, LOCK_UN);
      closeSync(lock);
    }
  }

  private async ensureMounted(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    if (this.backend === 'reflink-dir' || isMountPoint(this.dir)) return;
    const lock = openSync(this.lockFile, 'a', 0o600);
    try {
      if (!tryFlock(lock, LOCK_EX)) await flock(lock, LOCK_EX);
      if (isMountPoint(this.dir)) return;
      if (!existsSync(this.dataFile)) await this.format();
      await this.mountData();
    } finally {
      tryFlock(lock, LOCK_UN);
      closeSync(lock);
    }
  }

  /**
   * Mount the data file at dir. The pool's filesystem can outlive its unmount here: a mount
   * namespace made while it was mounted (runc's, pasta's) holds it until the namespace's last
   * process is gone, and the kernel finishes that asynchronously. XFS refuses a second instance
   * of the same filesystem on another loop device (duplicate UUID: EINVAL), so the device still
   * attached is mounted again when there is one, and a dying instance is waited for.
   */
  private async mountData(): Promise<void> {
    const file = realpathSync(this.dataFile);
    const deadline = Date.now() + 15_000;
    for (;;) {
      const loop = openAttachedLoop(file) ?? attachLoop(file);
      try {
        // discard: space freed in the pool is punched out of the sparse data file.
        mount(loop.device, this.dir, 'xfs', 0, 'discard');
        return;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        const stillAlive = listLoops().some((l) => l.backingFile === file && l.device !== loop.device);
        if (code !== 'EINVAL' || !stillAlive) throw err;
        if (Date.now() > deadline) {
          throw new DriverError(`devicemapper: the pool ${file} is still in use by another mount of it that does not go away (a mount namespace holding it?)`);
        }
      } finally {
        closeSync(loop.fd);
      }
      await sleep(50);
    }
  }

  /** Make the sparse data file and put XFS with reflink on it (once). */
  private async format(): Promise<void> {
    await mkdir(dirname(this.dataFile), { recursive: true, mode: 0o700 });
    const tmp = `${this.dataFile}.tmp`;
    await rm(tmp, { force: true });
    const fh = await open(tmp, 'wx', 0o600);
    await fh.close();
    await truncate(tmp, this.dataSize);
    // -K: no discard of a file that is all holes anyway.
    await runTool('mkfs.xfs', ['-q', '-K', '-m', 'reflink=1', tmp]);
    await rename(tmp, this.dataFile);
    fault('rename');
  }

  /** Data space, as Docker's loop-lvm reported it: blocks allocated to the data file. */
  space(): PoolSpace {
    if (this.backend === 'reflink-loop' && !existsSync(this.dataFile)) {
      const host = statfs(this.home);
      const hostFree = Number(host.blocksAvail) * host.blockSize;
      return { used: 0, total: this.dataSize, available: Math.min(this.dataSize, hostFree), blockSize: 4096 };
    }
    if (this.backend === 'reflink-loop') {
      const st = statSync(this.dataFile);
      const host = statfs(dirname(this.dataFile));
      const used = st.blocks * 512;
      const total = st.size;
      const hostFree = Number(host.blocksAvail) * host.blockSize;
      return { used, total, available: Math.max(0, Math.min(total - used, hostFree)), blockSize: 4096 };
    }
    const where = existsSync(this.dir) ? this.dir : this.home;
    const s = statfs(where);
    const total = Number(s.blocks) * s.blockSize;
    return {
      used: total - Number(s.blocksFree) * s.blockSize,
      total,
      available: Number(s.blocksAvail) * s.blockSize,
      blockSize: s.blockSize,
    };
  }
}
