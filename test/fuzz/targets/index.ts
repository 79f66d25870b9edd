// The fuzz targets, by name: one per parser that reads untrusted input. Each module is loaded
// only by the workers that run it.
import type { TargetSpec } from '../target.js';

export const targets: Record<string, TargetSpec> = {
  tar: { sync: false, make: async () => (await import('./tar.js')).make() as never },
  apply: { sync: false, isolate: true, make: async () => (await import('./apply.js')).make() as never },
  image: { sync: true, make: async () => (await import('./image.js')).make() as never },
  reference: { sync: true, make: async () => (await import('./reference.js')).make() as never },
  template: { sync: true, make: async () => (await import('./template.js')).make() as never },
};
