// The one shape every image producer hands to the store (archives, registries, commit),
// and the one shape the store hands to every exporter (save, push).
import type { Readable } from 'node:stream';

export interface LayerSource {
  /** Media type of the blob as stored (tar, tar+gzip, tar+zstd, Docker's rootfs.diff.tar.gzip …). */
  mediaType: string;
  /** Digest of the blob bytes as stored ("sha256:…"); verified while reading when given. */
  digest?: string;
  /** Size of the blob bytes as stored, when known. */
  size?: number;
  /** Opens the blob bytes as stored (compressed or not); the store detects the compression. */
  open(): Promise<Readable>;
  /**
   * True when the stream `open()` returns already fails unless its bytes match `digest` (a
   * registry download does): the store then does not hash the blob a second time.
   */
  verified?: boolean;
}

export interface ImageSource {
  /** Raw config JSON bytes: the image ID is sha256 of exactly these bytes. */
  config: Buffer;
  /** Layers, base first; their count equals config.rootfs.diff_ids. */
  layers: LayerSource[];
  /** Names to give the image ("docker.io/library/nginx:latest"); may be empty. */
  names: string[];
  /** The manifest it came with, when it came from a registry or an OCI layout. */
  manifest?: { mediaType: string; bytes: Buffer; digest: string };
}

export interface ExportLayer {
  /** sha256 of the uncompressed tar. */
  diffID: string;
  /** Bytes of the uncompressed tar. */
  size: number;
  /** The uncompressed layer tar. */
  open(): Promise<Readable>;
}

export interface ExportImage {
  id: string;
  config: Buffer;
  layers: ExportLayer[];
  names: string[];
}
