// `check [--verify] [--repair]`: compare what the driver and the layer database hold, find what
// interrupted or crashed work left, and what images and containers can no longer work. Each
// finding knows its own repair; repairs run bottom-up (driver leftovers, then records, then the
// images and containers on top), each level scanned again after the one below was fixed, so a
// repair never works from a picture that an earlier repair changed. Nothing a live process is
// making or removing is reported or touched: its records name it as their owner.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Driver } from '../drivers/driver.js';
import type { ContainerRecord, ContainerStore } from './containers.js';
import type { ImageStore } from './images.js';
import { tarSplitPath, type LayerRecord, type LayerStore } from './layers.js';
import { ownerAlive } from './owner.js';
import { shortId as short } from '../reference/digest.js';

/** What `check` needs of the store. */
export interface CheckTarget {
  root: string;
  driver: Driver;
  layers: LayerStore;
  images: ImageStore;
  containers: ContainerStore;
  /** The layer's original tar, rebuilt from its files and tar-split. */
  layerTar(layer: LayerRecord): Promise<Readable>;
  /** fn's reads as one consistent snapshot (a read transaction). */
  snapshot<T>(fn: () => T): T;
  /** Remove a container's layers and record. */
  destroyContainer(c: ContainerRecord): Promise<void>;
}

export interface Finding {
  /** One line for the user. */
  problem: string;
  /** Fix it; resolves to one line saying what was done. */
  repair(): Promise<string>;
}

export interface CheckResult {
  /** Everything found (before any repair). */
  problems: string[];
  /** What the repairs did. */
  repaired: string[];
  /** Problems still there afterwards (all of them without repair). */
  remaining: string[];
}

export class Checker {
  constructor(private readonly s: CheckTarget) {}

  async run(opts: { repair?: boolean; verify?: boolean }): Promise<CheckResult> {
    const levels = [() => this.leftovers(), () => this.records(), () => this.users(opts.verify ?? false)];
    const problems: string[] = [];
    const repaired: string[] = [];
    for (const level of levels) {
      const found = await level();
      problems.push(...found.map((f) => f.problem));
      if (opts.repair) repaired.push(...(await repairAll(found)));
    }
    if (!opts.repair) return { problems, repaired, remaining: problems };
    const remaining: string[] = [];
    for (const level of levels) remaining.push(...(await level()).map((f) => f.problem));
    return { problems, repaired, remaining };
  }

  /**
   * Driver data with no record and leftovers of interrupted work (half-removed layers, probe
   * dirs, unheld mounts, tar-split files): nothing anyone can use, so also swept at open after
   * a crash.
   */
  async leftovers(): Promise<Finding[]> {
    const { driver, layers } = this.s;
    const out: Finding[] = [];
    // Listed before the records are read: a record is written before its layer's first byte
    // and deleted after its last, so data listed here whose record is missing afterwards is
    // either an orphan or already gone.
    const inv = await driver.inventory();
    const splits = this.tarSplitFiles();
    const busy = (id: string | null) => {
      if (!id) return false;
      const l = layers.byId(id);
      return !!l && l.state !== 'complete' && ownerAlive(l.owner);
    };
    for (const left of inv.leftovers) {
      if (ownerAlive(left.owner) || busy(left.layer)) continue;
      out.push({
        problem: `leftover ${left.what}`,
        repair: async () => {
          await left.remove();
          return `removed ${left.what}`;
        },
      });
    }
    const orphans = inv.layers.filter((id) => !layers.byId(id));
    if (orphans.length > 0) {
      // Several orphans may stand on one another: remove what can go, again while that helps.
      // Nothing else can: a recorded layer's parent is recorded (a foreign key). So an orphan
      // is a leaf once every other orphan is gone, and the driver need not look for children.
      let pending: Promise<Set<string>> | null = null;
      const removeOrphans = () =>
        (pending ??= (async () => {
          const done = new Set<string>();
          let todo = orphans;
          let failure: unknown = null;
          while (todo.length > 0) {
            const next: string[] = [];
            for (const id of todo) {
              const leaf = orphans.every((o) => o === id || done.has(o));
              try {
                if (!layers.byId(id)) await driver.remove(id, { leaf });
                done.add(id);
              } catch (err) {
                failure = err;
                next.push(id);
              }
            }
            if (next.length === todo.length) break;
            todo = next;
          }
          if (done.size === 0 && failure) throw failure;
          return done;
        })());
      for (const id of orphans) {
        out.push({
          problem: `${driver.name} layer ${id} has no record in the store`,
          repair: async () => {
            if (!(await removeOrphans()).has(id)) throw new Error(`${driver.name} refused to remove layer ${id}`);
            return `removed ${driver.name} layer ${id}`;
          },
        });
      }
    }
    for (const { file, id, temp } of splits) {
      const l = layers.byId(id);
      // A finished tar-split of a recorded layer is its own; a temp one only while it is written.
      if (l && (!temp || busy(id))) continue;
      out.push({
        problem: `leftover ${file}`,
        repair: async () => {
          rmSync(file, { force: true });
          return `removed ${file}`;
        },
      });
    }
    return out;
  }

  /** Records that crashed processes left half-written, and layers that nothing uses. */
  async records(): Promise<Finding[]> {
    const { layers, containers } = this.s;
    const out: Finding[] = [];
    const { unfinished, all, used } = this.s.snapshot(() => ({
      unfinished: containers.unfinished(),
      all: layers.all(),
      used: new Set(containers.list().flatMap((c) => [c.layer, c.initLayer])),
    }));
    for (const c of unfinished) {
      if (ownerAlive(c.owner)) continue;
      out.push({
        problem: `container ${short(c.id)} (${c.name}) was left ${c.state} by a process that died`,
        repair: async () => {
          await this.s.destroyContainer(c);
          return `removed container ${short(c.id)}`;
        },
      });
    }
    const stale: LayerRecord[] = [];
    for (const l of all) {
      if (l.state !== 'complete') {
        if (!ownerAlive(l.owner)) stale.push(l);
        continue;
      }
      // An unused image chain is reported by its top (its release takes the rest); a lost
      // container's init layer by itself, its read-write layer being removed first.
      const unused = l.kind === 'image' ? !layers.hasChildren(l.id) && !layers.isImageTop(l.id) && !ownerAlive(l.owner) : !used.has(l.id);
      if (unused) stale.push(l);
    }
    // Children first, so that each removal finds its layer without children.
    const depth = (l: LayerRecord) => safeAncestry(layers, l.id).length;
    stale.sort((a, b) => depth(b) - depth(a));
    for (const l of stale) {
      const what = l.state === 'complete' ? `${l.kind} layer ${l.id} is used by no ${l.kind === 'image' ? 'image' : 'container'}` : `layer ${l.id} was left ${l.state} by a process that died`;
      out.push({
        problem: what,
        repair: async () => {
          // Image layers go with whatever below them only they used.
          if (l.state === 'complete' && l.kind === 'image') {
            await layers.release(l.id);
          } else {
            await layers.destroy(l.id);
          }
          return `removed layer ${l.id}`;
        },
      });
    }
    return out;
  }

  /** Containers and images whose layers are missing, incomplete or (verify) changed. */
  async users(verify: boolean): Promise<Finding[]> {
    const { layers, images, containers, driver } = this.s;
    const out: Finding[] = [];
    const bad = new Map<string, string>();
    if (verify) {
      const seen = new Set<string>();
      for (const img of images.list()) {
        for (const l of safeAncestry(layers, img.topLayer)) {
          if (seen.has(l.id) || l.state !== 'complete' || !l.diffID) continue;
          seen.add(l.id);
          const why = await this.verifyLayer(l);
          if (why) bad.set(l.id, why);
        }
      }
    }
    const broken = async (layerId: string | null): Promise<string | null> => {
      let cur = layerId;
      while (cur) {
        const l = layers.byId(cur);
        if (!l) return `layer ${cur} is missing from the database`;
        if (l.state !== 'complete') return `layer ${cur} is ${l.state}`;
        if (!(await driver.exists(cur))) return `layer ${cur} has no ${driver.name} data`;
        if (l.kind === 'image' && !existsSync(tarSplitPath(this.s.root, cur))) return `layer ${cur} has no tar-split (save and push cannot rebuild it)`;
        const changed = bad.get(cur);
        if (changed) return `layer ${cur} ${changed}`;
        cur = l.parent;
      }
      return null;
    };
    const doomed = new Set<string>();
    for (const c of containers.list()) {
      if (c.state !== 'created') continue;
      const why = await broken(c.layer);
      if (!why) continue;
      doomed.add(c.id);
      out.push({
        problem: `container ${short(c.id)} (${c.name}): ${why}`,
        repair: async () => {
          await this.s.destroyContainer(c);
          return `removed container ${short(c.id)}`;
        },
      });
    }
    for (const img of images.list()) {
      const why = await broken(img.topLayer);
      if (!why) continue;
      out.push({
        problem: `image ${short(img.id)}: ${why}`,
        repair: async () => {
          // Its containers are broken too, and removed before this runs.
          const users = containers.byImage(img.id).filter((c) => !doomed.has(c.id));
          if (users.length > 0) throw new Error(`container ${short(users[0].id)} still uses it`);
          images.delete(img.id);
          // Whatever part of its chain is still sound and unused goes too; a layer it shares
          // with a sound image stays.
          await layers.release(img.topLayer);
          return `removed image ${short(img.id)}`;
        },
      });
    }
    return out;
  }

  /** Rebuild the layer's tar and compare its digest with the diffID; why not, or null. */
  private async verifyLayer(l: LayerRecord): Promise<string | null> {
    const hash = createHash('sha256');
    try {
      const sink = new Writable({
        write(chunk: Buffer, _enc, done) {
          hash.update(chunk);
          done();
        },
      });
      await pipeline(await this.s.layerTar(l), sink);
    } catch (err) {
      return `cannot be read back: ${(err as Error).message}`;
    }
    const got = `sha256:${hash.digest('hex')}`;
    return got === l.diffID ? null : `content does not match its diffID ${l.diffID} (reads back as ${got})`;
  }

  private tarSplitFiles(): { file: string; id: string; temp: boolean }[] {
    const dir = join(this.s.root, 'layerdb');
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const out: { file: string; id: string; temp: boolean }[] = [];
    for (const name of names) {
      const m = /^(.+)\.tar-split\.gz(\.tmp)?$/.exec(name);
      if (m) out.push({ file: join(dir, name), id: m[1], temp: m[2] !== undefined });
    }
    return out;
  }
}

/** Layers from id down while they have records (a missing one is reported by users()). */
function safeAncestry(layers: LayerStore, id: string | null): LayerRecord[] {
  const out: LayerRecord[] = [];
  let cur = id;
  while (cur) {
    const l = layers.byId(cur);
    if (!l) break;
    out.push(l);
    cur = l.parent;
  }
  return out;
}

async function repairAll(found: Finding[]): Promise<string[]> {
  const done: string[] = [];
  for (const f of found) {
    try {
      done.push(await f.repair());
    } catch (err) {
      done.push(`could not repair (${f.problem}): ${(err as Error).message}`);
    }
  }
  return done;
}
