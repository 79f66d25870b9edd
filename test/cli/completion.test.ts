// Shell completion as a user gets it: real bash sources `strata completion bash` and calls the
// completion function the way bash does at a TAB press, over a vfs store made for the test.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { strataIn } from '../helpers/cli.js';
import { scratch, strataBin } from '../helpers/env.js';

/** A store with two images (one with two names) and two containers; `strata` on a PATH dir. */
function prepare(t: { after(fn: () => void): void }) {
  const dir = scratch(t);
  const root = join(dir, 'root');
  mkdirSync(join(dir, 'rootfs', 'etc'), { recursive: true });
  writeFileSync(join(dir, 'rootfs', 'etc', 'hello'), 'hi\n');
  execFileSync('tar', ['-C', join(dir, 'rootfs'), '-cf', join(dir, 'rootfs.tar'), '.']);
  const cli = strataIn(root, 'vfs');
  cli.ok(['import', join(dir, 'rootfs.tar'), 'demo/busybox:1.0']);
  cli.ok(['tag', 'demo/busybox:1.0', 'other:2']);
  cli.ok(['import', join(dir, 'rootfs.tar'), 'registry.example:5000/team/web:3']);
  cli.ok(['create', '--name', 'web1', 'demo/busybox:1.0', 'true']);
  cli.ok(['create', '--name', 'worker', 'other:2', 'true']);
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  symlinkSync(strataBin, join(bin, 'strata'));
  return { root, bin };
}

/** What bash offers for LINE with the cursor at its end (COMPREPLY, sorted). */
function bashComplete(env: { root: string; bin: string }, line: string, script = 'source <(strata completion bash)'): string[] {
  const words = line.split(/\s+/);
  const program = `${script}
COMP_LINE="$1"; COMP_POINT=\${#1}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}
spec=$(complete -p strata) || exit 3
fn=\${spec##*-F }; fn=\${fn%% *}
"$fn" strata "\${COMP_WORDS[COMP_CWORD]}" "\${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\\n' "\${COMPREPLY[@]}"`;
  const r = spawnSync('bash', ['-c', program, 'bash', line], {
    env: { PATH: `${env.bin}:${process.env.PATH}`, STRATA_ROOT: env.root, HOME: env.root },
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split('\n').filter(Boolean).sort();
}

test('bash completes commands, flags, image and container names from the store', async (t) => {
  const env = prepare(t);
  const c = (line: string) => bashComplete(env, line);

  assert.deepEqual(c('strata i'), ['image', 'images', 'import', 'info', 'inspect']);
  assert.ok(c('strata ').includes('completion'));
  assert.ok(!c('strata ').some((w) => w.startsWith('__')), 'the hidden __complete stays hidden');
  assert.deepEqual(c('strata system p'), ['prune']);
  assert.deepEqual(c('strata help sys'), ['system']);
  assert.deepEqual(c('strata help system '), ['df', 'prune']);
  // flags of the command, and values of a flag with choices
  assert.deepEqual(c('strata rmi -'), ['--force', '--help', '-f', '-h']);
  assert.deepEqual(c('strata --log-level w'), ['warn']);
  assert.deepEqual(c('strata save --format o'), ['oci', 'oci-archive']);
  // image names as `images` prints them; bash replaces only what follows a ':' or '='
  assert.deepEqual(c('strata rmi '), ['demo/busybox:1.0', 'other:2', 'registry.example:5000/team/web:3']);
  assert.deepEqual(c('strata rmi demo/busybox:'), ['1.0']);
  assert.deepEqual(c('strata tag registry.example:5000/t'), ['5000/team/web:3']);
  assert.deepEqual(c('strata --log-level=e'), ['error']);
  assert.deepEqual(c('strata create --name x o'), ['other:2']);
  // container names; both kinds where both fit
  assert.deepEqual(c('strata rm '), ['web1', 'worker']);
  assert.deepEqual(c('strata diff w'), ['web1', 'worker']);
  assert.deepEqual(c('strata commit web1 o'), ['other:2']);
  assert.deepEqual(c('strata inspect w'), ['web1', 'worker']);
  assert.deepEqual(c('strata inspect web1 d'), ['demo/busybox:1.0']);
  // a file argument gets nothing from strata: `complete -o default` falls back to file names
  assert.deepEqual(c('strata load -i '), []);
  assert.match(execFileSync('bash', ['-c', 'source <(strata completion bash); complete -p strata'], { env: { PATH: `${env.bin}:${process.env.PATH}` }, encoding: 'utf8' }), /complete -o default -F _strata strata/);
  // --root among the words points at another store: an empty one has no names
  assert.deepEqual(c(`strata --root ${join(env.root, 'elsewhere')} rmi `), []);
  assert.deepEqual(c(`strata --root=${env.root} rm wo`), ['worker']);
});

test('completion is read-only and leaves a missing root alone', (t) => {
  const env = prepare(t);
  const missing = join(env.root, 'never-made');
  const r = spawnSync(process.execPath, [strataBin, '--root', missing, '__complete', '--', 'rmi', ''], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, '');
  assert.equal(spawnSync('test', ['-e', missing]).status, 1, 'the root was not created');
});

test('completion scripts for every shell, and a one-line error for another', (t) => {
  const env = prepare(t);
  const cli = strataIn(env.root, 'vfs');
  assert.match(cli.ok(['completion', 'zsh']), /^#compdef strata\n[\s\S]*compdef _strata strata/);
  assert.match(cli.ok(['completion', 'fish']), /complete -c strata .*__complete|__complete[\s\S]*complete -c strata/);
  const r = cli.run(['completion', 'tcsh']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /'tcsh' is invalid for argument 'shell'. Allowed choices are bash, zsh, fish/);
  assert.equal(r.stdout, '');
});
