import assert from 'node:assert/strict';
import { loopsUnder } from '../../src/drivers/devicemapper.js';
import { unmountAllUnder } from '../drivers/overlay-fixtures.js';
import { corpusSuite } from './corpus-suite.js';

// Devices the CLI processes left mounted are unmounted here (their loop devices autoclear),
// then the pool; nothing of the root may stay attached.
corpusSuite('devicemapper', {
  cleanup: (root) => {
    unmountAllUnder(root);
    assert.deepEqual(loopsUnder(root), [], `loop devices left attached under ${root}`);
  },
});
