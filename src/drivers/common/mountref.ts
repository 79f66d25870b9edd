// Mount reference counts shared by every process using one driver home: `strata mount C` in
// one process and `strata umount C` in another must agree on when to unmount. Counts live in a
// JSON file guarded by flock(2); a count whose mount has vanished (reboot, someone else's
// umount) is taken as 0, so the state can never keep a layer "mounted" that is not. Each
// entry also records which processes took its references ("pid:starttime"), so that those a
// crashed process held can be dropped (the store knows its crashed processes): a reference
// left by a process that exited on purpose (`strata mount C`) stays until an umount.
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { flock, LOCK_EX, LOCK_UN, tryFlock } from '../../sys/linux.js';
import { isMountPoint } from '../../sys/mountinfo.js';
import { fault } from '../../sys/fault.js';
import type { Leftover } from '../driver.js';
import { processIdentity } from '../../sys/process.js';

interface Entry {
  mountPoint: string;
  count: number;
  /** References by the process that took them (absent in files written before holders were kept). */
  holders?: Record<string, number>;
}
type State = Record<string, Entry>;

export class MountRefs {
  private readonly stateFile: string;
  private readonly lockFile: string;
  // flock orders processes; this chain orders callers inside one process, so at most one
  // blocking flock waits on koffi's worker pool at a time.
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly dir: string, name = 'mountrefs') {
    this.stateFile = join(dir, `${name}.json`);
    this.lockFile = join(dir, `${name}.lock`);
  }

  /** Take one reference; runs doMount first when the mount is not there. Returns the new count. */
  acquire(key: string, mountPoint: string, doMount: () => Promise<void> | void): Promise<number> {
    return this.locked(async (state) => {
      const e = state[key];
      const same = e && e.mountPoint === mountPoint && isMountPoint(mountPoint);
      let count = same ? e.count : 0;
      if (count === 0 && !isMountPoint(mountPoint)) await doMount();
      count += 1;
      const holders = same ? { ...e.holders } : {};
      const me = processIdentity();
      holders[me] = (holders[me] ?? 0) + 1;
      state[key] = { mountPoint, count, holders };
      return count;
    });
  }

  /**
   * Record holder (not a process: e.g. the layer mounted on this one) as a user of the mount,
   * mounting first when it is not there. A holder counts once however often it holds, so a
   * user that mounts again after its own mount vanished is not counted twice.
   */
  hold(key: string, mountPoint: string, holder: string, doMount: () => Promise<void> | void): Promise<number> {
    return this.locked(async (state) => {
      const e = state[key];
      const mounted = isMountPoint(mountPoint);
      const holders = e && e.mountPoint === mountPoint && mounted ? { ...e.holders } : {};
      if (!mounted) await doMount();
      holders[holder] = 1;
      const count = Object.keys(holders).length;
      state[key] = { mountPoint, count, holders };
      return count;
    });
  }

  /**
   * Drop every holder that keep() refuses (users that are gone: a crash between holding and
   * mounting the user); a mount left with none is unmounted. Returns the mount points unmounted.
   */
  prune(keep: (holder: string) => boolean, doUnmount: (mountPoint: string) => Promise<void> | void): Promise<string[]> {
    return this.locked((state) => {
      const gone = new Set<string>();
      for (const e of Object.values(state)) for (const h of Object.keys(e.holders ?? {})) if (!keep(h)) gone.add(h);
      return gone.size === 0 ? [] : this.dropFrom(state, [...gone], doUnmount);
    });
  }

  /** Run fn while holding this state's lock: mounts it counts cannot change meanwhile. */
  exclusive<T>(fn: () => Promise<T> | T): Promise<T> {
    return this.locked(() => fn());
  }

  /**
   * Drop one reference; runs doUnmount when none remain and the mount is there.
   * Returns the remaining count (0 also when nothing was held).
   */
  release(key: string, doUnmount: (mountPoint: string) => Promise<void> | void): Promise<number> {
    return this.locked(async (state) => {
      const e = state[key];
      if (!e) return 0;
      const mounted = isMountPoint(e.mountPoint);
      const count = mounted ? Math.max(0, e.count - 1) : 0;
      if (count === 0) {
        if (mounted) await doUnmount(e.mountPoint);
        delete state[key];
      } else {
        const holders = { ...e.holders };
        const me = processIdentity();
        if ((holders[me] ?? 0) > 1) holders[me]!--;
        else delete holders[me];
        state[key] = { ...e, count, holders };
      }
      return count;
    });
  }

  /**
   * Drop every reference these (crashed) processes held; a mount left with none is unmounted.
   * Returns the mount points unmounted.
   */
  dropHolders(owners: string[], doUnmount: (mountPoint: string) => Promise<void> | void): Promise<string[]> {
    return this.locked((state) => this.dropFrom(state, owners, doUnmount));
  }

  private async dropFrom(state: State, owners: string[], doUnmount: (mountPoint: string) => Promise<void> | void): Promise<string[]> {
    const done: string[] = [];
    for (const [key, e] of Object.entries(state)) {
      const held = owners.reduce((n, o) => n + (e.holders?.[o] ?? 0), 0);
      if (held === 0) continue;
      const holders = { ...e.holders };
      for (const o of owners) delete holders[o];
      const count = e.count - held;
      if (count > 0) {
        state[key] = { ...e, count, holders };
        continue;
      }
      if (isMountPoint(e.mountPoint)) {
        await doUnmount(e.mountPoint);
        done.push(e.mountPoint);
      }
      delete state[key];
    }
    return done;
  }

  /** The live count for key (0 when its mount is gone). */
  count(key: string): Promise<number> {
    return this.locked((state) => {
      const e = state[key];
      return e && isMountPoint(e.mountPoint) ? e.count : 0;
    });
  }

  /** Of these mount points, those that no entry holds with a count above 0. */
  unheld(mountPoints: string[]): Promise<string[]> {
    return this.locked((state) => {
      const held = new Set(Object.values(state).filter((e) => e.count > 0).map((e) => e.mountPoint));
      return mountPoints.filter((mp) => !held.has(mp) && isMountPoint(mp));
    });
  }

  /** Of these mount points, those nobody holds, as leftovers for `check` (repaired by sweep). */
  async strays(mountPoints: string[], doUnmount: (mountPoint: string) => Promise<void> | void): Promise<Leftover[]> {
    return (await this.unheld(mountPoints)).map((mp) => ({
      what: `mount ${mp}`,
      layer: null,
      owner: null,
      remove: async () => {
        await this.sweep(doUnmount, [mp]);
      },
    }));
  }

  /**
   * Unmount (if mounted) and drop key whatever its count: the layer is going away. `mountPoint`
   * is where get() mounts the layer: a process killed between its mount and recording it left a
   * mount with no entry, and a mount point cannot be renamed or removed (torture: an aufs
   * `create` killed there left its init layer `removing` until a later open).
   */
  forget(key: string, mountPoint: string, doUnmount: (mountPoint: string) => Promise<void> | void): Promise<void> {
    return this.locked(async (state) => {
      const mp = state[key]?.mountPoint ?? mountPoint;
      if (isMountPoint(mp)) await doUnmount(mp);
      delete state[key];
    });
  }

  /**
   * Drop entries whose mounts are gone and unmount those left at count 0.
   * `extra` lists mount points the caller found that have no entry at all (a process died
   * between mounting and recording); they are unmounted too. Returns what was unmounted.
   */
  sweep(doUnmount: (mountPoint: string) => Promise<void> | void, extra: string[] = []): Promise<string[]> {
    return this.locked(async (state) => {
      const done: string[] = [];
      const known = new Set<string>();
      for (const [key, e] of Object.entries(state)) {
        known.add(e.mountPoint);
        const mounted = isMountPoint(e.mountPoint);
        if (mounted && e.count > 0) continue;
        if (mounted) {
          await doUnmount(e.mountPoint);
          done.push(e.mountPoint);
        }
        delete state[key];
      }
      for (const mp of extra) {
        if (known.has(mp) || !isMountPoint(mp)) continue;
        await doUnmount(mp);
        done.push(mp);
      }
      return done;
    });
  }

  private locked<T>(fn: (state: State) => Promise<T> | T): Promise<T> {
    const run = this.chain.then(() => this.underFlock(fn));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async underFlock<T>(fn: (state: State) => Promise<T> | T): Promise<T> {
    mkdirSync(this.dir, { recursive: true, mode: 0o710 });
    const fd = openSync(this.lockFile, 'a', 0o600);
    try {
      if (!tryFlock(fd, LOCK_EX)) await flock(fd, LOCK_EX);
      const state = this.read();
      const before = JSON.stringify(state);
      try {
        return await fn(state);
      } finally {
        // Written even when fn failed half way: an unmount that happened must be recorded.
        if (JSON.stringify(state) !== before) this.write(state);
      }
    } finally {
      try {
        tryFlock(fd, LOCK_UN);
      } finally {
        closeSync(fd);
      }
    }
  }

  private read(): State {
    let text: string;
    try {
      text = readFileSync(this.stateFile, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw err;
    }
    try {
      const parsed = JSON.parse(text) as unknown;
      return parsed && typeof parsed === 'object' ? (parsed as State) : {};
    } catch {
      // A torn file cannot happen (rename below); a hand-edited one is treated as empty,
      // which the "mount gone means 0" rule makes safe.
      return {};
    }
  }

  private write(state: State): void {
    const tmp = `${this.stateFile}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(state), { mode: 0o600 });
    renameSync(tmp, this.stateFile);
    fault('rename');
  }
}
