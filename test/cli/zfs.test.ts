// The corpus suite through the CLI with --driver zfs, on a zfs-fuse pool of its own.
import { tmpdirOn, useZfsPool } from '../helpers/fsimages.js';
import { corpusSuite } from './corpus-suite.js';

tmpdirOn(useZfsPool());
corpusSuite('zfs');
