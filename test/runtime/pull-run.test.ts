// `run`/`create` with an image the store lacks (issue #12), against a real docker-registry on
// 127.0.0.1: docker's "Unable to find image 'x' locally" and the pull progress on stderr,
// `--pull missing|always|never`, and `--platform` (an index's other platform is pulled; a
// platform the image or the registry lacks is refused with docker 20.10's words, exit 125 for
// run and 1 for create, and nothing is left behind).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { fileCleanup, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { leftovers, runtimeStore } from './harness.js';

const files = fileCleanup();
after(files.run);
const s = runtimeStore('overlay2', { after });
const { cli } = s;
let reg: TestRegistry;

before(async () => {
  reg = await startRegistry(files.add);
  await reg.load('busybox');
  await reg.load('multiarch');
});

function imageIds(): string[] {
  return cli.ok(['images', '-q', '--no-trunc']).trim().split('\n').filter(Boolean).sort();
}

describe('run and create pull a missing image (overlay2)', () => {
  test("run of a missing image says so on stderr, pulls it with docker's progress, and runs it", () => {
    const ref = `${reg.host}/corpus/busybox`;
    const r = cli.run(['run', '--rm', '--network', 'none', ref, 'echo', 'hi']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'hi\n');
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines[0], `Unable to find image '${ref}:latest' locally`);
    assert.equal(lines[1], `latest: Pulling from ${reg.host}/corpus/busybox`);
    assert.match(lines.at(-2)!, /^Digest: sha256:[0-9a-f]{64}$/);
    // (the store holds the same image as `bb` already, which strata's pull reports as up to date)
    assert.match(lines.at(-1)!, new RegExp(`^Status: (Downloaded newer image|Image is up to date) for ${ref}:latest$`));
    // Present now: nothing is said, nothing pulled.
    const again = cli.run(['run', '--rm', '--network', 'none', ref, 'echo', 'again']);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stderr, '');
    assert.equal(again.stdout, 'again\n');
    // --pull always asks the registry even so; create prints only the ID on stdout.
    const always = cli.run(['create', '--pull', 'always', '--network', 'none', ref, 'true']);
    assert.equal(always.code, 0, always.stderr);
    assert.match(always.stdout, /^[0-9a-f]{64}\n$/);
    assert.doesNotMatch(always.stderr, /Unable to find image/);
    assert.match(always.stderr, new RegExp(`Status: Image is up to date for ${ref}:latest\\n$`));
    cli.ok(['rm', always.stdout.trim()]);
    cli.ok(['rmi', ref]);
    assert.deepEqual(leftovers(s.root, s.work), []);
  });

  test('--pull never and a missing image: docker\'s "No such image", 125 for run, 1 for create, nothing made', () => {
    const before = imageIds();
    const ref = `${reg.host}/corpus/busybox`;
    const run = cli.run(['run', '--rm', '--pull', 'never', ref, 'true']);
    assert.equal(run.code, 125);
    assert.equal(run.stderr, `Error: No such image: ${ref}:latest\n`);
    const create = cli.run(['create', '--pull', 'never', ref]);
    assert.equal(create.code, 1);
    assert.equal(create.stderr, `Error: No such image: ${ref}:latest\n`);
    // A name the registry does not have: the pull's own error, after docker's first line.
    const nope = cli.run(['run', '--rm', `${reg.host}/corpus/nope:1`, 'true']);
    assert.equal(nope.code, 125);
    assert.match(nope.stderr, new RegExp(`^Unable to find image '${reg.host}/corpus/nope:1' locally\\n`));
    assert.match(nope.stderr, /^Error: .*(not found|unknown)/im);
    const bad = cli.run(['run', '--rm', '--pull', 'sometimes', 'bb', 'true']);
    assert.equal(bad.code, 125);
    assert.equal(bad.stderr, `Error: invalid pull option: 'sometimes': must be one of "always", "missing" or "never"\n`);
    assert.deepEqual(imageIds(), before);
    assert.equal(cli.ok(['ps', '-a', '-q']), '');
  });

  test('--platform: the platform asked for is pulled from an index; one it lacks is refused', () => {
    const ref = `${reg.host}/corpus/multiarch`;
    const id = cli.ok(['create', '--platform', 'linux/arm64', '--network', 'none', ref, 'true']).trim();
    const img = JSON.parse(cli.ok(['inspect', '--type', 'image', ref]))[0];
    assert.equal(img.Architecture, 'arm64');
    assert.equal(JSON.parse(cli.ok(['inspect', id]))[0].Image, img.Id);
    cli.ok(['rm', id]);
    // The store's image is arm64: asking for amd64 without pulling is refused, with pulling it is fetched.
    const never = cli.run(['run', '--rm', '--pull', 'never', '--platform', 'linux/amd64', ref, 'true']);
    assert.equal(never.code, 125);
    assert.equal(never.stderr, `Error: image with reference ${ref} was found but does not match the specified platform: wanted linux/amd64, actual: linux/arm64/v8\n`);
    const amd = cli.run(['run', '--rm', '--network', 'none', '--platform', 'linux/amd64', ref, 'echo', 'amd64']);
    assert.equal(amd.code, 0, amd.stderr);
    assert.equal(amd.stdout, 'amd64\n');
    assert.match(amd.stderr, new RegExp(`^Unable to find image '${ref}:latest' locally\\n`));
    assert.equal(JSON.parse(cli.ok(['inspect', '--type', 'image', ref]))[0].Architecture, 'amd64');
    // A platform the index lacks, and one a single-platform image is not.
    const none = cli.run(['run', '--rm', '--platform', 'linux/s390x', ref, 'true']);
    assert.equal(none.code, 125);
    assert.match(none.stderr, /^Error: no matching manifest for linux\/s390x in the manifest list entries/m);
    const single = cli.run(['create', '--platform', 'linux/arm64', `${reg.host}/corpus/busybox`]);
    assert.equal(single.code, 1);
    assert.match(single.stderr, /^Error: image with reference .*corpus\/busybox:latest was found but does not match the specified platform: wanted linux\/arm64(\/v8)?, actual: linux\/amd64$/m);
    const bogus = cli.run(['run', '--rm', '--platform', 'bogus', 'bb', 'true']);
    assert.equal(bogus.code, 125);
    assert.match(bogus.stderr, /^Error: invalid platform "bogus"/);
    assert.equal(cli.ok(['ps', '-a', '-q']), '');
    assert.deepEqual(leftovers(s.root, s.work), []);
  });
});
