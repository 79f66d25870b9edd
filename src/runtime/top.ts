// `top`: the processes of a container the way Docker lists them: the runtime names the pids
// (`runc ps`), and the host's own `ps` (with the user's options, `-ef` by default) describes them;
// its lines are kept when their PID column is one of the container's.
import { InvalidInputError } from '../errors.js';
import { runTool } from '../sys/run.js';
import type { Runc } from './runc.js';

export interface TopResult {
  titles: string[];
  processes: string[][];
}

export async function containerPids(runc: Runc, id: string): Promise<number[]> {
  const out = await runTool(runc.bin, ['--root', runc.stateDir, 'ps', '--format', 'json', id], { who: 'runtime', timeoutMs: 30_000 });
  return (JSON.parse(out) as number[] | null) ?? [];
}

/** Keep the lines of `ps` output whose PID column is in `pids`; the last column keeps its spaces. */
export function filterPs(output: string, pids: number[]): TopResult {
  const lines = output.split('\n').filter((l) => l.trim() !== '');
  if (lines.length === 0) throw new InvalidInputError("Couldn't find PID field in ps output");
  const titles = lines[0]!.trim().split(/\s+/);
  const pidAt = titles.indexOf('PID');
  if (pidAt < 0) throw new InvalidInputError("Couldn't find PID field in ps output");
  const want = new Set(pids);
  const processes: string[][] = [];
  for (const line of lines.slice(1)) {
    const fields = line.trim().split(/\s+/);
    const pid = Number(fields[pidAt]);
    if (!Number.isInteger(pid)) throw new InvalidInputError(`Unexpected pid '${fields[pidAt]}'`);
    if (!want.has(pid)) continue;
    // The last title (CMD, COMMAND, ARGS) takes the rest of the line, spaces and all.
    let rest = line.trimStart();
    for (let i = 0; i < titles.length - 1; i++) rest = rest.replace(/^\S+\s+/, '');
    processes.push([...fields.slice(0, titles.length - 1), rest]);
  }
  return { titles, processes };
}

export async function top(runc: Runc, id: string, psArgs: string[]): Promise<TopResult> {
  const pids = await containerPids(runc, id);
  let out: string;
  try {
    out = await runTool('ps', psArgs.length ? psArgs : ['-ef'], { who: 'ps', timeoutMs: 30_000 });
  } catch (err) {
    throw new InvalidInputError(`Error running ps: ${(err as Error).message.split('\n')[0]}`);
  }
  return filterPs(out, pids);
}
