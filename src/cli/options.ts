// Option parsing shared by the CLI's commands.

/** commander's argument parser for a repeatable option (`--storage-opt a --storage-opt b`). */
export function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}
