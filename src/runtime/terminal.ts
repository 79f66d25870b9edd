// The client side of a container's terminal: the window size of our own terminal and its
// changes, raw mode on our stdin while a container owns the keyboard, and Docker's detach keys
// (ctrl-p,ctrl-q by default) spotted in what the user types.
import type { Readable, Writable } from 'node:stream';
import type { ReadStream, WriteStream } from 'node:tty';
import { InvalidInputError } from '../errors.js';

export interface WinSize {
  cols: number;
  rows: number;
}

/** Our terminal's size, or Docker's 80×24 when output is not a terminal. */
export function windowSize(out: Writable): WinSize {
  const t = out as Partial<WriteStream>;
  return t.isTTY && t.columns && t.rows ? { cols: t.columns, rows: t.rows } : { cols: 80, rows: 24 };
}

/** Call `cb` with every new size of the terminal `out` is; returns the unsubscriber. */
export function onResize(out: Writable, cb: (s: WinSize) => void): () => void {
  if (!(out as Partial<WriteStream>).isTTY) return () => undefined;
  const h = () => cb(windowSize(out));
  out.on('resize', h);
  return () => out.off('resize', h);
}

/** Raw mode on a terminal stdin (keys go to the container as typed); returns the restorer. */
export function rawMode(input: Readable): () => void {
  const t = input as Partial<ReadStream>;
  if (!t.isTTY || !t.setRawMode) return () => undefined;
  t.setRawMode(true);
  return () => t.setRawMode!(false);
}

/** `--detach-keys`: "ctrl-p,ctrl-q", "a,ctrl-@", … as the bytes they send. */
export function parseDetachKeys(spec: string): Buffer {
  const out: number[] = [];
  for (const key of spec.split(',')) {
    const k = key.trim();
    if (k.length === 1) out.push(k.charCodeAt(0));
    else if (/^ctrl-[a-z@[\\\]^_]$/i.test(k)) {
      const c = k.slice(5).toLowerCase();
      out.push(c >= 'a' && c <= 'z' ? c.charCodeAt(0) - 96 : c.charCodeAt(0) - 64);
    } else throw new InvalidInputError(`Invalid detach keys (${spec}) provided`);
  }
  if (out.length === 0) throw new InvalidInputError(`Invalid detach keys (${spec}) provided`);
  return Buffer.from(out);
}

/**
 * Watches typed input for the detach sequence. Bytes that might start it are held back until
 * the sequence completes (detach) or breaks (they are passed on), as docker's escape proxy does.
 */
export class DetachWatcher {
  private held = 0;
  constructor(private readonly keys: Buffer) {}

  /** What to pass on from `chunk`, and whether the sequence is complete. */
  feed(chunk: Buffer): { pass: Buffer; detach: boolean } {
    const pass: number[] = [];
    for (const b of chunk) {
      if (b === this.keys[this.held]) {
        this.held++;
        if (this.held === this.keys.length) return { pass: Buffer.from(pass), detach: true };
        continue;
      }
      pass.push(...this.keys.subarray(0, this.held));
      this.held = 0;
      if (b === this.keys[0]) this.held = 1;
      else pass.push(b);
    }
    return { pass: Buffer.from(pass), detach: false };
  }
}
