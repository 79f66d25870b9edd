// What a container is doing (created, running, paused, exited), beside its record: the monitor
// of a running container writes it, every command reads it. A state that names a process checks
// that process by identity (pid + start time), so a monitor or container that died without
// saying so (SIGKILL, a reboot) reads as exited, never as running forever.
import { type DB, writeTx } from './db.js';
import { ownerAlive } from './owner.js';
import type { PortBinding } from '../runtime/network.js';

export type RunStatus = 'created' | 'running' | 'paused' | 'exited';

export interface RunState {
  status: RunStatus;
  /** The container's first process ("pid:starttime"), while running. */
  process: string | null;
  /** The monitor that waits on it ("pid:starttime"). */
  monitor: string | null;
  exitCode: number;
  /** Why the last start failed (Docker's State.Error). */
  error: string;
  startedAt: string;
  finishedAt: string;
  /** The published ports as bound while it runs (`ps` PORTS). */
  ports: PortBinding[];
}

/** Docker's zero time, for a container that never started or never finished. */
export const ZERO_TIME = '0001-01-01T00:00:00Z';

interface Row {
  id: string;
  status: RunStatus;
  process: string | null;
  monitor: string | null;
  exit_code: number;
  error: string;
  started_at: string;
  finished_at: string;
  ports: string;
}

export const RUN_STATE_SCHEMA = `
CREATE TABLE IF NOT EXISTS run_state (
  id            TEXT PRIMARY KEY REFERENCES containers(id) ON DELETE CASCADE,
  status        TEXT NOT NULL CHECK (status IN ('created', 'running', 'paused', 'exited')),
  process       TEXT,
  monitor       TEXT,
  exit_code     INTEGER NOT NULL DEFAULT 0,
  error         TEXT NOT NULL DEFAULT '',
  started_at    TEXT NOT NULL DEFAULT '${ZERO_TIME}',
  finished_at   TEXT NOT NULL DEFAULT '${ZERO_TIME}',
  ports         TEXT NOT NULL DEFAULT '[]'
);
`;

const FRESH: RunState = { status: 'created', process: null, monitor: null, exitCode: 0, error: '', startedAt: ZERO_TIME, finishedAt: ZERO_TIME, ports: [] };

function fromRow(r: Row): RunState {
  return {
    status: r.status,
    process: r.process,
    monitor: r.monitor,
    exitCode: r.exit_code,
    error: r.error,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    ports: JSON.parse(r.ports) as PortBinding[],
  };
}

/**
 * The state as it is now: a running or paused container whose process and monitor are both
 * gone ended without anyone recording it; Docker reports such a container as exited with 255.
 */
function live(s: RunState): RunState {
  if ((s.status === 'running' || s.status === 'paused') && !ownerAlive(s.process) && !ownerAlive(s.monitor)) {
    return { ...s, status: 'exited', exitCode: 255, process: null, ports: [], error: s.error || 'the container ended while nothing was watching it' };
  }
  return s;
}

export class RunStates {
  constructor(private readonly db: DB) {}

  /** The recorded state, as it was written (see `current` for what is true now). */
  recorded(id: string): RunState {
    const r = this.db.prepare('SELECT * FROM run_state WHERE id = ?').get(id) as Row | undefined;
    return r ? fromRow(r) : { ...FRESH };
  }

  /** The state as it is now (see `live`). */
  current(id: string): RunState {
    return live(this.recorded(id));
  }

  update(id: string, patch: Partial<RunState>): void {
    writeTx(this.db, () => {
      const s = { ...this.recorded(id), ...patch };
      this.db
        .prepare(
          `INSERT INTO run_state (id, status, process, monitor, exit_code, error, started_at, finished_at, ports)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT(id) DO UPDATE SET status = excluded.status, process = excluded.process, monitor = excluded.monitor,
             exit_code = excluded.exit_code, error = excluded.error, started_at = excluded.started_at,
             finished_at = excluded.finished_at, ports = excluded.ports`,
        )
        .run(id, s.status, s.process, s.monitor, s.exitCode, s.error, s.startedAt, s.finishedAt, JSON.stringify(s.ports));
    });
  }

  /**
   * Every container's current state in one query (for `ps`); a container that has no row has
   * never started: its state is `RunStates.fresh()`.
   */
  all(): Map<string, RunState> {
    const out = new Map<string, RunState>();
    for (const r of this.db.prepare('SELECT * FROM run_state').all() as Row[]) out.set(r.id, live(fromRow(r)));
    return out;
  }

  static fresh(): RunState {
    return { ...FRESH };
  }
}
