// Registry credentials in Docker's config.json format: `auths` (base64 user:password),
// `credsStore` / `credHelpers` (docker-credential-<helper> programs), and our own
// login/logout writing the same file so `docker` and `strata` share logins.
import { InvalidInputError } from '../errors.js';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { runTool, ToolError } from '../sys/run.js';

export interface Credentials {
  username?: string;
  password?: string;
  /** An OAuth2 refresh token (Docker's `identitytoken`), exchanged at the token endpoint. */
  identityToken?: string;
}

interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
  [k: string]: unknown;
}

interface DockerConfig {
  auths?: Record<string, AuthEntry>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
  [k: string]: unknown;
}

/** A helper may ask a keychain, but never for this long. */
const HELPER_TIMEOUT_MS = 60_000;

/** The key Docker uses for Docker Hub in config.json. */
const dockerHubKey = 'https://index.docker.io/v1/';

/** The config file to read and write: $REGISTRY_AUTH_FILE, $DOCKER_CONFIG/config.json, ~/.docker/config.json. */
export function authFilePath(explicit?: string): string {
  if (explicit) return explicit;
  if (process.env.REGISTRY_AUTH_FILE) return process.env.REGISTRY_AUTH_FILE;
  const dir = process.env.DOCKER_CONFIG ?? join(homedir(), '.docker');
  return join(dir, 'config.json');
}

function isDockerHub(host: string): boolean {
  return host === 'docker.io' || host === 'index.docker.io' || host === 'registry-1.docker.io';
}

/** The key a host is stored under (Docker Hub keeps its historical URL). */
export function configKey(host: string): string {
  return isDockerHub(host) ? dockerHubKey : host;
}

/** Strips scheme and path so "https://host:5000/v1/" and "host:5000" compare equal. */
function normaliseKey(key: string): string {
  let k = key.replace(/^[a-z]+:\/\//i, '');
  const slash = k.indexOf('/');
  if (slash !== -1) k = k.slice(0, slash);
  return isDockerHub(k) ? 'docker.io' : k;
}

async function readConfig(path: string): Promise<DockerConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw err;
  }
  try {
    return JSON.parse(text) as DockerConfig;
  } catch {
    throw new InvalidInputError(`${path}: not valid JSON`);
  }
}

async function writeConfig(path: string, cfg: DockerConfig): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, JSON.stringify(cfg, null, '\t') + '\n', { mode: 0o600 });
  await rename(tmp, path);
}

/** Runs docker-credential-<helper> <action> with `input` on stdin. */
function runHelper(helper: string, action: 'get' | 'store' | 'erase', input: string): Promise<string> {
  return runTool(`docker-credential-${helper}`, [action], { input, who: 'credential helper', timeoutMs: HELPER_TIMEOUT_MS });
}

/** A helper that ran and said no (as opposed to one that could not be run at all). */
function helperRefused(err: unknown): err is ToolError {
  return err instanceof ToolError && err.exitCode !== null;
}

function helperFor(cfg: DockerConfig, host: string): string | undefined {
  const helpers = cfg.credHelpers ?? {};
  for (const [k, v] of Object.entries(helpers)) if (normaliseKey(k) === normaliseKey(host)) return v;
  return cfg.credsStore || undefined;
}

/** Credentials for a registry host ("127.0.0.1:5000", "docker.io"), or undefined when there are none. */
export async function loadCredentials(host: string, file?: string): Promise<Credentials | undefined> {
  const cfg = await readConfig(authFilePath(file));
  const helper = helperFor(cfg, host);
  if (helper) {
    let out: string;
    try {
      out = await runHelper(helper, 'get', configKey(host));
    } catch (err) {
      if (helperRefused(err) && /credentials not found/i.test(err.message)) return undefined;
      throw err;
    }
    const r = JSON.parse(out) as { Username?: string; Secret?: string };
    if (!r.Secret) return undefined;
    if (r.Username === '<token>') return { identityToken: r.Secret };
    return { username: r.Username, password: r.Secret };
  }
  for (const [k, entry] of Object.entries(cfg.auths ?? {})) {
    if (normaliseKey(k) !== normaliseKey(host)) continue;
    if (entry.identitytoken) return { identityToken: entry.identitytoken };
    if (entry.auth) {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon === -1) throw new InvalidInputError(`${authFilePath(file)}: auth entry for ${k} is not base64 of user:password`);
      return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
    }
    if (entry.username !== undefined && entry.password !== undefined) return { username: entry.username, password: entry.password };
  }
  return undefined;
}

/** Stores credentials the way docker login does: in the helper when one is configured, else base64 in auths. */
export async function storeCredentials(host: string, creds: { username: string; password: string }, file?: string): Promise<void> {
  const path = authFilePath(file);
  const cfg = await readConfig(path);
  const key = configKey(host);
  const helper = helperFor(cfg, host);
  cfg.auths ??= {};
  if (helper) {
    await runHelper(helper, 'store', JSON.stringify({ ServerURL: key, Username: creds.username, Secret: creds.password }));
    cfg.auths[key] = {};
  } else {
    cfg.auths[key] = { auth: Buffer.from(`${creds.username}:${creds.password}`, 'utf8').toString('base64') };
  }
  await writeConfig(path, cfg);
}

/** Removes stored credentials; returns false when there were none. */
export async function eraseCredentials(host: string, file?: string): Promise<boolean> {
  const path = authFilePath(file);
  const cfg = await readConfig(path);
  let found = false;
  const helper = helperFor(cfg, host);
  if (helper) {
    try {
      await runHelper(helper, 'erase', configKey(host));
      found = true;
    } catch (err) {
      if (!helperRefused(err)) throw err;
    }
  }
  for (const k of Object.keys(cfg.auths ?? {})) {
    if (normaliseKey(k) === normaliseKey(host)) {
      delete cfg.auths![k];
      found = true;
    }
  }
  if (found) await writeConfig(path, cfg);
  return found;
}
