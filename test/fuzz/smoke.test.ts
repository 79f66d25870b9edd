// The fuzzers, short: a few thousand inputs per target through the same worker processes as
// `npm run fuzz` (FUZZ_SMOKE_RUNS to change, FUZZ_SEED for another seed). Any finding fails,
// with its seed and path for `npm run fuzz -- --replay`. Also checks that the harness itself
// tells a parser's clean error from a crash.
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { test } from 'node:test';
import { runFuzz } from './fuzz.js';
import { propertyOf } from './property.js';
import { isOwnError, type FuzzTarget } from './target.js';
import { targets } from './targets/index.js';

const RUNS = Number(process.env.FUZZ_SMOKE_RUNS ?? 2000);
const SEED = Number(process.env.FUZZ_SEED ?? 20261201);

test('the property passes clean errors and fails on engine errors and broken invariants', () => {
  const target = (thrown: () => unknown): FuzzTarget<number> => ({
    name: 'self',
    arbitrary: fc.nat(),
    run: () => {
      throw thrown();
    },
    clean: isOwnError,
  });
  const spec = { sync: true, make: async () => undefined as never };
  const check = (t: FuzzTarget<number>) => fc.check(propertyOf(spec, t as FuzzTarget<unknown>, () => undefined) as fc.IProperty<[unknown]>, { numRuns: 5 });
  assert.equal(check(target(() => new Error('bad input'))).failed, false);
  assert.equal(check(target(() => new TypeError('x is undefined'))).failed, true);
  assert.equal(check(target(() => new RangeError('out of range'))).failed, true);
  assert.equal(check(target(() => 'a string')).failed, true);
});

for (const name of Object.keys(targets)) {
  test(`fuzz ${name}: ${RUNS} inputs, no finding`, { timeout: 15 * 60_000 }, async () => {
    const [r] = await runFuzz({ targets: [name], runs: RUNS, workers: 1, seed: SEED, maxFindings: 1 });
    const found = r!.findings.map((f) => `${f.kind} (replay: npm run fuzz -- --replay ${name} ${f.seed} ${f.path}):\n${f.error}`);
    assert.deepEqual(found, []);
    assert.equal(r!.inputs >= RUNS, true, `${r!.inputs} inputs fed`);
  });
}
