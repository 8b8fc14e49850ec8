'use strict';
/**
 * The seqgen client: numbers from seqgen servers or proxies, with failover,
 * the same rules as the Python client, and coalescing of concurrent `next()`
 * calls for one name.
 *
 * Coalescing: per name at most one `next()` request is in flight. Calls that
 * arrive meanwhile wait in a FIFO queue; when the request in flight settles,
 * the waiting calls (at most 1000) go out together as one request for that
 * many numbers, and each gets its own, in arrival order. A call that finds
 * nothing in flight goes out at once: nothing ever waits on a timer to gather
 * a batch. Each caller keeps its own deadline.
 */

const { performance } = require('node:perf_hooks');
const zmq = require('zeromq');
const { CODES, FAILOVER_CODES, SeqgenError, closedError } = require('./errors');
const { CLOSED, Endpoint } = require('./endpoint');
const { buildOptions, positiveMs } = require('./options');
const { Hedging } = require('./hedging');
const { CallPlan, NO_ANSWER, Rotation, UNSENT, unavailable } = require('./rotation');
const { MAX_COUNT, countError, nameError } = require('./validate');
const { newStats } = require('./stats');
const { encodeRequest, parseReply } = require('./wire');

const QUEUED = 1; // waiting behind the request in flight for its name
const SENT = 2; // its request is out
const DONE = 3; // settled: it got its number(s) or an error, or gave up

const now = () => performance.now();
const HEDGE_DUE = Symbol('hedge due');

/** One `next()` or `nextMany()` call. */
class Caller {
  constructor(resolve, reject, deadlineMs) {
    this.resolve = resolve;
    this.reject = reject;
    this.deadlineMs = deadlineMs;
    this.deadline = now() + deadlineMs;
    this.state = SENT;
    /** @type {Batch | null} */
    this.batch = null;
    this.timer = null;
    this.signal = null;
    this.onAbort = null;
  }
}

/** One request on the wire and the callers who share it. */
class Batch {
  constructor(name, callers, count, many) {
    this.name = name;
    this.callers = callers;
    this.count = count;
    this.many = many;
    /** @type {CallPlan | null} */
    this.plan = null;
  }

  abandoned() {
    return this.callers.every((caller) => caller.state === DONE);
  }
}

function abortError(signal) {
  const err = new Error('the call was aborted');
  err.name = 'AbortError';
  err.code = 'ABORT_ERR';
  err.cause = signal.reason;
  return err;
}

/**
 * The optional per-call options ({ deadlineMs, signal }) and callback of
 * `next(name, [options], [callback])` and `nextMany(name, count, [options], [callback])`.
 */
function callArgs(options, callback) {
  if (typeof options === 'function' && callback === undefined) return [{}, options];
  if (options === undefined || options === null) options = {};
  if (typeof options !== 'object') throw new TypeError('call options must be an object');
  if (callback !== undefined && typeof callback !== 'function') {
    throw new TypeError('callback must be a function');
  }
  for (const key of Object.keys(options)) {
    if (key !== 'deadlineMs' && key !== 'signal') {
      throw new TypeError(`unknown call option ${JSON.stringify(key)} (known: deadlineMs, signal)`);
    }
  }
  if (options.deadlineMs !== undefined) positiveMs('deadlineMs', options.deadlineMs);
  const { signal } = options;
  if (signal !== undefined && (signal === null || typeof signal.addEventListener !== 'function'
      || typeof signal.aborted !== 'boolean')) {
    throw new TypeError('signal must be an AbortSignal');
  }
  return [options, callback];
}

/** Settle `promise` through a Node-style callback, outside the promise chain. */
function toCallback(promise, callback) {
  promise.then(
    (value) => process.nextTick(callback, null, value),
    (err) => process.nextTick(callback, err),
  );
}

class Client {
  /**
   * @param {string | string[] | null} [endpoints] ZeroMQ URIs of servers or proxies
   * @param {object} [options] see index.d.ts
   */
  constructor(endpoints, options) {
    const opts = buildOptions(endpoints, options, process.env, () => zmq.curveKeyPair());
    this._endpoints = Object.freeze(opts.endpoints);
    this._timeoutMs = opts.timeoutMs;
    this._deadlineMs = opts.deadlineMs;
    this._coalesce = opts.coalesce;
    this._rotation = new Rotation(
      opts.endpoints.length, opts.backoffMs, opts.maxBackoffMs,
      Math.floor(Math.random() * opts.endpoints.length),
    );
    this._sockets = opts.endpoints.map((uri) => new Endpoint(zmq, uri, opts.curve));
    this.options = Object.freeze({
      timeoutMs: opts.timeoutMs,
      deadlineMs: opts.deadlineMs,
      backoffMs: opts.backoffMs,
      maxBackoffMs: opts.maxBackoffMs,
      coalesce: opts.coalesce,
      hedge: opts.hedge,
      curve: opts.curve !== null,
    });
    /** @type {Map<string, bigint>} name -> highest number received (names in it are valid) */
    this._last = new Map();
    /** @type {Map<string, { inflight: boolean, queue: Caller[] }>} coalescing state per name */
    this._names = new Map();
    /** @type {Set<Batch>} */
    this._batches = new Set();
    /** The same counters, with the same meanings, as the Python client's (lib/stats.js). */
    this._stats = newStats();
    /** The hedge delay and budget (lib/hedging.js); null: no hedging (off, or one endpoint). */
    this._hedging = opts.hedge && opts.endpoints.length > 1 ? new Hedging() : null;
    this._closed = false;
  }

  // ---- public API -------------------------------------------------------------------

  /**
   * The next number for `name`, a BigInt.
   * `next(name)` returns a Promise; `next(name, callback)` calls back `(err, value)`.
   * `options`: `{ deadlineMs, signal }` for this call only.
   */
  next(name, options, callback) {
    const [callOptions, cb] = callArgs(options, callback);
    const promise = this._start(name, 1, false, callOptions);
    if (cb === undefined) return promise;
    toCallback(promise, cb);
    return undefined;
  }

  /**
   * `count` (1..1000) numbers for `name` in one round trip, ascending BigInts.
   * Never coalesced. Promise, or `(err, values)` to the callback given last.
   */
  nextMany(name, count, options, callback) {
    if (typeof count === 'function') {
      // Each argument keeps its place: a callback where the count belongs is a mistake.
      throw new TypeError('nextMany(name, count, [options], [callback]): count comes before the callback');
    }
    const [callOptions, cb] = callArgs(options, callback);
    const promise = this._start(name, count, true, callOptions);
    if (cb === undefined) return promise;
    toCallback(promise, cb);
    return undefined;
  }

  /** The highest number this client has received for `name` (0n when none). */
  last(name) {
    return this._last.get(name) ?? 0n;
  }

  /** Counters since the client was made (a copy). */
  get stats() {
    return { ...this._stats };
  }

  get endpoints() {
    return this._endpoints;
  }

  get closed() {
    return this._closed;
  }

  /** Close the sockets; calls still waiting fail with code CLOSED. Idempotent. */
  close() {
    if (this._closed) return;
    this._closed = true;
    const callers = [];
    for (const state of this._names.values()) callers.push(...state.queue);
    for (const batch of this._batches) callers.push(...batch.callers);
    this._names.clear();
    this._batches.clear();
    for (const caller of callers) this._settle(caller, closedError());
    for (const endpoint of this._sockets) endpoint.close();
  }

  // ---- callers and coalescing -------------------------------------------------------

  _start(name, count, many, callOptions) {
    if (this._closed) return Promise.reject(closedError());
    const badName = this._last.has(name) ? null : nameError(name);
    if (badName !== null) return Promise.reject(badName);
    const badCount = many ? countError(count) : null;
    if (badCount !== null) return Promise.reject(badCount);
    const { signal } = callOptions;
    if (signal !== undefined && signal.aborted) return Promise.reject(abortError(signal));
    return new Promise((resolve, reject) => {
      const caller = new Caller(resolve, reject, callOptions.deadlineMs ?? this._deadlineMs);
      if (signal !== undefined) {
        caller.signal = signal;
        caller.onAbort = () => this._giveUp(caller, abortError(signal));
        signal.addEventListener('abort', caller.onAbort, { once: true });
      }
      if (many || !this._coalesce) {
        this._launch(new Batch(name, [caller], count, many), null);
        return;
      }
      let state = this._names.get(name);
      if (state === undefined) {
        state = { inflight: false, queue: [] };
        this._names.set(name, state);
      }
      if (!state.inflight) {
        this._launch(new Batch(name, [caller], 1, false), state);
        return;
      }
      caller.state = QUEUED;
      state.queue.push(caller);
      caller.timer = setTimeout(() => this._giveUp(caller, null), caller.deadlineMs);
    });
  }

  /** A caller's deadline passed (error null) or it was aborted, before it got its number. */
  _giveUp(caller, error) {
    if (caller.state === DONE) return;
    if (error === null) {
      const plan = caller.batch === null ? null : caller.batch.plan;
      error = (plan !== null && plan.lastError) || unavailable(this._endpoints, caller.deadlineMs);
    }
    // Still QUEUED: it leaves the queue and costs no number. SENT: its number will
    // be lost when the batch succeeds (counted then).
    this._settle(caller, error);
  }

  _settle(caller, error, value) {
    if (caller.state === DONE) return false;
    caller.state = DONE;
    if (caller.timer !== null) clearTimeout(caller.timer);
    if (caller.onAbort !== null) caller.signal.removeEventListener('abort', caller.onAbort);
    if (error !== null) caller.reject(error);
    else caller.resolve(value);
    return true;
  }

  /** Send `batch` now; when it settles, send what queued up behind it for the name. */
  _launch(batch, state) {
    let deadline = -Infinity;
    for (const caller of batch.callers) {
      caller.state = SENT;
      caller.batch = batch;
      if (caller.deadline > deadline) deadline = caller.deadline;
    }
    if (!batch.many) this._stats.requests += 1;
    if (state !== null) state.inflight = true;
    this._batches.add(batch);
    this._request(batch, deadline).then(
      (values) => this._finish(batch, state, values, null),
      (err) => this._finish(batch, state, null, err),
    );
  }

  /**
   * The request of `batch` settled. The name is free before any caller hears of
   * it, so a caller that calls again at once goes out at once (or joins the queue
   * that goes out now), never behind a request that is already over.
   */
  _finish(batch, state, values, err) {
    this._batches.delete(batch);
    if (state !== null) state.inflight = false;
    if (err !== null) {
      for (const caller of batch.callers) this._settle(caller, err);
    } else {
      this._deliver(batch, values, state);
    }
    if (state !== null) this._pump(batch.name, state);
  }

  _deliver(batch, values, state) {
    const stats = this._stats;
    if (batch.many) {
      if (!this._settle(batch.callers[0], null, values)) stats.lostNumbers += values.length;
      return;
    }
    let served = 0;
    batch.callers.forEach((caller, i) => {
      if (this._settle(caller, null, values[i])) served += 1;
      else if (this._handOn(state, values[i])) stats.calls += 1;
      else stats.lostNumbers += 1;
    });
    stats.calls += served;
    if (served > 1) stats.coalescedCalls += served;
  }

  /**
   * A number whose caller gave up after its request was sent: to the first call still
   * queued for the name (which then leaves the queue), if there is one.
   */
  _handOn(state, value) {
    if (state === null) return false;
    for (const caller of state.queue) {
      if (caller.state === QUEUED) return this._settle(caller, null, value);
    }
    return false;
  }

  /** The request for `name` settled: the callers waiting for it (at most 1000) go out as one. */
  _pump(name, state) {
    if (this._closed) return;
    const { queue } = state;
    const callers = [];
    let i = 0;
    while (i < queue.length && callers.length < MAX_COUNT) {
      const caller = queue[i];
      i += 1;
      if (caller.state === QUEUED) callers.push(caller);
    }
    state.queue = i === queue.length ? [] : queue.slice(i);
    if (callers.length === 0) {
      if (this._names.get(name) === state) this._names.delete(name);
      return;
    }
    this._launch(new Batch(name, callers, callers.length, false), state);
  }

  // ---- one request, with failover ---------------------------------------------------

  /**
   * The numbers of one request: endpoints tried until one answers or `deadline` passes.
   * @param {Batch} batch
   * @param {number} deadline
   * @returns {Promise<bigint[]>}
   */
  async _request(batch, deadline) {
    const { name, count } = batch;
    const frame = encodeRequest(name, this.last(name), count);
    const plan = new CallPlan(this._rotation, this._endpoints, deadline, this._timeoutMs);
    batch.plan = plan;
    const deadlineMs = Math.max(...batch.callers.map((caller) => caller.deadlineMs));
    let index = -1;
    let started = 0;
    let failure = null;
    for (;;) {
      const time = now();
      if (index >= 0) plan.failed(index, started, time, failure);
      const planned = plan.next(time);
      if (planned === null) throw plan.error(deadlineMs);
      if (this._closed) throw closedError();
      if (batch.abandoned()) throw unavailable(this._endpoints, deadlineMs); // nobody waits
      let timeoutMs;
      [index, timeoutMs] = planned;
      started = time;
      this._stats.attempts += 1;
      if (this._hedging !== null && !plan.hedgeBudgeted) {
        plan.hedgeBudgeted = true;
        this._hedging.sent();
      }
      const reply = await this._attempt(index, started, frame, timeoutMs, count);
      if (reply === CLOSED) throw closedError();
      if (reply === NO_ANSWER || reply === UNSENT) {
        if (reply === NO_ANSWER) this._stats.timeouts += 1;
        failure = reply;
        continue;
      }
      if (!Buffer.isBuffer(reply)) {
        // The server refused the CURVE handshake: not again in this call; AUTH if none answers.
        this._stats.timeouts += 1;
        failure = new SeqgenError(
          CODES.AUTH, `${this._endpoints[index]} refused this client's CURVE handshake: ${reply.refused}`,
        );
        continue;
      }
      let values;
      try {
        values = parseReply(reply, count);
      } catch (err) {
        if (!(err instanceof SeqgenError) || !FAILOVER_CODES.has(err.code)) {
          this._rotation.succeeded(index, started);
          throw err;
        }
        failure = err;
        continue;
      }
      this._rotation.succeeded(index, started);
      const highest = values[values.length - 1];
      if (highest > this.last(name)) this._last.set(name, highest);
      return values;
    }
  }

  // ---- hedging (lib/hedging.js; docs/client.md, "Hedging") ----------------------------

  /**
   * The reply of one attempt on `index` (sent at `started`), hedged to the next healthy
   * endpoint when it has not come within the hedge delay: the first reply that ends the
   * request wins; the other one, when it comes, is counted and never delivered.
   */
  async _attempt(index, started, frame, timeoutMs, count) {
    const first = this._sockets[index].attempt(frame, timeoutMs);
    const hedging = this._hedging;
    if (hedging === null || hedging.delayMs >= timeoutMs) return this._answered(started, await first);
    let timer = null;
    const due = new Promise((resolve) => { timer = setTimeout(resolve, hedging.delayMs, HEDGE_DUE); });
    const early = await Promise.race([first, due]);
    clearTimeout(timer);
    if (early !== HEDGE_DUE) return this._answered(started, early);
    const hedge = this._hedgeTo(index);
    if (hedge === null) return this._answered(started, await first);
    const hedgeStarted = now();
    // The same timeout as any attempt, unless the request's deadline comes first.
    const hedgeTimeoutMs = timeoutMs >= this._timeoutMs ? this._timeoutMs : started + timeoutMs - hedgeStarted;
    const second = this._sockets[hedge].attempt(frame, Math.max(hedgeTimeoutMs, 1));
    const racing = new Map([
      [index, [started, first.then((reply) => [index, reply])]],
      [hedge, [hedgeStarted, second.then((reply) => [hedge, reply])]],
    ]);
    let outcome = NO_ANSWER;
    while (racing.size > 0) {
      const [which, reply] = await Promise.race([...racing.values()].map((entry) => entry[1]));
      const [at] = racing.get(which);
      racing.delete(which);
      if (reply === CLOSED) return CLOSED;
      this._answered(at, reply);
      if (this._final(reply, count)) {
        if (which === hedge) {
          this._stats.hedgeWins += 1;
          this._rotation.suspect(index, started, now()); // skipped until it answers
          this._rotation.succeeded(hedge, hedgeStarted);
          if (!racing.has(index) && outcome === NO_ANSWER) this._stats.timeouts += 1;
        }
        for (const [other, [otherAt, pending]] of racing) {
          pending.then(([, late]) => this._late(other, otherAt, late, count));
        }
        return reply;
      }
      if (which === index) {
        outcome = reply;
      } else {
        if (!Buffer.isBuffer(reply)) this._stats.timeouts += 1;
        this._rotation.failed(hedge, hedgeStarted, now());
      }
    }
    return outcome;
  }

  /** The endpoint to hedge an attempt on `index` to (Rotation.pickHedge), when the budget allows. */
  _hedgeTo(index) {
    const target = this._rotation.pickHedge(index);
    if (target === null || !this._hedging.allow()) return null;
    this._stats.hedges += 1;
    this._stats.attempts += 1;
    return target;
  }

  /** An attempt sent at `started` brought `reply`: its latency feeds the hedge delay. */
  _answered(started, reply) {
    if (this._hedging !== null && Buffer.isBuffer(reply)) this._hedging.observe(now() - started);
    return reply;
  }

  /** Whether `reply` ends the request: numbers, or an error every endpoint would give. */
  _final(reply, count) {
    if (!Buffer.isBuffer(reply)) return false;
    try {
      parseReply(reply, count);
    } catch (err) {
      return !(err instanceof SeqgenError) || !FAILOVER_CODES.has(err.code);
    }
    return true;
  }

  /**
   * The attempt on `index` sent at `started` lost its race and ended with `reply`: a late
   * answer is counted (its numbers lost); none in time is a failure of its endpoint.
   */
  _late(index, started, reply, count) {
    if (reply === CLOSED) return;
    const stats = this._stats;
    if (!Buffer.isBuffer(reply)) {
      if (reply === NO_ANSWER) stats.timeouts += 1;
      this._rotation.failed(index, started, now());
      return;
    }
    stats.lateAnswers += 1;
    // Its latency is not observed: it is the tail that hedging cuts, and it would raise the
    // hedge delay exactly while hedges are needed (a frozen or lossy endpoint).
    // It stays skipped until its back-off is over: an endpoint that answers late (a lossy
    // link) would otherwise take first attempts again at once and spend the budget.
    try {
      parseReply(reply, count);
    } catch {
      return;
    }
    stats.lostNumbers += count;
  }
}

module.exports = { CODES, Client };
