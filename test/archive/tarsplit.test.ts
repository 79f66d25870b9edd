// Tar-split must rebuild every layer tar byte for byte from the extracted files.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync, readFileSync, symlinkSync, writeFileSync, linkSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import { createGunzip } from 'node:zlib';
import { TarSplitRecorder, assembleLayer } from '../../src/archive/tarsplit.js';
import { corpusImage, scratch } from '../helpers/env.js';
import { runToolSync } from '../../src/sys/run.js';

async function sha(stream: NodeJS.ReadableStream): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of stream) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Record a tar's split while GNU tar extracts it, then rebuild it from the extracted files. */
async function roundTrip(t: { after(fn: () => void): void }, tarFile: string, gz = false): Promise<void> {
  const dir = scratch(t);
  const root = join(dir, 'root');
  mkdirSync(root);
  const split = join(dir, 'split.gz');
  const rec = new TarSplitRecorder(split);
  // The recorder passes the bytes on unchanged; GNU tar extracts exactly what it saw.
  const copy = join(dir, 'copy.tar');
  const src = createReadStream(tarFile);
  if (gz) await pipeline(src, createGunzip(), rec, createWriteStream(copy));
  else await pipeline(src, rec, createWriteStream(copy));
  await rec.finish();
  runToolSync('tar', ['-xpf', copy, '-C', root, '--xattrs', '--xattrs-include=*', '--numeric-owner']);
  const want = createHash('sha256').update(readFileSync(copy)).digest('hex');
  const got = await sha(assembleLayer(split, root));
  assert.equal(got, want);
}

test('tar-split rebuilds GNU tar archives in pax, gnu and ustar formats byte for byte', async (t) => {
  const dir = scratch(t);
  const src = join(dir, 'src');
  mkdirSync(join(src, 'd', 'x'.repeat(120)), { recursive: true });
  writeFileSync(join(src, 'd', 'x'.repeat(120), 'y'.repeat(150)), 'long path content\n');
  writeFileSync(join(src, 'file'), Buffer.alloc(3 * 1024 * 1024 + 17, 7));
  writeFileSync(join(src, 'empty'), '');
  linkSync(join(src, 'file'), join(src, 'hardlink'));
  symlinkSync('file', join(src, 'symlink'));
  writeFileSync(join(src, Buffer.from('caf\xe9', 'latin1').toString('latin1')), 'latin\n');
  writeFileSync(join(src, 'sparse'), 'x');
  truncateSync(join(src, 'sparse'), 5 * 1024 * 1024);
  for (const format of ['pax', 'gnu', 'ustar']) {
    const tarFile = join(dir, `${format}.tar`);
    const args = ['-cf', tarFile, '-C', src, `--format=${format}`, '.'];
    if (format === 'ustar') args.splice(4, 0, '--exclude', './d');
    runToolSync('tar', args);
    await roundTrip(t, tarFile);
  }
});

test('tar-split rebuilds every layer of the corpus nginx image', async (t) => {
  const dir = scratch(t);
  runToolSync('tar', ['-xf', corpusImage('nginx.oci.tar'), '-C', dir]);
  const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8'));
  const blob = (d: string) => join(dir, 'blobs', 'sha256', d.replace('sha256:', ''));
  const manifest = JSON.parse(readFileSync(blob(index.manifests[0].digest), 'utf8'));
  for (const layer of manifest.layers) await roundTrip(t, blob(layer.digest), true);
});
