// The benchmark's own logic, on literal inputs: which requests of a frame list carry a
// requestId (the "same server work" probe), the targets as met, missed or only reported, and
// the rounding that per-op CPU ratios are computed from.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { requestsIn } from '../../bench/browser.mjs';
import { targets } from '../../bench/report.mjs';
import { round } from '../../bench/stats.mjs';

test('requestsIn reads the CRUD requests of socket.io frames and whether they carry a requestId', () => {
  const frames = [
    '40',
    '3',
    '421["create",{"signature":{"endPoint":"/api/t","requestId":"r1"},"item":{"a":1}}]',
    '42["read",{"signature":{"endPoint":"/api/t/1"}}]',
    '4212["patch",{"signature":{"endPoint":"/api/t/1","requestId":""},"item":{}}]',
    '423["subscribe",{"endPoint":"/api/t"}]',
    '424["delete",{"signature":{"endPoint":"/api/t/1","requestId":"r2"}}]',
    '425["update",{not json',
    '43["create"]',
  ];
  assert.deepEqual(requestsIn(frames), [
    { method: 'create', requestId: true },
    { method: 'read', requestId: false },
    { method: 'patch', requestId: false },
    { method: 'delete', requestId: true },
  ]);
});

// A browser result with one row per (key, client): ops/s, p50 and CPU per op.
function browser(rows) {
  return {
    rows: rows.map(([key, client, opsPerS, p50Ms, cpu]) => ({
      key,
      row: { 'size100k-save': '100 KB model: save', 'fetch-all': 'throughput: collection.fetch of 10000 models', creates: 'throughput: 1000 collection.create at once', 'latency-save': 'latency: save new model' }[key] || key,
      client,
      opsPerS,
      p50Ms,
      meanMs: p50Ms,
      cpuMsPerOp: { thread: cpu },
    })),
  };
}

test('targets: throughput goals against socket.io-client, p50 against raw, CPU against socket.io-client', () => {
  const list = targets(
    browser([
      ['size100k-save', 'wasm', 90, 5, 2.0],
      ['size100k-save', 'socketio', 100, 4, 1.0],
      ['fetch-all', 'wasm', 110, 100, 0.005],
      ['fetch-all', 'socketio', 100, 110, 0.006],
      ['creates', 'wasm', 3000, 150, 0.1],
      ['creates', 'socketio', 3000, 150, 0.1],
      ['creates', 'xhr', 1000, 1000, 1],
      ['latency-save', 'wasm', 1000, 1.3, 0.2],
      ['latency-save', 'raw', 1100, 1.0, 0.2],
    ]),
    null,
    { ratio: 1.85 },
    null,
  );
  const get = (prefix) => list.find((t) => t.what.startsWith(prefix));
  assert.equal(get('100 KB model: save ops/s (1)/(2)').met, false);
  assert.equal(get('100 KB model: save ops/s (1)/(2)').value, '0.90x');
  assert.equal(get('collection.fetch of 10000 models').met, true);
  assert.equal(get('throughput: 1000 collection.create at once (1)/(2)').met, true, '1.00x meets >= 1.0x');
  assert.equal(get('throughput: 1000 collection.create at once (1)/(3)').met, true);
  assert.equal(get('latency: save new model p50 (1)/(4)').met, false, '1.3x misses <= 1.2x');
  assert.equal(get('page CPU/op 100 KB model: save + fetch (1)/(2)').met, false);
  assert.equal(get('page CPU/op collection.fetch of 10000 models (1)/(2)').met, true);
  assert.equal(get('size (gzip)').met, true, '1.85x is under 4.0x');
  // Not measured (no 10,000-creates row, no raw fetch or patch): no verdict.
  for (const t of list.filter((t) => t.value === '-')) assert.equal(t.met, null, t.what);
  assert.equal(get('creates-big (1)/(2)').value, '-');
});

test('round keeps 3 significant digits below 1, so small per-op CPU ratios survive', () => {
  assert.equal(round(0.0051234), 0.00512);
  assert.equal(round(0.0049), 0.0049);
  assert.equal(round(12.345), 12.3);
  assert.equal(round(123.6), 124);
  assert.equal(round(NaN), null);
});
