// The names in a store, read without opening it: shell completion asks for them at every TAB
// press, so this must be quick and must change nothing (Store.open picks a driver, creates
// directories and recovers crashed work; none of that belongs in a completion).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { openSqlite } from './db.js';
import { familiar } from './images.js';

export interface Catalog {
  /** Image names as `images` prints them (`nginx:latest`, not `docker.io/library/nginx:latest`). */
  images: string[];
  /** Names of the containers that exist (not those half created or being removed). */
  containers: string[];
}

/** The store's image and container names; none when the root holds no store yet. */
export function readCatalog(root: string): Catalog {
  const file = join(root, 'strata.db');
  if (!existsSync(file)) return { images: [], containers: [] };
  const db = openSqlite(file, { readonly: true, fileMustExist: true });
  try {
    db.pragma('busy_timeout = 1000');
    const images = (db.prepare('SELECT name FROM names ORDER BY name').all() as { name: string }[]).map((r) => familiar(r.name));
    const containers = (db.prepare(`SELECT name FROM containers WHERE state = 'created' ORDER BY name`).all() as { name: string }[]).map((r) => r.name);
    return { images, containers };
  } finally {
    db.close();
  }
}
