// The CLI as users run it: bin/strata.cjs runs the dist/strata.cjs bundle from the V8 code
// cache that `npm run build` leaves beside it.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Script } from 'node:vm';
import { repoRoot } from '../helpers/env.js';

const loader = createRequire(import.meta.url)(join(repoRoot, 'bin', 'bundle-loader.cjs')) as { compileBundle(): Script };

test('the code cache made by the build fits the bundle and this node', () => {
  // A rejected cache still runs (V8 compiles afresh), just slower: only this check sees it.
  assert.equal(loader.compileBundle().cachedDataRejected, false);
});
