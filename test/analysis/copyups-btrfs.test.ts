// On a loop-mounted btrfs of its own.
import { tmpdirOn, useBtrfs } from '../helpers/fsimages.js';
import { copyUpSuite } from './copyup-suite.js';

tmpdirOn(useBtrfs(1024));
copyUpSuite('btrfs');
