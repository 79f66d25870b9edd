import { copyUpSuite } from './copyup-suite.js';

copyUpSuite('vfs');
