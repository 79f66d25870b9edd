// `strata push` / `login` / `logout` end to end against real docker-registry instances, with
// skopeo and umoci as the oracles: pushed images are pulled by skopeo (digests kept when the
// manifest was), skopeo-pushed images pulled by strata, re-pushes upload nothing, loaded and
// committed images push, and credentials from `strata login` are used and then removed.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { INIT_PATHS, strataIn, umociRootfs } from '../helpers/cli.js';
import { corpusImage, scratch, strataBin } from '../helpers/env.js';
import { fileCleanup, startRegistry, storedBlobs, type TestRegistry } from '../helpers/registry.js';
import { diffTrees, snapshotTree, type Node } from '../helpers/tree.js';

// Credentials written by `strata login` go here, never to the user's own config.
const dockerConfig = scratch(null, 'strata-docker-config-');
process.env.DOCKER_CONFIG = dockerConfig;

const files = fileCleanup();
after(files.run);
const work = scratch(null, 'strata-clipush-');
const root = join(work, 'root');
const cli = strataIn(root, 'vfs');
/** Holds the corpus (pushed there by skopeo). */
let source: TestRegistry;
/** Empty at first: no blob can be mounted from anywhere. */
let target: TestRegistry;

before(async () => {
  source = await startRegistry(files.add);
  target = await startRegistry(files.add);
  await source.load('nginx', 'latest');
  await source.load('app', 'latest');
});

function skopeoDigest(ref: string, extra: string[] = []): string {
  const out = execFileSync('skopeo', ['inspect', '--tls-verify=false', ...extra, '--format', '{{.Digest}}', `docker://${ref}`], { encoding: 'utf8' });
  return out.trim();
}

/** skopeo pulls `ref` (checking every blob's digest) into an OCI layout; umoci unpacks it. */
function skopeoUnpack(ref: string, name: string, extra: string[] = []): string {
  const layout = join(work, `skopeo-${name}`);
  execFileSync('skopeo', ['copy', '-q', '--src-tls-verify=false', ...extra, `docker://${ref}`, `oci:${layout}:latest`]);
  const bundle = join(work, `bundle-${name}`);
  execFileSync('umoci', ['unpack', '--image', `${layout}:latest`, bundle], { stdio: 'ignore' });
  return join(bundle, 'rootfs');
}

async function tree(dir: string): Promise<Map<string, Node>> {
  const t = await snapshotTree(dir);
  for (const n of t.values()) if (n.type === 'dir') n.mtime = 0;
  return t;
}

/** Like cli.ok, without blocking this process's event loop (which serves the token server). */
function strataAsync(args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [strataBin, '--root', root, '--driver', 'vfs', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.stdin.end(input ?? '');
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`strata ${args.join(' ')} exited ${code}: ${err}`))));
  });
}

function layerLines(out: string): string[] {
  return out.split('\n').filter((l) => /^[0-9a-f]{12}: /.test(l));
}

test('a pulled image pushed to another repository is mounted, keeps its manifest, and skopeo pulls it with that digest', () => {
  const src = `${source.host}/corpus/nginx:latest`;
  cli.ok(['pull', '-q', src]);
  const dst = `${source.host}/pushed/nginx:v1`;
  cli.ok(['tag', src, dst]);
  const out = cli.ok(['push', dst]);
  const lines = out.trim().split('\n');
  assert.equal(lines[0], `The push refers to repository [${source.host}/pushed/nginx]`);
  const mounted = layerLines(out).filter((l) => l.endsWith(': Mounted from corpus/nginx'));
  assert.equal(mounted.length, 7, out);
  assert.doesNotMatch(out, /: Pushed$/m);
  const digest = skopeoDigest(src);
  assert.equal(lines.at(-1), `v1: digest: ${digest} size: ${readManifestSize(source, 'corpus/nginx', 'latest')}`);
  assert.equal(skopeoDigest(dst), digest);
});

function readManifestSize(reg: TestRegistry, repo: string, tag: string): number {
  const out = execFileSync('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${reg.host}/${repo}:${tag}`]);
  return out.length;
}

test('push to a registry that has nothing uploads every layer; skopeo pulls it and umoci unpacks the same root', async () => {
  const src = `${source.host}/corpus/nginx:latest`;
  const dst = `${target.host}/copy/nginx:latest`;
  cli.ok(['tag', src, dst]);
  const out = cli.ok(['push', dst]);
  assert.equal(layerLines(out).filter((l) => l.endsWith(': Pushed')).length, 7, out);
  const m = /^latest: digest: (sha256:[0-9a-f]{64}) size: (\d+)$/m.exec(out);
  assert.ok(m, out);
  assert.equal(skopeoDigest(dst), m[1]);
  const got = await tree(skopeoUnpack(dst, 'nginx-copy'));
  const want = await tree(umociRootfs(work, 'nginx.oci.tar'));
  assert.deepEqual(diffTrees(got, want, { skip: (p) => p === '' }), []);
  // Same image: same config (image ID), hence the same diffIDs.
  const cfg = (ref: string) => JSON.parse(execFileSync('skopeo', ['inspect', '--tls-verify=false', '--config', '--raw', `docker://${ref}`], { encoding: 'utf8' }));
  assert.deepEqual(cfg(dst).rootfs, cfg(src).rootfs);
});

test('a re-push uploads nothing: every layer already exists and the registry gains no blob', () => {
  const dst = `${target.host}/copy/nginx:latest`;
  const before = storedBlobs(target.storage).sort();
  const out = cli.ok(['push', dst]);
  const lines = layerLines(out).filter((l) => !l.endsWith(': Preparing'));
  assert.equal(lines.length, 7, out);
  assert.ok(lines.every((l) => l.endsWith(': Layer already exists')), out);
  assert.deepEqual(storedBlobs(target.storage).sort(), before);
});

test('an image loaded from a docker archive pushes, and skopeo pulls the same root umoci unpacks from the OCI archive', async () => {
  const out = cli.ok(['load', '-i', corpusImage('app.docker.tar')]);
  const name = /^Loaded image: (.+)$/m.exec(out)![1];
  const dst = `${target.host}/loaded/app:latest`;
  cli.ok(['tag', name, dst]);
  const pushed = cli.ok(['push', dst]);
  assert.match(pushed, /^latest: digest: sha256:[0-9a-f]{64} size: \d+$/m);
  const got = await tree(skopeoUnpack(dst, 'app-loaded'));
  const want = await tree(umociRootfs(work, 'app.oci.tar'));
  assert.deepEqual(diffTrees(got, want, { skip: (p) => p === '' }), []);
});

test('a committed image pushes as Docker schema 2 and skopeo sees the committed change', async () => {
  cli.ok(['pull', '-q', `${source.host}/corpus/app:latest`]);
  cli.ok(['create', '--name', 'committer', `${source.host}/corpus/app:latest`]);
  const mnt = cli.ok(['mount', 'committer']).trim();
  writeFileSync(join(mnt, 'committed.txt'), 'made by a container\n');
  cli.ok(['umount', 'committer']);
  const dst = `${target.host}/committed/app:1`;
  cli.ok(['commit', 'committer', dst]);
  const out = cli.ok(['push', dst]);
  // The base layers went up to this registry with the loaded image (same diffIDs): mounted from
  // there; only the committed layer is uploaded.
  assert.equal(layerLines(out).filter((l) => l.endsWith(': Mounted from loaded/app')).length, 4, out);
  assert.equal(layerLines(out).filter((l) => l.endsWith(': Pushed')).length, 1, out);
  const raw = JSON.parse(execFileSync('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${dst}`], { encoding: 'utf8' }));
  assert.equal(raw.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
  const rootfs = skopeoUnpack(dst, 'committed');
  assert.equal(readFileSync(join(rootfs, 'committed.txt'), 'utf8'), 'made by a container\n');
  // Nothing but the committed file (and the init layer's paths) differs from the base image.
  const got = await tree(rootfs);
  const want = await tree(umociRootfs(work, 'app.oci.tar'));
  const diff = diffTrees(got, want, { skip: (p) => p === '' || INIT_PATHS.includes(`/${p}`) });
  assert.deepEqual(diff, ['/committed.txt: only in first (file)']);
});

test('an image pushed by skopeo is pulled by strata with the digest skopeo reports', () => {
  const dst = `${target.host}/by-skopeo/busybox:latest`;
  execFileSync('skopeo', ['copy', '-q', '--dest-tls-verify=false', `oci-archive:${corpusImage('busybox.oci.tar')}:latest`, `docker://${dst}`]);
  const out = cli.ok(['pull', dst]);
  assert.match(out, new RegExp(`^Digest: ${skopeoDigest(dst)}$`, 'm'));
  const [img] = JSON.parse(cli.ok(['inspect', dst])) as { RepoDigests: string[] }[];
  assert.ok(img.RepoDigests.includes(`${target.host}/by-skopeo/busybox@${skopeoDigest(dst)}`), JSON.stringify(img.RepoDigests));
});

test('login stores credentials that push and pull use; logout removes them', async (t) => {
  const local = fileCleanup();
  t.after(local.run);
  const auth = await startRegistry(local.add, { auth: 'htpasswd', user: 'alice', password: 's3cret pass' });
  const dst = `${auth.host}/private/nginx:latest`;
  cli.ok(['tag', `${source.host}/corpus/nginx:latest`, dst]);
  const denied = cli.run(['push', dst]);
  assert.equal(denied.code, 1);
  assert.match(denied.stderr, /^Error: .*unauthorized/);

  const wrong = cli.run(['login', '-u', 'alice', '--password-stdin', auth.host], 'nope\n');
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /incorrect username or password/);
  assert.equal(cli.ok(['login', '-u', 'alice', '--password-stdin', auth.host], 's3cret pass\n').trim(), 'Login Succeeded');
  const config = JSON.parse(readFileSync(join(dockerConfig, 'config.json'), 'utf8')) as { auths: Record<string, { auth: string }> };
  assert.equal(Buffer.from(config.auths[auth.host].auth, 'base64').toString(), 'alice:s3cret pass');

  assert.match(cli.ok(['push', dst]), /^latest: digest: sha256:[0-9a-f]{64} size: \d+$/m);
  assert.equal(skopeoDigest(dst, ['--creds', 'alice:s3cret pass']).length, 71);
  cli.ok(['rmi', dst]);
  assert.match(cli.ok(['pull', dst]), /Status: /);

  assert.equal(cli.ok(['logout', auth.host]).trim(), `Removing login credentials for ${auth.host}`);
  const after = JSON.parse(readFileSync(join(dockerConfig, 'config.json'), 'utf8')) as { auths?: Record<string, unknown> };
  assert.equal(after.auths?.[auth.host], undefined);
  const denied2 = cli.run(['push', dst]);
  assert.equal(denied2.code, 1);
  assert.match(denied2.stderr, /unauthorized/);
});

test('token auth: a push to a second repository mounts from the first with one token for both scopes', async (t) => {
  const local = fileCleanup();
  t.after(local.run);
  const tok = await startRegistry(local.add, { auth: 'token', user: 'bob', password: 'token pass' });
  // The token server answers from this process: the CLI must run without blocking it.
  await strataAsync(['login', '-u', 'bob', '--password-stdin', tok.host], 'token pass\n');
  t.after(() => void cli.run(['logout', tok.host]));
  const first = `${tok.host}/team/app:latest`;
  const second = `${tok.host}/other/app:latest`;
  cli.ok(['tag', `${source.host}/corpus/app:latest`, first]);
  cli.ok(['tag', `${source.host}/corpus/app:latest`, second]);
  assert.equal(layerLines(await strataAsync(['push', first])).filter((l) => l.endsWith(': Pushed')).length, 4);
  const out = await strataAsync(['push', second]);
  assert.equal(layerLines(out).filter((l) => l.endsWith(': Mounted from team/app')).length, 4, out);
  assert.ok(tok.tokenRequests.every((r) => r.authorized), 'every token was asked for with the credentials');
  assert.ok(tok.tokenRequests.some((r) => r.scope === 'repository:other/app:pull,push'));
});

test('push of a name that is not in the store, or of a digest reference, is a one-line error', () => {
  const missing = cli.run(['push', `${target.host}/nothing/here:latest`]);
  assert.equal(missing.code, 1);
  assert.equal(missing.stderr, `Error: An image does not exist locally with the tag: ${target.host}/nothing/here\n`);
  const byDigest = cli.run(['push', `${target.host}/copy/nginx@sha256:${'a'.repeat(64)}`]);
  assert.equal(byDigest.code, 1);
  assert.match(byDigest.stderr, /^Error: refusing to use a digest reference as a name/);
});
