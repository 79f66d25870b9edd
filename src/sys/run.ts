// The one way strata runs an external program (mkfs, btrfs, zfs, dmsetup, fuse-overlayfs,
// credential helpers, and the tests' oracles): always in the C locale, because callers match
// the tools' English messages; with stderr kept for the error; and with a time limit, so a
// hung tool (a FUSE daemon, a stuck zfs-fuse) fails the call instead of the whole process.
import { spawn, spawnSync } from 'node:child_process';

export interface RunOptions {
  /** Working directory of the program (fuse-overlayfs resolves relative lowerdirs against it). */
  cwd?: string;
  /** Written to the program's stdin; without it stdin is /dev/null. */
  input?: string;
  /** Exit codes that count as success (e2fsck says 1 for "fixed"). */
  okCodes?: number[];
  /** Kill the program and fail after this long. */
  timeoutMs?: number;
  /**
   * Do not connect stdout: a program that leaves a daemon behind (fuse-overlayfs) would keep
   * the pipe open, and the call would wait for the daemon to exit.
   */
  ignoreStdout?: boolean;
  /** Put before the message of a failure ("aufs", "devicemapper"). */
  who?: string;
  /** Lines of stderr that are noise, left out of the error message. */
  noise?: RegExp;
}

/** Ten minutes: mkfs of a large image or a zfs destroy may be slow, but never this slow. */
const DEFAULT_TIMEOUT_MS = 10 * 60 * 1000;
const MAX_OUTPUT = 64 * 1024 * 1024;
const MAX_COMMAND_IN_MESSAGE = 300;

export class ToolError extends Error {
  constructor(
    message: string,
    readonly command: string,
    readonly stderr: string,
    readonly exitCode: number | null,
  ) {
    super(message);
    this.name = 'ToolError';
  }
}

/** The environment every program runs with: ours, in the C locale. */
export function toolEnv(): NodeJS.ProcessEnv {
  return { ...process.env, LC_ALL: 'C', LANG: 'C' };
}

/** Run cmd with args and return its standard output; a failure rejects with a ToolError. */
export function runTool(cmd: string, args: string[], opts: RunOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: toolEnv(),
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', opts.ignoreStdout ? 'ignore' : 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout?.setEncoding('utf8').on('data', (s: string) => {
      if (out.length < MAX_OUTPUT) out += s;
    });
    child.stderr?.setEncoding('utf8').on('data', (s: string) => {
      if (err.length < MAX_OUTPUT) err += s;
    });
    let timedOut = false;
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    let failed: Error | null = null;
    child.on('error', (e: NodeJS.ErrnoException) => {
      failed = e;
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (failed !== null) {
        reject(spawnError(cmd, args, failed as NodeJS.ErrnoException, opts));
        return;
      }
      if (!timedOut && code !== null && (opts.okCodes ?? [0]).includes(code)) {
        resolve(out);
        return;
      }
      const why = timedOut ? `timed out after ${timeoutMs / 1000}s` : signal ?? `exit ${code}`;
      reject(failure(cmd, args, why, err, out, code, opts));
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** runTool for the places that cannot wait (test set-up, process exit): the same errors. */
export function runToolSync(cmd: string, args: string[], opts: RunOptions = {}): string {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const r = spawnSync(cmd, args, {
    cwd: opts.cwd,
    env: toolEnv(),
    input: opts.input,
    stdio: [opts.input === undefined ? 'ignore' : 'pipe', opts.ignoreStdout ? 'ignore' : 'pipe', 'pipe'],
    encoding: 'utf8',
    maxBuffer: MAX_OUTPUT,
    timeout: timeoutMs,
    killSignal: 'SIGKILL',
  });
  const e = r.error as NodeJS.ErrnoException | undefined;
  if (e && e.code !== 'ETIMEDOUT') throw spawnError(cmd, args, e, opts);
  if (!e && r.status !== null && (opts.okCodes ?? [0]).includes(r.status)) return r.stdout ?? '';
  const why = e ? `timed out after ${timeoutMs / 1000}s` : r.signal ?? `exit ${r.status}`;
  throw failure(cmd, args, why, r.stderr ?? '', r.stdout ?? '', r.status, opts);
}

/** True when cmd can be run at all (it exists and `args` exits 0). */
export async function toolWorks(cmd: string, args: string[]): Promise<boolean> {
  try {
    await runTool(cmd, args);
    return true;
  } catch {
    return false;
  }
}

function commandLine(cmd: string, args: string[]): string {
  const line = [cmd, ...args].join(' ');
  return line.length <= MAX_COMMAND_IN_MESSAGE ? line : `${line.slice(0, MAX_COMMAND_IN_MESSAGE)}…`;
}

function spawnError(cmd: string, args: string[], e: NodeJS.ErrnoException, opts: RunOptions): ToolError {
  const prefix = opts.who ? `${opts.who}: ` : '';
  const command = commandLine(cmd, args);
  if (e.code === 'ENOENT') return new ToolError(`${prefix}${cmd}: command not found (is it installed and on PATH?)`, command, '', null);
  return new ToolError(`${prefix}${cmd}: ${e.message}`, command, '', null);
}

/** One line: who, the command, how it ended, and what it said (stderr, else stdout). */
function failure(cmd: string, args: string[], why: string, stderr: string, stdout: string, code: number | null, opts: RunOptions): ToolError {
  const prefix = opts.who ? `${opts.who}: ` : '';
  const command = commandLine(cmd, args);
  const lines = (text: string) =>
    text
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !(opts.noise?.test(l) ?? false));
  const said = lines(stderr).join('; ') || lines(stdout).slice(0, 3).join('; ') || 'no message';
  return new ToolError(`${prefix}${command} failed (${why}): ${said}`, command, stderr, code);
}
