// The run scenario on the zfs driver, on a zfs-fuse pool of its own.
import { tmpdirOn, useZfsPool } from '../helpers/fsimages.js';
import { runScenario } from './run-scenario.js';

tmpdirOn(useZfsPool());
runScenario('zfs');
