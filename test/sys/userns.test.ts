// The pieces of the rootless user namespace that need no user of their own: reading id maps and
// subordinate id files, and the mapping planned from them (the user to 0, then each range).
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parseIdMap } from '../../src/sys/rootless.js';
import { plannedMapping, subordinateRanges } from '../../src/sys/userns.js';
import { scratch } from '../helpers/env.js';

describe('user namespace mapping', () => {
  test('parseIdMap reads /proc/PID/uid_map lines', () => {
    assert.deepEqual(parseIdMap('         0       1001          1\n         1     100000      65536\n'), [
      { inside: 0, outside: 1001, count: 1 },
      { inside: 1, outside: 100000, count: 65536 },
    ]);
    assert.deepEqual(parseIdMap(''), []);
  });

  test('subordinateRanges takes the lines of the name or the numeric id, in file order, and skips malformed ones', () => {
    const text = 'alice:100000:65536\nbob:165536:65536\n1000:300000:10\nalice:500000:5\nalice:x:5\nalice:600000:0\n';
    assert.deepEqual(subordinateRanges(text, 'alice', 1000), [
      { start: 100000, count: 65536 },
      { start: 300000, count: 10 },
      { start: 500000, count: 5 },
    ]);
    assert.deepEqual(subordinateRanges(text, 'carol', 1002), []);
  });

  test('plannedMapping: the user to 0, then every range; single-id when uids or gids have none', (t) => {
    const dir = scratch(t);
    const me = userInfo();
    const subuid = join(dir, 'subuid');
    const subgid = join(dir, 'subgid');
    writeFileSync(subuid, `${me.username}:100000:65536\n${me.username}:300000:1000\n`);
    writeFileSync(subgid, `${me.uid}:200000:65536\n`);
    assert.deepEqual(plannedMapping({ subuid, subgid }), {
      uids: [
        { inside: 0, outside: me.uid, count: 1 },
        { inside: 1, outside: 100000, count: 65536 },
        { inside: 65537, outside: 300000, count: 1000 },
      ],
      gids: [
        { inside: 0, outside: me.gid, count: 1 },
        { inside: 1, outside: 200000, count: 65536 },
      ],
      single: false,
    });
    writeFileSync(subgid, 'someone-else:200000:65536\n');
    assert.deepEqual(plannedMapping({ subuid, subgid }), {
      uids: [{ inside: 0, outside: me.uid, count: 1 }],
      gids: [{ inside: 0, outside: me.gid, count: 1 }],
      single: true,
    });
  });
});
