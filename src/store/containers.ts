// Containers: an image plus an init layer and a read-write layer on top of it.
import { type DB, writeTx } from './db.js';
import type { HostConfig, ProcessConfig } from './run.js';
import { ConflictError, InvalidInputError, NotFoundError, StrataError } from './errors.js';

export interface ContainerConfig {
  hostname: string;
  storageOpt: Record<string, string>;
  /** What the image config said to run, for `ps` and `inspect`. */
  path: string;
  args: string[];
  /** What and how it runs (absent on containers made before strata could run them). */
  process?: ProcessConfig;
  host?: HostConfig;
}

export interface ContainerRecord {
  id: string;
  name: string;
  imageId: string;
  /** The image reference the user gave (`ps` shows it). */
  imageRef: string;
  initLayer: string;
  layer: string;
  state: 'creating' | 'created' | 'removing';
  owner: string | null;
  created: string;
  config: ContainerConfig & { imageRef: string };
}

interface ContainerRow {
  id: string;
  name: string;
  image_id: string;
  init_layer: string;
  layer: string;
  state: ContainerRecord['state'];
  owner: string | null;
  created: string;
  config: string;
}

function fromRow(r: ContainerRow): ContainerRecord {
  const config = JSON.parse(r.config) as ContainerRecord['config'];
  return {
    id: r.id,
    name: r.name,
    imageId: r.image_id,
    imageRef: config.imageRef,
    initLayer: r.init_layer,
    layer: r.layer,
    state: r.state,
    owner: r.owner,
    created: r.created,
    config,
  };
}

const ADJECTIVES = ['amazing', 'bold', 'brave', 'calm', 'clever', 'eager', 'gentle', 'happy', 'jolly', 'keen', 'lucid', 'nifty', 'quirky', 'sharp', 'stoic', 'vivid'];
const NAMES = ['babbage', 'curie', 'darwin', 'euler', 'feynman', 'gauss', 'hopper', 'knuth', 'lovelace', 'noether', 'pascal', 'ritchie', 'shannon', 'turing', 'wozniak', 'yalow'];

export function randomName(): string {
  const a = ADJECTIVES[Math.floor(Math.random() * ADJECTIVES.length)];
  const n = NAMES[Math.floor(Math.random() * NAMES.length)];
  return `${a}_${n}${Math.floor(Math.random() * 100)}`;
}

// Docker's RestrictedNamePattern: two characters at least.
const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

/** `create --name`: the name without docker's optional leading "/", refused as docker refuses it (spelled as given). */
export function containerName(given: string): string {
  const name = given.startsWith('/') ? given.slice(1) : given;
  if (!NAME_RE.test(name)) throw new StrataError(`Invalid container name (${given}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
  return name;
}

export class ContainerStore {
  constructor(private readonly db: DB) {}

  list(): ContainerRecord[] {
    return (this.db.prepare(`SELECT * FROM containers ORDER BY created DESC`).all() as ContainerRow[]).map(fromRow);
  }

  count(): number {
    return (this.db.prepare(`SELECT count(*) AS n FROM containers WHERE state = 'created'`).get() as { n: number }).n;
  }

  get(id: string): ContainerRecord | undefined {
    const r = this.db.prepare('SELECT * FROM containers WHERE id = ?').get(id) as ContainerRow | undefined;
    return r && fromRow(r);
  }

  /** By full ID, name, or unique ID prefix (docker's lookup order). */
  resolve(ref: string): ContainerRecord {
    const byId = this.get(ref);
    if (byId && byId.state === 'created') return byId;
    const name = ref.startsWith('/') ? ref.slice(1) : ref;
    const byName = this.db.prepare(`SELECT * FROM containers WHERE name = ? AND state = 'created'`).get(name) as ContainerRow | undefined;
    if (byName) return fromRow(byName);
    if (/^[a-f0-9]+$/.test(ref)) {
      // GLOB on a hex prefix (no wildcard inside) is a range scan of the primary key.
      const rows = this.db.prepare(`SELECT * FROM containers WHERE id GLOB ? AND state = 'created' LIMIT 2`).all(`${ref}*`) as ContainerRow[];
      if (rows.length === 1) return fromRow(rows[0]);
      if (rows.length > 1) throw new StrataError(`container ID prefix ${ref} is ambiguous`);
    }
    throw new NotFoundError(`No such container: ${ref}`);
  }

  byImage(imageId: string): ContainerRecord[] {
    return (this.db.prepare('SELECT * FROM containers WHERE image_id = ?').all(imageId) as ContainerRow[]).map(fromRow);
  }

  /**
   * Refuse a name docker would refuse, or one another container holds (inside a write
   * transaction). `rename` says it as docker's rename does: a prefix, and the name with its "/".
   */
  private checkFreeName(name: string, renaming = false): void {
    const prefix = renaming ? 'Error when allocating new name: ' : '';
    if (!NAME_RE.test(name)) throw new StrataError(`${prefix}Invalid container name (${renaming ? '/' : ''}${name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
    const clash = this.db.prepare('SELECT id FROM containers WHERE name = ?').get(name) as { id: string } | undefined;
    if (clash) {
      throw new ConflictError(`${prefix}Conflict. The container name "/${name}" is already in use by container "${clash.id}". You have to remove (or rename) that container to be able to reuse that name.`);
    }
  }

  insert(c: Omit<ContainerRecord, 'imageRef'>): void {
    writeTx(this.db, () => {
      this.checkFreeName(c.name);
      this.db
        .prepare('INSERT INTO containers (id, name, image_id, init_layer, layer, state, owner, created, config) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
        .run(c.id, c.name, c.imageId, c.initLayer, c.layer, c.state, c.owner, c.created, JSON.stringify(c.config));
    });
  }

  /**
   * `rename`: the new name (a leading "/" allowed, as docker's) replaces the old in one
   * transaction, so two renames to one name cannot both win. Docker's messages.
   */
  rename(id: string, newName: string): void {
    const name = newName.startsWith('/') ? newName.slice(1) : newName;
    writeTx(this.db, () => {
      const c = this.get(id);
      if (!c || c.state !== 'created') throw new NotFoundError(`No such container: ${id}`);
      if (c.name === name) throw new InvalidInputError('Renaming a container with the same name as its current name');
      this.checkFreeName(name, true);
      this.db.prepare('UPDATE containers SET name = ? WHERE id = ?').run(name, id);
    });
  }

  setState(id: string, state: ContainerRecord['state'], owner: string | null): void {
    writeTx(this.db, () => {
      this.db.prepare('UPDATE containers SET state = ?, owner = ? WHERE id = ?').run(state, owner, id);
    });
  }

  delete(id: string): void {
    writeTx(this.db, () => {
      this.db.prepare('DELETE FROM containers WHERE id = ?').run(id);
    });
  }

  /** Containers some process was creating or removing. */
  unfinished(): ContainerRecord[] {
    return (this.db.prepare(`SELECT * FROM containers WHERE state != 'created'`).all() as ContainerRow[]).map(fromRow);
  }
}
