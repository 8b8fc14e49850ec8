'use strict';
// Failover against real servers: one killed (SIGKILL), one frozen (SIGSTOP), error
// replies that send a request elsewhere, per-call and per-caller deadlines.

const assert = require('node:assert/strict');
const { performance } = require('node:perf_hooks');
const { after, before, describe, it } = require('node:test');
const seqgen = require('..');
const { Cluster, skipReason } = require('./support/cluster');

const LONG_BACKOFF = { backoffMs: 60000, maxBackoffMs: 60000 };

async function timed(promise) {
  const started = performance.now();
  const value = await promise;
  return [value, performance.now() - started];
}

const isOdd = (value) => value % 2n === 1n;

describe('failover', { skip: skipReason() ?? false }, () => {
  let cluster;
  const client = (endpoints, options) => cluster.client(endpoints, options);

  before(() => {
    cluster = new Cluster();
  });

  after(async () => {
    if (cluster) await cluster.close();
  });

  describe('two servers, one frozen then killed', () => {
    let odd;
    let even;
    before(async () => {
      [odd, even] = await Promise.all([
        cluster.server({ instance: 1, instances: 2 }),
        cluster.server({ instance: 2, instances: 2 }),
      ]);
    });

    it('serves round-robin from both', async () => {
      const seq = client([odd.bind, even.bind]);
      const values = [];
      for (let i = 0; i < 10; i += 1) values.push(await seq.next('rr'));
      assert.equal(new Set(values).size, 10);
      assert.equal(values.filter(isOdd).length, 5, `alternating: ${values}`);
    });

    it('a frozen (SIGSTOP) server costs one attempt timeout, not the deadline', async () => {
      // Without hedging: the timeouts themselves (the hedged path is tested below).
      const seq = client([odd.bind, even.bind], {
        timeoutMs: 400, deadlineMs: 20000, hedge: false, ...LONG_BACKOFF,
      });
      await seq.next('frozen');
      await seq.next('frozen'); // both endpoints answered once
      even.freeze();
      try {
        const durations = [];
        const values = [];
        for (let i = 0; i < 10; i += 1) {
          const [value, ms] = await timed(seq.next('frozen'));
          values.push(value);
          durations.push(ms);
        }
        assert.ok(values.every(isOdd), `only the live server answers: ${values}`);
        assert.equal(new Set(values).size, 10);
        // One call waited for the frozen server's attempt timeout, then it was skipped.
        assert.equal(seq.stats.timeouts, 1);
        const slowest = Math.max(...durations);
        assert.ok(slowest >= 390, `the call that met the frozen server waited its timeout: ${durations}`);
        assert.ok(slowest < 3000, `and then moved on, long before the 20 s deadline: ${durations}`);

        // Many concurrent calls meet the frozen server at once: each fails over.
        const many = client([odd.bind, even.bind], {
          timeoutMs: 400, deadlineMs: 20000, coalesce: false, hedge: false, ...LONG_BACKOFF,
        });
        const [burst, ms] = await timed(Promise.all(Array.from({ length: 100 }, () => many.next('frozen'))));
        assert.equal(new Set([...burst, ...values]).size, 110);
        assert.ok(burst.every(isOdd));
        assert.ok(ms < 5000, `100 concurrent calls took ${ms} ms`);
      } finally {
        even.thaw();
      }
    });

    it('hedged: a frozen server costs the hedge delay; its late answer is counted, never delivered',
      async () => {
        const seq = client([odd.bind, even.bind], {
          timeoutMs: 5000, deadlineMs: 20000, backoffMs: 3000, maxBackoffMs: 3000,
        });
        const warm = [];
        for (let i = 0; i < 32; i += 1) warm.push(await seq.next('hedged'));
        assert.equal(warm.filter(isOdd).length, 16, `both answered: ${warm}`);
        const before = seq.stats; // a busy machine may have delayed an answer past the delay
        even.freeze();
        const durations = [];
        const values = [];
        try {
          for (let i = 0; i < 20; i += 1) {
            const [value, ms] = await timed(seq.next('hedged'));
            values.push(value);
            durations.push(ms);
          }
        } finally {
          even.thaw();
        }
        assert.ok(values.every(isOdd), `only the live server answers: ${values}`);
        assert.ok(Math.max(...durations) < 1000, `the hedge delay (<= 50 ms), not the 5 s timeout: ${durations}`);
        // One hedge won; the frozen server was then skipped, not tried first (an attempt on the
        // live one slower than the delay, on a busy machine, may still hedge to it, and lose).
        assert.ok(seq.stats.hedgeWins - before.hedgeWins >= 1, JSON.stringify(seq.stats));
        assert.ok(seq.stats.hedgeWins - before.hedgeWins <= 3, JSON.stringify(seq.stats));
        // Thawed, it answers the request it held: counted, its number lost, never delivered.
        const later = [];
        const until = performance.now() + 10000;
        while (seq.stats.lateAnswers === before.lateAnswers && performance.now() < until) {
          later.push(await seq.next('hedged'));
        }
        assert.ok(seq.stats.lateAnswers > before.lateAnswers);
        assert.equal(seq.stats.lostNumbers, seq.stats.lateAnswers, 'one number each');
        assert.equal(seq.stats.timeouts, 0);
        // It is used again after its back-off (3 s), its probe answered in time.
        const again = performance.now() + 8000;
        while (isOdd(later[later.length - 1] ?? 1n) && performance.now() < again) {
          later.push(await seq.next('hedged'));
        }
        assert.ok(!isOdd(later[later.length - 1]), `used again after its back-off: ${later.slice(-5)}`);
        const everything = [...warm, ...values, ...later];
        assert.equal(new Set(everything).size, everything.length, 'no number twice');
      });

    it('hedged: the only healthy endpoint lost, its hedge goes to the one in back-off',
      async () => {
        // The endpoint in back-off is back, the only healthy one has just gone down (as when
        // a client's own link was cut off and healed, then the other endpoint's host failed).
        const seq = client([odd.bind, even.bind], {
          timeoutMs: 1000, deadlineMs: 5000, backoffMs: 30000, maxBackoffMs: 30000,
        });
        for (let i = 0; i < 16; i += 1) await seq.next('in-back-off');
        even.freeze();
        try {
          // Round-robin: one of these meets it, hedges, and skips it for 30 s.
          for (let i = 0; i < 4; i += 1) assert.ok(isOdd(await seq.next('in-back-off')));
        } finally {
          even.thaw();
        }
        assert.ok(seq.stats.hedgeWins >= 1, JSON.stringify(seq.stats));
        odd.freeze();
        let value;
        let ms;
        const before = seq.stats;
        try {
          [value, ms] = await timed(seq.next('in-back-off'));
        } finally {
          odd.thaw();
        }
        assert.ok(!isOdd(value), `from the endpoint in back-off: ${value}`);
        assert.ok(ms < 500, `the hedge delay (<= 50 ms), not the 1 s timeout: ${ms}`);
        assert.equal(seq.stats.hedges, before.hedges + 1, JSON.stringify([before, seq.stats]));
        assert.equal(seq.stats.hedgeWins, before.hedgeWins + 1, JSON.stringify(seq.stats));
      });

    it('a killed (SIGKILL) server: calls go on through the other', async () => {
      const seq = client([odd.bind, even.bind], {
        timeoutMs: 500, deadlineMs: 20000, hedge: false, ...LONG_BACKOFF,
      });
      const warm = [await seq.next('killed'), await seq.next('killed')];
      assert.equal(warm.filter(isOdd).length, 1, `both answered: ${warm}`);
      await even.kill();
      const values = [];
      for (let i = 0; i < 20; i += 1) values.push(await seq.next('killed'));
      assert.ok(values.every(isOdd), `${values}`);
      assert.equal(new Set([...warm, ...values]).size, 22);
      // The dead server cost one timeout; then it stays in back-off.
      assert.equal(seq.stats.timeouts, 1);
      assert.equal(seq.stats.attempts, 23);
      assert.equal(seq.stats.requests, 22, 'a failover retry is part of its request');
      assert.ok(values[0] > warm.find(isOdd));
      for (let i = 1; i < values.length; i += 1) assert.ok(values[i] > values[i - 1]);
      assert.equal(seq.last('killed'), values[19]);
    });
  });

  describe('error replies', () => {
    let full;
    let spare;
    let emptyProxy;
    before(async () => {
      // A server that holds its maximum of names answers INTERNAL for a new one.
      [full, spare] = await Promise.all([
        cluster.server({ instance: 1, instances: 2, extra: ['--max-sequences', '1'] }),
        cluster.server({ instance: 2, instances: 2 }),
      ]);
      await client(full.bind).next('the-only-name');
      // A proxy whose only host is dead answers UNAVAILABLE.
      const dead = `tcp://127.0.0.1:${await require('./support/cluster').freePort()}`;
      emptyProxy = await cluster.proxy([dead], ['--timeout', '0.2']);
    });

    it('INTERNAL from one endpoint: the request is retried on another', async () => {
      const seq = client([full.bind, spare.bind], { coalesce: false, ...LONG_BACKOFF });
      const values = [];
      for (let i = 0; i < 10; i += 1) values.push(await seq.next(`new-${i}`));
      assert.ok(values.every((value) => !isOdd(value)), `${values}`);
      // Exactly one request met the full server; then it was in back-off.
      assert.equal(seq.stats.attempts, 11);
      assert.equal(seq.stats.requests, 10);
      assert.equal(seq.stats.timeouts, 0);
    });

    it('INTERNAL from every endpoint is raised at once', async () => {
      const seq = client([full.bind], { deadlineMs: 20000 });
      const [outcome, ms] = await timed(seq.next('another-new-name').catch((err) => err));
      assert.equal(outcome.code, 'INTERNAL');
      assert.match(outcome.message, /maximum/);
      assert.equal(seq.stats.attempts, 1);
      assert.ok(ms < 5000, `${ms} ms`);
    });

    it('UNAVAILABLE from a proxy without servers: another endpoint, else raised', async () => {
      const both = client([emptyProxy.bind, spare.bind], LONG_BACKOFF);
      for (let i = 0; i < 4; i += 1) {
        assert.ok(!isOdd(await both.next('via-proxy')));
      }
      assert.ok(both.stats.attempts <= 5);
      const alone = client([emptyProxy.bind], { deadlineMs: 20000 });
      await assert.rejects(alone.next('via-proxy'), (err) => {
        assert.equal(err.code, 'UNAVAILABLE');
        assert.match(err.message, /no server answered/);
        return true;
      });
      assert.equal(alone.stats.attempts, 1);
    });
  });

  describe('deadlines with a frozen server', () => {
    let server;
    before(async () => {
      server = await cluster.server();
    });

    async function frozen(work) {
      server.freeze();
      try {
        return await work();
      } finally {
        server.thaw();
      }
    }

    it('UNAVAILABLE when nothing answers within the deadline', async () => {
      const seq = client(server.bind, { timeoutMs: 200, deadlineMs: 700 });
      await seq.next('deadline');
      const [err, ms] = await frozen(() => timed(seq.next('deadline').catch((e) => e)));
      assert.ok(err instanceof seqgen.SeqgenError);
      assert.equal(err.code, 'UNAVAILABLE');
      assert.ok(ms >= 690, `gave up after ${ms} ms, before its deadline`);
      assert.ok(ms < 3000, `gave up after ${ms} ms`);
      assert.ok(seq.stats.timeouts >= 2, 'the silent endpoint was tried again in later passes');
    });

    it('a queued caller whose deadline passes leaves the queue and costs no number', async () => {
      const seq = client(server.bind, { timeoutMs: 200, deadlineMs: 15000 });
      await seq.next('queued');
      const aborter = new AbortController();
      const [inFlight, lastQueued, statsAtThaw] = await frozen(async () => {
        const a = seq.next('queued'); // in flight, unanswered
        const b = seq.next('queued', { deadlineMs: 300 }); // queued; gives up first
        const c = seq.next('queued', { deadlineMs: 15000 }); // queued
        const d = seq.next('queued', { signal: aborter.signal }); // queued, then aborted
        aborter.abort();
        await assert.rejects(d, { name: 'AbortError' });
        await assert.rejects(b, { code: 'UNAVAILABLE' });
        return [a, c, seq.stats];
      });
      const [aValue, cValue] = await Promise.all([inFlight, lastQueued]);
      assert.ok(cValue > aValue);
      // b and d left the queue before it was sent: c went out alone, nothing was lost.
      assert.equal(statsAtThaw.coalescedCalls, 0);
      assert.equal(seq.stats.coalescedCalls, 0);
      assert.equal(seq.stats.lostNumbers, 0);
    });

    it('a caller that gives up after its batch was sent loses its number, counted', async () => {
      const seq = client(server.bind, { timeoutMs: 200, deadlineMs: 15000 });
      await seq.next('lost');
      const [kept] = await frozen(async () => {
        const a = seq.next('lost', { deadlineMs: 300 }); // in flight until its deadline
        const b = seq.next('lost'); // queued, then sent with c when a gives up
        const c = seq.next('lost', { deadlineMs: 900 }); // gives up while its batch waits
        await assert.rejects(a, { code: 'UNAVAILABLE' });
        await assert.rejects(c, { code: 'UNAVAILABLE' });
        assert.equal(seq.stats.requests, 3, 'b and c went out as one request (after the first and a)');
        return [b]; // in an array: returning the promise itself would wait for it while frozen
      });
      const value = await kept;
      assert.equal(seq.stats.lostNumbers, 1, "c's number came back after c gave up");
      assert.equal(seq.last('lost'), value + 1n, 'the batch held value (for b) and value + 1 (lost)');
      assert.ok((await seq.next('lost')) > value + 1n);
    });
  });
});
