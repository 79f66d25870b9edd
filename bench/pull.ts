// Pull benchmark: corpus/nginx and corpus/app from a local docker-registry, pulled by strata,
// Docker 20.10 (Debian's docker.io, a private dockerd) and Podman (Debian's podman), as issue #13
// measures them: every timed pull of every tool goes into a store on a journaled ext4 made just
// before it on a loop device over a file on a tmpfs (peers.ts), so no pull pays for an earlier
// one's deletions (ext4's recently-deleted inode scan cost whichever tool reused those block
// groups seconds per pull). Tools alternate (A B C A B C …), a first round warms the page cache
// and is not counted, and the table shows medians and each tool's time relative to Docker's in
// this same run, the CPU each pull used (Docker's includes dockerd's) and the peak RSS of the
// process doing the work (strata's and podman's; for Docker, dockerd's, started for that pull
// alone). Then four strata pulls of different images into one fresh root at once against the
// same four one after another.
import { spawn } from 'node:child_process';
import { startRegistry } from '../test/helpers/registry.js';
import { measure, median, peakRssOf, printTable } from './measure.js';
import { ensurePackages, freshPeer, PEERS, runCommand, withScope, type Peer, type Scope } from './peers.js';

const IMAGES = ['nginx', 'app'];
/** Four different images for the concurrency row. */
const CONCURRENT_IMAGES = ['nginx', 'app', 'busybox', 'edge'];
const RUNS = Math.max(3, Number(process.env.BENCH_RUNS ?? 5));

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

/** Seconds fn takes with strata on a fresh filesystem of its own (set up and dropped outside the timing). */
async function timedOnFreshStrata(scope: Scope, fn: (p: Peer) => Promise<void>): Promise<number> {
  const p = await freshPeer(scope, 'strata');
  try {
    const t0 = process.hrtime.bigint();
    await fn(p);
    return Number(process.hrtime.bigint() - t0) / 1e9;
  } finally {
    await p.dispose();
  }
}

export const name = 'pull';

export async function run(): Promise<void> {
  ensurePackages();
  await withScope(async (scope) => {
    const reg = await startRegistry(scope.cleanup);
    for (const img of new Set([...IMAGES, ...CONCURRENT_IMAGES])) await reg.load(img, 'latest');
    const samples = new Map<string, { wall: number; cpu: number; peakRss: number }[]>();
    const labels = new Map<string, string>();
    for (const img of IMAGES) {
      const ref = `${reg.host}/corpus/${img}:latest`;
      for (let i = 0; i <= RUNS; i++) {
        for (const which of PEERS) {
          const p = await freshPeer(scope, which);
          try {
            const m = measure(p.pull(ref), `${p.label} pull`, { daemon: p.daemon });
            // dockerd does docker's work, and this one was started for this pull alone.
            const peakRss = p.daemon === undefined ? m.peakRss : peakRssOf(p.daemon);
            labels.set(which, p.label);
            const counted = i > 0;
            if (counted) samples.set(`${img}|${which}`, [...(samples.get(`${img}|${which}`) ?? []), { ...m, peakRss }]);
            process.stdout.write(`  ${img} ${p.label}: ${m.wall.toFixed(2)} s (CPU ${m.cpu.toFixed(2)} s, peak RSS ${mib(peakRss)})${counted ? '' : ' warm-up, not counted'}\n`);
          } finally {
            await p.dispose();
          }
        }
      }
    }
    const rows = [['image', 'tool', 'median', 'runs', 'vs docker', 'CPU (median)', 'peak RSS (max)']];
    for (const img of IMAGES) {
      const docker = median(samples.get(`${img}|docker`)!.map((s) => s.wall));
      for (const which of PEERS) {
        const xs = samples.get(`${img}|${which}`)!;
        const m = median(xs.map((s) => s.wall));
        const peak = `${mib(Math.max(...xs.map((s) => s.peakRss)))}${which === 'docker' ? ' (dockerd)' : ''}`;
        rows.push([img, labels.get(which)!, `${m.toFixed(2)} s`, xs.map((s) => s.wall.toFixed(2)).join(' '), `${(m / docker).toFixed(2)}x`, `${median(xs.map((s) => s.cpu)).toFixed(2)} s`, peak]);
      }
    }
    console.log(
      `\npull from a loopback registry, each pull into a fresh journaled ext4 (loop device over a file on tmpfs), median of ${RUNS} alternating runs ` +
        '(targets: strata ≤ 0.50x docker on nginx, ≤ 0.75x on app, CPU ≤ docker\'s, peak RSS < 150 MiB)',
    );
    printTable(rows);

    // Concurrency: as many strata processes as images pulling them into one root at once, against
    // the same pulls one after another (alternating, medians), each on a fresh filesystem.
    const refs = CONCURRENT_IMAGES.map((i) => `${reg.host}/corpus/${i}:latest`);
    const together: number[] = [];
    const inTurn: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      together.push(await timedOnFreshStrata(scope, async (p) => void (await Promise.all(refs.map((r) => runAsync(p.pull(r), 'concurrent pull'))))));
      inTurn.push(await timedOnFreshStrata(scope, async (p) => refs.forEach((r) => runCommand(p.pull(r), 'sequential pull'))));
    }
    const ratio = median(together) / median(inTurn);
    console.log(`\n${refs.length} strata pulls (${CONCURRENT_IMAGES.join(', ')}) into one fresh root, median of ${RUNS} (target: concurrent ≤ 0.70x sequential):`);
    printTable([
      ['', 'median', 'runs'],
      ['concurrent', `${median(together).toFixed(2)} s`, together.map((x) => x.toFixed(2)).join(' ')],
      ['sequential', `${median(inTurn).toFixed(2)} s`, inTurn.map((x) => x.toFixed(2)).join(' ')],
      ['concurrent / sequential', `${ratio.toFixed(2)}x`, ratio <= 0.7 ? 'met' : 'missed'],
    ]);
  });
}
