// The strata command line: the program, its global options, and the one place where an error
// becomes an `Error: …` line and an exit code. The commands live in ./commands/, one module per
// group, each parsing its flags, calling the library and printing what docker prints.
import { Command, CommanderError, Option } from 'commander';
import { StrataError } from '../errors.js';
import { isLogLevel, log, logLevels, setLogLevel } from '../log.js';
import { Store, type StoreOptions } from '../store/store.js';
import { defaultStoreRoot } from '../sys/rootless.js';
import { runInUserNamespace } from '../sys/userns.js';
import { defaultStrataCommand } from '../self.js';
import { version } from '../version.js';
import { addContainerCommands } from './commands/containers.js';
import { addImageCommands } from './commands/images.js';
import { addRegistryCommands } from './commands/registry.js';
import { addExecCommands } from './commands/exec.js';
import { addRunCommands } from './commands/run.js';
import { addSystemCommands } from './commands/system.js';
import { addRootlessCommands } from './commands/rootless.js';
import { collect, Output, parseKeyValues, PartialFailure, SilentExit, type Context } from './context.js';
import { pflagBooleans } from './pflag.js';
import { installCompletion } from './completion.js';
import { installHelp } from './help.js';

interface GlobalOpts {
  root: string;
  driver?: string;
  storageOpt: string[];
  logLevel: string;
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
    .enablePositionalOptions()
    .showHelpAfterError(false)
    .configureOutput({ writeOut: (s) => io.out.write(s), writeErr: (s) => io.err.write(s) })
    .exitOverride()
    .hook('preAction', () => {
      const level = program.opts<GlobalOpts>().logLevel;
      if (isLogLevel(level)) setLogLevel(level, (line) => io.err.write(line));
    });

  const ctx: Context = {
    io,
    withStore: async (fn) => {
      const g = program.opts<GlobalOpts>();
      const opts: StoreOptions = { root: g.root, driver: g.driver, storageOpts: parseKeyValues(g.storageOpt, 'storage option') };
      const store = await Store.open(opts);
      try {
        return await fn(store);
      } finally {
        await store.close();
      }
    },
  };
  addImageCommands(program, ctx);
  addContainerCommands(program, ctx);
  addRunCommands(program, ctx);
  addExecCommands(program, ctx);
  addRegistryCommands(program, ctx);
  addSystemCommands(program, ctx);
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
  try {
    await program.parseAsync(pflagBooleans(program, argv), { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof SilentExit) return err.exitCode;
    if (err instanceof CommanderError) return parseErrorExit(err);
    const failures = err instanceof PartialFailure ? err.errors : [err];
    for (const e of failures) io.err.write(`Error: ${(e as Error).message ?? String(e)}\n`);
    const first = failures[0];
    if (first instanceof StrataError) return first.exitCode;
    // Not a user error: a bug or a system failure. The stack helps whoever reports it.
    if (log.enabled('debug') || process.env.STRATA_DEBUG) io.err.write(`${(first as Error).stack}\n`);
    return 1;
  }
}
