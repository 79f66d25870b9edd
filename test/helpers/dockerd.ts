// Docker itself as the oracle: a private dockerd (Debian's docker.io 20.10) with its own data
// root, exec root, pidfile and socket, no bridge and no iptables rules, so that it touches
// nothing of the host's and several can run at once. It runs under `setpriv --pdeathsig KILL`
// (it dies with the test process even when that is killed), and the cleanup stops it, undoes
// whatever it left mounted and removes its directory. Tests call its client through `run`/`ok`.
// The one helper for every suite that asks Docker: parity, diff, templates, storage options.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CliResult } from './cli.js';
import { unmountAllUnder } from './mounts.js';
import type { Cleanup } from './registry.js';

/** Debian's client: a newer docker may come earlier on PATH. */
export const DOCKER = '/usr/bin/docker';
export const DOCKERD = '/usr/sbin/dockerd';

export interface Dockerd {
  /** The daemon's directory (data root, exec root, socket, client config). */
  dir: string;
  sock: string;
  /** dockerd's process id (it does the client's work: benchmarks count its CPU time and memory). */
  pid: number;
  /** Run the docker client against this daemon. */
  run(args: string[], input?: string | Buffer): CliResult;
  /** Run and insist on exit 0; returns stdout. */
  ok(args: string[], input?: string | Buffer): string;
  /** Stop the daemon and remove its directory now (the cleanup does it too; twice is harmless). */
  stop(): Promise<void>;
}

export interface DockerdOptions {
  /** The daemon's storage driver (default vfs, which works on any filesystem). */
  driver?: string;
  /**
   * Where the daemon keeps images and containers (default `<dir>/data`), e.g. a benchmark's own
   * filesystem; what a killed daemon left mounted there is the caller's to unmount.
   */
  dataRoot?: string;
}

/**
 * Start a private dockerd; resolves to it, or to the reason it cannot run here (the caller skips
 * loudly then). `cleanup` gets the stop: register it with a test's `t.after` or a file's
 * fileCleanup().
 */
export async function startDockerd(cleanup: Cleanup, opts: DockerdOptions = {}): Promise<Dockerd | { skip: string }> {
  if (!existsSync(DOCKER) || !existsSync(DOCKERD)) return { skip: `${DOCKER} or ${DOCKERD} missing (apt-get install docker.io)` };
  const dir = mkdtempSync(join(tmpdir(), 'strata-dockerd-'));
  // Removed by stop, or at exit when nobody stopped it; the exit hook goes with the stop, so a
  // bench that starts a dockerd per measurement does not pile them up.
  const removeDir = () => rmSync(dir, { recursive: true, force: true });
  process.on('exit', removeDir);
  const sock = join(dir, 'd.sock');
  // The client's own config (auths, credential helpers) stays out of the comparison.
  const config = join(dir, 'client');
  mkdirSync(config);
  const child: ChildProcess = spawn(
    'setpriv',
    ['--pdeathsig', 'KILL', '--', DOCKERD,
      '--data-root', opts.dataRoot ?? join(dir, 'data'), '--exec-root', join(dir, 'exec'), '--pidfile', join(dir, 'd.pid'), '-H', `unix://${sock}`,
      '--bridge=none', '--iptables=false', '--ip6tables=false', '--ip-masq=false', `--storage-driver=${opts.driver ?? 'vfs'}`],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (log = (log + d).slice(-8000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const tail = () => log.trim().split('\n').slice(-2).join(' | ');
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(20_000)]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    }
    // dockerd unmounts what it mounted on a clean stop; what a killed one left goes here.
    unmountAllUnder(dir);
    removeDir();
    process.off('exit', removeDir);
  };
  cleanup(stop);

  const run = (args: string[], input?: string | Buffer): CliResult => {
    const r = spawnSync(DOCKER, ['-H', `unix://${sock}`, ...args], { input, env: { ...process.env, DOCKER_CONFIG: config }, maxBuffer: 256 * 1024 * 1024 });
    return { code: r.status ?? 128, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
  };
  const ok = (args: string[], input?: string | Buffer): string => {
    const r = run(args, input);
    if (r.code !== 0) throw new Error(`docker ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return r.stdout;
  };
  for (let i = 0; i < 150; i++) {
    if (child.exitCode !== null) return { skip: `dockerd exited: ${tail()}` };
    if (existsSync(sock) && run(['version']).code === 0) return { dir, sock, pid: child.pid!, run, ok, stop };
    await sleep(200);
  }
  return { skip: `dockerd did not answer within 30 s: ${tail()}` };
}
