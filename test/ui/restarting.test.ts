// strata ui over a real restarting container (runc, its monitor, --restart always, a process
// that exits 3): the page's list and /api/state say "restarting" while `ps` says
// "Restarting (3) … ago", not "running" as the raw run state would.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { UiState } from '../../src/ui/views.js';
import { runtimeStore } from '../runtime/harness.js';
import { launchBrowser, startUi } from '../helpers/ui.js';

const s = runtimeStore('overlay2', { after });

test('a container waiting for its restart policy shows as restarting, as ps shows it', { timeout: 120_000 }, async (t) => {
  const hooks = (fn: () => void | Promise<void>) => t.after(fn);
  t.after(() => void s.cli.run(['rm', '-f', 'ui-rs']));
  s.cli.ok(['run', '-d', '--name', 'ui-rs', '--network', 'none', '--restart', 'always', 'bb', 'sh', '-c', 'exit 3']);
  const ui = await startUi(s.root, 'overlay2', hooks);
  const browser = await launchBrowser(hooks);
  const page = await browser.newPage();
  await page.goto(ui.url);

  // The process runs for an instant between waits that grow: look until ps, the api and the
  // page all saw it restarting at one moment.
  const end = Date.now() + 60_000;
  let seen = '';
  for (;;) {
    const ps = s.cli.ok(['ps', '--format', '{{.State}}|{{.Status}}']).trim();
    const api = (await ui.api<UiState>('/api/state')).containers.find((c) => c.name === 'ui-rs')?.status;
    const listed = await page.locator('#containers li', { hasText: 'ui-rs' }).locator('.status').textContent({ timeout: 5000 });
    seen = `ps ${ps}, api ${api}, page ${listed}`;
    if (/^restarting\|Restarting \(3\) .* ago$/.test(ps) && api === 'restarting' && listed === 'restarting') break;
    assert.ok(Date.now() < end, `never seen restarting everywhere at once (last: ${seen})`);
    await new Promise((r) => setTimeout(r, 100));
  }
});
