// A killed load or commit leaves nothing half-made that a later command can see, and the same
// operation then succeeds. Several processes on one root at once keep one copy of each layer.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
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
  cli.ok(['create', '--name', 'cx', id, 'sh']);
  const mnt = cli.ok(['mount', 'cx']).trim();
  writeFileSync(join(mnt, 'big'), Buffer.alloc(300 * 1024 * 1024, 1));
  cli.ok(['umount', 'cx']);
  const before = vfsDirs(root).length;
  await killMidway(root, ['commit', 'cx', 'test/committed']);
  const info = JSON.parse(cli.ok(['info', '--format', 'json']));
  assert.equal(info.Images, 1);
  assert.equal(info.Layers, 1);
  assert.equal(vfsDirs(root).length, before);
  assert.match(cli.ok(['commit', 'cx', 'test/committed']), /^sha256:/);
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

/** overlay2 layer dirs and whether every l/ link resolves to one of them. */
function overlayState(root: string): { dirs: string[]; danglingLinks: string[] } {
  const home = join(root, 'overlay2');
  const dirs = readdirSync(home).filter((n) => n !== 'l' && !n.startsWith('.'));
  const danglingLinks = readdirSync(join(home, 'l')).filter((n) => {
    try {
      return !statSync(join(home, 'l', n)).isDirectory();
    } catch {
      return true;
    }
  });
  return { dirs, danglingLinks: danglingLinks.map((n) => `${n} -> ${readlinkSync(join(home, 'l', n))}`) };
}

test('overlay2: SIGKILL at many moments of a load leaves a store every command opens (issue #16)', async (t) => {
  const root = join(scratch(t), 'root');
  const cli = strataIn(root, 'overlay2');
  cli.ok(['info']);
  for (const delay of [60, 150, 250, 400, 600, 850, 1200]) {
    const child = spawn(process.execPath, [strataBin, '--root', root, '--driver', 'overlay2', 'load', '-i', corpusImage('nginx.oci.tar')], { stdio: 'ignore' });
    const exited = new Promise<void>((r) => child.on('exit', () => r()));
    await new Promise((r) => setTimeout(r, delay));
    child.kill('SIGKILL');
    await exited;
    for (const cmd of [['images'], ['ps', '-a'], ['check']]) {
      const r = cli.run(cmd);
      assert.equal(r.code, 0, `after a kill at ${delay} ms, ${cmd.join(' ')}: ${r.stderr}`);
    }
    const info = JSON.parse(cli.ok(['info', '--format', 'json']));
    const state = overlayState(root);
    // A killed load that got as far as its image is whole; otherwise nothing of it is left.
    assert.equal(state.dirs.length, info.Images === 0 ? 0 : 7, `after a kill at ${delay} ms: ${state.dirs.join(' ')}`);
    assert.deepEqual(state.danglingLinks, [], `after a kill at ${delay} ms`);
    if (info.Images > 0) cli.ok(['rmi', '-f', JSON.parse(cli.ok(['images', '--format', 'json']).split('\n')[0]).ID]);
  }
  assert.match(cli.ok(['load', '-i', corpusImage('nginx.oci.tar')]), /Loaded image ID: sha256:/);
  assert.equal(overlayState(root).dirs.length, 7);
});
