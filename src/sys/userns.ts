// The user namespace a rootless strata works in, as Podman's: the user is root inside it, and the
// user's subordinate ids (/etc/subuid, /etc/subgid, mapped through the setuid newuidmap and
// newgidmap) stand for the other ids, so layer files get the image's owners. A keeper process
// (`sleep infinity` in a new user + mount namespace, its identity in RUNDIR/userns.pid) holds
// the namespace between commands, so that a layer one command mounts is still there for the
// next (and for `strata unshare`); every command re-executes itself inside it with nsenter.
// When /etc/subuid or /etc/subgid changes while a keeper lives, the next command replaces the
// keeper if nothing of the user's runs or is mounted in its namespace, and otherwise says what
// to stop first (Podman asks for `podman system migrate` there).
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { StrataError } from '../errors.js';
import { log } from '../log.js';
import { LOCK_EX, LOCK_UN, flock } from './linux.js';
import { readMounts } from './mountinfo.js';
import { childExit, identityOf, processAlive } from './process.js';
import { defaultRunDir, parseIdMap, type IdRange } from './rootless.js';
import { runTool, ToolError } from './run.js';

/** The ids the namespace maps: the user to 0, then every subordinate range in file order. */
export interface PlannedMapping {
  uids: IdRange[];
  gids: IdRange[];
  /** No subordinate range for uids or gids: only the user's own id is mapped. */
  single: boolean;
}

/** The `start:count` ranges of `name` (or its numeric id) in a subuid/subgid file. */
export function subordinateRanges(text: string, name: string, id: number): { start: number; count: number }[] {
  const out: { start: number; count: number }[] = [];
  for (const line of text.split('\n')) {
    const [who, start, count] = line.trim().split(':');
    if (who !== name && who !== String(id)) continue;
    const s = Number(start);
    const n = Number(count);
    if (Number.isInteger(s) && Number.isInteger(n) && n > 0) out.push({ start: s, count: n });
  }
  return out;
}

function readOrEmpty(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

function mapFrom(own: number, ranges: { start: number; count: number }[]): IdRange[] {
  const out: IdRange[] = [{ inside: 0, outside: own, count: 1 }];
  let next = 1;
  for (const r of ranges) {
    out.push({ inside: next, outside: r.start, count: r.count });
    next += r.count;
  }
  return out;
}

/** The mapping this user gets, from /etc/subuid and /etc/subgid. */
export function plannedMapping(files = { subuid: '/etc/subuid', subgid: '/etc/subgid' }): PlannedMapping {
  const me = userInfo();
  const subU = subordinateRanges(readOrEmpty(files.subuid), me.username, me.uid);
  // Both files name their owner by login name or uid (never gid).
  const subG = subordinateRanges(readOrEmpty(files.subgid), me.username, me.uid);
  const single = subU.length === 0 || subG.length === 0;
  // Half a mapping (uids without gids) cannot give files their owners either: both go single.
  return { uids: mapFrom(me.uid, single ? [] : subU), gids: mapFrom(me.gid, single ? [] : subG), single };
}

function mapArgs(pid: number, ranges: IdRange[]): string[] {
  return [String(pid), ...ranges.flatMap((r) => [String(r.inside), String(r.outside), String(r.count)])];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The keeper is in a user namespace of its own once unshare(1) has called unshare(2). */
async function waitUnshared(pid: number): Promise<void> {
  const ours = readlinkSync('/proc/self/ns/user');
  for (let i = 0; i < 1000; i++) {
    let theirs: string;
    try {
      theirs = readlinkSync(`/proc/${pid}/ns/user`);
    } catch {
      throw new StrataError('cannot create a user namespace: unshare exited (are unprivileged user namespaces disabled?)');
    }
    if (theirs !== ours) return;
    await sleep(5);
  }
  throw new StrataError('cannot create a user namespace: unshare did not make one within 5 s');
}

/** Start the keeper of a new namespace with the planned mapping; returns its pid. */
async function startKeeper(plan: PlannedMapping): Promise<number> {
  // Slave propagation: what the host mounts later shows inside too; what strata mounts inside
  // stays there.
  const keeper = spawn('unshare', ['--user', '--mount', '--propagation', 'slave', '--', 'sleep', 'infinity'], { cwd: '/', detached: true, stdio: 'ignore' });
  keeper.unref();
  const failed = new Promise<never>((_, reject) => keeper.once('error', (err) => reject(new StrataError(`cannot run unshare: ${err.message}`))));
  const pid = keeper.pid;
  try {
    if (pid === undefined) return await failed;
    await Promise.race([waitUnshared(pid), failed]);
    for (const [tool, ranges] of [['newuidmap', plan.uids], ['newgidmap', plan.gids]] as const) {
      try {
        await runTool(tool, mapArgs(pid, ranges));
      } catch (err) {
        // A tool that never started (not installed) has no exit code.
        const missing = err instanceof ToolError && err.exitCode === null;
        throw new StrataError(missing ? `rootless strata needs ${tool} (Debian package uidmap)` : `cannot map ids into the user namespace: ${(err as Error).message}`);
      }
    }
  } catch (err) {
    if (pid !== undefined) process.kill(pid, 'SIGKILL');
    throw err;
  }
  if (plan.single) {
    const me = userInfo();
    log.warn(
      `${me.username} has no subordinate ids in /etc/subuid and /etc/subgid: only uid ${me.uid} and gid ${me.gid} are mapped (to root), ` +
        `so images with files owned by any other id cannot be pulled; add a range (usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${me.username}): strata takes it up once none of your containers runs and nothing is mounted`,
    );
  }
  return pid;
}

/** The keeper named by identity runs and still holds its namespace (a zombie holds none). */
function keeperAlive(identity: string): boolean {
  if (!processAlive(identity)) return false;
  const pid = identity.split(':')[0];
  try {
    readlinkSync(`/proc/${pid}/ns/mnt`); // gone once the process has exited, reaped or not
    return readlinkSync(`/proc/${pid}/ns/user`) !== readlinkSync('/proc/self/ns/user');
  } catch {
    return false;
  }
}

function sameRanges(a: IdRange[], b: IdRange[]): boolean {
  return a.length === b.length && a.every((r, i) => r.inside === b[i]!.inside && r.outside === b[i]!.outside && r.count === b[i]!.count);
}

/** The keeper's namespace maps ids otherwise than plan (the subordinate ranges changed since it began). */
function mappingChanged(pid: number, plan: PlannedMapping): boolean {
  const map = (kind: string) => parseIdMap(readOrEmpty(`/proc/${pid}/${kind}_map`));
  return !sameRanges(map('uid'), plan.uids) || !sameRanges(map('gid'), plan.gids);
}

function ended(pid: number): boolean {
  const stat = readOrEmpty(`/proc/${pid}/stat`);
  return /^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
}

/**
 * What of the user's lives in the keeper's namespace, in words ('' for nothing): processes other
 * than the keeper (containers, their monitors, other strata commands, fuse-overlayfs) and
 * mounts made inside it (a layer's root, owned by an id the namespace maps; the mounts copied
 * from the host when it began, and those the host added since, are not the user's).
 */
function namespaceInUse(pid: number): string {
  const ns = readlinkSync(`/proc/${pid}/ns/user`);
  let processes = 0;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === pid) continue;
    try {
      // A zombie (ended, not yet reaped) keeps the link but holds nothing.
      if (readlinkSync(`/proc/${name}/ns/user`) === ns && !ended(Number(name))) processes++;
    } catch {
      // ended meanwhile, or someone else's
    }
  }
  const host = new Set(readMounts().map((m) => `${m.mountPoint}\0${m.fsType}\0${m.source}`));
  const outside = parseIdMap(readOrEmpty(`/proc/${pid}/uid_map`));
  let mounts = 0;
  for (const m of readMounts(pid)) {
    if (host.has(`${m.mountPoint}\0${m.fsType}\0${m.source}`)) continue;
    let owner: number;
    try {
      owner = statSync(`/proc/${pid}/root${m.mountPoint}`).uid;
    } catch {
      continue;
    }
    if (outside.some((r) => owner >= r.outside && owner < r.outside + r.count)) mounts++;
  }
  const words = [processes ? `${processes} process${processes === 1 ? '' : 'es'}` : '', mounts ? `${mounts} mount${mounts === 1 ? '' : 's'}` : ''];
  return words.filter(Boolean).join(' and ');
}

/**
 * The keeper to use when one lives: itself, unless the subordinate ranges changed since it began
 * and nothing of the user's is in its namespace (then it is ended, and null says to start anew).
 */
function keeperToKeep(pid: number, plan: PlannedMapping): number | null {
  if (!mappingChanged(pid, plan)) return pid;
  const busy = namespaceInUse(pid);
  if (busy !== '') {
    log.warn(
      `/etc/subuid or /etc/subgid changed, but strata's user namespace (pid ${pid}) keeps the old mapping while it holds ${busy} of yours: ` +
        'stop your containers and unmount what is mounted (strata ps, strata stop, strata umount), and the next command takes the new ranges up',
    );
    return pid;
  }
  process.kill(pid, 'SIGKILL');
  return null;
}

/** The pid of the live keeper, starting one when there is none (under a lock: one per user). */
async function keeperPid(runDir: string): Promise<number> {
  mkdirSync(runDir, { recursive: true, mode: 0o700 });
  const pidFile = `${runDir}/userns.pid`;
  const fd = openSync(`${runDir}/userns.lock`, 'a', 0o600);
  try {
    await flock(fd, LOCK_EX);
    const known = readOrEmpty(pidFile).trim();
    const plan = plannedMapping();
    if (keeperAlive(known)) {
      const kept = keeperToKeep(Number(known.split(':')[0]), plan);
      if (kept !== null) return kept;
    }
    const pid = await startKeeper(plan);
    writeFileSync(`${pidFile}.tmp`, `${identityOf(pid) ?? pid}\n`, { mode: 0o600 });
    renameSync(`${pidFile}.tmp`, pidFile);
    return pid;
  } finally {
    await flock(fd, LOCK_UN).catch(() => undefined);
    closeSync(fd);
  }
}

/**
 * Run command (strata itself, with the same arguments) inside the user's namespace, with this
 * process's stdio, cwd and environment; resolves to its exit code. Signals that ask this
 * process to end are passed on, and it waits for the command to end first.
 */
export async function runInUserNamespace(command: string[]): Promise<number> {
  const pid = await keeperPid(defaultRunDir());
  const env = { ...process.env };
  // Inside, the user is root, whose home is not theirs: the defaults must come from the user's.
  env.HOME ??= userInfo().homedir;
  const child = spawn('nsenter', ['--user', '--mount', '--preserve-credentials', `--target=${pid}`, `--wd=${process.cwd()}`, '--', ...command], {
    stdio: 'inherit',
    env,
  });
  const pass = (sig: NodeJS.Signals) => () => child.kill(sig);
  // The terminal sends SIGINT to the whole process group: the command gets it by itself.
  const handlers: [NodeJS.Signals, () => void][] = [
    ['SIGTERM', pass('SIGTERM')],
    ['SIGHUP', pass('SIGHUP')],
    ['SIGINT', () => undefined],
  ];
  for (const [sig, h] of handlers) process.on(sig, h);
  try {
    return await childExit(child, 'nsenter');
  } finally {
    for (const [sig, h] of handlers) process.off(sig, h);
  }
}
