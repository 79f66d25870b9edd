import { overlay2Available } from '../helpers/registry.js';
import { copyUpSuite } from './copyup-suite.js';

copyUpSuite('overlay2', { available: async () => ((await overlay2Available()) ? null : 'overlay2 does not mount here') });
