// Running containers through the CLI on overlay2 (issue #12): run/start/stop/kill/wait/logs/
// restart/pause, the flags of run, Docker's exit codes, Docker's default isolation inside the
// container, and that nothing (container, layer, mount, process) outlives what should not.
// Expected values are Docker's (docker.io 20.10 behaviour, from its documentation and source).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { strataBin } from '../helpers/env.js';
import { cleanupRuntime, leftovers, recordedPids, runtimeStore } from './harness.js';

const s = runtimeStore('overlay2', { after });
const { cli } = s;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function inspect(name: string): { Id: string; State: Record<string, unknown> } {
  return JSON.parse(cli.ok(['inspect', name]))[0];
}

/** rm -f these containers after the test, passed or failed. */
function owns(t: { after(fn: () => void): void }, ...names: string[]): void {
  t.after(() => {
    for (const n of names) cli.run(['rm', '-f', n]);
  });
}

function psAll(): { Names: string; Status: string; State: string }[] {
  return cli.ok(['ps', '-a', '--format', 'json']).trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

async function until(what: string, cond: () => boolean, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** `run --rm` of a shell line in busybox: its stdout, trimmed, insisting on exit 0. */
function sh(line: string, ...flags: string[]): string {
  return cli.ok(['run', '--rm', ...flags, 'bb', 'sh', '-c', line]).trim();
}

describe('run (overlay2)', () => {
  test('run -i: a script on stdin runs whole and its end ends the shell, as docker run -i sh < file', () => {
    // The whole input and its end reach the monitor before the process exists; none may be lost.
    for (let i = 0; i < 3; i++) {
      const r = cli.run(['run', '--rm', '-i', '--network', 'none', 'bb', 'sh'], 'echo one\necho two >&2\nexit 3\n');
      assert.deepEqual([r.code, r.stdout, r.stderr], [3, 'one\n', 'two\n']);
    }
  });

  test('run --rm busybox echo hi prints hi and leaves no container, layer, mount or process', () => {
    const layers = JSON.parse(cli.ok(['info', '--format', 'json'])).Layers;
    const r = cli.run(['run', '--rm', 'bb', 'echo', 'hi']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'hi\n');
    assert.deepEqual(psAll(), []);
    const info = JSON.parse(cli.ok(['info', '--format', 'json']));
    assert.equal(info.Containers, 0);
    assert.equal(info.Layers, layers);
    assert.deepEqual(leftovers(s.root, s.work), []);
  });

  test('a container keeps its changes across start -a; another of the same image does not see them', (t) => {
    owns(t, 'cx');
    const line = 'cat /f 2>/dev/null; echo 1 > /f; exit 3';
    const r = cli.run(['run', '--name', 'cx', 'bb', 'sh', '-c', line]);
    assert.equal(r.code, 3, r.stderr);
    assert.equal(r.stdout, '');
    const again = cli.run(['start', '-a', 'cx']);
    assert.equal(again.code, 3, again.stderr);
    assert.equal(again.stdout, '1\n', 'the second run sees the file of the first');
    const other = cli.run(['run', '--rm', 'bb', 'cat', '/f']);
    assert.equal(other.code, 1);
    assert.match(other.stderr, /can't open '\/f'/);
    assert.match(psAll().find((c) => c.Names === 'cx')!.Status, /^Exited \(3\) /);
    cli.ok(['rm', 'cx']);
    assert.deepEqual(leftovers(s.root, s.work), []);
  });

  test("exit codes: the process's own, 126, 127 and 125 for strata's failures", (t) => {
    owns(t, 'nx');
    const code = (...args: string[]) => cli.run(['run', '--rm', ...args]).code;
    assert.equal(code('bb', 'sh', '-c', 'exit 42'), 42);
    assert.equal(code('bb', 'no-such-command'), 127);
    assert.equal(code('bb', '/no/such/path'), 127);
    assert.equal(code('bb', '/etc'), 126, 'a directory is not executable');
    assert.equal(code('bb', '/etc/passwd'), 126, 'a file without x bits is not executable');
    // --pull never: a missing image would otherwise be pulled from Docker Hub (no traffic off 127.0.0.1).
    assert.equal(code('--pull', 'never', 'no-such-image:1', 'true'), 125);
    assert.equal(code('--network', 'bogus', 'bb', 'true'), 125);
    assert.equal(code('--stop-signal', 'BOGUS', 'bb', 'true'), 125);
    assert.equal(code('-v', 'relative:/x', 'bb', 'true'), 125);
    assert.equal(code('-u', 'no-such-user', 'bb', 'true'), 125);
    const r = cli.run(['run', '--rm', 'bb', 'no-such-command']);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /executable file not found/);
    // A failed start is recorded as Docker records it; the container stays until rm.
    assert.equal(cli.run(['run', '--name', 'nx', 'bb', 'no-such-command']).code, 127);
    const st = inspect('nx').State;
    assert.equal(st.Running, false);
    assert.equal(st.ExitCode, 127);
    assert.match(String(st.Error), /executable file not found/);
    cli.ok(['rm', 'nx']);
    assert.deepEqual(psAll(), []);
    assert.deepEqual(leftovers(s.root, s.work), []);
  });

  test('-e, --env-file, -w, -u NAME, --entrypoint, -h', () => {
    const envFile = join(s.work, 'env');
    writeFileSync(envFile, '# a comment\nFROM_FILE=yes\n\nB=2\n');
    const env = sh('env', '-e', 'FOO=bar baz', '--env-file', envFile, '-e', 'B=3').split('\n');
    assert.ok(env.includes('FOO=bar baz'), env.join('|'));
    assert.ok(env.includes('FROM_FILE=yes'), env.join('|'));
    assert.ok(env.includes('B=3'), '-e wins over --env-file, as docker');
    assert.ok(env.some((e) => e.startsWith('PATH=')), 'the image PATH stays');
    assert.ok(env.includes('HOME=/root'));
    assert.ok(env.some((e) => /^HOSTNAME=[0-9a-f]{12}$/.test(e)), 'HOSTNAME is the short id, as docker sets it');
    assert.equal(sh('pwd', '-w', '/usr/share'), '/usr/share');
    assert.equal(sh('pwd', '-w', '/made/by/workdir'), '/made/by/workdir', '-w creates a missing directory');
    assert.equal(sh('id -u; id -g; echo $HOME', '-u', 'nobody'), '65534\n65534\n/nonexistent');
    assert.equal(sh('id -u; id -g', '-u', '1234:5678'), '1234\n5678');
    assert.equal(cli.ok(['run', '--rm', '--entrypoint', 'echo', 'bb', 'a', 'b']), 'a b\n');
    assert.equal(sh('hostname; cat /etc/hostname', '-h', 'box1'), 'box1\nbox1');
  });

  test('--network none has only loopback; host shares the host network and name', () => {
    const none = sh('cat /proc/net/dev', '--network', 'none');
    const ifaces = none.split('\n').slice(2).map((l) => l.trim().split(':')[0]);
    assert.deepEqual(ifaces, ['lo']);
    const host = sh('cat /proc/net/dev; hostname', '--network', 'host');
    const hostIfaces = readFileSync('/proc/net/dev', 'utf8').split('\n').slice(2).filter(Boolean).map((l) => l.trim().split(':')[0]).sort();
    const lines = host.split('\n');
    assert.equal(lines.pop(), hostname());
    assert.deepEqual(lines.slice(2).map((l) => l.trim().split(':')[0]).sort(), hostIfaces);
    // the default network has an interface beside loopback (pasta's)
    const def = sh('cat /proc/net/dev').split('\n').slice(2).map((l) => l.trim().split(':')[0]);
    assert.ok(def.length >= 2 && def.includes('lo'), def.join(','));
  });

  test('-v HOST:CTR and :ro; --read-only', () => {
    const dir = join(s.work, 'vol');
    mkdirSync(dir);
    writeFileSync(join(dir, 'in'), 'from host\n');
    assert.equal(sh('cat /data/in; echo back > /data/out', '-v', `${dir}:/data`), 'from host');
    assert.equal(readFileSync(join(dir, 'out'), 'utf8'), 'back\n');
    const ro = cli.run(['run', '--rm', '-v', `${dir}:/data:ro`, 'bb', 'sh', '-c', 'cat /data/in; echo x > /data/out2']);
    assert.equal(ro.code, 1);
    assert.equal(ro.stdout, 'from host\n');
    assert.match(ro.stderr, /Read-only file system/);
    const rootRo = cli.run(['run', '--rm', '--read-only', 'bb', 'touch', '/x']);
    assert.equal(rootRo.code, 1);
    assert.match(rootRo.stderr, /Read-only file system/);
    // /dev/shm stays writable under --read-only, as docker's
    assert.equal(sh('touch /dev/shm/ok && echo ok', '--read-only'), 'ok');
  });

  test('--init runs docker-init as PID 1 and the command under it', () => {
    const out = sh('cat /proc/1/cmdline | tr "\\0" " "; echo; echo $$', '--init');
    const [pid1, self] = out.split('\n');
    assert.match(pid1!, /^\/sbin\/docker-init -- sh -c /);
    assert.notEqual(self, '1');
    assert.equal(sh('echo $$'), '1', 'without --init the command is PID 1');
  });

  test("Docker's default isolation: capabilities, masked and read-only paths, /dev/shm, /etc/hostname", (t) => {
    owns(t, 'iso');
    // Docker's default bounding set (CHOWN DAC_OVERRIDE FSETID FOWNER MKNOD NET_RAW SETGID SETUID
    // SETFCAP SETPCAP NET_BIND_SERVICE SYS_CHROOT KILL AUDIT_WRITE).
    const status = sh('cat /proc/1/status');
    for (const f of ['CapBnd', 'CapEff', 'CapPrm']) assert.match(status, new RegExp(`^${f}:\\s+00000000a80425fb$`, 'm'), f);
    assert.match(status, /^NoNewPrivs:\s+0$/m);
    // (this kernel has no /proc/kcore; /proc/timer_list and /proc/keys are masked files it has)
    assert.equal(sh('wc -c < /proc/timer_list; wc -c < /proc/keys'), '0\n0', 'masked files read empty');
    const mounts = sh('cat /proc/mounts').split('\n');
    const opts = (mp: string) => mounts.find((l) => l.split(' ')[1] === mp)?.split(' ')[3].split(',') ?? [];
    assert.ok(opts('/proc/sys').includes('ro'), mounts.join('\n'));
    assert.ok(opts('/sys').includes('ro'));
    for (const masked of ['/proc/timer_list', '/proc/keys']) assert.ok(opts(masked).includes('ro') || mounts.some((l) => l.split(' ')[1] === masked), masked);
    if (existsSync('/proc/acpi')) assert.equal(mounts.find((l) => l.split(' ')[1] === '/proc/acpi')?.split(' ')[2], 'tmpfs', 'a masked directory is an empty tmpfs');
    assert.ok(opts('/dev/shm').includes('size=65536k'), opts('/dev/shm').join(','));
    const w = cli.run(['run', '--rm', 'bb', 'sh', '-c', 'echo 1 > /proc/sys/kernel/domainname']);
    assert.notEqual(w.code, 0);
    // /etc/hostname, /etc/hosts and /etc/resolv.conf are the files of containers/<id>/.
    const id = cli.ok(['run', '-d', '--name', 'iso', 'bb', 'sleep', '60']).trim();
    try {
      const dir = join(s.root, 'containers', id);
      assert.equal(readFileSync(join(dir, 'hostname'), 'utf8'), `${id.slice(0, 12)}\n`);
      const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
      for (const f of ['hostname', 'hosts', 'resolv.conf']) {
        const m = cfg.mounts.find((x: { destination: string }) => x.destination === `/etc/${f}`);
        assert.equal(m?.source, join(dir, f), `/etc/${f}`);
      }
    } finally {
      cli.ok(['rm', '-f', 'iso']);
    }
    assert.equal(sh('hostname; cat /etc/hostname').split('\n').length, 2);
  });

  test('--stop-signal and stop; kill -s; wait prints the exit code', async (t) => {
    owns(t, 'st', 'ks', 'stubborn');
    const trap = (sig: string, code: number) => `trap "echo got ${sig}; exit ${code}" ${sig}; echo ready; while :; do sleep 0.05; done`;
    cli.ok(['run', '-d', '--name', 'st', '--stop-signal', 'USR1', 'bb', 'sh', '-c', trap('USR1', 5)]);
    await until('ready', () => cli.ok(['logs', 'st']).includes('ready'));
    const t0 = Date.now();
    cli.ok(['stop', 'st']);
    assert.ok(Date.now() - t0 < 8000, 'the stop signal ended it, not the SIGKILL after 10 s');
    assert.equal(cli.ok(['wait', 'st']), '5\n');
    assert.match(cli.ok(['logs', 'st']), /got USR1/);
    assert.match(psAll().find((c) => c.Names === 'st')!.Status, /^Exited \(5\) /);

    cli.ok(['run', '-d', '--name', 'ks', 'bb', 'sh', '-c', trap('HUP', 7)]);
    await until('ready', () => cli.ok(['logs', 'ks']).includes('ready'));
    const waiter = spawnWait('ks');
    cli.ok(['kill', '-s', 'HUP', 'ks']);
    assert.equal(await waiter, '7\n');
    const r = cli.run(['kill', 'ks']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /is not running/);
    assert.equal(cli.run(['kill', '-s', 'NOPE', 'ks']).code, 1);

    // SIGKILL after the grace period: sh as PID 1 ignores SIGTERM
    cli.ok(['run', '-d', '--name', 'stubborn', 'bb', 'sleep', '60']);
    cli.ok(['stop', '-t', '1', 'stubborn']);
    assert.equal(inspect('stubborn').State.ExitCode, 137);
    cli.ok(['rm', 'st', 'ks', 'stubborn']);
    assert.deepEqual(leftovers(s.root, s.work), []);
  });

  test('logs --tail, -t, --since', async (t) => {
    owns(t, 'lg');
    // stdout and stderr are two pipes: their order in the log is only certain with a pause between.
    cli.ok(['run', '-d', '--name', 'lg', 'bb', 'sh', '-c', 'echo a; echo b; sleep 0.3; echo c >&2; sleep 1.5; echo d; sleep 60']);
    await until('c', () => cli.run(['logs', 'lg']).stderr === 'c\n');
    await sleep(300);
    const mid = new Date().toISOString();
    await until('d', () => cli.ok(['logs', 'lg']).includes('d'));
    assert.equal(cli.ok(['logs', 'lg']), 'a\nb\nd\n');
    const r = cli.run(['logs', '--tail', '2', 'lg']);
    assert.equal(r.stdout, 'd\n');
    assert.equal(r.stderr, 'c\n');
    assert.equal(cli.ok(['logs', '--tail', '0', 'lg']), '');
    const ts = cli.ok(['logs', '-t', 'lg']).split('\n').filter(Boolean);
    for (const l of ts) assert.match(l, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z [abd]$/);
    assert.equal(cli.ok(['logs', '--since', mid, 'lg']), 'd\n');
    assert.equal(cli.ok(['logs', '--since', '1h', 'lg']), 'a\nb\nd\n');
    cli.ok(['rm', '-f', 'lg']);
  });

  test('restart runs the process again; pause/unpause and ps shows Paused', async (t) => {
    owns(t, 'rs');
    cli.ok(['run', '-d', '--name', 'rs', 'bb', 'sh', '-c', 'echo started; sleep 60']);
    await until('started', () => cli.ok(['logs', 'rs']).includes('started'));
    const first = inspect('rs').State;
    cli.ok(['restart', '-t', '0', 'rs']);
    await until('started twice', () => cli.ok(['logs', 'rs']) === 'started\nstarted\n');
    const second = inspect('rs').State;
    assert.equal(second.Running, true);
    assert.notEqual(second.StartedAt, first.StartedAt);
    assert.notEqual(second.Pid, first.Pid);

    cli.ok(['pause', 'rs']);
    let st = inspect('rs').State;
    assert.equal(st.Status, 'paused');
    assert.equal(st.Paused, true);
    assert.match(psAll().find((c) => c.Names === 'rs')!.Status, /^Up .* \(Paused\)$/);
    assert.match(readFileSync(`/proc/${st.Pid}/cgroup`, 'utf8'), /strata/);
    assert.equal(cli.run(['pause', 'rs']).code, 1);
    cli.ok(['unpause', 'rs']);
    st = inspect('rs').State;
    assert.equal(st.Status, 'running');
    assert.equal(cli.run(['unpause', 'rs']).code, 1);
    // ps without -a lists running containers only
    assert.ok(cli.ok(['ps', '--format', 'json']).includes('"Names":"rs"'));
    cli.ok(['rm', '-f', 'rs']);
  });

  test('inspect State of a created, running and exited container', async (t) => {
    owns(t, 'is');
    cli.ok(['create', '--name', 'is', 'bb', 'sh', '-c', 'sleep 4; exit 9']);
    let st = inspect('is').State;
    assert.deepEqual(
      { Status: st.Status, Running: st.Running, Pid: st.Pid, ExitCode: st.ExitCode, StartedAt: st.StartedAt, FinishedAt: st.FinishedAt },
      { Status: 'created', Running: false, Pid: 0, ExitCode: 0, StartedAt: '0001-01-01T00:00:00Z', FinishedAt: '0001-01-01T00:00:00Z' },
    );
    assert.ok(!cli.ok(['ps', '--format', 'json']).includes('"is"'), 'a created container is not running');
    cli.ok(['start', 'is']);
    st = inspect('is').State;
    assert.equal(st.Status, 'running');
    assert.equal(st.Running, true);
    assert.ok(Number(st.Pid) > 0 && readFileSync(`/proc/${st.Pid}/cmdline`, 'utf8').startsWith('sh'));
    assert.equal(cli.ok(['wait', 'is']), '9\n');
    st = inspect('is').State;
    assert.equal(st.Status, 'exited');
    assert.equal(st.Running, false);
    assert.equal(st.Pid, 0);
    assert.equal(st.ExitCode, 9);
    assert.ok(Date.parse(String(st.FinishedAt)) >= Date.parse(String(st.StartedAt)));
    cli.ok(['rm', 'is']);
  });

  test('rm of a running container is refused; rm -f kills and removes it', (t) => {
    owns(t, 'rf');
    cli.ok(['run', '-d', '--name', 'rf', 'bb', 'sleep', '60']);
    const r = cli.run(['rm', 'rf']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /running/);
    cli.ok(['rm', '-f', 'rf']);
    assert.deepEqual(psAll(), []);
    assert.deepEqual(leftovers(s.root, s.work), []);
  });

  test('killing the CLI or the monitor never loses the container', async (t) => {
    owns(t, 'k1', 'k2');
    // The foreground CLI of a run, killed while the container runs.
    const fg = spawn(process.execPath, [strataBin, '--root', s.root, '--driver', 'overlay2', 'run', '--name', 'k1', 'bb', 'sleep', '60'], { stdio: 'ignore' });
    await until('k1 running', () => psAll().some((c) => c.Names === 'k1' && c.State === 'running'));
    fg.kill('SIGKILL');
    await sleep(200);
    assert.equal(inspect('k1').State.Running, true, 'the container outlives its CLI');
    // Its monitor, killed too: the container is still seen, and can be killed, waited and removed.
    const containerPid = Number(inspect('k1').State.Pid);
    const monitors = recordedPids(s.root).filter((p) => p !== containerPid);
    assert.equal(monitors.length, 1);
    process.kill(monitors[0]!, 'SIGKILL');
    await sleep(200);
    assert.equal(inspect('k1').State.Running, true, 'the process outlives its monitor');
    assert.deepEqual(cli.ok(['ps', '--format', 'json']).trim().split('\n').map((l) => JSON.parse(l).Names), ['k1']);
    const waiter = spawnWait('k1');
    cli.ok(['kill', 'k1']);
    assert.match(await waiter, /^\d+\n$/);
    assert.equal(inspect('k1').State.Running, false);
    cli.ok(['rm', 'k1']);

    // A detached run whose CLI is killed at once: whatever state it reached, the store knows it.
    const d = spawn(process.execPath, [strataBin, '--root', s.root, '--driver', 'overlay2', 'run', '-d', '--name', 'k2', 'bb', 'sleep', '60'], { stdio: 'ignore' });
    await until('k2 created', () => psAll().some((c) => c.Names === 'k2'));
    d.kill('SIGKILL');
    await new Promise((r) => d.once('exit', r));
    assert.ok(psAll().some((c) => c.Names === 'k2'));
    cli.ok(['rm', '-f', 'k2']);
    assert.deepEqual(psAll(), []);
    assert.deepEqual(leftovers(s.root, s.work), []);
  });

  test('rm -f of a run whose client died before it attached: its waiting monitor goes at once', async (t) => {
    const strace = ['/usr/bin/strace', '/bin/strace'].find((p) => existsSync(p));
    if (!strace) return t.skip('strace is not installed');
    owns(t, 'wa');
    // strace holds the client's connect to the attach socket (its main thread's only connect),
    // so the client is surely between its create and its attach when it is killed.
    const argv = [strataBin, '--root', s.root, '--driver', 'overlay2', 'run', '--network', 'none', '--name', 'wa', 'bb', 'sleep', '60'];
    const fg = spawn(strace, ['-qq', '-o', '/dev/null', '-e', 'trace=connect', '-e', 'inject=connect:delay_enter=60000000', process.execPath, ...argv], {
      stdio: 'ignore',
      detached: true,
    });
    let alive = true;
    const exited = new Promise((r) => fg.once('exit', r)).then(() => (alive = false));
    t.after(() => void (alive && process.kill(-fg.pid!, 'SIGKILL')));
    await until('wa created, its monitor waiting', () => psAll().some((c) => c.Names === 'wa') && recordedPids(s.root).length === 1, 30_000);
    assert.equal(inspect('wa').State.Status, 'created');
    process.kill(-fg.pid!, 'SIGKILL');
    await exited;
    cli.ok(['rm', '-f', 'wa']);
    // Before, it waited 30 s for a client, then failed on the removed container and stayed.
    await until('the monitor gone', () => leftovers(s.root, s.work).length === 0, 5_000);
    assert.deepEqual(psAll(), []);
    assert.equal(cli.ok(['check']).trim(), 'no problems found');
  });

  test('the after-hook cleanup undoes a running container', (t) => {
    owns(t, 'left');
    cli.ok(['run', '-d', '--name', 'left', 'bb', 'sleep', '60']);
    cleanupRuntime(s.root, s.work);
    assert.deepEqual(leftovers(s.root, s.work), []);
    cli.ok(['rm', '-f', 'left']);
  });
});

/** `strata wait NAME` in the background: its stdout once it exits. */
function spawnWait(name: string): Promise<string> {
  const w = spawn(process.execPath, [strataBin, '--root', s.root, '--driver', 'overlay2', 'wait', name]);
  let out = '';
  w.stdout.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => {
    w.on('error', reject);
    w.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`wait exited ${code}`))));
  });
}
