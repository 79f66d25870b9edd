// The runtime's directory under /run/strata/<hash of the store root> (runc's state, attach
// sockets, network namespaces): a container's part of it goes when the container is removed,
// and the directory itself once no container of the store runs, also after a monitor was
// killed; a container still running keeps it and keeps working.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { execRootOf, leftovers, processesOf, runtimeStore } from './harness.js';

const s = runtimeStore('overlay2', { after });
const { cli } = s;
const execRoot = execRootOf(s.root);

/** The pid of the monitor of container `ref` (its command line names the store root and the ID). */
function monitorPid(ref: string): number {
  const id = cli.ok(['inspect', '--format', '{{.Id}}', ref]).trim();
  const pid = processesOf(s.root).find((p) => readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').includes(id));
  if (!pid) throw new Error(`no monitor for ${ref}`);
  return pid;
}

describe('runtime directories (overlay2)', () => {
  test('run --rm leaves no runtime directory', () => {
    assert.equal(cli.ok(['run', '--rm', '--network', 'none', 'bb', 'echo', 'x']), 'x\n');
    assert.equal(existsSync(execRoot), false);
    // The default network's namespace files go too.
    assert.equal(cli.ok(['run', '--rm', 'bb', 'echo', 'y']), 'y\n');
    assert.equal(existsSync(execRoot), false);
  });

  test("rm takes a container's runtime state; the directory stays while another runs, then goes", async (t) => {
    t.after(() => void cli.run(['rm', '-f', 'rd-a', 'rd-b']));
    const a = cli.ok(['run', '-d', '--name', 'rd-a', 'bb', 'sleep', '300']).trim();
    const b = cli.ok(['run', '-d', '--name', 'rd-b', 'bb', 'sleep', '300']).trim();
    assert.ok(existsSync(join(execRoot, 'runc', a)));
    assert.ok(existsSync(join(execRoot, 'runc', b)));
    cli.ok(['rm', '-f', 'rd-a']);
    const left = readdirSync(execRoot, { recursive: true }).map(String);
    assert.ok(!left.some((e) => e.includes(a.slice(0, 32))), left.join(' '));
    assert.ok(left.some((e) => e.includes(b)), left.join(' '));
    assert.equal(cli.ok(['exec', 'rd-b', 'echo', 'alive']), 'alive\n');
    cli.ok(['stop', '-t', '0', 'rd-b']);
    // Nothing runs: the directory goes before rm, once the monitor has cleaned up after stop.
    const end = Date.now() + 10_000;
    while (existsSync(execRoot) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    assert.equal(existsSync(execRoot), false, 'nothing runs: the directory is gone before rm');
    cli.ok(['rm', 'rd-b']);
    assert.deepEqual(leftovers(s.root, s.work), []);
  });

  test('a container whose monitor was killed: rm -f still removes its runtime state and the directory', (t) => {
    t.after(() => void cli.run(['rm', '-f', 'rd-k']));
    cli.ok(['run', '-d', '--name', 'rd-k', '--network', 'none', 'bb', 'sleep', '300']);
    process.kill(monitorPid('rd-k'), 'SIGKILL');
    assert.equal(cli.ok(['exec', 'rd-k', 'echo', 'orphan']), 'orphan\n');
    cli.ok(['rm', '-f', 'rd-k']);
    assert.equal(existsSync(execRoot), false);
    assert.deepEqual(leftovers(s.root, s.work), []);
  });
});
