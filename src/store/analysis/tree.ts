// The layer tree: every image layer of the store once, grown from the base layers upward, with
// the history line that made each one and the images and containers standing on it. It is
// built from the metadata alone (no driver call), so `strata layers` and the ui can ask for it
// at every refresh.
import type { HistoryEntry, ImageConfig } from '../../image/types.js';
import type { ContainerRecord } from '../containers.js';
import type { ImageRecord } from '../images.js';
import type { LayerRecord } from '../layers.js';

export interface LayerTreeImage {
  id: string;
  /** Stored names ("docker.io/library/nginx:latest"); empty for an untagged image. */
  names: string[];
}

export interface LayerTreeContainer {
  id: string;
  name: string;
  imageId: string;
  /** Driver ids of the container's own two layers (Docker's `<id>-init` and `<id>`). */
  initLayer: string;
  layer: string;
}

export interface LayerNode {
  /** The driver's id of the layer (its directory, dataset or device). */
  id: string;
  chainId: string;
  diffID: string;
  /** The parent layer's driver id; null for a base layer. */
  parent: string | null;
  /** 0 for a base layer. */
  depth: number;
  /** Bytes of file content the layer holds (what `history` and `images` count). */
  size: number;
  /** Bytes of the uncompressed layer tar. */
  tarSize: number;
  /** When strata stored it. */
  stored: string;
  /** The image history entry that made it (from the first image that tells). */
  created: string;
  createdBy: string;
  comment: string;
  /** Images whose top layer this is. */
  images: LayerTreeImage[];
  /** Containers of those images: they stand on this layer (through their init layer). */
  containers: LayerTreeContainer[];
  /** Images whose chain holds this layer (this one's and every one above it). */
  imageCount: number;
  /** Containers standing on this layer or above it. */
  containerCount: number;
  /** True when more than one image uses the layer: stored once, counted in several images. */
  shared: boolean;
  children: LayerNode[];
}

export interface LayerTree {
  /** Base layers, each with the layers built on it. */
  roots: LayerNode[];
  /** Layers in the tree. */
  layers: number;
  /** Bytes of every layer once: what the store holds for images. */
  size: number;
  /** Bytes the images would take if each kept its own copy of its layers. */
  virtualSize: number;
  /** Bytes of layers used by more than one image. */
  sharedSize: number;
  /** Images without any layer, and their containers (they stand on nothing). */
  noLayer: { images: LayerTreeImage[]; containers: LayerTreeContainer[] };
}

export interface TreeInput {
  layers: LayerRecord[];
  images: ImageRecord[];
  names: (imageId: string) => string[];
  containers: ContainerRecord[];
}

/** The history entries that made layers (empty_layer ones are config-only), base first. */
export function layerHistory(img: ImageRecord): HistoryEntry[] {
  try {
    const cfg = JSON.parse(img.config.toString('utf8')) as ImageConfig;
    return (cfg.history ?? []).filter((h) => h.empty_layer !== true);
  } catch {
    return [];
  }
}

const byAge = (a: LayerNode, b: LayerNode) => (a.stored < b.stored ? -1 : a.stored > b.stored ? 1 : a.chainId < b.chainId ? -1 : 1);

export function buildLayerTree(input: TreeInput): LayerTree {
  const nodes = new Map<string, LayerNode>();
  for (const l of input.layers) {
    if (l.kind !== 'image' || l.state !== 'complete' || !l.chainId) continue;
    nodes.set(l.id, {
      id: l.id,
      chainId: l.chainId,
      diffID: l.diffID ?? '',
      parent: l.parent,
      depth: 0,
      size: l.contentSize,
      tarSize: l.size,
      stored: l.created,
      created: '',
      createdBy: '',
      comment: '',
      images: [],
      containers: [],
      imageCount: 0,
      containerCount: 0,
      shared: false,
      children: [],
    });
  }
  const chainOf = (top: string | null): LayerNode[] => {
    const out: LayerNode[] = [];
    for (let n = top ? nodes.get(top) : undefined; n; n = n.parent ? nodes.get(n.parent) : undefined) out.push(n);
    return out.reverse();
  };

  const noLayer: LayerTree['noLayer'] = { images: [], containers: [] };
  const imageTop = new Map<string, LayerNode | null>();
  let virtualSize = 0;
  for (const img of input.images) {
    const ref: LayerTreeImage = { id: img.id, names: input.names(img.id) };
    const chain = chainOf(img.topLayer);
    const top = chain.length ? chain[chain.length - 1] : null;
    imageTop.set(img.id, top);
    if (!top) {
      noLayer.images.push(ref);
      continue;
    }
    top.images.push(ref);
    const hist = layerHistory(img);
    // History and layers line up from the base; a short history leaves the top layers bare.
    chain.forEach((n, i) => {
      n.imageCount++;
      virtualSize += n.size;
      const h = hist[i];
      if (h && !n.createdBy && !n.created) {
        n.created = h.created ?? '';
        n.createdBy = h.created_by ?? '';
        n.comment = h.comment ?? '';
      }
    });
  }
  for (const c of input.containers) {
    if (c.state !== 'created' || !imageTop.has(c.imageId)) continue;
    const ref: LayerTreeContainer = { id: c.id, name: c.name, imageId: c.imageId, initLayer: c.initLayer, layer: c.layer };
    const top = imageTop.get(c.imageId)!;
    if (!top) {
      noLayer.containers.push(ref);
      continue;
    }
    top.containers.push(ref);
    for (const n of chainOf(top.id)) n.containerCount++;
  }

  const roots: LayerNode[] = [];
  let size = 0;
  let sharedSize = 0;
  for (const n of nodes.values()) {
    n.shared = n.imageCount > 1;
    size += n.size;
    if (n.shared) sharedSize += n.size;
    const p = n.parent ? nodes.get(n.parent) : undefined;
    if (p) p.children.push(n);
    else roots.push(n);
  }
  const place = (list: LayerNode[], depth: number) => {
    list.sort(byAge);
    for (const n of list) {
      n.depth = depth;
      place(n.children, depth + 1);
    }
  };
  place(roots, 0);
  return { roots, layers: nodes.size, size, virtualSize, sharedSize, noLayer };
}

/** Every node of the tree, parents before children, in drawing order. */
export function walkLayerTree(tree: LayerTree): LayerNode[] {
  const out: LayerNode[] = [];
  const visit = (n: LayerNode) => {
    out.push(n);
    n.children.forEach(visit);
  };
  tree.roots.forEach(visit);
  return out;
}
