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

/** Build step: run the bundle's top level once and keep what V8 compiled. */
exports.writeCodeCache = function writeCodeCache() {
  const script = compile(undefined);
  run(script);
  writeFileSync(`${cacheFile}.tmp`, script.createCachedData());
  renameSync(`${cacheFile}.tmp`, cacheFile);
};
