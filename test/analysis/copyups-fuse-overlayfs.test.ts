import { copyUpSuite } from './copyup-suite.js';

copyUpSuite('fuse-overlayfs');
