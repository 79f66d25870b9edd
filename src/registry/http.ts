// The two pieces of undici the registry client uses: an Agent (connection pools per origin, TLS
// options) and request(). undici's index loads all of undici besides (fetch, WebSocket,
// EventSource, caches, mocks, interceptors): 1 MB of the 1.1 MB CLI bundle, compiled and run at
// every start of every command. Its files are imported one by one instead; undici has no
// "exports" map, and a moved file fails the build and every registry test rather than quietly.
// Even those two files load node:http, node:http2 and node:tls (about 20 ms of CPU), so they are
// loaded at the first agent, not when a command that never talks to a registry starts.
import type { Agent, Dispatcher } from 'undici';

export type { Agent, Dispatcher };

let undici: Promise<{ Agent: typeof Agent; requestOn: typeof import('undici/lib/api/api-request.js').default }> | undefined;
const load = () =>
  (undici ??= Promise.all([import('undici/lib/dispatcher/agent.js'), import('undici/lib/api/api-request.js')]).then(([a, r]) => ({
    Agent: a.default,
    requestOn: r.default,
  })));

/** A new undici Agent (typed by undici's own declarations, so this module's .d.ts names only 'undici'). */
export async function newAgent(opts: Agent.Options): Promise<Agent> {
  const { Agent } = await load();
  return new Agent(opts);
}

export interface RequestOptions {
  method: Dispatcher.HttpMethod;
  headers: Record<string, string>;
  body?: string | Buffer;
  dispatcher: Dispatcher;
  highWaterMark?: number;
}

/** undici's request(url, opts), on the given dispatcher. */
export async function request(url: string, opts: RequestOptions): Promise<Dispatcher.ResponseData> {
  const { requestOn } = await load();
  const u = new URL(url);
  const { dispatcher, ...rest } = opts;
  return requestOn.call(dispatcher, { ...rest, origin: u.origin, path: u.pathname + u.search });
}
