// Hostile or broken image archives through `strata load`: a clear one-line error, exit 1, the
// store exactly as it was (no layer rows, no driver data, no tar-split files), and nothing
// written beside the root.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { paddingFor, type TarHeader } from '../../src/archive/tar/header.js';
import { encodeHeader } from '../../src/archive/tar/writer.js';
import { strataIn } from '../helpers/cli.js';
import { corpusImage, scratch } from '../helpers/env.js';
import { diffTrees, snapshotTree } from '../helpers/tree.js';
import { runToolSync } from '../../src/sys/run.js';

const sha = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex');
const base = { mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 1000 };

function tar(entries: [TarHeader, Buffer?][]): Buffer {
  const parts: Buffer[] = [];
  for (const [h, body = Buffer.alloc(0)] of entries) parts.push(encodeHeader({ ...h, size: body.length }), body, Buffer.alloc(paddingFor(body.length)));
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/**
 * An OCI image layout archive with these layers (plain tars, gzipped into blobs); `tamper` may
 * change a blob after its digest is written, `diffIDs` override the config's.
 */
function ociArchive(dir: string, layers: Buffer[], opts: { tamper?: (blobs: Buffer[]) => void; diffIDs?: string[] } = {}): string {
  const layout = join(dir, `layout-${Math.random().toString(36).slice(2)}`);
  mkdirSync(join(layout, 'blobs', 'sha256'), { recursive: true });
  const put = (b: Buffer) => {
    const d = sha(b);
    writeFileSync(join(layout, 'blobs', 'sha256', d.slice(7)), b);
    return d;
  };
  const blobs = layers.map((l) => gzipSync(l));
  const digests = blobs.map((b) => sha(b));
  opts.tamper?.(blobs);
  blobs.forEach((b, i) => writeFileSync(join(layout, 'blobs', 'sha256', digests[i].slice(7)), b));
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: opts.diffIDs ?? layers.map(sha) } }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: put(config), size: config.length },
      layers: blobs.map((b, i) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: digests[i], size: b.length })),
    }),
  );
  const index = {
    schemaVersion: 2,
    manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: put(manifest), size: manifest.length }],
  };
  writeFileSync(join(layout, 'index.json'), JSON.stringify(index));
  writeFileSync(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const file = `${layout}.tar`;
  runToolSync('tar', ['-cf', file, '-C', layout, '.']);
  return file;
}

for (const driver of ['vfs', 'overlay2']) {
  test(`hostile archives through load leave the store as it was (${driver})`, async (t) => {
    const dir = scratch(t);
    const root = join(dir, 'root');
    const victim = join(dir, 'victim');
    mkdirSync(victim);
    writeFileSync(join(victim, 'secret'), 'keep me\n');
    const cli = strataIn(root, driver);
    const busybox = /sha256:[0-9a-f]{64}/.exec(cli.ok(['load', '-i', corpusImage('busybox.oci.tar')]))![0];
    // A diffID the store holds already: load must still read and check the layer it is given.
    const stored = JSON.parse(cli.ok(['inspect', busybox]))[0].RootFS.Layers[0] as string;
    const good = tar([[{ ...base, name: 'ok', type: 'file' }, Buffer.from('fine\n')]]);

    const cases: [string, string, RegExp][] = [
      ['symlink parent then write through it', ociArchive(dir, [good, tar([[{ ...base, name: 'esc', type: 'symlink', linkname: victim, mode: 0o777 }], [{ ...base, name: 'esc/secret', type: 'file' }, Buffer.from('pwned\n')]])]), /./],
      ['../ escape', ociArchive(dir, [good, tar([[{ ...base, name: '../victim/secret', type: 'file' }, Buffer.from('pwned\n')]])]), /climbs above the layer root/],
      ['hardlink to a path outside', ociArchive(dir, [good, tar([[{ ...base, name: 'h', type: 'hardlink', linkname: '../victim/secret' }]])]), /climbs above the layer root|hardlink/],
      ['whiteout escaping', ociArchive(dir, [good, tar([[{ ...base, name: '../victim/.wh.secret', type: 'file' }]])]), /climbs above the layer root|whiteout/],
      // A changed gzip header mtime: the same size, still decompresses, but not the digest.
      ['blob bytes that do not match their digest', ociArchive(dir, [good, good], { tamper: (b) => (b[1][4] ^= 0xff) }), /digest mismatch/],
      ['layer content that does not match its diffID', ociArchive(dir, [good], { diffIDs: [sha(Buffer.from('something else'))] }), /does not match its diffID/],
      ['truncated layer', ociArchive(dir, [good.subarray(0, 700)]), /unexpected end|truncated|diffID/],
      ['garbage layer whose diffID is stored already', ociArchive(dir, [Buffer.from('not a layer at all')], { diffIDs: [stored] }), /does not match its diffID/],
      ['truncated gzip whose diffID is stored already', ociArchive(dir, [good], { diffIDs: [stored], tamper: (b) => (b[0] = b[0].subarray(0, 20)) }), /unexpected end|digest mismatch|diffID/],
    ];
    const before = JSON.parse(cli.ok(['info', '--format', 'json']));
    const victimBefore = await snapshotTree(victim);
    // Driver bookkeeping files (overlay2's .mountrefs.lock) are not layer data.
    const listing = () => ({
      driver: readdirSync(join(root, driver)).filter((n) => !n.startsWith('.')).sort(),
      layerdb: readdirSync(join(root, 'layerdb')).sort(),
    });
    const filesBefore = listing();
    for (const [name, file, message] of cases) {
      const r = cli.run(['load', '-i', file]);
      if (name.startsWith('symlink parent')) {
        // Docker confines the write inside the root (the symlink is re-resolved there): the
        // load may succeed, but the victim must not change. Remove what it loaded.
        if (r.code === 0) {
          const id = /sha256:[0-9a-f]{64}/.exec(r.stdout)![0];
          cli.ok(['rmi', id]);
        }
      } else {
        assert.equal(r.code, 1, `${name}: exit code (stderr: ${r.stderr})`);
        assert.equal(r.stderr.trim().split('\n').length, 1, `${name}: one line: ${r.stderr}`);
        assert.match(r.stderr, message, name);
      }
      assert.deepEqual(diffTrees(await snapshotTree(victim), victimBefore), [], `${name}: victim changed`);
      const after = JSON.parse(cli.ok(['info', '--format', 'json']));
      assert.equal(after.Layers, before.Layers, `${name}: layers`);
      assert.equal(after.Images, before.Images, `${name}: images`);
      assert.deepEqual(listing(), filesBefore, `${name}: driver data or tar-split files left behind`);
    }
    assert.deepEqual(readdirSync(dir).filter((n) => !n.startsWith('layout-')).sort(), ['root', 'victim']);
  });
}
