// Store-wide commands: inspect, info, version, check, system df, system prune.
import { Option, type Command } from 'commander';
import { InvalidInputError, NotFoundError, StrataError } from '../../errors.js';
import { familiar } from '../../store/images.js';
import type { Store } from '../../store/store.js';
import type { IdRange } from '../../sys/rootless.js';
import { version } from '../../version.js';
import { PartialFailure, SilentExit, type Context, type Output } from '../context.js';
import { humanSize, shortId, table } from '../format.js';
import { formatOne, formatRows, SYSTEM_DF_TABLE } from '../template/index.js';

/** A container, else an image, named `ref` (as `--type` allows); undefined when neither exists. */
async function inspectOne(store: Store, ref: string, type?: string): Promise<unknown> {
  const attempts = [
    ...(type !== 'image' ? [() => store.inspectContainer(ref)] : []),
    ...(type !== 'container' ? [() => store.inspectImage(ref)] : []),
  ];
  for (const attempt of attempts) {
    try {
      return await attempt();
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
    }
  }
  return undefined;
}

/** A user namespace's map as `inside:host:count` ranges. */
function idRanges(ranges: IdRange[]): string {
  return ranges.map((r) => `${r.inside}:${r.outside}:${r.count}`).join(', ');
}

/** `info --format`: the one place a format string is interpreted for this command. */
function printInfoFormatted(io: Output, format: string, i: Awaited<ReturnType<Store['info']>>): void {
  const info = {
    Containers: i.containers,
    ContainersRunning: i.running,
    ContainersPaused: i.paused,
    ContainersStopped: i.containers - i.running - i.paused,
    Images: i.images,
    Layers: i.layers,
    Driver: i.driver,
    DriverStatus: i.status,
    DockerRootDir: i.root,
    Rootless: i.rootless,
    IDMappings: i.idMappings && { UIDMap: i.idMappings.uids, GIDMap: i.idMappings.gids },
  };
  if (format === 'json') io.json(info, 0);
  else io.out.write(formatOne(info, format, 'info'));
}

export function addSystemCommands(program: Command, { io, withStore }: Context): void {
  program
    .command('inspect')
    .description('Return low-level information on images or containers')
    .argument('<name...>')
    .addOption(new Option('--type <type>', 'only this kind of object').choices(['image', 'container']))
    .option('-f, --format <format>', 'format the output using the given Go template')
    .action(async (refs: string[], o: { type?: string; format?: string }) => {
      await withStore(async (store) => {
        const out: unknown[] = [];
        const missing: StrataError[] = [];
        for (const ref of refs) {
          const found = await inspectOne(store, ref, o.type);
          if (found === undefined) missing.push(new NotFoundError(`No such object: ${ref}`));
          else out.push(found);
        }
        // docker prints what it found, then an error for each name it did not.
        if (o.format && o.format !== 'json') for (const v of out) io.out.write(formatOne(v, o.format, 'inspect'));
        else io.json(out);
        if (missing.length) throw new PartialFailure(missing);
      });
    });

  program
    .command('version')
    .description('Show the strata version')
    .action(() => io.print(`strata version ${version}`));

  const system = program.command('system').description('Manage the store');
  system
    .command('df')
    .description('Show disk usage')
    .option('-v, --verbose', 'show detailed information on space usage')
    .option('--format <format>', 'json')
    .action(async (o: { verbose?: boolean; format?: string }) => {
      await withStore(async (store) => {
        const du = await store.diskUsage();
        const activeImages = du.images.filter((i) => i.containers > 0).length;
        const containersSize = du.containers.reduce((n, c) => n + c.size, 0);
        const pct = (part: number, whole: number) => (whole > 0 ? ` (${Math.round((100 * part) / whole)}%)` : '');
        const rows = [
          ['Images', String(du.images.length), String(activeImages), humanSize(du.imagesSize), `${humanSize(du.reclaimableImages)}${pct(du.reclaimableImages, du.imagesSize)}`],
          ['Containers', String(du.containers.length), '0', humanSize(containersSize), `${humanSize(containersSize)}${pct(containersSize, containersSize)}`],
          ['Local Volumes', '0', '0', '0B', '0B'],
          ['Build Cache', '0', '0', '0B', '0B'],
        ];
        if (o.format) {
          const data = rows.map((r) => ({ Type: r[0], TotalCount: r[1], Active: r[2], Size: r[3], Reclaimable: r[4] }));
          if (o.format === 'json') for (const d of data) io.print(JSON.stringify(d));
          else io.out.write(formatRows(data, o.format, { command: 'system df', ...SYSTEM_DF_TABLE }));
          return;
        }
        if (!o.verbose) {
          io.out.write(table(['TYPE', 'TOTAL', 'ACTIVE', 'SIZE', 'RECLAIMABLE'], rows));
          return;
        }
        io.print(`Images space usage:\n`);
        io.out.write(
          table(
            ['REPOSITORY', 'TAG', 'IMAGE ID', 'SIZE', 'SHARED SIZE', 'UNIQUE SIZE', 'CONTAINERS'],
            du.images.flatMap((i) =>
              (i.names.length ? i.names.map(familiar) : ['<none>:<none>']).map((n) => {
                const colon = n.lastIndexOf(':');
                return [n.slice(0, colon), n.slice(colon + 1), shortId(i.id), humanSize(i.size), humanSize(i.shared), humanSize(i.unique), String(i.containers)];
              }),
            ),
          ),
        );
        io.print(`\nContainers space usage:\n`);
        io.out.write(table(['CONTAINER ID', 'IMAGE', 'SIZE', 'STATUS', 'NAMES'], du.containers.map((c) => [c.id.slice(0, 12), c.image, humanSize(c.size), 'Created', c.name])));
      });
    });
  system
    .command('prune')
    .description('Remove all containers (none is running) and dangling images')
    .option('-a, --all', 'remove all unused images, not just dangling ones')
    .option('-f, --force', 'do not prompt for confirmation')
    .action(async (o: { all?: boolean; force?: boolean }) => {
      if (!o.force) throw new InvalidInputError('system prune removes every container and ' + (o.all ? 'every image' : 'dangling images') + ': run it with -f to confirm');
      await withStore(async (store) => {
        const r = await store.prune({ all: o.all });
        if (r.containers.length) io.print(`Deleted Containers:\n${r.containers.join('\n')}\n`);
        if (r.images.untagged.length || r.images.deleted.length) {
          io.print(`Deleted Images:\n${[...r.images.untagged.map((u) => `untagged: ${u}`), ...r.images.deleted.map((d) => `deleted: ${d}`)].join('\n')}\n`);
        }
        io.print(`Total reclaimed space: ${humanSize(r.reclaimed)}`);
      });
    });

  program
    .command('check')
    .description('Check the store for leftovers, orphaned data, and layers, images and containers that cannot work')
    .option('--repair', 'remove leftovers and orphans, then the containers and images that cannot be used any more')
    .option('--verify', 'also read every image layer back and compare it with its diffID')
    .action(async (o: { repair?: boolean; verify?: boolean }) => {
      await withStore(async (store) => {
        const r = await store.check({ repair: o.repair, verify: o.verify });
        for (const p of r.problems) io.print(p);
        for (const p of r.repaired) io.print(p);
        if (r.problems.length === 0) io.print('no problems found');
        if (o.repair && r.remaining.length > 0) {
          io.print(`${r.remaining.length} problem(s) remain:`);
          for (const p of r.remaining) io.print(p);
        }
        if (r.remaining.length > 0) throw new SilentExit(1);
      });
    });

  program
    .command('info')
    .description('Display system-wide information')
    .option('-f, --format <format>', 'format the output using the given Go template')
    .action(async (o: { format?: string }) => {
      await withStore(async (store) => {
        const i = await store.info();
        if (o.format) return printInfoFormatted(io, o.format, i);
        const lines = [
          'Server:',
          ` Containers: ${i.containers}`,
          `  Running: ${i.running}`,
          `  Paused: ${i.paused}`,
          `  Stopped: ${i.containers - i.running - i.paused}`,
          ` Images: ${i.images}`,
          ` Layers: ${i.layers}`,
          ` Storage Driver: ${i.driver}`,
          ...i.status.map(([k, v]) => `  ${k}: ${v}`),
          ` Docker Root Dir: ${i.root}`,
          ` Rootless: ${i.rootless}`,
          ...(i.idMappings ? [' ID Mappings:', `  UID: ${idRanges(i.idMappings.uids)}`, `  GID: ${idRanges(i.idMappings.gids)}`] : []),
        ];
        io.print(lines.join('\n'));
      });
    });
}
