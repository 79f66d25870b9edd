// Runtime benchmark: wall time from `run --rm busybox true` to its exit, strata (overlay2)
// against `docker run` on a private dockerd of this machine and `podman run`, each the median of
// a few runs taken in turn, reported as a ratio. All run with `--network none` (the private
// dockerd has no bridge), so the numbers compare starting a container, not setting up networks.
// A tool that is not installed gets a line saying so instead of a number.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { MNT_DETACH, umount2 } from '../src/sys/linux.js';
import { mountsUnder } from '../src/sys/mountinfo.js';
import { corpusImage, strataBin } from '../test/helpers/env.js';
import { execRootOf } from '../test/runtime/harness.js';
import { median } from './measure.js';

export const name = 'runtime';

const RUNS = Math.max(3, Number(process.env.BENCH_RUNS ?? 5));

/** Wall time of one command, in ms; it must succeed. */
function timed(cmd: string, args: string[]): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return ms;
}

/**
 * podman asks runc for open files and processes above the hard limits this process inherits
 * (1048576 and 4194304), which runc cannot set here, so every podman run fails with "error
 * setting rlimit type 7". Docker and strata leave a container the limits they run with: podman
 * gets the same open-files limit. Its nproc is capped at 4096: runc was refused values above
 * about 20,000 here even below the hard limit (not chased further); the value does not change how
 * long starting `true` takes.
 */
function podmanUlimits(): string[] {
  const limits = readFileSync('/proc/self/limits', 'utf8');
  const hard = /^Max open files\s+\S+\s+(\d+)/m.exec(limits)?.[1];
  return [...(hard === undefined ? [] : ['--ulimit', `nofile=${hard}:${hard}`]), '--ulimit', 'nproc=4096:4096'];
}

interface Contender {
  name: string;
  argv: [string, string[]];
}

/** A dockerd of our own (data, exec root and socket under base), or null when there is none. */
async function privateDocker(base: string): Promise<{ argv: [string, string[]]; stop(): void } | null> {
  if (!existsSync('/usr/sbin/dockerd')) return null;
  const sock = join(base, 'docker.sock');
  const d = spawn('/usr/sbin/dockerd', ['--data-root', join(base, 'docker-data'), '--exec-root', join(base, 'docker-exec'), '--pidfile', join(base, 'docker.pid'), '-H', `unix://${sock}`, '--bridge=none', '--iptables=false'], { stdio: 'ignore' });
  const client = (args: string[]) => spawnSync('docker', ['-H', `unix://${sock}`, ...args], { encoding: 'utf8' });
  const stop = () => {
    d.kill('SIGTERM');
    for (let i = 0; i < 100 && d.exitCode === null && d.signalCode === null; i++) spawnSync('sleep', ['0.1']);
  };
  for (let i = 0; i < 300; i++) {
    if (client(['version']).status === 0) {
      const loaded = client(['load', '-q', '-i', corpusImage('busybox.docker.tar')]);
      if (loaded.status !== 0) {
        stop();
        throw new Error(`docker load: ${loaded.stderr}`);
      }
      return { argv: ['docker', ['-H', `unix://${sock}`, 'run', '--rm', '--network', 'none', 'corpus/busybox', 'true']], stop };
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  stop();
  return null;
}

export async function run(): Promise<void> {
  const base = mkdtempSync('/var/tmp/strata-bench-runtime-');
  let docker: Awaited<ReturnType<typeof privateDocker>> = null;
  try {
    const root = join(base, 'strata');
    const strata = (args: string[]) => execFileSync(process.execPath, [strataBin, '--root', root, '--driver', 'overlay2', ...args], { encoding: 'utf8' });
    strata(['load', '-i', corpusImage('busybox.docker.tar')]);
    const contenders: Contender[] = [{ name: 'strata', argv: [process.execPath, [strataBin, '--root', root, '--driver', 'overlay2', 'run', '--rm', '--network', 'none', 'corpus/busybox', 'true']] }];
    try {
      docker = await privateDocker(base);
      if (docker) contenders.push({ name: 'docker', argv: docker.argv });
      else console.log('docker: no dockerd on this machine');
    } catch (err) {
      console.log(`docker: skipped (${(err as Error).message})`);
    }
    if (spawnSync('podman', ['--version']).status === 0) {
      // A store of its own under base, removed with it, like the other two.
      const podman = ['--root', join(base, 'podman'), '--runroot', join(base, 'podman-run'), '--storage-driver', 'overlay', '--cgroup-manager', 'cgroupfs', '--events-backend', 'file'];
      execFileSync('podman', [...podman, 'load', '-q', '-i', corpusImage('busybox.docker.tar')]);
      contenders.push({ name: 'podman', argv: ['podman', [...podman, 'run', '--rm', '--network', 'none', ...podmanUlimits(), 'corpus/busybox', 'true']] });
    } else console.log('podman: not installed on this machine');

    const times = new Map<string, number[]>(contenders.map((c) => [c.name, []]));
    for (const c of contenders) timed(...c.argv); // warm caches once each
    for (let i = 0; i < RUNS; i++) for (const c of contenders) times.get(c.name)!.push(timed(...c.argv));
    const ours = median(times.get('strata')!);
    console.log(`\nrun --rm busybox true, start to exit (median of ${RUNS}, --network none):`);
    for (const c of contenders) {
      const m = median(times.get(c.name)!);
      console.log(`  ${c.name.padEnd(8)}${`${m.toFixed(0)} ms`.padEnd(10)}${c.name === 'strata' ? '' : `strata / ${c.name}: ${(ours / m).toFixed(2)}`}`);
    }
  } finally {
    docker?.stop();
    for (const m of mountsUnder(base).sort((a, b) => b.length - a.length)) {
      try {
        umount2(m, MNT_DETACH);
      } catch {
        // gone already
      }
    }
    rmSync(execRootOf(join(base, 'strata')), { recursive: true, force: true });
    rmSync(base, { recursive: true, force: true });
  }
}
