// Resolve a path inside a root directory as if the root were "/" (containerd's fs.RootPath idea):
// symlinks met on the way are re-resolved inside the root, never followed by the kernel, and ".."
// stops at the root. Paths are surrogate-escaped strings (see tar/header.ts).
import { lstatSync, readlinkSync } from 'node:fs';
import { bytesToName, fsPath } from './tar/header.js';

/** Symlinks followed before giving up, as the kernel's MAXSYMLINKS. */
const MAX_LINKS = 40;

function loopError(path: string): Error {
  const err = new Error(`ELOOP: too many levels of symbolic links resolving ${JSON.stringify(path)} inside the root`) as Error & { code: string };
  err.code = 'ELOOP';
  return err;
}

function missing(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function pushComponents(pending: string[], path: string): void {
  const parts = path.split('/');
  for (let i = parts.length - 1; i >= 0; i--) pending.push(parts[i]!);
}

function join(root: string, parts: string[]): string {
  return parts.length === 0 ? root : `${root}/${parts.join('/')}`;
}

/**
 * A host path under root for `path` (every component resolved, the last one too). Components
 * that do not exist are appended as they are. root must be a real path (no symlinks).
 */
export async function resolveInRoot(root: string, path: string): Promise<string> {
  return join(root, (await resolveInRootFrom(root, { parts: [], links: 0 }, path)).parts);
}

/** Where a walk inside the root stands: the components resolved so far and symlinks followed. */
export interface RootWalk {
  parts: string[];
  links: number;
}

/**
 * resolveInRoot's walk continued from a state an earlier walk reached (so a caller may cache
 * the state for a directory and resolve names below it without re-walking it). `seen` hears
 * every host path the walk looked at and whether it existed: the answer depends on exactly those.
 * `whole` is the full path being resolved, for the error message.
 */
export async function resolveInRootFrom(
  root: string,
  from: RootWalk,
  path: string,
  seen?: (host: string, exists: boolean) => void,
  whole = path,
): Promise<RootWalk> {
  return walk(root, from, path, seen, whole);
}

/** resolveInRoot for callers that cannot wait. */
export function resolveInRootSync(root: string, path: string): string {
  return join(root, walk(root, { parts: [], links: 0 }, path, undefined, path).parts);
}

/**
 * The one walk behind the resolvers. Its lstat and readlink calls are synchronous, as apply.ts's
 * metadata calls are: a round trip to libuv's pool per path component cost more than the call.
 */
function walk(root: string, from: RootWalk, path: string, seen: ((host: string, exists: boolean) => void) | undefined, whole: string): RootWalk {
  const resolved = [...from.parts];
  const pending: string[] = [];
  pushComponents(pending, path);
  let links = from.links;
  while (pending.length > 0) {
    const c = pending.pop()!;
    if (c === '' || c === '.') continue;
    if (c === '..') {
      resolved.pop();
      continue;
    }
    const host = join(root, [...resolved, c]);
    let isLink = false;
    let exists = true;
    try {
      isLink = lstatSync(fsPath(host)).isSymbolicLink();
    } catch (err) {
      if (!missing(err)) throw err;
      exists = false;
    }
    seen?.(host, exists);
    if (!isLink) {
      resolved.push(c);
      continue;
    }
    if (++links > MAX_LINKS) throw loopError(whole);
    const target = bytesToName(readlinkSync(fsPath(host), { encoding: 'buffer' }));
    if (target.startsWith('/')) resolved.length = 0;
    pushComponents(pending, target);
  }
  return { parts: resolved, links };
}
