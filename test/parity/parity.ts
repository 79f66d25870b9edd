// The parity suite's common part: one private dockerd (overlay2, so layer sizes are counted as
// strata's overlay2 counts them) and one strata store on overlay2 per test file, fed the same
// images; `compare` runs the same command through both and checks the parts that must be
// equal: exit code, stdout and stderr after `normalize`.
//
// The intended differences, each with its reason, are all here, in `normalize`:
// - the program's name ("docker" / "strata") in messages and usage lines;
// - an error's prefix: docker's client says "Error response from daemon: " for what its daemon
//   refused, "error during connect: Post "<url>": " for what failed while it sent a request, and
//   nothing or "Error: " for its own checks; strata has no daemon and says "Error: ";
// - IDs that cannot be equal (containers, and images made by commit or import, whose configs
//   hold a time): the test maps each engine's own IDs to one placeholder;
// - "N seconds ago" and the like, which move while the commands run;
// - the usage text after a wrong argument count (commander's `[options] <image...>` against
//   cobra's `[OPTIONS] IMAGE [IMAGE...]`): only the first two lines are compared.
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { strataIn, type CliResult } from '../helpers/cli.js';
import { startDockerd, type Dockerd } from '../helpers/dockerd.js';
import { scratch } from '../helpers/env.js';
import { unmountAllUnder } from '../helpers/mounts.js';
import { fileCleanup, overlay2Available, type Cleanup } from '../helpers/registry.js';

export interface Parity {
  docker: Dockerd;
  strata: ReturnType<typeof strataIn>;
  /** Map an engine's own ID (a container's, a committed image's) to a placeholder in both outputs. */
  alias(dockerId: string, strataId: string, name: string): void;
  /** Run both; exit codes and normalized stdout and stderr must be equal. Returns docker's result. */
  compare(args: string[], opts?: { input?: string; sortLines?: boolean; firstLines?: number; exact?: boolean }): CliResult;
  /** Run in both, insisting on success; returns [docker's stdout, strata's stdout]. */
  both(args: string[]): [string, string];
}

const SINCE = /\b(Less than a second|About a minute|About an hour|\d+ (seconds?|minutes?|hours?)) ago\b/g;

export function normalize(text: string, program: 'docker' | 'strata', ids: [string, string][], exact = false): string {
  let t = text;
  for (const [id, name] of ids) {
    t = t.split(id).join(`<${name}>`);
    t = t.split(id.slice(0, 12)).join(`<${name}>`);
  }
  return t
    .replace(new RegExp(`\\b${program}\\b`, 'g'), 'PROGRAM')
    .replace(/^(Error response from daemon: |error during connect: [A-Za-z]+ "[^"]*": |Error: )/gm, '')
    .replace(SINCE, '<recently>')
    .split('\n')
    // Column widths follow the cells' lengths, which placeholders change; `exact` keeps them.
    .map((l) => (exact ? l : l.replace(/ {2,}/g, '   ').trimEnd()))
    .join('\n');
}

/**
 * Start dockerd and a strata store for this file (stopped and removed through `cleanup`: a
 * fileCleanup's add, run by a top-level `after`); resolves to the pair, or to the reason they
 * cannot run here, which the file's tests skip with, loudly.
 */
export async function startParity(cleanup: Cleanup): Promise<Parity | { skip: string }> {
  if (!(await overlay2Available())) return { skip: 'overlay2 does not mount here' };
  const docker = await startDockerd(cleanup, { driver: 'overlay2' });
  if ('skip' in docker) return docker;
  const dir = scratch(null, 'strata-parity-');
  cleanup(() => void unmountAllUnder(dir));
  const strata = strataIn(dir, 'overlay2');
  const ids: { docker: [string, string][]; strata: [string, string][] } = { docker: [], strata: [] };
  const compare: Parity['compare'] = (args, opts = {}) => {
    const d = docker.run(args, opts.input ?? '');
    const s = strata.run(args, opts.input ?? '');
    const view = (r: CliResult, p: 'docker' | 'strata') => {
      const shape = (x: string) => {
        let lines = normalize(x, p, ids[p], opts.exact).split('\n');
        if (opts.firstLines) lines = lines.slice(0, opts.firstLines);
        if (opts.sortLines && lines.length > 2) {
          // A table's header stays first; --format and -q output has none.
          const head = /^[A-Z][A-Z ]*$/.test(lines[0]) ? 1 : 0;
          const end = lines[lines.length - 1] === '' ? [''] : [];
          lines = [...lines.slice(0, head), ...lines.slice(head, lines.length - end.length).sort(), ...end];
        }
        return lines.join('\n');
      };
      return { code: r.code, stdout: shape(r.stdout), stderr: shape(r.stderr) };
    };
    assert.deepEqual(view(s, 'strata'), view(d, 'docker'), `${args.join(' ')}`);
    return d;
  };
  return {
    docker,
    strata,
    alias: (d, s, name) => {
      ids.docker.push([d.replace(/^sha256:/, ''), name]);
      ids.strata.push([s.replace(/^sha256:/, ''), name]);
    },
    compare,
    both: (args) => [docker.ok(args), strata.ok(args)],
  };
}

/**
 * A test file's pair: started in a `before` (then `setup` feeds both the same things), stopped
 * in an `after`. The function returned hands it to a test, or skips the test where dockerd or
 * overlay2 cannot run (said loudly once per file).
 */
export function parityForFile(what: string, setup: (x: Parity) => void): (t: { skip(msg: string): void }) => Parity | null {
  let p: Parity | { skip: string } = { skip: 'not started' };
  const files = fileCleanup();
  after(files.run);
  before(async () => {
    p = await startParity(files.add);
    if ('skip' in p) console.warn(`SKIPPED: Docker parity (${what}): ${p.skip}`);
    else setup(p);
  });
  return (t) => {
    if (!('skip' in p)) return p;
    t.skip(p.skip);
    return null;
  };
}
