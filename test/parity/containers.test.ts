// Parity with Docker 20.10 for the container side: ps (-a, -s with "(virtual …)", every
// --filter, the image ID once its tag moved), commit (-c, --pause, Parent and the history it
// gives), container names docker refuses, system df (-v), the prune prompts, the `container …` forms and rm -f of a missing
// container. Same corpus archive loaded into both; container IDs mapped to placeholders.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { corpusImage } from '../helpers/env.js';
import { parityForFile, type Parity } from './parity.js';

const ready = parityForFile('containers', (p) => {
  p.both(['load', '-i', corpusImage('busybox.docker.tar')]);
  p.both(['load', '-i', corpusImage('edge.docker.tar')]);
  // c1 has an explicit command; c2 runs its image's; c3 is made from a tag that moves.
  const create = (x: Parity, name: string, args: string[]) => {
    const [d, s] = x.both(['create', '--name', name, ...args]);
    x.alias(d.trim(), s.trim(), name);
  };
  create(p, 'c1', ['corpus/busybox', 'echo', 'hi']);
  create(p, 'c2', ['corpus/edge']);
  p.both(['tag', 'corpus/busybox', 'moving:1']);
  create(p, 'c3', ['moving:1']);
  p.both(['tag', 'corpus/edge', 'moving:1']);
});

test('ps: -a, -s with the virtual size, -q, the stale tag, `container ls`', (t) => {
  const x = ready(t);
  if (!x) return;
  for (const args of [['ps', '-a'], ['ps', '-a', '-s'], ['container', 'ls', '-a'], ['container', 'list', '-a', '-q'], ['ps'], ['ps', '-a', '--no-trunc', '--format', '{{.ID}} {{.Image}} {{.Command}}']]) {
    x.compare(args, { sortLines: true });
  }
  x.compare(['ps', '-a', '--format', '{{.Names}} {{.Image}} {{.State}} {{.Status}} {{.Size}}'], { sortLines: true });
});

test('ps --filter: status, name, id, ancestor, label, exited, and bad filters', (t) => {
  const x = ready(t);
  if (!x) return;
  const ids = { docker: x.docker.ok(['ps', '-aq', '--no-trunc', '-f', 'name=^/c1$']).trim(), strata: x.strata.ok(['ps', '-aq', '--no-trunc', '-f', 'name=^/c1$']).trim() };
  const filters = [
    ['status=created'],
    ['status=running'],
    ['status=exited', 'status=created'],
    ['name=c1'],
    ['name=^/c'],
    ['name=^c1'],
    ['ancestor=corpus/busybox'],
    ['ancestor=eb18a39c8c8b'],
    ['ancestor=nope'],
    ['label=nope'],
    ['exited=0'],
    ['name=c', 'status=created'],
  ];
  for (const f of filters) x.compare(['ps', '-a', '--format', '{{.Names}}', ...f.flatMap((v) => ['--filter', v])], { sortLines: true });
  // Without -a a status filter still lists what it names.
  x.compare(['ps', '--filter', 'status=created', '--format', '{{.Names}}'], { sortLines: true });
  const d = x.docker.ok(['ps', '-a', '--format', '{{.Names}}', '--filter', `id=${ids.docker.slice(0, 6)}`]);
  const s = x.strata.ok(['ps', '-a', '--format', '{{.Names}}', '--filter', `id=${ids.strata.slice(0, 6)}`]);
  if (d !== s) throw new Error(`ps --filter id=PREFIX: docker ${JSON.stringify(d)}, strata ${JSON.stringify(s)}`);
  for (const bad of ['bogus=1', 'status=bogus', 'nofilter']) x.compare(['ps', '-a', '-f', bad], { firstLines: 1 });
});

test('commit -c, Parent and history; image/container inspect forms', (t) => {
  const x = ready(t);
  if (!x) return;
  const [d, s] = x.both(['commit', '-c', 'CMD ["echo", "x"]', '-c', 'ENV A=b', '-c', 'LABEL k=v', '-m', 'a message', 'c1', 'committed:1']);
  x.alias(d.trim(), s.trim(), 'committed');
  x.compare(['image', 'inspect', '-f', '{{.Parent}} {{json .Config.Cmd}} {{json .Config.Env}} {{json .Config.Labels}} {{.Comment}}', 'committed:1']);
  x.compare(['history', 'committed:1']);
  x.compare(['history', '-q', 'committed:1']);
  x.compare(['container', 'inspect', '-f', '{{.Name}} {{.State.Status}}', 'c1']);
  x.compare(['container', 'inspect', '-f', '{{.Name}}', 'corpus/busybox'], { firstLines: 1 });
  x.compare(['image', 'inspect', '-f', '{{.Id}}', 'runner-of-nothing'], { firstLines: 1 });
  // A container made from the committed image, found by its ancestor; its image refuses rmi.
  const [dc, sc] = x.both(['container', 'create', '--name', 'child', 'committed:1']);
  x.alias(dc.trim(), sc.trim(), 'child');
  x.compare(['ps', '-a', '--filter', 'ancestor=corpus/busybox', '--format', '{{.Names}}'], { sortLines: true });
  x.compare(['ps', '-a', '--filter', 'label=k=v', '--format', '{{.Names}}']);
  x.compare(['rmi', 'eb18a39c8c8b'], { firstLines: 1 });
  x.compare(['container', 'rm', 'child']);
  x.compare(['rmi', 'committed:1']);
});

test('an image with an Entrypoint: inspect and commit keep the container\'s Entrypoint and Cmd apart', (t) => {
  const x = ready(t);
  if (!x) return;
  const [d, s] = x.both(['commit', '-c', 'ENTRYPOINT ["echo", "e"]', 'c1', 'ep:1']);
  x.alias(d.trim(), s.trim(), 'ep-image');
  const made: string[] = [];
  const create = (name: string, args: string[]) => {
    const [dc, sc] = x.both(['create', '--name', name, ...args]);
    x.alias(dc.trim(), sc.trim(), name);
    made.push(name);
  };
  try {
    create('ep1', ['ep:1', 'x', 'y']);
    create('ep2', ['ep:1']);
    create('ep3', ['--entrypoint', 'printf', 'ep:1']);
    for (const c of made) x.compare(['inspect', '-f', '{{.Path}} {{json .Args}} {{json .Config.Entrypoint}} {{json .Config.Cmd}}', c]);
    const [dc, sc] = x.both(['commit', 'ep1', 'ep:2']);
    x.alias(dc.trim(), sc.trim(), 'ep-image-2');
    x.compare(['image', 'inspect', '-f', '{{json .Config.Entrypoint}} {{json .Config.Cmd}}', 'ep:2']);
  } finally {
    x.compare(['rm', ...made]);
    x.compare(['rmi', 'ep:2', 'ep:1'], { sortLines: true });
  }
});

test('commit pauses a running container by default and leaves it running', (t) => {
  const x = ready(t);
  if (!x) return;
  const [d, s] = x.both(['run', '-d', '--network', 'none', '--name', 'runner', 'corpus/busybox', 'sleep', '600']);
  x.alias(d.trim(), s.trim(), 'runner');
  try {
    for (const args of [['commit', 'runner', 'snap:1'], ['commit', '--pause=false', 'runner', 'snap:2']]) {
      const [cd, cs] = x.both(args);
      x.alias(cd.trim(), cs.trim(), args.at(-1)!);
    }
    x.compare(['container', 'inspect', '-f', '{{.State.Status}} {{.State.Paused}}', 'runner']);
    x.compare(['ps', '--format', '{{.Names}} {{.State}}']);
    x.compare(['image', 'inspect', '-f', '{{.Parent}}', 'snap:1']);
    // Made within one second, their order in docker's lists is a tie: gone before df -v lists them.
    x.compare(['rmi', 'snap:1', 'snap:2']);
  } finally {
    x.compare(['rm', '-f', 'runner']);
  }
});

test('container names: docker refuses one of a single character or with other characters, in create, run and rename', (t) => {
  const x = ready(t);
  if (!x) return;
  for (const name of ['x', '7', '_ab', '.ab', '-ab', 'a b', 'a/b', 'ab:1', 'é1']) x.compare(['create', '--name', name, 'corpus/busybox']);
  // docker wraps every error of `run` as "docker: Error response from daemon: ….\nSee 'docker run --help'."
  // and strata does not yet (issue #15 follow-up): the exit code and the message must match.
  const run = ['run', '--name', 'x', '--network', 'none', 'corpus/busybox', 'true'];
  const [dr, sr] = [x.docker.run(run), x.strata.run(run)];
  assert.deepEqual([sr.code, dr.code], [125, 125], sr.stderr);
  for (const r of [dr, sr]) assert.match(r.stderr, /Invalid container name \(x\), only \[a-zA-Z0-9\]\[a-zA-Z0-9_.-\] are allowed/);
  // A leading "/" is docker's own spelling of a name, and allowed.
  const [d, s] = x.both(['create', '--name', '/n1', 'corpus/busybox']);
  x.alias(d.trim(), s.trim(), 'n1');
  try {
    for (const name of ['y', 'a b', '/z', '/', 'n1']) x.compare(['rename', 'n1', name]);
    x.compare(['rename', 'n1', '/n2']);
    x.compare(['ps', '-a', '--filter', 'name=^/n', '--format', '{{.Names}}']);
  } finally {
    x.compare(['rm', '-f', 'n1', 'n2']);
  }
});

test('system df (-v), prune prompts, rm -f of a missing container, container prune', (t) => {
  const x = ready(t);
  if (!x) return;
  x.compare(['system', 'df']);
  x.compare(['system', 'df', '-v'], { sortLines: false });
  x.compare(['system', 'df', '--format', '{{.Type}} {{.TotalCount}} {{.Active}} {{.Size}} {{.Reclaimable}}']);
  for (const args of [['system', 'prune'], ['system', 'prune', '-a'], ['image', 'prune'], ['image', 'prune', '-a'], ['container', 'prune']]) {
    x.compare(args, { input: 'n\n' });
  }
  x.compare(['rm', '-f', 'no-such-container']);
  x.compare(['rm', 'no-such-container']);
  x.compare(['container', 'prune', '-f'], { sortLines: true });
  x.compare(['ps', '-a']);
});
