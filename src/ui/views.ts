// What `strata ui`'s page asks for, as plain JSON built from the Store: the whole store at once
// (layers, images, containers: the page draws the graph and the disk view from it) and the
// detail of one layer, image or container. The page's code imports these types, so the two ends
// cannot drift apart.
import type { Change } from '../archive/changes.js';
import type { ImageAnalysis, LayerAnalysis } from '../store/analysis/analyze.js';
import { LayerReader, type CopyUpReport } from '../store/analysis/copyups.js';
import type { LayerNode } from '../store/analysis/tree.js';
import { familiar } from '../store/images.js';
import type { LayerKind } from '../store/layers.js';
import { dockerStatus } from '../store/run.js';
import type { Store } from '../store/store.js';

export interface UiLayer {
  id: string;
  parent: string | null;
  chainId: string | null;
  kind: LayerKind;
  /** Bytes of file content the layer holds (0 for a container's own layers: their detail says). */
  bytes: number;
  /** More than one image stands on it. */
  shared: boolean;
  /** The history command that made it (image layers). */
  createdBy: string;
  /** Images whose stack includes the layer, and containers standing on it. */
  images: string[];
  containers: string[];
}

export interface UiImage {
  id: string;
  names: string[];
  created: string;
  size: number;
  topLayer: string | null;
}

export interface UiContainer {
  id: string;
  name: string;
  imageId: string;
  imageRef: string;
  /** As `ps`'s State column and inspect's State.Status: a process waiting for its restart policy is restarting. */
  status: ReturnType<typeof dockerStatus>;
  layer: string;
  initLayer: string;
}

export interface UiState {
  /** The store's change counter when this was read (the page refetches when it moves). */
  version: number;
  driver: string;
  root: string;
  layers: UiLayer[];
  images: UiImage[];
  containers: UiContainer[];
}

export interface UiChange extends Change {
  /** Bytes of the file in this layer; for a D, of what it removed (0 when not known). */
  size: number;
  /** A later layer of the image overwrites or deletes this version (wasted bytes). */
  hidden?: boolean;
}

export interface UiLayerDetail {
  layer: UiLayer;
  changes: UiChange[];
}

/** An image's analysis without each layer's file list (the layer's own detail has it). */
export type UiAnalysis = Omit<ImageAnalysis, 'layers'> & { layers: Omit<LayerAnalysis, 'files'>[] };

export interface UiImageDetail {
  image: UiImage;
  history: ReturnType<Store['history']>;
  analysis: UiAnalysis;
}

export interface UiContainerDetail {
  container: UiContainer;
  /** Every path it changed, where a changed file was copied up from and what that cost. */
  copyUps: CopyUpReport;
  changes: UiChange[];
}

/** A copy-up report's files as changes: a removal counts the bytes it hides. */
function copyUpChanges(r: CopyUpReport): UiChange[] {
  return r.files.map((f) => ({ path: f.path, kind: f.kind, size: f.kind === 'D' ? f.lowerBytes : f.bytes }));
}

/** The whole store: the image layers as Store.layerTree() has them, and each container's own two layers on top. */
export async function storeState(store: Store): Promise<UiState> {
  const version = store.changeCounter();
  const tree = await store.layerTree();
  const layers: UiLayer[] = [];
  const tops = new Map<string, string>();
  // A layer's images and containers are its own and those of every layer above it.
  const visit = (n: LayerNode): UiLayer => {
    const ui: UiLayer = { id: n.id, parent: n.parent, chainId: n.chainId, kind: 'image', bytes: n.size, createdBy: n.createdBy, shared: n.shared, images: [], containers: [] };
    layers.push(ui);
    for (const i of n.images) tops.set(i.id, n.id);
    ui.images.push(...n.images.map((i) => i.id));
    ui.containers.push(...n.containers.map((c) => c.id));
    for (const child of n.children) {
      const above = visit(child);
      ui.images.push(...above.images);
      ui.containers.push(...above.containers);
    }
    return ui;
  };
  tree.roots.forEach(visit);
  const containers: UiContainer[] = store.listContainers().map((c) => {
    const own = { chainId: null, bytes: 0, createdBy: '', shared: false, images: [], containers: [c.id] };
    layers.push({ ...own, id: c.initLayer, parent: tops.get(c.imageId) ?? null, kind: 'init' }, { ...own, id: c.layer, parent: c.initLayer, kind: 'container' });
    return { id: c.id, name: c.name, imageId: c.imageId, imageRef: c.imageRef, status: dockerStatus(c.run), layer: c.layer, initLayer: c.initLayer };
  });
  const images: UiImage[] = store.listImages({ all: true }).map((i) => ({ id: i.id, names: i.names.map(familiar), created: i.created, size: i.size, topLayer: tops.get(i.id) ?? null }));
  return { version, driver: store.driver.name, root: store.root, layers, images, containers };
}

/**
 * What one layer changed against the layers below it, each file with its bytes: an image layer
 * as the analysis of an image standing on it read it from the tar-split; a container's
 * read-write layer as its copy-up report has it; its init layer through the driver, sized from
 * the layer's own directory (or its mounted stack where the driver has none).
 */
export async function layerDetail(store: Store, state: UiState, id: string): Promise<UiLayerDetail | undefined> {
  const layer = state.layers.find((l) => l.id === id);
  if (!layer) return undefined;
  if (layer.kind === 'image') {
    const files = (await store.analyze(layer.images[0])).layers.find((l) => l.id === id)?.files ?? [];
    return { layer, changes: files.map((f) => ({ path: f.path, kind: f.kind, size: f.bytes, hidden: f.hidden })) };
  }
  if (layer.kind === 'container') {
    return { layer, changes: copyUpChanges(await store.copyUps(layer.containers[0])) };
  }
  const changes = await store.driver.changes(layer.id, layer.parent);
  const files = await LayerReader.open(store.driver, layer.id);
  try {
    const sized: UiChange[] = [];
    for (const c of changes) {
      const st = c.kind === 'D' ? null : await files.lstat(c.path);
      sized.push({ ...c, size: st?.isFile() ? Number(st.size) : 0 });
    }
    return { layer, changes: sized };
  } finally {
    await files.close();
  }
}

export async function imageDetail(store: Store, state: UiState, id: string): Promise<UiImageDetail | undefined> {
  const image = state.images.find((i) => i.id === id);
  if (!image) return undefined;
  const { layers, ...whole } = await store.analyze(image.id);
  return { image, history: store.history(image.id), analysis: { ...whole, layers: layers.map(({ files: _files, ...l }) => l) } };
}

export async function containerDetail(store: Store, state: UiState, id: string): Promise<UiContainerDetail | undefined> {
  const container = state.containers.find((c) => c.id === id);
  if (!container) return undefined;
  const copyUps = await store.copyUps(container.id);
  return { container, copyUps, changes: copyUpChanges(copyUps) };
}
