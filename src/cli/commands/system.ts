// Store-wide commands: inspect, info, version, check, system df, system prune.
import { Option, type Command } from 'commander';
import { NotFoundError, StrataError } from '../../errors.js';
import { familiar } from '../../store/images.js';
import type { ContainerSummary, Store } from '../../store/store.js';
import type { IdRange } from '../../sys/rootless.js';
import { version } from '../../version.js';
import { confirm, PartialFailure, SilentExit, type Context, type Output } from '../context.js';
import { humanSize, printRows, since, table } from '../format.js';
import { shortId } from '../../reference/digest.js';
import { formatOne, SYSTEM_DF_TABLE } from '../template/index.js';
import { imageShower, psCommand, psStatus } from './containers.js';

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

/** A mirror URL as docker info prints it (normalized with a trailing slash). */
function withSlash(url: string): string {
  return url.endsWith('/') ? url : `${url}/`;
}

/** A user namespace's map as `inside:host:count` ranges. */
function idRanges(ranges: IdRange[]): string {
  return ranges.map((r) => `${r.inside}:${r.outside}:${r.count}`).join(', ');
}

/** `info --format`: the one place a format string is interpreted for this command. */
function printInfoFormatted(io: Output, format: string, i: Awaited<ReturnType<Store['info']>>, registry: Store['registry']): void {
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
    RegistryConfig: { InsecureRegistryCIDRs: ['127.0.0.0/8'], InsecureRegistries: registry.insecure, Mirrors: registry.mirrors.map(withSlash) },
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
          if (found === undefined) missing.push(new NotFoundError(`No such ${o.type ?? 'object'}: ${ref}`));
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
    .option('--format <format>', 'pretty-print the summary using a Go template (json: one object per line)')
    .action(async (o: { verbose?: boolean; format?: string }) => {
      await withStore(async (store) => {
        const du = await store.diskUsage();
        // docker's figures: go-units' 4 significant digits, whole percentages rounded down, and
        // images' reclaimable space as the total less the unique size of the images in use.
        const size = (n: number) => humanSize(n, 4);
        const reclaimable = (part: number, whole: number) => (whole > 0 ? `${size(part)} (${Math.floor((100 * part) / whole)}%)` : size(part));
        const inUse = du.images.filter((i) => i.containers > 0);
        const active = (c: ContainerSummary) => c.run.status === 'running' || c.run.status === 'paused';
        const containersSize = du.containers.reduce((n, c) => n + c.size, 0);
        const rows = [
          { Type: 'Images', TotalCount: String(du.images.length), Active: String(inUse.length), Size: size(du.imagesSize), Reclaimable: reclaimable(du.imagesSize - inUse.reduce((n, i) => n + i.unique, 0), du.imagesSize) },
          {
            Type: 'Containers',
            TotalCount: String(du.containers.length),
            Active: String(du.containers.filter(active).length),
            Size: size(containersSize),
            Reclaimable: reclaimable(du.containers.filter((c) => !active(c)).reduce((n, c) => n + c.size, 0), containersSize),
          },
          { Type: 'Local Volumes', TotalCount: '0', Active: '0', Size: '0B', Reclaimable: '0B' },
          { Type: 'Build Cache', TotalCount: '0', Active: '0', Size: '0B', Reclaimable: '0B' },
        ];
        if (!o.verbose) return printRows(io, o.format, rows, { command: 'system df', ...SYSTEM_DF_TABLE });
        // One row per image, under its first name, as docker's verbose view lists them.
        const images = du.images.map((i) => {
          const n = i.names.length ? familiar(i.names[0]) : '<none>:<none>';
          const colon = n.lastIndexOf(':');
          return [n.slice(0, colon), n.slice(colon + 1), shortId(i.id), since(i.created), size(i.size), size(i.shared), size(i.unique), String(i.containers)];
        });
        const shownImage = imageShower(store);
        const containers = du.containers.map((c) => [c.id.slice(0, 12), shownImage(c, true), psCommand(c, true), '0', size(c.size), since(c.created), psStatus(c.run), c.name]);
        io.out.write(
          [
            'Images space usage:\n\n',
            table(['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE', 'SHARED SIZE', 'UNIQUE SIZE', 'CONTAINERS'], images),
            '\nContainers space usage:\n\n',
            table(['CONTAINER ID', 'IMAGE', 'COMMAND', 'LOCAL VOLUMES', 'SIZE', 'CREATED', 'STATUS', 'NAMES'], containers),
            '\nLocal Volumes space usage:\n\n',
            table(['VOLUME NAME', 'LINKS', 'SIZE'], []),
            '\nBuild cache usage: 0B\n\n',
            table(['CACHE ID', 'CACHE TYPE', 'SIZE', 'CREATED', 'LAST USED', 'USAGE', 'SHARED'], []),
          ].join(''),
        );
      });
    });
  system
    .command('prune')
    .description('Remove all stopped containers and dangling images')
    .option('-a, --all', 'remove all unused images, not just dangling ones')
    .option('-f, --force', 'do not prompt for confirmation')
    .action(async (o: { all?: boolean; force?: boolean }) => {
      const warning = [
        'WARNING! This will remove:',
        '  - all stopped containers',
        '  - all networks not used by at least one container',
        o.all ? '  - all images without at least one container associated to them' : '  - all dangling images',
        o.all ? '  - all build cache' : '  - all dangling build cache',
        '',
      ].join('\n');
      if (!o.force && !(await confirm(io, warning))) return;
      await withStore(async (store) => printPruned(io, await store.prune({ all: o.all })));
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
        if (o.format) return printInfoFormatted(io, o.format, i, store.registry);
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
          // Loopback is always insecure, as Docker's 127.0.0.0/8.
          ' Insecure Registries:',
          ...[...store.registry.insecure, '127.0.0.0/8'].map((h) => `  ${h}`),
          ...(store.registry.mirrors.length ? [' Registry Mirrors:', ...store.registry.mirrors.map((m) => `  ${withSlash(m)}`)] : []),
          ` Rootless: ${i.rootless}`,
          ...(i.idMappings ? [' ID Mappings:', `  UID: ${idRanges(i.idMappings.uids)}`, `  GID: ${idRanges(i.idMappings.gids)}`] : []),
        ];
        io.print(lines.join('\n'));
      });
    });
}

/** docker's prune report: what went, by kind, then the space it gave back. */
function printPruned(io: Output, r: Awaited<ReturnType<Store['prune']>>): void {
  if (r.containers.length) io.out.write(`Deleted Containers:\n${r.containers.join('\n')}\n\n`);
  if (r.images.untagged.length || r.images.deleted.length) {
    io.out.write(`Deleted Images:\n${[...r.images.untagged.map((u) => `untagged: ${u}`), ...r.images.deleted.map((d) => `deleted: ${d}`)].join('\n')}\n\n`);
  }
  io.print(`Total reclaimed space: ${humanSize(r.reclaimed, 4)}`);
}

/** `image prune` and `container prune`: docker has them only under their group. */
export function addPruneCommand(group: Command, kind: 'image' | 'container', { io, withStore }: Context): void {
  const cmd = group.command('prune').option('-f, --force', 'do not prompt for confirmation');
  if (kind === 'image') cmd.description('Remove unused images').option('-a, --all', 'remove all unused images, not just dangling ones');
  else cmd.description('Remove all stopped containers');
  cmd.action(async (o: { all?: boolean; force?: boolean }) => {
    const warning =
      kind === 'container'
        ? 'WARNING! This will remove all stopped containers.'
        : `WARNING! This will remove all ${o.all ? 'images without at least one container associated to them' : 'dangling images'}.`;
    // Declined, docker still reports nothing reclaimed.
    if (!o.force && !(await confirm(io, warning))) return printPruned(io, { containers: [], images: { untagged: [], deleted: [] }, reclaimed: 0 });
    await withStore(async (store) => printPruned(io, await store.prune({ all: o.all, containers: kind === 'container', images: kind === 'image' })));
  });
}
