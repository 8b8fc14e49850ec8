'use strict';
// The client's interface against one real seqgen-server: both call styles, BigInt
// up to 2^63-1, EXHAUSTED, validation before sending, coalescing, close().

const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const { after, before, describe, it } = require('node:test');
const seqgen = require('..');
const { Cluster, control, requestCounters, skipReason, total } = require('./support/cluster');

const MAX = 9223372036854775807n;
const PACKAGE = path.resolve(__dirname, '..');

/** `client.next(name, callback)` as a promise of [err, value]. */
function viaCallback(call) {
  return new Promise((resolve) => {
    call((err, value) => resolve([err, value]));
  });
}

/** Raise `name`'s floor through the server's control socket: the next number is above it. */
async function raiseFloor(server, name, value) {
  const reply = await control(
    server.control,
    `{"type":"raise_floor","name":${JSON.stringify(name)},"value":${value.toString()}}`,
  );
  assert.equal(reply.type, 'sequence', JSON.stringify(reply));
}

describe('seqgen client against a real server', { skip: skipReason() ?? false }, () => {
  let cluster;
  let server;
  const client = (options) => cluster.client(server.bind, { timeoutMs: 2000, deadlineMs: 10000, ...options });

  before(async () => {
    cluster = new Cluster();
    server = await cluster.server();
  });

  after(async () => {
    if (cluster) await cluster.close();
  });

  it('gives BigInt numbers through callbacks and promises', async () => {
    const seq = client();
    const [err, first] = await viaCallback((cb) => seq.next('styles', cb));
    assert.equal(err, null);
    assert.equal(typeof first, 'bigint');
    assert.equal(first, 1n); // one server, a new name: 1
    assert.equal(await seq.next('styles'), 2n);
    assert.deepEqual(await seq.nextMany('styles', 3), [3n, 4n, 5n]);
    const [manyErr, many] = await viaCallback((cb) => seq.nextMany('styles', 2, cb));
    assert.equal(manyErr, null);
    assert.deepEqual(many, [6n, 7n]);
    const [optErr, withOptions] = await viaCallback((cb) => seq.next('styles', { deadlineMs: 3000 }, cb));
    assert.equal(optErr, null);
    assert.equal(withOptions, 8n);
    assert.equal(seq.last('styles'), 8n);
    assert.equal(seq.last('never-used'), 0n);
    assert.equal(seq.next('styles', () => {}), undefined); // the callback form returns nothing
  });

  it('reaches 2^63-1 as an exact BigInt, then says EXHAUSTED', async () => {
    await raiseFloor(server, 'top', MAX - 3n);
    const seq = client();
    assert.equal(await seq.next('top'), MAX - 2n);
    assert.deepEqual(await seq.nextMany('top', 2), [MAX - 1n, MAX]);
    assert.equal(seq.last('top'), MAX);
    const attempts = seq.stats.attempts;
    await assert.rejects(seq.next('top'), (err) => {
      assert.ok(err instanceof seqgen.SeqgenError);
      assert.ok(err instanceof Error);
      assert.equal(err.code, 'EXHAUSTED');
      return true;
    });
    const [err] = await viaCallback((cb) => seq.nextMany('top', 5, cb));
    assert.equal(err.code, 'EXHAUSTED');
    assert.equal(seq.stats.attempts, attempts + 2, 'EXHAUSTED is raised at once, not retried');
  });

  it('refuses bad names and counts before anything is sent', async () => {
    const before = await requestCounters(server);
    const seq = client();
    const badNames = [
      '', 'x'.repeat(201), 'é'.repeat(101), 'a\u0000b', 'tab\there', 'del\u007f', 'c1\u0085',
      'c1\u009f', 'lone\ud800', 'lone\udfff', '\udc00\ud800', 42, null, undefined, ['a'], {},
    ];
    for (const name of badNames) {
      await assert.rejects(seq.next(name), { code: 'BAD_NAME' }, `next(${JSON.stringify(name)})`);
      await assert.rejects(seq.nextMany(name, 2), { code: 'BAD_NAME' });
      const [err] = await viaCallback((cb) => seq.next(name, cb));
      assert.equal(err.code, 'BAD_NAME');
    }
    for (const count of [0, -1, 1001, 1.5, NaN, Infinity, '3', 3n, null, undefined]) {
      await assert.rejects(seq.nextMany('counts', count), { code: 'BAD_COUNT' }, `count ${String(count)}`);
    }
    // Arguments keep their places: a callback where the count belongs is a TypeError.
    assert.throws(() => seq.nextMany('counts', () => {}), TypeError);
    assert.equal(seq.stats.attempts, 0);
    assert.deepEqual(await requestCounters(server), before, 'the server saw no request');

    // The limits themselves are fine.
    const edgeNames = ['x'.repeat(200), 'é'.repeat(100), '😀'.repeat(50), 'no-break\u00a0space', 'A\u00a0'];
    for (const name of edgeNames) {
      assert.equal(typeof await seq.next(name), 'bigint', name);
    }
    assert.equal((await seq.nextMany('counts', 1)).length, 1);
    const thousand = await seq.nextMany('counts', 1000);
    assert.equal(thousand.length, 1000);
    for (let i = 1; i < thousand.length; i += 1) assert.ok(thousand[i - 1] < thousand[i]);
  });

  it('coalesces 500 concurrent next() calls on one name into few requests', async () => {
    const seq = client();
    const okBefore = (await requestCounters(server)).OK ?? 0;
    const values = await Promise.all(Array.from({ length: 500 }, () => seq.next('burst')));
    assert.equal(new Set(values).size, 500, 'all distinct');
    // One server: numbers go to callers in arrival order.
    for (let i = 1; i < values.length; i += 1) assert.ok(values[i - 1] < values[i], `at ${i}`);
    // The first call went out alone at once; the 499 that came while it was in flight, together.
    assert.deepEqual(seq.stats, {
      requests: 2, calls: 500, coalescedCalls: 499, lostNumbers: 0, attempts: 2, timeouts: 0,
      hedges: 0, hedgeWins: 0, lateAnswers: 0,
    });
    assert.equal((await requestCounters(server)).OK - okBefore, 2);
    assert.equal(seq.last('burst'), values[499]);
  });

  it('hands the number of a call aborted after its request was sent to a queued call', async () => {
    const seq = client();
    await seq.next('hand-on');
    const aborter = new AbortController();
    const a = seq.next('hand-on'); // out alone
    const b = seq.next('hand-on'); // queued
    const c = seq.next('hand-on', { signal: aborter.signal }); // queued with b
    await a; // b and c went out together as a's request settled; their reply is still to come
    const d = seq.next('hand-on'); // queued behind them
    aborter.abort(); // c gives up with its request out
    await assert.rejects(c, { name: 'AbortError' });
    const [bValue, dValue] = await Promise.all([b, d]);
    assert.equal(dValue, bValue + 1n, "d got c's number");
    // b alone took a number from the shared request (c had gone), so nothing counts as
    // coalesced; d's call was served by c's number.
    assert.deepEqual(seq.stats, {
      requests: 3, calls: 4, coalescedCalls: 0, lostNumbers: 0, attempts: 3, timeouts: 0,
      hedges: 0, hedgeWins: 0, lateAnswers: 0,
    });
  });

  it('sends at most 1000 calls in one request', async () => {
    const seq = client();
    const values = await Promise.all(Array.from({ length: 1502 }, () => seq.next('big-burst')));
    assert.equal(new Set(values).size, 1502);
    for (let i = 1; i < values.length; i += 1) assert.ok(values[i - 1] < values[i], `at ${i}`);
    assert.deepEqual(seq.stats, {
      requests: 3, calls: 1502, coalescedCalls: 1501, lostNumbers: 0, attempts: 3, timeouts: 0,
      hedges: 0, hedgeWins: 0, lateAnswers: 0,
    });
  });

  it('with coalesce: false sends one request per call', async () => {
    const seq = client({ coalesce: false });
    const okBefore = (await requestCounters(server)).OK ?? 0;
    const values = await Promise.all(Array.from({ length: 200 }, () => seq.next('single')));
    assert.equal(new Set(values).size, 200);
    assert.equal(seq.stats.requests, 200);
    assert.equal(seq.stats.coalescedCalls, 0);
    assert.equal((await requestCounters(server)).OK - okBefore, 200);
  });

  it('gives a coalesced error reply to every caller of the batch', async () => {
    await raiseFloor(server, 'edge', MAX - 3n); // three numbers left: MAX-2, MAX-1, MAX
    const seq = client();
    const calls = Array.from({ length: 11 }, () => seq.next('edge'));
    const outcomes = await Promise.allSettled(calls);
    assert.deepEqual(outcomes[0], { status: 'fulfilled', value: MAX - 2n });
    for (const outcome of outcomes.slice(1)) {
      assert.equal(outcome.status, 'rejected');
      assert.equal(outcome.reason.code, 'EXHAUSTED');
    }
    // The ten shared one request, but none was served by it: coalescedCalls counts calls
    // served by a shared request, as in the Python client.
    assert.equal(seq.stats.coalescedCalls, 0);
    assert.equal(seq.stats.requests, 2);
    assert.equal(seq.stats.calls, 1);
    // The refused batch issued nothing: the next single call still gets MAX-1.
    assert.equal(await seq.next('edge'), MAX - 1n);
  });

  it('nextMany is never coalesced', async () => {
    const seq = client();
    const batches = await Promise.all(Array.from({ length: 20 }, () => seq.nextMany('many', 3)));
    const all = batches.flat();
    assert.equal(new Set(all).size, 60);
    for (const batch of batches) assert.ok(batch[0] < batch[1] && batch[1] < batch[2]);
    assert.equal(seq.stats.attempts, 20);
    assert.equal(seq.stats.requests, 0, 'requests counts the requests of next() calls');
    assert.equal(seq.stats.coalescedCalls, 0);
  });

  it('close() ends waiting calls and refuses new ones with CLOSED', async () => {
    const seq = client();
    assert.equal(await seq.next('closing'), 1n);
    const waiting = [seq.next('closing'), seq.next('closing'), seq.nextMany('closing', 2)];
    seq.close();
    seq.close(); // idempotent
    assert.equal(seq.closed, true);
    for (const outcome of await Promise.allSettled(waiting)) {
      assert.equal(outcome.status, 'rejected');
      assert.equal(outcome.reason.code, 'CLOSED');
    }
    await assert.rejects(seq.next('closing'), { code: 'CLOSED' });
    const [err] = await viaCallback((cb) => seq.next('closing', cb));
    assert.equal(err.code, 'CLOSED');
  });

  it('an abort signal gives up the call', async () => {
    const seq = client();
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(seq.next('aborted', { signal: controller.signal }), { name: 'AbortError' });
    assert.equal(seq.stats.requests, 0);
  });

  it('reads SEQGEN_ENDPOINTS when the client is made, not at require time', async () => {
    const saved = process.env.SEQGEN_ENDPOINTS;
    try {
      process.env.SEQGEN_ENDPOINTS = ` ${server.bind} ,, `;
      const seq = cluster.adopt(seqgen());
      assert.deepEqual(seq.endpoints, [server.bind]);
      assert.equal(typeof await seq.next('from-env'), 'bigint');
      const withOptions = cluster.adopt(seqgen({ timeoutMs: 1500 }));
      assert.deepEqual(withOptions.endpoints, [server.bind]);
      assert.equal(withOptions.options.timeoutMs, 1500);
      delete process.env.SEQGEN_ENDPOINTS;
      const fallback = cluster.adopt(seqgen());
      assert.deepEqual(fallback.endpoints, ['tcp://127.0.0.1:6410']);
    } finally {
      if (saved === undefined) delete process.env.SEQGEN_ENDPOINTS;
      else process.env.SEQGEN_ENDPOINTS = saved;
    }
  });

  it('works as an ES module', async () => {
    const esm = await import('../index.mjs');
    assert.equal(esm.default, seqgen);
    assert.equal(esm.SeqgenError, seqgen.SeqgenError);
    assert.equal(esm.MAX_VALUE, MAX);
    const seq = cluster.adopt(esm.default([server.bind]));
    assert.equal(typeof await seq.next('esm'), 'bigint');
  });

  it('lets the process exit when idle, without close()', () => {
    const script = `
      const seq = require(${JSON.stringify(PACKAGE)})(${JSON.stringify(server.bind)});
      seq.next('exit', (err, value) => { if (err) throw err; console.log(String(value)); });`;
    const done = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20000 });
    assert.equal(done.error, undefined, 'the process did not exit by itself');
    assert.equal(done.status, 0, done.stderr);
    assert.match(done.stdout, /^[0-9]+\n$/);
  });
});
