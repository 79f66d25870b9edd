// A full filesystem under the store root (issue #16): read-only commands still work, and the
// commands that free space (rmi, rm, system prune) can run and do free it; a load that runs
// out of space removes every partial layer before it exits and says how much it needed. Each
// test runs on a small ext4 of its own, torn down whatever happens.
import assert from 'node:assert/strict';
import { closeSync, existsSync, openSync, readdirSync, statfsSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { strataIn } from '../helpers/cli.js';
import { corpusImage } from '../helpers/env.js';
import { makeLoopFs, type LoopFs } from '../helpers/fsimages.js';
import { startRegistry } from '../helpers/registry.js';

function loopFs(t: { after(fn: () => void): void }, sizeMiB: number): LoopFs {
  const fs = makeLoopFs('ext4', sizeMiB);
  t.after(() => fs.teardown());
  process.on('exit', () => fs.teardown());
  return fs;
}

/** Free blocks in bytes (ext4 keeps some of them back even from root: compare, do not test for 0). */
function freeBytes(dir: string): number {
  const st = statfsSync(dir);
  return st.bfree * st.bsize;
}

/** Write to path until the filesystem refuses another byte. */
function fill(path: string): void {
  const fd = openSync(path, 'w');
  try {
    for (const size of [1 << 20, 4096, 512, 1]) {
      const buf = Buffer.alloc(size, 7);
      for (;;) {
        try {
          writeSync(fd, buf);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw err;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
}

/** Files and directories of layers the driver holds (what a failed load must not leave). */
function layerEntries(root: string, driver: string): string[] {
  const dir = driver === 'vfs' ? join(root, 'vfs', 'dir') : join(root, 'overlay2');
  const names = existsSync(dir) ? readdirSync(dir).filter((n) => n !== 'l' && !n.startsWith('.')) : [];
  const links = driver === 'overlay2' && existsSync(join(dir, 'l')) ? readdirSync(join(dir, 'l')) : [];
  const splits = existsSync(join(root, 'layerdb')) ? readdirSync(join(root, 'layerdb')) : [];
  return [...names, ...links.map((l) => `l/${l}`), ...splits.map((s) => `layerdb/${s}`)];
}

for (const driver of ['vfs', 'overlay2']) {
  test(`${driver}: on a full disk images, ps, check work and rmi, rm, system prune free space`, (t) => {
    const fs = loopFs(t, 96);
    const root = join(fs.mountPoint, 'root');
    const cli = strataIn(root, driver);
    cli.ok(['load', '-i', corpusImage('busybox.docker.tar')]); // corpus/busybox:latest
    cli.ok(['load', '-i', corpusImage('app.docker.tar')]); // corpus/app:latest
    cli.ok(['tag', 'corpus/busybox:latest', 'corpus/busybox:second']);
    cli.ok(['create', '--name', 'c1', 'corpus/busybox']);
    cli.ok(['create', '--name', 'c2', 'corpus/busybox']);
    fill(join(fs.mountPoint, 'filler'));
    assert.throws(() => writeFileSync(join(fs.mountPoint, 'one-more'), Buffer.alloc(4096)), { code: 'ENOSPC' });

    // Each read-only command at 100%: none of them may spend the reserve or need a free block.
    const reads: [string[], RegExp][] = [
      [['images'], /corpus\/app/],
      [['ps', '-a'], /\sc1$/m],
      [['check'], /^/],
      [['inspect', 'c1'], /"Name": "\/c1"/],
      [['history', 'corpus/app'], /IMAGE/],
      [['info'], /Storage Driver/],
      [['system', 'df'], /Images/],
    ];
    for (const [args, out] of reads) {
      assert.match(cli.ok(args), out, args.join(' '));
      assert.ok(existsSync(join(root, 'space-reserve')), `${args.join(' ')} left the reserve alone`);
    }

    let free = freeBytes(fs.mountPoint);
    cli.ok(['rmi', 'corpus/app']);
    assert.ok(freeBytes(fs.mountPoint) > free + 10_000_000, 'rmi freed the image layers');
    assert.doesNotMatch(cli.ok(['images']), /corpus\/app/);

    fill(join(fs.mountPoint, 'filler2'));
    free = freeBytes(fs.mountPoint);
    cli.ok(['rm', 'c1']);
    assert.doesNotMatch(cli.ok(['ps', '-a']), /\sc1$/m);
    assert.ok(freeBytes(fs.mountPoint) >= free);

    fill(join(fs.mountPoint, 'filler3'));
    free = freeBytes(fs.mountPoint);
    cli.ok(['system', 'prune', '-a', '-f']);
    assert.ok(freeBytes(fs.mountPoint) > free + 1_000_000, 'prune freed busybox and c2');
    const info = JSON.parse(cli.ok(['info', '--format', 'json']));
    assert.equal(info.Images, 0);
    assert.equal(info.Containers, 0);
    assert.deepEqual(layerEntries(root, driver), []);
  });

  test(`${driver}: a pull that runs out of space leaves no layer behind and says what it needed`, async (t) => {
    const reg = await startRegistry((fn) => t.after(fn));
    await reg.load('nginx', 'latest');
    const fs = loopFs(t, 48);
    const root = join(fs.mountPoint, 'root');
    const cli = strataIn(root, driver);
    cli.ok(['info']);
    const r = cli.run(['pull', `${reg.host}/corpus/nginx:latest`]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /no space left on device under .*: the layers need more than [\d.]+ ?[kMG]?B/);
    assert.deepEqual(layerEntries(root, driver), []);
    const info = JSON.parse(cli.ok(['info', '--format', 'json']));
    assert.equal(info.Images, 0);
    assert.equal(info.Layers, 0);
  });

  test(`${driver}: a load that runs out of space leaves no layer behind and says what it needed`, (t) => {
    const fs = loopFs(t, 48);
    const root = join(fs.mountPoint, 'root');
    const cli = strataIn(root, driver);
    cli.ok(['load', '-i', corpusImage('busybox.oci.tar')]);
    const before = layerEntries(root, driver);
    const r = cli.run(['load', '-i', corpusImage('nginx.oci.tar')]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /no space left on device under .*: the layers need more than [\d.]+ ?[kMG]?B/);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.deepEqual(layerEntries(root, driver), before);
    const info = JSON.parse(cli.ok(['info', '--format', 'json']));
    assert.equal(info.Images, 1);
    assert.equal(info.Layers, 1);
  });
}
