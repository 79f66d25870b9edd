import { corpusSuite } from './corpus-suite.js';

corpusSuite('overlay2');
