// Images: config bytes (the image ID is their digest), the top layer, and names.
import type { ImageConfig } from '../image/types.js';
import { parseNormalizedNamed, withDefaultTag, referenceString, familiarString, InvalidReferenceError } from '../reference/reference.js';
import { type DB, now, writeTx } from './db.js';
import { InvalidInputError, NotFoundError, StrataError } from './errors.js';

export interface ImageRecord {
  id: string;
  config: Buffer;
  topLayer: string | null;
  created: string;
  manifest: { mediaType: string; bytes: Buffer; digest: string } | null;
}

interface ImageRow {
  id: string;
  config: Buffer;
  top_layer: string | null;
  created: string;
  manifest: Buffer | null;
  manifest_media_type: string | null;
  manifest_digest: string | null;
}

function fromRow(r: ImageRow): ImageRecord {
  return {
    id: r.id,
    config: r.config,
    topLayer: r.top_layer,
    created: r.created,
    manifest: r.manifest ? { mediaType: r.manifest_media_type!, bytes: r.manifest, digest: r.manifest_digest! } : null,
  };
}

export function parseConfig(img: ImageRecord): ImageConfig {
  return JSON.parse(img.config.toString('utf8')) as ImageConfig;
}

/** The name an image is stored under ("nginx" -> "docker.io/library/nginx:latest"); never a digest reference. */
export function storedName(name: string): string {
  try {
    const ref = parseNormalizedNamed(name);
    if (ref.digest !== undefined) throw new InvalidInputError(`refusing to use a digest reference as a name: ${name}`);
    return referenceString(withDefaultTag(ref));
  } catch (err) {
    if (err instanceof InvalidReferenceError) throw new InvalidInputError(`${err.message}: ${name}`);
    throw err;
  }
}

/**
 * Docker's daemon's "No such image" for a lookup (history, tag, filters): the reference as it
 * looked it up, tag included ("nope:latest"); the CLI's own checks (rmi, inspect) say it as typed.
 */
export function noSuchImage(ref: string): NotFoundError {
  let name = ref;
  try {
    name = familiar(storedName(ref));
  } catch {
    name = ref;
  }
  return new NotFoundError(`No such image: ${name}`);
}

/** "docker.io/library/nginx:latest" -> "nginx:latest", as docker prints it. */
export function familiar(name: string): string {
  return familiarString(parseNormalizedNamed(name));
}

export class ImageStore {
  constructor(private readonly db: DB) {}

  get(id: string): ImageRecord | undefined {
    const r = this.db.prepare('SELECT * FROM images WHERE id = ?').get(id) as ImageRow | undefined;
    return r && fromRow(r);
  }

  /** Whether the image is stored (no config read, no transaction: one index probe). */
  has(id: string): boolean {
    return this.db.prepare('SELECT 1 FROM images WHERE id = ?').get(id) !== undefined;
  }

  list(): ImageRecord[] {
    return (this.db.prepare('SELECT * FROM images ORDER BY created DESC').all() as ImageRow[]).map(fromRow);
  }

  count(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM images').get() as { n: number }).n;
  }

  names(id: string): string[] {
    return (this.db.prepare('SELECT name FROM names WHERE image_id = ? ORDER BY name').all(id) as { name: string }[]).map((r) => r.name);
  }

  /** Every image's names, and every image's repo digests, by image ID (sorted as names() and repoDigests()): two queries for a whole listing. */
  allNames(): { names: Map<string, string[]>; repoDigests: Map<string, string[]> } {
    const group = (rows: { image_id: string; v: string }[]) => {
      const out = new Map<string, string[]>();
      for (const r of rows) {
        const list = out.get(r.image_id);
        if (list) list.push(r.v);
        else out.set(r.image_id, [r.v]);
      }
      return out;
    };
    return {
      names: group(this.db.prepare('SELECT image_id, name AS v FROM names ORDER BY name').all() as { image_id: string; v: string }[]),
      repoDigests: group(this.db.prepare('SELECT image_id, ref AS v FROM repo_digests ORDER BY ref').all() as { image_id: string; v: string }[]),
    };
  }

  repoDigests(id: string): string[] {
    return (this.db.prepare('SELECT ref FROM repo_digests WHERE image_id = ? ORDER BY ref').all(id) as { ref: string }[]).map((r) => r.ref);
  }

  /**
   * Find an image by name, full ID ("sha256:…" or 64 hex) or unique ID prefix, as docker does.
   */
  resolve(ref: string): ImageRecord {
    // One read snapshot: an `rmi` in another process cannot delete the image between lookups.
    return this.db.transaction(() => this.resolveIn(ref))();
  }

  /** resolve, failing in the daemon's words (noSuchImage). */
  lookup(ref: string): ImageRecord {
    try {
      return this.resolve(ref);
    } catch (err) {
      if (err instanceof NotFoundError) throw noSuchImage(ref);
      throw err;
    }
  }

  private resolveIn(ref: string): ImageRecord {
    const hex = ref.startsWith('sha256:') ? ref.slice(7) : ref;
    if (/^[a-f0-9]{64}$/.test(hex)) {
      const img = this.get(`sha256:${hex}`);
      if (img) return img;
    }
    let name: string | null = null;
    try {
      name = storedName(ref);
    } catch {
      name = null;
    }
    if (name) {
      const row = this.db.prepare('SELECT image_id FROM names WHERE name = ?').get(name) as { image_id: string } | undefined;
      if (row) return this.get(row.image_id)!;
    }
    if (/^[a-f0-9]{1,64}$/.test(hex)) {
      // GLOB on a hex prefix (no wildcard inside) is a range scan of the primary key.
      const rows = this.db.prepare(`SELECT id FROM images WHERE id GLOB ? LIMIT 2`).all(`sha256:${hex}*`) as { id: string }[];
      if (rows.length === 1) return this.get(rows[0].id)!;
      if (rows.length > 1) throw new StrataError(`image ID prefix ${ref} is ambiguous`);
    }
    throw new NotFoundError(`No such image: ${ref}`);
  }

  /** Store an image (idempotent) and give it names, moving each name from any other image. */
  add(img: Omit<ImageRecord, 'created'>, names: string[], repoDigests: string[] = []): { untagged: string[] } {
    return writeTx(this.db, () => {
      const existing = this.get(img.id);
      if (!existing) {
        this.db
          .prepare('INSERT INTO images (id, config, top_layer, created, manifest, manifest_media_type, manifest_digest) VALUES (?, ?, ?, ?, ?, ?, ?)')
          .run(img.id, img.config, img.topLayer, now(), img.manifest?.bytes ?? null, img.manifest?.mediaType ?? null, img.manifest?.digest ?? null);
      } else if (!existing.manifest && img.manifest) {
        this.db
          .prepare('UPDATE images SET manifest = ?, manifest_media_type = ?, manifest_digest = ? WHERE id = ?')
          .run(img.manifest.bytes, img.manifest.mediaType, img.manifest.digest, img.id);
      }
      for (const d of repoDigests) this.db.prepare('INSERT OR IGNORE INTO repo_digests (image_id, ref) VALUES (?, ?)').run(img.id, d);
      const untagged: string[] = [];
      for (const n of names) untagged.push(...this.setNameTx(n, img.id));
      return { untagged };
    });
  }

  /** Point name at image id; returns the ids of images that lost the name. */
  setName(name: string, id: string): string[] {
    return writeTx(this.db, () => this.setNameTx(name, id));
  }

  private setNameTx(name: string, id: string): string[] {
    const prev = this.db.prepare('SELECT image_id FROM names WHERE name = ?').get(name) as { image_id: string } | undefined;
    if (prev?.image_id === id) return [];
    this.db.prepare('INSERT OR REPLACE INTO names (name, image_id, created) VALUES (?, ?, ?)').run(name, id, now());
    return prev ? [prev.image_id] : [];
  }

  removeName(name: string): boolean {
    return writeTx(this.db, () => this.db.prepare('DELETE FROM names WHERE name = ?').run(name).changes > 0);
  }

  /** The image this one was made from (commit), docker's Parent; null when none is recorded. */
  parent(id: string): string | null {
    return (this.db.prepare('SELECT parent FROM image_parents WHERE image_id = ?').get(id) as { parent: string } | undefined)?.parent ?? null;
  }

  setParent(id: string, parent: string): void {
    writeTx(this.db, () => this.db.prepare('INSERT OR REPLACE INTO image_parents (image_id, parent) VALUES (?, ?)').run(id, parent));
  }

  /** Images made from this one that are still stored. */
  children(id: string): string[] {
    return (this.db.prepare('SELECT p.image_id FROM image_parents p JOIN images i ON i.id = p.image_id WHERE p.parent = ?').all(id) as { image_id: string }[]).map((r) => r.image_id);
  }

  /** Delete the image row (names, digests and parent link with it); false when it was already gone. */
  delete(id: string): boolean {
    return writeTx(this.db, () => {
      this.db.prepare('DELETE FROM names WHERE image_id = ?').run(id);
      this.db.prepare('DELETE FROM repo_digests WHERE image_id = ?').run(id);
      this.db.prepare('DELETE FROM image_parents WHERE image_id = ?').run(id);
      return this.db.prepare('DELETE FROM images WHERE id = ?').run(id).changes > 0;
    });
  }

  /** Images whose top layer is `layerId`'s child chain: the "parent" relation docker shows. */
  usingTopLayer(layerId: string): string[] {
    return (this.db.prepare('SELECT id FROM images WHERE top_layer = ?').all(layerId) as { id: string }[]).map((r) => r.id);
  }
}
