// The run scenario on the btrfs driver, on a loop-mounted btrfs of its own.
import { tmpdirOn, useBtrfs } from '../helpers/fsimages.js';
import { runScenario } from './run-scenario.js';

tmpdirOn(useBtrfs());
runScenario('btrfs');
