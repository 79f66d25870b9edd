// `--restart` (issue #12): the monitor runs the process again as docker's policies say
// (on-failure[:N] only after a failing exit and at most N times, always after any exit), a
// container stopped or killed by a user is not restarted, inspect shows RestartPolicy and
// RestartCount, and bad policies get docker's messages.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { leftovers, runtimeStore } from './harness.js';

const s = runtimeStore('overlay2', { after });
const { cli } = s;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, cond: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

function inspect(ref: string): { State: { Status: string; ExitCode: number }; RestartCount: number; HostConfig: { RestartPolicy: unknown } } {
  return JSON.parse(cli.ok(['inspect', ref]))[0];
}

const runs = (ref: string) => cli.ok(['logs', ref]).split('\n').filter((l) => l === 'run').length;

describe('--restart (overlay2)', () => {
  test('on-failure:2 restarts a failing process twice, then leaves it exited', async (t) => {
    t.after(() => void cli.run(['rm', '-f', 'rs-fail']));
    cli.ok(['run', '-d', '--name', 'rs-fail', '--network', 'none', '--restart', 'on-failure:2', 'bb', 'sh', '-c', 'echo run; exit 3']);
    await until('three runs and the end', () => runs('rs-fail') === 3 && inspect('rs-fail').State.Status === 'exited');
    await sleep(1000);
    const c = inspect('rs-fail');
    assert.equal(runs('rs-fail'), 3);
    assert.equal(c.State.ExitCode, 3);
    assert.equal(c.RestartCount, 2);
    assert.deepEqual(c.HostConfig.RestartPolicy, { Name: 'on-failure', MaximumRetryCount: 2 });
  });

  test('on-failure does not restart a process that exits 0; no restart policy is "no"', async (t) => {
    t.after(() => void cli.run(['rm', '-f', 'rs-ok', 'rs-no']));
    cli.ok(['run', '--name', 'rs-ok', '--network', 'none', '--restart', 'on-failure', 'bb', 'echo', 'run']);
    await sleep(1000);
    assert.equal(runs('rs-ok'), 1);
    assert.equal(inspect('rs-ok').RestartCount, 0);
    cli.ok(['create', '--name', 'rs-no', '--network', 'none', 'bb', 'true']);
    assert.deepEqual(inspect('rs-no').HostConfig.RestartPolicy, { Name: 'no', MaximumRetryCount: 0 });
  });

  test('always restarts after every exit until stop; stop and kill are never followed by a restart', async (t) => {
    t.after(() => void cli.run(['rm', '-f', 'rs-always', 'rs-kill']));
    cli.ok(['run', '-d', '--name', 'rs-always', '--network', 'none', '--restart', 'always', 'bb', 'sh', '-c', 'echo run; sleep 0.2']);
    await until('three runs', () => runs('rs-always') >= 3);
    assert.ok(inspect('rs-always').RestartCount >= 2);
    cli.ok(['stop', '-t', '1', 'rs-always']);
    const stopped = runs('rs-always');
    await sleep(1500);
    assert.equal(runs('rs-always'), stopped, 'no run after stop');
    assert.equal(inspect('rs-always').State.Status, 'exited');
    // start again: the policy holds again.
    cli.ok(['start', 'rs-always']);
    await until('a run after start', () => runs('rs-always') >= stopped + 2);
    cli.ok(['stop', '-t', '1', 'rs-always']);
    cli.ok(['run', '-d', '--name', 'rs-kill', '--network', 'none', '--restart', 'unless-stopped', 'bb', 'sh', '-c', 'echo run; sleep 60']);
    await until('the first run', () => runs('rs-kill') === 1);
    cli.ok(['kill', 'rs-kill']);
    await until('exited', () => inspect('rs-kill').State.Status === 'exited');
    await sleep(1000);
    assert.equal(runs('rs-kill'), 1);
    cli.ok(['rm', 'rs-always', 'rs-kill']);
    assert.deepEqual(leftovers(s.root, s.work), []);
  });

  test("bad policies: docker's messages, nothing made", () => {
    for (const [policy, message, ...more] of [
      ['bogus', "invalid restart policy 'bogus'"],
      ['always:3', "maximum retry count cannot be used with restart policy 'always'"],
      ['on-failure:x', 'maximum retry count must be an integer'],
      ['on-failure:-1', 'maximum retry count cannot be negative'],
      ['on-failure:1:2', 'invalid restart policy format'],
      ['always', 'Conflicting options: --restart and --rm', '--rm'],
    ] as const) {
      const r = cli.run(['run', ...more, '--restart', policy, 'bb', 'true']);
      assert.equal(r.code, 125, policy);
      assert.equal(r.stderr, `Error: ${message}\n`, policy);
    }
    assert.equal(cli.ok(['ps', '-a', '-q']), '');
  });
});
