// The STRATA_FAULT hook: the process dies by SIGKILL exactly at the Nth point of the named kind,
// other kinds do not count, and a malformed spec stops the CLI with a one-line error.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import { corpusImage, repoRoot, scratch, strataBin } from '../helpers/env.js';

const faultModule = pathToFileURL(join(repoRoot, 'dist', 'src', 'sys', 'fault.js')).href;

/** Run a script that calls fault() for each kind in `calls`, printing each call's index first. */
function callFaults(spec: string | undefined, calls: string[]) {
  const body = `const { fault } = await import(${JSON.stringify(faultModule)});
const calls = ${JSON.stringify(calls)};
for (let i = 0; i < calls.length; i++) { process.stdout.write(i + ' '); fault(calls[i]); }
process.stdout.write('done');`;
  const env = { ...process.env };
  delete env.STRATA_FAULT;
  if (spec !== undefined) env.STRATA_FAULT = spec;
  return spawnSync(process.execPath, ['--input-type=module', '-e', body], { env, encoding: 'utf8' });
}

test('kills itself at the Nth operation of the named kind, counting no other kind', () => {
  const r = callFaults('rename:3', ['row', 'rename', 'fsync', 'rename', 'row', 'rename', 'rename']);
  assert.equal(r.signal, 'SIGKILL');
  // Index 5 is the third rename: printed before the call, nothing after it.
  assert.equal(r.stdout, '0 1 2 3 4 5 ');
});

test('unset, or N past the last operation: runs to the end', () => {
  for (const spec of [undefined, '', 'fsync:2']) {
    const r = callFaults(spec, ['row', 'fsync', 'rename']);
    assert.equal(r.status, 0, `${spec}: ${r.stderr}`);
    assert.equal(r.stdout, '0 1 2 done');
  }
});

test('a malformed spec is a one-line error before anything runs', () => {
  for (const spec of ['rename', 'rename:0', 'write:2', 'row:-1', 'row:2x']) {
    const r = callFaults(spec, ['row']);
    assert.equal(r.status, 125, spec);
    assert.equal(r.stdout, '', spec);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /STRATA_FAULT/);
  }
});

test('the CLI reaches the hook: a load dies at its second metadata write, and the store still opens', (t) => {
  const root = join(scratch(t), 'root');
  const cmd = (args: string[], env: NodeJS.ProcessEnv) =>
    spawnSync(process.execPath, [strataBin, '--root', root, '--driver', 'vfs', ...args], { env, encoding: 'utf8' });
  const killed = cmd(['load', '-i', corpusImage('busybox.oci.tar')], { ...process.env, STRATA_FAULT: 'row:2' });
  assert.equal(killed.signal, 'SIGKILL', killed.stderr);
  const clean = { ...process.env };
  delete clean.STRATA_FAULT;
  const info = cmd(['info', '--format', 'json'], clean);
  assert.equal(info.status, 0, info.stderr);
  assert.equal(JSON.parse(info.stdout).Images, 0);
});
