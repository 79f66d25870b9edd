// Who is writing a half-made layer: a process identity that survives pid reuse, so that a
// store opened later can tell a crashed writer (clean up) from a live one (wait).
import { processAlive, processIdentity } from '../sys/process.js';

/** "pid:starttime" of this process. */
export function ownerId(): string {
  return processIdentity();
}

export function ownerAlive(owner: string | null): boolean {
  return processAlive(owner);
}

