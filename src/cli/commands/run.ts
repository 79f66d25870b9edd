// Commands that run containers: run, start, stop, kill, restart, wait, logs, attach, pause,
// unpause, rename, and the hidden `__monitor` that a started container's monitor process runs. The
// flags that decide what a container runs are shared by `create` and `run` (runFlags).
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { InvalidInputError, StrataError } from '../../errors.js';
import type { CreateOptions, Store } from '../../store/store.js';
import { collect, eachTarget, parseKeyValues, SilentExit, type Context, type Output } from '../context.js';
import { ProgressRenderer } from '../progress.js';
import { parseResourceFlags, type ResourceFlags } from '../../runtime/resources.js';
import { parseDetachKeys } from '../../runtime/terminal.js';
import { parsePullPolicy, type ImagePullOptions } from '../../store/transfer.js';
import { MONITOR_GO } from '../../store/run.js';

/** The flags of `create` and `run` that say what the container runs and how. */
export function runFlags(cmd: Command): Command {
  return cmd
    .option('--name <name>', 'assign a name to the container')
    .option('-h, --hostname <name>', 'container host name')
    .option('-e, --env <K=V>', 'set environment variables', collect, [] as string[])
    .option('--env-file <file>', 'read in a file of environment variables', collect, [] as string[])
    .option('-w, --workdir <dir>', 'working directory inside the container')
    .option('-u, --user <user[:group]>', 'username or UID (format: <name|uid>[:<group|gid>])')
    .option('--entrypoint <cmd>', 'overwrite the default ENTRYPOINT of the image')
    .option('-i, --interactive', 'keep STDIN open even if not attached')
    .option('-t, --tty', 'allocate a pseudo-TTY')
    .option('--network <mode>', 'connect the container to a network: default (pasta), none or host', 'default')
    .option('-p, --publish <[ip:]host:ctr>', "publish a container's port to the host", collect, [] as string[])
    .option('-v, --volume <HOST:CTR[:ro]>', 'bind mount a host directory', collect, [] as string[])
    .option('--read-only', "mount the container's root filesystem as read only")
    .option('--init', 'run an init inside the container that forwards signals and reaps processes')
    .option('--stop-signal <signal>', 'signal to stop the container')
    .option('--rm', 'automatically remove the container when it exits')
    .option('--runtime <name>', 'OCI runtime to use for this container', 'runc')
    .option('--storage-opt <key=value>', 'storage driver options for the container (e.g. size=50M)', collect, [] as string[])
    .option('-m, --memory <bytes>', 'memory limit')
    .option('--memory-swap <bytes>', "swap limit equal to memory plus swap: '-1' to enable unlimited swap")
    .option('--cpus <number>', 'number of CPUs')
    .option('-c, --cpu-shares <int>', 'CPU shares (relative weight)')
    .option('--pids-limit <int>', 'tune container pids limit (set -1 for unlimited)')
    .option('--cpuset-cpus <list>', 'CPUs in which to allow execution (0-3, 0,1)')
    .option('--restart <policy>', 'restart policy to apply when a container exits (no, on-failure[:N], always, unless-stopped)', 'no')
    .option('--pull <policy>', 'pull image before running ("always"|"missing"|"never")', 'missing')
    .option('--platform <os/arch[/variant]>', 'set platform if server is multi-platform capable');
}

interface RunFlags extends ResourceFlags {
  name?: string;
  hostname?: string;
  env: string[];
  envFile: string[];
  workdir?: string;
  user?: string;
  entrypoint?: string;
  interactive?: boolean;
  tty?: boolean;
  network?: string;
  publish: string[];
  volume: string[];
  readOnly?: boolean;
  init?: boolean;
  stopSignal?: string;
  rm?: boolean;
  runtime: string;
  storageOpt: string[];
  pull: string;
  platform?: string;
  restart: string;
}

/** `-e K` takes K from this process's environment, as docker does; an unset K is left out. */
export function expandEnv(list: string[]): string[] {
  const out: string[] = [];
  for (const e of list) {
    if (e.includes('=')) out.push(e);
    else if (e && process.env[e] !== undefined) out.push(`${e}=${process.env[e]}`);
    else if (!e) throw new InvalidInputError('invalid environment variable: empty name');
  }
  return out;
}

export function envFiles(files: string[]): string[] {
  const out: string[] = [];
  for (const f of files) {
    let text: string;
    try {
      text = readFileSync(f, 'utf8');
    } catch (err) {
      throw new InvalidInputError(`open ${f}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (err as Error).message}`);
    }
    for (const line of text.split('\n')) {
      const l = line.replace(/^\s+/, '');
      if (l === '' || l.startsWith('#')) continue;
      out.push(...expandEnv([l]));
    }
  }
  return out;
}

/** `--storage-opt k=v…`; docker refuses one without `=` before anything happens (exit 125). */
function storageOpts(list: string[]): Record<string, string> {
  if (list.some((kv) => !kv.includes('='))) throw new StrataError('invalid storage option', 125);
  return parseKeyValues(list, 'storage option');
}

/**
 * `--pull`/`--platform` as docker's CLI does them: an image the store lacks is announced on
 * stderr ("Unable to find image 'x:latest' locally") and pulled with its progress on stderr too.
 */
function pullOptions(o: RunFlags, io: Output): ImagePullOptions {
  const progress = new ProgressRenderer(io.err);
  return {
    policy: parsePullPolicy(o.pull),
    platform: o.platform,
    onMissing: (name) => io.err.write(`Unable to find image '${name}' locally\n`),
    onProgress: progress.listener,
  };
}

export function createOptions(o: RunFlags, cmd: string[], io: Output): CreateOptions {
  return {
    pull: pullOptions(o, io),
    name: o.name,
    hostname: o.hostname,
    storageOpt: o.storageOpt.length ? storageOpts(o.storageOpt) : undefined,
    cmd,
    entrypoint: o.entrypoint,
    env: [...envFiles(o.envFile), ...expandEnv(o.env)],
    workdir: o.workdir,
    user: o.user,
    interactive: o.interactive,
    tty: o.tty,
    network: o.network,
    publish: o.publish,
    volumes: o.volume,
    readOnly: o.readOnly,
    init: o.init,
    stopSignal: o.stopSignal,
    autoRemove: o.rm,
    runtime: o.runtime,
    resources: parseResourceFlags(o),
    restart: o.restart,
  };
}

function timeoutOpt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n)) throw new InvalidInputError(`invalid argument "${v}" for "-t, --time" flag: expected an integer`);
  return n;
}

/** `--since`/`--until`: an RFC 3339 time, a Unix timestamp, or a duration back from now (10m, 1h30m). */
function parseTime(v: string): Date {
  const dur = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$/.exec(v);
  if (dur && v !== '') {
    const ms = (Number(dur[1] ?? 0) * 3600 + Number(dur[2] ?? 0) * 60 + Number(dur[3] ?? 0)) * 1000;
    return new Date(Date.now() - ms);
  }
  if (/^\d+(\.\d+)?$/.test(v)) return new Date(Number(v) * 1000);
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new InvalidInputError(`invalid time "${v}": use RFC 3339, a Unix timestamp or a duration such as 10m`);
  return new Date(t);
}

/** `--detach-keys`, checked before anything is made (docker's grammar, runtime/terminal.ts). */
export function detachKeysOpt(spec: string | undefined): string | undefined {
  if (spec !== undefined) parseDetachKeys(spec);
  return spec;
}

/**
 * For a monitor that `run` started before the container was made: true once `run` writes
 * MONITOR_GO on stdin, false when stdin ends without it (`run` is gone, no container to watch).
 */
async function containerMade(): Promise<boolean> {
  let got = '';
  for await (const chunk of process.stdin) got += String(chunk);
  return got === MONITOR_GO;
}

/** Docker's exit codes: a failure of strata itself before the process runs is 125. */
function asRunError(err: unknown): never {
  if (err instanceof StrataError && err.exitCode === 1) throw new StrataError(err.message, 125, err.code);
  throw err;
}

export function addRunCommands(program: Command, { io, withStore }: Context): void {
  /** Act on every named container, printing each name as docker's stop, kill, pause… do. */
  const eachContainer = (refs: string[], fn: (store: Store, ref: string) => Promise<unknown>) =>
    withStore((store) =>
      eachTarget(refs, async (ref) => {
        await fn(store, ref);
        io.print(ref);
      }),
    );

  runFlags(
    program
      .command('run')
      .description('Create and run a new container from an image')
      .argument('<image>')
      .argument('[command...]')
      .option('-d, --detach', 'run the container in the background and print its ID')
      .option('--detach-keys <keys>', 'override the key sequence for detaching a container')
      .option('--no-sig-proxy', 'do not proxy received signals to the process'),
  )
    .passThroughOptions()
    .action(async (image: string, cmd: string[], o: RunFlags & { detach?: boolean; detachKeys?: string; sigProxy: boolean }) => {
      const detachKeys = detachKeysOpt(o.detachKeys);
      let opts: CreateOptions;
      try {
        opts = createOptions(o, cmd, io);
      } catch (err) {
        asRunError(err);
      }
      await withStore(async (store) => {
        let result;
        try {
          result = await store.run(
            image,
            opts,
            o.detach ? undefined : { stdin: o.interactive ? process.stdin : undefined, stdout: io.out, stderr: io.err, detachKeys, sigProxy: o.sigProxy },
          );
        } catch (err) {
          asRunError(err);
        }
        if (o.detach) {
          io.print(result.container.id);
          return;
        }
        if (result.exit && result.exit.exitCode !== 0) throw new SilentExit(result.exit.exitCode);
      });
    });

  program
    .command('start')
    .description('Start one or more stopped containers')
    .argument('<container...>')
    .option('-a, --attach', "attach STDOUT/STDERR and forward signals")
    .option('-i, --interactive', "attach container's STDIN")
    .option('--detach-keys <keys>', 'override the key sequence for detaching a container')
    .action(async (refs: string[], o: { attach?: boolean; interactive?: boolean; detachKeys?: string }) => {
      const detachKeys = detachKeysOpt(o.detachKeys);
      await withStore(async (store) => {
        if (o.attach || o.interactive) {
          if (refs.length > 1) throw new InvalidInputError('you cannot start and attach multiple containers at once');
          const exit = await store.start(refs[0]!, { stdin: o.interactive ? process.stdin : undefined, stdout: io.out, stderr: io.err, detachKeys });
          if (exit && exit.exitCode !== 0) throw new SilentExit(exit.exitCode);
          return;
        }
        await eachTarget(refs, async (ref) => {
          await store.start(ref);
          io.print(ref);
        });
      });
    });

  program
    .command('stop')
    .description('Stop one or more running containers')
    .argument('<container...>')
    .option('-t, --time <seconds>', 'seconds to wait for stop before killing it', timeoutOpt)
    .action(async (refs: string[], o: { time?: number }) => {
      await eachContainer(refs, (store, ref) => store.stop(ref, { timeoutSec: o.time }));
    });

  program
    .command('restart')
    .description('Restart one or more containers')
    .argument('<container...>')
    .option('-t, --time <seconds>', 'seconds to wait for stop before killing the container', timeoutOpt)
    .action(async (refs: string[], o: { time?: number }) => {
      await eachContainer(refs, (store, ref) => store.restart(ref, { timeoutSec: o.time }));
    });

  program
    .command('kill')
    .description('Kill one or more running containers')
    .argument('<container...>')
    .option('-s, --signal <signal>', 'signal to send to the container', 'KILL')
    .action(async (refs: string[], o: { signal: string }) => {
      await eachContainer(refs, (store, ref) => store.kill(ref, o.signal));
    });

  program
    .command('wait')
    .description('Block until one or more containers stop, then print their exit codes')
    .argument('<container...>')
    .action(async (refs: string[]) => {
      await withStore((store) =>
        eachTarget(refs, async (ref) => {
          io.print(String(await store.wait(ref)));
        }),
      );
    });

  program
    .command('logs')
    .description('Fetch the logs of a container')
    .argument('<container>')
    .option('-f, --follow', 'follow log output')
    .option('-n, --tail <n>', 'number of lines to show from the end of the logs', 'all')
    .option('-t, --timestamps', 'show timestamps')
    .option('--since <time>', 'show logs since a timestamp or relative time (e.g. 42m)')
    .option('--until <time>', 'show logs before a timestamp or relative time')
    .action(async (ref: string, o: { follow?: boolean; tail: string; timestamps?: boolean; since?: string; until?: string }) => {
      let tail: number | undefined;
      if (o.tail !== 'all') {
        tail = Number(o.tail);
        if (!Number.isInteger(tail)) throw new InvalidInputError(`invalid value for --tail: ${o.tail}`);
        if (tail < 0) tail = undefined;
      }
      const since = o.since ? parseTime(o.since) : undefined;
      const until = o.until ? parseTime(o.until) : undefined;
      await withStore((store) => store.logs(ref, { stdout: io.out, stderr: io.err }, { follow: o.follow, tail, timestamps: o.timestamps, since, until }));
    });

  program
    .command('attach')
    .description("Attach to a running container's output (and input with --stdin)")
    .argument('<container>')
    .option('--no-stdin', 'do not attach STDIN')
    .option('--detach-keys <keys>', 'override the key sequence for detaching a container')
    .action(async (ref: string, o: { stdin: boolean; detachKeys?: string }) => {
      const detachKeys = detachKeysOpt(o.detachKeys);
      await withStore(async (store) => {
        const exit = await store.attach(ref, { stdin: o.stdin ? process.stdin : undefined, stdout: io.out, stderr: io.err, detachKeys });
        if (exit.exitCode !== 0) throw new SilentExit(exit.exitCode);
      });
    });

  program
    .command('pause')
    .description('Pause all processes within one or more containers')
    .argument('<container...>')
    .action(async (refs: string[]) => {
      await eachContainer(refs, (store, ref) => store.pause(ref));
    });

  program
    .command('unpause')
    .description('Unpause all processes within one or more containers')
    .argument('<container...>')
    .action(async (refs: string[]) => {
      await eachContainer(refs, (store, ref) => store.unpause(ref));
    });

  program
    .command('rename')
    .description('Rename a container')
    .argument('<container>')
    .argument('<new-name>')
    .action(async (ref: string, name: string) => {
      await withStore(async (store) => {
        try {
          store.renameContainer(ref, name);
        } catch (err) {
          // docker prints the daemon's reason, then which rename failed.
          if (!(err instanceof StrataError) || /^Neither old nor new/.test(err.message)) throw err;
          io.err.write(`Error: ${err.message}\n`);
          throw new StrataError(`failed to rename container named ${ref}`, err.exitCode, err.code);
        }
      });
    });

  program
    .command('__monitor', { hidden: true })
    .argument('<id>')
    .option('--attach', 'start the process once a client attaches')
    .option('--when-created', 'started before the container exists: wait until stdin says it does')
    .action(async (id: string, o: { attach?: boolean; whenCreated?: boolean }) => {
      // A process of its own: no terminal to die with, nothing to answer on.
      process.on('SIGHUP', () => undefined);
      process.on('SIGINT', () => undefined);
      await withStore((store) => store.monitorContainer(id, o.attach ?? false, o.whenCreated ? containerMade() : undefined));
    });
}
