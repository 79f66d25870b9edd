import { runChild } from '../drivers/overlay-fixtures.js';
import { unmountAllUnder } from '../helpers/mounts.js';
import { corpusSuite } from './corpus-suite.js';

// The driver's own cleanup first (what a store close does), then whatever `strata mount`
// still holds.
corpusSuite('aufs', {
  cleanup: (root) => {
    runChild('src/drivers/aufs/aufs.js', 'await (await mod.AufsDriver.open({ root: args[0], options: {} })).cleanup();', [root]);
    unmountAllUnder(root);
  },
});
