// Answers of driver probes that are costly to make at every command (the d_type probe needs the
// FFI, overlay2's native-diff check makes and mounts a test overlay), remembered in the store
// root's probe-cache.json. Each answer carries a key of what it depends on (the boot, so the
// same kernel, plus what the caller names: a directory's device and inode, module parameters);
// a key that no longer matches means probing again. The file is only a hint: one that cannot
// be read or written means probing again, never an error.
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

type Entries = Record<string, { key: string; value: boolean }>;

/** The cache file of a store root. */
export function probeCache(root: string): string {
  return join(resolve(root), 'probe-cache.json');
}

function bootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    // No /proc: a key no later process can match, so nothing is ever taken from the cache.
    return `unknown-${process.pid}-${Date.now()}`;
  }
}

function read(file: string): Entries {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Entries;
  } catch {
    return {};
  }
}

function remember(file: string, name: string, key: string, value: boolean): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, JSON.stringify({ ...read(file), [name]: { key, value } }) + '\n', { mode: 0o600 });
    renameSync(tmp, file);
  } catch {
    rmSync(tmp, { force: true });
  }
}

/**
 * The answer of `probe` for `name`, from the cache when it was made under the same key; a probe
 * that answers undefined (it could not tell) is not remembered and counts as false.
 */
export async function cachedProbe(file: string, name: string, key: string, probe: () => Promise<boolean | undefined>): Promise<boolean> {
  const fullKey = `${bootId()} ${key}`;
  const known = read(file)[name];
  if (known?.key === fullKey) return known.value;
  const value = await probe();
  if (value === undefined) return false;
  remember(file, name, fullKey, value);
  return value;
}

/** cachedProbe for a probe that runs synchronously. */
export function cachedProbeSync(file: string, name: string, key: string, probe: () => boolean): boolean {
  const fullKey = `${bootId()} ${key}`;
  const known = read(file)[name];
  if (known?.key === fullKey) return known.value;
  const value = probe();
  remember(file, name, fullKey, value);
  return value;
}
