// Docker's aufs driver: one directory per layer, whiteouts kept in band as the layer tar has
// them, and a union mount of a layer's own (writable) branch over its ancestors' branches.
//   aufs/diff/<id>     the layer's branch
//   aufs/layers/<id>   ancestor ids, parent first, one per line (empty for a base layer)
//   aufs/mnt/<id>      where the union is mounted
//   aufs/work/<id>     fuse-overlayfs's work dir (only when mounting through fuse-overlayfs)
// The union is kernel aufs where /proc/filesystems lists it; elsewhere fuse-overlayfs, which
// reads aufs whiteouts in any branch. fuse-overlayfs writes deletions in overlay's form, so a
// branch is rewritten into aufs's form when it unmounts (aufs-branch.ts); a diff of a branch
// that is mounted at that moment compares the merged trees instead.
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { writeFileAtomic } from '../../sys/fileio.js';
import { applyLayer } from '../../archive/apply.js';
import type { Change } from '../../archive/changes.js';
import { refuseStorageOpt } from '../common/storage-opt.js';
import { packDirectory } from '../../archive/pack.js';
import { backingFsName, supportsDType } from '../../sys/fsprobe.js';
import { MNT_DETACH, MS_REMOUNT, mount, umount2 } from '../../sys/linux.js';
import { isMountPoint, mountsUnder } from '../../sys/mountinfo.js';
import { aufsNormalize } from './branch.js';
import { contentSize } from '../common/content-size.js';
import { checkLayerId, isLayerId } from '../common/layer-id.js';
import { DriverError, type CreateOpts, type Driver, type DriverOptions, type Inventory } from '../driver.js';
import { FUSE_OVERLAYFS, fuseOverlayUnusable, mountFuseOverlay } from '../common/fuse.js';
import { MountRefs } from '../common/mountref.js';
import { NaiveDiff } from '../common/naivediff.js';
import { isCode } from '../../sys/errno.js';
import { fault } from '../../sys/fault.js';
import { abandoned, doomedPath, parseDoomed } from '../common/removal.js';

export type AufsMountMethod = 'aufs' | 'fuse-overlayfs';

/** Room Docker leaves in the first mount's page for the options after the branches. */
const PAGE = 4096;
const OPTION_ROOM = 64;

/** Whether the running kernel has aufs (only /proc/filesystems says so reliably). */
export function kernelHasAufs(): boolean {
  try {
    return /\taufs$/m.test(readFileSync('/proc/filesystems', 'utf8'));
  } catch {
    return false;
  }
}

/** Why aufs cannot work for root here, or true. */
export async function aufsUsable(root: string): Promise<true | string> {
  if (kernelHasAufs()) return true;
  const why = fuseOverlayUnusable(root);
  return why === null ? true : `the kernel has no aufs and fuse-overlayfs cannot stand in: ${why}`;
}

export class AufsDriver implements Driver {
  readonly name = 'aufs';
  readonly home: string;
  readonly independentLayers = true;
  readonly method: AufsMountMethod;
  private readonly refs: MountRefs;
  private readonly naive: NaiveDiff;
  /** References this process took with get() and has not put() (cleanup() drops them). */
  private readonly own = new Map<string, number>();

  private constructor(root: string, method: AufsMountMethod) {
    this.home = join(root, 'aufs');
    this.method = method;
    this.refs = new MountRefs(this.home, '.mountrefs');
    this.naive = new NaiveDiff(this);
  }

  /** Open (creating if needed) the aufs data under `${root}/aufs`. */
  static async open(opts: DriverOptions): Promise<AufsDriver> {
    for (const key of Object.keys(opts.options)) {
      throw new DriverError(`aufs: unknown storage option ${key}`);
    }
    let method: AufsMountMethod = 'aufs';
    if (!kernelHasAufs()) {
      const why = fuseOverlayUnusable(opts.root);
      if (why !== null) throw new DriverError(`aufs is not usable: the kernel has no aufs and fuse-overlayfs cannot stand in: ${why}`);
      method = 'fuse-overlayfs';
    }
    const d = new AufsDriver(opts.root, method);
    // 0710 like Docker (CVE-2021-41091).
    await mkdir(d.home, { recursive: true, mode: 0o710 });
    for (const sub of ['diff', 'layers', 'mnt', 'work']) await mkdir(join(d.home, sub), { recursive: true, mode: 0o710 });
    await d.finishRemovals();
    return d;
  }

  private checkId(id: string): void {
    checkLayerId('aufs', id, (i) => parseDoomed(i) !== null);
  }
  diffDir(id: string): string {
    this.checkId(id);
    return join(this.home, 'diff', id);
  }
  private mntDir(id: string): string {
    return join(this.home, 'mnt', id);
  }
  private layersFile(id: string): string {
    return join(this.home, 'layers', id);
  }
  private workDir(id: string): string {
    return join(this.home, 'work', id);
  }

  async exists(id: string): Promise<boolean> {
    return existsSync(this.diffDir(id)) && existsSync(this.layersFile(id));
  }

  private async require(id: string): Promise<void> {
    if (!(await this.exists(id))) throw new DriverError(`aufs: layer ${id} does not exist`);
  }

  /** Ancestor ids of id, parent first. */
  async ancestors(id: string): Promise<string[]> {
    const text = await readFile(this.layersFile(id), 'utf8');
    const ids = text.split('\n').filter((l) => l !== '');
    for (const a of ids) {
      if (!isLayerId(a)) throw new DriverError(`aufs: layer ${id} has a corrupt layers file`);
    }
    return ids;
  }

  /** The lower branches of id, parent first. */
  private async lowerDirs(id: string): Promise<string[]> {
    return (await this.ancestors(id)).map((a) => join(this.home, 'diff', a));
  }

  async create(id: string, parent: string | null, opts?: CreateOpts): Promise<void> {
    // Docker's aufs driver takes no per-container option (aufs has no quota), in these words.
    refuseStorageOpt(opts, '--storage-opt is not supported for aufs');
    const diff = this.diffDir(id);
    if (await this.exists(id)) throw new DriverError(`aufs: layer ${id} already exists`);
    const ancestors = parent === null ? [] : [parent, ...(await this.parentAncestors(parent))];
    try {
      await mkdir(diff, { mode: 0o755 });
      await mkdir(this.mntDir(id), { mode: 0o755 }).catch((err: unknown) => {
        if (!isCode(err, 'EEXIST')) throw err;
      });
      // Written last, whole or not at all: a layer exists once its layers file does.
      writeFileAtomic(this.layersFile(id), ancestors.map((a) => `${a}\n`).join(''));
    } catch (err) {
      await this.removeDirs(id).catch(() => undefined);
      if (isCode(err, 'EEXIST')) throw new DriverError(`aufs: layer ${id} already exists`);
      throw err;
    }
  }

  private async parentAncestors(parent: string): Promise<string[]> {
    if (!(await this.exists(parent))) throw new DriverError(`aufs: parent layer ${parent} does not exist`);
    return this.ancestors(parent);
  }

  createReadWrite(id: string, parent: string | null, opts?: CreateOpts): Promise<void> {
    return this.create(id, parent, opts);
  }

  /** Ids of the layers built directly on id. */
  private async children(id: string): Promise<string[]> {
    const out: string[] = [];
    for (const other of await readdir(join(this.home, 'layers'))) {
      if (other === id || other.endsWith('.tmp')) continue;
      const first = (await readFile(this.layersFile(other), 'utf8').catch(() => '')).split('\n', 1)[0];
      if (first === id) out.push(other);
    }
    return out;
  }

  async remove(id: string, opts?: { leaf?: boolean }): Promise<void> {
    this.checkId(id);
    if (!opts?.leaf && (await this.exists(id))) {
      const kids = await this.children(id);
      if (kids.length > 0) throw new DriverError(`aufs: cannot remove layer ${id}: ${kids.length} layer(s) are built on it (${kids[0]}…)`);
    }
    await this.refs.forget(id, this.mntDir(id), (mp) => this.unmount(id, mp));
    this.own.delete(id);
    await this.removeDirs(id);
  }

  /** The layers file goes first (the layer stops existing), then the renamed dirs. */
  private async removeDirs(id: string): Promise<void> {
    await rm(this.layersFile(id), { force: true });
    await rm(`${this.layersFile(id)}.tmp`, { force: true });
    for (const dir of [this.diffDir(id), this.mntDir(id), this.workDir(id)]) {
      const doomed = doomedPath(dir);
      try {
        await rename(dir, doomed);
        fault('rename');
      } catch (err) {
        if (isCode(err, 'ENOENT')) continue;
        throw err;
      }
      await rm(doomed, { recursive: true, force: true });
    }
  }

  private async finishRemovals(): Promise<void> {
    for (const sub of ['diff', 'mnt', 'work']) {
      for (const name of await readdir(join(this.home, sub))) {
        if (abandoned(name)) await rm(join(this.home, sub, name), { recursive: true, force: true });
      }
    }
    // A layers/<id>.tmp is not swept here: another process may be writing it this moment (a
    // `run` whose monitor opens the store while the run creates the container's layers). One a
    // killed process left belongs to an incomplete layer, and goes with it (remove).
  }

  async get(id: string): Promise<string> {
    await this.require(id);
    const lowers = await this.lowerDirs(id);
    // A base layer has nothing to union: its branch is the whole view, as in Docker.
    if (lowers.length === 0) return this.diffDir(id);
    const mnt = this.mntDir(id);
    await mkdir(mnt, { mode: 0o755 }).catch((err: unknown) => {
      if (!isCode(err, 'EEXIST')) throw err;
    });
    const count = await this.refs.acquire(id, mnt, () => this.mountUnion(id, lowers));
    // A count that restarted (the mount had vanished) voids what this process held before.
    this.own.set(id, Math.min((this.own.get(id) ?? 0) + 1, count));
    return mnt;
  }

  async put(id: string): Promise<void> {
    this.checkId(id);
    const mine = this.own.get(id) ?? 0;
    if (mine > 1) this.own.set(id, mine - 1);
    else this.own.delete(id);
    await this.refs.release(id, (mp) => this.unmount(id, mp));
  }

  private async mountUnion(id: string, lowers: string[]): Promise<void> {
    const mnt = this.mntDir(id);
    if (this.method === 'aufs') {
      this.mountKernelAufs(this.diffDir(id), lowers, mnt);
      return;
    }
    await mkdir(this.workDir(id), { mode: 0o700 }).catch((err: unknown) => {
      if (!isCode(err, 'EEXIST')) throw err;
    });
    // Paths relative to the home keep the option short; fuse-overlayfs resolves them once.
    const rel = (p: string) => p.slice(this.home.length + 1);
    const data = `lowerdir=${lowers.map(rel).join(':')},upperdir=${rel(this.diffDir(id))},workdir=${rel(this.workDir(id))}`;
    await mountFuseOverlay(FUSE_OVERLAYFS, data, mnt, this.home, 'aufs');
  }

  /**
   * Kernel aufs, as Docker mounted it: the writable branch and as many read-only ones as fit
   * in one page of mount data, then each remaining branch appended by a remount.
   */
  private mountKernelAufs(rw: string, lowers: string[], mnt: string): void {
    const options = 'dio,xino=/dev/shm/aufs.xino';
    let data = `br:${rw}=rw`;
    let i = 0;
    for (; i < lowers.length; i++) {
      const branch = `:${lowers[i]}=ro+wh`;
      if (data.length + branch.length > PAGE - OPTION_ROOM) break;
      data += branch;
    }
    mount('none', mnt, 'aufs', 0, `${data},${options}`);
    try {
      for (; i < lowers.length; i++) mount('none', mnt, 'aufs', MS_REMOUNT, `append:${lowers[i]}=ro+wh`);
    } catch (err) {
      umount2(mnt, MNT_DETACH);
      throw err;
    }
  }

  async releaseCrashed(owners: string[]): Promise<void> {
    const mntRoot = join(this.home, 'mnt') + sep;
    await this.refs.dropHolders(owners, (mp) => this.unmount(mp.slice(mntRoot.length), mp));
  }

  private async unmount(id: string, mountPoint: string): Promise<void> {
    try {
      umount2(mountPoint, 0);
    } catch (err) {
      if (isCode(err, 'EINVAL', 'ENOENT')) return;
      if (!isCode(err, 'EBUSY')) throw err;
      umount2(mountPoint, MNT_DETACH);
    }
    if (this.method === 'fuse-overlayfs' && (await this.exists(id))) {
      await aufsNormalize(this.diffDir(id), await this.lowerDirs(id));
    }
  }

  async status(): Promise<[string, string][]> {
    const dirs = (await readdir(join(this.home, 'layers'))).filter((n) => !n.endsWith('.tmp')).length;
    return [
      ['Root Dir', this.home],
      ['Backing Filesystem', backingFsName(this.home)],
      ['Dirs', String(dirs)],
      ['Dirperm1 Supported', 'false'],
      ['Supports d_type', String(supportsDType(this.home))],
      [
        'Mount Method',
        this.method === 'aufs' ? 'kernel aufs' : 'fuse-overlayfs (the kernel has no aufs; whiteouts stay in band)',
      ],
    ];
  }

  async ownDir(id: string): Promise<string> {
    await this.require(id);
    return this.diffDir(id);
  }

  async metadata(id: string): Promise<Record<string, string>> {
    await this.require(id);
    const out: Record<string, string> = { DiffDir: this.diffDir(id), LayersFile: this.layersFile(id) };
    if ((await this.ancestors(id)).length > 0) out.MountDir = this.mntDir(id);
    return out;
  }

  /**
   * Whether id's branch can be read as its changeset against parent: parent must be its own
   * parent, and a fuse-overlayfs branch must not be mounted (it is in overlay's form until
   * it unmounts; it is brought into aufs's form here in case an unmount was cut short).
   */
  private async native(id: string, parent: string | null): Promise<string[] | null> {
    await this.require(id);
    const ancestors = await this.ancestors(id);
    if ((ancestors[0] ?? null) !== parent) return null;
    const lowers = ancestors.map((a) => join(this.home, 'diff', a));
    if (this.method === 'fuse-overlayfs') {
      if (ancestors.length > 0 && isMountPoint(this.mntDir(id))) return null;
      await aufsNormalize(this.diffDir(id), lowers);
    }
    return lowers;
  }

  async diff(id: string, parent: string | null): Promise<Readable> {
    if ((await this.native(id, parent)) === null) return this.naive.diff(id, parent);
    return packDirectory(this.diffDir(id), { whiteouts: 'aufs' });
  }

  /** The naive comparison of the mounted trees, as overlay2's changes (Docker's `docker diff` output). */
  async changes(id: string, parent: string | null): Promise<Change[]> {
    await this.require(id);
    return this.naive.changes(id, parent);
  }

  async applyDiff(id: string, parent: string | null, tar: Readable): Promise<number> {
    await this.require(id);
    const ancestors = await this.ancestors(id);
    if ((ancestors[0] ?? null) !== parent) return this.naive.applyDiff(id, parent, tar);
    const { size } = await applyLayer(this.diffDir(id), tar, {
      whiteouts: 'aufs',
      lowers: ancestors.map((a) => join(this.home, 'diff', a)),
      durable: true,
    });
    return size;
  }

  async diffSize(id: string, parent: string | null): Promise<number> {
    if ((await this.native(id, parent)) === null) return this.naive.diffSize(id, parent);
    return contentSize(this.diffDir(id));
  }

  async inventory(): Promise<Inventory> {
    const ids = new Set<string>();
    const out: Inventory = { layers: [], leftovers: [] };
    for (const sub of ['diff', 'mnt', 'work']) {
      for (const name of await readdir(join(this.home, sub))) {
        const path = join(this.home, sub, name);
        const doomed = parseDoomed(name);
        if (doomed) {
          out.leftovers.push({ what: path, ...doomed, remove: () => rm(path, { recursive: true, force: true }) });
        } else if (sub === 'diff' && isLayerId(name)) {
          ids.add(name);
        }
      }
    }
    for (const name of await readdir(join(this.home, 'layers'))) {
      const path = join(this.home, 'layers', name);
      if (name.endsWith('.tmp')) out.leftovers.push({ what: path, layer: name.slice(0, -'.tmp'.length), owner: null, remove: () => rm(path, { force: true }) });
      else if (isLayerId(name)) ids.add(name);
    }
    out.layers = [...ids];
    const mntRoot = join(this.home, 'mnt') + sep;
    const strays = mountsUnder(this.home).filter((mp) => mp.startsWith(mntRoot));
    out.leftovers.push(...(await this.refs.strays(strays, (p) => this.unmount(p.slice(mntRoot.length), p))));
    return out;
  }

  /**
   * Drop the references this process holds, then unmount what no process holds: count-0
   * mounts and mounts nobody recorded (a process died between mounting and counting).
   */
  async cleanup(): Promise<void> {
    for (const [id, n] of [...this.own]) {
      for (let i = 0; i < n; i++) {
        if ((await this.refs.release(id, (mp) => this.unmount(id, mp))) === 0) break;
      }
      this.own.delete(id);
    }
    const mntRoot = join(this.home, 'mnt') + sep;
    const strays = mountsUnder(this.home).filter((mp) => mp.startsWith(mntRoot));
    await this.refs.sweep((mp) => this.unmount(mp.slice(mntRoot.length), mp), strays);
  }
}
