// `run -it busybox sh` driven through a real pty (node-pty), as a user at a terminal drives it:
// commands run, the window size reaches the container at start and on resize, Ctrl-C interrupts
// the foreground job, the detach keys leave the container running, and the exit code is the shell's.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { strataIn } from '../helpers/cli.js';
import { corpusImage, scratch, strataBin } from '../helpers/env.js';
import { session, type Session } from './ptysession.js';
import { unmountAllUnder } from '../helpers/mounts.js';

describe('run -it through a pty', () => {
  const work = scratch(null, 'strata-rttty-');
  const root = join(work, 'root');
  const s = strataIn(root, 'overlay2');
  const sessions: Session[] = [];

  before(() => {
    const id = /sha256:([0-9a-f]{64})/.exec(s.ok(['load', '-i', corpusImage('busybox.oci.tar')]))![1]!;
    s.ok(['tag', id, 'busybox']);
  });

  after(() => {
    for (const x of sessions) x.p.kill();
    const ids = s.run(['ps', '-aq']).stdout.split('\n').filter(Boolean);
    if (ids.length) s.run(['rm', '-f', ...ids]);
    unmountAllUnder(work);
  });

  it('runs commands, follows resizes, passes Ctrl-C and exits with the shell code', async () => {
    const x = session(root, ['run', '--rm', '-it', '--network', 'none', 'busybox', 'sh'], { cols: 100, rows: 30 });
    sessions.push(x);
    await x.until(/# /);
    x.p.write('stty size; echo mark-$((6*7))\r');
    await x.until(/30 100\r+\n.*mark-42/s);
    x.p.resize(120, 40);
    await new Promise((r) => setTimeout(r, 300));
    x.p.write('stty size\r');
    await x.until(/40 120/);
    x.p.write('sleep 100; echo not-$((2+3))\r');
    await new Promise((r) => setTimeout(r, 500));
    x.p.write('\x03');
    x.p.write('echo after-$((1+1))\r');
    await x.until(/after-2/);
    assert.doesNotMatch(x.output(), /not-5/);
    x.p.write('exit 7\r');
    assert.equal(await x.exited, 7);
    assert.equal(s.ok(['ps', '-aq']), '');
  });

  it('detaches on ctrl-p ctrl-q and leaves the container running', async () => {
    const x = session(root, ['run', '-it', '--name', 'keep', '--network', 'none', 'busybox', 'sh'], { cols: 80, rows: 24 });
    sessions.push(x);
    await x.until(/# /);
    x.p.write('\x10\x11');
    assert.equal(await x.exited, 0);
    assert.match(s.ok(['ps']), /\sUp .*\skeep\n/);
    assert.equal(s.ok(['exec', 'keep', 'echo', 'still-there']), 'still-there\n');
  });

  it('without a terminal, proxies a signal to the process (--sig-proxy)', async () => {
    const script = 'trap "echo got-int; exit 5" INT; echo ready; while true; do sleep 0.1; done';
    const child = spawn(process.execPath, [strataBin, '--root', root, '--driver', 'overlay2', 'run', '--rm', '--network', 'none', 'busybox', 'sh', '-c', script]);
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out === 'ready\n') child.kill('SIGINT');
    });
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    assert.deepEqual([code, out], [5, 'ready\ngot-int\n']);
  });
});
