// Random access into an image archive on disk: one pass over the outer tar records where each
// member's bytes start, after which any member can be read or streamed without extracting.
import { InvalidInputError, NotFoundError } from '../errors.js';
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import { readTar } from '../archive/tar/reader.js';

const CHUNK = 1 << 20;

export interface ArchiveMember {
  name: string;
  type: string;
  /** Byte offset of the member's data in the archive file. */
  offset: number;
  size: number;
  /** Link target (archive path) of a symlink or hard link. */
  linkname?: string;
}

/** Archive paths are compared in one spelling: no "./" or "/" prefix, no trailing slash. */
export function cleanMemberName(name: string): string {
  const n = posix.normalize('/' + name).slice(1);
  return n.endsWith('/') ? n.slice(0, -1) : n;
}

export class ArchiveIndex {
  private constructor(
    readonly path: string,
    private readonly members: Map<string, ArchiveMember>,
  ) {}

  /** Reads the tar headers of `path` once. Errors name the file and say it is not a tar. */
  static async build(path: string): Promise<ArchiveIndex> {
    const st = await stat(path).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') throw new NotFoundError(`cannot open image archive ${path}: no such file`);
      throw new Error(`cannot open image archive ${path}: ${e.message}`);
    });
    if (!st.isFile()) throw new InvalidInputError(`image archive ${path} is not a regular file`);
    const members = new Map<string, ArchiveMember>();
    const input = createReadStream(path, { highWaterMark: CHUNK });
    try {
      for await (const { header, body, offset } of readTar(input)) {
        const name = cleanMemberName(header.name);
        const m: ArchiveMember = { name, type: header.type, offset, size: header.type === 'file' ? header.size : 0 };
        if (header.linkname !== undefined && (header.type === 'symlink' || header.type === 'hardlink')) {
          m.linkname = header.linkname;
        }
        if (m.offset + m.size > st.size) {
          throw new InvalidInputError(`truncated: member ${header.name} ends past the end of the file`);
        }
        members.set(name, m);
        // The body is left unread: the reader skips it without copying when we move on.
        void body;
      }
    } catch (e) {
      throw new InvalidInputError(`${path} is not a valid tar archive: ${(e as Error).message}`);
    } finally {
      input.destroy();
    }
    if (members.size === 0 && st.size > 0) throw new InvalidInputError(`${path} is not a valid tar archive: no entries`);
    return new ArchiveIndex(path, members);
  }

  /** The regular file at `name`, following symlinks and hard links inside the archive. */
  find(name: string): ArchiveMember | undefined {
    let cur = cleanMemberName(name);
    for (let hops = 0; hops < 16; hops++) {
      const m = this.members.get(cur);
      if (m === undefined) return undefined;
      if (m.type === 'file') return m;
      if (m.type === 'hardlink' && m.linkname !== undefined) cur = cleanMemberName(m.linkname);
      else if (m.type === 'symlink' && m.linkname !== undefined) {
        cur = cleanMemberName(posix.join(posix.dirname(m.name), m.linkname));
      } else return undefined;
    }
    return undefined;
  }

  has(name: string): boolean {
    return this.find(name) !== undefined;
  }

  names(): string[] {
    return [...this.members.keys()];
  }

  /** The whole member in memory, for small JSON files; refuses members above `max` bytes. */
  async readFile(name: string, max = 32 << 20): Promise<Buffer> {
    const m = this.find(name);
    if (m === undefined) throw new InvalidInputError(`${name} not found in ${this.path}`);
    if (m.size > max) throw new InvalidInputError(`${name} in ${this.path} is too large (${m.size} bytes, limit ${max})`);
    const buf = Buffer.alloc(m.size);
    const fh = await open(this.path, 'r');
    try {
      let done = 0;
      while (done < m.size) {
        const { bytesRead } = await fh.read(buf, done, m.size - done, m.offset + done);
        if (bytesRead === 0) throw new InvalidInputError(`${this.path} is truncated inside ${name}`);
        done += bytesRead;
      }
    } finally {
      await fh.close();
    }
    return buf;
  }

  /** The first bytes of a member (for compression sniffing). */
  async readHead(m: ArchiveMember, n: number): Promise<Buffer> {
    const len = Math.min(n, m.size);
    const buf = Buffer.alloc(len);
    const fh = await open(this.path, 'r');
    try {
      const { bytesRead } = await fh.read(buf, 0, len, m.offset);
      return buf.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  }

  /** Streams a member straight from the archive file. */
  openStream(m: ArchiveMember): Readable {
    if (m.size === 0) return Readable.from([]);
    return createReadStream(this.path, { start: m.offset, end: m.offset + m.size - 1, highWaterMark: CHUNK });
  }
}
