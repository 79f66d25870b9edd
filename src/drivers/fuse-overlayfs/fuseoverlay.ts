// fuse-overlayfs: the overlay2 layout served by the fuse-overlayfs program instead of the
// kernel, for hosts without kernel overlay (or without the privilege to mount it). Layers are
// applied with kernel-overlay whiteouts (0/0 char devices, trusted.overlay.opaque), which
// fuse-overlayfs honours in its lower dirs; as root it also writes them that way in the upper.
import { join } from 'node:path';
import { backingFsName, supportsDType } from '../../sys/fsprobe.js';
import { MNT_DETACH, umount2 } from '../../sys/linux.js';
import { runTool } from '../../sys/run.js';
import { DriverError, type CreateOpts, type DriverOptions } from '../driver.js';
import { refuseStorageOpt } from '../common/storage-opt.js';
import { NaiveDiff } from '../common/naivediff.js';
import { OverlayBase, type DiffFallback } from '../overlay/base.js';
import { findProgram, FUSE_OVERLAYFS, fuseOverlayUnusable, mountFuseOverlay } from '../common/fuse.js';
import { isCode } from '../../sys/errno.js';

export function fuseOverlayUsable(root: string): Promise<true | string> {
  return Promise.resolve(fuseOverlayUnusable(root) ?? true);
}

export class FuseOverlayDriver extends OverlayBase {
  readonly name = 'fuse-overlayfs';
  protected readonly naive: DiffFallback = new NaiveDiff(this);
  private readonly program: string;

  private constructor(opts: DriverOptions, program: string) {
    super('fuse-overlayfs', opts);
    this.program = program;
  }

  /** Open (creating if needed) the fuse-overlayfs data under `${root}/fuse-overlayfs`. */
  static async open(opts: DriverOptions): Promise<FuseOverlayDriver> {
    for (const key of Object.keys(opts.options)) {
      if (key === 'fuse-overlayfs.size') throw new DriverError('fuse-overlayfs has no quota support');
      throw new DriverError(`fuse-overlayfs: unknown option ${key}`);
    }
    const program = findProgram(FUSE_OVERLAYFS);
    if (program === null) throw new DriverError(`fuse-overlayfs is not usable: the ${FUSE_OVERLAYFS} program is not installed`);
    const d = new FuseOverlayDriver(opts, program);
    await d.init();
    return d;
  }

  /** Docker's fuse-overlayfs driver takes no per-container option, and says so in these words. */
  protected override checkCreateOpts(opts?: CreateOpts): void {
    refuseStorageOpt(opts, '--storage-opt is not supported');
  }

  protected async mountLayer(id: string, lowers: string[]): Promise<void> {
    // Paths relative to the home keep the option short; fuse-overlayfs resolves them against
    // its working directory once, at mount time.
    const data = `lowerdir=${lowers.join(':')},upperdir=${join(id, 'diff')},workdir=${join(id, 'work')}`;
    await mountFuseOverlay(this.program, data, this.layout.mergedDir(id), this.home);
  }

  protected async unmountLayer(mountPoint: string): Promise<void> {
    try {
      umount2(mountPoint, 0);
      return;
    } catch (err) {
      if (isCode(err, 'EINVAL') || isCode(err, 'ENOENT')) return;
      if (!isCode(err, 'EPERM') && !isCode(err, 'EBUSY')) throw err;
      // Unprivileged: fusermount3 is the setuid way out. Busy: detach like overlay2 does.
      if (isCode(err, 'EBUSY')) {
        umount2(mountPoint, MNT_DETACH);
        return;
      }
    }
    const fusermount = findProgram('fusermount3') ?? findProgram('fusermount');
    if (fusermount === null) throw new DriverError(`cannot unmount ${mountPoint}: no permission and no fusermount3`);
    await runTool(fusermount, ['-u', mountPoint]);
  }

  /**
   * Docker's fuse-overlayfs driver always diffs naively; we do too. Its uppers do use the
   * kernel's whiteout format as root, but nothing here has checked every case (renamed dirs,
   * copy-up of opaque dirs) the way overlay2's check does for the kernel.
   */
  protected nativeDiff(): Promise<boolean> {
    return Promise.resolve(false);
  }

  async status(): Promise<[string, string][]> {
    await this.init();
    return [
      ['Backing Filesystem', backingFsName(this.home)],
      ['Supports d_type', String(supportsDType(this.home))],
      ['Native Overlay Diff', 'false'],
    ];
  }
}
