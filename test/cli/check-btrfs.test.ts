// check finds and repairs every orphan and leftover kind on btrfs, on a loop-mounted btrfs of its own.
import { tmpdirOn, useBtrfs } from '../helpers/fsimages.js';
import { orphanSuite } from './check-suite.js';

tmpdirOn(useBtrfs());
orphanSuite('btrfs');
