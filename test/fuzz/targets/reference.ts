// Target: image references (src/reference/reference.ts). Inputs are strings from the grammar
// (domain, port, path components, tag, digest; Docker's short forms) with character edits.
// Clean error: InvalidReferenceError (ours). Invariants: a parsed reference prints back to a string
// that parses to the same reference, and its familiar form normalises back to it.
import fc from 'fast-check';
import {
  familiarString,
  parseNormalizedNamed,
  parseReference,
  InvalidReferenceError,
  referenceString,
  withDigest,
  withTag,
  type Reference,
} from '../../../src/reference/reference.js';
import { editedString } from '../mutate.js';
import { FuzzViolation, type FuzzTarget } from '../target.js';

export interface RefInput {
  s: string;
  other: string;
}

// Strings built from character pools (fc.stringMatching is ten times slower per input).
const from = (chars: string, min: number, max: number) => fc.array(fc.constantFrom(...chars), { minLength: min, maxLength: max }).map((cs) => cs.join(''));
const LOWER = 'abcdefghijklmnopqrstuvwxyz0123456789';
const alnum = from(LOWER, 1, 6);
const component = fc.tuple(alnum, fc.array(fc.tuple(fc.constantFrom('.', '_', '__', '-', '---'), alnum), { maxLength: 2 })).map(([a, rest]) => a + rest.map(([s, b]) => s + b).join(''));
const hostLabel = fc.tuple(from(LOWER + 'ABC', 1, 1), from(LOWER + 'XYZ-', 0, 4), from(LOWER, 0, 1)).map(([a, b, c]) => (c === '' && b.endsWith('-') ? a : a + b + c));
const domain = fc.oneof(
  fc.constantFrom('docker.io', 'index.docker.io', 'localhost', '127.0.0.1', '[::1]', '[fe80::1]', 'Registry.Example.com', 'a-b.c', 'xn--x'),
  fc.array(hostLabel, { minLength: 1, maxLength: 3 }).map((cs) => cs.join('.')),
);
const port = fc.oneof(fc.constant(''), fc.integer({ min: 0, max: 70000 }).map((p) => `:${p}`));
const tag = fc.tuple(from('abcXYZ019_', 1, 1), from('abcXYZ019_.-', 0, 20)).map(([a, b]) => a + b);
/** n hex digits: a random 32-bit stretch repeated (the grammar only looks at the alphabet and the length). */
const hex = (n: number) => fc.nat().map((v) => v.toString(16).padStart(8, '0').repeat(Math.ceil(n / 8)).slice(0, n));
const digest = fc.oneof(
  hex(64).map((h) => `sha256:${h}`),
  hex(128).map((h) => `sha512:${h}`),
  hex(32).map((h) => `md5:${h}`),
  fc.constantFrom('sha256:', 'sha256:abc', 'SHA256:' + 'a'.repeat(64), 'sha256:' + 'A'.repeat(64), 'sha384:' + 'a'.repeat(95)),
);

const grammar = fc
  .tuple(fc.option(fc.tuple(domain, port), { nil: undefined }), fc.array(component, { minLength: 1, maxLength: 3 }), fc.option(tag, { nil: undefined }), fc.option(digest, { nil: undefined }))
  .map(([d, path, t, dg]) => `${d ? `${d[0]}${d[1]}/` : ''}${path.join('/')}${t !== undefined ? `:${t}` : ''}${dg !== undefined ? `@${dg}` : ''}`);

const CHARS = ['/', ':', '@', '.', '_', '-', 'A', 'a', '0', '[', ']', '%', ' ', '\n', '\0', '\u00e9', '\ud800', 'sha256:', '/'.repeat(3), 'a'.repeat(300), '-'.repeat(64), '_'.repeat(64), '.'.repeat(64)];

const refString = fc.oneof(
  { weight: 3, arbitrary: grammar },
  { weight: 4, arbitrary: editedString(grammar, CHARS) },
  { weight: 1, arbitrary: fc.string({ maxLength: 40, unit: 'binary' }) },
);

function same(a: Reference, b: Reference): boolean {
  return a.domain === b.domain && a.path === b.path && a.tag === b.tag && a.digest === b.digest;
}

function check(input: RefInput): void {
  let first: unknown;
  const attempt = (f: () => void) => {
    try {
      f();
    } catch (err) {
      if (!(err instanceof InvalidReferenceError)) throw err;
      first ??= err;
    }
  };
  attempt(() => {
    const ref = parseReference(input.s);
    const again = parseReference(referenceString(ref));
    if (!same(ref, again)) throw new FuzzViolation(`${JSON.stringify(input.s)} prints as ${JSON.stringify(referenceString(ref))}, which parses differently`);
  });
  attempt(() => {
    const ref = parseNormalizedNamed(input.s);
    const printed = referenceString(ref);
    if (!same(ref, parseNormalizedNamed(printed))) throw new FuzzViolation(`${JSON.stringify(input.s)} normalises to ${JSON.stringify(printed)}, which normalises differently`);
    // Docker's familiar form is ambiguous when the first path component looks like a host
    // (docker.io/a.b/c prints as a.b/c, a registry): only the other forms must round-trip.
    const familiar = familiarString(ref);
    const first = ref.path.split('/')[0]!;
    if (ref.domain === 'docker.io' && /[.:]/.test(first) || first === 'localhost') return;
    if (!same(ref, parseNormalizedNamed(familiar))) throw new FuzzViolation(`${JSON.stringify(input.s)}: familiar form ${JSON.stringify(familiar)} normalises to a different reference`);
    attempt(() => void withTag(ref, input.other));
    attempt(() => void withDigest(ref, input.other));
  });
  attempt(() => withDigest(parseReference('a'), input.other));
  if (first !== undefined) throw first;
}

export async function make(): Promise<FuzzTarget<RefInput>> {
  return {
    name: 'reference',
    arbitrary: fc.record({ s: refString, other: fc.oneof(tag, digest, refString) }),
    run: check,
    clean: (err) => err instanceof InvalidReferenceError,
    bytes: (input) => Buffer.from(JSON.stringify(input)),
  };
}
