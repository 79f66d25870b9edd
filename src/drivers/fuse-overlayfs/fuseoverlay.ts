// fuse-overlayfs: the overlay2 layout served by the fuse-overlayfs program instead of the
// kernel, for hosts without kernel overlay (or without the privilege to mount it). Layers are
// applied with kernel-overlay whiteouts (0/0 char devices, trusted.overlay.opaque), which
// fuse-overlayfs honours in its lower dirs; as root it also writes them that way in the upper.
import { spawn } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { backingFsName, FS_MAGIC, supportsDType } from '../../sys/fsprobe.js';
import { MNT_DETACH, statfsType, umount2 } from '../../sys/linux.js';
import { isMountPoint } from '../../sys/mountinfo.js';
import { DriverError, type DriverOptions } from '../driver.js';
import { NaiveDiff } from '../common/naivediff.js';
import { OverlayBase, type DiffFallback } from '../overlay/base.js';
import { nearestExisting } from '../common/backing.js';

const PROGRAM = 'fuse-overlayfs';

function findProgram(name: string): string | null {
  for (const dir of (process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(delimiter)) {
    if (dir === '') continue;
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return null;
}

/** Why fuse-overlayfs cannot run with its data under root, or null when it can. */
export function fuseOverlayUnusable(root: string): string | null {
  if (findProgram(PROGRAM) === null) return `the ${PROGRAM} program is not installed`;
  if (!existsSync('/dev/fuse')) return '/dev/fuse is missing';
  let fs = '';
  try {
    fs = readFileSync('/proc/filesystems', 'utf8');
  } catch {
    // no /proc: let the mount itself fail later with its own message
  }
  if (fs !== '' && !/\tfuse$/m.test(fs)) return 'the kernel has no fuse filesystem';
  const at = nearestExisting(join(root, 'fuse-overlayfs'));
  if (statfsType(at) === FS_MAGIC.overlay) return `${at} is on overlayfs, which fuse-overlayfs cannot use as upper`;
  if (!supportsDType(at)) return `the backing filesystem of ${at} (${backingFsName(at)}) does not support d_type`;
  return null;
}

export function fuseOverlayUsable(root: string): Promise<true | string> {
  return Promise.resolve(fuseOverlayUnusable(root) ?? true);
}

/**
 * Run a FUSE mount helper (fuse-overlayfs, fusermount) from cwd; a failure rejects with one line
 * naming the command (after `who`, when given) and what it said.
 */
export function runMountHelper(cmd: string, args: string[], cwd: string, who = ''): Promise<void> {
  const name = who ? `${who}: ${cmd}` : cmd;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (s: string) => {
      if (err.length < 4096) err += s;
    });
    child.on('error', (e) => reject(new DriverError(`${name}: ${e.message}`)));
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else {
        // The host's mount options echo back as "unknown argument ignored" noise; keep the rest.
        const msg = err
          .split('\n')
          .filter((l) => l.trim() !== '' && !l.startsWith('unknown argument ignored'))
          .join('; ');
        reject(new DriverError(`${name} failed (${signal ?? `exit ${code}`}): ${msg || 'no message'}`));
      }
    });
  });
}

function isCode(err: unknown, code: string): boolean {
  return (err as NodeJS.ErrnoException).code === code;
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
      if (key.startsWith('fuse-overlayfs.')) throw new DriverError(`fuse-overlayfs: unknown option ${key}`);
    }
    const program = findProgram(PROGRAM);
    if (program === null) throw new DriverError(`fuse-overlayfs is not usable: the ${PROGRAM} program is not installed`);
    const d = new FuseOverlayDriver(opts, program);
    await d.init();
    return d;
  }

  protected async mountLayer(id: string, lowerLinks: string[]): Promise<void> {
    // Paths relative to the home keep the option short; fuse-overlayfs resolves them against
    // its working directory once, at mount time.
    const data = `lowerdir=${lowerLinks.join(':')},upperdir=${join(id, 'diff')},workdir=${join(id, 'work')}`;
    const merged = this.layout.mergedDir(id);
    await runMountHelper(this.program, ['-o', data, merged], this.home);
    if (!isMountPoint(merged)) throw new DriverError(`${PROGRAM} exited without mounting ${merged}`);
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
    await runMountHelper(fusermount, ['-u', mountPoint], '/');
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
