// `Store.layerTree()` and `strata layers` on a store made on purpose: one imported base layer
// that four images share (the base itself, one image committed on it, and one two layers high
// with the untagged image its first commit made) and a container on one of them. The tree must hold every layer once, put each
// image and container on its top layer, count who stands on each layer and mark the base shared.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Store, walkLayerTree as flat, type LayerNode, type LayerTree } from '../../src/index.js';
import { strataIn } from '../helpers/cli.js';
import { scratch } from '../helpers/env.js';
import { commitSteps, importBase, writeBytes } from './build.js';

const work = scratch(null, 'strata-layers-');
const root = join(work, 'store');
let tree: LayerTree;
let ids: { base: string; one: string; two: string };
let container: string;

before(async () => {
  const store = await Store.open({ root, driver: 'vfs' });
  try {
    const base = await importBase(store, work, 'base:1', { 'etc/os': 100 });
    const one = await commitSteps(store, base, 'one:1', [{ cmd: 'add-a', change: (r) => writeBytes(join(r, 'a'), 1000) }]);
    const two = await commitSteps(store, base, 'two:1', [
      { cmd: 'add-b', change: (r) => writeBytes(join(r, 'b'), 2000) },
      { cmd: 'add-c', change: (r) => writeBytes(join(r, 'c'), 3000) },
    ]);
    ids = { base, one, two };
    container = (await store.createContainer('two:1', { name: 'on-two', cmd: ['sh'] })).id;
    tree = await store.layerTree();
  } finally {
    await store.close();
  }
});
after(() => strataIn(root, 'vfs').run(['rm', '-f', 'on-two']));

test('every layer once, from the base up, with who stands on it', () => {
  const nodes = flat(tree);
  assert.equal(tree.layers, 4);
  assert.equal(nodes.length, 4);
  assert.equal(new Set(nodes.map((n) => n.chainId)).size, 4);
  assert.equal(tree.roots.length, 1);
  const base = tree.roots[0];
  assert.equal(base.depth, 0);
  assert.deepEqual(base.images.map((i) => i.id), [ids.base]);
  assert.deepEqual(base.images[0].names, ['docker.io/library/base:1']);
  assert.equal(base.imageCount, 4);
  assert.equal(base.containerCount, 1);
  assert.equal(base.shared, true);
  assert.equal(base.size, 100);

  const byCmd = new Map(nodes.map((n) => [n.createdBy, n]));
  const a = byCmd.get('add-a')!;
  const b = byCmd.get('add-b')!;
  const c = byCmd.get('add-c')!;
  assert.deepEqual(base.children.map((n) => n.createdBy).sort(), ['add-a', 'add-b']);
  assert.equal(a.parent, base.id);
  assert.deepEqual(b.children, [c]);
  assert.equal(c.depth, 2);
  assert.deepEqual([a.size, b.size, c.size], [1000, 2000, 3000]);
  assert.deepEqual(a.images.map((i) => i.id), [ids.one]);
  assert.deepEqual(c.images.map((i) => i.id), [ids.two]);
  // The first of two's commits: an untagged image of its own.
  assert.equal(b.images.length, 1);
  assert.deepEqual(b.images[0].names, []);
  assert.equal(b.imageCount, 2);
  assert.equal(b.shared, true);
  assert.equal(c.shared, false);
  assert.deepEqual(c.containers.map((x) => [x.id, x.name, x.imageId]), [[container, 'on-two', ids.two]]);
  assert.equal(a.containerCount, 0);
  assert.equal(b.containerCount, 1);

  assert.equal(tree.size, 100 + 1000 + 2000 + 3000);
  assert.equal(tree.virtualSize, 100 + (100 + 1000) + (100 + 2000) + (100 + 2000 + 3000));
  assert.equal(tree.sharedSize, 100 + 2000);
});

test('strata layers draws the tree, marks the shared base, and names images and containers', () => {
  const cli = strataIn(root, 'vfs');
  const lines = cli.ok(['layers']).split('\n');
  const short = (n: LayerNode) => n.chainId.slice(7, 19);
  const nodes = new Map(flat(tree).map((n) => [n.createdBy, n]));
  const base = tree.roots[0];
  const [first, ...rest] = lines;
  assert.match(first, new RegExp(`^${short(base)}  100B  .*\\[shared by 4 images\\]  <- base:1$`));
  // Children in the order they were stored: add-a first, then add-b and its child add-c.
  assert.match(rest[0], new RegExp(`^├── ${short(nodes.get('add-a')!)}  1kB  add-a  <- one:1$`));
  assert.match(rest[1], new RegExp(`^└── ${short(nodes.get('add-b')!)}  2kB  add-b  \\[shared by 2 images\\]  <- ${nodes.get('add-b')!.images[0].id.slice(7, 19)}$`));
  assert.match(rest[2], new RegExp(`^    └── ${short(nodes.get('add-c')!)}  3kB  add-c  <- two:1, container on-two$`));
  assert.match(lines.join('\n'), /4 layers, 6.1kB stored once; 8.4kB if every image kept its own copy; 2.1kB in shared layers/);

  const json = cli.ok(['layers', '--format', 'json']).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(json.length, 4);
  assert.deepEqual(json.map((r) => r.Bytes), [100, 1000, 2000, 3000]);
  assert.deepEqual(json.map((r) => r.Parent), ['', short(base), short(base), short(nodes.get('add-b')!)]);
  assert.equal(json[3].Containers, 'on-two');

  assert.equal(cli.ok(['layers', '--format', '{{.ID}} {{.ImageCount}} {{.Shared}}']).split('\n')[0], `${short(base)} 4 true`);
  const bad = cli.run(['layers', '--format', '{{.Nope}}']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /template parsing error: .*Nope/);
});
