// Copy-up accounting against ground truth, one suite every driver runs (as the driver
// conformance suite does): an image whose base holds a 1 MiB file, a container that appends
// 64 KiB to it, writes a new 12 KiB file, deletes a 1000-byte file and appends to the init
// layer's /etc/hosts. Whole-file drivers must report the 1 MiB copy-up; btrfs the appended
// extents only; every driver the layer each previous version came from. Drivers whose layers
// have a directory of their own (Driver.ownDir) must give the same report from it, unmounted,
// as through the mounted view, and take no mount and write no mount reference for it.
import assert from 'node:assert/strict';
import { appendFileSync, chmodSync, mkdirSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, test } from 'node:test';
import { Store, type CopyUpReport } from '../../src/index.js';
import { strataIn } from '../helpers/cli.js';
import { scratch } from '../helpers/env.js';
import { unmountAllUnder } from '../helpers/mounts.js';
import { importBase, writeBytes } from './build.js';

const N = 1 << 20;
const M = 64 << 10;
const FRESH = 12 << 10;
const GONE = 1000;

const METHODS: Record<string, string> = {
  vfs: 'full-copy',
  overlay2: 'whole-file',
  'fuse-overlayfs': 'whole-file',
  aufs: 'whole-file',
  btrfs: 'extents',
  devicemapper: 'blocks',
  zfs: 'file-bytes',
};

export interface CopyUpSuiteOptions {
  /** Whether the driver can run here; a reason to skip when not. */
  available?: () => Promise<string | null>;
  /** After the store closed: what else the driver leaves to undo (mounts are undone anyway). */
  cleanup?: (root: string) => void;
}

export function copyUpSuite(driver: string, opts: CopyUpSuiteOptions = {}): void {
  const work = scratch(null, `strata-copyup-${driver}-`);
  const root = join(work, 'store');
  after(() => {
    opts.cleanup?.(root);
    unmountAllUnder(work);
  });

  test(`${driver}: copy-ups of an appended file, a new file, a deletion and an init file`, async (t) => {
    const why = (await opts.available?.()) ?? null;
    if (why) return t.skip(why);
    const store = await Store.open({ root, driver });
    let r: CopyUpReport;
    let baseChain: string;
    let text = '';
    let plain = '';
    try {
      await importBase(store, work, 'cu:1', { data: N, gone: GONE, keep: 10 });
      baseChain = (await store.analyze('cu:1')).layers[0].chainId;
      const c = await store.createContainer('cu:1', { name: 'cu', cmd: ['sh'] });
      const mnt = await store.mount(c.id);
      try {
        appendFileSync(join(mnt, 'data'), Buffer.alloc(M, 0x62));
        writeBytes(join(mnt, 'fresh'), FRESH, 0x63);
        rmSync(join(mnt, 'gone'));
        appendFileSync(join(mnt, 'etc', 'hosts'), '127.0.0.1 cu\n');
      } finally {
        await store.unmount(c.id);
      }
      r = await store.copyUps('cu');
      const cli = strataIn(root, driver);
      text = cli.ok(['diff', '-v', 'cu']);
      plain = cli.ok(['diff', 'cu']);
      await store.removeContainer('cu', { force: true });
    } finally {
      await store.driver.cleanup();
      await store.close();
    }

    assert.equal(r.driver, driver);
    assert.equal(r.container.name, 'cu');
    const at = (p: string) => {
      const f = r.files.find((x) => x.path === p);
      assert.ok(f, `${p} missing from ${r.files.map((x) => `${x.kind} ${x.path}`).join(', ')}`);
      return f;
    };
    const data = at('/data');
    assert.equal(data.kind, 'C');
    assert.equal(data.type, 'file');
    assert.deepEqual(data.from && [data.from.chainId, data.from.init], [baseChain, false]);
    assert.equal(data.lowerBytes, N);
    assert.equal(data.bytes, N + M);
    assert.equal(r.method, METHODS[driver]);
    if (r.method === 'extents' || r.method === 'blocks') {
      // Only what the append wrote is the container's own; the 1 MiB stays shared.
      assert.ok(data.copiedBytes >= M && data.copiedBytes < N, `copied ${data.copiedBytes}`);
      assert.equal(data.allocatedBytes, data.copiedBytes);
    } else {
      assert.equal(data.copiedBytes, N);
      assert.ok(data.allocatedBytes >= N + M, `allocated ${data.allocatedBytes}`);
    }

    const fresh = at('/fresh');
    assert.deepEqual([fresh.kind, fresh.type, fresh.from, fresh.bytes, fresh.copiedBytes], ['A', 'file', null, FRESH, 0]);
    assert.ok(fresh.allocatedBytes >= FRESH && fresh.allocatedBytes < FRESH + (64 << 10), `allocated ${fresh.allocatedBytes}`);
    assert.equal(r.newBytes, fresh.allocatedBytes);

    const gone = at('/gone');
    assert.deepEqual([gone.kind, gone.type, gone.from?.chainId, gone.lowerBytes, gone.bytes, gone.copiedBytes], ['D', 'file', baseChain, GONE, 0, 0]);

    const hosts = at('/etc/hosts');
    assert.equal(hosts.kind, 'C');
    assert.equal(hosts.from?.init, true);
    assert.equal(hosts.bytes, hosts.lowerBytes + '127.0.0.1 cu\n'.length);

    assert.equal(r.copiedBytes, r.files.reduce((n, f) => n + f.copiedBytes, 0));
    assert.equal(r.copiedBytes, data.copiedBytes + hosts.copiedBytes);
    // The command says how it measured, and prints the same numbers.
    assert.match(text, new RegExp(`^Driver: ${driver}, ${r.method}: `));
    const short = baseChain.slice(7, 19);
    const copied = r.method === 'extents' || r.method === 'blocks' ? String(data.copiedBytes) : String(N);
    assert.match(text, new RegExp(`^C +/data +${short} +${N} +${N + M} +${copied} +${data.allocatedBytes}$`, 'm'));
    assert.match(text, new RegExp(`^A +/fresh +- +- +${FRESH} +- +${fresh.allocatedBytes}$`, 'm'));
    assert.match(text, new RegExp(`^D +/gone +${short} +${GONE} +- +- +-$`, 'm'));
    assert.match(text, /^C +\/etc\/hosts +init /m);
    assert.match(text, new RegExp(`^Copied up: ${r.copiedBytes} bytes `, 'm'));
    // Without -v, diff is docker's plain list.
    assert.ok(plain.split('\n').includes('C /data') && plain.split('\n').includes('D /gone'), plain);

    // Drivers whose layers share blocks say what the container's layer holds of its own.
    if (['btrfs', 'zfs', 'devicemapper'].includes(driver)) assert.ok(r.layerAllocated && r.layerAllocated.bytes >= M, JSON.stringify(r.layerAllocated));
    else assert.equal(r.layerAllocated, null);
  });

  test(`${driver}: a report read from the layers' own directories equals the mounted one, and mounts nothing`, async (t) => {
    const why = (await opts.available?.()) ?? null;
    if (why) return t.skip(why);
    const store = await Store.open({ root, driver });
    try {
      if (!store.driver.ownDir) return t.skip(`${driver} layers have no directory of their own`);
      await importBase(store, work, 'own:1', { data: N, gone: GONE, keep: 10, 'deep/er/file': 300, 'mode/file': 5 });
      const c = await store.createContainer('own:1', { name: 'own', cmd: ['sh'] });
      const mnt = await store.mount(c.id);
      try {
        appendFileSync(join(mnt, 'data'), Buffer.alloc(M, 0x62));
        writeBytes(join(mnt, 'deep/er/new'), FRESH, 0x63);
        appendFileSync(join(mnt, 'deep/er/file'), 'more');
        mkdirSync(join(mnt, 'empty'));
        symlinkSync('data', join(mnt, 'link'));
        chmodSync(join(mnt, 'mode/file'), 0o600);
        rmSync(join(mnt, 'gone'));
        rmSync(join(mnt, 'keep'));
        appendFileSync(join(mnt, 'etc', 'hosts'), '127.0.0.1 own\n');
      } finally {
        await store.unmount(c.id);
      }
      // The change lists come from the driver's own comparison of mounted trees, kept by the
      // Store once the layers are past the cache's racy window; a report once they are kept
      // must mount nothing and write no mount reference.
      const refs = (): string[] => mountRefs(store.driver.home);
      const gets: string[] = [];
      const listed: string[] = [];
      const get = store.driver.get.bind(store.driver);
      store.driver.get = (id) => {
        gets.push(id);
        return get(id);
      };
      const changes = store.driver.changes.bind(store.driver);
      store.driver.changes = (id, parent) => {
        listed.push(id);
        return changes(id, parent);
      };
      const own = await store.copyUps('own');
      let again: CopyUpReport | undefined;
      let before: string[] = [];
      for (let i = 0; i < 5 && (again === undefined || listed.length > 0); i++) {
        await sleep(300);
        [gets.length, listed.length, before] = [0, 0, refs()];
        again = await store.copyUps('own');
        if (listed.length === 0) t.diagnostic(`change lists kept from report ${i + 2}`);
      }
      assert.equal(listed.length, 0, 'the change lists are kept');
      assert.equal(gets.length, 0, `a report from own directories takes no mount (took ${gets.join(', ')})`);
      assert.deepEqual(refs(), before, 'and writes no mount reference');
      assert.deepEqual(again, own);
      // The same report through the mounted views.
      Object.assign(store.driver, { ownDir: undefined });
      const mounted = await store.copyUps('own');
      assert.ok(gets.includes(c.layer), 'without own directories the layer is mounted');
      assert.deepEqual(own, mounted);
      assert.ok(own.files.some((f) => f.path === '/deep/er/new' && f.kind === 'A' && f.bytes === FRESH));
      assert.ok(own.files.some((f) => f.path === '/link' && f.type === 'symlink'));
      assert.ok(own.files.some((f) => f.path === '/etc/hosts' && f.from?.init === true));
    } finally {
      await store.driver.cleanup();
      await store.close();
    }
  });
}

/** The mount reference files in a driver's home, with their size and mtime (what a reference written changes). */
function mountRefs(home: string): string[] {
  return readdirSync(home)
    .filter((n) => n.includes('mountrefs'))
    .map((n) => {
      const st = statSync(join(home, n), { throwIfNoEntry: false });
      return `${n} ${st?.size} ${st?.mtimeMs}`;
    })
    .sort();
}
