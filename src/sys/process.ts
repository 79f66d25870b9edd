// Process identities that survive pid reuse ("pid:starttime"), so that whoever finds something
// a process left behind can tell a crashed maker (clean up) from a live one (leave it alone).
// The store names the writers of its rows with them; drivers name their temp dirs with them.
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { StrataError } from '../errors.js';

function startTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // Field 22 (starttime) counted after the ")" that ends the command name.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return rest[19] ?? null;
  } catch {
    return null;
  }
}

let self: string | null = null;

/** "pid:starttime" of this process. */
export function processIdentity(): string {
  if (self === null) self = `${process.pid}:${startTime(process.pid) ?? '0'}`;
  return self;
}

/** True while the process named by an identity from processIdentity() runs. */
export function processAlive(identity: string | null): boolean {
  if (!identity) return false;
  const [pidText, start] = identity.split(':');
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0) return false;
  return startTime(pid) === start;
}

/** The identity of another process by its pid, or null when it is gone. */
export function identityOf(pid: number): string | null {
  const start = startTime(pid);
  return start === null ? null : `${pid}:${start}`;
}

/**
 * The exit code of a child that runs with our stdio (a shell's: 128 + the signal that ended it);
 * rejects with `what` when the program cannot start.
 */
export function childExit(child: ChildProcess, what: string): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    child.once('error', (err) => reject(new StrataError(`cannot run ${what}: ${err.message}`, 127)));
    child.once('exit', (code, signal) => resolve(code ?? 128 + (signal ? constants.signals[signal] : 0)));
  });
}
