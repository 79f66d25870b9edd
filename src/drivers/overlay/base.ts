// What overlay2 and fuse-overlayfs have in common: the layout, ref-counted mounts of
// `<id>/merged`, applying layers straight into `diff/` with overlay whiteouts, and the native
// diff that reads an upper dir. The two differ only in how a mount is made and undone, in
// whether the native diff can be trusted, and in whether chains deeper than one mount takes
// are mounted with a read-only stack of their deepest layers (kernel overlay) or directly.
import { existsSync } from 'node:fs';
import { lstat, mkdir, readdir, rm } from 'node:fs/promises';
import { basename, dirname, join, relative, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { applyLayer } from '../../archive/apply.js';
import type { Change } from '../../archive/changes.js';
import { packDirectory } from '../../archive/pack.js';
import { mountsUnder } from '../../sys/mountinfo.js';
import { DriverError, type CreateOpts, type Driver, type DriverOptions, type Inventory, type LayerFiles } from '../driver.js';
import { MountRefs } from '../common/mountref.js';
import { LINK_DIR, MAX_LOWERS, OverlayLayout } from './layout.js';
import { isLayerId } from '../common/layer-id.js';
import { processIdentity } from '../../sys/process.js';
import { contentSize } from '../common/content-size.js';
import { UnreadableUpper, upperChanges } from './upper-changes.js';
import { UpperFiles } from './upper-files.js';

const PROBE = 'native-diff-check-';
const PROBE_OWNER = /^native-diff-check-(\d+)-(\d+)-/;

/** Prefix of a native-diff probe's temp dir: it names its maker, so only a dead one's is removed. */
export function probeDirPrefix(): string {
  return `${PROBE}${processIdentity().replace(':', '-')}-`;
}

/** The diff operations every driver can fall back on (compare two mounted trees). */
export interface DiffFallback {
  diff(id: string, parent: string | null): Promise<Readable>;
  changes(id: string, parent: string | null): Promise<Change[]>;
  applyDiff(id: string, parent: string | null, tar: Readable): Promise<number>;
  diffSize(id: string, parent: string | null, opts?: { symlinks?: boolean }): Promise<number>;
}

export abstract class OverlayBase implements Driver {
  abstract readonly name: string;
  readonly home: string;
  readonly independentLayers = true;
  protected readonly layout: OverlayLayout;
  protected readonly refs: MountRefs;
  /**
   * Stack mounts (`<ancestor>/stack`), held by the layers mounted on them rather than by
   * processes: a stack goes when the last layer view using it is unmounted. Always taken
   * inside `refs`' lock (a layer's mount or unmount), never the other way round.
   */
  private readonly stacks: MountRefs;
  protected abstract readonly naive: DiffFallback;
  /**
   * Whether changes() and unmountedFiles() may read the layer dirs as the kernel's overlay does
   * (its whiteouts and opaque marks are those the dirs hold).
   */
  protected readonly readsLayerDirs: boolean = false;
  private ready: Promise<void> | null = null;
  /** References this process took with get() and has not put() (cleanup() drops them). */
  private readonly own = new Map<string, number>();

  constructor(name: string, protected readonly opts: DriverOptions) {
    this.home = join(opts.root, name);
    this.layout = new OverlayLayout(this.home);
    // A leading dot keeps the state files out of the id namespace.
    this.refs = new MountRefs(this.home, '.mountrefs');
    this.stacks = new MountRefs(this.home, '.stackrefs');
  }

  /**
   * Mount id's view at its merged dir; lowers are relative to home, parent first: `l/<link>`,
   * and last `<ancestor>/stack` when the chain is deeper than one overlay takes.
   */
  protected abstract mountLayer(id: string, lowers: string[]): Promise<void>;
  /**
   * Mount these lowers (`l/<link>`, parent first) as one read-only overlay at mountPoint. A
   * driver without it mounts every chain in one mount, however deep.
   */
  protected mountStack?(mountPoint: string, lowers: string[]): Promise<void>;
  protected abstract unmountLayer(mountPoint: string): Promise<void>;
  /** Whether id's upper dir alone can be read as its changeset. */
  protected abstract nativeDiff(): Promise<boolean>;
  abstract status(): Promise<[string, string][]>;

  protected init(): Promise<void> {
    // No scan of the home here: it holds two entries per container, and this runs for every
    // command. A removal a crash cut short is finished by the next remove() of that layer (the
    // store's recovery) or by the sweep after a crash (inventory() lists `.removing` dirs).
    this.ready ??= this.layout.init();
    return this.ready;
  }

  async create(id: string, parent: string | null, opts?: CreateOpts): Promise<void> {
    this.checkCreateOpts(opts);
    await this.init();
    await this.layout.create(id, parent);
  }

  async createReadWrite(id: string, parent: string | null, opts?: CreateOpts): Promise<void> {
    await this.create(id, parent, opts);
  }

  /**
   * Docker's overlay2 refusals, in its words: a size needs project quotas on an xfs mounted with
   * pquota, which strata does not set up (and this machine's kernel has no xfs quota support);
   * any other key is unknown.
   */
  protected checkCreateOpts(opts?: CreateOpts): void {
    const keys = Object.keys(opts?.storageOpt ?? {}).map((k) => k.toLowerCase());
    if (keys.includes('size')) throw new DriverError("--storage-opt is supported only for overlay over xfs with 'pquota' mount option");
    if (keys.length > 0) throw new DriverError(`Unknown option ${keys[0]}`);
  }

  async remove(id: string, opts?: { leaf?: boolean }): Promise<void> {
    await this.init();
    this.layout.checkId(id);
    if (!opts?.leaf && (await this.layout.exists(id))) {
      const kids = await this.layout.children(id);
      if (kids.length > 0) {
        throw new DriverError(`cannot remove layer ${id}: ${kids.length} layer(s) are built on it (${kids[0]}…)`);
      }
    }
    await this.refs.forget(id, this.layout.mergedDir(id), this.unmountView);
    if (this.mountStack && existsSync(this.layout.stackDir(id))) {
      await this.stacks.forget(id, this.layout.stackDir(id), (mp) => this.unmountLayer(mp));
    }
    this.own.delete(id);
    await this.layout.remove(id);
  }

  async get(id: string): Promise<string> {
    await this.init();
    await this.layout.require(id);
    const lowers = await this.layout.lowerLinks(id);
    // A base layer has nothing to merge: its diff dir is the whole view, as in Docker.
    if (lowers.length === 0) return this.layout.diffDir(id);
    const merged = this.layout.mergedDir(id);
    await mountPointDir(merged);
    const count = await this.refs.acquire(id, merged, () => this.mountView(id, lowers));
    // A count that restarted (the mount had vanished) voids what this process held before.
    this.own.set(id, Math.min((this.own.get(id) ?? 0) + 1, count));
    return merged;
  }

  /** Mount id, through its ancestor's stack mount when the chain is deeper than one overlay. */
  private async mountView(id: string, lowers: string[]): Promise<void> {
    const plan = this.mountStack ? await this.layout.stackPlan(id, lowers) : null;
    if (plan === null) return this.mountLayer(id, lowers);
    const at = this.layout.stackDir(plan.ancestor);
    await this.stacks.hold(plan.ancestor, at, id, async () => {
      await mountPointDir(at);
      await this.mountStack!(at, await this.layout.lowerFor(plan.ancestor));
    });
    try {
      await this.mountLayer(id, [...plan.direct, relative(this.home, at)]);
    } catch (err) {
      await this.stacks.dropHolders([id], (mp) => this.unmountLayer(mp));
      throw err;
    }
  }

  /** Unmount a layer's view (`<id>/merged`) and let go of the stack it was mounted on. */
  private readonly unmountView = async (mountPoint: string): Promise<void> => {
    await this.unmountLayer(mountPoint);
    if (!this.mountStack) return;
    const id = basename(dirname(mountPoint));
    const lowers = await this.layout.lowerLinks(id).catch(() => null);
    // A shallow layer never holds a stack; one whose lower file is gone may (pruneStacks).
    if (lowers === null || lowers.length > MAX_LOWERS) await this.stacks.dropHolders([id], (mp) => this.unmountLayer(mp));
  };

  /**
   * Drop stack holders whose layer view is not mounted (a process killed between mounting the
   * stack and its layer, or a view someone else unmounted) and stack mounts nobody holds.
   * Under the views' lock, so no view is half way through being mounted meanwhile.
   */
  private async pruneStacks(): Promise<void> {
    if (!this.mountStack) return;
    const isStack = (mp: string) => mp.endsWith(`${sep}stack`);
    // Every store close and open comes here: with no stack mounted (no chain deeper than 500),
    // neither the lock nor the state file is touched.
    if (!mountsUnder(this.home).some(isStack)) return;
    await this.refs.exclusive(async () => {
      const mounts = mountsUnder(this.home);
      const stackMounts = mounts.filter(isStack);
      if (stackMounts.length === 0) return;
      const live = new Set(mounts.filter((mp) => mp.endsWith(`${sep}merged`)).map((mp) => basename(dirname(mp))));
      const unmount = (mp: string) => this.unmountLayer(mp);
      await this.stacks.prune((holder) => live.has(holder), unmount);
      await this.stacks.sweep(unmount, stackMounts);
    });
  }

  async put(id: string): Promise<void> {
    await this.init();
    this.layout.checkId(id);
    const mine = this.own.get(id) ?? 0;
    if (mine > 1) this.own.set(id, mine - 1);
    else this.own.delete(id);
    await this.refs.release(id, this.unmountView);
  }

  async releaseCrashed(owners: string[]): Promise<void> {
    await this.refs.dropHolders(owners, this.unmountView);
    await this.pruneStacks();
  }

  /**
   * Let this process's references to id outlive it (`strata mount C`): cleanup() will not
   * drop them, and only a put() from some process (`strata umount C`) releases the mount.
   */
  disown(id: string): void {
    this.own.delete(id);
  }

  exists(id: string): Promise<boolean> {
    return this.layout.exists(id);
  }

  /** Checked with a synchronous call: `strata ui` asks for it in every container answer. */
  ownDir(id: string): Promise<string | null> {
    if (!this.layout.existsNow(id)) return Promise.reject(new DriverError(`layer ${id} does not exist`));
    return Promise.resolve(this.upperHoldsEntries() ? this.layout.diffDir(id) : null);
  }

  /** Whether an upper dir holds each of its entries as itself (see Driver.ownDir). */
  protected upperHoldsEntries(): boolean {
    return true;
  }

  async metadata(id: string): Promise<Record<string, string>> {
    await this.layout.require(id);
    const lowers = await this.layout.lowerDirs(id);
    // A base layer is never mounted (its diff dir is its view), so it has no work or merged
    // dir to name; Docker lists them anyway, but they would not exist.
    if (lowers.length === 0) return { UpperDir: this.layout.diffDir(id) };
    return {
      LowerDir: lowers.join(':'),
      MergedDir: this.layout.mergedDir(id),
      UpperDir: this.layout.diffDir(id),
      WorkDir: this.layout.workDir(id),
    };
  }

  private async useNative(id: string, parent: string | null): Promise<boolean> {
    await this.layout.require(id);
    return (await this.layout.isParent(id, parent)) && (await this.nativeDiff());
  }

  async diff(id: string, parent: string | null): Promise<Readable> {
    if (!(await this.useNative(id, parent))) return this.naive.diff(id, parent);
    return packDirectory(this.layout.diffDir(id), { whiteouts: 'overlay' });
  }

  /**
   * What the naive comparison of the two mounted trees gives: Docker 20.10's `docker diff` on
   * overlay2 prints exactly that (measured: parents of every change as C, a recreated directory
   * as C with D/A of its children, a copied-up file with the same metadata not at all), not its
   * upper-dir walk. Where the upper dir can be read as the layer's changeset, the same list
   * comes from it without a mount (upper-changes.ts).
   */
  async changes(id: string, parent: string | null): Promise<Change[]> {
    if (this.readsLayerDirs && (await this.useNative(id, parent))) {
      try {
        return await upperChanges(this.layout.diffDir(id), await this.layout.lowerDirs(id));
      } catch (err) {
        if (!(err instanceof UnreadableUpper)) throw err;
      }
    }
    await this.layout.require(id);
    return this.naive.changes(id, parent);
  }

  async unmountedFiles(id: string): Promise<LayerFiles | null> {
    if (!this.readsLayerDirs) return null;
    await this.layout.require(id);
    return new UpperFiles(this.layout.diffDir(id), await this.layout.lowerDirs(id));
  }

  async applyDiff(id: string, parent: string | null, tar: Readable): Promise<number> {
    await this.layout.require(id);
    // The whiteout format is the same whatever the diff check says; only a parent that is not
    // the layer's own needs the merged view.
    if (!(await this.layout.isParent(id, parent))) return this.naive.applyDiff(id, parent, tar);
    const { size } = await applyLayer(this.layout.diffDir(id), tar, {
      whiteouts: 'overlay',
      lowers: await this.layout.lowerDirs(id),
      durable: true,
    });
    return size;
  }

  async diffSize(id: string, parent: string | null): Promise<number> {
    // Measured through the mounts, but counted as this layered driver's applyDiff counts.
    if (!(await this.useNative(id, parent))) return this.naive.diffSize(id, parent, { symlinks: true });
    return contentSize(this.layout.diffDir(id));
  }

  async inventory(): Promise<Inventory> {
    await this.init();
    const out: Inventory = { layers: [], leftovers: [] };
    for (const name of await readdir(this.home)) {
      const path = join(this.home, name);
      const removeTree = () => rm(path, { recursive: true, force: true });
      if (name.endsWith('.removing')) {
        out.leftovers.push({ what: path, layer: name.slice(0, -'.removing'.length), owner: null, remove: removeTree });
      } else if (name.startsWith(PROBE)) {
        const m = PROBE_OWNER.exec(name);
        out.leftovers.push({ what: path, layer: null, owner: m ? `${m[1]}:${m[2]}` : null, remove: removeTree });
      } else if (name !== LINK_DIR && isLayerId(name) && (await lstat(path)).isDirectory()) {
        out.layers.push(name);
      }
    }
    const mounts = mountsUnder(this.home);
    const strays = mounts.filter((mp) => mp.endsWith(`${sep}merged`));
    out.leftovers.push(...(await this.refs.strays(strays, this.unmountView)));
    // A stack mount no entry holds has no view on it (views hold before they mount).
    const stackStrays = mounts.filter((mp) => mp.endsWith(`${sep}stack`));
    out.leftovers.push(...(await this.stacks.strays(stackStrays, (p) => this.unmountLayer(p))));
    return out;
  }

  /**
   * Drop the references this process still holds (store close), then unmount whatever no
   * process holds: count-0 mounts and mounts nobody recorded (a process that died between
   * mounting and writing its count). Mounts other processes hold, or disowned ones, stay.
   */
  async cleanup(): Promise<void> {
    await this.init();
    for (const [id, n] of [...this.own]) {
      for (let i = 0; i < n; i++) {
        if ((await this.refs.release(id, this.unmountView)) === 0) break;
      }
      this.own.delete(id);
    }
    const strays = mountsUnder(this.home).filter((mp) => mp.endsWith(`${sep}merged`));
    await this.refs.sweep(this.unmountView, strays);
    await this.pruneStacks();
    await this.layout.sweep();
  }
}

/** Make a mount point directory unless it is there. */
async function mountPointDir(path: string): Promise<void> {
  await mkdir(path, { mode: 0o700 }).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
}
