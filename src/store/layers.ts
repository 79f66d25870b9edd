// Layers: image layers stored once per chain ID, plus the init and read-write layers of
// containers. A row is written `incomplete` (with its writer's identity) before the driver
// touches the disk and marked `complete` last, so a crash leaves nothing that looks usable;
// before that mark, an image layer's files and its tar-split are flushed to storage (syncfs),
// so a power cut cannot leave a complete row over empty or truncated files.
import { randomBytes } from 'node:crypto';
import { DigestStream, sha256Digest as sha256 } from '../image/digest.js';
import { mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Driver, CreateOpts } from '../drivers/driver.js';
import { decompress } from '../archive/compression.js';
import { TarSplitRecorder } from '../archive/tarsplit.js';
import { type DB, now, writeTx } from './db.js';
import { humanSize } from '../sys/units.js';
import { ownerAlive, ownerId } from './owner.js';
import { ConflictError, StrataError } from './errors.js';
import { freeBytes, isNoSpace } from './reserve.js';
import { fault } from '../sys/fault.js';
import { syncFs } from '../sys/fileio.js';

export type LayerKind = 'image' | 'init' | 'container';

export interface LayerRecord {
  id: string;
  chainId: string | null;
  parent: string | null;
  diffID: string | null;
  /** Bytes of the uncompressed layer tar. */
  size: number;
  /** Bytes of file content the layer holds. */
  contentSize: number;
  kind: LayerKind;
  state: 'incomplete' | 'complete' | 'removing';
  owner: string | null;
  created: string;
}

interface LayerRow {
  id: string;
  chain_id: string | null;
  parent: string | null;
  diff_id: string | null;
  size: number;
  content_size: number;
  kind: LayerKind;
  state: LayerRecord['state'];
  owner: string | null;
  created: string;
}

function fromRow(r: LayerRow): LayerRecord {
  return {
    id: r.id,
    chainId: r.chain_id,
    parent: r.parent,
    diffID: r.diff_id,
    size: r.size,
    contentSize: r.content_size,
    kind: r.kind,
    state: r.state,
    owner: r.owner,
    created: r.created,
  };
}

/** The tar-split of a layer: every byte of its original tar but file contents. */
export function tarSplitPath(root: string, id: string): string {
  return join(root, 'layerdb', `${id}.tar-split.gz`);
}

export function newId(): string {
  return randomBytes(32).toString('hex');
}

export { sha256 };

/** chainID(L0) = diffID(L0); chainID(L0..n) = sha256(chainID(L0..n-1) + " " + diffID(Ln)). */
export function chainIds(diffIDs: string[]): string[] {
  const out: string[] = [];
  for (const d of diffIDs) {
    out.push(out.length === 0 ? d : sha256(`${out[out.length - 1]} ${d}`));
  }
  return out;
}

export interface LayerInput {
  /** The blob as stored (compressed or not). */
  open(): Promise<Readable>;
  /** Digest of the blob as stored, verified when given. */
  blobDigest?: string;
  /** The expected diffID (from an image config), verified when given. */
  diffID?: string;
  /** What to call it in errors and progress. */
  label: string;
  /** Bytes of the blob as stored, when known (to say how much space a layer needs). */
  size?: number;
  /**
   * Read and check the blob even when a layer with its diffID is stored already (`load`: an
   * archive whose bytes do not match its config is refused, whatever the store holds).
   */
  verifyIfStored?: boolean;
}

function checkDiffID(input: LayerInput, diffID: string): void {
  if (input.diffID && input.diffID !== diffID) {
    throw new StrataError(`${input.label}: layer content does not match its diffID: expected ${input.diffID}, got ${diffID}`);
  }
}

export interface LayerEvents {
  onLayer?(label: string, status: 'exists' | 'extracting' | 'complete'): void;
}

const POLL_MS = 200;

/**
 * The layer a new one was to stand on is being removed (an `rmi` or `prune` got there first).
 * Callers start over: the layer is then waited for and made again, or the request is refused
 * with the domain error its caller knows (No such image / container).
 */
export class ParentGoneError extends StrataError {
  constructor(readonly parent: string) {
    super(`layer ${parent} was removed while a layer was being added on it`);
    this.name = 'ParentGoneError';
  }
}


export class LayerStore {
  constructor(
    private readonly db: DB,
    private readonly driver: Driver,
    private readonly root: string,
    /** Layers extracted at once when the driver's layers are independent (1 = one by one). */
    private readonly parallelExtract = 3,
  ) {}

  /** Uncompressed bytes read so far from each input being applied (what a full disk reports). */
  private readonly extracted = new Map<LayerInput, number>();

  byId(id: string): LayerRecord | undefined {
    const r = this.db.prepare('SELECT * FROM layers WHERE id = ?').get(id) as LayerRow | undefined;
    return r && fromRow(r);
  }

  byChainId(chainId: string): LayerRecord | undefined {
    const r = this.db.prepare('SELECT * FROM layers WHERE chain_id = ?').get(chainId) as LayerRow | undefined;
    return r && fromRow(r);
  }

  all(): LayerRecord[] {
    return (this.db.prepare('SELECT * FROM layers ORDER BY created').all() as LayerRow[]).map(fromRow);
  }

  countImageLayers(): number {
    return (this.db.prepare(`SELECT count(*) AS n FROM layers WHERE kind = 'image' AND state = 'complete'`).get() as { n: number }).n;
  }

  /** Layers from `id` down to the base, top first. */
  ancestry(id: string | null): LayerRecord[] {
    const out: LayerRecord[] = [];
    let cur = id;
    while (cur) {
      const l = this.byId(cur);
      if (!l) throw new StrataError(`layer ${cur} is missing from the store (run 'strata check --repair')`);
      out.push(l);
      cur = l.parent;
    }
    return out;
  }

  /**
   * Make sure the image layers exist, base first, reusing any already stored (same chain ID).
   * Returns the top layer, or null for an image without layers.
   */
  /**
   * Image layers stay owned by the process that made them until an image references them
   * (`adopted`): an import that fails or dies leaves no unreferenced layer behind for long —
   * the failing process removes its own, the next open removes a dead one's.
   */
  async ensureImageLayers(inputs: LayerInput[], events: LayerEvents = {}): Promise<LayerRecord | null> {
    try {
      for (;;) {
        try {
          return await this.ensureImageLayersOnce(inputs, events);
        } catch (err) {
          // A stored layer we were building on went away: what we made stays (it is found
          // again by chain ID), the rest is made again.
          if (!(err instanceof ParentGoneError)) throw err;
        }
      }
    } catch (err) {
      // What this import made goes (and what only it used); the import's own error is the one to report.
      await this.dropUnused().catch(() => undefined);
      if (isNoSpace(err)) throw this.noSpace(inputs, err as Error);
      throw err;
    } finally {
      for (const i of inputs) this.extracted.delete(i);
    }
  }

  /**
   * The error for layers that did not fit (their partial layers already removed): what they
   * needed as far as it is known, the bytes extracted before the disk filled plus the stored
   * (compressed, so at least) size of the layers not started, and what is free now.
   */
  private noSpace(inputs: LayerInput[], err: Error): StrataError {
    let extracted = 0;
    let pending = 0;
    for (const i of inputs) {
      const n = this.extracted.get(i);
      if (n !== undefined) extracted += n;
      else pending += i.size ?? 0;
    }
    let free = '';
    try {
      free = `; ${humanSize(freeBytes(this.root))} free now`;
    } catch {
      free = '';
    }
    const rest = pending > 0 ? ` and at least ${humanSize(pending)} more to come` : '';
    return new StrataError(
      `no space left on device under ${this.root}: the layers need more than ${humanSize(extracted + pending)} (${humanSize(extracted)} extracted when the disk filled${rest})${free}; the partial layers were removed (${err.message.split('\n')[0]})`,
    );
  }

  /** A stored layer stands in for input: announced, and first checked against input's bytes when asked. */
  private async reuse(input: LayerInput, events: LayerEvents): Promise<void> {
    if (input.verifyIfStored) await this.verifyBlob(input);
    events.onLayer?.(input.label, 'exists');
  }

  /** Read a blob through: its digest (when given) and its diffID must match, nothing is written. */
  private async verifyBlob(input: LayerInput): Promise<void> {
    const { blob, head, fetched } = await this.openBlob(input);
    const digester = new DigestStream({ what: input.label });
    const sink = new Writable({ highWaterMark: 1 << 20, write: (_chunk, _enc, cb) => cb() });
    try {
      const tar = await decompress(head);
      await Promise.all([pipeline(tar, digester, sink), fetched]);
    } catch (err) {
      blob.destroy();
      throw err;
    }
    checkDiffID(input, digester.digest);
  }

  /** Open input's blob; `head` carries its bytes, and `fetched` fails when they do not match blobDigest. */
  private async openBlob(input: LayerInput): Promise<{ blob: Readable; head: PassThrough; fetched: Promise<void> }> {
    const blob = await input.open();
    const head = new PassThrough({ highWaterMark: 1 << 20 });
    const fetched = input.blobDigest ? pipeline(blob, new DigestStream({ expected: input.blobDigest, what: input.label }), head) : pipeline(blob, head);
    fetched.catch(() => undefined); // awaited by the caller; this only keeps an early failure from going unhandled
    return { blob, head, fetched };
  }

  /** This process's image layers are now referenced by an image (or a container). */
  adopted(): void {
    writeTx(this.db, () => {
      this.db.prepare(`UPDATE layers SET owner = NULL WHERE owner = ? AND kind = 'image' AND state = 'complete'`).run(ownerId());
    });
  }

  /**
   * Remove every complete image layer that nothing uses: no image has it on top, no layer (so
   * no container) stands on it, and no other live process is still making it (`owner`: an
   * import in progress owns its layers until an image takes them). Marked in one transaction,
   * then removed; what this process or a dead one made counts as unused like an adopted layer.
   */
  async dropUnused(): Promise<string[]> {
    const candidates = (
      this.db
        .prepare(
          `SELECT id FROM layers l WHERE kind = 'image' AND state = 'complete'
             AND NOT EXISTS (SELECT 1 FROM layers c WHERE c.parent = l.id)
             AND NOT EXISTS (SELECT 1 FROM images i WHERE i.top_layer = l.id)`,
        )
        .all() as { id: string }[]
    ).map((r) => r.id);
    if (candidates.length === 0) return [];
    return this.removeClaimed(writeTx(this.db, () => this.claimUnused(candidates)));
  }

  private async ensureImageLayersOnce(inputs: LayerInput[], events: LayerEvents): Promise<LayerRecord | null> {
    const known = inputs.every((i) => i.diffID);
    const chains = known ? chainIds(inputs.map((i) => i.diffID!)) : null;
    if (!chains) {
      // Without diffIDs up front the chain is only known layer by layer: apply in order.
      let parent: LayerRecord | null = null;
      for (const input of inputs) parent = await this.addImageLayer(parent, input, null, events);
      return parent;
    }
    // Reuse the longest stored prefix.
    let parent: LayerRecord | null = null;
    let start = 0;
    for (; start < inputs.length; start++) {
      const existing = await this.waitForChain(chains[start]);
      if (!existing) break;
      await this.reuse(inputs[start], events);
      parent = existing;
    }
    if (start === inputs.length) return parent;
    if (this.driver.independentLayers && this.parallelExtract > 1 && inputs.length - start > 1) {
      return this.addImageLayersParallel(parent, inputs.slice(start), chains.slice(start), events);
    }
    for (let i = start; i < inputs.length; i++) {
      const existing = await this.waitForChain(chains[i]);
      if (existing) {
        await this.reuse(inputs[i], events);
        parent = existing;
        continue;
      }
      parent = await this.addImageLayer(parent, inputs[i], chains[i], events);
    }
    return parent;
  }

  /**
   * A complete layer with this chain ID, or undefined when none exists. Waits while a live
   * process is still writing it; takes over (removes) one left behind by a dead writer.
   */
  private async waitForChain(chainId: string): Promise<LayerRecord | undefined> {
    for (;;) {
      const l = this.byChainId(chainId);
      if (!l) return undefined;
      if (l.state === 'complete') return l;
      if (ownerAlive(l.owner) && l.owner !== ownerId()) {
        await new Promise((r) => setTimeout(r, POLL_MS));
        continue;
      }
      await this.destroy(l.id);
    }
  }

  /** Insert an incomplete row; false when another writer claimed the chain ID first. */
  private claim(id: string, chainId: string | null, parent: string | null, kind: LayerKind): boolean {
    return writeTx(this.db, () => {
      if (chainId && this.db.prepare('SELECT 1 FROM layers WHERE chain_id = ?').get(chainId)) return false;
      if (parent) {
        const p = this.db.prepare('SELECT state, owner FROM layers WHERE id = ?').get(parent) as { state: string; owner: string | null } | undefined;
        // A parent this same process is still making (a container's init layer) is fine.
        const ours = p?.state === 'incomplete' && p.owner === ownerId();
        if (p?.state !== 'complete' && !ours) throw new ParentGoneError(parent);
      }
      this.db
        .prepare(`INSERT INTO layers (id, chain_id, parent, kind, state, owner, created) VALUES (?, ?, ?, ?, 'incomplete', ?, ?)`)
        .run(id, chainId, parent, kind, ownerId(), now());
      return true;
    });
  }

  /** One image layer on top of parent (chain ID known up front or computed from the content). */
  async addImageLayer(parent: LayerRecord | null, input: LayerInput, chainId: string | null = null, events: LayerEvents = {}): Promise<LayerRecord> {
    for (;;) {
      if (chainId) {
        const existing = await this.waitForChain(chainId);
        if (existing) {
          await this.reuse(input, events);
          return existing;
        }
      }
      const id = newId();
      // Without a known chain ID, claim under a provisional NULL chain and fix it at the end.
      if (!this.claim(id, chainId, parent?.id ?? null, 'image')) continue;
      try {
        await this.driver.create(id, parent?.id ?? null);
        events.onLayer?.(input.label, 'extracting');
        const { diffID, size, contentSize } = await this.applyInto(id, parent?.id ?? null, input);
        const chain = chainId ?? (parent ? sha256(`${parent.chainId} ${diffID}`) : diffID);
        await syncFs(this.root);
        const done = writeTx(this.db, () => {
          const other = this.db.prepare('SELECT id, state FROM layers WHERE chain_id = ? AND id != ?').get(chain, id) as
            | { id: string; state: string }
            | undefined;
          if (other) return false;
          this.db
            .prepare(`UPDATE layers SET chain_id = ?, diff_id = ?, size = ?, content_size = ?, state = 'complete' WHERE id = ?`)
            .run(chain, diffID, size, contentSize, id);
          return true;
        });
        if (!done) {
          // Another process stored the same layer meanwhile: keep theirs.
          await this.destroy(id);
          const theirs = await this.waitForChain(chain);
          if (theirs) return theirs;
          continue;
        }
        events.onLayer?.(input.label, 'complete');
        return this.byId(id)!;
      } catch (err) {
        await this.destroy(id).catch(() => undefined);
        throw err;
      }
    }
  }

  private async addImageLayersParallel(
    parent: LayerRecord | null,
    inputs: LayerInput[],
    chains: string[],
    events: LayerEvents,
  ): Promise<LayerRecord> {
    // Claim and create the layers base first (each needs its parent's directory), starting each
    // one's extraction as soon as it exists (a few at once), then mark them all complete in one
    // transaction.
    const claimed: { id: string; parent: string | null; input: LayerInput; chain: string; existing?: LayerRecord }[] = [];
    const results = new Map<string, { diffID: string; size: number; contentSize: number }>();
    const running = new Set<Promise<void>>();
    let failure: { err: unknown } | undefined;
    const extract = (c: (typeof claimed)[number]) => {
      const job: Promise<void> = (async () => {
        events.onLayer?.(c.input.label, 'extracting');
        results.set(c.id, await this.applyInto(c.id, c.parent, c.input));
        events.onLayer?.(c.input.label, 'complete');
      })()
        .catch((err: unknown) => {
          failure ??= { err };
        })
        .finally(() => running.delete(job));
      running.add(job);
    };
    let parentId = parent?.id ?? null;
    try {
      for (let i = 0; i < inputs.length && !failure; i++) {
        const existing = await this.waitForChain(chains[i]);
        if (existing) {
          await this.reuse(inputs[i], events);
          claimed.push({ id: existing.id, parent: parentId, input: inputs[i], chain: chains[i], existing });
          parentId = existing.id;
          continue;
        }
        const id = newId();
        if (!this.claim(id, chains[i], parentId, 'image')) {
          i--; // somebody else just claimed it: wait for theirs
          continue;
        }
        const c = { id, parent: parentId, input: inputs[i], chain: chains[i] };
        claimed.push(c);
        await this.driver.create(id, parentId);
        parentId = id;
        while (running.size >= this.parallelExtract && !failure) await Promise.race(running);
        if (!failure) extract(c);
      }
      while (running.size > 0) await Promise.race(running);
      if (failure) throw failure.err;
      await syncFs(this.root);
      writeTx(this.db, () => {
        for (const c of claimed) {
          if (c.existing) continue;
          const r = results.get(c.id)!;
          this.db
            .prepare(`UPDATE layers SET diff_id = ?, size = ?, content_size = ?, state = 'complete' WHERE id = ?`)
            .run(r.diffID, r.size, r.contentSize, c.id);
        }
      });
      return this.byId(parentId!)!;
    } catch (err) {
      // Every extraction must have stopped writing before its layer is removed.
      while (running.size > 0) await Promise.race(running);
      for (const c of claimed.reverse()) if (!c.existing) await this.destroy(c.id).catch(() => undefined);
      throw err;
    }
  }

  /** Stream one layer blob into the driver: verify, decompress, hash, record tar-split, apply. */
  private async applyInto(id: string, parent: string | null, input: LayerInput): Promise<{ diffID: string; size: number; contentSize: number }> {
    const { blob, head, fetched } = await this.openBlob(input);
    const digester = new DigestStream({ what: input.label, onBytes: (n) => this.extracted.set(input, n) });
    this.extracted.set(input, 0);
    const splitFile = tarSplitPath(this.root, id);
    mkdirSync(join(this.root, 'layerdb'), { recursive: true, mode: 0o700 });
    const recorder = new TarSplitRecorder(`${splitFile}.tmp`);
    const out = new PassThrough({ highWaterMark: 1 << 20 });
    let contentSize: number;
    let applying: Promise<number> | undefined;
    try {
      const tar = await decompress(head);
      const flowing = pipeline(tar, digester, recorder, out);
      flowing.catch(() => undefined);
      applying = this.driver.applyDiff(id, parent, out);
      [contentSize] = await Promise.all([applying, flowing, fetched]);
      await recorder.finish();
    } catch (err) {
      blob.destroy();
      out.destroy();
      // The driver may still be writing when the blob fails its check: let it stop before the
      // caller removes the layer, or its last writes land in a directory nobody will remove.
      await applying?.catch(() => undefined);
      recorder.abort();
      rmSync(`${splitFile}.tmp`, { force: true });
      throw err;
    }
    const diffID = digester.digest;
    checkDiffID(input, diffID);
    renameSync(`${splitFile}.tmp`, splitFile);
    fault('rename');
    return { diffID, size: digester.size, contentSize };
  }

  /** A read-write layer (container or init) on top of parent. */
  async createReadWrite(parent: string | null, kind: 'init' | 'container', opts?: CreateOpts, id = newId()): Promise<LayerRecord> {
    this.claim(id, null, parent, kind);
    try {
      await this.driver.createReadWrite(id, parent, opts);
    } catch (err) {
      await this.destroy(id).catch(() => undefined);
      throw err;
    }
    return this.byId(id)!;
  }

  markComplete(ids: string[]): void {
    writeTx(this.db, () => {
      for (const id of ids) this.db.prepare(`UPDATE layers SET state = 'complete', owner = NULL WHERE id = ?`).run(id);
    });
  }

  /** Remember a compressed form of a layer (from a pull or a push), so a push can skip it. */
  recordBlob(diffID: string, blob: { digest: string; mediaType: string; size: number }): void {
    writeTx(this.db, () => {
      this.db
        .prepare('INSERT OR IGNORE INTO layer_blobs (diff_id, digest, media_type, size) VALUES (?, ?, ?, ?)')
        .run(diffID, blob.digest, blob.mediaType, blob.size);
    });
  }

  /** Compressed forms known for a layer's content. */
  blobs(diffID: string): { digest: string; mediaType: string; size: number }[] {
    return (
      this.db.prepare('SELECT digest, media_type, size FROM layer_blobs WHERE diff_id = ? ORDER BY digest').all(diffID) as {
        digest: string;
        media_type: string;
        size: number;
      }[]
    ).map((r) => ({ digest: r.digest, mediaType: r.media_type, size: r.size }));
  }

  /** Remember that repository `repo` ("host/path") holds the blob `digest`. */
  recordBlobSource(digest: string, repo: string): void {
    writeTx(this.db, () => {
      this.db.prepare('INSERT OR IGNORE INTO blob_sources (digest, repo) VALUES (?, ?)').run(digest, repo);
    });
  }

  /** Repositories known to hold the blob. */
  blobSources(digest: string): string[] {
    return (this.db.prepare('SELECT repo FROM blob_sources WHERE digest = ? ORDER BY repo').all(digest) as { repo: string }[]).map((r) => r.repo);
  }

  hasChildren(id: string): boolean {
    return !!this.db.prepare('SELECT 1 FROM layers WHERE parent = ? LIMIT 1').get(id);
  }

  isImageTop(id: string): boolean {
    return !!this.db.prepare('SELECT 1 FROM images WHERE top_layer = ? LIMIT 1').get(id);
  }

  /**
   * Remove a layer: mark it `removing` (so a crash in the middle is finished by the next open),
   * then the driver's data, then the row. Refused while other layers stand on it.
   */
  async destroy(id: string): Promise<boolean> {
    const go = writeTx(this.db, () => {
      const row = this.db.prepare('SELECT state, owner FROM layers WHERE id = ?').get(id) as { state: string; owner: string | null } | undefined;
      // Already gone, or another live process is removing it: nothing left to do here.
      if (!row) return false;
      if (row.state === 'removing' && row.owner !== ownerId() && ownerAlive(row.owner)) return false;
      if (this.hasChildren(id)) throw new ConflictError(`layer ${id} is in use by other layers`);
      const user = this.db.prepare('SELECT id FROM containers WHERE layer = ? OR init_layer = ?').get(id, id) as
        | { id: string }
        | undefined;
      if (user) throw new ConflictError(`layer ${id} is in use by container ${user.id}`);
      this.db.prepare(`UPDATE layers SET state = 'removing', owner = ? WHERE id = ?`).run(ownerId(), id);
      return true;
    });
    if (!go) return false;
    // Not gated on exists(): a layer whose creation was cut short may have parts without
    // being whole, and every driver's remove deletes whatever parts there are. No layer is
    // built on it (checked above).
    await this.driver.remove(id, { leaf: true });
    this.removeTarSplit(id);
    writeTx(this.db, () => {
      this.db.prepare('DELETE FROM layers WHERE id = ?').run(id);
    });
    return true;
  }

  /**
   * Remove a container's layers (top first): mark them removing, delete their data, then drop
   * the container record (`dropOwner`, in the same transaction) and their rows.
   */
  async destroyContainerLayers(ids: string[], dropOwner: () => void): Promise<void> {
    writeTx(this.db, () => {
      for (const id of ids) this.db.prepare(`UPDATE layers SET state = 'removing', owner = ? WHERE id = ?`).run(ownerId(), id);
    });
    const above = this.db.prepare('SELECT id FROM layers WHERE parent = ?');
    const gone = new Set<string>();
    for (const id of ids) {
      // A leaf once the layers removed before it are gone (the read-write layer, then its init).
      const leaf = (above.all(id) as { id: string }[]).every((c) => gone.has(c.id));
      await this.driver.remove(id, { leaf });
      this.removeTarSplit(id);
      gone.add(id);
    }
    writeTx(this.db, () => {
      dropOwner();
      for (const id of ids) this.db.prepare('DELETE FROM layers WHERE id = ?').run(id);
    });
  }

  /** Remove image layers from `top` down while nothing else uses them; their chain IDs. */
  async release(top: string | null): Promise<string[]> {
    return this.removeClaimed(writeTx(this.db, () => this.claimUnused([top])));
  }

  /**
   * In the caller's write transaction: mark `removing` (owned by this process) the image layers
   * from each of `tops` down that nothing uses once the layers marked before them are gone.
   * Returns them children first. A crash after the transaction leaves `removing` rows whose
   * owner is dead, which the next open removes; none is ever left complete and unused.
   */
  claimUnused(tops: (string | null)[]): LayerRecord[] {
    const me = ownerId();
    const claimed: LayerRecord[] = [];
    const gone = new Set<string>();
    const children = this.db.prepare('SELECT id FROM layers WHERE parent = ?');
    const mark = this.db.prepare(`UPDATE layers SET state = 'removing', owner = ? WHERE id = ?`);
    let todo = tops.filter((t): t is string => t !== null);
    while (todo.length > 0) {
      const next: string[] = [];
      for (const id of todo) {
        const l = this.byId(id);
        if (!l || gone.has(id) || l.kind !== 'image' || l.state !== 'complete') continue;
        if (l.owner && l.owner !== me && ownerAlive(l.owner)) continue;
        if (this.isImageTop(id)) continue;
        if ((children.all(id) as { id: string }[]).some((c) => !gone.has(c.id))) continue;
        mark.run(me, id);
        gone.add(id);
        claimed.push(l);
        if (l.parent) next.push(l.parent);
      }
      todo = next;
    }
    return claimed;
  }

  /** Delete the data, then the rows, of layers claimUnused marked (children first); their chain IDs. */
  async removeClaimed(layers: LayerRecord[]): Promise<string[]> {
    for (const l of layers) {
      // claimUnused took only layers with no child left once those before them are gone.
      await this.driver.remove(l.id, { leaf: true });
      this.removeTarSplit(l.id);
      writeTx(this.db, () => {
        this.db.prepare('DELETE FROM layers WHERE id = ?').run(l.id);
      });
    }
    return layers.map((l) => l.chainId ?? l.id);
  }

  private removeTarSplit(id: string): void {
    rmSync(tarSplitPath(this.root, id), { force: true });
    rmSync(`${tarSplitPath(this.root, id)}.tmp`, { force: true });
  }

  /**
   * Finish what crashed writers left: half-made layers go, half-removed layers are removed,
   * then the image layers that nothing uses any more (a crashed import's, or those below).
   */
  async recover(): Promise<number> {
    const stale = (this.db.prepare(`SELECT * FROM layers WHERE state != 'complete'`).all() as LayerRow[])
      .map(fromRow)
      .filter((l) => !ownerAlive(l.owner));
    // Children before parents.
    stale.sort((a, b) => this.ancestryDepth(b.id) - this.ancestryDepth(a.id));
    let n = 0;
    for (const l of stale) {
      if (this.hasChildren(l.id)) continue;
      try {
        if (await this.destroy(l.id)) n++;
      } catch (err) {
        if (err instanceof ConflictError) continue;
        // The row stays `removing` and the next open tries again; one layer that cannot go
        // yet (a busy mount) must not lock every command out of the store.
        process.emitWarning(`could not remove the unfinished layer ${l.id}: ${(err as Error).message}`);
      }
    }
    try {
      n += (await this.dropUnused()).length;
    } catch (err) {
      process.emitWarning(`could not remove unused layers: ${(err as Error).message}`);
    }
    return n;
  }

  private ancestryDepth(id: string): number {
    let d = 0;
    let cur: string | null = id;
    while (cur) {
      const r = this.db.prepare('SELECT parent FROM layers WHERE id = ?').get(cur) as { parent: string | null } | undefined;
      if (!r) break;
      cur = r.parent;
      d++;
    }
    return d;
  }
}

