// Registry commands: pull, push, login, logout. The library does the work and streams Docker's
// progress events; these print them as the docker CLI does.
import type { Command } from 'commander';
import { InvalidInputError } from '../../errors.js';
import { login, logout } from '../../registry/login.js';
import { collect, positiveInt, type Context } from '../context.js';
import { ProgressRenderer } from '../progress.js';

async function readStdin(): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of process.stdin) parts.push(c as Buffer);
  return Buffer.concat(parts).toString('utf8').replace(/\r?\n$/, '');
}

export function addRegistryCommands(program: Command, { io, withStore }: Context): void {
  program.option('--max-concurrent-downloads <n>', 'layer downloads running at once during a pull', positiveInt);
  // The program's option, read through the command: `image pull` sits one level deeper.
  const globalLimit = (cmd: Command) => {
    let root = cmd;
    while (root.parent) root = root.parent;
    return root.opts<{ maxConcurrentDownloads?: number }>().maxConcurrentDownloads;
  };

  program
    .command('pull')
    .description('Download an image from a registry')
    .argument('<name>', 'NAME[:TAG|@DIGEST]')
    .option('--platform <os/arch[/variant]>', 'platform to pull from a multi-platform image')
    .option('-q, --quiet', 'suppress verbose output')
    .option('--insecure-registry <host>', 'allow plain HTTP or unverified TLS to this registry (repeatable)', collect, [] as string[])
    .option('--max-concurrent-downloads <n>', 'layer downloads running at once (default 3)', positiveInt)
    .action(async (name: string, o: { platform?: string; quiet?: boolean; insecureRegistry: string[]; maxConcurrentDownloads?: number }, cmd: Command) => {
      const progress = new ProgressRenderer(io.out);
      await withStore(async (store) => {
        const r = await store.pull(name, {
          platform: o.platform,
          insecureRegistries: o.insecureRegistry,
          maxConcurrentDownloads: o.maxConcurrentDownloads ?? globalLimit(cmd),
          onProgress: o.quiet ? undefined : progress.listener,
        });
        io.print(r.reference);
      });
    });

  program
    .command('push')
    .description('Upload an image to a registry')
    .argument('<name>', 'NAME[:TAG]')
    .option('--insecure-registry <host>', 'allow plain HTTP or unverified TLS to this registry (repeatable)', collect, [] as string[])
    .option('-q, --quiet', 'suppress verbose output')
    .option('--max-concurrent-uploads <n>', 'layer uploads running at once (default 3)', positiveInt)
    .action(async (name: string, o: { insecureRegistry: string[]; quiet?: boolean; maxConcurrentUploads?: number }) => {
      const progress = new ProgressRenderer(io.out);
      await withStore(async (store) => {
        const r = await store.push(name, {
          insecureRegistries: o.insecureRegistry,
          maxConcurrentUploads: o.maxConcurrentUploads,
          onProgress: o.quiet ? undefined : progress.listener,
        });
        io.print(`${r.tag}: digest: ${r.digest} size: ${r.size}`);
      });
    });

  program
    .command('login')
    .description('Log in to a registry')
    .argument('[server]', 'registry host (default Docker Hub)')
    .option('-u, --username <username>', 'username')
    .option('-p, --password <password>', 'password')
    .option('--password-stdin', 'take the password from stdin')
    .action(async (server: string | undefined, o: { username?: string; password?: string; passwordStdin?: boolean }) => {
      if (o.password !== undefined && o.passwordStdin) throw new InvalidInputError('--password and --password-stdin are mutually exclusive');
      if (o.passwordStdin && !o.username) throw new InvalidInputError('Must provide --username with --password-stdin');
      if (!o.username) throw new InvalidInputError('login: --username is required (strata does not prompt)');
      let password = o.password;
      if (o.passwordStdin) password = await readStdin();
      else if (password !== undefined) io.err.write('WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n');
      if (password === undefined) throw new InvalidInputError('login: give a password with --password-stdin or -p');
      io.print(await login(server, { username: o.username, password }));
    });

  program
    .command('logout')
    .description('Log out from a registry')
    .argument('[server]', 'registry host (default Docker Hub)')
    .action(async (server: string | undefined) => {
      io.print(await logout(server));
    });
}
