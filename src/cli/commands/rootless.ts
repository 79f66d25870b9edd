// `strata unshare`: a command (a shell by default) inside the user namespace a rootless strata
// works in, as `podman unshare`: the only place where a rootless user sees the layers strata
// mounts and the files of a store with their image owners.
import { spawn } from 'node:child_process';
import type { Command } from 'commander';
import { StrataError } from '../../errors.js';
import { childExit } from '../../sys/process.js';
import { isRootless } from '../../sys/rootless.js';
import { SilentExit } from '../context.js';

export function addRootlessCommands(program: Command): void {
  program
    .command('unshare')
    .description("Run a command (default: $SHELL) in strata's rootless user namespace")
    .argument('[command...]')
    .allowUnknownOption()
    .passThroughOptions()
    .action(async (cmd: string[]) => {
      // The CLI re-executes itself in the namespace before parsing (main.ts): a non-root user is
      // in it by now, and only root, who needs none, is not.
      if (!isRootless()) throw new StrataError('please use unshare with rootless', 125);
      const argv = cmd.length > 0 ? cmd : [process.env.SHELL || '/bin/sh'];
      // The command's own strata runs see the same store (as Podman's CONTAINERS_GRAPHROOT).
      const env = { ...process.env, STRATA_ROOT: program.opts<{ root: string }>().root };
      const code = await childExit(spawn(argv[0]!, argv.slice(1), { stdio: 'inherit', env }), argv[0]!);
      if (code !== 0) throw new SilentExit(code);
    });
}
