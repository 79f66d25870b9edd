// `strata save -o`: writes ExportImages as a docker-archive (what Docker 20.10's `docker save`
// writes) or an OCI image layout archive, streaming every layer once and checking its bytes.
import { InvalidInputError } from '../errors.js';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { TarHeader } from '../archive/tar/header.js';
import { TarWriter } from '../archive/tar/writer.js';
import { familiarName, parseNormalizedNamed, type Reference } from '../reference/reference.js';
import { digestHex } from '../reference/digest.js';
import { DigestStream, sha256Digest } from './digest.js';
import {
  CONTAINERD_NAME_ANNOTATION,
  OCI_CONFIG,
  OCI_INDEX,
  OCI_LAYER,
  OCI_MANIFEST,
  REF_NAME_ANNOTATION,
} from './mediatypes.js';
import type { ExportImage, ExportLayer } from './source.js';
import type { Descriptor, DockerManifestEntry, DockerRepositories, Index, Manifest } from './types.js';

export type ArchiveFormat = 'docker' | 'oci';

/**
 * Writes `images` to `out` as one tar and ends `out` (destroys it on failure). The output depends only on the images
 * (fixed mtimes and owners, fixed order), so saving the same images twice gives the same bytes.
 */
export async function writeImageArchive(out: Writable, format: ArchiveFormat, images: ExportImage[]): Promise<void> {
  let merged: ExportImage[];
  try {
    if (format !== 'docker' && format !== 'oci') throw new InvalidInputError(`unknown archive format ${JSON.stringify(format)}: use docker or oci`);
    if (images.length === 0) throw new InvalidInputError('no images to save');
    merged = mergeImages(images);
  } catch (e) {
    out.destroy();
    throw e;
  }
  const writer = new TarWriter();
  const sink = pipeline(writer.stream, out);
  // The output can fail first (a reader that went away: `save | head -c 100`): that ends the
  // writing at once instead of leaving it waiting on a stream nobody drains.
  const sinkFailed = sink.then(() => new Promise<never>(() => undefined));
  sinkFailed.catch(() => undefined);
  const work = (async () => {
    if (format === 'docker') await writeDocker(writer, merged);
    else await writeOci(writer, merged);
    await writer.finish();
  })();
  work.catch(() => undefined);
  try {
    await Promise.race([work, sinkFailed]);
  } catch (e) {
    writer.abort(e as Error);
    await sink.catch(() => undefined);
    throw e;
  }
  await sink;
}

/** The same image asked for twice (by two names) is written once with both names. */
function mergeImages(images: ExportImage[]): ExportImage[] {
  const byConfig = new Map<string, ExportImage>();
  for (const img of images) {
    if (img.layers.length === 0) throw new InvalidInputError(`image ${img.id} has no layers`);
    const key = sha256Digest(img.config);
    const seen = byConfig.get(key);
    if (seen) {
      for (const n of img.names) if (!seen.names.includes(n)) seen.names.push(n);
    } else byConfig.set(key, { ...img, names: [...img.names] });
  }
  return [...byConfig.values()];
}

const EPOCH = 0;

function fileHeader(name: string, size: number): TarHeader {
  return { name, type: 'file', mode: 0o644, uid: 0, gid: 0, size, mtime: EPOCH };
}

function dirHeader(name: string): TarHeader {
  return { name, type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: EPOCH };
}

async function addBytes(writer: TarWriter, name: string, data: Buffer | string): Promise<void> {
  const buf = typeof data === 'string' ? Buffer.from(data) : data;
  await writer.add(fileHeader(name, buf.length), buf);
}

/** Streams one layer into the archive, failing unless it has exactly its size and diffID. */
async function addLayer(writer: TarWriter, name: string, layer: ExportLayer): Promise<void> {
  const check = new DigestStream({ expected: layer.diffID, expectedSize: layer.size, what: `layer ${layer.diffID}` });
  let src: Readable;
  try {
    src = await layer.open();
  } catch (e) {
    throw new Error(`cannot open layer ${layer.diffID}: ${(e as Error).message}`);
  }
  await Promise.all([pipeline(src, check), writer.add(fileHeader(name, layer.size), check)]);
}

interface Tagged {
  ref: Reference;
  tag: string;
}

/** Parsed names that carry a tag; digest-only names cannot be written as tags. */
function taggedNames(img: ExportImage): Tagged[] {
  const out: Tagged[] = [];
  for (const n of img.names) {
    const ref = parseNormalizedNamed(n);
    if (ref.tag !== undefined) out.push({ ref, tag: ref.tag });
  }
  return out;
}

function chainIDs(layers: ExportLayer[]): string[] {
  const ids: string[] = [];
  for (const l of layers) ids.push(ids.length === 0 ? l.diffID : sha256Digest(`${ids[ids.length - 1]} ${l.diffID}`));
  return ids;
}

// Docker's legacy per-layer config, as `docker save` writes it beside each layer.tar.
const emptyContainerConfig = {
  Hostname: '', Domainname: '', User: '', AttachStdin: false, AttachStdout: false, AttachStderr: false,
  Tty: false, OpenStdin: false, StdinOnce: false, Env: null, Cmd: null, Image: '', Volumes: null,
  WorkingDir: '', Entrypoint: null, OnBuild: null, Labels: null,
};

interface V1Layer {
  id: string;
  json: string;
  layer: ExportLayer;
}

/**
 * Legacy v1 ids name the layer directories. Ours hash the layer's chain ID and its parent's v1
 * id, so a layer shared by two images (same chain) gets the same directory and is written once.
 */
function v1Layers(img: ExportImage, os: string): V1Layer[] {
  const chains = chainIDs(img.layers);
  const out: V1Layer[] = [];
  let parent: string | undefined;
  img.layers.forEach((layer, i) => {
    const id = digestHex(sha256Digest(JSON.stringify({ layer_id: chains[i], parent: parent ?? '' })));
    const v1: Record<string, unknown> = { id };
    if (parent !== undefined) v1.parent = parent;
    v1.created = '1970-01-01T00:00:00Z';
    v1.container_config = emptyContainerConfig;
    v1.os = os;
    out.push({ id, json: JSON.stringify(v1), layer });
    parent = id;
  });
  return out;
}

function configOS(config: Buffer): string {
  try {
    const os = (JSON.parse(config.toString()) as { os?: unknown }).os;
    return typeof os === 'string' ? os : 'linux';
  } catch {
    throw new InvalidInputError('image config is not valid JSON');
  }
}

async function writeDocker(writer: TarWriter, images: ExportImage[]): Promise<void> {
  const manifest: DockerManifestEntry[] = [];
  const repositories: DockerRepositories = {};
  const layerDirs: V1Layer[] = [];
  const seenLayers = new Set<string>();
  for (const img of images) {
    const configName = `${digestHex(sha256Digest(img.config))}.json`;
    const v1 = v1Layers(img, configOS(img.config));
    const tags = taggedNames(img);
    manifest.push({
      Config: configName,
      RepoTags: tags.length > 0 ? tags.map((t) => `${familiarName(t.ref)}:${t.tag}`) : null,
      Layers: v1.map((l) => `${l.id}/layer.tar`),
    });
    const top = v1[v1.length - 1].id;
    for (const t of tags) (repositories[familiarName(t.ref)] ??= {})[t.tag] = top;
    for (const l of v1) {
      if (!seenLayers.has(l.id)) {
        seenLayers.add(l.id);
        layerDirs.push(l);
      }
    }
  }
  // Small files first, so a reader streaming the archive knows the images before the layers.
  await addBytes(writer, 'manifest.json', JSON.stringify(manifest));
  if (Object.keys(repositories).length > 0) await addBytes(writer, 'repositories', JSON.stringify(repositories));
  const configs = new Set<string>();
  for (const img of images) {
    const name = `${digestHex(sha256Digest(img.config))}.json`;
    if (configs.has(name)) continue;
    configs.add(name);
    await addBytes(writer, name, img.config);
  }
  for (const l of layerDirs) {
    await writer.add(dirHeader(l.id));
    await addBytes(writer, `${l.id}/VERSION`, '1.0');
    await addBytes(writer, `${l.id}/json`, l.json);
    await addLayer(writer, `${l.id}/layer.tar`, l.layer);
  }
}

async function writeOci(writer: TarWriter, images: ExportImage[]): Promise<void> {
  const index: Index = { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] };
  const blobs = new Map<string, Buffer>();
  const layers = new Map<string, ExportLayer>();
  for (const img of images) {
    const configDigest = sha256Digest(img.config);
    blobs.set(configDigest, img.config);
    const manifest: Manifest = {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: configDigest, size: img.config.length },
      layers: img.layers.map((l) => ({ mediaType: OCI_LAYER, digest: l.diffID, size: l.size })),
    };
    for (const l of img.layers) if (!layers.has(l.diffID)) layers.set(l.diffID, l);
    const bytes = Buffer.from(JSON.stringify(manifest));
    const digest = sha256Digest(bytes);
    blobs.set(digest, bytes);
    const base: Descriptor = { mediaType: OCI_MANIFEST, digest, size: bytes.length };
    const tags = taggedNames(img);
    if (tags.length === 0) index.manifests.push(base);
    for (const t of tags) {
      const full = `${t.ref.domain}/${t.ref.path}:${t.tag}`;
      index.manifests.push({ ...base, annotations: { [CONTAINERD_NAME_ANNOTATION]: full, [REF_NAME_ANNOTATION]: t.tag } });
    }
  }
  await addBytes(writer, 'oci-layout', JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await addBytes(writer, 'index.json', JSON.stringify(index));
  await writer.add(dirHeader('blobs'));
  await writer.add(dirHeader('blobs/sha256'));
  for (const [digest, bytes] of blobs) {
    // A config can also be a layer only in contrived cases; a layer's bytes are what count.
    if (!layers.has(digest)) await addBytes(writer, `blobs/sha256/${digestHex(digest)}`, bytes);
  }
  for (const [diffID, layer] of layers) await addLayer(writer, `blobs/sha256/${digestHex(diffID)}`, layer);
}
