// Running the strata CLI from the torture harness: asynchronously (so a run can be SIGKILLed at
// a chosen moment, or let the STRATA_FAULT hook kill it), timed, and never with a fault spec
// inherited from the harness's own environment.
import { spawn } from 'node:child_process';
import { FAULT_ENV } from '../../src/sys/fault.js';
import { strataBin } from '../helpers/env.js';

export interface Run {
  args: string[];
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface RunOptions {
  /** STRATA_FAULT for this run only. */
  fault?: string;
  /** SIGKILL the process this many ms after it was started. */
  killAfterMs?: number;
}

export type Strata = (args: string[], opts?: RunOptions) => Promise<Run>;

export function strataOn(root: string, driver: string): Strata {
  return (args, opts = {}) =>
    new Promise((resolve, reject) => {
      const env = { ...process.env };
      delete env[FAULT_ENV];
      if (opts.fault) env[FAULT_ENV] = opts.fault;
      const started = Date.now();
      const child = spawn(process.execPath, [strataBin, '--root', root, '--driver', driver, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (d: Buffer) => out.push(d));
      child.stderr.on('data', (d: Buffer) => err.push(d));
      const timer = opts.killAfterMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), opts.killAfterMs);
      child.on('error', reject);
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        resolve({ args, code, signal, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), ms: Date.now() - started });
      });
    });
}

/** Exit 0 or throw with the command and its one-line error. */
export async function ok(strata: Strata, args: string[]): Promise<string> {
  const r = await strata(args);
  if (r.code !== 0) throw new Error(`strata ${args.join(' ')}: ${describe(r)}`);
  return r.stdout;
}

export function describe(r: Run): string {
  if (r.signal) return `killed by ${r.signal}`;
  return `exit ${r.code}: ${r.stderr.trim().split('\n').slice(0, 3).join(' | ')}`;
}
