// The metadata database on a real file: created at the current schema version, reopened as is,
// refused when a newer strata wrote it, and writeTx all-or-nothing.
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { openDatabase, writeTx } from '../../src/store/db.js';
import { scratch } from '../helpers/env.js';

describe('openDatabase', () => {
  test('creates every table in WAL mode, and a second open finds them as they were', (t) => {
    const root = scratch(t);
    const db = openDatabase(root);
    const version = db.pragma('user_version', { simple: true }) as number;
    assert.ok(version >= 3);
    assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((r) => r.name);
    for (const name of ['blob_sources', 'containers', 'images', 'layer_blobs', 'layers', 'names', 'repo_digests', 'run_state']) assert.ok(tables.includes(name), name);
    db.prepare("INSERT INTO layers (id, kind, state, created) VALUES ('x', 'image', 'complete', 'now')").run();
    db.close();
    const again = openDatabase(root);
    t.after(() => again.close());
    assert.equal(again.pragma('user_version', { simple: true }), version);
    assert.deepEqual(again.prepare('SELECT id FROM layers').all(), [{ id: 'x' }]);
  });

  test('refuses a database a newer strata wrote, in one line, and leaves it as it was', (t) => {
    const root = scratch(t);
    openDatabase(root).close();
    const raw = new Database(join(root, 'strata.db'));
    raw.pragma('user_version = 999');
    raw.close();
    assert.throws(() => openDatabase(root), /schema version 999, newer than this strata/);
    const check = new Database(join(root, 'strata.db'), { readonly: true });
    t.after(() => check.close());
    assert.equal(check.pragma('user_version', { simple: true }), 999);
  });
});

describe('writeTx', () => {
  test('a throw rolls back every write; nested calls join the outer transaction', (t) => {
    const db = openDatabase(scratch(t));
    t.after(() => db.close());
    const insert = (id: string) => db.prepare("INSERT INTO layers (id, kind, state, created) VALUES (?, 'image', 'complete', 'now')").run(id);
    assert.throws(
      () =>
        writeTx(db, () => {
          insert('a');
          writeTx(db, () => insert('b'));
          throw new Error('boom');
        }),
      /boom/,
    );
    assert.deepEqual(db.prepare('SELECT id FROM layers').all(), []);
    assert.equal(
      writeTx(db, () => {
        insert('a');
        writeTx(db, () => insert('b'));
        return 2;
      }),
      2,
    );
    assert.deepEqual(db.prepare('SELECT id FROM layers ORDER BY id').all(), [{ id: 'a' }, { id: 'b' }]);
  });
});
