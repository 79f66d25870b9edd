// `exec`: one more process in a running container, through `runc exec --process`. The process
// is built from the container's own (its config.json in the bundle): the same capabilities and
// environment, with Docker's overrides for -e, -u, -w and -t. Without a terminal runc's stdio
// are ours (pipes); with one, runc runs on a pty we own (node-pty) and relays it to the pty it
// makes inside the container, so window-size changes reach the process as they do on a console.
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { IPty } from 'node-pty';
import { InvalidInputError, StrataError } from '../errors.js';
import { toolEnv } from '../sys/run.js';
import type { Runc } from './runc.js';
import { mergeEnv } from './spec.js';
import type { ExecUser } from './user.js';

export interface ExecProcessInput {
  args: string[];
  /** `-e`, already expanded; replaces the container's values of the same names. */
  env: string[];
  user: ExecUser;
  /** `-w`; the container's working directory when absent. */
  cwd?: string;
  tty: boolean;
}

/** The container's OCI process as its bundle has it. */
export function containerProcess(configJson: string): Record<string, unknown> {
  const spec = JSON.parse(readFileSync(configJson, 'utf8')) as { process?: Record<string, unknown> };
  if (!spec.process) throw new InvalidInputError(`${configJson} has no process`);
  return spec.process;
}

/** The exec'd process: the container's, with the command, user, cwd and terminal of the exec. */
export function execProcess(base: Record<string, unknown>, input: ExecProcessInput): Record<string, unknown> {
  if (input.args.length === 0) throw new InvalidInputError('No command specified');
  if (input.cwd !== undefined && !input.cwd.startsWith('/')) throw new InvalidInputError(`the working directory '${input.cwd}' is invalid, it needs to be an absolute path`);
  const env = mergeEnv(base.env as string[], [...(input.tty ? ['TERM=xterm'] : []), ...input.env]);
  const u = input.user;
  return {
    ...base,
    terminal: input.tty,
    args: input.args,
    env,
    cwd: input.cwd ?? base.cwd,
    user: { uid: u.uid, gid: u.gid, ...(u.additionalGids.length ? { additionalGids: u.additionalGids } : {}) },
  };
}

function execArgs(runc: Runc, id: string, processFile: string, log: string, detach: boolean, pidFile: string): string[] {
  return ['--root', runc.stateDir, '--log', log, '--log-format', 'json', 'exec', '--process', processFile, '--pid-file', pidFile, ...(detach ? ['--detach'] : []), id];
}

/**
 * `runc exec` with our own stdio (no terminal), or with -d on /dev/null as Docker's detached
 * execs are (a detached process on pipes of ours does not outlive them).
 */
export function spawnExec(runc: Runc, id: string, processFile: string, log: string, pidFile: string, o: { detach: boolean; stdin: boolean }): ChildProcess {
  const stdio: StdioOptions = o.detach ? 'ignore' : [o.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'];
  return spawn(runc.bin, execArgs(runc, id, processFile, log, o.detach, pidFile), { env: toolEnv(), stdio });
}

/** `runc exec` on a pty of ours, `cols`×`rows` to begin with. */
export async function spawnExecInPty(runc: Runc, id: string, processFile: string, log: string, pidFile: string, size: { cols: number; rows: number }): Promise<IPty> {
  // Loaded on first use: most commands never need a pty.
  const pty = await import('node-pty');
  return pty.spawn(runc.bin, execArgs(runc, id, processFile, log, false, pidFile), {
    cols: size.cols,
    rows: size.rows,
    env: toolEnv() as Record<string, string>,
    encoding: null,
  });
}

/**
 * After a detach from `exec -it`: the process runs on, so its terminal must outlive this
 * process. A detached `cat` takes over the pty master (node-pty's fd, handed down as its stdin)
 * and drains what the process still writes, until the process ends and the pty with it.
 */
export function keepTerminal(p: IPty): void {
  // node-pty's UnixTerminal has the master's fd as `fd` (not in its IPty type).
  const fd = (p as IPty & { fd?: number }).fd;
  if (typeof fd !== 'number') throw new StrataError('cannot keep the terminal of a detached exec: node-pty gave no pty fd');
  spawn('cat', [], { stdio: [fd, 'ignore', 'ignore'], detached: true }).unref();
}
