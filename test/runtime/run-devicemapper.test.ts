// The run scenario on the devicemapper driver; the driver's own cleanup last, and no loop
// device of the store may stay attached.
import assert from 'node:assert/strict';
import { loopsUnder } from '../../src/drivers/devicemapper/devicemapper.js';
import { runChild } from '../drivers/overlay-fixtures.js';
import { unmountAllUnder } from '../helpers/mounts.js';
import { runScenario } from './run-scenario.js';

runScenario('devicemapper', (root) => {
  runChild('src/drivers/devicemapper/devicemapper.js', 'await (await mod.DevmapperDriver.open({ root: args[0], options: {} })).cleanup();', [root]);
  unmountAllUnder(root);
  assert.deepEqual(loopsUnder(root), [], `loop devices left attached under ${root}`);
});
