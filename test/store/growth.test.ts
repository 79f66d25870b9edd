// Issue #13: a command on one container or image costs the same in a store of thousands. Every
// SQL statement that opening the store and `create`, `inspect`, `mount`, `umount` and `rm` run
// is recorded (at prepare) and its query plan read: none may read a whole table of rows that
// grow with the store (layers, containers, run_state, images), as dropUnused's search for
// unused image layers did over every container's two layer rows at each open.
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { test } from 'node:test';
import { Store } from '../../src/index.js';
import { corpusImage, scratch } from '../helpers/env.js';

const GROWING = ['layers', 'containers', 'run_state', 'images', 'names'];

/** The plan lines of sql that read a growing table whole (no index, or a full index scan). */
function scans(db: Database.Database, sql: string): string[] {
  const params = sql.split('?').length - 1;
  const plan = db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...Array<null>(params).fill(null)) as { detail: string }[];
  return plan
    .map((r) => r.detail)
    .filter((d) => {
      const m = /^SCAN (\w+)(?: AS (\w+))?/.exec(d);
      if (!m) return false;
      // A partial index (unfinished rows, image layers) holds few rows whatever the store's size.
      if (/USING (COVERING )?INDEX (containers_unfinished|layers_unfinished|layers_owned|layers_image)\b/.test(d)) return false;
      const table = tableOf(sql, m[1]);
      return GROWING.includes(table);
    });
}

/** The table an alias in sql names ("layers l" → layers). */
function tableOf(sql: string, alias: string): string {
  if (GROWING.includes(alias)) return alias;
  const m = new RegExp(`\\b(\\w+)\\s+(?:AS\\s+)?${alias}\\b`, 'i').exec(sql);
  return m ? m[1] : alias;
}

test('opening the store and create, inspect, mount, umount, rm on one container read no growing table whole', async (t) => {
  const root = scratch(t, 'strata-growth-');
  const setup = await Store.open({ root, driver: 'vfs' });
  const [img] = await setup.load(corpusImage('busybox.oci.tar'));
  for (let i = 0; i < 3; i++) await setup.createContainer(img.id, { name: `other${i}` });
  await setup.close();

  const seen = new Set<string>();
  const prepare = Database.prototype.prepare;
  Database.prototype.prepare = function (this: Database.Database, sql: string) {
    seen.add(sql);
    return prepare.call(this, sql);
  } as typeof prepare;
  let store: Store;
  try {
    store = await Store.open({ root, driver: 'vfs' });
    const c = await store.createContainer(img.id, { name: 'probe' });
    await store.inspectContainer('probe');
    await store.mount('probe');
    await store.unmount('probe');
    await store.removeContainer(c.id);
  } finally {
    Database.prototype.prepare = prepare;
  }
  await store.close();

  const db = new Database(join(root, 'strata.db'), { readonly: true });
  t.after(() => db.close());
  const statements = [...seen].filter((s) => /^\s*(SELECT|UPDATE|DELETE|INSERT)/i.test(s));
  assert.ok(statements.some((s) => /FROM layers l WHERE kind = 'image'/.test(s)), 'the open looked for unused image layers');
  const found = statements.flatMap((s) => scans(db, s).map((d) => `${d}: ${s.replace(/\s+/g, ' ')}`));
  assert.deepEqual(found, []);
});
