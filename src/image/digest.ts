// Content digests ("sha256:<64 hex>"): computing them, and checking them on the fly (what a
// valid digest is, is ../reference/digest.ts).
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { validateDigest } from '../reference/digest.js';
import { MismatchError } from '../errors.js';

export function sha256Digest(data: Buffer | string): string {
  return 'sha256:' + createHash('sha256').update(data).digest('hex');
}

export class DigestMismatchError extends MismatchError {
  constructor(readonly what: string, readonly expected: string, readonly actual: string) {
    super(`digest mismatch for ${what}: expected ${expected}, got ${actual}`);
    this.name = 'DigestMismatchError';
  }
}

export class SizeMismatchError extends MismatchError {
  constructor(readonly what: string, readonly expected: number, readonly actual: number) {
    super(`size mismatch for ${what}: expected ${expected} bytes, got ${actual}`);
    this.name = 'SizeMismatchError';
  }
}

export interface DigestOptions {
  /** Fail at the end of the stream unless the bytes hash to this. */
  expected?: string;
  /** Fail (as soon as it is known) unless exactly this many bytes pass. */
  expectedSize?: number;
  /** Names the stream in errors ("layer 3 of nginx", a blob path …). */
  what?: string;
  /** Called with the running byte count as chunks pass (download progress). */
  onBytes?: (bytes: number) => void;
}

/**
 * Passes bytes through unchanged while hashing and counting them. With `expected`, the stream
 * errors at its end on a mismatch, so a consumer never sees a clean end for bad bytes.
 */
export class DigestStream extends Transform {
  private readonly hash: Hash = createHash('sha256');
  private bytes = 0;
  private result: string | undefined;
  private readonly expected: string | undefined;
  private readonly expectedSize: number | undefined;
  private readonly what: string;
  private readonly onBytes: ((bytes: number) => void) | undefined;

  constructor(opts: DigestOptions = {}) {
    super({ highWaterMark: 1 << 20 });
    if (opts.expected !== undefined) validateDigest(opts.expected, 'expected digest');
    this.expected = opts.expected;
    this.expectedSize = opts.expectedSize;
    this.what = opts.what ?? 'stream';
    this.onBytes = opts.onBytes;
  }

  /** Bytes seen so far. */
  get size(): number {
    return this.bytes;
  }

  /** The digest of everything that passed; only after the stream has ended. */
  get digest(): string {
    if (this.result === undefined) throw new Error(`digest of ${this.what} read before the stream ended`);
    return this.result;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.expectedSize !== undefined && this.bytes > this.expectedSize) {
      cb(new SizeMismatchError(this.what, this.expectedSize, this.bytes));
      return;
    }
    this.hash.update(chunk);
    this.onBytes?.(this.bytes);
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    this.result = 'sha256:' + this.hash.digest('hex');
    if (this.expectedSize !== undefined && this.bytes !== this.expectedSize) {
      cb(new SizeMismatchError(this.what, this.expectedSize, this.bytes));
      return;
    }
    if (this.expected !== undefined && this.result !== this.expected) {
      cb(new DigestMismatchError(this.what, this.expected, this.result));
      return;
    }
    cb();
  }
}
