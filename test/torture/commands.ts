// The mutating commands the torture harness kills: for each, how to bring a store to the state
// the command needs (with ordinary, uncut commands), the command itself, the answer that means
// "already done" when it is repeated, and how to check its effect once it has succeeded:
// the container root it leads to must equal the one a clean store gives.
import { rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { INIT_PATHS } from '../helpers/cli.js';
import { corpusImage } from '../helpers/env.js';
import { diffTrees, snapshotTree, type Node } from '../helpers/tree.js';
import { ok, type Strata } from './strata.js';

/** The corpus images trials use: one layer, and four that share busybox's. */
export const IMAGES = ['busybox', 'app'] as const;
export type ImageName = (typeof IMAGES)[number];

export const COMMANDS = ['load', 'pull', 'create', 'commit', 'rm', 'rmi', 'prune', 'push'] as const;
export type CommandName = (typeof COMMANDS)[number];

export interface Env {
  strata: Strata;
  /** "127.0.0.1:PORT" of a registry holding corpus/<image>:latest. */
  registry: string;
  /** Image IDs of the corpus images (the same loaded or pulled). */
  ids: Record<ImageName, string>;
}

export interface Trial {
  command: CommandName;
  image: ImageName;
  /** Makes names unique per trial where the command needs it (push's repository). */
  tag: string;
}

/** Root snapshots a clean store gives: `image:<name>` and `commit:<name>`. */
export type References = Map<string, Map<string, Node>>;

const TORTURE_CONTAINER = 't-c';
const WORK_CONTAINER = 't-w';
const VERIFY_CONTAINER = 't-verify';
const COMMITTED = 'torture/committed:latest';

export function pushRef(env: Env, t: Trial): string {
  return `${env.registry}/torture/${t.tag}:latest`;
}

/** Remove every container and the image (uncut): the state before a load or pull. */
async function withoutImage(env: Env, image: ImageName): Promise<void> {
  await removeAllContainers(env);
  await removeImage(env, env.ids[image]);
}

/**
 * rmi -f of ref, after every image that is not a corpus image: as in docker, an image's
 * children keep it (even forced), and a commit killed between writing its image and tagging it
 * leaves an untagged child that the name COMMITTED does not find.
 */
async function removeImage(env: Env, ref: string): Promise<void> {
  const corpus = new Set<string>(Object.values(env.ids));
  const listed = (await ok(env.strata, ['images', '-a', '-q', '--no-trunc'])).split('\n').filter(Boolean);
  const others = [...new Set(listed)].filter((id) => !corpus.has(id));
  for (const r of [COMMITTED, ...others, ref]) {
    const out = await env.strata(['rmi', '-f', r]);
    if (out.code !== 0 && !/No such image/.test(out.stderr)) throw new Error(`rmi -f ${r}: ${out.stderr.trim()}`);
  }
}

async function removeAllContainers(env: Env): Promise<void> {
  const ids = (await ok(env.strata, ['ps', '-a', '-q', '--no-trunc'])).split('\n').filter(Boolean);
  if (ids.length) await ok(env.strata, ['rm', '-f', ...ids]);
}

async function withImage(env: Env, image: ImageName): Promise<void> {
  await ok(env.strata, ['load', '-i', corpusImage(`${image}.oci.tar`)]);
}

async function withoutContainer(env: Env, name: string): Promise<void> {
  const r = await env.strata(['rm', '-f', name]);
  if (r.code !== 0 && !/No such container/.test(r.stderr)) throw new Error(`rm -f ${name}: ${r.stderr.trim()}`);
}

/** A work container holding the same changes in every store: a new file, a deleted one. */
async function withChangedContainer(env: Env, image: ImageName): Promise<void> {
  await withImage(env, image);
  await withoutContainer(env, WORK_CONTAINER);
  await ok(env.strata, ['create', '--name', WORK_CONTAINER, env.ids[image]]);
  const mnt = (await ok(env.strata, ['mount', WORK_CONTAINER])).trim();
  try {
    const file = join(mnt, 'torture-new');
    writeFileSync(file, 'written by the torture harness\n'.repeat(4096));
    utimesSync(file, 1_000_000_000, 1_000_000_000);
    rmSync(join(mnt, 'etc', 'group'));
  } finally {
    await ok(env.strata, ['umount', WORK_CONTAINER]);
  }
}

/** Bring the store to the state the trial's command starts from; returns the command's arguments. */
export async function setup(env: Env, t: Trial): Promise<string[]> {
  switch (t.command) {
    case 'load':
      await withoutImage(env, t.image);
      return ['load', '-i', corpusImage(`${t.image}.oci.tar`)];
    case 'pull':
      await withoutImage(env, t.image);
      return ['pull', '-q', `${env.registry}/corpus/${t.image}:latest`];
    case 'create':
      await withImage(env, t.image);
      await withoutContainer(env, TORTURE_CONTAINER);
      return ['create', '--name', TORTURE_CONTAINER, env.ids[t.image]];
    case 'commit':
      await withChangedContainer(env, t.image);
      return ['commit', WORK_CONTAINER, COMMITTED];
    case 'rm':
      await withImage(env, t.image);
      await withoutContainer(env, TORTURE_CONTAINER);
      await ok(env.strata, ['create', '--name', TORTURE_CONTAINER, env.ids[t.image]]);
      return ['rm', TORTURE_CONTAINER];
    case 'rmi':
      await removeAllContainers(env);
      await removeImage(env, COMMITTED);
      await withImage(env, t.image);
      // -f: a push trial may have given the image a second name, which a plain rmi refuses.
      return ['rmi', '-f', env.ids[t.image]];
    case 'prune':
      // A container of each image, one of them changed: prune -a removes everything.
      await withChangedContainer(env, t.image);
      await withImage(env, 'busybox');
      await withoutContainer(env, TORTURE_CONTAINER);
      await ok(env.strata, ['create', '--name', TORTURE_CONTAINER, env.ids.busybox]);
      return ['system', 'prune', '-a', '-f'];
    case 'push':
      await withImage(env, t.image);
      await ok(env.strata, ['tag', env.ids[t.image], pushRef(env, t)]);
      return ['push', pushRef(env, t)];
  }
}

/** What a repeated command may answer when the killed run had finished its work. */
export function alreadyDone(command: CommandName): RegExp | null {
  if (command === 'create') return /Conflict\. The container name "\/t-c" is already in use/;
  if (command === 'rm') return /No such container: t-c/;
  if (command === 'rmi') return /No such image: /;
  return null;
}

/** A container root made comparable across stores: init-layer files carry their creation time. */
function comparable(tree: Map<string, Node>): Map<string, Node> {
  const out = new Map<string, Node>();
  for (const [p, n] of tree) out.set(p, INIT_PATHS.includes(`/${p}`) ? { ...n, mtime: undefined } : n);
  return out;
}

/** The root of a fresh container of imageRef (made, mounted, read, and removed again). */
export async function containerRoot(env: Env, imageRef: string, name = VERIFY_CONTAINER): Promise<Map<string, Node>> {
  await withoutContainer(env, name);
  await ok(env.strata, ['create', '--name', name, imageRef]);
  const tree = await mountedRoot(env, name);
  await ok(env.strata, ['rm', name]);
  return tree;
}

async function mountedRoot(env: Env, container: string): Promise<Map<string, Node>> {
  const mnt = (await ok(env.strata, ['mount', container])).trim();
  try {
    return comparable(await snapshotTree(mnt, { times: 'files' }));
  } finally {
    await ok(env.strata, ['umount', container]);
  }
}

function compare(got: Map<string, Node>, refs: References, key: string): string | null {
  const want = refs.get(key);
  if (!want) throw new Error(`no reference root ${key}`);
  const d = diffTrees(got, want);
  return d.length ? `${key}: ${d.length} differences, first: ${d.slice(0, 3).join('; ')}` : null;
}

/** After the command succeeded: its effect is there and leads to the clean store's root. */
export async function verify(env: Env, t: Trial, refs: References): Promise<string | null> {
  const images = (await ok(env.strata, ['images', '-a', '-q', '--no-trunc'])).split('\n').filter(Boolean);
  const containers = (await ok(env.strata, ['ps', '-a', '--format', 'json']))
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { Names: string }).Names);
  const image = env.ids[t.image];
  switch (t.command) {
    case 'load':
    case 'pull':
    case 'push':
      if (!images.includes(image)) return `image ${t.image} is not listed`;
      return compare(await containerRoot(env, image), refs, `image:${t.image}`);
    case 'create':
      if (!containers.includes(TORTURE_CONTAINER)) return `container ${TORTURE_CONTAINER} is not listed`;
      return compare(await mountedRoot(env, TORTURE_CONTAINER), refs, `image:${t.image}`);
    case 'commit':
      return compare(await containerRoot(env, COMMITTED), refs, `commit:${t.image}`);
    case 'rm':
      if (containers.includes(TORTURE_CONTAINER)) return `container ${TORTURE_CONTAINER} is still listed`;
      return compare(await containerRoot(env, image), refs, `image:${t.image}`);
    case 'rmi':
    case 'prune':
      if (t.command === 'rmi' && images.includes(image)) return `image ${t.image} is still listed`;
      if (t.command === 'prune' && (images.length || containers.length)) return `prune left ${images.length} images, ${containers.length} containers`;
      // Loading again reuses whatever layers are left: a half-removed one would show here.
      await withImage(env, t.image);
      return compare(await containerRoot(env, image), refs, `image:${t.image}`);
  }
}

/** The reference roots, made in a clean store of the same driver (uncut commands only). */
export async function buildReferences(env: Env): Promise<References> {
  const refs: References = new Map();
  for (const image of IMAGES) {
    await withImage(env, image);
    refs.set(`image:${image}`, await containerRoot(env, image === 'busybox' ? env.ids.busybox : env.ids.app));
    await withChangedContainer(env, image);
    await ok(env.strata, ['commit', WORK_CONTAINER, COMMITTED]);
    refs.set(`commit:${image}`, await containerRoot(env, COMMITTED));
  }
  return refs;
}

/** Image IDs as a store reports them after loading the corpus archives. */
export async function corpusIds(strata: Strata): Promise<Record<ImageName, string>> {
  const ids = {} as Record<ImageName, string>;
  for (const image of IMAGES) {
    const out = await ok(strata, ['load', '-i', corpusImage(`${image}.oci.tar`)]);
    const m = /Loaded image ID: (sha256:[0-9a-f]{64})/.exec(out);
    if (!m) throw new Error(`load ${image} printed: ${out}`);
    ids[image] = m[1]!;
  }
  return ids;
}
