// Docker's zfs driver: every layer is a dataset <parent dataset>/<id> in the pool holding the
// store root; a child is a clone of a snapshot <parent>@<id> of its parent, so it shares every
// block until written. A layer is mounted at zfs/graph/<id> while someone holds it (reference
// counts shared across processes). A size on a layer is the dataset's `quota` property.
//
// Docker clones with mountpoint=legacy and mounts with mount(2). zfs-fuse (the only ZFS a
// FUSE-only machine has) cannot mount legacy datasets: it has no mount helper and its mounts
// are made by its daemon. So each layer's mountpoint property is its graph directory, with
// canmount=noauto so that nothing mounts it but get(); `zfs mount`/`zfs unmount` work the same
// with the kernel module.
import { mkdir, readdir, rmdir } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { backingFsName } from '../../sys/fsprobe.js';
import { isMountPoint, mountsUnder } from '../../sys/mountinfo.js';
import { nearestExisting, zfsDatasetOf } from '../common/backing.js';
import { checkLayerId, isLayerId } from '../common/layer-id.js';
import { DriverError, type CreateOpts, type Driver, type BlockUsage, type DriverOptions, type Inventory } from '../driver.js';
import { MountRefs } from '../common/mountref.js';
import { NaiveDiffDriver } from '../common/naivediff.js';
import { layerSize } from '../common/storage-opt.js';
import { runTool, ToolError, toolWorks } from '../../sys/run.js';

/** The registry's usable() check: the root must be on a ZFS dataset and the zfs tools answer. */
export async function zfsUsable(root: string): Promise<true | string> {
  const found = zfsDatasetOf(join(root, 'zfs'));
  if (!found) return `${root} is not on a ZFS dataset`;
  if (!(await toolWorks('zfs', ['list', '-H', '-o', 'name', found.dataset]))) {
    return `the zfs command cannot see dataset ${found.dataset} (are the zfs tools installed and the ZFS service running?)`;
  }
  return true;
}

export class ZfsDriver extends NaiveDiffDriver implements Driver {
  readonly name = 'zfs';
  readonly home: string;
  private readonly graph: string;
  private readonly refs: MountRefs;
  /** References this process took with get() and has not put() (cleanup() drops them). */
  private readonly own = new Map<string, number>();

  private constructor(
    root: string,
    /** The dataset whose children the layers are (Docker's zfs.fsname). */
    readonly dataset: string,
  ) {
    super();
    this.home = join(root, 'zfs');
    this.graph = join(this.home, 'graph');
    // A leading dot keeps the state files out of the id namespace.
    this.refs = new MountRefs(this.home, '.mountrefs');
  }

  /** Open the zfs data under `${root}/zfs`, on the dataset holding root (or zfs.fsname). */
  static async open(opts: DriverOptions): Promise<ZfsDriver> {
    let dataset: string | null = null;
    for (const [key, value] of Object.entries(opts.options)) {
      if (key.toLowerCase() === 'zfs.fsname') dataset = value;
      else throw new DriverError(`zfs: unknown storage option ${key}`);
    }
    const home = join(opts.root, 'zfs');
    if (dataset === null) {
      const found = zfsDatasetOf(home);
      if (!found) throw new DriverError(`zfs: ${home} is not on a ZFS dataset (it is on ${backingFsName(nearestExisting(home))})`);
      dataset = found.dataset;
    }
    try {
      await runTool('zfs', ['list', '-H', '-o', 'name', dataset]);
    } catch (err) {
      throw new DriverError(`zfs: cannot use dataset ${dataset}: ${(err as Error).message}`);
    }
    const d = new ZfsDriver(opts.root, dataset);
    // 0710 like Docker (CVE-2021-41091): others must not walk into layer contents.
    await mkdir(d.home, { recursive: true, mode: 0o710 });
    await mkdir(d.graph, { recursive: true, mode: 0o710 });
    return d;
  }

  /** Image layers are made as read-write ones are (a size option included). */
  create(id: string, parent: string | null, opts?: CreateOpts): Promise<void> {
    return this.createReadWrite(id, parent, opts);
  }

  async createReadWrite(id: string, parent: string | null, opts?: CreateOpts): Promise<void> {
    const quota = layerSize(opts);
    const name = this.datasetOf(id);
    const mountPoint = join(this.graph, id);
    if (await this.exists(id)) throw new DriverError(`zfs: layer ${id} already exists`);
    const props = ['-o', 'canmount=noauto', '-o', `mountpoint=${mountPoint}`];
    if (quota !== null) props.push('-o', `quota=${quota}`);
    await mkdir(mountPoint, { mode: 0o755 }).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
    try {
      if (parent === null) {
        await runTool('zfs', ['create', ...props, name]);
      } else {
        const origin = `${this.datasetOf(parent)}@${id}`;
        try {
          await runTool('zfs', ['snapshot', origin]);
        } catch (err) {
          if (!(await this.exists(parent))) throw new DriverError(`zfs: parent layer ${parent} does not exist`);
          throw err;
        }
        try {
          await runTool('zfs', ['clone', ...props, origin, name]);
        } catch (err) {
          await runTool('zfs', ['destroy', origin]).catch(() => undefined);
          throw err;
        }
        // Deferred: the snapshot goes by itself when its clone is destroyed, as in Docker.
        await runTool('zfs', ['destroy', '-d', origin]);
      }
      // zfs-fuse mounts a new dataset whatever canmount says; a layer is mounted only by get().
      if (isMountPoint(mountPoint)) await this.unmount(name);
    } catch (err) {
      await runTool('zfs', ['destroy', '-r', name]).catch(() => undefined);
      await rmdir(mountPoint).catch(() => undefined);
      throw err;
    }
  }

  async remove(id: string): Promise<void> {
    const name = this.datasetOf(id);
    const mountPoint = join(this.graph, id);
    // zfs-fuse mounts a new clone by itself: a creation cut short before make() unmounted it
    // leaves a mount no reference count knows of, which forget() takes too.
    await this.refs.forget(id, mountPoint, () => this.unmount(name));
    this.own.delete(id);
    // The origin snapshot `<parent>@<id>` is made before the clone and destroyed (deferred)
    // after it: a creation cut short between the two leaves it on the parent. Found by name,
    // so nothing of the half-made layer has to be read.
    const origin = (await runTool('zfs', ['list', '-H', '-o', 'name', '-t', 'snapshot', '-r', this.dataset]))
      .split('\n')
      .filter((n) => n.endsWith(`@${id}`));
    // -r: the layer's own snapshots (its children's origins) go with it; a child clone
    // still using one makes this fail, as it must.
    await this.destroy(['-r', name], name, mountPoint);
    for (const snap of origin) await this.destroy([snap]);
    await rmdir(mountPoint).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }

  async get(id: string): Promise<string> {
    const name = this.datasetOf(id);
    const mountPoint = join(this.graph, id);
    const count = await this.refs.acquire(id, mountPoint, async () => {
      try {
        await mkdir(mountPoint, { mode: 0o755 }).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'EEXIST') throw err;
        });
        await runTool('zfs', ['mount', name]);
      } catch (err) {
        await rmdir(mountPoint).catch(() => undefined);
        if (notFound(err)) throw new DriverError(`zfs: layer ${id} does not exist`);
        throw err;
      }
    });
    // A count that restarted (the mount had vanished) voids what this process held before.
    this.own.set(id, Math.min((this.own.get(id) ?? 0) + 1, count));
    return mountPoint;
  }

  async put(id: string): Promise<void> {
    const name = this.datasetOf(id);
    const mine = this.own.get(id) ?? 0;
    if (mine > 1) this.own.set(id, mine - 1);
    else this.own.delete(id);
    await this.refs.release(id, () => this.unmount(name));
  }

  async exists(id: string): Promise<boolean> {
    try {
      await runTool('zfs', ['list', '-H', '-o', 'name', this.datasetOf(id)]);
      return true;
    } catch (err) {
      if (notFound(err)) return false;
      throw err;
    }
  }

  /** The rows `docker info` prints for zfs. */
  async status(): Promise<[string, string][]> {
    const pool = this.dataset.split('/')[0];
    const health = (await runTool('zpool', ['list', '-H', '-o', 'health', pool])).trim();
    const [used, avail, quota, compression] = (
      await runTool('zfs', ['get', '-H', '-p', '-o', 'value', 'used,available,quota,compression', this.dataset])
    )
      .trim()
      .split('\n')
      .map((l) => l.trim());
    return [
      ['Backing Filesystem', backingFsName(this.home)],
      ['Zpool', pool],
      ['Zpool Health', health],
      ['Parent Dataset', this.dataset],
      ['Space Used By Parent', used],
      ['Space Available', avail],
      ['Parent Quota', quota === '0' || quota === 'none' ? 'no' : quota],
      ['Compression', compression],
    ];
  }

  /** The clone's `used`: blocks it does not share with its origin. zfs does not tell them per file. */
  async blockUsage(id: string): Promise<BlockUsage> {
    const name = this.datasetOf(id);
    const used = Number((await runTool('zfs', ['get', '-Hp', '-o', 'value', 'used', name])).trim());
    return { layer: used, files: new Map(), source: `zfs get used ${name}` };
  }

  /** As Docker's GetMetadata: the dataset and where it is mounted. */
  async metadata(id: string): Promise<Record<string, string>> {
    if (!(await this.exists(id))) throw new DriverError(`zfs: layer ${id} does not exist`);
    return { Dataset: this.datasetOf(id), Mountpoint: join(this.graph, id) };
  }

  /**
   * Drop the references this process still holds, then unmount whatever no process holds:
   * count-0 mounts and layer mounts nobody recorded (a process died between mounting and
   * writing its count). Mounts other processes hold stay.
   */
  async cleanup(): Promise<void> {
    for (const [id, n] of [...this.own]) {
      const name = this.datasetOf(id);
      for (let i = 0; i < n; i++) {
        if ((await this.refs.release(id, () => this.unmount(name))) === 0) break;
      }
      this.own.delete(id);
    }
    const strays = mountsUnder(this.graph).filter((mp) => !mp.slice(this.graph.length + 1).includes(sep));
    await this.refs.sweep((mp) => this.unmount(this.datasetOf(mp.slice(this.graph.length + 1))), strays);
  }

  async releaseCrashed(owners: string[]): Promise<void> {
    await this.refs.dropHolders(owners, (mp) => this.unmount(this.datasetOf(mp.slice(this.graph.length + 1))));
  }

  /**
   * `zfs destroy` that is done when the dataset is gone. zfs-fuse answers "dataset is busy" for
   * a while after a dataset was unmounted or cloned by another process, and mounts a new clone
   * by itself a moment after `zfs clone` returned (seen in CI: a clone made by a killed create
   * was busy at the next open). So busy unmounts what zfs-fuse mounted meanwhile and is retried
   * for up to about 10 s before it counts.
   */
  private async destroy(args: string[], name?: string, mountPoint?: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await runTool('zfs', ['destroy', ...args]);
        return;
      } catch (err) {
        if (notFound(err)) return;
        if (!(err instanceof ToolError && /busy/i.test(err.stderr)) || attempt >= 40) throw err;
        if (name && mountPoint && isMountPoint(mountPoint)) await this.unmount(name);
        else await new Promise((r) => setTimeout(r, 250));
      }
    }
  }

  private async unmount(name: string): Promise<void> {
    try {
      await runTool('zfs', ['unmount', name]);
    } catch (err) {
      // Busy (a shell inside it, an open file): the layer must still go when released.
      if (err instanceof ToolError && /busy/i.test(err.stderr)) await runTool('zfs', ['unmount', '-f', name]);
      else throw err;
    }
  }

  /**
   * Layers are the child datasets whose mount point is graph/<id> (other children of the
   * dataset are not ours); a graph/<id> dir with no dataset is what a crashed create or
   * remove left.
   */
  async inventory(): Promise<Inventory> {
    const out: Inventory = { layers: [], leftovers: [] };
    const listing = await runTool('zfs', ['list', '-H', '-o', 'name,mountpoint', '-d', '1', this.dataset]);
    for (const line of listing.split('\n')) {
      const [name, mountPoint] = line.split('\t');
      if (!name?.startsWith(`${this.dataset}/`)) continue;
      const id = name.slice(this.dataset.length + 1);
      if (isLayerId(id) && mountPoint === join(this.graph, id)) out.layers.push(id);
    }
    const known = new Set(out.layers);
    for (const id of await readdir(this.graph)) {
      if (known.has(id) || !isLayerId(id)) continue;
      const path = join(this.graph, id);
      if (isMountPoint(path)) continue;
      out.leftovers.push({ what: path, layer: id, owner: null, remove: () => rmdir(path) });
    }
    return out;
  }

  private datasetOf(id: string): string {
    checkLayerId('zfs', id);
    return `${this.dataset}/${id}`;
  }
}

function notFound(err: unknown): boolean {
  return err instanceof ToolError && /does not exist/.test(err.stderr);
}
