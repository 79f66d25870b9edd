// Inputs the fuzzer (test/fuzz, target "template") found that the Go-template engine mishandled,
// kept as regression tests: each must give the engine's own one-line error.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compile, TemplateSyntaxError } from '../../src/cli/template/index.js';

test('a bad number before a newline is quoted as Go quotes it, on one line (fuzz: message spanning two lines)', () => {
  assert.throws(
    () => compile('{{println -\n}}'),
    (e: Error) => e instanceof TemplateSyntaxError && e.message === 'template: :1: bad number syntax: "-\\n"',
  );
});
