// `strata login` / `strata logout`: check credentials against the registry the way
// `docker login` does, then keep them in Docker's config.json (or its credential helper).
import { InvalidInputError } from '../errors.js';
import { RegistryClient, type ClientOptions } from './client.js';
import { eraseCredentials, storeCredentials } from './credentials.js';
import { defaultDomain } from '../reference/reference.js';

/** The host a login for `server` applies to ("" or Docker Hub spellings → docker.io). */
export function loginHost(server?: string): string {
  if (!server) return defaultDomain;
  const h = server.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '');
  return h === 'index.docker.io' || h === 'registry-1.docker.io' ? defaultDomain : h;
}

/** The host the API is reached on (Docker Hub's API is not on docker.io itself). */
function apiHost(host: string): string {
  return host === defaultDomain ? 'registry-1.docker.io' : host;
}

export async function login(
  server: string | undefined,
  creds: { username: string; password: string },
  opts: ClientOptions = {},
): Promise<string> {
  const host = loginHost(server);
  if (!creds.username) throw new InvalidInputError('login: username is empty');
  if (!creds.password) throw new InvalidInputError('login: password is empty');
  const client = new RegistryClient(opts);
  try {
    await client.verifyLogin(apiHost(host), creds);
  } finally {
    await client.close();
  }
  await storeCredentials(host, creds, opts.authFile);
  return 'Login Succeeded';
}

export async function logout(server: string | undefined, opts: Pick<ClientOptions, 'authFile'> = {}): Promise<string> {
  const host = loginHost(server);
  const found = await eraseCredentials(host, opts.authFile);
  return found ? `Removing login credentials for ${host}` : `Not logged in to ${host}`;
}
