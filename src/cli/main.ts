// The strata command line: thin wrappers over the Store, printing what docker prints.
import { Command, CommanderError, Option } from 'commander';
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Store, DEFAULT_ROOT, type StoreOptions } from '../store/store.js';
import { StrataError } from '../store/errors.js';
import { familiar } from '../store/images.js';
import { humanSize, since, table, truncate, shortId } from './format.js';
import { addRegistryCommands } from './registry-commands.js';
import { collect } from './options.js';

interface GlobalOpts {
  root: string;
  driver?: string;
  storageOpt: string[];
  logLevel: string;
}

function parseKeyValues(list: string[], what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of list) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new StrataError(`invalid ${what} "${kv}": expected key=value`);
    out[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return out;
}

class Output {
  constructor(
    readonly out: Writable = process.stdout,
    readonly err: Writable = process.stderr,
  ) {}
  print(s: string): void {
    this.out.write(s.endsWith('\n') ? s : s + '\n');
  }
  json(v: unknown, indent = 4): void {
    this.print(JSON.stringify(v, null, indent));
  }
}

/** Write to FILE atomically (temp name, then rename), or to stdout. */
async function toFileOrStdout(file: string | undefined, what: string, write: (w: Writable) => Promise<void>): Promise<void> {
  if (!file || file === '-') {
    if (process.stdout.isTTY) throw new StrataError(`cowardly refusing to save to a terminal. Use the -o flag or redirect`);
    await write(process.stdout);
    return;
  }
  const tmp = `${file}.strata-tmp-${process.pid}`;
  try {
    await write(createWriteStream(tmp, { highWaterMark: 1 << 20 }));
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err instanceof StrataError ? err : new StrataError(`${what}: ${(err as Error).message}`);
  }
}

export function buildProgram(io = new Output()): Command {
  const program = new Command('strata');
  program
    .description('Daemonless container image and layer store')
    .version('0.1.0')
    .option('--root <dir>', 'store root directory', process.env.STRATA_ROOT ?? DEFAULT_ROOT)
    .option('-s, --driver <name>', 'storage driver (default: chosen like Docker)', process.env.STRATA_DRIVER)
    .option('--storage-opt <key=value>', 'storage driver option (repeatable)', collect, [] as string[])
    .addOption(new Option('--log-level <level>', 'logging level').choices(['debug', 'info', 'warn', 'error', 'fatal']).default('info'))
    .showHelpAfterError(false)
    .configureOutput({ writeOut: (s) => io.out.write(s), writeErr: (s) => io.err.write(s) })
    .exitOverride();

  const withStore = async <T>(fn: (store: Store) => Promise<T>): Promise<T> => {
    const g = program.opts<GlobalOpts>();
    const opts: StoreOptions = { root: g.root, driver: g.driver, storageOpts: parseKeyValues(g.storageOpt, 'storage option') };
    const store = await Store.open(opts);
    try {
      return await fn(store);
    } finally {
      await store.close();
    }
  };

  // ------------------------------------------------------------------ images
  program
    .command('load')
    .description('Load images from a docker-archive or OCI archive')
    .option('-i, --input <file>', 'read from a tar archive file, instead of STDIN')
    .option('--platform <os/arch[/variant]>', 'platform to load from a multi-platform archive')
    .option('-q, --quiet', 'suppress the load output')
    .action(async (o: { input?: string; platform?: string; quiet?: boolean }) => {
      const input = o.input ?? '-';
      if (input === '-' && process.stdin.isTTY) throw new StrataError('requested load from stdin, but stdin is empty');
      await withStore(async (store) => {
        let file = input;
        let spooled: string | null = null;
        if (input === '-') {
          // Archives need random access: keep stdin in the store's tmp dir for the duration.
          spooled = `${store.root}/tmp/load-${process.pid}.tar`;
          await pipeline(process.stdin, createWriteStream(spooled, { highWaterMark: 1 << 20 }));
          file = spooled;
        }
        try {
          const loaded = await store.load(file, { platform: o.platform });
          for (const img of loaded) {
            if (img.names.length === 0) io.print(`Loaded image ID: ${img.id}`);
            for (const n of img.names) io.print(`Loaded image: ${familiar(n)}`);
          }
        } finally {
          if (spooled) await rm(spooled, { force: true });
        }
      });
    });

  program
    .command('save')
    .description('Save one or more images to a tar archive')
    .argument('<image...>')
    .option('-o, --output <file>', 'write to a file, instead of STDOUT')
    .addOption(new Option('--format <format>', 'archive format').choices(['docker', 'oci', 'docker-archive', 'oci-archive']).default('docker'))
    .action(async (refs: string[], o: { output?: string; format: string }) => {
      const format = o.format.startsWith('oci') ? 'oci' : 'docker';
      await withStore(async (store) => {
        for (const r of refs) store.images.resolve(r); // fail before creating the file
        await toFileOrStdout(o.output, 'save', (w) => store.save(refs, w, format));
      });
    });

  program
    .command('images')
    .alias('image ls')
    .description('List images')
    .argument('[repository]')
    .option('-a, --all', 'show all images (default hides intermediate images)')
    .option('-q, --quiet', 'only show image IDs')
    .option('--no-trunc', "don't truncate output")
    .option('--digests', 'show digests')
    .option('--format <format>', 'json for one JSON object per image')
    .action(async (repo: string | undefined, o: { all?: boolean; quiet?: boolean; trunc: boolean; digests?: boolean; format?: string }) => {
      await withStore(async (store) => {
        const rows: { repo: string; tag: string; digest: string; id: string; created: string; size: number }[] = [];
        for (const img of store.listImages({ all: o.all })) {
          const names = img.names.length ? img.names.map(familiar) : ['<none>:<none>'];
          for (const n of names) {
            const colon = n.lastIndexOf(':');
            const r = { repo: n.slice(0, colon), tag: n.slice(colon + 1), digest: '<none>', id: img.id, created: img.created, size: img.size };
            if (repo && r.repo !== repo && r.repo !== familiar(`${repo}:x`).replace(/:x$/, '')) continue;
            rows.push(r);
          }
        }
        if (o.quiet) {
          const seen = new Set<string>();
          for (const r of rows) {
            const id = o.trunc ? shortId(r.id) : r.id;
            if (!seen.has(id)) io.print(id);
            seen.add(id);
          }
          return;
        }
        if (o.format === 'json' || o.format === '{{json .}}') {
          for (const r of rows) {
            io.print(
              JSON.stringify({
                Containers: 'N/A',
                CreatedAt: r.created,
                CreatedSince: since(r.created),
                Digest: r.digest,
                ID: o.trunc ? shortId(r.id) : r.id,
                Repository: r.repo,
                SharedSize: 'N/A',
                Size: humanSize(r.size),
                Tag: r.tag,
                UniqueSize: 'N/A',
                VirtualSize: humanSize(r.size),
              }),
            );
          }
          return;
        }
        if (o.format) throw new StrataError(`unsupported --format ${o.format}: use json`);
        const header = o.digests ? ['REPOSITORY', 'TAG', 'DIGEST', 'IMAGE ID', 'CREATED', 'SIZE'] : ['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE'];
        io.out.write(
          table(
            header,
            rows.map((r) => [
              r.repo,
              r.tag,
              ...(o.digests ? [r.digest] : []),
              o.trunc ? shortId(r.id) : r.id,
              since(r.created),
              humanSize(r.size),
            ]),
          ),
        );
      });
    });

  program
    .command('tag')
    .description('Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE')
    .argument('<source>')
    .argument('<target>')
    .action(async (src: string, dst: string) => {
      await withStore(async (store) => store.tag(src, dst));
    });

  program
    .command('rmi')
    .description('Remove one or more images')
    .argument('<image...>')
    .option('-f, --force', 'force removal of the image')
    .action(async (refs: string[], o: { force?: boolean }) => {
      await withStore(async (store) => {
        let failed: StrataError | null = null;
        for (const ref of refs) {
          try {
            const r = await store.removeImage(ref, { force: o.force });
            for (const u of r.untagged) io.print(`Untagged: ${u}`);
            for (const d of r.deleted) io.print(`Deleted: ${d}`);
          } catch (err) {
            if (!(err instanceof StrataError)) throw err;
            io.err.write(`Error: ${err.message}\n`);
            failed = err;
          }
        }
        if (failed) throw new SilentExit(1);
      });
    });

  program
    .command('inspect')
    .description('Return low-level information on images or containers')
    .argument('<name...>')
    .addOption(new Option('--type <type>', 'only this kind of object').choices(['image', 'container']))
    .option('-f, --format <format>', 'json (the default)')
    .action(async (refs: string[], o: { type?: string }) => {
      await withStore(async (store) => {
        const out: unknown[] = [];
        for (const ref of refs) {
          let found = false;
          if (o.type !== 'image') {
            try {
              out.push(await store.inspectContainer(ref));
              found = true;
            } catch (err) {
              if (!(err instanceof StrataError)) throw err;
            }
          }
          if (!found && o.type !== 'container') {
            try {
              out.push(await store.inspectImage(ref));
              found = true;
            } catch (err) {
              if (!(err instanceof StrataError)) throw err;
            }
          }
          if (!found) {
            io.json(out);
            throw new StrataError(`No such object: ${ref}`);
          }
        }
        io.json(out);
      });
    });

  program
    .command('history')
    .description('Show the history of an image')
    .argument('<image>')
    .option('--no-trunc', "don't truncate output")
    .option('-q, --quiet', 'only show image IDs')
    .option('-H, --human', 'print sizes and dates in human readable format', true)
    .option('--format <format>', 'json for one JSON object per line')
    .action(async (ref: string, o: { trunc: boolean; quiet?: boolean; format?: string }) => {
      await withStore(async (store) => {
        const rows = store.history(ref);
        if (o.quiet) {
          for (const r of rows) io.print(r.id === '<missing>' ? r.id : o.trunc ? shortId(r.id) : r.id);
          return;
        }
        if (o.format === 'json') {
          for (const r of rows) io.print(JSON.stringify({ ID: r.id, CreatedAt: r.created, CreatedSince: since(r.created), CreatedBy: r.createdBy, Size: humanSize(r.size), Comment: r.comment }));
          return;
        }
        io.out.write(
          table(
            ['IMAGE', 'CREATED', 'CREATED BY', 'SIZE', 'COMMENT'],
            rows.map((r) => [
              r.id === '<missing>' || !o.trunc ? r.id : shortId(r.id),
              since(r.created),
              o.trunc ? truncate(r.createdBy.replace(/\s+/g, ' '), 45) : r.createdBy,
              humanSize(r.size),
              r.comment,
            ]),
          ),
        );
      });
    });

  program
    .command('import')
    .description('Import the contents from a tarball to create a filesystem image')
    .argument('<file>', 'a tar archive (plain, gzip or zstd), or - for STDIN')
    .argument('[reference]')
    .option('-m, --message <message>', 'set commit message for imported image')
    .action(async (file: string, ref: string | undefined, o: { message?: string }) => {
      await withStore(async (store) => io.print(await store.importTarball(file, ref, { message: o.message })));
    });

  // -------------------------------------------------------------- containers
  program
    .command('create')
    .description('Create a new container')
    .argument('<image>')
    .argument('[command...]')
    .option('--name <name>', 'assign a name to the container')
    .option('--hostname <name>', 'container host name')
    .option('--storage-opt <key=value>', 'storage driver options for the container (e.g. size=50M)', collect, [] as string[])
    .action(async (image: string, _cmd: string[], o: { name?: string; hostname?: string; storageOpt: string[] }) => {
      await withStore(async (store) => {
        const storageOpt = o.storageOpt.length ? parseKeyValues(o.storageOpt, 'storage option') : undefined;
        try {
          const c = await store.createContainer(image, { name: o.name, storageOpt, hostname: o.hostname });
          io.print(c.id);
        } catch (err) {
          if (err instanceof StrataError) throw new StrataError(err.message, 125);
          throw err;
        }
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
        const sizes = new Map<string, number>();
        if (o.size) for (const c of list) sizes.set(c.id, await store.driver.diffSize(c.layer, c.initLayer));
        const command = (c: (typeof list)[number]) => {
          const cmd = [c.config.path, ...c.config.args].join(' ');
          return `"${o.trunc ? truncate(cmd, 20) : cmd}"`;
        };
        if (o.format === 'json') {
          for (const c of list) {
            io.print(
              JSON.stringify({
                Command: command(c),
                CreatedAt: c.created,
                ID: o.trunc ? c.id.slice(0, 12) : c.id,
                Image: c.imageRef,
                Names: c.name,
                Ports: '',
                RunningFor: since(c.created),
                Size: o.size ? humanSize(sizes.get(c.id) ?? 0) : '0B',
                State: 'created',
                Status: 'Created',
              }),
            );
          }
          return;
        }
        io.out.write(
          table(
            ['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'PORTS', 'NAMES', ...(o.size ? ['SIZE'] : [])],
            list.map((c) => [
              o.trunc ? c.id.slice(0, 12) : c.id,
              c.imageRef,
              command(c),
              since(c.created),
              'Created',
              '',
              c.name,
              ...(o.size ? [humanSize(sizes.get(c.id) ?? 0)] : []),
            ]),
          ),
        );
      });
    });

  program
    .command('rm')
    .description('Remove one or more containers')
    .argument('<container...>')
    .option('-f, --force', 'force the removal')
    .option('-v, --volumes', 'remove anonymous volumes (none exist)')
    .action(async (refs: string[]) => {
      await withStore(async (store) => {
        let failed = false;
        for (const ref of refs) {
          try {
            await store.removeContainer(ref);
            io.print(ref);
          } catch (err) {
            if (!(err instanceof StrataError)) throw err;
            io.err.write(`Error: ${err.message}\n`);
            failed = true;
          }
        }
        if (failed) throw new SilentExit(1);
      });
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
        store.containers.resolve(ref);
        await toFileOrStdout(o.output, 'export', (w) => store.exportContainer(ref, w));
      });
    });

  // ------------------------------------------------------------------ system
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
        if (o.format === 'json') {
          for (const r of rows) io.print(JSON.stringify({ Type: r[0], TotalCount: r[1], Active: r[2], Size: r[3], Reclaimable: r[4] }));
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
      if (!o.force) throw new StrataError('system prune removes every container and ' + (o.all ? 'every image' : 'dangling images') + ': run it with -f to confirm');
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
    .description('Check the store for layers, images and containers that cannot work')
    .option('--repair', 'remove the containers and images that cannot be used any more')
    .action(async (o: { repair?: boolean }) => {
      await withStore(async (store) => {
        const r = await store.check({ repair: o.repair });
        for (const p of r.problems) io.print(p);
        for (const p of r.repaired) io.print(p);
        if (r.problems.length === 0) io.print('no problems found');
        else if (!o.repair) throw new SilentExit(1);
      });
    });

  program
    .command('info')
    .description('Display system-wide information')
    .option('--format <format>', 'json')
    .action(async (o: { format?: string }) => {
      await withStore(async (store) => {
        const i = await store.info();
        if (o.format === 'json') {
          io.json(
            {
              Containers: i.containers,
              ContainersRunning: 0,
              ContainersPaused: 0,
              ContainersStopped: i.containers,
              Images: i.images,
              Layers: i.layers,
              Driver: i.driver,
              DriverStatus: i.status,
              DockerRootDir: i.root,
            },
            0,
          );
          return;
        }
        const lines = [
          'Server:',
          ` Containers: ${i.containers}`,
          '  Running: 0',
          '  Paused: 0',
          `  Stopped: ${i.containers}`,
          ` Images: ${i.images}`,
          ` Layers: ${i.layers}`,
          ` Storage Driver: ${i.driver}`,
          ...i.status.map(([k, v]) => `  ${k}: ${v}`),
          ` Docker Root Dir: ${i.root}`,
        ];
        io.print(lines.join('\n'));
      });
    });

  addRegistryCommands(program, withStore, io);
  return program;
}

/** A command that already printed its errors and only needs an exit code. */
class SilentExit extends Error {
  constructor(readonly code: number) {
    super('exit');
  }
}

export async function main(argv: string[], io = new Output()): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof SilentExit) return err.code;
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
      return err.exitCode === 0 ? 0 : 125;
    }
    if (err instanceof StrataError) {
      io.err.write(`Error: ${err.message}\n`);
      return err.exitCode;
    }
    const e = err as NodeJS.ErrnoException;
    io.err.write(`Error: ${e.message ?? String(err)}\n`);
    if (process.env.STRATA_DEBUG) io.err.write(`${e.stack}\n`);
    return 1;
  }
}
