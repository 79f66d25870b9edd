// The fuzz targets, by name: one per parser that reads untrusted input. Each module is loaded
// only by the workers that run it.
import type { TargetSpec } from '../target.js';

export const targets: Record<string, TargetSpec> = {
  tar: { sync: false, make: async () => (await import('./tar.js')).make() as never },
  apply: { sync: false, isolate: true, make: async () => (await import('./apply.js')).make() as never },
  image: { sync: true, make: async () => (await import('./image.js')).make() as never },
  reference: { sync: true, make: async () => (await import('./reference.js')).make() as never },
  // GO-TEMPLATE TARGET: the Go-template engine (src/cli/template/, being written on another
  // branch) gets its target here once merged: `template: { sync: true, make: ... }` from a
  // targets/template.ts that generates templates from the grammar ({{.Field}}, pipelines,
  // range/if/with/end, json/join/upper/… functions) plus character edits, executes each
  // against inspect-like data, and counts the engine's own template error as clean.
};
