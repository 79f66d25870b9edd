// One target's inputs as a fast-check property: the parser's clean errors pass, everything else
// (and an input slower than FUZZ_SLOW_MS) fails. Shared by the worker threads and by replay.
import fc from 'fast-check';
import { FuzzViolation, type FuzzTarget, type TargetSpec } from './target.js';

/** An input slower than this is a hang (generous: two cores shared by several builds). */
export const SLOW_MS = Number(process.env.FUZZ_SLOW_MS ?? 10_000);

export function propertyOf(spec: TargetSpec, target: FuzzTarget<unknown>, onInput: () => void): fc.IProperty<[unknown]> | fc.IAsyncProperty<[unknown]> {
  const slow = (t0: number) => {
    const ms = performance.now() - t0;
    if (ms > SLOW_MS) throw new FuzzViolation(`hang: one input took ${Math.round(ms)} ms (limit ${SLOW_MS} ms)`);
  };
  if (spec.sync) {
    return fc.property(target.arbitrary, (input) => {
      onInput();
      const t0 = performance.now();
      try {
        target.run(input);
      } catch (err) {
        if (!target.clean(err)) throw err;
      }
      slow(t0);
    });
  }
  return fc.asyncProperty(target.arbitrary, async (input) => {
    onInput();
    const t0 = performance.now();
    try {
      await target.run(input);
    } catch (err) {
      if (!target.clean(err)) throw err;
    }
    slow(t0);
  });
}

/** The error as a report shows it: its stack (or its value when not an Error). */
export function errorText(err: unknown): string {
  return err instanceof Error ? (err.stack ?? `${err.name}: ${err.message}`) : `thrown non-Error: ${String(err)}`;
}

/** The seed after `seed` (a finding ends one fast-check run; the next one starts from here). */
export function nextSeed(seed: number): number {
  return (Math.imul(seed, 1103515245) + 12345) | 0;
}
