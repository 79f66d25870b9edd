// The CLI contract outside any one driver: docker 20.10's exit codes for parse errors and
// missing objects, options that really act (--log-level, images --digests, history -H=false,
// pflag's --flag=false), and the version from package.json.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { strataIn } from '../helpers/cli.js';
import { corpusImage, repoRoot, scratch } from '../helpers/env.js';
import { fileCleanup, startRegistry, type TestRegistry } from '../helpers/registry.js';

const files = fileCleanup();
after(files.run);
const work = scratch(null, 'strata-contract-');
const cli = strataIn(join(work, 'root'), 'vfs');
let reg: TestRegistry;

before(async () => {
  reg = await startRegistry(files.add);
  await reg.load('busybox', 'latest');
  cli.ok(['load', '-i', corpusImage('busybox.docker.tar')]); // corpus/busybox:latest
});

test('exit codes: unknown flag 125, unknown command and missing argument 1, rm -f of a missing container 0, rmi of a missing image 1', () => {
  assert.equal(cli.run(['images', '--bogus']).code, 125);
  assert.equal(cli.run(['history', '-H=maybe', 'corpus/busybox']).code, 125);
  assert.equal(cli.run(['bogus']).code, 1);
  assert.equal(cli.run(['rm']).code, 1);
  const rmf = cli.run(['rm', '-f', 'nothere']);
  // docker 20.10 says it is not there and exits 0 (test/parity/containers.test.ts).
  assert.deepEqual([rmf.code, rmf.stdout, rmf.stderr], [0, '', 'Error: No such container: nothere\n']);
  const rm = cli.run(['rm', 'nothere', 'nothere2']);
  assert.deepEqual([rm.code, rm.stderr], [1, 'Error: No such container: nothere\nError: No such container: nothere2\n']);
  const inspect = cli.run(['inspect', 'corpus/busybox', 'nothere', 'nothere2']);
  assert.equal(inspect.code, 1);
  assert.equal((JSON.parse(inspect.stdout) as unknown[]).length, 1);
  assert.equal(inspect.stderr, 'Error: No such object: nothere\nError: No such object: nothere2\n');
  const rmi = cli.run(['rmi', 'nothere']);
  assert.deepEqual([rmi.code, rmi.stderr], [1, 'Error: No such image: nothere\n']);
  cli.ok(['create', '--name', 'taken', 'corpus/busybox']);
  const clash = cli.run(['create', '--name', 'taken', 'corpus/busybox']);
  assert.equal(clash.code, 1);
  assert.match(clash.stderr, /^Error: Conflict\. The container name "\/taken" is already in use/);
  cli.ok(['rm', 'taken']);
});

test('--version and version print package.json\'s version', () => {
  const v = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
  assert.equal(cli.ok(['--version']), `${v}\n`);
  assert.equal(cli.ok(['version']), `strata version ${v}\n`);
});

test('--log-level debug prints what the library does on stderr; the default prints nothing there', () => {
  const quiet = cli.run(['images']);
  assert.equal(quiet.stderr, '');
  const loud = cli.run(['--log-level', 'debug', 'pull', '-q', `${reg.host}/corpus/busybox`]);
  assert.equal(loud.code, 0, loud.stderr);
  assert.match(loud.stderr, /^time="[^"]+" level=debug msg="store .* opened with driver vfs"$/m);
  assert.match(loud.stderr, /level=debug msg="registry: GET http:\/\/127\.0\.0\.1:\d+\/v2\/corpus\/busybox\/manifests\/latest -> 200"/);
  assert.equal(cli.run(['--log-level', 'loud', 'images']).code, 125);
});

test('images --digests shows the repo digest a pull recorded, <none> for a loaded image', () => {
  cli.ok(['pull', '-q', `${reg.host}/corpus/busybox`]);
  const [inspected] = JSON.parse(cli.ok(['inspect', `${reg.host}/corpus/busybox`])) as { RepoDigests: string[] }[];
  const digest = inspected.RepoDigests[0].split('@')[1];
  assert.match(digest, /^sha256:[0-9a-f]{64}$/);
  const lines = cli.ok(['images', '--digests']).trim().split('\n');
  assert.match(lines[0], /^REPOSITORY\s+TAG\s+DIGEST\s+IMAGE ID\s+CREATED\s+SIZE$/);
  const row = (repo: string) => lines.find((l) => l.startsWith(`${repo} `))!.split(/\s{3,}/);
  assert.deepEqual(row(`${reg.host}/corpus/busybox`).slice(0, 3), [`${reg.host}/corpus/busybox`, 'latest', digest]);
  assert.deepEqual(row('corpus/busybox').slice(0, 3), ['corpus/busybox', 'latest', '<none>']);
  const json = cli
    .ok(['images', '--format', 'json'])
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { Repository: string; Digest: string });
  assert.equal(json.find((j) => j.Repository === `${reg.host}/corpus/busybox`)!.Digest, digest);
  // --digests=false is pflag's spelling of leaving the flag out.
  assert.doesNotMatch(cli.ok(['images', '--digests=false']), /DIGEST/);
});

test('history -H=false and --human=false print bytes and RFC 3339 dates; -H (the default) human units', () => {
  const raw = cli.ok(['history', '-H=false', 'corpus/busybox']).trim().split('\n').slice(1);
  assert.equal(cli.ok(['history', '--human=false', 'corpus/busybox']).trim().split('\n').slice(1).join('\n'), raw.join('\n'));
  const [img] = JSON.parse(cli.ok(['inspect', 'corpus/busybox'])) as { Size: number }[];
  let total = 0;
  for (const line of raw) {
    const cols = line.split(/\s{3,}/);
    assert.match(cols[1], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)$/, line);
    const size = cols.find((c, i) => i >= 2 && /^\d+$/.test(c));
    assert.ok(size !== undefined, line);
    total += Number(size);
  }
  assert.equal(total, img.Size);
  const human = cli.ok(['history', '-H', 'corpus/busybox']).trim().split('\n').slice(1);
  assert.ok(human.every((l) => / ago\s/.test(l) && /\d(B|kB|MB)\b/.test(l)), human.join('\n'));
  assert.equal(cli.ok(['history', '-H=true', 'corpus/busybox']), cli.ok(['history', 'corpus/busybox']));
});
