// The monitor of one running container: the parent of `runc run`, so it learns the exit code
// without being a subreaper. It outlives the CLI that started it (it runs in a session of its
// own), writes the container's output to its json-file log, serves the attach socket, and reports
// start and exit through callbacks (the store records them). No daemon: one monitor per running
// container, gone when the container is; a monitor that dies leaves a container the store can
// still see, wait for and remove.
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { createServer, type Socket } from 'node:net';
import { constants as osConstants } from 'node:os';
import { Frame, frame, readFrames, type ExitStatus } from './attach.js';
import { JsonLogWriter } from './jsonlog.js';
import { PtyChild, spawnRunInPty } from './ptyrun.js';
import { Runc, startErrorCode } from './runc.js';
import type { WinSize } from './terminal.js';
import { log as debugLog } from '../log.js';

export interface MonitorOptions {
  runc: Runc;
  id: string;
  bundle: string;
  logPath: string;
  socketPath: string;
  pidFile: string;
  runcLog: string;
  /** `-i`: keep the process's stdin open and feed it from the first attached client. */
  openStdin: boolean;
  /** `-t`: run it on a pty (ptyrun.ts). */
  tty: boolean;
  /** Start the process only when a client sends Start (a foreground `run` or `start -a`). */
  waitForAttach: boolean;
  /**
   * Asked every REMOVED_POLL_MS while waiting for a client, and once after: true when the
   * container was removed meanwhile (a `run` whose client died before it attached, then
   * `rm -f`). Nothing is started then.
   */
  removed?(): boolean;
  onStarted(pid: number): Promise<void> | void;
  onExited(status: ExitStatus): Promise<void> | void;
}

/** How long a foreground run may take to attach before the monitor starts without it. */
const ATTACH_WAIT_MS = 30_000;
/** How often a monitor waiting for its client looks whether its container was removed. */
const REMOVED_POLL_MS = 250;

function readPid(file: string): number | null {
  try {
    const n = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}

/** The process's exit status; null when it was never started because its container was removed. */
export async function runMonitor(opts: MonitorOptions): Promise<ExitStatus | null> {
  const clients = new Set<Socket>();
  let stdinOwner: Socket | null = null;
  let child: ReturnType<Runc['spawnRun']> | PtyChild | null = null;
  // The first client's window size (sent before Start), 80×24 until one says.
  let size: WinSize = { cols: 80, rows: 24 };
  let release: () => void = () => undefined;
  const attached = new Promise<void>((r) => (release = r));

  // Input that comes before the process exists waits for it: a file piped into `run -i`
  // arrives whole, with its end, before the client's Start frame.
  const early: Buffer[] = [];
  let earlyEnd = false;
  const toStdin = (data: Buffer | null) => {
    if (child === null) {
      if (data === null) earlyEnd = true;
      else early.push(data);
    } else if (data === null) child.stdin?.end();
    else child.stdin?.write(data);
  };

  rmSync(opts.socketPath, { force: true });
  const server = createServer((sock) => {
    clients.add(sock);
    sock.on('error', () => clients.delete(sock));
    sock.on('close', () => {
      clients.delete(sock);
      if (stdinOwner !== sock) return;
      // The next client to attach types into the process. Without a terminal the process's
      // stdin ends with its client's (docker's StdinOnce); a terminal stays for the next one
      // (a client that detached with its detach keys).
      stdinOwner = null;
      if (!opts.tty) toStdin(null);
    });
    if (opts.openStdin && stdinOwner === null) stdinOwner = sock;
    readFrames(sock, (kind, payload) => {
      if (kind === Frame.Start) release();
      else if (kind === Frame.Resize && payload.length === 4) {
        size = { cols: payload.readUInt16BE(0), rows: payload.readUInt16BE(2) };
        if (child instanceof PtyChild) child.resize(size);
      }
      else if (kind === Frame.Stdin && sock === stdinOwner) toStdin(Buffer.from(payload));
      else if (kind === Frame.StdinEnd && sock === stdinOwner) toStdin(null);
    });
  });
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
  try {
    await listen();
  } catch (err) {
    // Its directory was pruned by another container's monitor a moment ago: made again.
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    mkdirSync(dirname(opts.socketPath), { recursive: true, mode: 0o700 });
    await listen();
  }

  debugLog.debug(`monitor ${opts.id.slice(0, 12)}: listening`);
  // Whatever ends this run, normally or by a throw, the socket closes: a listening server would
  // keep the monitor's process alive for ever after its error was printed.
  try {
    if (opts.waitForAttach) {
      let isAttached = false;
      void attached.then(() => (isAttached = true));
      const until = Date.now() + ATTACH_WAIT_MS;
      while (!isAttached && Date.now() < until && !opts.removed?.()) {
        await Promise.race([attached, new Promise((r) => setTimeout(r, REMOVED_POLL_MS))]);
      }
    }
    if (opts.removed?.()) return null;
    return await supervise();
  } finally {
    server.close();
    for (const s of clients) s.destroy();
    if (existsSync(opts.socketPath)) rmSync(opts.socketPath, { force: true });
  }

  async function supervise(): Promise<ExitStatus> {
    const log = new JsonLogWriter(opts.logPath);
    rmSync(opts.pidFile, { force: true });
    child = opts.tty
      ? await spawnRunInPty(opts.runc, opts.id, opts.bundle, opts.pidFile, opts.runcLog, size)
      : opts.runc.spawnRun(opts.id, opts.bundle, opts.pidFile, opts.runcLog, [opts.openStdin ? 'pipe' : 'ignore', 'pipe', 'pipe']);
    const c = child;
    debugLog.debug(`monitor ${opts.id.slice(0, 12)}: runtime spawned`);
    // A client that hangs up while we write to stdin must not end the monitor.
    c.stdin?.on('error', () => undefined);
    for (const d of early.splice(0)) c.stdin?.write(d);
    if (earlyEnd) c.stdin?.end();
    const send = (kind: Frame, data: Buffer) => {
      const f = frame(kind, data);
      for (const s of clients) s.write(f);
    };
    const stdoutDone = new Promise<void>((r) => c.stdout!.on('end', r).on('error', () => r()));
    const stderrDone = new Promise<void>((r) => c.stderr!.on('end', r).on('error', () => r()));
    const earlyErr: Buffer[] = [];
    let started = false;
    // What the process wrote to stderr before we saw it start is its own output after all.
    const releaseEarlyErr = () => {
      for (const d of earlyErr.splice(0)) {
        log.write('stderr', d);
        send(Frame.Stderr, d);
      }
    };
    c.stdout!.on('data', (d: Buffer) => {
      log.write('stdout', d);
      send(Frame.Stdout, d);
    });
    c.stderr!.on('data', (d: Buffer) => {
      // Until the process has started, stderr is runc's own (its error when it cannot start).
      if (!started) earlyErr.push(d);
      else {
        log.write('stderr', d);
        send(Frame.Stderr, d);
      }
    });

    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => c.on('exit', (code, signal) => r({ code, signal })));
    let done = false;
    void exited.then(() => (done = true));
    // runc writes the pid file once the container exists, just before it starts the process.
    while (!done) {
      const pid = readPid(opts.pidFile);
      if (pid !== null) {
        started = true;
        debugLog.debug(`monitor ${opts.id.slice(0, 12)}: process started`);
        releaseEarlyErr();
        await opts.onStarted(pid);
        break;
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    const { code, signal } = await exited;
    debugLog.debug(`monitor ${opts.id.slice(0, 12)}: runtime exited`);
    await Promise.all([stdoutDone, stderrDone]);
    let status: ExitStatus;
    if (!started && readPid(opts.pidFile) === null) {
      const msg = Runc.lastError(opts.runcLog) ?? (Buffer.concat(earlyErr).toString().trim() || `runtime exited with ${code ?? signal}`);
      status = { exitCode: startErrorCode(msg), error: msg.replace(/^runc (run|create) failed: /, '') };
    } else {
      // A process that ended before we saw its pid file: what it wrote to stderr goes to the log
      // and to the attached clients like any other output.
      releaseEarlyErr();
      // ... and its start is recorded all the same (inspect's StartedAt).
      if (!started) await opts.onStarted(readPid(opts.pidFile)!);
      status = { exitCode: code ?? 128 + (osConstants.signals[signal as keyof typeof osConstants.signals] ?? 0) };
    }
    log.close();
    await opts.runc.delete(opts.id).catch(() => undefined);
    debugLog.debug(`monitor ${opts.id.slice(0, 12)}: runtime deleted`);
    await opts.onExited(status);
    const last = frame(Frame.Exit, JSON.stringify(status));
    await Promise.all([...clients].map((s) => new Promise<void>((r) => s.end(last, () => r()))));
    return status;
  }
}
