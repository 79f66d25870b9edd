// `cp` between a container's root and the host (or a tar stream), running or not: the root is
// mounted through the store's refcounted mount, every container path is resolved inside it
// (src/archive/rootpath.ts), and the copy itself is a tar packed from the source and applied
// under the destination directory as under a root, so no symlink in the container can make cp
// read or write outside it. Docker's rules: SRC/. copies a directory's contents; an existing
// directory DST receives SRC by its name; a missing DST becomes the copy of SRC.
import { lstatSync, statSync, type Stats } from 'node:fs';
import { posix } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { applyLayer, packPath, resolveInRoot } from '../archive/index.js';
import { InvalidInputError, NotFoundError } from '../errors.js';

/** One end of a copy: a host path, or a path inside a container (by reference). */
export type CopyEnd = { container: string; path: string } | { host: string };

export interface CopyDeps {
  mount(ref: string): Promise<string>;
  unmount(ref: string): Promise<void>;
}

function statOrNull(path: string, follow: boolean): Stats | null {
  try {
    return follow ? statSync(path) : lstatSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw err;
  }
}

/** Where SRC is on the host: its last component not followed unless it ends in / or /. (as docker). */
async function sourcePath(root: string | null, path: string): Promise<string> {
  if (root === null) return path;
  if (/\/\.?$/.test(path)) return resolveInRoot(root, path);
  return posix.join(await resolveInRoot(root, posix.dirname(path)), posix.basename(path));
}

/** Copy `src` to `dst` (`-` on either side is a tar stream on stdin/stdout). */
export async function copy(d: CopyDeps, src: CopyEnd | '-', dst: CopyEnd | '-', io: { stdin?: Readable; stdout?: Writable } = {}): Promise<void> {
  const mounted: string[] = [];
  const rootOf = async (end: CopyEnd): Promise<string | null> => {
    if (!('container' in end)) return null;
    const root = await d.mount(end.container);
    mounted.push(end.container);
    return root;
  };
  try {
    if (src === '-') {
      if (dst === '-' || !('container' in dst)) throw new InvalidInputError('must specify at least one container source');
      const root = (await rootOf(dst))!;
      const into = await resolveInRoot(root, dst.path);
      if (!statOrNull(into, false)?.isDirectory()) throw new InvalidInputError(`destination "${dst.container}:${dst.path}" must be a directory`);
      await applyLayer(into, io.stdin ?? process.stdin, { whiteouts: 'snapshot' });
      return;
    }
    const srcName = 'container' in src ? src.path : src.host;
    const srcRoot = await rootOf(src);
    const from = await sourcePath(srcRoot, srcName);
    const st = statOrNull(from, false);
    if (!st) throw new NotFoundError('container' in src ? `Could not find the file ${src.path} in container ${src.container}` : `stat ${src.host}: no such file or directory`);
    if (/\/$/.test(srcName) && !st.isDirectory()) throw new InvalidInputError(`${srcName} is not a directory`);
    const contentsOnly = /(^|\/)\.$/.test(srcName) && st.isDirectory();
    const base = posix.basename(posix.resolve('/', srcName)) || '/';
    if (dst === '-') {
      await pipeline(packPath(from, contentsOnly ? '' : base === '/' ? '.' : base), io.stdout ?? process.stdout);
      return;
    }
    const dstName = 'container' in dst ? dst.path : dst.host;
    const dstRoot = await rootOf(dst);
    const to = dstRoot === null ? dstName : await resolveInRoot(dstRoot, dstName);
    const target = statOrNull(to, true);
    let into: string;
    let as: string;
    if (target?.isDirectory()) {
      into = to;
      as = contentsOnly ? '' : base;
    } else if (target) {
      if (st.isDirectory()) throw new InvalidInputError(`cannot copy a directory to a file: ${dstName}`);
      into = posix.dirname(to);
      as = posix.basename(to);
    } else {
      if (/\/$/.test(dstName) && !st.isDirectory()) throw new InvalidInputError(`destination directory ${dstName} does not exist`);
      into = posix.dirname(to);
      if (!statOrNull(into, true)?.isDirectory()) throw new InvalidInputError(`invalid output path: directory ${dstRoot === null ? into : into.slice(dstRoot.length) || '/'} does not exist`);
      as = posix.basename(to);
    }
    await applyLayer(into, packPath(from, as), { whiteouts: 'snapshot' });
  } finally {
    for (const ref of mounted) await d.unmount(ref).catch(() => undefined);
  }
}

/** `CTR:PATH` or a host path (or `-`), as docker splits cp's arguments. */
export function parseCopyEnd(arg: string): CopyEnd | '-' {
  if (arg === '-') return '-';
  if (arg.startsWith('/') || arg.startsWith('.')) return { host: arg };
  const i = arg.indexOf(':');
  if (i <= 0) return { host: arg };
  const path = arg.slice(i + 1);
  return { container: arg.slice(0, i), path: path.startsWith('/') ? path : `/${path}` };
}
