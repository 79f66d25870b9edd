// The CLI as users run it: bin/strata.cjs runs the dist/strata.cjs bundle from the V8 code
// cache that `npm run build` leaves beside it, and loads what a command needs when it runs.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Script } from 'node:vm';
import { commandPaths } from '../../src/cli/help.js';
import { buildProgram } from '../../src/cli/main.js';
import { repoRoot, scratch, strataBin } from '../helpers/env.js';

const loader = createRequire(import.meta.url)(join(repoRoot, 'bin', 'bundle-loader.cjs')) as { compileBundle(argv?: string[]): Script };

test('both code caches made by the build fit the bundle and this node', () => {
  // A rejected cache still runs (V8 compiles afresh), just slower: only this check sees it.
  assert.equal(loader.compileBundle(['images']).cachedDataRejected, false);
  assert.equal(loader.compileBundle(['--root', '/r', 'pull', 'x']).cachedDataRejected, false);
  // The layers cache is the one made after a pull: the bigger of the two.
  const size = (f: string) => statSync(join(repoRoot, 'dist', f)).size;
  assert.ok(size('strata.cjs.layers.codecache') > size('strata.cjs.codecache'));
});

/** What the CLI loaded through require (node's built-ins and addons), running `args`. */
function modulesLoaded(dir: string, args: string[]): { stdout: string; loaded: string[] } {
  const hook = join(dir, 'record-loads.cjs');
  const record = join(dir, 'loaded.txt');
  writeFileSync(
    hook,
    `const M = require('node:module'); const seen = new Set(); const load = M._load;
M._load = function (request, ...rest) { seen.add(request); return load.call(this, request, ...rest); };
process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(record)}, [...seen].join('\\n')));`,
  );
  const r = spawnSync(process.execPath, ['-r', hook, strataBin, ...args], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return { stdout: r.stdout, loaded: readFileSync(record, 'utf8').split('\n') };
}

// The registry client's HTTP stack and the FFI cost tens of ms to load: commands that never use
// them must not pay for them (bundle-loader, registry/http.ts, sys/ffi.ts).
const NETWORK = ['node:http', 'node:http2', 'node:tls'];
const FFI = ['koffi'];

test('--help and --version load neither the store, the HTTP stack nor the FFI', (t) => {
  const dir = scratch(t);
  for (const args of [['--version'], ['--help']]) {
    const { loaded } = modulesLoaded(dir, args);
    const heavy = loaded.filter((m) => [...NETWORK, ...FFI].includes(m) || m.includes('better_sqlite3'));
    assert.deepEqual(heavy, [], args.join(' '));
  }
});

test('commands that read a store load neither the HTTP stack nor the FFI', (t) => {
  const dir = scratch(t);
  const root = join(dir, 'root');
  for (const args of [['images'], ['ps', '-a'], ['images', '-q']]) {
    const { loaded } = modulesLoaded(dir, ['--root', root, '--driver', 'vfs', ...args]);
    assert.ok(loaded.some((m) => m.includes('better_sqlite3')), `${args.join(' ')} opened the store`);
    assert.deepEqual(
      loaded.filter((m) => [...NETWORK, ...FFI].includes(m)),
      [],
      args.join(' '),
    );
  }
});

test('the bundle lists every command in help and completion, loaded on demand or not', (t) => {
  const dir = scratch(t);
  const paths = commandPaths(buildProgram()).map(([p]) => p.split(' '));
  const help = modulesLoaded(dir, ['--help']).stdout;
  for (const p of paths.filter((w) => w.length === 1)) assert.match(help, new RegExp(`^  ${p[0]}[ |]`, 'm'), `strata --help lists ${p[0]}`);
  const prefixes = new Set(paths.map((p) => p.slice(0, -1).join(' ')));
  for (const prefix of prefixes) {
    const words = prefix === '' ? [] : prefix.split(' ');
    const offered = modulesLoaded(dir, ['--root', join(dir, 'root'), '__complete', '--', ...words, '']).stdout.split('\n');
    for (const p of paths.filter((w) => w.slice(0, -1).join(' ') === prefix)) {
      assert.ok(offered.includes(p[p.length - 1]), `completion offers ${p.join(' ')}`);
    }
  }
});
