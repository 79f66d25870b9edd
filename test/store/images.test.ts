// ImageStore on a real SQLite file: names as Docker normalises them, lookups by name, full ID
// and unique prefix, names moving between images, and deletion taking names and digests along.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { openDatabase } from '../../src/store/db.js';
import { familiar, ImageStore, storedName } from '../../src/store/images.js';
import { InvalidInputError, NotFoundError, StrataError } from '../../src/errors.js';
import { sha256 } from '../../src/store/layers.js';
import { scratch } from '../helpers/env.js';

function store(t: { after(fn: () => void): void }): ImageStore {
  const db = openDatabase(scratch(t));
  t.after(() => db.close());
  return new ImageStore(db);
}

function image(tag: string) {
  const config = Buffer.from(JSON.stringify({ tag }));
  return { id: sha256(config), config, topLayer: null, manifest: null };
}

describe('ImageStore', () => {
  test('names are stored in full and printed as docker does; a digest is never a name', () => {
    assert.equal(storedName('nginx'), 'docker.io/library/nginx:latest');
    assert.equal(storedName('localhost:5000/a/b:v1'), 'localhost:5000/a/b:v1');
    assert.equal(familiar('docker.io/library/nginx:latest'), 'nginx:latest');
    assert.throws(() => storedName(`busybox@sha256:${'a'.repeat(64)}`), (e: unknown) => e instanceof InvalidInputError && /digest reference/.test((e as Error).message));
    assert.throws(() => storedName('repo/UPPER'), (e: unknown) => e instanceof InvalidInputError && /repo\/UPPER$/.test((e as Error).message));
  });

  test('resolves by name, full ID with or without sha256:, and unique prefix', (t) => {
    const s = store(t);
    const a = image('a');
    s.add(a, [storedName('busybox')], ['busybox@sha256:' + 'c'.repeat(64)]);
    assert.equal(s.resolve('busybox').id, a.id);
    assert.equal(s.resolve('busybox:latest').id, a.id);
    assert.equal(s.resolve(a.id).id, a.id);
    assert.equal(s.resolve(a.id.slice(7)).id, a.id);
    assert.equal(s.resolve(a.id.slice(7, 12)).id, a.id);
    assert.deepEqual(s.repoDigests(a.id), ['busybox@sha256:' + 'c'.repeat(64)]);
    assert.throws(() => s.resolve('nginx'), NotFoundError);
  });

  test('an ID prefix two images share is ambiguous', (t) => {
    const s = store(t);
    // Two configs whose IDs start with the same hex digit.
    const seen = new Map<string, ReturnType<typeof image>>();
    let pair: [ReturnType<typeof image>, ReturnType<typeof image>] | null = null;
    for (let i = 0; !pair; i++) {
      const img = image(`i${i}`);
      const first = img.id.slice(7, 8);
      const other = seen.get(first);
      if (other) pair = [other, img];
      else seen.set(first, img);
    }
    for (const img of pair) s.add(img, []);
    assert.throws(() => s.resolve(pair[0].id.slice(7, 8)), (e: unknown) => e instanceof StrataError && /ambiguous/.test((e as Error).message));
  });

  test('a name moves to the image that takes it; add is idempotent; delete takes names and digests along', (t) => {
    const s = store(t);
    const a = image('a');
    const b = image('b');
    const name = storedName('app:1');
    s.add(a, [name]);
    assert.deepEqual(s.add(b, [name]).untagged, [a.id]);
    assert.deepEqual(s.names(a.id), []);
    assert.deepEqual(s.names(b.id), [name]);
    s.add(b, [name], ['app@sha256:' + 'd'.repeat(64)]);
    assert.equal(s.count(), 2);
    assert.deepEqual(s.setName(storedName('other'), b.id), []);
    assert.equal(s.removeName(storedName('other')), true);
    assert.equal(s.removeName(storedName('other')), false);
    assert.equal(s.delete(b.id), true);
    assert.equal(s.delete(b.id), false);
    assert.throws(() => s.resolve('app:1'), NotFoundError);
    assert.deepEqual(s.repoDigests(b.id), []);
    assert.deepEqual(s.list().map((i) => i.id), [a.id]);
  });
});
