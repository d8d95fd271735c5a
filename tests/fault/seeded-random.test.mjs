// The fault test's seeded randomness (tests/support/seeded-random.mjs): one seed replays the
// same numbers, streams of one seed are independent, and a bad FAULT_SEED is refused.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { seedFrom, seededRandom } from '../support/seeded-random.mjs';

const draw = (random, n) => Array.from({ length: n }, () => random());

test('the same seed and stream give the same numbers, in [0, 1)', () => {
  const a = draw(seededRandom(12345, 'drops'), 1000);
  assert.deepEqual(draw(seededRandom(12345, 'drops'), 1000), a);
  assert.ok(a.every((x) => x >= 0 && x < 1));
  assert.ok(new Set(a).size > 990, 'no short cycle');
  const mean = a.reduce((s, x) => s + x, 0) / a.length;
  assert.ok(mean > 0.45 && mean < 0.55, `mean ${mean}`);
});

test('another seed or another stream gives other numbers', () => {
  const a = draw(seededRandom(12345, 'drops'), 20);
  assert.notDeepEqual(draw(seededRandom(12346, 'drops'), 20), a);
  assert.notDeepEqual(draw(seededRandom(12345, 'writes'), 20), a);
});

test('seedFrom reads a decimal seed, picks one when none is given, refuses garbage', () => {
  assert.equal(seedFrom('0'), 0);
  assert.equal(seedFrom('4294967295'), 4294967295);
  const picked = seedFrom(undefined);
  assert.ok(Number.isInteger(picked) && picked >= 0 && picked < 2 ** 32);
  assert.ok(Number.isInteger(seedFrom('')));
  for (const bad of ['x', '-1', '1.5', '4294967296']) assert.throws(() => seedFrom(bad), /seed must be/);
});
