// Container commands: create, ps, rm, mount, umount, diff, commit, export.
import type { Command } from 'commander';
import { InvalidInputError, NotFoundError } from '../../errors.js';
import type { ContainerRecord } from '../../store/containers.js';
import { collect, eachTarget, parseKeyValues, toFileOrStdout, type Context, type Output } from '../context.js';
import { humanSize, since, table, truncate } from '../format.js';

interface PsRow {
  c: ContainerRecord;
  size?: number;
}

function psCommand(c: ContainerRecord, trunc: boolean): string {
  const cmd = [c.config.path, ...c.config.args].join(' ');
  return `"${trunc ? truncate(cmd, 20) : cmd}"`;
}

/** `ps --format`: the one place a format string is interpreted for this command. */
function printPsFormatted(io: Output, format: string, rows: PsRow[], trunc: boolean): void {
  if (format !== 'json' && format !== '{{json .}}') throw new InvalidInputError(`unsupported --format ${format}: use json`);
  for (const { c, size } of rows) {
    io.print(
      JSON.stringify({
        Command: psCommand(c, trunc),
        CreatedAt: c.created,
        ID: trunc ? c.id.slice(0, 12) : c.id,
        Image: c.imageRef,
        Names: c.name,
        Ports: '',
        RunningFor: since(c.created),
        Size: size !== undefined ? humanSize(size) : '0B',
        State: 'created',
        Status: 'Created',
      }),
    );
  }
}

export function addContainerCommands(program: Command, { io, withStore }: Context): void {
  program
    .command('create')
    .description('Create a new container (with the image\'s command; strata runs no other)')
    .argument('<image>')
    .option('--name <name>', 'assign a name to the container')
    .option('--hostname <name>', 'container host name')
    .option('--storage-opt <key=value>', 'storage driver options for the container (e.g. size=50M)', collect, [] as string[])
    .action(async (image: string, o: { name?: string; hostname?: string; storageOpt: string[] }) => {
      const storageOpt = o.storageOpt.length ? parseKeyValues(o.storageOpt, 'storage option') : undefined;
      await withStore(async (store) => {
        const c = await store.createContainer(image, { name: o.name, storageOpt, hostname: o.hostname });
        io.print(c.id);
      });
    });

  program
    .command('ps')
    .description('List containers')
    .option('-a, --all', 'show all containers (default shows just running)')
    .option('-q, --quiet', 'only display container IDs')
    .option('--no-trunc', "don't truncate output")
    .option('-s, --size', 'display total file sizes')
    .option('--format <format>', 'json for one JSON object per container')
    .action(async (o: { all?: boolean; quiet?: boolean; trunc: boolean; format?: string; size?: boolean }) => {
      await withStore(async (store) => {
        // No container runs without a runtime, so plain `ps` lists none, as docker's would.
        const list = o.all ? store.listContainers() : [];
        if (o.quiet) {
          for (const c of list) io.print(o.trunc ? c.id.slice(0, 12) : c.id);
          return;
        }
        const rows: PsRow[] = [];
        for (const c of list) rows.push({ c, size: o.size ? await store.containerSize(c.id) : undefined });
        if (o.format) return printPsFormatted(io, o.format, rows, o.trunc);
        io.out.write(
          table(
            ['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'PORTS', 'NAMES', ...(o.size ? ['SIZE'] : [])],
            rows.map(({ c, size }) => [
              o.trunc ? c.id.slice(0, 12) : c.id,
              c.imageRef,
              psCommand(c, o.trunc),
              since(c.created),
              'Created',
              '',
              c.name,
              ...(size !== undefined ? [humanSize(size)] : []),
            ]),
          ),
        );
      });
    });

  program
    .command('rm')
    .description('Remove one or more containers')
    .argument('<container...>')
    .option('-f, --force', 'ignore containers that do not exist (none runs, so none needs stopping)')
    .action(async (refs: string[], o: { force?: boolean }) => {
      await withStore((store) =>
        eachTarget(refs, async (ref) => {
          try {
            await store.removeContainer(ref);
          } catch (err) {
            // docker rm -f of a missing container succeeds silently.
            if (o.force && err instanceof NotFoundError) return;
            throw err;
          }
          io.print(ref);
        }),
      );
    });

  program
    .command('mount')
    .description("Mount a container's root filesystem and print its path")
    .argument('<container>')
    .action(async (ref: string) => {
      await withStore(async (store) => io.print(await store.mount(ref)));
    });

  program
    .command('umount')
    .alias('unmount')
    .description("Unmount a container's root filesystem")
    .argument('<container>')
    .action(async (ref: string) => {
      await withStore(async (store) => store.unmount(ref));
    });

  program
    .command('diff')
    .description("Inspect changes to files or directories on a container's filesystem")
    .argument('<container>')
    .action(async (ref: string) => {
      await withStore(async (store) => {
        for (const c of await store.diff(ref)) io.print(`${c.kind} ${c.path}`);
      });
    });

  program
    .command('commit')
    .description("Create a new image from a container's changes")
    .argument('<container>')
    .argument('[reference]')
    .option('-m, --message <message>', 'commit message')
    .option('-a, --author <author>', 'author (e.g., "John Hannibal Smith <hannibal@a-team.com>")')
    .action(async (ref: string, newRef: string | undefined, o: { message?: string; author?: string }) => {
      await withStore(async (store) => io.print(await store.commit(ref, newRef, o)));
    });

  program
    .command('export')
    .description("Export a container's filesystem as a tar archive")
    .argument('<container>')
    .option('-o, --output <file>', 'write to a file, instead of STDOUT')
    .action(async (ref: string, o: { output?: string }) => {
      await withStore(async (store) => {
        store.getContainer(ref); // fail before creating the file
        await toFileOrStdout(o.output, 'export', (w) => store.exportContainer(ref, w));
      });
    });
}
