// Pull-style access to a byte stream: exact reads for headers, pieces for bodies, and a running
// offset. Chunks are kept as they arrive (no copying except when a read spans chunks).
import type { Readable } from 'node:stream';

export class ByteSource {
  private readonly it: AsyncIterator<Buffer | string>;
  private chunks: Buffer[] = [];
  private buffered = 0;
  private done = false;
  /** Bytes handed out so far. */
  offset = 0;

  constructor(input: Readable) {
    this.it = input[Symbol.asyncIterator]() as AsyncIterator<Buffer | string>;
  }

  private async pull(): Promise<boolean> {
    if (this.done) return false;
    const r = await this.it.next();
    if (r.done) {
      this.done = true;
      return false;
    }
    const b = typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
    if (b.length > 0) {
      this.chunks.push(b);
      this.buffered += b.length;
    }
    return true;
  }

  /** Exactly n bytes, or null when the stream ends first (whatever was there is consumed). */
  async read(n: number): Promise<Buffer | null> {
    // Nothing to take (an empty GNU long name or pax body): nothing buffered is needed either.
    if (n === 0) return Buffer.alloc(0);
    while (this.buffered < n) {
      if (!(await this.pull())) {
        this.offset += this.buffered;
        this.chunks = [];
        this.buffered = 0;
        return null;
      }
    }
    const head = this.chunks[0]!;
    let out: Buffer;
    if (head.length >= n) {
      out = head.subarray(0, n);
      if (head.length === n) this.chunks.shift();
      else this.chunks[0] = head.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let got = 0;
      while (got < n) {
        const c = this.chunks[0]!;
        const take = Math.min(c.length, n - got);
        c.copy(out, got, 0, take);
        got += take;
        if (take === c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(take);
      }
    }
    this.buffered -= n;
    this.offset += n;
    return out;
  }

  /** Up to max bytes (at least 1), or null at the end of the stream. */
  async piece(max: number): Promise<Buffer | null> {
    if (this.buffered === 0 && !(await this.pullNonEmpty())) return null;
    const head = this.chunks[0]!;
    const take = Math.min(head.length, max);
    const out = head.subarray(0, take);
    if (take === head.length) this.chunks.shift();
    else this.chunks[0] = head.subarray(take);
    this.buffered -= take;
    this.offset += take;
    return out;
  }

  private async pullNonEmpty(): Promise<boolean> {
    while (this.buffered === 0) if (!(await this.pull())) return false;
    return true;
  }

  /** Skip n bytes; returns how many could be skipped. */
  async skip(n: number): Promise<number> {
    let left = n;
    while (left > 0) {
      const p = await this.piece(left);
      if (p === null) break;
      left -= p.length;
    }
    return n - left;
  }

  /** Read everything up to the end of the stream, discarding it. */
  async drain(): Promise<void> {
    this.offset += this.buffered;
    this.chunks = [];
    this.buffered = 0;
    while (await this.pull()) {
      this.offset += this.buffered;
      this.chunks = [];
      this.buffered = 0;
    }
  }

  /** Stop reading: tell the underlying iterator we are done (destroys the input). */
  async close(): Promise<void> {
    if (!this.done && this.it.return) {
      this.done = true;
      await this.it.return();
    }
  }
}
