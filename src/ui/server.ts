// `strata ui`'s web server: the page and its JSON API over one open Store, on 127.0.0.1 only,
// read-only, every request carrying the random token of the URL it prints (anyone else on the
// host gets 403 and learns nothing about the store).
//
// node:http rather than hono or fastify: the API is six GET routes and one event stream, which a
// table of patterns serves in a page of code; a framework would add dependencies to the package
// for routing and nothing else.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { StrataError } from '../errors.js';
import { log } from '../log.js';
import type { Store } from '../store/store.js';
import { loadAssets, type PageAssets } from './assets.js';
import { containerDetail, imageDetail, layerDetail, storeState, type UiContainerDetail, type UiState } from './views.js';

export interface UiOptions {
  /** TCP port on 127.0.0.1; 0 (the default) takes a free one. */
  port?: number;
  /** How often the event stream looks at the store's change counter (ms). */
  pollMs?: number;
}

export interface UiServer {
  /** The page's address, token included. */
  url: string;
  port: number;
  token: string;
  close(): Promise<void>;
}

const HOST = '127.0.0.1';

/** Sent with every answer: the token stays out of Referer headers, and nothing loads from elsewhere. */
const HEADERS = {
  'Cache-Control': 'no-store',
  'Referrer-Policy': 'no-referrer',
  'X-Content-Type-Options': 'nosniff',
  'Content-Security-Policy': "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
};

type Answer = { status: number; type: string; body: string | Buffer };
type Route = (m: RegExpMatchArray) => Answer | Promise<Answer>;

const json = (v: unknown): Answer => ({ status: 200, type: 'application/json', body: JSON.stringify(v) });
const text = (status: number, body: string): Answer => ({ status, type: 'text/plain; charset=utf-8', body: `${body}\n` });

function page(token: string): string {
  const q = `?token=${encodeURIComponent(token)}`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>strata: layers</title><link rel="icon" href="data:,">
<link rel="stylesheet" href="/app.css${q}"><script type="module" src="/app.js${q}"></script></head>
<body><div id="app"></div></body></html>
`;
}

export async function serveUi(store: Store, opts: UiOptions = {}): Promise<UiServer> {
  const assets: PageAssets = loadAssets();
  const token = randomBytes(24).toString('base64url');
  const tokenBytes = Buffer.from(token);
  const pollMs = opts.pollMs ?? 200;

  // The state is rebuilt only when another process has changed the store.
  let state: UiState | undefined;
  const current = async (): Promise<UiState> => {
    if (!state || state.version !== store.changeCounter()) state = await storeState(store);
    return state;
  };
  // Images' analyses and containers' change lists are kept by the Store (store/analysis/cache.ts);
  // a container's report is still made for each request (its files' sizes and allocation are
  // read afresh), and clients asking at the same moment share the one being made.
  const making = new Map<string, Promise<UiContainerDetail | undefined>>();
  const container = async (id: string): Promise<UiContainerDetail | undefined> => {
    let p = making.get(id);
    if (!p) {
      p = current().then((s) => containerDetail(store, s, id));
      making.set(id, p);
      void p.finally(() => making.delete(id)).catch(() => undefined);
    }
    return p;
  };
  const found = (v: unknown, what: string): Answer => (v === undefined ? text(404, `no such ${what}`) : json(v));

  const routes: [RegExp, Route][] = [
    [/^\/$/, () => ({ status: 200, type: 'text/html; charset=utf-8', body: page(token) })],
    [/^\/app\.js$/, () => ({ status: 200, type: 'text/javascript; charset=utf-8', body: assets['app.js'] })],
    [/^\/app\.css$/, () => ({ status: 200, type: 'text/css; charset=utf-8', body: assets['app.css'] })],
    [/^\/api\/state$/, async () => json(await current())],
    [/^\/api\/layers\/([0-9a-f]{64}(?:-init)?)$/, async (m) => found(await layerDetail(store, await current(), m[1]), 'layer')],
    [/^\/api\/images\/(sha256:[0-9a-f]{64})$/, async (m) => found(await imageDetail(store, await current(), m[1]), 'image')],
    [/^\/api\/containers\/([0-9a-f]{64})$/, async (m) => found(await container(m[1]), 'container')],
  ];

  const streams = new Set<ServerResponse>();
  let seen = store.changeCounter();
  const poll = setInterval(() => {
    if (streams.size === 0) return;
    const v = store.changeCounter();
    if (v === seen) return;
    seen = v;
    for (const s of streams) s.write(`data: ${v}\n\n`);
  }, pollMs);
  poll.unref();

  const authorized = (url: URL): boolean => {
    const given = Buffer.from(url.searchParams.get('token') ?? '');
    return given.length === tokenBytes.length && timingSafeEqual(given, tokenBytes);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<Answer | undefined> => {
    const url = new URL(req.url ?? '/', `http://${HOST}`);
    if (!authorized(url)) return text(403, 'forbidden: this address needs the token that strata ui printed');
    if (req.method !== 'GET' && req.method !== 'HEAD') return text(405, 'read-only: only GET');
    if (url.pathname === '/api/events') {
      res.writeHead(200, { ...HEADERS, 'Content-Type': 'text/event-stream' });
      res.write(`data: ${store.changeCounter()}\n\n`);
      streams.add(res);
      res.on('close', () => streams.delete(res));
      return undefined;
    }
    for (const [pattern, route] of routes) {
      const m = url.pathname.match(pattern);
      if (m) return route(m);
    }
    return text(404, 'not found');
  };

  const server: Server = createServer((req, res) => {
    handle(req, res)
      .catch((err: Error) => {
        // A StrataError is the store's answer (a layer removed meanwhile); anything else a bug.
        if (!(err instanceof StrataError)) log.error(`ui: ${req.url}: ${err.stack ?? err.message}`);
        return text(err instanceof StrataError ? 409 : 500, err.message);
      })
      .then((a) => {
        if (!a) return;
        res.writeHead(a.status, { ...HEADERS, 'Content-Type': a.type, 'Content-Length': Buffer.byteLength(a.body) });
        res.end(req.method === 'HEAD' ? undefined : a.body);
      });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'EADDRINUSE' || err.code === 'EACCES' ? new StrataError(`cannot listen on ${HOST}:${opts.port}: ${err.code}`) : err),
    );
    server.listen(opts.port ?? 0, HOST, resolve);
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${HOST}:${port}/?token=${token}`,
    port,
    token,
    close: async () => {
      clearInterval(poll);
      for (const s of streams) s.end();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}
