// The run scenario on the fuse-overlayfs driver.
import { runScenario } from './run-scenario.js';

runScenario('fuse-overlayfs');
