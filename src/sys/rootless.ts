// Whether strata runs rootless, and where a rootless strata keeps its things. A user without
// root gets Podman's places: the store under $XDG_DATA_HOME/strata (else ~/.local/share/strata)
// and runtime state under $XDG_RUNTIME_DIR/strata (else a private dir in /tmp). The answers are
// the same outside strata's user namespace (where the user is who they are) and inside it
// (where they are uid 0, and the host uid is read back from the namespace's uid map).
import { lstatSync, mkdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { StrataError } from '../errors.js';

export interface IdRange {
  /** First id inside the namespace. */
  inside: number;
  /** The host id it stands for. */
  outside: number;
  count: number;
}

/** Lines of /proc/PID/uid_map or gid_map. */
export function parseIdMap(text: string): IdRange[] {
  const out: IdRange[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/).map(Number);
    if (f.length === 3 && f.every(Number.isInteger)) out.push({ inside: f[0]!, outside: f[1]!, count: f[2]! });
  }
  return out;
}

function readMap(kind: 'uid' | 'gid'): IdRange[] {
  try {
    return parseIdMap(readFileSync(`/proc/self/${kind}_map`, 'utf8'));
  } catch {
    return [];
  }
}

/** True when this process runs in a user namespace other than the initial one. */
export function inUserNamespace(): boolean {
  const map = readMap('uid');
  return !(map.length === 1 && map[0]!.inside === 0 && map[0]!.outside === 0 && map[0]!.count === 4294967295);
}

/** The uid and gid maps of this process's user namespace, or null in the initial one. */
export function currentMapping(): { uids: IdRange[]; gids: IdRange[] } | null {
  return inUserNamespace() ? { uids: readMap('uid'), gids: readMap('gid') } : null;
}

/** Rootless: not root, or root only inside a user namespace (strata's own, or a container's). */
export function isRootless(): boolean {
  return process.geteuid?.() !== 0 || inUserNamespace();
}

/** The user's uid on the host: ours outside a user namespace, what our uid maps to inside one. */
export function hostUid(): number {
  const uid = process.geteuid?.() ?? 0;
  if (!inUserNamespace()) return uid;
  const r = readMap('uid').find((m) => uid >= m.inside && uid < m.inside + m.count);
  return r ? r.outside + (uid - r.inside) : uid;
}

/** Root's store: Docker's place. */
export const ROOT_STORE = '/var/lib/strata';
/** Root's runtime state: gone at reboot, like the containers that ran. */
const ROOT_RUN = '/run/strata';

/** The default store root: /var/lib/strata for root, the user's data dir for everyone else. */
export function defaultStoreRoot(): string {
  if (!isRootless()) return ROOT_STORE;
  const data = process.env.XDG_DATA_HOME;
  return join(data && data.startsWith('/') ? data : join(homedir(), '.local', 'share'), 'strata');
}

/** True when dir is a directory of ours (not a symlink) that nobody else may write to. */
function privateDir(dir: string): boolean {
  const st = lstatSync(dir, { throwIfNoEntry: false });
  return st !== undefined && st.isDirectory() && st.uid === process.geteuid?.() && (st.mode & 0o022) === 0;
}

/**
 * Where runc's state, attach sockets and the user namespace's keeper live: $STRATA_RUN_DIR
 * when set; /run/strata for root; else $XDG_RUNTIME_DIR/strata when that dir is the user's
 * own, else /tmp/strata-run-UID, which must be a 0700 dir of the user's (a dir someone else
 * made there first is refused, not used).
 */
export function defaultRunDir(): string {
  if (process.env.STRATA_RUN_DIR) return process.env.STRATA_RUN_DIR;
  if (!isRootless()) return ROOT_RUN;
  const xdg = process.env.XDG_RUNTIME_DIR;
  if (xdg && xdg.startsWith('/') && privateDir(xdg)) return join(xdg, 'strata');
  const dir = `/tmp/strata-run-${hostUid()}`;
  mkdirSync(dir, { mode: 0o700, recursive: true });
  const st = lstatSync(dir);
  if (!st.isDirectory() || st.uid !== process.geteuid?.() || (st.mode & 0o077) !== 0) {
    throw new StrataError(`${dir} is not a private directory of this user (owner ${st.uid}, mode ${(st.mode & 0o7777).toString(8)}); remove it or set XDG_RUNTIME_DIR`);
  }
  return dir;
}

let overlayPrefix: string | null = null;

/**
 * The name of an overlayfs xattr (`opaque`, `redirect`, …) as the kernel reads it here: in a
 * user namespace overlay is mounted with `userxattr` and reads `user.overlay.*`, since the
 * namespace's root cannot write `trusted.*`; elsewhere `trusted.overlay.*`.
 */
export function overlayXattr(name: string): string {
  overlayPrefix ??= inUserNamespace() ? 'user.overlay.' : 'trusted.overlay.';
  return overlayPrefix + name;
}

/** An xattr that steers this process's overlayfs: never taken from a layer, never put into one. */
export function isOverlayXattr(name: string): boolean {
  return name.startsWith(overlayXattr(''));
}
