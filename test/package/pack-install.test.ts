// The package as a Node user gets it: `npm pack` of a fresh copy of the sources (prepack runs
// the build), `npm install -g` of the tarball into an empty prefix with an empty HOME and npm
// cache (native addons built there, nothing taken from this checkout's node_modules), then the
// installed `strata` and a TypeScript program compiled against the installed library.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { corpusImage, repoRoot, scratch } from '../helpers/env.js';
import { startRegistry } from '../helpers/registry.js';

const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { name: string; version: string };

// Building better-sqlite3 and zstd-napi from source takes minutes on a quiet 2-core machine and
// far longer on a busy one; bounded all the same, so a hung install fails instead of waiting.
const INSTALL_TIMEOUT = 45 * 60_000;

interface Run {
  code: number | null;
  out: string;
}

function run(cmd: string, args: string[], opts: { cwd?: string; env: NodeJS.ProcessEnv; timeout?: number }): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'], timeout: opts.timeout ?? 10 * 60_000, killSignal: 'SIGKILL' });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
  });
}

async function ok(cmd: string, args: string[], opts: { cwd?: string; env: NodeJS.ProcessEnv; timeout?: number }): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}:\n${r.out.slice(-6000)}`);
  return r.out;
}

/** This machine's npm setting KEY (the registry's CA lives in the global npmrc here), or none. */
function npmSetting(key: string): string | undefined {
  const v = execFileSync('npm', ['config', 'get', key], { encoding: 'utf8' }).trim();
  return v && v !== 'undefined' && v !== 'null' ? v : undefined;
}

test('npm pack, npm install -g into an empty prefix, then the CLI and the typed library work', { timeout: INSTALL_TIMEOUT + 15 * 60_000 }, async (t) => {
  const dir = scratch(t, 'strata-pack-');
  const started = Date.now();

  // --- pack a copy with no dist/ (as a fresh clone has), so prepack's build makes what ships
  const src = join(dir, 'src');
  cpSync(repoRoot, src, {
    recursive: true,
    filter: (p) => !/^(node_modules|dist|tmp|\.git)(\/|$)|\.tgz$/.test(relative(repoRoot, p)),
  });
  symlinkSync(join(repoRoot, 'node_modules'), join(src, 'node_modules'));
  const devEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('npm_')));
  const packed = await ok('npm', ['pack', '--pack-destination', dir], { cwd: src, env: devEnv });
  const tarball = join(dir, packed.trim().split('\n').at(-1)!);
  assert.equal(tarball, join(dir, `${pkg.name}-${pkg.version}.tgz`));
  const entries = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).trim().split('\n');
  for (const f of ['package/package.json', 'package/LICENSE', 'package/README.md', 'package/bin/strata.cjs', 'package/bin/bundle-loader.cjs', 'package/dist/strata.cjs', 'package/dist/strata.cjs.codecache', 'package/dist/strata.cjs.layers.codecache', 'package/dist/src/index.js', 'package/dist/src/index.d.ts', 'package/dist/web/app.js', 'package/dist/web/app.css']) {
    assert.ok(entries.includes(f), `${f} in the tarball`);
  }
  const strays = entries.filter((e) => !/^package\/(package\.json|LICENSE|README\.md|bin\/[^/]+\.cjs|dist\/strata\.cjs(\.map|\.codecache|\.layers\.codecache)?|dist\/web\/app\.(js|css)|dist\/src\/.+\.(js|d\.ts))$/.test(e));
  assert.deepEqual(strays, [], 'only what runs ships (no tests, benches, sources or maps of missing sources)');

  // --- install into an empty prefix: empty HOME and npm cache, none of this checkout's tools
  const prefix = join(dir, 'prefix');
  const home = join(dir, 'home');
  mkdirSync(home);
  const PATH = (process.env.PATH ?? '')
    .split(':')
    .filter((p) => p && !p.includes('node_modules'))
    .join(':');
  const globalconfig = npmSetting('globalconfig');
  const nodedir = npmSetting('nodedir'); // headers for node-gyp where nodejs.org is out of reach
  const env: NodeJS.ProcessEnv = {
    PATH: `${join(prefix, 'bin')}:${PATH}`,
    HOME: home,
    npm_config_cache: join(dir, 'npm-cache'),
    npm_config_prefix: prefix,
    npm_config_update_notifier: 'false',
    npm_config_fund: 'false',
    npm_config_audit: 'false',
    ...(globalconfig ? { npm_config_globalconfig: globalconfig } : {}),
    ...(nodedir ? { npm_config_nodedir: nodedir } : {}),
  };
  // npm 11 runs install scripts it has no policy for, with a warning; README says to name them
  const allow = '--allow-scripts=better-sqlite3,koffi,node-pty,zstd-napi';
  const installLog = await ok('npm', ['install', '-g', allow, '--foreground-scripts', tarball], { cwd: dir, env, timeout: INSTALL_TIMEOUT });
  const installed = join(prefix, 'lib', 'node_modules', pkg.name);
  t.diagnostic(`npm install -g took ${Math.round((Date.now() - started) / 1000)} s from the start of the test`);

  // the native addons were built (or found) in the prefix and load there
  assert.ok(existsSync(join(installed, 'node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node')), installLog.slice(-3000));
  assert.ok(existsSync(join(installed, 'node_modules', 'zstd-napi', 'build', 'Release', 'binding.node')), installLog.slice(-3000));
  const natives = await ok(
    process.execPath,
    [
      '-e',
      `const db = require('better-sqlite3')(':memory:'); const z = require('zstd-napi');
       const back = z.decompress(z.compress(Buffer.from('strata'))).toString();
       console.log(db.prepare('SELECT 6 * 7 AS n').get().n, back, typeof require('koffi').load)`,
    ],
    { cwd: installed, env },
  );
  assert.equal(natives.trim(), '42 strata function');
  // (tar-stream is a devDependency here, but prebuild-install brings it in through tar-fs)
  for (const dev of ['typescript', 'esbuild', 'eslint', 'typescript-eslint']) {
    assert.ok(!existsSync(join(installed, 'node_modules', dev)), `devDependency ${dev} not installed`);
  }

  // --- the installed CLI, from PATH, on a vfs store
  const root = join(dir, 'store');
  const strata = (...args: string[]) => ok('strata', ['--root', root, '--driver', 'vfs', ...args], { env });
  assert.equal((await ok('strata', ['--version'], { env })).trim(), pkg.version);
  assert.match(await strata('info'), /Storage Driver: vfs/);
  assert.match(await strata('load', '-i', corpusImage('busybox.docker.tar')), /Loaded image: corpus\/busybox:latest/);
  await strata('create', '--name', 'c1', 'corpus/busybox');
  const mnt = (await strata('mount', 'c1')).trim();
  writeFileSync(join(mnt, 'from-installed-cli'), 'hi\n');
  await strata('umount', 'c1');
  assert.match(await strata('diff', 'c1'), /^A \/from-installed-cli$/m);
  assert.match(await strata('commit', 'c1', 'corpus/busybox:changed'), /^sha256:[0-9a-f]{64}$/m);
  assert.match(await strata('images'), /corpus\/busybox\s+changed/);
  // the code cache built by prepack fits the installing node (a different node compiles afresh)
  const rejected = await ok(process.execPath, ['-p', `require(${JSON.stringify(join(installed, 'bin', 'bundle-loader.cjs'))}).compileBundle().cachedDataRejected`], { env });
  assert.equal(rejected.trim(), 'false');

  const registry = await startRegistry((fn) => t.after(fn));
  await registry.load('busybox');
  await strata('pull', '-q', `${registry.host}/corpus/busybox:latest`);
  assert.match(await strata('images'), new RegExp(`${registry.host}/corpus/busybox\\s+latest`));

  // --- a TypeScript project that depends on the installed package (npm link: no second build)
  const app = join(dir, 'app');
  mkdirSync(join(app, 'src'), { recursive: true });
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  writeFileSync(
    join(app, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, outDir: 'dist', types: ['node'] }, include: ['src'] }),
  );
  writeFileSync(
    join(app, 'src', 'main.ts'),
    `import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Store, StrataError, type Change, type ImageSummary } from '${pkg.name}';

const [root, archive] = process.argv.slice(2);
const store = await Store.open({ root, driver: 'vfs' });
const [img] = await store.load(archive);
const c = await store.createContainer(img.id, { name: 'lib1' });
writeFileSync(join(await store.mount(c.id), 'from-library'), 'x');
await store.unmount(c.id);
const changes: Change[] = await store.diff(c.id);
const id: string = await store.commit(c.id, 'lib/changed:1');
const images: ImageSummary[] = store.listImages();
let missing = '';
try {
  await store.createContainer('no-such-image');
} catch (err) {
  if (err instanceof StrataError) missing = err.message;
}
await store.close();
console.log(JSON.stringify({ changes, id, images: images.map((i) => i.names).flat().sort(), missing }));
`,
  );
  // types that are really there: a wrong call must be an error (an \`any\` would accept it)
  writeFileSync(join(app, 'src', 'typed.ts'), `import { Store } from '${pkg.name}';\n// @ts-expect-error: a root is a string\nexport const bad = Store.open({ root: 42 });\n`);
  await ok('npm', ['install', '--save-dev', '@types/node@20'], { cwd: app, env });
  await ok('npm', ['link', pkg.name], { cwd: app, env });
  await ok(process.execPath, [join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', app], { cwd: app, env });
  const result = JSON.parse(await ok(process.execPath, [join(app, 'dist', 'main.js'), join(dir, 'store2'), corpusImage('busybox.oci.tar')], { cwd: app, env })) as {
    changes: { kind: string; path: string }[];
    id: string;
    images: string[];
    missing: string;
  };
  assert.ok(result.changes.some((ch) => ch.kind === 'A' && ch.path === '/from-library'), JSON.stringify(result.changes));
  assert.match(result.id, /^sha256:[0-9a-f]{64}$/);
  assert.ok(result.images.some((n) => n.endsWith('lib/changed:1')), result.images.join(' '));
  assert.match(result.missing, /no-such-image/);
  // npx in the project runs the package's command
  assert.equal((await ok('npx', ['strata', '--version'], { cwd: app, env: { ...env, PATH } })).trim(), pkg.version);
  t.diagnostic(`pack, install and checks took ${Math.round((Date.now() - started) / 1000)} s`);
});
