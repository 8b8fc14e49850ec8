'use strict';
// Pure logic, no sockets: endpoint rotation and the per-request plan (the clock passed
// in, as the Python client's tests do), options, replies, names, z85.

const assert = require('node:assert/strict');
const { describe, it } = require('node:test');
const seqgen = require('..');
const { SeqgenError } = require('../lib/errors');
const { CallPlan, NO_ANSWER, Rotation, UNSENT } = require('../lib/rotation');
const { countError, nameError } = require('../lib/validate');
const { encodeRequest, parseReply } = require('../lib/wire');
const z85 = require('../lib/z85');

const ENDPOINTS = ['tcp://a:1', 'tcp://b:1', 'tcp://c:1'];

describe('Rotation', () => {
  it('hedges to the next healthy endpoint first', () => {
    const rotation = new Rotation(3, 1000, 8000);
    assert.deepEqual([0, 0, 0, 0].map((i) => rotation.pickHedge(i)), [1, 2, 1, 2]);
    rotation.failed(2, 10000, 10000);
    assert.deepEqual([0, 0, 0].map((i) => rotation.pickHedge(i)), [1, 1, 1]); // not 2
    assert.equal(rotation.pickHedge(1), 0);
  });

  it('with no other endpoint healthy, hedges to the one due soonest', () => {
    // The attempt on a healthy endpoint is unanswered: it may just have gone down, while
    // one in back-off is back (after the client's own link was cut off).
    const rotation = new Rotation(3, 1000, 8000);
    rotation.failed(2, 10000, 10000); // due at 11000
    rotation.failed(1, 10000, 10200); // due at 11200
    assert.equal(rotation.pickHedge(0), 2); // 0 is healthy, no other one is
    rotation.failed(0, 10000, 10500); // due at 11500: every one is suspect
    assert.equal(rotation.pickHedge(0), 2);
    assert.equal(rotation.pickHedge(2), 1);
    assert.equal(rotation.pickHedge(1), 2);
    assert.equal(rotation.pick(10600), 2); // the hedges left every back-off as it was
    assert.equal(rotation.pick(10600, new Set([2])), 1);
    rotation.succeeded(1, 10700);
    assert.equal(rotation.pickHedge(0), 1); // healthy again: the round-robin rule
    assert.equal(rotation.pickHedge(1), 2);
    assert.equal(new Rotation(1, 1000, 8000).pickHedge(0), null);
  });

  it('an endpoint that lost to a hedge is probed every back-off, not doubled', () => {
    const rotation = new Rotation(2, 1000, 30000);
    let now = 10000;
    const probes = [];
    for (let i = 0; i < 4; i += 1) {
      rotation.suspect(0, now - 50, now);
      rotation.failed(0, now - 50, now + 950); // its timeout: the same outage
      assert.equal(rotation.pick(now + 500), 1);
      now += 1000;
      probes.push(rotation.pick(now));
    }
    assert.deepEqual(probes, [0, 0, 0, 0]);
  });

  it('goes round-robin from its start index', () => {
    const rotation = new Rotation(3, 1000, 8000, 1);
    assert.deepEqual(Array.from({ length: 7 }, () => rotation.pick(0)), [1, 2, 0, 1, 2, 0, 1]);
  });

  it('skips a failed endpoint for its back-off, then one call probes it', () => {
    const rotation = new Rotation(2, 1000, 8000);
    assert.equal(rotation.pick(10000), 0);
    rotation.failed(0, 10000, 10500);
    assert.equal(rotation.healthy(0), false);
    assert.deepEqual([0, 1, 2, 3, 4].map((i) => rotation.pick(10600 + i * 100)), [1, 1, 1, 1, 1]);
    assert.equal(rotation.pick(11600), 0); // the probe, claimed...
    assert.deepEqual([rotation.pick(11700), rotation.pick(11800)], [1, 1]); // ...by one call only
    rotation.succeeded(0, 11600);
    assert.equal(rotation.healthy(0), true);
    assert.deepEqual([0, 1, 2, 3].map(() => rotation.pick(12000)).sort(), [0, 0, 1, 1]);
  });

  it('doubles the back-off per failure up to the maximum', () => {
    const rotation = new Rotation(2, 1000, 5000);
    assert.deepEqual([1, 2, 3, 4, 10, 1000].map((k) => rotation.delayMs(k)), [1000, 2000, 4000, 5000, 5000, 5000]);
    let now = 0;
    const probes = [];
    rotation.failed(0, now, now);
    while (now < 20000) {
      now += 250;
      if (rotation.pick(now) === 0) {
        probes.push(now);
        rotation.failed(0, now, now); // still dead
      }
    }
    assert.deepEqual(probes, [1000, 3000, 7000, 12000, 17000]);
  });

  it('does not stack failures of one outage; stale successes do not heal', () => {
    const rotation = new Rotation(2, 1000, 64000);
    for (let i = 0; i < 8; i += 1) rotation.failed(0, 0, 1000);
    assert.equal(rotation.pick(1500, new Set([1])), 0); // the only candidate: forced, untouched
    assert.equal(rotation.pick(2000), 0); // one back-off period after the failure
    rotation.failed(1, 2000, 3000);
    rotation.succeeded(1, 1000);
    assert.equal(rotation.healthy(1), false);
  });

  it('with only endpoints in back-off left, gives the one due soonest', () => {
    const rotation = new Rotation(3, 1000, 1000);
    rotation.failed(0, 0, 500);
    rotation.failed(2, 0, 200);
    assert.equal(rotation.pick(600, new Set([1])), 2);
    assert.equal(rotation.pick(600, new Set([1, 2])), 0);
    assert.equal(rotation.pick(600, new Set([0, 1, 2])), null);
  });
});

describe('CallPlan', () => {
  it('tries each endpoint once per pass until the deadline', () => {
    const plan = new CallPlan(new Rotation(3, 10000, 10000), ENDPOINTS, 5000, 1000);
    let now = 0;
    const tried = [];
    for (let planned = plan.next(now); planned !== null; planned = plan.next(now)) {
      const [index, timeoutMs] = planned;
      tried.push([index, timeoutMs]);
      now += timeoutMs;
      plan.failed(index, now - timeoutMs, now, NO_ANSWER);
    }
    assert.deepEqual(tried.slice(0, 3).map(([i]) => i), [0, 1, 2]);
    assert.deepEqual(tried.slice(3).map(([i]) => i).sort(), [0, 1]); // a second pass
    assert.ok(tried.every(([, t]) => t === 1000));
    assert.equal(now, 5000);
    assert.equal(plan.timeouts, 5);
    const error = plan.error(5000);
    assert.ok(error instanceof SeqgenError);
    assert.equal(error.code, 'UNAVAILABLE');
    assert.match(error.message, /tcp:\/\/a:1/);
  });

  it('caps the last attempt at the deadline; a cut-short attempt does not mark the endpoint', () => {
    const plan = new CallPlan(new Rotation(2, 1000, 1000), ENDPOINTS.slice(0, 2), 1500, 1000);
    assert.deepEqual(plan.next(0), [0, 1000]);
    plan.failed(0, 0, 1000, NO_ANSWER);
    assert.deepEqual(plan.next(1000), [1, 500]);
    plan.failed(1, 1000, 1500, NO_ANSWER);
    assert.equal(plan.next(1500), null);
    const rotation = new Rotation(1, 1000, 1000);
    const short = new CallPlan(rotation, ENDPOINTS.slice(0, 1), 300, 1000);
    assert.deepEqual(short.next(0), [0, 300]);
    short.failed(0, 0, 300, NO_ANSWER);
    assert.equal(rotation.healthy(0), true);
  });

  it('never asks again an endpoint that refused, and raises its error', () => {
    const rotation = new Rotation(2, 1000, 1000);
    const plan = new CallPlan(rotation, ENDPOINTS.slice(0, 2), 5000, 1000);
    assert.deepEqual(plan.next(0), [0, 1000]);
    plan.failed(0, 0, 10, new SeqgenError('INTERNAL', 'disk full'));
    assert.equal(rotation.healthy(0), false);
    assert.deepEqual(plan.next(10), [1, 1000]);
    plan.failed(1, 10, 20, new SeqgenError('UNAVAILABLE', 'no backend'));
    assert.equal(plan.next(20), null); // both refused: no point waiting for the deadline
    assert.equal(plan.error(5000).message, 'no backend');
  });

  it('counts an unsent request as refused, without an error reply', () => {
    const plan = new CallPlan(new Rotation(1, 1000, 1000), ENDPOINTS.slice(0, 1), 5000, 1000);
    assert.deepEqual(plan.next(0), [0, 1000]);
    plan.failed(0, 0, 0, UNSENT);
    assert.equal(plan.next(0), null);
    assert.equal(plan.error(5000).code, 'UNAVAILABLE');
  });
});

describe('options', () => {
  it('are checked when the client is made', () => {
    const cases = [
      [['ftp://x:1'], {}, /not a ZeroMQ endpoint/],
      [['tcp://host'], {}, /needs a host and a port/],
      [['tcp://host:0'], {}, /invalid port/],
      [['tcp://a:1', 'tcp://a:1'], {}, /listed twice/],
      [[], {}, /at least one endpoint/],
      [[42], {}, TypeError],
      [42, {}, TypeError],
      ['tcp://a:1', { timeout: 5 }, /unknown option "timeout"/],
      ['tcp://a:1', { timeoutMs: 0 }, RangeError],
      ['tcp://a:1', { deadlineMs: Infinity }, RangeError],
      ['tcp://a:1', { deadlineMs: NaN }, RangeError],
      ['tcp://a:1', { maxBackoffMs: 2 ** 31 }, RangeError], // past what a Node.js timer can wait
      ['tcp://a:1', { backoffMs: '1000' }, TypeError],
      ['tcp://a:1', { backoffMs: 2000, maxBackoffMs: 1000 }, /maxBackoffMs/],
      ['tcp://a:1', { coalesce: 'yes' }, TypeError],
    ];
    for (const [endpoints, options, expected] of cases) {
      assert.throws(() => seqgen(endpoints, options), expected, JSON.stringify([endpoints, options]));
    }
  });

  it('take defaults, ipc and inproc endpoints', () => {
    const seq = seqgen(['tcp://[::1]:6410', 'ipc:///tmp/x', 'inproc://y']);
    try {
      assert.deepEqual(seq.options, {
        timeoutMs: 1000, deadlineMs: 5000, backoffMs: 1000, maxBackoffMs: 30000, coalesce: true, hedge: true,
        curve: false,
      });
      assert.deepEqual(seq.stats, {
        requests: 0, calls: 0, coalescedCalls: 0, lostNumbers: 0, attempts: 0, timeouts: 0,
        hedges: 0, hedgeWins: 0, lateAnswers: 0,
      });
      assert.throws(() => seqgen('tcp://127.0.0.1:9', { hedge: 'yes' }), /hedge must be true or false/);
    } finally {
      seq.close();
    }
  });

  it('per-call options are checked when the call is made', () => {
    const seq = seqgen('tcp://127.0.0.1:9');
    try {
      assert.throws(() => seq.next('x', { deadline: 5 }), /unknown call option/);
      assert.throws(() => seq.next('x', { deadlineMs: -1 }), RangeError);
      assert.throws(() => seq.next('x', { signal: {} }), /AbortSignal/);
      assert.throws(() => seq.next('x', {}, 'not a function'), /callback/);
    } finally {
      seq.close();
    }
  });
});

describe('wire format', () => {
  it('encodes requests as the protocol says', () => {
    assert.equal(encodeRequest('inv', 0n, 1).toString(), '["inv","0"]');
    assert.equal(encodeRequest('inv', 9223372036854775807n, 3).toString(), '["inv","9223372036854775807",3]');
    assert.equal(encodeRequest('q"\\é', 5n, 1).toString(), '["q\\"\\\\é","5"]');
  });

  it('parses replies into BigInts, or the error they carry', () => {
    assert.deepEqual(parseReply(Buffer.from('[null,"1"]'), 1), [1n]);
    assert.deepEqual(parseReply(Buffer.from('[null,"9223372036854775806","9223372036854775807"]'), 2),
      [9223372036854775806n, 9223372036854775807n]);
    assert.throws(() => parseReply(Buffer.from('["EXHAUSTED","too far"]'), 1), { code: 'EXHAUSTED', message: 'too far' });
    for (const bad of ['', 'nope', '{}', '[]', '[null]', '[null,1]', '[null,"-1"]', '[null,"1e3"]', '[5,"x"]']) {
      assert.throws(() => parseReply(Buffer.from(bad), 1), { code: 'INTERNAL' }, bad);
    }
    assert.throws(() => parseReply(Buffer.from('[null,"1","2"]'), 1), { code: 'INTERNAL' });
    // The control socket's reply (the admin's port, by mistake) is named as such.
    assert.throws(() => parseReply(Buffer.from('{"type":"error","code":"BAD_REQUEST","message":"x"}'), 1),
      { code: 'INTERNAL', message: /control socket .* --bind address/ });
  });

  it('checks names and counts as the server does', () => {
    assert.equal(nameError('x'.repeat(200)), null);
    assert.equal(nameError('😀'), null);
    assert.equal(nameError('x'.repeat(201)).code, 'BAD_NAME');
    assert.equal(nameError('\ud83d').code, 'BAD_NAME');
    assert.equal(nameError('\u009f').code, 'BAD_NAME');
    assert.equal(countError(1000), null);
    assert.equal(countError(1001).code, 'BAD_COUNT');
  });

  it('z85 round-trips 32-byte keys', () => {
    const bytes = Buffer.from(Array.from({ length: 32 }, (_, i) => (i * 37 + 11) % 256));
    const text = z85.encode(bytes);
    assert.equal(text.length, 40);
    assert.deepEqual(z85.decode(text), bytes);
    // The example of the Z85 specification (ZeroMQ RFC 32).
    assert.equal(z85.encode(Buffer.from([0x86, 0x4f, 0xd2, 0x6f, 0xb5, 0x59, 0xf7, 0x5b])), 'HelloWorld');
    assert.equal(z85.decode('~~~~~'), null);
  });
});
