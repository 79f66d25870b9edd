// Containers run by a user without root: runc inside strata's user namespace (no cgroup of
// their own), the default network through pasta with -p on 127.0.0.1, root in the container
// being the user on the host; cgroup limits, which a container without a cgroup of its own
// cannot have, refused in one line.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { fileCleanup, freePort, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { makeUser, type TestUser } from '../helpers/rootless.js';
import { hostCgroups } from '../../src/runtime/resources.js';

const files = fileCleanup();
after(files.run);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function fetchRetry(url: string, timeoutMs: number): Promise<string> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(url);
      return await res.text();
    } catch (err) {
      if (Date.now() > end) throw err;
      await sleep(200);
    }
  }
}

describe('rootless containers', () => {
  let reg: TestRegistry;
  let user: TestUser;
  let busybox: string;
  let nginx: string;

  before(async () => {
    reg = await startRegistry(files.add);
    await reg.load('busybox');
    await reg.load('nginx');
    user = makeUser(files.add, 65536);
    busybox = `${reg.host}/corpus/busybox:latest`;
    nginx = `${reg.host}/corpus/nginx:latest`;
    user.ok(['pull', '-q', busybox]);
    user.ok(['pull', '-q', nginx]);
  });

  test('cgroup limits are refused in one line, before anything is made, never dropped', () => {
    const why = hostCgroups().version === 1 ? "this host's cgroups are v1, which cannot be delegated to a user" : 'strata without root gives a container no cgroup of its own';
    for (const [flags, named] of [
      [['-m', '64m'], '--memory'],
      [['--cpus', '0.5', '--pids-limit', '10'], '--cpus, --pids-limit'],
    ] as const) {
      const message = `Error: resource limits (${named}) cannot be applied without root: ${why}; run the container without them\n`;
      const run = user.strata(['run', '--rm', '--network', 'none', ...flags, busybox, 'true']);
      assert.equal(run.code, 125, run.stderr);
      assert.equal(run.stderr, message);
      const create = user.strata(['create', '--network', 'none', ...flags, busybox, 'true']);
      assert.equal(create.code, 1, create.stderr);
      assert.equal(create.stderr, message);
    }
    // docker's own value checks come first, as for root.
    assert.equal(user.strata(['create', '-m', '1m', busybox]).stderr, 'Error: Minimum memory limit allowed is 6MB\n');
    // --pids-limit 0 is docker's "unlimited": not a limit, so it runs.
    assert.equal(user.strata(['run', '--rm', '--network', 'none', '--pids-limit', '0', busybox, 'true']).code, 0);
    assert.equal(user.ok(['ps', '-aq']).trim(), '');
  });

  /** pasta opens /dev/net/tun as the user: scripts/install-deps.sh makes it 0666, as udev does. */
  const tunOpen = () => user.run(['test', '-r', '/dev/net/tun', '-a', '-w', '/dev/net/tun']).code === 0;

  test('run --rm busybox id: root in the container, with no network', () => {
    const r = user.strata(['run', '--rm', '--network', 'none', busybox, 'id']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^uid=0\(root\) gid=0\(root\)/);
    assert.equal(user.ok(['ps', '-aq']).trim(), '');
  });

  test('run --rm busybox id on the default network', (t) => {
    const r = user.strata(['run', '--rm', busybox, 'id']);
    if (!tunOpen()) {
      assert.equal(r.code, 125);
      assert.match(r.stderr, /^Error: the default network needs \/dev\/net\/tun, which this user may not open .*\n$/);
      t.skip('/dev/net/tun is not open to users here (scripts/install-deps.sh makes it 0666)');
      return;
    }
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^uid=0\(root\) gid=0\(root\)/);
  });

  test('run -d -p 127.0.0.1:PORT:80 nginx answers on that port; its root is the user on the host', async (t) => {
    if (!tunOpen()) {
      t.skip('/dev/net/tun is not open to users here (scripts/install-deps.sh makes it 0666)');
      return;
    }
    const port = await freePort();
    const id = user.ok(['run', '-d', '--name', 'web', '-p', `127.0.0.1:${port}:80`, nginx]).trim();
    try {
      assert.match(id, /^[0-9a-f]{64}$/);
      assert.match(await fetchRetry(`http://127.0.0.1:${port}/`, 20_000), /Welcome to nginx!/);
      const pid = Number(user.ok(['inspect', '-f', '{{.State.Pid}}', 'web']).trim());
      assert.ok(pid > 0);
      const uid = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1];
      assert.equal(Number(uid), user.uid);
      assert.equal(user.ok(['exec', 'web', 'id', '-u']).trim(), '0');
      user.ok(['stop', 'web']);
      assert.equal(user.ok(['inspect', '-f', '{{.State.Status}}', 'web']).trim(), 'exited');
    } finally {
      user.strata(['rm', '-f', 'web']);
    }
  });
});
