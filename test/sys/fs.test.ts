// The small file-system pieces at the bottom: writeFileAtomic (whole file or none, no temp
// left), errno helpers, and the mount table read from /proc/self/mountinfo, checked against a
// tmpfs this test mounts itself (with a space in its path, which mountinfo escapes).
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { isCode, lstatOrNull } from '../../src/sys/errno.js';
import { writeFileAtomic, writeFileAtomicAsync } from '../../src/sys/fileio.js';
import { mount, umount2, MNT_DETACH } from '../../src/sys/linux.js';
import { isMountPoint, mountsUnder, readMounts } from '../../src/sys/mountinfo.js';
import { scratch } from '../helpers/env.js';

test('writeFileAtomic (and its async twin) replaces a file whole, with its mode, and leaves no temp file', async (t) => {
  for (const write of [writeFileAtomic, writeFileAtomicAsync]) {
    const dir = scratch(t);
    const file = join(dir, 'link');
    writeFileSync(`${file}.tmp`, 'stale half-written temp');
    await write(file, 'first', 0o600);
    await write(file, Buffer.from('second'), 0o600);
    assert.equal(readFileSync(file, 'utf8'), 'second', write.name);
    assert.equal(statSync(file).mode & 0o777, 0o600, write.name);
    assert.deepEqual(readdirSync(dir), ['link'], write.name);
  }
});

test('isCode reads errno codes; lstatOrNull says null for a missing path or a file used as a directory', (t) => {
  const dir = scratch(t);
  writeFileSync(join(dir, 'f'), '');
  assert.equal(lstatOrNull(join(dir, 'missing')), null);
  assert.equal(lstatOrNull(join(dir, 'f', 'below')), null);
  assert.equal(lstatOrNull(join(dir, 'f'))?.isFile(), true);
  assert.equal(typeof lstatOrNull(join(dir, 'f'), { bigint: true })?.ino, 'bigint');
  let err: unknown;
  try {
    statSync(join(dir, 'missing'));
  } catch (e) {
    err = e;
  }
  assert.equal(isCode(err, 'EEXIST', 'ENOENT'), true);
  assert.equal(isCode(err, 'EEXIST'), false);
  assert.equal(isCode(null, 'ENOENT'), false);
  assert.equal(isCode(new Error('plain'), 'ENOENT'), false);
});

test('the mount table sees a tmpfs mounted below a path with a space, deepest first', (t) => {
  const dir = join(scratch(t), 'with space');
  const outer = join(dir, 'outer');
  const inner = join(outer, 'inner');
  mkdirSync(outer, { recursive: true });
  mount('tmpfs', outer, 'tmpfs', 0, 'size=1m');
  t.after(() => {
    for (const mp of mountsUnder(dir)) umount2(mp, MNT_DETACH);
  });
  mkdirSync(inner);
  mount('tmpfs', inner, 'tmpfs', 0, 'size=1m');
  assert.deepEqual(mountsUnder(dir), [inner, outer]);
  assert.equal(isMountPoint(outer), true);
  assert.equal(isMountPoint(`${outer}/`), true);
  assert.equal(isMountPoint(dir), false);
  assert.equal(readMounts().find((m) => m.mountPoint === inner)?.fsType, 'tmpfs');
  umount2(inner);
  umount2(outer);
  assert.deepEqual(mountsUnder(dir), []);
  assert.ok(existsSync(outer));
});
