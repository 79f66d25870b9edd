// Listing a directory tree without following symlinks; paths are surrogate-escaped strings
// relative to the root ("" is the root itself).
import type { BigIntStats } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { bytesToName, fsPath, nameToBytes } from './tar/header.js';

export type TreeStats = Map<string, BigIntStats>;

export function hostPath(root: string, rel: string): string {
  return rel === '' ? root : `${root}/${rel}`;
}

/** Every path under root with its lstat (bigint, for exact times and inode numbers). */
export async function walkTree(root: string, skip?: (rel: string, st: BigIntStats) => boolean): Promise<TreeStats> {
  const out: TreeStats = new Map();
  const visit = async (rel: string): Promise<void> => {
    const st = await lstat(fsPath(hostPath(root, rel)), { bigint: true });
    if (rel !== '' && skip?.(rel, st)) return;
    out.set(rel, st);
    if (!st.isDirectory()) return;
    const names = await readdir(fsPath(hostPath(root, rel)), { encoding: 'buffer' });
    for (const n of names) await visit(rel === '' ? bytesToName(n) : `${rel}/${bytesToName(n)}`);
  };
  await visit('');
  return out;
}

/** Order by path bytes (a parent always sorts before its children). */
export function byPathBytes(a: string, b: string): number {
  return Buffer.compare(nameToBytes(a), nameToBytes(b));
}

export function parentOf(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i < 0 ? '' : rel.slice(0, i);
}

export function baseOf(rel: string): string {
  return rel.slice(rel.lastIndexOf('/') + 1);
}
