// Crash consistency by construction (issue #16): a layer's creation killed after any of its
// steps leaves a store that opens and removes the half-made layer, whatever the layer's own
// files say. Each case lays out on disk exactly what a kill after that step leaves (the row is
// `incomplete` with a dead writer), then runs a command; the layer must be gone without a
// trace, and its parent (which the half-made layer's l/ link or layers file may name) intact.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { strataIn } from '../helpers/cli.js';
import { unmountAllUnder } from '../helpers/mounts.js';
import { corpusImage, scratch } from '../helpers/env.js';
import { makeLoopFs, makeZfsPool } from '../helpers/fsimages.js';

/** A writer that cannot be alive: pids stop far below this. */
const DEAD_OWNER = '999999999:1';
const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

function linkName(): string {
  return [...randomBytes(26)].map((b) => BASE32[b & 31]).join('');
}

interface Prefix {
  name: string;
  /** Make on disk what a kill after this step leaves for layer id on top of parent. */
  make(home: string, id: string, parent: string): void;
}

interface DriverCase {
  driver: string;
  /** Where the driver keeps its data under the root. */
  home: string;
  prefixes: Prefix[];
  /** Paths (relative to home) that still mention id: must be none after recovery. */
  traces(home: string, id: string): string[];
}

/** Entries whose name contains id in each of dirs (relative to home). */
function named(home: string, id: string, dirs: string[]): string[] {
  const out: string[] = [];
  for (const d of dirs) {
    const p = join(home, d);
    if (!existsSync(p)) continue;
    for (const n of readdirSync(p)) if (n.includes(id)) out.push(join(d, n));
  }
  return out;
}

function overlayLink(home: string, id: string): string {
  const link = linkName();
  symlinkSync(join('..', id, 'diff'), join(home, 'l', link));
  return link;
}

function parentLower(home: string, parent: string): string {
  return `l/${readFileSync(join(home, parent, 'link'), 'utf8').trim()}`;
}

/**
 * What a writer killed between its mount and recording it leaves: the layer mounted (read-only
 * over its diff and its parent's) at the place get() mounts it, with no mount reference.
 */
function mountUnrecorded(target: string, lowers: string[]): void {
  execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lowers.join(':')}`, target], { stdio: 'pipe' });
  madeMounts.push(target);
}

/** Mounts the current case's prefixes made (a removal may have renamed their dirs since). */
const madeMounts: string[] = [];

const overlay2: DriverCase = {
  driver: 'overlay2',
  home: 'overlay2',
  prefixes: [
    { name: 'layer dir only', make: (h, id) => mkdirSync(join(h, id)) },
    { name: 'diff dir', make: (h, id) => mkdirSync(join(h, id, 'diff'), { recursive: true }) },
    {
      name: 'l/ symlink, no link file',
      make: (h, id) => {
        mkdirSync(join(h, id, 'diff'), { recursive: true });
        overlayLink(h, id);
      },
    },
    {
      name: 'empty link file (the old non-atomic write)',
      make: (h, id) => {
        mkdirSync(join(h, id, 'diff'), { recursive: true });
        overlayLink(h, id);
        writeFileSync(join(h, id, 'link'), '');
      },
    },
    {
      name: 'half-written link.tmp',
      make: (h, id) => {
        mkdirSync(join(h, id, 'diff'), { recursive: true });
        writeFileSync(join(h, id, 'link.tmp'), overlayLink(h, id).slice(0, 9));
      },
    },
    {
      name: 'link file naming another layer\'s link',
      make: (h, id, parent) => {
        mkdirSync(join(h, id, 'diff'), { recursive: true });
        overlayLink(h, id);
        writeFileSync(join(h, id, 'link'), readFileSync(join(h, parent, 'link')));
      },
    },
    {
      name: 'link, work and merged, no lower file',
      make: (h, id) => {
        mkdirSync(join(h, id, 'diff'), { recursive: true });
        writeFileSync(join(h, id, 'link'), overlayLink(h, id));
        mkdirSync(join(h, id, 'work'));
        mkdirSync(join(h, id, 'merged'));
      },
    },
    {
      name: 'lower.tmp',
      make: (h, id, parent) => {
        mkdirSync(join(h, id, 'diff'), { recursive: true });
        writeFileSync(join(h, id, 'link'), overlayLink(h, id));
        mkdirSync(join(h, id, 'work'));
        mkdirSync(join(h, id, 'merged'));
        writeFileSync(join(h, id, 'lower.tmp'), parentLower(h, parent));
      },
    },
    {
      name: 'whole layout, half-applied diff',
      make: (h, id, parent) => {
        mkdirSync(join(h, id, 'diff', 'etc'), { recursive: true });
        writeFileSync(join(h, id, 'diff', 'etc', 'half'), Buffer.alloc(100_000, 1));
        writeFileSync(join(h, id, 'link'), overlayLink(h, id));
        mkdirSync(join(h, id, 'work'));
        mkdirSync(join(h, id, 'merged'));
        writeFileSync(join(h, id, 'lower'), parentLower(h, parent));
      },
    },
    {
      name: 'removal cut short after the rename',
      make: (h, id) => mkdirSync(join(h, `${id}.removing`, 'diff'), { recursive: true }),
    },
  ],
  traces: (h, id) => [
    ...named(h, id, ['.']),
    ...readdirSync(join(h, 'l'))
      .filter((n) => readlinkSync(join(h, 'l', n)).includes(id))
      .map((n) => `l/${n}`),
  ],
};

const vfs: DriverCase = {
  driver: 'vfs',
  home: 'vfs',
  prefixes: [
    { name: 'empty layer dir', make: (h, id) => mkdirSync(join(h, 'dir', id)) },
    {
      name: 'half-copied parent',
      make: (h, id) => {
        mkdirSync(join(h, 'dir', id, 'bin'), { recursive: true });
        writeFileSync(join(h, 'dir', id, 'bin', 'half'), Buffer.alloc(100_000, 1));
      },
    },
    { name: 'removal cut short after the rename', make: (h, id) => mkdirSync(join(h, 'dir', `${id}-removing`, 'bin'), { recursive: true }) },
  ],
  traces: (h, id) => named(h, id, ['dir']),
};

const aufs: DriverCase = {
  driver: 'aufs',
  home: 'aufs',
  prefixes: [
    { name: 'diff dir only', make: (h, id) => mkdirSync(join(h, 'diff', id)) },
    {
      name: 'diff and mnt dirs',
      make: (h, id) => {
        mkdirSync(join(h, 'diff', id));
        mkdirSync(join(h, 'mnt', id));
      },
    },
    {
      name: 'half-written layers.tmp',
      make: (h, id, parent) => {
        mkdirSync(join(h, 'diff', id));
        mkdirSync(join(h, 'mnt', id));
        writeFileSync(join(h, 'layers', `${id}.tmp`), parent.slice(0, 20));
      },
    },
    {
      name: 'whole layout, half-applied diff',
      make: (h, id, parent) => {
        mkdirSync(join(h, 'diff', id, 'etc'), { recursive: true });
        writeFileSync(join(h, 'diff', id, 'etc', 'half'), Buffer.alloc(100_000, 1));
        mkdirSync(join(h, 'mnt', id));
        writeFileSync(join(h, 'layers', id), `${parent}\n`);
      },
    },
  ],
  traces: (h, id) => named(h, id, ['diff', 'mnt', 'layers', 'work']),
};

function runPrefixes(c: DriverCase, cli: ReturnType<typeof strataIn>, dbPath: string, home: string, parent: string): void {
  for (const p of c.prefixes) {
    const id = randomBytes(32).toString('hex');
    const db = new Database(dbPath);
    try {
      db.prepare(`INSERT INTO layers (id, chain_id, parent, kind, state, owner, created) VALUES (?, NULL, ?, 'image', 'incomplete', ?, ?)`).run(
        id,
        parent,
        DEAD_OWNER,
        new Date().toISOString(),
      );
    } finally {
      db.close();
    }
    p.make(home, id, parent);
    const r = cli.run(['images']);
    assert.equal(r.code, 0, `${c.driver}, ${p.name}: images failed: ${r.stderr}`);
    assert.equal(r.stderr, '', `${c.driver}, ${p.name}`);
    const left = new Database(dbPath);
    try {
      assert.equal((left.prepare('SELECT count(*) AS n FROM layers WHERE id = ?').get(id) as { n: number }).n, 0, `${c.driver}, ${p.name}: the row is gone`);
    } finally {
      left.close();
    }
    assert.deepEqual(c.traces(home, id), [], `${c.driver}, ${p.name}: nothing of the layer is left`);
    cli.ok(['check']);
  }
}

function runCase(t: { after(fn: () => void): void }, c: DriverCase, root: string): void {
  const cli = strataIn(root, c.driver);
  cli.ok(['load', '-i', corpusImage('busybox.docker.tar')]);
  const dbPath = join(root, 'strata.db');
  const parent = (() => {
    const db = new Database(dbPath);
    try {
      return (db.prepare(`SELECT id FROM layers WHERE kind = 'image'`).get() as { id: string }).id;
    } finally {
      db.close();
    }
  })();
  const home = join(root, c.home);
  try {
    runPrefixes(c, cli, dbPath, home, parent);
  } finally {
    // Recovery must have taken the mounts the prefixes made; a failed case still leaves none.
    // Only then: zfs-fuse must unmount its own datasets itself.
    if (madeMounts.length > 0) unmountAllUnder(home);
    madeMounts.length = 0;
  }
  // The parent is whole: a container on it still works.
  cli.ok(['create', '--name', 'after', 'corpus/busybox']);
  const mnt = cli.ok(['mount', 'after']).trim();
  assert.ok(existsSync(join(mnt, 'bin', 'busybox')));
  cli.ok(['umount', 'after']);
  cli.ok(['rm', 'after']);
  t.after(() => cli.run(['rm', '-f', 'after']));
}

/** overlay2 with kernel mounts: its layer mounted where get() mounts it, no reference recorded. */
const overlay2Mounted: DriverCase = {
  ...overlay2,
  prefixes: [
    ...overlay2.prefixes,
    {
      name: 'whole layout, mounted by a writer killed before it recorded the mount',
      make: (h, id, parent) => {
        mkdirSync(join(h, id, 'diff', 'etc'), { recursive: true });
        writeFileSync(join(h, id, 'link'), overlayLink(h, id));
        mkdirSync(join(h, id, 'work'));
        mkdirSync(join(h, id, 'merged'));
        writeFileSync(join(h, id, 'lower'), parentLower(h, parent));
        mountUnrecorded(join(h, id, 'merged'), [join(h, id, 'diff'), join(h, parent, 'diff')]);
      },
    },
  ],
};

const aufsMounted: DriverCase = {
  ...aufs,
  prefixes: [
    ...aufs.prefixes,
    {
      name: 'whole layout, mounted by a writer killed before it recorded the mount',
      make: (h, id, parent) => {
        mkdirSync(join(h, 'diff', id, 'etc'), { recursive: true });
        mkdirSync(join(h, 'mnt', id));
        writeFileSync(join(h, 'layers', id), `${parent}\n`);
        mountUnrecorded(join(h, 'mnt', id), [join(h, 'diff', id), join(h, 'diff', parent)]);
      },
    },
  ],
};

for (const c of [overlay2Mounted, { ...overlay2, driver: 'fuse-overlayfs', home: 'fuse-overlayfs' }, vfs, aufsMounted]) {
  test(`${c.driver}: a creation killed after any step leaves a store that opens, with no partial layer`, (t) => {
    runCase(t, c, join(scratch(t), 'root'));
  });
}

test('btrfs: a creation killed after any step leaves a store that opens, with no partial layer', (t) => {
  const fs = makeLoopFs('btrfs', 512);
  t.after(() => fs.teardown());
  process.on('exit', () => fs.teardown());
  const btrfs: DriverCase = {
    driver: 'btrfs',
    home: 'btrfs',
    prefixes: [
      { name: 'snapshot made, no quota file', make: (h, id, parent) => execFileSync('btrfs', ['subvolume', 'snapshot', join(h, 'subvolumes', parent), join(h, 'subvolumes', id)], { stdio: 'pipe' }) },
      {
        name: 'snapshot and half-written quota file',
        make: (h, id, parent) => {
          execFileSync('btrfs', ['subvolume', 'snapshot', join(h, 'subvolumes', parent), join(h, 'subvolumes', id)], { stdio: 'pipe' });
          mkdirSync(join(h, 'quotas'), { recursive: true });
          writeFileSync(join(h, 'quotas', `${id}.tmp`), '12');
        },
      },
      {
        name: 'a plain directory where the subvolume should be',
        make: (h, id) => mkdirSync(join(h, 'subvolumes', id, 'etc'), { recursive: true }),
      },
    ],
    traces: (h, id) => named(h, id, ['subvolumes', 'quotas']),
  };
  runCase(t, btrfs, join(fs.mountPoint, 'root'));
});

test('zfs: a creation killed after any step leaves a store that opens, with no partial layer', (t) => {
  const pool = makeZfsPool(1024);
  t.after(() => pool.teardown());
  process.on('exit', () => pool.teardown());
  const zfs = (...args: string[]) => execFileSync('zfs', args, { stdio: 'pipe' });
  const dataset = (id: string) => `${pool.pool}/${id}`;
  const clone = (h: string, id: string, parent: string) => {
    mkdirSync(join(h, 'graph', id), { recursive: true });
    zfs('snapshot', `${dataset(parent)}@${id}`);
    zfs('clone', '-o', 'canmount=noauto', '-o', `mountpoint=${join(h, 'graph', id)}`, `${dataset(parent)}@${id}`, dataset(id));
  };
  const zfsCase: DriverCase = {
    driver: 'zfs',
    home: 'zfs',
    prefixes: [
      { name: 'mount point dir only', make: (h, id) => mkdirSync(join(h, 'graph', id), { recursive: true }) },
      {
        name: 'origin snapshot on the parent, no clone',
        make: (h, id, parent) => {
          mkdirSync(join(h, 'graph', id), { recursive: true });
          zfs('snapshot', `${dataset(parent)}@${id}`);
        },
      },
      { name: 'clone made, origin not yet marked for deferred destroy', make: clone },
      {
        name: 'clone made and origin marked',
        make: (h, id, parent) => {
          clone(h, id, parent);
          zfs('destroy', '-d', `${dataset(parent)}@${id}`);
        },
      },
    ],
    traces: (h, id) => [
      ...named(h, id, ['graph']),
      ...execFileSync('zfs', ['list', '-H', '-o', 'name', '-t', 'all', '-r', pool.pool], { encoding: 'utf8' })
        .split('\n')
        .filter((n) => n.includes(id)),
    ],
  };
  runCase(t, zfsCase, join(pool.mountPoint, 'root'));
});

test('devicemapper: a creation killed after any step leaves a store that opens, with no partial layer', (t) => {
  const root = join(scratch(t), 'root');
  /** The reflink pool (an XFS image) mounted for fn, as the driver mounts it while in use. */
  const withPool = <T>(h: string, fn: (pool: string) => T): T => {
    execFileSync('mount', ['-o', 'loop,nouuid', join(h, 'devicemapper', 'data'), join(h, 'pool')], { stdio: 'pipe' });
    try {
      return fn(join(h, 'pool'));
    } finally {
      execFileSync('umount', [join(h, 'pool')], { stdio: 'pipe' });
    }
  };
  const cloneImage = (h: string, id: string, parent: string) =>
    withPool(h, (pool) => execFileSync('cp', ['--reflink=always', join(pool, `${parent}.img`), join(pool, `${id}.img`)], { stdio: 'pipe' }));
  const dm: DriverCase = {
    driver: 'devicemapper',
    home: 'devicemapper',
    prefixes: [
      { name: 'image cloned, no record', make: cloneImage },
      {
        name: 'image cloned, half-written record',
        make: (h, id, parent) => {
          cloneImage(h, id, parent);
          writeFileSync(join(h, 'metadata', `${id}.tmp`), '{"device_id":');
        },
      },
      {
        name: 'mount point made, record and image gone (removal cut short)',
        make: (h, id) => mkdirSync(join(h, 'mnt', id)),
      },
    ],
    traces: (h, id) => [...named(h, id, ['metadata', 'mnt']), ...withPool(h, (pool) => readdirSync(pool).filter((n) => n.includes(id)))],
  };
  runCase(t, dm, root);
});
