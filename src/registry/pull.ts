// Pull side of the distribution protocol: resolve a reference to one image manifest
// (negotiating Docker schema 2 / OCI, choosing a platform from a list or index), fetch and
// verify the config, and hand the store an ImageSource whose layers stream their blobs
// through a digest check.
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import type { ImageSource, LayerSource } from '../image/source.js';
import { RegistryClient, RegistryError, type ClientOptions } from './client.js';
import {
  familiarString,
  parseNormalizedNamed,
  referenceString,
  registryHost,
  repositoryName,
  withDefaultTag,
  type Reference,
} from './reference.js';

export const MediaTypes = {
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
} as const;

const acceptHeader = [MediaTypes.ociIndex, MediaTypes.dockerManifestList, MediaTypes.ociManifest, MediaTypes.dockerManifest].join(', ');

/** Manifests and configs are small; anything bigger is refused rather than buffered. */
const manifestLimit = 4 << 20;
const configLimit = 16 << 20;

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

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
}

export interface ResolvedImage {
  source: ImageSource;
  /** Digest of the manifest the reference names (the index's, for a multi-platform image). */
  manifestDigest: string;
  /** Digest of the platform manifest actually used. */
  imageManifestDigest: string;
  reference: Reference;
  platform: Platform;
  /** Closes the connections when the client was made here. */
  close(): Promise<void>;
}

const nodeArch: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

export function hostPlatform(): Platform {
  const architecture = nodeArch[process.arch] ?? process.arch;
  return normalisePlatform({ os: 'linux', architecture });
}

/** Canonical spellings, as containerd's platforms package does (aarch64 → arm64/v8, x86_64 → amd64). */
export function normalisePlatform(p: Platform): Platform {
  const os = p.os.toLowerCase();
  let architecture = p.architecture.toLowerCase();
  let variant = p.variant?.toLowerCase();
  if (architecture === 'x86_64' || architecture === 'x86-64') architecture = 'amd64';
  if (architecture === 'aarch64') architecture = 'arm64';
  if (architecture === 'i386') architecture = '386';
  if (architecture === 'arm64' && (variant === undefined || variant === '8')) variant = 'v8';
  if (architecture === 'arm' && variant === undefined) variant = 'v7';
  if (architecture === 'arm' && variant && /^\d$/.test(variant)) variant = `v${variant}`;
  if (architecture === 'amd64' && variant === 'v1') variant = undefined;
  return variant ? { os, architecture, variant } : { os, architecture };
}

export function parsePlatform(s: string): Platform {
  const parts = s.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((x) => x === '')) {
    throw new Error(`invalid platform "${s}": expected os/arch[/variant]`);
  }
  return normalisePlatform({ os: parts[0], architecture: parts[1], variant: parts[2] });
}

export function platformString(p: Platform): string {
  return p.variant ? `${p.os}/${p.architecture}/${p.variant}` : `${p.os}/${p.architecture}`;
}

function platformMatches(want: Platform, have: Platform): boolean {
  const h = normalisePlatform(have);
  return h.os === want.os && h.architecture === want.architecture && (want.variant === undefined || h.variant === want.variant);
}

export function sha256(b: Buffer): string {
  return 'sha256:' + createHash('sha256').update(b).digest('hex');
}

function shortId(digest: string): string {
  return digest.slice(digest.indexOf(':') + 1, digest.indexOf(':') + 13);
}

interface Descriptor {
  mediaType?: string;
  digest: string;
  size: number;
  platform?: { os: string; architecture: string; variant?: string };
  urls?: string[];
}

interface ManifestJSON {
  schemaVersion?: number;
  mediaType?: string;
  config?: Descriptor;
  layers?: Descriptor[];
  manifests?: Descriptor[];
}

async function readLimited(body: AsyncIterable<Buffer>, limit: number, what: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    n += c.length;
    if (n > limit) throw new Error(`${what} is larger than ${limit} bytes`);
    parts.push(c);
  }
  return Buffer.concat(parts);
}

function checkDigestSyntax(d: unknown, what: string): string {
  if (typeof d !== 'string' || !/^sha256:[a-f0-9]{64}$|^sha512:[a-f0-9]{128}$|^sha384:[a-f0-9]{96}$/.test(d)) {
    throw new Error(`${what}: invalid digest ${JSON.stringify(d)}`);
  }
  return d;
}

function digestOf(algo: string, b: Buffer): string {
  return `${algo}:` + createHash(algo).update(b).digest('hex');
}

interface FetchedManifest {
  mediaType: string;
  bytes: Buffer;
  digest: string;
  json: ManifestJSON;
}

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
  const algo = expected ? expected.slice(0, expected.indexOf(':')) : 'sha256';
  const digest = digestOf(algo, bytes);
  if (expected && digest !== expected) {
    throw new RegistryError(`manifest ${where}: content digest ${digest} does not match the requested ${expected}`);
  }
  const header = res.headers['docker-content-digest'];
  const claimed = Array.isArray(header) ? header[0] : header;
  if (!expected && claimed?.startsWith('sha256:') && claimed !== digest) {
    throw new RegistryError(`manifest ${where}: content digest ${digest} does not match Docker-Content-Digest ${claimed}`);
  }
  let json: ManifestJSON;
  try {
    json = JSON.parse(bytes.toString('utf8')) as ManifestJSON;
  } catch {
    throw new RegistryError(`manifest ${where}: not valid JSON`);
  }
  const ct = res.headers['content-type'];
  const contentType = (Array.isArray(ct) ? ct[0] : ct)?.split(';')[0].trim();
  let mediaType = json.mediaType ?? contentType ?? '';
  if (!json.mediaType && (mediaType === '' || mediaType === 'application/json' || mediaType === 'application/octet-stream')) {
    mediaType = json.manifests ? MediaTypes.ociIndex : MediaTypes.ociManifest;
  }
  if (json.schemaVersion === 1 || mediaType === MediaTypes.dockerSchema1 || mediaType === MediaTypes.dockerSchema1Signed) {
    throw new RegistryError(`manifest ${where}: Docker schema 1 manifests are not supported (deprecated by Docker; re-push the image)`);
  }
  if (![MediaTypes.dockerManifest, MediaTypes.dockerManifestList, MediaTypes.ociManifest, MediaTypes.ociIndex].includes(mediaType as never)) {
    throw new RegistryError(`manifest ${where}: unsupported media type ${mediaType}`);
  }
  return { mediaType, bytes, digest, json };
}

function isIndex(m: FetchedManifest): boolean {
  return m.mediaType === MediaTypes.ociIndex || m.mediaType === MediaTypes.dockerManifestList;
}

/** Wraps a blob stream so it fails at its end (or past its size) unless the bytes match the digest. */
export function verifyingStream(input: Readable, digest: string, size: number | undefined, what: string, onBytes?: (n: number) => void): Readable {
  const algo = digest.slice(0, digest.indexOf(':'));
  const hash = createHash(algo);
  let n = 0;
  const t = new Transform({
    readableHighWaterMark: 1 << 20,
    writableHighWaterMark: 1 << 20,
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      n += chunk.length;
      if (size !== undefined && n > size) {
        cb(new Error(`${what}: blob ${digest} is longer than its declared ${size} bytes`));
        return;
      }
      hash.update(chunk);
      onBytes?.(n);
      cb(null, chunk);
    },
    flush(cb: TransformCallback) {
      if (size !== undefined && n !== size) {
        cb(new Error(`${what}: blob ${digest} ended after ${n} of ${size} bytes`));
        return;
      }
      const got = `${algo}:${hash.digest('hex')}`;
      if (got !== digest) cb(new Error(`${what}: blob digest mismatch: expected ${digest}, got ${got}; the data was refused`));
      else cb();
    },
  });
  input.on('error', (err) => t.destroy(err));
  t.on('close', () => {
    if (!input.destroyed) input.destroy();
  });
  return input.pipe(t);
}

/**
 * Resolves `ref` (a string as typed, or a parsed reference) on its registry to an ImageSource.
 * Nothing is downloaded beyond manifests and the config until a layer's `open()` is called.
 */
export async function resolveImage(ref: string | Reference, opts: PullOptions = {}): Promise<ResolvedImage> {
  const parsed = typeof ref === 'string' ? parseNormalizedNamed(ref) : ref;
  const reference = withDefaultTag(parsed);
  const host = registryHost(reference);
  const repo = reference.path;
  const ownClient = !opts.client;
  const client = opts.client ?? new RegistryClient(opts);
  const emit = (e: ProgressEvent) => {
    opts.onProgress?.(e);
    opts.events?.emit('progress', e);
  };
  try {
    const explicitPlatform = opts.platform !== undefined;
    const want = opts.platform ? parsePlatform(opts.platform) : hostPlatform();
    const top = await fetchManifest(client, host, repo, reference.digest ?? reference.tag!, reference.digest);
    let image = top;
    if (isIndex(top)) {
      const entries = (top.json.manifests ?? []).filter((d) => d.platform && d.platform.os !== 'unknown');
      const candidates = entries.filter((d) => platformMatches(want, d.platform!));
      // With no variant asked for, prefer the host's default variant, then the first listed.
      const pick = candidates.find((d) => normalisePlatform(d.platform!).variant === want.variant) ?? candidates[0];
      if (!pick) {
        const have = entries.map((d) => platformString(normalisePlatform(d.platform!))).join(', ');
        throw new RegistryError(`no matching manifest for ${platformString(want)} in the manifest list entries (available: ${have || 'none'})`);
      }
      const digest = checkDigestSyntax(pick.digest, `manifest list ${host}/${repo}`);
      image = await fetchManifest(client, host, repo, digest, digest);
      if (isIndex(image)) throw new RegistryError(`${host}/${repo}: nested manifest lists are not supported`);
    }
    const m = image.json;
    if (!m.config || !Array.isArray(m.layers)) throw new RegistryError(`manifest ${host}/${repo}@${image.digest}: missing config or layers`);
    const cfgDigest = checkDigestSyntax(m.config.digest, `manifest ${image.digest} config`);
    const cfgStream = client.openBlob(host, repo, cfgDigest, { size: m.config.size });
    const config = await readLimited(
      verifyingStream(cfgStream, cfgDigest, m.config.size, `config of ${familiarString(reference)}`) as AsyncIterable<Buffer>,
      configLimit,
      `config ${cfgDigest}`,
    );
    let cfgJSON: { os?: string; architecture?: string; variant?: string; rootfs?: { diff_ids?: string[] } };
    try {
      cfgJSON = JSON.parse(config.toString('utf8'));
    } catch {
      throw new RegistryError(`config ${cfgDigest} of ${familiarString(reference)}: not valid JSON`);
    }
    const platform = normalisePlatform({
      os: cfgJSON.os ?? want.os,
      architecture: cfgJSON.architecture ?? want.architecture,
      variant: cfgJSON.variant,
    });
    if (!isIndex(top) && explicitPlatform && !platformMatches(want, platform)) {
      throw new RegistryError(
        `image with reference ${familiarString(reference)} was found but does not match the specified platform: wanted ${platformString(want)}, actual: ${platformString(platform)}`,
      );
    }
    const diffIDs = cfgJSON.rootfs?.diff_ids ?? [];
    if (diffIDs.length !== m.layers.length) {
      throw new RegistryError(`image ${familiarString(reference)}: manifest has ${m.layers.length} layers but config has ${diffIDs.length} diff_ids`);
    }
    const layers: LayerSource[] = m.layers.map((d, i) => {
      const digest = checkDigestSyntax(d.digest, `manifest ${image.digest} layer ${i}`);
      const id = shortId(digest);
      const size = typeof d.size === 'number' ? d.size : undefined;
      return {
        mediaType: d.mediaType ?? MediaTypes.ociManifest.replace('manifest.v1+json', 'layer.v1.tar+gzip'),
        digest,
        size,
        async open(): Promise<Readable> {
          emit({ id, status: 'Pulling fs layer' });
          const raw = client.openBlob(host, repo, digest, { size });
          let last = 0;
          const out = verifyingStream(raw, digest, size, `layer ${id} of ${familiarString(reference)}`, (n) => {
            // Throttle to about one update per 512 KiB so the renderer is not flooded.
            if (n - last >= 1 << 19 || n === size) {
              last = n;
              emit({ id, status: 'Downloading', current: n, total: size });
            }
          });
          raw.once('end', () => emit({ id, status: 'Verifying Checksum' }));
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

/** "latest: Pulling from library/nginx", the first line docker prints. */
export function pullingFromLine(ref: Reference): string {
  const what = ref.digest ?? ref.tag ?? 'latest';
  const name = ref.domain === 'docker.io' ? ref.path : repositoryName(ref);
  return `${what}: Pulling from ${name}`;
}
