// The CLI as one file (dist/strata.mjs): Node 20 keeps no compiled-code cache for user modules,
// so resolving, reading and compiling ~90 modules at every start cost about 55 ms more than one
// bundle (strata --version: 0.16 s -> 0.10 s). The library (dist/src) stays as modules; native
// addons stay outside the bundle and load from node_modules.
import { build } from 'esbuild';

await build({
  entryPoints: ['dist/src/cli/main.js'],
  outfile: 'dist/strata.mjs',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['better-sqlite3', 'koffi', 'zstd-napi'],
  // CommonJS dependencies (commander, undici) call require(); give the ES module bundle one.
  banner: { js: "import { createRequire as strataCreateRequire } from 'node:module'; const require = strataCreateRequire(import.meta.url);" },
  minifyWhitespace: true,
  sourcemap: 'linked',
  logLevel: 'warning',
});
