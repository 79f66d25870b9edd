// Commands that work inside a running (or, for cp, any) container: exec, top and cp.
import type { Command } from 'commander';
import { InvalidInputError } from '../../errors.js';
import { parseCopyEnd } from '../../store/cp.js';
import { collect, SilentExit, type Context } from '../context.js';
import { detachKeysOpt, envFiles, expandEnv } from './run.js';

interface ExecFlags {
  detach?: boolean;
  interactive?: boolean;
  tty?: boolean;
  env: string[];
  envFile: string[];
  user?: string;
  workdir?: string;
  detachKeys?: string;
}

export function addExecCommands(program: Command, { io, withStore }: Context): void {
  program
    .command('exec')
    .description('Execute a command in a running container')
    .argument('<container>')
    .argument('<command...>')
    .option('-d, --detach', 'detached mode: run command in the background')
    .option('-i, --interactive', 'keep STDIN open even if not attached')
    .option('-t, --tty', 'allocate a pseudo-TTY')
    .option('-e, --env <K=V>', 'set environment variables', collect, [] as string[])
    .option('--env-file <file>', 'read in a file of environment variables', collect, [] as string[])
    .option('-u, --user <user[:group]>', 'username or UID (format: <name|uid>[:<group|gid>])')
    .option('-w, --workdir <dir>', 'working directory inside the container')
    .option('--detach-keys <keys>', 'override the key sequence for detaching a container')
    .passThroughOptions()
    .action(async (ref: string, cmd: string[], o: ExecFlags) => {
      const detachKeys = detachKeysOpt(o.detachKeys);
      const env = [...envFiles(o.envFile), ...expandEnv(o.env)];
      const exit = await withStore(async (store) => {
        const exit = await store.exec(
          ref,
          { cmd, detach: o.detach, interactive: o.interactive, tty: o.tty, env, user: o.user, workdir: o.workdir },
          o.detach ? undefined : { stdin: o.interactive ? process.stdin : undefined, stdout: io.out, stderr: io.err, detachKeys },
        );
        if (exit && exit.exitCode !== 0) throw new SilentExit(exit.exitCode);
        return exit;
      });
      // Detached from `exec -it`: the process runs on, on a terminal a holder keeps; node-pty's
      // watch on runc would hold this process until then, so it ends here, its work done.
      if (exit?.detached) process.exit(0);
    });

  program
    .command('top')
    .description('Display the running processes of a container')
    .argument('<container>')
    .argument('[ps options...]')
    .allowUnknownOption()
    .passThroughOptions()
    .action(async (ref: string, psArgs: string[]) => {
      await withStore(async (store) => {
        const t = await store.top(ref, psArgs);
        io.out.write(tabulate([t.titles, ...t.processes]));
      });
    });

  program
    .command('cp')
    .description('Copy files/folders between a container and the local filesystem (- for a tar stream)')
    .argument('<src>', 'CONTAINER:SRC_PATH, a local path, or -')
    .argument('<dst>', 'CONTAINER:DEST_PATH, a local path, or -')
    .action(async (srcArg: string, dstArg: string) => {
      const src = parseCopyEnd(srcArg);
      const dst = parseCopyEnd(dstArg);
      const inContainer = (e: typeof src) => e !== '-' && 'container' in e;
      if (inContainer(src) && inContainer(dst)) throw new InvalidInputError('copying between containers is not supported');
      if (!inContainer(src) && !inContainer(dst)) throw new InvalidInputError('must specify at least one container source');
      await withStore((store) => store.copy(src, dst, { stdin: process.stdin, stdout: io.out }));
    });
}

/** Docker's tabwriter for `top` (minimum width 20, padding 3); the last column is not padded. */
function tabulate(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows) r.slice(0, -1).forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 20, cell.length + 3)));
  return rows.map((r) => r.map((cell, i) => (i < r.length - 1 ? cell.padEnd(widths[i]!) : cell)).join('') + '\n').join('');
}
