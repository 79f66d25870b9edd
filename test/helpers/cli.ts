// Running the real strata CLI (bin/strata.cjs) against a scratch store, and the umoci oracle.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { corpusImage, strataBin } from './env.js';
import { runToolSync } from '../../src/sys/run.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function strataIn(root: string, driver: string) {
  /** The command line that runs strata on this store, for callers that spawn it themselves. */
  const argv = [process.execPath, strataBin, '--root', root, '--driver', driver];
  const run = (args: string[], input?: Buffer | string): CliResult => {
    const r = spawnSync(argv[0]!, [...argv.slice(1), ...args], {
      input,
      maxBuffer: 256 * 1024 * 1024,
    });
    return { code: r.status ?? 128, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
  };
  /** Run and insist on exit 0; returns stdout. */
  const ok = (args: string[], input?: Buffer | string): string => {
    const r = run(args, input);
    if (r.code !== 0) throw new Error(`strata ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return r.stdout;
  };
  return { argv, run, ok };
}

/**
 * `umoci unpack` of a corpus OCI archive: the reference rootfs. Cached per scratch dir.
 * multiarch holds an index, which umoci 0.4 cannot unpack: skopeo picks the host platform first.
 */
export function umociRootfs(work: string, archive: string): string {
  const name = archive.replace(/\.oci\.tar$/, '');
  const bundle = join(work, `umoci-${name}`);
  if (existsSync(join(bundle, 'rootfs'))) return join(bundle, 'rootfs');
  const layout = join(work, `layout-${name}`);
  mkdirSync(layout, { recursive: true });
  if (name === 'multiarch') {
    runToolSync('skopeo', ['copy', '-q', `oci-archive:${corpusImage(archive)}:latest`, `oci:${layout}:latest`]);
  } else {
    runToolSync('tar', ['-xf', corpusImage(archive), '-C', layout]);
  }
  runToolSync('umoci', ['unpack', '--image', `${layout}:latest`, bundle], { ignoreStdout: true });
  return join(bundle, 'rootfs');
}

/** The paths Docker's init layer adds to a container (absent from umoci's rootfs). */
export const INIT_PATHS = ['/dev/pts', '/dev/shm', '/proc', '/sys', '/.dockerenv', '/etc/resolv.conf', '/etc/hosts', '/etc/hostname', '/dev/console', '/etc/mtab', '/dev', '/etc'];
