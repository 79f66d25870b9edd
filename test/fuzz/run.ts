// `npm run fuzz`: every target (or FUZZ_TARGETS=a,b) for FUZZ_RUNS inputs each (10^6 by default)
// on FUZZ_WORKERS processes, from FUZZ_SEED (random by default, printed). Exit 1 on a finding.
// `npm run fuzz -- --replay TARGET SEED PATH` feeds the one input a finding names, in this
// process, and prints what happened.
import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { isolated, runFuzz } from './fuzz.js';
import { errorText, propertyOf } from './property.js';
import { targets } from './targets/index.js';

async function replay(name: string, seed: number, path: string): Promise<number> {
  const spec = targets[name];
  if (spec === undefined) throw new Error(`unknown fuzz target ${JSON.stringify(name)}`);
  if (spec.isolate && process.env.STRATA_FUZZ_ISOLATED === undefined) {
    // The applier replays where it was fuzzed: in a namespace where only its tmpfs is writable.
    const [cmd, cmdArgs] = isolated([process.execPath, ...process.argv.slice(1)]);
    const r = spawnSync(cmd, cmdArgs, { stdio: 'inherit', env: { ...process.env, STRATA_FUZZ_ISOLATED: '1' } });
    return r.status ?? 1;
  }
  const target = await spec.make();
  try {
    const prop = propertyOf(spec, target as never, () => undefined);
    const params = { seed, path, numRuns: 1, endOnFailure: true };
    const r = spec.sync ? fc.check(prop as fc.IProperty<[unknown]>, params) : await fc.check(prop as fc.IAsyncProperty<[unknown]>, params);
    if (!r.failed) {
      console.log(`${name} seed ${seed} path ${path}: no finding (the input is handled cleanly now)`);
      return 0;
    }
    console.log(`${name} seed ${seed} path ${path}: input ${fc.stringify(r.counterexample?.[0]).slice(0, 4000)}`);
    console.log(errorText(r.errorInstance));
    return 1;
  } finally {
    target.close?.();
  }
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  if (args[0] === '--replay') {
    if (args.length !== 4) throw new Error('usage: npm run fuzz -- --replay TARGET SEED PATH');
    return replay(args[1]!, Number(args[2]), args[3]!);
  }
  const names = process.env.FUZZ_TARGETS ? process.env.FUZZ_TARGETS.split(',') : Object.keys(targets);
  const runs = Number(process.env.FUZZ_RUNS ?? 1_000_000);
  const workers = Number(process.env.FUZZ_WORKERS ?? availableParallelism());
  const seed = Number(process.env.FUZZ_SEED ?? (Math.random() * 2 ** 31) | 0);
  const outDir = process.env.FUZZ_OUT ?? 'fuzz-findings';
  console.log(`fuzz: ${names.join(', ')}; ${runs} inputs each on ${workers} workers; seed ${seed}`);
  const results = await runFuzz({ targets: names, runs, workers, seed, outDir, log: (l) => console.log(l) });
  let found = 0;
  console.log('\ntarget           inputs     seconds   inputs/s   findings');
  for (const r of results) {
    console.log(`${r.target.padEnd(16)} ${String(r.inputs).padStart(9)} ${r.seconds.toFixed(1).padStart(10)} ${String(Math.round(r.inputs / r.seconds)).padStart(10)} ${String(r.findings.length).padStart(10)}`);
  }
  for (const r of results) {
    for (const f of r.findings) {
      found++;
      console.log(`\n${r.target} ${f.kind}: ${f.error.split('\n')[0]}`);
      console.log(`  replay: npm run fuzz -- --replay ${r.target} ${f.seed} ${f.path}${f.saved ? `\n  saved: ${f.saved}` : ''}`);
    }
  }
  return found > 0 ? 1 : 0;
}

process.exitCode = await main();
