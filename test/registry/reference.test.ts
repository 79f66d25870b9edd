// Cases re-expressed from the distribution/reference grammar's own test tables
// (reference_test.go, normalize_test.go), plus Docker's error wording.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  familiarName,
  familiarString,
  parseNormalizedNamed,
  parseReference,
  referenceString,
  repositoryName,
  withDefaultTag,
  withDigest,
  withTag,
} from '../../src/reference/reference.js';

const F64 = 'f'.repeat(64);
const F128 = 'f'.repeat(128);

interface ParseCase {
  input: string;
  err?: RegExp;
  repository?: string;
  domain?: string;
  tag?: string;
  digest?: string;
}

const parseCases: ParseCase[] = [
  { input: 'test_com', repository: 'test_com' },
  { input: 'test.com:tag', repository: 'test.com', tag: 'tag' },
  { input: 'test.com:5000', repository: 'test.com', tag: '5000' },
  { input: 'test.com/repo:tag', domain: 'test.com', repository: 'test.com/repo', tag: 'tag' },
  { input: 'test:5000/repo', domain: 'test:5000', repository: 'test:5000/repo' },
  { input: 'test:5000/repo:tag', domain: 'test:5000', repository: 'test:5000/repo', tag: 'tag' },
  { input: `test:5000/repo@sha256:${F64}`, domain: 'test:5000', repository: 'test:5000/repo', digest: `sha256:${F64}` },
  {
    input: `test:5000/repo:tag@sha256:${F64}`,
    domain: 'test:5000',
    repository: 'test:5000/repo',
    tag: 'tag',
    digest: `sha256:${F64}`,
  },
  { input: '', err: /repository name must have at least one component$/ },
  { input: ':justtag', err: /^invalid reference format$/ },
  { input: `@sha256:${F64}`, err: /^invalid reference format$/ },
  { input: `repo@sha256:${'f'.repeat(34)}`, err: /invalid checksum digest length/ },
  { input: `validname@invaliddigest:${F64}`, err: /unsupported digest algorithm/ },
  { input: 'Uppercase:tag', err: /^invalid reference format: repository name must be lowercase$/ },
  { input: 'test:5000/Uppercase/lowercase:tag', err: /repository name must be lowercase/ },
  { input: 'lowercase:Uppercase', repository: 'lowercase', tag: 'Uppercase' },
  { input: 'a/'.repeat(128) + 'a:tag', err: /repository name must not be more than 255 characters/ },
  {
    input: 'a/'.repeat(127) + 'a:tag-puts-this-over-max',
    domain: 'a',
    repository: 'a/'.repeat(127) + 'a',
    tag: 'tag-puts-this-over-max',
  },
  { input: 'aa/asdf$$^/aa', err: /^invalid reference format$/ },
  { input: 'sub-dom1.foo.com/bar/baz/quux', domain: 'sub-dom1.foo.com', repository: 'sub-dom1.foo.com/bar/baz/quux' },
  {
    input: 'sub-dom1.foo.com/bar/baz/quux:some-long-tag',
    domain: 'sub-dom1.foo.com',
    repository: 'sub-dom1.foo.com/bar/baz/quux',
    tag: 'some-long-tag',
  },
  {
    input: 'b.gcr.io/test.example.com/my-app:test.example.com',
    domain: 'b.gcr.io',
    repository: 'b.gcr.io/test.example.com/my-app',
    tag: 'test.example.com',
  },
  { input: 'xn--n3h.com/myimage:xn--n3h.com', domain: 'xn--n3h.com', repository: 'xn--n3h.com/myimage', tag: 'xn--n3h.com' },
  {
    input: `xn--7o8h.com/myimage:xn--7o8h.com@sha512:${F128}`,
    domain: 'xn--7o8h.com',
    repository: 'xn--7o8h.com/myimage',
    tag: 'xn--7o8h.com',
    digest: `sha512:${F128}`,
  },
  { input: 'foo_bar.com:8080', repository: 'foo_bar.com', tag: '8080' },
  { input: 'foo/foo_bar.com:8080', domain: 'foo', repository: 'foo/foo_bar.com', tag: '8080' },
  { input: '192.168.1.1', repository: '192.168.1.1' },
  { input: '192.168.1.1:tag', repository: '192.168.1.1', tag: 'tag' },
  { input: '192.168.1.1:5000', repository: '192.168.1.1', tag: '5000' },
  { input: '192.168.1.1/repo', domain: '192.168.1.1', repository: '192.168.1.1/repo' },
  { input: '192.168.1.1:5000/repo', domain: '192.168.1.1:5000', repository: '192.168.1.1:5000/repo' },
  { input: '192.168.1.1:5000/repo:5050', domain: '192.168.1.1:5000', repository: '192.168.1.1:5000/repo', tag: '5050' },
  { input: '[2001:db8::1]', err: /^invalid reference format$/ },
  { input: '[2001:db8::1]:5000', err: /^invalid reference format$/ },
  { input: '[2001:db8::1]:tag', err: /^invalid reference format$/ },
  { input: '[2001:db8::1]/repo', domain: '[2001:db8::1]', repository: '[2001:db8::1]/repo' },
  {
    input: '[2001:db8:1:2:3:4:5:6]/repo:tag',
    domain: '[2001:db8:1:2:3:4:5:6]',
    repository: '[2001:db8:1:2:3:4:5:6]/repo',
    tag: 'tag',
  },
  { input: '[2001:db8::1]:5000/repo', domain: '[2001:db8::1]:5000', repository: '[2001:db8::1]:5000/repo' },
  {
    input: '[2001:db8::1]:5000/repo:tag',
    domain: '[2001:db8::1]:5000',
    repository: '[2001:db8::1]:5000/repo',
    tag: 'tag',
  },
  {
    input: `[2001:db8::1]:5000/repo:tag@sha256:${F64}`,
    domain: '[2001:db8::1]:5000',
    repository: '[2001:db8::1]:5000/repo',
    tag: 'tag',
    digest: `sha256:${F64}`,
  },
  { input: '[2001:db8::]:5000/repo', domain: '[2001:db8::]:5000', repository: '[2001:db8::]:5000/repo' },
  { input: '[::1]:5000/repo', domain: '[::1]:5000', repository: '[::1]:5000/repo' },
  { input: '[fe80::1%eth0]:5000/repo', err: /^invalid reference format$/ },
  { input: '[fe80::1%@invalidzone]:5000/repo', err: /^invalid reference format$/ },
];

test('parseReference: grammar table', () => {
  for (const c of parseCases) {
    if (c.err) {
      assert.throws(() => parseReference(c.input), { message: c.err }, `input ${JSON.stringify(c.input)}`);
      continue;
    }
    const ref = parseReference(c.input);
    assert.equal(referenceString(ref), c.input, `round trip of ${c.input}`);
    assert.equal(repositoryName(ref), c.repository, `repository of ${c.input}`);
    assert.equal(ref.domain, c.domain ?? '', `domain of ${c.input}`);
    assert.equal(ref.tag, c.tag, `tag of ${c.input}`);
    assert.equal(ref.digest, c.digest, `digest of ${c.input}`);
  }
});

test('parseReference: domain and path split', () => {
  const cases: [string, string, string][] = [
    ['test.com/foo', 'test.com', 'foo'],
    ['test_com/foo', '', 'test_com/foo'],
    ['test:8080/foo', 'test:8080', 'foo'],
    ['test.com:8080/foo', 'test.com:8080', 'foo'],
    ['test-com:8080/foo', 'test-com:8080', 'foo'],
    ['xn--n3h.com:18080/foo', 'xn--n3h.com:18080', 'foo'],
  ];
  for (const [input, domain, path] of cases) {
    const ref = parseReference(input);
    assert.deepEqual([ref.domain, ref.path], [domain, path], input);
  }
});

test('parseNormalizedNamed: valid and invalid names', () => {
  const valid = [
    'docker/docker',
    'library/debian',
    'debian',
    'docker.io/docker/docker',
    'docker.io/library/debian',
    'docker.io/debian',
    'index.docker.io/docker/docker',
    'index.docker.io/library/debian',
    'index.docker.io/debian',
    '127.0.0.1:5000/docker/docker',
    '127.0.0.1:5000/library/debian',
    '127.0.0.1:5000/debian',
    '192.168.0.1',
    '192.168.0.1:80',
    '192.168.0.1:8/debian',
    '192.168.0.2:25000/debian',
    'thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev',
    '[fc00::1]:5000/docker',
    '[fc00::1]:5000/docker/docker',
    '[fc00:1:2:3:4:5:6:7]:5000/library/debian',
    'docker.io/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a',
    'Docker/docker',
    'DOCKER/docker',
    'docker-rules/docker',
    'docker---rules/docker',
    'doc/docker',
    'd/docker',
    'jess/t',
    'dock__er/docker',
    'localhost/app',
    'localhost:5000/app:v1',
  ];
  const invalid = [
    'https://github.com/docker/docker',
    'docker/Docker',
    '-docker',
    '-docker/docker',
    '-docker.io/docker/docker',
    'docker///docker',
    'docker.io/docker/Docker',
    'docker.io/docker///docker',
    '[fc00::1]',
    '[fc00::1]:5000',
    'fc00::1:5000/debian',
    '[fe80::1%eth0]:5000/debian',
    '[2001:db8:3:4::192.0.2.33]:5000/debian',
    '1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a',
    'docker-/docker',
    '-docker-/docker',
    '____/____',
    '_docker/_docker',
    'dock..er/docker',
    'dock_.er/docker',
    'dock-.er/docker',
    'docker/',
    'this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_'.repeat(4) + '/docker',
  ];
  for (const s of valid) assert.doesNotThrow(() => parseNormalizedNamed(s), s);
  for (const s of invalid) assert.throws(() => parseNormalizedNamed(s), /invalid/, s);
});

test('parseNormalizedNamed: familiar, full, domain and path agree for every spelling', () => {
  const cases: { path: string; familiar: string; full: string; ambiguous?: string; domain: string }[] = [
    { path: 'fooo/bar', familiar: 'fooo/bar', full: 'docker.io/fooo/bar', ambiguous: 'index.docker.io/fooo/bar', domain: 'docker.io' },
    { path: 'library/ubuntu', familiar: 'ubuntu', full: 'docker.io/library/ubuntu', ambiguous: 'library/ubuntu', domain: 'docker.io' },
    { path: 'nonlibrary/ubuntu', familiar: 'nonlibrary/ubuntu', full: 'docker.io/nonlibrary/ubuntu', domain: 'docker.io' },
    { path: 'other/library', familiar: 'other/library', full: 'docker.io/other/library', domain: 'docker.io' },
    { path: 'private/moonbase', familiar: '127.0.0.1:8000/private/moonbase', full: '127.0.0.1:8000/private/moonbase', domain: '127.0.0.1:8000' },
    { path: 'privatebase', familiar: '127.0.0.1:8000/privatebase', full: '127.0.0.1:8000/privatebase', domain: '127.0.0.1:8000' },
    { path: 'private/moonbase', familiar: 'example.com/private/moonbase', full: 'example.com/private/moonbase', domain: 'example.com' },
    { path: 'privatebase', familiar: 'example.com/privatebase', full: 'example.com/privatebase', domain: 'example.com' },
    { path: 'private/moonbase', familiar: 'example.com:8000/private/moonbase', full: 'example.com:8000/private/moonbase', domain: 'example.com:8000' },
    { path: 'privatebasee', familiar: 'example.com:8000/privatebasee', full: 'example.com:8000/privatebasee', domain: 'example.com:8000' },
    {
      path: 'library/ubuntu-12.04-base',
      familiar: 'ubuntu-12.04-base',
      full: 'docker.io/library/ubuntu-12.04-base',
      ambiguous: 'index.docker.io/library/ubuntu-12.04-base',
      domain: 'docker.io',
    },
    { path: 'library/foo', familiar: 'foo', full: 'docker.io/library/foo', ambiguous: 'docker.io/foo', domain: 'docker.io' },
    { path: 'library/foo/bar', familiar: 'library/foo/bar', full: 'docker.io/library/foo/bar', domain: 'docker.io' },
    { path: 'store/foo/bar', familiar: 'store/foo/bar', full: 'docker.io/store/foo/bar', domain: 'docker.io' },
    { path: 'bar', familiar: 'Foo/bar', full: 'Foo/bar', domain: 'Foo' },
    { path: 'bar', familiar: 'FOO/bar', full: 'FOO/bar', domain: 'FOO' },
  ];
  for (const c of cases) {
    for (const s of [c.familiar, c.full, ...(c.ambiguous ? [c.ambiguous] : [])]) {
      const ref = parseNormalizedNamed(s);
      assert.equal(familiarName(ref), c.familiar, `familiar of ${s}`);
      assert.equal(referenceString(ref), c.full, `full of ${s}`);
      assert.equal(ref.domain, c.domain, `domain of ${s}`);
      assert.equal(ref.path, c.path, `path of ${s}`);
    }
  }
});

test('parseNormalizedNamed: docker normalisation of common spellings', () => {
  const cases: [string, string, string][] = [
    ['nginx', 'docker.io/library/nginx:latest', 'nginx:latest'],
    ['nginx:1.25', 'docker.io/library/nginx:1.25', 'nginx:1.25'],
    ['user/app', 'docker.io/user/app:latest', 'user/app:latest'],
    ['index.docker.io/library/redis', 'docker.io/library/redis:latest', 'redis:latest'],
    ['localhost/app', 'localhost/app:latest', 'localhost/app:latest'],
    ['127.0.0.1:5000/corpus/nginx', '127.0.0.1:5000/corpus/nginx:latest', '127.0.0.1:5000/corpus/nginx:latest'],
    ['[::1]:5000/corpus/nginx:docker', '[::1]:5000/corpus/nginx:docker', '[::1]:5000/corpus/nginx:docker'],
    ['test_com/foo', 'docker.io/test_com/foo:latest', 'test_com/foo:latest'],
    ['docker/migrator', 'docker.io/docker/migrator:latest', 'docker/migrator:latest'],
    ['docker.io/library/foo/bar', 'docker.io/library/foo/bar:latest', 'library/foo/bar:latest'],
  ];
  for (const [input, full, familiar] of cases) {
    const ref = withDefaultTag(parseNormalizedNamed(input));
    assert.equal(referenceString(ref), full, input);
    assert.equal(familiarString(ref), familiar, input);
  }
});

test('parseNormalizedNamed: tag and digest together keep both; digest alone gets no tag', () => {
  const d = 'sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa';
  const ref = parseNormalizedNamed(`busybox:latest@${d}`);
  assert.equal(referenceString(ref), `docker.io/library/busybox:latest@${d}`);
  assert.equal(familiarString(ref), `busybox:latest@${d}`);
  const byDigest = withDefaultTag(parseNormalizedNamed(`redis@${d}`));
  assert.equal(byDigest.tag, undefined);
  assert.equal(referenceString(byDigest), `docker.io/library/redis@${d}`);
});

test('parseNormalizedNamed: Docker error wording', () => {
  assert.throws(() => parseNormalizedNamed('Nginx'), { message: 'invalid reference format: repository name (library/Nginx) must be lowercase' });
  assert.throws(() => parseNormalizedNamed('nginx:'), { message: 'invalid reference format' });
  assert.throws(() => parseNormalizedNamed(''), /repository name must have at least one component/);
  assert.throws(() => parseNormalizedNamed('a'.repeat(64).replace(/a/g, 'b')), /cannot specify 64-byte hexadecimal strings/);
  assert.throws(() => parseNormalizedNamed('nginx@sha256:abc'), /invalid reference format/);
  // Tags may carry uppercase; only the repository must be lowercase.
  assert.equal(parseNormalizedNamed('nginx:Latest').tag, 'Latest');
});

test('withTag and withDigest validate their input', () => {
  const ref = parseNormalizedNamed('busybox');
  assert.throws(() => withTag(ref, '-foo'), /invalid tag format/);
  assert.equal(referenceString(withTag(ref, 'TAG5')), 'docker.io/library/busybox:TAG5');
  assert.throws(() => withDigest(ref, 'foo'), /invalid checksum digest format/);
  assert.throws(() => withDigest(ref, 'sha256:1234'), /invalid checksum digest length/);
  assert.equal(withDigest(ref, `sha256:${F64}`).digest, `sha256:${F64}`);
});
