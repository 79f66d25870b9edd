// `strata ui` as a command: its flags (a bad port is a one-line error, a port in use too), and
// that it stops cleanly on SIGINT/SIGTERM, leaving the store as it found it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { strataIn } from '../helpers/cli.js';
import { scratch, strataBin } from '../helpers/env.js';
import { startUi } from '../helpers/ui.js';

test('a bad --port is a one-line error; a port in use too', async (t) => {
  const root = scratch(t, 'strata-ui-cli-');
  const cli = strataIn(root, 'vfs');
  for (const bad of ['abc', '-1', '65536', '1.5']) {
    const r = cli.run(['ui', '--no-open', '--port', bad]);
    assert.equal(r.code, 1, bad);
    assert.equal(r.stderr, `Error: invalid port "${bad}": expected 0 to 65535\n`);
    assert.equal(r.stdout, '');
  }
  const busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  t.after(() => busy.close());
  const port = (busy.address() as { port: number }).port;
  const r = cli.run(['ui', '--no-open', '--port', String(port)]);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, `Error: cannot listen on 127.0.0.1:${port}: EADDRINUSE\n`);
});

test('strata ui stops on SIGINT and on SIGTERM with exit 0, its store closed', async (t) => {
  const root = scratch(t, 'strata-ui-cli-');
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    const child = spawn(process.execPath, [strataBin, '--root', root, '--driver', 'vfs', 'ui', '--no-open'], { stdio: ['ignore', 'pipe', 'inherit'] });
    t.after(() => child.kill('SIGKILL'));
    const url = await new Promise<string>((resolve) => child.stdout.setEncoding('utf8').on('data', (s: string) => resolve(s.trim())));
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]{32}$/);
    assert.equal((await fetch(url)).status, 200);
    const code = new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    child.kill(signal);
    assert.equal(await code, 0, signal);
    assert.deepEqual(readdirSync(join(root, 'tmp', 'procs')), [], 'the store was closed (its mark removed)');
    await assert.rejects(fetch(url), 'nothing listens any more');
  }
});

test('two servers on one store have different tokens, and neither accepts the other one', async (t) => {
  const root = scratch(t, 'strata-ui-cli-');
  const after = (fn: () => void | Promise<void>) => t.after(fn);
  const a = await startUi(root, 'vfs', after);
  const b = await startUi(root, 'vfs', after);
  assert.notEqual(a.token, b.token);
  assert.equal((await fetch(`${a.origin}/api/state?token=${b.token}`)).status, 403);
  assert.equal((await fetch(`${b.origin}/api/state?token=${a.token}`)).status, 403);
  assert.equal((await fetch(`${a.origin}/api/state?token=${a.token}`)).status, 200);
});
