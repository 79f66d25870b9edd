// Apply a layer tar to a directory, safely, in one of three whiteout formats.
//
// Every entry's parent is resolved inside the root (rootpath.ts); the last component is acted on
// without following it (unlink-then-create, O_EXCL|O_NOFOLLOW, l* calls). Nothing outside the
// root is ever created, changed or deleted.
//
// xattr policy: overlayfs's own xattrs in a layer (`trusted.overlay.*`, in a user namespace
// `user.overlay.*`) are refused (they would steer overlayfs: opaque dirs, redirects, metacopy).
// An xattr the filesystem does not support at all (ENOTSUP, e.g. zfs-fuse without -x) is
// skipped, whatever its namespace, with one warning for the layer: Docker 20.10 loads such
// images the same way. `user.*` is skipped on symlinks and device nodes, where the kernel never
// allows it (EPERM), and in a user namespace what its root may not set (EPERM: `trusted.*`) is
// skipped, as Docker and Podman do rootless. Everything else that fails is an error.
//
// In a user namespace (rootless strata) device nodes cannot be made: they are left out, as Docker
// and Podman do rootless. An owner outside the namespace's ids is a one-line error naming the
// subordinate id files, and the layer is removed like any failed one.
// Metadata calls, and small files, are synchronous: through libuv's pool each one is a round trip
// between threads, and on two cores those hand-offs cost the main thread more than the syscalls.
import { StrataError } from '../errors.js';
import { log } from '../log.js';
import {
  chmodSync,
  closeSync,
  constants as fsc,
  fchmodSync,
  fchownSync,
  ftruncateSync,
  futimesSync,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  readFileSync,
  symlinkSync,
  writeSync,
  type Stats,
} from 'node:fs';
import { copyFile, lstat, lutimes, open, readdir, readlink, realpath, rm, symlink } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { lsetxattr, makedev, mknod, readXattrs } from '../sys/linux.js';
import { inUserNamespace, isOverlayXattr, overlayXattr } from '../sys/rootless.js';
import { resolveInRoot, resolveInRootFrom, type RootWalk } from './rootpath.js';
import { LayerArchiveError, bytesToName, cPath, fsPath, nameToBytes, type TarHeader } from './tar/header.js';
import { readTar } from './tar/reader.js';
import { lstatOrNull } from '../sys/errno.js';
import { syncFs } from '../sys/fileio.js';

export { LayerArchiveError };

export type WhiteoutFormat = 'snapshot' | 'overlay' | 'aufs';

export interface ApplyOptions {
  whiteouts: WhiteoutFormat;
  /** Layered formats: the lower layer dirs (top first), to copy up a hardlink target not in this layer. */
  lowers?: string[];
  /**
   * syncfs(2) root's filesystem after the last entry: a layer is recorded complete after this
   * returns, and must not come back from a power cut as empty or truncated files.
   */
  durable?: boolean;
}

/** The archive tries to reach outside the root or is otherwise hostile. */
export class UnsafeArchiveError extends StrataError {
  constructor(message: string) {
    super(message, 1, 'unsafe');
    this.name = 'UnsafeArchiveError';
  }
}

const WH = '.wh.';
const WH_META = '.wh..wh.';
const WH_OPAQUE = '.wh..wh..opq';

const CHUNK = 1 << 20;
const ZEROS = Buffer.alloc(CHUNK);
const S_IFCHR = 0o020000;
/** Who creates files here. */
const EUID = process.geteuid?.() ?? -1;
const EGID = process.getegid?.() ?? -1;
/** Rootless: root of a user namespace, which maps only some ids and may make no devices. */
const USERNS = inUserNamespace();

/**
 * The process's umask, from /proc (process.umask() reads it by setting it twice, which races
 * with files other threads create); when unknown, all bits, so that every mode is set explicitly.
 */
function currentUmask(): number {
  try {
    const m = /^Umask:\s*([0-7]+)$/m.exec(readFileSync('/proc/self/status', 'latin1'));
    if (m) return parseInt(m[1]!, 8);
  } catch {
    // no procfs: fall through
  }
  return 0o777;
}
const S_IFBLK = 0o060000;
const S_IFIFO = 0o010000;
/** Files up to this size are read whole and written with synchronous calls. */
const SMALL_FILE = 1 << 20;

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

/** `host` is `dir` or below it. */
function within(host: string, dir: string): boolean {
  return host === dir || (host.startsWith(dir) && host.charCodeAt(dir.length) === 0x2f);
}

/**
 * A small file's whole content; the same error as a streamed write when the archive ends early.
 * Usually one piece of an input chunk, used as it is: writeSmall writes it at once, so nothing
 * holds on to the chunk.
 */
async function readWhole(body: AsyncIterable<Buffer>, h: TarHeader): Promise<Buffer> {
  const parts: Buffer[] = [];
  let pos = 0;
  for await (const chunk of body) {
    if (pos + chunk.length > h.size) break;
    parts.push(chunk);
    pos += chunk.length;
  }
  if (pos !== h.size) throw new LayerArchiveError(`unexpected end of layer archive in entry ${JSON.stringify(h.name)}`);
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts, pos);
}

/** A resolved parent directory and the host paths (looked at while resolving) it depends on. */
interface ResolvedDir {
  walk: RootWalk;
  host: string;
  deps: string[];
}

function describe(err: unknown): string {
  return (err as { code?: string }).code ?? (err as Error).message;
}

class Applier {
  size = 0;
  private readonly written = new Set<string>();
  private readonly opaque: string[] = [];
  private readonly dirTimes: { path: string; atime: number; mtime: number }[] = [];
  /**
   * Parent dirs resolved by this layer, by archive path. An answer stays valid until something
   * this layer removes is one of the host paths it depends on (every path the walk looked at,
   * symlinks included); a symlink can only appear where something was removed or nothing was,
   * and answers whose walk saw a missing path they did not then create are not kept.
   */
  private readonly parents = new Map<string, ResolvedDir>();
  /** Dirs this layer created: they started empty, so their content is what `made` says. */
  private readonly fresh = new Set<string>();
  /** Directories whose mode this layer set, without setgid: a file created in one takes our group. */
  private readonly plainDirs = new Set<string>();
  private readonly umask = currentUmask();
  /** What this layer created and has not removed since; true for directories. */
  private readonly made = new Map<string, boolean>();
  /** xattrs the filesystem refused with ENOTSUP: "name on path", for the layer's one warning. */
  private readonly unsupportedXattrs: string[] = [];

  constructor(
    private readonly root: string,
    private readonly opts: ApplyOptions,
  ) {
    this.parents.set('', { walk: { parts: [], links: 0 }, host: root, deps: [] });
  }

  /** The parent dir for `parts`, resolved inside the root and created (mkdir -p) when missing. */
  private async parentOf(parts: string[]): Promise<ResolvedDir> {
    const key = parts.join('/');
    const hit = this.parents.get(key);
    if (hit !== undefined) return hit;
    let i = parts.length - 1;
    let base = this.parents.get(parts.slice(0, i).join('/'));
    while (base === undefined) base = this.parents.get(parts.slice(0, --i).join('/'));
    const deps = [...base.deps];
    const missing: string[] = [];
    const walk = await resolveInRootFrom(
      this.root,
      base.walk,
      parts.slice(i).join('/'),
      (host, exists) => {
        deps.push(host);
        if (!exists) missing.push(host);
      },
      key,
    );
    const host = walk.parts.length === 0 ? this.root : `${this.root}/${walk.parts.join('/')}`;
    const created = missing.filter((m) => within(host, m));
    mkdirSync(fsPath(host), { recursive: true, mode: 0o755 });
    for (const d of created) {
      this.fresh.add(d);
      this.made.set(d, true);
    }
    const dir = { walk, host, deps };
    if (created.length === missing.length) this.parents.set(key, dir);
    return dir;
  }

  /** What is at `p` in `dir`: from this layer's own record when it created dir, else lstat. */
  private async existing(p: string, dir: string): Promise<'dir' | 'other' | null> {
    if (this.fresh.has(dir)) {
      const isDir = this.made.get(p);
      return isDir === undefined ? null : isDir ? 'dir' : 'other';
    }
    const st = lstatOrNull(fsPath(p));
    return st === null ? null : st.isDirectory() ? 'dir' : 'other';
  }

  /** Remove p (and all below it when it may be a directory), and forget what this layer knew of it. */
  private async remove(p: string, mayBeDir = true): Promise<void> {
    await rm(fsPath(p), { recursive: true, force: true });
    this.made.delete(p);
    this.fresh.delete(p);
    this.plainDirs.delete(p);
    if (mayBeDir) {
      for (const q of this.made.keys()) if (within(q, p)) this.made.delete(q);
      for (const q of this.fresh) if (within(q, p)) this.fresh.delete(q);
      for (const q of this.plainDirs) if (within(q, p)) this.plainDirs.delete(q);
    }
    for (const [k, d] of this.parents) if (d.deps.some((q) => within(q, p))) this.parents.delete(k);
  }

  async entry(h: TarHeader, body: AsyncIterable<Buffer>): Promise<void> {
    const parts = cleanComponents(h.name, 'entry');
    if (parts.length > 0 && parts[0]!.startsWith(WH_META)) return; // AUFS metadata (plnk, aufs, orph)
    if (parts.length === 0) {
      if (h.type !== 'dir') throw new UnsafeArchiveError(`layer root entry "." is a ${h.type}, not a directory`);
      this.meta(this.root, h);
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

    const parent = await this.parentOf(parentParts);
    const target = `${parent.host}/${base}`;

    let linkTarget: string | null = null;
    if (h.type === 'hardlink') linkTarget = await this.hardlinkSource(h);

    const existing = await this.existing(target, parent.host);
    if (existing && !(existing === 'dir' && h.type === 'dir')) {
      if (linkTarget === target) throw new UnsafeArchiveError(`hardlink ${JSON.stringify(h.name)} points to itself`);
      await this.remove(target, existing === 'dir');
    }

    switch (h.type) {
      case 'file':
        if (h.size <= SMALL_FILE) {
          this.checkXattrs(h);
          this.writeSmall(target, h, await readWhole(body, h));
        } else {
          await this.writeFile(target, h, body);
        }
        this.size += h.size;
        break;
      case 'dir':
        if (existing !== 'dir') {
          mkdirSync(fsPath(target), { mode: 0o700 });
          this.fresh.add(target);
        }
        this.meta(target, h, undefined, existing !== 'dir');
        this.dirTimes.push({ path: target, atime: h.atime ?? h.mtime, mtime: h.mtime });
        // Its children are resolved from here without another walk.
        if (this.parents.has(parentParts.join('/'))) {
          this.parents.set(parts.join('/'), {
            walk: { parts: [...parent.walk.parts, base], links: parent.walk.links },
            host: target,
            deps: [...parent.deps, target],
          });
        }
        break;
      case 'symlink':
        symlinkSync(fsPath(h.linkname ?? ''), fsPath(target));
        // A layered driver's layer size is its directory's (Docker's directory.Size), where a
        // symlink weighs its target's length; a snapshot driver's is the tar's content, where it weighs 0.
        if (this.opts.whiteouts !== 'snapshot') this.size += nameToBytes(h.linkname ?? '').length;
        this.meta(target, h, undefined, true);
        lutimesSync(fsPath(target), h.atime ?? h.mtime, h.mtime);
        break;
      case 'hardlink': {
        if (linkTarget === null) {
          await this.copyUp(h, target);
        } else {
          linkSync(fsPath(linkTarget), fsPath(target));
        }
        const st = lstatSync(fsPath(target));
        if (st.isSymbolicLink()) {
          lchownSync(fsPath(target), h.uid, h.gid);
        } else {
          this.meta(target, h, st);
          lutimesSync(fsPath(target), h.atime ?? h.mtime, h.mtime);
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
          if (USERNS && h.type !== 'fifo' && (err as { code?: string }).code === 'EPERM') return;
          throw new LayerArchiveError(`cannot create ${h.type} device ${JSON.stringify(h.name)}: ${describe(err)}`);
        }
        this.meta(target, h);
        lutimesSync(fsPath(target), h.atime ?? h.mtime, h.mtime);
        break;
      }
    }
    this.made.set(target, h.type === 'dir');
    this.written.add(target);
  }

  private async whiteout(parentParts: string[], base: string, hidden: string, h: TarHeader): Promise<void> {
    // Layered formats create the directory the marker lives in; snapshot only deletes.
    const dir = this.opts.whiteouts === 'snapshot' ? await resolveInRoot(this.root, parentParts.join('/')) : (await this.parentOf(parentParts)).host;
    if (base === WH_OPAQUE) {
      if (this.opts.whiteouts === 'snapshot') {
        this.opaque.push(dir);
      } else {
        const st = await lstat(fsPath(dir));
        if (!st.isDirectory()) throw new UnsafeArchiveError(`opaque marker ${JSON.stringify(h.name)} is not inside a directory`);
        lsetxattr(cPath(dir), overlayXattr('opaque'), Buffer.from('y'));
      }
      return;
    }
    const victim = `${dir}/${hidden}`;
    if (this.opts.whiteouts === 'snapshot') {
      const st = lstatOrNull(fsPath(victim));
      if (st) await this.remove(victim, st.isDirectory());
      return;
    }
    // overlay: a 0/0 character device hides the lower file
    const there = await this.existing(victim, dir);
    if (there) await this.remove(victim, there === 'dir');
    mknod(cPath(victim), S_IFCHR, 0);
    this.made.set(victim, false);
    lchownSync(fsPath(victim), h.uid, h.gid);
    this.written.add(victim);
  }

  /** The host path a hardlink entry links to, or null when it must be copied up from a lower. */
  private async hardlinkSource(h: TarHeader): Promise<string | null> {
    const parts = cleanComponents(h.linkname ?? '', 'hardlink target');
    if (parts.length === 0) throw new UnsafeArchiveError(`hardlink ${JSON.stringify(h.name)} points to the layer root`);
    const dir = await resolveInRoot(this.root, parts.slice(0, -1).join('/'));
    const src = `${dir}/${parts[parts.length - 1]!}`;
    const st = lstatOrNull(fsPath(src));
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
      const st = lstatOrNull(fsPath(p));
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
    } else if (st.isFile()) {
      await copyFile(fsPath(path), fsPath(target), fsc.COPYFILE_EXCL | fsc.COPYFILE_FICLONE);
    } else {
      mknod(cPath(target), (st.mode & 0o170000) | 0o600, BigInt(st.rdev));
    }
    for (const [name, value] of readXattrs(cPath(path))) {
      if (!isOverlayXattr(name)) this.setXattr(target, name, value, st);
    }
  }

  private async writeFile(target: string, h: TarHeader, body: AsyncIterable<Buffer>): Promise<void> {
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

  /**
   * A small file: its content is all here already. Written with synchronous calls: through
   * libuv's pool each of its six syscalls is a round trip between threads, and on two cores
   * those hand-offs cost the main thread more than the syscalls themselves (nginx: 38k -> 12k
   * context switches, main thread ~0.3 s less busy).
   */
  private writeSmall(target: string, h: TarHeader, data: Buffer): void {
    // Created with its final mode when the umask leaves it alone, and by the owner it is to have
    // when that is us and the directory passes on no group: then chown and chmod would change
    // nothing (nginx: 7,000 syscalls fewer).
    const mode = h.mode & 0o7777;
    const modeAsCreated = (mode & ~0o777) === 0 && (mode & this.umask) === 0;
    const fd = openSync(fsPath(target), fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, modeAsCreated ? mode : 0o600);
    try {
      // All zeros: a hole, as writeFile makes of a zero chunk.
      if (data.length > 0 && data.equals(ZEROS.subarray(0, data.length))) {
        ftruncateSync(fd, data.length);
      } else {
        let off = 0;
        while (off < data.length) off += writeSync(fd, data, off, data.length - off, off);
      }
      if (!this.ownedAsCreated(target, h)) fchownSync(fd, h.uid, h.gid);
      if (!modeAsCreated) fchmodSync(fd, mode);
      this.xattrs(target, h, null);
      futimesSync(fd, h.atime ?? h.mtime, h.mtime);
    } finally {
      closeSync(fd);
    }
  }

  /** A file created at target gets h's owner by itself: we are that owner, and its directory is known not to be setgid. */
  private ownedAsCreated(target: string, h: TarHeader): boolean {
    return h.uid === EUID && h.gid === EGID && this.plainDirs.has(target.slice(0, target.lastIndexOf('/')));
  }


  /**
   * Owner (unless `created` just now with it already), then mode (chown clears setuid), then
   * xattrs (chown clears security.capability).
   */
  private meta(target: string, h: TarHeader, st?: Stats, created = false): void {
    if (!created || !this.ownedAsCreated(target, h)) lchownSync(fsPath(target), h.uid, h.gid);
    if (h.type !== 'symlink' && !st?.isSymbolicLink()) chmodSync(fsPath(target), h.mode & 0o7777);
    if (h.type === 'dir') {
      if (h.mode & 0o2000) this.plainDirs.delete(target);
      else this.plainDirs.add(target);
    }
    this.xattrs(target, h, h.xattrs ? (st ?? lstatSync(fsPath(target))) : null);
  }

  private checkXattrs(h: TarHeader): void {
    for (const name of h.xattrs?.keys() ?? []) {
      if (isOverlayXattr(name)) {
        throw new UnsafeArchiveError(`layer entry ${JSON.stringify(h.name)} carries overlayfs control xattr ${name}`);
      }
    }
  }

  private xattrs(target: string, h: TarHeader, st: Stats | null): void {
    if (!h.xattrs) return;
    this.checkXattrs(h);
    for (const [name, value] of h.xattrs) this.setXattr(target, name, value, st);
  }

  private setXattr(target: string, name: string, value: Buffer, st: Stats | null): void {
    try {
      lsetxattr(cPath(target), name, value);
    } catch (err) {
      const code = (err as { code?: string }).code;
      const special = st !== null && !st.isFile() && !st.isDirectory();
      if (name.startsWith('user.') && code === 'EPERM' && special) return;
      if (code === 'ENOTSUP' || code === 'EOPNOTSUPP') {
        this.unsupportedXattrs.push(`${name} on /${target.slice(this.root.length + 1)}`);
        return;
      }
      if (USERNS && code === 'EPERM' && !name.startsWith('security.')) return;
      throw new LayerArchiveError(`cannot set xattr ${name} on ${JSON.stringify(target.slice(this.root.length + 1))}: ${code ?? describe(err)}`);
    }
  }

  async finish(): Promise<void> {
    const skipped = this.unsupportedXattrs;
    if (skipped.length > 0) {
      const shown = skipped.slice(0, 3).join(', ') + (skipped.length > 3 ? `, and ${skipped.length - 3} more` : '');
      log.warn(`ignored xattrs in archive: underlying filesystem doesn't support them (${shown})`);
    }
    // Opaque directories (snapshot format) lose every child this layer did not write.
    for (const dir of this.opaque) await this.prune(dir);
    // Directory times last, when nothing is created or removed any more (setting one dir's times
    // does not touch its parent's, so they may go in any order); the last entry for a dir wins.
    const times = new Map<string, { atime: number; mtime: number }>();
    for (const d of this.dirTimes) {
      times.delete(d.path);
      times.set(d.path, d);
    }
    for (const [path, t] of times) {
      // A dir this layer made and did not remove since is still a dir; others are looked at.
      if (this.made.get(path) !== true) {
        const st = lstatOrNull(fsPath(path));
        if (!st || !st.isDirectory()) continue;
      }
      lutimesSync(fsPath(path), t.atime, t.mtime);
    }
  }

  private async prune(dir: string): Promise<void> {
    const st = lstatOrNull(fsPath(dir));
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

/** In a user namespace, chown to an id it does not map fails with EINVAL: say which and why. */
function unmappedOwner(err: unknown, h: TarHeader): unknown {
  const e = err as { code?: string; syscall?: string };
  if (e.code !== 'EINVAL' || !/chown/.test(e.syscall ?? '')) return err;
  return new LayerArchiveError(
    `cannot give ${JSON.stringify(h.name)} its owner ${h.uid}:${h.gid}: the user namespace does not map that id; ` +
      'give the user a subordinate range that covers it in /etc/subuid and /etc/subgid',
  );
}

/**
 * Apply an uncompressed layer tar to root. Returns the layer's size as Docker's drivers count it:
 * the bytes of regular-file content (ApplyLayer), plus symlink targets for the layered formats
 * (directory.Size). The input is read to its end (the caller may be hashing it).
 */
export async function applyLayer(root: string, tar: Readable, opts: ApplyOptions): Promise<{ size: number }> {
  const realRoot = await realpath(root);
  const applier = new Applier(realRoot, opts);
  // Entries are applied one after another: when this fails, nothing is still writing.
  for await (const { header, body } of readTar(tar)) {
    try {
      await applier.entry(header, body);
    } catch (err) {
      throw USERNS ? unmappedOwner(err, header) : err;
    }
  }
  await applier.finish();
  if (opts.durable) await syncFs(realRoot);
  return { size: applier.size };
}
