// What is mounted where, read from /proc/self/mountinfo (the kernel's view, not a cache of ours).
import { readFileSync } from 'node:fs';
import { resolve, sep } from 'node:path';

export interface MountEntry {
  mountPoint: string;
  fsType: string;
  source: string;
  /** The filesystem's own options (`rw,user_subvol_rm_allowed,…`). */
  superOptions: string[];
}

// mountinfo escapes space, tab, newline and backslash as \ooo octal.
function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** The mounts this process sees, or those of the mount namespace of process `pid`. */
export function readMounts(pid: number | 'self' = 'self'): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n')) {
    if (line === '') continue;
    const fields = line.split(' ');
    const dash = fields.indexOf('-', 6);
    if (dash < 0 || fields.length < dash + 3) continue;
    out.push({ mountPoint: unescape(fields[4]), fsType: fields[dash + 1], source: unescape(fields[dash + 2]), superOptions: (fields[dash + 3] ?? '').split(',') });
  }
  return out;
}

export function isMountPoint(path: string): boolean {
  const p = resolve(path);
  return readMounts().some((m) => m.mountPoint === p);
}

/** Mount points strictly below dir, deepest first (the order to unmount them in). */
export function mountsUnder(dir: string): string[] {
  const base = resolve(dir) + sep;
  const found = readMounts()
    .map((m) => m.mountPoint)
    .filter((p) => p.startsWith(base));
  return [...new Set(found)].sort((a, b) => b.length - a.length);
}

/** The mount that holds path (the deepest mount point above it). */
export function mountOf(path: string): MountEntry | undefined {
  const p = resolve(path);
  let best: MountEntry | undefined;
  for (const m of readMounts()) {
    const under = p === m.mountPoint || m.mountPoint === sep || p.startsWith(m.mountPoint + sep);
    if (under && (!best || m.mountPoint.length >= best.mountPoint.length)) best = m;
  }
  return best;
}
