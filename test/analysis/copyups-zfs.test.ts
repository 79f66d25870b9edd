// On a zfs-fuse pool of its own.
import { tmpdirOn, useZfsPool } from '../helpers/fsimages.js';
import { copyUpSuite } from './copyup-suite.js';

tmpdirOn(useZfsPool(1024));
copyUpSuite('zfs');
