// The corpus nginx image as a service (issue #12): detached with a published port on the
// default (pasta) network, it answers HTTP, its access log is in `logs`, `stop` sends the image's
// SIGQUIT, `ps -a` shows Exited (0), and `rm -f` removes a running one with all it held.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { leftovers, runtimeStore } from './harness.js';

const s = runtimeStore('overlay2', { after });
const { cli } = s;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

/**
 * fetch, given up after ms. Not AbortSignal.timeout: its timer is unref'd, and a request that
 * pasta accepted but nobody answers holds no ref'd handle either, so the test's event loop
 * emptied with the fetch pending (CI: "Promise resolution is still pending but the event loop
 * has already resolved").
 */
async function fetchWithin(url: string, ms = 2000): Promise<{ status: number; body: string }> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(new Error(`no answer from ${url} in ${ms} ms`)), ms);
  try {
    const r = await fetch(url, { signal: ac.signal });
    return { status: r.status, body: await r.text() };
  } finally {
    clearTimeout(timer);
  }
}

async function get(url: string, ms = 20_000): Promise<{ status: number; body: string }> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      return await fetchWithin(url);
    } catch (err) {
      if (Date.now() > end) throw err;
      await sleep(100);
    }
  }
}

test('nginx runs detached with -p, serves, logs, stops with SIGQUIT; rm -f of a running one', async (t) => {
  t.after(() => {
    for (const n of ['web', 'web2']) cli.run(['rm', '-f', n]);
  });
  s.load('nginx.oci.tar', 'nginx');
  const port = await freePort();
  const id = cli.ok(['run', '-d', '--name', 'web', '-p', `127.0.0.1:${port}:80`, 'nginx']).trim();
  assert.match(id, /^[0-9a-f]{64}$/);
  const r = await get(`http://127.0.0.1:${port}/`);
  assert.equal(r.status, 200);
  assert.match(r.body, /Welcome to nginx!/);
  const ps = JSON.parse(cli.ok(['ps', '--format', 'json']).trim());
  assert.equal(ps.Names, 'web');
  assert.equal(ps.Ports, `127.0.0.1:${port}->80/tcp`);
  let logs = '';
  for (let i = 0; i < 50 && !logs.includes('"GET / HTTP/1.1" 200'); i++, await sleep(100)) logs = cli.ok(['logs', 'web']);
  assert.match(logs, /"GET \/ HTTP\/1\.1" 200 \d+ "-" "node"/);

  const t0 = Date.now();
  cli.ok(['stop', 'web']);
  assert.ok(Date.now() - t0 < 9000, 'nginx ended on its stop signal, not on the SIGKILL after 10 s');
  // The image's StopSignal is what stop sent (Debian's nginx logs no notice of it; run.test.ts
  // proves with a trap that stop sends the recorded stop signal).
  assert.equal(JSON.parse(readFileSync(join(s.root, 'containers', id, 'config.v2.json'), 'utf8')).Config.StopSignal, 'SIGQUIT');
  const exited = JSON.parse(cli.ok(['ps', '-a', '--format', 'json']).trim());
  assert.match(exited.Status, /^Exited \(0\) /);
  assert.equal(exited.Ports, '');
  await assert.rejects(fetchWithin(`http://127.0.0.1:${port}/`));

  cli.ok(['run', '-d', '--name', 'web2', '-p', `127.0.0.1:${port}:80`, 'nginx']);
  assert.equal((await get(`http://127.0.0.1:${port}/`)).status, 200, 'the port is free again for the next container');
  cli.ok(['rm', '-f', 'web2', 'web']);
  assert.equal(cli.ok(['ps', '-a', '-q']), '');
  await assert.rejects(fetchWithin(`http://127.0.0.1:${port}/`));
  assert.deepEqual(leftovers(s.root, s.work), []);
});
