'use strict';
// Runs dist/strata.cjs (the CLI bundle) through vm.Script so that V8 can start from the code
// cache `npm run build` left beside it, instead of compiling the bundle at every start; see
// scripts/bundle.mjs for what each piece saves.
const { readFileSync, renameSync, writeFileSync } = require('node:fs');
const { createRequire } = require('node:module');
const { dirname, join } = require('node:path');
const { Script } = require('node:vm');

const bundle = join(__dirname, '..', 'dist', 'strata.cjs');
const cacheFile = `${bundle}.codecache`;

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

/** The bundle as a vm.Script, from the code cache when there is one that fits. */
function compileBundle() {
  let cached;
  try {
    cached = readFileSync(cacheFile);
  } catch {
    // no cache (a bundle built by hand): compile from source
  }
  return compile(cached);
}
exports.compileBundle = compileBundle;

/** The bundle's exports. */
exports.loadCli = function loadCli() {
  return run(compileBundle());
};

/**
 * Build step: run the bundle's top level, then a few commands that read a store (on a throwaway
 * vfs root), and keep what V8 compiled by then. The bundle's modules are initialised on demand,
 * so a cache taken after the top level alone would leave the store's code to compile at every
 * command; functions the warm-up never ran still compile lazily, as before.
 */
exports.writeCodeCache = async function writeCodeCache() {
  const script = compile(undefined);
  const cli = run(script);
  const { mkdtempSync, rmSync } = require('node:fs');
  const { tmpdir } = require('node:os');
  const { Writable } = require('node:stream');
  const sink = new Writable({ write: (_chunk, _enc, done) => done() });
  const root = mkdtempSync(join(tmpdir(), 'strata-codecache-'));
  try {
    for (const argv of [['--help'], ['images'], ['ps', '-a'], ['inspect', 'none']]) {
      await cli.main(argv[0] === '--help' ? argv : ['--root', root, '--driver', 'vfs', ...argv], new cli.Output(sink, sink));
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  writeFileSync(`${cacheFile}.tmp`, script.createCachedData());
  renameSync(`${cacheFile}.tmp`, cacheFile);
};
