// The store's default root, in a module of its own so that the CLI can name it without loading
// the store (the CLI loads the store only when a command needs it). A user without root gets
// theirs under ~/.local/share (sys/rootless.ts).
export { ROOT_STORE as DEFAULT_ROOT } from '../sys/rootless.js';
