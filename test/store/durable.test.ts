// An image layer is recorded complete only after its files and tar-split reached storage: a
// power cut must not leave a complete row over empty or truncated files. Seen through strace
// of a real `load`: after the last write to any file of the root other than the database, a
// syncfs(2) of the root's filesystem comes before the database's last write (the complete
// rows). vfs stores layers one after another, overlay2 extracts them in parallel and marks
// them complete together; both are checked.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { strataIn } from '../helpers/cli.js';
import { corpusImage, scratch } from '../helpers/env.js';
import { overlay2Available } from '../helpers/registry.js';

const strace = ['/usr/bin/strace', '/bin/strace'].find((p) => existsSync(p));
const WRITES = 'write,pwrite64,writev,pwritev,pwritev2,copy_file_range,ftruncate,fallocate';

/** Indexes, in trace order, of the calls of interest on files under root (strace -y names each fd). */
function trace(log: string, root: string) {
  const lines = readFileSync(log, 'utf8').split('\n');
  const data: number[] = [];
  const db: number[] = [];
  const syncs: number[] = [];
  const fdPath = /^\s*(?:\d+\s+)?(\w+)\(\d+<([^>]*)>/;
  lines.forEach((line, i) => {
    const m = fdPath.exec(line);
    if (!m || !m[2]!.startsWith(`${root}/`) && m[2] !== root) return;
    const [, call, path] = m;
    if (call === 'syncfs') syncs.push(i);
    else if (/\/strata\.db(-wal|-journal)?$/.test(path!)) db.push(i);
    else data.push(i);
  });
  return { data, db, syncs };
}

for (const driver of ['vfs', 'overlay2']) {
  test(`${driver}: a loaded image's layer files are flushed to storage before they are recorded complete`, async (t) => {
    if (!strace) return t.skip('strace is not installed');
    if (driver === 'overlay2' && !(await overlay2Available())) return t.skip('overlay2 is not usable here');
    const dir = scratch(t);
    const root = join(dir, 'root');
    const cli = strataIn(root, driver);
    cli.ok(['info']);
    const log = join(dir, 'trace');
    const r = spawnSync(strace, ['-f', '-qq', '-y', '-e', `trace=syncfs,${WRITES}`, '-o', log, ...cli.argv, 'load', '-i', corpusImage('app.oci.tar')], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const { data, db, syncs } = trace(log, root);
    assert.ok(data.length > 100, `${data.length} writes of layer files seen`);
    const lastData = Math.max(...data);
    const sync = syncs.find((i) => i > lastData);
    assert.ok(sync !== undefined, 'no syncfs after the last layer file write');
    assert.ok(Math.max(...db) > sync, 'the database was not written after the syncfs');
    assert.equal(cli.ok(['images', '-q']).trim().split('\n').length, 1);
  });
}
