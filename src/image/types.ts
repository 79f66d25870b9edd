// JSON shapes of OCI manifests, indexes, image configs and Docker's docker-save files, with
// parsers that check the fields we rely on and say clearly which one is wrong.
import { InvalidInputError } from '../errors.js';
import { validateDigest } from '../reference/digest.js';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: Platform;
  artifactType?: string;
}

export interface Platform {
  architecture: string;
  os: string;
  'os.version'?: string;
  'os.features'?: string[];
  variant?: string;
}

export interface Manifest {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export interface Index {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  manifests: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

/** The runtime part of an image config (Docker capitalises these fields; OCI kept the names). */
export interface ContainerConfig {
  User?: string;
  ExposedPorts?: Record<string, object>;
  Env?: string[] | null;
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Volumes?: Record<string, object> | null;
  WorkingDir?: string;
  Labels?: Record<string, string> | null;
  StopSignal?: string;
  ArgsEscaped?: boolean;
  [key: string]: unknown;
}

export interface HistoryEntry {
  created?: string;
  created_by?: string;
  author?: string;
  comment?: string;
  empty_layer?: boolean;
}

export interface ImageConfig {
  created?: string;
  author?: string;
  architecture: string;
  os: string;
  'os.version'?: string;
  'os.features'?: string[];
  variant?: string;
  config?: ContainerConfig;
  rootfs: { type: 'layers'; diff_ids: string[] };
  history?: HistoryEntry[];
  [key: string]: unknown;
}

/** One element of a docker-save `manifest.json`. */
export interface DockerManifestEntry {
  Config: string;
  RepoTags: string[] | null;
  Layers: string[];
  Parent?: string;
  LayerSources?: Record<string, Descriptor>;
}

/** docker-save `repositories`: repository → tag → top layer id (legacy v1 id). */
export type DockerRepositories = Record<string, Record<string, string>>;

function parseJSON(bytes: Buffer | string, what: string): unknown {
  try {
    return JSON.parse(bytes.toString());
  } catch (e) {
    throw new InvalidInputError(`${what} is not valid JSON: ${(e as Error).message}`);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function parseDescriptor(v: unknown, what: string): Descriptor {
  if (!isObject(v)) throw new InvalidInputError(`${what}: descriptor is not an object`);
  if (typeof v.mediaType !== 'string') throw new InvalidInputError(`${what}: descriptor has no mediaType`);
  validateDigest(v.digest, `${what} digest`);
  if (typeof v.size !== 'number' || !Number.isSafeInteger(v.size) || v.size < 0) {
    throw new InvalidInputError(`${what}: descriptor has an invalid size ${JSON.stringify(v.size)}`);
  }
  // Platform matching lower-cases these fields: a platform of another shape must stop here.
  const p = v.platform;
  if (p !== undefined && (!isObject(p) || typeof p.os !== 'string' || typeof p.architecture !== 'string' || (p.variant !== undefined && typeof p.variant !== 'string'))) {
    throw new Error(`${what}: descriptor has an invalid platform ${JSON.stringify(p)}`);
  }
  return v as unknown as Descriptor;
}

export function parseManifest(bytes: Buffer | string, what = 'manifest'): Manifest {
  const v = parseJSON(bytes, what);
  if (!isObject(v)) throw new InvalidInputError(`${what} is not a JSON object`);
  if (v.schemaVersion !== 2) throw new InvalidInputError(`${what}: unsupported schemaVersion ${JSON.stringify(v.schemaVersion)}`);
  if (!Array.isArray(v.layers)) throw new InvalidInputError(`${what}: no layers array`);
  parseDescriptor(v.config, `${what} config`);
  v.layers.forEach((l, i) => parseDescriptor(l, `${what} layer ${i + 1}`));
  return v as unknown as Manifest;
}

export function parseIndex(bytes: Buffer | string, what = 'index'): Index {
  const v = parseJSON(bytes, what);
  if (!isObject(v)) throw new InvalidInputError(`${what} is not a JSON object`);
  if (v.schemaVersion !== 2) throw new InvalidInputError(`${what}: unsupported schemaVersion ${JSON.stringify(v.schemaVersion)}`);
  if (!Array.isArray(v.manifests)) throw new InvalidInputError(`${what}: no manifests array`);
  v.manifests.forEach((m, i) => parseDescriptor(m, `${what} entry ${i + 1}`));
  return v as unknown as Index;
}

export function parseImageConfig(bytes: Buffer | string, what = 'image config'): ImageConfig {
  const v = parseJSON(bytes, what);
  if (!isObject(v)) throw new InvalidInputError(`${what} is not a JSON object`);
  const rootfs = v.rootfs;
  if (!isObject(rootfs) || !Array.isArray(rootfs.diff_ids)) throw new InvalidInputError(`${what}: no rootfs.diff_ids`);
  if (rootfs.type !== 'layers') throw new InvalidInputError(`${what}: unsupported rootfs.type ${JSON.stringify(rootfs.type)}`);
  rootfs.diff_ids.forEach((d, i) => validateDigest(d, `${what} diff_id ${i + 1}`));
  if (typeof v.os !== 'string' || typeof v.architecture !== 'string') {
    throw new InvalidInputError(`${what}: missing os or architecture`);
  }
  return v as unknown as ImageConfig;
}

export function parseDockerManifest(bytes: Buffer | string, what = 'manifest.json'): DockerManifestEntry[] {
  const v = parseJSON(bytes, what);
  if (!Array.isArray(v)) throw new InvalidInputError(`${what} is not a JSON array`);
  v.forEach((e, i) => {
    if (!isObject(e)) throw new InvalidInputError(`${what}: entry ${i + 1} is not an object`);
    if (typeof e.Config !== 'string') throw new InvalidInputError(`${what}: entry ${i + 1} has no Config`);
    if (!Array.isArray(e.Layers) || e.Layers.some((l) => typeof l !== 'string')) {
      throw new InvalidInputError(`${what}: entry ${i + 1} has no Layers list`);
    }
    if (e.RepoTags != null && (!Array.isArray(e.RepoTags) || e.RepoTags.some((t) => typeof t !== 'string'))) {
      throw new InvalidInputError(`${what}: entry ${i + 1} has an invalid RepoTags`);
    }
  });
  return v as DockerManifestEntry[];
}

export function parseDockerRepositories(bytes: Buffer | string, what = 'repositories'): DockerRepositories {
  const v = parseJSON(bytes, what);
  if (!isObject(v)) throw new InvalidInputError(`${what} is not a JSON object`);
  for (const [repo, tags] of Object.entries(v)) {
    if (!isObject(tags) || Object.values(tags).some((id) => typeof id !== 'string')) {
      throw new InvalidInputError(`${what}: repository ${JSON.stringify(repo)} does not map tags to layer ids`);
    }
  }
  return v as DockerRepositories;
}
