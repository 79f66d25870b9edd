// `npm run torture`: SIGKILL trials on every driver, then the concurrency soak; a summary table
// at the end, exit 1 on any failure (each printed with the line that replays it).
// Settings from the environment:
//   TORTURE_DRIVERS        comma list (default: all seven)
//   TORTURE_TRIALS         killed trials per driver on vfs, overlay2 and btrfs (default 200)
//   TORTURE_TRIALS_OTHER   killed trials on the other drivers (default 50)
//   TORTURE_SEED           first trial's seed (default: from the clock, printed)
//   TORTURE_REPLAY         'DRIVER COMMAND IMAGE MODE': run that one trial only, no soak
//   TORTURE_SOAK_DRIVER    (default overlay2), TORTURE_SOAK_WORKERS (8), TORTURE_SOAK_SECONDS (180; 0 skips)
import { fileCleanup, startRegistry } from '../helpers/registry.js';
import { COMMANDS, IMAGES, type CommandName } from './commands.js';
import { ALL_DRIVERS, makeRig, type Rig } from './rigs.js';
import { soak, type SoakResult } from './soak.js';
import { replayLine, runTrials, type PlannedTrial, type TrialResult } from './trials.js';

const MAIN_DRIVERS = new Set(['vfs', 'overlay2', 'btrfs']);

function envInt(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name}="${v}": expected a non-negative integer`);
  return n;
}

function parseReplay(spec: string): PlannedTrial & { driver: string } {
  const [driver, command, image, mode, ...rest] = spec.trim().split(/\s+/);
  if (
    rest.length ||
    !driver || !(ALL_DRIVERS as readonly string[]).includes(driver) ||
    !(COMMANDS as readonly string[]).includes(command ?? '') ||
    !(IMAGES as readonly string[]).includes(image ?? '') ||
    !/^(fault=[a-z]+:[1-9][0-9]*|kill=[0-9]+)$/.test(mode ?? '')
  ) {
    throw new Error(`TORTURE_REPLAY="${spec}": expected 'DRIVER COMMAND IMAGE fault=KIND:N|kill=MS'`);
  }
  return { driver, command: command as CommandName, image: image as (typeof IMAGES)[number], mode: mode! };
}

interface DriverSummary {
  driver: string;
  results: TrialResult[];
  /** Set when the driver's rig or reference store could not be made. */
  broken?: string;
}

export function summaryTable(drivers: DriverSummary[], soaked: SoakResult | null): string[] {
  const kinds = [...new Set(drivers.flatMap((d) => d.results.flatMap((r) => r.problems.map((p) => p.kind))))].sort();
  const head = ['driver', 'trials', 'killed', 'failed', ...kinds];
  const rows = drivers.map((d) => {
    if (d.broken) return [d.driver, '-', '-', 'broken', ...kinds.map(() => '-')];
    const count = (k: string) => String(d.results.filter((r) => r.problems.some((p) => p.kind === k)).length);
    return [d.driver, String(d.results.length), String(d.results.filter((r) => r.killed).length), String(d.results.filter((r) => r.problems.length).length), ...kinds.map(count)];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  const out = ['SIGKILL trials (failures by kind; a trial may fail in several ways):', fmt(head), ...rows.map(fmt)];
  for (const d of drivers) if (d.broken) out.push(`${d.driver}: ${d.broken}`);
  if (soaked) {
    out.push(
      `soak on ${soaked.driver}: ${soaked.ops} commands, ${soaked.ok} succeeded, ${soaked.refusals} domain refusals, ` +
        `${soaked.errors.length} errors; afterwards: ${soaked.problems.length ? soaked.problems.map((p) => `${p.kind} ${p.detail}`).join('; ') : 'check clean, nothing left over'}`,
    );
  }
  return out;
}

/** A rig that will not go away is a leak of the run itself: say so and carry on with the next driver. */
function tearDown(rig: Rig | null, summary: DriverSummary, log: (line: string) => void): void {
  try {
    rig?.teardown();
  } catch (err) {
    const why = `teardown: ${(err as Error).message.split('\n')[0]}`;
    summary.broken = summary.broken ? `${summary.broken}; ${why}` : why;
    log(`${summary.driver}: ${why}`);
  }
}

async function main(): Promise<number> {
  const log = (line: string) => process.stdout.write(`${line}\n`);
  const replay = process.env.TORTURE_REPLAY ? parseReplay(process.env.TORTURE_REPLAY) : undefined;
  const drivers = replay ? [replay.driver] : (process.env.TORTURE_DRIVERS ?? ALL_DRIVERS.join(',')).split(',').filter(Boolean);
  for (const d of drivers) if (!(ALL_DRIVERS as readonly string[]).includes(d)) throw new Error(`TORTURE_DRIVERS: unknown driver ${d}`);
  const trials = envInt('TORTURE_TRIALS', 200);
  const trialsOther = envInt('TORTURE_TRIALS_OTHER', 50);
  const seed = envInt('TORTURE_SEED', Date.now() % 1_000_000);
  const soakSeconds = replay ? 0 : envInt('TORTURE_SOAK_SECONDS', 180);
  const soakWorkers = envInt('TORTURE_SOAK_WORKERS', 8);
  const soakDriver = process.env.TORTURE_SOAK_DRIVER ?? 'overlay2';
  log(`torture: seed ${seed}, drivers ${drivers.join(', ')}`);

  const cleanup = fileCleanup();
  // Interrupted: stop the registry, then exit (which tears the rigs down through their exit hooks).
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => void cleanup.run().finally(() => process.exit(130)));
  }
  const summaries: DriverSummary[] = [];
  let soaked: SoakResult | null = null;
  try {
    const reg = await startRegistry(cleanup.add);
    for (const image of IMAGES) await reg.load(image);
    for (const driver of drivers) {
      const target = MAIN_DRIVERS.has(driver) ? trials : trialsOther;
      let rig: Rig | null = null;
      const summary: DriverSummary = { driver, results: [] };
      summaries.push(summary);
      try {
        rig = makeRig(driver);
        // Each driver its own sequence of trials (the same seed would repeat one order everywhere).
        const driverSeed = seed + 100_000 * ALL_DRIVERS.indexOf(driver as (typeof ALL_DRIVERS)[number]);
        summary.results = await runTrials({ rig, registry: reg.host, killed: target, maxTrials: target * 3, seed: driverSeed, plan: replay ? [replay] : undefined, log });
      } catch (err) {
        summary.broken = (err as Error).message.split('\n')[0];
        log(`${driver}: ${summary.broken}`);
      } finally {
        tearDown(rig, summary, log);
      }
    }
    if (soakSeconds > 0) {
      const rig = makeRig(soakDriver);
      try {
        log(`soak: ${soakWorkers} workers x ${soakSeconds} s on ${soakDriver}`);
        soaked = await soak({ rig, registry: reg.host, workers: soakWorkers, seconds: soakSeconds, seed, log });
      } finally {
        rig.teardown();
      }
    }
  } finally {
    await cleanup.run();
  }

  log('');
  for (const line of summaryTable(summaries, soaked)) log(line);
  const failed = summaries.flatMap((s) => s.results.filter((r) => r.problems.length));
  if (failed.length) {
    log('\nfailed trials:');
    for (const r of failed) log(`  ${r.trial.command} on ${r.driver} (${r.problems.map((p) => p.kind).join(', ')}): ${replayLine(r)}`);
  }
  const short = summaries.filter((s) => !s.broken && !replay && s.results.filter((r) => r.killed).length < (MAIN_DRIVERS.has(s.driver) ? trials : trialsOther));
  for (const s of short) log(`${s.driver}: fewer killed trials than asked for`);
  const bad = failed.length > 0 || summaries.some((s) => s.broken) || short.length > 0 || (soaked !== null && (soaked.errors.length > 0 || soaked.problems.length > 0));
  return bad ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`torture: ${err.message}\n`);
    process.exit(2);
  },
);
