// Container commands: create, ps, rm, mount, umount, diff, commit, export.
import type { Command } from 'commander';
import { NotFoundError } from '../../errors.js';
import type { ContainerRecord } from '../../store/containers.js';
import { eachTarget, toFileOrStdout, type Context, type Output } from '../context.js';
import { humanDuration, humanSize, since, table, truncate } from '../format.js';
import type { ContainerSummary } from '../../store/store.js';
import type { RunState } from '../../store/runstate.js';
import { createOptions, runFlags } from './run.js';
import { portsText } from '../../runtime/network.js';
import { formatRows, PS_TABLE } from '../template/index.js';
import { printCopyUps } from './layers.js';

interface PsRow {
  c: ContainerSummary;
  size?: number;
}

/** docker's STATUS column: Created, Up 3 seconds, Up 2 minutes (Paused), Exited (0) 5 seconds ago. */
export function psStatus(s: RunState, nowMs = Date.now()): string {
  const age = (iso: string) => humanDuration(Math.max(0, nowMs - Date.parse(iso)));
  switch (s.status) {
    case 'created':
      return 'Created';
    case 'running':
      return `Up ${age(s.startedAt)}`;
    case 'paused':
      return `Up ${age(s.startedAt)} (Paused)`;
    case 'exited':
      return `Exited (${s.exitCode}) ${age(s.finishedAt)} ago`;
  }
}

function psCommand(c: ContainerRecord, trunc: boolean): string {
  const cmd = [c.config.path, ...c.config.args].join(' ');
  return `"${trunc ? truncate(cmd, 20) : cmd}"`;
}

/** `ps --format`: docker's templates (`{{.Names}}`, `table …`), or `json` for one object per line. */
function printPsFormatted(io: Output, format: string, rows: PsRow[], trunc: boolean): void {
  const data = rows.map(({ c, size }) => ({
    Command: psCommand(c, trunc),
    CreatedAt: c.created,
    ID: trunc ? c.id.slice(0, 12) : c.id,
    Image: c.imageRef,
    Labels: '',
    LocalVolumes: '0',
    Mounts: '',
    Names: c.name,
    Networks: c.config.host?.network ?? '',
    Ports: portsText(c.run.ports),
    RunningFor: since(c.created),
    Size: size !== undefined ? humanSize(size) : '0B',
    State: c.run.status,
    Status: psStatus(c.run),
  }));
  if (format === 'json') for (const d of data) io.print(JSON.stringify(d));
  // Label is a method in docker's row type; strata's containers carry no labels yet.
  else io.out.write(formatRows(data.map((d) => ({ ...d, Label: () => '' })), format, { command: 'ps', ...PS_TABLE }));
}

export function addContainerCommands(program: Command, { io, withStore }: Context): void {
  runFlags(program.command('create').description('Create a new container').argument('<image>').argument('[command...]'))
    .passThroughOptions()
    .action(async (image: string, cmd: string[], o: Parameters<typeof createOptions>[0]) => {
      const opts = createOptions(o, cmd, io);
      await withStore(async (store) => {
        const c = await store.createContainer(image, opts);
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
        const all = store.listContainers();
        const list = o.all ? all : all.filter((c) => c.run.status === 'running' || c.run.status === 'paused');
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
              psStatus(c.run),
              portsText(c.run.ports),
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
    .option('-f, --force', 'force the removal of a running container (uses SIGKILL)')
    .action(async (refs: string[], o: { force?: boolean }) => {
      await withStore((store) =>
        eachTarget(refs, async (ref) => {
          try {
            await store.removeContainer(ref, { force: o.force });
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
    .option('-v, --verbose', 'with each change, the layer it was copied up from and the bytes it cost (see commands/layers.ts)')
    .action(async (ref: string, o: { verbose?: boolean }) => {
      await withStore(async (store) => {
        if (o.verbose) return printCopyUps(io, await store.copyUps(ref));
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
