// runTool and runToolSync, the one way strata runs a program: C locale, stdout returned, a
// failure as one line with the command, how it ended and what it said, and a time limit.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runTool, runToolSync, toolWorks, ToolError } from '../../src/sys/run.js';

test('runs in the C locale and returns stdout, with input on stdin', async () => {
  assert.equal(await runTool('sh', ['-c', 'echo "$LC_ALL $LANG"']), 'C C\n');
  assert.equal(runToolSync('sh', ['-c', 'echo "$LC_ALL"']), 'C\n');
  assert.equal(await runTool('cat', [], { input: 'fed in' }), 'fed in');
});

test('a failure is a ToolError naming the command, its exit and its stderr without noise lines', async () => {
  const script = 'echo "noise: ignore me" >&2; echo "real trouble" >&2; exit 3';
  for (const call of [() => runTool('sh', ['-c', script], { who: 'btrfs', noise: /^noise:/ }), async () => runToolSync('sh', ['-c', script], { who: 'btrfs', noise: /^noise:/ })]) {
    await assert.rejects(call(), (e: unknown) => {
      assert.ok(e instanceof ToolError);
      assert.equal(e.message, `btrfs: sh -c ${script} failed (exit 3): real trouble`);
      assert.equal(e.exitCode, 3);
      assert.match(e.stderr, /noise: ignore me/);
      return true;
    });
  }
});

test('okCodes widen success; a missing program says so; a hung one is killed at the time limit', async () => {
  assert.equal(await runTool('sh', ['-c', 'echo fixed; exit 1'], { okCodes: [0, 1] }), 'fixed\n');
  await assert.rejects(runTool('strata-no-such-tool', []), /strata-no-such-tool: command not found/);
  assert.throws(() => runToolSync('strata-no-such-tool', []), /command not found/);
  const started = Date.now();
  await assert.rejects(runTool('sleep', ['30'], { timeoutMs: 300 }), /failed \(timed out after 0\.3s\)/);
  assert.throws(() => runToolSync('sleep', ['30'], { timeoutMs: 300 }), /timed out after 0\.3s/);
  assert.ok(Date.now() - started < 20_000);
  assert.equal(await toolWorks('true', []), true);
  assert.equal(await toolWorks('false', []), false);
});
