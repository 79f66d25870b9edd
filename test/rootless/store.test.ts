// Rootless strata, as a user of the test's own: the defaults for a user, every corpus image
// pulled from a local registry giving a container root equal to `umoci unpack`'s (owners read
// inside the user namespace, so compared through the mapping) on overlay2, fuse-overlayfs and
// vfs; Podman, rootless as the same user, as the oracle for owners and modes; diff, commit and
// push; login into the user's own config; drivers that need root; and a user without
// subordinate ids, who gets a single-id mapping and a one-line error for what it cannot hold.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { scratch, strataBin } from '../helpers/env.js';
import { fileCleanup, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { comparable, dumpTree, makeUser, nodeBin, parseTree, strataRoot, umociReference, type TestUser } from '../helpers/rootless.js';
import { diffTrees } from '../helpers/tree.js';
import { runToolSync } from '../../src/sys/run.js';

const IMAGES = ['busybox', 'nginx', 'edge', 'deep', 'multiarch', 'app', 'xattr', 'busybox-zstd'];
/** Every corpus image on each driver; umoci's roots are unpacked and walked once for all three. */
const DRIVERS = ['overlay2', 'fuse-overlayfs', 'vfs'];
/** Images Podman unpacks too, per driver (Podman's driver of the same kind). */
const PODMAN: Record<string, { driver: string; images: string[] }> = {
  overlay2: { driver: 'overlay', images: ['edge', 'nginx', 'xattr'] },
  vfs: { driver: 'vfs', images: ['edge'] },
};
/** edge has a file owned by 3000000:4000000: the range must reach past it. */
const SUBIDS = 4_200_000;

const files = fileCleanup();
after(files.run);

describe('rootless strata', () => {
  let reg: TestRegistry;
  let user: TestUser;
  let work: string;
  let shared: string;

  before(async () => {
    work = scratch(null, 'strata-rootless-');
    reg = await startRegistry(files.add);
    for (const name of IMAGES) await reg.load(name);
    user = makeUser(files.add, SUBIDS);
    // A shared mount of the test's own, before the user's namespace begins: what is mounted
    // under it later propagates (this host's / is private, so nothing else would).
    shared = join(user.home, 'shared');
    mkdirSync(shared);
    runToolSync('mount', ['--bind', shared, shared]);
    files.add(() => void spawnSync('umount', ['-l', shared]));
    runToolSync('mount', ['--make-shared', shared]);
  });

  test("a user's defaults: the store in ~/.local/share/strata (0700), the runtime dir in /tmp, info says rootless with the mapping", () => {
    const info = JSON.parse(user.ok(['info', '--format', 'json'])) as Record<string, unknown>;
    const store = join(user.home, '.local', 'share', 'strata');
    assert.equal(info.DockerRootDir, store);
    assert.equal(info.Rootless, true);
    assert.equal(info.Driver, 'overlay2');
    const sub = readFileSync('/etc/subuid', 'utf8').split('\n').find((l) => l.startsWith(`${user.name}:`))!.split(':');
    assert.deepEqual((info.IDMappings as { UIDMap: unknown }).UIDMap, [
      { inside: 0, outside: user.uid, count: 1 },
      { inside: 1, outside: Number(sub[1]), count: SUBIDS },
    ]);
    const st = statSync(store);
    assert.equal(st.mode & 0o777, 0o700);
    assert.equal(st.uid, user.uid);
    assert.ok(existsSync(`/tmp/strata-run-${user.uid}/userns.pid`));
    const text = user.ok(['info']);
    assert.match(text, /^ Rootless: true$/m);
    assert.match(text, new RegExp(`^  UID: 0:${user.uid}:1, 1:${sub[1]}:${SUBIDS}$`, 'm'));
    // XDG_DATA_HOME moves the store, as Podman's.
    const xdg = join(user.home, 'xdg');
    assert.equal(user.ok(['info', '--format', '{{.DockerRootDir}}'], { env: { XDG_DATA_HOME: xdg } }).trim(), join(xdg, 'strata'));
  });

  test('a filesystem the host mounts after the namespace began shows inside it (slave propagation)', () => {
    const late = join(shared, 'late');
    mkdirSync(late);
    runToolSync('mount', ['-t', 'tmpfs', '-o', `size=64m,uid=${user.uid},gid=${user.gid},mode=0700`, 'strata-rootless-late', late]);
    try {
      assert.equal(user.ok(['--root', join(late, 'store'), '--driver', 'vfs', 'info', '--format', '{{.DockerRootDir}}']).trim(), join(late, 'store'));
    } finally {
      runToolSync('umount', ['-l', late]);
    }
  });

  for (const driver of DRIVERS) {
    describe(`${driver}`, () => {
      // overlay2 is what a user gets by default; the others have roots of their own.
      const globals = driver === 'overlay2' ? [] : ['--root', `/home/PLACEHOLDER/store-${driver}`, '--driver', driver];
      const g = () => globals.map((a) => a.replace('/home/PLACEHOLDER', user.home));

      for (const name of IMAGES) {
        test(`${name}: pulled as the user, a container's root equals umoci unpack's through the mapping`, async () => {
          user.ok([...g(), 'pull', '-q', `${reg.host}/corpus/${name}:latest`]);
          user.ok([...g(), 'create', '--name', `c-${name}`, `${reg.host}/corpus/${name}:latest`, 'sh']);
          const got = strataRoot(user, g(), `c-${name}`);
          const want = await umociReference(work, name);
          assert.deepEqual(diffTrees(comparable(got, want), want), []);

          const podman = PODMAN[driver];
          if (!podman?.images.includes(name)) return;
          const p = [
            'podman', '--root', join(user.home, `podman-${driver}`, 'root'), '--runroot', join(user.home, `podman-${driver}`, 'run'),
            '--storage-driver', podman.driver, '--cgroup-manager', 'cgroupfs', '--events-backend', 'file',
          ];
          const pull = user.run([...p, 'pull', '-q', '--tls-verify=false', `${reg.host}/corpus/${name}:latest`]);
          assert.equal(pull.code, 0, pull.stderr);
          const created = user.run([...p, 'create', '--name', `p-${name}`, `${reg.host}/corpus/${name}:latest`, 'sh']);
          assert.equal(created.code, 0, created.stderr);
          const dump = user.run([...p, 'unshare', 'sh', '-c', `m=$(${p.join(' ')} mount p-${name}) && exec ${dumpTree.join(' ')} "$m"`]);
          assert.equal(dump.code, 0, dump.stderr);
          const oracle = comparable(parseTree(dump.stdout), want);
          // Podman is the oracle for what a user namespace can hold: owners, modes, types. Its
          // own layer dirs are 0555 whatever the image says, and that shows as the root's mode
          // (umoci, and Docker, give / the image's 0755: checked above).
          assert.deepEqual(diffTrees(comparable(got, oracle), oracle, { ignore: ['mtime'], skip: (p) => p === '' }), []);
        });
      }
    });
  }

  test('diff, commit and push as the user: the pushed layer holds the owners the container gave its files', () => {
    user.ok(['create', '--name', 'changer', `${reg.host}/corpus/busybox:latest`, 'sh']);
    const mount = [nodeBin, strataBin, 'mount', 'changer'].join(' ');
    user.ok(['unshare', 'sh', '-c', `m=$(${mount}) && echo new > "$m/new-file" && chown 1234:5678 "$m/new-file" && rm "$m/etc/passwd" && mkdir "$m/tmp/d"`]);
    user.ok(['umount', 'changer']);
    assert.deepEqual(user.ok(['diff', 'changer']).trim().split('\n'), ['C /etc', 'D /etc/passwd', 'A /new-file', 'C /tmp', 'A /tmp/d']);
    user.ok(['commit', 'changer', `${reg.host}/rootless/changed:1`]);
    user.ok(['push', `${reg.host}/rootless/changed:1`]);

    const layout = join(work, 'pushed');
    runToolSync('skopeo', ['copy', '-q', '--src-tls-verify=false', `docker://${reg.host}/rootless/changed:1`, `oci:${layout}:x`]);
    const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    const blob = (d: string) => join(layout, 'blobs', 'sha256', d.slice('sha256:'.length));
    const manifest = JSON.parse(readFileSync(blob(index.manifests[0]!.digest), 'utf8')) as { layers: { digest: string }[] };
    assert.equal(manifest.layers.length, 2);
    const listing = runToolSync('tar', ['-tvzf', blob(manifest.layers[1]!.digest), '--numeric-owner']);
    assert.match(listing, /^-rw\S+ 1234\/5678 .* new-file$/m);
    assert.match(listing, /^\S+ 0\/0 .* etc\/\.wh\.passwd$/m);
    assert.match(listing, /^d\S+ 0\/0 .* tmp\/d\/$/m);
  });

  test("login writes the user's own ~/.docker/config.json", async () => {
    const authReg = await startRegistry(files.add, { auth: 'htpasswd', user: 'u', password: 'p' });
    user.ok(['login', '-u', 'u', '--password-stdin', authReg.host], { input: 'p\n' });
    const config = join(user.home, '.docker', 'config.json');
    assert.equal(statSync(config).uid, user.uid);
    assert.ok((JSON.parse(readFileSync(config, 'utf8')) as { auths: Record<string, unknown> }).auths[authReg.host]);
  });

  test('drivers that need root say so in one line', () => {
    for (const driver of ['zfs', 'devicemapper', 'aufs']) {
      const r = user.strata(['--root', join(user.home, `store-${driver}`), '--driver', driver, 'info']);
      assert.equal(r.code, 1, driver);
      assert.equal(r.stderr, `Error: storage driver ${driver} is not usable for ${join(user.home, `store-${driver}`)}: ${driver} needs root; without root use overlay2, fuse-overlayfs or vfs\n`);
    }
  });

  test('nothing is written outside the user\'s home and runtime dir', () => {
    // What strata writes as root of the namespace is the user's on the host (the ids of the
    // subordinate range are not looked for: root's own files, umoci's for one, may carry them).
    const found = runToolSync('find', ['/tmp', '/var/tmp', '/dev/shm', '/run', '-xdev', '-uid', String(user.uid), '-prune', '-print'], { okCodes: [0, 1] })
      .split('\n')
      // strata's runtime dir, and what the Podman oracle leaves.
      .filter((p) => p !== '' && p !== `/tmp/strata-run-${user.uid}` && !/^\/(tmp\/(podman-run|containers-user|storage-run)|dev\/shm\/libpod_rootless_lock)[-_]\d+$/.test(p));
    assert.deepEqual(found, []);
  });
});

describe('a user without subordinate ids', () => {
  let reg: TestRegistry;
  let user: TestUser;

  before(async () => {
    reg = await startRegistry(files.add);
    await reg.load('busybox');
    await reg.load('nginx');
    user = makeUser(files.add, 0);
  });

  test('gets a single-id mapping with a warning, pulls what it can hold, and a one-line error for the rest, with no half-written layer', () => {
    const first = user.strata(['pull', '-q', `${reg.host}/corpus/busybox:latest`]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stderr, /level=warn msg=".*no subordinate ids in \/etc\/subuid and \/etc\/subgid: only uid \d+ and gid \d+ are mapped/);
    const info = JSON.parse(user.ok(['info', '--format', 'json'])) as { IDMappings: { UIDMap: unknown; GIDMap: unknown }; Layers: number };
    assert.deepEqual(info.IDMappings.UIDMap, [{ inside: 0, outside: user.uid, count: 1 }]);
    assert.deepEqual(info.IDMappings.GIDMap, [{ inside: 0, outside: user.gid, count: 1 }]);

    const r = user.strata(['pull', '-q', `${reg.host}/corpus/nginx:latest`]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^Error: .*its owner \d+:\d+: the user namespace does not map that id; give the user a subordinate range that covers it in \/etc\/subuid and \/etc\/subgid\n$/);
    assert.equal(r.stderr.split('\n').length, 2, r.stderr);
    assert.equal(user.ok(['images', '-q']).trim().split('\n').length, 1);
    assert.equal((JSON.parse(user.ok(['info', '--format', 'json'])) as { Layers: number }).Layers, 1);
    // The failed layers are gone from the driver too: its home holds busybox's layer and l/.
    const home = join(user.home, '.local', 'share', 'strata', 'overlay2');
    mkdirSync(home, { recursive: true });
    assert.equal(runToolSync('ls', [home]).trim().split('\n').length, 2);
    assert.equal(user.ok(['check']).trim(), 'no problems found');
  });
});
