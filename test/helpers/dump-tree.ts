// `node dump-tree.js DIR`: snapshotTree of DIR as JSON on stdout. The rootless tests run it
// inside a user namespace (strata's or podman's), where a mounted root is visible and its
// owners read as the image's ids, so that trees from different namespaces compare directly.
import { snapshotTree } from './tree.js';

const dir = process.argv[2];
if (!dir) {
  process.stderr.write('usage: dump-tree DIR\n');
  process.exit(2);
}
const tree = await snapshotTree(dir);
process.stdout.write(JSON.stringify([...tree]));
