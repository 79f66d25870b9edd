'use strict';
// Runs dist/strata.cjs (the CLI bundle) through vm.Script so that V8 can start from the code
// cache `npm run build` left beside it, instead of compiling the bundle at every start; see
// scripts/bundle.mjs for what each piece saves.
const { readFileSync, renameSync, writeFileSync } = require('node:fs');
const { createRequire } = require('node:module');
const { dirname, join } = require('node:path');
const { Script } = require('node:vm');

const bundle = join(__dirname, '..', 'dist', 'strata.cjs');
/**
 * Two caches: V8 reads a whole cache at every start (~1 ms per 50 KB here), so the commands
 * that only read the store load the small one, and those that move layers (a pull compiled ~900
 * functions of the HTTP client, tar and apply code at every start) the one made after a pull.
 */
const cacheFiles = { read: `${bundle}.codecache`, layers: `${bundle}.layers.codecache` };
const LAYER_COMMANDS = new Set(['pull', 'push', 'load', 'save', 'import', 'export', 'create', 'run', 'start', 'mount', 'diff', 'commit', 'cp']);

/** Which cache fits a command line: any word naming a layer command picks the layers one. */
function cacheKind(argv) {
  return argv.some((a) => LAYER_COMMANDS.has(a)) ? 'layers' : 'read';
}

function compile(cachedData) {
  // The wrapper gets a line of its own, taken back by lineOffset: stack traces point into
  // dist/strata.cjs exactly, and its source map still fits.
  const source = `(function (exports, require, module, __filename, __dirname) {\n${readFileSync(bundle, 'utf8')}\n})`;
  return new Script(source, { filename: bundle, lineOffset: -1, cachedData });
}

function run(script) {
  const module = { exports: {} };
  script.runInThisContext()(module.exports, createRequire(bundle), module, bundle, dirname(bundle));
  return module.exports;
}

/** The bundle as a vm.Script, from the code cache for `argv` when there is one that fits. */
function compileBundle(argv = []) {
  let cached;
  try {
    cached = readFileSync(cacheFiles[cacheKind(argv)]);
  } catch {
    // no cache (a bundle built by hand): compile from source
  }
  return compile(cached);
}
exports.compileBundle = compileBundle;

/** The bundle's exports, for running `argv`. */
exports.loadCli = function loadCli(argv = []) {
  return run(compileBundle(argv));
};

/**
 * Build step: run the bundle's top level, then a few commands that read a store (on a throwaway
 * vfs root), and keep what V8 compiled by then. The bundle's modules are initialised on demand,
 * so a cache taken after the top level alone would leave the store's code to compile at every
 * command; functions the warm-up never ran still compile lazily, as before. The layers cache
 * also pulls a small image from a registry on 127.0.0.1 (scripts/warmup-registry.cjs) and makes,
 * mounts, diffs and removes a container of it.
 */
exports.writeCodeCache = async function writeCodeCache(kind = 'read') {
  const cacheFile = cacheFiles[kind];
  const script = compile(undefined);
  const cli = run(script);
  const { mkdtempSync, rmSync } = require('node:fs');
  const { tmpdir } = require('node:os');
  const { Writable } = require('node:stream');
  // A fresh sink per command: each Output adds its own listeners to the streams it is given.
  const sink = () => new Writable({ write: (_chunk, _enc, done) => done() });
  const root = mkdtempSync(join(tmpdir(), 'strata-codecache-'));
  const commands = [['--help'], ['images'], ['ps', '-a'], ['inspect', 'none']];
  const registry = kind === 'layers' ? await require('../scripts/warmup-registry.cjs').serveWarmupImage() : null;
  if (registry) {
    const c = 'strata-warmup';
    commands.push(['pull', '-q', registry.ref], ['create', '--name', c, registry.ref], ['mount', c], ['diff', c], ['umount', c], ['rm', c], ['rmi', registry.ref]);
  }
  try {
    for (const argv of commands) {
      const code = await cli.main(argv[0] === '--help' ? argv : ['--root', root, '--driver', 'vfs', ...argv], new cli.Output(sink(), sink()));
      // `inspect none` fails by design; a warm-up command that fails otherwise leaves its code uncached.
      if (code !== 0 && argv[0] !== 'inspect') throw new Error(`code cache warm-up: strata ${argv.join(' ')} exited ${code}`);
    }
  } finally {
    await registry?.stop();
    rmSync(root, { recursive: true, force: true });
  }
  writeFileSync(`${cacheFile}.tmp`, script.createCachedData());
  renameSync(`${cacheFile}.tmp`, cacheFile);
};
