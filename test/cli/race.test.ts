// Several strata processes at once on one root and one shared set of names, doing mixed
// load/create/mount/diff/commit/rm/rmi/prune: every command either succeeds or refuses with a
// clean domain error (no such image or container, conflict, in use), never a layer-state or
// filesystem error, and `check` finds the store sound afterwards.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { MNT_DETACH, umount2 } from '../../src/sys/linux.js';
import { mountsUnder } from '../../src/sys/mountinfo.js';
import { strataIn } from '../helpers/cli.js';
import { corpusImage, scratch, strataBin } from '../helpers/env.js';

const WORKERS = 6;
const SECONDS = 20;
const ARCHIVES = ['busybox.oci.tar', 'xattr.oci.tar'];
const NAMES = ['c0', 'c1', 'c2'];

/** The refusals a racing command may end with: the thing is gone, or another holds it. */
const DOMAIN = [/^Error: No such (image|container): /, /^Error: conflict: unable to /, /^Error: Conflict\. The container name /];

function run(root: string, driver: string, args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [strataBin, '--root', root, '--driver', driver, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('close', (code) => resolve({ code: code ?? 128, stderr }));
  });
}

function pick<T>(xs: T[]): T {
  return xs[Math.floor(Math.random() * xs.length)];
}

for (const driver of ['vfs', 'overlay2']) {
  test(`${driver}: ${WORKERS} processes racing load/create/mount/diff/commit/rm/rmi/prune end in results or clean refusals`, async (t) => {
    let root = '';
    t.after(() => {
      if (root) for (const mp of mountsUnder(root)) umount2(mp, MNT_DETACH);
    });
    root = join(scratch(t), 'root');
    const cli = strataIn(root, driver);
    const images = ARCHIVES.map((a) => /sha256:[0-9a-f]{64}/.exec(cli.ok(['load', '-i', corpusImage(a)]))![0]);
    const ops: (() => string[][])[] = [
      () => [['load', '-i', corpusImage(pick(ARCHIVES))]],
      () => [['create', '--name', pick(NAMES), pick(images)]],
      () => [['create', '--name', pick(NAMES), pick(images)]],
      () => {
        const c = pick(NAMES);
        return [['mount', c], ['umount', c]];
      },
      () => [['diff', pick(NAMES)]],
      () => {
        const c = pick(NAMES);
        return [['commit', c, `test/${c}`]];
      },
      () => [['rm', '-f', pick(NAMES)]],
      () => [['rmi', pick([...images, ...NAMES.map((c) => `test/${c}`)])]],
      () => [['system', 'prune', '-f', ...(Math.random() < 0.5 ? ['-a'] : [])]],
    ];
    const failures: string[] = [];
    const counts = { ok: 0, refused: 0 };
    const refusals = new Map<string, number>();
    const deadline = Date.now() + SECONDS * 1000;
    const worker = async () => {
      while (Date.now() < deadline && failures.length === 0) {
        for (const args of pick(ops)()) {
          const r = await run(root, driver, args);
          if (r.code === 0) {
            counts.ok++;
            continue;
          }
          const line = r.stderr.trim();
          if (!line.includes('\n') && DOMAIN.some((re) => re.test(line))) {
            counts.refused++;
            const kind = `${args[0]}: ${line.replace(/[0-9a-f]{12,}/g, '…').replace(/: \S+$/, '')}`;
            refusals.set(kind, (refusals.get(kind) ?? 0) + 1);
            break;
          }
          failures.push(`strata ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
          break;
        }
      }
    };
    await Promise.all(Array.from({ length: WORKERS }, worker));
    t.diagnostic(`${counts.ok} commands succeeded, ${counts.refused} refused: ${JSON.stringify([...refusals])}`);
    assert.deepEqual(failures, []);
    // How many run depends on the machine's load; some must have done something.
    assert.ok(counts.ok > 0);
    // Every layer a racing command released or left behind is gone by the time `check` opens
    // the store: nothing for it to report.
    assert.equal(cli.ok(['check']).trim(), 'no problems found');
    // And the store still works from there.
    cli.ok(['system', 'prune', '-f', '-a']);
    cli.ok(['load', '-i', corpusImage('busybox.oci.tar')]);
    assert.equal(cli.ok(['check', '--verify']).trim(), 'no problems found');
  });
}
