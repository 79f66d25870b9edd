// Who is writing a half-made layer: a process identity that survives pid reuse, so that a
// store opened later can tell a crashed writer (clean up) from a live one (wait).
import { readFileSync } from 'node:fs';

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
export function ownerId(): string {
  if (self === null) self = `${process.pid}:${startTime(process.pid) ?? '0'}`;
  return self;
}

export function ownerAlive(owner: string | null): boolean {
  if (!owner) return false;
  const [pidText, start] = owner.split(':');
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0) return false;
  return startTime(pid) === start;
}

/** "pid:starttime" of another process, or null when it is gone. */
export function processIdentity(pid: number): string | null {
  const start = startTime(pid);
  return start === null ? null : `${pid}:${start}`;
}
