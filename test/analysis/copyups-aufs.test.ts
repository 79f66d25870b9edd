import { runChild } from '../drivers/overlay-fixtures.js';
import { copyUpSuite } from './copyup-suite.js';

copyUpSuite('aufs', {
  cleanup: (root) => runChild('src/drivers/aufs/aufs.js', 'await (await mod.AufsDriver.open({ root: args[0], options: {} })).cleanup();', [root]),
});
