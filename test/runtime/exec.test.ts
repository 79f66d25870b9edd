// exec, top and cp against real containers (runc, overlay2) in a scratch store: what docker's
// commands print and exit with, and that cp never leaves the container's root.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { strataIn } from '../helpers/cli.js';
import { corpusImage, scratch } from '../helpers/env.js';
import { unmountAllUnder } from '../helpers/mounts.js';

describe('exec, top and cp', () => {
  const work = scratch(null, 'strata-rtexec-');
  const root = join(work, 'root');
  const s = strataIn(root, 'overlay2');
  let ctr = '';

  before(() => {
    const loaded = s.ok(['load', '-i', corpusImage('busybox.oci.tar')]);
    const id = /sha256:([0-9a-f]{64})/.exec(loaded)![1]!;
    s.ok(['tag', id, 'busybox']);
    ctr = s.ok(['run', '-d', '--network', 'none', '--name', 'sleeper', 'busybox', 'sleep', '1000']).trim();
  });

  after(() => {
    // Every container this suite made, running or not, then whatever is still mounted.
    const ids = s.run(['ps', '-aq']).stdout.split('\n').filter(Boolean);
    if (ids.length) s.run(['rm', '-f', ...ids]);
    unmountAllUnder(work);
  });

  it('relays stdout, stderr and the exit code', () => {
    const r = s.run(['exec', ctr, 'sh', '-c', 'echo out; echo err >&2; exit 3']);
    assert.deepEqual([r.code, r.stdout, r.stderr], [3, 'out\n', 'err\n']);
  });

  it('takes -e, -u and -w, with the user from the container passwd', () => {
    const r = s.run(['exec', '-e', 'FOO=bar', '-u', 'nobody', '-w', '/tmp', ctr, 'sh', '-c', 'echo $FOO; id -u; pwd']);
    assert.deepEqual([r.code, r.stdout], [0, 'bar\n65534\n/tmp\n']);
    const bad = s.run(['exec', '-u', 'nosuchuser', ctr, 'true']);
    assert.equal(bad.code, 126);
    assert.match(bad.stderr, /unable to find user nosuchuser/);
  });

  it('exits 127 for a missing command and 126 for one that cannot run', () => {
    const missing = s.run(['exec', ctr, 'no-such-command']);
    assert.equal(missing.code, 127);
    assert.match(missing.stderr, /executable file not found/);
    assert.equal(missing.stderr.trim().split('\n').length, 1, missing.stderr);
    assert.equal(s.run(['exec', ctr, '/etc']).code, 126);
  });

  it('forwards stdin with -i and none without', () => {
    assert.equal(s.ok(['exec', '-i', ctr, 'cat'], 'piped\n'), 'piped\n');
    assert.equal(s.ok(['exec', ctr, 'cat'], 'piped\n'), '');
  });

  it('-t gives the process a terminal', () => {
    // The pause: runc 1.1 finishes setting up the container's terminal (ONLCR off) while the
    // process already runs; a tty ioctl in that window fails with ECHILD.
    assert.match(s.ok(['exec', '-t', ctr, 'sh', '-c', 'sleep 0.2; tty; stty size']), /^\/dev\/pts\/\d+\r\n24 80\r\n$/);
  });

  it('-d leaves the process running, and top lists it with ps -ef columns', () => {
    s.ok(['exec', '-d', ctr, 'sleep', '777']);
    const top = s.ok(['top', ctr]).split('\n');
    assert.match(top[0]!, /^UID +PID +PPID +C +STIME +TTY +TIME +CMD$/);
    assert.ok(top.some((l) => /sleep 1000$/.test(l)), top.join('\n'));
    assert.ok(top.some((l) => /sleep 777$/.test(l)), top.join('\n'));
    const custom = s.ok(['top', ctr, '-o', 'pid,comm']).split('\n');
    assert.match(custom[0]!, /^PID +COMMAND$/);
    assert.equal(custom.filter((l) => / sleep$/.test(l)).length, 2);
  });

  it('refuses a container that is not running', () => {
    s.ok(['create', '--name', 'idle', 'busybox', 'true']);
    const r = s.run(['exec', 'idle', 'true']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /container [0-9a-f]{64} is not running/);
    assert.equal(s.run(['top', 'idle']).code, 1);
  });

  it('cp puts files in that exec sees, with docker\'s directory rules', () => {
    const src = join(work, 'src');
    mkdirSync(join(src, 'd'), { recursive: true });
    writeFileSync(join(src, 'a'), 'A\n');
    writeFileSync(join(src, 'd', 'b'), 'B\n');
    s.ok(['cp', join(src, 'a'), `${ctr}:/tmp/`]);
    s.ok(['cp', join(src, 'd'), `${ctr}:/tmp/newd`]);
    s.ok(['cp', join(src, 'd'), `${ctr}:/tmp/newd`]);
    s.ok(['cp', `${join(src, 'd')}/.`, `${ctr}:/`]);
    assert.equal(s.ok(['exec', ctr, 'cat', '/tmp/a', '/tmp/newd/b', '/tmp/newd/d/b', '/b']), 'A\nB\nB\nB\n');
    const r = s.run(['cp', join(src, 'd'), `${ctr}:/tmp/a`]);
    assert.equal(r.code, 1);
  });

  it('cp copies out of a container, to a directory, a new name or a tar stream', () => {
    const out = join(work, 'out');
    mkdirSync(out);
    s.ok(['cp', `${ctr}:/etc/passwd`, `${out}/`]);
    s.ok(['cp', `${ctr}:/etc`, join(out, 'etc2')]);
    assert.equal(readFileSync(join(out, 'passwd'), 'utf8'), readFileSync(join(out, 'etc2', 'passwd'), 'utf8'));
    assert.match(readFileSync(join(out, 'passwd'), 'utf8'), /^root:/);
    const tar = s.ok(['cp', `${ctr}:/etc/passwd`, '-']);
    assert.equal(tar.slice(0, 6), 'passwd');
    const missing = s.run(['cp', `${ctr}:/no/such`, out]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /Could not find the file \/no\/such in container/);
  });

  it('cp never follows a container symlink out of its root', () => {
    s.ok(['exec', ctr, 'ln', '-s', '/', '/escape']);
    s.ok(['exec', ctr, 'ln', '-s', `${work}/victim`, '/abs']);
    const file = join(work, 'payload');
    writeFileSync(file, 'P\n');
    s.ok(['cp', file, `${ctr}:/escape/tmp/landed`]);
    assert.equal(s.ok(['exec', ctr, 'cat', '/tmp/landed']), 'P\n');
    // A dangling absolute link is followed inside the root: its parent is missing there, then made.
    const r = s.run(['cp', file, `${ctr}:/abs`]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`directory ${work} does not exist`));
    s.ok(['exec', ctr, 'mkdir', '-p', work]);
    s.ok(['cp', file, `${ctr}:/abs`]);
    assert.equal(existsSync(join(work, 'victim')), false);
    assert.equal(s.ok(['exec', ctr, 'cat', `${work}/victim`]), 'P\n');
  });

  it('cp works on a container that is not running, and from a tar on stdin', () => {
    s.ok(['create', '--name', 'cold', 'busybox', 'cat', '/tmp/in/x']);
    const tar = s.ok(['cp', `${ctr}:/tmp/a`, '-']);
    const r = s.run(['cp', '-', 'cold:/tmp/in']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /must be a directory/);
    s.ok(['cp', '-', 'cold:/tmp'], Buffer.from(tar, 'latin1'));
    s.ok(['cp', 'cold:/tmp/a', join(work, 'from-cold')]);
    assert.equal(readFileSync(join(work, 'from-cold'), 'utf8'), 'A\n');
  });
});
