// The concurrency soak: N workers, each running strata commands one after another for T
// seconds on one store root and a small shared set of names (mixed pull, load, create,
// mount/umount, commit, rm, rmi, tag, prune). Every command must succeed or refuse with a
// clean domain error (DOMAIN_REFUSALS, the one list of them); anything else is an error. After
// the workers stop, the store must be as after a crash trial: `check` clean, nothing partial,
// orphaned or leaked.
import { corpusImage } from '../helpers/env.js';
import { IMAGES } from './commands.js';
import { storeProblems, type Problem } from './invariants.js';
import { unmountUnder, type Rig } from './rigs.js';
import { describe, strataOn, type Run, type Strata } from './strata.js';
import { rng } from './trials.js';

/**
 * The refusals a racing command may end with: the object is gone (`no such`), in use, or its
 * name taken (`conflict`), in the words strata prints them. A message about a layer's state is
 * never one of them: that is the store showing its insides.
 */
export const DOMAIN_REFUSALS: RegExp[] = [
  /^Error: No such (image|container|object): \S+$/,
  /^Error: conflict: unable to (delete [0-9a-f]{12}|remove repository reference "[^"]+") \(must be forced\) - (container [0-9a-f]{12} is using its referenced image [0-9a-f]{12}|image is referenced in multiple repositories)$/,
  // docker's rmi rules for what an image still has: its containers, its child images.
  /^Error: conflict: unable to remove repository reference "[^"]+" \(must force\) - container [0-9a-f]{12} is using its referenced image [0-9a-f]{12}$/,
  /^Error: conflict: unable to delete [0-9a-f]{12} \((must|cannot) be forced\) - image (has dependent child images|is being used by (running|stopped) container [0-9a-f]{12})$/,
  /^Error: Conflict\. The container name "\/[^"]+" is already in use by container "[0-9a-f]{64}"\. You have to remove \(or rename\) that container to be able to reuse that name\.$/,
  /^Error: An image does not exist locally with the tag: \S+$/,
];

/** Whether a failed run ended with exactly one line, and that line is a domain refusal. */
export function isDomainRefusal(r: Run): boolean {
  if (r.signal || r.code === 0) return false;
  const lines = r.stderr.trim().split('\n');
  return lines.every((l) => DOMAIN_REFUSALS.some((re) => re.test(l)));
}

export interface SoakOptions {
  rig: Rig;
  registry: string;
  workers: number;
  seconds: number;
  seed: number;
  log: (line: string) => void;
}

export interface SoakResult {
  driver: string;
  ops: number;
  ok: number;
  refusals: number;
  /** Runs that failed with something other than a domain refusal. */
  errors: { args: string[]; said: string }[];
  /** What the store looked like once the workers had stopped. */
  problems: Problem[];
}

const CONTAINERS = ['s-c0', 's-c1', 's-c2', 's-c3'];
const NAMES = ['torture/s0:latest', 'torture/s1:latest', 'torture/s2:latest'];

/** One worker's next command; mount is followed by a umount of the same container. */
function nextOp(r: () => number, registry: string): string[][] {
  const c = CONTAINERS[Math.floor(r() * CONTAINERS.length)]!;
  const name = NAMES[Math.floor(r() * NAMES.length)]!;
  const image = IMAGES[Math.floor(r() * IMAGES.length)]!;
  const ops: string[][][] = [
    [['load', '-i', corpusImage(`${image}.oci.tar`)]],
    [['pull', '-q', `${registry}/corpus/${image}:latest`]],
    // --pull never: a create races rmi on images the store has; it is not another pull.
    [['create', '--pull', 'never', '--name', c, `${registry}/corpus/${image}:latest`]],
    [['create', '--pull', 'never', '--name', c, name]],
    [['mount', c], ['umount', c]],
    [['commit', c, name]],
    [['tag', `${registry}/corpus/${image}:latest`, name]],
    [['rm', c]],
    [['rmi', name]],
    [['rmi', `${registry}/corpus/${image}:latest`]],
    [['system', 'prune', '-f']],
    [['system', 'prune', '-a', '-f']],
  ];
  // Prune removes everything: keep it rare so the store holds something most of the time.
  const i = Math.floor(r() * (ops.length - 2 + 0.2));
  return ops[Math.min(i, ops.length - 1)]!;
}

export async function soak(opts: SoakOptions): Promise<SoakResult> {
  const { rig, log } = opts;
  const root = rig.newRoot('soak');
  const strata: Strata = strataOn(root, rig.driver);
  const result: SoakResult = { driver: rig.driver, ops: 0, ok: 0, refusals: 0, errors: [], problems: [] };
  const first = await strata(['info']);
  if (first.code !== 0) throw new Error(`soak store does not open: ${describe(first)}`);
  const deadline = Date.now() + opts.seconds * 1000;
  const worker = async (w: number) => {
    const r = rng(opts.seed * 1000 + w);
    while (Date.now() < deadline) {
      for (const args of nextOp(r, opts.registry)) {
        const run = await strata(args);
        result.ops++;
        if (run.code === 0) result.ok++;
        else if (isDomainRefusal(run)) result.refusals++;
        else {
          result.errors.push({ args, said: describe(run) });
          log(`soak error: strata ${args.join(' ')}: ${describe(run)}`);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: opts.workers }, (_, w) => worker(w)));
  const check = await strata(['check']);
  if (check.code !== 0) result.problems.push({ kind: 'check', detail: `${describe(check)} ${check.stdout.trim().split('\n').slice(0, 3).join(' | ')}` });
  // A container mounted by one worker can be removed by another before its umount: prune
  // removes every container, so what stays mounted after that is a leak too.
  result.problems.push(...storeProblems(root, rig.driver, rig.dataset(root)));
  unmountUnder(root);
  rig.destroyRoot(root);
  return result;
}
