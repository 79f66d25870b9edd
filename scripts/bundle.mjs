// The CLI as one CommonJS file (dist/strata.cjs) with a V8 code cache beside it
// (dist/strata.cjs.codecache), loaded by bin/strata.cjs through bin/bundle-loader.cjs.
// Node 20 keeps no compiled-code cache for user modules, and each start paid for it:
//  - ~90 separate modules cost ~55 ms more to resolve, read and compile than one bundle;
//  - an ES module entry and bundle start Node's ESM loader, ~10 ms more than CommonJS;
//  - compiling the bundle is another ~10 ms that the code cache saves (strata --version:
//    0.10 s as an ES module bundle, 0.08 s now, against 0.05 s for `node -e 0`).
//  - better-sqlite3's JavaScript is bundled too (8 ms of CPU to compile at every start when it
//    loaded from node_modules), its addon is required straight from where its install puts it.
// The library (dist/src) stays as ES modules; native addons stay outside the bundle and load
// from node_modules.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const external = ['koffi', 'node-pty', 'zstd-napi'];

// better-sqlite3 finds its addon through the `bindings` package, which searches from the file
// that calls it: from inside the bundle it would search strata's own directories. Its install
// (prebuild-install or node-gyp) always leaves the addon at build/Release/, which is where
// `bindings` looks first; the build fails here if that is not so.
const SQLITE_ADDON = 'better-sqlite3/build/Release/better_sqlite3.node';
createRequire(import.meta.url).resolve(SQLITE_ADDON);
const sqliteAddon = {
  name: 'sqlite-addon',
  setup(b) {
    b.onResolve({ filter: /^bindings$/ }, (a) => {
      if (!a.importer.includes('/better-sqlite3/')) throw new Error(`bindings required by ${a.importer}: only better-sqlite3's is known`);
      return { path: 'bindings', namespace: 'sqlite-addon' };
    });
    b.onLoad({ filter: /.*/, namespace: 'sqlite-addon' }, () => ({
      contents: `module.exports = () => require(${JSON.stringify(SQLITE_ADDON)});`,
      loader: 'js',
    }));
    b.onResolve({ filter: /^better-sqlite3\/build\// }, (a) => ({ path: a.path, external: true }));
  },
};

// A dynamic import() in a vm.Script needs vm's experimental importModuleDynamically (which warns
// on every run); an addon loaded on demand (zstd-napi) or a node: builtin imported late to spare
// startup (node:tls) becomes a require() that runs on first use.
const lazyRequire = {
  name: 'lazy-require',
  setup(b) {
    const filter = new RegExp(`^(${external.join('|')}|node:.*)$`);
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
  plugins: [lazyRequire, sqliteAddon],
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

// Made by a fresh node running the bundle's top level and a few commands, as bin/strata.cjs does;
// V8 checks the cache against its version, flags and the source, and compiles afresh when it does
// not fit (so a node started with other V8 flags than the build's gets no use of it).
for (const kind of ['read', 'layers']) {
  execFileSync(process.execPath, ['-e', `require('./bin/bundle-loader.cjs').writeCodeCache('${kind}')`], { stdio: 'inherit' });
}
