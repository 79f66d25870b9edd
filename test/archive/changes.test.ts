import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, rmSync, symlinkSync, unlinkSync, writeFileSync, linkSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { applyLayer } from '../../src/archive/apply.js';
import { changesBetween } from '../../src/archive/changes.js';
import { exportChanges, packDirectory } from '../../src/archive/pack.js';
import { readTar } from '../../src/archive/tar/reader.js';
import { TarWriter } from '../../src/archive/tar/writer.js';
import { lsetxattr } from '../../src/sys/linux.js';
import { scratch } from '../helpers/env.js';
import { diffTrees, snapshotTree } from '../helpers/tree.js';
import { collect } from './tarfixtures.js';
import { runToolSync } from '../../src/sys/run.js';

function baseTree(dir: string): string {
  const lower = join(dir, 'lower');
  mkdirSync(join(lower, 'etc', 'conf.d'), { recursive: true });
  mkdirSync(join(lower, 'var', 'lib', 'gone', 'deep'), { recursive: true });
  writeFileSync(join(lower, 'etc', 'passwd'), 'root:x:0:0\n');
  writeFileSync(join(lower, 'etc', 'conf.d', 'a.conf'), 'a\n');
  writeFileSync(join(lower, 'etc', 'delete-me'), 'x\n');
  writeFileSync(join(lower, 'var', 'lib', 'gone', 'deep', 'f'), 'f\n');
  writeFileSync(join(lower, 'mode'), 'm\n');
  mkdirSync(join(lower, 'was-dir'));
  writeFileSync(join(lower, 'was-dir', 'inside'), 'i\n');
  symlinkSync('etc/passwd', join(lower, 'link'));
  runToolSync('touch', ['-d', '2001-01-01', join(lower, 'etc', 'passwd'), join(lower, 'mode')]);
  return lower;
}

function modify(upper: string): void {
  writeFileSync(join(upper, 'etc', 'new'), 'new\n');
  mkdirSync(join(upper, 'opt', 'app'), { recursive: true });
  writeFileSync(join(upper, 'opt', 'app', 'bin'), 'bin\n');
  linkSync(join(upper, 'opt', 'app', 'bin'), join(upper, 'opt', 'app', 'bin2'));
  unlinkSync(join(upper, 'etc', 'delete-me'));
  rmSync(join(upper, 'var', 'lib', 'gone'), { recursive: true });
  chmodSync(join(upper, 'mode'), 0o4711);
  unlinkSync(join(upper, 'link'));
  symlinkSync('etc/new', join(upper, 'link'));
  lsetxattr(join(upper, 'etc', 'conf.d', 'a.conf'), 'user.tag', Buffer.from([0, 255]));
  // A directory that became a file is one C: Docker does not report what was inside as deleted.
  rmSync(join(upper, 'was-dir'), { recursive: true });
  writeFileSync(join(upper, 'was-dir'), 'now a file\n');
}

test('changesBetween follows Docker ChangesDirs, exportChanges re-creates the upper tree', async (t) => {
  const dir = scratch(t);
  const lower = baseTree(dir);
  const upper = join(dir, 'upper');
  runToolSync('cp', ['-a', lower, upper]);
  modify(upper);
  const changes = await changesBetween(lower, upper);
  assert.deepEqual(
    changes.map((c) => `${c.kind} ${c.path}`),
    [
      'C /etc',
      'C /etc/conf.d',
      'C /etc/conf.d/a.conf',
      'D /etc/delete-me',
      'A /etc/new',
      'C /link',
      'C /mode',
      'A /opt',
      'A /opt/app',
      'A /opt/app/bin',
      'A /opt/app/bin2',
      'C /var',
      'C /var/lib',
      'D /var/lib/gone',
      'C /was-dir',
    ],
  );
  assert.equal((await changesBetween(null, lower)).every((c) => c.kind === 'A'), true);

  const layer = await collect(exportChanges(upper, changes));
  assert.deepEqual(await collect(exportChanges(upper, changes)), layer, 'deterministic');
  const names: string[] = [];
  for await (const e of readTar(Readable.from([layer]))) names.push(`${e.header.type}:${e.header.name}`);
  assert.ok(names.includes('file:etc/.wh.delete-me'));
  assert.ok(names.includes('hardlink:opt/app/bin2'));
  const replay = join(dir, 'replay');
  runToolSync('cp', ['-a', lower, replay]);
  await applyLayer(replay, Readable.from([layer]), { whiteouts: 'snapshot' });
  assert.deepEqual(diffTrees(await snapshotTree(replay), await snapshotTree(upper), { skip: (p) => p === '' }), []);
});

test('packDirectory with overlay whiteouts round-trips through an overlay apply, and in aufs form', async (t) => {
  const dir = scratch(t);
  const w = new TarWriter();
  const p = (async () => {
    const d = (name: string) => w.add({ name, type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 1000 });
    await d('etc');
    await w.add({ name: 'etc/.wh.delete-me', type: 'file', mode: 0o600, uid: 0, gid: 0, size: 0, mtime: 1000 });
    await w.add({ name: 'etc/new', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 3, mtime: 1000 }, Buffer.from('new'));
    await d('var');
    await d('var/lib');
    await w.add({ name: 'var/lib/.wh..wh..opq', type: 'file', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 1000 });
    await w.add({ name: 'var/lib/fresh', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 1000 });
    await w.finish();
  })();
  const layer = await collect(w.stream);
  await p;
  const upper = join(dir, 'upper');
  mkdirSync(upper);
  await applyLayer(upper, Readable.from([layer]), { whiteouts: 'overlay' });
  const packed = await collect(packDirectory(upper, { whiteouts: 'overlay' }));
  const names: string[] = [];
  for await (const e of readTar(Readable.from([packed]))) names.push(e.header.name);
  assert.deepEqual(names, ['etc', 'etc/.wh.delete-me', 'etc/new', 'var', 'var/lib', 'var/lib/.wh..wh..opq', 'var/lib/fresh']);
  assert.deepEqual(await collect(packDirectory(upper, { whiteouts: 'overlay' })), packed, 'deterministic');

  // the same layer in aufs form
  const aufs = join(dir, 'aufs');
  mkdirSync(aufs);
  await applyLayer(aufs, Readable.from([layer]), { whiteouts: 'aufs' });
  assert.deepEqual(readdirSync(join(aufs, 'etc')).sort(), ['.wh.delete-me', 'new']);
  const aufsPacked = await collect(packDirectory(aufs, { whiteouts: 'aufs' }));
  const an: string[] = [];
  for await (const e of readTar(Readable.from([aufsPacked]))) an.push(e.header.name);
  assert.ok(an.includes('etc/.wh.delete-me') && an.includes('var/lib/.wh..wh..opq'));
});
