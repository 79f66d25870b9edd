// `--detach-keys` (issue #12) driven through real ptys (node-pty), as a user at a terminal types
// them: `run -it`, `start -a -i`, `attach` and `exec -it` each leave on their sequence (docker's
// grammar: ctrl-X, single characters, DEL), the container (or the exec'd process) runs on, and
// bytes that only began the sequence reach the process. A bad spec is refused before anything
// is made; the grammar itself is checked against docker's rules.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { parseDetachKeys } from '../../src/runtime/terminal.js';
import { runtimeStore } from './harness.js';
import { session as ptySession, type Session } from './ptysession.js';

const s = runtimeStore('overlay2', { after });
const { cli } = s;
const sessions: Session['p'][] = [];
after(() => {
  for (const p of sessions) p.kill();
});

function session(args: string[]): Session {
  const x = ptySession(s.root, args);
  sessions.push(x.p);
  return x;
}

function running(name: string): boolean {
  return cli.ok(['ps', '--format', '{{.Names}}']).split('\n').includes(name);
}

describe('--detach-keys', () => {
  it("follows docker's grammar", () => {
    assert.deepEqual([...parseDetachKeys('ctrl-p,ctrl-q')], [16, 17]);
    assert.deepEqual([...parseDetachKeys('')], [16, 17], 'empty is the default');
    assert.deepEqual([...parseDetachKeys('ctrl-@,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_')], [0, 27, 28, 29, 30, 31]);
    assert.deepEqual([...parseDetachKeys('a,DEL,ctrl-z, ')], [97, 127, 26, 32]);
    for (const bad of ['ctrl-A', 'ctrl-p, ctrl-q', 'ab', 'ctrl-1', 'del', 'ctrl-', 'a,,b']) {
      assert.throws(() => parseDetachKeys(bad), new RegExp(`^InvalidInputError: Invalid detach keys \\(${bad.replace(/[\\^$.*+?()[\]{}|-]/g, '\\$&')}\\) provided$`), bad);
    }
  });

  it('a bad spec is refused by run, start, attach and exec before anything happens', (t) => {
    t.after(() => void cli.run(['rm', '-f', 'dk-bad']));
    for (const args of [['run', '--rm', '-it', '--detach-keys', 'ctrl-A', 'bb', 'true'], ['create', '--name', 'dk-bad', 'bb', 'true']]) {
      const r = cli.run(args);
      if (args[0] === 'create') assert.equal(r.code, 0, r.stderr);
      else {
        assert.equal(r.code, 1);
        assert.equal(r.stderr, 'Error: Invalid detach keys (ctrl-A) provided\n');
      }
    }
    for (const args of [['start', '-a', '--detach-keys', 'x,y z', 'dk-bad'], ['attach', '--detach-keys', 'x,y z', 'dk-bad'], ['exec', '-it', '--detach-keys', 'x,y z', 'dk-bad', 'true']]) {
      const r = cli.run(args);
      assert.equal(r.code, 1, args.join(' '));
      assert.equal(r.stderr, 'Error: Invalid detach keys (x,y z) provided\n', args.join(' '));
    }
    assert.equal(cli.ok(['ps', '-a', '--format', '{{.Names}} {{.State}}']), 'dk-bad created\n');
  });

  it('run -it with a custom sequence: a broken start of it reaches the shell, the whole one detaches', async (t) => {
    t.after(() => void cli.run(['rm', '-f', 'dk-run']));
    const x = session(['run', '-it', '--name', 'dk-run', '--network', 'none', '--detach-keys', 'z,x', 'bb', 'sh']);
    await x.until(/# /);
    // "z" then "y": not the sequence, so both reach the shell.
    x.p.write('echo zy-$((2+2))\r');
    await x.until(/zy-4/);
    x.p.write('zx');
    assert.equal(await x.exited, 0);
    assert.ok(running('dk-run'));
  });

  it('start -a -i and attach leave on the default ctrl-p,ctrl-q and on DEL', async (t) => {
    t.after(() => void cli.run(['rm', '-f', 'dk-att']));
    cli.ok(['create', '-it', '--name', 'dk-att', '--network', 'none', 'bb', 'sh']);
    const started = session(['start', '-a', '-i', 'dk-att']);
    await started.until(/# /);
    started.p.write('\x10\x11');
    assert.equal(await started.exited, 0);
    assert.ok(running('dk-att'));
    const attached = session(['attach', '--detach-keys', 'DEL', 'dk-att']);
    // What is typed before the client attached waits in the pty for it; Enter brings a prompt.
    attached.p.write('\r');
    await attached.until(/# /);
    attached.p.write('echo attached-$((40+2))\r');
    await attached.until(/attached-42/);
    attached.p.write('\x7f');
    assert.equal(await attached.exited, 0);
    assert.ok(running('dk-att'));
    assert.equal(cli.ok(['exec', 'dk-att', 'echo', 'still']), 'still\n');
  });

  it('exec -it detaches and its process runs on after the CLI has gone', async (t) => {
    t.after(() => void cli.run(['rm', '-f', 'dk-exec']));
    cli.ok(['run', '-d', '--name', 'dk-exec', '--network', 'none', 'bb', 'sleep', '300']);
    const x = session(['exec', '-it', '--detach-keys', 'ctrl-x,ctrl-y', 'dk-exec', 'sh']);
    await x.until(/# /);
    x.p.write('(while :; do date > /tmp/tick; sleep 0.2; done) & echo loop-$((3*3))\r');
    await x.until(/loop-9/);
    x.p.write('\x18\x19');
    assert.equal(await x.exited, 0);
    // The exec'd shell (and its loop) outlive the CLI: the tick file keeps changing.
    const tick = () => cli.ok(['exec', 'dk-exec', 'cat', '/tmp/tick']);
    const first = tick();
    await new Promise((r) => setTimeout(r, 1500));
    assert.notEqual(tick(), first);
    assert.match(cli.ok(['exec', 'dk-exec', 'ps']), /\bsh\b/);
  });
});
