// The attach protocol between a container's monitor and the CLIs that attach to it, over a unix
// socket: frames of [kind u8][length u32 BE][payload], like Docker's multiplexed attach stream,
// so stdout and stderr stay apart and stdin, its end, and the exit status share one connection.
import type { Socket } from 'node:net';

export const enum Frame {
  Stdin = 0,
  Stdout = 1,
  Stderr = 2,
  /** Client → monitor: stdin has ended. */
  StdinEnd = 3,
  /** Monitor → client: the process ended; payload is JSON {exitCode, error?}. */
  Exit = 4,
  /** Client → monitor: the client is listening, start the process (run/start -a). */
  Start = 5,
  /** Client → monitor: the terminal's size, cols and rows as two u16 BE. */
  Resize = 6,
}

export function resizeFrame(cols: number, rows: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt16BE(Math.min(cols, 0xffff), 0);
  b.writeUInt16BE(Math.min(rows, 0xffff), 2);
  return frame(Frame.Resize, b);
}

export function frame(kind: Frame, payload: Buffer | string = Buffer.alloc(0)): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const head = Buffer.alloc(5);
  head[0] = kind;
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

/** Calls onFrame for every whole frame read from the socket. */
export function readFrames(sock: Socket, onFrame: (kind: Frame, payload: Buffer) => void): void {
  let buf: Buffer = Buffer.alloc(0);
  sock.on('data', (chunk: Buffer) => {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    while (buf.length >= 5) {
      const len = buf.readUInt32BE(1);
      if (buf.length < 5 + len) break;
      const kind = buf[0] as Frame;
      const payload = buf.subarray(5, 5 + len);
      buf = buf.subarray(5 + len);
      onFrame(kind, payload);
    }
  });
}

export interface ExitStatus {
  exitCode: number;
  /** Why the process never started, when it did not. */
  error?: string;
  /** The client detached (detach keys); the process runs on. */
  detached?: boolean;
}
