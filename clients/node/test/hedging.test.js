'use strict';
// The hedge delay and budget (lib/hedging.js): pure logic, checked against the vectors the
// Python module's test reads too (tests/unit/hedging_vectors.json; seconds there, ms here).

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { describe, it } = require('node:test');
const hedging = require('../lib/hedging');

const VECTORS = JSON.parse(fs.readFileSync(
  path.join(__dirname, '..', '..', '..', 'tests', 'unit', 'hedging_vectors.json'), 'utf8'));

const close = (actual, expected, what) => {
  if (expected === null) return assert.equal(actual, null, what);
  assert.ok(Math.abs(actual - expected) < 1e-9, `${what}: ${actual} != ${expected}`);
};

describe('hedging', () => {
  it('has the constants of the Python module', () => {
    const c = VECTORS.constants;
    assert.equal(hedging.MULTIPLIER, c.MULTIPLIER);
    close(hedging.FLOOR_MS, c.FLOOR_S * 1000, 'floor');
    close(hedging.CEILING_MS, c.CEILING_S * 1000, 'ceiling');
    for (const name of ['WINDOW', 'MIN_SAMPLES', 'RECOMPUTE_EVERY', 'REQUESTS_PER_HEDGE', 'BURST']) {
      assert.equal(hedging[name], c[name], name);
    }
  });

  for (const vector of VECTORS.delay) {
    it(`delay: ${vector.name}`, () => {
      const policy = new hedging.Hedging();
      const checkpoints = new Map(vector.expect.map((point) => [point.after, point]));
      vector.latencies_s.forEach((latencyS, i) => {
        policy.observe(latencyS * 1000);
        const point = checkpoints.get(i + 1);
        if (point) {
          close(policy.delayMs, point.delay_s * 1000, `delay after ${i + 1}`);
          close(policy.p99Ms(), point.p99_s === null ? null : point.p99_s * 1000, `p99 after ${i + 1}`);
        }
      });
    });
  }

  for (const vector of VECTORS.budget) {
    it(`budget: ${vector.name}`, () => {
      const policy = new hedging.Hedging();
      const allowed = [];
      for (const op of vector.ops) {
        if (op === 's') policy.sent();
        else allowed.push(policy.allow());
      }
      assert.deepEqual(allowed, vector.allowed);
      assert.equal(policy.credit, vector.credit);
    });
  }
});
