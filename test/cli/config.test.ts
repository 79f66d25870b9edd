// The configuration file (issue #15 item 10): `--config FILE` with Docker's daemon.json keys.
// Registry mirrors are tested without the internet: a local docker-registry holds busybox under
// its Docker Hub path (library/busybox), and `pull docker.io/library/busybox` must come from it;
// a mirror that is down or lacks the image is passed over, and when every place fails the error
// names what each mirror answered. Never touches /etc/strata/daemon.json.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { corpusImage, scratch, strataBin } from '../helpers/env.js';
import { fileCleanup, freePort, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { runToolSync } from '../../src/sys/run.js';

const files = fileCleanup();
after(files.run);
let mirror: TestRegistry;

before(async () => {
  mirror = await startRegistry(files.add);
  runToolSync('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', '--preserve-digests',
    `oci-archive:${corpusImage('busybox.oci.tar')}:latest`, `docker://${mirror.host}/library/busybox:latest`], { ignoreStdout: true });
});

function strata(args: string[]) {
  // No STRATA_ROOT / STRATA_DRIVER from the caller: they would win over the file.
  const env = { ...process.env };
  delete env.STRATA_ROOT;
  delete env.STRATA_DRIVER;
  const r = spawnSync(process.execPath, [strataBin, ...args], { encoding: 'utf8', env });
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
    const r = strata(['--config', file, '-l', 'error', 'pull', 'docker.io/library/not-on-the-mirror:1']);
    assert.equal(r.code, 1);
    const lines = r.stderr.split('\n').filter(Boolean);
    assert.equal(lines.length, 1, r.stderr);
    // Docker Hub is asked (this machine cannot reach it), then the mirror's answer is named.
    assert.match(lines[0], /registry-1\.docker\.io/);
    assert.match(lines[0], new RegExp(`\\(and mirror ${mirror.host}: .*(manifest unknown|not found)`, 'i'));
    // A reference of another registry never goes to the mirror.
    const other = strata(['--config', file, '-l', 'error', 'pull', `127.0.0.1:${mirror.port}/library/busybox`]);
    assert.equal(other.code, 0, other.stderr);
  });
});
