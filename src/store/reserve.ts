// A MiB kept allocated in the store root and given back the moment a write finds the disk
// full. SQLite needs free blocks to record a removal (WAL frames): without a reserve, a full
// disk locks out the very commands (rmi, rm, system prune) that would free space. Measured on
// a full ext4: a normal open fails with SQLITE_IOERR_SHMSIZE (reads are handled without the
// reserve, see db.ts) and writes with SQLITE_FULL until a few hundred KiB are free; the WAL
// stays under about 400 KiB because the database checkpoints every 100 pages (db.ts).
import { closeSync, existsSync, fsyncSync, openSync, readdirSync, renameSync, rmSync, statfsSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/** Size of the reserve: room for SQLite's index and its WAL between checkpoints, twice over. */
export const RESERVE_BYTES = 1 << 20;
const NAME = 'space-reserve';

export function reservePath(root: string): string {
  return join(root, NAME);
}

/** True for the ways a full filesystem shows up: errno ENOSPC/EDQUOT or SQLite's codes for them. */
export function isNoSpace(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT' || code === 'SQLITE_FULL' || code === 'SQLITE_IOERR_SHMSIZE';
}

/** Give the reserve back to the filesystem; true when there was one to give. */
export function releaseReserve(root: string): boolean {
  try {
    unlinkSync(reservePath(root));
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/** Run fn; when it fails for lack of space and a reserve was there to give back, run it once more. */
export function withReserve<T>(root: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (!isNoSpace(err) || !releaseReserve(root)) throw err;
    return fn();
  }
}

/**
 * Allocate the reserve when it is missing and the filesystem has room to spare (twice its
 * size); otherwise, or when writing it fails, there is simply no reserve this time. Costs one
 * stat when the reserve is there, so it runs at every open and close (a command that freed
 * space puts the reserve back before the disk can fill again).
 */
export function ensureReserve(root: string): void {
  const path = reservePath(root);
  if (existsSync(path)) return;
  for (const name of readdirSync(root)) {
    // A reserve a killed process was writing.
    if (name.startsWith(`${NAME}.`) && name.endsWith('.tmp')) rmSync(join(root, name), { force: true });
  }
  if (freeBytes(root) < 2 * RESERVE_BYTES) return;
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    const fd = openSync(tmp, 'w', 0o600);
    try {
      // Real zeros, not a sparse file: the blocks must be allocated to be given back.
      const chunk = Buffer.alloc(1 << 20);
      for (let off = 0; off < RESERVE_BYTES; off += chunk.length) writeSync(fd, chunk);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    if (!isNoSpace(err)) throw err;
  }
}

/** Bytes this process may still write under dir (root may use the blocks ext4 keeps back from others). */
export function freeBytes(dir: string): number {
  const st = statfsSync(dir);
  return (process.getuid?.() === 0 ? st.bfree : st.bavail) * st.bsize;
}
