'use strict';
// CURVE against a real server (and proxy) that serve only listed client keys, with keys
// made by `seqgen keygen`. A refused client hears nothing (the handshake fails) but its
// socket's monitor does: it gets AUTH after one attempt; each refusal is paired with an
// allowed client getting numbers from the same process.

const assert = require('node:assert/strict');
const { performance } = require('node:perf_hooks');
const fs = require('node:fs');
const path = require('node:path');
const { after, before, describe, it } = require('node:test');
const seqgen = require('..');
const { Cluster, skipReason } = require('./support/cluster');

const SILENT = { timeoutMs: 300, deadlineMs: 900 };

function keyLine(file, which) {
  const match = new RegExp(`${which}-key = "(.{40})"`).exec(fs.readFileSync(file, 'utf8'));
  assert.ok(match, `${which} key in ${file}`);
  return match[1];
}

describe('CURVE', { skip: skipReason() ?? false }, () => {
  let cluster;
  let server;
  let proxy;
  let keys;
  const client = (endpoints, options) => cluster.client(endpoints, { deadlineMs: 10000, ...options });

  before(async () => {
    cluster = new Cluster();
    const dir = path.join(cluster.root, 'keys');
    const [serverKey, serverSecret] = cluster.keygen(dir, 'server');
    const [clientKey, clientSecret] = cluster.keygen(dir, 'client');
    const [strangerKey, strangerSecret] = cluster.keygen(dir, 'stranger');
    const allowed = path.join(cluster.root, 'allowed');
    fs.mkdirSync(allowed);
    fs.copyFileSync(clientKey, path.join(allowed, 'client.key'));
    keys = { serverKey, serverSecret, clientKey, clientSecret, strangerKey, strangerSecret };
    server = await cluster.server({
      extra: ['--curve-secret-key', serverSecret, '--curve-clients', allowed],
    });
    proxy = await cluster.proxy([server.bind], [
      '--curve-secret-key', serverSecret, '--curve-clients', allowed,
      '--host-public-key', serverKey, '--curve-client-key', clientSecret,
    ], {
      curveServerKey: keyLine(serverKey, 'public'),
      curvePublicKey: keyLine(clientKey, 'public'),
      curveSecretKey: keyLine(clientSecret, 'secret'),
    });
  });

  after(async () => {
    if (cluster) await cluster.close();
  });

  it('a listed client gets numbers, keys given as certificate files', async () => {
    const seq = client(server.bind, { serverPublicKey: keys.serverKey, clientSecretKey: keys.clientSecret });
    assert.equal(seq.options.curve, true);
    assert.equal(await seq.next('curve'), 1n);
    const value = await new Promise((resolve, reject) => {
      seq.next('curve', (err, v) => (err ? reject(err) : resolve(v)));
    });
    assert.equal(value, 2n);
  });

  it('a listed client gets numbers, keys given as z85 text', async () => {
    const seq = client(server.bind, {
      serverPublicKey: keyLine(keys.serverKey, 'public'),
      clientSecretKey: keyLine(keys.clientSecret, 'secret'), // its public key is derived
    });
    assert.equal(typeof await seq.next('curve-text'), 'bigint');
    const fromBuffers = client(server.bind, {
      serverPublicKey: Buffer.from(keyLine(keys.serverKey, 'public')),
      clientSecretKey: Buffer.from(keyLine(keys.clientSecret, 'secret')),
    });
    assert.equal(typeof await fromBuffers.next('curve-text'), 'bigint');
  });

  it('through a CURVE proxy', async () => {
    const seq = client(proxy.bind, { serverPublicKey: keys.serverKey, clientSecretKey: keys.clientSecret });
    const values = await Promise.all(Array.from({ length: 50 }, () => seq.next('curve-proxy')));
    assert.equal(new Set(values).size, 50);
  });

  it('an unlisted key, the wrong server key, or no CURVE: AUTH within one attempt, while a listed client is served', async () => {
    const listed = client(server.bind, { serverPublicKey: keys.serverKey, clientSecretKey: keys.clientSecret });
    const refused = [
      client(server.bind, { ...SILENT, serverPublicKey: keys.serverKey, clientSecretKey: keys.strangerSecret }),
      client(server.bind, { ...SILENT, serverPublicKey: keys.serverKey }), // throw-away pair
      client(server.bind, { ...SILENT, serverPublicKey: keys.strangerKey, clientSecretKey: keys.clientSecret }),
      client(server.bind, SILENT),
    ];
    const started = performance.now();
    const ms = [];
    const calls = refused.map((seq, i) => seq.next('curve-refused').finally(() => {
      ms[i] = performance.now() - started;
    }));
    const outcomes = await Promise.allSettled([...calls, listed.next('curve-refused')]);
    const reasons = [/refused this client's CURVE public key/, /refused this client's CURVE public key/,
      /CURVE settings do not match/, /CURVE settings do not match/];
    outcomes.slice(0, refused.length).forEach((outcome, i) => {
      assert.equal(outcome.status, 'rejected');
      assert.equal(outcome.reason.code, 'AUTH', outcome.reason.message);
      assert.ok(outcome.reason instanceof seqgen.SeqgenError);
      assert.match(outcome.reason.message, reasons[i]);
      assert.match(outcome.reason.message, /refused this client's CURVE handshake/);
      // Told after its one attempt (300 ms), not at the deadline (900 ms).
      assert.ok(ms[i] < 800, `AUTH after ${ms[i]} ms`);
      assert.equal(refused[i].stats.attempts, 1, 'a refusing endpoint is not asked twice in a call');
    });
    assert.equal(outcomes[refused.length].status, 'fulfilled');
    assert.equal(outcomes[refused.length].value, 1n);
  });

  it('bad keys are refused when the client is made', () => {
    const cases = [
      [{ serverPublicKey: path.join(cluster.root, 'missing.key') }, /no such certificate file/],
      [{ serverPublicKey: keys.serverKey, clientSecretKey: keys.clientKey }, /holds no secret key/],
      [{ serverPublicKey: '~'.repeat(40) }, /not a CURVE key/], // not z85
      [{ serverPublicKey: '#'.repeat(40) }, /not a CURVE key/], // z85 characters, too large a value
      [{ serverPublicKey: keys.serverKey, clientSecretKey: Buffer.from('~'.repeat(40)) }, /not a CURVE key/],
      [{ serverPublicKey: 'short' }, /no such certificate file/],
      [{ clientSecretKey: keys.clientSecret }, /needs the server's public key/],
      [{ serverPublicKey: 42 }, /file name or z85 text/],
    ];
    const mixed = path.join(cluster.root, 'mixed.key_secret');
    fs.writeFileSync(mixed, fs.readFileSync(keys.clientSecret, 'utf8')
      .replace(keyLine(keys.clientSecret, 'public'), keyLine(keys.strangerKey, 'public')));
    cases.push([{ serverPublicKey: keys.serverKey, clientSecretKey: mixed }, /does not match/]);
    const notCert = path.join(cluster.root, 'not-a-cert');
    fs.writeFileSync(notCert, 'hello\n');
    cases.push([{ serverPublicKey: notCert }, /no public-key line/]);
    for (const [options, message] of cases) {
      assert.throws(() => seqgen(server.bind, options), message, JSON.stringify(options));
    }
  });
});
