// Process identities ("pid:starttime"): alive while that very process runs, dead once it has
// exited, and never mistaken for another process that reuses the pid.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';
import { identityOf, processAlive, processIdentity } from '../../src/sys/process.js';

test('this process and a running child are alive under their identities, an exited child is not', async () => {
  assert.match(processIdentity(), new RegExp(`^${process.pid}:[0-9]+$`));
  assert.equal(processAlive(processIdentity()), true);
  const child = spawn('sleep', ['60'], { stdio: 'ignore' });
  const id = identityOf(child.pid!);
  assert.ok(id);
  assert.equal(processAlive(id), true);
  child.kill('SIGKILL');
  await once(child, 'exit');
  assert.equal(processAlive(id), false);
  assert.equal(identityOf(child.pid!), null);
});

test('the same pid with another start time, and malformed identities, are not alive', () => {
  const [pid, start] = processIdentity().split(':');
  assert.equal(processAlive(`${pid}:${Number(start) + 1}`), false);
  for (const bad of [null, '', 'x', '0:1', '-1:5', `${pid}`, 'a:b']) assert.equal(processAlive(bad), false, String(bad));
});
