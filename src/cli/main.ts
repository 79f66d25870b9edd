// The strata command line: the program, its global options, and the one place where an error
// becomes an `Error: …` line and an exit code. The commands live in ./commands/, one module per
// group, each parsing its flags, calling the library and printing what docker prints.
import { Command, CommanderError, Option } from 'commander';
import { StrataError } from '../errors.js';
import { isLogLevel, log, logLevels, setLogLevel } from '../log.js';
import type { StoreOptions } from '../store/store.js';
import { defaultStoreRoot } from '../sys/rootless.js';
import { runInUserNamespace } from '../sys/userns.js';
import { defaultStrataCommand } from '../self.js';
import { version } from '../version.js';
import { addContainerCommands } from './commands/containers.js';
import { addImageCommands } from './commands/images.js';
import { addLayerCommands } from './commands/layers.js';
import { addRegistryCommands } from './commands/registry.js';
import { addExecCommands } from './commands/exec.js';
import { addRunCommands } from './commands/run.js';
import { addPruneCommand, addSystemCommands } from './commands/system.js';
import { addUiCommands } from './commands/ui.js';
import { addGroups } from './groups.js';
import { addRootlessCommands } from './commands/rootless.js';
import { collect, Output, parseKeyValues, PartialFailure, SilentExit, type Context } from './context.js';

// For bin/bundle-loader.cjs, which runs commands into a sink of its own when it makes the code cache.
export { Output };
import { commandFor, pflagBooleans } from './pflag.js';
import { installCompletion } from './completion.js';
import { installHelp } from './help.js';
import { DEFAULT_CONFIG, loadConfig, type DaemonConfig } from './config.js';

interface GlobalOpts {
  root: string;
  driver?: string;
  storageOpt: string[];
  logLevel: string;
  config?: string;
}

export function buildProgram(io = new Output()): Command {
  const program = new Command('strata');
  program
    .description('Daemonless container image and layer store')
    .version(version)
    .option('--root <dir>', 'store root directory', process.env.STRATA_ROOT ?? defaultStoreRoot())
    .option('-s, --driver <name>', 'storage driver (default: chosen like Docker)', process.env.STRATA_DRIVER)
    .option('--storage-opt <key=value>', 'storage driver option (repeatable)', collect, [] as string[])
    .addOption(new Option('-l, --log-level <level>', 'logging level (debug prints what strata does on stderr)').choices([...logLevels]).default('info'))
    .option('--config <file>', `Docker-style daemon.json to read (default ${DEFAULT_CONFIG} when it exists)`)
    .enablePositionalOptions()
    .showHelpAfterError(false)
    // Parse errors are printed by main(), in docker's words where docker has its own.
    .configureOutput({ writeOut: (s) => io.out.write(s), writeErr: (s) => io.err.write(s), outputError: () => undefined })
    .exitOverride()
    .hook('preAction', () => {
      const g = program.opts<GlobalOpts>();
      config = loadConfig(g.config);
      const level = explicit('logLevel') ? g.logLevel : (config['log-level'] ?? g.logLevel);
      if (isLogLevel(level)) setLogLevel(level, (line) => io.err.write(line));
    });
  let config: DaemonConfig = {};
  /** A global flag given on the command line (or through its environment variable) wins over the file. */
  const explicit = (key: keyof GlobalOpts) => program.getOptionValueSource(key) === 'cli';

  const ctx: Context = {
    io,
    withStore: async (fn) => {
      const g = program.opts<GlobalOpts>();
      const opts: StoreOptions = {
        root: explicit('root') ? g.root : (process.env.STRATA_ROOT ?? config['data-root'] ?? g.root),
        driver: explicit('driver') ? g.driver : (process.env.STRATA_DRIVER ?? config['storage-driver']),
        storageOpts: parseKeyValues(g.storageOpt.length ? g.storageOpt : (config['storage-opts'] ?? []), 'storage option'),
        registryMirrors: config['registry-mirrors'],
        insecureRegistries: config['insecure-registries'],
      };
      const { Store } = await import('../store/store.js');
      const store = await Store.open(opts);
      try {
        return await fn(store);
      } finally {
        await store.close();
      }
    },
  };
  const register = [addImageCommands, addContainerCommands, addRunCommands, addExecCommands, addRegistryCommands, addSystemCommands];
  for (const r of register) r(program, ctx);
  addGroups(program, ctx, register, { image: (g) => addPruneCommand(g, 'image', ctx), container: (g) => addPruneCommand(g, 'container', ctx) });
  addLayerCommands(program, ctx);
  addUiCommands(program, ctx);
  addRootlessCommands(program);
  installCompletion(program, io.out);
  installHelp(program);
  return program;
}

/**
 * docker's exit codes for what its flag parser and cobra reject, as measured on Docker 20.10:
 * a flag problem is 125, a command or argument problem 1.
 */
function parseErrorExit(err: CommanderError): number {
  switch (err.code) {
    case 'commander.helpDisplayed':
    case 'commander.help':
    case 'commander.version':
      return 0;
    case 'commander.unknownOption':
    case 'commander.optionMissingArgument':
    case 'commander.missingMandatoryOptionValue':
    case 'commander.invalidArgument':
    case 'commander.conflictingOption':
      return 125;
    default:
      return err.exitCode === 0 ? 0 : 1;
  }
}

function plural(n: number): string {
  return `${n} argument${n === 1 ? '' : 's'}`;
}

/**
 * What docker's CLI says for a parse error: its wording for an unknown command and for a wrong
 * number of arguments (with the usage), commander's otherwise.
 */
function parseErrorText(err: CommanderError, program: Command, argv: string[]): string {
  if (err.code === 'commander.unknownCommand') {
    const [, name, hint] = /unknown command '([^']*)'(\n.*)?/s.exec(err.message) ?? [];
    return `strata: '${name}' is not a strata command.\nSee 'strata --help'${hint ?? ''}\n`;
  }
  if (err.code === 'commander.missingArgument' || err.code === 'commander.excessArguments') {
    const cmd = commandFor(program, argv);
    const args = cmd.registeredArguments;
    const min = args.filter((a) => a.required).length;
    const max = args.some((a) => a.variadic) ? Infinity : args.length;
    const rule =
      min === max ? `exactly ${plural(min)}` : max === Infinity ? `at least ${plural(min)}` : min === 0 ? `at most ${plural(max)}` : `at least ${min} and at most ${plural(max)}`;
    const path: string[] = [];
    for (let c: Command | null = cmd; c?.parent; c = c.parent) path.unshift(c.name());
    const name = ['strata', ...path].join(' ');
    return `"${name}" requires ${rule}.\nSee '${name} --help'.\n\nUsage:  ${name} ${cmd.usage()}\n\n${cmd.description()}\n`;
  }
  return err.message.endsWith('\n') ? err.message : `${err.message}\n`;
}

/** A write to a stdout whose reader went away (`strata images | head -1`). */
function isBrokenPipe(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | null)?.code === 'EPIPE';
}

export async function main(argv: string[], io = new Output()): Promise<number> {
  try {
    // Without root, strata works as root of a user namespace of the user's subordinate ids
    // (sys/userns.ts): the same command runs again in there, and this process only waits.
    if (process.geteuid?.() !== 0) return await runInUserNamespace([...defaultStrataCommand(), ...argv]);
  } catch (err) {
    io.err.write(`Error: ${(err as Error).message}\n`);
    return err instanceof StrataError ? err.exitCode : 1;
  }
  const program = buildProgram(io);
  const args = pflagBooleans(program, argv);
  // docker ends quietly when its reader goes: later writes go nowhere, and an EPIPE that stops
  // the command exits as a process killed by SIGPIPE does (128 + 13), with no message.
  io.out.on('error', (err) => {
    if (!isBrokenPipe(err)) throw err;
  });
  try {
    await program.parseAsync(args, { from: 'user' });
    return 0;
  } catch (err) {
    if (isBrokenPipe(err)) return 141;
    if (err instanceof SilentExit) return err.exitCode;
    if (err instanceof CommanderError) {
      const code = parseErrorExit(err);
      if (code !== 0) io.err.write(parseErrorText(err, program, args));
      return code;
    }
    const failures = err instanceof PartialFailure ? err.errors : [err];
    for (const e of failures) io.err.write(`Error: ${(e as Error).message ?? String(e)}\n`);
    const first = failures[0];
    if (first instanceof StrataError) return first.exitCode;
    // Not a user error: a bug or a system failure. The stack helps whoever reports it.
    if (log.enabled('debug') || process.env.STRATA_DEBUG) io.err.write(`${(first as Error).stack}\n`);
    return 1;
  }
}
