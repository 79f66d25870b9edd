// A description of every entry in a tree, for comparing two trees exactly in driver tests.
// (Local until test/helpers/tree.ts lands; then the suite can switch.)
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { devMajor, devMinor, readXattrs } from '../../src/sys/linux.js';

export interface SnapshotOptions {
  /**
   * 'all': nanosecond mtimes of everything (to prove a tree untouched);
   * 'files': whole-second mtimes of non-directories, non-symlinks (what a layer tar carries);
   * 'none': no times.
   */
  times?: 'all' | 'files' | 'none';
  /** Xattr names to leave out (e.g. ones a filesystem adds by itself). */
  ignoreXattr?: (name: string) => boolean;
}

/** path ("/", "/etc", …) -> one line describing type, mode, owner, xattrs, content, times, hardlink group. */
export async function snapshotTree(root: string, opts: SnapshotOptions = {}): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const inodes = new Map<bigint, string>();
  const visit = async (rel: string): Promise<void> => {
    const abs = rel === '/' ? root : join(root, rel);
    const st = await lstat(abs, { bigint: true });
    const parts: string[] = [];
    const kind = st.isDirectory()
      ? 'd'
      : st.isFile()
        ? 'f'
        : st.isSymbolicLink()
          ? 'l'
          : st.isCharacterDevice()
            ? 'c'
            : st.isBlockDevice()
              ? 'b'
              : st.isFIFO()
                ? 'p'
                : 's';
    parts.push(kind);
    if (kind !== 'l') parts.push(`mode=${(st.mode & 0o7777n).toString(8).padStart(4, '0')}`);
    parts.push(`owner=${st.uid}:${st.gid}`);
    const xattrs = [...readXattrs(abs)]
      .filter(([name]) => !opts.ignoreXattr?.(name))
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([name, value]) => `${name}=${value.toString('hex')}`);
    if (xattrs.length) parts.push(`xattrs=${xattrs.join(',')}`);
    if (kind === 'f') parts.push(`size=${st.size}`, `sha256=${await hashFile(abs)}`);
    if (kind === 'l') parts.push(`target=${(await readlink(abs, { encoding: 'buffer' })).toString('hex')}`);
    if (kind === 'c' || kind === 'b') parts.push(`dev=${devMajor(st.rdev)},${devMinor(st.rdev)}`);
    const times = opts.times ?? 'files';
    if (times === 'all') parts.push(`mtime=${st.mtimeNs}`);
    else if (times === 'files' && kind !== 'd' && kind !== 'l') parts.push(`mtime=${st.mtimeNs / 1_000_000_000n}`);
    if (kind !== 'd' && st.nlink > 1n) {
      const first = inodes.get(st.ino);
      if (first) parts.push(`hardlink=${first}`);
      else inodes.set(st.ino, rel);
    }
    out.set(rel, parts.join(' '));
    if (kind === 'd') {
      const names = (await readdir(abs)).sort();
      for (const name of names) await visit(rel === '/' ? `/${name}` : `${rel}/${name}`);
    }
  };
  await visit('/');
  return out;
}

/** Lines naming every path that differs between two snapshots; empty when they are equal. */
export function diffTrees(a: Map<string, string>, b: Map<string, string>): string[] {
  const lines: string[] = [];
  for (const [path, desc] of a) {
    const other = b.get(path);
    if (other === undefined) lines.push(`only in first: ${path} (${desc})`);
    else if (other !== desc) lines.push(`differs: ${path}\n  ${desc}\n  ${other}`);
  }
  for (const [path, desc] of b) if (!a.has(path)) lines.push(`only in second: ${path} (${desc})`);
  return lines;
}

async function hashFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
