// docs/ui.png, remade by hand (`node dist/test/ui/screenshot.js [FILE]` after a build): the
// corpus images and two containers in a scratch store, the page in headless chromium with the
// nginx image selected. Not a test: nothing is checked, a picture is taken.
import { join } from 'node:path';
import { strataIn } from '../helpers/cli.js';
import { corpusImage, repoRoot, scratch } from '../helpers/env.js';
import { unmountAllUnder } from '../helpers/mounts.js';
import { overlay2Available } from '../helpers/registry.js';
import { launchBrowser, startUi } from '../helpers/ui.js';

const out = process.argv[2] ?? join(repoRoot, 'docs', 'ui.png');
const driver = (await overlay2Available()) ? 'overlay2' : 'vfs';
const root = scratch(null, 'strata-shot-');
const cleanups: (() => void | Promise<void>)[] = [];
try {
  const cli = strataIn(root, driver);
  for (const image of ['busybox.docker.tar', 'app.docker.tar', 'edge.docker.tar', 'xattr.oci.tar', 'nginx.oci.tar']) {
    // an OCI archive names no repository: it gets the name the docker archives carry
    const id = cli.ok(['load', '-i', corpusImage(image)]).match(/^Loaded image ID: (\S+)$/m)?.[1];
    if (id) cli.ok(['tag', id, `corpus/${image.split('.')[0]}:latest`]);
  }
  cli.ok(['create', '--name', 'web', 'corpus/app']);
  cli.ok(['create', '--name', 'edge-1', 'corpus/edge']);
  const ui = await startUi(root, driver, (fn) => cleanups.push(fn));
  const browser = await launchBrowser((fn) => cleanups.push(fn));
  const page = await browser.newPage({ viewport: { width: 1800, height: 1000 } });
  await page.goto(ui.url);
  await page.locator('#images li', { hasText: 'corpus/app' }).click();
  await page.waitForSelector('#detail .image-detail .analysis');
  await page.screenshot({ path: out });
  console.log(`${out} written`);
} finally {
  for (const fn of cleanups.reverse()) await fn();
  unmountAllUnder(root);
}
