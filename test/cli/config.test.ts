// The configuration file (issue #15 item 10): `--config FILE` with Docker's daemon.json keys.
// Registry mirrors are tested without the internet: a local docker-registry holds busybox under
// its Docker Hub path (library/busybox), and `pull docker.io/library/busybox` must come from it;
// a mirror that is down or lacks the image is passed over, and when every place fails the error
// names what each mirror answered. A mirror is also run as sites run one: docker-registry as a
// pull-through cache (proxy.remoteurl) in front of that registry. Whenever strata would fall back
// to Docker Hub, it runs in a private mount namespace whose /etc/hosts names registry-1.docker.io
// as a loopback address where a third local registry answers (trusted through certs.d there), so
// nothing leaves 127.0.0.0/8. Never touches /etc/strata/daemon.json.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { corpusImage, scratch, strataBin } from '../helpers/env.js';
import { fileCleanup, freePort, startRegistry, storedBlobs, type TestRegistry } from '../helpers/registry.js';
import { runToolSync } from '../../src/sys/run.js';

const files = fileCleanup();
after(files.run);
let mirror: TestRegistry;
/** Stands in for Docker Hub: HTTPS on 127.a.b.c:443 with a certificate for registry-1.docker.io. */
let hub: TestRegistry;
/** /etc/hosts and /etc/docker for strata's private mount namespace, pointing Docker Hub at `hub`. */
let pinned: { hosts: string; etcDocker: string };

function holdBusybox(reg: TestRegistry) {
  runToolSync('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', '--preserve-digests',
    `oci-archive:${corpusImage('busybox.oci.tar')}:latest`, `docker://${reg.host}/library/busybox:latest`], { ignoreStdout: true });
}

before(async () => {
  mirror = await startRegistry(files.add);
  holdBusybox(mirror);
  // A random loopback address of its own: port 443 there is free whatever else runs on this machine.
  const b = () => 1 + Math.floor(Math.random() * 250);
  hub = await startRegistry(files.add, { accessLog: true, tls: true, tlsName: 'registry-1.docker.io', listen: { address: `127.${b()}.${b()}.${b()}`, port: 443 } });
  holdBusybox(hub);
  const dir = scratch(null, 'strata-pinned-hub-');
  pinned = { hosts: join(dir, 'hosts'), etcDocker: join(dir, 'etc-docker') };
  writeFileSync(pinned.hosts, `127.0.0.1 localhost\n${hub.host.split(':')[0]} registry-1.docker.io\n`);
  mkdirSync(join(pinned.etcDocker, 'certs.d', 'registry-1.docker.io'), { recursive: true });
  writeFileSync(join(pinned.etcDocker, 'certs.d', 'registry-1.docker.io', 'ca.crt'), readFileSync(join(hub.dir, 'ca.crt')));
});

/** strata with only the config file's settings; `pinHub` runs it where Docker Hub is `hub`. */
function strata(args: string[], pinHub = false) {
  // No STRATA_ROOT / STRATA_DRIVER from the caller: they would win over the file.
  const env = { ...process.env };
  delete env.STRATA_ROOT;
  delete env.STRATA_DRIVER;
  const argv = [process.execPath, strataBin, ...args];
  const r = pinHub
    ? spawnSync('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c',
        'mount --bind "$1" /etc/hosts && mount --bind "$2" /etc/docker && shift 2 && exec "$@"', 'sh', pinned.hosts, pinned.etcDocker, ...argv],
      { encoding: 'utf8', env })
    : spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', env });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** A config file in a scratch dir whose store root is `<dir>/root` on vfs, plus `extra` keys. */
function configIn(t: { after(fn: () => void): void }, extra: Record<string, unknown> = {}) {
  const dir = scratch(t, 'strata-config-');
  const file = join(dir, 'daemon.json');
  writeFileSync(file, JSON.stringify({ 'data-root': join(dir, 'root'), 'storage-driver': 'vfs', ...extra }));
  return { dir, file };
}

describe('daemon.json through --config', () => {
  test('data-root, storage-driver, storage-opts and log-level come from the file; flags win', (t) => {
    const { dir, file } = configIn(t, { 'log-level': 'debug', 'storage-opts': [] });
    const loaded = strata(['--config', file, 'load', '-i', corpusImage('busybox.docker.tar')]);
    assert.equal(loaded.code, 0, loaded.stderr);
    assert.match(loaded.stderr, /level=debug msg="store .*\/root opened with driver vfs"/);
    assert.ok(existsSync(join(dir, 'root', 'vfs')), 'the store is at data-root, on vfs');
    const info = JSON.parse(strata(['--config', file, 'info', '--format', 'json']).stdout);
    assert.equal(info.DockerRootDir, join(dir, 'root'));
    assert.equal(info.Images, 1);

    const quiet = strata(['--config', file, '-l', 'info', '--root', join(dir, 'other'), '-s', 'overlay2', 'info', '--format', '{{.Driver}} {{.DockerRootDir}}']);
    assert.deepEqual([quiet.code, quiet.stdout, quiet.stderr], [0, `overlay2 ${join(dir, 'other')}\n`, '']);

    const opts = configIn(t, { 'storage-opts': ['vfs.bogus=1'] });
    const refused = strata(['--config', opts.file, 'images']);
    assert.deepEqual([refused.code, refused.stderr], [1, 'Error: vfs: unknown storage option vfs.bogus\n']);
  });

  test('a key strata does not know, a wrong value or a missing file is one error line, and nothing is made', (t) => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ hosts: ['unix:///x'], debug: true }, /the following directives don't match any configuration option: hosts, debug$/],
      [{ 'storage-opts': 'size=1G' }, /storage-opts must be a list of strings$/],
      [{ 'log-level': 'loud' }, /log-level must be one of debug, info, warn, error, fatal$/],
      [{ 'registry-mirrors': ['https://mirror.example/v2/'] }, /invalid mirror: path, query, or fragment at end of the URI "https:\/\/mirror.example\/v2\/"$/],
    ];
    for (const [extra, message] of cases) {
      const { dir, file } = configIn(t, extra);
      const r = strata(['--config', file, 'images']);
      assert.equal(r.code, 1, JSON.stringify(extra));
      assert.equal(r.stderr.split('\n').filter(Boolean).length, 1, r.stderr);
      assert.match(r.stderr.trim(), new RegExp(`^Error: unable to configure strata with file ${file}: ${message.source}`));
      assert.equal(existsSync(join(dir, 'root')), false, 'no store was made');
    }
    const missing = strata(['--config', '/nonexistent/daemon.json', 'images']);
    assert.deepEqual([missing.code, missing.stderr], [1, 'Error: unable to configure strata with file /nonexistent/daemon.json: no such file or directory\n']);
  });
});

describe('registry-mirrors', () => {
  test('pull docker.io/library/busybox comes from the mirror; info lists it', (t) => {
    const { file } = configIn(t, { 'registry-mirrors': [`http://${mirror.host}`], 'insecure-registries': ['registry.example:5000'] });
    const r = strata(['--config', file, 'pull', 'docker.io/library/busybox']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /docker\.io\/library\/busybox:latest\n$/);
    assert.match(strata(['--config', file, 'images', '--format', '{{.Repository}}:{{.Tag}}']).stdout, /^busybox:latest$/m);
    const info = strata(['--config', file, 'info']).stdout;
    assert.match(info, new RegExp(` Insecure Registries:\n  registry\\.example:5000\n  127\\.0\\.0\\.0/8\n Registry Mirrors:\n  http://${mirror.host}/\n`));
  });

  test('a mirror that is down is passed over for the next one', async (t) => {
    const down = `127.0.0.1:${await freePort()}`;
    const { file } = configIn(t, { 'registry-mirrors': [`http://${down}`, `http://${mirror.host}`] });
    const r = strata(['--config', file, 'pull', 'busybox']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`mirror ${down} did not serve busybox:latest`));
  });

  test('an image no mirror has falls back to Docker Hub, and the error says what each place answered', (t) => {
    const { file } = configIn(t, { 'registry-mirrors': [`http://${mirror.host}`] });
    const r = strata(['--config', file, '-l', 'error', 'pull', 'docker.io/library/not-on-the-mirror:1'], true);
    assert.equal(r.code, 1);
    const lines = r.stderr.split('\n').filter(Boolean);
    assert.equal(lines.length, 1, r.stderr);
    // Docker Hub is asked (the stand-in lacks the image too), then the mirror's answer is named.
    assert.match(lines[0], /registry-1\.docker\.io/);
    assert.match(lines[0], new RegExp(`\\(and mirror ${mirror.host}: .*(manifest unknown|not found)`, 'i'));
    // A reference of another registry never goes to the mirror.
    const other = strata(['--config', file, '-l', 'error', 'pull', `127.0.0.1:${mirror.port}/library/busybox`]);
    assert.equal(other.code, 0, other.stderr);
  });
});

describe('a pull-through cache as the mirror (docker-registry with proxy.remoteurl)', () => {
  /** The blob digests the access log shows GETs of, in `repo`. */
  const blobGets = (log: string, repo: string) => [...log.matchAll(new RegExp(`"GET /v2/${repo}/blobs/(sha256:[0-9a-f]{64}) `, 'g'))].map((m) => m[1]);

  test('busybox comes through the cache, which keeps its blobs; with the cache down it comes from Docker Hub', async (t) => {
    const cache = await startRegistry((fn) => t.after(fn), { proxy: `http://${mirror.host}`, accessLog: true });
    const { file } = configIn(t, { 'registry-mirrors': [`http://${cache.host}`] });
    const r = strata(['--config', file, 'pull', 'busybox'], true);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /docker\.io\/library\/busybox:latest\n$/);
    // The logs reach this process once its event loop runs again (spawnSync held it), and the cache
    // writes what it relays to its own storage as it serves it: wait for both.
    const settled = async (done: () => boolean) => {
      for (const end = Date.now() + 10_000; !done() && Date.now() < end; ) await new Promise((res) => setTimeout(res, 100));
    };
    const fromCache = () => blobGets(cache.log(), 'library/busybox');
    const missing = () => fromCache().filter((d) => !storedBlobs(cache.storage).includes(d));
    await settled(() => fromCache().length >= 2 && missing().length === 0);
    const asked = fromCache();
    assert.ok(asked.length >= 2, `strata fetched the config and the layers from the cache:\n${cache.log()}`);
    assert.deepEqual(missing(), [], 'every blob strata read is in the cache');
    assert.equal(blobGets(hub.log(), 'library/busybox').length, 0, 'nothing came from Docker Hub');
    assert.match(strata(['--config', file, 'info']).stdout, new RegExp(` Registry Mirrors:\n  http://${cache.host}/\n`));

    await cache.stop();
    const again = configIn(t, { 'registry-mirrors': [`http://${cache.host}`] });
    const fallback = strata(['--config', again.file, 'pull', 'busybox'], true);
    assert.equal(fallback.code, 0, fallback.stderr);
    assert.match(fallback.stderr, new RegExp(`mirror ${cache.host} did not serve busybox:latest`));
    const fromHub = () => blobGets(hub.log(), 'library/busybox');
    await settled(() => fromHub().length >= asked.length);
    assert.deepEqual(fromHub().sort(), [...asked].sort(), 'the same blobs came from Docker Hub');
    assert.equal(
      strata(['--config', again.file, 'images', '-q', '--no-trunc']).stdout,
      strata(['--config', file, 'images', '-q', '--no-trunc']).stdout,
      'the same image either way',
    );
  });
});
