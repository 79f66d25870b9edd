// `exec` at the store level: checks that the container runs, resolves the user inside its root,
// writes the process JSON beside runc's state, and relays the process's streams (and with -t
// the terminal: raw keys in, window size, resize) until it exits, with Docker's exit codes.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { ConflictError } from '../errors.js';
import type { ExitStatus } from '../runtime/attach.js';
import { containerProcess, execProcess, keepTerminal, spawnExec, spawnExecInPty } from '../runtime/exec.js';
import { Runc, StartError, startErrorCode } from '../runtime/runc.js';
import { DEFAULT_DETACH_KEYS, DetachWatcher, onResize, parseDetachKeys, rawMode, windowSize } from '../runtime/terminal.js';
import { resolveUser } from '../runtime/user.js';
import type { ContainerRecord } from './containers.js';
import { dockerStatus, restartingError, type Runner } from './run.js';

/** `exec`'s flags. */
export interface ExecOptions {
  /** The command and its arguments. */
  cmd: string[];
  /** `-d`: start it and return. */
  detach?: boolean;
  /** `-i`: feed it our stdin. */
  interactive?: boolean;
  /** `-t`: a terminal. */
  tty?: boolean;
  /** `-e K=V`, expanded. */
  env?: string[];
  /** `-u name|uid[:group|gid]`; the container's user when absent. */
  user?: string;
  /** `-w` */
  workdir?: string;
}

export interface ExecStreams {
  stdin?: Readable;
  stdout: Writable;
  stderr: Writable;
  /** `--detach-keys` with -it; ctrl-p,ctrl-q by default. */
  detachKeys?: string;
}

/** Run a process in the running container `c`; its exit status, or null with -d. */
export async function execIn(runner: Runner, c: ContainerRecord, o: ExecOptions, io?: ExecStreams): Promise<ExitStatus | null> {
  const st = dockerStatus(runner.state(c.id));
  if (st === 'restarting') throw restartingError(c.id);
  if (st === 'paused') throw new ConflictError(`Container ${c.id} is paused, unpause the container before exec`);
  if (st !== 'running') throw new ConflictError(`container ${c.id} is not running`);
  const bundle = join(runner.containerDir(c.id), 'config.json');
  const rootfs = (JSON.parse(readFileSync(bundle, 'utf8')) as { root: { path: string } }).root.path;
  let user;
  try {
    user = await resolveUser(rootfs, o.user ?? c.config.process?.user ?? '');
  } catch (err) {
    // Docker learns this from the runtime, hence the runtime's exit code for a process that cannot start.
    throw new StartError(`OCI runtime exec failed: ${(err as Error).message}`, 126);
  }
  const tty = o.tty ?? false;
  const proc = execProcess(containerProcess(bundle), { args: o.cmd, env: o.env ?? [], user, cwd: o.workdir, tty });
  const base = join(runner.execRoot, `exec-${c.id.slice(0, 12)}-${randomBytes(6).toString('hex')}`);
  const files = { process: `${base}.json`, log: `${base}.log`, pid: `${base}.pid` };
  writeFileSync(files.process, JSON.stringify(proc));
  try {
    const runc = runner.runc(c);
    const code = o.detach || !io ? await detached(runc, c.id, files) : tty ? await withTerminal(runc, c.id, files, io, o.interactive ?? false) : await withPipes(runc, c.id, files, io, o.interactive ?? false);
    if (code === DETACHED) return { exitCode: 0, detached: true };
    // runc's own failure (the command is not there, cannot run, the container went away) is
    // told apart from the process's exit code by its log and the pid file it never wrote.
    const err = Runc.lastError(files.log);
    if (err && (code !== 0 || !existsSync(files.pid))) {
      if (!runner.isRunning(c.id)) throw new ConflictError(`container ${c.id} is not running`);
      throw new StartError(`OCI runtime exec failed: ${err.replace(/^runc exec failed: /, '')}`, startErrorCode(err));
    }
    return o.detach || !io ? null : { exitCode: code };
  } finally {
    for (const f of Object.values(files)) rmSync(f, { force: true });
  }
}

type Files = { process: string; log: string; pid: string };

function detached(runc: Runc, id: string, f: Files): Promise<number> {
  const child = spawnExec(runc, id, f.process, f.log, f.pid, { detach: true, stdin: false });
  return new Promise((r) => child.on('exit', (code) => r(code ?? 255)));
}

function withPipes(runc: Runc, id: string, f: Files, io: ExecStreams, interactive: boolean): Promise<number> {
  const child = spawnExec(runc, id, f.process, f.log, f.pid, { detach: false, stdin: interactive && !!io.stdin });
  child.stdout!.on('data', (d: Buffer) => io.stdout.write(d));
  // Until the pid file exists, stderr may be runc's own complaint (reported once, as an error).
  const early: Buffer[] = [];
  child.stderr!.on('data', (d: Buffer) => {
    if (!existsSync(f.pid)) early.push(d);
    else {
      for (const e of early.splice(0)) io.stderr.write(e);
      io.stderr.write(d);
    }
  });
  const onData = (d: Buffer) => child.stdin!.write(d);
  const onEnd = () => child.stdin!.end();
  if (child.stdin && io.stdin) {
    child.stdin.on('error', () => undefined);
    io.stdin.on('data', onData).on('end', onEnd);
  }
  const out = new Promise<void>((r) => child.stdout!.on('end', r));
  const errOut = new Promise<void>((r) => child.stderr!.on('end', r));
  return new Promise((resolve) =>
    child.on('exit', (code, signal) => {
      io.stdin?.off('data', onData).off('end', onEnd);
      io.stdin?.pause();
      void Promise.all([out, errOut]).then(() => {
        if (!Runc.lastError(f.log)) for (const e of early) io.stderr.write(e);
        resolve(code ?? 128 + signalNumber(signal));
      });
    }),
  );
}

/** What withTerminal returns when the user typed the detach keys: the process runs on. */
const DETACHED = -1;

async function withTerminal(runc: Runc, id: string, f: Files, io: ExecStreams, interactive: boolean): Promise<number> {
  const p = await spawnExecInPty(runc, id, f.process, f.log, f.pid, windowSize(io.stdout));
  const onOutput = p.onData((d: string | Buffer) => io.stdout.write(d));
  const unResize = onResize(io.stdout, (s) => p.resize(s.cols, s.rows));
  const input = interactive ? io.stdin : undefined;
  const restore = input ? rawMode(input) : () => undefined;
  const watcher = new DetachWatcher(parseDetachKeys(io.detachKeys ?? DEFAULT_DETACH_KEYS));
  return new Promise((resolve) => {
    const done = (code: number) => {
      unResize();
      restore();
      input?.off('data', onData);
      input?.pause();
      resolve(code);
    };
    const onData = (d: Buffer) => {
      const r = watcher.feed(d);
      if (r.pass.length) p.write(r.pass as unknown as string);
      if (!r.detach) return;
      onOutput.dispose();
      keepTerminal(p);
      done(DETACHED);
    };
    input?.on('data', onData);
    p.onExit(({ exitCode }) => done(exitCode));
  });
}

function signalNumber(signal: NodeJS.Signals | null): number {
  return signal ? (osConstants.signals[signal] ?? 0) : 0;
}
