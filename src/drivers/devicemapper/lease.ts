// How processes share the devicemapper pool, whichever backend it is: each holds a shared flock
// on `.pool.busy` while it works; whoever gets it exclusively finds the pool idle and may take
// it down (unmount the reflink pool, remove a loop-lvm thin pool). Within one process the
// calls in flight share one lock.
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { flock, LOCK_SH, LOCK_UN, tryFlock } from '../../sys/linux.js';

export class PoolLease {
  readonly busyFile: string;
  private inflight = 0;
  private busy: { fd: number; ready: Promise<void> } | null = null;

  /**
   * @param prepare makes the pool available once the shared lock is held.
   * @param onIdle runs when this process's last call leaves, after the lock is dropped but
   *   while its fd is still open (a pool that unmounts itself re-locks through it).
   */
  constructor(
    home: string,
    private readonly prepare: () => Promise<void>,
    private readonly onIdle: (busyFd: number) => void = () => undefined,
  ) {
    this.busyFile = join(home, '.pool.busy');
  }

  /** Whether this process has calls using the pool right now. */
  get active(): boolean {
    return this.inflight > 0;
  }

  /** Run fn with the pool available; the pool may go away after the last user leaves. */
  async use<T>(fn: () => Promise<T>): Promise<T> {
    this.inflight++;
    try {
      if (this.busy === null) {
        const fd = openSync(this.busyFile, 'a', 0o600);
        const ready = (async () => {
          if (!tryFlock(fd, LOCK_SH)) await flock(fd, LOCK_SH);
          await this.prepare();
        })();
        this.busy = { fd, ready };
      }
      await this.busy.ready;
      return await fn();
    } finally {
      this.leave();
    }
  }

  private leave(): void {
    if (--this.inflight > 0 || this.busy === null) return;
    const { fd } = this.busy;
    this.busy = null;
    try {
      tryFlock(fd, LOCK_UN);
      this.onIdle(fd);
    } finally {
      closeSync(fd);
    }
  }
}
