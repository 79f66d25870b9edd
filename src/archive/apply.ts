// Apply a layer tar to a directory, safely, in one of three whiteout formats.
//
// Every entry's parent is resolved inside the root (rootpath.ts); the last component is acted on
// without following it (unlink-then-create, O_EXCL|O_NOFOLLOW, l* calls). Nothing outside the
// root is ever created, changed or deleted.
//
// xattr policy: `trusted.overlay.*` in a layer is refused (it would steer overlayfs: opaque dirs,
// redirects, metacopy). `security.*` must be set or the apply fails. Other namespaces are skipped
// when the filesystem does not support them (ENOTSUP), and `user.*` is skipped on symlinks and
// device nodes, where the kernel never allows it (EPERM). Everything else that fails is an error.
import { constants as fsc, type Stats } from 'node:fs';
import { copyFile, lchown, link, lstat, lutimes, mkdir, open, readdir, readlink, realpath, rm, symlink, chmod } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { lsetxattr, makedev, mknod, readXattrs } from '../sys/linux.js';
import { resolveInRoot } from './rootpath.js';
import { LayerArchiveError, bytesToName, cPath, fsPath, type TarHeader } from './tar/header.js';
import { readTar } from './tar/reader.js';

export { LayerArchiveError };

export type WhiteoutFormat = 'snapshot' | 'overlay' | 'aufs';

export interface ApplyOptions {
  whiteouts: WhiteoutFormat;
  /** Layered formats: the lower layer dirs (top first), to copy up a hardlink target not in this layer. */
  lowers?: string[];
}

/** The archive tries to reach outside the root or is otherwise hostile. */
export class UnsafeArchiveError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnsafeArchiveError';
  }
}

const WH = '.wh.';
const WH_META = '.wh..wh.';
const WH_OPAQUE = '.wh..wh..opq';
const CHUNK = 1 << 20;
const ZEROS = Buffer.alloc(CHUNK);
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const S_IFIFO = 0o010000;

/** Components of an archive path after lexical cleaning; ".." may not climb above the root. */
function cleanComponents(name: string, what: string): string[] {
  const out: string[] = [];
  for (const c of name.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') {
      if (out.length === 0) throw new UnsafeArchiveError(`${what} ${JSON.stringify(name)} climbs above the layer root`);
      out.pop();
    } else {
      out.push(c);
    }
  }
  return out;
}

async function lstatOrNull(p: string): Promise<Stats | null> {
  try {
    return await lstat(fsPath(p));
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw err;
  }
}

function describe(err: unknown): string {
  return (err as { code?: string }).code ?? (err as Error).message;
}

class Applier {
  size = 0;
  private readonly written = new Set<string>();
  private readonly opaque: string[] = [];
  private readonly dirTimes: { path: string; atime: number; mtime: number }[] = [];
  private readonly parents = new Map<string, string>();

  constructor(
    private readonly root: string,
    private readonly opts: ApplyOptions,
  ) {}

  private async parentOf(parts: string[], create = false): Promise<string> {
    const key = parts.join('/');
    let p = this.parents.get(key);
    if (p === undefined) {
      p = await resolveInRoot(this.root, key);
      // Only directories that exist are cached, so a cache hit needs no mkdir.
      if (create) await mkdir(fsPath(p), { recursive: true, mode: 0o755 });
      this.parents.set(key, p);
    }
    return p;
  }

  /** Anything that removes or adds a symlink may change how later names resolve. */
  private invalidate(): void {
    this.parents.clear();
  }

  private async remove(p: string): Promise<void> {
    await rm(fsPath(p), { recursive: true, force: true });
    this.invalidate();
  }

  async entry(h: TarHeader, body: Readable): Promise<void> {
    const parts = cleanComponents(h.name, 'entry');
    if (parts.length > 0 && parts[0]!.startsWith(WH_META)) return; // AUFS metadata (plnk, aufs, orph)
    if (parts.length === 0) {
      if (h.type !== 'dir') throw new UnsafeArchiveError(`layer root entry "." is a ${h.type}, not a directory`);
      await this.meta(this.root, h);
      this.dirTimes.push({ path: this.root, atime: h.atime ?? h.mtime, mtime: h.mtime });
      return;
    }
    const base = parts[parts.length - 1]!;
    const parentParts = parts.slice(0, -1);
    if (base.startsWith(WH)) {
      const hidden = base.slice(WH.length);
      if (base !== WH_OPAQUE && (hidden === '' || hidden === '.' || hidden === '..')) {
        throw new UnsafeArchiveError(`invalid whiteout ${JSON.stringify(h.name)}: it names no file`);
      }
      if (this.opts.whiteouts !== 'aufs') return this.whiteout(parentParts, base, hidden, h);
    }

    const parent = await this.parentOf(parentParts, true);
    const target = `${parent}/${base}`;

    let linkTarget: string | null = null;
    if (h.type === 'hardlink') linkTarget = await this.hardlinkSource(h);

    const existing = await lstatOrNull(target);
    if (existing && !(existing.isDirectory() && h.type === 'dir')) {
      if (linkTarget === target) throw new UnsafeArchiveError(`hardlink ${JSON.stringify(h.name)} points to itself`);
      await this.remove(target);
    }

    switch (h.type) {
      case 'file':
        await this.writeFile(target, h, body);
        this.size += h.size;
        break;
      case 'dir':
        if (!existing || !existing.isDirectory()) await mkdir(fsPath(target), { mode: 0o700 });
        await this.meta(target, h);
        this.dirTimes.push({ path: target, atime: h.atime ?? h.mtime, mtime: h.mtime });
        break;
      case 'symlink':
        await symlink(fsPath(h.linkname ?? ''), fsPath(target));
        this.invalidate();
        await this.meta(target, h);
        await lutimes(fsPath(target), h.atime ?? h.mtime, h.mtime);
        break;
      case 'hardlink': {
        if (linkTarget === null) {
          await this.copyUp(h, target);
        } else {
          await link(fsPath(linkTarget), fsPath(target));
        }
        const st = await lstat(fsPath(target));
        if (st.isSymbolicLink()) {
          await lchown(fsPath(target), h.uid, h.gid);
        } else {
          await this.meta(target, h, st);
          await lutimes(fsPath(target), h.atime ?? h.mtime, h.mtime);
        }
        break;
      }
      case 'char':
      case 'block':
      case 'fifo': {
        const kind = h.type === 'char' ? S_IFCHR : h.type === 'block' ? S_IFBLK : S_IFIFO;
        const dev = h.type === 'fifo' ? 0n : makedev(h.devmajor ?? 0, h.devminor ?? 0);
        try {
          mknod(cPath(target), kind | 0o600, dev);
        } catch (err) {
          throw new LayerArchiveError(`cannot create ${h.type} device ${JSON.stringify(h.name)}: ${describe(err)}`);
        }
        await this.meta(target, h);
        await lutimes(fsPath(target), h.atime ?? h.mtime, h.mtime);
        break;
      }
    }
    this.written.add(target);
  }

  private async whiteout(parentParts: string[], base: string, hidden: string, h: TarHeader): Promise<void> {
    const dir = await resolveInRoot(this.root, parentParts.join('/'));
    if (base === WH_OPAQUE) {
      if (this.opts.whiteouts === 'snapshot') {
        this.opaque.push(dir);
      } else {
        await mkdir(fsPath(dir), { recursive: true, mode: 0o755 });
        const st = await lstat(fsPath(dir));
        if (!st.isDirectory()) throw new UnsafeArchiveError(`opaque marker ${JSON.stringify(h.name)} is not inside a directory`);
        lsetxattr(cPath(dir), 'trusted.overlay.opaque', Buffer.from('y'));
      }
      return;
    }
    const victim = `${dir}/${hidden}`;
    if (this.opts.whiteouts === 'snapshot') {
      if (await lstatOrNull(victim)) await this.remove(victim);
      return;
    }
    // overlay: a 0/0 character device hides the lower file
    await mkdir(fsPath(dir), { recursive: true, mode: 0o755 });
    if (await lstatOrNull(victim)) await this.remove(victim);
    mknod(cPath(victim), S_IFCHR, 0);
    await lchown(fsPath(victim), h.uid, h.gid);
    this.written.add(victim);
  }

  /** The host path a hardlink entry links to, or null when it must be copied up from a lower. */
  private async hardlinkSource(h: TarHeader): Promise<string | null> {
    const parts = cleanComponents(h.linkname ?? '', 'hardlink target');
    if (parts.length === 0) throw new UnsafeArchiveError(`hardlink ${JSON.stringify(h.name)} points to the layer root`);
    const dir = await resolveInRoot(this.root, parts.slice(0, -1).join('/'));
    const src = `${dir}/${parts[parts.length - 1]!}`;
    const st = await lstatOrNull(src);
    if (st) {
      if (st.isDirectory()) throw new UnsafeArchiveError(`hardlink ${JSON.stringify(h.name)} points to a directory ${JSON.stringify(h.linkname)}`);
      return src;
    }
    if (this.opts.whiteouts !== 'snapshot' && (await this.findInLowers(parts))) return null;
    throw new UnsafeArchiveError(`hardlink ${JSON.stringify(h.name)} points to a missing file ${JSON.stringify(h.linkname)}`);
  }

  private async findInLowers(parts: string[]): Promise<{ path: string; st: Stats } | null> {
    for (const lower of this.opts.lowers ?? []) {
      const real = await realpath(lower);
      const dir = await resolveInRoot(real, parts.slice(0, -1).join('/'));
      const p = `${dir}/${parts[parts.length - 1]!}`;
      const st = await lstatOrNull(p);
      if (!st) continue;
      if (st.isCharacterDevice() && st.rdev === 0) return null; // whited out in that lower
      if (st.isDirectory()) throw new UnsafeArchiveError(`hardlink target ${JSON.stringify(parts.join('/'))} is a directory in a lower layer`);
      return { path: p, st };
    }
    return null;
  }

  /** Layered formats: the hardlink's target lives in a lower layer; give this layer its own copy. */
  private async copyUp(h: TarHeader, target: string): Promise<void> {
    const found = await this.findInLowers(cleanComponents(h.linkname ?? '', 'hardlink target'));
    if (!found) throw new UnsafeArchiveError(`hardlink ${JSON.stringify(h.name)} points to a missing file ${JSON.stringify(h.linkname)}`);
    const { path, st } = found;
    if (st.isSymbolicLink()) {
      await symlink(await readlink(fsPath(path), { encoding: 'buffer' }), fsPath(target));
      this.invalidate();
    } else if (st.isFile()) {
      await copyFile(fsPath(path), fsPath(target), fsc.COPYFILE_EXCL | fsc.COPYFILE_FICLONE);
    } else {
      mknod(cPath(target), (st.mode & 0o170000) | 0o600, BigInt(st.rdev));
    }
    for (const [name, value] of readXattrs(cPath(path))) {
      if (!name.startsWith('trusted.overlay.')) this.setXattr(target, name, value, st);
    }
  }

  private async writeFile(target: string, h: TarHeader, body: Readable): Promise<void> {
    const fh = await open(fsPath(target), fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
    try {
      const acc = Buffer.allocUnsafe(CHUNK);
      let fill = 0;
      let pos = 0;
      let holeAtEnd = false;
      // Whole 1 MiB-aligned chunks of zeros are skipped so they become holes.
      const flush = async (buf: Buffer, len: number) => {
        const zero = len === CHUNK ? buf.equals(ZEROS) : buf.subarray(0, len).equals(ZEROS.subarray(0, len));
        if (!zero) {
          let off = 0;
          while (off < len) off += (await fh.write(buf, off, len - off, pos + off)).bytesWritten;
        }
        holeAtEnd = zero;
        pos += len;
      };
      for await (const raw of body) {
        let chunk = raw as Buffer;
        while (chunk.length > 0) {
          if (fill === 0 && chunk.length >= CHUNK) {
            await flush(chunk, CHUNK);
            chunk = chunk.subarray(CHUNK);
            continue;
          }
          const take = Math.min(CHUNK - fill, chunk.length);
          chunk.copy(acc, fill, 0, take);
          fill += take;
          chunk = chunk.subarray(take);
          if (fill === CHUNK) {
            await flush(acc, CHUNK);
            fill = 0;
          }
        }
      }
      if (fill > 0) await flush(acc, fill);
      if (pos !== h.size) throw new LayerArchiveError(`unexpected end of layer archive in entry ${JSON.stringify(h.name)}`);
      if (holeAtEnd) await fh.truncate(h.size);
      await fh.chown(h.uid, h.gid);
      await fh.chmod(h.mode & 0o7777);
    } finally {
      await fh.close();
    }
    this.xattrs(target, h, null);
    await lutimes(fsPath(target), h.atime ?? h.mtime, h.mtime);
  }

  /** Owner, then mode (chown clears setuid), then xattrs (chown clears security.capability). */
  private async meta(target: string, h: TarHeader, st?: Stats): Promise<void> {
    await lchown(fsPath(target), h.uid, h.gid);
    if (h.type !== 'symlink' && !st?.isSymbolicLink()) await chmod(fsPath(target), h.mode & 0o7777);
    this.xattrs(target, h, h.xattrs ? (st ?? (await lstat(fsPath(target)))) : null);
  }

  private xattrs(target: string, h: TarHeader, st: Stats | null): void {
    if (!h.xattrs) return;
    for (const [name, value] of h.xattrs) {
      if (name.startsWith('trusted.overlay.')) {
        throw new UnsafeArchiveError(`layer entry ${JSON.stringify(h.name)} carries overlayfs control xattr ${name}`);
      }
      this.setXattr(target, name, value, st);
    }
  }

  private setXattr(target: string, name: string, value: Buffer, st: Stats | null): void {
    try {
      lsetxattr(cPath(target), name, value);
    } catch (err) {
      const code = (err as { code?: string }).code;
      const special = st !== null && !st.isFile() && !st.isDirectory();
      if (name.startsWith('user.') && code === 'EPERM' && special) return;
      if ((code === 'ENOTSUP' || code === 'EOPNOTSUPP') && !name.startsWith('security.')) return;
      throw new LayerArchiveError(`cannot set xattr ${name} on ${JSON.stringify(target.slice(this.root.length + 1))}: ${code ?? describe(err)}`);
    }
  }

  async finish(): Promise<void> {
    // Opaque directories (snapshot format) lose every child this layer did not write.
    for (const dir of this.opaque) await this.prune(dir);
    // Directory times last, deepest first, so creating children does not disturb them.
    const depth = (p: string) => p.split('/').length;
    const dirs = [...this.dirTimes].sort((a, b) => depth(b.path) - depth(a.path));
    for (const d of dirs) {
      const st = await lstatOrNull(d.path);
      if (st && st.isDirectory()) await lutimes(fsPath(d.path), d.atime, d.mtime);
    }
  }

  private async prune(dir: string): Promise<void> {
    const st = await lstatOrNull(dir);
    if (!st || !st.isDirectory()) return;
    for (const name of await readdir(fsPath(dir), { encoding: 'buffer' })) {
      const p = `${dir}/${bytesToName(name)}`;
      if (!this.written.has(p)) {
        await this.remove(p);
      } else {
        const cst = await lstat(fsPath(p));
        if (cst.isDirectory()) await this.prune(p);
      }
    }
  }
}

/**
 * Apply an uncompressed layer tar to root. Returns the bytes of regular-file content, as
 * Docker's ApplyLayer does. The input is read to its end (the caller may be hashing it).
 */
export async function applyLayer(root: string, tar: Readable, opts: ApplyOptions): Promise<{ size: number }> {
  const realRoot = await realpath(root);
  const applier = new Applier(realRoot, opts);
  for await (const { header, body } of readTar(tar)) {
    await applier.entry(header, body);
  }
  await applier.finish();
  return { size: applier.size };
}
