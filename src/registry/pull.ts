// Pull side of the distribution protocol: resolve a reference to one image manifest
// (negotiating Docker schema 2 / OCI, choosing a platform from a list or index), fetch and
// verify the config, and hand the store an ImageSource whose layers stream their blobs
// through a digest check.
import { EventEmitter } from 'node:events';
import { pipeline, type Readable } from 'node:stream';
import { DigestStream, sha256Digest } from '../image/digest.js';
import { shortId, validateDigest } from '../reference/digest.js';
import {
  DOCKER_MANIFEST,
  DOCKER_MANIFEST_LIST,
  OCI_INDEX,
  OCI_LAYER_GZIP,
  OCI_MANIFEST,
  isIndexMediaType,
} from '../image/mediatypes.js';
import { describePlatform, findManifest, hostPlatform, normalizePlatform, parsePlatform, platformMatches, platformMismatch, type PlatformSpec } from '../image/platform.js';
import type { ImageSource, LayerSource } from '../image/source.js';
import { parseImageConfig, parseIndex, parseManifest, type Index, type Manifest } from '../image/types.js';
import { RegistryClient, RegistryError, type ClientOptions } from './client.js';
import { mirrorHost, plainHttpMirrors } from './mirrors.js';
import { StrataError } from '../errors.js';
import { log } from '../log.js';
import {
  familiarString,
  parseNormalizedNamed,
  referenceString,
  registryHost,
  repositoryName,
  withDefaultTag,
  type Reference,
} from '../reference/reference.js';

const DOCKER_SCHEMA1 = 'application/vnd.docker.distribution.manifest.v1+json';
const DOCKER_SCHEMA1_SIGNED = 'application/vnd.docker.distribution.manifest.v1+prettyjws';

const acceptHeader = [OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST].join(', ');

/** Manifests and configs are small; anything bigger is refused rather than buffered. */
const manifestLimit = 4 << 20;
const configLimit = 16 << 20;

/** One progress update, shaped like Docker's JSON messages. */
export interface ProgressEvent {
  /** Short layer id (12 hex digits, as docker prints); absent for whole-image lines. */
  id?: string;
  status: string;
  current?: number;
  total?: number;
}

export interface PullOptions extends ClientOptions {
  /** "os/arch[/variant]"; default the host's. */
  platform?: string;
  /** Progress updates; also emitted as 'progress' on `events` when given. */
  onProgress?: (e: ProgressEvent) => void;
  events?: EventEmitter;
  /** A client to share (its connections and tokens); one is made (and closed by `close`) otherwise. */
  client?: RegistryClient;
  /** Layer blobs streaming at once, at most (default 3, as Docker); more opens wait their turn. */
  maxConcurrentDownloads?: number;
  /** Mirrors of Docker Hub ("https://host[:port]"), asked in order before it for docker.io images. */
  registryMirrors?: string[];
}

export interface ResolvedImage {
  source: ImageSource;
  /** Digest of the manifest the reference names (the index's, for a multi-platform image). */
  manifestDigest: string;
  /** Digest of the platform manifest actually used. */
  imageManifestDigest: string;
  reference: Reference;
  platform: PlatformSpec;
  /** Closes the connections when the client was made here. */
  close(): Promise<void>;
}

/** A counting semaphore: `acquire` resolves when one of `n` slots is free. */
export function slots(n: number): { acquire(onWait?: () => void): Promise<() => void> } {
  let free = n;
  const waiting: (() => void)[] = [];
  const release = () => {
    const next = waiting.shift();
    if (next) next();
    else free++;
  };
  return {
    async acquire(onWait?: () => void) {
      if (free > 0) free--;
      else {
        onWait?.();
        await new Promise<void>((r) => waiting.push(r));
      }
      let done = false;
      return () => {
        if (done) return;
        done = true;
        release();
      };
    },
  };
}

export async function readLimited(body: AsyncIterable<Buffer>, limit: number, what: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    n += c.length;
    if (n > limit) throw new RegistryError(`${what} is larger than ${limit} bytes`);
    parts.push(c);
  }
  return Buffer.concat(parts);
}

type FetchedManifest =
  | { kind: 'index'; mediaType: string; bytes: Buffer; digest: string; json: Index }
  | { kind: 'manifest'; mediaType: string; bytes: Buffer; digest: string; json: Manifest };

async function fetchManifest(client: RegistryClient, host: string, repo: string, ref: string, expected?: string): Promise<FetchedManifest> {
  const where = `${host}/${repo}:${ref}`;
  let res;
  try {
    res = await client.fetch(host, `/v2/${repo}/manifests/${ref}`, { scope: `repository:${repo}:pull`, headers: { accept: acceptHeader } });
  } catch (err) {
    if (err instanceof RegistryError && err.status === 404) {
      const name = ref.includes(':') ? `${host}/${repo}@${ref}` : `${host}/${repo}:${ref}`;
      throw new RegistryError(`manifest for ${name} not found: ${err.message.replace(/^[^ ]+: GET [^ ]+: 404 /, '')}`, 404, err.codes);
    }
    throw err;
  }
  const bytes = await readLimited(res.body as AsyncIterable<Buffer>, manifestLimit, `manifest ${where}`);
  const digest = sha256Digest(bytes);
  if (expected && digest !== expected) {
    throw new RegistryError(`manifest ${where}: content digest ${digest} does not match the requested ${expected}`);
  }
  const header = res.headers['docker-content-digest'];
  const claimed = Array.isArray(header) ? header[0] : header;
  if (!expected && claimed?.startsWith('sha256:') && claimed !== digest) {
    throw new RegistryError(`manifest ${where}: content digest ${digest} does not match Docker-Content-Digest ${claimed}`);
  }
  let json: { schemaVersion?: unknown; mediaType?: string; manifests?: unknown };
  try {
    json = JSON.parse(bytes.toString('utf8')) as typeof json;
  } catch {
    throw new RegistryError(`manifest ${where}: not valid JSON`);
  }
  const ct = res.headers['content-type'];
  const contentType = (Array.isArray(ct) ? ct[0] : ct)?.split(';')[0].trim();
  let mediaType = json.mediaType ?? contentType ?? '';
  if (!json.mediaType && (mediaType === '' || mediaType === 'application/json' || mediaType === 'application/octet-stream')) {
    mediaType = json.manifests ? OCI_INDEX : OCI_MANIFEST;
  }
  if (json.schemaVersion === 1 || mediaType === DOCKER_SCHEMA1 || mediaType === DOCKER_SCHEMA1_SIGNED) {
    throw new RegistryError(`manifest ${where}: Docker schema 1 manifests are not supported (deprecated by Docker; re-push the image)`);
  }
  try {
    if (isIndexMediaType(mediaType)) return { kind: 'index', mediaType, bytes, digest, json: parseIndex(bytes, `manifest ${where}`) };
    if (mediaType === OCI_MANIFEST || mediaType === DOCKER_MANIFEST) {
      return { kind: 'manifest', mediaType, bytes, digest, json: parseManifest(bytes, `manifest ${where}`) };
    }
  } catch (err) {
    throw new RegistryError((err as Error).message);
  }
  throw new RegistryError(`manifest ${where}: unsupported media type ${mediaType}`);
}

/** A blob stream that errors at its end (or past its size) unless the bytes match the digest. */
export function verifiedBlob(input: Readable, digest: string, size: number | undefined, what: string, onBytes?: (n: number) => void): Readable {
  const check = new DigestStream({ expected: digest, expectedSize: size, what: `${what}: blob ${digest}`, onBytes });
  // pipeline() carries an input failure to the check stream and closes the input if the check fails.
  return pipeline(input, check, () => undefined);
}

/**
 * The manifest a reference names, from the first mirror that has it, else from its own registry
 * (Docker's order). A mirror that lacks the image or fails is passed over with a log line; when
 * the registry fails too, its error says what each mirror answered.
 */
async function fetchTop(client: RegistryClient, reference: Reference, mirrors: string[]): Promise<{ host: string; top: FetchedManifest }> {
  const want = reference.digest ?? reference.tag!;
  const missed: string[] = [];
  for (const host of mirrors) {
    try {
      return { host, top: await fetchManifest(client, host, reference.path, want, reference.digest) };
    } catch (err) {
      if (!(err instanceof StrataError)) throw err;
      log.info(`mirror ${host} did not serve ${familiarString(reference)}: ${err.message}`);
      missed.push(`mirror ${host}: ${err.message}`);
    }
  }
  const host = registryHost(reference);
  try {
    return { host, top: await fetchManifest(client, host, reference.path, want, reference.digest) };
  } catch (err) {
    if (!(err instanceof StrataError) || missed.length === 0) throw err;
    throw new RegistryError(`${err.message} (and ${missed.join('; ')})`, err instanceof RegistryError ? err.status : undefined);
  }
}

/**
 * Resolves `ref` (a string as typed, or a parsed reference) on its registry to an ImageSource.
 * Nothing is downloaded beyond manifests and the config until a layer's `open()` is called.
 */
export async function resolveImage(ref: string | Reference, opts: PullOptions = {}): Promise<ResolvedImage> {
  const parsed = typeof ref === 'string' ? parseNormalizedNamed(ref) : ref;
  const reference = withDefaultTag(parsed);
  const repo = reference.path;
  const ownClient = !opts.client;
  const mirrors = reference.domain === 'docker.io' ? (opts.registryMirrors ?? []) : [];
  const client =
    opts.client ?? new RegistryClient({ ...opts, insecureRegistries: [...(opts.insecureRegistries ?? []), ...plainHttpMirrors(mirrors)] });
  const emit = (e: ProgressEvent) => {
    opts.onProgress?.(e);
    opts.events?.emit('progress', e);
  };
  try {
    const explicitPlatform = opts.platform !== undefined;
    const want = normalizePlatform(opts.platform ? parsePlatform(opts.platform) : hostPlatform());
    if (reference.digest) validateDigest(reference.digest, `digest of ${familiarString(reference)}`);
    const { host, top } = await fetchTop(client, reference, mirrors.map(mirrorHost));
    let image = top;
    if (top.kind === 'index') {
      // Attestations and other platform-less or "unknown/unknown" entries are never an image to run.
      const entries = top.json.manifests.filter((d) => d.platform && d.platform.os !== 'unknown');
      const pick = entries.length > 0 ? findManifest(entries, want) : undefined;
      if (!pick) {
        const have = entries.map((d) => describePlatform(d.platform!)).join(', ');
        throw new RegistryError(`no matching manifest for ${describePlatform(want)} in the manifest list entries (available: ${have || 'none'})`);
      }
      image = await fetchManifest(client, host, repo, pick.digest, pick.digest);
      if (image.kind === 'index') throw new RegistryError(`${host}/${repo}: nested manifest lists are not supported`);
    }
    if (image.kind !== 'manifest') throw new RegistryError(`${host}/${repo}: expected an image manifest`);
    const m = image.json;
    const cfgStream = client.openBlob(host, repo, m.config.digest, { size: m.config.size });
    const config = await readLimited(
      verifiedBlob(cfgStream, m.config.digest, m.config.size, `config of ${familiarString(reference)}`) as AsyncIterable<Buffer>,
      configLimit,
      `config ${m.config.digest}`,
    );
    let cfg;
    try {
      cfg = parseImageConfig(config, `config ${m.config.digest} of ${familiarString(reference)}`);
    } catch (err) {
      throw new RegistryError((err as Error).message);
    }
    const platform = normalizePlatform({ os: cfg.os, architecture: cfg.architecture, variant: cfg.variant });
    if (top.kind !== 'index' && explicitPlatform && !platformMatches(want, platform)) {
      throw new RegistryError(platformMismatch(familiarString(reference), want, platform));
    }
    const diffIDs = cfg.rootfs.diff_ids;
    if (diffIDs.length !== m.layers.length) {
      throw new RegistryError(`image ${familiarString(reference)}: manifest has ${m.layers.length} layers but config has ${diffIDs.length} diff_ids`);
    }
    const limit = opts.maxConcurrentDownloads ?? 3;
    if (!Number.isInteger(limit) || limit < 1) throw new RegistryError(`max concurrent downloads must be a positive integer, got ${limit}`);
    const downloads = slots(limit);
    const layers: LayerSource[] = m.layers.map((d) => {
      const { digest, size } = d;
      const id = shortId(digest);
      return {
        mediaType: d.mediaType ?? OCI_LAYER_GZIP,
        digest,
        size,
        verified: true,
        async open(): Promise<Readable> {
          emit({ id, status: 'Pulling fs layer' });
          const release = await downloads.acquire(() => emit({ id, status: 'Waiting' }));
          const raw = client.openBlob(host, repo, digest, { size });
          raw.once('close', release);
          let last = 0;
          const out = verifiedBlob(raw, digest, size, `layer ${id} of ${familiarString(reference)}`, (n) => {
            // Throttle to about one update per 512 KiB so the renderer is not flooded.
            if (n - last >= 1 << 19 || n === size) {
              last = n;
              emit({ id, status: 'Downloading', current: n, total: size });
            }
            if (n === size) emit({ id, status: 'Verifying Checksum' });
          });
          out.once('end', () => emit({ id, status: 'Download complete' }));
          return out;
        },
      };
    });
    const source: ImageSource = {
      config,
      layers,
      names: reference.tag !== undefined ? [referenceString({ ...reference, digest: undefined })] : [],
      manifest: { mediaType: image.mediaType, bytes: image.bytes, digest: image.digest },
    };
    return {
      source,
      manifestDigest: top.digest,
      imageManifestDigest: image.digest,
      reference,
      platform,
      close: () => (ownClient ? client.close() : Promise.resolve()),
    };
  } catch (err) {
    if (ownClient) await client.close();
    throw err;
  }
}

/** "latest: Pulling from library/nginx", the first line docker prints, as its event. */
export function pullingFrom(ref: Reference): ProgressEvent {
  const name = ref.domain === 'docker.io' ? ref.path : repositoryName(ref);
  return { id: ref.digest ?? ref.tag ?? 'latest', status: `Pulling from ${name}` };
}
