// Docker 20.10, Podman and strata side by side, as issue #13 measures them: each tool's store on
// a journaled ext4 of its own, made afresh for every timed run on a loop device over a sparse file
// on a tmpfs, so no tool pays for another's (or an earlier run's) deletions and the root disk's
// state stays out of it. Docker is a private dockerd whose data root is that ext4, started with
// the filesystem and stopped before it goes. The pull bench (pull.ts) takes its tools from here.
// The `peers` bench itself: `create` of corpus/nginx as a whole CLI process, 30 times per tool in
// alternating rounds (mean and median, CPU beside wall time; Docker's CPU counts dockerd's), and
// the disk each container adds to the tool's data root (du) and to its filesystem (df).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { statfs } from '../src/sys/linux.js';
import { DOCKER, DOCKERD, startDockerd, type Dockerd } from '../test/helpers/dockerd.js';
import { strataBin } from '../test/helpers/env.js';
import { makeLoopFs, makeTmpfs } from '../test/helpers/fsimages.js';
import { overlay2Available, startRegistry, type Cleanup } from '../test/helpers/registry.js';
import { measure, median, printTable, type Measured } from './measure.js';

export const name = 'peers';

const PODMAN = '/usr/bin/podman';
/** Each tool's filesystem: room for the corpus images several times over (sparse: the tmpfs holds what is written). */
const FS_MIB = 8192;
/** The tmpfs under every filesystem's image file: it held under 400 MiB at its fullest in a whole run (three live at once, or four images in one). */
const TMPFS_MIB = 4096;
const CREATES = Math.max(5, Number(process.env.BENCH_CREATES ?? 30));

export type PeerName = 'strata' | 'docker' | 'podman';
export const PEERS: PeerName[] = ['strata', 'docker', 'podman'];

/** Debian's docker.io and podman, and pigz: docker.io recommends it, and dockerd then inflates with unpigz (as in the figures). */
export function ensurePackages(): void {
  const missing = [
    [DOCKERD, 'docker.io'],
    [PODMAN, 'podman'],
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

/** Run a command to its end, untimed; it must exit 0. */
export function runCommand(argv: string[], what: string): string {
  const r = spawnSync(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 16 << 20 });
  if (r.status !== 0) throw new Error(`${what}: ${argv.join(' ')} exited ${r.status ?? r.signal}: ${r.stderr.toString().trim().split('\n').slice(-3).join(' | ')}`);
  return r.stdout.toString();
}

/** What one bench run made: undone last first at its end, and on SIGINT/SIGTERM before exiting. */
export interface Scope {
  cleanup: Cleanup;
  /** The tmpfs that holds every fresh filesystem's image file. */
  tmpfs: string;
  /**
   * Call between measurements: they run synchronously, so a signal's handler runs only here;
   * throws once SIGINT or SIGTERM came, so nothing new starts while the cleanup runs.
   */
  checkpoint(): Promise<void>;
}

export async function withScope<T>(fn: (scope: Scope) => Promise<T>): Promise<T> {
  const undo: (() => void | Promise<void>)[] = [];
  let closing: Promise<void> | undefined;
  // Once only, whether the signal or the end of fn comes first; each step runs even when one before it failed.
  const close = () =>
    (closing ??= (async () => {
      for (const step of undo.reverse()) {
        try {
          await step();
        } catch (err) {
          console.error(`cleanup: ${(err as Error).message}`);
        }
      }
    })());
  let interrupted: NodeJS.Signals | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    interrupted = sig;
    void close().then(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  };
  const checkpoint = async () => {
    await new Promise((r) => setImmediate(r));
    if (interrupted) throw new Error(`${interrupted}: stopping`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const tmpfs = makeTmpfs(TMPFS_MIB);
    undo.push(() => tmpfs.teardown());
    return await fn({ cleanup: (step) => void undo.push(step), tmpfs: tmpfs.mountPoint, checkpoint });
  } finally {
    await close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

export interface Peer {
  label: string;
  /** The tool's command line with its global flags, then args. */
  cli(...args: string[]): string[];
  pull(ref: string): string[];
  /** Where the tool keeps images and containers. */
  root: string;
  /** The mount point of the tool's own filesystem. */
  fs: string;
  /** dockerd's pid: it does the docker client's work, so its CPU time counts too. */
  daemon?: number;
  /** Stop the daemon, unmount and drop the filesystem (safe twice; the scope calls it too). */
  dispose(): Promise<void>;
}

/** Asked once: each probe mounts an overlay (and leaves an exit hook behind). */
let strataDriver: Promise<string> | undefined;

const versions = new Map<string, string>();

function version(bin: string): string {
  if (!versions.has(bin)) versions.set(bin, /\d+\.\d+(\.\d+)?/.exec(runCommand([bin, '--version'], `${bin} --version`))?.[0] ?? '?');
  return versions.get(bin)!;
}

/** One tool on a journaled ext4 made just now, its empty store set up (outside any timing, as dockerd does its own when it starts). */
export async function freshPeer(scope: Scope, which: PeerName): Promise<Peer> {
  await scope.checkpoint();
  const fs = makeLoopFs('ext4', FS_MIB, scope.tmpfs);
  let dockerd: Dockerd | undefined;
  const dispose = async () => {
    await dockerd?.stop();
    fs.teardown();
  };
  scope.cleanup(dispose);
  try {
    const root = join(fs.mountPoint, which);
    mkdirSync(root);
    const peer = { root, fs: fs.mountPoint, dispose };
    let made: Peer;
    if (which === 'docker') {
      const d = await startDockerd(scope.cleanup, { driver: 'overlay2', dataRoot: root });
      if ('skip' in d) throw new Error(`dockerd: ${d.skip}`);
      dockerd = d;
      const cli = (...args: string[]) => [DOCKER, '--config', join(d.dir, 'client'), '-H', `unix://${d.sock}`, ...args];
      made = { ...peer, label: `docker ${version(DOCKERD)}`, cli, pull: (ref) => cli('pull', '-q', ref), daemon: d.pid };
    } else if (which === 'podman') {
      // Its run root and temporary files on the same filesystem: nothing shared with another podman.
      // (`run`, not a longer name: podman refuses a run root path over 50 characters.)
      const cli = (...args: string[]) => [
        PODMAN,
        '--root', root,
        '--runroot', join(fs.mountPoint, 'run'),
        '--tmpdir', join(fs.mountPoint, 'podman-tmp'),
        '--storage-driver', 'overlay',
        '--cgroup-manager', 'cgroupfs',
        '--events-backend', 'file',
        ...args,
      ];
      made = { ...peer, label: `podman ${version(PODMAN)}`, cli, pull: (ref) => cli('pull', '-q', '--tls-verify=false', ref) };
    } else {
      const driver = await (strataDriver ??= overlay2Available().then((ok) => (ok ? 'overlay2' : 'vfs')));
      const cli = (...args: string[]) => [process.execPath, strataBin, '--root', root, '--driver', driver, ...args];
      made = { ...peer, label: `strata (${driver})`, cli, pull: (ref) => cli('pull', '-q', ref) };
    }
    runCommand(made.cli('images'), `${made.label} images`);
    return made;
  } catch (err) {
    await dispose();
    throw err;
  }
}

/** Bytes under the tool's data root (du, this filesystem only) and used on its filesystem (df, after a sync). */
function usage(p: Peer): { du: number; df: number } {
  const du = Number(runCommand(['du', '-s', '--block-size=1', '-x', p.root], 'du').split('\t')[0]);
  runCommand(['sync', '-f', p.fs], 'sync');
  const s = statfs(p.fs);
  return { du, df: Number((s.blocks - s.blocksFree) * BigInt(s.blockSize)) };
}

const ms = (s: number) => `${(s * 1000).toFixed(0)} ms`;
const kib = (b: number) => `${(b / 1024).toFixed(0)} KiB`;
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

export async function run(): Promise<void> {
  ensurePackages();
  await withScope(async (scope) => {
    const reg = await startRegistry(scope.cleanup);
    await reg.load('nginx', 'latest');
    const ref = `${reg.host}/corpus/nginx:latest`;
    // All three at once, so the rounds alternate (A B C A B C …) and load from elsewhere falls on each.
    const peers: Peer[] = [];
    for (const which of PEERS) peers.push(await freshPeer(scope, which));
    // No network: dockerd runs without its bridge, and a container's network is set up at start, not create.
    const create = (p: Peer) => p.cli('create', '--network', 'none', ref);
    for (const p of peers) {
      await scope.checkpoint();
      runCommand(p.pull(ref), `${p.label} pull`);
      // The first container of a store sets up what all later ones share: made before the counting starts.
      runCommand(create(p), `${p.label} first create`);
    }
    const before = peers.map(usage);
    const runs: Measured[][] = peers.map(() => []);
    for (let i = 0; i < CREATES; i++) {
      await scope.checkpoint();
      peers.forEach((p, j) => runs[j]!.push(measure(create(p), `${p.label} create`, { daemon: p.daemon })));
    }
    const added = peers.map((p, j) => {
      const after = usage(p);
      return { du: (after.du - before[j]!.du) / CREATES, df: (after.df - before[j]!.df) / CREATES };
    });

    const docker = peers.findIndex((p) => p.daemon !== undefined);
    const dockerMean = mean(runs[docker]!.map((m) => m.wall));
    const rows = [['tool', 'create (mean)', 'median', 'CPU (mean)', 'vs docker (mean)', 'disk/container (du)', 'vs docker (du)', 'disk/container (df)']];
    peers.forEach((p, j) => {
      const walls = runs[j]!.map((m) => m.wall);
      rows.push([
        p.label,
        ms(mean(walls)),
        ms(median(walls)),
        ms(mean(runs[j]!.map((m) => m.cpu))),
        `${(mean(walls) / dockerMean).toFixed(2)}x`,
        kib(added[j]!.du),
        `${(added[j]!.du / added[docker]!.du).toFixed(2)}x`,
        kib(added[j]!.df),
      ]);
    });
    console.log(
      `\n\`create --network none\` of corpus/nginx as a whole CLI process, ${CREATES} alternating rounds, each tool on a fresh journaled ext4 ` +
        `(CPU: user + system, 10 ms ticks, docker's with dockerd's); disk added per container over those ${CREATES}: ` +
        'du of the data root and df of the filesystem',
    );
    printTable(rows);
  });
}
