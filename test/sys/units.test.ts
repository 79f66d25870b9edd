// humanSize prints bytes as Docker's go-units does (decimal units, three significant digits).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { humanSize } from '../../src/sys/units.js';

test('decimal units with three significant digits, trailing zeros dropped', () => {
  const cases: [number, string][] = [
    [0, '0B'],
    [999, '999B'],
    [1000, '1kB'],
    [1500, '1.5kB'],
    [90_400_000, '90.4MB'],
    [123_456_789, '123MB'],
    [1234, '1.23kB'],
    [1e12, '1TB'],
    [2.5e18, '2.5e+03PB'],
  ];
  for (const [bytes, text] of cases) assert.equal(humanSize(bytes), text, String(bytes));
  assert.equal(humanSize(1_234_567, 4), '1.235MB');
});
