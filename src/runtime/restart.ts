// `--restart no|on-failure[:N]|always|unless-stopped`: the policy as docker parses and checks it
// (its messages), and the monitor's decision after each exit: run the process again or not, and
// how long to wait first (docker's backoff: 100 ms doubling, back to 100 ms after a run of 10 s
// or more). With no daemon, `always` and `unless-stopped` act alike: nothing restarts containers
// at boot; a container stopped or killed by a user is never restarted.
import { InvalidInputError } from '../errors.js';

export interface RestartPolicy {
  Name: '' | 'no' | 'always' | 'unless-stopped' | 'on-failure';
  MaximumRetryCount: number;
}

export const NO_RESTART: RestartPolicy = { Name: '', MaximumRetryCount: 0 };

/** The flag's text, with docker's CLI and daemon errors. */
export function parseRestartPolicy(text: string): RestartPolicy {
  if (text === '') return { ...NO_RESTART };
  const parts = text.split(':');
  if (parts.length > 2) throw new InvalidInputError('invalid restart policy format');
  let count = 0;
  if (parts.length === 2) {
    if (!/^[+-]?\d+$/.test(parts[1]!)) throw new InvalidInputError('maximum retry count must be an integer');
    count = Number(parts[1]);
  }
  const name = parts[0]!;
  switch (name) {
    case 'no':
    case 'always':
    case 'unless-stopped':
      if (count !== 0) throw new InvalidInputError(`maximum retry count cannot be used with restart policy '${name}'`);
      return { Name: name, MaximumRetryCount: 0 };
    case 'on-failure':
      if (count < 0) throw new InvalidInputError('maximum retry count cannot be negative');
      return { Name: name, MaximumRetryCount: count };
    default:
      throw new InvalidInputError(`invalid restart policy '${name}'`);
  }
}

export function restarts(p: RestartPolicy): boolean {
  return p.Name !== '' && p.Name !== 'no';
}

/** After an exit: whether the process runs again, given how often it already did. */
export function shouldRestart(p: RestartPolicy, exitCode: number, restartCount: number, stoppedByUser: boolean): boolean {
  if (stoppedByUser) return false;
  switch (p.Name) {
    case 'always':
    case 'unless-stopped':
      return true;
    case 'on-failure':
      return exitCode !== 0 && (p.MaximumRetryCount === 0 || restartCount < p.MaximumRetryCount);
    default:
      return false;
  }
}

const FIRST_DELAY_MS = 100;
const MAX_DELAY_MS = 60_000;
/** A run at least this long resets the backoff. */
const RESET_AFTER_MS = 10_000;

/** The wait before the next start: docker's doubling backoff. */
export function nextDelay(previousMs: number, ranMs: number): number {
  if (ranMs >= RESET_AFTER_MS || previousMs === 0) return FIRST_DELAY_MS;
  return Math.min(previousMs * 2, MAX_DELAY_MS);
}
