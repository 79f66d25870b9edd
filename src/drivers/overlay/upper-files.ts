// An overlay2 layer's merged view read and written through its own dirs, without mounting it:
// entries are looked up as the kernel's overlay looks them up (upper-changes.ts), and a write
// lands in the upper dir after the directories above it are copied up, as overlay copies them
// (mode, owner, xattrs but overlay's own, times). Creating a container's -init layer this way
// spares a mount, an unmount and their shared reference counts.
import type { BigIntStats } from 'node:fs';
import { chmod, lchown, lutimes, mkdir, open, symlink } from 'node:fs/promises';
import { cPath, fsPath } from '../../archive/tar/header.js';
import { hostPath, parentOf } from '../../archive/walk.js';
import { lsetxattr, readXattrs } from '../../sys/linux.js';
import { isOverlayXattr } from '../../sys/rootless.js';
import type { LayerFiles, ViewEntry } from '../driver.js';
import { isOpaque, isWhiteout, lookup, lstatIfAny, type Found, UnreadableUpper } from './upper-changes.js';

/** Where rel stands in the view: its upper entry (a whiteout counts as none) and what the lower dirs show. */
interface Resolved {
  upper: BigIntStats | undefined;
  lower: Found | undefined;
}

export class UpperFiles implements LayerFiles {
  constructor(
    private readonly upper: string,
    private readonly lowers: string[],
  ) {}

  private resolve(rel: string): Resolved | undefined {
    let stack: string[] | null = this.lowers;
    let inUpper = true;
    let res: Resolved = { upper: undefined, lower: undefined };
    const parts = rel.split('/');
    for (let i = 0; i < parts.length; i++) {
      const sub = parts.slice(0, i + 1).join('/');
      const up: BigIntStats | undefined = inUpper ? lstatIfAny(hostPath(this.upper, sub)) : undefined;
      if (up !== undefined && isWhiteout(up)) return undefined;
      const low: Found | undefined = stack === null ? undefined : lookup(stack, parts[i]!);
      res = { upper: up, lower: low };
      if (i === parts.length - 1) break;
      const view = up ?? low?.st;
      if (view === undefined || !view.isDirectory()) return undefined;
      inUpper = up !== undefined;
      // Below an upper dir, a lower non-dir or an opaque mark ends the merge.
      stack = low?.st.isDirectory() && !(up !== undefined && isOpaque(hostPath(this.upper, sub))) ? low.stack : null;
    }
    return res.upper === undefined && res.lower === undefined ? undefined : res;
  }

  lstat(rel: string): Promise<ViewEntry | undefined> {
    const r = this.resolve(rel);
    return Promise.resolve(r?.upper ?? r?.lower?.st);
  }

  /** Make rel, a directory of the view, a directory of the upper dir too (overlay's copy-up). */
  private async copyUp(rel: string): Promise<void> {
    if (rel === '') return;
    const r = this.resolve(rel);
    if (r?.upper?.isDirectory()) return;
    if (r?.upper !== undefined || !r?.lower?.st.isDirectory()) throw new UnreadableUpper(`${rel} is not a directory of the view`);
    await this.copyUp(parentOf(rel));
    const from = r.lower;
    const to = hostPath(this.upper, rel);
    await mkdir(fsPath(to), { mode: 0o700 });
    await lchown(fsPath(to), Number(from.st.uid), Number(from.st.gid));
    for (const [name, value] of readXattrs(cPath(from.path))) if (!isOverlayXattr(name)) lsetxattr(cPath(to), name, value);
    await chmod(fsPath(to), Number(from.st.mode & 0o7777n));
    await lutimes(fsPath(to), Number(from.st.atimeNs) / 1e9, Number(from.st.mtimeNs) / 1e9);
  }

  private async place(rel: string): Promise<string> {
    const path = hostPath(this.upper, rel);
    // A fresh layer's upper dir has no whiteouts; one that has would need an opaque dir in its place.
    if (lstatIfAny(path) !== undefined) throw new UnreadableUpper(`${rel} exists in the upper dir`);
    await this.copyUp(parentOf(rel));
    return path;
  }

  async mkdir(rel: string, mode: number): Promise<void> {
    await mkdir(fsPath(await this.place(rel)), { mode });
  }

  async createFile(rel: string, mode: number): Promise<void> {
    await (await open(fsPath(await this.place(rel)), 'wx', mode)).close();
  }

  async chmod(rel: string, mode: number): Promise<void> {
    await chmod(fsPath(hostPath(this.upper, rel)), mode);
  }

  async symlink(target: string, rel: string): Promise<void> {
    await symlink(target, fsPath(await this.place(rel)));
  }
}
