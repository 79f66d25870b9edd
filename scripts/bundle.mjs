// The CLI as one CommonJS file (dist/strata.cjs) with a V8 code cache beside it
// (dist/strata.cjs.codecache), loaded by bin/strata.cjs through bin/bundle-loader.cjs.
// Node 20 keeps no compiled-code cache for user modules, and each start paid for it:
//  - ~90 separate modules cost ~55 ms more to resolve, read and compile than one bundle;
//  - an ES module entry and bundle start Node's ESM loader, ~10 ms more than CommonJS;
//  - compiling the bundle is another ~10 ms that the code cache saves (strata --version:
//    0.10 s as an ES module bundle, 0.08 s now, against 0.05 s for `node -e 0`).
// The library (dist/src) stays as ES modules; native addons stay outside the bundle and load
// from node_modules.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const external = ['better-sqlite3', 'koffi', 'node-pty', 'zstd-napi'];

// A dynamic import() in a vm.Script needs vm's experimental importModuleDynamically (which warns
// on every run); an addon loaded on demand (zstd-napi) becomes a require() that runs on first use.
const lazyRequire = {
  name: 'lazy-require',
  setup(b) {
    const filter = new RegExp(`^(${external.join('|')})$`);
    b.onResolve({ filter }, (a) => (a.kind === 'dynamic-import' ? { path: a.path, namespace: 'lazy-require' } : undefined));
    b.onLoad({ filter: /.*/, namespace: 'lazy-require' }, (a) => ({ contents: `module.exports = require(${JSON.stringify(a.path)});`, loader: 'js' }));
  },
};

await build({
  entryPoints: ['dist/src/cli/main.js'],
  outfile: 'dist/strata.cjs',
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  external,
  plugins: [lazyRequire],
  // src/version.ts: the version inlined, so the bundle never looks for package.json (whose
  // import.meta.url lookup is then dead code, hence the silenced warning).
  define: { STRATA_BUNDLE: 'true', STRATA_VERSION: JSON.stringify(JSON.parse(readFileSync('package.json', 'utf8')).version) },
  logOverride: { 'empty-import-meta': 'silent' },
  minifyWhitespace: true,
  sourcemap: 'linked',
  logLevel: 'warning',
});

// strata ui's page (web/, preact and d3-hierarchy) as one script and one stylesheet in
// dist/web/, shipped in the package and served by src/ui/server.ts: nothing comes from a CDN.
await build({
  entryPoints: { app: 'web/main.tsx' },
  outdir: 'dist/web',
  bundle: true,
  platform: 'browser',
  format: 'esm',
  target: 'es2022',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  minify: true,
  legalComments: 'none',
  logLevel: 'warning',
});

// Made by a fresh node running the bundle's top level, exactly as bin/strata.cjs does; V8 checks
// the cache against its version, flags and the source, and compiles afresh when it does not fit.
execFileSync(process.execPath, ['-e', "require('./bin/bundle-loader.cjs').writeCodeCache()"], { stdio: 'inherit' });
