// `runc run` of a container with a terminal (`-t`): runc runs on a pty the monitor owns (through
// node-pty), makes the container's own pty and relays between the two, and follows our pty's
// window size (SIGWINCH) into the container's. runc's console socket would hand us the
// container's pty master over SCM_RIGHTS, which Node cannot receive; a pty of ours needs no fd
// passing. PtyChild gives the monitor the streams and exit event it reads from a piped runc.
import { EventEmitter } from 'node:events';
import { PassThrough, Writable } from 'node:stream';
import { constants as osConstants } from 'node:os';
import type { IPty } from 'node-pty';
import { toolEnv } from '../sys/run.js';
import type { Runc } from './runc.js';
import type { WinSize } from './terminal.js';

export class PtyChild extends EventEmitter {
  readonly stdin: Writable;
  readonly stdout = new PassThrough();
  /** A terminal has one stream; this one only ends. */
  readonly stderr = new PassThrough();

  constructor(private readonly p: IPty) {
    super();
    this.stdin = new Writable({
      write: (chunk: Buffer, _enc, cb) => {
        p.write(chunk);
        cb();
      },
    });
    p.onData((d: string | Buffer) => this.stdout.write(d));
    p.onExit(({ exitCode, signal }) => {
      this.stdout.end();
      this.stderr.end();
      const name = signal ? Object.entries(osConstants.signals).find(([, n]) => n === signal)?.[0] : undefined;
      this.emit('exit', signal ? null : exitCode, name ?? null);
    });
  }

  resize(size: WinSize): void {
    try {
      this.p.resize(size.cols, size.rows);
    } catch {
      // the pty is already gone with the process: nothing left to resize
    }
  }
}

export async function spawnRunInPty(runc: Runc, id: string, bundle: string, pidFile: string, log: string, size: WinSize): Promise<PtyChild> {
  const pty = await import('node-pty');
  const p = pty.spawn(runc.bin, ['--root', runc.stateDir, '--log', log, '--log-format', 'json', 'run', '--bundle', bundle, '--pid-file', pidFile, id], {
    cwd: bundle,
    cols: size.cols,
    rows: size.rows,
    env: toolEnv() as Record<string, string>,
    encoding: null,
  });
  return new PtyChild(p);
}
