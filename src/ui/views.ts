// What `strata ui`'s page asks for, as plain JSON built from the Store: the whole store at once
// (layers, images, containers: the page draws the graph and the disk view from it) and the
// detail of one layer, image or container. The page's code imports these types, so the two ends
// cannot drift apart.
import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Change } from '../archive/changes.js';
import { familiar, parseConfig } from '../store/images.js';
import type { LayerKind } from '../store/layers.js';
import type { Store } from '../store/store.js';

export interface UiLayer {
  id: string;
  parent: string | null;
  chainId: string | null;
  kind: LayerKind;
  /** Bytes of file content the layer holds. */
  bytes: number;
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
  status: string;
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
  /** Bytes of the file as the layer holds it (0 for directories, links and deletions). */
  size: number;
}

export interface UiLayerDetail {
  layer: UiLayer;
  changes: UiChange[];
}

export interface UiImageDetail {
  image: UiImage;
  history: ReturnType<Store['history']>;
}

export interface UiContainerDetail {
  container: UiContainer;
  changes: Change[];
}

/** The whole store, read in one go. */
export function storeState(store: Store): UiState {
  const version = store.changeCounter();
  const images = store.listImages({ all: true });
  const containers = store.listContainers();
  const layers = new Map<string, UiLayer>();
  for (const l of store.layers.all()) {
    if (l.state !== 'complete') continue;
    layers.set(l.id, { id: l.id, parent: l.parent, chainId: l.chainId, kind: l.kind, bytes: l.contentSize, createdBy: '', images: [], containers: [] });
  }
  const out: UiImage[] = [];
  for (const summary of images) {
    const img = store.images.get(summary.id);
    if (!img) continue;
    out.push({ id: img.id, names: summary.names.map(familiar), created: summary.created, size: summary.size, topLayer: img.topLayer });
    const stack = store.imageLayers(img);
    const made = (parseConfig(img).history ?? []).filter((h) => h.empty_layer !== true);
    stack.forEach((l, i) => {
      const ui = layers.get(l.id);
      if (!ui) return;
      ui.images.push(img.id);
      if (!ui.createdBy && made[i]?.created_by) ui.createdBy = made[i].created_by!;
    });
  }
  const cs: UiContainer[] = containers.map((c) => {
    for (const l of store.layers.ancestry(c.layer)) layers.get(l.id)?.containers.push(c.id);
    return { id: c.id, name: c.name, imageId: c.imageId, imageRef: c.imageRef, status: c.run.status, layer: c.layer, initLayer: c.initLayer };
  });
  return { version, driver: store.driver.name, root: store.root, layers: [...layers.values()], images: out, containers: cs };
}

/** What one layer changed against its parent, each file with its size in the layer. */
export async function layerDetail(store: Store, state: UiState, id: string): Promise<UiLayerDetail | undefined> {
  const layer = state.layers.find((l) => l.id === id);
  if (!layer) return undefined;
  const changes = await store.driver.changes(layer.id, layer.parent);
  const root = await store.driver.get(layer.id);
  try {
    const sized = await Promise.all(changes.map(async (c) => ({ ...c, size: c.kind === 'D' ? 0 : await fileSize(join(root, c.path)) })));
    return { layer, changes: sized.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)) };
  } finally {
    await store.driver.put(layer.id);
  }
}

async function fileSize(path: string): Promise<number> {
  const st = await lstat(path).catch(() => undefined);
  return st?.isFile() ? st.size : 0;
}

export function imageDetail(store: Store, state: UiState, id: string): UiImageDetail | undefined {
  const image = state.images.find((i) => i.id === id);
  return image && { image, history: store.history(image.id) };
}

export async function containerDetail(store: Store, state: UiState, id: string): Promise<UiContainerDetail | undefined> {
  const container = state.containers.find((c) => c.id === id);
  return container && { container, changes: await store.diff(container.id) };
}
