import assert from 'node:assert/strict';
import { loopsUnder } from '../../src/drivers/devicemapper/devicemapper.js';
import { runChild } from '../drivers/overlay-fixtures.js';
import { unmountAllUnder } from '../helpers/mounts.js';
import { copyUpSuite } from './copyup-suite.js';

// The driver's own cleanup (what the corpus suite does too), then no loop device may stay.
copyUpSuite('devicemapper', {
  cleanup: (root) => {
    runChild('src/drivers/devicemapper/devicemapper.js', 'await (await mod.DevmapperDriver.open({ root: args[0], options: {} })).cleanup();', [root]);
    unmountAllUnder(root);
    assert.deepEqual(loopsUnder(root), [], `loop devices left attached under ${root}`);
  },
});
