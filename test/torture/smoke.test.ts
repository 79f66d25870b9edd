// The torture harness in small, for npm test: a few SIGKILL trials at fixed fault points (each
// one surely kills its command) on vfs and overlay2, and a 15 s soak of 4 workers.
// `npm run torture` runs the long versions (main.ts).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { fileCleanup, overlay2Available, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { IMAGES } from './commands.js';
import { makeRig } from './rigs.js';
import { isDomainRefusal, soak } from './soak.js';
import { runTrials, type PlannedTrial, type TrialResult } from './trials.js';

const files = fileCleanup();
after(files.run);
let reg: TestRegistry;

before(async () => {
  reg = await startRegistry(files.add);
  for (const image of IMAGES) await reg.load(image);
});

/** Points every one of these commands reaches: its first or second metadata write or rename. */
const PLAN: PlannedTrial[] = [
  { command: 'load', image: 'app', mode: 'fault=row:2' },
  { command: 'commit', image: 'busybox', mode: 'fault=rename:1' },
  { command: 'create', image: 'busybox', mode: 'fault=row:1' },
  { command: 'rmi', image: 'app', mode: 'fault=row:1' },
  { command: 'pull', image: 'busybox', mode: 'fault=row:2' },
];

/** A trial's problems, one line each. */
function problemLines(results: TrialResult[]): string[] {
  return results.flatMap((r) => r.problems.map((p) => `${r.trial.command} ${r.mode}: ${p.kind}: ${p.detail}`));
}

for (const driver of ['vfs', 'overlay2']) {
  describe(`SIGKILL trials on ${driver}`, () => {
    let results: TrialResult[] = [];
    let skip: string | null = null;
    const lines: string[] = [];
    before(async () => {
      if (driver === 'overlay2' && !(await overlay2Available())) {
        skip = 'kernel overlay does not mount here';
        return;
      }
      const rig = makeRig(driver);
      try {
        results = await runTrials({ rig, registry: reg.host, killed: 0, maxTrials: 0, seed: 1, plan: PLAN, log: (l) => void lines.push(l) });
      } finally {
        rig.teardown();
      }
    });

    test('every planned fault point kills its command', (t) => {
      if (skip) return t.skip(skip);
      assert.equal(results.length, PLAN.length);
      assert.deepEqual(results.filter((r) => !r.killed).map((r) => `${r.trial.command} ${r.mode}`), []);
    });

    test('load, commit, create, rmi, pull: the store opens, nothing is left over, the command then succeeds', (t) => {
      if (skip) return t.skip(skip);
      assert.deepEqual(problemLines(results), [], lines.join('\n'));
    });
  });
}

test('soak: 4 workers x 15 s on one store end in results or domain refusals, and check is clean', async (t) => {
  const rig = makeRig('vfs');
  t.after(() => rig.teardown());
  const r = await soak({ rig, registry: reg.host, workers: 4, seconds: 15, seed: 1, log: () => {} });
  assert.ok(r.ops >= 8, `only ${r.ops} commands ran`);
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.problems, []);
});

test('domain refusals: the messages strata gives for gone, in-use and taken names, and nothing about layers', () => {
  const said = (stderr: string) => ({ args: [], code: 1, signal: null, stdout: '', stderr, ms: 0 });
  const id = 'a'.repeat(64);
  for (const m of [
    'Error: No such container: s-c1',
    'Error: No such image: torture/s0:latest',
    `Error: conflict: unable to delete ${id.slice(0, 12)} (must be forced) - container ${id.slice(0, 12)} is using its referenced image ${id.slice(0, 12)}`,
    `Error: Conflict. The container name "/s-c0" is already in use by container "${id}". You have to remove (or rename) that container to be able to reuse that name.`,
  ]) {
    assert.ok(isDomainRefusal(said(`${m}\n`)), m);
  }
  for (const m of [
    `Error: layer ${id} is being removed or is not complete`,
    `Error: layer ${id} is in use by other layers`,
    'Error: ENOENT: no such file or directory, open /x',
    'Error: No such container: s-c1\n    at Store.resolve (store.js:1:1)',
  ]) {
    assert.ok(!isDomainRefusal(said(`${m}\n`)), m);
  }
});
