// `docker diff` of an overlay2 layer without mounting anything. Every path where a layer's merged
// view differs from its parent's has an entry in the layer's upper (diff) dir: walking that dir,
// and looking each entry up in the lower dirs as the kernel's overlay lookup does (a whiteout
// hides what is below, a non-directory or an opaque directory ends the stack), gives the list
// NaiveDiff gets by mounting both layers and comparing the two whole trees, at the cost of the
// upper dir's few entries instead of two mounts, their reference counts and two full walks.
// Overlay's own xattrs, which a mounted view hides, are left out of the comparison.
import { lstatSync, readdirSync, type BigIntStats } from 'node:fs';
import { differs, withParents, type Change, type ChangeKind } from '../../archive/changes.js';
import { bytesToName, cPath, fsPath } from '../../archive/tar/header.js';
import { hostPath } from '../../archive/walk.js';
import { lgetxattr } from '../../sys/linux.js';
import { isOverlayXattr, overlayXattr } from '../../sys/rootless.js';

/** A path as the lower stack shows it: its topmost entry and, for a directory, every dir merged into it (top first). */
export interface Found {
  path: string;
  st: BigIntStats;
  stack: string[];
}

export function lstatIfAny(path: string): BigIntStats | undefined {
  return lstatSync(fsPath(path), { bigint: true, throwIfNoEntry: false });
}

export function isWhiteout(st: BigIntStats): boolean {
  return st.isCharacterDevice() && st.rdev === 0n;
}

/**
 * The opaque mark of a directory. Any value but "y" (newer kernels' "x", for whiteouts kept as
 * xattrs) is a layout this walk does not read: the caller falls back to mounting.
 */
export function isOpaque(dir: string): boolean {
  const v = lgetxattr(cPath(dir), overlayXattr('opaque'));
  if (v === null) return false;
  if (v.toString() === 'y') return true;
  throw new UnreadableUpper(`${dir}: opaque xattr ${JSON.stringify(v.toString())}`);
}

/** The upper or lower dirs use overlay features the walk cannot follow. */
export class UnreadableUpper extends Error {}

/** name in the directory merged from stack, as overlay resolves it; undefined when the view has no such entry. */
export function lookup(stack: string[], name: string): Found | undefined {
  let found: Found | undefined;
  for (const dir of stack) {
    const path = hostPath(dir, name);
    const st = lstatIfAny(path);
    if (st === undefined) continue;
    if (isWhiteout(st)) break;
    if (found === undefined) found = { path, st, stack: [] };
    // A non-directory hides everything below it; below a directory, it ends the merge.
    if (!st.isDirectory()) break;
    found.stack.push(path);
    if (isOpaque(path)) break;
  }
  return found;
}

function names(dir: string): string[] {
  return readdirSync(fsPath(dir), { encoding: 'buffer' }).map(bytesToName);
}

/**
 * The changes of the layer whose upper dir is `upper` against the view of `lowers` (host dirs,
 * topmost first): the same list as changesBetween over the two mounted trees.
 * Throws UnreadableUpper where the layers use what this walk does not follow.
 */
export async function upperChanges(upper: string, lowers: string[]): Promise<Change[]> {
  // Whether the kernel honours an opaque mark on a layer's root is not something to guess.
  for (const dir of lowers) if (isOpaque(dir)) throw new UnreadableUpper(`${dir}: opaque layer root`);
  const kinds = new Map<string, ChangeKind>();
  // cut: the new view of this dir has no lower dirs (it, or a dir above it, is opaque), so what
  // the old view has there and the upper dir lacks is gone.
  const visit = async (rel: string, oldStack: string[] | null, cut: boolean): Promise<void> => {
    const dir = hostPath(upper, rel);
    const present = new Set<string>();
    for (const name of names(dir)) {
      const child = rel === '' ? name : `${rel}/${name}`;
      const newPath = hostPath(dir, name);
      const st = lstatSync(fsPath(newPath), { bigint: true });
      const old = oldStack === null ? undefined : lookup(oldStack, name);
      if (isWhiteout(st)) {
        if (old !== undefined) kinds.set(child, 'D');
        continue;
      }
      present.add(name);
      if (old === undefined) kinds.set(child, 'A');
      else if (await differs(old.st, st, old.path, newPath, isOverlayXattr)) kinds.set(child, 'C');
      if (st.isDirectory()) await visit(child, old?.st.isDirectory() ? old.stack : null, cut || isOpaque(newPath));
    }
    if (!cut || oldStack === null) return;
    const below = new Set(oldStack.flatMap(names));
    for (const name of below) {
      if (present.has(name) || lookup(oldStack, name) === undefined) continue;
      kinds.set(rel === '' ? name : `${rel}/${name}`, 'D');
    }
  };
  await visit('', lowers, false);
  return withParents(kinds);
}
