// Change lists between layers, as `docker diff` prints them.
import type { BigIntStats } from 'node:fs';
import { readlink } from 'node:fs/promises';
import { readXattrs } from '../sys/linux.js';
import { cPath, fsPath } from './tar/header.js';
import { byPathBytes, hostPath, parentOf, walkTree, type TreeStats } from './walk.js';

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

/** An xattr the compared trees do not show (overlay's own, when a layer's dirs are read unmounted). */
export type HiddenXattr = (name: string) => boolean;

function visibleXattrs(path: string, hidden?: HiddenXattr): Map<string, Buffer> {
  const all = readXattrs(cPath(path));
  if (hidden) for (const k of all.keys()) if (hidden(k)) all.delete(k);
  return all;
}

async function sameXattrs(a: string, b: string, hidden?: HiddenXattr): Promise<boolean> {
  const x = visibleXattrs(a, hidden);
  const y = visibleXattrs(b, hidden);
  if (x.size !== y.size) return false;
  for (const [k, v] of x) if (!y.get(k)?.equals(v)) return false;
  return true;
}

/** Whether one path differs between two trees (Docker's ChangesDirs rules plus link targets and xattrs). */
export async function differs(oldSt: BigIntStats, newSt: BigIntStats, oldPath: string, newPath: string, hidden?: HiddenXattr): Promise<boolean> {
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
  return !(await sameXattrs(oldPath, newPath, hidden));
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
    // Only the topmost deletion, and none under a directory that became a file (Docker reports
    // that as one C and does not look inside what is gone).
    if (newT.get(parentOf(rel))?.isDirectory()) kinds.set(rel, 'D');
  }
  return withParents(kinds);
}

/**
 * The change list from what changed at each path (relative, no leading slash): parents of every
 * change are reported changed ("to save and restore permissions"), sorted by path bytes.
 */
export function withParents(kinds: Map<string, ChangeKind>): Change[] {
  for (const rel of [...kinds.keys()]) {
    for (let p = parentOf(rel); p !== ''; p = parentOf(p)) {
      if (kinds.has(p)) break;
      kinds.set(p, 'C');
    }
  }
  return sortChanges([...kinds].map(([rel, kind]) => ({ path: `/${rel}`, kind })));
}
