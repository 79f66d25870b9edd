// Diffs for drivers that keep no changeset of their own (vfs, btrfs, zfs, devicemapper):
// mount both layers and compare the trees, as Docker's NaiveDiffDriver does.
import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { finished, type Readable } from 'node:stream';
import { applyLayer } from '../../archive/apply.js';
import { changesBetween, type Change } from '../../archive/changes.js';
import { exportChanges, packDirectory } from '../../archive/pack.js';

/** The part of a driver the naive diff needs. */
export interface Mounter {
  get(id: string): Promise<string>;
  put(id: string): Promise<void>;
}

export class NaiveDiff {
  constructor(private readonly driver: Mounter) {}

  /**
   * The changeset of id against parent as a layer tar. id stays mounted until the stream
   * ends, fails or is destroyed: consume or destroy it.
   */
  async diff(id: string, parent: string | null): Promise<Readable> {
    const layerFs = await this.driver.get(id);
    let stream: Readable;
    try {
      if (parent === null) {
        stream = packDirectory(layerFs);
      } else {
        const changes = await this.withMount(parent, (parentFs) => changesBetween(parentFs, layerFs));
        stream = exportChanges(layerFs, changes);
      }
    } catch (err) {
      await this.driver.put(id);
      throw err;
    }
    let released = false;
    finished(stream, () => {
      if (released) return;
      released = true;
      // The stream has already ended or failed: nobody is left to hear an error but the log.
      this.driver.put(id).catch((err: unknown) => process.emitWarning(`releasing layer ${id} after diff: ${String(err)}`));
    });
    return stream;
  }

  async changes(id: string, parent: string | null): Promise<Change[]> {
    return this.withMount(id, (layerFs) =>
      parent === null
        ? changesBetween(null, layerFs)
        : this.withMount(parent, (parentFs) => changesBetween(parentFs, layerFs)),
    );
  }

  /** Apply a layer tar onto id, which already holds a copy of its parent; returns content bytes. */
  async applyDiff(id: string, _parent: string | null, tar: Readable): Promise<number> {
    return this.withMount(id, async (layerFs) => (await applyLayer(layerFs, tar, { whiteouts: 'snapshot', durable: true })).size);
  }

  /**
   * Bytes of regular files added or changed in id against parent, each hardlinked file once;
   * with symlinks, their targets' lengths too (a layered driver's size, as its applyDiff counts).
   */
  async diffSize(id: string, parent: string | null, opts: { symlinks?: boolean } = {}): Promise<number> {
    return this.withMount(id, async (layerFs) => {
      const changes = await (parent === null
        ? changesBetween(null, layerFs)
        : this.withMount(parent, (parentFs) => changesBetween(parentFs, layerFs)));
      const seen = new Set<bigint>();
      let size = 0;
      for (const change of changes) {
        if (change.kind === 'D') continue;
        const st = await lstat(join(layerFs, change.path), { bigint: true });
        if (!st.isFile() && !(opts.symlinks && st.isSymbolicLink())) continue;
        if (st.nlink > 1n) {
          if (seen.has(st.ino)) continue;
          seen.add(st.ino);
        }
        size += Number(st.size);
      }
      return size;
    });
  }

  private async withMount<T>(id: string, fn: (path: string) => Promise<T>): Promise<T> {
    const path = await this.driver.get(id);
    try {
      return await fn(path);
    } finally {
      await this.driver.put(id);
    }
  }
}

/**
 * Base of the drivers whose diffs are all naive: diff, changes, applyDiff and diffSize come from
 * mounting and comparing trees through the subclass's get/put.
 */
export abstract class NaiveDiffDriver implements Mounter {
  private readonly naive: NaiveDiff = new NaiveDiff(this);

  abstract get(id: string): Promise<string>;
  abstract put(id: string): Promise<void>;

  diff(id: string, parent: string | null): Promise<Readable> {
    return this.naive.diff(id, parent);
  }

  changes(id: string, parent: string | null): Promise<Change[]> {
    return this.naive.changes(id, parent);
  }

  applyDiff(id: string, parent: string | null, tar: Readable): Promise<number> {
    return this.naive.applyDiff(id, parent, tar);
  }

  diffSize(id: string, parent: string | null): Promise<number> {
    return this.naive.diffSize(id, parent);
  }
}
