// The page's one way to the server: every request carries the token the page was opened with
// (the server answers 403 without it), and the store's change events come over one EventSource.
export const token = new URLSearchParams(location.search).get('token') ?? '';

export async function getJSON<T>(path: string): Promise<T> {
  const res = await fetch(`${path}?token=${encodeURIComponent(token)}`);
  if (!res.ok) throw new Error(`${path}: ${res.status} ${(await res.text()).trim()}`);
  return (await res.json()) as T;
}

/** Calls onChange with the store's change counter each time another process changes the store. */
export function follow(onChange: (version: number) => void): () => void {
  const es = new EventSource(`/api/events?token=${encodeURIComponent(token)}`);
  es.onmessage = (e: MessageEvent<string>) => onChange(Number(e.data));
  return () => es.close();
}

// Sizes and short IDs as the CLI prints them (one function for both).
export { humanSize as size } from '../src/cli/format.js';
export { shortId as short } from '../src/reference/digest.js';
