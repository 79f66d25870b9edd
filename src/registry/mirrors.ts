// Registry mirrors for Docker Hub, as Docker's `registry-mirrors`: each mirror is a registry
// that serves Docker Hub's repositories under their own paths (library/busybox). A pull of a
// docker.io image asks the mirrors in order and Docker Hub last; the first that has the
// manifest serves the whole image.
import { InvalidInputError } from '../errors.js';

/** The "host:port" a mirror URL names, checked as Docker checks one (http or https, nothing after the host). */
export function mirrorHost(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new InvalidInputError(`invalid mirror: "${url}" is not a valid URI`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new InvalidInputError(`invalid mirror: unsupported scheme "${u.protocol.slice(0, -1)}" in "${url}"`);
  if ((u.pathname !== '' && u.pathname !== '/') || u.search || u.hash || u.username || u.password) {
    throw new InvalidInputError(`invalid mirror: path, query, or fragment at end of the URI "${url}"`);
  }
  return u.host;
}

/** Hosts a mirror list lets the client reach over plain HTTP: the ones given as http:// URLs. */
export function plainHttpMirrors(urls: string[]): string[] {
  return urls.filter((u) => u.startsWith('http://')).map(mirrorHost);
}
