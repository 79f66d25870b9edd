// The import-boundary rule in eslint.config.js, checked on deliberate violations: code placed
// (virtually) in a lower layer or a driver backend that imports what it must not fails the lint,
// and the imports the layering allows pass.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { ESLint } from 'eslint';
import { repoRoot } from '../helpers/env.js';

const eslint = new ESLint({ cwd: repoRoot });

/** The boundary messages for one import line in a file at `path` (relative to the repository). */
async function boundaryErrors(path: string, specifier: string): Promise<string[]> {
  const code = `import { x } from '${specifier}';\nexport const y = x;\n`;
  const [result] = await eslint.lintText(code, { filePath: join(repoRoot, path) });
  return result.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

const refused: [string, string][] = [
  ['src/sys/fixture.ts', '../drivers/driver.js'],
  ['src/sys/fixture.ts', '../reference/reference.js'],
  ['src/reference/fixture.ts', '../registry/client.js'],
  ['src/archive/tar/fixture.ts', '../../drivers/index.js'],
  ['src/archive/fixture.ts', '../index.js'],
  ['src/drivers/fixture.ts', '../store/layers.js'],
  ['src/drivers/vfs/fixture.ts', '../../image/types.js'],
  ['src/image/fixture.ts', '../store/images.js'],
  ['src/image/fixture.ts', '../drivers/driver.js'],
  ['src/registry/fixture.ts', '../store/store.js'],
  ['src/runtime/fixture.ts', '../store/run.js'],
  ['src/registry/fixture.ts', '../cli/main.js'],
  ['src/store/fixture.ts', '../ui/server.js'],
  ['src/ui/fixture.ts', '../cli/main.js'],
  // backends never import each other, nor select.ts or index.ts
  ['src/drivers/aufs/fixture.ts', '../fuse-overlayfs/fuseoverlay.js'],
  ['src/drivers/overlay2/fixture.ts', '../fuse-overlayfs/fuseoverlay.js'],
  ['src/drivers/devicemapper/fixture.ts', '../select.js'],
  ['src/drivers/zfs/fixture.ts', '../index.js'],
  ['src/drivers/btrfs/fixture.ts', '../overlay/base.js'],
  // the shared parts are below every backend
  ['src/drivers/common/fixture.ts', '../vfs/vfs.js'],
  ['src/drivers/overlay/fixture.ts', '../overlay2/overlay2.js'],
];

const allowed: [string, string][] = [
  ['src/archive/fixture.ts', '../sys/linux.js'],
  ['src/image/fixture.ts', '../reference/digest.js'],
  ['src/drivers/vfs/fixture.ts', '../driver.js'],
  ['src/drivers/vfs/fixture.ts', '../common/copytree.js'],
  ['src/drivers/vfs/fixture.ts', '../../archive/apply.js'],
  ['src/drivers/fuse-overlayfs/fixture.ts', '../overlay/base.js'],
  ['src/drivers/overlay/fixture.ts', '../common/mountref.js'],
  ['src/drivers/fixture.ts', './vfs/vfs.js'],
  ['src/store/fixture.ts', '../drivers/index.js'],
  ['src/cli/fixture.ts', '../registry/pull.js'],
  ['src/store/fixture.ts', '../registry/pull.js'],
  ['src/store/fixture.ts', '../runtime/spec.js'],
  ['src/ui/fixture.ts', '../store/store.js'],
  ['src/cli/fixture.ts', '../ui/server.js'],
];

test('the lint fails when a lower layer imports a higher one, or a backend another backend', async () => {
  for (const [path, specifier] of refused) {
    assert.notDeepEqual(await boundaryErrors(path, specifier), [], `${path} importing ${specifier} should fail the lint`);
  }
});

test('the imports the layering allows pass the lint', async () => {
  for (const [path, specifier] of allowed) {
    assert.deepEqual(await boundaryErrors(path, specifier), [], `${path} importing ${specifier} should pass`);
  }
});
