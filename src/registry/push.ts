// Push side of the distribution protocol: for each layer, reuse a compressed blob the registry
// already has (HEAD), or mount it from a repository it was pulled from, or gzip the layer tar
// and upload it (chunked, straight from the compressor through a digest check); then the config
// and the manifest, the stored one byte for byte when its blobs are all there.
import type { Readable } from 'node:stream';
import { compress } from '../archive/compression.js';
import { DigestStream, sha256Digest } from '../image/digest.js';
import {
  DOCKER_CONFIG,
  DOCKER_LAYER,
  DOCKER_LAYER_GZIP,
  DOCKER_LAYER_ZSTD,
  DOCKER_MANIFEST,
  OCI_CONFIG,
  OCI_LAYER,
  OCI_LAYER_GZIP,
  OCI_LAYER_ZSTD,
  OCI_MANIFEST,
  layerCompressionOf,
  type Compression,
} from '../image/mediatypes.js';
import type { ExportImage, ExportLayer } from '../image/source.js';
import { parseManifest, type Descriptor, type Manifest } from '../image/types.js';
import { RegistryClient, RegistryError, type ClientOptions, type Response } from './client.js';
import { slots, type ProgressEvent } from './pull.js';
import { registryHost, repositoryName, withDefaultTag, type Reference } from '../reference/reference.js';

/** Bytes per PATCH of a chunked upload; blobs that fit in one go up with a single PUT. */
const UPLOAD_CHUNK = 8 << 20;

export interface KnownBlob {
  digest: string;
  mediaType: string;
  size: number;
  /** Repositories ("host/path") the blob is known to be in, for cross-repository mounts. */
  sources: string[];
}

export interface PushLayer extends ExportLayer {
  /** Compressed (or plain) forms of this layer the store has seen, with where they came from. */
  blobs: KnownBlob[];
}

export interface PushImage extends Omit<ExportImage, 'layers'> {
  layers: PushLayer[];
  /** The manifest the image came with, pushed unchanged when all its blobs reach the target. */
  manifest: { mediaType: string; bytes: Buffer; digest: string } | null;
}

export interface PushOptions extends ClientOptions {
  onProgress?: (e: ProgressEvent) => void;
  /** Remember a blob now known to hold `diffID` in repository `repo` ("host/path"). */
  recordBlob?: (diffID: string, blob: { digest: string; mediaType: string; size: number }, repo: string) => void;
  client?: RegistryClient;
  /** Layers uploading at once, at most (default 3). */
  maxConcurrentUploads?: number;
}

export interface PushResult {
  /** "host/path" */
  repository: string;
  tag: string;
  digest: string;
  size: number;
  /** True when the manifest the image came with was pushed unchanged. */
  keptManifest: boolean;
}

type Family = 'docker' | 'oci';

const layerTypes: Record<Family, Record<Compression, string>> = {
  docker: { none: DOCKER_LAYER, gzip: DOCKER_LAYER_GZIP, zstd: DOCKER_LAYER_ZSTD },
  oci: { none: OCI_LAYER, gzip: OCI_LAYER_GZIP, zstd: OCI_LAYER_ZSTD },
};

function header(res: Response, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** The short id docker prints for a layer being pushed. */
function layerId(diffID: string): string {
  return diffID.slice(diffID.indexOf(':') + 1, diffID.indexOf(':') + 13);
}

/** Splits "host/path" into its host and repository path. */
function splitRepo(full: string): { host: string; path: string } {
  const i = full.indexOf('/');
  return { host: full.slice(0, i), path: full.slice(i + 1) };
}

class Pusher {
  constructor(
    private readonly client: RegistryClient,
    private readonly host: string,
    private readonly repo: string,
    private readonly emit: (e: ProgressEvent) => void,
  ) {}

  private get pushScope(): string {
    return `repository:${this.repo}:pull,push`;
  }

  async exists(digest: string): Promise<boolean> {
    const res = await this.client.fetch(this.host, `/v2/${this.repo}/blobs/${digest}`, {
      method: 'HEAD',
      scope: this.pushScope,
      ok: (s) => s === 200 || s === 404,
    });
    await res.body.dump();
    return res.status === 200;
  }

  /** Cross-repository mount; true when the registry linked the blob without an upload. */
  async mount(digest: string, from: string): Promise<boolean> {
    const res = await this.client.fetch(this.host, `/v2/${this.repo}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`, {
      method: 'POST',
      scope: `${this.pushScope} repository:${from}:pull`,
      body: Buffer.alloc(0),
      ok: (s) => s === 201 || s === 202,
    });
    await res.body.dump();
    if (res.status === 202) {
      // The registry opened an upload session instead: drop it, the blob goes up the normal way.
      const loc = header(res, 'location');
      if (loc) await this.client.fetch(this.host, this.absolute(loc, res.url), { method: 'DELETE', scope: this.pushScope, ok: () => true }).then((r) => r.body.dump());
      return false;
    }
    return true;
  }

  private absolute(location: string, base: string): string {
    return new URL(location, base).href;
  }

  private async startUpload(): Promise<string> {
    const res = await this.client.fetch(this.host, `/v2/${this.repo}/blobs/uploads/`, {
      method: 'POST',
      scope: this.pushScope,
      body: Buffer.alloc(0),
      ok: (s) => s === 202,
    });
    await res.body.dump();
    const loc = header(res, 'location');
    if (!loc) throw new RegistryError(`${this.host}/${this.repo}: upload started without a Location`);
    return this.absolute(loc, res.url);
  }

  private async finish(location: string, digest: string, body: Buffer): Promise<void> {
    const u = new URL(location);
    u.searchParams.set('digest', digest);
    const res = await this.client.fetch(this.host, u.href, {
      method: 'PUT',
      scope: this.pushScope,
      headers: { 'content-type': 'application/octet-stream' },
      body,
      ok: (s) => s === 201,
    });
    await res.body.dump();
  }

  /** A small blob in one PUT (monolithic upload). */
  async putBlob(bytes: Buffer): Promise<string> {
    const digest = sha256Digest(bytes);
    await this.finish(await this.startUpload(), digest, bytes);
    return digest;
  }

  /**
   * Streams `data` up: PATCH chunks of UPLOAD_CHUNK bytes, then PUT ?digest= with what is left
   * (all of it, for a blob smaller than a chunk). The digest is computed on the way.
   */
  async uploadStream(data: Readable, id: string, expected?: string): Promise<{ digest: string; size: number }> {
    const check = new DigestStream({ expected, what: `layer ${id}` });
    data.on('error', (err) => check.destroy(err));
    data.pipe(check);
    let location = await this.startUpload();
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let sent = 0;
    const patch = async () => {
      const body = Buffer.concat(pending, pendingBytes);
      pending = [];
      pendingBytes = 0;
      const res = await this.client.fetch(this.host, location, {
        method: 'PATCH',
        scope: this.pushScope,
        headers: { 'content-type': 'application/octet-stream', 'content-range': `${sent}-${sent + body.length - 1}` },
        body,
        ok: (s) => s === 202,
      });
      await res.body.dump();
      const loc = header(res, 'location');
      if (loc) location = this.absolute(loc, res.url);
      sent += body.length;
      this.emit({ id, status: 'Pushing', current: sent });
    };
    try {
      for await (const c of check as AsyncIterable<Buffer>) {
        pending.push(c);
        pendingBytes += c.length;
        if (pendingBytes >= UPLOAD_CHUNK) await patch();
      }
      const rest = Buffer.concat(pending, pendingBytes);
      await this.finish(location, check.digest, rest);
      this.emit({ id, status: 'Pushing', current: sent + rest.length });
      return { digest: check.digest, size: check.size };
    } catch (err) {
      data.destroy();
      check.destroy();
      await this.client.fetch(this.host, location, { method: 'DELETE', scope: this.pushScope, ok: () => true }).then(
        (r) => r.body.dump(),
        () => undefined,
      );
      throw err;
    }
  }

  async putManifest(tag: string, mediaType: string, bytes: Buffer): Promise<string> {
    const res = await this.client.fetch(this.host, `/v2/${this.repo}/manifests/${tag}`, {
      method: 'PUT',
      scope: this.pushScope,
      headers: { 'content-type': mediaType },
      body: bytes,
      ok: (s) => s === 201,
    });
    await res.body.dump();
    const digest = sha256Digest(bytes);
    const claimed = header(res, 'docker-content-digest');
    if (claimed && claimed !== digest) throw new RegistryError(`${this.host}/${this.repo}: registry stored the manifest as ${claimed}, not ${digest}`);
    return digest;
  }
}

/**
 * Pushes `img` as `ref` (tag "latest" when none). Layers go up one after another, each reusing
 * what the registry has or can mount before anything is uploaded.
 */
export async function pushImage(img: PushImage, ref: Reference, opts: PushOptions = {}): Promise<PushResult> {
  if (ref.digest) throw new RegistryError(`cannot push to a digest reference: ${ref.path}@${ref.digest}; push a tag`);
  const tagged = withDefaultTag(ref);
  const tag = tagged.tag!;
  const host = registryHost(tagged);
  const repository = repositoryName(tagged);
  const emit = (e: ProgressEvent) => opts.onProgress?.(e);
  const ownClient = !opts.client;
  const client = opts.client ?? new RegistryClient(opts);
  const pusher = new Pusher(client, host, tagged.path, emit);
  try {
    let stored: Manifest | null = null;
    if (img.manifest) {
      try {
        stored = parseManifest(img.manifest.bytes, `stored manifest of ${img.id}`);
      } catch {
        stored = null; // an index or something unexpected: build a new manifest instead
      }
      if (stored && (stored.layers.length !== img.layers.length || stored.config.digest !== img.id)) stored = null;
    }
    const family: Family = img.manifest?.mediaType === OCI_MANIFEST ? 'oci' : 'docker';
    // Docker lists the layers top first.
    for (const l of [...img.layers].reverse()) emit({ id: layerId(l.diffID), status: 'Preparing' });

    let keep = stored !== null;
    const pushLayer = async (layer: PushLayer, i: number): Promise<Descriptor> => {
      const id = layerId(layer.diffID);
      const want = stored?.layers[i].digest;
      // The manifest's own blob first, then the other known forms, gzip before the rest.
      const rank = (b: KnownBlob) => (b.digest === want ? 0 : b.mediaType.endsWith('gzip') ? 1 : 2);
      const known = [...layer.blobs].sort((a, b) => rank(a) - rank(b));
      let got: { digest: string; size: number; compression: Compression } | null = null;
      for (const b of known) {
        if (await pusher.exists(b.digest)) {
          emit({ id, status: 'Layer already exists' });
          got = { digest: b.digest, size: b.size, compression: layerCompressionOf(b.mediaType) };
          break;
        }
      }
      if (!got) {
        mount: for (const b of known) {
          for (const src of b.sources) {
            const s = splitRepo(src);
            if (s.host !== host || s.path === tagged.path) continue;
            if (await pusher.mount(b.digest, s.path)) {
              emit({ id, status: `Mounted from ${s.path}` });
              got = { digest: b.digest, size: b.size, compression: layerCompressionOf(b.mediaType) };
              break mount;
            }
          }
        }
      }
      if (!got && want && layer.diffID === want) {
        // The manifest names the plain tar, which the store rebuilds byte for byte.
        const r = await pusher.uploadStream(await layer.open(), id, want);
        emit({ id, status: 'Pushed' });
        got = { ...r, compression: 'none' };
      }
      if (!got) {
        const r = await pusher.uploadStream(await compress(await layer.open(), 'gzip'), id);
        emit({ id, status: 'Pushed' });
        got = { ...r, compression: 'gzip' };
      }
      if (got.digest !== want) keep = false;
      const mediaType = layerTypes[family][got.compression];
      opts.recordBlob?.(layer.diffID, { digest: got.digest, mediaType, size: got.size }, repository);
      return { mediaType, digest: got.digest, size: got.size };
    };
    const limit = opts.maxConcurrentUploads ?? 3;
    if (!Number.isInteger(limit) || limit < 1) throw new RegistryError(`max concurrent uploads must be a positive integer, got ${limit}`);
    const gate = slots(limit);
    // Every layer's upload has stopped before a failure is reported (and the client closed).
    const settled = await Promise.allSettled(
      img.layers.map(async (layer, i) => {
        const release = await gate.acquire();
        try {
          return await pushLayer(layer, i);
        } finally {
          release();
        }
      }),
    );
    const failure = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failure) throw failure.reason;
    const pushed = settled.map((r) => (r as PromiseFulfilledResult<Descriptor>).value);

    if (!(await pusher.exists(img.id))) await pusher.putBlob(img.config);

    let mediaType: string;
    let bytes: Buffer;
    if (keep && img.manifest) {
      mediaType = img.manifest.mediaType;
      bytes = img.manifest.bytes;
    } else {
      mediaType = family === 'oci' ? OCI_MANIFEST : DOCKER_MANIFEST;
      const manifest = {
        schemaVersion: 2,
        mediaType,
        config: { mediaType: family === 'oci' ? OCI_CONFIG : DOCKER_CONFIG, digest: img.id, size: img.config.length },
        layers: pushed,
      };
      bytes = Buffer.from(JSON.stringify(manifest, null, 3));
    }
    const digest = await pusher.putManifest(tag, mediaType, bytes);
    return { repository, tag, digest, size: bytes.length, keptManifest: keep && img.manifest !== null };
  } finally {
    if (ownClient) await client.close();
  }
}
