import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { open, lstat, mkdir, readFile, rm, stat, writeFile, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { copyTree } from '../../src/drivers/common/copytree.js';
import { lutimensNs } from '../../src/sys/fileio.js';
import { lgetxattr, statfs, umount2 } from '../../src/sys/linux.js';
import { scratch } from '../helpers/env.js';
import { BINARY_XATTR, buildBaseTree, pseudoRandom } from './fixtures.js';
import { diffTrees, snapshotTree } from '../helpers/tree.js';
import { runToolSync } from '../../src/sys/run.js';

describe('copyTree', () => {
  it('copies every file type, owner, mode, xattr and nanosecond mtime exactly', async (t) => {
    const dir = scratch(t);
    const src = join(dir, 'src');
    await mkdir(src);
    await buildBaseTree(src);
    lutimensNs(join(src, 'empty'), 1_600_000_000_123_456_789n, 1_600_000_000_987_654_321n);
    lutimensNs(join(src, 'sym-abs'), 1_500_000_000_000_000_001n, 1_500_000_000_000_000_002n);
    lutimensNs(join(src, 'sticky'), 1_400_000_000_000_000_003n, 1_400_000_000_000_000_004n);
    const dst = join(dir, 'dst');
    await copyTree(src, dst);
    // Before anything reads the copy (a read may move atime).
    assert.equal((await lstat(join(dst, 'empty'), { bigint: true })).atimeNs, 1_600_000_000_123_456_789n);
    assert.equal((await lstat(join(dst, 'sym-abs'), { bigint: true })).mtimeNs, 1_500_000_000_000_000_002n);
    assert.deepEqual(diffTrees(await snapshotTree(src, { times: 'ns' }), await snapshotTree(dst, { times: 'ns' })), []);
    assert.deepEqual(lgetxattr(join(dst, 'xattr-file'), 'user.binary'), BINARY_XATTR);
    const st = await lstat(join(dst, 'sticky'));
    assert.equal(st.mode & 0o7777, 0o1705);
    assert.equal(`${st.uid}:${st.gid}`, '1:2');
    assert.equal((await lstat(join(dst, 'setuid'))).mode & 0o7777, 0o4755);
  });

  it('keeps hardlinks as one inode and does not link to the source', async (t) => {
    const dir = scratch(t);
    const src = join(dir, 'src');
    await mkdir(src);
    await buildBaseTree(src);
    const dst = join(dir, 'dst');
    await copyTree(src, dst);
    const a = await stat(join(dst, 'links/a'));
    const b = await stat(join(dst, 'links/b'));
    const c = await stat(join(dst, 'other/c'));
    assert.equal(a.ino, b.ino);
    assert.equal(a.ino, c.ino);
    assert.equal(a.nlink, 3);
    assert.notEqual(a.ino, (await stat(join(src, 'links/a'))).ino);
    await writeFile(join(dst, 'links/b'), 'changed in the copy');
    assert.equal(await readFile(join(src, 'links/a'), 'utf8'), 'shared inode');
  });

  it('keeps the holes of a sparse file', async (t) => {
    const dir = scratch(t);
    const src = join(dir, 'src');
    await mkdir(src);
    const size = 256 * 1024 * 1024;
    const fh = await open(join(src, 'sparse'), 'w');
    const block = Buffer.alloc(8192, 0x5a);
    for (const at of [0, 100 * 1024 * 1024, size - block.length]) await fh.write(block, 0, block.length, at);
    await fh.close();
    // A file that ends in a hole: the copy must still have the full length.
    const tail = await open(join(src, 'tail-hole'), 'w');
    await tail.write(block, 0, block.length, 4096);
    await tail.truncate(64 * 1024 * 1024);
    await tail.close();
    const dst = join(dir, 'dst');
    await copyTree(src, dst);
    for (const name of ['sparse', 'tail-hole']) {
      const s = await stat(join(src, name));
      const d = await stat(join(dst, name));
      assert.equal(d.size, s.size, `${name} size`);
      assert.ok(d.blocks <= s.blocks + 64, `${name}: ${d.blocks} blocks in the copy vs ${s.blocks} in the source`);
      assert.ok(d.blocks * 512 < 1024 * 1024, `${name} copy is not sparse (${d.blocks} blocks)`);
    }
    assert.deepEqual(diffTrees(await snapshotTree(src, { times: 'files' }), await snapshotTree(dst, { times: 'files' })), []);
  });

  it('copies into an existing empty directory and refuses a non-empty one', async (t) => {
    const dir = scratch(t);
    const src = join(dir, 'src');
    await mkdir(src, { mode: 0o750 });
    await writeFile(join(src, 'f'), 'x');
    await symlink('f', join(src, 'l'));
    const empty = join(dir, 'empty');
    await mkdir(empty);
    await copyTree(src, empty);
    assert.equal((await stat(empty)).mode & 0o7777, 0o750);
    assert.equal(await readFile(join(empty, 'l'), 'utf8'), 'x');
    await assert.rejects(copyTree(src, empty), /is not empty/);
    await assert.rejects(copyTree(join(src, 'f'), join(dir, 'x')), /is not a directory/);
  });

  it('shares blocks instead of copying on a reflink filesystem (loop-mounted xfs)', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'strata-xfs-'));
    const mnt = join(dir, 'mnt');
    let mounted = false;
    t.after(async () => {
      if (mounted) umount2(mnt); // the loop device goes with it (mount -o loop sets autoclear)
      await rm(dir, { recursive: true, force: true });
    });
    const img = join(dir, 'xfs.img');
    const fh = await open(img, 'w');
    await fh.truncate(512 * 1024 * 1024);
    await fh.close();
    runToolSync('mkfs.xfs', ['-q', '-m', 'reflink=1', img]);
    await mkdir(mnt);
    runToolSync('mount', ['-o', 'loop', img, mnt]);
    mounted = true;
    const src = join(mnt, 'src');
    await mkdir(src);
    const big = pseudoRandom(96 * 1024 * 1024);
    await writeFile(join(src, 'big'), big);
    runToolSync('sync', ['-f', mnt]);
    const free = () => {
      const s = statfs(mnt);
      return Number(s.blocksFree) * s.blockSize;
    };
    const before = free();
    await copyTree(src, join(mnt, 'dst'));
    runToolSync('sync', ['-f', mnt]);
    const used = before - free();
    assert.ok(used < 8 * 1024 * 1024, `copy used ${used} bytes of a 96 MiB file: not reflinked`);
    assert.ok(big.equals(await readFile(join(mnt, 'dst/big'))));
  });
});
