// The OCI runtime, driven through its command line as Docker's shim and Podman's conmon do:
// `run` in the foreground under our monitor (so the monitor is runc's parent and learns the exit
// code without being a subreaper), and `kill`/`state`/`delete`/`pause`/`resume` from any process.
// runc keeps its state under a directory of ours, so other runc users on the host never see it.
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runTool, toolEnv } from '../sys/run.js';
import { StrataError } from '../errors.js';

export interface RuntimeState {
  status: 'creating' | 'created' | 'running' | 'paused' | 'stopped';
  pid: number;
}

/** Why a container's process could not be started, and Docker's exit code for it. */
export class StartError extends StrataError {
  constructor(message: string, exitCode: number) {
    super(message, exitCode, 'invalid');
    this.name = 'StartError';
  }
}

/**
 * Docker's exit codes for a process that never started: 127 when the command is not there, 126
 * when it cannot be executed, 125 for anything else the runtime refused.
 */
export function startErrorCode(message: string): number {
  if (/executable file not found|no such file or directory/.test(message)) return 127;
  if (/permission denied|exec format error|is a directory/.test(message)) return 126;
  return 125;
}

export class Runc {
  constructor(
    /** The runtime binary (`--runtime`). */
    readonly bin: string,
    /** runc's --root: its own state for our containers. */
    readonly stateDir: string,
  ) {}

  private global(log?: string): string[] {
    return ['--root', this.stateDir, ...(log ? ['--log', log, '--log-format', 'json'] : [])];
  }

  /** `runc run` in the foreground: the returned child exits with the container's exit code. */
  spawnRun(id: string, bundle: string, pidFile: string, log: string, stdio: StdioOptions): ChildProcess {
    return spawn(this.bin, [...this.global(log), 'run', '--bundle', bundle, '--pid-file', pidFile, id], {
      cwd: bundle,
      env: toolEnv(),
      stdio,
    });
  }

  async kill(id: string, signal: string, all = false): Promise<void> {
    await runTool(this.bin, [...this.global(), 'kill', ...(all ? ['--all'] : []), id, signal], { who: 'runtime', timeoutMs: 30_000 });
  }

  async state(id: string): Promise<RuntimeState | null> {
    try {
      const out = await runTool(this.bin, [...this.global(), 'state', id], { who: 'runtime', timeoutMs: 30_000 });
      const s = JSON.parse(out) as { status: RuntimeState['status']; pid: number };
      return { status: s.status, pid: s.pid };
    } catch (err) {
      if (/does not exist|not exist/.test((err as Error).message)) return null;
      throw err;
    }
  }

  /**
   * Forget a container runc knows (killing what is left of it). runc keeps a container's state in
   * a directory of its own under its root from before it makes the cgroup until it deletes the
   * container, and `runc run` deletes it on its way out: without that directory there is nothing
   * to delete, and starting runc only to hear so costs a process start at every run and exit.
   */
  async delete(id: string): Promise<void> {
    if (!existsSync(join(this.stateDir, id))) return;
    await runTool(this.bin, [...this.global(), 'delete', '--force', id], { who: 'runtime', timeoutMs: 30_000, okCodes: [0, 1] });
  }

  async pause(id: string): Promise<void> {
    await runTool(this.bin, [...this.global(), 'pause', id], { who: 'runtime', timeoutMs: 30_000 });
  }

  async resume(id: string): Promise<void> {
    await runTool(this.bin, [...this.global(), 'resume', id], { who: 'runtime', timeoutMs: 30_000 });
  }

  /** The last error runc wrote to its JSON log, if any. */
  static lastError(log: string): string | null {
    let text: string;
    try {
      text = readFileSync(log, 'utf8');
    } catch {
      return null;
    }
    let last: string | null = null;
    for (const line of text.split('\n')) {
      if (!line) continue;
      try {
        const e = JSON.parse(line) as { level?: string; msg?: string };
        if ((e.level === 'error' || e.level === 'fatal') && e.msg) last = e.msg;
      } catch {
        // a torn last line of a killed runc: nothing to learn from it
      }
    }
    return last;
  }
}
