// A container's log in Docker's json-file format (`containers/<id>/<id>-json.log`): one JSON
// object per line, `{"log":"…\n","stream":"stdout","time":"…"}`, so tools that read Docker's
// logs read ours. The writer splits output into lines as Docker does (a line longer than 16 KiB
// is cut into pieces; a last line without a newline is written when the stream ends).
import { createReadStream, openSync, writeSync, closeSync, fsyncSync, statSync } from 'node:fs';
import { createInterface } from 'node:readline';

export type StreamName = 'stdout' | 'stderr';

const MAX_LINE = 16 * 1024;

/** RFC 3339 with nanoseconds, as Docker writes `time` (JS clocks give microseconds at best). */
export function nanoTime(d = new Date(), extraNs = 0): string {
  const iso = d.toISOString(); // 2026-12-01T23:15:24.123Z
  const ns = String(d.getUTCMilliseconds() * 1_000_000 + extraNs).padStart(9, '0');
  return `${iso.slice(0, 19)}.${ns}Z`;
}

export class JsonLogWriter {
  private readonly fd: number;
  private readonly pending: Record<StreamName, Buffer[]> = { stdout: [], stderr: [] };
  private seq = 0;

  constructor(path: string) {
    this.fd = openSync(path, 'a', 0o640);
  }

  write(stream: StreamName, chunk: Buffer): void {
    let start = 0;
    for (let i = 0; i < chunk.length; i++) {
      if (chunk[i] !== 0x0a) continue;
      this.emit(stream, Buffer.concat([...this.pending[stream], chunk.subarray(start, i + 1)]));
      this.pending[stream] = [];
      start = i + 1;
    }
    if (start < chunk.length) {
      this.pending[stream].push(chunk.subarray(start));
      let size = this.pending[stream].reduce((n, b) => n + b.length, 0);
      while (size >= MAX_LINE) {
        const all = Buffer.concat(this.pending[stream]);
        this.emit(stream, all.subarray(0, MAX_LINE));
        this.pending[stream] = [all.subarray(MAX_LINE)];
        size -= MAX_LINE;
      }
    }
  }

  private emit(stream: StreamName, line: Buffer): void {
    // Several lines in one millisecond keep their order in the time field too.
    const time = nanoTime(new Date(), this.seq++ % 1_000_000);
    writeSync(this.fd, `${JSON.stringify({ log: line.toString('utf8'), stream, time })}\n`);
  }

  close(): void {
    for (const s of ['stdout', 'stderr'] as const) {
      if (this.pending[s].length) this.emit(s, Buffer.concat(this.pending[s]));
      this.pending[s] = [];
    }
    try {
      fsyncSync(this.fd);
    } finally {
      closeSync(this.fd);
    }
  }
}

export interface LogEntry {
  log: string;
  stream: StreamName;
  time: string;
}

export interface ReadLogOptions {
  /** Only the last N entries (`--tail N`); undefined for all. */
  tail?: number;
  /** Only entries at or after this instant (`--since`). */
  since?: Date;
  /** Only entries before this instant (`--until`). */
  until?: Date;
}

function parseLine(line: string): LogEntry | null {
  if (!line) return null;
  try {
    const e = JSON.parse(line) as LogEntry;
    return typeof e.log === 'string' && (e.stream === 'stdout' || e.stream === 'stderr') ? e : null;
  } catch {
    return null; // a line torn by a crash
  }
}

function inRange(e: LogEntry, opts: ReadLogOptions): boolean {
  const t = Date.parse(e.time);
  if (opts.since && t < opts.since.getTime()) return false;
  if (opts.until && t >= opts.until.getTime()) return false;
  return true;
}

/** Every entry of a log file (honouring tail/since/until), and the byte offset read up to. */
export async function readLog(path: string, opts: ReadLogOptions = {}): Promise<{ entries: LogEntry[]; offset: number }> {
  let size: number;
  try {
    size = statSync(path).size;
  } catch {
    return { entries: [], offset: 0 };
  }
  const entries: LogEntry[] = [];
  const rl = createInterface({ input: createReadStream(path, { end: Math.max(0, size - 1) }), crlfDelay: Infinity });
  for await (const line of rl) {
    const e = parseLine(line);
    if (e && inRange(e, opts)) {
      entries.push(e);
      if (opts.tail !== undefined && entries.length > opts.tail) entries.shift();
    }
  }
  return { entries: opts.tail === 0 ? [] : entries, offset: size };
}

/** Entries appended after `offset` (for `logs -f`), and the new offset; a torn last line waits. */
export async function readLogFrom(path: string, offset: number): Promise<{ entries: LogEntry[]; offset: number }> {
  let size: number;
  try {
    size = statSync(path).size;
  } catch {
    return { entries: [], offset };
  }
  if (size <= offset) return { entries: [], offset };
  const chunks: Buffer[] = [];
  for await (const c of createReadStream(path, { start: offset, end: size - 1 })) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  const lastNl = text.lastIndexOf('\n');
  if (lastNl < 0) return { entries: [], offset };
  const entries = text
    .slice(0, lastNl)
    .split('\n')
    .map(parseLine)
    .filter((e): e is LogEntry => e !== null);
  return { entries, offset: offset + Buffer.byteLength(text.slice(0, lastNl + 1)) };
}
