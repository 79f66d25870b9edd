// A killed load or commit leaves nothing half-made that a later command can see, and the same
// operation then succeeds. Several processes on one root at once keep one copy of each layer.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { strataIn } from '../helpers/cli.js';
import { corpusImage, scratch, strataBin } from '../helpers/env.js';

/** Start strata, and SIGKILL it as soon as a half-written layer exists. */
async function killMidway(root: string, args: string[]): Promise<void> {
  const child = spawn(process.execPath, [strataBin, '--root', root, '--driver', 'vfs', ...args], { stdio: 'ignore' });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const layerdb = join(root, 'layerdb');
  for (;;) {
    let names: string[] = [];
    try {
      names = readdirSync(layerdb);
    } catch {
      names = [];
    }
    if (names.some((n) => n.endsWith('.tmp'))) break;
    if (child.exitCode !== null) throw new Error(`strata ${args.join(' ')} finished before it could be killed`);
    await new Promise((r) => setTimeout(r, 5));
  }
  child.kill('SIGKILL');
  await exited;
}

function vfsDirs(root: string): string[] {
  try {
    return readdirSync(join(root, 'vfs', 'dir'));
  } catch {
    return [];
  }
}

test('SIGKILL during load: nothing half-made is visible, the same load then succeeds', async (t) => {
  const root = join(scratch(t), 'root');
  const cli = strataIn(root, 'vfs');
  await killMidway(root, ['load', '-i', corpusImage('nginx.oci.tar')]);
  const info = JSON.parse(cli.ok(['info', '--format', 'json']));
  assert.equal(info.Images, 0);
  // Opening the store removed what the killed process left.
  assert.equal(vfsDirs(root).length, info.Layers);
  assert.deepEqual(readdirSync(join(root, 'layerdb')).filter((n) => n.endsWith('.tmp')), []);
  assert.match(cli.ok(['load', '-i', corpusImage('nginx.oci.tar')]), /Loaded image ID: sha256:/);
  const after = JSON.parse(cli.ok(['info', '--format', 'json']));
  assert.equal(after.Images, 1);
  assert.equal(after.Layers, 7);
  assert.equal(vfsDirs(root).length, 7);
});

test('SIGKILL during commit: no new image or layer, the same commit then succeeds', async (t) => {
  const root = join(scratch(t), 'root');
  const cli = strataIn(root, 'vfs');
  const id = /sha256:[0-9a-f]{64}/.exec(cli.ok(['load', '-i', corpusImage('busybox.oci.tar')]))![0];
  cli.ok(['create', '--name', 'c', id, 'sh']);
  const mnt = cli.ok(['mount', 'c']).trim();
  writeFileSync(join(mnt, 'big'), Buffer.alloc(300 * 1024 * 1024, 1));
  cli.ok(['umount', 'c']);
  const before = vfsDirs(root).length;
  await killMidway(root, ['commit', 'c', 'test/committed']);
  const info = JSON.parse(cli.ok(['info', '--format', 'json']));
  assert.equal(info.Images, 1);
  assert.equal(info.Layers, 1);
  assert.equal(vfsDirs(root).length, before);
  assert.match(cli.ok(['commit', 'c', 'test/committed']), /^sha256:/);
  assert.equal(JSON.parse(cli.ok(['info', '--format', 'json'])).Images, 2);
});

test('two processes loading the same image at once store each layer once', async (t) => {
  const root = join(scratch(t), 'root');
  const cli = strataIn(root, 'vfs');
  cli.ok(['info']); // create the store first
  const run = () =>
    new Promise<number | null>((resolve) => {
      const c = spawn(process.execPath, [strataBin, '--root', root, '--driver', 'vfs', 'load', '-i', corpusImage('app.oci.tar')], { stdio: 'ignore' });
      c.on('exit', (code) => resolve(code));
    });
  const codes = await Promise.all([run(), run()]);
  assert.deepEqual(codes, [0, 0]);
  const info = JSON.parse(cli.ok(['info', '--format', 'json']));
  assert.equal(info.Images, 1);
  assert.equal(info.Layers, 4);
  assert.equal(vfsDirs(root).length, 4);
});
