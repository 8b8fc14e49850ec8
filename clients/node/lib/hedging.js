'use strict';
/**
 * When to hedge a request, and whether the budget allows it: pure logic, no
 * sockets, times passed in (milliseconds). The mirror of the Python module
 * seqgen_common/hedging.py, with the same constants; both are checked against
 * the same vectors (tests/unit/hedging_vectors.json in the repository).
 *
 * The delay is MULTIPLIER times the p99 (nearest rank) of the last WINDOW
 * answered attempts, clamped to [FLOOR_MS, CEILING_MS]; the ceiling until
 * MIN_SAMPLES latencies are known; recomputed every RECOMPUTE_EVERY latencies.
 * The budget is a token bucket counted in requests: each request earns one
 * credit, a hedge costs REQUESTS_PER_HEDGE (5 %), the bucket holds BURST
 * hedges at most (and at first).
 */

const MULTIPLIER = 2;
const FLOOR_MS = 10;
const CEILING_MS = 50;
const WINDOW = 256;
const MIN_SAMPLES = 16;
const RECOMPUTE_EVERY = 32;
const REQUESTS_PER_HEDGE = 20;
const BURST = 10;
const FULL = BURST * REQUESTS_PER_HEDGE;

class Hedging {
  constructor() {
    this._ring = new Float64Array(WINDOW);
    this._count = 0;
    this._since = 0;
    this._delayMs = CEILING_MS;
    this._credit = FULL;
  }

  /** How long an attempt may go unanswered before the request is hedged (ms). */
  get delayMs() {
    return this._delayMs;
  }

  /** The budget now, in requests (a hedge costs REQUESTS_PER_HEDGE). */
  get credit() {
    return this._credit;
  }

  /** An attempt was answered `latencyMs` after it was sent. */
  observe(latencyMs) {
    this._ring[this._count % WINDOW] = latencyMs;
    this._count += 1;
    this._since += 1;
    if (this._since >= RECOMPUTE_EVERY || this._count === MIN_SAMPLES) {
      this._since = 0;
      const p99 = this.p99Ms();
      this._delayMs = p99 === null ? CEILING_MS : Math.min(Math.max(MULTIPLIER * p99, FLOOR_MS), CEILING_MS);
    }
  }

  /** The p99 of the latencies in the window (null below MIN_SAMPLES). */
  p99Ms() {
    if (this._count < MIN_SAMPLES) return null;
    const held = Math.min(this._count, WINDOW);
    const ordered = Array.from(this._ring.subarray(0, held)).sort((a, b) => a - b);
    return ordered[Math.max(Math.ceil(0.99 * held) - 1, 0)];
  }

  /** A request went out (its first attempt): it earns the budget its share. */
  sent() {
    if (this._credit < FULL) this._credit += 1;
  }

  /** Whether a hedge may go out now; true spends its budget. */
  allow() {
    if (this._credit >= REQUESTS_PER_HEDGE) {
      this._credit -= REQUESTS_PER_HEDGE;
      return true;
    }
    return false;
  }
}

module.exports = {
  BURST, CEILING_MS, FLOOR_MS, Hedging, MIN_SAMPLES, MULTIPLIER, RECOMPUTE_EVERY, REQUESTS_PER_HEDGE, WINDOW,
};
