// Start-up benchmark: the small commands as whole processes (`create`, `images`, `ps -a`,
// `inspect`, `mount`, `diff` of a one-file change) against `node -e 0` on the same machine in the
// same rounds (each round runs every row once, so load from elsewhere falls on all of them), and
// `create` through the library in an open store. The goal (issue #13): each command at most
// `node -e 0` + 30 ms (median), a library create at most 5 ms.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { Store } from '../src/store/store.js';
import { corpusImage, strataBin } from '../test/helpers/env.js';
import { unmountAllUnder } from '../test/helpers/mounts.js';
import { overlay2Available } from '../test/helpers/registry.js';
import { measure, median, printTable, type Measured } from './measure.js';

export const name = 'startup';

const RUNS = Math.max(5, Number(process.env.BENCH_STARTUP_RUNS ?? 15));
/** Goals of issue #13. */
const OVER_NODE_MS = 30;
const LIBRARY_CREATE_MS = 5;

interface Row {
  label: string;
  argv: string[];
  /** Undoes what the command did, outside the timed part. */
  after?: (stdout: string) => Promise<void> | void;
}

export async function run(): Promise<void> {
  // Not under /tmp: /var/tmp is on the filesystem users' stores are.
  const base = mkdtempSync('/var/tmp/strata-bench-startup-');
  const root = join(base, 'root');
  const driver = (await overlay2Available()) ? 'overlay2' : 'vfs';
  const store = await Store.open({ root, driver });
  try {
    const [img] = await store.load(corpusImage('busybox.oci.tar'));
    const c = await store.createContainer(img!.id, { name: 'bench-diff' });
    const merged = await store.mount(c.id);
    writeFileSync(join(merged, 'etc', 'bench-change'), 'x\n');
    await store.unmount(c.id);
    // The CLI runs beside this open store: release what the library holds between rows.
    await store.driver.cleanup();

    const cli = (...args: string[]) => [process.execPath, strataBin, '--root', root, '--driver', driver, ...args];
    const rows: Row[] = [
      { label: 'node -e 0', argv: [process.execPath, '-e', '0'] },
      { label: 'strata --version', argv: [process.execPath, strataBin, '--version'] },
      { label: 'create busybox', argv: cli('create', img!.id) },
      { label: 'images', argv: cli('images') },
      { label: 'ps -a', argv: cli('ps', '-a') },
      { label: 'inspect C', argv: cli('inspect', c.id) },
      { label: 'mount C', argv: cli('mount', c.id), after: () => void measure(cli('umount', c.id), 'umount') },
      { label: 'diff C', argv: cli('diff', c.id) },
    ];
    const results = new Map<string, Measured[]>(rows.map((r) => [r.label, []]));
    for (let i = 0; i < RUNS; i++) {
      for (const r of rows) {
        results.get(r.label)!.push(measure(r.argv, r.label));
        await r.after?.('');
      }
    }
    // Containers the create row made: removed after all rounds, so every round saw the same store but for them.
    for (const x of store.listContainers()) if (x.id !== c.id) await store.removeContainer(x.id, { force: true });

    const lib: number[] = [];
    const made: string[] = [];
    for (let i = 0; i < RUNS * 2; i++) {
      const t0 = process.hrtime.bigint();
      made.push((await store.createContainer(img!.id)).id);
      lib.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    for (const id of made) await store.removeContainer(id);

    const node = median(results.get('node -e 0')!.map((m) => m.wall * 1000));
    const table = [['command', 'median', 'CPU', 'over node -e 0', `goal (+${OVER_NODE_MS} ms)`]];
    for (const r of rows) {
      const ms = results.get(r.label)!;
      const wall = median(ms.map((m) => m.wall * 1000));
      const over = wall - node;
      table.push([
        r.label,
        `${wall.toFixed(0)} ms`,
        `${median(ms.map((m) => m.cpu * 1000)).toFixed(0)} ms`,
        r.label === 'node -e 0' ? '' : `${over >= 0 ? '+' : ''}${over.toFixed(0)} ms`,
        r.label === 'node -e 0' || r.label === 'strata --version' ? '' : over <= OVER_NODE_MS ? 'met' : `missed by ${(over - OVER_NODE_MS).toFixed(0)} ms`,
      ]);
    }
    const libMs = median(lib);
    table.push(['create (library, open store)', `${libMs.toFixed(1)} ms`, '', '', libMs <= LIBRARY_CREATE_MS ? `met (≤ ${LIBRARY_CREATE_MS} ms)` : `missed (> ${LIBRARY_CREATE_MS} ms)`]);
    // Wall times move with the machine's load; CPU times much less: both are worth reading with it.
    const load = loadavg().map((x) => x.toFixed(1)).join(' ');
    console.log(`\nwhole-process commands on ${driver}, median of ${RUNS} rounds (CPU: user + system, 10 ms ticks; load average ${load}):`);
    printTable(table);
  } finally {
    await store.driver.cleanup();
    await store.close();
    unmountAllUnder(base);
    rmSync(base, { recursive: true, force: true });
  }
}
