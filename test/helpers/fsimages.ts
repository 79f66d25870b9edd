// Filesystems of their own for the btrfs and zfs driver tests: a loop-mounted btrfs image and
// a zfs-fuse pool on a sparse file. Everything here is synchronous so that the same teardown
// can run from node:test's after() and from a process 'exit' hook (a crashed or killed test
// file still unmounts, detaches, destroys and stops what it made).
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { LOCK_EX, LOCK_SH, LOCK_UN, tryFlock } from '../../src/sys/linux.js';
import { mountsUnder } from '../../src/sys/mountinfo.js';
import { runToolSync } from '../../src/sys/run.js';
import { unmountAllUnder } from './mounts.js';

export interface ScratchFs {
  /** Where the filesystem (or the pool's root dataset) is mounted. */
  mountPoint: string;
  /** Undo everything; safe to call more than once. */
  teardown(): void;
}

export interface LoopFs extends ScratchFs {
  device: string;
}

export interface ZfsPool extends ScratchFs {
  pool: string;
}

/** A sparse btrfs image on a loop device, mounted, torn down after the test file. */
export function useBtrfs(sizeMiB = 4096): LoopFs {
  return tearDownLater(makeBtrfs(sizeMiB));
}

/** A zfs-fuse pool on a sparse file (starting the daemon when none runs), torn down after the test file. */
export function useZfsPool(sizeMiB = 4096): ZfsPool {
  return tearDownLater(makeZfsPool(sizeMiB));
}

/** Let os.tmpdir() (and so every scratch dir and driver session root) live inside fs. */
export function tmpdirOn(fs: ScratchFs): string {
  const dir = join(fs.mountPoint, 'tmp');
  runToolSync('mkdir', ['-p', '-m', '1777', dir]);
  process.env.TMPDIR = dir;
  return dir;
}

function tearDownLater<T extends ScratchFs>(fs: T): T {
  const originalTmp = process.env.TMPDIR;
  const undo = () => {
    if (originalTmp === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = originalTmp;
    fs.teardown();
  };
  after(async () => {
    undo();
    await daemonReaped();
  });
  process.on('exit', undo);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      undo();
      process.exit(128 + (sig === 'SIGINT' ? 2 : 15));
    });
  }
  return fs;
}

export function makeBtrfs(sizeMiB: number): LoopFs {
  return makeLoopFs('btrfs', sizeMiB);
}

/**
 * A sparse image of a fresh filesystem on a loop device, mounted. ext4 is made as mkfs.ext4's
 * defaults make it (with a journal, unlike this machine's root filesystem) and with its inode
 * tables written up front, so no background initialisation runs while it is measured. The image
 * file lives in `under` (default os.tmpdir()): a tmpfs there keeps the root disk's own state
 * (free-space fragments, recently deleted inodes) out of what is measured.
 */
export function makeLoopFs(type: 'btrfs' | 'ext4' | 'xfs', sizeMiB: number, under = tmpdir()): LoopFs {
  const base = mkdtempSync(join(under, `strata-${type}-`));
  const image = join(base, `${type}.img`);
  const mountPoint = join(base, 'mnt');
  let device = '';
  const teardown = teardownOnce(type, () => [
    () => unmountAllUnder(mountPoint),
    () => device && runToolSync('losetup', ['-d', device]),
    () => rmSync(base, { recursive: true, force: true }),
  ]);
  const mkfs: Record<typeof type, string[]> = {
    btrfs: ['mkfs.btrfs', '-q', image],
    ext4: ['mkfs.ext4', '-q', '-E', 'lazy_itable_init=0,lazy_journal_init=0', image],
    xfs: ['mkfs.xfs', '-q', image],
  };
  try {
    runToolSync('truncate', ['-s', `${sizeMiB}M`, image]);
    const [cmd, ...args] = mkfs[type];
    runToolSync(cmd!, args);
    device = runToolSync('losetup', ['-f', '--show', image]).trim();
    runToolSync('mkdir', ['-p', mountPoint]);
    runToolSync('mount', ['-t', type, device, mountPoint]);
  } catch (err) {
    teardown();
    throw err;
  }
  return { mountPoint, device, teardown };
}

/** A tmpfs of at most sizeMiB (it holds only what is written to it), mounted on a directory of its own. */
export function makeTmpfs(sizeMiB: number): ScratchFs {
  // A short name: podman refuses a run root path over 50 characters, and a bench's sits on a loop fs below this.
  const mountPoint = mkdtempSync(join(tmpdir(), 'strata-tm-'));
  const teardown = teardownOnce('tmpfs', () => [() => unmountAllUnder(mountPoint), () => rmSync(mountPoint, { recursive: true, force: true })]);
  try {
    runToolSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMiB}M,mode=0700`, 'tmpfs', mountPoint]);
  } catch (err) {
    teardown();
    throw err;
  }
  return { mountPoint, teardown };
}

export function makeZfsPool(sizeMiB: number): ZfsPool {
  const base = mkdtempSync(join(tmpdir(), 'strata-zfs-'));
  const image = join(base, 'pool.img');
  const mountPoint = join(base, 'mnt');
  // Pool names start with a letter; pid and time keep parallel test files apart.
  const pool = `strata${process.pid}t${Date.now().toString(36)}`;
  let created = false;
  let daemon = false;
  let done = false;
  const teardown = () => {
    if (done) return;
    done = true;
    const errors: string[] = [];
    if (created) {
      // zfs-fuse unmounts the pool's datasets itself; a mount a test left busy goes first.
      attempt(errors, () => {
        for (const mp of [...mountsUnder(mountPoint), mountPoint]) {
          try {
            runToolSync('zfs', ['unmount', '-f', mp]);
          } catch {
            // not a zfs mount point (or already gone): destroy below still decides
          }
        }
      });
      attempt(errors, () => destroyPool(pool));
      attempt(errors, () => unmountAllUnder(mountPoint));
    }
    if (daemon) attempt(errors, releaseZfsDaemon);
    attempt(errors, () => rmSync(base, { recursive: true, force: true }));
    if (errors.length > 0) throw new Error(`zfs teardown: ${errors.join('; ')}`);
  };
  try {
    acquireZfsDaemon();
    daemon = true;
    runToolSync('truncate', ['-s', `${sizeMiB}M`, image]);
    // No cache file: a pool nobody destroyed is not imported again by the next daemon.
    runToolSync('zpool', ['create', '-o', 'cachefile=none', '-m', mountPoint, pool, image]);
    created = true;
  } catch (err) {
    teardown();
    throw err;
  }
  return { mountPoint, pool, teardown };
}

/**
 * `zpool destroy -f`, again for a while when zfs-fuse says the pool is busy: after its forced
 * unmounts it can take a moment to let go of the datasets' last files.
 */
function destroyPool(pool: string): void {
  const deadline = Date.now() + 20000;
  for (;;) {
    try {
      runToolSync('zpool', ['destroy', '-f', pool]);
      return;
    } catch (err) {
      const said = String((err as { stderr?: Buffer }).stderr ?? '');
      if (!/busy/.test(said) || Date.now() > deadline) throw err;
      sleep(250);
    }
  }
}

// ---- one zfs-fuse daemon shared by every test process -----------------------------------
// zfs-fuse serves one socket (/var/run/zfs/zfs_socket) per machine. Each user holds a shared
// flock on USERS while it needs the daemon; whoever finds no other holder on the way out stops
// the daemon, if a test started it (PIDFILE). MUTEX orders starting and stopping.

const MUTEX = '/tmp/strata-test-zfs-fuse.lock';
const USERS = '/tmp/strata-test-zfs-fuse.users';
const PIDFILE = '/tmp/strata-test-zfs-fuse.pid';
let usersFd: number | null = null;
/** The daemon when this process started it: its exit must be waited for, or it stays a zombie. */
let daemonChild: ChildProcess | null = null;

/** Resolve once a daemon this process started and stopped has been reaped (at most 15 s). */
async function daemonReaped(): Promise<void> {
  const child = daemonChild;
  if (!child || child.exitCode !== null || child.signalCode !== null || alive(child.pid ?? 0)) return;
  // Both referenced, so the event loop stays up until libuv has reaped the child.
  child.ref();
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([once(child, 'exit'), new Promise((r) => (timer = setTimeout(r, 15000)))]);
  clearTimeout(timer);
}

function acquireZfsDaemon(): void {
  withMutex(() => {
    if (!zfsDaemonAnswers()) startZfsDaemon();
    usersFd = openSync(USERS, 'a', 0o600);
    if (!tryFlock(usersFd, LOCK_SH)) throw new Error(`zfs-fuse users lock ${USERS} is held exclusively`);
  });
}

function releaseZfsDaemon(): void {
  withMutex(() => {
    if (usersFd !== null) {
      tryFlock(usersFd, LOCK_UN);
      closeSync(usersFd);
      usersFd = null;
    }
    const probe = openSync(USERS, 'a', 0o600);
    try {
      if (!tryFlock(probe, LOCK_EX)) return; // another test process still uses the daemon
      stopZfsDaemon();
    } finally {
      closeSync(probe);
    }
  });
}

function startZfsDaemon(): void {
  // -n: stay a child we can signal; -x: xattrs (off by default, layers need them);
  // attribute and entry caching as /etc/zfs/zfsrc sets it (each layer is its own mount, written
  // only through it), without which a corpus image loads 4x slower;
  // --no-kstat-mount: no /zfs-kstat mount to leave behind.
  const child = spawn('zfs-fuse', ['-n', '-x', '--no-kstat-mount'], { detached: true, stdio: 'ignore' });
  child.unref();
  daemonChild = child;
  if (child.pid === undefined) throw new Error('zfs-fuse did not start (is the zfs-fuse package installed?)');
  writeFileSync(PIDFILE, String(child.pid));
  const deadline = Date.now() + 15000;
  while (!zfsDaemonAnswers()) {
    if (!alive(child.pid)) throw new Error('zfs-fuse exited right after starting (is /dev/fuse there?)');
    if (Date.now() > deadline) throw new Error('zfs-fuse did not answer on its socket within 15 s');
    sleep(100);
  }
}

function stopZfsDaemon(): void {
  if (!existsSync(PIDFILE)) return; // a daemon someone else runs is not ours to stop
  const pid = Number(readFileSync(PIDFILE, 'utf8'));
  unlinkSync(PIDFILE);
  if (!Number.isInteger(pid) || pid <= 1 || !isZfsFuse(pid)) return;
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + 15000;
  while (alive(pid) && Date.now() < deadline) sleep(50);
  if (alive(pid)) process.kill(pid, 'SIGKILL');
  const hardDeadline = Date.now() + 5000;
  while (alive(pid) && Date.now() < hardDeadline) sleep(50);
}

function zfsDaemonAnswers(): boolean {
  try {
    runToolSync('zpool', ['list', '-H'], { timeoutMs: 10000 });
    return true;
  } catch {
    return false;
  }
}

function isZfsFuse(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'zfs-fuse';
  } catch {
    return false;
  }
}

/** Running (a zombie waiting to be reaped counts as gone). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function withMutex(fn: () => void): void {
  const fd = openSync(MUTEX, 'a', 0o600);
  try {
    const deadline = Date.now() + 60000;
    while (!tryFlock(fd, LOCK_EX)) {
      if (Date.now() > deadline) throw new Error(`zfs-fuse test lock ${MUTEX} still held after 60 s`);
      sleep(50);
    }
    fn();
  } finally {
    closeSync(fd); // closing drops the lock
  }
}

// ---- shared --------------------------------------------------------------------------

/** A teardown that acts once: every step (listed when it runs), even past one that fails, then one error naming what failed. */
function teardownOnce(what: string, steps: () => (() => unknown)[]): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    const errors: string[] = [];
    for (const step of steps()) attempt(errors, step);
    if (errors.length > 0) throw new Error(`${what} teardown: ${errors.join('; ')}`);
  };
}

function attempt(errors: string[], fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    const said = (err as { stderr?: Buffer | string }).stderr?.toString().trim();
    errors.push(`${err instanceof Error ? err.message.split('\n')[0] : String(err)}${said ? ` (${said})` : ''}`);
  }
}

function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
