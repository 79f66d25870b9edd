// Parity with Docker 20.10 for the image commands: images (NAME[:TAG], every --filter, -q,
// --digests, sorted by created), history (-H=false, --no-trunc), rmi (untag, conflicts, -f of
// an image a stopped container uses), import -c, sizes that count symlinks, the `image …`
// forms, the errors a user meets first (and no crash where output is cut short), and the command
// `create IMAGE CMD…` keeps. Same corpus archives loaded into both.
import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { runToolSync } from '../../src/sys/run.js';
import { DOCKER } from '../helpers/dockerd.js';
import { corpusImage, scratch } from '../helpers/env.js';
import { parityForFile } from './parity.js';

let rootfs: string;
const ready = parityForFile('images', (p) => {
  for (const name of ['busybox', 'edge']) p.both(['load', '-i', corpusImage(`${name}.docker.tar`)]);
  p.both(['tag', 'corpus/busybox', 'bb:1']);
  p.both(['tag', 'corpus/edge', 'edge:x']);
  // A small root filesystem with symlinks, for import (whose sizes count them).
  const dir = scratch(null, 'parity-rootfs-');
  mkdirSync(join(dir, 'root', 'bin'), { recursive: true });
  writeFileSync(join(dir, 'root', 'bin', 'tool'), 'x'.repeat(1000));
  for (let i = 0; i < 20; i++) symlinkSync(`/bin/tool-with-a-long-target-name-${i}`, join(dir, 'root', 'bin', `link${i}`));
  rootfs = join(dir, 'rootfs.tar');
  runToolSync('tar', ['-cf', rootfs, '-C', join(dir, 'root'), '.']);
});

test('images: the table, NAME[:TAG], -q, --no-trunc, --digests and `image ls`', (t) => {
  const x = ready(t);
  if (!x) return;
  // Rows of one image with several names come in Go's map order in docker: sorted here.
  for (const args of [['images'], ['image', 'ls'], ['images', '--digests'], ['images', '-q'], ['images', '--no-trunc']]) x.compare(args, { sortLines: true, exact: true });
  for (const args of [['images', 'bb:1'], ['images', 'corpus/busybox:latest'], ['images', 'corpus/busybox'], ['images', 'nope'], ['image', 'list', 'edge']]) x.compare(args, { exact: true });
  x.compare(['images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}} {{.VirtualSize}} {{.Digest}} {{.CreatedAt}}'], { sortLines: true });
});

test('images --filter: dangling, reference, before, since, label, and bad filters', (t) => {
  const x = ready(t);
  if (!x) return;
  const filters = [
    ['dangling=true'],
    ['dangling=false'],
    ['reference=corpus/*'],
    ['reference=bb'],
    ['reference=bb:1', 'reference=corpus/*'],
    ['before=corpus/edge'],
    ['since=corpus/busybox'],
    ['since=corpus/busybox', 'reference=edge'],
    ['label=nope'],
  ];
  for (const f of filters) x.compare(['images', ...f.flatMap((v) => ['--filter', v])], { sortLines: true, exact: true });
  for (const bad of ['bogus=1', 'dangling=maybe', 'before=nope', 'foo']) x.compare(['images', '-f', bad], { firstLines: 1 });
});

test('history: the table, -H=false, --no-trunc, -q and `image history`', (t) => {
  const x = ready(t);
  if (!x) return;
  for (const args of [['history', 'corpus/edge'], ['history', '-H=false', 'corpus/edge'], ['history', '--no-trunc', 'corpus/busybox'], ['history', '-q', 'corpus/edge'], ['image', 'history', 'bb:1']]) {
    x.compare(args, { exact: true });
  }
  x.compare(['history', 'nope']);
});

test('import -c sets the config, sizes count symlinks, and a missing file is one line', (t) => {
  const x = ready(t);
  if (!x) return;
  const [d, s] = x.both(['import', '-c', 'CMD ["sh", "-c", "echo hi"]', '-c', 'ENV A=b C=d', '-c', 'LABEL k=v other="two words"', '-c', 'EXPOSE 80', '-c', 'WORKDIR /srv', rootfs, 'imp:1']);
  x.alias(d.trim(), s.trim(), 'imported');
  x.compare(['image', 'inspect', '-f', '{{json .Config.Cmd}} {{json .Config.Env}} {{json .Config.Labels}} {{json .Config.ExposedPorts}} {{.Config.WorkingDir}} {{.Size}}', 'imp:1']);
  // Not exact: the CREATED cells ("Less than a second ago", "2 seconds ago") set the column's
  // width, and the two imports are not made in the same second.
  x.compare(['images', 'imp']);
  x.compare(['images', '--filter', 'label=k=v', '--format', '{{.Repository}}:{{.Tag}}']);
  x.compare(['images', '--filter', 'label=k=w', '--format', '{{.Repository}}:{{.Tag}}']);
  x.compare(['import', '-c', 'RUN true', rootfs, 'imp:2'], { firstLines: 1 });
  x.compare(['import', '/nonexistent.tar'], { firstLines: 1 });
});

test('rmi: untag, conflicts, -f of an image a stopped container uses, missing image', (t) => {
  const x = ready(t);
  if (!x) return;
  const [d, s] = x.both(['import', '-c', 'CMD ["sh"]', rootfs, 'victim:1']);
  x.alias(d.trim(), s.trim(), 'victim');
  x.both(['tag', 'victim:1', 'victim:2']);
  x.compare(['rmi', 'victim:2']);
  x.compare(['image', 'rm', 'nope']);
  const [dc, sc] = x.both(['create', '--name', 'user', 'victim:1']);
  x.alias(dc.trim(), sc.trim(), 'user');
  x.compare(['rmi', 'victim:1']);
  x.compare(['rmi', '-f', 'victim:1']);
  // The container outlives its image and shows its ID.
  x.compare(['ps', '-a', '--filter', 'name=user', '--format', '{{.Image}} {{.Names}}']);
  x.compare(['ps', '-a', '--no-trunc', '--filter', 'name=user', '--format', '{{.Image}} {{.Names}}']);
  x.compare(['rm', 'user']);
  // An ID with several names needs -f; with it, every name goes.
  x.both(['tag', 'corpus/edge', 'edge:y']);
  x.compare(['rmi', 'edge:y']);
  assert.equal(x.strata.run(['images', '-q', 'imp']).stdout.trim().length, 12);
});

test('errors: unknown command, argument count, save/export to a missing directory', (t) => {
  const x = ready(t);
  if (!x) return;
  x.compare(['frobnicate']);
  for (const args of [['rmi'], ['tag', 'a'], ['history'], ['image', 'inspect']]) x.compare(args, { firstLines: 2 });
  x.compare(['save', '-o', '/nonexistent-dir/x.tar', 'corpus/busybox']);
  x.compare(['image', 'save', '-o', '/nonexistent-dir/x.tar', 'nope'], { firstLines: 1 });
});

test('create IMAGE CMD keeps the command and commit records it; an image without a command is refused', (t) => {
  const x = ready(t);
  if (!x) return;
  const [d, s] = x.both(['create', '--name', 'cmd1', 'corpus/busybox', 'echo', 'hello', 'world']);
  x.alias(d.trim(), s.trim(), 'cmd1');
  x.compare(['inspect', '-f', '{{.Path}} {{json .Args}} {{json .Config.Cmd}}', 'cmd1']);
  x.compare(['ps', '-a', '--filter', 'name=^/cmd1$', '--no-trunc', '--format', '{{.Names}} {{.Command}}']);
  const [dc, sc] = x.both(['commit', 'cmd1', 'cmd:1']);
  x.alias(dc.trim(), sc.trim(), 'cmd-image');
  x.compare(['image', 'inspect', '-f', '{{json .Config.Cmd}} {{json .Config.Entrypoint}}', 'cmd:1']);
  const [di, si] = x.both(['import', rootfs, 'nocmd:1']);
  x.alias(di.trim(), si.trim(), 'nocmd-image');
  x.compare(['create', 'nocmd:1']);
  x.compare(['rm', 'cmd1']);
  x.compare(['rmi', 'cmd:1', 'nocmd:1'], { sortLines: true });
});

test('no crash: export to a missing directory, import of a directory, output whose reader goes away', (t) => {
  const x = ready(t);
  if (!x) return;
  const [d, s] = x.both(['create', '--name', 'exp1', 'corpus/busybox', 'sh']);
  x.alias(d.trim(), s.trim(), 'exp1');
  x.compare(['export', '-o', '/nonexistent-dir/y.tar', 'exp1']);
  x.compare(['rm', 'exp1']);
  x.compare(['import', dirname(rootfs)]);
  // `… | head`: docker ends quietly when the pipe closes; strata must not print an EPIPE trace.
  const engines: [string, string[]][] = [['docker', [DOCKER, '-H', `unix://${x.docker.sock}`]], ['strata', x.strata.argv]];
  for (const [cut, args] of [['head -n 1', ['images', '--format', 'json']], ['head -c 100', ['save', 'corpus/busybox']]] as const) {
    for (const [engine, argv] of engines) {
      const r = spawnSync('bash', ['-c', `"$@" | ${cut} > /dev/null`, 'bash', ...argv, ...args], { encoding: 'utf8' });
      assert.deepEqual([r.status, r.stderr], [0, ''], `${engine} ${args.join(' ')} | ${cut}`);
    }
  }
});
