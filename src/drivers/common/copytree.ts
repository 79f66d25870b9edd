// An exact copy of a directory tree: what a snapshot driver (vfs) uses to start a child
// layer from its parent. Everything a layer can hold survives: file types incl. devices
// and fifos, hardlinks as hardlinks, owners, modes with setuid/setgid/sticky, xattrs byte
// for byte, nanosecond times, and holes in sparse files.
import { bytesToName, cPath, fsPath } from '../../archive/tar/header.js';
import { constants as fsConstants } from 'node:fs';
import type { BigIntStats } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { ficlone, mknod, readXattrs, lsetxattr } from '../../sys/linux.js';
import { lutimensNs, seekData, seekHole } from '../../sys/fileio.js';

const CHUNK = 1 << 20;

export interface CopyTreeOptions {
  /** Files copied at once (each holds at most one 1 MiB buffer). */
  concurrency?: number;
}

/** A counting semaphore: at most `size` holders at a time. */
class Slots {
  private free: number;
  private waiting: (() => void)[] = [];
  constructor(size: number) {
    this.free = size;
  }
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    }
  }
}

interface CopyState {
  slots: Slots;
  /** dev:ino of a multiply-linked source -> the promise of its first copy's path. */
  links: Map<string, Promise<string>>;
}

/**
 * Copy the tree at src to dst. dst must not exist or be an empty directory; its own
 * owner, mode, xattrs and times become src's.
 */
export async function copyTree(src: string, dst: string, opts: CopyTreeOptions = {}): Promise<void> {
  const st = await fsp.lstat(fsPath(src), { bigint: true });
  if (!st.isDirectory()) throw new Error(`copy tree: source ${src} is not a directory`);
  const state: CopyState = { slots: new Slots(opts.concurrency ?? 8), links: new Map() };
  try {
    await fsp.mkdir(fsPath(dst), { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    if ((await fsp.readdir(dst)).length > 0) throw new Error(`copy tree: destination ${dst} is not empty`);
  }
  await copyDirContents(src, dst, state);
  await applyMetadata(src, dst, st);
}

async function copyDirContents(src: string, dst: string, state: CopyState): Promise<void> {
  // Names are raw bytes (not always UTF-8): keep them exact, as the archive code does.
  const names = (await state.slots.run(() => fsp.readdir(fsPath(src), { encoding: 'buffer' }))).map(bytesToName);
  // Settle every sibling before failing, so no copy still runs when the caller cleans up.
  const results = await Promise.allSettled(names.map((name) => copyEntry(join(src, name), join(dst, name), state)));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

async function copyEntry(src: string, dst: string, state: CopyState): Promise<void> {
  const st = await fsp.lstat(fsPath(src), { bigint: true });
  if (st.isDirectory()) {
    await state.slots.run(() => fsp.mkdir(fsPath(dst), { mode: 0o700 }));
    await copyDirContents(src, dst, state);
    await state.slots.run(() => applyMetadata(src, dst, st));
    return;
  }
  if (st.nlink > 1n) {
    const key = `${st.dev}:${st.ino}`;
    const first = state.links.get(key);
    if (first) {
      // Wait for the first copy outside any slot, so waiting never starves the copier.
      const target = await first;
      await state.slots.run(() => fsp.link(fsPath(target), fsPath(dst)));
      return;
    }
    const made = state.slots.run(() => copyLeaf(src, dst, st)).then(() => dst);
    state.links.set(key, made);
    await made;
    return;
  }
  await state.slots.run(() => copyLeaf(src, dst, st));
}

async function copyLeaf(src: string, dst: string, st: BigIntStats): Promise<void> {
  if (st.isFile()) await copyFileData(src, dst, st);
  else if (st.isSymbolicLink()) await fsp.symlink(await fsp.readlink(fsPath(src), { encoding: 'buffer' }), fsPath(dst));
  else if (st.isCharacterDevice() || st.isBlockDevice() || st.isFIFO() || st.isSocket()) {
    // Only the type bits here; permission bits (which the umask would cut) come later.
    mknod(cPath(dst), Number(st.mode & BigInt(fsConstants.S_IFMT)) | 0o600, st.rdev);
  } else throw new Error(`copy tree: ${src} has an unknown file type (mode 0${st.mode.toString(8)})`);
  await applyMetadata(src, dst, st);
}

/** Reflink when the filesystem can; otherwise copy only the data segments, keeping holes. */
async function copyFileData(src: string, dst: string, st: BigIntStats): Promise<void> {
  const input = await fsp.open(fsPath(src), fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
  try {
    const output = await fsp.open(fsPath(dst), fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o600);
    try {
      try {
        ficlone(output.fd, input.fd);
        return;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (!['EOPNOTSUPP', 'ENOTSUP', 'EXDEV', 'EINVAL', 'ENOTTY', 'ENOSYS'].includes(code ?? '')) {
          throw err;
        }
      }
      await copySegments(input, output, Number(st.size));
      await output.truncate(Number(st.size));
    } finally {
      await output.close();
    }
  } finally {
    await input.close();
  }
}

async function copySegments(input: fsp.FileHandle, output: fsp.FileHandle, size: number): Promise<void> {
  const buf = Buffer.allocUnsafe(Math.min(CHUNK, Math.max(size, 1)));
  let pos = 0;
  while (pos < size) {
    const start = seekData(input.fd, pos);
    if (start === null || start >= size) break;
    const end = Math.min(seekHole(input.fd, start), size);
    for (let at = start; at < end; ) {
      const { bytesRead } = await input.read(buf, 0, Math.min(buf.length, end - at), at);
      if (bytesRead === 0) return; // the file shrank while we copied it
      await writeAll(output, buf.subarray(0, bytesRead), at);
      at += bytesRead;
    }
    pos = end;
  }
}

async function writeAll(fh: fsp.FileHandle, data: Buffer, position: number): Promise<void> {
  let off = 0;
  while (off < data.length) {
    const { bytesWritten } = await fh.write(data, off, data.length - off, position + off);
    off += bytesWritten;
  }
}

// Owner first (chown drops setuid/setgid and security.capability), then mode, then
// xattrs, times last (every earlier step may touch them).
async function applyMetadata(src: string, dst: string, st: BigIntStats): Promise<void> {
  await fsp.lchown(fsPath(dst), Number(st.uid), Number(st.gid));
  if (!st.isSymbolicLink()) await fsp.chmod(fsPath(dst), Number(st.mode & 0o7777n));
  for (const [name, value] of readXattrs(cPath(src))) {
    try {
      lsetxattr(cPath(dst), name, value);
    } catch (err) {
      throw new Error(`copy tree: cannot set xattr ${name} on ${dst}: ${(err as Error).message}`);
    }
  }
  lutimensNs(cPath(dst), st.atimeNs, st.mtimeNs);
}
