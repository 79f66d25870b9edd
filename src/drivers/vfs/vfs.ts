// Docker's vfs driver: every layer is a plain directory holding a full copy of its parent
// plus its own changes. No mounts, works on any filesystem, costs a copy per layer
// (cheap where the filesystem can reflink).
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { backingFsName, supportsDType } from '../../sys/fsprobe.js';
import { copyTree } from '../common/copytree.js';
import { DirectoryLayerDriver, pathExists } from '../common/dir-layers.js';
import { DriverError, type CreateOpts, type Driver, type DriverOptions } from '../driver.js';
import { refuseStorageOpt } from '../common/storage-opt.js';

export class VfsDriver extends DirectoryLayerDriver implements Driver {
  readonly name = 'vfs';
  readonly home: string;

  private constructor(root: string) {
    super(join(root, 'vfs', 'dir'));
    this.home = join(root, 'vfs');
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
    await mkdir(d.layers, { recursive: true, mode: 0o710 });
    await d.finishRemovals();
    return d;
  }

  async create(id: string, parent: string | null, opts?: CreateOpts): Promise<void> {
    refuseStorageOpt(opts, '--storage-opt is not supported for vfs on read-only layers');
    await this.make(id, parent);
  }

  async createReadWrite(id: string, parent: string | null, opts?: CreateOpts): Promise<void> {
    // Docker's vfs reads keys as they are written ("SIZE" is not "size"), and words its refusals so.
    for (const key of Object.keys(opts?.storageOpt ?? {})) {
      if (key === 'size') throw quotaUnsupported();
      throw new DriverError(`Storage opt ${key} not supported`);
    }
    await this.make(id, parent);
  }

  private async make(id: string, parent: string | null): Promise<void> {
    const dir = this.dir(id);
    if (await pathExists(dir)) throw new DriverError(`vfs: layer ${id} already exists`);
    try {
      if (parent === null) {
        await mkdir(dir, { mode: 0o755 });
      } else {
        const from = this.dir(parent);
        if (!(await pathExists(from))) throw new DriverError(`vfs: parent layer ${parent} does not exist`);
        await copyTree(from, dir);
      }
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
  }

  async status(): Promise<[string, string][]> {
    return [
      ['Backing Filesystem', backingFsName(this.home)],
      ['Supports d_type', String(supportsDType(this.layers))],
    ];
  }

  protected deleteTree(path: string): Promise<void> {
    return rm(path, { recursive: true, force: true });
  }
}

/** Docker's words, and why: vfs can cap a layer only with xfs project quotas, which strata does not set up. */
function quotaUnsupported(): DriverError {
  return new DriverError(
    'Filesystem does not support, or has not enabled quotas (vfs enforces --storage-opt size only with xfs project quotas, which strata does not set up)',
  );
}
