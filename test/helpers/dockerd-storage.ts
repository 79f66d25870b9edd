// A private Docker 20.10 daemon (Debian's docker.io) for the storage parity tests: its own data
// root, exec root, pidfile and socket, no bridge and no iptables, on the storage driver the test
// names. It dies with the test process (setpriv --pdeathsig), and its cleanup stops it, unmounts
// what it left and removes its directory. Tests skip, saying why, when dockerd cannot start.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Cleanup } from './registry.js';

/** Debian's client: a newer docker client may come earlier on PATH. */
export const DOCKER = '/usr/bin/docker';
const DOCKERD = '/usr/sbin/dockerd';

export interface DockerResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface Dockerd {
  /** Run the docker client against this daemon. */
  run(args: string[]): DockerResult;
  /** Run and insist on exit 0; returns stdout. */
  ok(args: string[]): string;
  /** Stop the daemon and remove its directory now (the cleanup does it too; twice is harmless). */
  stop(): Promise<void>;
}

/** Start dockerd on `driver`; resolves to the daemon, or to the reason it cannot run here. */
export async function startDockerd(cleanup: Cleanup, driver: string): Promise<Dockerd | { skip: string }> {
  if (!existsSync(DOCKER) || !existsSync(DOCKERD)) return { skip: `${DOCKER} or ${DOCKERD} missing (apt-get install docker.io)` };
  const dir = mkdtempSync(join(tmpdir(), 'strata-dockerd-'));
  const sock = join(dir, 'd.sock');
  const child: ChildProcess = spawn(
    'setpriv',
    ['--pdeathsig', 'KILL', '--', DOCKERD, '--data-root', join(dir, 'data'), '--exec-root', join(dir, 'exec'), '--pidfile', join(dir, 'd.pid'),
      '-H', `unix://${sock}`, '--bridge=none', '--iptables=false', '--ip6tables=false', '--ip-masq=false', `--storage-driver=${driver}`],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (log = (log + d).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(20_000)]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    }
    // dockerd unmounts what it mounted on a clean stop; whatever is left under dir goes here.
    const mounts = readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1]).filter((m) => m?.startsWith(dir));
    for (const m of mounts.reverse()) spawnSync('umount', ['-l', m]);
    rmSync(dir, { recursive: true, force: true });
  };
  cleanup(stop);
  const run = (args: string[]): DockerResult => {
    const r = spawnSync(DOCKER, ['-H', `unix://${sock}`, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
    return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  };
  const ok = (args: string[]): string => {
    const r = run(args);
    if (r.code !== 0) throw new Error(`docker ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return r.stdout;
  };
  const last = () => log.trim().split('\n').slice(-2).join(' | ');
  for (let i = 0; i < 150; i++) {
    if (child.exitCode !== null) return { skip: `dockerd exited: ${last()}` };
    if (existsSync(sock) && run(['version']).code === 0) return { run, ok, stop };
    await sleep(200);
  }
  return { skip: `dockerd did not answer within 30 s: ${last()}` };
}
