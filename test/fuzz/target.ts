// What a fuzz target is: an input generator (fast-check arbitrary), one step that feeds an input
// to a parser, and the rule that tells the parser's own clean error for bad input from a crash.
// The runner (runner.ts) treats every other throw, a hang, an out-of-memory or a broken
// invariant (FuzzViolation) as a finding.
import type { Arbitrary } from 'fast-check';

export interface FuzzTarget<T = unknown> {
  name: string;
  arbitrary: Arbitrary<T>;
  /** Feed one input. Sync targets return void and run under fc.property (much faster). */
  run(input: T): void | Promise<void>;
  /** True when err is the parser's own one-line error for bad input. */
  clean(err: unknown): boolean;
  /** The input as bytes (a tar, a JSON document, a reference), saved with a finding for its regression test. */
  bytes?(input: T): Buffer;
  /** Called once when the worker is done (scratch directories go away). */
  close?(): void;
}

export interface TargetSpec {
  /** Sync targets run with fc.property; async ones with fc.asyncProperty. */
  sync: boolean;
  /** The applier writes files: its workers run in a private mount namespace with every other filesystem read-only. */
  isolate?: boolean;
  /** Builds the target inside a worker (loads corpus samples, makes scratch dirs). */
  make(): Promise<FuzzTarget<never>>;
}

/** A broken invariant found by a target (a write outside the root, a round trip that differs). */
export class FuzzViolation extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FuzzViolation';
  }
}

const ENGINE_ERRORS = [TypeError, RangeError, SyntaxError, globalThis.ReferenceError, EvalError, URIError, AggregateError];

/**
 * An Error raised on purpose by our code, not by the JS engine tripping over a value it did not
 * expect (TypeError: cannot read properties of undefined, RangeError: invalid array length …).
 */
export function isOwnError(err: unknown): err is Error {
  return err instanceof Error && !ENGINE_ERRORS.some((E) => err instanceof E) && !(err instanceof FuzzViolation);
}

/** Where an isolated worker's own tmpfs goes: a dir of its own, so it never hides the checkout (which may itself be under /tmp). */
export const SCRATCH_MOUNT = '/run/strata-fuzz-scratch';
