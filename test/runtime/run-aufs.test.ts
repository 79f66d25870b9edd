// The run scenario on the aufs driver; the driver's own cleanup (what a store close does) last.
import { runChild } from '../drivers/overlay-fixtures.js';
import { runScenario } from './run-scenario.js';

runScenario('aufs', (root) => {
  runChild('src/drivers/aufs/aufs.js', 'await (await mod.AufsDriver.open({ root: args[0], options: {} })).cleanup();', [root]);
});
