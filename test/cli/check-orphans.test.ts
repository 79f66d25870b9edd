// check finds and repairs every orphan and leftover kind on vfs and overlay2 (see check-suite).
import { orphanSuite } from './check-suite.js';

orphanSuite('vfs');
orphanSuite('overlay2');
