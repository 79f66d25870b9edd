// Whole-tree snapshots for comparing a directory with an oracle's (umoci's rootfs, GNU tar's
// extraction) or with itself later (a driver's layers after a container wrote): paths, types,
// modes, owners, sizes, contents, link targets, xattrs, rdev, times and hardlink groups. Paths
// are surrogate-escaped strings (see src/archive/tar/header.ts).
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { bytesToName, cPath, fsPath } from '../../src/archive/tar/header.js';
import { readXattrs } from '../../src/sys/linux.js';

export interface Node {
  type: 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket';
  mode: number;
  uid: number;
  gid: number;
  /** Regular files only. */
  size?: number;
  sha256?: string;
  target?: string;
  rdev?: number;
  /** Whole seconds, or nanoseconds (a decimal string) with `times: 'ns'`; see SnapshotOptions. */
  mtime?: number | string;
  /** name -> hex of the value */
  xattrs: Record<string, string>;
  /** For non-directories with more than one name: every path of the group, sorted (same for each member). */
  links?: string[];
}

export interface SnapshotOptions {
  /** xattr names to leave out (e.g. ones a filesystem adds by itself). */
  ignoreXattr?: (name: string) => boolean;
  /**
   * 'seconds' (the default): whole-second mtimes of everything;
   * 'ns': nanosecond mtimes of everything (to prove a tree untouched);
   * 'files': whole-second mtimes of all but directories and symlinks (what a layer tar carries
   * and every driver keeps);
   * 'none': no times.
   */
  times?: 'seconds' | 'ns' | 'files' | 'none';
}

async function hashFile(p: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(fsPath(p), { highWaterMark: 1 << 20 })) h.update(c as Buffer);
  return h.digest('hex');
}

/** Every path under root ("" is root itself, others like "etc/passwd"). */
export async function snapshotTree(root: string, opts: SnapshotOptions = {}): Promise<Map<string, Node>> {
  const out = new Map<string, Node>();
  const groups = new Map<string, string[]>();
  const walk = async (rel: string): Promise<void> => {
    const p = rel === '' ? root : `${root}/${rel}`;
    const st = await lstat(fsPath(p), { bigint: true });
    const type: Node['type'] = st.isFile()
      ? 'file'
      : st.isDirectory()
        ? 'dir'
        : st.isSymbolicLink()
          ? 'symlink'
          : st.isCharacterDevice()
            ? 'char'
            : st.isBlockDevice()
              ? 'block'
              : st.isFIFO()
                ? 'fifo'
                : 'socket';
    const xattrs: Record<string, string> = {};
    const found = readXattrs(cPath(p));
    for (const k of [...found.keys()].sort()) if (!opts.ignoreXattr?.(k)) xattrs[k] = found.get(k)!.toString('hex');
    const node: Node = { type, mode: Number(st.mode & 0o7777n), uid: Number(st.uid), gid: Number(st.gid), xattrs };
    const times = opts.times ?? 'seconds';
    if (times === 'ns') node.mtime = st.mtimeNs.toString();
    else if (times === 'seconds' || (times === 'files' && type !== 'dir' && type !== 'symlink')) node.mtime = Number(st.mtimeNs / 1_000_000_000n);
    if (type === 'file') {
      node.size = Number(st.size);
      node.sha256 = await hashFile(p);
    }
    if (type !== 'dir' && st.nlink > 1n) {
      const key = `${st.dev}:${st.ino}`;
      const g = groups.get(key) ?? [];
      g.push(rel);
      groups.set(key, g);
    }
    if (type === 'symlink') node.target = bytesToName(await readlink(fsPath(p), { encoding: 'buffer' }));
    if (type === 'char' || type === 'block') node.rdev = Number(st.rdev);
    out.set(rel, node);
    if (type === 'dir') {
      const names = (await readdir(fsPath(p), { encoding: 'buffer' })).map(bytesToName).sort();
      for (const n of names) await walk(rel === '' ? n : `${rel}/${n}`);
    }
  };
  await walk('');
  for (const g of groups.values()) {
    if (g.length < 2) continue;
    const sorted = [...g].sort();
    for (const p of g) out.get(p)!.links = sorted;
  }
  return out;
}

export interface DiffOptions {
  /** Fields not compared (e.g. 'mtime' for trees made at different times). */
  ignore?: (keyof Node)[];
  /** Paths not compared. */
  skip?: (path: string) => boolean;
}

/** Human-readable differences between two snapshots; empty when they are equal. */
export function diffTrees(a: Map<string, Node>, b: Map<string, Node>, opts: DiffOptions = {}): string[] {
  const ignore = new Set(opts.ignore ?? []);
  const out: string[] = [];
  const show = (p: string) => (p === '' ? '/' : `/${p}`);
  const paths = [...new Set([...a.keys(), ...b.keys()])].sort();
  for (const p of paths) {
    if (opts.skip?.(p)) continue;
    const x = a.get(p);
    const y = b.get(p);
    if (!x) {
      out.push(`${show(p)}: only in second (${y!.type})`);
      continue;
    }
    if (!y) {
      out.push(`${show(p)}: only in first (${x.type})`);
      continue;
    }
    for (const k of ['type', 'mode', 'uid', 'gid', 'size', 'sha256', 'target', 'rdev', 'mtime', 'xattrs', 'links'] as const) {
      if (ignore.has(k)) continue;
      const xv = JSON.stringify(x[k] ?? null);
      const yv = JSON.stringify(y[k] ?? null);
      if (xv !== yv) {
        const fmt = (v: string) => (k === 'mode' ? (JSON.parse(v) as number).toString(8) : v);
        out.push(`${show(p)}: ${k} ${fmt(xv)} != ${fmt(yv)}`);
      }
    }
  }
  return out;
}
