// What every command module gets from the program: where to print, a store opened from the
// global options (and closed after the command), and the few flag parsers commands share.
import { createWriteStream, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { rename, rm } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { InvalidInputError, StrataError } from '../errors.js';
import type { Store } from '../store/store.js';

export class Output {
  constructor(
    readonly out: Writable & { isTTY?: boolean; columns?: number } = process.stdout,
    readonly err: Writable = process.stderr,
    readonly input: Readable = process.stdin,
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

/** docker's check of `-o FILE` before anything else: its directory must exist. Returns the failure's prefix. */
export function checkOutputPath(file: string | undefined, what: 'save' | 'export'): string {
  const failed = `failed to ${what === 'save' ? 'save image' : 'export container'}`;
  if (!file || file === '-') return failed;
  const dir = dirname(resolve(file));
  if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory()) throw new InvalidInputError(`${failed}: invalid output path: directory "${dir}" does not exist`);
  return failed;
}

/** Write to FILE atomically (temp name, then rename), or to stdout. */
export async function toFileOrStdout(file: string | undefined, what: 'save' | 'export', write: (w: Writable) => Promise<void>): Promise<void> {
  if (!file || file === '-') {
    if (process.stdout.isTTY) throw new InvalidInputError(`cowardly refusing to save to a terminal. Use the -o flag or redirect`);
    await write(process.stdout);
    return;
  }
  const failed = checkOutputPath(file, what);
  const tmp = `${file}.strata-tmp-${process.pid}`;
  try {
    const out = createWriteStream(tmp, { highWaterMark: 1 << 20 });
    // Opening fails here (permissions, a read-only filesystem), before anything is read.
    await new Promise((res, rej) => out.once('open', res).once('error', rej));
    await write(out);
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err instanceof StrataError ? err : new StrataError(`${failed}: ${(err as Error).message}`);
  }
}

/** docker's PromptForConfirmation: the warning and question on stdout; yes only for a line "y" or "Y". */
export async function confirm(io: Output, warning: string): Promise<boolean> {
  io.out.write(`${warning}\nAre you sure you want to continue? [y/N] `);
  const rl = createInterface({ input: io.input, terminal: false });
  const answer = await new Promise<string>((resolve) => {
    rl.once('line', resolve);
    rl.once('close', () => resolve(''));
  });
  rl.close();
  return answer.trim().toLowerCase() === 'y';
}
