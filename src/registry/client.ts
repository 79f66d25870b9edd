// Distribution API client on undici: /v2/ ping, Bearer and Basic auth from WWW-Authenticate
// challenges, per-registry TLS from certs.d, plain HTTP only for loopback or insecure hosts,
// redirects that never carry our Authorization to another host, retries with backoff, and
// blob streams that resume with Range after a broken connection.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { InvalidInputError, StrataError } from '../errors.js';
import { log } from '../log.js';
import { newAgent, request, type Agent, type Dispatcher } from './http.js';
import { loadCredentials, type Credentials } from './credentials.js';

const CHUNK = 1 << 20;

export interface ClientOptions {
  /** Hosts ("host:port") that may be reached over plain HTTP or unverified TLS (loopback always may). */
  insecureRegistries?: string[];
  /** Where per-registry TLS material lives (default /etc/docker/certs.d). */
  certsDir?: string;
  /** config.json to read credentials from (default: REGISTRY_AUTH_FILE, DOCKER_CONFIG, ~/.docker). */
  authFile?: string;
  /** Credentials that override the auth file, keyed by registry host. */
  credentials?: Record<string, Credentials>;
  /** Attempts for a request that fails with a network error or 5xx (default 4). */
  attempts?: number;
  /** First retry delay in ms, doubled each time (default 250). */
  backoffMs?: number;
  userAgent?: string;
  /** Treat loopback hosts as insecure like Docker does (default true); false makes them verify TLS. */
  loopbackInsecure?: boolean;
}

/** The registry refused or failed a request; `status` is the HTTP status when there was one. */
export class RegistryError extends StrataError {
  constructor(
    message: string,
    readonly status?: number,
    readonly codes: string[] = [],
  ) {
    super(message, 1, 'registry');
    this.name = 'RegistryError';
  }
}

interface Challenge {
  scheme: 'bearer' | 'basic';
  params: Record<string, string>;
}

interface HostState {
  host: string;
  base: string;
  dispatcher: Dispatcher;
  challenge?: Challenge;
}

export interface FetchOptions {
  method?: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';
  headers?: Record<string, string>;
  /** Token scope, e.g. "repository:library/nginx:pull"; several separated by spaces (a cross-repository mount). */
  scope?: string;
  body?: string | Buffer;
  /** Statuses that are returned rather than thrown (default: 2xx). */
  ok?: (status: number) => boolean;
}

export interface Response {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Dispatcher.ResponseData['body'];
  url: string;
}

export function isLoopback(host: string): boolean {
  const name = hostnameOf(host);
  return name === 'localhost' || name === '::1' || /^127\.\d+\.\d+\.\d+$/.test(name);
}

function hostnameOf(host: string): string {
  if (host.startsWith('[')) return host.slice(1, host.indexOf(']'));
  const colon = host.lastIndexOf(':');
  return colon === -1 ? host : host.slice(0, colon);
}

function header(h: Response['headers'], name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Parses one or more `Scheme k="v", k=v` challenges. */
export function parseChallenges(value: string): Challenge[] {
  const out: Challenge[] = [];
  const re = /([A-Za-z]+)\s+((?:[A-Za-z_]+=(?:"(?:[^"\\]|\\.)*"|[^,\s]*)\s*,?\s*)*)/g;
  for (let m = re.exec(value); m; m = re.exec(value)) {
    const scheme = m[1].toLowerCase();
    if (scheme !== 'bearer' && scheme !== 'basic') continue;
    const params: Record<string, string> = {};
    const pre = /([A-Za-z_]+)=(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g;
    for (let p = pre.exec(m[2]); p; p = pre.exec(m[2])) {
      params[p[1].toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3];
    }
    out.push({ scheme, params });
  }
  return out;
}

function isRetryableError(err: unknown): boolean {
  const code = (err as { code?: string }).code ?? '';
  return (
    /^(ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT|EAI_AGAIN|ENETUNREACH|EHOSTUNREACH)$/.test(code) ||
    code.startsWith('UND_ERR_') && code !== 'UND_ERR_ABORTED'
  );
}

/** Reads a distribution error body into "code: message" parts. */
async function errorText(res: Response): Promise<{ text: string; codes: string[] }> {
  let raw = '';
  try {
    raw = await res.body.text();
  } catch {
    // The status alone still says what happened.
  }
  try {
    const j = JSON.parse(raw) as { errors?: { code?: string; message?: string; detail?: unknown }[]; details?: string };
    if (Array.isArray(j.errors) && j.errors.length > 0) {
      const codes = j.errors.map((e) => e.code ?? '');
      // Same wording as distribution's errcode: "manifest unknown: manifest unknown".
      const text = j.errors.map((e) => `${(e.code ?? 'error').toLowerCase().replace(/_/g, ' ')}: ${e.message ?? ''}`).join('; ');
      return { text, codes };
    }
    if (j.details) return { text: j.details, codes: [] };
  } catch {
    // Not JSON: fall through to the raw text.
  }
  return { text: raw.trim().split('\n')[0]?.slice(0, 200) || `HTTP ${res.status}`, codes: [] };
}

export class RegistryClient {
  private readonly opts: Required<Pick<ClientOptions, 'attempts' | 'backoffMs' | 'certsDir'>> & ClientOptions;
  private readonly hosts = new Map<string, Promise<HostState>>();
  private readonly agents = new Map<string, Promise<Agent>>();
  private readonly tokens = new Map<string, { token: string; expires: number }>();
  private readonly creds = new Map<string, Promise<Credentials | undefined>>();

  constructor(opts: ClientOptions = {}) {
    this.opts = { attempts: 4, backoffMs: 250, certsDir: '/etc/docker/certs.d', ...opts };
  }

  /** Whether plain HTTP (and unverified TLS) is allowed for a host. */
  insecure(host: string): boolean {
    return ((this.opts.loopbackInsecure ?? true) && isLoopback(host)) || (this.opts.insecureRegistries ?? []).includes(host);
  }

  /** An agent carrying the host's CA and client certificate from certs.d. */
  private agentFor(host: string, unverified: boolean): Promise<Agent> {
    const key = `${host}|${unverified}`;
    let a = this.agents.get(key);
    if (!a) {
      a = this.makeAgent(host, unverified);
      this.agents.set(key, a);
    }
    return a;
  }

  private async makeAgent(host: string, unverified: boolean): Promise<Agent> {
    const dir = join(this.opts.certsDir, host);
    const cas: string[] = [];
    let cert: string | undefined;
    let key: string | undefined;
    let names: string[] = [];
    try {
      names = (await readdir(dir)).sort();
    } catch {
      // No certs.d entry: system roots only.
    }
    for (const n of names) {
      if (n.endsWith('.crt')) cas.push(await readFile(join(dir, n), 'utf8'));
      else if (n.endsWith('.cert')) {
        const keyName = n.slice(0, -'.cert'.length) + '.key';
        if (!names.includes(keyName)) throw new InvalidInputError(`${join(dir, n)}: client certificate without ${keyName}`);
        cert = await readFile(join(dir, n), 'utf8');
        key = await readFile(join(dir, keyName), 'utf8');
      } else if (n.endsWith('.key')) {
        const certName = n.slice(0, -'.key'.length) + '.cert';
        if (!names.includes(certName)) throw new InvalidInputError(`${join(dir, n)}: client key without ${certName}`);
      }
    }
    // node:tls only here: loading it costs every command that never talks to a registry.
    const { rootCertificates } = cas.length > 0 ? await import('node:tls') : { rootCertificates: [] };
    return newAgent({
      connections: 16,
      connect: {
        ca: cas.length > 0 ? [...rootCertificates, ...cas] : undefined,
        cert,
        key,
        rejectUnauthorized: !unverified,
      },
    });
  }

  /** Pings /v2/ once per host and remembers the scheme that worked and the auth challenge. */
  private hostState(host: string): Promise<HostState> {
    let s = this.hosts.get(host);
    if (!s) {
      s = this.ping(host);
      s.catch(() => this.hosts.delete(host));
      this.hosts.set(host, s);
    }
    return s;
  }

  private async ping(host: string): Promise<HostState> {
    const insecure = this.insecure(host);
    const attempts: { base: string; dispatcher: Agent }[] = [{ base: `https://${host}`, dispatcher: await this.agentFor(host, insecure) }];
    if (insecure) attempts.push({ base: `http://${host}`, dispatcher: await this.agentFor(host, true) });
    let lastErr: unknown;
    for (const a of attempts) {
      let res: Response;
      try {
        res = await this.withRetries(`${a.base}/v2/`, () => this.raw('GET', `${a.base}/v2/`, {}, a.dispatcher));
      } catch (err) {
        lastErr = err;
        continue;
      }
      const state: HostState = { host, base: a.base, dispatcher: a.dispatcher };
      if (res.status === 401) {
        const challenges = parseChallenges(header(res.headers, 'www-authenticate') ?? '');
        await res.body.dump();
        state.challenge = challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic');
        if (!state.challenge) throw new RegistryError(`${host}: registry asks for an authentication scheme strata does not support`, 401);
        return state;
      }
      if (res.status >= 200 && res.status < 300) {
        await res.body.dump();
        return state;
      }
      const { text } = await errorText(res);
      throw new RegistryError(`${host}: ping ${a.base}/v2/ returned ${res.status}: ${text}`, res.status);
    }
    const why = lastErr instanceof Error ? lastErr.message : String(lastErr);
    const hint = insecure ? '' : ' (plain HTTP is used only for loopback and --insecure-registry hosts)';
    throw new RegistryError(`${host}: cannot reach registry: ${why}${hint}`);
  }

  /** The /v2/ ping result: which URL answered and which auth it wants. */
  async pingInfo(host: string): Promise<{ base: string; auth: 'none' | 'basic' | 'bearer' }> {
    const s = await this.hostState(host);
    return { base: s.base, auth: s.challenge?.scheme ?? 'none' };
  }

  private credentialsFor(host: string): Promise<Credentials | undefined> {
    const explicit = this.opts.credentials?.[host];
    if (explicit) return Promise.resolve(explicit);
    let c = this.creds.get(host);
    if (!c) {
      c = loadCredentials(host, this.opts.authFile);
      this.creds.set(host, c);
    }
    return c;
  }

  /** Checks credentials against the registry (as `docker login` does) without storing them. */
  async verifyLogin(host: string, creds: Credentials): Promise<void> {
    const state = await this.hostState(host);
    if (!state.challenge) return;
    if (state.challenge.scheme === 'basic') {
      const res = await this.raw('GET', `${state.base}/v2/`, { authorization: basicHeader(creds) }, state.dispatcher);
      if (res.status === 401) {
        await res.body.dump();
        throw new RegistryError(`${host}: unauthorized: incorrect username or password`, 401);
      }
      if (res.status >= 300) {
        const { text } = await errorText(res);
        throw new RegistryError(`${host}: login failed: ${res.status}: ${text}`, res.status);
      }
      await res.body.dump();
      return;
    }
    await this.fetchToken(state, '', creds);
  }

  private async fetchToken(state: HostState, scope: string, creds: Credentials | undefined): Promise<{ token: string; expires: number }> {
    const p = state.challenge!.params;
    if (!p.realm) throw new RegistryError(`${state.host}: bearer challenge without realm`);
    const url = new URL(p.realm);
    const realmHost = url.host;
    const dispatcher = await this.agentFor(realmHost, this.insecure(realmHost));
    let res: Response;
    if (creds?.identityToken) {
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: creds.identityToken, client_id: 'strata' });
      if (p.service) form.set('service', p.service);
      for (const one of scopes(scope)) form.append('scope', one);
      res = await this.withRetries(url.href, () =>
        this.raw('POST', url.href, { 'content-type': 'application/x-www-form-urlencoded' }, dispatcher, form.toString()),
      );
    } else {
      if (p.service) url.searchParams.set('service', p.service);
      for (const one of scopes(scope)) url.searchParams.append('scope', one);
      if (creds?.username !== undefined) url.searchParams.set('account', creds.username);
      const headers: Record<string, string> = {};
      if (creds?.username !== undefined) headers.authorization = basicHeader(creds);
      res = await this.withRetries(url.href, () => this.raw('GET', url.href, headers, dispatcher));
    }
    if (res.status === 401 || res.status === 403) {
      const { text } = await errorText(res);
      const what = creds ? 'incorrect username or password' : 'authentication required';
      throw new RegistryError(`${state.host}: unauthorized: ${what} (token server ${url.origin}: ${text})`, res.status);
    }
    if (res.status !== 200) {
      const { text } = await errorText(res);
      throw new RegistryError(`${state.host}: token server ${url.origin} returned ${res.status}: ${text}`, res.status);
    }
    const j = (await res.body.json()) as { token?: string; access_token?: string; expires_in?: number; issued_at?: string };
    const token = j.token ?? j.access_token;
    if (!token) throw new RegistryError(`${state.host}: token server ${url.origin} answered without a token`);
    const lifetime = Math.max(60, j.expires_in ?? 60) * 1000;
    const issued = j.issued_at ? Date.parse(j.issued_at) : NaN;
    const start = Number.isFinite(issued) ? Math.min(issued, Date.now()) : Date.now();
    // Renew a little early so a token never expires in the middle of a request.
    return { token, expires: start + lifetime - 10_000 };
  }

  private async authorization(state: HostState, scope: string | undefined): Promise<string | undefined> {
    const ch = state.challenge;
    if (!ch) return undefined;
    const creds = await this.credentialsFor(state.host);
    if (ch.scheme === 'basic') return creds?.username !== undefined ? basicHeader(creds) : undefined;
    const key = `${state.host}|${scope ?? ''}`;
    const cached = this.tokens.get(key);
    if (cached && cached.expires > Date.now()) return `Bearer ${cached.token}`;
    const t = await this.fetchToken(state, scope ?? '', creds);
    this.tokens.set(key, t);
    return `Bearer ${t.token}`;
  }

  /** One HTTP exchange, no redirects followed. */
  private async raw(
    method: string,
    url: string,
    headers: Record<string, string>,
    dispatcher: Dispatcher,
    body?: string | Buffer,
  ): Promise<Response> {
    const h: Record<string, string> = { 'user-agent': this.opts.userAgent ?? 'strata/0.1', ...headers };
    log.debug(`registry: ${method} ${url}`);
    const res = await request(url, {
      method: method as Dispatcher.HttpMethod,
      headers: h,
      body,
      dispatcher,
      highWaterMark: CHUNK,
    });
    log.debug(`registry: ${method} ${url} -> ${res.statusCode}`);
    return { status: res.statusCode, headers: res.headers, body: res.body, url };
  }

  /** Retries network errors and 5xx/429 with exponential backoff. */
  private async withRetries(what: string, fn: () => Promise<Response>): Promise<Response> {
    let delay = this.opts.backoffMs;
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await fn();
        if ((res.status >= 500 || res.status === 429) && attempt < this.opts.attempts) {
          await res.body.dump();
        } else {
          return res;
        }
      } catch (err) {
        if (!isRetryableError(err) || attempt >= this.opts.attempts) throw err;
      }
      await sleep(delay);
      delay *= 2;
    }
  }

  /** Follows redirects by hand so Authorization goes only to the registry's own origin. */
  private async follow(
    state: HostState,
    method: string,
    url: string,
    headers: Record<string, string>,
    auth: string | undefined,
    body?: string | Buffer,
  ): Promise<Response> {
    const origin = new URL(state.base).origin;
    let current = url;
    for (let hop = 0; hop < 10; hop++) {
      const u = new URL(current);
      const sameOrigin = u.origin === origin;
      const h = { ...headers };
      if (auth && sameOrigin) h.authorization = auth;
      const dispatcher = sameOrigin ? state.dispatcher : await this.agentFor(u.host, this.insecure(u.host));
      if (u.protocol === 'http:' && !sameOrigin && !this.insecure(u.host)) {
        throw new RegistryError(`${state.host}: refusing redirect to plain-HTTP ${u.origin}`);
      }
      const res = await this.withRetries(current, () => this.raw(method, current, h, dispatcher, body));
      const loc = header(res.headers, 'location');
      if ([301, 302, 303, 307, 308].includes(res.status) && loc) {
        await res.body.dump();
        current = new URL(loc, current).href;
        if (res.status === 303) method = 'GET';
        continue;
      }
      return { ...res, url: current };
    }
    throw new RegistryError(`${state.host}: too many redirects for ${url}`);
  }

  /**
   * A request to `path` (starting with /v2/, or an absolute URL such as an upload Location) on
   * `host`, authorised for `scope`. A 401 that
   * carries a new challenge (e.g. a wider scope) is answered once with a fresh token.
   */
  async fetch(host: string, path: string, o: FetchOptions = {}): Promise<Response> {
    const state = await this.hostState(host);
    const method = o.method ?? 'GET';
    const ok = o.ok ?? ((s: number) => s >= 200 && s < 300);
    let auth = await this.authorization(state, o.scope);
    const url = /^https?:\/\//.test(path) ? path : state.base + path;
    let res = await this.follow(state, method, url, o.headers ?? {}, auth, o.body);
    if (res.status === 401 && state.challenge) {
      const fresh = parseChallenges(header(res.headers, 'www-authenticate') ?? '');
      await res.body.dump();
      const ch = fresh.find((c) => c.scheme === state.challenge!.scheme);
      if (ch) state.challenge = { scheme: ch.scheme, params: { ...state.challenge.params, ...ch.params } };
      this.tokens.delete(`${state.host}|${o.scope ?? ''}`);
      auth = await this.authorization(state, o.scope);
      res = await this.follow(state, method, url, o.headers ?? {}, auth, o.body);
    }
    if (ok(res.status)) return res;
    const { text, codes } = await errorText(res);
    if (res.status === 401) {
      const creds = await this.credentialsFor(host);
      const hint = creds ? '' : ' (no credentials: run `strata login ' + host + '`)';
      const what = text.startsWith('unauthorized') ? text : `unauthorized: ${text}`;
      throw new RegistryError(`${host}: ${what}${hint}`, 401, codes);
    }
    throw new RegistryError(`${host}: ${method} ${path}: ${res.status} ${text}`, res.status, codes);
  }

  /**
   * Streams a blob with constant memory. When the connection breaks mid-body the download
   * resumes from the last byte received with `Range: bytes=N-` (or, if the server ignores
   * ranges, restarts and skips what was already delivered).
   */
  openBlob(host: string, repo: string, digest: string, opts: { size?: number } = {}): Readable {
    const path = `/v2/${repo}/blobs/${digest}`;
    const scope = `repository:${repo}:pull`;
    const attempts = this.opts.attempts;
    const backoff = this.opts.backoffMs;
    const request = (headers: Record<string, string>) => this.fetch(host, path, { scope, headers, ok: (s) => s === 200 || s === 206 });
    async function* chunks(): AsyncGenerator<Buffer> {
      let delivered = 0;
      let pending: Buffer[] = [];
      let pendingBytes = 0;
      let failures = 0;
      let delay = backoff;
      while (true) {
        const headers: Record<string, string> = {};
        if (delivered > 0) headers.range = `bytes=${delivered}-`;
        let res: Response;
        try {
          res = await request(headers);
        } catch (err) {
          if (!isRetryableError(err) || ++failures >= attempts) throw err;
          await sleep(delay);
          delay *= 2;
          continue;
        }
        let skip = 0;
        if (delivered > 0) {
          if (res.status === 206) {
            const cr = header(res.headers, 'content-range') ?? '';
            const m = /^bytes (\d+)-/.exec(cr);
            if (!m || Number(m[1]) !== delivered) {
              await res.body.dump();
              throw new RegistryError(`${host}: blob ${digest}: resume asked for byte ${delivered} but got range "${cr}"`);
            }
          } else {
            skip = delivered;
          }
        }
        try {
          for await (const c of res.body as AsyncIterable<Buffer>) {
            let chunk = c;
            if (skip > 0) {
              if (chunk.length <= skip) {
                skip -= chunk.length;
                continue;
              }
              chunk = chunk.subarray(skip);
              skip = 0;
            }
            delivered += chunk.length;
            // Sockets deliver 64 KiB at a time: passed on one by one, each would cost a
            // decompressor round trip to libuv's pool and a trip down every stream after it.
            pending.push(chunk);
            pendingBytes += chunk.length;
            if (pendingBytes >= CHUNK) {
              yield pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes);
              pending = [];
              pendingBytes = 0;
            }
          }
        } catch (err) {
          if (!isRetryableError(err) || ++failures >= attempts) {
            throw new RegistryError(`${host}: blob ${digest}: download failed after ${delivered} bytes: ${(err as Error).message}`);
          }
          await sleep(delay);
          delay *= 2;
          continue;
        }
        if (opts.size !== undefined && delivered < opts.size) {
          // The server closed cleanly but early: treat it as a broken connection.
          if (++failures >= attempts) throw new RegistryError(`${host}: blob ${digest}: ended after ${delivered} of ${opts.size} bytes`);
          await sleep(delay);
          delay *= 2;
          continue;
        }
        if (pendingBytes > 0) yield Buffer.concat(pending, pendingBytes);
        return;
      }
    }
    return Readable.from(chunks(), { objectMode: false, highWaterMark: CHUNK });
  }

  /** Releases every connection. */
  async close(): Promise<void> {
    const agents = await Promise.all(this.agents.values());
    this.agents.clear();
    this.hosts.clear();
    await Promise.all(agents.map((a) => a.close()));
  }
}

function scopes(scope: string): string[] {
  return scope.split(' ').filter((x) => x !== '');
}

function basicHeader(c: Credentials): string {
  return `Basic ${Buffer.from(`${c.username ?? ''}:${c.password ?? ''}`, 'utf8').toString('base64')}`;
}
