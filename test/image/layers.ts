// Test helpers: decompress a layer blob by its media type, and hash streams, with node's own
// zlib / zstd-napi and crypto as the oracles (not the code under test).
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { DecompressStream } from 'zstd-napi';
import type { ExportImage, ExportLayer, ImageSource, LayerSource } from '../../src/image/source.js';

export async function hashStream(s: Readable): Promise<{ digest: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const chunk of s as AsyncIterable<Buffer>) {
    h.update(chunk);
    size += chunk.length;
  }
  return { digest: 'sha256:' + h.digest('hex'), size };
}

export function sha256(b: Buffer | string): string {
  return 'sha256:' + createHash('sha256').update(b).digest('hex');
}

export async function uncompressed(layer: LayerSource): Promise<Readable> {
  const raw = await layer.open();
  if (layer.mediaType.endsWith('+gzip') || layer.mediaType.endsWith('.gzip')) {
    return raw.pipe(createGunzip({ chunkSize: 1 << 20 }));
  }
  if (layer.mediaType.endsWith('+zstd') || layer.mediaType.endsWith('.zstd')) return raw.pipe(new DecompressStream());
  return raw;
}

export function diffIDs(config: Buffer): string[] {
  return (JSON.parse(config.toString()) as { rootfs: { diff_ids: string[] } }).rootfs.diff_ids;
}

/** An ExportImage made from a loaded archive: layers decompressed on the fly, sizes measured first. */
export async function exportFrom(src: ImageSource, names: string[]): Promise<ExportImage> {
  const ids = diffIDs(src.config);
  const layers: ExportLayer[] = [];
  for (const [i, l] of src.layers.entries()) {
    const { size, digest } = await hashStream(await uncompressed(l));
    if (digest !== ids[i]) throw new Error(`corpus layer ${i + 1} does not match its diff_id`);
    layers.push({ diffID: ids[i], size, open: () => uncompressed(l) });
  }
  return { id: sha256(src.config), config: src.config, layers, names };
}

export function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
}
