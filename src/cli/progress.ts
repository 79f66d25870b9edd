// Renders pull/push progress the way the docker CLI does: on a terminal one line per layer,
// rewritten in place with cursor movement and a progress bar; elsewhere plain status lines,
// each status printed once per layer.
import type { Writable } from 'node:stream';
import type { ProgressEvent } from '../registry/pull.js';
import { humanSize } from './format.js';

/** Progress bars print sizes with four significant digits ("3.146MB", "32.77kB", "675B"). */
const barDigits = 4;

const barWidth = 50;

/** "[=====>        ]  3.146MB/31.37MB" */
export function progressBar(current: number, total?: number): string {
  if (!total || total <= 0) return humanSize(current, barDigits);
  const filled = Math.min(barWidth, Math.floor((current / total) * barWidth));
  const bar = filled >= barWidth ? '='.repeat(barWidth) : '='.repeat(filled) + '>' + ' '.repeat(barWidth - filled - 1);
  return `[${bar}] ${humanSize(current, barDigits).padStart(8)}/${humanSize(total, barDigits)}`;
}

export function formatEvent(e: ProgressEvent, withBar: boolean): string {
  const prefix = e.id ? `${e.id}: ` : '';
  const bar = withBar && e.current !== undefined ? ` ${progressBar(e.current, e.total)}` : '';
  return `${prefix}${e.status}${bar}`;
}

export class ProgressRenderer {
  private readonly ids: string[] = [];
  private readonly lastStatus = new Map<string, string>();
  readonly tty: boolean;

  constructor(
    private readonly out: Writable & { isTTY?: boolean; columns?: number },
    opts: { tty?: boolean } = {},
  ) {
    this.tty = opts.tty ?? Boolean(out.isTTY);
  }

  /** A line that is not about one layer ("Digest: …", "Status: …"). */
  message(line: string): void {
    this.out.write(line + '\n');
  }

  update(e: ProgressEvent): void {
    if (!e.id) {
      this.message(formatEvent(e, false));
      return;
    }
    if (!this.tty) {
      // Without a terminal, byte counts would be noise: print each new status once.
      if (this.lastStatus.get(e.id) === e.status) return;
      this.lastStatus.set(e.id, e.status);
      this.out.write(formatEvent(e, false) + '\n');
      return;
    }
    let line = formatEvent(e, true);
    const cols = this.out.columns;
    if (cols && line.length >= cols) line = line.slice(0, cols - 1);
    const index = this.ids.indexOf(e.id);
    if (index === -1) {
      this.ids.push(e.id);
      this.out.write(`${line}\n`);
      return;
    }
    // Move up to the layer's line, rewrite it, and come back down (as docker's jsonmessage does).
    const up = this.ids.length - index;
    this.out.write(`\x1b[${up}A\x1b[2K\r${line}\n${up > 1 ? `\x1b[${up - 1}B` : ''}`);
  }

  /** A listener to hand to Store.pull / Store.push ({ onProgress }). */
  get listener(): (e: ProgressEvent) => void {
    return (e) => this.update(e);
  }
}
