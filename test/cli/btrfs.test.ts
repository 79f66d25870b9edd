// The corpus suite through the CLI with --driver btrfs, on a loop-mounted btrfs of its own.
import { tmpdirOn, useBtrfs } from '../helpers/fsimages.js';
import { corpusSuite } from './corpus-suite.js';

tmpdirOn(useBtrfs());
corpusSuite('btrfs');
