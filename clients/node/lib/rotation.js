'use strict';
/**
 * Which endpoint to try next, and when a call gives up: pure logic, no sockets,
 * the clock passed in (milliseconds). The same rules as the Python client.
 *
 * `Rotation` spreads requests round-robin over the endpoints and keeps a failed
 * endpoint out of the rotation for a back-off period (doubling on each new
 * failure up to a maximum). When its back-off is over, exactly one request
 * probes it (the probe is claimed, so concurrent requests do not all pay a
 * timeout); an answer puts it back in the rotation.
 *
 * `CallPlan` is the plan of one request: it asks the rotation for endpoints,
 * tries each at most once per pass, never asks again an endpoint that answered
 * with an error in this request, and gives up when its deadline has passed or
 * every endpoint refused.
 */

const { CODES, SeqgenError } = require('./errors');

/** Why an attempt failed, besides an error reply (a SeqgenError). */
const NO_ANSWER = 'no answer';
const UNSENT = 'unsent';

const HEALTHY = -Infinity;
const MAX_DOUBLINGS = 32;

class Rotation {
  /**
   * @param {number} size number of endpoints (at least 1)
   * @param {number} backoffMs
   * @param {number} maxBackoffMs
   * @param {number} [start] index of the first endpoint
   */
  constructor(size, backoffMs, maxBackoffMs, start = 0) {
    if (!(size >= 1)) throw new RangeError('at least one endpoint is needed');
    this.size = size;
    this._backoffMs = backoffMs;
    this._maxBackoffMs = Math.max(backoffMs, maxBackoffMs);
    this._cursor = start % size;
    /** Consecutive failures (0: healthy). */
    this._failures = new Array(size).fill(0);
    /** When the endpoint may be tried again (its back-off ends, or a claimed probe expires). */
    this._retryAt = new Array(size).fill(HEALTHY);
    /** When the endpoint was last marked failed. */
    this._failedAt = new Array(size).fill(HEALTHY);
    this._suspects = 0;
  }

  healthy(index) {
    return this._failures[index] === 0;
  }

  /** The back-off after `failures` consecutive failures. */
  delayMs(failures) {
    const doublings = Math.min(Math.max(failures - 1, 0), MAX_DOUBLINGS);
    return Math.min(this._backoffMs * 2 ** doublings, this._maxBackoffMs);
  }

  /**
   * The endpoint for the next attempt, or null when every one is in `skip`.
   * Healthy endpoints and those whose back-off is over come first, round-robin;
   * an endpoint whose back-off is over is claimed for this probe for another
   * back-off period. When only endpoints in back-off remain, the one due
   * soonest is returned (better a probe than giving up) without touching it.
   * @param {number} now
   * @param {Set<number>} [skip]
   * @returns {number | null}
   */
  pick(now, skip) {
    const size = this.size;
    if (this._suspects === 0 && (skip === undefined || skip.size === 0)) {
      const index = this._cursor;
      this._cursor = index + 1 < size ? index + 1 : 0;
      return index;
    }
    let soonest = null;
    for (let step = 0; step < size; step += 1) {
      const index = (this._cursor + step) % size;
      if (skip !== undefined && skip.has(index)) continue;
      if (this._retryAt[index] <= now) {
        if (this._failures[index] > 0) {
          this._retryAt[index] = now + this.delayMs(this._failures[index]);
        }
        this._cursor = (index + 1) % size;
        return index;
      }
      if (soonest === null || this._retryAt[index] < this._retryAt[soonest]) soonest = index;
    }
    return soonest;
  }

  /**
   * An attempt started at `started` got no usable answer by `now`. Attempts
   * that started before the endpoint was last marked failed belong to the same
   * outage and do not lengthen its back-off again.
   */
  failed(index, started, now) {
    if (started < this._failedAt[index]) return;
    if (this._failures[index] === 0) this._suspects += 1;
    this._failures[index] += 1;
    this._failedAt[index] = now;
    this._retryAt[index] = now + this.delayMs(this._failures[index]);
  }

  /**
   * The endpoint for a hedge of an attempt on `otherThan`, or null. The next healthy one
   * in round-robin order; when no other endpoint is healthy, the other one due soonest,
   * its back-off untouched. An attempt is hedged because it has not been answered: its
   * endpoint may be down while the one in back-off is back (a client whose own link was
   * cut off keeps one endpoint in back-off for up to `maxBackoffMs` after the link heals,
   * and then loses the other). A hedge to an endpoint in back-off is a probe within the
   * budget; one that is answered puts it back.
   */
  pickHedge(otherThan) {
    const size = this.size;
    for (let step = 0; step < size; step += 1) {
      const index = (this._cursor + step) % size;
      if (index !== otherThan && this._failures[index] === 0) {
        this._cursor = (index + 1) % size;
        return index;
      }
    }
    let soonest = null;
    for (let index = 0; index < size; index += 1) {
      if (index === otherThan) continue;
      if (soonest === null || this._retryAt[index] < this._retryAt[soonest]) soonest = index;
    }
    return soonest;
  }

  /**
   * The attempt on `index` started at `started` lost to a hedge by `now`: the endpoint is
   * skipped for `backoffMs`, not doubled per loss (finding out cost a hedge delay, not a
   * timeout, so probing it every back-off period stays cheap). Its attempt's timeout, if no
   * answer comes, belongs to the same outage.
   */
  suspect(index, started, now) {
    if (started < this._failedAt[index]) return;
    if (this._failures[index] === 0) {
      this._suspects += 1;
      this._failures[index] = 1;
    }
    this._failedAt[index] = now;
    this._retryAt[index] = now + this._backoffMs;
  }

  /** An attempt started at `started` got an answer. */
  succeeded(index, started) {
    if (this._failures[index] > 0 && started >= this._failedAt[index]) {
      this._failures[index] = 0;
      this._retryAt[index] = HEALTHY;
      this._suspects -= 1;
    }
  }
}

class CallPlan {
  /**
   * @param {Rotation} rotation
   * @param {readonly string[]} endpoints
   * @param {number} deadline absolute, in the clock's milliseconds
   * @param {number} timeoutMs per attempt
   */
  constructor(rotation, endpoints, deadline, timeoutMs) {
    this._rotation = rotation;
    this._endpoints = endpoints;
    this._timeoutMs = timeoutMs;
    this.deadline = deadline;
    this._tried = new Set();
    this._refused = new Set();
    /** @type {SeqgenError | null} */
    this._error = null;
    this.timeouts = 0;
  }

  /**
   * [endpoint index, timeout] of the next attempt, or null to give up.
   * @param {number} now
   * @returns {[number, number] | null}
   */
  next(now) {
    const remaining = this.deadline - now;
    // Timers have a granularity of 1 ms (and may fire a fraction early): less is nothing.
    if (remaining < 1) return null;
    let index = this._rotation.pick(now, this._tried);
    if (index === null) {
      if (this._refused.size >= this._rotation.size) return null;
      this._tried = new Set(this._refused); // a new pass over the silent ones
      index = this._rotation.pick(now, this._tried);
      if (index === null) return null;
    }
    this._tried.add(index);
    return [index, Math.min(this._timeoutMs, remaining)];
  }

  /**
   * The attempt on `index` that started at `started` failed by `now`.
   * @param {number} index
   * @param {number} started
   * @param {number} now
   * @param {SeqgenError | typeof NO_ANSWER | typeof UNSENT} failure
   */
  failed(index, started, now, failure) {
    if (failure === NO_ANSWER) {
      this.timeouts += 1;
      // An attempt cut short by the deadline says little about the endpoint.
      if (this.deadline - started < this._timeoutMs) return;
    } else {
      // It answered with an error, or cannot take requests: not again in this request.
      this._refused.add(index);
      if (failure instanceof SeqgenError) this._error = failure;
    }
    this._rotation.failed(index, started, now);
  }

  /** The last error reply, if any endpoint gave one. */
  get lastError() {
    return this._error;
  }

  /**
   * What to raise when the request gives up: the last error reply, else UNAVAILABLE.
   * @param {number} deadlineMs the caller's deadline, for the message
   */
  error(deadlineMs) {
    if (this._error !== null) return this._error;
    return unavailable(this._endpoints, deadlineMs);
  }
}

function unavailable(endpoints, deadlineMs) {
  return new SeqgenError(
    CODES.UNAVAILABLE,
    `no answer from ${endpoints.join(', ')} within ${deadlineMs} ms`,
  );
}

module.exports = { CallPlan, NO_ANSWER, Rotation, UNSENT, unavailable };
