// `pull`, `push`, `login`, `logout`: registry commands printing what the docker CLI prints.
import type { Command } from 'commander';
import type { Writable } from 'node:stream';
import { sha256Digest } from '../image/digest.js';
import { parseImageConfig } from '../image/types.js';
import { RegistryClient, RegistryError } from '../registry/client.js';
import { login, logout } from '../registry/login.js';
import { pullingFromLine, resolveImage, shortId } from '../registry/pull.js';
import { pushImage, type PushImage } from '../registry/push.js';
import { familiarName, parseNormalizedNamed, ReferenceError, referenceString, repositoryName, withDefaultTag, type Reference } from '../reference/reference.js';
import { StrataError } from '../store/errors.js';
import { storedName } from '../store/images.js';
import { chainIds } from '../store/layers.js';
import type { Store } from '../store/store.js';
import { ProgressRenderer } from './progress.js';
import { collect } from './options.js';

/** What the commands need of main.ts's Output. */
export interface CommandIO {
  readonly out: Writable;
  readonly err: Writable;
  print(s: string): void;
}

export type WithStore = <T>(fn: (store: Store) => Promise<T>) => Promise<T>;

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new StrataError(`invalid value "${v}": expected a positive integer`);
  return n;
}

function parseRef(s: string): Reference {
  try {
    return parseNormalizedNamed(s);
  } catch (err) {
    if (err instanceof ReferenceError) throw new StrataError(`${err.message}: ${s}`);
    throw err;
  }
}

/** Registry failures are the user's to fix (name, network, credentials): one line, exit 1. */
async function userErrors<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof RegistryError || err instanceof ReferenceError) throw new StrataError(err.message);
    throw err;
  }
}

async function readStdin(): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of process.stdin) parts.push(c as Buffer);
  return Buffer.concat(parts).toString('utf8').replace(/\r?\n$/, '');
}

/** Pull one image into the store; returns the lines docker prints after the layer lines. */
export async function pull(
  store: Store,
  refText: string,
  io: CommandIO,
  opts: { platform?: string; quiet?: boolean; insecureRegistries?: string[]; maxConcurrentDownloads?: number; tty?: boolean },
): Promise<{ id: string; digest: string; upToDate: boolean }> {
  const ref = parseRef(refText);
  const quiet = opts.quiet === true;
  const progress = new ProgressRenderer(io.out, { tty: opts.tty });
  const shown = withDefaultTag(ref);
  if (!quiet) io.print(pullingFromLine(shown));
  // Docker prints "Extracting" after "Download complete"; the store starts extracting while the
  // blob still streams in, so that line waits for the download to finish.
  const extracting = new Set<string>();
  const downloaded = new Set<string>();
  const update = quiet
    ? () => undefined
    : (e: { id?: string; status: string; current?: number; total?: number }) => {
        progress.update(e);
        if (e.id && e.status === 'Download complete') {
          downloaded.add(e.id);
          if (extracting.has(e.id)) progress.update({ id: e.id, status: 'Extracting' });
        }
      };
  const resolved = await resolveImage(shown, {
    platform: opts.platform,
    insecureRegistries: opts.insecureRegistries,
    maxConcurrentDownloads: opts.maxConcurrentDownloads,
    onProgress: update,
  });
  try {
    const { source } = resolved;
    const id = sha256Digest(source.config);
    const upToDate = store.images.get(id) !== undefined;
    const diffIDs = parseImageConfig(source.config).rootfs.diff_ids;
    const chains = chainIds(diffIDs);
    source.layers.forEach((l, i) => {
      const present = store.layers.byChainId(chains[i])?.state === 'complete';
      update({ id: shortId(l.digest!), status: present ? 'Already exists' : 'Pulling fs layer' });
    });
    const repo = repositoryName(resolved.reference);
    await store.importImage(
      source,
      {
        onLayer(label, status) {
          if (status === 'exists') update({ id: label, status: 'Already exists' });
          else if (status === 'complete') update({ id: label, status: 'Pull complete' });
          else {
            extracting.add(label);
            if (downloaded.has(label)) update({ id: label, status: 'Extracting' });
          }
        },
      },
      { repoDigests: [`${familiarName(resolved.reference)}@${resolved.manifestDigest}`] },
    );
    for (const l of source.layers) store.layers.recordBlobSource(l.digest!, repo);
    if (!quiet) {
      io.print(`Digest: ${resolved.manifestDigest}`);
      io.print(`Status: ${upToDate ? 'Image is up to date' : 'Downloaded newer image'} for ${familiarOf(resolved.reference)}`);
    }
    io.print(referenceString(resolved.reference));
    return { id, digest: resolved.manifestDigest, upToDate };
  } finally {
    await resolved.close();
  }
}

/** "nginx:latest", "127.0.0.1:5000/corpus/app:latest", "nginx@sha256:…" as docker's Status line names it. */
function familiarOf(ref: Reference): string {
  const name = familiarName(ref);
  return ref.digest ? `${name}@${ref.digest}` : `${name}:${ref.tag ?? 'latest'}`;
}

/** The image named `refText` in the push shape: its layers, their known blobs and where those live. */
function pushSource(store: Store, refText: string): PushImage {
  let name: string;
  try {
    name = storedName(refText);
  } catch (err) {
    if (err instanceof StrataError) throw err;
    throw new StrataError(`invalid reference format: ${refText}`);
  }
  let img;
  try {
    img = store.images.resolve(name);
  } catch {
    throw new StrataError(`An image does not exist locally with the tag: ${familiarName(parseRef(refText))}`);
  }
  if (!store.images.names(img.id).includes(name)) {
    throw new StrataError(`An image does not exist locally with the tag: ${familiarName(parseRef(refText))}`);
  }
  return {
    id: img.id,
    config: img.config,
    names: [name],
    manifest: img.manifest,
    layers: store.imageLayers(img).map((l) => ({
      diffID: l.diffID!,
      size: l.size,
      open: () => store.layerTar(l),
      blobs: store.layers.blobs(l.diffID!).map((b) => ({ ...b, sources: store.layers.blobSources(b.digest) })),
    })),
  };
}

export function addRegistryCommands(program: Command, withStore: WithStore, io: CommandIO): void {
  program.option('--max-concurrent-downloads <n>', 'layer downloads running at once during a pull', positiveInt);
  const globalLimit = () => program.opts<{ maxConcurrentDownloads?: number }>().maxConcurrentDownloads;

  program
    .command('pull')
    .description('Download an image from a registry')
    .argument('<name>', 'NAME[:TAG|@DIGEST]')
    .option('--platform <os/arch[/variant]>', 'platform to pull from a multi-platform image')
    .option('-q, --quiet', 'suppress verbose output')
    .option('--insecure-registry <host>', 'allow plain HTTP or unverified TLS to this registry (repeatable)', collect, [] as string[])
    .option('--max-concurrent-downloads <n>', 'layer downloads running at once (default 3)', positiveInt)
    .action(async (name: string, o: { platform?: string; quiet?: boolean; insecureRegistry: string[]; maxConcurrentDownloads?: number }) => {
      await withStore((store) =>
        userErrors(() =>
          pull(store, name, io, {
            platform: o.platform,
            quiet: o.quiet,
            insecureRegistries: o.insecureRegistry,
            maxConcurrentDownloads: o.maxConcurrentDownloads ?? globalLimit(),
          }),
        ),
      );
    });

  program
    .command('push')
    .description('Upload an image to a registry')
    .argument('<name>', 'NAME[:TAG]')
    .option('--insecure-registry <host>', 'allow plain HTTP or unverified TLS to this registry (repeatable)', collect, [] as string[])
    .option('-q, --quiet', 'suppress verbose output')
    .option('--max-concurrent-uploads <n>', 'layer uploads running at once (default 3)', positiveInt)
    .action(async (name: string, o: { insecureRegistry: string[]; quiet?: boolean; maxConcurrentUploads?: number }) => {
      await withStore((store) =>
        userErrors(async () => {
          const ref = withDefaultTag(parseRef(name));
          const img = pushSource(store, name);
          const progress = new ProgressRenderer(io.out);
          if (!o.quiet) io.print(`The push refers to repository [${repositoryName(ref)}]`);
          const client = new RegistryClient({ insecureRegistries: o.insecureRegistry });
          try {
            const r = await pushImage(img, ref, {
              client,
              maxConcurrentUploads: o.maxConcurrentUploads,
              onProgress: o.quiet ? undefined : (e) => progress.update(e),
              recordBlob: (diffID, blob, repo) => {
                store.layers.recordBlob(diffID, blob);
                store.layers.recordBlobSource(blob.digest, repo);
              },
            });
            io.print(`${r.tag}: digest: ${r.digest} size: ${r.size}`);
          } finally {
            await client.close();
          }
        }),
      );
    });

  program
    .command('login')
    .description('Log in to a registry')
    .argument('[server]', 'registry host (default Docker Hub)')
    .option('-u, --username <username>', 'username')
    .option('-p, --password <password>', 'password')
    .option('--password-stdin', 'take the password from stdin')
    .action(async (server: string | undefined, o: { username?: string; password?: string; passwordStdin?: boolean }) => {
      if (o.password !== undefined && o.passwordStdin) throw new StrataError('--password and --password-stdin are mutually exclusive');
      if (o.passwordStdin && !o.username) throw new StrataError('Must provide --username with --password-stdin');
      if (!o.username) throw new StrataError('login: --username is required (strata does not prompt)');
      let password = o.password;
      if (o.passwordStdin) password = await readStdin();
      else if (password !== undefined) io.err.write('WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n');
      if (password === undefined) throw new StrataError('login: give a password with --password-stdin or -p');
      const line = await userErrors(() => login(server, { username: o.username!, password: password! }));
      io.print(line);
    });

  program
    .command('logout')
    .description('Log out from a registry')
    .argument('[server]', 'registry host (default Docker Hub)')
    .action(async (server: string | undefined) => {
      io.print(await userErrors(() => logout(server)));
    });
}
