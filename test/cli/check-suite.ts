// `check` and `check --repair` for every kind of orphan and leftover, parameterised by driver:
// driver layers with no record, half-removed layers, probe temp dirs (only a dead process's),
// tar-split leftovers, container layers whose container record is gone, unheld mounts, and
// (--verify) image layers whose content changed. Also the sweep at open after a crash.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, openSync, readdirSync, renameSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { selectDriver } from '../../src/drivers/index.js';
import { newId } from '../../src/store/layers.js';
import { MNT_DETACH, umount2 } from '../../src/sys/linux.js';
import { isMountPoint, mountsUnder } from '../../src/sys/mountinfo.js';
import { processIdentity } from '../../src/sys/process.js';
import { strataIn } from '../helpers/cli.js';
import { corpusImage, scratch } from '../helpers/env.js';

export type OrphanDriver = 'vfs' | 'overlay2' | 'btrfs';

/** Where a layer's directory is, and the name a removal cut short leaves, per driver. */
const layout: Record<OrphanDriver, { dir: (root: string, id: string) => string; removing: (root: string, id: string) => string; files: (root: string, id: string) => string }> = {
  vfs: { dir: (r, id) => join(r, 'vfs', 'dir', id), removing: (r, id) => join(r, 'vfs', 'dir', `${id}-removing`), files: (r, id) => join(r, 'vfs', 'dir', id) },
  btrfs: {
    dir: (r, id) => join(r, 'btrfs', 'subvolumes', id),
    removing: (r, id) => join(r, 'btrfs', 'subvolumes', `${id}-removing`),
    files: (r, id) => join(r, 'btrfs', 'subvolumes', id),
  },
  overlay2: { dir: (r, id) => join(r, 'overlay2', id), removing: (r, id) => join(r, 'overlay2', `${id}.removing`), files: (r, id) => join(r, 'overlay2', id, 'diff') },
};

function loadBusybox(cli: ReturnType<typeof strataIn>): string {
  return /sha256:[0-9a-f]{64}/.exec(cli.ok(['load', '-i', corpusImage('busybox.oci.tar')]))![0];
}

/** Real driver layers that no record names: a base and one on it, and a half-removed one. */
async function makeDriverOrphans(root: string, driver: OrphanDriver): Promise<{ base: string; child: string; removing: string }> {
  const d = await selectDriver(root, driver, {});
  const base = newId();
  const child = newId();
  const gone = newId();
  await d.create(base, null);
  writeFileSync(join(layout[driver].files(root, base), 'orphan-file'), 'x');
  await d.create(child, base);
  await d.create(gone, null);
  renameSync(layout[driver].dir(root, gone), layout[driver].removing(root, gone));
  return { base, child, removing: layout[driver].removing(root, gone) };
}

/**
 * A scratch store root whose mounts a failed test leaves are unmounted before the scratch dir
 * is deleted (hooks run in the order they were added).
 */
function scratchRoot(t: { after(fn: () => void): void }): string {
  let root = '';
  t.after(() => {
    if (root) for (const mp of mountsUnder(root)) umount2(mp, MNT_DETACH);
  });
  root = join(scratch(t), 'root');
  return root;
}

export function orphanSuite(driver: OrphanDriver): void {
  test(`${driver}: check reports every orphan and leftover, --repair removes them and nothing sound`, async (t) => {
    const root = scratchRoot(t);
    const cli = strataIn(root, driver);
    const img = loadBusybox(cli);
    cli.ok(['create', '--name', 'keep', img]);
    cli.ok(['create', '--name', 'lost', img]);
    assert.equal(cli.ok(['check']).trim(), 'no problems found');

    const orphans = await makeDriverOrphans(root, driver);
    const splitTmp = join(root, 'layerdb', `${newId()}.tar-split.gz.tmp`);
    writeFileSync(splitTmp, 'half');
    // A container record lost (as by a crash between its layers and its record, in an older
    // version): its two layers are used by nothing.
    const db = new Database(join(root, 'strata.db'));
    const lost = db.prepare(`SELECT layer, init_layer FROM containers WHERE name = 'lost'`).get() as { layer: string; init_layer: string };
    db.prepare(`DELETE FROM containers WHERE name = 'lost'`).run();
    db.close();
    let deadProbe = '';
    let liveProbe = '';
    let strayMount = '';
    if (driver === 'overlay2') {
      // A probe dir of a process that is gone, and one of a process that runs (this one).
      deadProbe = join(root, 'overlay2', 'native-diff-check-999999999-1-abcdef');
      liveProbe = join(root, 'overlay2', `native-diff-check-${processIdentity().replace(':', '-')}-abcdef`);
      mkdirSync(join(deadProbe, 'merged'), { recursive: true });
      mkdirSync(join(liveProbe, 'merged'), { recursive: true });
      // A mount no process holds: `mount` it, then lose its reference count.
      strayMount = cli.ok(['mount', 'keep']).trim();
      writeFileSync(join(root, 'overlay2', '.mountrefs.json'), '{}');
      assert.ok(isMountPoint(strayMount));
    }

    const r = cli.run(['check']);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`${driver} layer ${orphans.base} has no record`));
    assert.match(r.stdout, new RegExp(`${driver} layer ${orphans.child} has no record`));
    // vfs and btrfs finish a cut-short removal (its record gone already) whenever they open;
    // overlay2 does not scan its home at every open (two entries per container): `check` lists
    // it, and the sweep after a crash or `check --repair` removes it.
    if (driver === 'overlay2') assert.match(r.stdout, new RegExp(`leftover ${orphans.removing}`));
    else assert.ok(!existsSync(orphans.removing));
    assert.match(r.stdout, new RegExp(`leftover ${splitTmp}`));
    assert.match(r.stdout, new RegExp(`container layer ${lost.layer} is used by no container`));
    assert.match(r.stdout, new RegExp(`init layer ${lost.init_layer} is used by no container`));
    if (driver === 'overlay2') {
      assert.match(r.stdout, new RegExp(`leftover ${deadProbe}`));
      assert.ok(!r.stdout.includes(liveProbe), 'a live process probe dir is not a leftover');
      assert.match(r.stdout, new RegExp(`leftover mount ${strayMount}`));
    }
    assert.doesNotMatch(r.stdout, /keep/);

    const fixed = cli.run(['check', '--repair']);
    assert.equal(fixed.code, 0, fixed.stdout + fixed.stderr);
    assert.doesNotMatch(fixed.stdout, /could not repair|remain/);
    assert.equal(cli.ok(['check']).trim(), 'no problems found');
    for (const gone of [layout[driver].dir(root, orphans.base), layout[driver].dir(root, orphans.child), orphans.removing, splitTmp]) {
      assert.ok(!existsSync(gone), `${gone} is removed`);
    }
    assert.ok(!existsSync(layout[driver].dir(root, lost.layer)));
    assert.ok(!existsSync(layout[driver].dir(root, lost.init_layer)));
    if (driver === 'overlay2') {
      assert.ok(!existsSync(deadProbe));
      assert.ok(existsSync(liveProbe), 'the live probe dir stays');
      assert.ok(!isMountPoint(strayMount));
    }
    // What was sound still works.
    const mounted = cli.ok(['mount', 'keep']).trim();
    assert.ok(existsSync(join(mounted, 'bin', 'busybox')));
    cli.ok(['umount', 'keep']);
    assert.equal(JSON.parse(cli.ok(['info', '--format', 'json'])).Images, 1);
  });

  test(`${driver}: check --verify finds an image layer whose content changed; --repair removes what used it`, async (t) => {
    const root = join(scratch(t), 'root');
    const cli = strataIn(root, driver);
    const img = loadBusybox(cli);
    cli.ok(['create', '--name', 'on-it', img]);
    const db = new Database(join(root, 'strata.db'), { readonly: true });
    const top = (db.prepare('SELECT top_layer FROM images').get() as { top_layer: string }).top_layer;
    db.close();
    // Same size, one byte different: only reading the content back shows it.
    const fd = openSync(join(layout[driver].files(root, top), 'etc', 'passwd'), 'r+');
    writeSync(fd, 'X', 0);
    closeSync(fd);
    assert.equal(cli.ok(['check']).trim(), 'no problems found');
    const r = cli.run(['check', '--verify']);
    assert.equal(r.code, 1);
    assert.match(r.stdout, new RegExp(`image ${img.slice(7, 19)}: layer ${top} content does not match its diffID`));
    assert.match(r.stdout, /container [0-9a-f]{12} \(on-it\): layer .* content does not match/);
    const fixed = cli.run(['check', '--verify', '--repair']);
    assert.equal(fixed.code, 0, fixed.stdout + fixed.stderr);
    assert.match(fixed.stdout, /removed container/);
    assert.match(fixed.stdout, /removed image/);
    assert.equal(cli.ok(['check', '--verify']).trim(), 'no problems found');
    assert.equal(JSON.parse(cli.ok(['info', '--format', 'json'])).Layers, 0);
    // Loading it again gives a sound image.
    loadBusybox(cli);
    assert.equal(cli.ok(['check', '--verify']).trim(), 'no problems found');
  });

  test(`${driver}: opening the store after a crash removes leftovers nobody owns; without one it leaves them to check`, async (t) => {
    const root = join(scratch(t), 'root');
    const cli = strataIn(root, driver);
    loadBusybox(cli);
    const orphans = await makeDriverOrphans(root, driver);
    const paths = [layout[driver].dir(root, orphans.base), layout[driver].dir(root, orphans.child)];
    // No process died since: opening does not scan.
    cli.ok(['images']);
    for (const p of paths) assert.ok(existsSync(p), `${p} stays until a crash or check`);
    // A process that died with the store open (pid 999999999 never runs).
    const procs = join(root, 'tmp', 'procs');
    writeFileSync(join(procs, '999999999:1:dead'), '');
    cli.ok(['images']);
    for (const p of paths) assert.ok(!existsSync(p), `${p} is swept after a crash`);
    assert.deepEqual(readdirSync(procs), [], 'the dead mark is gone and the command removed its own');
    assert.equal(cli.ok(['check']).trim(), 'no problems found');
  });
}
