// A scratch store for the runtime tests, and the one way they undo what running containers leave
// behind: monitor processes, runc's containers, pasta processes and their network namespaces,
// and mounts. Cleanup finds them by what the store recorded and by the store root each
// process names on its command line, and kills only those pids; nothing of another test's.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { MNT_DETACH, umount2 } from '../../src/sys/linux.js';
import { mountsUnder } from '../../src/sys/mountinfo.js';
import { strataIn } from '../helpers/cli.js';
import { corpusImage, scratch } from '../helpers/env.js';
import { unmountAllUnder } from '../helpers/mounts.js';

/** Where the runtime keeps runc's state, attach sockets and netns files for a store root. */
export function execRootOf(root: string): string {
  return join('/run/strata', createHash('sha256').update(root).digest('hex').slice(0, 16));
}

function pidOf(identity: string | null): number | null {
  if (!identity) return null;
  const pid = Number(identity.split(':')[0]);
  return Number.isInteger(pid) && pid > 0 ? pid : null;
}

/** Pids of live processes whose command line names this store root (monitors, CLIs). */
export function processesOf(root: string): number[] {
  const found: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      const argv = readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0');
      const stat = readFileSync(`/proc/${e}/stat`, 'latin1');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue;
      if (argv.includes(root)) found.push(Number(e));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** runc's containers in this store's runc root. */
export function runcContainers(root: string): string[] {
  const state = join(execRootOf(root), 'runc');
  if (!existsSync(state)) return [];
  return execFileSync('runc', ['--root', state, 'list', '-q']).toString().split('\n').filter(Boolean);
}

/** pasta processes started for this store (their pid files under the exec root). */
export function pastaPids(root: string): number[] {
  const dir = join(execRootOf(root), 'netns');
  if (!existsSync(dir)) return [];
  const pids: number[] = [];
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.pasta.pid'))) {
    const pid = Number(readFileSync(join(dir, f), 'utf8').trim());
    if (pid > 0 && existsSync(`/proc/${pid}`)) pids.push(pid);
  }
  return pids;
}

/** The network namespace files still bound under this store's exec root. */
export function netnsMounts(root: string): string[] {
  const dir = join(execRootOf(root), 'netns');
  return existsSync(dir) ? mountsUnder(dir) : [];
}

/** Monitor and container process pids the store recorded. */
export function recordedPids(root: string): number[] {
  const db = join(root, 'strata.db');
  if (!existsSync(db)) return [];
  const h = new Database(db, { readonly: true, fileMustExist: true });
  try {
    const rows = h.prepare('SELECT monitor, process FROM run_state').all() as { monitor: string | null; process: string | null }[];
    return rows.flatMap((r) => [pidOf(r.monitor), pidOf(r.process)]).filter((p): p is number => p !== null && existsSync(`/proc/${p}`));
  } catch {
    return [];
  } finally {
    h.close();
  }
}

/** Everything running or mounted that a store's containers left; empty when all is clean (call it with no container running). */
export function leftovers(root: string, work: string): string[] {
  return [
    ...processesOf(root).map((p) => `process ${p}: ${readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ')}`),
    ...runcContainers(root).map((c) => `runc container ${c}`),
    ...pastaPids(root).map((p) => `pasta ${p}`),
    ...netnsMounts(root).map((m) => `netns ${m}`),
    ...mountsUnder(work).map((m) => `mount ${m}`),
    // With nothing running, the runtime's directory under /run is gone too.
    ...(existsSync(execRootOf(root)) ? [`exec root ${execRootOf(root)}: ${readdirSync(execRootOf(root), { recursive: true }).join(' ') || 'empty'}`] : []),
  ];
}

function kill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** Kill and undo everything of this store's containers (the test's after hook). */
export function cleanupRuntime(root: string, work: string): void {
  for (const pid of [...recordedPids(root), ...processesOf(root)]) kill(pid);
  const state = join(execRootOf(root), 'runc');
  for (const id of runcContainers(root)) {
    try {
      execFileSync('runc', ['--root', state, 'kill', '--all', id, 'KILL'], { stdio: 'ignore' });
    } catch {
      // stopped already
    }
  }
  for (const id of runcContainers(root)) {
    try {
      execFileSync('runc', ['--root', state, 'delete', '--force', id], { stdio: 'ignore' });
    } catch {
      // nothing left to delete
    }
  }
  for (const pid of pastaPids(root)) kill(pid);
  for (const m of netnsMounts(root)) {
    try {
      umount2(m, MNT_DETACH);
    } catch {
      // already gone
    }
  }
  unmountAllUnder(work);
  rmSync(execRootOf(root), { recursive: true, force: true });
}

export interface RuntimeStore {
  work: string;
  root: string;
  cli: ReturnType<typeof strataIn>;
  /** busybox (tagged `bb`), loaded. */
  busybox: string;
  load(archive: string, tag: string): string;
}

/** A fresh store with busybox loaded as `bb`; everything it ran is undone after the suite. */
export function runtimeStore(driver: string, hooks: { after(fn: () => void): void }, extraCleanup?: (root: string) => void): RuntimeStore {
  const work = scratch(null, `strata-rt-${driver}-`);
  const root = join(work, 'root');
  const cli = strataIn(root, driver);
  hooks.after(() => {
    cleanupRuntime(root, work);
    extraCleanup?.(root);
    unmountAllUnder(work);
    rmSync(work, { recursive: true, force: true });
  });
  const load = (archive: string, tag: string) => {
    const out = cli.ok(['load', '-i', corpusImage(archive)]);
    const m = /^Loaded image ID: (sha256:[0-9a-f]{64})$/m.exec(out);
    if (!m) throw new Error(`load printed: ${out}`);
    cli.ok(['tag', m[1], tag]);
    return m[1];
  };
  const busybox = load('busybox.oci.tar', 'bb');
  return { work, root, cli, busybox, load };
}
