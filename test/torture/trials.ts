// SIGKILL trials on one driver. Each trial brings a store to a command's starting state, runs
// the command and kills it (at a random moment, or through STRATA_FAULT at its Nth rename,
// fsync or metadata write), then: the next command opens the store; nothing half-made, orphaned
// or leaked is left (invariants.ts); `check` is clean; the command succeeds when repeated; and
// its effect leads to the same container root as in a clean store (commands.ts). A store that
// failed any of this is thrown away so one failure does not cascade into the next trials.
import { FAULT_KINDS, type FaultKind } from '../../src/sys/fault.js';
import { alreadyDone, buildReferences, COMMANDS, corpusIds, IMAGES, setup, verify, type CommandName, type Env, type References, type Trial } from './commands.js';
import { dbProblems, leakProblems, storeProblems, type Problem } from './invariants.js';
import type { Rig } from './rigs.js';
import { describe, strataOn } from './strata.js';

export interface TrialResult {
  driver: string;
  trial: Trial;
  /** `fault=KIND:N` or `kill=MS`. */
  mode: string;
  /** Whether the command died by SIGKILL (a fault point past its last operation lets it finish). */
  killed: boolean;
  problems: Problem[];
}

export interface PlannedTrial {
  command: CommandName;
  image: (typeof IMAGES)[number];
  /** `fault=KIND:N` or `kill=MS` */
  mode: string;
}

export interface TrialOptions {
  rig: Rig;
  registry: string;
  /** Stop once this many trials killed their command. */
  killed: number;
  /** Give up after this many trials whatever was killed. */
  maxTrials: number;
  seed: number;
  /** Only these commands (default: all). */
  commands?: readonly CommandName[];
  /** Run exactly these trials instead (a replay, as printed for a failure, or the smoke test's list). */
  plan?: PlannedTrial[];
  log: (line: string) => void;
}

/** A small seeded generator (mulberry32): the same seed picks the same trials. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)]!;
}

export function replayLine(r: TrialResult): string {
  return `TORTURE_REPLAY='${r.driver} ${r.trial.command} ${r.trial.image} ${r.mode}' npm run torture`;
}

export async function runTrials(opts: TrialOptions): Promise<TrialResult[]> {
  const { rig, log } = opts;
  const driver = rig.driver;
  // References and image IDs from a clean store, which then goes.
  let root = rig.newRoot('ref');
  let env: Env = { strata: strataOn(root, driver), registry: opts.registry, ids: { busybox: '', app: '' } };
  env.ids = await corpusIds(env.strata);
  const refs: References = await buildReferences(env);
  const ids = env.ids;
  rig.destroyRoot(root);

  const fresh = () => {
    root = rig.newRoot('t');
    env = { strata: strataOn(root, driver), registry: opts.registry, ids };
  };
  fresh();
  // Highest N still worth trying per command and fault kind: lowered whenever a command ran
  // past the chosen point, so the choices settle on points each command really reaches.
  const bound = new Map<string, number>();
  // How long each command takes uncut (ms), for picking a kill moment inside it.
  const expected = new Map<CommandName, number>();
  const results: TrialResult[] = [];
  let killed = 0;
  const { plan } = opts;
  for (let i = 0; plan ? i < plan.length : killed < opts.killed && i < opts.maxTrials; i++) {
    const r = rng(opts.seed + i);
    const command = plan?.[i]!.command ?? pick(r, opts.commands ?? COMMANDS);
    const trial: Trial = { command, image: plan?.[i]!.image ?? pick(r, IMAGES), tag: `${driver}-${opts.seed}-${i}` };
    let mode = plan?.[i]!.mode;
    if (!mode) {
      const kinds = FAULT_KINDS.filter((k) => (bound.get(`${command}:${k}`) ?? 8) > 0);
      if (kinds.length && r() < 0.5) {
        const kind: FaultKind = pick(r, kinds);
        mode = `fault=${kind}:${1 + Math.floor(r() * (bound.get(`${command}:${kind}`) ?? 8))}`;
      } else {
        mode = `kill=${Math.floor(r() * 1.2 * (expected.get(command) ?? 1500))}`;
      }
    }
    const result = await oneTrial(env, root, rig, trial, mode, refs, expected, bound);
    results.push(result);
    if (result.killed) killed++;
    const tagline = `${driver} #${i} ${command} ${trial.image} ${mode}: ${result.killed ? 'killed' : 'ran to the end'}`;
    if (result.problems.length) {
      log(`FAIL ${tagline}`);
      for (const p of result.problems) log(`  ${p.kind}: ${p.detail}`);
      log(`  replay: ${replayLine(result)}`);
      rig.destroyRoot(root);
      fresh();
    } else {
      log(`ok   ${tagline}`);
    }
  }
  rig.destroyRoot(root);
  return results;
}

async function oneTrial(
  env: Env,
  root: string,
  rig: Rig,
  trial: Trial,
  mode: string,
  refs: References,
  expected: Map<CommandName, number>,
  bound: Map<string, number>,
): Promise<TrialResult> {
  const problems: Problem[] = [];
  const result: TrialResult = { driver: rig.driver, trial, mode, killed: false, problems };
  let args: string[];
  try {
    args = await setup(env, trial);
  } catch (err) {
    problems.push({ kind: 'setup', detail: (err as Error).message });
    return result;
  }
  const fault = mode.startsWith('fault=') ? mode.slice(6) : undefined;
  const run = await env.strata(args, fault ? { fault } : { killAfterMs: Number(mode.slice(5)) });
  result.killed = run.signal === 'SIGKILL';
  if (!result.killed) {
    if (fault) {
      const [kind, n] = fault.split(':');
      bound.set(`${trial.command}:${kind}`, Number(n) - 1);
    }
    if (run.code !== 0) problems.push({ kind: 'command', detail: `uncut ${args.join(' ')}: ${describe(run)}` });
  }

  const next = await env.strata(['info', '--format', 'json']);
  if (next.code !== 0) {
    problems.push({ kind: 'store-open', detail: describe(next) });
    return result;
  }
  problems.push(...storeProblems(root, rig.driver, rig.dataset(root)));
  const check = await env.strata(['check']);
  if (check.code !== 0) problems.push({ kind: 'check', detail: `${describe(check)} ${check.stdout.trim().split('\n').slice(0, 3).join(' | ')}` });

  const again = await env.strata(args);
  const done = alreadyDone(trial.command);
  if (again.code === 0) {
    expected.set(trial.command, Math.round(((expected.get(trial.command) ?? again.ms) + again.ms) / 2));
  } else if (!(done && again.signal === null && done.test(again.stderr))) {
    problems.push({ kind: 'rerun', detail: `${args.join(' ')}: ${describe(again)}` });
    return result;
  }
  try {
    const wrong = await verify(env, trial, refs);
    if (wrong) problems.push({ kind: 'root', detail: wrong });
  } catch (err) {
    problems.push({ kind: 'verify', detail: (err as Error).message.split('\n')[0]! });
  }
  problems.push(...dbProblems(root), ...leakProblems(root));
  return result;
}
