// The run scenario on the vfs driver.
import { runScenario } from './run-scenario.js';

runScenario('vfs');
