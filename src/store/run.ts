// Running containers: what `run`, `start`, `stop`, `kill`, `wait`, `logs` and `rm -f` do, on top
// of the runtime (src/runtime). Each running container has a monitor process of its own (the CLI
// started with `__monitor`), which mounts the container's root, writes the OCI bundle and the
// files Docker keeps in containers/<id>/, runs the process and records its start and exit here.
// The commands talk to it only through the store's records, runc's state and the attach socket,
// so any process can stop, wait for or remove any container, and none of them is a daemon.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, openSync, closeSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { hostname as hostHostname } from 'node:os';
import { isAbsolute, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { ConflictError, InvalidInputError, StrataError } from '../errors.js';
import type { ContainerConfig as ImageRunConfig } from '../image/types.js';
import { Frame, frame, readFrames, type ExitStatus } from '../runtime/attach.js';
import { readLog, readLogFrom, type LogEntry } from '../runtime/jsonlog.js';
import { runMonitor } from '../runtime/monitor.js';
import { OomWatch } from '../runtime/oom.js';
import { relayInput } from '../runtime/terminal.js';
import { Runc, StartError } from '../runtime/runc.js';
import { buildSpec, resolveProcess, type BindMount, type NetworkMode, type ProcessOptions } from '../runtime/spec.js';
import { resolveUser } from '../runtime/user.js';
import { NO_RESTART, nextDelay, parseRestartPolicy, restarts, shouldRestart, type RestartPolicy } from '../runtime/restart.js';
import { checkResources, hostConfigResources, NO_LIMITS, ociResources, type Resources } from '../runtime/resources.js';
import { closeSandbox, openSandbox, parsePublish, type PortBinding, type Sandbox } from '../runtime/network.js';
import type { Driver } from '../drivers/driver.js';
import type { ContainerRecord, ContainerStore } from './containers.js';
import { now } from './db.js';
import { identityOf } from '../sys/process.js';
import { defaultRunDir, isRootless } from '../sys/rootless.js';
import { ownerAlive, ownerId } from './owner.js';
import { log } from '../log.js';
import type { RunState, RunStates } from './runstate.js';

/** What the container runs, fixed at create (Docker's Config: Path/Args, Env, WorkingDir, User). */
export interface ProcessConfig {
  args: string[];
  /** Docker's Config.Entrypoint and Config.Cmd apart, which `commit` records (absent on containers made before). */
  entrypoint?: string[];
  cmd?: string[];
  env: string[];
  cwd: string;
  user: string;
  tty: boolean;
  openStdin: boolean;
  stopSignal: string;
}

export type NetworkName = 'none' | 'host' | 'default';

/** How it runs (Docker's HostConfig). */
export interface HostConfig {
  autoRemove: boolean;
  network: NetworkName;
  /** `-p`, on the default network. */
  ports: PortBinding[];
  binds: BindMount[];
  readOnly: boolean;
  init: boolean;
  runtime: string;
  /** cgroup limits (absent on containers made before strata had them). */
  resources?: Resources;
  /** `--restart` (absent: no). */
  restart?: RestartPolicy;
}

/** The flags of `create`/`run` that decide what and how a container runs. */
export interface RunConfigOptions extends Omit<ProcessOptions, 'hostname'> {
  interactive?: boolean;
  stopSignal?: string;
  autoRemove?: boolean;
  network?: string;
  /** `-p [IP:][HOSTPORT:]CTRPORT[/PROTO]` */
  publish?: string[];
  /** `-v HOST:CTR[:ro|rw]` */
  volumes?: string[];
  readOnly?: boolean;
  init?: boolean;
  runtime?: string;
  /** `-m`, `--memory-swap`, `--cpus`, `--cpu-shares`, `--pids-limit`, `--cpuset-cpus`. */
  resources?: Partial<Resources>;
  /** `--restart no|on-failure[:N]|always|unless-stopped` */
  restart?: string;
}

/** Streams of a client attached to a container. */
export interface AttachStreams {
  stdin?: Readable;
  stdout: Writable;
  stderr: Writable;
  /** `--detach-keys` for a container with a terminal; ctrl-p,ctrl-q by default. */
  detachKeys?: string;
  /** `--sig-proxy` (true unless false): without a terminal, signals to us go to the process. */
  sigProxy?: boolean;
}

const SIGNALS = new Set(['SIGABRT', 'SIGALRM', 'SIGBUS', 'SIGCHLD', 'SIGCONT', 'SIGFPE', 'SIGHUP', 'SIGILL', 'SIGINT', 'SIGIO', 'SIGKILL', 'SIGPIPE', 'SIGPROF', 'SIGPWR', 'SIGQUIT', 'SIGSEGV', 'SIGSTKFLT', 'SIGSTOP', 'SIGSYS', 'SIGTERM', 'SIGTRAP', 'SIGTSTP', 'SIGTTIN', 'SIGTTOU', 'SIGURG', 'SIGUSR1', 'SIGUSR2', 'SIGVTALRM', 'SIGWINCH', 'SIGXCPU', 'SIGXFSZ']);

/** A signal as docker takes it (`KILL`, `SIGKILL`, `9`), in runc's spelling. */
export function parseSignal(s: string): string {
  if (/^\d+$/.test(s)) {
    const n = Number(s);
    if (n < 1 || n > 64) throw new InvalidInputError(`Invalid signal: ${s}`);
    return String(n);
  }
  const name = s.toUpperCase().startsWith('SIG') ? s.toUpperCase() : `SIG${s.toUpperCase()}`;
  if (!SIGNALS.has(name)) throw new InvalidInputError(`Invalid signal: ${s}`);
  return name;
}

function parseBind(spec: string): BindMount {
  const parts = spec.split(':');
  if (parts.length < 2 || parts.length > 3 || !parts[0] || !parts[1]) throw new InvalidInputError(`invalid volume specification: '${spec}'`);
  const [source, destination, mode] = parts as [string, string, string | undefined];
  if (!isAbsolute(source)) throw new InvalidInputError(`invalid volume specification: '${spec}': named volumes are not supported, give an absolute host path`);
  if (!isAbsolute(destination)) throw new InvalidInputError(`invalid volume specification: '${spec}': invalid mount config for type "bind": invalid mount path: '${destination}' mount path must be absolute`);
  if (destination === '/') throw new InvalidInputError(`invalid volume specification: '${spec}': invalid mount config for type "bind": invalid specification: destination can't be '/'`);
  if (mode !== undefined && mode !== 'ro' && mode !== 'rw') throw new InvalidInputError(`invalid mode: ${mode}`);
  return { source, destination, readOnly: mode === 'ro' };
}

/** Resolve the flags of `create`/`run` against the image config, as Docker does at create. */
export function runConfig(image: ImageRunConfig | undefined, hostname: string, o: RunConfigOptions): { process: ProcessConfig; host: HostConfig } {
  const p = resolveProcess(image, { ...o, hostname });
  const asked = o.network ?? 'default';
  // "bridge" is what docker calls its default network; strata's default is pasta's, not a bridge.
  const network: NetworkName = asked === 'bridge' ? 'default' : (asked as NetworkName);
  if (network !== 'none' && network !== 'host' && network !== 'default') throw new InvalidInputError(`network ${asked} not found`);
  const ports = (o.publish ?? []).map(parsePublish);
  if (ports.length && network !== 'default') throw new InvalidInputError(`conflicting options: port publishing and the ${network} network mode`);
  const binds = (o.volumes ?? []).map(parseBind);
  const restart = parseRestartPolicy(o.restart ?? '');
  if (o.autoRemove && restarts(restart)) throw new InvalidInputError('Conflicting options: --restart and --rm');
  return {
    process: {
      ...p,
      tty: o.tty ?? false,
      openStdin: o.interactive ?? false,
      stopSignal: parseSignal(o.stopSignal ?? image?.StopSignal ?? 'SIGTERM'),
    },
    host: {
      autoRemove: o.autoRemove ?? false,
      network,
      ports,
      binds,
      readOnly: o.readOnly ?? false,
      init: o.init ?? false,
      runtime: o.runtime ?? 'runc',
      // The host's cgroups are read only when a limit is asked for.
      resources: o.resources && Object.keys(o.resources).length ? checkResources(o.resources) : NO_LIMITS,
      restart,
    },
  };
}

/** /etc/hosts of a container that has only its loopback (Docker's for --network none). */
const LOOPBACK_HOSTS = `127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
ff00::0\tip6-mcastprefix
ff02::1\tip6-allnodes
ff02::2\tip6-allrouters
`;

function readHostFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** Docker's `tini-static` stand-in for `--init`: Debian's static tini runs in any image. */
const INIT_BINARY = '/usr/bin/tini-static';

export interface RunnerDeps {
  root: string;
  driver: Driver;
  containers: ContainerStore;
  states: RunStates;
  /** The command that runs `strata … __monitor ID` (node + the CLI entry, plus the store's global flags). */
  monitorCommand: string[];
  /** Remove a container's layers and record (after an --rm container exits). */
  removeContainer(id: string): Promise<void>;
}

/**
 * The state as docker names it (inspect's State.Status, `ps`'s `.State` and `status=` filter):
 * between the exit of a process and its restart by the `--restart` policy, the monitor keeps the
 * container "running" with no process and its finish recorded (so that stop, rm -f and wait
 * reach it), which docker calls restarting. Here, not in runstate.ts: that module and db.ts
 * import each other, and the CLI importing a value from runstate.ts first would load it before
 * db.ts's schema list.
 */
export function dockerStatus(s: RunState): RunState['status'] | 'restarting' {
  // A process that ended before the monitor read its identity has none either, for a moment; it
  // started after the last finish (ISO times compare as text), a restarting one did not.
  return s.status === 'running' && s.process === null && s.finishedAt >= s.startedAt ? 'restarting' : s.status;
}

/** Docker's refusal of exec and pause while the restart policy waits to start the process again. */
export function restartingError(id: string): ConflictError {
  return new ConflictError(`Container ${id} is restarting, wait until the container is running`);
}

/** A monitor started by `launchMonitor`; `go` or `cancel` it once. */
export interface LaunchedMonitor {
  exited: Promise<void>;
  /** Wait for its exit, keeping this process alive meanwhile (exited alone does not). */
  gone(): Promise<void>;
  /** The container exists: start it. */
  go(): void;
  /** Not to be started: the monitor removes the directory of a container not made, and exits. */
  cancel(): Promise<void>;
}

/** What a monitor started before its container waits for on stdin (end of input alone: cancelled). */
export const MONITOR_GO = 'go';

const POLL_MS = 10;
/** How long a container that runc failed to signal may take to show it was ending anyway. */
const SIGNAL_RACE_MS = 5_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class Runner {
  readonly execRoot: string;

  constructor(private readonly d: RunnerDeps) {
    // runc's state and the attach sockets live on /run (gone at reboot, like the containers
    // that ran; a user's runtime dir without root), one directory per store root; short
    // enough for a unix socket path.
    const tag = createHash('sha256').update(d.root).digest('hex').slice(0, 16);
    this.execRoot = join(defaultRunDir(), tag);
  }

  private get netnsDir(): string {
    return join(this.execRoot, 'netns');
  }

  containerDir(id: string): string {
    return join(this.d.root, 'containers', id);
  }

  private socketPath(id: string): string {
    return join(this.execRoot, `${id.slice(0, 32)}.sock`);
  }

  runc(c: ContainerRecord): Runc {
    return new Runc(c.config.host?.runtime ?? 'runc', join(this.execRoot, 'runc'));
  }

  state(id: string): RunState {
    return this.d.states.current(id);
  }

  isRunning(id: string): boolean {
    const s = this.state(id).status;
    return s === 'running' || s === 'paused';
  }

  /**
   * `start`: a monitor of its own starts the container. With streams, this process attaches
   * first and returns the exit status; without, it returns once the process runs (or failed).
   */
  async start(c: ContainerRecord, attach?: AttachStreams, launched?: LaunchedMonitor): Promise<ExitStatus | null> {
    if (!c.config.process) {
      await launched?.cancel();
      throw new InvalidInputError(`container ${c.name} was created by a strata without a runtime; create it again`);
    }
    if (this.isRunning(c.id)) {
      await launched?.cancel();
      if (attach) return this.attach(c, attach, false);
      return null;
    }
    log.debug(`run ${c.id.slice(0, 12)}: created, starting`);
    rmSync(this.stoppedFile(c.id), { force: true });
    rmSync(join(this.containerDir(c.id), 'restart-count'), { force: true });
    const mon = launched ?? this.launchMonitor(c.id, attach !== undefined, false);
    mon.go();
    const monitorExited = mon.exited;
    let gone = false;
    void monitorExited.then(() => (gone = true));
    if (attach) {
      const status = await this.attach(c, attach, true, monitorExited);
      log.debug(`run ${c.id.slice(0, 12)}: exit status received`);
      // `run --rm` returns once the container is gone, as docker's does: the monitor removes it
      // after it has sent the exit status.
      if (c.config.host?.autoRemove && !status.detached) await mon.gone();
      log.debug(`run ${c.id.slice(0, 12)}: monitor gone`);
      return status;
    }
    // Wait until the monitor says the process runs, or the monitor is gone (it failed to start,
    // or the process already ended).
    for (;;) {
      const s = this.d.states.recorded(c.id);
      if (s.status === 'running' && s.monitor && ownerAlive(s.monitor)) return null;
      if (gone) break;
      await sleep(POLL_MS);
    }
    this.throwIfStartFailed(c);
    return null;
  }

  /**
   * Start the monitor process of container `id`. With `whenCreated`, before the container exists
   * (`run` overlaps the monitor's start-up, a node process opening the store, with the create):
   * it waits until `go` says the container is made, and exits untouched on `cancel`.
   */
  launchMonitor(id: string, attach: boolean, whenCreated: boolean): LaunchedMonitor {
    mkdirSync(this.containerDir(id), { recursive: true, mode: 0o710 });
    const errLog = openSync(join(this.containerDir(id), 'monitor.log'), 'a', 0o600);
    const [cmd, ...args] = this.d.monitorCommand;
    // The monitor's debug lines go to its monitor.log.
    const level = log.enabled('debug') ? ['--log-level', 'debug'] : [];
    const flags = [...(attach ? ['--attach'] : []), ...(whenCreated ? ['--when-created'] : [])];
    const mon = spawn(cmd!, [...args, ...level, '__monitor', id, ...flags], { detached: true, stdio: [whenCreated ? 'pipe' : 'ignore', 'ignore', errLog] });
    closeSync(errLog);
    const exited = new Promise<void>((r) => mon.once('exit', () => r()));
    mon.unref();
    log.debug(`run ${id.slice(0, 12)}: monitor spawned`);
    const gone = () => {
      mon.ref();
      return exited;
    };
    return {
      exited,
      gone,
      go: () => mon.stdin?.end(MONITOR_GO),
      cancel: async () => {
        // Its input ends without the word: it removes the container's directory, closes the
        // store it opened and exits, before we return (a failed `run` leaves nothing running;
        // a killed monitor would leave its store mark behind, and the next open would scan for
        // leftovers). A `run` killed meanwhile ends its input all the same.
        mon.stdin?.end();
        await gone();
      },
    };
  }

  private throwIfStartFailed(c: ContainerRecord): void {
    const s = this.d.states.recorded(c.id);
    if (s.error && s.status !== 'running') throw new StartError(s.error, s.exitCode);
  }

  /** Connect to the container's monitor and relay its streams until the process exits. */
  async attach(c: ContainerRecord, io: AttachStreams, start: boolean, monitorExited?: Promise<void>): Promise<ExitStatus> {
    const path = this.socketPath(c.id);
    let gone = false;
    void monitorExited?.then(() => (gone = true));
    // A monitor we started is worth waiting for until it is gone; a running one until it ends.
    const sock = await this.connectMonitor(path, () => (start ? !gone : this.isRunning(c.id)));
    if (!sock) {
      await this.waitExit(c.id);
      return this.exitStatusAfterMonitor(c);
    }
    return new Promise<ExitStatus>((resolve, reject) => {
      let status: ExitStatus | null = null;
      let detached = false;
      // Connected already (connectMonitor): the window size and stdin go first, then Start.
      const undoInput = relayInput(sock, {
        ...io,
        tty: c.config.process?.tty ?? false,
        openStdin: c.config.process?.openStdin ?? false,
        sigProxy: io.sigProxy === false ? undefined : (sig) => void this.signal(c, sig).catch(() => undefined),
        onDetach: () => {
          detached = true;
          sock.end();
        },
      });
      if (start) sock.write(frame(Frame.Start));
      readFrames(sock, (kind, payload) => {
        if (kind === Frame.Stdout) io.stdout.write(payload);
        else if (kind === Frame.Stderr) io.stderr.write(payload);
        else if (kind === Frame.Exit) status = JSON.parse(payload.toString()) as ExitStatus;
      });
      sock.on('error', (err) => {
        if (!status) reject(err);
      });
      sock.on('close', () => {
        undoInput();
        if (detached && !status) resolve({ exitCode: 0, detached: true });
        else if (status) {
          if (status.error) reject(new StartError(status.error, status.exitCode));
          else resolve(status);
        } else {
          // The monitor died mid-way; the container may still run. Its record decides.
          this.waitExit(c.id).then(() => resolve(this.exitStatusAfterMonitor(c)), reject);
        }
      });
    });
  }

  /**
   * A connection to the monitor's attach socket, or null when there is no monitor to talk to.
   * The socket file appears at bind, a moment before the monitor listens: a refused connection
   * is tried again while keepTrying says the monitor is still there, else the output of a
   * process started on our Start frame would be lost.
   */
  private async connectMonitor(path: string, keepTrying: () => boolean): Promise<Socket | null> {
    for (;;) {
      if (existsSync(path)) {
        const sock = connect(path);
        const err = await new Promise<NodeJS.ErrnoException | null>((resolve) => {
          sock.once('connect', () => resolve(null));
          sock.once('error', resolve);
        });
        if (!err) return sock;
        sock.destroy();
        if (err.code !== 'ECONNREFUSED' && err.code !== 'ENOENT') throw err;
      }
      if (!keepTrying()) return null;
      await sleep(POLL_MS);
    }
  }

  private exitStatusAfterMonitor(c: ContainerRecord): ExitStatus {
    const s = this.state(c.id);
    if (s.error && s.status !== 'exited') throw new StartError(s.error, s.exitCode);
    return { exitCode: s.exitCode };
  }

  /** Wait until the container is not running; true when it stopped within `ms`. */
  async waitExit(id: string, ms = Infinity): Promise<boolean> {
    const until = Date.now() + ms;
    while (this.isRunning(id)) {
      if (Date.now() >= until) return false;
      await sleep(POLL_MS);
    }
    await this.reap(id);
    return true;
  }

  /**
   * A container whose monitor died: once its process is gone too, record the end, and undo
   * what the monitor would have undone (runc's state, the root's mount).
   */
  async reap(id: string): Promise<void> {
    const rec = this.d.states.recorded(id);
    if (rec.status !== 'running' && rec.status !== 'paused') return;
    if (ownerAlive(rec.monitor) || ownerAlive(rec.process)) return;
    const c = this.d.containers.get(id);
    this.d.states.update(id, { status: 'exited', exitCode: 255, process: null, monitor: null, finishedAt: now(), ports: [] });
    if (!c) return;
    await this.runc(c).delete(id).catch(() => undefined);
    if (c.config.host?.network === 'default') closeSandbox(this.netnsDir, id.slice(0, 32));
    await this.d.driver.put(c.layer).catch(() => undefined);
    if (c.config.host?.autoRemove) await this.d.removeContainer(id);
    this.pruneExecRoot();
  }

  /**
   * `rm`: what the runtime keeps of a container under the exec root (runc's state, the attach
   * socket, the network namespace) goes with it, and the exec root too when nothing is left.
   */
  async forget(c: ContainerRecord): Promise<void> {
    await this.runc(c).delete(c.id).catch(() => undefined);
    rmSync(this.socketPath(c.id), { force: true });
    closeSandbox(this.netnsDir, c.id.slice(0, 32));
    this.pruneExecRoot();
  }

  /**
   * The exec root and its runc and netns folders, when empty: no container of this store runs.
   * Only empty directories go (rmdir), so a running or starting container keeps them; a monitor
   * makes the exec root again before it puts anything there.
   */
  pruneExecRoot(): void {
    for (const dir of [join(this.execRoot, 'runc'), this.netnsDir, this.execRoot]) {
      try {
        rmdirSync(dir);
      } catch {
        // not empty (a container runs or is starting), or gone already
      }
    }
  }

  /** Written by `stop` and `kill`: the monitor does not restart a container a user stopped. */
  private stoppedFile(id: string): string {
    return join(this.containerDir(id), 'stopped-by-user');
  }

  private markStopped(id: string): void {
    if (existsSync(this.containerDir(id))) writeFileSync(this.stoppedFile(id), '');
  }

  /** Times the monitor restarted the container's process (`--restart`), for inspect. */
  restartCount(id: string): number {
    try {
      return Number(readFileSync(join(this.containerDir(id), 'restart-count'), 'utf8')) || 0;
    } catch {
      return 0;
    }
  }

  /** Written by the monitor when the OOM killer killed a process of the container's last run. */
  private oomFile(id: string): string {
    return join(this.containerDir(id), 'oom-killed');
  }

  /** inspect's State.OOMKilled. */
  oomKilled(id: string): boolean {
    return existsSync(this.oomFile(id));
  }

  async stop(c: ContainerRecord, timeoutSec?: number, signal?: string): Promise<void> {
    if (!this.isRunning(c.id)) return;
    this.markStopped(c.id);
    const sig = signal ?? c.config.process?.stopSignal ?? 'SIGTERM';
    const runc = this.runc(c);
    await this.signal(c, sig);
    if (this.state(c.id).status === 'paused') await runc.resume(c.id).catch(() => undefined);
    const grace = timeoutSec === undefined ? 10 : timeoutSec;
    if (grace < 0 ? await this.waitExit(c.id) : await this.waitExit(c.id, grace * 1000)) return;
    await this.signal(c, 'SIGKILL');
    await this.waitExit(c.id);
  }

  async kill(c: ContainerRecord, signal = 'SIGKILL'): Promise<void> {
    const sig = parseSignal(signal);
    if (!this.isRunning(c.id)) throw new ConflictError(`Cannot kill container: ${c.id.slice(0, 12)}: Container ${c.id} is not running`);
    this.markStopped(c.id);
    await this.signal(c, sig);
  }

  async signal(c: ContainerRecord, sig: string): Promise<void> {
    try {
      await this.runc(c).kill(c.id, sig, sig === 'SIGKILL');
    } catch (err) {
      // Between our look and runc's, the process may have ended: that is what we wanted. runc
      // then says so, or (kill --all) fails on the cgroup its own teardown just removed; a
      // container that is gone a moment later was ending anyway.
      if (!this.isRunning(c.id) || /not running|does not exist|container not running/.test((err as Error).message)) return;
      if (await this.waitExit(c.id, SIGNAL_RACE_MS)) return;
      throw err;
    }
  }

  async pause(c: ContainerRecord): Promise<void> {
    if (dockerStatus(this.state(c.id)) === 'restarting') throw restartingError(c.id);
    if (this.state(c.id).status !== 'running') throw new ConflictError(`Container ${c.id} is not running`);
    await this.runc(c).pause(c.id);
    this.d.states.update(c.id, { status: 'paused' });
  }

  async unpause(c: ContainerRecord): Promise<void> {
    if (this.state(c.id).status !== 'paused') throw new ConflictError(`Container ${c.id} is not paused`);
    await this.runc(c).resume(c.id);
    this.d.states.update(c.id, { status: 'running' });
  }

  /** `wait`: block until the container stops; its exit code. */
  async wait(c: ContainerRecord): Promise<number> {
    // A created container that nobody starts would make this wait forever, as docker's does.
    for (;;) {
      await this.waitExit(c.id);
      const s = this.state(c.id);
      if (s.status === 'exited') return s.exitCode;
      await sleep(POLL_MS * 10);
    }
  }

  /** `logs`: what the container wrote, from its json-file log. */
  async logs(c: ContainerRecord, out: { stdout: Writable; stderr: Writable }, o: { follow?: boolean; tail?: number; timestamps?: boolean; since?: Date; until?: Date } = {}): Promise<void> {
    const path = join(this.containerDir(c.id), `${c.id}-json.log`);
    const print = (e: LogEntry) => (e.stream === 'stderr' ? out.stderr : out.stdout).write(o.timestamps ? `${e.time} ${e.log}` : e.log);
    const first = await readLog(path, { tail: o.tail, since: o.since, until: o.until });
    first.entries.forEach(print);
    if (!o.follow) return;
    let offset = first.offset;
    for (;;) {
      const running = this.isRunning(c.id);
      const next = await readLogFrom(path, offset);
      next.entries.forEach(print);
      offset = next.offset;
      if (!running) return;
      await sleep(100);
    }
  }

  /** After `rename`: config.v2.json says the new name, when the container has one written. */
  nameChanged(id: string): void {
    const c = this.d.containers.get(id);
    const file = join(this.containerDir(id), 'config.v2.json');
    if (c?.config.process && existsSync(file)) writeFileSync(file, JSON.stringify(configV2Json(c)));
  }

  /** Run inside the monitor process: mount, write the bundle, run, record, clean up. */
  async monitor(id: string, waitForAttach: boolean, made?: Promise<boolean>): Promise<void> {
    if (made && !(await made)) {
      // Its `run` failed before the container was made, or died making it: the directory it
      // made for our log goes, unless the container exists after all.
      if (!this.d.containers.get(id)) rmSync(this.containerDir(id), { recursive: true, force: true });
      return;
    }
    const c = this.d.containers.get(id);
    if (!c || !c.config.process || !c.config.host) throw new StrataError(`No such container: ${id}`);
    const proc = c.config.process;
    const host = c.config.host;
    const dir = this.containerDir(id);
    const runc = this.runc(c);
    log.debug(`monitor ${id.slice(0, 12)}: begins`);
    this.d.states.update(id, { monitor: ownerId(), error: '' });
    // Recorded first: from now on no other monitor prunes the exec root (pruneExecRoot).
    mkdirSync(this.execRoot, { recursive: true, mode: 0o700 });
    const failStart = (message: string, exitCode: number) => this.d.states.update(id, { error: message, exitCode, monitor: null });
    let rootfs: string;
    let sandbox: Sandbox | undefined;
    // The container was removed while its first run waited for a client (rm -f).
    let gone = false;
    try {
      rootfs = await this.d.driver.get(c.layer);
    } catch (err) {
      failStart((err as Error).message, 125);
      throw err;
    }
    try {
      log.debug(`monitor ${id.slice(0, 12)}: root mounted`);
      const hostname = host.network === 'host' ? hostHostname() : c.config.hostname;
      const files = { hostname: join(dir, 'hostname'), hosts: join(dir, 'hosts'), resolvConf: join(dir, 'resolv.conf') };
      writeFileSync(files.hostname, `${hostname}\n`);
      writeFileSync(files.hosts, host.network === 'host' ? readHostFile('/etc/hosts') : LOOPBACK_HOSTS);
      writeFileSync(files.resolvConf, readHostFile('/etc/resolv.conf'));
      writeFileSync(join(dir, 'hostconfig.json'), JSON.stringify(hostConfigJson(c)));
      writeFileSync(join(dir, 'config.v2.json'), JSON.stringify(configV2Json(c)));
      for (const b of host.binds) {
        if (!existsSync(b.source)) mkdirSync(b.source, { recursive: true, mode: 0o755 });
        else statSync(b.source);
      }
      let user;
      try {
        user = await resolveUser(rootfs, proc.user);
      } catch (err) {
        failStart((err as Error).message, 125);
        return;
      }
      if (host.network === 'default') sandbox = await openSandbox(this.netnsDir, id.slice(0, 32), host.ports);
      const network: NetworkMode = host.network === 'host' ? { kind: 'host' } : sandbox ? { kind: 'netns', path: sandbox.netns } : { kind: 'none' };
      const ports = sandbox?.ports ?? [];
      const cgroupsPath = `/strata/${id}`;
      const spec = buildSpec({
        rootfs,
        process: proc,
        user,
        hostname,
        tty: proc.tty,
        readOnly: host.readOnly,
        network,
        files,
        binds: host.binds,
        init: host.init ? INIT_BINARY : undefined,
        cgroupsPath,
        resources: ociResources(host.resources ?? NO_LIMITS),
        rootless: isRootless(),
      });
      writeFileSync(join(dir, 'config.json'), JSON.stringify(spec, null, 2));
      // A leftover of an earlier run that nobody deleted (a monitor killed mid-way).
      await runc.delete(id).catch(() => undefined);
      log.debug(`monitor ${id.slice(0, 12)}: bundle written`);
      const policy = host.restart ?? NO_RESTART;
      const stopFile = this.stoppedFile(id);
      let count = 0;
      let delay = 0;
      for (;;) {
        let again = false;
        let startedAt = Date.now();
        rmSync(this.oomFile(id), { force: true });
        const oom = OomWatch.open(cgroupsPath);
        const ran = await runMonitor({
          runc,
          id,
          bundle: dir,
          logPath: join(dir, `${id}-json.log`),
          socketPath: this.socketPath(id),
          pidFile: join(dir, 'init.pid'),
          runcLog: join(dir, 'runc.log'),
          openStdin: proc.openStdin,
          tty: proc.tty,
          // A restarted process does not wait for a client: the first run had its attach.
          waitForAttach: waitForAttach && count === 0,
          removed: () => this.d.containers.get(id)?.state !== 'created',
          onStarted: (pid) => {
            startedAt = Date.now();
            this.d.states.update(id, { status: 'running', process: identityOf(pid), startedAt: now(), exitCode: 0, error: '', ports });
          },
          onExited: (status) => {
            if (oom?.finish()) writeFileSync(this.oomFile(id), '');
            again = !status.error && shouldRestart(policy, status.exitCode, count, existsSync(stopFile));
            if (status.error) failStart(status.error, status.exitCode);
            // Restarting: still "running" to every command (stop, rm -f and wait reach it), with no process.
            else if (again) this.d.states.update(id, { status: 'running', exitCode: status.exitCode, process: null, finishedAt: now() });
            else this.d.states.update(id, { status: 'exited', exitCode: status.exitCode, process: null, monitor: null, finishedAt: now(), ports: [] });
          },
        });
        if (ran === null) {
          gone = true;
          break;
        }
        if (!again) break;
        delay = nextDelay(delay, Date.now() - startedAt);
        const until = Date.now() + delay;
        while (Date.now() < until && !existsSync(stopFile)) await sleep(POLL_MS);
        if (existsSync(stopFile)) {
          this.d.states.update(id, { status: 'exited', monitor: null, ports: [] });
          break;
        }
        count++;
        writeFileSync(join(dir, 'restart-count'), String(count));
      }
    } catch (err) {
      failStart((err as Error).message, err instanceof StrataError ? err.exitCode : 125);
      throw err;
    } finally {
      await sandbox?.close();
      rmSync(this.socketPath(id), { force: true });
      await this.d.driver.put(c.layer).catch(() => undefined);
      log.debug(`monitor ${id.slice(0, 12)}: root unmounted`);
    }
    if (gone) log.debug(`monitor ${id.slice(0, 12)}: removed before it started`);
    else if (host.autoRemove) await this.d.removeContainer(id);
    log.debug(`monitor ${id.slice(0, 12)}: done`);
    this.pruneExecRoot();
  }
}

/** Docker's hostconfig.json, for the tools that read a container's directory. */
function hostConfigJson(c: ContainerRecord): Record<string, unknown> {
  const h = c.config.host!;
  return {
    Binds: h.binds.map((b) => `${b.source}:${b.destination}${b.readOnly ? ':ro' : ''}`),
    NetworkMode: h.network,
    AutoRemove: h.autoRemove,
    ReadonlyRootfs: h.readOnly,
    Init: h.init,
    Runtime: h.runtime,
    StorageOpt: Object.keys(c.config.storageOpt).length ? c.config.storageOpt : null,
    ...hostConfigResources(h.resources),
    RestartPolicy: h.restart ?? NO_RESTART,
  };
}

function configV2Json(c: ContainerRecord): Record<string, unknown> {
  const p = c.config.process!;
  return {
    ID: c.id,
    Name: `/${c.name}`,
    Image: c.imageId,
    Created: c.created,
    Path: p.args[0],
    Args: p.args.slice(1),
    Config: {
      Hostname: c.config.hostname,
      User: p.user,
      Tty: p.tty,
      OpenStdin: p.openStdin,
      Env: p.env,
      Cmd: p.args,
      Image: c.imageRef,
      WorkingDir: p.cwd,
      StopSignal: p.stopSignal,
    },
  };
}
