// Media types of the OCI image spec and of Docker's schema2, and what each says about a layer blob.
import { InvalidInputError } from '../errors.js';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar';
export const OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
export const OCI_LAYER_ZSTD = 'application/vnd.oci.image.layer.v1.tar+zstd';
export const OCI_LAYER_NONDIST = 'application/vnd.oci.image.layer.nondistributable.v1.tar';
export const OCI_LAYER_NONDIST_GZIP = 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip';
export const OCI_LAYER_NONDIST_ZSTD = 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd';
export const OCI_EMPTY = 'application/vnd.oci.empty.v1+json';

export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';
export const DOCKER_LAYER = 'application/vnd.docker.image.rootfs.diff.tar';
export const DOCKER_LAYER_GZIP = 'application/vnd.docker.image.rootfs.diff.tar.gzip';
export const DOCKER_LAYER_ZSTD = 'application/vnd.docker.image.rootfs.diff.tar.zstd';
export const DOCKER_FOREIGN_LAYER = 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip';

export type Compression = 'none' | 'gzip' | 'zstd';

const layerCompression: ReadonlyMap<string, Compression> = new Map<string, Compression>([
  [OCI_LAYER, 'none'],
  [OCI_LAYER_GZIP, 'gzip'],
  [OCI_LAYER_ZSTD, 'zstd'],
  [OCI_LAYER_NONDIST, 'none'],
  [OCI_LAYER_NONDIST_GZIP, 'gzip'],
  [OCI_LAYER_NONDIST_ZSTD, 'zstd'],
  [DOCKER_LAYER, 'none'],
  [DOCKER_LAYER_GZIP, 'gzip'],
  [DOCKER_LAYER_ZSTD, 'zstd'],
  [DOCKER_FOREIGN_LAYER, 'gzip'],
]);

export function isLayerMediaType(mediaType: string): boolean {
  return layerCompression.has(mediaType);
}

/** The compression a layer media type declares; throws on a media type that is not a layer. */
export function layerCompressionOf(mediaType: string): Compression {
  const c = layerCompression.get(mediaType);
  if (c === undefined) throw new InvalidInputError(`unsupported layer media type: ${JSON.stringify(mediaType)}`);
  return c;
}

export function isManifestMediaType(mediaType: string): boolean {
  return mediaType === OCI_MANIFEST || mediaType === DOCKER_MANIFEST;
}

export function isIndexMediaType(mediaType: string): boolean {
  return mediaType === OCI_INDEX || mediaType === DOCKER_MANIFEST_LIST;
}

export function isConfigMediaType(mediaType: string): boolean {
  return mediaType === OCI_CONFIG || mediaType === DOCKER_CONFIG;
}

/** The compression of a blob told by its first bytes, for blobs whose media type does not say. */
export function sniffCompression(head: Buffer): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  return 'none';
}

/** Index annotation naming an image: a tag ("latest") or, from some writers, a full reference. */
export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';
/** Index annotation containerd and Docker ≥ 25 write with the full image name. */
export const CONTAINERD_NAME_ANNOTATION = 'io.containerd.image.name';
