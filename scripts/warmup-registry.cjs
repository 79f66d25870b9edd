'use strict';
// Build-time only: a one-layer image served by a minimal registry on 127.0.0.1, for the layers
// code cache (bin/bundle-loader.cjs) to be made by a real pull: the HTTP client, the digest
// checks, gunzip, tar reading, tar-split and the safe apply all run once, so V8 keeps their
// compiled code and a pull no longer compiles them at every start.
const { createHash } = require('node:crypto');
const { createServer } = require('node:http');
const { gzipSync } = require('node:zlib');

const sha256 = (b) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** One ustar entry (header, body, padding); type '0' file, '5' dir, '1' hardlink, '2' symlink. */
function entry(name, type, body = Buffer.alloc(0), link = '') {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100);
  h.write(type === '5' ? '0000755\0' : '0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(`${body.length.toString(8).padStart(11, '0')}\0`, 124);
  h.write('14000000000\0', 136);
  h.write(' '.repeat(8), 148);
  h.write(type, 156);
  h.write(link, 157, 100);
  h.write('ustar\x0000', 257);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return Buffer.concat([h, body, Buffer.alloc((512 - (body.length % 512)) % 512)]);
}

function image() {
  const tar = Buffer.concat([
    entry('bin/', '5'),
    entry('bin/sh', '0', Buffer.from('#!/bin/true\n')),
    entry('bin/ls', '2', undefined, 'sh'),
    entry('bin/cat', '1', undefined, 'bin/sh'),
    entry('etc/', '5'),
    entry('etc/hostname', '0', Buffer.from('warmup\n')),
    entry('etc/.wh.gone', '0'),
    Buffer.alloc(1024),
  ]);
  const layer = gzipSync(tar);
  const config = Buffer.from(
    JSON.stringify({
      architecture: process.arch === 'x64' ? 'amd64' : process.arch,
      os: 'linux',
      config: { Cmd: ['sh'] },
      rootfs: { type: 'layers', diff_ids: [sha256(tar)] },
    }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(layer), size: layer.length }],
    }),
  );
  return { manifest, blobs: new Map([[sha256(config), config], [sha256(layer), layer]]) };
}

/** Serve the image as `<host>/warmup:latest`; resolves to its reference and a stop function. */
exports.serveWarmupImage = async function serveWarmupImage() {
  const { manifest, blobs } = image();
  const server = createServer((req, res) => {
    const url = req.url ?? '';
    if (url === '/v2/' || url === '/v2') return res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    const m = /^\/v2\/warmup\/(manifests|blobs)\/([^/?]+)$/.exec(url);
    const body = m?.[1] === 'manifests' ? (m[2] === 'latest' || m[2] === sha256(manifest) ? manifest : undefined) : blobs.get(m?.[2] ?? '');
    if (!body) return res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"NOT_FOUND"}]}');
    const type = m[1] === 'manifests' ? 'application/vnd.oci.image.manifest.v1+json' : 'application/octet-stream';
    res.writeHead(200, { 'content-type': type, 'content-length': body.length, 'docker-content-digest': sha256(body) });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    ref: `127.0.0.1:${server.address().port}/warmup:latest`,
    stop: () => new Promise((resolve) => (server.closeAllConnections(), server.close(resolve))),
  };
};
