import assert from 'node:assert/strict';
import { loopsUnder } from '../../src/drivers/devicemapper/devicemapper.js';
import { runChild } from '../drivers/overlay-fixtures.js';
import { unmountAllUnder } from '../helpers/mounts.js';
import { corpusSuite } from './corpus-suite.js';

// The driver's own cleanup first (what a store close does), then the devices `strata mount`
// still holds (their loop devices autoclear), deepest first so the pool goes last; nothing of
// the root may stay attached.
corpusSuite('devicemapper', {
  cleanup: (root) => {
    runChild('src/drivers/devicemapper/devicemapper.js', 'await (await mod.DevmapperDriver.open({ root: args[0], options: {} })).cleanup();', [root]);
    unmountAllUnder(root);
    assert.deepEqual(loopsUnder(root), [], `loop devices left attached under ${root}`);
  },
});
