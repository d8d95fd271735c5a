// Seeded randomness for tests that need some (the fault test's drop schedule and writes):
// one seed, printed, replays the same numbers. `seedFrom(value)` takes a seed given in the
// environment (decimal) or picks a fresh one; `seededRandom(seed, stream)` is a
// Math.random-like function (mulberry32) whose `stream` name keeps independent uses of one
// seed apart, so that drawing more numbers for one does not shift the others.

import { randomInt } from 'node:crypto';

// The seed in `value` (an unsigned 32-bit decimal), or a random one when it is empty.
export function seedFrom(value) {
  if (value === undefined || value === '') return randomInt(2 ** 32);
  const seed = Number(value);
  if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) throw new Error(`seed must be an integer in [0, 2^32): ${value}`);
  return seed;
}

// A function returning floats in [0, 1), the same sequence for the same (seed, stream).
export function seededRandom(seed, stream = '') {
  let state = seed >>> 0;
  // FNV-1a of the stream name, mixed into the seed.
  for (let i = 0; i < stream.length; i++) state = Math.imul(state ^ stream.charCodeAt(i), 16777619) >>> 0;
  return function random() {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
