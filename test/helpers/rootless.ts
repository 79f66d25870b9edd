// A Linux user of the test's own for rootless runs: made with useradd (with or without a
// subordinate id range), strata and podman run as that user through setpriv with a clean
// environment, and everything removed afterwards, even when the test fails: the user's
// processes (the namespace keepers of strata and podman, fuse-overlayfs daemons), its runtime
// dirs in /tmp, its home and its /etc/subuid and /etc/subgid lines. Also how a rootless test
// compares a container's root, seen inside the user's namespace, with `umoci unpack`'s.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { runToolSync } from '../../src/sys/run.js';
import { repoRoot, strataBin } from './env.js';
import { INIT_PATHS, umociRootfs, type CliResult } from './cli.js';
import type { Cleanup } from './registry.js';
import { snapshotTree, type Node } from './tree.js';

export interface TestUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
  /** Run a program as the user (clean environment: HOME, PATH, and env). */
  run(argv: string[], opts?: { env?: Record<string, string>; input?: string }): CliResult;
  /** Run strata as the user. */
  strata(args: string[], opts?: { env?: Record<string, string>; input?: string }): CliResult;
  /** Run strata and insist on exit 0; returns stdout. */
  ok(args: string[], opts?: { env?: Record<string, string>; input?: string }): string;
}

let made = 0;

/** Longer than any one command takes here (a pull of nginx under load: about a minute). */
const COMMAND_TIMEOUT_MS = 10 * 60_000;

/** Pids of every process the user runs. */
function processesOf(uid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const m = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${name}/status`, 'utf8'));
      if (m && Number(m[1]) === uid) out.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/**
 * useradd and userdel lock /etc/passwd; another test file (or anyone) making or removing a user
 * at the same moment makes them fail at once ("cannot lock /etc/passwd"): try again a while.
 */
function shadowTool(cmd: string, args: string[]): { status: number | null; stderr: string } {
  for (let attempt = 0; ; attempt++) {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    if (r.status === 0 || attempt >= 50 || !/cannot lock/.test(r.stderr)) return r;
    spawnSync('sleep', ['0.2']);
  }
}

/** usermod on a test user (e.g. --add-subuids A-B), waiting out another tool's lock on /etc/passwd. */
export function usermod(user: TestUser, args: string[]): void {
  const r = shadowTool('usermod', [...args, user.name]);
  if (r.status !== 0) throw new Error(`usermod ${args.join(' ')} ${user.name} failed (exit ${r.status}): ${r.stderr.trim()}`);
}

/** A test tool runs as the user too (the dump-tree script): it must reach the checkout. */
export const nodeBin = process.execPath;

/**
 * Make a user. `subids`: the size of the subordinate range useradd gives it (0: none, so that
 * strata falls back to a single-id mapping).
 */
export function makeUser(cleanup: Cleanup, subids: number): TestUser {
  // useradd names are at most 32 characters; pid and a counter keep parallel runs apart.
  const name = `strt${process.pid}x${made++}`;
  const added = shadowTool('useradd', ['--create-home', '--shell', '/bin/sh', '-K', `SUB_UID_COUNT=${subids}`, '-K', `SUB_GID_COUNT=${subids}`, name]);
  if (added.status !== 0) throw new Error(`useradd ${name} failed (exit ${added.status}): ${added.stderr.trim()}`);
  const entry = runToolSync('getent', ['passwd', name]).trim().split(':');
  const uid = Number(entry[2]);
  const gid = Number(entry[3]);
  const home = entry[5]!;
  cleanup(() => {
    for (let round = 0; round < 5; round++) {
      const pids = processesOf(uid);
      if (pids.length === 0) break;
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // ended by itself
        }
      }
      spawnSync('sleep', ['0.2']);
    }
    for (const dir of [`/tmp/strata-run-${uid}`, `/tmp/podman-run-${uid}`, `/tmp/containers-user-${uid}`, `/tmp/storage-run-${uid}`, `/dev/shm/libpod_rootless_lock_${uid}`]) {
      rmSync(dir, { recursive: true, force: true });
    }
    // userdel drops the subuid/subgid lines too; --remove takes the home.
    shadowTool('userdel', ['--remove', '--force', name]);
    rmSync(home, { recursive: true, force: true });
  });
  const run: TestUser['run'] = (argv, opts = {}) => {
    const env = [`HOME=${home}`, 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', `USER=${name}`, ...Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${v}`)];
    const r = spawnSync('setpriv', ['--reuid', String(uid), '--regid', String(gid), '--init-groups', '--', 'env', '-i', ...env, ...argv], {
      cwd: home,
      input: opts.input,
      maxBuffer: 256 * 1024 * 1024,
      // A command that hangs (once: a tree dumper's node stuck at exit) fails its test instead
      // of holding the whole file; the cleanup ends whatever the user still runs.
      timeout: COMMAND_TIMEOUT_MS,
      killSignal: 'SIGKILL',
    });
    const timedOut = (r.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT' ? `(no answer within ${COMMAND_TIMEOUT_MS / 1000} s: killed)\n` : '';
    return { code: r.status ?? 128, stdout: r.stdout.toString(), stderr: r.stderr.toString() + timedOut };
  };
  const strata: TestUser['strata'] = (args, opts) => run([nodeBin, strataBin, ...args], opts);
  const ok: TestUser['ok'] = (args, opts) => {
    const r = strata(args, opts);
    if (r.code !== 0) throw new Error(`strata ${args.join(' ')} as ${name} exited ${r.code}: ${r.stderr}`);
    return r.stdout;
  };
  return { name, uid, gid, home, run, strata, ok };
}

/** The tree dumper (test/helpers/dump-tree.ts) as a command line. */
export const dumpTree = [nodeBin, join(repoRoot, 'dist', 'test', 'helpers', 'dump-tree.js')];

/** A tree as dump-tree printed it. */
export function parseTree(json: string): Map<string, Node> {
  return new Map(JSON.parse(json) as [string, Node][]);
}

/**
 * A root made comparable across tools: without the init layer's additions the image lacks,
 * without directory mtimes, and without device nodes (a user namespace cannot make them, so
 * rootless Docker and Podman leave them out too: the reference drops them when asked).
 */
export function comparable(tree: Map<string, Node>, reference?: Map<string, Node>, dropDevices = false): Map<string, Node> {
  const out = new Map<string, Node>();
  for (const [p, n] of tree) {
    if (reference && INIT_PATHS.includes(`/${p}`) && !reference.has(p)) continue;
    if (dropDevices && (n.type === 'char' || n.type === 'block')) continue;
    out.set(p, n.type === 'dir' ? { ...n, mtime: 0 } : n);
  }
  return out;
}

/** A container's root as seen inside the user's namespace: mounted, walked and unmounted in one `strata unshare`. */
export function strataRoot(user: TestUser, globals: string[], container: string): Map<string, Node> {
  const strata = [nodeBin, strataBin, ...globals].join(' ');
  return parseTree(user.ok([...globals, 'unshare', 'sh', '-c', `m=$(${strata} mount ${container}) && ${dumpTree.join(' ')} "$m" && ${strata} umount ${container} >/dev/null`]));
}

const references = new Map<string, Promise<Map<string, Node>>>();

/** `umoci unpack`'s root of a corpus image, comparable, walked once per test file (busybox-zstd unpacks as busybox). */
export function umociReference(work: string, name: string): Promise<Map<string, Node>> {
  const key = `${work}\0${name}`;
  let tree = references.get(key);
  if (!tree) {
    tree = snapshotTree(umociRootfs(work, name === 'busybox-zstd' ? 'busybox.oci.tar' : `${name}.oci.tar`)).then((t) => comparable(t, undefined, true));
    references.set(key, tree);
  }
  return tree;
}
