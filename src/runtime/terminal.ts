// The client side of a container's terminal: the window size of our own terminal and its
// changes, raw mode on our stdin while a container owns the keyboard, and Docker's detach keys
// (ctrl-p,ctrl-q by default) spotted in what the user types.
import type { Readable, Writable } from 'node:stream';
import type { ReadStream, WriteStream } from 'node:tty';
import { InvalidInputError } from '../errors.js';
import { Frame, frame, resizeFrame } from './attach.js';

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

/** The keys docker names `ctrl-X`, in the order of the control codes they send (0 to 31). */
const CTRL_KEYS = '@abcdefghijklmnopqrstuvwxyz[\\]^_';

/** Docker's default detach sequence. */
export const DEFAULT_DETACH_KEYS = 'ctrl-p,ctrl-q';

/**
 * `--detach-keys` as docker reads it: comma-separated keys, each one character, `ctrl-` and one
 * of a-z @ [ \ ] ^ _, or `DEL`; exact (no spaces, lower case), else refused. "" is the default.
 */
export function parseDetachKeys(spec: string): Buffer {
  if (spec === '') return parseDetachKeys(DEFAULT_DETACH_KEYS);
  const out: number[] = [];
  for (const key of spec.split(',')) {
    const ctrl = key.length === 6 && key.startsWith('ctrl-') ? CTRL_KEYS.indexOf(key[5]!) : -1;
    if (key.length === 1) out.push(Buffer.from(key)[0]!);
    else if (ctrl >= 0) out.push(ctrl);
    else if (key === 'DEL') out.push(127);
    else throw new InvalidInputError(`Invalid detach keys (${spec}) provided`);
  }
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

export interface ClientInput {
  stdin?: Readable;
  stdout: Writable;
  /** The container has a terminal: raw keys, window size, detach keys. */
  tty: boolean;
  /** The container reads stdin (`-i`). */
  openStdin: boolean;
  /** `--detach-keys`, ctrl-p,ctrl-q by default. */
  detachKeys?: string;
  /** `--sig-proxy` (without a terminal): signals to us are sent to the container's process. */
  sigProxy?: (signal: string) => void;
  onDetach(): void;
}

const PROXIED = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'] as const;

/**
 * The client's half of an attach, for everything that flows to the monitor: the window size
 * (first, so the process starts with it) and its changes, typed input, detach keys, proxied
 * signals. Returns the undoer (cooked mode again, listeners off).
 */
export function relayInput(sock: Writable, o: ClientInput): () => void {
  const undo: (() => void)[] = [];
  if (o.tty) {
    const size = windowSize(o.stdout);
    sock.write(resizeFrame(size.cols, size.rows));
    undo.push(onResize(o.stdout, (s) => sock.write(resizeFrame(s.cols, s.rows))));
  }
  const input = o.openStdin ? o.stdin : undefined;
  if (input) {
    if (o.tty) undo.push(rawMode(input));
    const watcher = o.tty ? new DetachWatcher(parseDetachKeys(o.detachKeys ?? DEFAULT_DETACH_KEYS)) : null;
    const onData = (d: Buffer) => {
      const r = watcher ? watcher.feed(d) : { pass: d, detach: false };
      if (r.pass.length) sock.write(frame(Frame.Stdin, r.pass));
      if (r.detach) o.onDetach();
    };
    const onEnd = () => sock.write(frame(Frame.StdinEnd));
    input.on('data', onData).on('end', onEnd);
    undo.push(() => {
      input.off('data', onData).off('end', onEnd);
      input.pause();
    });
  }
  if (!o.tty && o.sigProxy) {
    const proxy = o.sigProxy;
    for (const sig of PROXIED) {
      const h = () => proxy(sig);
      process.on(sig, h);
      undo.push(() => process.off(sig, h));
    }
  }
  return () => undo.splice(0).reverse().forEach((f) => f());
}
