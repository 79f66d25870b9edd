// `npm run bench`: runs every benchmark module listed here, one after another, or only those
// named on the command line (`node dist/bench/run.js pull`).
import * as apply from './apply.js';
import * as containers from './containers.js';
import * as deep from './deep.js';
import * as growth from './growth.js';
import * as peers from './peers.js';
import * as pull from './pull.js';
import * as runtime from './runtime.js';
import * as startup from './startup.js';
import * as ui from './ui.js';

interface Bench {
  name: string;
  run(): Promise<void>;
}

const benches: Bench[] = [startup, growth, deep, apply, containers, pull, peers, runtime, ui];

const wanted = process.argv.slice(2);
const unknown = wanted.filter((w) => !benches.some((b) => b.name === w));
if (unknown.length > 0) {
  console.error(`unknown benchmark: ${unknown.join(', ')} (have: ${benches.map((b) => b.name).join(', ')})`);
  process.exit(2);
}
// One benchmark that fails (a peer tool missing a feature, a full disk) must not hide the rows of
// the others: its error is printed, the rest run, and the exit code says something failed.
const failed: string[] = [];
for (const b of benches) {
  if (wanted.length > 0 && !wanted.includes(b.name)) continue;
  console.log(`== ${b.name}`);
  try {
    await b.run();
  } catch (err) {
    failed.push(b.name);
    console.log(`${b.name}: failed: ${(err as Error).stack ?? String(err)}`);
  }
}
if (failed.length > 0) {
  console.log(`\nfailed: ${failed.join(', ')}`);
  process.exitCode = 1;
}
