// Base of the drivers whose layer is a directory that is already its own view, with nothing to
// mount: vfs (a plain copy of the parent) and btrfs (a snapshot subvolume). They share the
// lookups and the removal: rename out of the way, then delete, so a crash mid-delete leaves a
// name (common/removal.ts) the next open finishes once its remover is dead. Each says how a
// layer is made and how its tree is deleted.
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { RENAME_NOREPLACE, renameat2 } from '../../sys/linux.js';
import { DriverError, type Inventory } from '../driver.js';
import { checkLayerId, isLayerId } from './layer-id.js';
import { NaiveDiffDriver } from './naivediff.js';
import { fault } from '../../sys/fault.js';
import { abandoned, doomedPath, parseDoomed } from './removal.js';

export abstract class DirectoryLayerDriver extends NaiveDiffDriver {
  abstract readonly name: string;

  /** `layers` holds one directory per layer id. */
  constructor(protected readonly layers: string) {
    super();
  }

  /** Delete a layer's tree that has been renamed for removal; it may be gone already. */
  protected abstract deleteTree(path: string): Promise<void>;

  /** Remove what the driver keeps about a layer besides its tree (nothing, by default). */
  protected async forget(_id: string): Promise<void> {}

  async remove(id: string): Promise<void> {
    const dir = this.dir(id);
    const doomed = doomedPath(dir);
    try {
      renameat2(dir, doomed, RENAME_NOREPLACE);
      fault('rename');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      await this.forget(id);
      return;
    }
    await this.deleteTree(doomed);
    await this.forget(id);
  }

  async get(id: string): Promise<string> {
    const dir = this.dir(id);
    if (!(await pathExists(dir))) throw new DriverError(`${this.name}: layer ${id} does not exist`);
    return dir;
  }

  async put(_id: string): Promise<void> {
    // Nothing is mounted.
  }

  async exists(id: string): Promise<boolean> {
    return pathExists(this.dir(id));
  }

  async metadata(id: string): Promise<Record<string, string>> {
    await this.get(id);
    return {};
  }

  async cleanup(): Promise<void> {
    // Nothing is mounted.
  }

  async inventory(): Promise<Inventory> {
    const out: Inventory = { layers: [], leftovers: [] };
    for (const name of await readdir(this.layers)) {
      const path = join(this.layers, name);
      const doomed = parseDoomed(name);
      if (doomed) {
        out.leftovers.push({ what: path, ...doomed, remove: () => this.deleteTree(path) });
      } else if (isLayerId(name)) {
        out.layers.push(name);
      }
    }
    return out;
  }

  protected dir(id: string): string {
    checkLayerId(this.name, id, (i) => parseDoomed(i) !== null);
    return join(this.layers, id);
  }

  /** At open: delete what removals cut short by a crash left renamed (a live remover's stays its own). */
  protected async finishRemovals(): Promise<void> {
    for (const name of await readdir(this.layers)) {
      if (abandoned(name)) await this.deleteTree(join(this.layers, name));
    }
  }
}

export async function pathExists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}
