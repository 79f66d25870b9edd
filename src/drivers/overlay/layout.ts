// Docker's overlay2 directory layout, shared by the overlay2 and fuse-overlayfs drivers:
//   <home>/<id>/diff     the layer's own files (the upper dir when it is on top)
//   <home>/<id>/link     a 26-character name; <home>/l/<name> -> ../<id>/diff
//   <home>/<id>/lower    l/<parent link>:l/<grandparent link>:…  (absent for a base layer)
//   <home>/<id>/work     overlay's work dir (layers with a parent only)
//   <home>/<id>/merged   the mount point, made on first mount
//   <home>/<id>/stack    where a chain deeper than the kernel's limit mounts id and the layers
//                        below it as one read-only overlay (see stackPlan), made on first use
// Short links keep mount data small; the lower file lets a layer be mounted without walking
// its ancestors one by one.
import { randomBytes } from 'node:crypto';
import { closeSync, lstatSync, openSync, readSync } from 'node:fs';
import { lstat, mkdir, readFile, readdir, readlink, rename, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { fsyncDirAsync, writeFileAtomicAsync } from '../../sys/fileio.js';
import { checkLayerId, isLayerId } from '../common/layer-id.js';
import { DriverError } from '../driver.js';
import { fault } from '../../sys/fault.js';

export const LINK_DIR = 'l';
const LINK_LEN = 26;
/** The kernel's OVL_MAX_STACK: overlay refuses more lower layers than this. */
export const MAX_LOWERS = 500;
/**
 * The most lower layers a layer may have: its deepest MAX_LOWERS layers mounted as one
 * read-only overlay (overlay on overlay: the kernel allows one level of that), which takes one
 * of the MAX_LOWERS places of the layer's own mount.
 */
export const MAX_DEPTH = 2 * MAX_LOWERS - 1;
const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** 26 random base32 characters, like Docker's overlayutils.GenerateID. */
export function generateLinkId(): string {
  const bytes = randomBytes(LINK_LEN);
  let s = '';
  for (const b of bytes) s += BASE32[b & 31];
  return s;
}

function isENOENT(err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === 'ENOENT';
}

export class OverlayLayout {
  constructor(readonly home: string) {}

  async init(): Promise<void> {
    await mkdir(this.home, { recursive: true, mode: 0o710 });
    await mkdir(join(this.home, LINK_DIR), { recursive: true, mode: 0o700 });
  }

  checkId(id: string): void {
    checkLayerId('overlay', id, (i) => i === LINK_DIR || i.endsWith('.removing'));
  }

  dir(id: string): string {
    this.checkId(id);
    return join(this.home, id);
  }
  diffDir(id: string): string {
    return join(this.dir(id), 'diff');
  }
  workDir(id: string): string {
    return join(this.dir(id), 'work');
  }
  mergedDir(id: string): string {
    return join(this.dir(id), 'merged');
  }
  /** Where id and the layers below it are mounted as one read-only lower for deeper chains. */
  stackDir(id: string): string {
    return join(this.dir(id), 'stack');
  }

  async exists(id: string): Promise<boolean> {
    try {
      return (await lstat(this.diffDir(id))).isDirectory();
    } catch (err) {
      if (isENOENT(err) || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return false;
      throw err;
    }
  }

  /** exists, without a round trip through the thread pool. */
  existsNow(id: string): boolean {
    try {
      return lstatSync(this.diffDir(id), { throwIfNoEntry: false })?.isDirectory() ?? false;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOTDIR') return false;
      throw err;
    }
  }

  async require(id: string): Promise<void> {
    if (!(await this.exists(id))) throw new DriverError(`layer ${id} does not exist`);
  }

  /** Make the directories, link and lower file of a new layer on top of parent. */
  async create(id: string, parent: string | null): Promise<void> {
    const dir = this.dir(id);
    if (parent !== null) await this.require(parent);
    const lower = parent === null ? null : await this.lowerFor(parent);
    if (lower !== null && lower.length > MAX_DEPTH) {
      throw new DriverError(
        `max depth exceeded: layer ${id} would have ${lower.length} lower layers, at most ${MAX_DEPTH} can be mounted (${MAX_LOWERS} per overlay, one overlay stacked on another)`,
      );
    }
    try {
      await mkdir(dir, { mode: 0o710 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new DriverError(`layer ${id} already exists`);
      throw err;
    }
    // Each step leaves a state remove() undoes without reading what the step wrote: the link
    // and lower files appear whole or not at all (temp name, fsync, rename), and the `l/`
    // symlink is found by its target, not through the link file.
    try {
      await mkdir(join(dir, 'diff'), { mode: 0o755 });
      const link = generateLinkId();
      await symlink(join('..', id, 'diff'), join(this.home, LINK_DIR, link));
      await fsyncDirAsync(join(this.home, LINK_DIR));
      await writeFileAtomicAsync(join(dir, 'link'), link);
      if (lower !== null) {
        await mkdir(join(dir, 'work'), { mode: 0o700 });
        await mkdir(join(dir, 'merged'), { mode: 0o700 });
        await writeFileAtomicAsync(join(dir, 'lower'), lower.join(':'));
      }
      await fsyncDirAsync(this.home);
    } catch (err) {
      await this.remove(id).catch(() => undefined);
      throw err;
    }
  }

  async link(id: string): Promise<string> {
    const link = (await readFile(join(this.dir(id), 'link'), 'utf8')).trim();
    if (link.length !== LINK_LEN || !/^[A-Z2-7]+$/.test(link)) {
      throw new DriverError(`layer ${id} has a corrupt link file`);
    }
    return link;
  }

  /** `l/<link>` entries below id, parent first; [] for a base layer. */
  async lowerLinks(id: string): Promise<string[]> {
    let text: string;
    try {
      text = await readFile(join(this.dir(id), 'lower'), 'utf8');
    } catch (err) {
      if (isENOENT(err)) return [];
      throw err;
    }
    const parts = text.trim().split(':').filter((p) => p.length > 0);
    for (const p of parts) {
      if (!/^l\/[A-Z2-7]{26}$/.test(p)) throw new DriverError(`layer ${id} has a corrupt lower file`);
    }
    return parts;
  }

  /** What a child of parent writes in its lower file: parent's link, then its lowers. */
  async lowerFor(parent: string): Promise<string[]> {
    return [`${LINK_DIR}/${await this.link(parent)}`, ...(await this.lowerLinks(parent))];
  }

  /** Host paths of the lower diff dirs, parent first (what Docker shows as LowerDir). */
  async lowerDirs(id: string): Promise<string[]> {
    return this.resolve(id, await this.lowerLinks(id));
  }

  /** Host paths of lowers named relative to the home (`l/<link>` resolved to the diff dir). */
  async resolve(id: string, lowers: string[]): Promise<string[]> {
    const out: string[] = [];
    for (const l of lowers) {
      if (!l.startsWith(`${LINK_DIR}/`)) {
        out.push(join(this.home, l));
        continue;
      }
      out.push(join(this.home, LINK_DIR, await this.linkTarget(id, l)));
    }
    return out;
  }

  /** Where lower link l of layer id points (`../<layer>/diff`). */
  private linkTarget(id: string, l: string): Promise<string> {
    return readlink(join(this.home, l)).catch((err: unknown) => {
      if (isENOENT(err)) throw new DriverError(`layer ${id}: lower link ${l} is missing`);
      throw err;
    });
  }

  /**
   * How to mount a layer whose lowers (`l/<link>`, parent first) are more than one overlay
   * takes: the deepest MAX_LOWERS of them (an ancestor and everything below it) as the
   * ancestor's read-only stack, the rest directly. The cut is counted from the base, so every
   * layer and container above one image shares the same stack. Null when one overlay suffices.
   */
  async stackPlan(id: string, lowers: string[]): Promise<{ ancestor: string; direct: string[] } | null> {
    if (lowers.length <= MAX_LOWERS) return null;
    const cut = lowers.length - MAX_LOWERS;
    const link = lowers[cut]!;
    const target = await this.linkTarget(id, link);
    const m = /^\.\.\/([^/]+)\/diff$/.exec(target);
    if (!m || !isLayerId(m[1]!)) throw new DriverError(`layer ${id}: lower link ${link} points at ${target}, not a layer`);
    return { ancestor: m[1]!, direct: lowers.slice(0, cut) };
  }

  /** True when parent is id's direct parent (null: id is a base layer). */
  async isParent(id: string, parent: string | null): Promise<boolean> {
    const lowers = await this.lowerLinks(id);
    if (parent === null) return lowers.length === 0;
    if (lowers.length === 0) return false;
    return lowers[0] === `${LINK_DIR}/${await this.link(parent)}`;
  }

  /** Layer ids in the home (not the link dir, nor half-removed ones). */
  async ids(): Promise<string[]> {
    const out: string[] = [];
    for (const name of await readdir(this.home)) {
      if (name === LINK_DIR || !isLayerId(name) || name.endsWith('.removing')) continue;
      if (await this.exists(name)) out.push(name);
    }
    return out;
  }

  /** Ids of the layers created directly on top of id. */
  async children(id: string): Promise<string[]> {
    const links = await this.linksOf(id);
    if (links.length === 0) return []; // nothing can name a layer that has no link
    const mine = new Set(links.map((l) => `${LINK_DIR}/${l}`));
    const out: string[] = [];
    // Synchronous on purpose: hundreds of tiny reads cost microseconds each this way, where
    // promise round trips made removing a 500-layer chain take many seconds.
    const buf = Buffer.alloc(LINK_DIR.length + 1 + LINK_LEN + 1);
    for (const other of await readdir(this.home)) {
      if (other === id || other === LINK_DIR || !isLayerId(other) || other.endsWith('.removing')) continue;
      let fd: number;
      try {
        fd = openSync(join(this.home, other, 'lower'), 'r');
      } catch (err) {
        if (isENOENT(err) || (err as NodeJS.ErrnoException).code === 'ENOTDIR') continue;
        throw err;
      }
      let head: string;
      try {
        head = buf.subarray(0, readSync(fd, buf, 0, buf.length, 0)).toString('utf8');
      } finally {
        closeSync(fd);
      }
      const first = head.endsWith(':') ? head.slice(0, -1) : head;
      if (mine.has(first)) out.push(other);
    }
    return out;
  }

  /**
   * The `l/` names that point at id's diff dir. The link file says which one when it is whole
   * and its symlink really points there; otherwise (a layer whose creation was cut short, or
   * a damaged one) `l/` is scanned for symlinks into `../<id>/`, so nothing of the layer's own
   * files has to be trusted.
   */
  async linksOf(id: string): Promise<string[]> {
    const target = join('..', id, 'diff');
    const linkDir = join(this.home, LINK_DIR);
    try {
      const named = (await readFile(join(this.dir(id), 'link'), 'utf8')).trim();
      if (/^[A-Z2-7]{26}$/.test(named) && (await readlink(join(linkDir, named))) === target) return [named];
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR' && code !== 'EINVAL') throw err;
    }
    const out: string[] = [];
    for (const name of await readdir(linkDir)) {
      try {
        if ((await readlink(join(linkDir, name))) === target) out.push(name);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENOENT' && code !== 'EINVAL') throw err;
      }
    }
    return out;
  }

  /**
   * Remove a layer's link and directory, however far its creation got. The link goes first
   * (no child can be made on the layer any more), then the directory is renamed so a crash
   * half way leaves `<id>.removing`, never a half-deleted layer that still looks whole.
   */
  async remove(id: string): Promise<void> {
    const dir = this.dir(id);
    for (const link of await this.linksOf(id)) await rm(join(this.home, LINK_DIR, link), { force: true });
    const doomed = `${dir}.removing`;
    try {
      await rename(dir, doomed);
      fault('rename');
    } catch (err) {
      // Renamed already by a removal that was cut short: finish it.
      if (!isENOENT(err)) throw err;
    }
    await rm(doomed, { recursive: true, force: true });
  }

  /** Finish removals a crash interrupted and drop links whose layer is gone. */
  async sweep(): Promise<void> {
    for (const name of await readdir(this.home)) {
      if (name.endsWith('.removing') || name.startsWith('native-diff-check-')) await rm(join(this.home, name), { recursive: true, force: true });
    }
    const linkDir = join(this.home, LINK_DIR);
    for (const name of await readdir(linkDir)) {
      const p = join(linkDir, name);
      try {
        await lstat(join(linkDir, await readlink(p)));
      } catch (err) {
        if (isENOENT(err) || (err as NodeJS.ErrnoException).code === 'EINVAL') await rm(p, { force: true });
        else throw err;
      }
    }
  }
}
