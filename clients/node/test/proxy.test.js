'use strict';
// Through real seqgen-proxy processes in front of two real servers.

const assert = require('node:assert/strict');
const { after, before, describe, it } = require('node:test');
const { Cluster, skipReason } = require('./support/cluster');

describe('through a proxy', { skip: skipReason() ?? false }, () => {
  let cluster;
  let servers;
  let proxies;
  const client = (endpoints, options) => cluster.client(endpoints, { deadlineMs: 10000, ...options });

  before(async () => {
    cluster = new Cluster();
    servers = await Promise.all([
      cluster.server({ instance: 1, instances: 2 }),
      cluster.server({ instance: 2, instances: 2 }),
    ]);
    const hosts = servers.map((server) => server.bind);
    proxies = await Promise.all([cluster.proxy(hosts), cluster.proxy(hosts)]);
  });

  after(async () => {
    if (cluster) await cluster.close();
  });

  it('gives numbers in both call styles', async () => {
    const seq = client(proxies[0].bind);
    const fromCallback = await new Promise((resolve, reject) => {
      seq.next('proxied', (err, value) => (err ? reject(err) : resolve(value)));
    });
    const fromPromise = await seq.next('proxied');
    const many = await seq.nextMany('proxied', 5);
    assert.equal(typeof fromCallback, 'bigint');
    assert.equal(new Set([fromCallback, fromPromise, ...many]).size, 7);
    for (let i = 1; i < many.length; i += 1) assert.ok(many[i] > many[i - 1]);
    assert.equal(seq.last('proxied') >= many[4], true);
  });

  it('checks names and counts before sending; a batch of 1000 passes the proxy', async () => {
    const seq = client(proxies[0].bind);
    await assert.rejects(seq.next('bad\u0001name'), { code: 'BAD_NAME' });
    await assert.rejects(seq.nextMany('fine', 1001), { code: 'BAD_COUNT' });
    assert.equal(seq.stats.requests, 0);
    assert.equal((await seq.nextMany('fine', 1000)).length, 1000);
  });

  it('many concurrent calls through two proxies: all distinct', async () => {
    const seq = client(proxies.map((proxy) => proxy.bind));
    const plain = client(proxies.map((proxy) => proxy.bind), { coalesce: false });
    const [coalesced, single] = await Promise.all([
      Promise.all(Array.from({ length: 400 }, () => seq.next('crowd'))),
      Promise.all(Array.from({ length: 200 }, () => plain.next('crowd'))),
    ]);
    assert.equal(new Set([...coalesced, ...single]).size, 600);
    assert.ok(seq.stats.requests < 40, `coalesced into ${seq.stats.requests} requests`);
    assert.equal(plain.stats.requests, 200);
  });

  it('a proxy killed: the client fails over to the other proxy', async () => {
    const seq = client(proxies.map((proxy) => proxy.bind), {
      timeoutMs: 500, backoffMs: 60000, maxBackoffMs: 60000, hedge: false, // counts the timeout
    });
    const before = [await seq.next('proxy-down'), await seq.next('proxy-down')];
    await proxies[1].kill();
    const after = [];
    for (let i = 0; i < 10; i += 1) after.push(await seq.next('proxy-down'));
    assert.equal(new Set([...before, ...after]).size, 12);
    assert.equal(seq.stats.timeouts, 1);
  });
});
