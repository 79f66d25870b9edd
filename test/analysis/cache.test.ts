// What a Store keeps between analyses (store/analysis/cache.ts) against what the store holds
// afterwards: a kept image analysis follows a new name and is not reused for an image loaded
// again after removal; a container's kept change list is reused only while its layer is
// untouched (the driver's changes are counted), and every write, copy-up and deletion shows
// in the next report. vfs, whose layers are full copies, reads its changes afresh every time; the layered drivers
// (overlay2, fuse-overlayfs, aufs) keep them.
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { Store } from '../../src/index.js';
import { runChild } from '../drivers/overlay-fixtures.js';
import { scratch } from '../helpers/env.js';
import { unmountAllUnder } from '../helpers/mounts.js';
import { overlay2Available } from '../helpers/registry.js';
import { importBase } from './build.js';

/** Longer than the cache's "racy" window (100 ms): a layer written this long ago may be kept. */
const SETTLE_MS = 300;

for (const driver of ['overlay2', 'fuse-overlayfs', 'aufs', 'vfs']) {
  test(`${driver}: kept analyses and change lists follow the store`, async (t) => {
    if (driver === 'overlay2' && !(await overlay2Available())) return t.skip('overlay2 does not mount here');
    const work = scratch(t, `strata-acache-${driver}-`);
    t.after(() => {
      if (driver === 'aufs') runChild('src/drivers/aufs/aufs.js', 'await (await mod.AufsDriver.open({ root: args[0], options: {} })).cleanup();', [join(work, 'store')]);
      unmountAllUnder(work);
    });
    const store = await Store.open({ root: join(work, 'store'), driver });
    try {
      await importBase(store, work, 'kc:1', { data: 1000, keep: 10 });
      const first = await store.analyze('kc:1');
      assert.equal(await store.analyze('kc:1'), first, 'the second analysis is the kept one');
      store.tag('kc:1', 'kc:2');
      const renamed = await store.analyze('kc:1');
      assert.deepEqual([...renamed.names].sort(), ['docker.io/library/kc:1', 'docker.io/library/kc:2']);
      assert.equal(renamed.layers, first.layers);

      const c = await store.createContainer('kc:1', { name: 'kc', cmd: ['sh'] });
      let calls = 0;
      const changes = store.driver.changes.bind(store.driver);
      store.driver.changes = (id, parent) => {
        calls++;
        return changes(id, parent);
      };
      const report = async () => (await store.copyUps('kc')).files.map((f) => `${f.kind} ${f.path}`).sort();
      const write = async (change: (root: string) => void) => {
        const root = await store.mount(c.id);
        try {
          change(root);
        } finally {
          await store.unmount(c.id);
        }
      };

      // Just written: too recent to keep, read afresh.
      await write((root) => writeFileSync(join(root, 'fresh'), 'x'));
      assert.ok((await report()).includes('A /fresh'));
      await sleep(SETTLE_MS);
      const settled = await report();
      calls = 0;
      assert.deepEqual(await report(), settled);
      // init and read-write layer: kept on overlay2, compared afresh on vfs
      assert.equal(calls, driver === 'vfs' ? 2 : 0);

      // A copy-up and a deletion after the list was kept: each shows in the next report.
      await write((root) => writeFileSync(join(root, 'data'), Buffer.alloc(1000, 0x62)));
      await sleep(SETTLE_MS);
      assert.ok((await report()).includes('C /data'));
      await write((root) => rmSync(join(root, 'keep')));
      await sleep(SETTLE_MS);
      const last = await report();
      assert.ok(last.includes('D /keep') && last.includes('C /data') && last.includes('A /fresh'), last.join(', '));

      // The image removed and loaded again: new layers, a new analysis.
      await store.removeContainer('kc', { force: true });
      await store.removeImage('kc:2');
      await store.removeImage('kc:1');
      await importBase(store, work, 'kc:1', { data: 1000, keep: 10 });
      const again = await store.analyze('kc:1');
      const [root] = (await store.layerTree()).roots;
      assert.notEqual(again.layers[0]!.id, first.layers[0]!.id);
      assert.equal(again.layers[0]!.id, root!.id);
    } finally {
      await store.driver.cleanup();
      await store.close();
    }
  });
}
