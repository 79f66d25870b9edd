// The store: what every command and every library user talks to. It ties the metadata
// database, the layer/image/container records and the storage driver together.
import { randomBytes } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readdirSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Change } from '../archive/changes.js';
import { packDirectory } from '../archive/pack.js';
import { assembleLayer } from '../archive/tarsplit.js';
import { chooseDriver, DriverError, driverNames, driversWithData, hasDriverData, probeCache } from '../drivers/index.js';
import type { Driver } from '../drivers/driver.js';
import { openImageArchive } from '../image/archive-read.js';
import { writeImageArchive, type ArchiveFormat } from '../image/archive-write.js';
import { hostPlatform } from '../image/platform.js';
import type { ExportImage, ImageSource } from '../image/source.js';
import type { HistoryEntry, ImageConfig } from '../image/types.js';
import { Checker, type CheckResult } from './check.js';
import { containerName, ContainerStore, randomName, type ContainerRecord } from './containers.js';
import { type DB, now, openDatabase, writeTx } from './db.js';
import { ConflictError, InvalidInputError, NotFoundError, StrataError } from './errors.js';
import { ImageStore, familiar, storedName, parseConfig, type ImageRecord } from './images.js';
import { filesAt, setupInitLayer } from './initlayer.js';
import { LayerStore, newId, ParentGoneError, sha256, tarSplitPath, type LayerEvents, type LayerRecord } from './layers.js';
import { ownerAlive, ownerId } from './owner.js';
import { imageForRun, pull, push, type ImagePullOptions, type PullOptions, type PullResult, type PushOptions, type PushResult } from './transfer.js';
import { log } from '../log.js';
import { defaultStrataCommand } from '../self.js';
import { currentMapping, defaultStoreRoot, isRootless, type IdRange } from '../sys/rootless.js';
import type { ExitStatus } from '../runtime/attach.js';
import { hostConfigResources } from '../runtime/resources.js';
import { NO_RESTART } from '../runtime/restart.js';
import { top, type TopResult } from '../runtime/top.js';
import { applyChanges } from '../image/changes.js';
import { copy, type CopyEnd } from './cp.js';
import { execIn, type ExecOptions, type ExecStreams } from './exec.js';
import { dockerStatus, Runner, runConfig, type AttachStreams, type RunConfigOptions } from './run.js';
import { RunStates, type RunState } from './runstate.js';
import { ensureReserve, isNoSpace } from './reserve.js';
import { shortId } from '../reference/digest.js';
import { buildLayerTree, type LayerTree } from './analysis/tree.js';
import type { ImageAnalysis } from './analysis/analyze.js';
import { AnalysisCache } from './analysis/cache.js';
import { copyUps, type CopyUpReport } from './analysis/copyups.js';

export { DEFAULT_ROOT } from './root.js';

/** The diffID of a layer tar with no entries (1024 zero bytes): a commit without changes. */
const EMPTY_TAR_DIFF_ID = 'sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef';

export interface StoreOptions {
  /** Store root (default /var/lib/strata, or ~/.local/share/strata for a user without root). */
  root?: string;
  /** Storage driver name; chosen like Docker when absent. */
  driver?: string;
  /** Global driver options (`--storage-opt k=v`). */
  storageOpts?: Record<string, string>;
  /** Mirrors of Docker Hub for every pull of a docker.io image (daemon.json `registry-mirrors`). */
  registryMirrors?: string[];
  /** Registries every pull and push may reach over plain HTTP (daemon.json `insecure-registries`). */
  insecureRegistries?: string[];
  /** How many layers of one image to extract at once on drivers whose layers are independent (default 3). */
  parallelExtract?: number;
  /**
   * How to start a container's monitor: a command that runs strata's CLI (`node bin/strata.cjs`
   * by default); the store adds its global flags and `__monitor ID`.
   */
  strataCommand?: string[];
}

export interface ImageSummary {
  id: string;
  names: string[];
  repoDigests: string[];
  created: string;
  size: number;
  /** True for images that are only the parent of another (docker's intermediate images). */
  dangling: boolean;
  /** The image config's labels (`images --filter label=`). */
  labels: Record<string, string>;
}

export interface LoadedImage {
  id: string;
  names: string[];
}

export interface RemovedImage {
  untagged: string[];
  deleted: string[];
}

export interface CreateOptions extends RunConfigOptions {
  name?: string;
  storageOpt?: Record<string, string>;
  hostname?: string;
  /** `--pull`/`--platform`: how to get an image the store lacks; without it the store must have it. */
  pull?: ImagePullOptions;
}

/** A container with what it is doing now, for `ps` and the library. */
export interface ContainerSummary extends ContainerRecord {
  run: RunState;
  /** Its labels: those of its image, which docker copies into a container's config. */
  labels: Record<string, string>;
}

export interface CommitOptions {
  message?: string;
  author?: string;
  /** Dockerfile instructions applied to the new image's config (`-c`). */
  changes?: string[];
  /** Pause a running container while its changes are read (docker's default; false to not). */
  pause?: boolean;
}

/**
 * One root, one driver: the layer records name driver ids without saying whose, so a root whose
 * layers another driver holds, opened with `requested`, would fail deep inside a command
 * ("parent layer … does not exist") after making that driver's directories. Docker keeps an
 * image store per driver and shows such a root empty; strata has one, so it refuses in one line
 * naming the driver the root uses.
 */
function refuseOtherDriversRoot(db: DB, root: string, requested: string, others: string[]): void {
  const known = others.filter((n) => n !== requested && driverNames().includes(n));
  if (known.length === 0 || db.prepare('SELECT 1 FROM layers LIMIT 1').get() === undefined) return;
  throw new StrataError(`storage driver ${requested} cannot open ${root}: its images and containers are stored with ${known.join(', ')} (use -s ${known[0]}, or another --root)`, 125);
}

/** openDatabase, with a full disk said in one line. */
function openStoreDatabase(root: string): DB {
  try {
    return openDatabase(root);
  } catch (err) {
    if (!isNoSpace(err)) throw err;
    throw new StrataError(`no space left on device under ${root}: cannot open strata.db; free some space on that filesystem`);
  }
}

/**
 * Making the store root (and any missing parents) and its tmp/ for an open, and undoing it when
 * the driver refuses the root (unusable, a bad storage option, another driver's root): the
 * directories it made and the probe cache that the driver's probes wrote. What was there before
 * stays; directories go only when empty, so nothing another process put there meanwhile is lost.
 */
function rootMaking(root: string): { make(): void; undo(): void } {
  const tmp = join(root, 'tmp');
  const cache = existsSync(probeCache(root)) ? null : probeCache(root);
  const dirs = existsSync(tmp) ? [] : [tmp];
  return {
    make() {
      // Docker's 0710 lets container users reach their layers' files; a user's store is theirs alone.
      const first = mkdirSync(root, { recursive: true, mode: isRootless() ? 0o700 : 0o710 });
      for (let d = root; first !== undefined && d.length >= first.length; d = dirname(d)) dirs.push(d);
      mkdirSync(tmp, { recursive: true, mode: 0o700 });
    },
    undo() {
      if (cache) rmSync(cache, { force: true });
      for (const d of dirs) {
        try {
          rmdirSync(d);
        } catch {
          return; // missing, or not empty: someone else's now
        }
      }
    },
  };
}

export class Store {
  readonly layers: LayerStore;
  readonly images: ImageStore;
  readonly containers: ContainerStore;
  /** This open store's mark in tmp/procs (see sweepAfterCrash). */
  private mark: string | null = null;
  /** Registry settings every pull and push starts from (a call's own options add to them). */
  registry: { mirrors: string[]; insecure: string[] } = { mirrors: [], insecure: [] };
  private readonly runner: Runner;
  private readonly states: RunStates;
  /** Analyses kept between calls of a long-lived reader (`strata ui`); see analysis/cache.ts. */
  private readonly analyses: AnalysisCache;

  private constructor(
    readonly root: string,
    readonly driver: Driver,
    private readonly db: DB,
    parallelExtract: number,
    monitorCommand: string[],
  ) {
    this.layers = new LayerStore(db, driver, root, parallelExtract);
    this.images = new ImageStore(db);
    this.containers = new ContainerStore(db);
    this.states = new RunStates(db);
    this.analyses = new AnalysisCache({ hasImage: (id) => this.images.get(id) !== undefined, hasLayer: (id) => this.layers.byId(id) !== undefined });
    this.runner = new Runner({
      root,
      driver,
      containers: this.containers,
      states: this.states,
      monitorCommand,
      removeContainer: async (id) => {
        const c = this.containers.get(id);
        if (c && c.state === 'created') await this.removeContainer(id, { force: true });
      },
    });
  }

  static async open(opts: StoreOptions = {}): Promise<Store> {
    if (process.geteuid?.() !== 0) {
      // Layer files need their image owners, which only root (of a user namespace) can give.
      throw new StrataError('strata needs root or a user namespace: run it through the strata CLI, or under `strata unshare`');
    }
    const root = resolve(opts.root ?? defaultStoreRoot());
    const requested = opts.driver || undefined;
    const making = rootMaking(root);
    let db: DB | undefined;
    let driver: Driver;
    try {
      // Nothing is made under the root before the driver is accepted: a refusal changes nothing.
      const chosen = await chooseDriver(root, requested);
      // Whether other drivers' data is here matters only to a root without the requested one's.
      const others = requested && !(await hasDriverData(root, chosen.name)) ? await driversWithData(root) : [];
      making.make();
      // Layers another driver holds can only be recorded in a strata.db that exists already;
      // a new one is made only once the driver took the root, so no refusal has one to undo
      // (one that another process opening the same new root might be using).
      if (others.length > 0 && existsSync(join(root, 'strata.db'))) {
        db = openStoreDatabase(root);
        refuseOtherDriversRoot(db, root, chosen.name, others);
      }
      driver = await chosen.open(opts.storageOpts ?? {});
      db ??= openStoreDatabase(root);
    } catch (err) {
      db?.close();
      making.undo();
      throw err;
    }
    const storeFlags = ['--root', root, '--driver', driver.name, ...Object.entries(opts.storageOpts ?? {}).flatMap(([k, v]) => ['--storage-opt', `${k}=${v}`])];
    const store = new Store(root, driver, db, opts.parallelExtract ?? 3, [...(opts.strataCommand ?? defaultStrataCommand()), ...storeFlags]);
    store.registry = { mirrors: opts.registryMirrors ?? [], insecure: opts.insecureRegistries ?? [] };
    log.debug(`store ${root} opened with driver ${driver.name}`);
    await store.recover();
    await store.sweepAfterCrash();
    ensureReserve(root);
    return store;
  }

  async close(): Promise<void> {
    if (this.mark) rmSync(this.mark, { force: true });
    this.mark = null;
    this.db.close();
    ensureReserve(this.root);
  }

  /**
   * Every open store leaves a mark named after its process in tmp/procs and removes it at
   * close. A mark whose process is dead shows that one crashed (or exited without closing):
   * only then does opening pay for a scan of the driver's data, and removes what is nobody's
   * (see Checker.leftovers). Otherwise the cost is one small readdir, one create, one unlink.
   */
  private async sweepAfterCrash(): Promise<void> {
    const dir = join(this.root, 'tmp', 'procs');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const dead = readdirSync(dir).filter((n) => !ownerAlive(n));
    this.mark = join(dir, `${ownerId()}:${randomBytes(4).toString('hex')}`);
    writeFileSync(this.mark, '', { mode: 0o600 });
    if (dead.length === 0) return;
    // The mounts crashed processes held (a kill mid-commit or mid-export) go first, so that
    // the scan below finds them unheld. Best effort, as the rest.
    const crashed = dead.map((n) => n.split(':').slice(0, 2).join(':'));
    await this.driver.releaseCrashed?.(crashed).catch(() => undefined);
    for (const f of await this.checker().leftovers()) {
      // Best effort: another process may be sweeping the same things; `check` reports the rest.
      await f.repair().catch(() => undefined);
    }
    for (const n of dead) rmSync(join(dir, n), { force: true });
  }

  /** Finish or undo what crashed processes left behind. */
  private async recover(): Promise<void> {
    for (const c of this.containers.unfinished()) {
      if (ownerAlive(c.owner)) continue;
      await this.destroyContainer(c);
    }
    await this.layers.recover();
  }

  /**
   * A number that changes whenever another process commits to the store's database (SQLite's
   * data_version): one cheap query tells a long-lived reader (`strata ui`) that it is out of date.
   */
  changeCounter(): number {
    return this.db.pragma('data_version', { simple: true }) as number;
  }

  // ---------------------------------------------------------------- images

  /** Store an image from any source; layers already present are reused. */
  async importImage(
    src: ImageSource,
    events: LayerEvents = {},
    opts: { repoDigests?: string[]; verifyStoredLayers?: boolean } = {},
  ): Promise<LoadedImage> {
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
          label: shortId(l.digest ?? diffIDs[i]),
          size: l.size,
          verifyIfStored: opts.verifyStoredLayers === true,
        })),
        events,
      );
      // A concurrent `rmi` may have released the layers between their creation and this point:
      // checked in the same transaction as the image is added, so that either the image holds
      // them or we start over (waiting for the removal, then making them again).
      const added = writeTx(this.db, () => {
        if (top && this.layers.byId(top.id)?.state !== 'complete') return false;
        this.images.add({ id, config: src.config, topLayer: top?.id ?? null, manifest: src.manifest ?? null }, names, opts.repoDigests ?? []);
        return true;
      });
      if (!added) continue;
      this.layers.adopted();
      src.layers.forEach((l, i) => {
        if (l.digest && l.size !== undefined) this.layers.recordBlob(diffIDs[i], { digest: l.digest, mediaType: l.mediaType, size: l.size });
      });
      return { id, names };
    }
  }

  /** `pull`: an image from its registry into the store, progress as Docker's events. */
  pull(ref: string, opts: PullOptions = {}): Promise<PullResult> {
    return pull(this, ref, { registryMirrors: this.registry.mirrors, ...opts, insecureRegistries: [...this.registry.insecure, ...(opts.insecureRegistries ?? [])] });
  }

  /** `push`: a named image of the store to the registry the name points at. */
  push(ref: string, opts: PushOptions = {}): Promise<PushResult> {
    return push(this, ref, { ...opts, insecureRegistries: [...this.registry.insecure, ...(opts.insecureRegistries ?? [])] });
  }

  /** The image `ref` names (a name, an ID or its prefix); NotFoundError when none. */
  getImage(ref: string): ImageSummary {
    const img = this.images.resolve(ref);
    return this.summarize(img, this.images.names(img.id), this.images.repoDigests(img.id));
  }

  /** `load -i FILE`: every image of a docker-archive or OCI archive. */
  async load(file: string, opts: { platform?: string } = {}, events: LayerEvents = {}): Promise<LoadedImage[]> {
    const sources = await openImageArchive(file, opts);
    const out: LoadedImage[] = [];
    // Every layer of an archive is read and checked, stored already or not, as `docker load` does.
    for (const src of sources) out.push(await this.importImage(src, events, { verifyStoredLayers: true }));
    return out;
  }

  listImages(opts: { all?: boolean } = {}): ImageSummary[] {
    // One read snapshot: images and layers that other processes remove meanwhile are either
    // listed whole or not at all.
    return this.db.transaction(() => this.listImagesIn(opts))();
  }

  private listImagesIn(opts: { all?: boolean }): ImageSummary[] {
    const images = this.images.list();
    // Images share layers: each chain is read once per listing, not twice per image.
    const chains = new Map<string, LayerRecord[]>();
    const chain = (top: string | null): LayerRecord[] => {
      if (top === null) return [];
      let c = chains.get(top);
      if (!c) chains.set(top, (c = this.layers.ancestry(top)));
      return c;
    };
    // Docker hides untagged images that are only the parent of another image (intermediates).
    const parents = new Set<string>();
    for (const img of images) for (const l of chain(img.topLayer).slice(1)) parents.add(l.id);
    const all = this.images.allNames();
    const out: ImageSummary[] = [];
    for (const img of images) {
      const names = all.names.get(img.id) ?? [];
      if (!opts.all && names.length === 0 && img.topLayer && parents.has(img.topLayer)) continue;
      out.push(this.summarize(img, names, all.repoDigests.get(img.id) ?? [], chain(img.topLayer)));
    }
    return out;
  }

  private summarize(img: ImageRecord, names: string[], repoDigests: string[], chain = this.layers.ancestry(img.topLayer)): ImageSummary {
    const cfg = parseConfig(img);
    return {
      id: img.id,
      names,
      repoDigests,
      created: cfg.created ?? img.created,
      size: chain.reduce((n, l) => n + l.contentSize, 0),
      dangling: names.length === 0,
      labels: cfg.config?.Labels ?? {},
    };
  }

  imageSize(img: ImageRecord): number {
    return this.layers.ancestry(img.topLayer).reduce((n, l) => n + l.contentSize, 0);
  }

  imageLayers(img: ImageRecord): LayerRecord[] {
    return this.layers.ancestry(img.topLayer).reverse();
  }

  tag(source: string, target: string): void {
    const img = this.images.lookup(source);
    this.images.setName(storedName(target), img.id);
  }

  /**
   * `rmi`, with docker's rules: a name removes that name, and the image with its last name unless
   * a running container or a child image (commit's Parent) still needs it (then it stays,
   * untagged). An ID removes the image with all its names. Stopped containers using the image
   * refuse either unless forced (forced, they outlive it, as docker's do); running containers
   * and child images refuse an ID even when forced.
   */
  async removeImage(ref: string, opts: { force?: boolean } = {}): Promise<RemovedImage> {
    const img = this.images.resolve(ref);
    const result: RemovedImage = { untagged: [], deleted: [] };
    const short = img.id.slice(7, 19);
    let byName: string | null = null;
    try {
      const n = storedName(ref);
      if (this.images.names(img.id).includes(n)) byName = n;
    } catch {
      byName = null;
    }
    /** Remove one name only; the image stays. */
    const untag = (n: string): false => {
      this.images.removeName(n);
      result.untagged.push(familiar(n));
      return false;
    };
    // The checks, the delete and the claim of the layers only this image used are one
    // transaction: a `create` in another process either sees the image gone or makes its
    // container before this refuses, and a crash after it leaves layers marked for removal
    // (finished at the next open), never layers that no image uses.
    const doomed = writeTx(this.db, () => {
      const names = this.images.names(img.id);
      const users = this.containers.byImage(img.id).filter((c) => c.state === 'created');
      const running = users.find((c) => ['running', 'paused'].includes(this.states.current(c.id).status));
      const children = this.images.children(img.id);
      if (byName) {
        if (names.length > 1) return untag(byName);
        if (users.length > 0 && !opts.force) {
          throw new ConflictError(`conflict: unable to remove repository reference "${ref}" (must force) - container ${users[0].id.slice(0, 12)} is using its referenced image ${short}`);
        }
        if (running || children.length > 0) return untag(byName);
      } else {
        if (names.length > 1 && !opts.force) throw new ConflictError(`conflict: unable to delete ${short} (must be forced) - image is referenced in multiple repositories`);
        if (children.length > 0) throw new ConflictError(`conflict: unable to delete ${short} (cannot be forced) - image has dependent child images`);
        if (running) throw new ConflictError(`conflict: unable to delete ${short} (cannot be forced) - image is being used by running container ${running.id.slice(0, 12)}`);
        if (users.length > 0 && !opts.force) throw new ConflictError(`conflict: unable to delete ${short} (must be forced) - image is being used by stopped container ${users[0].id.slice(0, 12)}`);
      }
      for (const n of names) result.untagged.push(familiar(n));
      for (const d of this.images.repoDigests(img.id)) result.untagged.push(d);
      if (!this.images.delete(img.id)) throw new NotFoundError(`No such image: ${ref}`);
      return this.layers.claimUnused([img.topLayer]);
    });
    if (doomed === false) return result;
    result.deleted.push(img.id);
    for (const chain of await this.layers.removeClaimed(doomed)) result.deleted.push(chain);
    return result;
  }

  /** The image and the images it was made from (commit's Parent), nearest first, while they are stored. */
  imageLineage(id: string): string[] {
    const out: string[] = [];
    for (let cur: string | null = id; cur && this.images.get(cur) && !out.includes(cur); cur = this.images.parent(cur)) out.push(cur);
    return out;
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
      Parent: this.images.parent(img.id) ?? '',
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
    const img = this.images.lookup(ref);
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
    // docker names one row per image of the lineage, newest first: the image, its parent, …
    this.imageLineage(img.id).forEach((id, i) => {
      if (rows[i]) rows[i].id = id;
    });
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
  async importTarball(file: string, ref?: string, opts: { message?: string; changes?: string[] } = {}): Promise<string> {
    const runConfig = applyChanges({}, opts.changes ?? []);
    if (file !== '-') {
      const st = statSync(file, { throwIfNoEntry: false });
      if (!st) throw new NotFoundError(`open ${file}: no such file or directory`);
      if (st.isDirectory()) throw new InvalidInputError(`read ${file}: is a directory`);
    }
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
      config: runConfig,
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

  /**
   * `create`: an `-init` layer with Docker's files, then the container's read-write layer. What
   * it will run (command, env, user, …) is resolved against the image now, as Docker does.
   * `id` is chosen by the caller when `run` has started the container's monitor already.
   */
  async createContainer(imageRef: string, opts: CreateOptions = {}, id = randomBytes(32).toString('hex')): Promise<ContainerRecord> {
    const img = opts.pull ? this.images.get(await imageForRun(this, imageRef, opts.pull)) : this.images.resolve(imageRef);
    // Removed by another process since it was found or pulled.
    if (!img) throw new NotFoundError(`No such image: ${imageRef}`);
    // Docker looks the image up (and pulls it) first, then checks the name: before any layer is made.
    const name = opts.name === undefined ? this.freeName() : containerName(opts.name);
    const cfg = parseConfig(img);
    const hostname = opts.hostname ?? id.slice(0, 12);
    const { process: proc, host } = runConfig(cfg.config, hostname, opts);
    // Docker's naming: the read-write layer has a random id, its init layer that id + "-init".
    const rwId = newId();
    let init: LayerRecord;
    try {
      init = await this.layers.createReadWrite(img.topLayer, 'init', undefined, `${rwId}-init`);
    } catch (err) {
      // An `rmi` in another process is removing the image's layers.
      if (err instanceof ParentGoneError) throw new NotFoundError(`No such image: ${imageRef}`);
      throw err;
    }
    let rw: LayerRecord | null = null;
    try {
      const unmounted = await this.driver.unmountedFiles?.(init.id);
      if (unmounted) {
        await setupInitLayer(unmounted);
      } else {
        const initRoot = await this.driver.get(init.id);
        try {
          await setupInitLayer(filesAt(initRoot));
        } finally {
          await this.driver.put(init.id);
        }
      }
      const rwLayer = await this.layers
        .createReadWrite(init.id, 'container', opts.storageOpt ? { storageOpt: opts.storageOpt } : undefined, rwId)
        .catch((err: unknown) => {
          // The driver refusing --storage-opt is bad input (Docker: exit 1 for create, 125 for run).
          throw opts.storageOpt && err instanceof DriverError ? new InvalidInputError(err.message) : err;
        });
      rw = rwLayer;
      writeTx(this.db, () => {
      if (!this.images.get(img.id)) throw new NotFoundError(`No such image: ${imageRef}`);
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
          hostname,
          storageOpt: opts.storageOpt ?? {},
          path: proc.args[0]!,
          args: proc.args.slice(1),
          imageRef,
          process: proc,
          host,
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

  /** `run`: create, then start; with streams, attached until the process exits. */
  async run(imageRef: string, opts: CreateOptions = {}, attach?: AttachStreams): Promise<{ container: ContainerRecord; exit: ExitStatus | null }> {
    // The monitor, a process of its own, starts up while the container is made.
    const id = randomBytes(32).toString('hex');
    const monitor = this.runner.launchMonitor(id, attach !== undefined, true);
    let c: ContainerRecord;
    try {
      c = await this.createContainer(imageRef, opts, id);
    } catch (err) {
      await monitor.cancel();
      throw err;
    }
    try {
      return { container: c, exit: await this.runner.start(c, attach, monitor) };
    } catch (err) {
      if (opts.autoRemove) await this.removeContainer(c.id, { force: true }).catch(() => undefined);
      throw err;
    }
  }

  /** `start`: run the container's process again, in the same read-write layer. */
  start(ref: string, attach?: AttachStreams): Promise<ExitStatus | null> {
    return this.runner.start(this.containers.resolve(ref), attach);
  }

  /** `stop`: the stop signal, then SIGKILL after `timeoutSec` (10; -1 waits for ever). */
  stop(ref: string, opts: { timeoutSec?: number; signal?: string } = {}): Promise<void> {
    return this.runner.stop(this.containers.resolve(ref), opts.timeoutSec, opts.signal);
  }

  async restart(ref: string, opts: { timeoutSec?: number } = {}): Promise<void> {
    const c = this.containers.resolve(ref);
    await this.runner.stop(c, opts.timeoutSec);
    await this.runner.start(c);
  }

  kill(ref: string, signal?: string): Promise<void> {
    return this.runner.kill(this.containers.resolve(ref), signal);
  }

  pause(ref: string): Promise<void> {
    return this.runner.pause(this.containers.resolve(ref));
  }

  unpause(ref: string): Promise<void> {
    return this.runner.unpause(this.containers.resolve(ref));
  }

  /**
   * `rename`: running or not. A running container keeps its hostname (as docker's does); its
   * config.v2.json, which tools read for the name, is written again.
   */
  renameContainer(ref: string, newName: string): void {
    if (!ref.trim() || !newName.trim()) throw new InvalidInputError('Neither old nor new names may be empty');
    const c = this.containers.resolve(ref.trim());
    this.containers.rename(c.id, newName.trim());
    this.runner.nameChanged(c.id);
  }

  /** `cp`: between a container's root (running or not) and the host, or a tar stream (`-`). */
  copy(src: CopyEnd | '-', dst: CopyEnd | '-', io: { stdin?: Readable; stdout?: Writable } = {}): Promise<void> {
    return copy({ mount: (r) => this.mount(r), unmount: (r) => this.unmount(r) }, src, dst, io);
  }

  /** `top`: the container's processes as the host's `ps` (with `psArgs`, `-ef` by default) shows them. */
  async top(ref: string, psArgs: string[] = []): Promise<TopResult> {
    const c = this.containers.resolve(ref);
    if (!this.runner.isRunning(c.id)) throw new ConflictError(`Container ${c.id} is not running`);
    return top(this.runner.runc(c), c.id, psArgs);
  }

  /** `exec`: another process in the running container; its exit status, or null with -d. */
  exec(ref: string, opts: ExecOptions, streams?: ExecStreams): Promise<ExitStatus | null> {
    return execIn(this.runner, this.containers.resolve(ref), opts, streams);
  }

  /** `wait`: the exit code, once the container has stopped. */
  wait(ref: string): Promise<number> {
    return this.runner.wait(this.containers.resolve(ref));
  }

  attach(ref: string, streams: AttachStreams): Promise<ExitStatus> {
    const c = this.containers.resolve(ref);
    if (!this.runner.isRunning(c.id)) throw new ConflictError('You cannot attach to a stopped container, start it first');
    return this.runner.attach(c, streams, false);
  }

  logs(ref: string, out: { stdout: Writable; stderr: Writable }, opts: Parameters<Runner['logs']>[2] = {}): Promise<void> {
    return this.runner.logs(this.containers.resolve(ref), out, opts);
  }

  /** What the container is doing now. */
  containerState(ref: string): RunState {
    return this.runner.state(this.containers.resolve(ref).id);
  }

  /**
   * The body of `strata __monitor ID`: the process that watches one running container. `made`:
   * for a monitor started before its container (`run`), whether it was made after all.
   */
  monitorContainer(id: string, waitForAttach: boolean, made?: Promise<boolean>): Promise<void> {
    return this.runner.monitor(id, waitForAttach, made);
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

  /** The container `ref` names (name, ID or ID prefix); NotFoundError when none. */
  getContainer(ref: string): ContainerRecord {
    return this.containers.resolve(ref);
  }

  /**
   * `ps -s`: the bytes the container's read-write layer holds, and its virtual size (that plus
   * the image's layers below it, which stay while the container does even when its image is gone).
   */
  async containerSize(ref: string): Promise<{ rw: number; rootFs: number }> {
    const c = this.containers.resolve(ref);
    const rw = await this.driver.diffSize(c.layer, c.initLayer);
    const image = this.layers.ancestry(this.layers.byId(c.initLayer)?.parent ?? null);
    return { rw, rootFs: rw + image.reduce((n, l) => n + l.contentSize, 0) };
  }

  listContainers(): ContainerSummary[] {
    // One read snapshot: a container and its state are listed as they were at one moment.
    return this.db.transaction(() => this.listContainersIn())();
  }

  private listContainersIn(): ContainerSummary[] {
    const states = this.states.all();
    const labels = new Map<string, Record<string, string>>();
    const labelsOf = (imageId: string) => {
      if (!labels.has(imageId)) {
        const img = this.images.get(imageId);
        labels.set(imageId, (img && parseConfig(img).config?.Labels) || {});
      }
      return labels.get(imageId)!;
    };
    return this.containers
      .list()
      .filter((c) => c.state === 'created')
      .map((c) => ({ ...c, run: states.get(c.id) ?? RunStates.fresh(), labels: labelsOf(c.imageId) }));
  }

  /** `rm`: refused while the container runs, unless forced (then it is killed first). */
  async removeContainer(ref: string, opts: { force?: boolean } = {}): Promise<string> {
    const running = this.containers.resolve(ref);
    if (this.runner.isRunning(running.id)) {
      if (!opts.force) {
        throw new ConflictError(`You cannot remove a running container ${running.id}. Stop the container before attempting removal or force remove`);
      }
      await this.runner.stop(running, 0, 'SIGKILL');
    }
    const c = writeTx(this.db, () => {
      // Resolved and marked in one transaction: of two removals, the second finds nothing.
      const found = this.containers.resolve(ref);
      this.containers.setState(found.id, 'removing', ownerId());
      return found;
    });
    await this.destroyContainer(c);
    return c.id;
  }

  /**
   * Run fn on a container that another process may remove meanwhile (`rm -f`): whatever fails
   * because its layers vanished is reported as the container being gone.
   */
  private async onContainer<T>(ref: string, fn: (c: ContainerRecord) => Promise<T>): Promise<T> {
    const c = this.containers.resolve(ref);
    try {
      return await fn(c);
    } catch (err) {
      if (this.containers.get(c.id)?.state !== 'created') throw new NotFoundError(`No such container: ${ref}`);
      throw err;
    }
  }

  /**
   * Remove a container's layers and record; safe to repeat after a crash part-way through. The
   * image layers below go too when the container outlived its image (`rmi -f`).
   */
  private async destroyContainer(c: ContainerRecord): Promise<void> {
    await this.runner.forget(c);
    rmSync(this.runner.containerDir(c.id), { recursive: true, force: true });
    const image = this.layers.byId(c.initLayer)?.parent ?? null;
    const ids = [c.layer, c.initLayer].filter((id) => this.layers.byId(id));
    await this.layers.destroyContainerLayers(ids, () => this.containers.delete(c.id));
    if (image && !this.images.get(c.imageId)) await this.layers.release(image);
  }

  /** `mount`: the container's root, mounted until `umount`. */
  async mount(ref: string): Promise<string> {
    return this.onContainer(ref, async (c) => {
      const path = await this.driver.get(c.layer);
      // Removed while it was being mounted: give the mount back rather than leave it on a
      // layer that is being deleted.
      if (this.containers.get(c.id)?.state !== 'created') {
        await this.driver.put(c.layer).catch(() => undefined);
        throw new NotFoundError(`No such container: ${ref}`);
      }
      return path;
    });
  }

  async unmount(ref: string): Promise<void> {
    const c = this.containers.resolve(ref);
    await this.driver.put(c.layer);
  }

  /** `diff`: what the container changed, against its image plus init layer. */
  async diff(ref: string): Promise<Change[]> {
    const changes = await this.onContainer(ref, (c) => this.driver.changes(c.layer, c.initLayer));
    return changes.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  /** `commit`: a new image whose new top layer is the container's changes. */
  async commit(ref: string, newRef?: string, opts: CommitOptions = {}): Promise<string> {
    return this.onContainer(ref, async (c) => {
      // Frozen while read, so the layer is one moment's state of a running container.
      const pause = opts.pause !== false && this.runner.state(c.id).status === 'running';
      if (pause) await this.runner.pause(c);
      try {
        return await this.commitContainer(c, ref, newRef, opts);
      } finally {
        if (pause) await this.runner.unpause(c);
      }
    });
  }

  private async commitContainer(c: ContainerRecord, ref: string, newRef: string | undefined, opts: CommitOptions): Promise<string> {
    const img = this.images.get(c.imageId);
    if (!img) throw new StrataError(`image ${c.imageId} of container ${c.name} is gone`);
    const names = newRef ? [storedName(newRef)] : [];
    const cfg = parseConfig(img);
    // Docker commits the container's Entrypoint and Cmd (`create IMAGE CMD…`), not the image's.
    const proc = c.config.process;
    const own = proc?.cmd && proc.entrypoint ? { Entrypoint: proc.entrypoint.length ? proc.entrypoint : null, Cmd: proc.cmd.length ? proc.cmd : null } : {};
    const runConfig = applyChanges({ ...(cfg.config ?? {}), ...own }, opts.changes ?? []);
    const parent = img.topLayer ? this.layers.byId(img.topLayer)! : null;
    const layer = await this.layers.addImageLayer(parent, {
      open: () => this.driver.diff(c.layer, c.initLayer),
      label: `commit of ${c.name}`,
    });
    // No changes: as docker does, the image gets no layer of its own, only a history entry.
    const empty = layer.diffID === EMPTY_TAR_DIFF_ID;
    const created = now();
    const config: ImageConfig = {
      ...cfg,
      created,
      container: c.id,
      config: runConfig,
      rootfs: { type: 'layers', diff_ids: empty ? cfg.rootfs.diff_ids : [...cfg.rootfs.diff_ids, layer.diffID!] },
      history: [
        ...(cfg.history ?? []),
        {
          created,
          ...(opts.author ? { author: opts.author } : {}),
          created_by: [c.config.path, ...c.config.args].join(' '),
          ...(opts.message ? { comment: opts.message } : {}),
          ...(empty ? { empty_layer: true } : {}),
        },
      ],
    };
    if (opts.author) config.author = opts.author;
    const bytes = Buffer.from(JSON.stringify(config));
    const id = sha256(bytes);
    // A container removed while its diff was read may have given a cut-short changeset: such
    // a layer never becomes an image.
    const added = writeTx(this.db, () => {
      if (this.containers.get(c.id)?.state !== 'created') return false;
      this.images.add({ id, config: bytes, topLayer: empty ? img.topLayer : layer.id, manifest: null }, names);
      this.images.setParent(id, img.id);
      return true;
    });
    if (!added || empty) await this.layers.release(layer.id);
    if (!added) throw new NotFoundError(`No such container: ${ref}`);
    this.layers.adopted();
    return id;
  }

  /** `export`: the container's whole root filesystem as one tar. */
  async exportContainer(ref: string, out: Writable): Promise<void> {
    await this.onContainer(ref, async (c) => {
      const root = await this.driver.get(c.layer);
      try {
        await pipeline(packDirectory(root), out);
      } finally {
        await this.driver.put(c.layer);
      }
    });
  }

  async inspectContainer(ref: string): Promise<Record<string, unknown>> {
    const c = this.containers.resolve(ref);
    const st = this.runner.state(c.id);
    const img = this.images.get(c.imageId);
    const cfg = img ? parseConfig(img) : null;
    return {
      Id: c.id,
      Created: c.created,
      Path: c.config.path,
      Args: c.config.args,
      State: {
        Status: dockerStatus(st),
        Running: st.status === 'running' || st.status === 'paused',
        Paused: st.status === 'paused',
        Restarting: dockerStatus(st) === 'restarting',
        OOMKilled: this.runner.oomKilled(c.id),
        Dead: false,
        Pid: st.process ? Number(st.process.split(':')[0]) : 0,
        ExitCode: st.exitCode,
        Error: st.error,
        StartedAt: st.startedAt,
        FinishedAt: st.finishedAt,
      },
      Image: c.imageId,
      Name: `/${c.name}`,
      RestartCount: this.runner.restartCount(c.id),
      Driver: this.driver.name,
      HostConfig: {
        Binds: c.config.host ? c.config.host.binds.map((b) => `${b.source}:${b.destination}${b.readOnly ? ':ro' : ''}`) : null,
        NetworkMode: c.config.host?.network ?? 'none',
        PortBindings: Object.fromEntries((c.config.host?.ports ?? []).map((p) => [`${p.containerPort}/${p.proto}`, [{ HostIp: p.hostIp, HostPort: p.hostPort ? String(p.hostPort) : '' }]])),
        AutoRemove: c.config.host?.autoRemove ?? false,
        ReadonlyRootfs: c.config.host?.readOnly ?? false,
        Init: c.config.host?.init ?? null,
        Runtime: c.config.host?.runtime ?? 'runc',
        StorageOpt: Object.keys(c.config.storageOpt).length ? c.config.storageOpt : null,
        ...hostConfigResources(c.config.host?.resources),
        RestartPolicy: c.config.host?.restart ?? NO_RESTART,
      },
      GraphDriver: { Name: this.driver.name, Data: await this.driver.metadata(c.layer) },
      Config: {
        Hostname: c.config.hostname,
        Image: c.imageRef,
        ...(cfg?.config ?? {}),
        ...(c.config.process
          ? {
              User: c.config.process.user,
              Tty: c.config.process.tty,
              OpenStdin: c.config.process.openStdin,
              Env: c.config.process.env,
              // Containers made before create kept Entrypoint and Cmd apart show the whole command.
              Cmd: c.config.process.cmd ? (c.config.process.cmd.length ? c.config.process.cmd : null) : c.config.process.args,
              ...(c.config.process.entrypoint ? { Entrypoint: c.config.process.entrypoint.length ? c.config.process.entrypoint : null } : {}),
              WorkingDir: c.config.process.cwd,
              StopSignal: c.config.process.stopSignal,
            }
          : {}),
      },
    };
  }

  // ---------------------------------------------------------------- seeing the layers

  /**
   * Every image layer once, as a tree from the base layers up: what made each one and which
   * images and containers stand on it (`strata layers`). Metadata only, one read snapshot.
   */
  async layerTree(): Promise<LayerTree> {
    return this.db.transaction(() =>
      buildLayerTree({
        layers: this.layers.all(),
        images: this.images.list(),
        names: (id) => this.images.names(id),
        containers: this.containers.list(),
      }),
    )();
  }

  /**
   * `analyze IMAGE`: what each layer adds, changes and removes, the bytes the image stores but
   * never shows (overwritten or deleted by a later layer), and dive's efficiency score. Read
   * from the layers' tar-split records (headers only, no file content).
   */
  async analyze(ref: string): Promise<ImageAnalysis> {
    const { img, names, layers } = this.db.transaction(() => {
      const found = this.images.resolve(ref);
      return { img: found, names: this.images.names(found.id), layers: this.imageLayers(found) };
    })();
    return this.analyses.analysis(img, names, layers, (l) => tarSplitPath(this.root, l.id));
  }

  /**
   * `diff -v`: every path the container changed, the layer its previous version came from,
   * what the copy-up cost as the driver pays it (whole files, extents, blocks), and the bytes
   * allocated for new files.
   */
  async copyUps(ref: string): Promise<CopyUpReport> {
    return this.onContainer(ref, async (c) => {
      const img = this.images.get(c.imageId);
      if (!img) throw new StrataError(`image ${c.imageId} of container ${c.name} is gone`);
      const chain = await this.analyses.chain(img, this.imageLayers(img), (l) => tarSplitPath(this.root, l.id));
      const changes = (id: string, parent: string | null) => this.analyses.changes(this.driver, id, parent, parent === c.initLayer);
      return copyUps({ driver: this.driver, container: c, imageTop: img.topLayer, chain, changes });
    });
  }

  // ---------------------------------------------------------------- system

  /**
   * `check`: driver data with no record, leftovers of interrupted work, records crashed
   * processes left half-written, unused layers, and images and containers whose layers are
   * missing, incomplete or (with verify) no longer read back as their diffID. With repair,
   * each is fixed bottom-up; `remaining` lists what is still wrong afterwards.
   */
  async check(opts: { repair?: boolean; verify?: boolean } = {}): Promise<CheckResult> {
    return this.checker().run(opts);
  }

  private checker(): Checker {
    return new Checker({
      root: this.root,
      driver: this.driver,
      layers: this.layers,
      images: this.images,
      containers: this.containers,
      layerTar: (l) => this.layerTar(l),
      snapshot: (fn) => this.db.transaction(fn)(),
      destroyContainer: async (c) => {
        this.containers.setState(c.id, 'removing', ownerId());
        await this.destroyContainer(c);
      },
    });
  }

  /** `system df`: disk used by images (shared layers once) and by containers' own layers. */
  async diskUsage(): Promise<{
    images: { id: string; names: string[]; created: string; size: number; shared: number; unique: number; containers: number }[];
    containers: (ContainerSummary & { size: number })[];
    imagesSize: number;
    reclaimableImages: number;
  }> {
    // The records in one read snapshot; the sizes of containers removed meanwhile are left out.
    const du = this.db.transaction(() => this.imageUsage())();
    const containers = [];
    for (const c of du.containers) {
      try {
        containers.push({ ...c, size: await this.driver.diffSize(c.layer, c.initLayer) });
      } catch (err) {
        if (this.containers.get(c.id)?.state === 'created') throw err;
      }
    }
    return { ...du, containers };
  }

  private imageUsage() {
    const all = this.images.list();
    const users = new Map<string, number>();
    for (const c of this.listContainers()) users.set(c.imageId, (users.get(c.imageId) ?? 0) + 1);
    const layerUse = new Map<string, number>();
    for (const img of all) for (const l of this.layers.ancestry(img.topLayer)) layerUse.set(l.id, (layerUse.get(l.id) ?? 0) + 1);
    const images = all.map((img) => {
      const chain = this.layers.ancestry(img.topLayer);
      const size = chain.reduce((n, l) => n + l.contentSize, 0);
      const shared = chain.filter((l) => (layerUse.get(l.id) ?? 0) > 1).reduce((n, l) => n + l.contentSize, 0);
      const created = parseConfig(img).created ?? img.created;
      return { id: img.id, names: this.images.names(img.id), created, size, shared, unique: size - shared, containers: users.get(img.id) ?? 0 };
    });
    images.sort((a, b) => Date.parse(b.created) - Date.parse(a.created));
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
    return { images, containers: this.listContainers(), imagesSize, reclaimableImages: imagesSize - inUse };
  }

  /**
   * `system prune`: every container (none runs), then dangling images (all unused ones with
   * `all`); `containers: false` or `images: false` leave that kind alone (`image prune`, `container prune`).
   */
  async prune(opts: { all?: boolean; containers?: boolean; images?: boolean } = {}): Promise<{ containers: string[]; images: RemovedImage; reclaimed: number }> {
    const used = async () => {
      const du = await this.diskUsage();
      return du.imagesSize + du.containers.reduce((n, c) => n + c.size, 0);
    };
    const before = await used();
    // What other processes remove or start using meanwhile is skipped, as Docker's prune does.
    const skipGone = async <T>(fn: () => Promise<T>): Promise<T | null> => {
      try {
        return await fn();
      } catch (err) {
        if (err instanceof NotFoundError || err instanceof ConflictError) return null;
        throw err;
      }
    };
    const containers: string[] = [];
    for (const c of opts.containers === false ? [] : this.listContainers()) {
      const id = await skipGone(() => this.removeContainer(c.id));
      if (id) containers.push(id);
    }
    const images: RemovedImage = { untagged: [], deleted: [] };
    const skipped = new Set<string>();
    // Children before parents, so that shared layers go with the last image using them.
    let again = opts.images !== false;
    while (again) {
      again = false;
      for (const img of this.listImages({ all: true })) {
        if (!opts.all && !img.dangling) continue;
        // An image some container uses is not prunable, even though a forced rmi would take it.
        if (skipped.has(img.id) || this.containers.byImage(img.id).some((c) => c.state === 'created')) continue;
        const top = this.images.get(img.id)?.topLayer;
        if (top && this.layers.hasChildren(top)) continue;
        const r = await skipGone(() => this.removeImage(img.id, { force: true }));
        if (!r) {
          skipped.add(img.id);
          continue;
        }
        images.untagged.push(...r.untagged);
        images.deleted.push(...r.deleted);
        again = true;
      }
    }
    return { containers, images, reclaimed: before - (await used()) };
  }

  async info(): Promise<{
    driver: string;
    status: [string, string][];
    root: string;
    images: number;
    layers: number;
    containers: number;
    running: number;
    paused: number;
    rootless: boolean;
    /** The user namespace's uid and gid maps (rootless), else null. */
    idMappings: { uids: IdRange[]; gids: IdRange[] } | null;
  }> {
    const states = [...this.states.all().values()];
    return {
      rootless: isRootless(),
      idMappings: currentMapping(),
      running: states.filter((s) => s.status === 'running').length,
      paused: states.filter((s) => s.status === 'paused').length,
      driver: this.driver.name,
      status: await this.driver.status(),
      root: this.root,
      images: this.images.count(),
      layers: this.layers.countImageLayers(),
      containers: this.containers.count(),
    };
  }
}

