// overlay2: kernel OverlayFS over Docker's layout. A container layer is an empty upper dir on
// top of the image's diff dirs, so creating one costs a few directories whatever the image.
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { backingFsName, FS_MAGIC, supportsDType } from '../../sys/fsprobe.js';
import { lgetxattr, lsetxattr, MNT_DETACH, mount, statfsType, umount2 } from '../../sys/linux.js';
import { mountWithFsConfig, overlaySupportsLowerdirPlus, type FsOption } from '../../sys/mountapi.js';
import { DriverError, type DriverOptions } from '../driver.js';
import { NaiveDiff } from '../common/naivediff.js';
import { OverlayBase, probeDirPrefix, type DiffFallback } from '../overlay/base.js';
import { dTypeSupported, nearestExisting } from '../common/backing.js';
import { cachedProbe, probeCache } from '../common/probe-cache.js';
import { isCode } from '../../sys/errno.js';
import { inUserNamespace, overlayXattr } from '../../sys/rootless.js';

// mount(2) copies its data argument into one page, NUL included.
const PAGE_SIZE = 4096;

type MountApi = 'auto' | 'mount' | 'fsconfig';

function kernelHasOverlay(): boolean {
  try {
    return /\toverlay$/m.test(readFileSync('/proc/filesystems', 'utf8'));
  } catch {
    return false;
  }
}

function overlayParam(name: string): string | null {
  try {
    return readFileSync(`/sys/module/overlay/parameters/${name}`, 'utf8').trim();
  } catch {
    return null;
  }
}

/** Why overlay2 cannot run with its data under root, or null when it can. */
export function overlay2Unusable(root: string): string | null {
  if (!kernelHasOverlay()) return 'the kernel has no overlay filesystem (/proc/filesystems)';
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'overlay2 needs root, or root of a user namespace (strata unshare)';
  const at = nearestExisting(join(root, 'overlay2'));
  const magic = statfsType(at);
  if (magic === FS_MAGIC.overlay) return `${at} is itself on overlayfs, which cannot be an overlay2 backing filesystem`;
  if (!dTypeSupported(root, at)) return `the backing filesystem of ${at} (${backingFsName(at)}) does not support d_type`;
  return null;
}

/** The registry's usable() check: true, or why not. */
export function overlay2Usable(root: string): Promise<true | string> {
  return Promise.resolve(overlay2Unusable(root) ?? true);
}

export class Overlay2Driver extends OverlayBase {
  readonly name = 'overlay2';
  protected readonly naive: DiffFallback = new NaiveDiff(this);
  protected override readonly readsLayerDirs = true;
  private readonly mountApi: MountApi;
  private readonly userxattr = inUserNamespace();
  private readonly indexOff = overlayParam('index') !== null;
  private upperExact: boolean | undefined;
  private native: Promise<boolean> | null = null;
  /** The native diff check could not run (no space for its probe dirs). */
  private nativeUnknown = false;

  constructor(opts: DriverOptions) {
    super('overlay2', opts);
    let api: MountApi = 'auto';
    for (const [key, value] of Object.entries(opts.options)) {
      // Any other key is refused, as Docker's overlay2 refuses it: an option taken and ignored
      // would let a script believe it had an effect.
      if (key === 'overlay2.size') {
        throw new DriverError('overlay2.size needs xfs project quota, which strata does not support');
      }
      // Which syscalls mount a layer; 'auto' uses mount(2) while the data fits a page.
      if (key === 'overlay2.mountapi' && (value === 'auto' || value === 'mount' || value === 'fsconfig')) {
        api = value;
        continue;
      }
      throw new DriverError(`overlay2: unknown option ${key}=${value}`);
    }
    if (api === 'fsconfig' && !overlaySupportsLowerdirPlus()) {
      throw new DriverError("overlay2.mountapi=fsconfig needs overlay's lowerdir+ (Linux 6.8 or later)");
    }
    this.mountApi = api;
  }

  /** Open (creating if needed) the overlay2 data under `${root}/overlay2`. */
  static async open(opts: DriverOptions): Promise<Overlay2Driver> {
    const reason = overlay2Unusable(opts.root);
    if (reason !== null) throw new DriverError(`overlay2 is not usable: ${reason}`);
    const d = new Overlay2Driver(opts);
    await d.init();
    return d;
  }

  private extraOptions(): FsOption[] {
    const out: FsOption[] = [];
    if (this.indexOff) out.push(['index', 'off']);
    if (this.userxattr) out.push(['userxattr', true]);
    return out;
  }

  private classicData(lowers: string, rw: { upper: string; work: string } | null): string {
    const extra = this.extraOptions().map(([k, v]) => (v === true ? k : `${k}=${v}`));
    const upper = rw === null ? [] : [`upperdir=${rw.upper}`, `workdir=${rw.work}`];
    return [`lowerdir=${lowers}`, ...upper, ...extra].join(',');
  }

  protected mountLayer(id: string, lowers: string[]): Promise<void> {
    return this.mountOverlay(id, lowers, { upper: join(id, 'diff'), work: join(id, 'work') }, this.layout.mergedDir(id));
  }

  /** A read-only overlay (no upper dir) of a deep chain's lowest layers, for a view to stack on. */
  protected override mountStack(mountPoint: string, lowers: string[]): Promise<void> {
    return this.mountOverlay(basename(dirname(mountPoint)), lowers, null, mountPoint);
  }

  /**
   * Mount an overlay of lowers (relative to the home, parent first) with rw's upper and work
   * dirs (relative to the home), or read-only without them, at target.
   */
  private async mountOverlay(id: string, lowers: string[], rw: { upper: string; work: string } | null, target: string): Promise<void> {
    const abs = rw === null ? null : { upper: join(this.home, rw.upper), work: join(this.home, rw.work) };
    const lowerDirs = await this.layout.resolve(id, lowers);
    const absolute = this.classicData(lowerDirs.join(':'), abs);
    const fitsPage = Buffer.byteLength(absolute) + 1 <= PAGE_SIZE;

    if (this.mountApi === 'fsconfig' || (this.mountApi === 'auto' && !fitsPage && overlaySupportsLowerdirPlus())) {
      const options: FsOption[] = lowerDirs.map((l): FsOption => ['lowerdir+', l]);
      if (abs !== null) options.push(['upperdir', abs.upper], ['workdir', abs.work]);
      options.push(...this.extraOptions());
      mountWithFsConfig('overlay', 'overlay', options, target);
      return;
    }
    if (fitsPage) {
      mount('overlay', target, 'overlay', 0, absolute);
      return;
    }
    // Too long with host paths: name everything relative to the home, where the short
    // `l/` links live, and mount from there. koffi calls run on the main thread, so nothing
    // else of ours runs between the two chdirs.
    const relativeData = this.classicData(lowers.join(':'), rw);
    if (Buffer.byteLength(relativeData) + 1 > PAGE_SIZE) {
      throw new DriverError(
        `cannot mount layer ${id}: ${lowers.length} lower layers do not fit mount(2)'s page and this kernel has no lowerdir+ (Linux 6.8)`,
      );
    }
    const cwd = process.cwd();
    process.chdir(this.home);
    try {
      mount('overlay', target, 'overlay', 0, relativeData);
    } finally {
      process.chdir(cwd);
    }
  }

  protected unmountLayer(mountPoint: string): Promise<void> {
    try {
      // Detached like Docker: a process still inside the view keeps it alive, we don't wait.
      umount2(mountPoint, MNT_DETACH);
    } catch (err) {
      if (!isCode(err, 'EINVAL') && !isCode(err, 'ENOENT')) throw err;
    }
    return Promise.resolve();
  }

  /**
   * With metacopy a copied-up file's upper holds no data (its blocks are the lower's); with
   * redirect_dir a renamed directory's children stay in the lower dirs.
   */
  protected override upperHoldsEntries(): boolean {
    this.upperExact ??= overlayParam('metacopy') !== 'Y' && overlayParam('redirect_dir') !== 'Y';
    return this.upperExact;
  }

  protected nativeDiff(): Promise<boolean> {
    // What decides is the kernel's overlay and its parameters: the answer is kept in the root's
    // probe cache for this boot, rather than mounting a test overlay in every diff or commit.
    const params = ['metacopy', 'redirect_dir', 'index'].map((p) => `${p}=${overlayParam(p)}`).join(' ');
    this.native ??= cachedProbe(probeCache(this.opts.root), 'overlay2 native diff', params, async () => {
      const native = await this.checkNativeDiff();
      return this.nativeUnknown ? undefined : native;
    });
    return this.native;
  }

  /**
   * Docker's doesSupportNativeDiff: an upper dir can be read as a changeset only when copying
   * up an opaque dir does not mark the copy opaque, and renaming a dir does not leave a
   * redirect xattr (redirect_dir) that layer tars cannot express. Metadata-only copy-up
   * (metacopy) leaves uppers without data, so it rules native diff out too.
   */
  private async checkNativeDiff(): Promise<boolean> {
    if (overlayParam('metacopy') === 'Y') return false;
    await this.init();
    let td: string | null = null;
    // What is checked is the kernel's overlay, not the backing filesystem: when the home's
    // filesystem is full, the system's temp dir serves; when that is full too, the naive diff
    // (right whatever the kernel does, only slower) is used.
    for (const dir of [this.home, tmpdir()]) {
      try {
        td = await mkdtemp(join(dir, probeDirPrefix()));
        break;
      } catch (err) {
        if (!isCode(err, 'ENOSPC') && !isCode(err, 'EDQUOT')) throw err;
      }
    }
    if (td === null) {
      this.nativeUnknown = true;
      return false;
    }
    const merged = join(td, 'merged');
    let mounted = false;
    try {
      for (const d of ['l1/d', 'l1/d1', 'l2/d', 'l3', 'work', 'merged']) await mkdir(join(td, d), { recursive: true });
      await writeFile(join(td, 'l2/d/f'), '');
      lsetxattr(join(td, 'l2/d'), overlayXattr('opaque'), Buffer.from('y'));
      const data = this.classicData(`${join(td, 'l2')}:${join(td, 'l1')}`, { upper: join(td, 'l3'), work: join(td, 'work') });
      mount('overlay', merged, 'overlay', 0, data);
      mounted = true;
      // Writing in d copies the opaque dir up from l2 into l3.
      await writeFile(join(merged, 'd/f'), 'x');
      if (lgetxattr(join(td, 'l3/d'), overlayXattr('opaque'))?.toString() === 'y') return false;
      try {
        await rename(join(merged, 'd1'), join(merged, 'd2'));
      } catch (err) {
        // EXDEV: the kernel refuses to rename lower dirs, so no redirects can appear.
        if (isCode(err, 'EXDEV')) return true;
        throw err;
      }
      return lgetxattr(join(td, 'l3/d2'), overlayXattr('redirect')) === null;
    } catch {
      return false;
    } finally {
      if (mounted) umount2(merged, MNT_DETACH);
      await rm(td, { recursive: true, force: true });
    }
  }

  async status(): Promise<[string, string][]> {
    await this.init();
    return [
      ['Backing Filesystem', backingFsName(this.home)],
      ['Supports d_type', String(supportsDType(this.home))],
      ['Native Overlay Diff', (await this.nativeDiff()) || !this.nativeUnknown ? String(await this.nativeDiff()) : 'false (not checked: no space left on device)'],
      ['userxattr', String(this.userxattr)],
    ];
  }
}
