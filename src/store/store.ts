// The store: what every command and every library user talks to. It ties the metadata
// database, the layer/image/container records and the storage driver together.
import { randomBytes } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Change } from '../archive/changes.js';
import { packDirectory } from '../archive/pack.js';
import { assembleLayer } from '../archive/tarsplit.js';
import { selectDriver } from '../drivers/index.js';
import type { Driver } from '../drivers/driver.js';
import { openImageArchive } from '../image/archive-read.js';
import { writeImageArchive, type ArchiveFormat } from '../image/archive-write.js';
import { hostPlatform } from '../image/platform.js';
import type { ExportImage, ImageSource } from '../image/source.js';
import type { HistoryEntry, ImageConfig } from '../image/types.js';
import { ContainerStore, randomName, type ContainerRecord } from './containers.js';
import { type DB, now, openDatabase, writeTx } from './db.js';
import { StrataError } from './errors.js';
import { ImageStore, familiar, storedName, parseConfig, type ImageRecord } from './images.js';
import { setupInitLayer } from './initlayer.js';
import { LayerStore, newId, sha256, tarSplitPath, type LayerEvents, type LayerRecord } from './layers.js';
import { ownerAlive, ownerId } from './owner.js';

export const DEFAULT_ROOT = '/var/lib/strata';

export interface StoreOptions {
  /** Store root (default /var/lib/strata). */
  root?: string;
  /** Storage driver name; chosen like Docker when absent. */
  driver?: string;
  /** Global driver options (`--storage-opt k=v`). */
  storageOpts?: Record<string, string>;
  /** How many layers of one image to extract at once on drivers whose layers are independent (default 3). */
  parallelExtract?: number;
}

export interface ImageSummary {
  id: string;
  names: string[];
  repoDigests: string[];
  created: string;
  size: number;
  /** True for images that are only the parent of another (docker's intermediate images). */
  dangling: boolean;
}

export interface LoadedImage {
  id: string;
  names: string[];
}

export interface RemovedImage {
  untagged: string[];
  deleted: string[];
}

export interface CreateOptions {
  name?: string;
  storageOpt?: Record<string, string>;
  hostname?: string;
}

export interface CommitOptions {
  message?: string;
  author?: string;
}

export class Store {
  readonly layers: LayerStore;
  readonly images: ImageStore;
  readonly containers: ContainerStore;

  private constructor(
    readonly root: string,
    readonly driver: Driver,
    private readonly db: DB,
    parallelExtract: number,
  ) {
    this.layers = new LayerStore(db, driver, root, parallelExtract);
    this.images = new ImageStore(db);
    this.containers = new ContainerStore(db);
  }

  static async open(opts: StoreOptions = {}): Promise<Store> {
    const root = resolve(opts.root ?? DEFAULT_ROOT);
    mkdirSync(root, { recursive: true, mode: 0o710 });
    mkdirSync(resolve(root, 'tmp'), { recursive: true, mode: 0o700 });
    const driver = await selectDriver(root, opts.driver, opts.storageOpts ?? {});
    const db = openDatabase(root);
    const store = new Store(root, driver, db, opts.parallelExtract ?? 3);
    await store.recover();
    return store;
  }

  async close(): Promise<void> {
    this.db.close();
  }

  /** Finish or undo what crashed processes left behind. */
  private async recover(): Promise<void> {
    for (const c of this.containers.unfinished()) {
      if (ownerAlive(c.owner)) continue;
      await this.destroyContainer(c);
    }
    await this.layers.recover();
  }

  // ---------------------------------------------------------------- images

  /** Store an image from any source; layers already present are reused. */
  async importImage(src: ImageSource, events: LayerEvents = {}, opts: { repoDigests?: string[] } = {}): Promise<LoadedImage> {
    const id = sha256(src.config);
    let config: ImageConfig;
    try {
      config = JSON.parse(src.config.toString('utf8')) as ImageConfig;
    } catch {
      throw new StrataError(`image ${id}: config is not valid JSON`);
    }
    const diffIDs = config.rootfs?.diff_ids;
    if (!Array.isArray(diffIDs)) throw new StrataError(`image ${id}: config has no rootfs.diff_ids`);
    if (diffIDs.length !== src.layers.length) {
      throw new StrataError(`image ${id}: config lists ${diffIDs.length} layers but the image has ${src.layers.length}`);
    }
    const names = src.names.map(storedName);
    for (;;) {
      const top = await this.layers.ensureImageLayers(
        src.layers.map((l, i) => ({
          open: l.open,
          blobDigest: l.verified ? undefined : l.digest,
          diffID: diffIDs[i],
          label: (l.digest ?? diffIDs[i]).replace(/^sha256:/, '').slice(0, 12),
        })),
        events,
      );
      // A concurrent `rmi` may have released a layer between its creation and this point.
      if (top && this.layers.byId(top.id)?.state !== 'complete') continue;
      this.images.add({ id, config: src.config, topLayer: top?.id ?? null, manifest: src.manifest ?? null }, names, opts.repoDigests ?? []);
      this.layers.adopted();
      src.layers.forEach((l, i) => {
        if (l.digest && l.size !== undefined) this.layers.recordBlob(diffIDs[i], { digest: l.digest, mediaType: l.mediaType, size: l.size });
      });
      return { id, names };
    }
  }

  /** `load -i FILE`: every image of a docker-archive or OCI archive. */
  async load(file: string, opts: { platform?: string } = {}, events: LayerEvents = {}): Promise<LoadedImage[]> {
    const sources = await openImageArchive(file, opts);
    const out: LoadedImage[] = [];
    for (const src of sources) out.push(await this.importImage(src, events));
    return out;
  }

  listImages(opts: { all?: boolean } = {}): ImageSummary[] {
    const images = this.images.list();
    // Docker hides untagged images that are only the parent of another image (intermediates).
    const parents = new Set<string>();
    for (const img of images) for (const l of this.layers.ancestry(img.topLayer).slice(1)) parents.add(l.id);
    const out: ImageSummary[] = [];
    for (const img of images) {
      const names = this.images.names(img.id);
      const cfg = parseConfig(img);
      const dangling = names.length === 0;
      if (!opts.all && dangling && img.topLayer && parents.has(img.topLayer)) continue;
      out.push({
        id: img.id,
        names,
        repoDigests: this.images.repoDigests(img.id),
        created: cfg.created ?? img.created,
        size: this.imageSize(img),
        dangling,
      });
    }
    return out;
  }

  imageSize(img: ImageRecord): number {
    return this.layers.ancestry(img.topLayer).reduce((n, l) => n + l.contentSize, 0);
  }

  imageLayers(img: ImageRecord): LayerRecord[] {
    return this.layers.ancestry(img.topLayer).reverse();
  }

  tag(source: string, target: string): void {
    const img = this.images.resolve(source);
    this.images.setName(storedName(target), img.id);
  }

  /**
   * `rmi`: a name removes that name (and the image when it was its last name); an ID removes
   * the image, refused while containers use it or, without force, while it has several names.
   */
  async removeImage(ref: string, opts: { force?: boolean } = {}): Promise<RemovedImage> {
    const img = this.images.resolve(ref);
    const names = this.images.names(img.id);
    const result: RemovedImage = { untagged: [], deleted: [] };
    let byName: string | null = null;
    try {
      const n = storedName(ref);
      if (names.includes(n)) byName = n;
    } catch {
      byName = null;
    }
    if (byName && names.length > 1) {
      this.images.removeName(byName);
      result.untagged.push(familiar(byName));
      return result;
    }
    const users = this.containers.byImage(img.id);
    if (users.length > 0) {
      const short = img.id.slice(7, 19);
      throw new StrataError(
        `conflict: unable to ${byName ? `remove repository reference "${ref}"` : `delete ${short}`} (must be forced) - container ${users[0].id.slice(0, 12)} is using its referenced image ${short}`,
      );
    }
    if (!byName && names.length > 1 && !opts.force) {
      throw new StrataError(`conflict: unable to delete ${img.id.slice(7, 19)} (must be forced) - image is referenced in multiple repositories`);
    }
    for (const n of names) result.untagged.push(familiar(n));
    for (const d of this.images.repoDigests(img.id)) result.untagged.push(d);
    this.images.delete(img.id);
    result.deleted.push(img.id);
    for (const chain of await this.layers.release(img.topLayer)) result.deleted.push(chain);
    return result;
  }

  async inspectImage(ref: string): Promise<Record<string, unknown>> {
    const img = this.images.resolve(ref);
    const cfg = parseConfig(img);
    const layers = this.imageLayers(img);
    const top = layers.length ? layers[layers.length - 1] : null;
    return {
      Id: img.id,
      RepoTags: this.images.names(img.id).map(familiar),
      RepoDigests: this.images.repoDigests(img.id),
      Parent: '',
      Comment: cfg.history?.length ? (cfg.history[cfg.history.length - 1].comment ?? '') : '',
      Created: cfg.created ?? img.created,
      Container: (cfg as Record<string, unknown>).container ?? '',
      ContainerConfig: (cfg as Record<string, unknown>).container_config ?? {},
      DockerVersion: (cfg as Record<string, unknown>).docker_version ?? '',
      Author: cfg.author ?? '',
      Config: cfg.config ?? {},
      Architecture: cfg.architecture,
      Variant: cfg.variant,
      Os: cfg.os,
      Size: this.imageSize(img),
      VirtualSize: this.imageSize(img),
      GraphDriver: { Name: this.driver.name, Data: top ? await this.driver.metadata(top.id) : null },
      RootFS: { Type: 'layers', Layers: cfg.rootfs.diff_ids },
      Metadata: { LastTagTime: img.created },
    };
  }

  history(ref: string): { id: string; created: string; createdBy: string; size: number; comment: string }[] {
    const img = this.images.resolve(ref);
    const cfg = parseConfig(img);
    const layers = this.imageLayers(img);
    const hist: HistoryEntry[] = cfg.history?.length ? cfg.history : layers.map(() => ({}));
    const rows: { id: string; created: string; createdBy: string; size: number; comment: string }[] = [];
    let li = 0;
    for (const h of hist) {
      const empty = h.empty_layer === true;
      const layer = empty ? undefined : layers[li++];
      rows.push({ id: '<missing>', created: h.created ?? '', createdBy: h.created_by ?? '', size: layer?.contentSize ?? 0, comment: h.comment ?? '' });
    }
    rows.reverse();
    if (rows.length) rows[0].id = img.id;
    return rows;
  }

  /** `save`: the images named by refs as one archive; names are kept only when given by name. */
  async save(refs: string[], out: Writable, format: ArchiveFormat = 'docker'): Promise<void> {
    const images: ExportImage[] = [];
    for (const ref of refs) {
      const img = this.images.resolve(ref);
      let names: string[] = [];
      try {
        const n = storedName(ref);
        if (this.images.names(img.id).includes(n)) names = [n];
      } catch {
        names = [];
      }
      images.push({
        id: img.id,
        config: img.config,
        names,
        layers: this.imageLayers(img).map((l) => ({
          diffID: l.diffID!,
          size: l.size,
          open: () => this.layerTar(l),
        })),
      });
    }
    await writeImageArchive(out, format, images);
  }

  /** The original tar of an image layer, rebuilt from its files and tar-split. */
  async layerTar(layer: LayerRecord): Promise<Readable> {
    const root = await this.driver.get(layer.id);
    let stream: Readable;
    try {
      stream = assembleLayer(tarSplitPath(this.root, layer.id), root);
    } catch (err) {
      await this.driver.put(layer.id);
      throw err;
    }
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.driver.put(layer.id).catch(() => undefined);
    };
    stream.once('close', release);
    return stream;
  }

  /** `import FILE [REF]`: a root filesystem tarball (plain or compressed) as a one-layer image. */
  async importTarball(file: string, ref?: string, opts: { message?: string } = {}): Promise<string> {
    const created = now();
    const plat = hostPlatform();
    const top = await this.layers.addImageLayer(null, {
      open: async () => (file === '-' ? process.stdin : createReadStream(file, { highWaterMark: 1 << 20 })),
      label: file,
    });
    const config: ImageConfig = {
      architecture: plat.architecture,
      os: plat.os,
      ...(plat.variant ? { variant: plat.variant } : {}),
      created,
      config: {},
      rootfs: { type: 'layers', diff_ids: [top.diffID!] },
      history: [{ created, created_by: '', comment: opts.message ?? `Imported from ${file === '-' ? '-' : resolve(file)}` }],
    };
    const bytes = Buffer.from(JSON.stringify(config));
    const id = sha256(bytes);
    this.images.add({ id, config: bytes, topLayer: top.id, manifest: null }, ref ? [storedName(ref)] : []);
    this.layers.adopted();
    return id;
  }

  // ---------------------------------------------------------------- containers

  /** `create`: an `-init` layer with Docker's files, then the container's read-write layer. */
  async createContainer(imageRef: string, opts: CreateOptions = {}): Promise<ContainerRecord> {
    const img = this.images.resolve(imageRef);
    const cfg = parseConfig(img);
    const id = randomBytes(32).toString('hex');
    const name = opts.name ?? this.freeName();
    // Docker's naming: the read-write layer has a random id, its init layer that id + "-init".
    const rwId = newId();
    const init = await this.layers.createReadWrite(img.topLayer, 'init', undefined, `${rwId}-init`);
    let rw: LayerRecord | null = null;
    try {
      const initRoot = await this.driver.get(init.id);
      try {
        await setupInitLayer(initRoot);
      } finally {
        await this.driver.put(init.id);
      }
      const rwLayer = await this.layers.createReadWrite(init.id, 'container', opts.storageOpt ? { storageOpt: opts.storageOpt } : undefined, rwId);
      rw = rwLayer;
      const entry = [...(cfg.config?.Entrypoint ?? []), ...(cfg.config?.Cmd ?? [])];
      writeTx(this.db, () => {
      this.containers.insert({
        id,
        name,
        imageId: img.id,
        initLayer: init.id,
        layer: rwLayer.id,
        state: 'created',
        owner: null,
        created: now(),
        config: {
          hostname: opts.hostname ?? id.slice(0, 12),
          storageOpt: opts.storageOpt ?? {},
          path: entry[0] ?? '',
          args: entry.slice(1),
          imageRef,
        },
      });
      this.layers.markComplete([init.id, rwLayer.id]);
      });
    } catch (err) {
      if (rw) await this.layers.destroy(rw.id).catch(() => undefined);
      await this.layers.destroy(init.id).catch(() => undefined);
      throw err;
    }
    return this.containers.get(id)!;
  }

  private freeName(): string {
    for (;;) {
      const n = randomName();
      try {
        this.containers.resolve(n);
      } catch {
        return n;
      }
    }
  }

  listContainers(): ContainerRecord[] {
    return this.containers.list().filter((c) => c.state === 'created');
  }

  async removeContainer(ref: string): Promise<string> {
    const c = this.containers.resolve(ref);
    this.containers.setState(c.id, 'removing', ownerId());
    await this.destroyContainer(c);
    return c.id;
  }

  /** Remove a container's layers and record; safe to repeat after a crash part-way through. */
  private async destroyContainer(c: ContainerRecord): Promise<void> {
    const ids = [c.layer, c.initLayer].filter((id) => this.layers.byId(id));
    await this.layers.destroyContainerLayers(ids, () => this.containers.delete(c.id));
  }

  /** `mount`: the container's root, mounted until `umount`. */
  async mount(ref: string): Promise<string> {
    const c = this.containers.resolve(ref);
    return this.driver.get(c.layer);
  }

  async unmount(ref: string): Promise<void> {
    const c = this.containers.resolve(ref);
    await this.driver.put(c.layer);
  }

  /** `diff`: what the container changed, against its image plus init layer. */
  async diff(ref: string): Promise<Change[]> {
    const c = this.containers.resolve(ref);
    const changes = await this.driver.changes(c.layer, c.initLayer);
    return changes.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  /** `commit`: a new image whose new top layer is the container's changes. */
  async commit(ref: string, newRef?: string, opts: CommitOptions = {}): Promise<string> {
    const c = this.containers.resolve(ref);
    const img = this.images.get(c.imageId);
    if (!img) throw new StrataError(`image ${c.imageId} of container ${c.name} is gone`);
    const names = newRef ? [storedName(newRef)] : [];
    const cfg = parseConfig(img);
    const parent = img.topLayer ? this.layers.byId(img.topLayer)! : null;
    const layer = await this.layers.addImageLayer(parent, {
      open: () => this.driver.diff(c.layer, c.initLayer),
      label: `commit of ${c.name}`,
    });
    const created = now();
    const config: ImageConfig = {
      ...cfg,
      created,
      container: c.id,
      rootfs: { type: 'layers', diff_ids: [...cfg.rootfs.diff_ids, layer.diffID!] },
      history: [
        ...(cfg.history ?? []),
        {
          created,
          ...(opts.author ? { author: opts.author } : {}),
          created_by: [c.config.path, ...c.config.args].join(' '),
          ...(opts.message ? { comment: opts.message } : {}),
        },
      ],
    };
    if (opts.author) config.author = opts.author;
    const bytes = Buffer.from(JSON.stringify(config));
    const id = sha256(bytes);
    this.images.add({ id, config: bytes, topLayer: layer.id, manifest: null }, names);
    this.layers.adopted();
    return id;
  }

  /** `export`: the container's whole root filesystem as one tar. */
  async exportContainer(ref: string, out: Writable): Promise<void> {
    const c = this.containers.resolve(ref);
    const root = await this.driver.get(c.layer);
    try {
      await pipeline(packDirectory(root), out);
    } finally {
      await this.driver.put(c.layer);
    }
  }

  async inspectContainer(ref: string): Promise<Record<string, unknown>> {
    const c = this.containers.resolve(ref);
    const img = this.images.get(c.imageId);
    const cfg = img ? parseConfig(img) : null;
    return {
      Id: c.id,
      Created: c.created,
      Path: c.config.path,
      Args: c.config.args,
      State: { Status: 'created', Running: false, Paused: false, Restarting: false, OOMKilled: false, Dead: false, Pid: 0, ExitCode: 0, Error: '', StartedAt: '0001-01-01T00:00:00Z', FinishedAt: '0001-01-01T00:00:00Z' },
      Image: c.imageId,
      Name: `/${c.name}`,
      Driver: this.driver.name,
      HostConfig: { StorageOpt: Object.keys(c.config.storageOpt).length ? c.config.storageOpt : null },
      GraphDriver: { Name: this.driver.name, Data: await this.driver.metadata(c.layer) },
      Config: { Hostname: c.config.hostname, Image: c.imageRef, ...(cfg?.config ?? {}) },
    };
  }

  // ---------------------------------------------------------------- system

  /**
   * `check`: every image's layer chain is complete and on disk with its tar-split, every
   * container's layers exist. With repair, containers and images that cannot work any more
   * are removed (what is left of them with them), so the store is consistent again.
   */
  async check(opts: { repair?: boolean } = {}): Promise<{ problems: string[]; repaired: string[] }> {
    const problems: string[] = [];
    const repaired: string[] = [];
    const broken = async (layerId: string | null): Promise<string | null> => {
      let cur = layerId;
      while (cur) {
        const l = this.layers.byId(cur);
        if (!l) return `layer ${cur} is missing from the database`;
        if (l.state !== 'complete') return `layer ${cur} is ${l.state}`;
        if (!(await this.driver.exists(cur))) return `layer ${cur} has no ${this.driver.name} data`;
        if (l.kind === 'image' && !existsSync(tarSplitPath(this.root, cur))) return `layer ${cur} has no tar-split (save and push cannot rebuild it)`;
        cur = l.parent;
      }
      return null;
    };
    for (const c of this.listContainers()) {
      const why = await broken(c.layer);
      if (!why) continue;
      problems.push(`container ${c.id.slice(0, 12)} (${c.name}): ${why}`);
      if (opts.repair) {
        this.containers.setState(c.id, 'removing', ownerId());
        await this.destroyContainer(c);
        repaired.push(`removed container ${c.id.slice(0, 12)}`);
      }
    }
    for (const img of this.images.list()) {
      const why = await broken(img.topLayer);
      if (!why) continue;
      problems.push(`image ${img.id.slice(7, 19)}: ${why}`);
      if (opts.repair) {
        if (this.containers.byImage(img.id).length > 0) continue;
        this.images.delete(img.id);
        repaired.push(`removed image ${img.id.slice(7, 19)}`);
        // Whatever part of its chain is still sound and unused goes too.
        try {
          await this.layers.release(img.topLayer);
        } catch {
          // a layer it shares with a sound image stays
        }
      }
    }
    return { problems, repaired };
  }


  /** `system df`: disk used by images (shared layers once) and by containers' own layers. */
  async diskUsage(): Promise<{
    images: { id: string; names: string[]; size: number; shared: number; unique: number; containers: number }[];
    containers: { id: string; name: string; image: string; size: number }[];
    imagesSize: number;
    reclaimableImages: number;
  }> {
    const all = this.images.list();
    const users = new Map<string, number>();
    for (const c of this.listContainers()) users.set(c.imageId, (users.get(c.imageId) ?? 0) + 1);
    const layerUse = new Map<string, number>();
    for (const img of all) for (const l of this.layers.ancestry(img.topLayer)) layerUse.set(l.id, (layerUse.get(l.id) ?? 0) + 1);
    const images = all.map((img) => {
      const chain = this.layers.ancestry(img.topLayer);
      const size = chain.reduce((n, l) => n + l.contentSize, 0);
      const shared = chain.filter((l) => (layerUse.get(l.id) ?? 0) > 1).reduce((n, l) => n + l.contentSize, 0);
      return { id: img.id, names: this.images.names(img.id), size, shared, unique: size - shared, containers: users.get(img.id) ?? 0 };
    });
    const counted = new Set<string>();
    let imagesSize = 0;
    let inUse = 0;
    const inUseLayers = new Set<string>();
    for (const img of all) if (users.has(img.id)) for (const l of this.layers.ancestry(img.topLayer)) inUseLayers.add(l.id);
    for (const img of all) {
      for (const l of this.layers.ancestry(img.topLayer)) {
        if (counted.has(l.id)) continue;
        counted.add(l.id);
        imagesSize += l.contentSize;
        if (inUseLayers.has(l.id)) inUse += l.contentSize;
      }
    }
    const containers = [];
    for (const c of this.listContainers()) {
      containers.push({ id: c.id, name: c.name, image: c.imageRef, size: await this.driver.diffSize(c.layer, c.initLayer) });
    }
    return { images, containers, imagesSize, reclaimableImages: imagesSize - inUse };
  }

  /** `system prune`: every container (none runs), then dangling images (all unused ones with `all`). */
  async prune(opts: { all?: boolean } = {}): Promise<{ containers: string[]; images: RemovedImage; reclaimed: number }> {
    const used = async () => {
      const du = await this.diskUsage();
      return du.imagesSize + du.containers.reduce((n, c) => n + c.size, 0);
    };
    const before = await used();
    const containers: string[] = [];
    for (const c of this.listContainers()) containers.push(await this.removeContainer(c.id));
    const images: RemovedImage = { untagged: [], deleted: [] };
    // Children before parents, so that shared layers go with the last image using them.
    let again = true;
    while (again) {
      again = false;
      for (const img of this.listImages({ all: true })) {
        if (!opts.all && !img.dangling) continue;
        const top = this.images.get(img.id)?.topLayer;
        if (top && this.layers.hasChildren(top)) continue;
        const r = await this.removeImage(img.id, { force: true });
        images.untagged.push(...r.untagged);
        images.deleted.push(...r.deleted);
        again = true;
      }
    }
    return { containers, images, reclaimed: before - (await used()) };
  }

  async info(): Promise<{ driver: string; status: [string, string][]; root: string; images: number; layers: number; containers: number }> {
    return {
      driver: this.driver.name,
      status: await this.driver.status(),
      root: this.root,
      images: this.images.count(),
      layers: this.layers.countImageLayers(),
      containers: this.containers.count(),
    };
  }
}

