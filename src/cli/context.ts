// What every command module gets from the program: where to print, a store opened from the
// global options (and closed after the command), and the few flag parsers commands share.
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { InvalidInputError, StrataError } from '../errors.js';
import type { Store } from '../store/store.js';

export class Output {
  constructor(
    readonly out: Writable & { isTTY?: boolean; columns?: number } = process.stdout,
    readonly err: Writable = process.stderr,
  ) {}
  print(s: string): void {
    this.out.write(s.endsWith('\n') ? s : s + '\n');
  }
  json(v: unknown, indent = 4): void {
    this.print(JSON.stringify(v, null, indent));
  }
}

export interface Context {
  io: Output;
  withStore<T>(fn: (store: Store) => Promise<T>): Promise<T>;
}

/**
 * A command over several targets (`rm A B`, `rmi A B`) that went on past failures, as docker's
 * does: main.ts prints one `Error:` line per failure and exits with the first one's code.
 */
export class PartialFailure extends Error {
  constructor(readonly errors: StrataError[]) {
    super(errors.map((e) => e.message).join('\n'));
  }
}

/** Runs `fn` for each target; user errors are collected (and thrown together at the end), bugs thrown at once. */
export async function eachTarget<T>(targets: T[], fn: (t: T) => Promise<void>): Promise<void> {
  const failed: StrataError[] = [];
  for (const t of targets) {
    try {
      await fn(t);
    } catch (err) {
      if (!(err instanceof StrataError)) throw err;
      failed.push(err);
    }
  }
  if (failed.length) throw new PartialFailure(failed);
}

/** A command that printed its findings and only needs a non-zero exit (`check` with problems). */
export class SilentExit extends Error {
  constructor(readonly exitCode: number) {
    super('exit');
  }
}

export function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

export function parseKeyValues(list: string[], what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of list) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new InvalidInputError(`invalid ${what} "${kv}": expected key=value`);
    out[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return out;
}

export function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidInputError(`invalid value "${v}": expected a positive integer`);
  return n;
}

/** Write to FILE atomically (temp name, then rename), or to stdout. */
export async function toFileOrStdout(file: string | undefined, what: string, write: (w: Writable) => Promise<void>): Promise<void> {
  if (!file || file === '-') {
    if (process.stdout.isTTY) throw new InvalidInputError(`cowardly refusing to save to a terminal. Use the -o flag or redirect`);
    await write(process.stdout);
    return;
  }
  const tmp = `${file}.strata-tmp-${process.pid}`;
  try {
    await write(createWriteStream(tmp, { highWaterMark: 1 << 20 }));
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err instanceof StrataError ? err : new StrataError(`${what}: ${(err as Error).message}`);
  }
}
