// Pull benchmark: corpus/nginx and corpus/app from a local docker-registry, pulled by strata,
// Docker 20.10 (Debian's docker.io, its own dockerd on a temporary data root) and Podman
// (Debian's podman, temporary --root). Each tool stores on an ext4 of its own, made here as a
// default install makes it (with a journal) on a loop device: this machine's root ext4 has no
// journal, and there, creating files right after many were deleted scans the inode table past
// every recently deleted inode (ext4's recently_deleted()), seconds per pull for whichever tool
// happens to reuse those block groups. Tools alternate (A B C A B C …), images are removed
// between runs outside the timed part, and the table shows medians and each tool's time
// relative to Docker's in this same run, the CPU each pull used (Docker's includes dockerd's) and
// the peak RSS of the pulling process (strata's and podman's; docker's work is in dockerd). Then
// four strata pulls of different images into one root at once against the same one by one.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { strataBin } from '../test/helpers/env.js';
import { makeLoopFs, type ScratchFs } from '../test/helpers/fsimages.js';
import { unmountAllUnder } from '../test/helpers/mounts.js';
import { fileCleanup, overlay2Available, startRegistry } from '../test/helpers/registry.js';
import { measure, median, printTable } from './measure.js';

const IMAGES = ['nginx', 'app'];
/** Four different images for the concurrency row. */
const CONCURRENT_IMAGES = ['nginx', 'app', 'busybox', 'edge'];
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

function ensurePackages(): void {
  const missing = [
    [DOCKERD, 'docker.io'],
    [PODMAN, 'podman'],
    // Debian's docker.io recommends pigz, and dockerd then inflates layers with unpigz:
    // the Docker figures were taken with it.
    ['/usr/bin/unpigz', 'pigz'],
  ].filter(([bin]) => !existsSync(bin));
  if (missing.length === 0) return;
  const pkgs = missing.map(([, p]) => p);
  console.log(`installing ${pkgs.join(' ')} (apt-get) …`);
  execFileSync('apt-get', ['install', '-y', '--no-install-recommends', ...pkgs], {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
}

const mib = (n: number) => `${(n / 1024 / 1024).toFixed(0)} MiB`;

/** runCommand without blocking, so several run at once. */
function runAsync(argv: string[], what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-2000)));
    child.on('error', reject);
    child.on('exit', (code, signal) => (code === 0 ? resolve() : reject(new Error(`${what}: ${argv.join(' ')} exited ${code ?? signal}: ${err.trim()}`))));
  });
}

function runCommand(argv: string[], what: string): void {
  const r = spawnSync(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 16 << 20 });
  if (r.status !== 0) throw new Error(`${what}: ${argv.join(' ')} exited ${r.status ?? r.signal}: ${r.stderr.toString().trim().split('\n').slice(-3).join(' | ')}`);
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
    for (const img of new Set([...IMAGES, ...CONCURRENT_IMAGES])) await reg.load(img, 'latest');
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
    const rss = new Map<string, number[]>();
    for (const img of IMAGES) {
      const ref = `${reg.host}/corpus/${img}:latest`;
      // One untimed pull each first: dockerd, podman and strata all set up their stores lazily.
      for (const t of tools) {
        runCommand(t.pull(ref), `${t.name} warm-up`);
        runCommand(t.remove(ref), `${t.name} rmi`);
      }
      for (let i = 0; i < RUNS; i++) {
        for (const t of tools) {
          const { wall, cpu, peakRss } = measure(t.pull(ref), `${t.name} pull`, { daemon: t.daemon });
          runCommand(t.remove(ref), `${t.name} rmi`);
          const key = `${img}|${t.name}`;
          times.set(key, [...(times.get(key) ?? []), wall]);
          cpus.set(key, [...(cpus.get(key) ?? []), cpu]);
          rss.set(key, [...(rss.get(key) ?? []), peakRss]);
          process.stdout.write(`  ${img} ${t.name}: ${wall.toFixed(2)} s (CPU ${cpu.toFixed(2)} s, peak RSS ${mib(peakRss)})\n`);
        }
      }
    }
    const rows = [['image', 'tool', 'median', 'runs', 'vs docker', 'CPU (median)', 'peak RSS (max)']];
    for (const img of IMAGES) {
      const docker = median(times.get(`${img}|docker 20.10`)!);
      for (const t of tools) {
        const xs = times.get(`${img}|${t.name}`)!;
        const m = median(xs);
        const cpu = median(cpus.get(`${img}|${t.name}`)!);
        // dockerd does docker's work: the client's RSS says nothing about it.
        const peak = t.daemon === undefined ? mib(Math.max(...rss.get(`${img}|${t.name}`)!)) : 'n/a (dockerd)';
        rows.push([img, t.name, `${m.toFixed(2)} s`, xs.map((x) => x.toFixed(2)).join(' '), `${(m / docker).toFixed(2)}x`, `${cpu.toFixed(2)} s`, peak]);
      }
    }
    console.log(`\npull from a loopback registry into a journaled ext4 per tool, median of ${RUNS} alternating runs (targets: strata ≤ 0.50x docker on nginx, ≤ 0.75x on app, CPU ≤ docker's, peak RSS < 150 MiB)`);
    printTable(rows);

    // Concurrency: CONCURRENT different images pulled by as many strata processes at once into one
    // root, against the same pulls one after another (alternating, medians; images removed between).
    const refs = CONCURRENT_IMAGES.map((i) => `${reg.host}/corpus/${i}:latest`);
    const strata = tools[0]!;
    const together: number[] = [];
    const inTurn: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      let t0 = process.hrtime.bigint();
      await Promise.all(refs.map((r) => runAsync(strata.pull(r), 'concurrent pull')));
      together.push(Number(process.hrtime.bigint() - t0) / 1e9);
      for (const r of refs) runCommand(strata.remove(r), 'rmi');
      t0 = process.hrtime.bigint();
      for (const r of refs) runCommand(strata.pull(r), 'sequential pull');
      inTurn.push(Number(process.hrtime.bigint() - t0) / 1e9);
      for (const r of refs) runCommand(strata.remove(r), 'rmi');
    }
    const ratio = median(together) / median(inTurn);
    console.log(`\n${refs.length} strata pulls (${CONCURRENT_IMAGES.join(', ')}) into one root, median of ${RUNS} (target: concurrent ≤ 0.70x sequential):`);
    printTable([
      ['', 'median', 'runs'],
      ['concurrent', `${median(together).toFixed(2)} s`, together.map((x) => x.toFixed(2)).join(' ')],
      ['sequential', `${median(inTurn).toFixed(2)} s`, inTurn.map((x) => x.toFixed(2)).join(' ')],
      ['concurrent / sequential', `${ratio.toFixed(2)}x`, ratio <= 0.7 ? 'met' : 'missed'],
    ]);
  } finally {
    await finish();
  }
}
