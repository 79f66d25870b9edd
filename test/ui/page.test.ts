// strata ui in a real headless browser (Debian's chromium through playwright-core) over a vfs
// store made for the test: the page shows every image and container, a click on a layer lists
// exactly the files of that layer (checked against the layer tar of the docker archive), an image
// its analysis and history, a container its diff and copy-ups, a container created by another
// process appears within 2 s, and nothing answers without the token.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { appendFileSync, lstatSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { shortId } from '../../src/reference/digest.js';
import { humanSize } from '../../src/sys/units.js';
import type { UiState } from '../../src/ui/views.js';
import { strataIn } from '../helpers/cli.js';
import { corpusImage, scratch } from '../helpers/env.js';
import { launchBrowser, startUi } from '../helpers/ui.js';

/** The entries of the one layer of corpus/busybox, as its docker archive holds them: path → size. */
function busyboxLayer(): Map<string, number> {
  const archive = corpusImage('busybox.docker.tar');
  const [manifest] = JSON.parse(execFileSync('tar', ['-xOf', archive, 'manifest.json'], { encoding: 'utf8' })) as { Layers: string[] }[];
  const listing = execFileSync('tar', ['-xOf', archive, manifest.Layers[0]], { maxBuffer: 64 << 20 });
  const out = new Map<string, number>();
  // GNU tar as the oracle: `tar -tv` prints type+mode, owner, size, date, time, name.
  for (const line of execFileSync('tar', ['-tv', '--numeric-owner'], { input: listing, encoding: 'utf8', maxBuffer: 64 << 20 }).trim().split('\n')) {
    const m = line.match(/^(\S)\S*\s+\S+\s+(\d+)\s+\S+\s+\S+\s+(.*?)(?: -> .*)?$/);
    assert.ok(m, line);
    const path = `/${m[3].replace(/^\.\//, '').replace(/\/$/, '')}`;
    if (path !== '/') out.set(path, m[1] === '-' ? Number(m[2]) : 0);
  }
  return out;
}

test('strata ui: the page shows the store, a layer lists its files, a create elsewhere appears, no token gets 403', { timeout: 180_000 }, async (t) => {
  const root = scratch(t, 'strata-ui-');
  const cli = strataIn(root, 'vfs');
  cli.ok(['load', '-i', corpusImage('busybox.docker.tar')]);
  cli.ok(['load', '-i', corpusImage('app.docker.tar')]);
  cli.ok(['tag', 'corpus/busybox:latest', 'tools/box:1']);
  cli.ok(['create', '--name', 'first', 'corpus/app']);
  cli.ok(['create', '--name', 'second', 'corpus/busybox']);

  const after = (fn: () => void | Promise<void>) => t.after(fn);
  const ui = await startUi(root, 'vfs', after);
  const browser = await launchBrowser(after);

  await t.test('no token, a wrong token or a write gets 403 or 405 and no store data', async () => {
    for (const path of ['/', '/api/state', '/app.js', '/api/events', '/nope']) {
      for (const q of ['', '?token=', `?token=${ui.token.slice(1)}`, `?token=${ui.token}x`]) {
        const res = await fetch(`${ui.origin}${path}${q}`);
        assert.equal(res.status, 403, `${path}${q}`);
        assert.doesNotMatch(await res.text(), /corpus|sha256/);
      }
    }
    const post = await fetch(`${ui.origin}/api/state?token=${ui.token}`, { method: 'POST' });
    assert.equal(post.status, 405);
    const header = await fetch(`${ui.origin}/api/state`, { headers: { 'X-Token': ui.token, Cookie: `token=${ui.token}` } });
    assert.equal(header.status, 403, 'only the token of the URL counts');
  });

  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  const requests: string[] = [];
  page.on('request', (r) => requests.push(r.url()));
  await page.goto(ui.url);

  await t.test('the page loads and shows every image and container of the store', async () => {
    await page.waitForSelector('#images li');
    const names = cli.ok(['images', '--format', '{{.Repository}}:{{.Tag}}']).trim().split('\n').sort();
    assert.deepEqual(names, ['corpus/app:latest', 'corpus/busybox:latest', 'tools/box:1']);
    const shown = await page.locator('#images li .name').allTextContents();
    for (const n of names) assert.ok(shown.some((s) => s.split(', ').includes(n)), `${n} in ${shown.join(' | ')}`);
    assert.equal(shown.length, 2, 'one entry per image, its names together');
    const containers = cli.ok(['ps', '-a', '--format', '{{.Names}}']).trim().split('\n').sort();
    assert.deepEqual((await page.locator('#containers li .name').allTextContents()).sort(), containers);
    // every layer of the store is a node of the graph, the shared busybox layer once
    const state = await ui.api<UiState>('/api/state');
    const nodes = await page.locator('svg.graph g.node').evaluateAll((els) => els.map((e) => e.getAttribute('data-layer')));
    assert.deepEqual(nodes.sort(), state.layers.map((l) => l.id).sort());
    const base = state.layers.filter((l) => l.parent === null && l.kind === 'image');
    assert.equal(base.length, 1, 'busybox is the base of app: one base layer');
    assert.equal(base[0].images.length, 2);
    assert.equal(await page.locator(`svg.graph g.node.shared[data-layer="${base[0].id}"]`).count(), 1);
    // nothing came from anywhere but the server
    assert.deepEqual(
      requests.filter((u) => !u.startsWith(ui.origin)),
      [],
    );
  });

  await t.test('a click on a layer lists its files, with marks and sizes', async () => {
    const state = await ui.api<UiState>('/api/state');
    const base = state.layers.find((l) => l.parent === null && l.kind === 'image')!;
    await page.click(`svg.graph g.node[data-layer="${base.id}"]`);
    await page.waitForSelector('#detail .layer-detail .files');
    const rows = await page.locator('#detail .files .file[data-path]').evaluateAll((els) =>
      els.map((e) => ({ path: e.getAttribute('data-path')!, mark: e.querySelector('.mark')!.textContent!, size: e.querySelector('.size')!.textContent! })),
    );
    const want = busyboxLayer();
    assert.deepEqual(rows.map((r) => r.path).sort(), [...want.keys()].sort(), 'the files of the layer, as its tar has them');
    assert.ok(rows.every((r) => r.mark === 'A'), 'a base layer only adds');
    const busybox = rows.find((r) => r.path === '/bin/busybox')!;
    const bytes = want.get('/bin/busybox')!;
    assert.ok(bytes > 100_000);
    assert.equal(busybox.size, humanSize(bytes), 'the size of the file in the layer tar');
  });

  await t.test('a click on an image shows its history and analysis, on a container its diff', async () => {
    const analysis = JSON.parse(cli.ok(['analyze', '--format', 'json', 'corpus/app'])) as { wastedBytes: number; efficiency: number; layers: unknown[] };
    await page.locator('#images li', { hasText: 'corpus/app:latest' }).click();
    await page.waitForSelector('#detail .image-detail .analysis');
    const detail = page.locator('#detail .image-detail');
    assert.equal(await detail.locator('dl.analysis dd').first().textContent(), `${(analysis.efficiency * 100).toFixed(2)} %`);
    assert.equal(await detail.locator('dl.analysis dd').nth(1).textContent(), humanSize(analysis.wastedBytes));
    assert.equal(await detail.locator('table.layers tbody tr').count(), analysis.layers.length);
    const history = cli.ok(['history', '--no-trunc', '--format', '{{.CreatedBy}}', 'corpus/app']).replace(/\n$/, '').split('\n');
    assert.deepEqual(await detail.locator('table.history:not(.layers) td.cmd').allTextContents(), history);

    // a file written into the container and one appended to show in its diff (as `strata diff`
    // has it), the appended one as a copy-up of the whole file from the busybox layer
    const mnt = cli.ok(['mount', 'first']).trim();
    // the init layer's files (Docker's /etc/hosts, …) with the sizes the container sees
    const first = (await ui.api<UiState>('/api/state')).containers.find((c) => c.name === 'first')!;
    const init = await ui.api<{ changes: { path: string; kind: string; size: number }[] }>(`/api/layers/${first.initLayer}`);
    const files = init.changes.filter((c) => c.kind !== 'D' && lstatSync(join(mnt, c.path)).isFile());
    assert.ok(files.some((c) => c.path === '/etc/hosts'), init.changes.map((c) => c.path).join(' '));
    for (const c of files) assert.equal(c.size, lstatSync(join(mnt, c.path)).size, c.path);
    writeFileSync(join(mnt, 'written-by-test'), 'x'.repeat(1234));
    appendFileSync(join(mnt, 'bin', 'busybox'), 'appended');
    cli.ok(['umount', 'first']);
    await page.locator('#containers li', { hasText: 'first' }).click();
    await page.waitForSelector('#detail .container-detail .files');
    const panel = page.locator('#detail .container-detail');
    const shown = await panel.locator('.file[data-path]').evaluateAll((els) => els.map((e) => `${e.querySelector('.mark')!.textContent} ${e.getAttribute('data-path')}`));
    assert.deepEqual(shown.sort(), cli.ok(['diff', 'first']).trim().split('\n').sort());
    assert.ok(shown.includes('A /written-by-test') && shown.includes('C /bin/busybox'), shown.join(' | '));
    const bytes = busyboxLayer().get('/bin/busybox')!;
    const state = await ui.api<UiState>('/api/state');
    const base = state.layers.find((l) => l.parent === null && l.kind === 'image')!;
    const row = await panel.locator('table.copyups tr[data-path="/bin/busybox"] td').allTextContents();
    assert.deepEqual(row, ['/bin/busybox', shortId(base.chainId!), humanSize(bytes), humanSize(bytes)], 'vfs copied the whole file at create');
  });

  await t.test('a container created by another process appears within 2 s, and goes when removed', async () => {
    cli.ok(['create', '--name', 'from-elsewhere', 'corpus/busybox']);
    const made = Date.now();
    await page.locator('#containers li .name', { hasText: 'from-elsewhere' }).waitFor({ timeout: 2000 });
    t.diagnostic(`appeared after ${Date.now() - made} ms`);
    cli.ok(['rm', 'from-elsewhere']);
    await page.locator('#containers li .name', { hasText: 'from-elsewhere' }).waitFor({ state: 'detached', timeout: 2000 });
  });

  assert.deepEqual(errors, [], 'no errors in the page');
});
