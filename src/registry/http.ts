// The two pieces of undici the registry client uses: an Agent (connection pools per origin, TLS
// options) and request(). undici's index loads all of undici besides (fetch, WebSocket,
// EventSource, caches, mocks, interceptors): 1 MB of the 1.1 MB CLI bundle, compiled and run at
// every start of every command. Its files are imported one by one instead; undici has no
// "exports" map, and a moved file fails the build and every registry test rather than quietly.
import type { Agent as AgentType, Dispatcher } from 'undici';
import AgentImpl from 'undici/lib/dispatcher/agent.js';
import requestOn from 'undici/lib/api/api-request.js';

// Typed by undici's own declarations, so this module's .d.ts names only 'undici'.
export const Agent: typeof AgentType = AgentImpl;
export type Agent = AgentType;
export type { Dispatcher };

export interface RequestOptions {
  method: Dispatcher.HttpMethod;
  headers: Record<string, string>;
  body?: string | Buffer;
  dispatcher: Dispatcher;
  highWaterMark?: number;
}

/** undici's request(url, opts), on the given dispatcher. */
export function request(url: string, opts: RequestOptions): Promise<Dispatcher.ResponseData> {
  const u = new URL(url);
  const { dispatcher, ...rest } = opts;
  return requestOn.call(dispatcher, { ...rest, origin: u.origin, path: u.pathname + u.search });
}
