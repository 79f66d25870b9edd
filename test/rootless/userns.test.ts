// The user namespace's keeper when /etc/subuid and /etc/subgid change under it: the next
// command replaces it when nothing of the user's runs or is mounted in it, and otherwise keeps
// it and says in one line what to stop first; a user given a first range leaves the single-id
// mapping the same way.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileCleanup } from '../helpers/registry.js';
import { strataBin } from '../helpers/env.js';
import { makeUser, nodeBin, usermod, type TestUser } from '../helpers/rootless.js';
import { processAlive } from '../../src/sys/process.js';
import { runToolSync } from '../../src/sys/run.js';

const files = fileCleanup();
after(files.run);

/** Ranges of the test's own, far above what useradd hands out (usermod only adds while a user's process lives). */
const extraStart = (k: number) => 3_000_000_000 + (process.pid % 100_000) * 4000 + k * 1000;
const extra = (k: number) => `${extraStart(k)}-${extraStart(k) + 999}`;
/** What the namespace maps for extra(k) when it follows a range that ends before `inside`. */
const extraMap = (k: number, inside: number) => ({ inside, outside: extraStart(k), count: 1000 });
const addRange = (user: TestUser, k: number) => usermod(user, ['--add-subuids', extra(k), '--add-subgids', extra(k)]);

interface Seen {
  keeper: string;
  uids: { inside: number; outside: number; count: number }[];
  gids: { inside: number; outside: number; count: number }[];
  stderr: string;
}

/** What `strata info` shows of the mapping, and the keeper that holds it. */
function look(user: TestUser): Seen {
  const r = user.strata(['info', '--format', 'json']);
  assert.equal(r.code, 0, r.stderr);
  const info = JSON.parse(r.stdout) as { IDMappings: { UIDMap: Seen['uids']; GIDMap: Seen['gids'] } };
  return { keeper: readFileSync(`/tmp/strata-run-${user.uid}/userns.pid`, 'utf8').trim(), uids: info.IDMappings.UIDMap, gids: info.IDMappings.GIDMap, stderr: r.stderr };
}

const busyWarning = (what: string) =>
  new RegExp(
    `^time=\\S+ level=warn msg="/etc/subuid or /etc/subgid changed, but strata's user namespace \\(pid \\d+\\) keeps the old mapping while it holds ${what} of yours: ` +
      'stop your containers and unmount what is mounted \\(strata ps, strata stop, strata umount\\), and the next command takes the new ranges up"\\n$',
  );

describe('subordinate ranges changed while the namespace lives', () => {
  test('an idle keeper is replaced; one with a mount or a process in its namespace is kept with a one-line note until they are gone', () => {
    const user = makeUser(files.add, 65536);
    const first = look(user);
    assert.equal(first.uids.length, 2);

    addRange(user, 0);
    const grown = look(user);
    assert.equal(grown.stderr, '');
    assert.notEqual(grown.keeper, first.keeper);
    // Killed, then reaped by whoever inherited it (its maker has exited): wait for that.
    for (let i = 0; i < 100 && processAlive(first.keeper); i++) spawnSync('sleep', ['0.05']);
    assert.equal(processAlive(first.keeper), false);
    assert.deepEqual(grown.uids, [...first.uids, extraMap(0, 1 + 65536)]);
    assert.deepEqual(grown.gids, [...first.gids, extraMap(0, 1 + 65536)]);

    // A container's root mounted in the namespace (an imported one-file image: no registry needed).
    const src = join(user.home, 'tiny');
    mkdirSync(src);
    writeFileSync(join(src, 'hello'), 'hi\n');
    runToolSync('tar', ['-C', src, '-cf', join(user.home, 'tiny.tar'), '.']);
    user.ok(['import', join(user.home, 'tiny.tar'), 'local/tiny:1']);
    user.ok(['create', '--name', 'c1', 'local/tiny:1', 'sh']);
    user.ok(['mount', 'c1']);
    addRange(user, 1);
    const mounted = look(user);
    assert.match(mounted.stderr, busyWarning('1 mount'));
    assert.equal(mounted.keeper, grown.keeper);
    assert.deepEqual(mounted.uids, grown.uids);
    user.ok(['umount', 'c1']);
    const unmounted = look(user);
    assert.equal(unmounted.stderr, '');
    assert.notEqual(unmounted.keeper, grown.keeper);
    assert.deepEqual(unmounted.uids, [...grown.uids, extraMap(1, 1 + 65536 + 1000)]);
    assert.deepEqual(unmounted.gids, [...grown.gids, extraMap(1, 1 + 65536 + 1000)]);

    // A process left running in the namespace (as a container's would be).
    const sleeper = Number(user.ok(['unshare', 'sh', '-c', 'sleep 600 >/dev/null 2>&1 </dev/null & echo $!']).trim());
    addRange(user, 2);
    const running = look(user);
    assert.match(running.stderr, busyWarning('1 process'));
    assert.equal(running.keeper, unmounted.keeper);
    process.kill(sleeper, 'SIGKILL');
    const freed = look(user);
    assert.equal(freed.stderr, '');
    assert.notEqual(freed.keeper, running.keeper);
    assert.deepEqual(freed.uids, [...unmounted.uids, extraMap(2, 1 + 65536 + 2000)]);
    // The container made under the first mapping is still the user's, in the new namespace.
    assert.equal(user.ok(['ps', '-a', '--format', '{{.Names}}']).trim(), 'c1');
    assert.match(user.ok(['unshare', 'sh', '-c', `cat "$(${nodeBin} ${strataBin} mount c1)/hello"`]), /^hi$/m);
  });

  test('a user given a first range leaves the single-id mapping at the next command', () => {
    const user = makeUser(files.add, 0);
    const single = look(user);
    assert.match(single.stderr, /no subordinate ids in \/etc\/subuid and \/etc\/subgid/);
    assert.deepEqual(single.uids, [{ inside: 0, outside: user.uid, count: 1 }]);
    addRange(user, 3);
    const ranged = look(user);
    assert.equal(ranged.stderr, '');
    assert.deepEqual(ranged.uids, [{ inside: 0, outside: user.uid, count: 1 }, extraMap(3, 1)]);
    assert.deepEqual(ranged.gids, [{ inside: 0, outside: user.gid, count: 1 }, extraMap(3, 1)]);
  });
});
