// Real registries for tests: Debian's docker-registry (CNCF distribution) on 127.0.0.1, open,
// with htpasswd basic auth, or with token auth backed by a small token server written here;
// plus a TCP proxy that breaks one blob download midway. Everything started here is stopped
// by the cleanup hook, even when the test fails.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createPrivateKey, randomUUID, sign, X509Certificate } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { createDriver, driverNames } from '../../src/drivers/index.js';
import { DigestStream } from '../../src/image/digest.js';
import { corpusImage, scratch } from './env.js';

const run = promisify(execFile);

/** Registers a cleanup function (node:test's `after`, or a test context's `t.after`). */
export type Cleanup = (fn: () => void | Promise<void>) => void;

export interface TestRegistry {
  /** "127.0.0.1:PORT" */
  host: string;
  port: number;
  /** Root of the registry's filesystem storage. */
  storage: string;
  dir: string;
  /** Pushes one corpus image with skopeo: tag "latest" from NAME.oci.tar, "docker" from NAME.docker.tar. */
  load(name: string, tag?: 'latest' | 'docker'): Promise<void>;
  /** The file holding a blob's bytes in the registry's storage. */
  blobPath(digest: string): string;
  /** Requests the token server answered (token auth only). */
  tokenRequests: { scope: string | null; account: string | null; authorized: boolean }[];
  /** The last 64 KiB of the registry's log (and its access log when kept). */
  log(): string;
  stop(): Promise<void>;
}

export interface RegistryOptions {
  auth?: 'none' | 'htpasswd' | 'token';
  user?: string;
  password?: string;
  /** Token auth: repositories anonymous users may pull. */
  anonymousPull?: string[];
  /** Serve HTTPS with a fresh self-signed certificate for 127.0.0.1 (written to `<dir>/ca.crt`). */
  tls?: boolean;
  /** A DNS name the TLS certificate names too (a registry standing in for a public host). */
  tlsName?: string;
  /** Listen here instead of 127.0.0.1 on a free port (any loopback address). */
  listen?: { address: string; port: number };
  /** Run as a pull-through cache of this registry URL (distribution's `proxy.remoteurl`). */
  proxy?: string;
  /** Keep the access log (one line a request, read with `log()`). */
  accessLog?: boolean;
}

/**
 * Cleanups for a whole test file: register `after(files.run)` at top level, then pass
 * `files.add` to helpers started inside `before` (an `after` called inside a hook would
 * run as soon as that hook ends).
 */
export function fileCleanup(): { add: Cleanup; run: () => Promise<void> } {
  const fns: (() => void | Promise<void>)[] = [];
  return {
    add: (fn) => void fns.push(fn),
    run: async () => {
      for (const fn of fns.reverse()) await fn();
    },
  };
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

async function waitForRegistry(url: string, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited with ${child.exitCode}: ${log()}`);
    const u = new URL(url);
    // A TCP accept is enough: the registry listens only once it is ready (and TLS needs no trust here).
    const up = await new Promise<boolean>((resolve) => {
      // URL drops a scheme's default port: https on 443 has u.port ''.
      const sock = net.connect(Number(u.port) || (u.protocol === 'https:' ? 443 : 80), u.hostname, () => (sock.destroy(), resolve(true)));
      sock.on('error', () => resolve(false));
    });
    if (up) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`docker-registry did not answer ${url} within 15 s: ${log()}`);
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

function closeServer(s: Server): Promise<void> {
  return new Promise((resolve) => {
    s.closeAllConnections();
    s.close(() => resolve());
  });
}

function b64url(b: Buffer | string): string {
  return Buffer.from(b).toString('base64url');
}

/** A token server speaking the distribution token protocol, signing RS256 JWTs with an x5c chain. */
async function startTokenServer(
  dir: string,
  opts: Required<Pick<RegistryOptions, 'user' | 'password' | 'anonymousPull'>>,
  requests: TestRegistry['tokenRequests'],
): Promise<{ server: Server; port: number; certPath: string; service: string; issuer: string }> {
  const keyPath = join(dir, 'token.key');
  const certPath = join(dir, 'token.crt');
  await run('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyPath, '-out', certPath,
    '-days', '2', '-subj', '/CN=strata-test-token',
  ]);
  const key = createPrivateKey(readFileSync(keyPath));
  const der = new X509Certificate(readFileSync(certPath)).raw;
  const service = 'strata-test-registry';
  const issuer = 'strata-test-issuer';
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname !== '/token') {
      res.writeHead(404).end();
      return;
    }
    let user: string | undefined;
    const auth = req.headers.authorization;
    if (auth?.startsWith('Basic ')) {
      const [u, ...rest] = Buffer.from(auth.slice(6), 'base64').toString('utf8').split(':');
      if (u !== opts.user || rest.join(':') !== opts.password) {
        requests.push({ scope: url.searchParams.get('scope'), account: url.searchParams.get('account'), authorized: false });
        res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ details: 'incorrect username or password' }));
        return;
      }
      user = u;
    }
    requests.push({ scope: url.searchParams.get('scope'), account: url.searchParams.get('account'), authorized: user !== undefined });
    const access = url.searchParams.getAll('scope').flatMap((s) => {
      const [type, name, actions] = s.split(':');
      if (type !== 'repository' || !name || !actions) return [];
      const granted = user ? actions.split(',') : opts.anonymousPull.includes(name) ? ['pull'] : [];
      return granted.length ? [{ type, name, actions: granted }] : [];
    });
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'RS256', x5c: [der.toString('base64')] };
    const claims = { iss: issuer, sub: user ?? '', aud: service, exp: now + 300, nbf: now - 10, iat: now, jti: randomUUID(), access };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const token = `${input}.${b64url(sign('sha256', Buffer.from(input), key))}`;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token, access_token: token, expires_in: 300, issued_at: new Date().toISOString() }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  return { server, port, certPath, service, issuer };
}

/** Starts docker-registry with the corpus not yet loaded; call load() for the images a test needs. */
export async function startRegistry(cleanup: Cleanup, opts: RegistryOptions = {}): Promise<TestRegistry> {
  const auth = opts.auth ?? 'none';
  const user = opts.user ?? 'strata';
  const password = opts.password ?? 'correct horse battery';
  const dir = scratch(null, 'strata-registry-');
  const storage = join(dir, 'storage');
  const address = opts.listen?.address ?? '127.0.0.1';
  const port = opts.listen?.port ?? (await freePort());
  const tokenRequests: TestRegistry['tokenRequests'] = [];
  const toStop: (() => Promise<void>)[] = [];
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    for (const f of toStop.reverse()) await f();
  };
  cleanup(stop);
  toStop.push(async () => rmSync(dir, { recursive: true, force: true }));

  let authYaml = '';
  if (auth === 'htpasswd') {
    const file = join(dir, 'htpasswd');
    await run('htpasswd', ['-Bbc', file, user, password]);
    authYaml = `auth:\n  htpasswd:\n    realm: strata-test\n    path: ${file}\n`;
  } else if (auth === 'token') {
    const ts = await startTokenServer(dir, { user, password, anonymousPull: opts.anonymousPull ?? [] }, tokenRequests);
    toStop.push(() => closeServer(ts.server));
    authYaml =
      `auth:\n  token:\n    realm: http://127.0.0.1:${ts.port}/token\n    service: ${ts.service}\n` +
      `    issuer: ${ts.issuer}\n    rootcertbundle: ${ts.certPath}\n`;
  }
  let tlsYaml = '';
  if (opts.tls) {
    await run('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'tls.key'), '-out', join(dir, 'ca.crt'),
      '-days', '2', '-subj', `/CN=${address}`, '-addext', `subjectAltName=IP:${address}${opts.tlsName ? `,DNS:${opts.tlsName}` : ''}`,
    ]);
    tlsYaml = `  tls:\n    certificate: ${join(dir, 'ca.crt')}\n    key: ${join(dir, 'tls.key')}\n`;
  }
  const config = join(dir, 'config.yml');
  writeFileSync(
    config,
    `version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: ${!opts.accessLog}\n` +
      `storage:\n  filesystem:\n    rootdirectory: ${storage}\n  delete:\n    enabled: true\n` +
      `http:\n  addr: ${address}:${port}\n  secret: strata-test-secret\n` +
      tlsYaml +
      authYaml +
      (opts.proxy ? `proxy:\n  remoteurl: ${opts.proxy}\n` : ''),
  );
  // Dies with this process even when that is killed (a cancelled test run runs no after-hooks).
  const child = spawn('setpriv', ['--pdeathsig', 'KILL', '--', '/usr/bin/docker-registry', 'serve', config], {
    stdio: ['ignore', opts.accessLog ? 'pipe' : 'ignore', 'pipe'],
  });
  let log = '';
  const keep = (d: string) => (log = (log + d).slice(-65536));
  child.stderr!.setEncoding('utf8').on('data', keep);
  // distribution writes its access log to stdout.
  child.stdout?.setEncoding('utf8').on('data', keep);
  toStop.push(() => stopChild(child));
  const host = `${address}:${port}`;
  try {
    await waitForRegistry(`${opts.tls ? 'https' : 'http'}://${host}/v2/`, child, () => log);
  } catch (err) {
    await stop();
    throw err;
  }

  const load = async (name: string, tag: 'latest' | 'docker' = 'latest') => {
    const args = ['copy', '--quiet', '--dest-tls-verify=false', '--retry-times', '3'];
    if (auth !== 'none') args.push('--dest-creds', `${user}:${password}`);
    if (tag === 'latest') args.push('--all', '--preserve-digests', `oci-archive:${corpusImage(`${name}.oci.tar`)}:latest`);
    else args.push('--format', 'v2s2', `docker-archive:${corpusImage(`${name}.docker.tar`)}`);
    args.push(`docker://${host}/corpus/${name}:${tag}`);
    await run('skopeo', args, { maxBuffer: 1 << 20 });
  };

  const blobPath = (digest: string) => {
    const [algo, hex] = digest.split(':');
    return join(storage, 'docker', 'registry', 'v2', 'blobs', algo, hex.slice(0, 2), hex, 'data');
  };

  return { host, port, storage, dir, load, blobPath, tokenRequests, log: () => log, stop };
}

export interface DroppingProxy {
  host: string;
  port: number;
  /** Request heads (request line and headers) seen, in order. */
  requests: string[];
  /** How many connections were cut. */
  drops: number;
  stop(): Promise<void>;
}

/**
 * A TCP proxy to `target` that, the first time a request for `/blobs/<digest>` goes through,
 * forwards `dropAfter` bytes of the answer and then cuts both sides.
 */
export async function startDroppingProxy(cleanup: Cleanup, target: number, digest: string, dropAfter: number): Promise<DroppingProxy> {
  const sockets = new Set<net.Socket>();
  const state: DroppingProxy = { host: '', port: 0, requests: [], drops: 0, stop: async () => {} };
  const server = net.createServer((client) => {
    const upstream = net.connect(target, '127.0.0.1');
    sockets.add(client).add(upstream);
    let armed = false;
    let sent = 0;
    let head = '';
    client.on('data', (d: Buffer) => {
      head += d.toString('latin1');
      let end = head.indexOf('\r\n\r\n');
      while (end !== -1) {
        const req = head.slice(0, end);
        state.requests.push(req);
        if (state.drops === 0 && req.includes(`/blobs/${digest}`)) armed = true;
        head = head.slice(end + 4);
        end = head.indexOf('\r\n\r\n');
      }
      upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => {
      if (!armed) {
        client.write(d);
        return;
      }
      const room = dropAfter - sent;
      if (d.length < room) {
        sent += d.length;
        client.write(d);
        return;
      }
      client.write(d.subarray(0, room));
      armed = false;
      state.drops++;
      // Let the partial bytes leave before cutting the connection.
      client.end(() => client.destroy());
      upstream.destroy();
    });
    const closeBoth = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', closeBoth).on('close', closeBoth);
    upstream.on('error', closeBoth).on('close', closeBoth);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  state.port = (server.address() as net.AddressInfo).port;
  state.host = `127.0.0.1:${state.port}`;
  let stopped = false;
  state.stop = async () => {
    if (stopped) return;
    stopped = true;
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  };
  cleanup(state.stop);
  return state;
}

/** Every blob file in a registry's storage, by digest. */
export function storedBlobs(storage: string): string[] {
  const base = join(storage, 'docker', 'registry', 'v2', 'blobs', 'sha256');
  if (!existsSync(base)) return [];
  return readdirSync(base).flatMap((p) => readdirSync(join(base, p)).map((h) => `sha256:${h}`));
}

/** Reads a stream to its end: the sha256 digest and byte count of what it gave. */
export async function drainDigest(s: NodeJS.ReadableStream): Promise<{ digest: string; size: number }> {
  const d = new DigestStream();
  await pipeline(s, d, new Writable({ write: (_c, _e, cb) => cb() }));
  return { digest: d.digest, size: d.size };
}

/** Whether overlay2 is registered and mounts here (kernel overlay, privilege): pull tests and the bench use it then. */
export async function overlay2Available(): Promise<boolean> {
  if (!driverNames().includes('overlay2')) return false;
  const probe = scratch(null, 'strata-probe-');
  try {
    const d = await createDriver('overlay2', { root: probe, options: {} });
    await d.cleanup();
    return true;
  } catch {
    return false;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}
