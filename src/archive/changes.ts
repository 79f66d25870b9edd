// Change lists between layers, as `docker diff` prints them.
import { existsSync, type BigIntStats } from 'node:fs';
import { lstat, readlink } from 'node:fs/promises';
import { lgetxattr, readXattrs } from '../sys/linux.js';
import { overlayXattr } from '../sys/rootless.js';
import { cPath, fsPath } from './tar/header.js';
import { baseOf, byPathBytes, hostPath, parentOf, walkTree, type TreeStats } from './walk.js';

export type ChangeKind = 'A' | 'C' | 'D';

export interface Change {
  /** Absolute path inside the container root, e.g. "/etc/passwd". */
  path: string;
  kind: ChangeKind;
}

const S_IFMT = 0o170000n;

function sortChanges(changes: Change[]): Change[] {
  return changes.sort((a, b) => byPathBytes(a.path, b.path));
}

async function sameXattrs(a: string, b: string): Promise<boolean> {
  const x = readXattrs(cPath(a));
  const y = readXattrs(cPath(b));
  if (x.size !== y.size) return false;
  for (const [k, v] of x) if (!y.get(k)?.equals(v)) return false;
  return true;
}

/** Whether one path differs between two trees (Docker's ChangesDirs rules plus link targets and xattrs). */
async function differs(oldSt: BigIntStats, newSt: BigIntStats, oldPath: string, newPath: string): Promise<boolean> {
  if ((oldSt.mode & S_IFMT) !== (newSt.mode & S_IFMT)) return true;
  if (oldSt.mode !== newSt.mode || oldSt.uid !== newSt.uid || oldSt.gid !== newSt.gid || oldSt.rdev !== newSt.rdev) return true;
  if (!newSt.isDirectory()) {
    // Docker does not look at a directory's size or mtime: they change with every child.
    if (oldSt.size !== newSt.size || oldSt.mtimeNs !== newSt.mtimeNs) return true;
  }
  if (newSt.isSymbolicLink()) {
    const [a, b] = await Promise.all([readlink(fsPath(oldPath), { encoding: 'buffer' }), readlink(fsPath(newPath), { encoding: 'buffer' })]);
    if (!a.equals(b)) return true;
  }
  return !(await sameXattrs(oldPath, newPath));
}

/**
 * Compare two full trees like Docker's ChangesDirs. A for new paths (children of a new directory
 * too), D for the topmost deleted path only, C for changed paths and for the parent directories
 * of every change. Sorted by path. lower null means everything is added.
 */
export async function changesBetween(lower: string | null, upper: string): Promise<Change[]> {
  const newT = await walkTree(upper);
  const oldT: TreeStats = lower === null ? new Map() : await walkTree(lower);
  const kinds = new Map<string, ChangeKind>();
  for (const [rel, st] of newT) {
    if (rel === '') continue;
    const old = oldT.get(rel);
    if (!old) kinds.set(rel, 'A');
    else if (await differs(old, st, hostPath(lower!, rel), hostPath(upper, rel))) kinds.set(rel, 'C');
  }
  for (const rel of oldT.keys()) {
    if (rel === '' || newT.has(rel)) continue;
    if (newT.has(parentOf(rel))) kinds.set(rel, 'D');
  }
  // Parents of every change are reported changed ("to save and restore permissions").
  for (const rel of [...kinds.keys()]) {
    for (let p = parentOf(rel); p !== ''; p = parentOf(p)) {
      if (kinds.has(p)) break;
      kinds.set(p, 'C');
    }
  }
  return sortChanges([...kinds].map(([rel, kind]) => ({ path: `/${rel}`, kind })));
}

type Deleted = (rel: string, st: BigIntStats, abs: string) => string | null;

/** Docker's layered changes(): walk the upper dir; deletions by marker, A vs C by presence below. */
async function layeredChanges(upper: string, lowers: string[], deleted: Deleted, skip: (rel: string) => boolean, isHidden: (st: BigIntStats) => boolean): Promise<Change[]> {
  const tree = await walkTree(upper, (rel) => skip(rel));
  const changes: Change[] = [];
  const changedDirs = new Set<string>();
  const sorted = [...tree.keys()].filter((r) => r !== '').sort(byPathBytes);
  for (const rel of sorted) {
    const st = tree.get(rel)!;
    let kind: ChangeKind;
    let path = rel;
    const del = deleted(rel, st, hostPath(upper, rel));
    if (del === '') continue;
    if (del !== null) {
      kind = 'D';
      path = del;
    } else {
      kind = 'A';
      for (const lower of lowers) {
        let lst: BigIntStats | null = null;
        try {
          lst = await lstat(fsPath(hostPath(lower, rel)), { bigint: true });
        } catch {
          continue;
        }
        if (isHidden(lst)) break; // whited out below: it is new here
        if (lst.isDirectory() && st.isDirectory() && lst.size === st.size && lst.mode === st.mode && lst.mtimeNs === st.mtimeNs) {
          kind = 'C';
          path = '';
        } else {
          kind = 'C';
        }
        break;
      }
      if (path === '') continue; // an unchanged directory that is only there for its children
    }
    if (st.isDirectory()) changedDirs.add(rel);
    if (kind === 'A' || kind === 'D') {
      const parent = parentOf(path);
      if (parent !== '' && !changedDirs.has(parent)) {
        changes.push({ path: `/${parent}`, kind: 'C' });
        changedDirs.add(parent);
      }
    }
    changes.push({ path: `/${path}`, kind });
  }
  const seen = new Set<string>();
  return sortChanges(changes.filter((c) => (seen.has(c.path + c.kind) ? false : (seen.add(c.path + c.kind), true))));
}

/**
 * Changes of an overlay upper dir, as Docker's overlay changes: a 0/0 character device is D, a
 * directory with the overlay opaque xattr (trusted.overlay.opaque=y, user.overlay.* rootless) is D (its new children follow as A/C), everything else
 * is C when some lower has the path, else A.
 */
export async function overlayChanges(upperDir: string, lowerDirs: string[]): Promise<Change[]> {
  const isWhiteout = (st: BigIntStats) => st.isCharacterDevice() && st.rdev === 0n;
  return layeredChanges(
    upperDir,
    lowerDirs,
    (rel, st, abs) => {
      if (isWhiteout(st)) return rel;
      if (st.isDirectory()) {
        const v = lgetxattr(cPath(abs), overlayXattr('opaque'));
        if (v !== null && v.length === 1 && v[0] === 0x79) return rel;
      }
      return null;
    },
    () => false,
    isWhiteout,
  );
}

/** Changes of an aufs diff dir: `.wh.<name>` files are D of <name>; AUFS metadata is skipped. */
export async function aufsChanges(diffDir: string, lowerDirs: string[]): Promise<Change[]> {
  return layeredChanges(
    diffDir,
    lowerDirs,
    (rel, st, abs) => {
      const base = baseOf(rel);
      if (base === '.wh..wh..opq') return ''; // reported as D of its directory
      if (st.isDirectory() && existsSync(fsPath(`${abs}/.wh..wh..opq`))) return rel;
      if (base.startsWith('.wh.')) {
        const p = parentOf(rel);
        return p === '' ? base.slice(4) : `${p}/${base.slice(4)}`;
      }
      return null;
    },
    (rel) => !rel.includes('/') && rel.startsWith('.wh..wh.') && rel !== '.wh..wh..opq',
    () => false,
  );
}
