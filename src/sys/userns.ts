// The user namespace a rootless strata works in, as Podman's: the user is root inside it, and the
// user's subordinate ids (/etc/subuid, /etc/subgid, mapped through the setuid newuidmap and
// newgidmap) stand for the other ids, so layer files get the image's owners. A keeper process
// (`sleep infinity` in a new user + mount namespace, its identity in RUNDIR/userns.pid) holds
// the namespace between commands, so that a layer one command mounts is still there for the
// next (and for `strata unshare`); every command re-executes itself inside it with nsenter.
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, readlinkSync, renameSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { StrataError } from '../errors.js';
import { log } from '../log.js';
import { LOCK_EX, LOCK_UN, flock } from './linux.js';
import { childExit, identityOf, processAlive } from './process.js';
import { defaultRunDir, type IdRange } from './rootless.js';
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
        `so images with files owned by any other id cannot be pulled; add a range (usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${me.username}) and stop the old namespace (kill the pid in ${defaultRunDir()}/userns.pid)`,
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

/** The pid of the live keeper, starting one when there is none (under a lock: one per user). */
async function keeperPid(runDir: string): Promise<number> {
  mkdirSync(runDir, { recursive: true, mode: 0o700 });
  const pidFile = `${runDir}/userns.pid`;
  const fd = openSync(`${runDir}/userns.lock`, 'a', 0o600);
  try {
    await flock(fd, LOCK_EX);
    const known = readOrEmpty(pidFile).trim();
    if (keeperAlive(known)) return Number(known.split(':')[0]);
    const pid = await startKeeper(plannedMapping());
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
