// OomWatch over the real /dev/kmsg: records of its cgroup logged before the watch opened do not
// count, those logged after do, and opening a watch reads none of the kernel log's backlog
// (strace counts the reads of /dev/kmsg). The OOM killer itself is in state.test.ts.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { OomWatch } from '../../src/runtime/oom.js';
import { repoRoot, scratch } from '../helpers/env.js';

/** A record in the kernel log naming cgroup path as an OOM kill's victim would (root may write /dev/kmsg). */
function logRecord(path: string): void {
  writeFileSync('/dev/kmsg', `strata oom test: task_memcg=${path},task=none\n`);
}

test('records of the cgroup count only when logged after the watch opened', () => {
  const path = `/strata-oom-test-${randomBytes(6).toString('hex')}`;
  logRecord(path);
  const watch = OomWatch.open(path);
  assert.ok(watch, '/dev/kmsg cannot be read');
  assert.equal(watch.finish(), false);

  const again = OomWatch.open(path)!;
  logRecord(`${path}-other`); // another cgroup whose name starts with this one's
  assert.equal(again.finish(), false);

  const third = OomWatch.open(path)!;
  logRecord(path);
  assert.equal(third.finish(), true);
});

test('opening a watch reads nothing of the kernel log', (t) => {
  const strace = ['/usr/bin/strace', '/bin/strace'].find((p) => existsSync(p));
  if (!strace) return t.skip('strace is not installed');
  const log = join(scratch(t), 'trace');
  const mod = join(repoRoot, 'dist', 'src', 'runtime', 'oom.js');
  // The watch stays open until exit: only the open's own reads show.
  const script = `import { OomWatch } from ${JSON.stringify(mod)}; if (!OomWatch.open('/strata-oom-none')) process.exit(3);`;
  logRecord('/strata-oom-backlog'); // at least one record to skip
  const r = spawnSync(strace, ['-f', '-qq', '-e', 'trace=openat,read', '-o', log, process.execPath, '--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const lines = readFileSync(log, 'utf8').split('\n');
  const at = lines.findIndex((l) => /openat\(AT_FDCWD, "\/dev\/kmsg", [^)]*\) = \d+$/.test(l));
  assert.ok(at >= 0, 'the watch did not open /dev/kmsg');
  const fd = /= (\d+)$/.exec(lines[at]!)![1];
  assert.deepEqual(lines.slice(at).filter((l) => new RegExp(`\\bread\\(${fd},`).test(l)), []);
});
