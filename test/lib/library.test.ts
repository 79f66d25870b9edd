// The library on its own, through the package's public entry only (dist/src/index.js, what
// `import … from 'strata-store'` loads): pull from a real docker-registry, create a container,
// change a file in its mounted root, commit, push, with Docker's progress events; then a
// second store pulls the pushed image back and finds the change. Errors come out typed.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  InvalidInputError,
  RegistryError,
  Store,
  StrataError,
  logout,
  setLogLevel,
  version,
  type ProgressEvent,
} from '../../src/index.js';
import { repoRoot, scratch } from '../helpers/env.js';
import { fileCleanup, startRegistry, type TestRegistry } from '../helpers/registry.js';

const files = fileCleanup();
after(files.run);
const work = scratch(null, 'strata-lib-');
let reg: TestRegistry;

before(async () => {
  reg = await startRegistry(files.add);
  await reg.load('busybox', 'latest');
});

const statuses = (events: ProgressEvent[], status: string | RegExp) =>
  events.filter((e) => (typeof status === 'string' ? e.status === status : status.test(e.status)));

test('pull, create, change a file, commit and push with progress events; another store pulls the change back', async (t) => {
  const store = await Store.open({ root: join(work, 'a'), driver: 'vfs' });
  t.after(() => store.close());

  const pulled: ProgressEvent[] = [];
  const src = `${reg.host}/corpus/busybox:latest`;
  const p = await store.pull(src, { onProgress: (e) => pulled.push(e) });
  assert.equal(p.reference, src);
  assert.equal(p.upToDate, false);
  assert.match(p.digest, /^sha256:[0-9a-f]{64}$/);
  assert.deepEqual(pulled[0], { id: 'latest', status: `Pulling from ${reg.host}/corpus/busybox` });
  const layers = new Set(statuses(pulled, 'Pulling fs layer').map((e) => e.id));
  assert.ok(layers.size >= 1);
  for (const id of layers) {
    assert.match(id!, /^[0-9a-f]{12}$/);
    const mine = pulled.filter((e) => e.id === id).map((e) => e.status);
    // Docker's order for each layer.
    const order = ['Pulling fs layer', 'Download complete', 'Extracting', 'Pull complete'].map((s) => mine.indexOf(s));
    assert.ok(order.every((i, k) => i >= 0 && (k === 0 || i > order[k - 1])), mine.join(', '));
  }
  assert.ok(statuses(pulled, 'Downloading').every((e) => e.current! > 0 && e.total! >= e.current!));
  assert.deepEqual(pulled.slice(-2), [{ status: `Digest: ${p.digest}` }, { status: `Status: Downloaded newer image for ${src}` }]);
  assert.deepEqual(store.getImage(src).repoDigests, [`${reg.host}/corpus/busybox@${p.digest}`]);

  // Pulling again downloads nothing.
  const again: ProgressEvent[] = [];
  assert.equal((await store.pull(src, { onProgress: (e) => again.push(e) })).upToDate, true);
  assert.equal(statuses(again, 'Already exists').length, layers.size);
  assert.equal(statuses(again, /^Downloading|^Pull complete/).length, 0);

  const c = await store.createContainer(src, { name: 'libtest' });
  const rootfs = await store.mount('libtest');
  writeFileSync(join(rootfs, 'hello.txt'), 'from the library\n');
  await store.unmount('libtest');
  assert.deepEqual(await store.diff(c.id), [{ kind: 'A', path: '/hello.txt' }]);
  const committed = `${reg.host}/lib/committed:v1`;
  const id = await store.commit('libtest', committed, { message: 'library test' });
  assert.equal(store.getImage(committed).id, id);

  const pushed: ProgressEvent[] = [];
  const r = await store.push(committed, { onProgress: (e) => pushed.push(e) });
  assert.equal(r.tag, 'v1');
  assert.equal(r.repository, `${reg.host}/lib/committed`);
  assert.deepEqual(pushed[0], { status: `The push refers to repository [${reg.host}/lib/committed]` });
  // The new layer is uploaded; busybox's layer is mounted from the repository it was pulled from.
  assert.equal(statuses(pushed, 'Pushed').length, 1);
  assert.equal(statuses(pushed, 'Mounted from corpus/busybox').length, layers.size);
  const head = await fetch(`http://${reg.host}/v2/lib/committed/manifests/v1`, {
    method: 'HEAD',
    headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json' },
  });
  assert.equal(head.headers.get('docker-content-digest'), r.digest);

  // A second store sees the commit through the registry.
  const other = await Store.open({ root: join(work, 'b'), driver: 'vfs' });
  t.after(() => other.close());
  const back = await other.pull(committed);
  assert.equal(back.id, id);
  assert.equal(back.digest, r.digest);
  await other.createContainer(committed, { name: 'check' });
  const otherRoot = await other.mount('check');
  try {
    assert.equal(readFileSync(join(otherRoot, 'hello.txt'), 'utf8'), 'from the library\n');
  } finally {
    await other.unmount('check');
  }
});

test('errors are typed: a bad reference is invalid input, a missing tag a registry error, a missing image not found', async (t) => {
  const store = await Store.open({ root: join(work, 'c'), driver: 'vfs' });
  t.after(() => store.close());
  await assert.rejects(store.pull('Upper'), (e: unknown) => e instanceof InvalidInputError && e.code === 'invalid' && e.exitCode === 1);
  await assert.rejects(store.pull(`${reg.host}/corpus/busybox:nope`), (e: unknown) => e instanceof RegistryError && e.code === 'registry' && e.status === 404);
  await assert.rejects(store.push(`${reg.host}/nothing/here`), (e: unknown) => e instanceof StrataError && e.code === 'not-found');
  assert.throws(() => store.getImage('nothing'), (e: unknown) => e instanceof StrataError && e.code === 'not-found');
});

test('debug lines go through the one logger only when asked for', async (t) => {
  const lines: string[] = [];
  t.after(() => setLogLevel('info', (l) => process.stderr.write(l)));
  setLogLevel('info', (l) => lines.push(l));
  const store = await Store.open({ root: join(work, 'd'), driver: 'vfs' });
  t.after(() => store.close());
  await store.pull(`${reg.host}/corpus/busybox:latest`);
  assert.deepEqual(lines, []);
  setLogLevel('debug');
  await store.pull(`${reg.host}/corpus/busybox:latest`);
  assert.ok(lines.some((l) => /^time="[^"]+" level=debug msg="registry: GET http:\/\/127\.0\.0\.1:\d+\/v2\/corpus\/busybox\/manifests\/latest -> 200"\n$/.test(l)), lines.join(''));
});

test('logout of a registry never logged in to says so; the version is the package version', async () => {
  const authFile = join(work, 'config.json');
  assert.equal(await logout(reg.host, { authFile }), `Not logged in to ${reg.host}`);
  assert.equal(version, (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version);
});
