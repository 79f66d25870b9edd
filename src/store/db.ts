// The metadata database: one SQLite file in WAL mode, shared by every strata process on a root.
// better-sqlite3 is synchronous, so a transaction is atomic for this process; BEGIN IMMEDIATE
// plus busy_timeout makes it atomic across processes too.
import { StrataError } from '../errors.js';
import Database from 'better-sqlite3';
import { RUN_STATE_SCHEMA } from './runstate.js';
import { dirname, join } from 'node:path';
import { isNoSpace, withReserve } from './reserve.js';
import { fault } from '../sys/fault.js';

export type DB = Database.Database;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS layers (
  id           TEXT PRIMARY KEY,
  chain_id     TEXT UNIQUE,
  parent       TEXT REFERENCES layers(id),
  diff_id      TEXT,
  size         INTEGER NOT NULL DEFAULT 0,
  content_size INTEGER NOT NULL DEFAULT 0,
  kind         TEXT NOT NULL CHECK (kind IN ('image', 'init', 'container')),
  state        TEXT NOT NULL CHECK (state IN ('incomplete', 'complete', 'removing')),
  owner        TEXT,
  created      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS layers_parent ON layers(parent);

CREATE TABLE IF NOT EXISTS images (
  id                  TEXT PRIMARY KEY,
  config              BLOB NOT NULL,
  top_layer           TEXT REFERENCES layers(id),
  created             TEXT NOT NULL,
  manifest            BLOB,
  manifest_media_type TEXT,
  manifest_digest     TEXT
);
CREATE INDEX IF NOT EXISTS images_top ON images(top_layer);

CREATE TABLE IF NOT EXISTS names (
  name     TEXT PRIMARY KEY,
  image_id TEXT NOT NULL REFERENCES images(id),
  created  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS names_image ON names(image_id);

CREATE TABLE IF NOT EXISTS repo_digests (
  image_id TEXT NOT NULL REFERENCES images(id),
  ref      TEXT NOT NULL,
  PRIMARY KEY (image_id, ref)
);

CREATE TABLE IF NOT EXISTS layer_blobs (
  diff_id    TEXT NOT NULL,
  digest     TEXT NOT NULL,
  media_type TEXT NOT NULL,
  size       INTEGER NOT NULL,
  PRIMARY KEY (diff_id, digest)
);

CREATE TABLE IF NOT EXISTS containers (
  id         TEXT PRIMARY KEY,
  name       TEXT NOT NULL UNIQUE,
  image_id   TEXT NOT NULL REFERENCES images(id),
  init_layer TEXT NOT NULL REFERENCES layers(id),
  layer      TEXT NOT NULL REFERENCES layers(id),
  state      TEXT NOT NULL CHECK (state IN ('creating', 'created', 'removing')),
  owner      TEXT,
  created    TEXT NOT NULL,
  config     TEXT NOT NULL
);
`;

// Where a compressed blob is known to live ("host/path" repositories), so a push to another
// repository on the same registry can mount it instead of uploading it.
const BLOB_SOURCES = `
CREATE TABLE IF NOT EXISTS blob_sources (
  digest TEXT NOT NULL,
  repo   TEXT NOT NULL,
  PRIMARY KEY (digest, repo)
);
`;

// Indexes for what every command or every removal looks up, so that its cost does not grow with
// the store: opening the store looks for unfinished layers and containers and for layers owned by
// a process; removing a layer asks which container uses it, `rmi` which containers use an image.
const CONTAINER_INDEXES = `
CREATE INDEX IF NOT EXISTS containers_unfinished ON containers(state) WHERE state != 'created';
CREATE INDEX IF NOT EXISTS containers_layer ON containers(layer);
CREATE INDEX IF NOT EXISTS containers_init_layer ON containers(init_layer);
CREATE INDEX IF NOT EXISTS containers_image ON containers(image_id);
`;
const GROWTH_INDEXES = `
CREATE INDEX IF NOT EXISTS layers_unfinished ON layers(state) WHERE state != 'complete';
CREATE INDEX IF NOT EXISTS layers_owned ON layers(owner) WHERE owner IS NOT NULL;
${CONTAINER_INDEXES}`;

// Docker's image parents (commit records the image a container was made from: inspect's Parent,
// history's IDs, ps's ancestor filter), and containers that may outlive their image (docker's
// \`rmi -f\` deletes an image that stopped containers use): containers.image_id loses its foreign
// key. SQLite cannot drop a constraint, so the table is made again; dropping the old one
// cascades to run_state, whose rows are kept aside and put back; the new table gets the
// container indexes again.
const IMAGE_PARENTS = `
CREATE TABLE IF NOT EXISTS image_parents (
  image_id TEXT PRIMARY KEY,
  parent   TEXT NOT NULL
);
DROP TABLE IF EXISTS containers_next;
CREATE TABLE containers_next (
  id         TEXT PRIMARY KEY,
  name       TEXT NOT NULL UNIQUE,
  image_id   TEXT NOT NULL,
  init_layer TEXT NOT NULL REFERENCES layers(id),
  layer      TEXT NOT NULL REFERENCES layers(id),
  state      TEXT NOT NULL CHECK (state IN ('creating', 'created', 'removing')),
  owner      TEXT,
  created    TEXT NOT NULL,
  config     TEXT NOT NULL
);
INSERT INTO containers_next SELECT id, name, image_id, init_layer, layer, state, owner, created, config FROM containers;
DROP TABLE IF EXISTS temp.run_state_kept;
CREATE TEMP TABLE run_state_kept AS SELECT * FROM run_state;
DROP TABLE containers;
ALTER TABLE containers_next RENAME TO containers;
INSERT INTO run_state SELECT * FROM temp.run_state_kept;
DROP TABLE temp.run_state_kept;
${CONTAINER_INDEXES}`;

// Every open looks for image layers that nothing uses (LayerStore.dropUnused): without this
// index that read every layer row, two per container, so each command paid for every container.
const IMAGE_LAYERS_INDEX = `
CREATE INDEX IF NOT EXISTS layers_image ON layers(state) WHERE kind = 'image';
`;

/** Migration N (1-based) takes a database from user_version N-1 to N; each may run twice safely. */
const MIGRATIONS = [SCHEMA, BLOB_SOURCES, RUN_STATE_SCHEMA, GROWTH_INDEXES, IMAGE_PARENTS, IMAGE_LAYERS_INDEX];
const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * better-sqlite3 loads its compiled addon at the first open; a missing or mismatched one means
 * its install script did not run (npm 11 skips denied scripts) or node changed since: say so.
 */
export function openSqlite(file: string, opts: Database.Options): DB {
  try {
    return keepStatements(new Database(file, opts));
  } catch (err) {
    const msg = (err as Error).message;
    if (!/bindings file|better_sqlite3\.node|NODE_MODULE_VERSION/.test(msg)) throw err;
    throw new StrataError(
      `better-sqlite3's native addon cannot be loaded (${msg.split('\n')[0]}): reinstall with its install script allowed ` +
        `(npm install -g --allow-scripts=better-sqlite3,koffi,node-pty,zstd-napi strata-store), or run npm rebuild where strata-store is installed`,
    );
  }
}

/**
 * better-sqlite3 compiles the SQL at every prepare(), and the stores prepare where they use a
 * statement: `images` over 1,000 images compiled the same few statements thousands of times,
 * most of its time. Each connection keeps its statements by SQL text instead. Safe because no
 * strata statement is switched to another mode (pluck, raw, expand) that would outlive its use,
 * and a statement is never run inside an iteration of itself.
 */
function keepStatements(db: DB): DB {
  const prepare = db.prepare.bind(db);
  const kept = new Map<string, Database.Statement>();
  db.prepare = ((sql: string) => {
    let st = kept.get(sql);
    if (!st) kept.set(sql, (st = prepare(sql)));
    return st;
  }) as DB['prepare'];
  return db;
}

/**
 * Open (creating or migrating) the database. On a full disk SQLite cannot even make its shared
 * WAL index (the -shm file): the connection then keeps the index in its own memory (exclusive
 * locking: other strata processes wait until this one closes), so reads work without a free
 * block, and writes get room from the space reserve (writeTx), kept for the commands that free
 * space rather than spent on opening.
 */
export function openDatabase(root: string): DB {
  try {
    return openOnce(root, false);
  } catch (err) {
    if (!isNoSpace(err)) throw err;
    return openOnce(root, true);
  }
}

function openOnce(root: string, exclusive: boolean): DB {
  const db = openSqlite(join(root, 'strata.db'), { timeout: 60_000 });
  try {
    // Must come before the first access to take effect on the WAL index.
    if (exclusive) db.pragma('locking_mode = EXCLUSIVE');
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    // A short WAL: what a full disk needs free to record a removal (see reserve.ts).
    db.pragma('wal_autocheckpoint = 100');
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      throw new StrataError(`strata.db in ${root} has schema version ${version}, newer than this strata (${SCHEMA_VERSION})`);
    }
    if (version < SCHEMA_VERSION) {
      db.transaction(() => {
        for (let v = version; v < SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v]);
        db.pragma(`user_version = ${SCHEMA_VERSION}`);
      }).immediate();
    }
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}

/** Run fn in a BEGIN IMMEDIATE transaction (serialised with every other writer on the root). */
export function writeTx<T>(db: DB, fn: () => T): T {
  if (db.inTransaction) return db.transaction(fn).immediate();
  const result = withReserve(dirname(db.name), () => db.transaction(fn).immediate());
  fault('row');
  return result;
}

export function now(): string {
  return new Date().toISOString();
}
