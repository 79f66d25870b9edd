import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync, readFileSync, readdirSync, symlinkSync, linkSync, writeFileSync, openSync, writeSync, closeSync, ftruncateSync, statSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import tarStream from 'tar-stream';
import { compress, decompress, detectCompression } from '../../src/archive/compression.js';
import { fsPath, nameToBytes, bytesToName, type TarHeader } from '../../src/archive/tar/header.js';
import { readTar } from '../../src/archive/tar/reader.js';
import { TarWriter } from '../../src/archive/tar/writer.js';
import { mknod, readXattrs, lsetxattr } from '../../src/sys/linux.js';
import { imagesDir, scratch } from '../helpers/env.js';
import { collect, gnuList, listFile, ourList } from './tarfixtures.js';
import { runToolSync } from '../../src/sys/run.js';

const LATIN1 = bytesToName(Buffer.from('caf\xe9-latin1', 'latin1'));

/** A source tree with every entry type and the awkward cases. */
function makeTree(dir: string): string {
  const src = join(dir, 'src');
  mkdirSync(join(src, 'sub', 'deeper'), { recursive: true });
  writeFileSync(join(src, 'file'), 'hello\n');
  writeFileSync(join(src, 'sub', 'deeper', 'x'), Buffer.alloc(70000, 7));
  writeFileSync(join(src, 'empty'), '');
  const long = 'n'.repeat(120);
  const longDir = join(src, 'd'.repeat(200));
  mkdirSync(longDir);
  writeFileSync(join(longDir, long), 'long\n');
  symlinkSync('file', join(src, 'sym'));
  symlinkSync('t'.repeat(150), join(src, 'longsym'));
  linkSync(join(src, 'file'), join(src, 'hard'));
  mknod(join(src, 'fifo'), 0o010644);
  mknod(join(src, 'chr'), 0o020600, (1 << 8) | 3);
  mknod(join(src, 'blk'), 0o060600, (7 << 8) | 7);
  writeFileSync(join(src, 'ünïcødé'), 'utf8\n');
  writeFileSync(fsPath(join(src, LATIN1)), 'latin1\n');
  writeFileSync(join(src, 'suid'), 'x');
  runToolSync('chmod', ['4755', join(src, 'suid')]);
  runToolSync('chmod', ['1777', join(src, 'sub')]);
  runToolSync('chown', ['1234:5678', join(src, 'file')]);
  lsetxattr(join(src, 'empty'), 'user.bin', Buffer.from([0, 1, 2, 0xff, 0xfe, 0x80, 0x0a]));
  lsetxattr(join(src, 'empty'), 'user.text', Buffer.from('plain text'));
  return src;
}

function sortByName<T extends { name: string }>(a: T[]): T[] {
  return [...a].sort((x, y) => Buffer.compare(nameToBytes(x.name), nameToBytes(y.name)));
}

for (const format of ['gnu', 'pax', 'ustar', 'oldgnu']) {
  test(`reads GNU tar --format=${format} like tar -tvf`, async (t) => {
    const dir = scratch(t);
    const src = makeTree(dir);
    const file = join(dir, 'a.tar');
    const args = [`--format=${format}`, '-cf', file, '-C', src, '.'];
    if (format === 'ustar') {
      // ustar cannot hold the 320-byte path or the 150-byte link: drop them for this format.
      runToolSync('rm', ['-rf', join(src, 'd'.repeat(200)), join(src, 'longsym')]);
    }
    runToolSync('tar', format === 'pax' ? ['--xattrs', "--xattrs-include=*", ...args] : args);
    const ours = await listFile(file, true);
    const theirs = gnuList(file);
    assert.deepEqual(
      ours.map(({ sha256: _s, ...rest }) => rest),
      theirs,
    );
    const byName = new Map(ours.map((e) => [e.name, e]));
    assert.equal(byName.get('file')!.sha256, createHash('sha256').update('hello\n').digest('hex'));
    assert.equal(byName.get('sub/deeper/x')!.sha256, createHash('sha256').update(Buffer.alloc(70000, 7)).digest('hex'));
    assert.ok(byName.has(LATIN1), 'latin-1 name kept');
    assert.equal(byName.get('fifo')!.type, 'p');
    assert.equal(byName.get('chr')!.dev, '1,3');
  });
}

test('reads pax SCHILY.xattr records byte-exact', async (t) => {
  const dir = scratch(t);
  const src = makeTree(dir);
  const file = join(dir, 'x.tar');
  runToolSync('tar', ['--format=pax', '--xattrs', '--xattrs-include=*', '-cf', file, '-C', src, 'empty']);
  const entries = [];
  for await (const e of readTar(createReadStream(file))) entries.push(e.header);
  assert.equal(entries.length, 1);
  assert.deepEqual(entries[0]!.xattrs!.get('user.bin'), Buffer.from([0, 1, 2, 0xff, 0xfe, 0x80, 0x0a]));
  assert.deepEqual(entries[0]!.xattrs!.get('user.text'), Buffer.from('plain text'));
});

test('reads big uids: base-256 (gnu) and pax records', async (t) => {
  const dir = scratch(t);
  const src = makeTree(dir);
  for (const format of ['gnu', 'pax']) {
    const file = join(dir, `${format}.tar`);
    runToolSync('tar', [`--format=${format}`, '--owner=x:4000000000', '--group=y:3000000000', '-cf', file, '-C', src, 'file']);
    const [e] = await listFile(file);
    assert.equal(e!.uid, 4000000000);
    assert.equal(e!.gid, 3000000000);
    assert.deepEqual(await listFile(file), gnuList(file));
  }
});

test('reads sparse files: GNU old sparse, pax 0.0, 0.1 and 1.0', async (t) => {
  const dir = scratch(t);
  const src = join(dir, 'src');
  mkdirSync(src);
  const f = join(src, 'sparse');
  const fd = openSync(f, 'w');
  writeSync(fd, Buffer.from('BEGIN'), 0, 5, 0);
  writeSync(fd, Buffer.alloc(10000, 0x41), 0, 10000, 3 << 20);
  writeSync(fd, Buffer.from('MIDDLE'), 0, 6, 7 << 20);
  ftruncateSync(fd, 12 << 20);
  closeSync(fd);
  const want = createHash('sha256').update(readFileSync(f)).digest('hex');
  const variants: [string, string[]][] = [
    ['gnu', ['--format=gnu']],
    ['pax-1.0', ['--format=pax']],
    ['pax-0.1', ['--format=pax', '--sparse-version=0.1']],
    ['pax-0.0', ['--format=pax', '--sparse-version=0.0']],
  ];
  for (const [label, args] of variants) {
    const file = join(dir, `${label}.tar`);
    runToolSync('tar', [...args, '--sparse', '-cf', file, '-C', src, 'sparse']);
    assert.ok(statSync(file).size < 1 << 20, `${label}: tar really is sparse`);
    const [e] = await listFile(file, true);
    assert.equal(e!.name, 'sparse', label);
    assert.equal(e!.size, 12 << 20, label);
    assert.equal(e!.sha256, want, label);
  }
});

test('errors: checksum, truncation, unknown type, garbage', async () => {
  const w = new TarWriter();
  const done = (async () => {
    await w.add({ name: 'f', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 3000, mtime: 0 }, Buffer.alloc(3000, 1));
    await w.finish();
  })();
  const good = await collect(w.stream);
  await done;
  const bad = Buffer.from(good);
  bad[10] ^= 1;
  await assert.rejects(ourList(Readable.from([bad])), /checksum mismatch/);
  await assert.rejects(ourList(Readable.from([good.subarray(0, 2000)])), /unexpected end of layer archive in entry "f"/);
  await assert.rejects(ourList(Readable.from([good.subarray(0, 300)])), /unexpected end of layer archive/);
  const odd = Buffer.from(good.subarray(0, 512));
  odd[156] = 'Z'.charCodeAt(0);
  odd.write('        ', 148, 'latin1');
  let sum = 0;
  for (const b of odd) sum += b;
  odd.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  await assert.rejects(ourList(Readable.from([odd, Buffer.alloc(1024)])), /unsupported tar entry type "Z"/);
  await assert.rejects(ourList(Readable.from([Buffer.alloc(4096, 0x61)])), /checksum mismatch|invalid octal/);
});

test('drains the input after the end-of-archive marker', async () => {
  const w = new TarWriter();
  const p = (async () => {
    await w.add({ name: 'a', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 1, mtime: 0 }, Buffer.from('a'));
    await w.finish();
  })();
  const tar = await collect(w.stream);
  await p;
  let seen = 0;
  const input = Readable.from([tar, Buffer.alloc(10240)]).on('data', (c: Buffer) => (seen += c.length));
  for await (const e of readTar(input)) void e; // bodies deliberately left unread: the reader skips them
  assert.equal(seen, tar.length + 10240);
});

function sampleHeaders(): [TarHeader, Buffer | undefined][] {
  const cap = Buffer.from('0100000200200000000000000000000000000000', 'hex');
  return [
    [{ name: '.', type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 1000 }, undefined],
    [{ name: 'dir', type: 'dir', mode: 0o1777, uid: 1, gid: 2, size: 0, mtime: 1000 }, undefined],
    [{ name: 'dir/file', type: 'file', mode: 0o4755, uid: 1000, gid: 1000, uname: 'user', gname: 'grp', size: 5, mtime: 1700000000 }, Buffer.from('hello')],
    [{ name: 'dir/' + 'x'.repeat(90) + '/' + 'y'.repeat(90), type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 0 }, undefined],
    [{ name: 'z'.repeat(250) + '/' + 'w'.repeat(200), type: 'file', mode: 0o644, uid: 0, gid: 0, size: 2, mtime: 0 }, Buffer.from('ok')],
    [{ name: 'ünïcødé', type: 'file', mode: 0o600, uid: 0, gid: 0, size: 0, mtime: 5 }, undefined],
    [{ name: LATIN1, type: 'file', mode: 0o600, uid: 0, gid: 0, size: 0, mtime: 5 }, undefined],
    [{ name: 'bigid', type: 'file', mode: 0o600, uid: 4000000000, gid: 3000000000, size: 0, mtime: 5.25 }, undefined],
    [{ name: 'cap', type: 'file', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 5, xattrs: new Map([['security.capability', cap], ['user.bin', Buffer.from([0, 0xff, 0x80, 10])]]) }, undefined],
    [{ name: 'link', type: 'symlink', mode: 0o777, uid: 0, gid: 0, size: 0, mtime: 5, linkname: '../' + 'q'.repeat(200) }, undefined],
    [{ name: 'hard', type: 'hardlink', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 5, linkname: 'dir/file' }, undefined],
    [{ name: 'chr', type: 'char', mode: 0o666, uid: 0, gid: 0, size: 0, mtime: 5, devmajor: 1, devminor: 3 }, undefined],
    [{ name: 'blk', type: 'block', mode: 0o660, uid: 0, gid: 6, size: 0, mtime: 5, devmajor: 7, devminor: 7 }, undefined],
    [{ name: 'fifo', type: 'fifo', mode: 0o640, uid: 0, gid: 0, size: 0, mtime: 5 }, undefined],
    [{ name: 'big', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 3 << 20, mtime: 5 }, Buffer.alloc(3 << 20, 0x5a)],
  ];
}

async function writeSample(): Promise<Buffer> {
  const w = new TarWriter();
  const p = (async () => {
    for (const [h, b] of sampleHeaders()) await w.add(h, b === undefined ? undefined : Readable.from([b]));
    await w.finish();
  })();
  const out = await collect(w.stream);
  await p;
  return out;
}

test('writer: our reader reads back every field', async () => {
  const tar = await writeSample();
  assert.equal(tar.length % 512, 0);
  const back: TarHeader[] = [];
  for await (const e of readTar(Readable.from([tar]))) {
    back.push(e.header);
    await collect(e.body);
  }
  const want = sampleHeaders().map(([h]) => h);
  assert.equal(back.length, want.length);
  for (let i = 0; i < want.length; i++) {
    const { uname: _u, gname: _g, ...w } = want[i]!;
    const { uname: _u2, gname: _g2, ...b } = back[i]!;
    assert.deepEqual(b, w, `entry ${want[i]!.name}`);
  }
  assert.deepEqual(await writeSample(), tar, 'deterministic');
});

test('writer: GNU tar and tar-stream list and extract it identically', async (t) => {
  const dir = scratch(t);
  const tar = await writeSample();
  const file = join(dir, 'out.tar');
  writeFileSync(file, tar);
  const ours = sortByName(await ourList(Readable.from([tar])));
  assert.deepEqual(sortByName(gnuList(file)), ours);

  // tar-stream
  const extract = tarStream.extract();
  const seen: string[] = [];
  extract.on('entry', (h, stream, next) => {
    seen.push(`${h.name.replace(/\/$/, '')}:${h.type}:${h.uid}:${h.size}`);
    stream.resume();
    stream.on('end', next);
  });
  await pipeline(Readable.from([tar]), extract);
  assert.equal(seen.length, ours.length);
  assert.ok(seen.includes('bigid:file:4000000000:0'));
  assert.ok(seen.includes('big:file:0:3145728'));

  // GNU tar extraction, with the xattrs
  const out = join(dir, 'x');
  mkdirSync(out);
  runToolSync('tar', ['--xattrs', '--xattrs-include=*', '--numeric-owner', '-xpf', file, '-C', out]);
  assert.equal(readFileSync(join(out, 'dir', 'file'), 'utf8'), 'hello');
  assert.equal(statSync(join(out, 'dir', 'file')).mode & 0o7777, 0o4755);
  assert.equal(readFileSync(fsPath(join(out, LATIN1))).length, 0);
  assert.ok(readdirSync(out, { encoding: 'buffer' }).some((n) => n.equals(Buffer.from('caf\xe9-latin1', 'latin1'))));
  const x = readXattrs(join(out, 'cap'));
  assert.deepEqual(x.get('user.bin'), Buffer.from([0, 0xff, 0x80, 10]));
  assert.deepEqual(x.get('security.capability'), Buffer.from('0100000200200000000000000000000000000000', 'hex'));
  assert.equal(statSync(join(out, 'hard')).ino, statSync(join(out, 'dir', 'file')).ino);
});

test('compression: detect, gzip and zstd round trips', async () => {
  const data = Buffer.alloc(3 << 20);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7919) % 251;
  for (const kind of ['gzip', 'zstd'] as const) {
    const packed = await collect(await compress(Readable.from([data]), kind));
    assert.equal(detectCompression(packed), kind);
    const back = await collect(await decompress(Readable.from([packed])));
    assert.ok(back.equals(data), kind);
  }
  assert.equal(detectCompression(Buffer.from('plain')), 'none');
  assert.deepEqual(await collect(await decompress(Readable.from([Buffer.from('ab')]))), Buffer.from('ab'));
});

/** Every layer blob of every OCI corpus image, listed by us and by GNU tar. */
test('reads every layer of every corpus image like tar -tvf', async (t) => {
  const dir = scratch(t);
  const images = readdirSync(imagesDir).filter((f) => f.endsWith('.oci.tar'));
  assert.ok(images.length >= 5);
  let layers = 0;
  for (const img of images) {
    const out = join(dir, img);
    mkdirSync(out);
    runToolSync('tar', ['-xf', join(imagesDir, img), '-C', out]);
    const blobs = join(out, 'blobs', 'sha256');
    for (const digest of readdirSync(blobs)) {
      const file = join(blobs, digest);
      const head = Buffer.alloc(4);
      const fd = openSync(file, 'r');
      const bytesRead = readSync(fd, head);
      closeSync(fd);
      const kind = detectCompression(head.subarray(0, bytesRead));
      if (kind === 'none') continue; // configs and manifests
      const plain = join(dir, 'layer.tar');
      await pipeline(await decompress(createReadStream(file, { highWaterMark: 1 << 20 })), createWriteStream(plain));
      const hash = createHash('sha256');
      const tapped = createReadStream(plain, { highWaterMark: 1 << 20 }).on('data', (c) => hash.update(c as Buffer));
      const ours = await ourList(tapped);
      assert.deepEqual(ours, gnuList(plain), `${img} ${digest}`);
      assert.equal(hash.digest('hex').length, 64);
      layers++;
    }
  }
  assert.ok(layers > 150, `saw ${layers} layers`);
});
