// The configuration file: Docker's daemon.json keys that mean something to strata, read from
// `--config FILE` or /etc/strata/daemon.json (when it exists). A key strata does not know, or a
// value of the wrong shape, is one error line and nothing runs. Flags given on the command line
// (and STRATA_ROOT / STRATA_DRIVER) win over the file, key by key.
import { readFileSync } from 'node:fs';
import { InvalidInputError } from '../errors.js';
import { isLogLevel, logLevels, type LogLevel } from '../log.js';
import { mirrorHost } from '../registry/mirrors.js';

export const DEFAULT_CONFIG = '/etc/strata/daemon.json';

export interface DaemonConfig {
  'data-root'?: string;
  'storage-driver'?: string;
  'storage-opts'?: string[];
  'registry-mirrors'?: string[];
  'insecure-registries'?: string[];
  'log-level'?: LogLevel;
}

type Check = (v: unknown) => boolean;
const isString: Check = (v) => typeof v === 'string';
const isStrings: Check = (v) => Array.isArray(v) && v.every((s) => typeof s === 'string');
const KEYS: Record<keyof DaemonConfig, [Check, string]> = {
  'data-root': [isString, 'a string'],
  'storage-driver': [isString, 'a string'],
  'storage-opts': [isStrings, 'a list of strings'],
  'registry-mirrors': [isStrings, 'a list of strings'],
  'insecure-registries': [isStrings, 'a list of strings'],
  'log-level': [(v) => typeof v === 'string' && isLogLevel(v), `one of ${logLevels.join(', ')}`],
};

/**
 * The configuration in `file`, or in /etc/strata/daemon.json when no file is named (nothing when
 * that does not exist). Errors name the file, as Docker's "unable to configure the daemon" does.
 */
export function loadConfig(file: string | undefined): DaemonConfig {
  const path = file ?? DEFAULT_CONFIG;
  const fail = (why: string) => new InvalidInputError(`unable to configure strata with file ${path}: ${why}`);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (file === undefined && code === 'ENOENT') return {};
    throw fail(code === 'ENOENT' ? 'no such file or directory' : (err as Error).message);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw fail(`not valid JSON: ${(err as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw fail('expected a JSON object');
  const unknown = Object.keys(raw).filter((k) => !(k in KEYS));
  if (unknown.length) throw fail(`the following directives don't match any configuration option: ${unknown.join(', ')}`);
  for (const [key, value] of Object.entries(raw)) {
    const [ok, what] = KEYS[key as keyof DaemonConfig];
    if (!ok(value)) throw fail(`${key} must be ${what}`);
  }
  const config = raw as DaemonConfig;
  for (const m of config['registry-mirrors'] ?? []) {
    try {
      mirrorHost(m);
    } catch (err) {
      throw fail((err as Error).message);
    }
  }
  return config;
}
