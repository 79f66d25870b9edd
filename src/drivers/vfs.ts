// Docker's vfs driver: every layer is a plain directory holding a full copy of its parent
// plus its own changes. No mounts, works on any filesystem, costs a copy per layer
// (cheap where the filesystem can reflink).
import { lstat, mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { backingFsName, supportsDType } from '../sys/fsprobe.js';
import { RENAME_NOREPLACE, renameat2 } from '../sys/linux.js';
import { copyTree } from './copytree.js';
import { checkLayerId } from './layer-id.js';
import { DriverError, type CreateOpts, type Driver, type DriverOptions } from './driver.js';
import { NaiveDiffDriver } from './naivediff.js';

const REMOVING = '-removing';

export class VfsDriver extends NaiveDiffDriver implements Driver {
  readonly name = 'vfs';
  readonly home: string;
  private readonly dirs: string;

  private constructor(root: string) {
    super();
    this.home = join(root, 'vfs');
    this.dirs = join(this.home, 'dir');
  }

  /** Open (creating if needed) the vfs data under `${root}/vfs`, finishing removals a crash cut short. */
  static async open(opts: DriverOptions): Promise<VfsDriver> {
    for (const key of Object.keys(opts.options)) {
      const k = key.toLowerCase();
      if (k === 'size' || k === 'vfs.size') throw quotaUnsupported();
      throw new DriverError(`vfs: unknown storage option ${key}`);
    }
    const d = new VfsDriver(opts.root);
    // 0710 like Docker (CVE-2021-41091): others must not walk into layer contents.
    await mkdir(d.home, { recursive: true, mode: 0o710 });
    await mkdir(d.dirs, { recursive: true, mode: 0o710 });
    await d.finishRemovals();
    return d;
  }

  async create(id: string, parent: string | null, opts?: CreateOpts): Promise<void> {
    if (opts?.storageOpt && Object.keys(opts.storageOpt).length > 0) {
      throw new DriverError('vfs: --storage-opt is not supported for read-only layers');
    }
    await this.make(id, parent);
  }

  async createReadWrite(id: string, parent: string | null, opts?: CreateOpts): Promise<void> {
    for (const key of Object.keys(opts?.storageOpt ?? {})) {
      if (key.toLowerCase() === 'size') throw quotaUnsupported();
      throw new DriverError(`vfs: unknown storage option ${key}`);
    }
    await this.make(id, parent);
  }

  private async make(id: string, parent: string | null): Promise<void> {
    const dir = this.dir(id);
    if (await exists(dir)) throw new DriverError(`vfs: layer ${id} already exists`);
    try {
      if (parent === null) {
        await mkdir(dir, { mode: 0o755 });
      } else {
        const from = this.dir(parent);
        if (!(await exists(from))) throw new DriverError(`vfs: parent layer ${parent} does not exist`);
        await copyTree(from, dir);
      }
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
  }

  /** Rename out of the way first, so a crash mid-delete leaves a name the next open finishes. */
  async remove(id: string): Promise<void> {
    const dir = this.dir(id);
    const doomed = dir + REMOVING;
    await rm(doomed, { recursive: true, force: true });
    try {
      renameat2(dir, doomed, RENAME_NOREPLACE);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    await rm(doomed, { recursive: true, force: true });
  }

  async get(id: string): Promise<string> {
    const dir = this.dir(id);
    if (!(await exists(dir))) throw new DriverError(`vfs: layer ${id} does not exist`);
    return dir;
  }

  async put(_id: string): Promise<void> {
    // Nothing is mounted.
  }

  async exists(id: string): Promise<boolean> {
    return exists(this.dir(id));
  }

  async status(): Promise<[string, string][]> {
    return [
      ['Backing Filesystem', backingFsName(this.home)],
      ['Supports d_type', String(supportsDType(this.dirs))],
    ];
  }

  async metadata(id: string): Promise<Record<string, string>> {
    if (!(await exists(this.dir(id)))) throw new DriverError(`vfs: layer ${id} does not exist`);
    return {};
  }

  async cleanup(): Promise<void> {
    // Nothing is mounted.
  }

  private dir(id: string): string {
    checkLayerId('vfs', id, (i) => i.endsWith(REMOVING));
    return join(this.dirs, id);
  }

  private async finishRemovals(): Promise<void> {
    for (const name of await readdir(this.dirs)) {
      if (name.endsWith(REMOVING)) await rm(join(this.dirs, name), { recursive: true, force: true });
    }
  }
}

function quotaUnsupported(): DriverError {
  return new DriverError(
    'vfs: --storage-opt size is not supported: vfs enforces size only with xfs project quotas, which strata does not set up',
  );
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}
