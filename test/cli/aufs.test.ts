import { corpusSuite } from './corpus-suite.js';
import { unmountAllUnder } from '../drivers/overlay-fixtures.js';

// The CLI leaves `strata mount` mounts to `strata umount`; whatever a failed test left goes here.
corpusSuite('aufs', { cleanup: (root) => void unmountAllUnder(root) });
