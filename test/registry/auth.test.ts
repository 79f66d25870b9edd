// Authentication against real registries: htpasswd (Basic) and token auth (Bearer, with a
// token server from the harness), credentials from a Docker config.json written by login().
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RegistryClient } from '../../src/registry/client.js';
import { loadCredentials } from '../../src/registry/credentials.js';
import { login, logout } from '../../src/registry/login.js';
import { resolveImage } from '../../src/registry/pull.js';
import { scratch } from '../helpers/env.js';
import { fileCleanup, startRegistry, type TestRegistry } from '../helpers/registry.js';

const user = 'strata';
const password = 'correct horse battery';
let basic: TestRegistry;
let token: TestRegistry;
const cleanup = fileCleanup();
after(cleanup.run);

before(async () => {
  basic = await startRegistry(cleanup.add, { auth: 'htpasswd', user, password });
  token = await startRegistry(cleanup.add, { auth: 'token', user, password, anonymousPull: ['corpus/busybox'] });
  await Promise.all([basic.load('busybox'), token.load('busybox'), token.load('xattr')]);
});

test('ping reports the challenge of each registry', async () => {
  const c = new RegistryClient();
  try {
    assert.equal((await c.pingInfo(basic.host)).auth, 'basic');
    assert.equal((await c.pingInfo(token.host)).auth, 'bearer');
  } finally {
    await c.close();
  }
});

test('basic auth: login writes config.json, pull uses it, logout removes it; wrong password and no credentials are clear errors', async (t) => {
  const authFile = join(scratch(t), 'config.json');
  const ref = `${basic.host}/corpus/busybox:latest`;
  await assert.rejects(resolveImage(ref, { authFile }), /unauthorized: .*authentication required.*strata login/);
  await assert.rejects(login(basic.host, { username: user, password: 'wrong' }, { authFile }), /unauthorized: incorrect username or password/);
  assert.equal(await login(basic.host, { username: user, password }, { authFile }), 'Login Succeeded');
  const cfg = JSON.parse(readFileSync(authFile, 'utf8')) as { auths: Record<string, { auth: string }> };
  assert.equal(Buffer.from(cfg.auths[basic.host].auth, 'base64').toString(), `${user}:${password}`);
  assert.equal(statSync(authFile).mode & 0o777, 0o600);
  const r = await resolveImage(ref, { authFile });
  await r.close();
  assert.equal(r.source.layers.length, 1);
  assert.equal(await logout(basic.host, { authFile }), `Removing login credentials for ${basic.host}`);
  assert.equal(await loadCredentials(basic.host, authFile), undefined);
  assert.equal(await logout(basic.host, { authFile }), `Not logged in to ${basic.host}`);
});

test('token auth: anonymous pull where allowed, token cached per scope, refused where not', async () => {
  const dir = scratch(null);
  const authFile = join(dir, 'none.json');
  const client = new RegistryClient({ authFile });
  try {
    const before = token.tokenRequests.length;
    const r = await resolveImage(`${token.host}/corpus/busybox:latest`, { client });
    const again = await resolveImage(`${token.host}/corpus/busybox:latest`, { client });
    assert.equal(again.manifestDigest, r.manifestDigest);
    const fetched = token.tokenRequests.slice(before);
    assert.equal(fetched.length, 1, 'one token for the scope, reused');
    assert.equal(fetched[0].scope, 'repository:corpus/busybox:pull');
    assert.equal(fetched[0].authorized, false);
    await assert.rejects(resolveImage(`${token.host}/corpus/xattr:latest`, { client }), /unauthorized: .*strata login/);
  } finally {
    await client.close();
  }
});

test('token auth: credentials from config.json (and credential helper) get a token for private repositories', async (t) => {
  const dir = scratch(t);
  const authFile = join(dir, 'config.json');
  writeFileSync(authFile, JSON.stringify({ auths: { [`https://${token.host}`]: { auth: Buffer.from(`${user}:${password}`).toString('base64') } } }));
  const r = await resolveImage(`${token.host}/corpus/xattr:latest`, { authFile });
  await r.close();
  assert.equal(r.source.layers.length, 2);
  assert.equal(token.tokenRequests.at(-1)!.authorized, true);
  assert.equal(token.tokenRequests.at(-1)!.account, user);

  // A credential helper on PATH, as Docker's credsStore/credHelpers run them.
  const bin = join(dir, 'bin');
  const helper = join(bin, 'docker-credential-strata-test');
  mkdirSync(bin);
  writeFileSync(
    helper,
    `#!/bin/sh\nread host\nif [ "$1" = get ] && [ "$host" = "${token.host}" ]; then\n` +
      `  printf '{"ServerURL":"%s","Username":"${user}","Secret":"${password}"}' "$host"\nelse\n  echo "credentials not found in native keychain"; exit 1\nfi\n`,
  );
  chmodSync(helper, 0o755);
  const helperFile = join(dir, 'helper.json');
  writeFileSync(helperFile, JSON.stringify({ credHelpers: { [token.host]: 'strata-test' } }));
  const oldPath = process.env.PATH;
  process.env.PATH = `${bin}:${oldPath}`;
  t.after(() => {
    process.env.PATH = oldPath;
  });
  assert.deepEqual(await loadCredentials(token.host, helperFile), { username: user, password });
  assert.equal(await loadCredentials('other.example:5000', helperFile), undefined);
  const viaHelper = await resolveImage(`${token.host}/corpus/xattr:latest`, { authFile: helperFile });
  await viaHelper.close();
  assert.equal(viaHelper.manifestDigest, r.manifestDigest);
});

test('token auth: wrong password is a clear error', async () => {
  const client = new RegistryClient({ credentials: { [token.host]: { username: user, password: 'nope' } } });
  try {
    await assert.rejects(resolveImage(`${token.host}/corpus/busybox:latest`, { client }), /unauthorized: incorrect username or password/);
  } finally {
    await client.close();
  }
  await assert.rejects(
    login(token.host, { username: user, password: 'nope' }, { authFile: join(scratch(null), 'c.json') }),
    /unauthorized: incorrect username or password/,
  );
});

test('TLS: a registry CA from certs.d/<host:port>/ca.crt is trusted, and refused without it', async (t) => {
  const tls = await startRegistry((fn) => t.after(fn), { tls: true });
  await tls.load('busybox');
  const certsDir = scratch(t);
  mkdirSync(join(certsDir, tls.host));
  writeFileSync(join(certsDir, tls.host, 'ca.crt'), readFileSync(join(tls.dir, 'ca.crt')));
  const trusted = new RegistryClient({ certsDir, loopbackInsecure: false });
  try {
    assert.deepEqual(await trusted.pingInfo(tls.host), { base: `https://${tls.host}`, auth: 'none' });
    const r = await resolveImage(`${tls.host}/corpus/busybox:latest`, { client: trusted });
    assert.equal(r.source.layers.length, 1);
  } finally {
    await trusted.close();
  }
  const untrusted = new RegistryClient({ certsDir: scratch(t), loopbackInsecure: false, attempts: 1 });
  try {
    await assert.rejects(untrusted.pingInfo(tls.host), /cannot reach registry: .*(self.signed|certificate)/i);
  } finally {
    await untrusted.close();
  }
  // Loopback is insecure by default, as in Docker: unverified TLS still works.
  const loopback = new RegistryClient();
  try {
    assert.equal((await loopback.pingInfo(tls.host)).base, `https://${tls.host}`);
  } finally {
    await loopback.close();
  }
});
