// The fuzz driver: for each target, several worker processes (child.ts) share the inputs; it
// prints inputs/s as they go, and every finding with the seed and path that replay it.
// The applier's workers run in a private mount namespace where every filesystem is read-only
// but a fresh tmpfs on /tmp (their scratch root): a write outside the root fails with EROFS
// instead of landing on this machine, and the mounts go away with the namespace.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildJob, ChildMessage } from './child.js';
import { targets } from './targets/index.js';
import type { FindingMessage } from './thread.js';
import { SCRATCH_MOUNT } from './target.js';

export interface FuzzOptions {
  targets: string[];
  runs: number;
  workers: number;
  seed: number;
  /** Findings per worker before it stops. */
  maxFindings?: number;
  /** Where findings' inputs are saved. */
  outDir?: string;
  log?: (line: string) => void;
}

export interface TargetResult {
  target: string;
  inputs: number;
  seconds: number;
  findings: (FindingMessage & { saved?: string })[];
}

const CHILD = fileURLToPath(new URL('./child.js', import.meta.url));

// Remount every disk-like filesystem read-only in this namespace only (bind,remount changes the
// mount, not the filesystem), then give the worker a tmpfs of its own at SCRATCH_MOUNT (its
// mount point is made first, while /run can still be written; it stays behind, empty).
const ISOLATE = [
  'set -e',
  `mkdir -p ${SCRATCH_MOUNT}`,
  'findmnt -rno TARGET,FSTYPE | while read -r m t; do',
  '  case "$t" in ext*|xfs|btrfs|tmpfs|overlay|fuse*|zfs|f2fs|vfat) mount -o bind,remount,ro "$m" 2>/dev/null || true;; esac',
  'done',
  `mount -t tmpfs -o size=1g,mode=0755 strata-fuzz ${SCRATCH_MOUNT}`,
  'exec "$@"',
].join('\n');

/** The command line that runs `argv` (node and its arguments) in an isolated mount namespace. */
export function isolated(argv: string[]): [string, string[]] {
  return ['unshare', ['--mount', '--propagation', 'private', '--', '/bin/sh', '-c', ISOLATE, 'isolate', ...argv]];
}

function startChild(job: ChildJob, isolate: boolean) {
  const env = { ...process.env, STRATA_FUZZ_JOB: JSON.stringify(job) };
  const stdio: ['ignore', 'inherit', 'inherit', 'ipc'] = ['ignore', 'inherit', 'inherit', 'ipc'];
  if (!isolate) return spawn(process.execPath, [CHILD], { env, stdio });
  const [cmd, args] = isolated([process.execPath, CHILD]);
  return spawn(cmd, args, { env, stdio });
}

async function runTarget(name: string, opts: FuzzOptions): Promise<TargetResult> {
  const spec = targets[name];
  if (spec === undefined) throw new Error(`unknown fuzz target ${JSON.stringify(name)} (targets: ${Object.keys(targets).join(', ')})`);
  const log = opts.log ?? (() => undefined);
  const t0 = performance.now();
  const per = Math.ceil(opts.runs / opts.workers);
  const counts = new Array<number>(opts.workers).fill(0);
  const result: TargetResult = { target: name, inputs: 0, seconds: 0, findings: [] };
  const ticker = setInterval(() => {
    const n = counts.reduce((a, b) => a + b, 0);
    const s = (performance.now() - t0) / 1000;
    log(`  ${name}: ${n} inputs, ${Math.round(n / s)}/s, ${result.findings.length} findings`);
  }, 15_000);
  try {
    await Promise.all(
      counts.map((_, k) => {
        const job: ChildJob = { target: name, seed: (opts.seed + k * 7919) | 0, runs: Math.min(per, opts.runs - k * per), maxFindings: opts.maxFindings ?? 3 };
        if (job.runs <= 0) return Promise.resolve();
        const child = startChild(job, spec.isolate === true);
        return new Promise<void>((resolve, reject) => {
          let done = false;
          child.on('message', (m: ChildMessage) => {
            if (m.type === 'progress') counts[k] = m.inputs;
            else if (m.type === 'done') {
              counts[k] = m.inputs;
              done = true;
            } else {
              result.findings.push(save(name, m, opts.outDir));
              log(`  ${name}: FINDING (${m.kind}) seed ${m.seed} path ${m.path}: ${m.error.split('\n')[0]}`);
            }
          });
          child.on('error', reject);
          child.on('exit', (code, signal) => {
            if (!done) {
              result.findings.push({ type: 'finding', kind: 'crash', seed: job.seed, path: '', error: `worker process exited (${signal ?? code}) before it finished` });
            }
            resolve();
          });
        });
      }),
    );
  } finally {
    clearInterval(ticker);
  }
  result.inputs = counts.reduce((a, b) => a + b, 0);
  result.seconds = (performance.now() - t0) / 1000;
  return result;
}

function save(target: string, m: FindingMessage, outDir: string | undefined): FindingMessage & { saved?: string } {
  if (outDir === undefined) return m;
  mkdirSync(outDir, { recursive: true });
  // A long shrink's path does not fit a file name (255 bytes): it is in the file, the name takes its hash.
  const path = m.path.length > 150 ? createHash('sha256').update(m.path).digest('hex').slice(0, 16) : m.path.replace(/:/g, '_') || 'x';
  const base = join(outDir, `${target}-${m.seed}-${path}`);
  writeFileSync(`${base}.txt`, `${m.kind}\nseed ${m.seed} path ${m.path}\n\n${m.error}\n\ninput: ${m.input ?? '(unknown)'}\n`);
  if (m.bytes !== undefined) writeFileSync(`${base}.bin`, Buffer.from(m.bytes, 'base64'));
  return { ...m, saved: `${base}.txt` };
}

export async function runFuzz(opts: FuzzOptions): Promise<TargetResult[]> {
  const out: TargetResult[] = [];
  for (const name of opts.targets) out.push(await runTarget(name, opts));
  return out;
}
