// btrfs without root: on a filesystem mounted with user_subvol_rm_allowed a user makes, snapshots
// and deletes subvolumes, so the btrfs driver works rootless there (a container's root equal to
// `umoci unpack`'s through the mapping; removing layers deletes their subvolumes); elsewhere it
// is refused in one line before anything is written. A btrfs loop filesystem of the test's own.
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { scratch, strataBin } from '../helpers/env.js';
import { useBtrfs, type LoopFs } from '../helpers/fsimages.js';
import { fileCleanup, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { comparable, makeUser, nodeBin, strataRoot, umociReference, type TestUser } from '../helpers/rootless.js';
import { diffTrees } from '../helpers/tree.js';
import { runToolSync } from '../../src/sys/run.js';

const files = fileCleanup();
after(files.run);
// At the top: useBtrfs tears down in an after() of the file's own.
const fs: LoopFs = useBtrfs(1024);

describe('rootless btrfs', () => {
  let reg: TestRegistry;
  let user: TestUser;
  let root: string;
  let work: string;

  before(async () => {
    work = scratch(null, 'strata-rootless-btrfs-');
    // The image's dir is private to root: the user must reach the mount point below it.
    chmodSync(dirname(fs.mountPoint), 0o755);
    reg = await startRegistry(files.add);
    await reg.load('busybox');
    await reg.load('edge');
    // Made after the filesystem is mounted: the user's namespace begins with it in view.
    user = makeUser(files.add, 4_200_000);
    root = join(fs.mountPoint, 'store');
    mkdirSync(root);
    chownSync(root, user.uid, user.gid);
  });

  test('refused in one line where the filesystem lacks user_subvol_rm_allowed, with nothing written', () => {
    const r = user.strata(['--root', root, '--driver', 'btrfs', 'pull', '-q', `${reg.host}/corpus/busybox:latest`]);
    assert.equal(r.code, 1);
    assert.equal(
      r.stderr,
      `Error: storage driver btrfs is not usable for ${root}: btrfs without root needs ${root}'s filesystem mounted with user_subvol_rm_allowed\n`,
    );
    // A refused driver makes nothing, not even the store's tmp/ or strata.db.
    assert.deepEqual(readdirSync(root), []);
  });

  test('with user_subvol_rm_allowed: roots equal to umoci unpack\'s, diff, and rm and rmi delete every subvolume', async () => {
    runToolSync('mount', ['-o', 'remount,user_subvol_rm_allowed', fs.mountPoint]);
    const g = ['--root', root, '--driver', 'btrfs'];
    for (const name of ['busybox', 'edge']) {
      const image = `${reg.host}/corpus/${name}:latest`;
      user.ok([...g, 'pull', '-q', image]);
      user.ok([...g, 'create', '--name', name, image, 'sh']);
      const want = await umociReference(work, name);
      assert.deepEqual(diffTrees(comparable(strataRoot(user, g, name), want), want), [], name);
    }
    const mount = [nodeBin, strataBin, ...g, 'mount', 'busybox'].join(' ');
    user.ok([...g, 'unshare', 'sh', '-c', `echo x > "$(${mount})/new"`]);
    user.ok([...g, 'umount', 'busybox']);
    assert.equal(user.ok([...g, 'diff', 'busybox']).trim(), 'A /new');

    const subvolumes = join(root, 'btrfs', 'subvolumes');
    // The image layers (busybox's is edge's first), and each container's init and own layer.
    assert.equal(readdirSync(subvolumes).length, 21 + 2 * 2);
    user.ok([...g, 'rm', 'busybox', 'edge']);
    user.ok([...g, 'rmi', `${reg.host}/corpus/busybox:latest`, `${reg.host}/corpus/edge:latest`]);
    assert.deepEqual(readdirSync(subvolumes), []);
    assert.equal(user.ok([...g, 'check']).trim(), 'no problems found');
  });

  test('a layer size (a qgroup limit) needs root: refused in one line, nothing left behind', () => {
    const g = ['--root', root, '--driver', 'btrfs'];
    user.ok([...g, 'pull', '-q', `${reg.host}/corpus/busybox:latest`]);
    const r = user.strata([...g, 'create', '--storage-opt', 'size=100M', `${reg.host}/corpus/busybox:latest`, 'sh']);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stderr, 'Error: btrfs: a layer size (size=) is a qgroup limit, which needs root\n');
    assert.equal(readdirSync(join(root, 'btrfs', 'subvolumes')).length, 1);
    assert.equal(user.ok([...g, 'ps', '-aq']).trim(), '');
  });
});
