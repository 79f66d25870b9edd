// A fuzz worker process: hosts one worker thread (thread.ts) and watches it. A thread whose
// input count stops moving for FUZZ_HANG_MS is a hang, one that dies (uncaught exception,
// unhandled rejection, out of memory) a crash; both are reported with the seed and path of the
// input it was on, and a new thread carries on with the inputs left under the next seed.
// Started by run.ts with its job in STRATA_FUZZ_JOB; reports go back over the IPC channel.
import { Worker } from 'node:worker_threads';
import { errorText, nextSeed } from './property.js';
import type { DoneMessage, FindingMessage, ThreadData } from './thread.js';

export interface ChildJob {
  target: string;
  seed: number;
  runs: number;
  maxFindings: number;
}

export type ChildMessage = FindingMessage | DoneMessage | { type: 'progress'; inputs: number };

const HANG_MS = Number(process.env.FUZZ_HANG_MS ?? 60_000);
/** Heap for one thread; an input that needs more is an out-of-memory finding. */
const HEAP_MB = Number(process.env.FUZZ_HEAP_MB ?? 768);

function send(m: ChildMessage): void {
  process.send!(m);
}

/** Runs one thread to its end; resolves with the inputs it fed and whether it died. */
function runThread(job: ChildJob, seed: number, runs: number, maxFindings: number): Promise<{ inputs: number; findings: number; died: boolean }> {
  const sab = new SharedArrayBuffer(12);
  const P = new Int32Array(sab);
  const data: ThreadData = { target: job.target, seed, runs, maxFindings, progress: sab };
  const worker = new Worker(new URL('./thread.js', import.meta.url), {
    workerData: data,
    resourceLimits: { maxOldGenerationSizeMb: HEAP_MB },
  });
  return new Promise((resolve) => {
    let findings = 0;
    let finished = false;
    let last = -1;
    let lastMove = Date.now();
    const where = () => ({ seed: Atomics.load(P, 2), path: String(Atomics.load(P, 0) - Atomics.load(P, 1) - 1) });
    const end = (died: boolean) => {
      if (finished) return;
      finished = true;
      clearInterval(timer);
      resolve({ inputs: Atomics.load(P, 0), findings, died });
    };
    const timer = setInterval(() => {
      const n = Atomics.load(P, 0);
      send({ type: 'progress', inputs: n });
      if (n !== last) {
        last = n;
        lastMove = Date.now();
      } else if (Date.now() - lastMove > HANG_MS && !finished) {
        findings++;
        send({ type: 'finding', kind: 'hang', ...where(), error: `no progress for ${HANG_MS} ms on this input` });
        void worker.terminate();
        end(true);
      }
    }, 1000);
    worker.on('message', (m: FindingMessage | DoneMessage) => {
      if (m.type === 'finding') {
        findings++;
        send(m);
      } else {
        end(false);
      }
    });
    worker.on('error', (err) => {
      if (finished) return;
      findings++;
      send({ type: 'finding', kind: 'crash', ...where(), error: errorText(err) });
      end(true);
    });
    worker.on('exit', () => end(Atomics.load(P, 0) < runs));
  });
}

async function main(): Promise<void> {
  // The driver went away (stopped with ^C or killed): stop too, thread and all.
  process.on('disconnect', () => process.exit(2));
  const job = JSON.parse(process.env.STRATA_FUZZ_JOB ?? '') as ChildJob;
  let seed = job.seed;
  let left = job.runs;
  let findings = 0;
  let inputs = 0;
  while (left > 0 && findings < job.maxFindings) {
    const r = await runThread(job, seed, left, job.maxFindings - findings);
    inputs += r.inputs;
    findings += r.findings;
    if (!r.died) break;
    left -= Math.max(1, r.inputs);
    seed = nextSeed(seed);
  }
  send({ type: 'done', inputs });
  process.disconnect();
}

await main();
