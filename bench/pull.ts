// Pull benchmark: corpus/nginx and corpus/app from a local docker-registry, pulled by strata,
// Docker 20.10 (Debian's docker.io, its own dockerd on a temporary data root) and Podman
// (Debian's podman, temporary --root). Each tool stores on an ext4 of its own, made here as a
// default install makes it (with a journal) on a loop device: this machine's root ext4 has no
// journal, and there, creating files right after many were deleted scans the inode table past
// every recently deleted inode (ext4's recently_deleted()), seconds per pull for whichever tool
// happens to reuse those block groups. Tools alternate (A B C A B C …), images are removed
// between runs outside the timed part, and the table shows medians and each tool's time
// relative to Docker's in this same run, and the CPU each pull used (Docker's includes dockerd's).
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { strataBin } from '../test/helpers/env.js';
import { makeLoopFs, type ScratchFs } from '../test/helpers/fsimages.js';
import { unmountAllUnder } from '../test/helpers/mounts.js';
import { fileCleanup, overlay2Available, startRegistry } from '../test/helpers/registry.js';

const IMAGES = ['nginx', 'app'];
const RUNS = Math.max(3, Number(process.env.BENCH_RUNS ?? 3));
const DOCKER = '/usr/bin/docker';
const DOCKERD = '/usr/sbin/dockerd';
const PODMAN = '/usr/bin/podman';
/** Each tool's filesystem: room for both images several times over. */
const FS_MIB = 8192;

interface Tool {
  name: string;
  pull(ref: string): string[];
  remove(ref: string): string[];
  /** A daemon that does the work for the command (dockerd): its CPU time counts too. */
  daemon?: number;
}

const TICKS_PER_SECOND = 100; // USER_HZ, the unit of /proc/<pid>/stat's times on Linux

/**
 * CPU seconds (user + system) from /proc/<pid>/stat: the process's own, its waited-for
 * children's (cutime, cstime: a finished command run by spawnSync lands there), or both.
 */
function cpuSeconds(pid: number | 'self', which: 'children' | 'all'): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  // Fields after "(comm)": the third field of the line is the first here; utime is the 14th.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
  const [utime, stime, cutime, cstime] = [f[11]!, f[12]!, f[13]!, f[14]!];
  return (which === 'all' ? utime + stime + cutime + cstime : cutime + cstime) / TICKS_PER_SECOND;
}

function ensurePackages(): void {
  const missing = [
    [DOCKERD, 'docker.io'],
    [PODMAN, 'podman'],
  ].filter(([bin]) => !existsSync(bin));
  if (missing.length === 0) return;
  const pkgs = missing.map(([, p]) => p);
  console.log(`installing ${pkgs.join(' ')} (apt-get) …`);
  execFileSync('apt-get', ['install', '-y', '--no-install-recommends', ...pkgs], {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
}

function runCommand(argv: string[], what: string): void {
  const r = spawnSync(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 16 << 20 });
  if (r.status !== 0) throw new Error(`${what}: ${argv.join(' ')} exited ${r.status ?? r.signal}: ${r.stderr.toString().trim().split('\n').slice(-3).join(' | ')}`);
}

/** Wall time and CPU time (the command's, and its daemon's) of one command, in seconds. */
function timed(t: Tool, argv: string[], what: string): { wall: number; cpu: number } {
  const cpu = () => cpuSeconds('self', 'children') + (t.daemon !== undefined ? cpuSeconds(t.daemon, 'all') : 0);
  const cpu0 = cpu();
  const start = process.hrtime.bigint();
  runCommand(argv, what);
  const wall = Number(process.hrtime.bigint() - start) / 1e9;
  return { wall, cpu: cpu() - cpu0 };
}

async function startDockerd(dir: string, dataRoot: string, registry: string): Promise<{ child: ChildProcess; socket: string; stop: () => Promise<void> }> {
  const socket = join(dir, 'docker.sock');
  const child = spawn(
    DOCKERD,
    [
      '--data-root', dataRoot,
      '--exec-root', join(dir, 'exec'),
      '--pidfile', join(dir, 'docker.pid'),
      '-H', `unix://${socket}`,
      '--insecure-registry', registry,
      '--bridge', 'none',
      '--iptables=false',
      '--ip-masq=false',
      '--max-concurrent-downloads', '3',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (log = (log + d).slice(-4000)));
  const stop = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      child.once('exit', () => (clearTimeout(t), resolve()));
      child.kill('SIGTERM');
    });
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`dockerd exited ${child.exitCode}: ${log}`);
    if (spawnSync(DOCKER, ['-H', `unix://${socket}`, 'version'], { stdio: 'ignore' }).status === 0) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`dockerd did not come up within 60 s: ${log}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { child, socket, stop };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

export const name = 'pull';

export async function run(): Promise<void> {
  ensurePackages();
  // Sockets and run dirs here; every store on its tool's own filesystem. All removed at the end whatever happens.
  const dir = mkdtempSync(join('/var/tmp', 'strata-bench-pull-'));
  const cleanup = fileCleanup();
  const filesystems: ScratchFs[] = [];
  const ownFs = (name: string) => {
    const fs = makeLoopFs('ext4', FS_MIB);
    filesystems.push(fs);
    const root = join(fs.mountPoint, name);
    mkdirSync(root);
    return root;
  };
  let dockerd: Awaited<ReturnType<typeof startDockerd>> | undefined;
  const onSignal = () => void finish().then(() => process.exit(130));
  const finish = async () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await dockerd?.stop();
    await cleanup.run();
    unmountAllUnder(dir);
    for (const fs of filesystems) {
      unmountAllUnder(fs.mountPoint);
      fs.teardown();
    }
    rmSync(dir, { recursive: true, force: true });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const reg = await startRegistry(cleanup.add);
    for (const img of IMAGES) await reg.load(img, 'latest');
    dockerd = await startDockerd(join(dir, 'docker'), ownFs('docker'), reg.host);
    const driver = (await overlay2Available()) ? 'overlay2' : 'vfs';
    const strataRoot = ownFs('strata');
    const podmanArgs = [
      PODMAN,
      '--root', ownFs('podman'),
      '--runroot', join(dir, 'podman', 'run'),
      '--storage-driver', 'overlay',
      '--cgroup-manager', 'cgroupfs',
      '--events-backend', 'file',
    ];
    const dockerArgs = [DOCKER, '-H', `unix://${dockerd.socket}`];
    const tools: Tool[] = [
      {
        name: `strata (${driver})`,
        pull: (ref) => [process.execPath, strataBin, '--root', strataRoot, '--driver', driver, 'pull', '-q', ref],
        remove: (ref) => [process.execPath, strataBin, '--root', strataRoot, '--driver', driver, 'rmi', ref],
      },
      {
        name: 'docker 20.10',
        pull: (ref) => [...dockerArgs, 'pull', '-q', ref],
        remove: (ref) => [...dockerArgs, 'rmi', ref],
        daemon: dockerd.child.pid,
      },
      { name: 'podman', pull: (ref) => [...podmanArgs, 'pull', '-q', '--tls-verify=false', ref], remove: (ref) => [...podmanArgs, 'rmi', ref] },
    ];
    const times = new Map<string, number[]>();
    const cpus = new Map<string, number[]>();
    for (const img of IMAGES) {
      const ref = `${reg.host}/corpus/${img}:latest`;
      // One untimed pull each first: dockerd, podman and strata all set up their stores lazily.
      for (const t of tools) {
        runCommand(t.pull(ref), `${t.name} warm-up`);
        runCommand(t.remove(ref), `${t.name} rmi`);
      }
      for (let i = 0; i < RUNS; i++) {
        for (const t of tools) {
          const { wall, cpu } = timed(t, t.pull(ref), `${t.name} pull`);
          runCommand(t.remove(ref), `${t.name} rmi`);
          const key = `${img}|${t.name}`;
          times.set(key, [...(times.get(key) ?? []), wall]);
          cpus.set(key, [...(cpus.get(key) ?? []), cpu]);
          process.stdout.write(`  ${img} ${t.name}: ${wall.toFixed(2)} s (CPU ${cpu.toFixed(2)} s)\n`);
        }
      }
    }
    const rows = [['image', 'tool', 'median', 'runs', 'vs docker', 'CPU (median)']];
    for (const img of IMAGES) {
      const docker = median(times.get(`${img}|docker 20.10`)!);
      for (const t of tools) {
        const xs = times.get(`${img}|${t.name}`)!;
        const m = median(xs);
        const cpu = median(cpus.get(`${img}|${t.name}`)!);
        rows.push([img, t.name, `${m.toFixed(2)} s`, xs.map((x) => x.toFixed(2)).join(' '), `${(m / docker).toFixed(2)}x`, `${cpu.toFixed(2)} s`]);
      }
    }
    const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
    console.log(`\npull from a loopback registry into a journaled ext4 per tool, median of ${RUNS} alternating runs (target: strata ≤ 0.50x docker)`);
    for (const r of rows) console.log(r.map((v, c) => v.padEnd(widths[c])).join('   ').trimEnd());
  } finally {
    await finish();
  }
}
