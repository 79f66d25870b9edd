// Pull and push between a Store and a registry: the store side of the distribution client.
// The registry client knows nothing of the store; this module hands it an image source to fill
// the store from (pull) or an image read from the store (push), and records which blobs the
// registry now holds so later pushes can skip or mount them. Progress comes out as the same
// events Docker's daemon streams to its CLI (status lines, per layer and for the whole image).
import { sha256Digest } from '../image/digest.js';
import { parseImageConfig } from '../image/types.js';
import { InvalidInputError, NotFoundError } from '../errors.js';
import { log } from '../log.js';
import { RegistryClient, type ClientOptions } from '../registry/client.js';
import { pullingFrom, resolveImage, type ProgressEvent } from '../registry/pull.js';
import { shortId } from '../reference/digest.js';
import { pushImage, type PushImage, type PushResult } from '../registry/push.js';
import { familiarName, familiarString, parseNormalizedNamed, referenceString, repositoryName, withDefaultTag, type Reference } from '../reference/reference.js';
import { parsePlatform, platformMatches, platformMismatch } from '../image/platform.js';
import { storedName, type ImageRecord } from './images.js';
import { chainIds } from './layers.js';
import type { Store } from './store.js';

export type { ProgressEvent, PushResult };

export interface PullOptions extends ClientOptions {
  /** "os/arch[/variant]" of a multi-platform image; default the host's. */
  platform?: string;
  /** Layer downloads at once (default 3, as Docker). */
  maxConcurrentDownloads?: number;
  /** Mirrors of Docker Hub ("https://host[:port]"), asked in order before it for docker.io images. */
  registryMirrors?: string[];
  onProgress?: (e: ProgressEvent) => void;
}

export interface PullResult {
  /** Image ID ("sha256:…"). */
  id: string;
  /** The full reference pulled ("docker.io/library/nginx:latest"). */
  reference: string;
  /** Digest of the manifest (or index) the reference named. */
  digest: string;
  /** The image was already in the store. */
  upToDate: boolean;
}

export interface PushOptions extends ClientOptions {
  /** Layer uploads at once (default 3). */
  maxConcurrentUploads?: number;
  onProgress?: (e: ProgressEvent) => void;
}

/** "nginx:latest", "127.0.0.1:5000/corpus/app:latest", "nginx@sha256:…" as docker's Status line names it. */
function familiarOf(ref: Reference): string {
  const name = familiarName(ref);
  return ref.digest ? `${name}@${ref.digest}` : `${name}:${ref.tag ?? 'latest'}`;
}

export async function pull(store: Store, refText: string, opts: PullOptions = {}): Promise<PullResult> {
  const shown = withDefaultTag(parseNormalizedNamed(refText));
  const emit = opts.onProgress ?? (() => undefined);
  emit(pullingFrom(shown));
  log.debug(`pull ${referenceString(shown)} into ${store.root}`);
  // Docker reports "Extracting" after "Download complete"; the store starts extracting while the
  // blob still streams in, so that event waits for the download to finish.
  const extracting = new Set<string>();
  const downloaded = new Set<string>();
  // A layer found present is reported before the import and again by it: once is enough.
  const existing = new Set<string>();
  const update = (e: ProgressEvent) => {
    if (e.id && e.status === 'Already exists') {
      if (existing.has(e.id)) return;
      existing.add(e.id);
    }
    emit(e);
    if (e.id && e.status === 'Download complete') {
      downloaded.add(e.id);
      if (extracting.has(e.id)) emit({ id: e.id, status: 'Extracting' });
    }
  };
  const resolved = await resolveImage(shown, {
    ...opts,
    onProgress: update,
  });
  try {
    const { source } = resolved;
    const id = sha256Digest(source.config);
    const upToDate = store.images.get(id) !== undefined;
    const chains = chainIds(parseImageConfig(source.config).rootfs.diff_ids);
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
    emit({ status: `Digest: ${resolved.manifestDigest}` });
    emit({ status: `Status: ${upToDate ? 'Image is up to date' : 'Downloaded newer image'} for ${familiarOf(resolved.reference)}` });
    log.debug(`pulled ${referenceString(resolved.reference)} as ${id}`);
    return { id, reference: referenceString(resolved.reference), digest: resolved.manifestDigest, upToDate };
  } finally {
    await resolved.close();
  }
}

/** `--pull`: when `create`/`run` fetch their image from its registry. */
export type PullPolicy = 'missing' | 'always' | 'never';

export function parsePullPolicy(s: string): PullPolicy {
  if (s === 'missing' || s === 'always' || s === 'never') return s;
  throw new InvalidInputError(`invalid pull option: '${s}': must be one of "always", "missing" or "never"`);
}

/** How `create`/`run` get their image: the policy, and the pull's own options (platform, progress). */
export interface ImagePullOptions extends PullOptions {
  policy: PullPolicy;
  /** `missing` found no usable image and pulls: docker's name for it ("busybox:latest"). */
  onMissing?: (name: string) => void;
}

/**
 * The ID of the image `create`/`run` use, found as docker's CLI finds it: the store's image
 * when it has one (of the `platform` asked for), else pulled when the policy allows. An image
 * ID is never pulled; `always` pulls every name, even one the store has.
 */
export async function imageForRun(store: Store, refText: string, o: ImagePullOptions): Promise<string> {
  const want = o.platform !== undefined ? parsePlatform(o.platform) : undefined;
  let named: Reference | null = null;
  if (!/^(sha256:)?[a-f0-9]{64}$/.test(refText)) {
    try {
      named = withDefaultTag(parseNormalizedNamed(refText));
    } catch {
      named = null;
    }
  }
  let local: ImageRecord | null = null;
  try {
    local = store.images.resolve(refText);
  } catch (err) {
    if (!(err instanceof NotFoundError)) throw err;
  }
  let mismatch: string | null = null;
  if (local && want) {
    const cfg = parseImageConfig(local.config);
    const actual = { os: cfg.os, architecture: cfg.architecture, variant: cfg.variant };
    if (!platformMatches(want, actual)) mismatch = platformMismatch(refText, want, actual);
  }
  const usable = local && !mismatch ? local : null;
  if (named && (o.policy === 'always' || (o.policy === 'missing' && !usable))) {
    if (o.policy === 'missing') o.onMissing?.(familiarString(named));
    return (await pull(store, refText, o)).id;
  }
  if (usable) return usable.id;
  if (mismatch) throw new NotFoundError(mismatch);
  throw new NotFoundError(`No such image: ${named ? familiarString(named) : refText}`);
}

/** The image named `refText` in the push shape: its layers, their known blobs and where those live. */
function pushSource(store: Store, refText: string, ref: Reference): PushImage {
  let name: string;
  try {
    name = storedName(refText);
  } catch (err) {
    if (err instanceof InvalidInputError) throw err;
    throw new InvalidInputError(`invalid reference format: ${refText}`);
  }
  const missing = () => new NotFoundError(`An image does not exist locally with the tag: ${familiarName(ref)}`);
  let img;
  try {
    img = store.images.resolve(name);
  } catch {
    throw missing();
  }
  if (!store.images.names(img.id).includes(name)) throw missing();
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

export async function push(store: Store, refText: string, opts: PushOptions = {}): Promise<PushResult> {
  const ref = parseNormalizedNamed(refText);
  const img = pushSource(store, refText, ref);
  const emit = opts.onProgress ?? (() => undefined);
  emit({ status: `The push refers to repository [${repositoryName(withDefaultTag(ref))}]` });
  log.debug(`push ${img.id} as ${referenceString(withDefaultTag(ref))}`);
  const client = new RegistryClient(opts);
  try {
    const r = await pushImage(img, ref, {
      client,
      maxConcurrentUploads: opts.maxConcurrentUploads,
      onProgress: opts.onProgress,
      recordBlob: (diffID, blob, repo) => {
        store.layers.recordBlob(diffID, blob);
        store.layers.recordBlobSource(blob.digest, repo);
      },
    });
    return r;
  } finally {
    await client.close();
  }
}
