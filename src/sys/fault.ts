// Named crash points for the SIGKILL torture harness (test/torture). STRATA_FAULT=KIND:N makes
// this process SIGKILL itself right after its Nth operation of that kind has taken effect, so a
// crash can be placed exactly between two steps that a random-time kill would rarely hit.
//   rename  a rename of store metadata or of a layer directory
//   fsync   a flush of store data to disk
//   row     a metadata write transaction that has returned (src/store/db.ts writeTx)
// The variable is read once at load; unset, `fault` is an empty function (no counting at all).

export type FaultKind = 'rename' | 'fsync' | 'row';

export const FAULT_KINDS: readonly FaultKind[] = ['rename', 'fsync', 'row'];

/** The environment variable the hook reads. */
export const FAULT_ENV = 'STRATA_FAULT';

/** Parse "KIND:N" (N ≥ 1); throws a one-line error on anything else. */
export function parseFault(spec: string): { kind: FaultKind; at: number } {
  const m = /^([a-z]+):([1-9][0-9]*)$/.exec(spec);
  if (!m || !(FAULT_KINDS as readonly string[]).includes(m[1]!)) {
    throw new Error(`${FAULT_ENV}="${spec}": expected KIND:N with KIND one of ${FAULT_KINDS.join(', ')} and N a positive integer`);
  }
  return { kind: m[1] as FaultKind, at: Number(m[2]) };
}

function makeFault(spec: string | undefined): (kind: FaultKind) => void {
  if (spec === undefined || spec === '') return () => {};
  let parsed: ReturnType<typeof parseFault>;
  try {
    parsed = parseFault(spec);
  } catch (err) {
    // Read at load, before any command runs: a mistyped spec must stop everything, in one line.
    process.stderr.write(`Error: ${(err as Error).message}\n`);
    process.exit(125);
  }
  const { kind: armed, at } = parsed;
  let seen = 0;
  return (kind) => {
    if (kind !== armed || ++seen < at) return;
    // SIGKILL, not exit: no handler, finally block or close() may run, as in a real crash.
    process.kill(process.pid, 'SIGKILL');
  };
}

/** Call right after an operation of this kind has taken effect. */
export const fault: (kind: FaultKind) => void = makeFault(process.env[FAULT_ENV]);
