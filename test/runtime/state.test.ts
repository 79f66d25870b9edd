// What a container's state says where docker users look at it: a container whose process exited
// and that waits for its --restart policy's next start is "restarting" (ps's STATUS and `.State`,
// the status filter, inspect's State, exec's refusal), and a run whose process the OOM killer
// killed has State.OOMKilled true (exit 137), false again after a run without. Each is compared
// with Docker 20.10 (a private dockerd) where it can run here; strata's side runs regardless.
// And a root opened with another driver than its layers' is refused in one line.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { readdirSync } from 'node:fs';
import { strataIn, type CliResult } from '../helpers/cli.js';
import { startDockerd } from '../helpers/dockerd.js';
import { corpusImage } from '../helpers/env.js';
import { fileCleanup } from '../helpers/registry.js';
import { leftovers, runtimeStore } from './harness.js';

const s = runtimeStore('overlay2', { after });
const files = fileCleanup();
after(files.run);

interface Engine {
  name: string;
  run(args: string[]): CliResult;
  ok(args: string[]): string;
}

const engines: Engine[] = [{ name: 'strata', ...s.cli }];
before(async () => {
  const d = await startDockerd(files.add);
  if ('skip' in d) return void console.warn(`SKIPPED: the Docker side of the state tests: ${d.skip}`);
  d.ok(['load', '-i', corpusImage('busybox.docker.tar')]);
  d.ok(['tag', 'corpus/busybox', 'bb']);
  engines.push({ name: 'docker', run: d.run, ok: d.ok });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const AGO = /(Less than a second|\d+ seconds?) ago$/;

/** ps's and inspect's view of a restarting container, taken when both saw it restarting. */
async function restartingView(e: Engine, name: string): Promise<{ ps: string; inspect: string }> {
  const end = Date.now() + 30_000;
  while (Date.now() < end) {
    const ps = e.ok(['ps', '--format', '{{.Names}}|{{.State}}|{{.Status}}']).trim();
    const inspect = e.ok(['inspect', '-f', '{{.State.Status}} {{.State.Running}} {{.State.Restarting}} {{.State.Pid}} {{.State.ExitCode}}', name]).trim();
    if (ps.startsWith(`${name}|restarting|`) && inspect.startsWith('restarting ')) return { ps: ps.replace(AGO, 'N ago'), inspect };
    await sleep(50);
  }
  throw new Error(`${e.name}: ${name} was never seen restarting`);
}

describe('container state as docker shows it (overlay2)', () => {
  test('a process waiting for its restart policy: Restarting (CODE) … ago, State.Restarting', async (t) => {
    for (const e of engines) {
      t.after(() => void e.run(['rm', '-f', 'st-rs']));
      e.ok(['run', '-d', '--name', 'st-rs', '--network', 'none', '--restart', 'always', 'bb', 'sh', '-c', 'exit 3']);
      const v = await restartingView(e, 'st-rs');
      assert.equal(v.ps, 'st-rs|restarting|Restarting (3) N ago', e.name);
      assert.equal(v.inspect, 'restarting true true 0 3', e.name);
      // The three filters, seen in one round while it restarts: under load a restart can come
      // between two looks (its backoff starts at 100 ms), so rounds go on until one is whole.
      // Docker counts a restarting container as running for the exit-code filter: not listed.
      const filtered = (f: string) => e.ok(['ps', '-a', '--filter', f, '--format', '{{.Names}}']).trim();
      let round: string[] = [];
      for (const end = Date.now() + 30_000; Date.now() < end; await sleep(50)) {
        round = ['status=restarting', 'status=running', 'exited=3'].map(filtered);
        if (round[0] === 'st-rs' && round[1] === '' && round[2] === '') break;
      }
      assert.deepEqual(round, ['st-rs', '', ''], e.name);
      const id = e.ok(['inspect', '-f', '{{.Id}}', 'st-rs']).trim();
      // A restart may come between the two looks, and an exec that starts in the moment the
      // process runs runs or dies with it (no message; Docker does this too): look again until a
      // refusal, which names the state it met.
      let exec = e.run(['exec', 'st-rs', 'true']);
      for (let i = 0; i < 20 && exec.stderr === ''; i++) {
        await sleep(50);
        exec = e.run(['exec', 'st-rs', 'true']);
      }
      assert.notEqual(exec.code, 0, e.name);
      assert.match(exec.stderr, new RegExp(`Container ${id} is (restarting, wait until the container is running|not running)`, 'i'), e.name);
      e.ok(['rm', '-f', 'st-rs']);
    }
    assert.deepEqual(leftovers(s.root, s.work), []);
  });

  test('OOMKilled: true after the OOM killer killed a process of the run (exit 137), false after a run without', (t) => {
    // The first run outgrows -m; a start of the same container finds /once and exits 0.
    const script = '[ -e /once ] && exit 0; touch /once; head -c 100000000 /dev/zero | tail';
    for (const e of engines) {
      t.after(() => void e.run(['rm', '-f', 'st-oom', 'st-fit']));
      const state = (name: string) => e.ok(['inspect', '-f', '{{.State.OOMKilled}} {{.State.ExitCode}}', name]).trim();
      const oom = e.run(['run', '--name', 'st-oom', '--network', 'none', '-m', '16m', '--memory-swap', '16m', 'bb', 'sh', '-c', script]);
      assert.equal(oom.code, 137, `${e.name}: ${oom.stderr}`);
      assert.equal(state('st-oom'), 'true 137', e.name);
      assert.equal(e.run(['start', '-a', 'st-oom']).code, 0, e.name);
      assert.equal(state('st-oom'), 'false 0', e.name);
      e.ok(['run', '--name', 'st-fit', '--network', 'none', '-m', '16m', 'bb', 'true']);
      assert.equal(state('st-fit'), 'false 0', e.name);
      e.ok(['rm', 'st-oom', 'st-fit']);
    }
    assert.deepEqual(leftovers(s.root, s.work), []);
  });

  test('a root whose layers are overlay2\'s, opened with -s vfs: one line naming overlay2, exit 125, nothing made', () => {
    // Docker keeps an image store per driver and would list no images; strata has one store per
    // root, so it refuses rather than fail deep inside ("parent layer … does not exist").
    const vfs = strataIn(s.root, 'vfs');
    const before = readdirSync(s.root).sort();
    for (const args of [['create', 'bb'], ['run', '--rm', '--network', 'none', 'bb', 'true'], ['images']]) {
      const r = vfs.run(args);
      assert.equal(r.code, 125, args.join(' '));
      assert.equal(r.stderr, `Error: storage driver vfs cannot open ${s.root}: its images and containers are stored with overlay2 (use -s overlay2, or another --root)\n`, args.join(' '));
    }
    assert.deepEqual(readdirSync(s.root).sort(), before);
    assert.equal(s.cli.ok(['ps', '-a', '-q']), '');
    // -s naming the root's own driver still opens it.
    assert.match(strataIn(s.root, 'overlay2').ok(['images']), /^bb +latest /m);
  });
});
