// Producing layer tars: from a change list (content from the merged view) or from a whole
// directory (a layer dir, with its whiteouts converted). Deterministic: entries sorted by path
// bytes, integer-second mtimes, no uname/gname, no atime/ctime.
import { createReadStream, type BigIntStats } from 'node:fs';
import { readlink } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { devMajor, devMinor, lgetxattr, readXattrs } from '../sys/linux.js';
import { isOverlayXattr, overlayXattr } from '../sys/rootless.js';
import type { Change } from './changes.js';
import { bytesToName, cPath, fsPath, type EntryType, type TarHeader } from './tar/header.js';
import { TarWriter } from './tar/writer.js';
import { baseOf, byPathBytes, hostPath, parentOf, walkTree } from './walk.js';
import { lstatOrNull } from '../sys/errno.js';

function typeOf(st: BigIntStats): EntryType | null {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isFIFO()) return 'fifo';
  return null; // sockets are not archived (as Docker)
}

/** Hardlink groups: the first path written for an inode, keyed by dev:ino. */
type Links = Map<string, string>;

async function headerFor(abs: string, rel: string, st: BigIntStats, links: Links): Promise<TarHeader | null> {
  const type = typeOf(st);
  if (type === null) return null;
  const h: TarHeader = {
    name: rel,
    type,
    mode: Number(st.mode & 0o7777n),
    uid: Number(st.uid),
    gid: Number(st.gid),
    size: type === 'file' ? Number(st.size) : 0,
    mtime: Number(st.mtimeNs / 1_000_000_000n),
  };
  if (type === 'symlink') h.linkname = bytesToName(await readlink(fsPath(abs), { encoding: 'buffer' }));
  if (type === 'char' || type === 'block') {
    h.devmajor = devMajor(st.rdev);
    h.devminor = devMinor(st.rdev);
  }
  if (type === 'file' && st.nlink > 1n) {
    const key = `${st.dev}:${st.ino}`;
    const first = links.get(key);
    if (first !== undefined) {
      h.type = 'hardlink';
      h.linkname = first;
      h.size = 0;
    } else {
      links.set(key, rel);
    }
  }
  const xattrs = new Map<string, Buffer>();
  const found = readXattrs(cPath(abs));
  for (const k of [...found.keys()].sort()) {
    // overlayfs bookkeeping is never part of a layer
    if (!isOverlayXattr(k)) xattrs.set(k, found.get(k)!);
  }
  if (xattrs.size > 0) h.xattrs = xattrs;
  return h;
}

async function addEntry(w: TarWriter, abs: string, h: TarHeader): Promise<void> {
  if (h.type === 'file' && h.size > 0) {
    await w.add(h, createReadStream(fsPath(abs), { highWaterMark: 1 << 20 }));
  } else {
    await w.add(h);
  }
}

function run(w: TarWriter, job: () => Promise<void>): Readable {
  job().then(
    () => w.finish(),
    (err: Error) => w.abort(err),
  ).catch((err: Error) => w.abort(err));
  return w.stream;
}

/**
 * A layer tar of the changes, content from root (the merged view): A/C as entries with any
 * missing parent directories first, D as `.wh.<name>` (mode 0600, mtime 0). Hardlinks between
 * exported files become hardlink entries.
 */
export function exportChanges(root: string, changes: Change[]): Readable {
  const w = new TarWriter();
  return run(w, async () => {
    const sorted = [...changes].sort((a, b) => byPathBytes(a.path, b.path));
    const emitted = new Set<string>();
    const links: Links = new Map();
    const emit = async (rel: string): Promise<void> => {
      if (rel === '' || emitted.has(rel)) return;
      const abs = hostPath(root, rel);
      const st = lstatOrNull(fsPath(abs), { bigint: true });
      if (!st) return; // gone since the change list was made: nothing to export
      const h = await headerFor(abs, rel, st, links);
      if (h) await addEntry(w, abs, h);
      emitted.add(rel);
    };
    const parents = async (rel: string) => {
      const chain: string[] = [];
      for (let p = parentOf(rel); p !== ''; p = parentOf(p)) if (!emitted.has(p)) chain.unshift(p);
      for (const p of chain) await emit(p);
    };
    for (const c of sorted) {
      const rel = c.path.replace(/^\/+/, '');
      if (rel === '') continue;
      await parents(rel);
      if (c.kind === 'D') {
        const p = parentOf(rel);
        const name = p === '' ? `.wh.${baseOf(rel)}` : `${p}/.wh.${baseOf(rel)}`;
        await w.add({ name, type: 'file', mode: 0o600, uid: 0, gid: 0, size: 0, mtime: 0 });
      } else {
        await emit(rel);
      }
    }
  });
}

/**
 * A whole directory as a layer tar (the root entry itself is not included, as Docker). With
 * 'overlay', 0/0 character devices become `.wh.<name>` and the opaque xattr (overlayXattr) =y becomes
 * `<dir>/.wh..wh..opq`; with 'aufs', `.wh.` files pass as they are and AUFS metadata is skipped.
 */
export function packDirectory(root: string, opts: { whiteouts?: 'overlay' | 'aufs' } = {}): Readable {
  const w = new TarWriter();
  return run(w, async () => {
    const skipMeta = (rel: string) => opts.whiteouts === 'aufs' && !rel.includes('/') && rel.startsWith('.wh..wh.');
    const tree = await walkTree(root, skipMeta);
    const paths = [...tree.keys()].filter((r) => r !== '').sort(byPathBytes);
    const links: Links = new Map();
    for (const rel of paths) {
      const st = tree.get(rel)!;
      const abs = hostPath(root, rel);
      if (opts.whiteouts === 'overlay' && st.isCharacterDevice() && st.rdev === 0n) {
        const p = parentOf(rel);
        const name = p === '' ? `.wh.${baseOf(rel)}` : `${p}/.wh.${baseOf(rel)}`;
        await w.add({ name, type: 'file', mode: 0o600, uid: Number(st.uid), gid: Number(st.gid), size: 0, mtime: Number(st.mtimeNs / 1_000_000_000n) });
        continue;
      }
      const h = await headerFor(abs, rel, st, links);
      if (!h) continue;
      await addEntry(w, abs, h);
      if (opts.whiteouts === 'overlay' && st.isDirectory()) {
        const v = lgetxattr(cPath(abs), overlayXattr('opaque'));
        if (v !== null && v.length === 1 && v[0] === 0x79) {
          await w.add({ name: `${rel}/.wh..wh..opq`, type: 'file', mode: h.mode & 0o777, uid: h.uid, gid: h.gid, size: 0, mtime: h.mtime });
        }
      }
    }
  });
}

/**
 * One file or tree as a plain tar (for `cp`): `path` itself named `as`, or with `as` empty only
 * what a directory holds. Symlinks are stored, never followed.
 */
export function packPath(path: string, as: string): Readable {
  const w = new TarWriter();
  return run(w, async () => {
    const tree = await walkTree(path);
    const links: Links = new Map();
    for (const rel of [...tree.keys()].sort(byPathBytes)) {
      const name = as === '' ? rel : rel === '' ? as : `${as}/${rel}`;
      if (name === '') continue;
      const abs = hostPath(path, rel);
      const h = await headerFor(abs, name, tree.get(rel)!, links);
      if (h) await addEntry(w, abs, h);
    }
  });
}
