import { corpusSuite } from './corpus-suite.js';

corpusSuite('fuse-overlayfs');
