// A fuzz worker thread: runs one target's property for its share of the inputs, seed after seed
// (a finding ends one fast-check run; the next seed carries on with the inputs left).
// Progress goes into a shared Int32Array so that the hosting process (child.ts) can name the
// exact seed and path of an input that hangs or kills the thread.
import fc from 'fast-check';
import { parentPort, workerData } from 'node:worker_threads';
import { errorText, nextSeed, propertyOf } from './property.js';
import { targets } from './targets/index.js';

export interface ThreadData {
  target: string;
  seed: number;
  runs: number;
  maxFindings: number;
  /** Int32Array: [0] inputs fed, [1] inputs fed when the current seed started, [2] current seed. */
  progress: SharedArrayBuffer;
}

export interface FindingMessage {
  type: 'finding';
  kind: 'failure' | 'crash' | 'hang';
  seed: number;
  path: string;
  error: string;
  /** The input, as fast-check prints it (cut short). */
  input?: string;
  /** The input's bytes (a tar, JSON, a reference), base64, for a regression test. */
  bytes?: string;
}

export interface DoneMessage {
  type: 'done';
  inputs: number;
}

async function main(): Promise<void> {
  const data = workerData as ThreadData;
  const P = new Int32Array(data.progress);
  const spec = targets[data.target];
  if (spec === undefined) throw new Error(`unknown fuzz target ${data.target}`);
  const target = await spec.make();
  const prop = propertyOf(spec, target as never, () => Atomics.add(P, 0, 1));
  let done = 0;
  let seed = data.seed;
  let findings = 0;
  try {
    while (done < data.runs && findings < data.maxFindings) {
      Atomics.store(P, 1, Atomics.load(P, 0));
      Atomics.store(P, 2, seed);
      const r = spec.sync
        ? fc.check(prop as fc.IProperty<[unknown]>, { seed, numRuns: data.runs - done })
        : await fc.check(prop as fc.IAsyncProperty<[unknown]>, { seed, numRuns: data.runs - done });
      if (!r.failed) break;
      findings++;
      done += r.numRuns;
      const input = r.counterexample?.[0];
      const msg: FindingMessage = {
        type: 'finding',
        kind: 'failure',
        seed,
        path: r.counterexamplePath ?? '',
        error: errorText(r.errorInstance),
        input: fc.stringify(input).slice(0, 2000),
      };
      const bytes = target.bytes?.(input as never);
      if (bytes) msg.bytes = bytes.toString('base64');
      parentPort!.postMessage(msg);
      seed = nextSeed(seed);
    }
  } finally {
    target.close?.();
  }
  parentPort!.postMessage({ type: 'done', inputs: Atomics.load(P, 0) } satisfies DoneMessage);
}

await main();
