// Container commands: create, ps, rm, mount, umount, diff, commit, export.
import { Option, type Command } from 'commander';
import { InvalidInputError, NotFoundError } from '../../errors.js';
import type { ContainerRecord } from '../../store/containers.js';
import { checkOutputPath, collect, eachTarget, toFileOrStdout, type Context } from '../context.js';
import { matchLabels, parseFilters } from '../filters.js';
import { goTime, humanDuration, humanSize, printRows, since, truncate } from '../format.js';
import { shortId } from '../../reference/digest.js';
import type { ContainerSummary, Store } from '../../store/store.js';
import type { RunState } from '../../store/runstate.js';
import { dockerStatus } from '../../store/run.js';
import { createOptions, runFlags } from './run.js';
import { portsText } from '../../runtime/network.js';
import { PS_TABLE } from '../template/index.js';
import { printCopyUps } from './layers.js';

/**
 * docker's STATUS column: Created, Up 3 seconds, Up 2 minutes (Paused), Restarting (1) 2 seconds
 * ago, Exited (0) 5 seconds ago.
 */
export function psStatus(s: RunState, nowMs = Date.now()): string {
  const age = (iso: string) => humanDuration(Math.max(0, nowMs - Date.parse(iso)));
  switch (dockerStatus(s)) {
    case 'restarting':
      return `Restarting (${s.exitCode}) ${age(s.finishedAt)} ago`;
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

export function psCommand(c: ContainerRecord, trunc: boolean): string {
  const cmd = [c.config.path, ...c.config.args].join(' ');
  return `"${trunc ? truncate(cmd, 20) : cmd}"`;
}

const PS_FILTERS = ['status', 'name', 'id', 'label', 'ancestor', 'exited', 'before', 'since'] as const;
const PS_STATES = ['created', 'restarting', 'running', 'removing', 'paused', 'exited', 'dead'];

/** Go's regexp.MatchString as docker's `name=`/`id=` filters use it; a pattern Go rejects matches nothing. */
function regexSearch(pattern: string, s: string): boolean {
  try {
    return new RegExp(pattern).test(s);
  } catch {
    return false;
  }
}

/**
 * The image docker shows for a container: the name it was made from while that still names its
 * image, else its image ID. One lookup per name for a whole listing (many containers share one).
 */
export function imageShower(store: Store): (c: ContainerSummary, trunc: boolean) => string {
  const current = new Map<string, string | undefined>();
  const lookup = (ref: string): string | undefined => {
    try {
      return store.images.resolve(ref).id;
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
      return undefined;
    }
  };
  return (c, trunc) => {
    // Made from its image's ID (`create IMAGE-ID`, the library's usual way): shown while that
    // image is stored, with one probe instead of a whole lookup per image.
    if (c.imageRef === c.imageId && !current.has(c.imageRef)) current.set(c.imageRef, store.images.has(c.imageId) ? c.imageId : undefined);
    if (!current.has(c.imageRef)) current.set(c.imageRef, lookup(c.imageRef));
    if (current.get(c.imageRef) === c.imageId) return c.imageRef;
    return trunc ? shortId(c.imageId) : c.imageId;
  };
}

/** The containers `ps` lists: running ones (every one with -a or a status filter), then docker's filters. */
function listContainers(store: Store, o: { all?: boolean; filter: string[] }): ContainerSummary[] {
  const filters = parseFilters(o.filter, PS_FILTERS);
  for (const st of filters.get('status') ?? []) if (!PS_STATES.includes(st)) throw new InvalidInputError(`Invalid filter 'status=${st}'`);
  for (const e of filters.get('exited') ?? []) if (!/^-?\d+$/.test(e)) throw new InvalidInputError(`strconv.Atoi: parsing "${e}": invalid syntax`);
  const all = store.listContainers();
  // ancestor: the image and every image made from it (commit's Parent), as docker walks its children.
  const ancestors = new Set<string>();
  for (const ref of filters.get('ancestor') ?? []) {
    try {
      ancestors.add(store.getImage(ref).id);
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
    }
  }
  const descends = (imageId: string) => store.imageLineage(imageId).some((id) => ancestors.has(id));
  const createdOf = (key: 'before' | 'since') => filters.get(key)?.map((ref) => store.getContainer(ref).created);
  const before = createdOf('before');
  const since = createdOf('since');
  const one = (key: string, test: (v: string) => boolean) => !filters.has(key) || filters.get(key)!.some(test);
  return all.filter(
    (c) =>
      (o.all || filters.has('status') || c.run.status === 'running' || c.run.status === 'paused') &&
      one('status', (v) => v === dockerStatus(c.run)) &&
      one('name', (v) => regexSearch(v, `/${c.name}`) || regexSearch(v, c.name)) &&
      one('id', (v) => regexSearch(v, c.id)) &&
      one('exited', (v) => c.run.status === 'exited' && c.run.exitCode === Number(v)) &&
      (!filters.has('ancestor') || descends(c.imageId)) &&
      (!before || before.every((b) => c.created < b)) &&
      (!since || since.every((b) => c.created > b)) &&
      matchLabels(filters, c.labels),
  );
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
    .option('-f, --filter <filter>', 'filter output based on conditions provided (status, name, id, label, ancestor, exited, before, since)', collect, [] as string[])
    .option('--format <format>', 'pretty-print containers using a Go template (json: one object per line)')
    .action(async (o: { all?: boolean; quiet?: boolean; trunc: boolean; format?: string; size?: boolean; filter: string[] }) => {
      await withStore(async (store) => {
        const list = listContainers(store, o);
        if (o.quiet) {
          for (const c of list) io.print(o.trunc ? c.id.slice(0, 12) : c.id);
          return;
        }
        const rows: Record<string, unknown>[] = [];
        const shownImage = imageShower(store);
        // docker measures when asked, or when the format shows the size.
        const sized = o.size === true || /\.Size\b/.test(o.format ?? '');
        for (const c of list) {
          const size = sized ? await store.containerSize(c.id) : undefined;
          // Getters: a table computes only the columns it prints (ps -a over 10,000 rows);
          // json output still has every field, in this order.
          rows.push({
            get Command() {
              return psCommand(c, o.trunc);
            },
            get CreatedAt() {
              return goTime(c.created);
            },
            ID: o.trunc ? c.id.slice(0, 12) : c.id,
            get Image() {
              return shownImage(c, o.trunc);
            },
            get Labels() {
              const labels = Object.entries(c.labels).sort(([a], [b]) => (a < b ? -1 : 1));
              return labels.map(([k, v]) => `${k}=${v}`).join(',');
            },
            LocalVolumes: '0',
            Mounts: '',
            Names: c.name,
            get Networks() {
              return c.config.host?.network ?? '';
            },
            get Ports() {
              return portsText(c.run.ports);
            },
            get RunningFor() {
              return since(c.created);
            },
            Size: size ? `${humanSize(size.rw)}${size.rootFs > 0 ? ` (virtual ${humanSize(size.rootFs)})` : ''}` : '0B',
            get State() {
              return dockerStatus(c.run);
            },
            get Status() {
              return psStatus(c.run);
            },
            // A method in docker's row type: {{.Label "key"}}.
            Label: (name: string) => c.labels[name] ?? '',
          });
        }
        printRows(io, o.format, rows, { command: 'ps', ...PS_TABLE, ...(o.size ? { defaultTable: `${PS_TABLE.defaultTable}\\t{{.Size}}` } : {}) });
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
            // docker rm -f of a missing container says so and still succeeds.
            if (o.force && err instanceof NotFoundError) return void io.err.write(`Error: ${err.message}\n`);
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
    .option('-c, --change <instruction>', 'apply a Dockerfile instruction (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME, WORKDIR) to the image', collect, [] as string[])
    .option('-p, --pause', 'pause a running container during the commit (--pause=false to not)', true)
    .addOption(new Option('--no-pause').hideHelp())
    .action(async (ref: string, newRef: string | undefined, o: { message?: string; author?: string; change: string[]; pause: boolean }) => {
      await withStore(async (store) => io.print(await store.commit(ref, newRef, { message: o.message, author: o.author, changes: o.change, pause: o.pause })));
    });

  program
    .command('export')
    .description("Export a container's filesystem as a tar archive")
    .argument('<container>')
    .option('-o, --output <file>', 'write to a file, instead of STDOUT')
    .action(async (ref: string, o: { output?: string }) => {
      checkOutputPath(o.output, 'export');
      await withStore(async (store) => {
        store.getContainer(ref); // fail before creating the file
        await toFileOrStdout(o.output, 'export', (w) => store.exportContainer(ref, w));
      });
    });
}
