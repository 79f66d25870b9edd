// The store's default root, in a module of its own so that the CLI can name it without loading
// the store (the CLI loads the store only when a command needs it).
export const DEFAULT_ROOT = '/var/lib/strata';
