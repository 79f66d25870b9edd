// `strata load -i`: turns a docker-archive (docker save) or an OCI image layout archive into
// ImageSources whose layers stream straight out of the archive file.
import { normalizeName } from '../reference/reference.js';
import { InvalidInputError, MismatchError } from '../errors.js';
import { ArchiveIndex, type ArchiveMember } from './archive-index.js';
import { readLegacyDockerArchive } from './docker-legacy.js';
import { validateDigest } from '../reference/digest.js';
import { sha256Digest } from './digest.js';
import {
  CONTAINERD_NAME_ANNOTATION,
  DOCKER_LAYER,
  DOCKER_LAYER_GZIP,
  DOCKER_LAYER_ZSTD,
  isConfigMediaType,
  isIndexMediaType,
  isManifestMediaType,
  isLayerMediaType,
  REF_NAME_ANNOTATION,
  sniffCompression,
} from './mediatypes.js';
import { hostPlatform, parsePlatform, selectManifest, type PlatformSpec } from './platform.js';
import type { ImageSource, LayerSource } from './source.js';
import {
  parseDockerManifest,
  parseDockerRepositories,
  parseImageConfig,
  parseIndex,
  parseManifest,
  type Descriptor,
  type DockerManifestEntry,
  type DockerRepositories,
} from './types.js';

export interface OpenArchiveOptions {
  /** `os/arch[/variant]` to pick from multi-platform indexes; the host's platform by default. */
  platform?: string;
}

/** Every image in the archive at `path`, in the order the archive lists them. */
export async function openImageArchive(path: string, opts: OpenArchiveOptions = {}): Promise<ImageSource[]> {
  const platform = opts.platform !== undefined ? parsePlatform(opts.platform) : hostPlatform();
  const index = await ArchiveIndex.build(path);
  // Docker ≥ 25 writes both an OCI layout and manifest.json; like `docker load`, prefer the latter.
  if (index.has('manifest.json')) return mergeSame(await readDockerArchive(index));
  if (index.has('index.json')) return mergeSame(await readOciArchive(index, platform));
  if (index.has('repositories')) return readLegacyDockerArchive(index);
  throw new InvalidInputError(`${path}: not an image archive (no manifest.json, index.json or repositories)`);
}

/** Entries for one image under several names become one source with all the names. */
function mergeSame(sources: ImageSource[]): ImageSource[] {
  const byKey = new Map<string, ImageSource>();
  for (const src of sources) {
    const key = `${sha256Digest(src.config)} ${src.manifest?.digest ?? ''}`;
    const seen = byKey.get(key);
    if (seen === undefined) byKey.set(key, src);
    else for (const n of src.names) if (!seen.names.includes(n)) seen.names.push(n);
  }
  return [...byKey.values()];
}

/** A full image name from an archive label, or undefined when it is only a tag or not a name. */
function labelName(s: string): string | undefined {
  try {
    return normalizeName(s);
  } catch {
    return undefined;
  }
}

function hexOfPath(p: string): string | undefined {
  const m = /(?:^|\/)(?:sha256\/)?([0-9a-f]{64})(?:\.json)?$/.exec(p);
  return m?.[1];
}

function checkLayerCount(layers: number, diffIDs: number, what: string): void {
  if (layers !== diffIDs) {
    throw new InvalidInputError(`${what}: image has ${layers} layers but its config lists ${diffIDs} diff_ids`);
  }
}

async function readDockerArchive(index: ArchiveIndex): Promise<ImageSource[]> {
  const entries = parseDockerManifest(await index.readFile('manifest.json'), `${index.path}: manifest.json`);
  if (entries.length === 0) throw new InvalidInputError(`${index.path}: manifest.json lists no images`);
  let repositories: DockerRepositories | undefined;
  if (index.has('repositories')) {
    repositories = parseDockerRepositories(await index.readFile('repositories'), `${index.path}: repositories`);
  }
  const out: ImageSource[] = [];
  for (const [i, entry] of entries.entries()) {
    out.push(await readDockerEntry(index, entry, i, repositories));
  }
  return out;
}

async function readDockerEntry(
  index: ArchiveIndex,
  entry: DockerManifestEntry,
  i: number,
  repositories: DockerRepositories | undefined,
): Promise<ImageSource> {
  const what = `${index.path}: image ${i + 1}`;
  if (!index.has(entry.Config)) throw new InvalidInputError(`${what}: config ${entry.Config} is missing from the archive`);
  const config = await index.readFile(entry.Config);
  // The config file is named by its digest (<hex>.json, or blobs/sha256/<hex> from Docker ≥ 25).
  const hex = hexOfPath(entry.Config);
  if (hex !== undefined) {
    const actual = sha256Digest(config);
    if (actual !== `sha256:${hex}`) throw new MismatchError(`${what}: config digest mismatch: expected sha256:${hex}, got ${actual}`);
  }
  const cfg = parseImageConfig(config, `${what} config`);
  checkLayerCount(entry.Layers.length, cfg.rootfs.diff_ids.length, what);

  const layers: LayerSource[] = [];
  for (const [j, layerPath] of entry.Layers.entries()) {
    const member = index.find(layerPath);
    if (member === undefined) throw new InvalidInputError(`${what}: layer ${j + 1} (${layerPath}) is missing from the archive`);
    layers.push(await dockerLayer(index, member, layerPath));
  }

  const names = new Set<string>();
  for (const tag of entry.RepoTags ?? []) {
    const n = labelName(tag);
    if (n === undefined) throw new InvalidInputError(`${what}: invalid RepoTag ${JSON.stringify(tag)}`);
    names.add(n);
  }
  if (names.size === 0 && repositories !== undefined) {
    // Untagged in manifest.json: the legacy file maps repo:tag to the top layer's v1 id.
    const top = entry.Layers.at(-1)?.split('/')[0];
    for (const [repo, tags] of Object.entries(repositories)) {
      for (const [tag, id] of Object.entries(tags)) {
        if (id === top) {
          const n = labelName(`${repo}:${tag}`);
          if (n !== undefined) names.add(n);
        }
      }
    }
  }
  return { config, layers, names: [...names] };
}

async function dockerLayer(index: ArchiveIndex, member: ArchiveMember, layerPath: string): Promise<LayerSource> {
  // docker save writes uncompressed layer.tar, but `docker load` accepts compressed ones too.
  const compression = sniffCompression(await index.readHead(member, 4));
  const mediaType = { none: DOCKER_LAYER, gzip: DOCKER_LAYER_GZIP, zstd: DOCKER_LAYER_ZSTD }[compression];
  const layer: LayerSource = { mediaType, size: member.size, open: async () => index.openStream(member) };
  const hex = /^blobs\/sha256\/([0-9a-f]{64})$/.exec(layerPath)?.[1];
  if (hex !== undefined) layer.digest = `sha256:${hex}`;
  return layer;
}

function blobPath(digest: string, what: string): string {
  validateDigest(digest, what);
  return `blobs/sha256/${digest.slice('sha256:'.length)}`;
}

async function readBlob(index: ArchiveIndex, desc: Descriptor, what: string): Promise<Buffer> {
  const p = blobPath(desc.digest, `${what} digest`);
  if (!index.has(p)) throw new InvalidInputError(`${index.path}: missing blob ${desc.digest} (${what})`);
  const bytes = await index.readFile(p);
  const actual = sha256Digest(bytes);
  if (actual !== desc.digest) {
    throw new MismatchError(`${index.path}: ${what} digest mismatch: expected ${desc.digest}, got ${actual}`);
  }
  if (bytes.length !== desc.size) {
    throw new MismatchError(`${index.path}: ${what} size mismatch: descriptor says ${desc.size} bytes, blob has ${bytes.length}`);
  }
  return bytes;
}

/** Names an OCI index entry gives its image: a bare tag ("latest") names nothing. */
function ociNames(desc: Descriptor): string[] {
  const names = new Set<string>();
  const containerd = desc.annotations?.[CONTAINERD_NAME_ANNOTATION];
  if (containerd !== undefined) {
    const n = labelName(containerd);
    if (n !== undefined) names.add(n);
  }
  const ref = desc.annotations?.[REF_NAME_ANNOTATION];
  if (ref !== undefined && /[/:@]/.test(ref)) {
    const n = labelName(ref);
    if (n !== undefined) names.add(n);
  }
  return [...names];
}

async function readOciArchive(index: ArchiveIndex, platform: PlatformSpec): Promise<ImageSource[]> {
  if (index.has('oci-layout')) {
    let version: unknown;
    try {
      version = (JSON.parse((await index.readFile('oci-layout')).toString()) as { imageLayoutVersion?: unknown })
        .imageLayoutVersion;
    } catch {
      throw new InvalidInputError(`${index.path}: oci-layout is not valid JSON`);
    }
    if (typeof version !== 'string' || !version.startsWith('1.')) {
      throw new InvalidInputError(`${index.path}: unsupported OCI imageLayoutVersion ${JSON.stringify(version)}`);
    }
  }
  const top = parseIndex(await index.readFile('index.json'), `${index.path}: index.json`);
  if (top.manifests.length === 0) throw new InvalidInputError(`${index.path}: index.json lists no images`);

  // Some writers list one manifest per platform directly in index.json under one name: treat
  // each such group like a nested index and pick one platform from it.
  const groups = new Map<string, Descriptor[]>();
  top.manifests.forEach((d, i) => {
    const key = d.platform !== undefined && isManifestMediaType(d.mediaType)
      ? `name:${d.annotations?.[REF_NAME_ANNOTATION] ?? ''}`
      : `entry:${i}`;
    const g = groups.get(key);
    if (g) g.push(d);
    else groups.set(key, [d]);
  });

  const out: ImageSource[] = [];
  for (const group of groups.values()) {
    const desc = group.length > 1 ? selectManifest(group, platform, `${index.path}: index.json`) : group[0];
    const manifestDesc = await resolveManifest(index, desc, platform, 0);
    out.push(await readOciImage(index, manifestDesc, ociNames(desc)));
  }
  return out;
}

async function resolveManifest(
  index: ArchiveIndex,
  desc: Descriptor,
  platform: PlatformSpec,
  depth: number,
): Promise<Descriptor> {
  if (isManifestMediaType(desc.mediaType)) return desc;
  if (!isIndexMediaType(desc.mediaType)) {
    throw new InvalidInputError(`${index.path}: unsupported media type ${JSON.stringify(desc.mediaType)} for ${desc.digest}`);
  }
  if (depth >= 8) throw new InvalidInputError(`${index.path}: image indexes nested too deeply at ${desc.digest}`);
  const nested = parseIndex(await readBlob(index, desc, `index ${desc.digest}`), `${index.path}: index ${desc.digest}`);
  const chosen = selectManifest(nested.manifests, platform, `index ${desc.digest}`);
  return resolveManifest(index, chosen, platform, depth + 1);
}

async function readOciImage(index: ArchiveIndex, desc: Descriptor, names: string[]): Promise<ImageSource> {
  const manifestBytes = await readBlob(index, desc, `manifest ${desc.digest}`);
  const what = `${index.path}: manifest ${desc.digest}`;
  const manifest = parseManifest(manifestBytes, what);
  if (manifest.mediaType !== undefined && manifest.mediaType !== desc.mediaType) {
    throw new InvalidInputError(`${what}: media type ${manifest.mediaType} differs from its descriptor's ${desc.mediaType}`);
  }
  if (!isConfigMediaType(manifest.config.mediaType)) {
    throw new InvalidInputError(`${what}: unsupported config media type ${JSON.stringify(manifest.config.mediaType)}`);
  }
  const config = await readBlob(index, manifest.config, 'config');
  const cfg = parseImageConfig(config, `${what} config`);
  checkLayerCount(manifest.layers.length, cfg.rootfs.diff_ids.length, what);

  const layers: LayerSource[] = manifest.layers.map((l, j) => {
    if (!isLayerMediaType(l.mediaType)) {
      throw new InvalidInputError(`${what}: unsupported layer media type ${JSON.stringify(l.mediaType)} (layer ${j + 1})`);
    }
    const p = blobPath(l.digest, `layer ${j + 1} digest`);
    const member = index.find(p);
    if (member === undefined) throw new InvalidInputError(`${index.path}: missing blob ${l.digest} (layer ${j + 1})`);
    if (member.size !== l.size) {
      throw new MismatchError(`${index.path}: layer ${j + 1} size mismatch: manifest says ${l.size} bytes, blob has ${member.size}`);
    }
    return { mediaType: l.mediaType, digest: l.digest, size: l.size, open: async () => index.openStream(member) };
  });
  return { config, layers, names, manifest: { mediaType: desc.mediaType, bytes: manifestBytes, digest: desc.digest } };
}
